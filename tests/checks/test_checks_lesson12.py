"""The checks of lesson 12 accept the reference answers and diagnose typical mistakes."""

import numpy as np
import pytest
import torch

import course_utils as cu
from course_utils.checks import lesson12
from lesson_references import reference, run, stub

# The reference answers, from solutions/12_trust.py (lesson_references.py).  They need only
# the imports, and the set-up cell loads the shipped networks: it is reduced to its
# definitions here (test_reference_answers.py still runs it whole).
ref = reference("12", setup="definitions")


def norms(t, whole=False):
    if whole:
        return torch.linalg.vector_norm(t)
    return torch.linalg.vector_norm(t.flatten(1), dim=1).view(-1, 1, 1, 1)


# --- Exercise 1: the perturbation that changes the output most ----------------------------

def make_ascend(whole_radius=False, normalise=True, project=True, sign=1.0,
                reference="f(y)", detach=True, start="delta0", extra=0):
    def ascend(f, y, eps, n_steps, step, delta0):
        r = eps * norms(y, whole=whole_radius)
        noise = torch.randn_like(y)
        delta = {"delta0": delta0.clone(), "zeros": torch.zeros_like(y),
                 "random": noise * r / norms(noise),
                 "seeded": r * torch.nn.functional.normalize(torch.randn(
                     y.shape, generator=torch.Generator().manual_seed(0),
                     dtype=y.dtype).flatten(1)).view_as(y)}[start]
        with torch.no_grad():
            ref_out = f(y + delta) if reference == "f(y + delta0)" else f(y)
        for _ in range(n_steps + extra):
            delta = delta.detach().requires_grad_(True)
            with torch.enable_grad():
                out = f(y + delta)
                g, = torch.autograd.grad((out - ref_out).pow(2).sum(), delta)
            if reference == "previous":
                ref_out = out.detach()
            with torch.no_grad():
                delta = delta + sign * step * r * (g / norms(g) if normalise else g)
                if project:
                    delta = delta * torch.clamp(r / norms(delta), max=1.0)
            if not detach:
                delta = delta.requires_grad_(True) * 1.0
        return delta.detach() if detach else delta
    return ascend


def ascend_one_scan_at_a_time(f, y, eps, n_steps, step, delta0):
    result = []
    for b in range(len(y)):
        yb = y[b:b + 1]
        radius = eps * float(yb.norm())
        d = delta0[b:b + 1].clone()
        base = f(yb).detach()
        for _ in range(n_steps):
            d.requires_grad_(True)
            change = ((f(yb + d) - base) ** 2).sum()
            grad = torch.autograd.grad(change, d)[0]
            d = (d + step * radius * grad / grad.norm()).detach()
            d = d * min(1.0, radius / float(d.norm()))
        result.append(d)
    return torch.cat(result)


@pytest.mark.parametrize("good", ["reference", make_ascend(), ascend_one_scan_at_a_time])
def test_ascent_accepts_correct_answers(good):
    fn = ref.ascend if good == "reference" else good
    result, line = run(lesson12.perturbation_ascent, fn)
    assert result.status == "passed", line


@pytest.mark.parametrize("wrong, diagnosis", [
    (make_ascend(whole_radius=True), "each scan has its own ball"),
    (make_ascend(project=False), "project"),
    (make_ascend(normalise=False), "raw gradient"),
    (make_ascend(sign=-1.0), "downhill"),
    (make_ascend(reference="previous"), "output of the previous step"),
    (make_ascend(reference="f(y + delta0)"), "NaN"),
    (make_ascend(detach=False), "requires grad"),
    (make_ascend(start="zeros"), "start from delta0"),
    (make_ascend(start="random"), "start from delta0"),
    (make_ascend(start="seeded"), "should start from delta0"),
    (make_ascend(extra=-1), "one step too few"),
    (make_ascend(extra=1), "one step too many"),
    (lambda f, y, eps, n_steps, step, delta0: None, "None"),
])
def test_ascent_diagnoses_mistakes(wrong, diagnosis):
    result, line = run(lesson12.perturbation_ascent, wrong)
    assert result.status == "failed", line
    assert diagnosis in line, line


def test_ascent_stub_is_not_attempted():
    result, line = run(lesson12.perturbation_ascent, stub)
    assert result.status == "not attempted", line


def test_ascent_check_leaves_the_global_random_state_alone():
    state = torch.random.get_rng_state()
    run(lesson12.perturbation_ascent, make_ascend(start="random"))
    assert torch.equal(torch.random.get_rng_state(), state)


# --- Exercise 2: the data-consistency step -------------------------------------------------

def dc_course(A, y, x_hat, mu, n_iter):
    return cu.data_consistency_step(A, y, x_hat, mu, n_iter)


def dc_flat_vectors(A, y, x_hat, mu, n_iter):
    """Conjugate gradients on each scan's flattened image, one scan after the other."""
    shape = x_hat.shape[1:]
    out = []
    for yb, xb in zip(y, x_hat):
        def M(v):
            image = v.reshape(1, *shape)
            return (A.T(A(image)) + mu * image).flatten()
        x = xb.flatten().clone()
        r = (A.T(yb[None]) + mu * xb[None]).flatten() - M(x)
        p = r.clone()
        for _ in range(n_iter):
            Mp = M(p)
            a = (r @ r) / (p @ Mp)
            x = x + a * p
            r_next = r - a * Mp
            p = r_next + (r_next @ r_next) / (r @ r) * p
            r = r_next
        out.append(x.reshape(shape))
    return torch.stack(out)


def make_dc(start="x_hat", system="right", per_scan=True, conjugate=True, extra=0,
            fixed_iterations=None):
    def dc(A, y, x_hat, mu, n_iter):
        M = {"right": lambda v: A.T(A(v)) + mu * v,
             "no mu": lambda v: A.T(A(v)),
             "b without mu": lambda v: A.T(A(v)) + mu * v,
             "mu on the data": lambda v: mu * A.T(A(v)) + v}[system]
        b = {"right": A.T(y) + mu * x_hat, "no mu": A.T(y),
             "b without mu": A.T(y) + x_hat, "mu on the data": mu * A.T(y) + x_hat}[system]

        def dot(u, v):
            return (u * v).sum((1, 2, 3), keepdim=True) if per_scan else (u * v).sum()
        x = x_hat.clone() if start == "x_hat" else torch.zeros_like(x_hat)
        r = b - M(x)
        p = r.clone()
        for _ in range(fixed_iterations or n_iter + extra):
            Mp = M(p)
            alpha = dot(r, r) / dot(p, Mp)
            x = x + alpha * p
            r_new = r - alpha * Mp
            p = r_new + (dot(r_new, r_new) / dot(r, r)) * p if conjugate else r_new
            r = r_new
        return x
    return dc


def dc_gradient_descent(A, y, x_hat, mu, n_iter):
    tau = 1.0 / (A.norm() ** 2 + mu)
    x = x_hat.clone()
    for _ in range(n_iter):
        x = x - tau * (A.T(A(x) - y) + mu * (x - x_hat))
    return x


def dc_exact(A, y, x_hat, mu, n_iter):
    matrix = A.to_matrix()
    system = matrix.T @ matrix + mu * torch.eye(matrix.shape[1], dtype=matrix.dtype)
    rhs = y.flatten(1) @ matrix + mu * x_hat.flatten(1)
    return torch.linalg.solve(system, rhs.T).T.reshape(x_hat.shape)


@pytest.mark.parametrize("good", ["reference", dc_course, dc_flat_vectors, make_dc()])
def test_dc_step_accepts_correct_answers(good):
    fn = ref.dc_step if good == "reference" else good
    result, line = run(lesson12.dc_step, fn)
    assert result.status == "passed", line


@pytest.mark.parametrize("wrong, diagnosis", [
    (make_dc(start="zero"), "start at x = 0"),
    (make_dc(system="no mu"), "plain least-squares"),
    (make_dc(system="b without mu"), "right-hand side"),
    (make_dc(system="mu on the data"), "μ on the data term"),
    (make_dc(per_scan=False), "mixes the scans"),
    (make_dc(conjugate=False), "steepest descent"),
    (dc_gradient_descent, "gradient descent"),
    (make_dc(fixed_iterations=40), "n_iter"),
    (make_dc(fixed_iterations=15), "n_iter"),
    (dc_exact, "exact solution"),
    (make_dc(extra=-1), "one iteration too few"),
    (lambda A, y, x_hat, mu, n_iter: x_hat.clone(), "x̂ unchanged"),
    (lambda A, y, x_hat, mu, n_iter: None, "None"),
])
def test_dc_step_diagnoses_mistakes(wrong, diagnosis):
    result, line = run(lesson12.dc_step, wrong)
    assert result.status == "failed", line
    assert diagnosis in line, line


def test_dc_step_stub_is_not_attempted():
    result, line = run(lesson12.dc_step, stub)
    assert result.status == "not attempted", line


# --- Exercise 3: the reliability bins ------------------------------------------------------

def reliability_course(spread, error, n_bins):
    out = cu.calibration(spread, error, n_bins)
    return out["predicted"], out["rmse"]


def reliability_numpy_lists(spread, error, n_bins):
    s, e = spread.numpy().ravel(), error.numpy().ravel()
    groups = np.array_split(np.argsort(s), n_bins)
    return [float(s[g].mean()) for g in groups], [float(np.sqrt(np.mean(e[g] ** 2)))
                                                  for g in groups]


def reliability_one_tensor(spread, error, n_bins):
    order = spread.flatten().argsort()
    s, e = spread.flatten()[order], error.flatten()[order]
    rows = [torch.stack([a.mean(), b.pow(2).mean().sqrt()])
            for a, b in zip(s.tensor_split(n_bins), e.tensor_split(n_bins))]
    return torch.stack(rows, dim=1)     # (2, n_bins)


def make_reliability(sort_by="spread", error_stat="rms", split="tensor_split", pooled=True,
                     swap=False, separately=False):
    def reliability(spread, error, n_bins):
        if pooled is not True:          # "rows": one row per image, "mean": their mean
            each = make_reliability(sort_by, error_stat, split)
            rows = [each(s[None], e[None], n_bins) for s, e in zip(spread, error)]
            rows = torch.stack([r[0] for r in rows]), torch.stack([r[1] for r in rows])
            return (rows[0].mean(0), rows[1].mean(0)) if pooled == "mean" else rows
        s, e = spread.flatten(), error.flatten()
        key = {"spread": s, "error": e, "|error|": e.abs()}[sort_by]
        if split == "equal width":
            edges = np.histogram_bin_edges(s.numpy(), bins=n_bins)
            which = np.clip(np.digitize(s.numpy(), edges) - 1, 0, n_bins - 1)
            groups = [torch.as_tensor(np.flatnonzero(which == k)) for k in range(n_bins)]
        elif separately:
            s, e = torch.sort(s).values, torch.sort(e).values
            groups = torch.tensor_split(torch.arange(len(s)), n_bins)
        else:
            order = torch.argsort(key)
            groups = (torch.chunk if split == "chunk" else torch.tensor_split)(order, n_bins)
        predicted = torch.stack([s[g].mean() for g in groups])
        stat = {"rms": lambda v: v.pow(2).mean().sqrt(), "mae": lambda v: v.abs().mean(),
                "mse": lambda v: v.pow(2).mean()}[error_stat]
        errors = torch.stack([stat(e[g]) for g in groups])
        return (errors, predicted) if swap else (predicted, errors)
    return reliability


@pytest.mark.parametrize("good", ["reference", reliability_course, reliability_numpy_lists,
                                  reliability_one_tensor, make_reliability()])
def test_reliability_accepts_correct_answers(good):
    fn = ref.reliability if good == "reference" else good
    result, line = run(lesson12.reliability_bins, fn)
    assert result.status == "passed", line


@pytest.mark.parametrize("wrong, diagnosis", [
    (make_reliability(error_stat="mae"), "mean |error|"),
    (make_reliability(error_stat="mse"), "square root"),
    (make_reliability(sort_by="error"), "sorting the error"),
    (make_reliability(sort_by="|error|"), "sorting |error|"),
    (make_reliability(pooled="rows"), "pool the pixels"),
    (make_reliability(pooled="mean"), "pool the pixels"),
    (make_reliability(split="equal width"), "equal widths"),
    (make_reliability(split="chunk"), "torch.chunk"),
    (make_reliability(swap=True), "swapped"),
    (make_reliability(separately=True), "breaks the pairs"),
    (lambda spread, error, n_bins: None, "None"),
    (lambda spread, error, n_bins: spread.flatten()[:n_bins], "two results"),
])
def test_reliability_diagnoses_mistakes(wrong, diagnosis):
    result, line = run(lesson12.reliability_bins, wrong)
    assert result.status == "failed", line
    assert diagnosis in line, line


def test_reliability_stub_is_not_attempted():
    result, line = run(lesson12.reliability_bins, stub)
    assert result.status == "not attempted", line
