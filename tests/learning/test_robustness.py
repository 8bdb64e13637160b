"""Tests of course_utils.learning.robustness: worst-case perturbations, data consistency,
range/null-space split and calibration of a predicted spread.

Every test runs on a small float64 problem we fully control: explicit matrices
(``cu.MatrixOperator``) whose exact answers ``torch.linalg`` gives directly.
"""

import pytest
import torch

import course_utils as cu


# --- small problems we fully control ------------------------------------------------------
def gaussian_matrix(rows, cols, seed):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(rows, cols, generator=gen, dtype=torch.float64)


def matrix_with_singular_values(rows, cols, singular_values, seed):
    """``U diag(s) V^T`` with random orthonormal ``U`` (rows x k), ``V`` (cols x k)."""
    k = len(singular_values)
    U, _ = torch.linalg.qr(gaussian_matrix(rows, k, seed))
    V, _ = torch.linalg.qr(gaussian_matrix(cols, k, seed + 1))
    s = torch.tensor(singular_values, dtype=torch.float64)
    return U @ torch.diag(s) @ V.T, V[:, 0]


def norms(t):
    return torch.linalg.vector_norm(t.flatten(1), dim=1)


def cosines(a, b):
    """Cosine between every item of the batch ``a`` and the single vector ``b``."""
    a = a.flatten(1)
    return (a @ b) / (norms(a) * torch.linalg.vector_norm(b))


def linear_map(M, image_side):
    """f(y) = M y, from data (B, 1, *) to images (B, 1, side, side); differentiable."""
    def f(y):
        return (y.flatten(1) @ M.T).view(y.shape[0], 1, image_side, image_side)
    return f


@pytest.fixture(scope="module")
def wide():
    """A rank-6 operator from 4 x 4 images to 2 x 3 data: a 10-dimensional null space."""
    M = gaussian_matrix(6, 16, seed=0)
    return cu.MatrixOperator(M, (4, 4), (2, 3)), M


@pytest.fixture(scope="module")
def tall():
    """A full-column-rank operator from 4 x 4 images to 5 x 6 data."""
    M = gaussian_matrix(30, 16, seed=1)
    return cu.MatrixOperator(M, (4, 4), (5, 6)), M


def images(batch, seed, scales=None):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 1, 4, 4, generator=gen, dtype=torch.float64)
    if scales is not None:
        x = x * torch.tensor(scales, dtype=torch.float64).view(-1, 1, 1, 1)
    return x


# --- relative_change ----------------------------------------------------------------------
def test_relative_change_known_values():
    b = torch.tensor([[3.0, 4.0], [1.0, 0.0]], dtype=torch.float64)
    a = torch.tensor([[6.0, 8.0], [1.0, 0.5]], dtype=torch.float64)
    change = cu.relative_change(a, b)
    assert change.shape == (2,)
    assert torch.allclose(change, torch.tensor([1.0, 0.5], dtype=torch.float64))
    assert torch.allclose(cu.relative_change(b, b), torch.zeros(2, dtype=torch.float64))


def test_relative_change_is_per_item_on_image_batches():
    b = images(3, seed=2, scales=[1.0, 1e-3, 1e3])
    a = b * torch.tensor([1.1, 0.5, 3.0], dtype=torch.float64).view(-1, 1, 1, 1)
    assert torch.allclose(cu.relative_change(a, b),
                          torch.tensor([0.1, 0.5, 2.0], dtype=torch.float64))


def test_relative_change_rejects_bad_shapes():
    b = images(2, seed=0)
    with pytest.raises(ValueError, match="same shape"):
        cu.relative_change(b[:, :, :3], b)
    with pytest.raises(ValueError, match="batch"):
        cu.relative_change(torch.ones(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64))


# --- random_perturbation ------------------------------------------------------------------
def test_random_perturbation_has_the_relative_norm_of_every_item():
    y = torch.randn(3, 1, 5, 7, dtype=torch.float64) * torch.tensor(
        [1.0, 1e-4, 1e4], dtype=torch.float64).view(-1, 1, 1, 1)
    for eps in (0.01, 0.3, 2.0):
        delta = cu.random_perturbation(y, eps, generator=torch.Generator().manual_seed(0))
        assert delta.shape == y.shape and delta.dtype == y.dtype
        assert torch.allclose(norms(delta), eps * norms(y), rtol=1e-12, atol=0)


def test_random_perturbation_is_reproducible_and_random():
    y = torch.ones(2, 1, 6, 6, dtype=torch.float64)
    a = cu.random_perturbation(y, 0.1, generator=torch.Generator().manual_seed(3))
    b = cu.random_perturbation(y, 0.1, generator=torch.Generator().manual_seed(3))
    c = cu.random_perturbation(y, 0.1, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    # a random direction, not a multiple of y, and different for the two items
    assert float(cosines(a, y[0].flatten()).abs().max()) < 0.9
    assert float(cosines(a[:1], a[1].flatten()).abs()) < 0.9


def test_random_perturbation_of_size_zero_is_zero():
    y = images(2, seed=0)
    assert torch.equal(cu.random_perturbation(y, 0.0), torch.zeros_like(y))
    # and an all-zero item gets a zero perturbation, not nan
    y[1] = 0
    delta = cu.random_perturbation(y, 0.1)
    assert torch.isfinite(delta).all() and torch.equal(delta[1], torch.zeros_like(y[1]))


@pytest.mark.parametrize("eps", [-0.1, float("nan"), float("inf")])
def test_random_perturbation_rejects_bad_eps(eps):
    with pytest.raises(ValueError, match="eps"):
        cu.random_perturbation(images(1, seed=0), eps)


# --- worst_perturbation -------------------------------------------------------------------
@pytest.fixture(scope="module")
def linear():
    """f(y) = M y from (2, 3) data to 3 x 3 images, singular values 5, 3, 2, 1, 0.5, 0.2."""
    M, v1 = matrix_with_singular_values(9, 6, [5.0, 3.0, 2.0, 1.0, 0.5, 0.2], seed=5)
    return linear_map(M, 3), M, v1


def data(batch, seed, scales):
    gen = torch.Generator().manual_seed(seed)
    y = torch.randn(batch, 1, 2, 3, generator=gen, dtype=torch.float64)
    return y * torch.tensor(scales, dtype=torch.float64).view(-1, 1, 1, 1)


def test_worst_perturbation_of_a_linear_map_is_on_the_sphere(linear):
    f, _, _ = linear
    y = data(3, seed=0, scales=[1.0, 1e-3, 1e4])
    for n_steps in (1, 5):
        delta = cu.worst_perturbation(f, y, 0.05, n_steps=n_steps,
                                      generator=torch.Generator().manual_seed(0))
        assert delta.shape == y.shape
        # the ascent moves outwards for a linear map: the constraint is active
        assert torch.allclose(norms(delta), 0.05 * norms(y), rtol=1e-10, atol=0)


def test_worst_perturbation_of_a_linear_map_is_the_top_singular_vector(linear):
    f, M, v1 = linear
    y = data(3, seed=1, scales=[1.0, 1e-4, 1e4])  # very different norms
    start = cu.random_perturbation(y, 0.1, generator=torch.Generator().manual_seed(1))
    assert float(cosines(start, v1).abs().max()) < 0.99  # the random start is not it yet
    delta = cu.worst_perturbation(f, y, 0.1, n_steps=60,
                                  generator=torch.Generator().manual_seed(1))
    assert (cosines(delta, v1).abs() > 0.999).all(), cosines(delta, v1)
    # and the change it achieves is the largest possible: ||M delta|| = s_1 ||delta||
    change = norms(f(y + delta) - f(y))
    assert torch.allclose(change, 5.0 * 0.1 * norms(y), rtol=1e-5)


def nonlinear_map(seed):
    W1 = gaussian_matrix(20, 6, seed) / 2
    W2 = gaussian_matrix(16, 20, seed + 1) / 4

    def f(y):
        return (torch.tanh(y.flatten(1) @ W1.T) @ W2.T).view(y.shape[0], 1, 4, 4)
    return f


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_worst_perturbation_beats_random_noise_of_the_same_size(seed):
    f = nonlinear_map(seed)
    y = data(4, seed=seed + 10, scales=[1.0, 2.0, 0.5, 3.0])
    eps = 0.2
    reference = f(y)
    delta = cu.worst_perturbation(f, y, eps, n_steps=20,
                                  generator=torch.Generator().manual_seed(seed))
    assert (norms(delta) <= eps * norms(y) * (1 + 1e-10)).all()
    worst = cu.relative_change(f(y + delta), reference)
    for k in range(5):
        noise = cu.random_perturbation(y, eps, generator=torch.Generator().manual_seed(100 + k))
        assert (worst >= cu.relative_change(f(y + noise), reference)).all()
    # more steps never do worse than the random start itself
    start = cu.random_perturbation(y, eps, generator=torch.Generator().manual_seed(seed))
    assert (worst > cu.relative_change(f(y + start), reference)).all()


def test_worst_perturbation_through_differentiable_tv_pdhg():
    gen = torch.Generator().manual_seed(0)
    M = torch.rand(60, 64, generator=gen, dtype=torch.float64)  # non-negative, like a projector
    A = cu.MatrixOperator(M, (8, 8), (6, 10))
    x = torch.zeros(1, 1, 8, 8, dtype=torch.float64)
    x[..., 2:6, 3:7] = 1.0
    y = A(x)

    def f(data):
        return cu.tv_pdhg(A, data, 30, lam=0.5, differentiable=True)

    eps = 0.05
    delta = cu.worst_perturbation(f, y, eps, n_steps=5,
                                  generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(delta).all()
    assert (norms(delta) <= eps * norms(y) * (1 + 1e-10)).all()
    assert (norms(delta) >= 0.99 * eps * norms(y)).all()
    reference = f(y).detach()
    worst = cu.relative_change(f(y + delta).detach(), reference)
    noise = cu.random_perturbation(y, eps, generator=torch.Generator().manual_seed(1))
    random = cu.relative_change(f(y + noise).detach(), reference)
    assert (worst > 1.5 * random).all(), (worst, random)


def test_worst_perturbation_leaves_no_gradients():
    net = torch.nn.Linear(6, 9).double()
    def f(y):
        return net(y.flatten(1)).view(y.shape[0], 1, 3, 3)

    y = data(2, seed=0, scales=[1.0, 1.0]).requires_grad_(True)
    delta = cu.worst_perturbation(f, y, 0.1, n_steps=3)
    assert not delta.requires_grad and delta.grad_fn is None
    assert y.grad is None
    assert all(p.grad is None for p in net.parameters())


def test_worst_perturbation_with_no_steps_is_the_random_start(linear):
    f, _, _ = linear
    y = data(2, seed=0, scales=[1.0, 10.0])
    delta = cu.worst_perturbation(f, y, 0.1, n_steps=0,
                                  generator=torch.Generator().manual_seed(7))
    start = cu.random_perturbation(y, 0.1, generator=torch.Generator().manual_seed(7))
    assert torch.equal(delta, start)


def test_worst_perturbation_of_an_output_that_ignores_the_data():
    # a zero gradient must not turn into nan: delta stays at the random start
    def f(y):
        return 0.0 * y.flatten(1)[:, :4].view(-1, 1, 2, 2) + 1.0

    y = data(2, seed=0, scales=[1.0, 10.0])
    delta = cu.worst_perturbation(f, y, 0.1, n_steps=3,
                                  generator=torch.Generator().manual_seed(7))
    start = cu.random_perturbation(y, 0.1, generator=torch.Generator().manual_seed(7))
    assert torch.isfinite(delta).all()
    assert torch.allclose(delta, start)


def test_worst_perturbation_of_size_zero_is_zero(linear):
    f, _, _ = linear
    y = data(2, seed=0, scales=[1.0, 10.0])
    delta = cu.worst_perturbation(f, y, 0.0, n_steps=3)
    assert torch.isfinite(delta).all() and torch.equal(delta, torch.zeros_like(y))


def test_worst_perturbation_checks_its_arguments(linear):
    f, _, _ = linear
    y = data(2, seed=0, scales=[1.0, 1.0])
    for eps in (-0.1, float("nan")):
        with pytest.raises(ValueError, match="eps"):
            cu.worst_perturbation(f, y, eps)
    with pytest.raises(ValueError, match="n_steps"):
        cu.worst_perturbation(f, y, 0.1, n_steps=-1)
    with pytest.raises(TypeError, match="n_steps"):
        cu.worst_perturbation(f, y, 0.1, n_steps=2.0)
    with pytest.raises(ValueError, match="step"):
        cu.worst_perturbation(f, y, 0.1, step=0.0)
    with pytest.raises(ValueError, match="batch"):
        cu.worst_perturbation(f, torch.ones(6, dtype=torch.float64), 0.1)


# --- data_consistency_step ----------------------------------------------------------------
def direct_solution(M, y, x_hat, mu):
    """Solve (M^T M + mu I) x = M^T y + mu x_hat item by item, explicitly."""
    n = M.shape[1]
    system = M.T @ M + mu * torch.eye(n, dtype=M.dtype)
    rhs = y.flatten(1) @ M + mu * x_hat.flatten(1)
    return torch.linalg.solve(system, rhs.T).T.reshape(x_hat.shape)


@pytest.mark.parametrize("which", ["wide", "tall"])
@pytest.mark.parametrize("mu", [0.1, 3.0, 100.0])
def test_data_consistency_step_solves_the_regularised_system(which, mu, request):
    A, M = request.getfixturevalue(which)
    x_hat = images(2, seed=3, scales=[1.0, 1e3])  # two items of very different scale
    y = A(images(2, seed=4, scales=[2.0, 5e2]))
    x = cu.data_consistency_step(A, y, x_hat, mu, n_iter=60)
    expected = direct_solution(M, y, x_hat, mu)
    assert x.shape == x_hat.shape
    for b in range(2):
        assert float(torch.linalg.vector_norm(x[b] - expected[b])
                     / torch.linalg.vector_norm(expected[b])) < 1e-8
    # and the system is the right one: the answer moved away from x_hat
    assert float(torch.linalg.vector_norm(x - x_hat)) > 1e-3 * float(
        torch.linalg.vector_norm(x_hat))


def test_data_consistency_step_with_large_mu_keeps_the_output(wide):
    A, _ = wide
    x_hat = images(2, seed=3, scales=[1.0, 1e3])
    y = A(images(2, seed=4, scales=[1.0, 1e3]))
    x = cu.data_consistency_step(A, y, x_hat, 1e8, n_iter=10)
    assert (norms(x - x_hat) < 1e-5 * norms(x_hat)).all()


@pytest.mark.parametrize("which", ["wide", "tall"])
def test_data_consistency_step_with_small_mu_fits_the_data(which, request):
    A, M = request.getfixturevalue(which)
    x_hat = images(2, seed=3, scales=[1.0, 1e3])
    gen = torch.Generator().manual_seed(5)
    y = A(images(2, seed=4)) + 0.3 * torch.randn(2, *A.range_shape, generator=gen,
                                                   dtype=torch.float64)[:, None]
    residuals = []
    for mu in (1e2, 1.0, 1e-2, 1e-4):
        x = cu.data_consistency_step(A, y, x_hat, mu, n_iter=200)
        residuals.append(norms(A(x) - y))
    for before, after in zip(residuals, residuals[1:]):
        assert (after < before).all()
    # the limit mu -> 0: the least-squares solution closest to x_hat,
    # x_hat + A^+ (y - A x_hat) (data fitted exactly by the wide operator; the unique
    # least-squares solution A^+ y of the tall one)
    x = cu.data_consistency_step(A, y, x_hat, 1e-9, n_iter=200)
    limit = x_hat.flatten(1) + (y.flatten(1) - x_hat.flatten(1) @ M.T) @ torch.linalg.pinv(M).T
    assert (norms(x.flatten(1) - limit) < 1e-5 * norms(limit)).all()
    least_squares = norms(limit @ M.T - y.flatten(1))
    assert torch.allclose(norms(A(x) - y), least_squares, rtol=1e-6, atol=1e-6)
    if which == "wide":
        assert (norms(A(x) - y) < 1e-5 * norms(y)).all()
    else:
        assert (least_squares > 0.01 * norms(y)).all()  # noisy data: no exact fit


def test_data_consistency_step_without_iterations_returns_the_output(wide):
    A, _ = wide
    x_hat = images(2, seed=3)
    y = A(images(2, seed=4))
    assert torch.equal(cu.data_consistency_step(A, y, x_hat, 1.0, n_iter=0), x_hat)


def test_data_consistency_step_when_the_output_already_fits_the_data(wide):
    # item 0 is already the solution (y = A x_hat): its residual is exactly zero, and it
    # must stay put without a 0/0 while item 1 still converges
    A, M = wide
    x_hat = images(2, seed=3, scales=[1.0, 1e3])
    y = A(x_hat)
    y[1] = A(images(1, seed=4))[0]
    x = cu.data_consistency_step(A, y, x_hat, 0.5, n_iter=40)
    assert torch.isfinite(x).all()
    assert torch.allclose(x[0], x_hat[0], rtol=0, atol=1e-12)
    expected = direct_solution(M, y, x_hat, 0.5)
    assert torch.allclose(x[1], expected[1], rtol=1e-8, atol=1e-8 * float(expected[1].abs().max()))


def test_data_consistency_step_runs_past_convergence_without_nan(wide):
    # rank 6: CG is converged after 6 steps; 300 more must not blow up
    A, M = wide
    x_hat = images(2, seed=3)
    y = A(images(2, seed=4))
    x = cu.data_consistency_step(A, y, x_hat, 1.0, n_iter=300)
    assert torch.isfinite(x).all()
    assert torch.allclose(x, direct_solution(M, y, x_hat, 1.0), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("mu", [0.0, -1.0])
def test_data_consistency_step_rejects_a_non_positive_mu(wide, mu):
    A, _ = wide
    x_hat = images(1, seed=3)
    with pytest.raises(ValueError, match="mu"):
        cu.data_consistency_step(A, A(x_hat), x_hat, mu)


# --- range_null_split ---------------------------------------------------------------------
def test_range_null_split_parts_sum_to_the_image(wide):
    A, _ = wide
    e = images(2, seed=6, scales=[1.0, 1e3])
    e_range, e_null = cu.range_null_split(A, e)
    assert e_range.shape == e_null.shape == e.shape
    assert torch.allclose(e_range + e_null, e)
    # neither part is trivial: a 6-dimensional row space in 16 pixels
    assert (norms(e_null) > 0.3 * norms(e)).all() and (norms(e_range) > 0.1 * norms(e)).all()


def test_range_null_split_matches_the_pseudo_inverse_projection(wide):
    A, M = wide
    e = images(2, seed=6, scales=[1.0, 1e3])
    e_range, e_null = cu.range_null_split(A, e)
    projection = torch.linalg.pinv(M) @ M
    expected = (e.flatten(1) @ projection.T).view_as(e)
    assert (norms(e_range - expected) < 1e-8 * norms(e)).all()
    # the null part is invisible to the scanner and orthogonal to the range part
    assert (norms(A(e_null)) < 1e-8 * norms(A(e))).all()
    inner = (e_range * e_null).flatten(1).sum(1)
    assert (inner.abs() < 1e-8 * norms(e_range) * norms(e_null)).all()


def test_range_part_is_its_own_projection(wide):
    A, _ = wide
    e = images(2, seed=7, scales=[1.0, 1e-3])
    e_range, _ = cu.range_null_split(A, e)
    again_range, again_null = cu.range_null_split(A, e_range)
    assert (norms(again_null) < 1e-8 * norms(e_range)).all()
    assert (norms(again_range - e_range) < 1e-8 * norms(e_range)).all()


def test_row_space_images_have_no_null_part(wide):
    A, _ = wide
    gen = torch.Generator().manual_seed(8)
    v = torch.randn(2, 1, *A.range_shape, generator=gen, dtype=torch.float64)
    e = A.T(v)
    e_range, e_null = cu.range_null_split(A, e)
    assert (norms(e_null) < 1e-8 * norms(e)).all()
    assert torch.allclose(e_range, e)


def test_full_column_rank_operator_has_no_null_space(tall):
    A, _ = tall
    e = images(2, seed=9, scales=[1.0, 1e3])
    _, e_null = cu.range_null_split(A, e)
    assert (norms(e_null) < 1e-8 * norms(e)).all()


def test_range_null_split_checks_n_iter(wide):
    A, _ = wide
    with pytest.raises(ValueError, match="n_iter"):
        cu.range_null_split(A, images(1, seed=0), n_iter=0)


# --- calibration --------------------------------------------------------------------------
def shuffled_levels(levels, repeats, seed, shape):
    """Each value of ``levels`` ``repeats`` times, in random order, reshaped."""
    gen = torch.Generator().manual_seed(seed)
    values = torch.tensor(levels, dtype=torch.float64).repeat_interleave(repeats)
    return values[torch.randperm(values.numel(), generator=gen)].view(shape)


def random_signs(shape, seed):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2, shape, generator=gen).double() * 2 - 1


def test_calibration_of_a_calibrated_spread():
    # 2 images of 4 x 4, 4 levels of spread, 8 pixels each: every bin holds one level
    spread = shuffled_levels([1.0, 2.0, 3.0, 4.0], 8, seed=0, shape=(2, 1, 4, 4))
    error = spread * random_signs(spread.shape, seed=1)  # |error| = spread exactly
    result = cu.calibration(spread, error, n_bins=4)
    levels = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    assert torch.allclose(result["predicted"], levels)
    assert torch.allclose(result["rmse"], levels)
    assert result["ratio"] == pytest.approx(1.0, rel=1e-12)
    assert result["spearman"].shape == (2,)
    assert torch.allclose(result["spearman"], torch.ones(2, dtype=torch.float64))


def test_calibration_of_an_over_confident_spread():
    spread = shuffled_levels([1.0, 2.0, 3.0, 4.0], 8, seed=0, shape=(2, 1, 4, 4))
    error = 2 * spread * random_signs(spread.shape, seed=1)
    result = cu.calibration(spread, error, n_bins=4)
    assert torch.allclose(result["rmse"], 2 * result["predicted"])
    assert result["ratio"] == pytest.approx(2.0, rel=1e-12)
    assert torch.allclose(result["spearman"], torch.ones(2, dtype=torch.float64))


def test_calibration_spearman_is_per_image():
    spread = torch.arange(1.0, 17.0, dtype=torch.float64).view(1, 1, 4, 4).repeat(2, 1, 1, 1)
    error = torch.stack([spread[0] ** 2, -(17.0 - spread[1])])  # ranks kept / reversed
    result = cu.calibration(spread, error, n_bins=2)
    assert torch.allclose(result["spearman"], torch.tensor([1.0, -1.0], dtype=torch.float64))


def test_calibration_of_an_unrelated_error():
    gen = torch.Generator().manual_seed(0)
    spread = torch.rand(3, 1, 48, 48, generator=gen, dtype=torch.float64)
    error = torch.randn(3, 1, 48, 48, generator=gen, dtype=torch.float64)
    result = cu.calibration(spread, error, n_bins=5)
    assert (result["spearman"].abs() < 0.08).all(), result["spearman"]
    # the spread rises across the bins while the error stays flat
    assert (result["predicted"].diff() > 0).all()
    assert torch.allclose(result["rmse"], torch.ones(5, dtype=torch.float64), atol=0.1)


def test_calibration_bins_have_equal_counts_like_tensor_split():
    # 10 pixels in 3 bins: 4, 3, 3 pixels, in the order of the spread
    spread = torch.tensor([9.0, 0, 5, 1, 8, 2, 7, 3, 6, 4], dtype=torch.float64).view(1, 1, 2, 5)
    error = torch.zeros_like(spread)
    error.view(-1)[spread.view(-1) >= 7] = 3.0  # only the top bin has an error
    result = cu.calibration(spread, error, n_bins=3)
    assert result["predicted"].shape == result["rmse"].shape == (3,)
    assert torch.allclose(result["predicted"],
                          torch.tensor([1.5, 5.0, 8.0], dtype=torch.float64))
    assert torch.allclose(result["rmse"], torch.tensor([0.0, 0.0, 3.0], dtype=torch.float64))
    for n_bins in (1, 7, 10):
        assert cu.calibration(spread, error, n_bins=n_bins)["predicted"].shape == (n_bins,)
    assert float(cu.calibration(spread, error, n_bins=1)["predicted"]) == pytest.approx(4.5)


def test_calibration_checks_its_input():
    spread = torch.rand(2, 1, 4, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="negative"):
        cu.calibration(spread - 0.5, spread)
    with pytest.raises(ValueError, match="same shape"):
        cu.calibration(spread, spread[..., :3])
    with pytest.raises(ValueError, match="bins"):
        cu.calibration(spread[:1, :, :2, :2], spread[:1, :, :2, :2], n_bins=5)
    with pytest.raises(ValueError, match="n_bins"):
        cu.calibration(spread, spread, n_bins=0)
