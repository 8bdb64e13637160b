"""The checks of lesson 02 accept the reference answers and diagnose typical mistakes."""

import math

import numpy as np
import pytest
import torch

import course_utils as cu
from course_utils.checks import lesson02
from lesson_references import reference

# The reference answers, from solutions/02_system_matrix.py (see lesson_references.py).
ref = reference("02")


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise: replace this line with your code")


def run(check, fn):
    """The check's result and its feedback line."""
    result = check(fn)
    return result, result.line


# --- Exercise 1: the system matrix --------------------------------------------------------


def test_system_matrix_accepts_reference_and_sparse_and_loop():
    assert lesson02.system_matrix(ref.system_matrix)
    assert lesson02.system_matrix(lambda A: ref.system_matrix(A).to_sparse())

    def one_pixel_at_a_time(A):   # Reader's loop, in float64
        n = A.domain_shape[0]
        columns = []
        for row in range(n):
            for col in range(n):
                e = torch.zeros(n, n, dtype=torch.float64)
                e[row, col] = 1.0
                columns.append(A(e).flatten())
        return torch.stack(columns, dim=1)

    assert lesson02.system_matrix(one_pixel_at_a_time)


@pytest.mark.parametrize("wrong, diagnosis", [
    (lambda A: ref.system_matrix(A).T, "transposed"),
    (lambda A: ref.system_matrix(A)[:, torch.arange(math.prod(A.domain_shape)).reshape(
        A.domain_shape).T.reshape(-1)], "column-major"),
    (lambda A: 2 * ref.system_matrix(A), "constant factor"),
    (lambda A: ref.system_matrix(A).reshape(*A.range_shape, -1).transpose(0, 1).reshape(
        -1, math.prod(A.domain_shape)), "rows are in the wrong order"),
    (lambda A: None, "return"),
    (lambda A: ref.system_matrix(A).reshape(*A.range_shape, -1), "shape"),
])
def test_system_matrix_diagnoses_mistakes(wrong, diagnosis):
    result, line = run(lesson02.system_matrix, wrong)
    assert result.status == "failed" and diagnosis in line, line


def test_system_matrix_stub_not_attempted():
    assert lesson02.system_matrix(stub).status == "not attempted"


# --- Exercise 2: the Landweber step -----------------------------------------------------


def test_landweber_step_accepts_reference_and_numpy_like_forms():
    assert lesson02.landweber_step(ref.landweber_step)
    assert lesson02.landweber_step(lambda x, A, y, step: x - step * A.T(A(x) - y))


@pytest.mark.parametrize("wrong, diagnosis", [
    (lambda x, A, y, step: x - step * A.T(y - A(x)), "uphill"),
    (lambda x, A, y, step: x + step * A(y - A(x)), "instead of its transpose"),
    (lambda x, A, y, step: step * A.T(y - A(x)), "only the update"),
    (lambda x, A, y, step: x + A.T(y - A(x)), "ignored `step`"),
    (lambda x, A, y, step: x + 2 * step * A.T(y - A(x)), "2 times"),
    (lambda x, A, y, step: x + step * A.T(y), "forgot to subtract A x"),
])
def test_landweber_step_diagnoses_mistakes(wrong, diagnosis):
    result, line = run(lesson02.landweber_step, wrong)
    assert result.status == "failed" and diagnosis in line, line


def test_landweber_step_in_place_is_flagged():
    def in_place(x, A, y, step):
        x += step * A.T(y - A(x))
        return x

    result, line = run(lesson02.landweber_step, in_place)
    assert result.status == "failed" and "in place" in line, line


def test_landweber_step_stub_not_attempted():
    assert lesson02.landweber_step(stub).status == "not attempted"


# --- Exercise 3: the MLEM update --------------------------------------------------------


def test_mlem_update_accepts_reference_and_epsilon_guards():
    assert lesson02.mlem_update(ref.mlem_update)

    def with_epsilons(x, A, y, sensitivity):   # as in Reader's workshop code
        ratio = y / (A(x) + 1e-9)
        return x * A.T(ratio) / (sensitivity + 1e-9)

    assert lesson02.mlem_update(with_epsilons)


def test_mlem_first_case_sees_every_ray_and_pixel():
    A = cu.RadonTransform(image_size=8, geometry=cu.ParallelBeam(n_angles=6, n_detectors=9))
    assert bool((A(torch.ones(8, 8)) > 0).all()) and bool((A.T(torch.ones(6, 9)) > 0).all())


@pytest.mark.parametrize("wrong, diagnosis", [
    (lambda x, A, y, s: x * A.T(y / A(x).clamp(min=1e-12)), "not normalised"),
    (lambda x, A, y, s: x + A.T(y / A(x).clamp(min=1e-12)) / s.clamp(min=1e-12),
     "multiplicative"),
    (lambda x, A, y, s: x + A.T(y - A(x)) / s.clamp(min=1e-12), "additive"),
    (lambda x, A, y, s: x * s * A.T(y / A(x).clamp(min=1e-12)), "instead of dividing"),
    (lambda x, A, y, s: x / s * A.T(y / A(x)), "NaN or inf"),
    (lambda x, A, y, s: x / s.clamp(min=1e-12) * A.T(A(x) / y), "upside down"),
])
def test_mlem_update_diagnoses_mistakes(wrong, diagnosis):
    result, line = run(lesson02.mlem_update, wrong)
    assert result.status == "failed" and diagnosis in line, line


def test_mlem_update_stub_not_attempted():
    assert lesson02.mlem_update(stub).status == "not attempted"


# --- Exercise 4: the discrepancy principle ------------------------------------------------


def test_discrepancy_principle_accepts_reference_and_vectorised_form():
    assert lesson02.discrepancy_principle(ref.discrepancy_principle)

    def vectorised(residual_norms, noise_norm, tau=1.0):
        fits = np.flatnonzero(np.asarray(residual_norms, dtype=float) <= tau * noise_norm)
        return torch.tensor(fits[0] if len(fits) else len(residual_norms) - 1)

    assert lesson02.discrepancy_principle(vectorised)


def last_fit(r, delta, tau=1.0):
    fits = [k for k, v in enumerate(r) if v <= tau * delta]
    return fits[-1] if fits else len(r) - 1


def first_strict(r, delta, tau=1.0):
    fits = [k for k, v in enumerate(r) if v < tau * delta]
    return fits[0] if fits else len(r) - 1


@pytest.mark.parametrize("wrong, diagnosis", [
    (lambda r, d, tau=1.0: ref.discrepancy_principle(r, d, tau) + 1, "off by one"),
    (last_fit, "LAST"),
    (lambda r, d, tau=1.0: ref.discrepancy_principle(r, d, 1.0), "factor tau"),
    (lambda r, d, tau=1.0: next((k for k, v in enumerate(r) if v <= tau * d), None),
     "last index"),
    (first_strict, "use ≤"),
    (lambda r, d, tau=1.0: None, "return"),
    (lambda r, d, tau=1.0: float(ref.discrepancy_principle(r, d, tau)) + 0.5,
     "whole number"),
])
def test_discrepancy_principle_diagnoses_mistakes(wrong, diagnosis):
    result, line = run(lesson02.discrepancy_principle, wrong)
    assert result.status == "failed" and diagnosis in line, line


def test_discrepancy_principle_stub_not_attempted():
    assert lesson02.discrepancy_principle(stub).status == "not attempted"


def test_checks_are_public():
    for name in ("system_matrix", "landweber_step", "mlem_update", "discrepancy_principle"):
        assert callable(getattr(cu.checks, name))
