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


# --- Exercise 2: Landweber with a chosen step size -------------------------------------------


def test_landweber_accepts_reference_and_other_correct_loops():
    assert lesson02.landweber(ref.landweber)

    def exact_norm_and_gradient_form(A, y, n_iter):
        # the step from the exact spectral norm of the matrix, the update as x - w grad f
        L = float(torch.linalg.matrix_norm(A.to_matrix().to_dense().double(), 2)) ** 2
        x = A.T(y) * 0
        for _ in range(n_iter):
            x = x - (1 / L) * A.T(A(x) - y)
        return x

    assert lesson02.landweber(exact_norm_and_gradient_form)

    def with_residual_recursion(A, y, n_iter):
        # keeps the residual r = y - A x up to date: r <- r - w A A^T r
        w = 1.0 / A.norm() ** 2
        x, r = torch.zeros(A.domain_shape, dtype=y.dtype), y.clone()
        for _ in range(n_iter):
            g = A.T(r)
            x = x + w * g
            r = r - w * A(g)
        return x

    assert lesson02.landweber(with_residual_recursion)


def loop(n_steps, step_of_norm, start=None, back="T"):
    def landweber(A, y, n_iter):
        x = torch.zeros(A.domain_shape, dtype=y.dtype) if start is None else start(A, y)
        w = step_of_norm(A.norm())
        for _ in range(n_steps(n_iter)):
            x = x + w * (A.T if back == "T" else A)(y - A(x))
        return x
    return landweber


@pytest.mark.parametrize("wrong, diagnosis", [
    (loop(lambda n: n, lambda a: 1 / a), "1/‖A‖ is not"),
    (loop(lambda n: n, lambda a: 2 / a**2), "stability limit"),
    (loop(lambda n: n, lambda a: -1 / a**2), "uphill"),
    (loop(lambda n: n - 1, lambda a: 1 / a**2), "steps instead of"),
    (loop(lambda n: n, lambda a: 1 / a**2, start=lambda A, y: A.T(y)), "backprojection"),
    (loop(lambda n: n, lambda a: 1 / a**2, back="A"), "instead of its transpose"),
    (loop(lambda n: n, lambda a: 20 / a**2), "blew up"),
    (lambda A, y, n_iter: None, "return"),
])
def test_landweber_diagnoses_mistakes(wrong, diagnosis):
    result, line = run(lesson02.landweber, wrong)
    assert result.status == "failed" and diagnosis in line, line


def test_landweber_stub_not_attempted():
    assert lesson02.landweber(stub).status == "not attempted"


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


# --- Exercise 4: CGLS stopped by the discrepancy principle ---------------------------------


def test_cgls_discrepancy_accepts_reference_and_other_correct_forms():
    assert lesson02.cgls_discrepancy(ref.cgls_discrepancy)

    def with_cu_cgls_and_explicit_misfit(A, y, delta, tau=1.0, max_iter=100):
        # one CGLS iteration at a time via the course's cgls (warm start), misfit computed
        found = []

        def watch(k, x):
            if not found and float(torch.linalg.vector_norm(y - A(x))) <= tau * delta:
                found.append((x.clone(), k))

        x = cu.cgls(A, y, max_iter, callback=watch)
        return found[0] if found else (x, max_iter)

    assert lesson02.cgls_discrepancy(with_cu_cgls_and_explicit_misfit)

    def while_loop_numpy_norms(A, y, delta, tau=1.0, max_iter=100):
        x = torch.zeros(A.domain_shape, dtype=y.dtype)
        r = y - A(x)
        s = A.T(r)
        p, gamma, k = s, float(np.sum(s.numpy() ** 2)), 0
        while k < max_iter:
            k += 1
            q = A(p)
            alpha = gamma / float(np.sum(q.numpy() ** 2))
            x, r = x + alpha * p, r - alpha * q
            if np.linalg.norm(r.numpy()) <= tau * delta:
                break
            s = A.T(r)
            gamma_new = float(np.sum(s.numpy() ** 2))
            p, gamma = s + (gamma_new / gamma) * p, gamma_new
        return x, torch.tensor(k)

    assert lesson02.cgls_discrepancy(while_loop_numpy_norms)


def cgls_variant(beta_rule="cgls", stop="first", use_tau=True, k_offset=0):
    def solve(A, y, delta, tau=1.0, max_iter=100):
        x = torch.zeros(A.domain_shape, dtype=y.dtype)
        r = y.clone()
        s = A.T(r)
        p, gamma = s, (s * s).sum()
        level = (tau if use_tau else 1.0) * delta
        passed = False
        for k in range(1, max_iter + 1):
            q = A(p)
            alpha = gamma / (q * q).sum()
            x, r = x + alpha * p, r - alpha * q
            if passed or (stop == "first" and torch.linalg.vector_norm(r) <= level):
                return x, k + k_offset
            passed = stop == "late" and bool(torch.linalg.vector_norm(r) <= level)
            s = A.T(r)
            gamma_new = (s * s).sum()
            beta = {"cgls": gamma_new / gamma, "steepest": 0.0,
                    "inverted": gamma / gamma_new}[beta_rule]
            p, gamma = s + beta * p, gamma_new
        return x, max_iter + k_offset
    return solve


@pytest.mark.parametrize("wrong, diagnosis", [
    (cgls_variant(stop="never"), "you ran all"),
    (cgls_variant(stop="late"), "one iteration late"),
    (cgls_variant(use_tau=False), "factor tau"),
    (cgls_variant(beta_rule="steepest"), "not conjugate"),
    (cgls_variant(beta_rule="inverted"), "upside down"),
    (cgls_variant(k_offset=-1), "0-based"),
    (lambda A, y, delta, tau=1.0, max_iter=100: ref.cgls_discrepancy(A, y, delta, tau,
                                                                    max_iter)[0], "pair"),
    (lambda A, y, delta, tau=1.0, max_iter=100: None, "return"),
])
def test_cgls_discrepancy_diagnoses_mistakes(wrong, diagnosis):
    result, line = run(lesson02.cgls_discrepancy, wrong)
    assert result.status == "failed" and diagnosis in line, line


def test_cgls_discrepancy_stub_not_attempted():
    assert lesson02.cgls_discrepancy(stub).status == "not attempted"


def test_checks_are_public():
    for name in ("system_matrix", "landweber", "mlem_update", "cgls_discrepancy"):
        assert callable(getattr(cu.checks, name))
