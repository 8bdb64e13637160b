"""Checks for the exercises of lesson 09: neural fields for tomography.

The four exercises build a neural field reconstruction from its parts: the renderer
that integrates a field along the rays of the scanner (exercise 1), the number of
samples per ray (exercise 2), the Fourier-feature encoding of the coordinates
(exercise 3), and the loop that fits the field to a sinogram (exercise 4).  Each check runs
the learner's function on a small problem it makes up, compares with a reference
computed here, and when the answer is wrong tries the usual mistakes (a missing
:math:`2\\pi`, sine and cosine swapped, no step length in the quadrature, the field not
set to zero outside the image, pixel instead of normalised coordinates, a forgotten
``zero_grad``, the measurements of other rays than the rendered ones, ...) to say which
one it is.  Every check leaves the global random state as it found it.

Conventions (the lesson states them too): a field takes coordinates ``p`` of shape
``(..., 2)`` in :math:`[-1, 1]^2` (``p = (x, y) / (N / 2)`` with ``x`` to the right
and ``y`` upwards in pixel units, as in ``geometry.py``) and returns values of shape
``(...)``.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from ..operators.geometry import ParallelBeam
from ._feedback import CheckFailed, compare_arrays, exercise_check, expect

__all__ = ["fourier_features", "render_rays", "fit_field", "samples_per_ray"]

# The reference implementations below are what the notebook uses after each exercise, so
# that a learner who skipped an exercise can run the rest of the lesson, and so that the
# student copy does not show an exercise's answer in a later cell.


def fourier_encoding(p: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """:math:`[\\cos(2\\pi pB), \\sin(2\\pi pB)]`: coordinates ``(..., 2)``, frequencies
    ``(2, m)`` -> features ``(..., 2m)`` (exercise 3 of lesson 09)."""
    return _features(p, B)


def render_field(field, points: torch.Tensor, directions: torch.Tensor, image_size: int,
                 n_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Line integrals ``(n_rays,)`` of ``field`` along the rays (exercise 1 of lesson 09).

    The midpoint rule on :math:`t \\in [-N/\\sqrt2, N/\\sqrt2]`, with two changes for
    speed: the field is evaluated only at the samples inside the image square, and with
    a ``generator`` every sample is drawn uniformly within its own interval of length
    :math:`\\Delta t` (stratified sampling, as in NeRF).
    """
    shape = (len(points), n_samples)
    radius = image_size / math.sqrt(2)
    dt = 2 * radius / n_samples
    if generator is None:
        offset = torch.full(shape, 0.5, device=points.device)
    else:
        offset = torch.rand(shape, generator=generator).to(points.device)
    t = -radius + (torch.arange(n_samples, device=points.device) + offset) * dt
    p = (points[:, None, :] + t[..., None] * directions[:, None, :]) / (image_size / 2)
    inside = (p.abs() <= 1).all(dim=-1)
    values = torch.zeros(shape, device=points.device)
    values[inside] = field(p[inside])
    return values.sum(dim=-1) * dt


def ray_batch_loss(render, points, directions, y, batch_size, generator):
    """Mean squared error of a random batch of rays (exercise 4 of lesson 09).

    ``render(points, directions, generator)`` gives the line integrals of the rays; the
    batch is ``torch.randperm(len(y), generator=generator)[:batch_size]``.
    """
    rays = torch.randperm(len(y), generator=generator)[:batch_size].to(y.device)
    y_hat = render(points[rays], directions[rays], generator)
    return ((y_hat - y[rays]) ** 2).mean()


def ray_batch_step(field, optimizer, render, points, directions, y, batch_size,
                   generator) -> float:
    """One step of exercise 4's fit: a random batch of rays, its mean squared error, one
    optimiser step.  ``render(field, points, directions, generator)``; returns the loss."""
    loss = ray_batch_loss(lambda a, d, g: render(field, a, d, g), points, directions, y,
                          batch_size, generator)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def _close(got, expected, rtol=1e-4, atol=1e-6) -> bool:
    """True when ``got`` is a tensor of ``expected``'s shape and values."""
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        return False
    return bool(torch.allclose(got.detach().to(expected.dtype), expected, rtol=rtol,
                               atol=atol))


# --- Exercise 3: the Fourier-feature encoding ---------------------------------------------

def _features(p, B, *, factor=2 * math.pi, order="cos-sin", layout="concat"):
    """The reference encoding and its wrong variants."""
    angle = factor * (p @ B)
    first, second = ((torch.cos(angle), torch.sin(angle)) if order == "cos-sin"
                     else (torch.sin(angle), torch.cos(angle)))
    if layout == "interleave":
        return torch.stack([first, second], dim=-1).flatten(-2)
    return torch.cat([first, second], dim=-1)


@exercise_check("the Fourier-feature encoding")
def fourier_features(my_fourier_features):
    """Check ``my_fourier_features(p, B)`` = ``[cos(2π p B), sin(2π p B)]``.

    ``p`` has shape ``(..., 2)`` (coordinates), ``B`` shape ``(2, m)`` (frequencies in
    cycles per unit length); the result has shape ``(..., 2 m)``.
    """
    gen = torch.Generator().manual_seed(9)
    cases = [(torch.rand(6, 2, generator=gen) * 2 - 1, 3 * torch.randn(2, 5, generator=gen)),
             (torch.rand(3, 4, 2, generator=gen) * 2 - 1, torch.randn(2, 7, generator=gen))]
    for p, B in cases:
        what = f"my_fourier_features(p, B) for p of shape {tuple(p.shape)} and B of " \
               f"shape {tuple(B.shape)}"
        got = my_fourier_features(p.clone(), B.clone())
        if got is None:
            raise CheckFailed(f"{what} returned None — did you forget a `return`?")
        if not isinstance(got, torch.Tensor):
            raise CheckFailed(f"{what} should be a torch tensor (the network takes it as "
                              f"input), got a {type(got).__name__}")
        expected = _features(p, B)
        m = B.shape[1]
        if _close(got, expected):
            continue
        if got.shape == (*p.shape[:-1], m):
            raise CheckFailed(f"{what} has shape {tuple(got.shape)}: only m = {m} "
                              f"features; concatenate the cosines AND the sines, "
                              f"2 m = {2 * m} features per point")
        mistakes = [
            (dict(order="sin-cos"), "sines and cosines are swapped: the cosines come "
                                    "first, [cos(2π p B), sin(2π p B)]"),
            (dict(factor=1.0), "the factor 2π is missing: B holds frequencies in cycles "
                               "per unit, so the angle is 2π p B"),
            (dict(factor=math.pi), "the angle should be 2π p B, you used π p B"),
            (dict(layout="interleave"), "cos and sin are interleaved (stacked on a new "
                                        "last axis and flattened): concatenate them along "
                                        "the last axis instead, torch.cat([...], dim=-1)"),
        ]
        for variant, message in mistakes:
            if _close(got, _features(p, B, **variant)):
                raise CheckFailed(message)
        if got.shape == expected.shape and _close(got, _features(p.flip(-1), B)):
            raise CheckFailed("x and y are swapped: multiply the coordinates as they come, "
                              "p @ B (p is (x, y))")
        compare_arrays(got, expected, what=what, rtol=1e-4, atol=1e-5)
    return "2 batch shapes, random frequencies"


# --- Exercise 1: the ray-sampling renderer ------------------------------------------------

class _Blob(nn.Module):
    """A smooth made-up field with one learnable amplitude, non-zero outside the square."""

    def __init__(self):
        super().__init__()
        self.amplitude = nn.Parameter(torch.tensor(1.5))

    def forward(self, p):
        centre = torch.tensor([0.3, -0.2], dtype=p.dtype)
        r2 = ((p - centre) ** 2).sum(-1)
        return self.amplitude * torch.exp(-r2 / 0.3) + 0.4 + 0.2 * p[..., 0]


def _render(field, points, directions, image_size, n_samples, *, radius=None,
            t_range="symmetric", midpoints=True, scale=None, mask=True, quadrature="sum"):
    """The reference renderer (midpoint rule on t in [-N/√2, N/√2]) and wrong variants."""
    R = image_size / math.sqrt(2) if radius is None else radius
    dt = 2 * R / n_samples
    k = torch.arange(n_samples, dtype=points.dtype)
    if midpoints:
        t = -R + (k + 0.5) * dt
    else:
        t = torch.linspace(-R, R, n_samples, dtype=points.dtype)
    if t_range == "positive":
        t = t + R
    x = points[:, None, :] + t[None, :, None] * directions[:, None, :]
    p = x / (image_size / 2 if scale is None else scale)
    values = field(p)
    if mask:
        inside = (p.abs() <= 1).all(dim=-1)
        values = torch.where(inside, values, torch.zeros_like(values))
    if quadrature == "sum":
        return values.sum(dim=-1) * dt
    if quadrature == "no-dt":
        return values.sum(dim=-1)
    return values.mean(dim=-1)


@exercise_check("the ray-sampling renderer")
def render_rays(my_render_rays):
    """Check ``my_render_rays(field, points, directions, image_size, n_samples)``.

    The line integral of ``field`` along each ray by the midpoint rule: ``n_samples``
    points ``t_j = -R + (j + 1/2) Δt`` with ``R = N / √2`` and ``Δt = 2 R / n_samples``,
    the field set to 0 outside the image square, result ``Σ_j f(p_j) Δt`` of shape
    ``(n_rays,)``.
    """
    with torch.random.fork_rng(devices=[]):
        return _check_render_rays(my_render_rays)


def _check_render_rays(my_render_rays):
    cases = [(8, 6, 13, 24), (12, 5, 18, 17)]
    for image_size, n_angles, n_detectors, n_samples in cases:
        geometry = ParallelBeam(n_angles=n_angles, n_detectors=n_detectors)
        points, directions = (r.float() for r in geometry.rays())
        field = _Blob()
        what = (f"my_render_rays(field, points, directions, image_size={image_size}, "
                f"n_samples={n_samples})")
        got = my_render_rays(field, points.clone(), directions.clone(), image_size,
                             n_samples)
        if got is None:
            raise CheckFailed(f"{what} returned None — did you forget a `return`?")
        if not isinstance(got, torch.Tensor):
            raise CheckFailed(f"{what} should be a torch tensor (so that the fit can "
                              f"back-propagate through it), got a {type(got).__name__}")
        n_rays = len(points)
        if got.shape == (n_rays, n_samples):
            raise CheckFailed(f"{what} has shape {tuple(got.shape)}: one value per SAMPLE; "
                              f"sum over the samples of each ray (times Δt), one value "
                              f"per ray")
        if got.numel() == n_rays and got.shape != (n_rays,):
            got = got.reshape(n_rays)      # an extra dimension of size 1 is harmless
        args = (field, points, directions, image_size, n_samples)
        with torch.no_grad():
            expected = _render(*args)
            if not _close(got, expected, rtol=1e-4, atol=1e-4):
                R, N = image_size / math.sqrt(2), image_size
                mistakes = [
                    (dict(quadrature="no-dt"), "you summed the samples without the step "
                     "length: a line integral is Σ f(p_j) Δt, with Δt = 2R / n_samples "
                     "in pixels"),
                    (dict(quadrature="mean"), "you averaged the samples: a line integral "
                     "is Σ f(p_j) Δt (sum times step length), not the mean"),
                    (dict(mask=False), "the field must count only inside the image "
                     "square: set it to 0 where |p_x| > 1 or |p_y| > 1"),
                    (dict(scale=1.0), "the field got pixel coordinates: divide the "
                     "sample positions by N/2 so that the image square is [-1, 1]²"),
                    (dict(scale=N), "divide the sample positions by N/2, not by N: the "
                     "image square [-N/2, N/2]² (pixels) must become [-1, 1]²"),
                    (dict(radius=N / 2), "the samples must cover t in [-N/√2, N/√2] "
                     "(half the image diagonal): with [-N/2, N/2] rays miss the corners"),
                    (dict(t_range="positive"), "the samples must lie on both sides of the "
                     "ray's point (the point closest to the centre): t in [-R, R], not "
                     "[0, 2R]"),
                    (dict(midpoints=False), "use the midpoints t_j = -R + (j + ½) Δt, "
                     "not torch.linspace(-R, R, n_samples) (which puts samples on both "
                     "ends)"),
                ]
                for variant, message in mistakes:
                    if _close(got, _render(*args, **variant), rtol=1e-4, atol=1e-4):
                        raise CheckFailed(message)
                compare_arrays(got, expected, what=what, rtol=1e-4, atol=1e-4)

        # The fit back-propagates through the renderer into the field's weights.
        expect(got.requires_grad,
               f"{what} does not depend on the field's parameters for autograd: it was "
               f"detached (.detach(), torch.no_grad(), NumPy); the field is trained "
               f"through the renderer")
        (grad,) = torch.autograd.grad(got.sum(), field.amplitude)
        reference_field = _Blob()
        (expected_grad,) = torch.autograd.grad(_render(reference_field, *args[1:]).sum(),
                                               reference_field.amplitude)
        compare_arrays(grad, expected_grad, what="the gradient of the line integrals "
                       "with respect to the field's parameters", rtol=1e-4, atol=1e-4)
    return "2 geometries, values and gradient"


# --- Exercise 4: the fitting loop ---------------------------------------------------------

def _tiny_field(seed):
    """A small coordinate network (2 -> 16 -> 1), the same weights for the same seed."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(),
                         nn.Linear(16, 1), nn.Flatten(-2))


def _tiny_renderer(image_size, n_samples):
    def render(field, points, directions):
        return _render(field, points, directions, image_size, n_samples)
    return render


def _reference_fit(field, render, points, directions, y, n_iter, lr, batch_size,
                   generator, *, zero_grad=True, new_optimizer=False, batches="random",
                   targets="same", loss="mse"):
    """The reference loop and its wrong variants; returns the list of losses."""
    optimizer = torch.optim.Adam(field.parameters(), lr=lr)
    losses = []
    for _ in range(n_iter):
        if new_optimizer:
            optimizer = torch.optim.Adam(field.parameters(), lr=lr)
        rays = torch.randperm(len(y), generator=generator)[:batch_size]
        if batches == "all":
            rays = torch.arange(len(y))
        y_hat = render(field, points[rays], directions[rays])
        y_batch = y[rays] if targets == "same" else y[:len(rays)]
        error = y_hat - y_batch
        value = (error ** 2).mean() if loss == "mse" else error.abs().mean()
        if zero_grad:
            optimizer.zero_grad()
        value.backward()
        optimizer.step()
        losses.append(value.item())
    return losses


def _grid_values(field):
    c = torch.linspace(-0.9, 0.9, 7)
    grid = torch.stack(torch.meshgrid(c, c, indexing="xy"), dim=-1)
    with torch.no_grad():
        return field(grid)


@exercise_check("the fitting loop")
def fit_field(my_fit_field):
    """Check ``my_fit_field(field, render, points, directions, y, n_iter, lr, batch_size,
    generator)``.

    It should run ``n_iter`` Adam steps on the field's parameters; in each step draw the
    rays ``torch.randperm(len(y), generator=generator)[:batch_size]``, render them, take
    the mean squared error against ``y`` of the same rays, and return the list of the
    ``n_iter`` losses (floats).
    """
    with torch.random.fork_rng(devices=[]):
        return _check_fit_field(my_fit_field)


def _check_fit_field(my_fit_field):
    # lr and the sizes differ from the notebook's LR, RAYS_PER_STEP, ...: an answer that
    # uses the notebook's globals instead of its arguments fails here
    image_size, n_samples, n_iter, lr, batch_size = 8, 16, 20, 4e-3, 12
    geometry = ParallelBeam(n_angles=6, n_detectors=13)
    points, directions = (r.float() for r in geometry.rays())
    render = _tiny_renderer(image_size, n_samples)
    with torch.no_grad():
        y = render(_Blob(), points, directions)             # the "measured" sinogram
    initial = _tiny_field(seed=3)
    field = copy.deepcopy(initial)
    what = (f"my_fit_field(field, render, points, directions, y, n_iter={n_iter}, "
            f"lr={lr}, batch_size={batch_size}, generator)")
    rng_before = torch.get_rng_state()
    try:
        losses = my_fit_field(field, render, points, directions, y, n_iter, lr,
                              batch_size, torch.Generator().manual_seed(4))
    except RuntimeError as error:
        if "does not require grad" in str(error) or "grad_fn" in str(error):
            raise CheckFailed(
                "loss.backward() found no path back to the field's weights: the rendered "
                "values were detached (.detach(), torch.no_grad(), NumPy)") from None
        raise
    rng_changed = not torch.equal(torch.get_rng_state(), rng_before)

    def reference(**variant):
        options = dict(variant)
        step = options.pop("lr", lr)
        other = copy.deepcopy(initial)
        values = _reference_fit(other, render, points, directions, y, n_iter, step,
                                batch_size, torch.Generator().manual_seed(4), **options)
        return other, values

    expected_field, expected_losses = reference()
    if not _close(_grid_values(field), _grid_values(expected_field), rtol=1e-3, atol=1e-4):
        expect(not rng_changed,
               "your loop drew random numbers from the global generator: draw the rays "
               "with torch.randperm(len(y), generator=generator) so that the fit can be "
               "repeated exactly")
        expect(any(not torch.equal(a, b) for a, b in
                   zip(field.parameters(), initial.parameters())),
               "the field's weights did not change: create the optimiser over "
               "field.parameters() and call optimizer.step() after loss.backward()")
        mistakes = [
            (dict(zero_grad=False), "the gradients pile up from step to step: call "
             "optimizer.zero_grad() before loss.backward() in every step"),
            (dict(new_optimizer=True), "you create a new optimiser in every step, which "
             "resets Adam's running averages: create it once, before the loop"),
            (dict(lr=1e-3), "you ignored the argument lr: pass lr=lr to torch.optim.Adam"),
            (dict(lr=1e-2), "you used the notebook's learning rate LR = 1e-2, not the "
             "argument lr: a function must use its arguments, never the notebook's "
             "globals"),
            (dict(targets="first"), "you compared the rendered rays with the first "
             "batch_size entries of y: take the measurements of the SAME rays, y[rays]"),
            (dict(batches="all"), "you rendered all rays in every step: draw a random batch "
             "of batch_size rays, torch.randperm(len(y), generator=generator)[:batch_size]"),
            (dict(loss="l1"), "that is the mean ABSOLUTE error: the loss is the mean "
             "squared error of the rendered line integrals"),
        ]
        for variant, message in mistakes:
            wrong_field, _ = reference(**variant)
            if _close(_grid_values(field), _grid_values(wrong_field), rtol=1e-3, atol=1e-4):
                raise CheckFailed(message)
        raise CheckFailed("after the fit the field differs from the reference fit (same "
                          "initial weights, same generator): one Adam step per batch of "
                          "rays torch.randperm(len(y), generator=generator)[:batch_size], "
                          "loss = mean((render(field, points[rays], directions[rays]) - "
                          "y[rays])**2)")

    if losses is None:
        raise CheckFailed(f"{what} returned None — return the list of the {n_iter} losses")
    if not isinstance(losses, (list, tuple)) or len(losses) != n_iter:
        kind = (f"{len(losses)} values" if isinstance(losses, (list, tuple))
                else f"a {type(losses).__name__}")
        raise CheckFailed(f"{what} should return a list of the {n_iter} losses, one per "
                          f"step, got {kind}")
    try:
        values = torch.tensor([float(v.detach()) if isinstance(v, torch.Tensor) else float(v)
                               for v in losses])
    except (TypeError, ValueError, RuntimeError):
        raise CheckFailed("the losses should be numbers: append loss.item() in every "
                          "step") from None
    scale = values.sum().item() / torch.tensor(expected_losses).sum().item()
    if not torch.allclose(values, torch.tensor(expected_losses), rtol=1e-3, atol=1e-6):
        if math.isclose(scale, batch_size, rel_tol=1e-3):
            return "same fit as the reference (your losses are sums; means are the norm)"
        raise CheckFailed("the field was fitted right, but the returned losses are not the "
                          "mean squared errors of the steps: append loss.item() after "
                          "computing each step's loss")
    expect(values[-5:].mean() < values[:5].mean(),
           "the loss did not go down during the fit")
    return f"same weights as the reference after {n_iter} steps, loss going down"


# --- Exercise 2: how many samples per ray -------------------------------------------------

def _samples(image_size, step, *, length="diagonal", rounding="ceil"):
    """The reference number of samples and its wrong variants."""
    span = {"diagonal": math.sqrt(2) * image_size, "side": image_size,
            "half-diagonal": image_size / math.sqrt(2)}[length]
    ratio = span / step
    return {"ceil": math.ceil(ratio - 1e-9), "floor": math.floor(ratio + 1e-9),
            "round": round(ratio)}[rounding]


@exercise_check("how many samples per ray")
def samples_per_ray(my_samples_per_ray):
    """Check ``my_samples_per_ray(image_size, step) -> int``: the smallest number S of
    midpoint samples on :math:`t \\in [-N/\\sqrt2, N/\\sqrt2]` with
    :math:`\\Delta t = 2R/S \\le` ``step`` (pixels), :math:`S = \\lceil \\sqrt2 N / \\text{step}\\rceil`.
    """
    # sizes and steps that are not the notebook's (N = 64 or 128, one sample per pixel)
    cases = [(10, 1.0), (48, 0.75), (37, 2.0), (100, 0.5), (20, 1.3)]
    values = []
    for image_size, step in cases:
        what = f"my_samples_per_ray(image_size={image_size}, step={step})"
        got = my_samples_per_ray(image_size, step)
        if got is None:
            raise CheckFailed(f"{what} returned None — did you forget a `return`?")
        try:
            value = float(got)
        except (TypeError, ValueError, RuntimeError):
            raise CheckFailed(f"{what} should return a number, got a "
                              f"{type(got).__name__}") from None
        if value != int(value):
            raise CheckFailed(f"{what} = {value:g} is not a whole number: a ray has a "
                              f"whole number of samples; round up (math.ceil)")
        values.append(value)
    expected = [_samples(*case) for case in cases]
    if values == expected:
        return f"{len(cases)} sizes and steps"
    mistakes = [
        (dict(rounding="floor"), "you rounded down: then Δt = 2R/S is a little LARGER "
         "than the step asked for; round up (the smallest S with Δt ≤ step)"),
        (dict(rounding="round"), "you rounded to the nearest integer: round up, so that "
         "Δt = 2R/S never exceeds the step"),
        (dict(length="side"), "the samples cover the whole diagonal of the image, t in "
         "[-N/√2, N/√2], a length of √2 N, not N"),
        (dict(length="half-diagonal"), "the length to cover is 2R = √2 N (both halves of "
         "the diagonal), not R = N/√2"),
    ]
    for variant, message in mistakes:
        if values == [_samples(*case, **variant) for case in cases]:
            raise CheckFailed(message)
    if values == [math.ceil(step * math.sqrt(2) * n - 1e-9) for n, step in cases]:
        raise CheckFailed("you multiplied by the step: S = length / Δt, so divide")
    k = next(k for k, (a, b) in enumerate(zip(values, expected)) if a != b)
    raise CheckFailed(f"my_samples_per_ray{cases[k]} = {values[k]:g}, expected "
                      f"{expected[k]} (the smallest S with 2R/S ≤ step, R = N/√2)")
