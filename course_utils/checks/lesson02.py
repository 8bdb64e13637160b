"""Checks for the exercises of lesson 02: the system matrix and iterative reconstruction.

Each check tries the learner's function on small problems it makes up, compares with
values computed here and, when the answer is wrong, recognises the usual mistakes
(transposed matrix, pixels in column-major order, a sign error in the gradient step,
a missing sensitivity normalisation, ...) and says which one it is.
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

__all__ = ["system_matrix", "landweber_step", "mlem_update", "discrepancy_principle"]


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


# --- Exercise 2: one Landweber step ----------------------------------------------------------

@exercise_check("one Landweber step")
def landweber_step(my_landweber_step):
    """Check ``my_landweber_step(x, A, y, step)`` = x + step * A^T (y - A x)."""
    gen = torch.Generator().manual_seed(2)
    # A square, non-symmetric matrix: using A instead of A.T gives a different answer
    # instead of a shape error.
    square = MatrixOperator(torch.randn(16, 16, generator=gen, dtype=torch.float64),
                            (4, 4), (4, 4))
    radon = _radon(8, 6, 13)
    cases = [(square, 0.05), (radon, None)]
    for A, step in cases:
        x = torch.rand(A.domain_shape, generator=gen, dtype=torch.float64)
        y = A(torch.rand(A.domain_shape, generator=gen, dtype=torch.float64))
        y = y + 0.1 * torch.randn(y.shape, generator=gen, dtype=torch.float64)
        if step is None:
            step = 1.0 / A.norm() ** 2
        x_before = x.clone()
        what = f"my_landweber_step(x, A, y, step={step:.3g})"
        got = my_landweber_step(x, A, y, step)
        expect(torch.equal(x, x_before),
               "your function changed its input x in place (e.g. `x += ...`); return a "
               "new image instead (`x_new = x + ...`) so the caller's x stays as it was")
        if got is None:
            raise CheckFailed(f"{what} is None — did you forget a `return`?")
        gradient_step = A.T(y - A(x))
        mistakes = [
            ("your step goes uphill: it adds the gradient of ½‖Ax − y‖² instead of "
             "subtracting it. The update is x + step·Aᵀ(y − A x) "
             "= x − step·Aᵀ(A x − y)",
             x - step * gradient_step),
            ("you returned only the update step·Aᵀ(y − A x); add it to the current image x",
             step * gradient_step),
            ("you ignored `step`: multiply Aᵀ(y − A x) by the step size",
             x + gradient_step),
            ("the residual is y − A x: you forgot to subtract A x (or used A x alone)",
             x + step * A.T(y)),
        ]
        if A.domain_shape == A.range_shape:
            mistakes.append(("you applied A instead of its transpose to the residual: the "
                             "residual lives in data space and A.T brings it back to images",
                             x + step * A(y - A(x))))
        _known_mistake(got, mistakes)
        expected = x + step * gradient_step
        if isinstance(got, torch.Tensor) and got.shape == expected.shape:
            update = (got.detach().double() - x)
            c = float((update * (expected - x)).sum() / ((expected - x) ** 2).sum())
            if abs(c - 1) > 1e-3 and torch.allclose(update, c * (expected - x), rtol=1e-5,
                                                    atol=1e-8):
                raise CheckFailed(f"your update is {c:.4g} times the expected one: use the "
                                  f"step size exactly once, x + step·Aᵀ(y − A x)")
        compare_arrays(got, expected, what=what, rtol=1e-5, atol=1e-8)
    return "a square matrix and a Radon transform"


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


# --- Exercise 4: the discrepancy principle ---------------------------------------------------

def _as_index(value, what):
    """An integer index from an int, NumPy integer or 0-dim integer tensor."""
    if value is None:
        raise CheckFailed(f"{what} is None — did you forget a `return`? (Return the "
                          f"index of the chosen candidate, an int.)")
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise CheckFailed(f"{what} should be one index (an int), got a tensor of shape "
                              f"{tuple(value.shape)}")
        value = value.item()
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise CheckFailed(f"{what} should be an int (an index), got {type(value).__name__}")
    if not float(value).is_integer():
        raise CheckFailed(f"{what} should be an index (a whole number), got {value}")
    return int(value)


@exercise_check("the discrepancy principle")
def discrepancy_principle(my_discrepancy_principle):
    """Check ``my_discrepancy_principle(residual_norms, noise_norm, tau)`` -> index."""
    # (residual norms from most to least regularised, noise norm, tau, description)
    cases = [
        ([10.0, 8.0, 6.0, 4.5, 3.9, 3.5, 3.2, 3.0], 4.0, 1.0, "a decreasing residual"),
        (torch.tensor([10.0, 8.0, 6.0, 4.5, 3.9, 3.5, 3.2, 3.0]), 4.0, 1.2,
         "a safety factor tau = 1.2"),
        ([9.0, 5.0, 3.5, 4.2, 3.0, 2.5], 4.0, 1.0, "a residual that goes up and down"),
        ([3.0, 2.0, 1.0], 4.0, 1.0, "a first candidate that already fits"),
        (np.array([12.0, 9.0, 6.0, 5.0]), 4.0, 1.0, "no candidate that fits"),
        ([7.0, 4.0, 3.0, 2.0], 4.0, 1.0, "a residual exactly at the noise level"),
    ]
    for residuals, noise_norm, tau, description in cases:
        values = [float(r) for r in residuals]
        level = tau * noise_norm
        fits = [k for k, r in enumerate(values) if r <= level]
        expected = fits[0] if fits else len(values) - 1
        what = f"for {description}, my_discrepancy_principle(...)"
        got = my_discrepancy_principle(residuals, noise_norm, tau)
        if got is None and not fits:
            raise CheckFailed(f"{what} returned None: when no candidate reaches the noise "
                              f"level, return the last index, len(residual_norms) - 1 "
                              f"(the least regularised candidate)")
        got = _as_index(got, what)
        if got == expected:
            continue
        message = f"{what} returned {got}, expected {expected}"
        if not fits and got in (-1, len(values)):
            raise CheckFailed(f"{message}: when no candidate reaches the noise level, "
                              f"return the last index, len(residual_norms) - 1 (the "
                              f"least regularised candidate)")
        untaued = [k for k, r in enumerate(values) if r <= noise_norm]
        if tau != 1.0 and untaued and got == untaued[0]:
            raise CheckFailed(f"{message}: compare the residual with tau · noise_norm, "
                              f"you forgot the factor tau")
        if fits and got == fits[-1]:
            raise CheckFailed(f"{message}: you picked the LAST candidate that fits; the "
                              f"principle picks the FIRST one (the most regularised that "
                              f"still explains the data to within the noise)")
        if got == int(np.argmin(values)):
            raise CheckFailed(f"{message}: that is the smallest residual, which fits the "
                              f"noise too; stop at the first residual ≤ tau · noise_norm")
        strict = [k for k, r in enumerate(values) if r < level]
        if strict and got == strict[0]:
            raise CheckFailed(f"{message}: a residual equal to tau · noise_norm counts as "
                              f"fitting the data (use ≤, not <)")
        if got == expected + 1:
            raise CheckFailed(f"{message}: off by one — return the 0-based position in "
                              f"the list, not a count from 1")
        if got == expected - 1:
            raise CheckFailed(f"{message}: that is the candidate just before the first "
                              f"one whose residual is ≤ tau · noise_norm")
        raise CheckFailed(f"{message}: return the index of the first residual that is "
                          f"≤ tau · noise_norm")
    return f"{len(cases)} cases"
