"""Checks for the exercises of lesson 12: can we trust a learned reconstruction?

Each check runs the learner's function on small cases it makes up, compares with a
reference computed here (and with :func:`course_utils.learning.robustness.calibration`
for the reliability bins) and, when the answer is wrong, recognises the usual mistakes
and says which one it is: for the worst perturbation, one radius or one norm for the
whole batch, a missing projection, raw instead of normalised gradient steps, descent
instead of ascent, a reference output that moves with δ, a start that ignores
``delta0``, one step too few or too many, a result that still requires grad; for the
data-consistency step, a start at zero, the weight μ forgotten or on the wrong term, sums
over the whole batch, steepest or plain gradient descent instead of conjugate gradients,
``n_iter`` ignored; for the reliability bins, a mean absolute or mean squared error
instead of the RMS error, groups sorted by the error or cut per image, equal-width
instead of equal-count bins, ``torch.chunk``'s group sizes, the two results swapped.

Every check leaves the global random state as it found it.
"""

from __future__ import annotations

import numpy as np
import torch

from ..learning.robustness import calibration
from ..operators.linear_operator import MatrixOperator
from ._feedback import CheckFailed, compare_arrays, exercise_check, expect

__all__ = ["perturbation_ascent", "dc_step", "reliability_bins"]

_TINY = torch.finfo(torch.float64).tiny


def _close(a, b, rtol=1e-6, atol=1e-9) -> bool:
    return (isinstance(a, torch.Tensor) and a.shape == b.shape
            and bool(torch.allclose(a.detach().to(b.dtype), b, rtol=rtol, atol=atol)))


def _sizes(t: torch.Tensor) -> torch.Tensor:
    """Euclidean length of each item of a batch, as (B, 1, ..., 1) to broadcast."""
    lengths = t.reshape(len(t), -1).pow(2).sum(1).sqrt()
    return lengths.reshape(len(t), *([1] * (t.ndim - 1)))


def _whole(t: torch.Tensor) -> torch.Tensor:
    """One Euclidean length for the whole batch (a 0-d tensor: the mistake)."""
    return t.pow(2).sum().sqrt()


# --- Exercise 1: the perturbation that changes the output most ---------------------------

def _matrix_map(matrix, out_shape, squash=False):
    """f(y) = M y (or tanh(M y + 0.3)): data (B, 1, a, b) to images (B, 1, *out_shape)."""
    def f(y):
        images = torch.einsum("ij,bj->bi", matrix, y.reshape(len(y), -1))
        if squash:
            images = torch.tanh(images + 0.3)
        return images.reshape(len(y), 1, *out_shape)
    return f


def _climb(f, y, eps, n_steps, step, start, *, sign=1.0, radius_of=_sizes,
           gradient_size=_sizes, ball_size=_sizes, normalise=True, with_radius=True,
           project=True, moving_reference=False):
    """Projected (normalised) gradient ascent of ‖f(y + δ) − f(y)‖², and its mistakes."""
    ball = eps * radius_of(y)
    target = f(y).detach()
    current = start.detach().clone()
    for _ in range(n_steps):
        leaf = current.clone().requires_grad_(True)
        with torch.enable_grad():
            moved = f(y + leaf)
            (slope,) = torch.autograd.grad((moved - target).square().sum(), leaf)
        if moving_reference:
            target = moved.detach()
        length = step * ball if with_radius else step
        if normalise:
            slope = slope / gradient_size(slope).clamp(min=_TINY)
        current = current + sign * length * slope
        if project:
            current = current * (ball / ball_size(current).clamp(min=_TINY)).clamp(max=1.0)
    return current


def _climb_variants(f, y, eps, n_steps, step, start):
    run = lambda **options: _climb(f, y, eps, n_steps, step, start, **options)  # noqa: E731
    variants = {
        "batch radius": run(radius_of=_whole),
        "batch gradient norm": run(gradient_size=_whole),
        "batch projection": run(ball_size=_whole),
        "all batch norms": run(radius_of=_whole, gradient_size=_whole, ball_size=_whole),
        "no projection": run(project=False),
        "raw gradient": run(normalise=False, with_radius=False),
        "raw gradient times radius": run(normalise=False),
        "no radius in step": run(with_radius=False),
        "descent": run(sign=-1.0),
        "moving reference": run(moving_reference=True),
        "never moves": start.clone(),
    }
    if n_steps > 0:
        variants["one too few"] = _climb(f, y, eps, n_steps - 1, step, start)
    variants["one too many"] = _climb(f, y, eps, n_steps + 1, step, start)
    return variants


_CLIMB_MISTAKES = {
    "batch radius": "your radius is ε times the norm of the whole batch; each scan has its "
                    "own ball, r_b = ε‖y_b‖ (a norm per scan: flatten from dimension 1)",
    "batch gradient norm": "you normalise the gradient by its norm over the whole batch; "
                           "normalise each scan's gradient g_b by its own ‖g_b‖",
    "batch projection": "your projection uses the norm of the whole batch of δ; project "
                        "each scan's δ_b onto its own ball of radius r_b",
    "all batch norms": "your norms (radius, gradient, projection) are taken over the whole "
                       "batch; each scan of the batch is its own problem: norms per scan",
    "no projection": "δ leaves the ball: after each step, project it back so that "
                     "‖δ_b‖ ≤ r_b",
    "raw gradient": "your steps use the raw gradient; the lesson's step is normalised: a "
                    "fraction `step` of the radius, in the direction g_b / ‖g_b‖",
    "raw gradient times radius": "your steps are step · r · g with the raw gradient; divide "
                                 "each scan's gradient by its norm, so that every step has "
                                 "length step · r_b",
    "no radius in step": "your steps have length `step` itself; a step is a fraction `step` "
                         "of the radius r_b",
    "descent": "your steps go downhill: the ascent adds the normalised gradient to δ, to "
               "make the change of the output larger",
    "moving reference": "you measure the change from the output of the previous step; "
                        "measure it from the fixed f(y), computed once before the loop",
    "never moves": "you return delta0 unchanged: the gradient of the change is zero where "
                   "it is measured from f(y + δ) itself; measure it from f(y), the output "
                   "of the unperturbed data, computed once before the loop",
    "one too few": "you take one step too few: n_steps gradient steps are expected",
    "one too many": "you take one step too many: n_steps gradient steps are expected",
}


def _sphere_start(y, eps, gen):
    direction = torch.randn(y.shape, generator=gen, dtype=y.dtype)
    return direction * (eps * _sizes(y) / _sizes(direction))


def _judge_climb(my_ascend, f, y, eps, n_steps, step, start, what, gen):
    """Compare one call with the reference; raise CheckFailed with a diagnosis if wrong."""
    got = my_ascend(f, y.clone(), eps, n_steps, step, start.clone())
    expected = _climb(f, y, eps, n_steps, step, start)
    if _close(got, expected):
        expect(not got.requires_grad,
               f"{what}: the values are right, but your δ still requires grad (it is part "
               f"of an autograd graph); return it detached")
        return got
    expect(got is not None, f"{what} is None — did you forget a `return`?")
    if isinstance(got, torch.Tensor) and got.shape == expected.shape:
        values = got.detach().to(expected.dtype)
        if torch.isnan(values).any():
            raise CheckFailed(f"{what} contains NaN: probably 0 / 0, a zero gradient divided "
                              f"by its norm. The gradient is zero at δ = 0, and wherever the "
                              f"change is measured from f(y + δ) itself: start from delta0 "
                              f"and measure the change from f(y)")
        if not values.abs().max() > 0:
            raise CheckFailed(f"{what} is all zeros: start from delta0, not from zero (at "
                              f"δ = 0 the change and its gradient are zero: the ascent "
                              f"never leaves it)")
        for name, variant in _climb_variants(f, y, eps, n_steps, step, start).items():
            if _close(values, variant):
                raise CheckFailed(f"{what}: {_CLIMB_MISTAKES[name]}")
        again = my_ascend(f, y.clone(), eps, n_steps, step, start.clone())
        if isinstance(again, torch.Tensor) and not _close(again, values, 1e-10, 1e-12):
            raise CheckFailed(f"{what}: two calls with the same delta0 give different "
                              f"results; start from delta0, not from a random δ of your own")
        other = my_ascend(f, y.clone(), eps, n_steps, step, _sphere_start(y, eps, gen))
        if isinstance(other, torch.Tensor) and _close(other, values, 1e-10, 1e-12):
            raise CheckFailed(f"{what}: your δ is the same for another delta0; the ascent "
                              f"should start from delta0")
        radius = eps * _sizes(y)
        too_long = (_sizes(values) > radius * (1 + 1e-6)).flatten()
        if too_long.any():
            b = int(too_long.nonzero()[0])
            raise CheckFailed(f"{what}: scan {b} has ‖δ_b‖ = {float(_sizes(values)[b]):.4g}, "
                              f"more than its radius ε‖y_b‖ = {float(radius[b]):.4g}; project "
                              f"each scan's δ back onto its ball after every step")
    compare_arrays(got, expected, what=what, rtol=1e-6, atol=1e-9)


@exercise_check("the perturbation that changes the output most")
def perturbation_ascent(my_ascend):
    """Check ``my_ascend(f, y, eps, n_steps, step, delta0)`` (returns δ, detached).

    On small linear maps f(y) = M y and on a nonlinear one, tanh(M y + 0.3), with batches
    of three scans of different norms, against the reference steps computed here; and on
    a linear map with a known top singular vector, where many steps must line δ up with
    it, at the length ε‖y_b‖.
    """
    with torch.random.fork_rng(devices=[]):
        gen = torch.Generator().manual_seed(12)
        shape, out_shape = (4, 5), (3, 3)
        n_in, n_out = 20, 9
        scales = torch.tensor([0.5, 1.0, 3.0], dtype=torch.float64).reshape(-1, 1, 1, 1)

        def scans():
            return scales * torch.rand(3, 1, *shape, generator=gen, dtype=torch.float64)

        M = torch.randn(n_out, n_in, generator=gen, dtype=torch.float64) / n_in ** 0.5
        cases = [(_matrix_map(M, out_shape), "f(y) = M y", 0.05, 3, 0.5),
                 (_matrix_map(2 * M, out_shape, squash=True), "f(y) = tanh(M y + 0.3)",
                  0.1, 4, 0.3)]
        for f, name, eps, n_steps, step in cases:
            y = scans()
            start = _sphere_start(y, eps, gen)
            what = (f"my_ascend(f, y, eps={eps}, n_steps={n_steps}, step={step}, delta0) "
                    f"with {name}")
            _judge_climb(my_ascend, f, y, eps, n_steps, step, start, what, gen)

        # A map with known singular vectors: many steps end on the top one.
        V, _ = torch.linalg.qr(torch.randn(n_in, n_in, generator=gen, dtype=torch.float64))
        U, _ = torch.linalg.qr(torch.randn(n_out, n_out, generator=gen, dtype=torch.float64))
        gains = torch.tensor([4.0, 2.0, 1.6, 1.2, 1.0, 0.8, 0.6, 0.4, 0.2],
                             dtype=torch.float64)
        f = _matrix_map(U @ torch.diag(gains) @ V[:, :n_out].T, out_shape)
        top = V[:, 0].reshape(1, 1, *shape)
        eps, n_steps, step = 0.02, 40, 1.0
        y = scans()
        start = _sphere_start(y, eps, gen)
        what = (f"my_ascend(f, y, eps={eps}, n_steps={n_steps}, step={step}, delta0) with "
                f"f(y) = M y")
        got = _judge_climb(my_ascend, f, y, eps, n_steps, step, start, what, gen)
        aligned = (got.detach() * top).flatten(1).sum(1).abs() / (eps * _sizes(y).flatten())
        expect(bool(((aligned - 1).abs() < 1e-6).all()),
               f"{what}: δ_b should end as ±ε‖y_b‖ times M's top right singular vector")
    return ("per-scan radius, normalised steps, projection; on a linear map δ lines up "
            "with the top singular vector")


# --- Exercise 2: the data-consistency step -----------------------------------------------

def _conjugate_gradients(apply, rhs, start, iterations, *, per_scan=True, conjugate=True):
    """``iterations`` CG (or steepest-descent) steps for apply(x) = rhs, from ``start``."""
    def inner(u, v):
        return (u * v).sum(dim=(1, 2, 3), keepdim=True) if per_scan else (u * v).sum()

    solution = start.clone()
    residual = rhs - apply(solution)
    direction = residual.clone()
    size = inner(residual, residual)
    for _ in range(iterations):
        image = apply(direction)
        length = size / inner(direction, image)
        solution = solution + length * direction
        residual = residual - length * image
        new_size = inner(residual, residual)
        direction = residual + new_size / size * direction if conjugate else residual
        size = new_size
    return solution


def _direct_solve(matrix, y, x_hat, mu):
    """(AᵀA + μI)⁻¹ (Aᵀy + μ x̂) for every scan, by a dense solve."""
    n = matrix.shape[1]
    system = matrix.T @ matrix + mu * torch.eye(n, dtype=matrix.dtype)
    rhs = y.reshape(len(y), -1) @ matrix + mu * x_hat.reshape(len(x_hat), -1)
    return torch.linalg.solve(system, rhs.T).T.reshape(x_hat.shape)


def _dc_variants(A, y, x_hat, mu, n_iter):
    normal = lambda v: A.T(A(v))  # noqa: E731
    weighted = lambda v: normal(v) + mu * v  # noqa: E731
    rhs = A.T(y) + mu * x_hat
    variants = {
        "unchanged": x_hat.clone(),
        "zero start": _conjugate_gradients(weighted, rhs, torch.zeros_like(x_hat), n_iter),
        "no mu": _conjugate_gradients(normal, A.T(y), x_hat, n_iter),
        "b without mu": _conjugate_gradients(weighted, A.T(y) + x_hat, x_hat, n_iter),
        "mu on the data": _conjugate_gradients(lambda v: mu * normal(v) + v,
                                               mu * A.T(y) + x_hat, x_hat, n_iter),
        "batch sums": _conjugate_gradients(weighted, rhs, x_hat, n_iter, per_scan=False),
        "steepest descent": _conjugate_gradients(weighted, rhs, x_hat, n_iter,
                                                 conjugate=False),
        "one too many": _conjugate_gradients(weighted, rhs, x_hat, n_iter + 1),
        "exact solution": _direct_solve(A.to_matrix(), y, x_hat, mu),
    }
    if n_iter > 0:
        variants["one too few"] = _conjugate_gradients(weighted, rhs, x_hat, n_iter - 1)
    # gradient descent with the step 1 / (‖A‖² + μ), ‖A‖ exact or as A.norm() estimates it
    norms = {"gradient descent": float(torch.linalg.matrix_norm(A.to_matrix(), 2)),
             "gradient descent, estimated norm": A.norm()}
    for name, norm in norms.items():
        tau, x = 1.0 / (norm ** 2 + mu), x_hat.clone()
        for _ in range(n_iter):
            x = x + tau * (rhs - weighted(x))
        variants[name] = x
    return variants


_DC_MISTAKES = {
    "unchanged": "you return x̂ unchanged: the conjugate-gradient steps should move it "
                 "towards the data",
    "zero start": "your conjugate gradients start at x = 0; start them at x = x̂ (the "
                  "network's output), as the exercise asks",
    "no mu": "you solve the plain least-squares system AᵀA x = Aᵀy: the weight μ is "
             "missing from both sides",
    "b without mu": "the right-hand side is Aᵀy + x̂: the output x̂ is weighted by μ there, "
                    "as on the left-hand side",
    "mu on the data": "you put μ on the data term, (μAᵀA + I) x = μAᵀy + x̂; the step "
                      "weights the closeness to x̂: μ goes with the identity and with x̂",
    "batch sums": "your inner products sum over the whole batch, which mixes the scans: "
                  "sum over the image dimensions (1, 2, 3) only, with keepdim=True",
    "steepest descent": "each new direction is the residual itself (steepest descent); "
                        "conjugate gradients add β times the previous direction",
    "gradient descent": "this is gradient descent with a fixed step; the exercise asks for "
                        "conjugate gradients, which reach the solution in far fewer steps",
    "gradient descent, estimated norm": "this is gradient descent with a fixed step; the "
                                        "exercise asks for conjugate gradients, which reach "
                                        "the solution in far fewer steps",
    "one too few": "you run one iteration too few: n_iter conjugate-gradient steps are "
                   "expected",
    "one too many": "you run one iteration too many: n_iter conjugate-gradient steps are "
                    "expected",
    "exact solution": "you return the exact solution after only a few iterations: run "
                      "exactly n_iter conjugate-gradient steps",
}


def _small_operator(gen, n=5, n_angles=4, n_detectors=6):
    matrix = torch.randn(n_angles * n_detectors, n * n, generator=gen, dtype=torch.float64)
    matrix = matrix / n
    return MatrixOperator(matrix, (n, n), (n_angles, n_detectors))


def _dc_case(A, gen, scales):
    n = A.domain_shape[0]
    s = torch.tensor(scales, dtype=torch.float64).reshape(-1, 1, 1, 1)
    x_true = s * torch.rand(len(scales), 1, n, n, generator=gen, dtype=torch.float64)
    y = A(x_true) + 0.05 * s * torch.randn(len(scales), 1, *A.range_shape, generator=gen,
                                           dtype=torch.float64)
    x_hat = x_true + 0.2 * s * torch.randn(x_true.shape, generator=gen, dtype=torch.float64)
    return y, x_hat


@exercise_check("the data-consistency step")
def dc_step(my_dc_step):
    """Check ``my_dc_step(A, y, x_hat, mu, n_iter)`` (conjugate gradients from x̂).

    With a small random ``cu.MatrixOperator`` on 5 x 5 images and batches whose scans
    differ in scale by a factor 1000: after 3 iterations against the reference
    conjugate-gradient steps, and after 40 against a dense solve of
    :math:`(A^TA + \\mu I)\\,x = A^Ty + \\mu\\hat x`.
    """
    gen = torch.Generator().manual_seed(12)
    A = _small_operator(gen)
    size = float(torch.linalg.matrix_norm(A.to_matrix(), 2)) ** 2

    # A few iterations: exactly the conjugate-gradient steps.
    y, x_hat = _dc_case(A, gen, (1.0, 1000.0))
    mu, n_iter = 0.05 * size, 3
    what = f"my_dc_step(A, y, x_hat, mu={mu:.3g}, n_iter={n_iter})"
    with torch.random.fork_rng(devices=[]):
        got = my_dc_step(A, y.clone(), x_hat.clone(), mu, n_iter)
    rhs = A.T(y) + mu * x_hat
    expected = _conjugate_gradients(lambda v: A.T(A(v)) + mu * v, rhs, x_hat, n_iter)
    if not _close(got, expected):
        if isinstance(got, torch.Tensor) and got.shape == expected.shape:
            values = got.detach().to(expected.dtype)
            for name, variant in _dc_variants(A, y, x_hat, mu, n_iter).items():
                if _close(values, variant):
                    raise CheckFailed(f"{what}: {_DC_MISTAKES[name]}")
            with torch.random.fork_rng(devices=[]):
                later = my_dc_step(A, y.clone(), x_hat.clone(), mu, 40)
            if _close(later, values, 1e-10, 1e-12):
                raise CheckFailed(f"{what}: your result is the same for n_iter = 40; run "
                                  f"n_iter iterations")
            if _close(later, _direct_solve(A.to_matrix(), y, x_hat, mu)):
                raise CheckFailed(f"{what}: after 40 iterations you reach the right "
                                  f"solution, but after {n_iter} your x differs from "
                                  f"conjugate gradients': check the step length α, the "
                                  f"update of the residual and the new direction p")
        compare_arrays(got, expected, what=what, rtol=1e-6, atol=1e-9)

    # Many iterations: the solution of the system, whatever the route.
    y, x_hat = _dc_case(A, gen, (2.0, 0.01, 50.0))
    mu, n_iter = 0.2 * size, 40
    what = f"my_dc_step(A, y, x_hat, mu={mu:.3g}, n_iter={n_iter})"
    with torch.random.fork_rng(devices=[]):
        got = my_dc_step(A, y.clone(), x_hat.clone(), mu, n_iter)
    expected = _direct_solve(A.to_matrix(), y, x_hat, mu)
    if not _close(got, expected):
        if isinstance(got, torch.Tensor) and got.shape == expected.shape:
            values = got.detach().to(expected.dtype)
            n = A.to_matrix().shape[1]
            eye = torch.eye(n, dtype=torch.float64)
            normal = A.to_matrix().T @ A.to_matrix()
            aty = y.reshape(len(y), -1) @ A.to_matrix()
            flat = x_hat.reshape(len(x_hat), -1)
            wrong_systems = {
                "b without mu": (normal + mu * eye, aty + flat),
                "mu on the data": (mu * normal + eye, mu * aty + flat)}
            for name, (system, rhs) in wrong_systems.items():
                variant = torch.linalg.solve(system, rhs.T).T.reshape(x_hat.shape)
                if _close(values, variant, 1e-5, 1e-8):
                    raise CheckFailed(f"{what}: {_DC_MISTAKES[name]}")
            plain = _conjugate_gradients(lambda v: A.T(A(v)), A.T(y), x_hat, n_iter)
            if _close(values, plain, 1e-5, 1e-8):
                raise CheckFailed(f"{what}: {_DC_MISTAKES['no mu']}")
        compare_arrays(got, expected, what=what, rtol=1e-6, atol=1e-9)
    return "conjugate gradients from x̂, per scan; 40 iterations solve (AᵀA + μI) x = Aᵀy + μx̂"


# --- Exercise 3: the reliability bins ----------------------------------------------------

def _as_row(value, what: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().double().numpy()
    if isinstance(value, (list, tuple)):
        try:
            return np.array([float(v) for v in value])
        except (TypeError, ValueError):
            raise CheckFailed(f"{what} should hold numbers") from None
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise CheckFailed(f"{what} should hold numbers, got an array of {value.dtype}")
        return value.astype(np.float64)
    raise CheckFailed(f"{what} should be a tensor (an array or a list is fine too), got "
                      f"{type(value).__name__}")


def _two_rows(result, what: str) -> tuple:
    expect(result is not None, f"{what} returned None — did you forget a `return`?")
    if isinstance(result, (torch.Tensor, np.ndarray)) and result.ndim >= 1 and len(result) == 2:
        result = (result[0], result[1])
    expect(isinstance(result, (tuple, list)) and len(result) == 2,
           f"{what} should return two results, (mean spread, RMS error), got "
           f"{type(result).__name__}"
           + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else ""))
    return (_as_row(result[0], f"{what}'s first result (the mean spread)"),
            _as_row(result[1], f"{what}'s second result (the RMS error)"))


def _equal_count(order, s, e, n_bins, *, split=torch.tensor_split, centre=False,
                 square_root=True, absolute=False, rms_spread=False):
    groups = split(order, n_bins)
    spread = [(s[g].square().mean().sqrt() if rms_spread else s[g].mean()) for g in groups]
    errors = []
    for g in groups:
        part = e[g] - e[g].mean() if centre else e[g]
        if absolute:
            errors.append(part.abs().mean())
        else:
            errors.append(part.square().mean().sqrt() if square_root else
                          part.square().mean())
    return torch.stack(spread).numpy(), torch.stack(errors).numpy()


def _equal_width(s, e, n_bins):
    edges = np.linspace(float(s.min()), float(s.max()), n_bins + 1)
    which = np.clip(np.searchsorted(edges, s.numpy(), side="right") - 1, 0, n_bins - 1)
    spread, errors = np.full(n_bins, np.nan), np.full(n_bins, np.nan)
    for k in range(n_bins):
        inside = which == k
        if inside.any():
            spread[k] = s.numpy()[inside].mean()
            errors[k] = np.sqrt((e.numpy()[inside] ** 2).mean())
    return spread, errors


def _bins_variants(spread, error, n_bins):
    s, e = spread.flatten(), error.flatten()
    by_spread = torch.argsort(s)
    variants = {
        "mean abs": _equal_count(by_spread, s, e, n_bins, absolute=True),
        "no sqrt": _equal_count(by_spread, s, e, n_bins, square_root=False),
        "std": _equal_count(by_spread, s, e, n_bins, centre=True),
        "rms spread": _equal_count(by_spread, s, e, n_bins, rms_spread=True),
        "sorted by error": _equal_count(torch.argsort(e), s, e, n_bins),
        "sorted by |error|": _equal_count(torch.argsort(e.abs()), s, e, n_bins),
        "descending": _equal_count(torch.argsort(s, descending=True), s, e, n_bins),
        "chunk": _equal_count(by_spread, s, e, n_bins, split=torch.chunk),
        "equal width": _equal_width(s, e, n_bins),
    }
    ordered = torch.arange(len(s))
    predicted = _equal_count(ordered, torch.sort(s).values, e, n_bins)[0]
    variants["sorted separately"] = (
        predicted, _equal_count(ordered, s, torch.sort(e).values, n_bins)[1])
    variants["sorted separately by |error|"] = (
        predicted, _equal_count(ordered, s, e[torch.argsort(e.abs())], n_bins)[1])
    rows = [_equal_count(torch.argsort(a.flatten()), a.flatten(), b.flatten(), n_bins)
            for a, b in zip(spread, error)]
    variants["per image, averaged"] = (np.mean([r[0] for r in rows], axis=0),
                                       np.mean([r[1] for r in rows], axis=0))
    variants["per image, pooled RMS"] = (np.mean([r[0] for r in rows], axis=0),
                                         np.sqrt(np.mean([r[1] ** 2 for r in rows], axis=0)))
    return variants


_BINS_MISTAKES = {
    "mean abs": "your error column is the mean |error| of each group; the reliability plot "
                "compares the spread with the root-mean-square error",
    "no sqrt": "your error column is the mean squared error of each group (a variance, in "
               "squared units); the spread is a standard deviation: take the square root",
    "std": "your error column is the standard deviation of the errors in each group, which "
           "removes their mean; the RMS error keeps it (a bias is an error too)",
    "rms spread": "your first result is the RMS of the spread in each group; it should be "
                  "the plain mean spread",
    "sorted by error": "your groups are formed by sorting the error; sort the pixels by "
                       "their predicted spread, and take the errors of the same pixels",
    "sorted by |error|": "your groups are formed by sorting |error|; sort the pixels by "
                         "their predicted spread, and take the errors of the same pixels",
    "descending": "your groups run from the largest spread down; sort in increasing order, "
                  "so that the first group holds the smallest spreads",
    "chunk": "your groups have torch.chunk's sizes (all of ⌈n / n_bins⌉ pixels but the "
             "last); torch.tensor_split gives sizes that differ by at most one",
    "equal width": "your bins have equal widths in spread (as np.histogram makes them); "
                   "the lesson's groups hold equal numbers of pixels, cut from the pixels "
                   "sorted by spread",
    "sorted separately": "you sort the spread and the error each on its own, which breaks "
                         "the pairs (pixel i's spread with pixel i's error): sort the "
                         "indices by spread once and use them for both",
    "sorted separately by |error|": "you sort the spread and the error each on its own, "
                                    "which breaks the pairs (pixel i's spread with pixel "
                                    "i's error): sort the indices by spread once and use "
                                    "them for both",
    "per image, averaged": "you bin each image on its own and average the images; pool the "
                           "pixels of all images first, then sort and cut them",
    "per image, pooled RMS": "you bin each image on its own and combine the images; pool "
                             "the pixels of all images first, then sort and cut them",
    "swapped": "the two results are swapped: first the mean spread of each group, then "
               "its RMS error",
}


def _reliability_case(gen, shape, stretch):
    """Spreads that differ between images, errors that grow with the spread."""
    s = torch.rand(shape, generator=gen, dtype=torch.float64) * 0.2 + 0.01
    s = s * torch.tensor(stretch, dtype=torch.float64).reshape(-1, 1, 1, 1)
    e = s * 1.3 * torch.randn(shape, generator=gen, dtype=torch.float64)
    e = e + 0.02 + 0.01 * torch.randn(shape, generator=gen, dtype=torch.float64)
    return s, e


@exercise_check("the reliability bins")
def reliability_bins(my_reliability):
    """Check ``my_reliability(spread, error, n_bins)`` -> (mean spread, RMS error).

    Against ``calibration(spread, error, n_bins)["predicted"]`` and ``["rmse"]`` on
    random batches whose number of pixels is not a multiple of ``n_bins``; tensors,
    arrays or lists of numbers are all accepted.
    """
    gen = torch.Generator().manual_seed(12)
    cases = [((2, 1, 7, 7), (1.0, 3.0), 5), ((3, 1, 5, 6), (0.5, 1.0, 4.0), 8)]

    def close(a, b):
        return a.shape == b.shape and np.allclose(a, b, rtol=1e-5, atol=1e-9,
                                                  equal_nan=True)

    for shape, stretch, n_bins in cases:
        spread, error = _reliability_case(gen, shape, stretch)
        n_pixels = spread.numel()
        what = f"my_reliability(spread, error, n_bins={n_bins}) ({n_pixels} pixels)"
        with torch.random.fork_rng(devices=[]):
            result = my_reliability(spread.clone(), error.clone(), n_bins)
        got = _two_rows(result, what)
        reference = calibration(spread, error, n_bins)
        expected = (reference["predicted"].numpy(), reference["rmse"].numpy())
        if close(got[0], expected[0]) and close(got[1], expected[1]):
            continue
        for k, name in enumerate(("first (mean spread)", "second (RMS error)")):
            if got[k].shape in ((shape[0], n_bins), (shape[0] * n_bins,)):
                raise CheckFailed(f"{what}: your {name} result has shape "
                                  f"{got[k].shape}, one group of values per image; pool the "
                                  f"pixels of all images first: {n_bins} values expected")
            expect(got[k].shape == (n_bins,),
                   f"{what}: your {name} result has shape {got[k].shape}, expected "
                   f"({n_bins},): one value per group")
        if close(got[0], expected[1]) and close(got[1], expected[0]):
            raise CheckFailed(f"{what}: {_BINS_MISTAKES['swapped']}")
        for name, (first, second) in _bins_variants(spread, error, n_bins).items():
            if close(got[0], first) and close(got[1], second):
                raise CheckFailed(f"{what}: {_BINS_MISTAKES[name]}")
        compare_arrays(got[0], expected[0], what=f"{what}'s mean spread", rtol=1e-5,
                       atol=1e-9)
        compare_arrays(got[1], expected[1], what=f"{what}'s RMS error", rtol=1e-5,
                       atol=1e-9)
    return "equal-count groups of pooled pixels, sorted by spread"
