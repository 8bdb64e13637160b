"""The checks of lesson 09 accept the reference answers and diagnose typical mistakes."""

import math

import pytest
import torch

from course_utils.checks import lesson09
from lesson_references import reference

# The reference answers, from solutions/09_neural_fields.py (see lesson_references.py).
ref = reference("09")


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise: replace this line with your code")


def run(check, fn):
    result = check(fn)
    return result, result.line


# --- Exercise 1: Fourier features -------------------------------------------------------------


def features_variant(kind):
    def features(p, B):
        angle = 2 * math.pi * (p @ B)
        if kind == "no-2pi":
            angle = p @ B
        if kind == "pi":
            angle = math.pi * (p @ B)
        if kind == "swapped-xy":
            angle = 2 * math.pi * (p.flip(-1) @ B)
        cos, sin = torch.cos(angle), torch.sin(angle)
        if kind == "sin-cos":
            return torch.cat([sin, cos], dim=-1)
        if kind == "cos-only":
            return cos
        if kind == "interleave":
            return torch.stack([cos, sin], dim=-1).flatten(-2)
        if kind == "numpy":
            return torch.cat([cos, sin], dim=-1).numpy()
        if kind == "none":
            return None
        if kind == "new-axis":
            return torch.stack([cos, sin], dim=0)
        if kind == "einsum":          # written differently, and correct
            angle = torch.einsum("...i,ij->...j", p, B) * (2 * math.pi)
            return torch.cat((angle.cos(), angle.sin()), -1)
        if kind == "via-sin":         # cos as a shifted sine, and correct
            return torch.cat([torch.sin(angle + math.pi / 2), torch.sin(angle)], dim=-1)
        return torch.cat([cos, sin], dim=-1)
    return features


def test_fourier_features_accepts_reference():
    result, line = run(lesson09.fourier_features, ref.fourier_features)
    assert result.status == "passed", line
    result, line = run(lesson09.fourier_features, features_variant("ok"))
    assert result.status == "passed", line


@pytest.mark.parametrize("kind", ["einsum", "via-sin"])
def test_fourier_features_accepts_answers_written_differently(kind):
    result, line = run(lesson09.fourier_features, features_variant(kind))
    assert result.status == "passed", line


@pytest.mark.parametrize("kind, diagnosis", [
    ("no-2pi", "2π is missing"),
    ("pi", "you used π p B"),
    ("sin-cos", "swapped"),
    ("cos-only", "only m = 5"),
    ("interleave", "interleaved"),
    ("swapped-xy", "x and y are swapped"),
    ("numpy", "should be a torch tensor"),
    ("none", "forget a `return`"),
    ("new-axis", "shape"),
])
def test_fourier_features_diagnoses_mistakes(kind, diagnosis):
    result, line = run(lesson09.fourier_features, features_variant(kind))
    assert result.status == "failed", line
    assert diagnosis in line, line


def test_fourier_features_stub_is_not_attempted():
    result, line = run(lesson09.fourier_features, stub)
    assert result.status == "not attempted", line


# --- Exercise 2: the renderer -----------------------------------------------------------------


def render_variant(kind):
    def render(field, points, directions, image_size, n_samples):
        R = image_size / math.sqrt(2)
        if kind == "half-width":
            R = image_size / 2
        dt = 2 * R / n_samples
        t = -R + (torch.arange(n_samples, dtype=points.dtype) + 0.5) * dt
        if kind == "linspace":
            t = torch.linspace(-R, R, n_samples)
        if kind == "positive":
            t = t + R
        x = points[:, None, :] + t[None, :, None] * directions[:, None, :]
        scale = {"pixels": 1.0, "by-N": image_size}.get(kind, image_size / 2)
        p = x / scale
        values = field(p)
        if kind == "detached":
            values = values.detach()
        if kind != "no-mask":
            inside = (p.abs() <= 1).all(dim=-1)
            values = values * inside
        if kind == "no-dt":
            return values.sum(dim=-1)
        if kind == "mean":
            return values.mean(dim=-1)
        if kind == "per-sample":
            return values * dt
        if kind == "none":
            return None
        if kind == "flattened":       # calls the field on an (M, 2) array: fine
            flat = field(p.reshape(-1, 2)).reshape(p.shape[:-1])
            return (flat * (p.abs() <= 1).all(dim=-1)).sum(dim=-1) * dt
        if kind == "column":          # shape (n_rays, 1): fine
            return (values.sum(dim=-1) * dt)[:, None]
        return values.sum(dim=-1) * dt
    return render


def test_render_rays_accepts_reference():
    result, line = run(lesson09.render_rays, ref.render_rays)
    assert result.status == "passed", line


@pytest.mark.parametrize("good", [render_variant("ok"), render_variant("flattened"),
                                  render_variant("column")])
def test_render_rays_accepts_equivalent_answers(good):
    result, line = run(lesson09.render_rays, good)
    assert result.status == "passed", line


@pytest.mark.parametrize("kind, diagnosis", [
    ("no-dt", "without the step length"),
    ("mean", "you averaged the samples"),
    ("no-mask", "only inside the image square"),
    ("pixels", "pixel coordinates"),
    ("by-N", "not by N"),
    ("half-width", "miss the corners"),
    ("positive", "both sides"),
    ("linspace", "midpoints"),
    ("per-sample", "one value per SAMPLE"),
    ("detached", "detached"),
    ("none", "forget a `return`"),
])
def test_render_rays_diagnoses_mistakes(kind, diagnosis):
    result, line = run(lesson09.render_rays, render_variant(kind))
    assert result.status == "failed", line
    assert diagnosis in line, line


def test_render_rays_stub_is_not_attempted():
    result, line = run(lesson09.render_rays, stub)
    assert result.status == "not attempted", line


def test_renderer_matches_analytic_line_integrals_of_a_disc():
    """The reference renderer itself: a disc of radius r has chords 2 sqrt(r² - u²)."""
    from course_utils.operators.geometry import ParallelBeam
    N, r = 32, 0.5                                   # radius r in [-1, 1] units
    geometry = ParallelBeam(n_angles=4, n_detectors=45)
    points, directions = (a.float() for a in geometry.rays())

    def disc(p):
        return ((p ** 2).sum(-1) <= r ** 2).float()

    got = ref.render_rays(disc, points, directions, N, 2000)
    u = points.norm(dim=-1)                          # distance of each ray from the centre
    radius = r * N / 2                               # in pixels
    expected = 2 * torch.sqrt((radius ** 2 - u ** 2).clamp(min=0))
    assert torch.allclose(got, expected, atol=0.1)


# --- Exercise 3: the fitting loop -------------------------------------------------------------


def fit_variant(kind):
    def fit(field, render, points, directions, y, n_iter, lr, batch_size, generator):
        step = {"no-lr": 1e-3, "global-lr": 1e-2}.get(kind, lr)    # 1e-2: the notebook's LR
        optimizer = torch.optim.Adam(field.parameters(), lr=step)
        losses = []
        for _ in range(n_iter):
            if kind == "new-optimizer":
                optimizer = torch.optim.Adam(field.parameters(), lr=lr)
            if kind == "global-rng":
                rays = torch.randperm(len(y))[:batch_size]
            else:
                rays = torch.randperm(len(y), generator=generator)[:batch_size]
            if kind == "all-rays":
                rays = torch.arange(len(y))
            y_hat = render(field, points[rays], directions[rays])
            target = y[:batch_size] if kind == "first-y" else y[rays]
            if kind == "detached":
                y_hat = y_hat.detach()
            error = y_hat - target
            loss = error.abs().mean() if kind == "l1" else (error ** 2).mean()
            if kind == "sum":
                loss = (error ** 2).sum()
            if kind != "no-zero-grad":
                optimizer.zero_grad()
            loss.backward()
            if kind != "no-step":
                optimizer.step()
            losses.append(loss if kind == "tensors" else loss.item())
        if kind == "none":
            return None
        if kind == "last-only":
            return losses[-1]
        return losses
    return fit


def test_fit_field_accepts_reference():
    result, line = run(lesson09.fit_field, ref.fit_field)
    assert result.status == "passed", line


@pytest.mark.parametrize("good", [fit_variant("ok"), fit_variant("sum"),
                                  fit_variant("tensors")])
def test_fit_field_accepts_equivalent_answers(good):
    result, line = run(lesson09.fit_field, good)
    assert result.status == "passed", line


@pytest.mark.parametrize("kind, diagnosis", [
    ("no-zero-grad", "zero_grad"),
    ("new-optimizer", "new optimiser in every step"),
    ("no-lr", "ignored the argument lr"),
    ("global-lr", "notebook's learning rate"),
    ("global-rng", "global generator"),
    ("all-rays", "rendered all rays"),
    ("first-y", "SAME rays"),
    ("l1", "ABSOLUTE"),
    ("no-step", "weights did not change"),
    ("detached", "no path back"),
    ("none", "returned None"),
    ("last-only", "list of the 20 losses"),
])
def test_fit_field_diagnoses_mistakes(kind, diagnosis):
    result, line = run(lesson09.fit_field, fit_variant(kind))
    assert result.status == "failed", line
    assert diagnosis in line, line


def test_fit_field_stub_is_not_attempted():
    result, line = run(lesson09.fit_field, stub)
    assert result.status == "not attempted", line


def test_checks_leave_the_global_random_state_alone():
    state = torch.get_rng_state()
    lesson09.render_rays(ref.render_rays)
    lesson09.fit_field(fit_variant("global-rng"))
    assert torch.equal(torch.get_rng_state(), state)


# --- Exercise 2 (decision): samples per ray -----------------------------------------------------


def samples_variant(kind):
    def samples(image_size, step):
        length = {"side": image_size, "half": image_size / math.sqrt(2)}.get(
            kind, math.sqrt(2) * image_size)
        if kind == "times":
            return math.ceil(length * step)
        if kind == "floor":
            return int(length / step)
        if kind == "round":
            return round(length / step)
        if kind == "float":
            return length / step
        if kind == "none":
            return None
        if kind == "numpy":           # correct, written differently
            import numpy as np
            return int(np.ceil(np.hypot(image_size, image_size) / step))
        if kind == "loop":            # correct, by search
            n = 1
            while 2 * (image_size / math.sqrt(2)) / n > step:
                n += 1
            return n
        if kind == "tensor":          # correct, as a torch scalar
            return torch.ceil(torch.tensor(2.0).sqrt() * image_size / step).long()
        return math.ceil(length / step)
    return samples


def test_samples_per_ray_accepts_the_reference():
    result, line = run(lesson09.samples_per_ray, ref.samples_per_ray)
    assert result.status == "passed", line


@pytest.mark.parametrize("kind", ["ok", "numpy", "loop", "tensor"])
def test_samples_per_ray_accepts_answers_written_differently(kind):
    result, line = run(lesson09.samples_per_ray, samples_variant(kind))
    assert result.status == "passed", line


@pytest.mark.parametrize("kind, diagnosis", [
    ("floor", "rounded down"),
    ("round", "nearest integer"),
    ("side", "length of √2 N"),
    ("half", "not R = N/√2"),
    ("times", "divide"),
    ("float", "whole number"),
    ("none", "forget a `return`"),
])
def test_samples_per_ray_diagnoses_mistakes(kind, diagnosis):
    result, line = run(lesson09.samples_per_ray, samples_variant(kind))
    assert result.status == "failed", line
    assert diagnosis in line, line


def test_samples_per_ray_stub_is_not_attempted():
    result, line = run(lesson09.samples_per_ray, stub)
    assert result.status == "not attempted", line


def test_reference_implementations_match_the_exercises():
    """The helpers the notebook uses after the exercises give the exercises' answers."""
    g = torch.Generator().manual_seed(0)
    p, B = torch.rand(5, 3, 2, generator=g), torch.randn(2, 4, generator=g)
    assert torch.allclose(lesson09.fourier_encoding(p, B), ref.fourier_features(p, B))
    from course_utils.operators.geometry import ParallelBeam
    points, directions = (a.float() for a in ParallelBeam(n_angles=3, n_detectors=11).rays())

    def blob(q):
        return torch.exp(-(q ** 2).sum(-1))
    assert torch.allclose(lesson09.render_field(blob, points, directions, 8, 20),
                          ref.render_rays(blob, points, directions, 8, 20), atol=1e-5)
