"""Checks for the exercises of lesson 02: the system matrix and iterative reconstruction.

Each check tries the learner's function on small problems it makes up, compares with
values computed here and, when the answer is wrong, recognises the usual mistakes
(transposed matrix, pixels in column-major order, a step size that is not 1/‖A‖², a
missing sensitivity normalisation, directions that are not conjugate, a late stop, ...) and says which one it is.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch

from ..operators.geometry import ParallelBeam
from ..operators.linear_operator import MatrixOperator
from ..operators.radon import RadonTransform
from ._feedback import CheckFailed, compare_arrays, exercise_check, expect

__all__ = ["system_matrix", "landweber", "mlem_update", "cgls_discrepancy"]


# --- shared helpers ------------------------------------------------------------------------

def _as_dense(value, what):
    """A returned matrix as a dense tensor (sparse answers are fine too)."""
    if isinstance(value, torch.Tensor) and value.layout != torch.strided:
        return value.to_dense()
    if value is None:
        raise CheckFailed(f"{what} is None — did you forget a `return`?")
    return value


def _close(got, expected, rtol=1e-5, atol=1e-6):
    """True when both have the same shape and values (tensors or arrays)."""
    if isinstance(got, torch.Tensor):
        got = got.detach().cpu().double().numpy()
    if isinstance(expected, torch.Tensor):
        expected = expected.detach().cpu().double().numpy()
    got, expected = np.asarray(got), np.asarray(expected)
    return got.shape == expected.shape and np.allclose(got, expected, rtol=rtol, atol=atol)


def _known_mistake(got, mistakes, rtol=1e-5, atol=1e-6):
    """Raise CheckFailed with the message of the first known wrong answer ``got`` equals."""
    if not isinstance(got, (torch.Tensor, np.ndarray)):
        return
    for message, wrong in mistakes:
        if _close(got, wrong, rtol, atol):
            raise CheckFailed(message)


def _radon(image_size, n_angles, n_detectors):
    geometry = ParallelBeam(n_angles=n_angles, n_detectors=n_detectors)
    return RadonTransform(image_size=image_size, geometry=geometry)


# --- Exercise 1: the system matrix from point responses -------------------------------------

@exercise_check("the system matrix from point responses")
def system_matrix(my_system_matrix):
    """Check ``my_system_matrix(A)``: a dense ``(n_rays, n_pixels)`` matrix, column j = A e_j."""
    cases = [_radon(6, 5, 9), _radon(7, 4, 11)]
    for A in cases:
        n = A.image_size
        n_angles, n_detectors = A.range_shape
        n_rays, n_pixels = n_angles * n_detectors, n * n
        what = f"my_system_matrix(A) for a {n}x{n} image and a {n_angles}x{n_detectors} sinogram"
        got = _as_dense(my_system_matrix(A), what)
        expected = A.to_matrix().to_dense().double()
        if tuple(getattr(got, "shape", ())) == (n_pixels, n_rays):
            raise CheckFailed(
                f"{what} has shape {(n_pixels, n_rays)} = (n_pixels, n_rays): it is "
                f"transposed. Each COLUMN j should hold the sinogram of pixel j, so the "
                f"shape is (n_rays, n_pixels) = {(n_rays, n_pixels)}")
        # Column j = pixel (j % n, j // n) is the column-major (Fortran) order.
        column_major = torch.arange(n_pixels).reshape(n, n).T.reshape(-1)
        # Row i = (detector i // n_angles, angle i % n_angles): the sinogram read column-wise.
        detector_major = torch.arange(n_rays).reshape(n_angles, n_detectors).T.reshape(-1)
        _known_mistake(got, [
            ("the columns are in column-major order: column j must be pixel "
             "(row j // N, column j % N), the order of x.flatten() (row-major)",
             expected[:, column_major]),
            ("the rows are in the wrong order: row i must be ray i of the flattened "
             "sinogram y.flatten(), i.e. angle i // n_detectors, detector i % n_detectors",
             expected[detector_major]),
            ("the columns are in column-major order and the rows in the wrong order: "
             "use x.flatten() and y.flatten() (row-major) for both",
             expected[detector_major][:, column_major]),
        ])
        compare_arrays(got, expected, what=what, rtol=1e-5, atol=1e-6)
    return f"{len(cases)} geometries, matrix equals A.to_matrix()"


# --- Exercise 2: Landweber with a chosen step size ------------------------------------------

def _landweber_run(A, y, n_iter, step, x0=None, transpose=True):
    """n_iter steps x + step * A^T (y - A x) (A instead of A^T when ``transpose`` is False)."""
    back = A.T if transpose else A
    x = torch.zeros(A.domain_shape, dtype=y.dtype) if x0 is None else x0
    for _ in range(n_iter):
        x = x + step * back(y - A(x))
    return x


@exercise_check("Landweber with a chosen step size")
def landweber(my_landweber):
    """Check ``my_landweber(A, y, n_iter)``: n_iter steps from 0 with step 1/||A||^2.

    A square non-symmetric matrix (so that A and A.T are both applicable) and a small
    Radon transform; the step may come from ``A.norm()`` or from an exact spectral norm
    (they agree to about 1e-6, hence the tolerance).
    """
    gen = torch.Generator().manual_seed(2)
    square = MatrixOperator(torch.randn(16, 16, generator=gen, dtype=torch.float64),
                            (4, 4), (4, 4))
    radon = _radon(8, 6, 13)
    for A, n_iter in ((square, 15), (radon, 25)):
        y = A(torch.rand(A.domain_shape, generator=gen, dtype=torch.float64))
        y = y + 0.1 * torch.randn(y.shape, generator=gen, dtype=torch.float64)
        y_before = y.clone()
        what = f"my_landweber(A, y, n_iter={n_iter})"
        got = my_landweber(A, y, n_iter)
        expect(torch.equal(y, y_before), "your function changed the data y in place; "
                                         "leave y as it is")
        if got is None:
            raise CheckFailed(f"{what} is None — did you forget a `return`?")
        if isinstance(got, tuple):
            raise CheckFailed(f"{what} returned a tuple; return only the last image")
        norm = A.norm()
        step = 1.0 / norm**2
        expected = _landweber_run(A, y, n_iter, step)
        tolerance = dict(rtol=1e-4, atol=1e-6 * float(expected.abs().max()))
        if _close(got, expected, **tolerance):
            continue
        if isinstance(got, torch.Tensor) and got.shape == expected.shape and \
                not torch.isfinite(got).all():
            raise CheckFailed(f"{what} contains inf or NaN: the iteration blew up, so the "
                              f"step is too large; it must stay below 2/‖A‖², and the best "
                              f"guaranteed decrease is at 1/‖A‖² (note the square)")
        mistakes = [
            ("the step 1/‖A‖ is not the one of the descent lemma: L = ‖A‖² (the norm "
             "squared), so the step is 1/‖A‖²", _landweber_run(A, y, n_iter, 1.0 / norm)),
            ("the step 2/‖A‖² sits on the stability limit: the error along the largest "
             "singular direction flips sign without shrinking. Maximise ω(1 − ωL/2): "
             "ω = 1/L = 1/‖A‖²", _landweber_run(A, y, n_iter, 2.0 * step)),
            ("your steps go uphill: the update is x + ω·Aᵀ(y − A x) = x − ω·Aᵀ(A x − y)",
             _landweber_run(A, y, n_iter, -step)),
            (f"you ran {n_iter - 1} steps instead of {n_iter}: start from the zero image "
             f"and apply the update n_iter times", _landweber_run(A, y, n_iter - 1, step)),
            (f"you ran {n_iter + 1} steps instead of {n_iter}: start from the zero image "
             f"and apply the update n_iter times", _landweber_run(A, y, n_iter + 1, step)),
            ("you started from the backprojection Aᵀy; start from the zero image",
             _landweber_run(A, y, n_iter, step, x0=A.T(y))),
        ]
        if A.domain_shape == A.range_shape:
            mistakes.append(("you applied A instead of its transpose to the residual: the "
                             "residual lives in data space and A.T brings it back to images",
                             _landweber_run(A, y, n_iter, step, transpose=False)))
        _known_mistake(got, mistakes, **tolerance)
        if isinstance(got, torch.Tensor) and got.shape == expected.shape and \
                float(torch.linalg.vector_norm(got.double())) \
                > 100 * float(torch.linalg.vector_norm(expected)):
            raise CheckFailed(f"{what} is more than 100 times larger than it should be: the "
                              f"iteration blew up, so the step is too large; it must stay "
                              f"below 2/‖A‖², and the best guaranteed decrease is at 1/‖A‖²")
        compare_arrays(got, expected, what=what, **tolerance)
    return "a square matrix and a Radon transform, step 1/‖A‖²"


# --- Exercise 3: the MLEM update -------------------------------------------------------------

def _safe_ratio(numerator, denominator):
    """numerator / denominator, and 0 where the denominator is 0."""
    positive = denominator > 0
    return torch.where(positive, numerator / torch.where(positive, denominator, 1.0), 0.0)


@exercise_check("the MLEM update")
def mlem_update(my_mlem_update):
    """Check ``my_mlem_update(x, A, y, sensitivity)`` = x / s · Aᵀ(y / A x), safely."""
    gen = torch.Generator().manual_seed(3)
    # Case 1: every ray and pixel is seen (no division by zero): the update itself.
    radon = _radon(8, 6, 9)
    # Case 2: a pixel no ray sees (zero column) and a ray that sees nothing (zero row).
    matrix = torch.rand(12, 9, generator=gen, dtype=torch.float64)
    matrix[:, 4] = 0.0
    matrix[7, :] = 0.0
    blind = MatrixOperator(matrix, (3, 3), (3, 4))
    cases = [(radon, "an 8x8 Radon transform"),
             (blind, "a matrix with an unseen pixel and an empty ray")]
    for A, name in cases:
        x_true = 0.5 + torch.rand(A.domain_shape, generator=gen, dtype=torch.float64)
        y = A(x_true) * (1 + 0.2 * torch.rand(A.range_shape, generator=gen,
                                              dtype=torch.float64))
        x = 0.5 + torch.rand(A.domain_shape, generator=gen, dtype=torch.float64)
        sensitivity = A.T(torch.ones(A.range_shape, dtype=torch.float64))
        x_before = x.clone()
        what = f"my_mlem_update(x, A, y, sensitivity) for {name}"
        got = my_mlem_update(x, A, y, sensitivity)
        expect(torch.equal(x, x_before),
               "your function changed its input x in place (e.g. `x *= ...`); return a "
               "new image instead so the caller's x stays as it was")
        if got is None:
            raise CheckFailed(f"{what} is None — did you forget a `return`?")
        ratio = _safe_ratio(y, A(x))
        correction = A.T(ratio)
        expected = x * _safe_ratio(correction, sensitivity)
        if isinstance(got, torch.Tensor) and got.shape == expected.shape and \
                not torch.isfinite(got).all():
            raise CheckFailed(
                f"{what} contains NaN or inf: a ray that sees nothing has A x = 0, and a "
                f"pixel no ray sees has sensitivity 0. Guard both divisions: use a ratio "
                f"of 0 where A x = 0, and set the pixel to 0 where the sensitivity is 0")
        _known_mistake(got, [
            ("the update is not normalised by the sensitivity: divide by Aᵀ1 "
             "(the `sensitivity` argument)", x * correction),
            ("you multiplied by the sensitivity instead of dividing by it",
             x * sensitivity * correction),
            ("you forgot the current image: MLEM multiplies x by the correction "
             "Aᵀ(y / A x) / sensitivity", _safe_ratio(correction, sensitivity)),
            ("you added the correction to x: MLEM is multiplicative, "
             "x_new = x · Aᵀ(y / A x) / sensitivity",
             x + _safe_ratio(correction, sensitivity)),
            ("that is an additive (SIRT-like) update with the difference y − A x; MLEM "
             "back-projects the RATIO y / A x and multiplies x by it",
             x + _safe_ratio(A.T(y - A(x)), sensitivity)),
            ("the ratio is upside down: it is measured / predicted, y / (A x)",
             x * _safe_ratio(A.T(_safe_ratio(A(x), y)), sensitivity)),
        ], rtol=1e-4, atol=1e-8)
        # Small epsilons (A x + 1e-9) are a fine guard, hence the relative tolerance.
        compare_arrays(got, expected, what=what, rtol=1e-4, atol=1e-8)
    return "the update, a pixel no ray sees and a ray that sees nothing"


# --- Exercise 4: CGLS stopped by the discrepancy principle ----------------------------------

def _cgls_path(A, y, max_iter, variant="cgls"):
    """The CGLS iterates x_1 .. x_max_iter and their misfits ||y - A x_k|| (float64).

    ``variant``: "cgls" (right), "steepest" (no conjugation, beta = 0) or "inverted"
    (beta = gamma_k / gamma_(k+1)).
    """
    x = torch.zeros(A.domain_shape, dtype=torch.float64)
    r = y.clone()
    s = A.T(r)
    p = s.clone()
    gamma = float((s * s).sum())
    iterates, misfits = [], []
    for _ in range(max_iter):
        q = A(p)
        alpha = gamma / float((q * q).sum())
        x = x + alpha * p
        r = r - alpha * q
        s = A.T(r)
        gamma_new = float((s * s).sum())
        beta = {"cgls": gamma_new / gamma, "steepest": 0.0,
                "inverted": gamma / max(gamma_new, 1e-300)}[variant]
        p = s + beta * p
        gamma = gamma_new
        iterates.append(x)
        misfits.append(float(torch.linalg.vector_norm(y - A(x))))
    return iterates, misfits


def _first_within(misfits, level):
    """1-based number of the first iterate with misfit <= level (len if none)."""
    return next((k + 1 for k, m in enumerate(misfits) if m <= level), len(misfits))


def first_within_noise(misfits, level) -> int:
    """0-based position of the first misfit <= level (the last position if there is none).

    The discrepancy stop of lesson 02, section 3.6, used by the notebook after
    Exercise 4, where the learner writes the same rule inside CGLS.
    """
    return _first_within(list(misfits), level) - 1


def _as_count(value, what):
    """An integer from an int, NumPy integer or 0-dim integer tensor."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise CheckFailed(f"{what} should be a number of iterations (an int), got a "
                              f"tensor of shape {tuple(value.shape)}")
        value = value.item()
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not float(value).is_integer():
        raise CheckFailed(f"{what} should be a number of iterations (an int), got {value!r}")
    return int(value)


@exercise_check("CGLS stopped by the discrepancy principle")
def cgls_discrepancy(my_cgls_discrepancy):
    """Check ``my_cgls_discrepancy(A, y, delta, tau, max_iter) -> (x_k, k)``.

    k is the first iteration (1-based) with ||y - A x_k|| <= tau * delta, or max_iter if
    none; x_k is CGLS's k-th iterate from the zero image.  Cases: a stop in the middle,
    the same data with tau = 1.5 (an earlier stop), and a level never reached.
    """
    gen = torch.Generator().manual_seed(4)
    A = _radon(8, 6, 13)
    x_true = torch.rand(A.domain_shape, generator=gen, dtype=torch.float64)
    clean = A(x_true)
    noise = torch.randn(clean.shape, generator=gen, dtype=torch.float64)
    noise = 0.05 * float(torch.linalg.vector_norm(clean)) * noise \
        / torch.linalg.vector_norm(noise)
    y = clean + noise
    delta = float(torch.linalg.vector_norm(noise))
    cases = [(delta, 1.0, 40, "a stop in the middle (tau = 1)"),
             (delta, 1.5, 40, "the same data with tau = 1.5"),
             (1e-9 * delta, 1.0, 6, "a level that is never reached (max_iter = 6)")]
    paths = {variant: _cgls_path(A, y, 40, variant)
             for variant in ("cgls", "steepest", "inverted")}
    for level_delta, tau, max_iter, description in cases:
        what = f"for {description}, my_cgls_discrepancy(A, y, delta, tau={tau}, " \
               f"max_iter={max_iter})"
        y_before = y.clone()
        got = my_cgls_discrepancy(A, y, level_delta, tau, max_iter)
        expect(torch.equal(y, y_before), "your function changed the data y in place; "
                                         "leave y as it is")
        if got is None:
            raise CheckFailed(f"{what} is None — did you forget a `return`? Return the "
                              f"pair (x, k)")
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise CheckFailed(f"{what} should return a pair (x, k): the image and the "
                              f"number of iterations run")
        x_got, k_got = got[0], _as_count(got[1], f"{what}: k")
        iterates, misfits = paths["cgls"]
        k = min(_first_within(misfits[:max_iter], tau * level_delta), max_iter)
        if x_got is None:
            raise CheckFailed(f"{what} returned no image (None) as x")
        x_ok = _close(x_got, iterates[k - 1], rtol=1e-4, atol=1e-8)
        if x_ok and k_got == k:
            continue
        message = f"{what}: expected the iterate of iteration k = {k}"
        if x_ok:
            if k_got == k - 1:
                raise CheckFailed(f"{message}, and your image is right but you report "
                                  f"k = {k_got}: k is the number of iterations run "
                                  f"(1-based), not a 0-based index")
            raise CheckFailed(f"{message}; your image is right but you report k = {k_got}")
        for variant, explanation in (
                ("steepest", "your search directions are not conjugate (that is steepest "
                             "descent): p_(k+1) = s_(k+1) + β_k p_k with "
                             "β_k = γ_(k+1) / γ_k"),
                ("inverted", "β is upside down: β_k = γ_(k+1) / γ_k, the new squared "
                             "gradient norm over the old one")):
            wrong_iterates, _ = paths[variant]
            if any(_close(x_got, w, rtol=1e-4, atol=1e-8) for w in wrong_iterates[:max_iter]):
                raise CheckFailed(f"{message}: {explanation}")
        for j, iterate in enumerate(iterates[:max_iter], start=1):
            if _close(x_got, iterate, rtol=1e-4, atol=1e-8):
                if j == max_iter and k < max_iter:
                    raise CheckFailed(f"{message}; you ran all {max_iter} iterations: stop "
                                      f"at the first one whose misfit ‖y − A x_k‖ is "
                                      f"≤ tau · delta")
                if tau != 1.0 and j == _first_within(misfits[:max_iter], level_delta):
                    raise CheckFailed(f"{message}; you stopped at iteration {j}, where the "
                                      f"misfit reaches delta: compare it with tau · delta "
                                      f"(you forgot the factor tau)")
                if j == k + 1:
                    raise CheckFailed(f"{message}; you stopped one iteration late: test the "
                                      f"misfit of x_k right after its update (‖r_k‖ is "
                                      f"that misfit)")
                if j == k - 1:
                    raise CheckFailed(f"{message}; you stopped one iteration early: the "
                                      f"misfit of iteration {j} is still above "
                                      f"tau · delta")
                raise CheckFailed(f"{message}; you returned CGLS's iterate {j}: stop at the "
                                  f"first k with ‖y − A x_k‖ ≤ tau · delta")
        compare_arrays(x_got, iterates[k - 1], what=f"{what}: x", rtol=1e-4, atol=1e-8)
    return "a stop in the middle, a safety factor tau and a level never reached"
