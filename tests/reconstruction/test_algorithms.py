"""Tests of course_utils.reconstruction.algorithms: Landweber, SIRT, CGLS, MLEM, TV-PDHG and TV helpers."""

import math

import numpy as np
import pytest
import torch

import course_utils as cu
from course_utils.reconstruction import algorithms as alg


# --- a tiny problem we fully control ------------------------------------------------------
def tiny_projector(n=12, n_angles=36, n_detectors=17):
    """Pixel-driven parallel-beam projector as an explicit matrix (linear interpolation)."""
    c = np.arange(n) - (n - 1) / 2
    X, Y = np.meshgrid(c, -c)
    M = np.zeros((n_angles, n_detectors, n * n))
    pixels = np.arange(n * n)
    for a, theta in enumerate(np.linspace(0, np.pi, n_angles, endpoint=False)):
        u = (X * np.cos(theta) + Y * np.sin(theta)).ravel() + (n_detectors - 1) / 2
        lower = np.floor(u).astype(int)
        w = u - lower
        for bin_, weight in ((lower, 1 - w), (lower + 1, w)):
            inside = (bin_ >= 0) & (bin_ < n_detectors)
            np.add.at(M[a], (bin_[inside], pixels[inside]), weight[inside])
    return cu.MatrixOperator(torch.from_numpy(M.reshape(-1, n * n)), (n, n),
                             (n_angles, n_detectors))


def disc_and_square(n):
    """A disc of value 1 and a square of value 0.5 on a zero background, (n, n) float64."""
    c = (np.arange(n) - (n - 1) / 2) / n
    X, Y = np.meshgrid(c, -c)
    image = np.where((X + 0.2) ** 2 + Y**2 < 0.28**2, 1.0, 0.0)
    image[(np.abs(X - 0.2) < 0.15) & (np.abs(Y + 0.1) < 0.2)] = 0.5
    return torch.from_numpy(image)


def relative_error(x, reference):
    return float(torch.linalg.vector_norm(x - reference) / torch.linalg.vector_norm(reference))


def psnr(x, reference):
    mse = float(torch.mean((x - reference) ** 2))
    data_range = float(reference.max() - reference.min())
    return 10 * math.log10(data_range**2 / mse)


@pytest.fixture(scope="module")
def problem():
    A = tiny_projector()
    x_true = disc_and_square(12)
    y = A(x_true)
    gen = torch.Generator().manual_seed(0)
    y_noisy = y + 0.3 * torch.randn(y.shape, generator=gen, dtype=y.dtype)
    return A, x_true, y, y_noisy


def record(objective):
    """A callback that stores objective(x) after every iteration, and its list."""
    values = []

    def callback(k, x):
        assert k == len(values) + 1
        values.append(float(objective(x)))

    return callback, values


# --- objectives decrease ------------------------------------------------------------------
@pytest.mark.parametrize("method, kwargs", [
    (cu.landweber, {}),
    (cu.landweber, {"nonneg": True}),
    (cu.sirt, {}),
    (cu.sirt, {"nonneg": False}),
    (cu.cgls, {}),
])
def test_least_squares_objective_decreases(problem, method, kwargs):
    A, _, _, y = problem
    if method is cu.sirt:  # SIRT descends the ray-weighted least squares
        row_sums = A(torch.ones(A.domain_shape, dtype=y.dtype))
        R = torch.where(row_sums > 0, 1 / row_sums, 0.0)  # corner bins see no pixel

        def objective(x):
            return 0.5 * torch.sum(R * (A(x) - y) ** 2)
    else:
        def objective(x):
            return 0.5 * torch.sum((A(x) - y) ** 2)

    callback, values = record(objective)
    method(A, y, 30, callback=callback, **kwargs)
    values = [float(objective(torch.zeros(A.domain_shape, dtype=y.dtype)))] + values
    assert len(values) == 31
    assert all(b <= a * (1 + 1e-12) for a, b in zip(values, values[1:]))
    assert values[-1] < 0.1 * values[0]


def test_mlem_decreases_poisson_negative_log_likelihood(problem):
    A, x_true, _, _ = problem
    gen = torch.Generator().manual_seed(1)
    counts = torch.poisson(20 * A(x_true), generator=gen)

    def nll(x):
        Ax = A(x)
        return torch.sum(Ax - torch.xlogy(counts, Ax))  # 0 log 0 = 0 on empty rays

    callback, values = record(nll)
    x = cu.mlem(A, counts, 30, callback=callback)
    values = [float(nll(torch.ones(A.domain_shape, dtype=counts.dtype)))] + values
    assert all(b <= a + 1e-9 * abs(a) for a, b in zip(values, values[1:]))
    assert values[-1] < values[0]
    assert bool((x >= 0).all())


def test_tv_pdhg_decreases_objective_to_its_minimum(problem):
    A, _, _, y = problem
    lam = 2.0

    def objective(x):
        return 0.5 * torch.sum((A(x) - y) ** 2) + lam * cu.total_variation(x)

    callback, values = record(objective)
    x = cu.tv_pdhg(A, y, 300, lam=lam, callback=callback)
    start = float(objective(torch.zeros(A.domain_shape, dtype=y.dtype)))
    # PDHG is not monotone step by step, but it settles at the minimum: compare with a
    # ten times longer run, and check that the tail hardly moves.
    minimum = float(objective(cu.tv_pdhg(A, y, 3000, lam=lam)))
    assert values[-1] < 0.1 * start
    assert values[-1] <= minimum * (1 + 1e-3)
    assert max(values[-50:]) <= minimum * (1 + 1e-2)
    assert bool((x >= 0).all())


def test_landweber_diverges_beyond_two_over_norm_squared(problem):
    A, _, _, y = problem
    callback, values = record(lambda x: torch.sum((A(x) - y) ** 2))
    cu.landweber(A, y, 50, step=2.2 / A.norm() ** 2, callback=callback)
    assert values[-1] > 10 * values[0]


# --- recovery from clean data -------------------------------------------------------------
# Relative errors measured on this 12 x 12 problem (condition number ~200):
# landweber 0.102, sirt 0.058, mlem 0.056 after 400 iterations; cgls exact after 200;
# tv_pdhg (lam = 1e-3) 1e-4 after 400.
@pytest.mark.parametrize("method, options, n_iter, tolerance", [
    (cu.landweber, {}, 400, 0.13),
    (cu.sirt, {}, 400, 0.08),
    (cu.cgls, {}, 250, 1e-6),
    (cu.mlem, {}, 400, 0.08),
    (cu.tv_pdhg, {"lam": 1e-3}, 400, 1e-2),
])
def test_recovers_phantom_from_clean_data(problem, method, options, n_iter, tolerance):
    A, x_true, y, _ = problem
    x = method(A, y, n_iter, **options)
    assert relative_error(x, x_true) < tolerance


def _radon_available():
    return hasattr(cu, "RadonTransform") and hasattr(cu, "ParallelBeam")


@pytest.fixture(scope="module")
def radon_problem():
    """Built once: the operator caches its matrix and its norm."""
    A = cu.RadonTransform(image_size=32, geometry=cu.ParallelBeam(n_angles=45, n_detectors=47))
    x_true = disc_and_square(32)
    return A, x_true, A(x_true)


# PSNR (dB) measured at image size 32, 45 angles, 47 detectors: landweber 25.4,
# sirt 27.6, cgls 30.6 (30.2 in float32), mlem 27.7, tv_pdhg 65 (TV suits this
# piecewise-constant phantom).  The thresholds leave about 1 dB of margin.
@pytest.mark.skipif(not _radon_available(), reason="cu.RadonTransform not written yet")
@pytest.mark.parametrize("method, options, n_iter, min_psnr", [
    (cu.landweber, {}, 100, 24.0),
    (cu.sirt, {}, 100, 26.5),
    (cu.cgls, {}, 30, 29.0),
    (cu.mlem, {}, 100, 26.5),
    (cu.tv_pdhg, {"lam": 0.05}, 200, 50.0),
])
def test_radon_reconstruction_quality(radon_problem, method, options, n_iter, min_psnr):
    A, x_true, y = radon_problem
    x = method(A, y, n_iter, **options)
    assert x.shape == (32, 32)
    assert psnr(x, x_true) > min_psnr


# --- gradient, divergence, total variation ------------------------------------------------
@pytest.mark.parametrize("shape", [(7, 9), (2, 3, 5, 4), (1, 6), (6, 1)])
def test_gradient_and_divergence_are_negative_adjoints(shape):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=gen, dtype=torch.float64)
    g = torch.randn(*shape[:-2], 2, *shape[-2:], generator=gen, dtype=torch.float64)
    lhs = torch.sum(cu.image_gradient(x) * g)
    rhs = -torch.sum(x * cu.image_divergence(g))
    assert abs(float(lhs - rhs)) < 1e-12


def test_gradient_values_and_total_variation():
    H, W = 4, 5
    ramp = torch.arange(W, dtype=torch.float64).expand(H, W)  # x[i, j] = j
    grad = cu.image_gradient(ramp)
    assert grad.shape == (2, H, W)
    assert torch.allclose(grad[0], torch.zeros(H, W, dtype=torch.float64))  # no vertical change
    assert torch.allclose(grad[1, :, :-1], torch.ones(H, W - 1, dtype=torch.float64))
    assert torch.allclose(grad[1, :, -1], torch.zeros(H, dtype=torch.float64))  # Neumann
    assert float(cu.total_variation(ramp)) == pytest.approx(H * (W - 1))

    # isotropic: a diagonal step of one pixel has gradient length sqrt(2)
    corner = torch.zeros(3, 3, dtype=torch.float64)
    corner[1, 1] = 1.0
    assert float(cu.total_variation(corner)) == pytest.approx(math.sqrt(2) + 2)

    batch = torch.stack([ramp, 2 * ramp, torch.zeros(H, W, dtype=torch.float64)])
    tv = cu.total_variation(batch)
    assert tv.shape == (3,)
    assert torch.allclose(tv, torch.tensor([1.0, 2.0, 0.0], dtype=torch.float64) * H * (W - 1))


def test_total_variation_is_differentiable_at_flat_images():
    x = torch.ones(6, 6, dtype=torch.float64, requires_grad=True)
    cu.total_variation(x).backward()
    assert torch.isfinite(x.grad).all()
    assert torch.allclose(x.grad, torch.zeros(6, 6, dtype=torch.float64))


# --- batching, conventions, NumPy -----------------------------------------------------------
ALL_METHODS = [
    (cu.landweber, {}),
    (cu.sirt, {}),
    (cu.cgls, {}),
    (cu.mlem, {}),
    (cu.tv_pdhg, {"lam": 0.5}),
]


@pytest.mark.parametrize("method, options", ALL_METHODS)
def test_batch_of_two_equals_two_single_calls(problem, method, options):
    A, x_true, y, _ = problem
    y_batch = torch.stack([y, A(x_true.flip(-1) * 0.7)])
    # CGLS on this ill-conditioned matrix amplifies rounding differences (a batched
    # matmul sums in another order) to 1e-4 around iteration 15, so compare earlier.
    n_iter = 8 if method is cu.cgls else 15
    x_batch = method(A, y_batch, n_iter, **options)
    assert x_batch.shape == (2, *A.domain_shape)
    for i in range(2):
        single = method(A, y_batch[i], n_iter, **options)
        assert torch.allclose(x_batch[i], single, rtol=1e-8, atol=1e-9)


def test_cgls_item_that_converged_stays_finite(problem):
    A, x_true, y, _ = problem
    y_batch = torch.stack([y, torch.zeros_like(y)])  # second item: x = 0 solves it at once
    x = cu.cgls(A, y_batch, 160)
    assert torch.isfinite(x).all()
    assert torch.allclose(x[1], torch.zeros(A.domain_shape, dtype=y.dtype))
    assert relative_error(x[0], x_true) < 1e-6  # also converged: no 0 / 0 after that


@pytest.mark.parametrize("method, options", ALL_METHODS)
def test_numpy_in_numpy_out(problem, method, options):
    A, _, y, _ = problem
    x_np = method(A, y.numpy(), 5, **options)
    assert isinstance(x_np, np.ndarray)
    assert x_np.shape == A.domain_shape
    np.testing.assert_allclose(x_np, method(A, y, 5, **options).numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("method, options", ALL_METHODS)
def test_dtype_follows_y_and_callback_sees_every_iteration(problem, method, options):
    A, _, y, _ = problem
    seen = []
    x = method(A, y.float(), 4, **options,
               callback=lambda k, x: seen.append((k, x.shape, x.dtype)))
    assert x.dtype == torch.float32
    assert seen == [(k, torch.Size(A.domain_shape), torch.float32) for k in (1, 2, 3, 4)]


@pytest.mark.parametrize("method, options", ALL_METHODS)
def test_x0_is_used_and_not_modified(problem, method, options):
    A, x_true, y, _ = problem
    x0 = x_true.clone()
    first = []
    method(A, y, 1, **options, x0=x0, callback=lambda k, x: first.append(x))
    assert torch.equal(x0, x_true)
    # starting at the solution of clean data, one step stays close to it
    assert relative_error(first[0], x_true) < 0.05


def test_progress_bar_gives_the_same_result(problem):
    A, _, y, _ = problem
    assert torch.allclose(cu.sirt(A, y, 3, progress=True), cu.sirt(A, y, 3))


def test_sirt_and_mlem_guard_unseen_pixels_and_empty_rays():
    # pixel 2 is seen by no ray, ray 3 sees no pixel
    M = torch.tensor([[1.0, 1.0, 0.0], [0.0, 2.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
                     dtype=torch.float64)
    A = cu.MatrixOperator(M, (3,), (4,))
    x_true = torch.tensor([1.0, 2.0, 5.0], dtype=torch.float64)
    y = A(x_true)
    x = cu.sirt(A, y, 200, x0=torch.full((3,), 7.0, dtype=torch.float64))
    assert torch.isfinite(x).all()
    assert torch.allclose(x[:2], x_true[:2], atol=1e-6)
    assert float(x[2]) == pytest.approx(7.0, abs=1e-12)  # weight 0: keeps its start value
    x = cu.mlem(A, y, 200)
    assert torch.isfinite(x).all()
    assert torch.allclose(x[:2], x_true[:2], atol=1e-4)
    assert float(x[2]) == pytest.approx(0.0, abs=1e-12)


# --- bad input ------------------------------------------------------------------------------
@pytest.mark.parametrize("method, options", ALL_METHODS)
@pytest.mark.parametrize("n_iter, error, message", [
    (0, ValueError, "n_iter must be at least 1, got 0"),
    (-3, ValueError, "n_iter must be at least 1, got -3"),
    (2.5, TypeError, "n_iter must be an int, got float"),
    (True, TypeError, "n_iter must be an int, got bool"),
    ("10", TypeError, "n_iter must be an int, got str"),
])
def test_bad_n_iter(problem, method, options, n_iter, error, message):
    A, _, y, _ = problem
    with pytest.raises(error, match=message):
        method(A, y, n_iter, **options)


@pytest.mark.parametrize("method, options", ALL_METHODS)
def test_bad_y_and_x0(problem, method, options):
    A, _, y, _ = problem
    with pytest.raises(ValueError, match=r"expects y with shape \(\.\.\., 36, 17\)"):
        method(A, y[:, :-1], 3, **options)
    with pytest.raises(TypeError, match="float32 or float64"):
        method(A, y.long(), 3, **options)
    with pytest.raises(TypeError, match="y as a torch.Tensor"):
        method(A, y.tolist(), 3, **options)
    with pytest.raises(ValueError, match=r"x0 must have shape \(12, 12\)"):
        method(A, y, 3, **options, x0=torch.zeros(12, 13, dtype=y.dtype))
    with pytest.raises(ValueError, match=r"x0 must have shape \(2, 12, 12\)"):
        method(A, torch.stack([y, y]), 3, **options, x0=torch.zeros(3, 12, 12, dtype=y.dtype))
    with pytest.raises(TypeError, match="LinearOperator"):
        method(A.matrix, y, 3, **options)
    with pytest.raises(TypeError, match="callback"):
        method(A, y, 3, **options, callback="plot")


def test_bad_method_specific_arguments(problem):
    A, _, y, y_noisy = problem
    with pytest.raises(ValueError, match="lam must be a finite non-negative number"):
        cu.tv_pdhg(A, y, 3, lam=-1.0)
    with pytest.raises(TypeError, match="lam must be a real number"):
        cu.tv_pdhg(A, y, 3, lam="big")
    with pytest.raises(ValueError, match="step must be a finite positive number"):
        cu.landweber(A, y, 3, step=0)
    with pytest.raises(ValueError, match="y must be non-negative"):
        cu.mlem(A, y_noisy, 3)
    with pytest.raises(ValueError, match="non-negative start image"):
        cu.mlem(A, y, 3, x0=-torch.ones(A.domain_shape, dtype=y.dtype))
    with pytest.raises(ValueError, match="eps must be"):
        cu.mlem(A, y, 3, eps=0.0)
    vector_operator = cu.MatrixOperator(torch.eye(4, dtype=torch.float64), (4,), (4,))
    with pytest.raises(ValueError, match="2-D images"):
        cu.tv_pdhg(vector_operator, torch.ones(4, dtype=torch.float64), 3, lam=1.0)
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 2, H, W\)"):
        cu.image_divergence(torch.zeros(3, 4, 4))
    with pytest.raises(ValueError, match=r"shape \(\.\.\., H, W\)"):
        cu.image_gradient(torch.zeros(4))


def test_tv_pdhg_with_lam_zero_is_least_squares(problem):
    A, x_true, y, _ = problem
    x = cu.tv_pdhg(A, y, 400, lam=0.0)
    assert torch.isfinite(x).all()
    assert relative_error(x, x_true) < 0.05


def test_public_names():
    for name in alg.__all__:
        assert getattr(cu, name) is getattr(alg, name)


def test_tv_pdhg_stops_at_tolerance(problem):
    A, _, _, y = problem
    steps = []
    x_tol = cu.tv_pdhg(A, y, 5000, lam=0.1, tol=1e-3, callback=lambda k, x: steps.append(k))
    stopped = cu.tv_pdhg.last_iterations
    assert stopped == len(steps) < 5000
    # the stopping rule: the last step changed the image by less than tol, relatively
    x_prev = cu.tv_pdhg(A, y, stopped - 1, lam=0.1)
    assert torch.allclose(x_tol, cu.tv_pdhg(A, y, stopped, lam=0.1), atol=1e-6)
    assert float((x_tol - x_prev).norm() / x_tol.norm()) <= 1e-3
    # one step earlier the rule was not yet met
    x_prev2 = cu.tv_pdhg(A, y, stopped - 2, lam=0.1)
    assert float((x_prev - x_prev2).norm() / x_prev.norm()) > 1e-3
    with pytest.raises(ValueError, match="tol"):
        cu.tv_pdhg(A, y, 10, lam=0.1, tol=-1.0)


# --- one argument order (issue #12) ---------------------------------------------------------
def test_tv_pdhg_old_argument_order_still_works(problem):
    """tv_pdhg(A, y, lam, n_iter), the order before issue #12, where the types tell."""
    A, _, y, _ = problem
    new = cu.tv_pdhg(A, y, 20, lam=0.5)
    assert torch.allclose(cu.tv_pdhg(A, y, 0.5, 20), new)
    assert torch.allclose(cu.tv_pdhg(A, y, 0.5, n_iter=20), new)
    assert torch.allclose(cu.tv_pdhg(A, y, np.float64(0.5), np.int64(20)), new)
    assert not torch.allclose(cu.tv_pdhg(A, y, 20, lam=5.0), new)   # lam is used


@pytest.mark.parametrize("third, fourth", [(1, 20), (20, 0.5), (0.5, 2.5)])
def test_tv_pdhg_ambiguous_order_is_a_clear_error(problem, third, fourth):
    A, _, y, _ = problem
    with pytest.raises(TypeError, match=r"ambiguous: the order is tv_pdhg\(A, y, n_iter, lam"):
        cu.tv_pdhg(A, y, third, fourth)


def test_tv_pdhg_takes_lam_by_keyword_only(problem):
    A, _, y, _ = problem
    with pytest.raises(TypeError, match="lam"):
        cu.tv_pdhg(A, y, 20)
    with pytest.raises(TypeError, match=r"3 positional arguments, \(A, y, n_iter\)"):
        cu.tv_pdhg(A, y, 20, 0.5, None)
    with pytest.raises(TypeError, match="3 positional arguments"):
        cu.tv_pdhg(A, y, 0.5, 20, lam=0.5)


@pytest.mark.parametrize("method, options", ALL_METHODS)
def test_data_before_operator_says_the_operator_comes_first(problem, method, options):
    A, _, y, _ = problem
    with pytest.raises(TypeError, match=r"the operator comes first: \w+\(A, y, n_iter\)"):
        method(y, A, 3, **options)


def test_tv_pdhg_steps_use_the_exact_norm_of_the_gradient(problem, monkeypatch):
    """The step sizes come from D.norm(): a (wrong) larger norm gives another path."""
    A, _, _, y = problem
    reference = cu.tv_pdhg(A, y, 30, lam=0.5)
    monkeypatch.setattr(cu.Gradient, "norm", lambda self, *args, **kwargs: 10.0)
    assert not torch.allclose(cu.tv_pdhg(A, y, 30, lam=0.5), reference, atol=1e-6)


def test_tv_helpers_keep_their_names_and_old_import():
    from course_utils.operators import finite_differences as fd
    for name in ("image_gradient", "image_divergence", "total_variation"):
        assert getattr(cu, name) is getattr(fd, name) is getattr(alg, name)


# --- differentiating through TV (lesson 12) --------------------------------------------------
def test_tv_pdhg_differentiable_gradient_matches_finite_differences(problem):
    A, _, _, y = problem
    direction = torch.randn(y.shape, generator=torch.Generator().manual_seed(1),
                            dtype=y.dtype)
    weights = torch.randn((12, 12), generator=torch.Generator().manual_seed(2),
                          dtype=y.dtype)

    def score(data):
        return (cu.tv_pdhg(A, data, 30, lam=0.3, differentiable=True) * weights).sum()

    data = y.clone().requires_grad_(True)
    gradient, = torch.autograd.grad(score(data), data)
    assert torch.isfinite(gradient).all()          # no nan from sqrt at q = 0
    h = 1e-6
    with torch.no_grad():
        numeric = (score(y + h * direction) - score(y - h * direction)) / (2 * h)
    analytic = (gradient * direction).sum()
    assert abs(float(analytic - numeric)) <= 1e-4 * max(1.0, abs(float(numeric)))
    # the same iterates with and without the graph
    assert torch.allclose(cu.tv_pdhg(A, y, 30, lam=0.3, differentiable=True).detach(),
                          cu.tv_pdhg(A, y, 30, lam=0.3), atol=1e-10)


def test_tv_pdhg_keeps_no_graph_by_default(problem):
    A, _, _, y = problem
    x = cu.tv_pdhg(A, y.clone().requires_grad_(True), 5, lam=0.3)
    assert not x.requires_grad


def test_cgls_stays_at_the_solution_long_after_converging():
    # a small full-column-rank problem converges in 16 steps; 300 more must not let
    # rounding errors grow (they used to, until the iterate diverged)
    g = torch.Generator().manual_seed(3)
    M = torch.randn(30, 16, generator=g, dtype=torch.float64)
    A = cu.MatrixOperator(M, (4, 4), (30,))
    y = torch.randn(2, 30, generator=g, dtype=torch.float64)
    expected = torch.linalg.lstsq(M, y.T).solution.T.reshape(2, 4, 4)
    assert torch.allclose(cu.cgls(A, y, 300), expected, atol=1e-8)
    assert torch.allclose(cu.cgls(A, y, 16), expected, atol=1e-6)
