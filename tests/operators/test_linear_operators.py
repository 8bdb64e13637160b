"""Every linear operator of the package keeps the LinearOperator promises.

``OPERATORS`` is the registry: add an operator here and it is tested for an exact
adjoint, gradients (first and second order), batches, dtypes, NumPy in and out, its
matrix, its norm, its input checks and moving it (``A.to``, ``A.T.to``).  The Radon
transform over many geometries has its own tests in ``test_operators.py``.
"""

import math

import numpy as np
import pytest
import torch

import course_utils as cu
from course_utils.reconstruction.fbp import _PixelDrivenBackprojection


def _matrix_operator():
    gen = torch.Generator().manual_seed(3)
    matrix = torch.randn(15, 12, generator=gen, dtype=torch.float64)
    return cu.MatrixOperator(matrix, (3, 4), (5, 3))


OPERATORS = {
    "radon-parallel": lambda: cu.RadonTransform(8, cu.ParallelBeam(n_angles=5, n_detectors=12)),
    "radon-fan": lambda: cu.RadonTransform(8, cu.FanBeam(n_angles=6, n_detectors=14,
                                                         source_distance=20.0,
                                                         detector_distance=10.0)),
    "radon-adjoint": lambda: cu.RadonTransform(
        8, cu.ParallelBeam(n_angles=7, n_detectors=11)).T,
    "fbp-backprojection": lambda: _PixelDrivenBackprojection(
        cu.ParallelBeam(n_angles=6, n_detectors=13), 8),
    "matrix": _matrix_operator,
    "gradient-square": lambda: cu.Gradient(8),
    "gradient-rectangular": lambda: cu.Gradient((5, 7)),
    "gradient-one-row": lambda: cu.Gradient((1, 6)),
}


@pytest.fixture(params=sorted(OPERATORS))
def A(request):
    return OPERATORS[request.param]()


def random(shape, seed=0, dtype=torch.float64, **kwargs):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen, dtype=dtype, **kwargs)


# --- the adjoint --------------------------------------------------------------------------


def test_adjoint_is_exact_in_float32_and_float64(A):
    assert A.check_adjoint(torch.float32) < 1e-5
    assert A.check_adjoint(torch.float64) < 1e-12


def test_dot_product_test_by_hand(A):
    x, y = random(A.domain_shape, 1), random(A.range_shape, 2)
    lhs, rhs = torch.sum(A(x) * y), torch.sum(x * A.T(y))
    assert abs(float(lhs - rhs)) <= 1e-12 * max(abs(float(lhs)), 1.0)


def test_adjoint_of_adjoint_is_the_operator(A):
    assert A.T.T is A
    assert A.T.domain_shape == A.range_shape
    assert A.T.range_shape == A.domain_shape


def test_check_adjoint_catches_a_wrong_adjoint():
    """The dot-product test can fail: an operator whose adjoint is off by a factor."""

    class Wrong(cu.LinearOperator):
        def _apply(self, x):
            return 2 * x

        def _apply_adjoint(self, y):
            return 3 * y

    assert Wrong((4,), (4,)).check_adjoint() > 0.1


# --- gradients ------------------------------------------------------------------------------


def test_gradcheck_forward_and_adjoint(A):
    x = random((2, *A.domain_shape), 3, requires_grad=True)
    y = random((2, *A.range_shape), 4, requires_grad=True)
    assert torch.autograd.gradcheck(A, (x,))
    assert torch.autograd.gradcheck(A.T, (y,))
    assert torch.autograd.gradgradcheck(A, (x,))


def test_gradient_of_data_fidelity_is_the_backprojected_residual(A):
    x = random(A.domain_shape, 5).requires_grad_()
    y = random(A.range_shape, 6)
    loss = 0.5 * torch.sum((A(x) - y) ** 2)
    loss.backward()
    expected = A.T(A(x.detach()) - y)
    assert torch.allclose(x.grad, expected, rtol=1e-10, atol=1e-10)


# --- batches, dtypes, NumPy ------------------------------------------------------------------


def test_batches_of_any_shape_match_one_by_one(A):
    x = random((2, 3, *A.domain_shape), 7)
    y = A(x)
    assert y.shape == (2, 3, *A.range_shape)
    assert torch.allclose(y[1, 2], A(x[1, 2]), atol=1e-12)
    back = A.T(y)
    assert back.shape == x.shape
    assert torch.allclose(back[0, 1], A.T(y[0, 1]), atol=1e-12)


def test_dtype_is_preserved(A):
    for dtype in (torch.float32, torch.float64):
        x = random(A.domain_shape, 8, dtype)
        assert A(x).dtype == dtype
        assert A.T(A(x)).dtype == dtype


def test_numpy_in_numpy_out(A):
    x = np.random.default_rng(0).random(A.domain_shape)
    y = A(x)
    assert isinstance(y, np.ndarray) and y.dtype == np.float64 and y.shape == A.range_shape
    back = A.T(y)
    assert isinstance(back, np.ndarray) and back.shape == A.domain_shape
    np.testing.assert_allclose(y, A(torch.from_numpy(x)).numpy(), rtol=1e-12, atol=1e-12)


# --- the matrix and the norm ---------------------------------------------------------------


def dense_matrix(A):
    return A.to_matrix().to_dense().double()


def test_matrix_matches_the_operator(A):
    M = dense_matrix(A)
    assert M.shape == (math.prod(A.range_shape), math.prod(A.domain_shape))
    x = random(A.domain_shape, 9)
    assert torch.allclose((M @ x.reshape(-1)).reshape(A.range_shape), A(x), atol=1e-5)
    assert torch.allclose(dense_matrix(A.T), M.T)


def test_norm_is_the_largest_singular_value(A):
    sigma_max = float(torch.linalg.matrix_norm(dense_matrix(A), ord=2))
    assert A.norm() == pytest.approx(sigma_max, rel=1e-3)
    assert A.T.norm() == A.norm()


def test_norm_is_cached_per_argument_set():
    """A rough estimate (one power iteration) must not be returned for a later call
    that asks for more iterations, and the other way round."""
    A = _matrix_operator()
    sigma_max = float(torch.linalg.matrix_norm(A.matrix, ord=2))
    precise = A.norm()
    rough = A.norm(n_iter=1)
    assert precise == pytest.approx(sigma_max, rel=1e-3)
    assert rough < 0.99 * precise                     # one step is visibly below
    assert A.norm() == pytest.approx(precise) and A.norm(n_iter=1) == pytest.approx(rough)
    assert A.norm(n_iter=1, seed=1) != pytest.approx(rough, rel=1e-3)   # another start
    with pytest.raises(TypeError, match="n_iter must be an int"):
        A.norm(n_iter=2.5)


# --- input checks ---------------------------------------------------------------------------


def test_check_domain_and_check_range(A):
    x, y = random(A.domain_shape, 10), random((3, *A.range_shape), 11)
    assert A.check_domain(x) is x
    assert A.check_range(y) is y
    array = np.zeros(A.domain_shape)
    assert isinstance(A.check_domain(array), torch.Tensor)
    wrong = (*A.domain_shape[:-1], A.domain_shape[-1] + 1)
    with pytest.raises(ValueError, match=rf"expects the {A.domain_name} with shape"):
        A.check_domain(torch.zeros(wrong))
    with pytest.raises(ValueError, match=r"my_caller expects y with shape"):
        A.check_range(torch.zeros(wrong), "y", caller="my_caller")
    with pytest.raises(TypeError, match="float32 or float64"):
        A.check_domain(torch.zeros(A.domain_shape, dtype=torch.int64))
    with pytest.raises(TypeError, match="as a torch.Tensor or NumPy array, got list"):
        A.check_range([0.0])
    with pytest.raises(ValueError, match="is on meta but the operator is on cpu"):
        A(torch.zeros(A.domain_shape, device="meta"))


# --- devices -----------------------------------------------------------------------------------


def test_operator_and_its_adjoint_move(A):
    moved = A.to("cpu")
    assert moved.domain_shape == A.domain_shape and moved.device.type == "cpu"
    adjoint = A.T.to("cpu")
    assert adjoint.domain_shape == A.range_shape and adjoint.T.domain_shape == A.domain_shape
    y = random(A.range_shape, 12)
    assert torch.allclose(adjoint(y), A.T(y), atol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_operator_and_its_adjoint_move_to_cuda(A):
    x, y = random(A.domain_shape, 13), random(A.range_shape, 14)
    assert torch.allclose(A.to("cuda")(x.cuda()).cpu(), A(x), atol=1e-10)
    assert torch.allclose(A.T.to("cuda")(y.cuda()).cpu(), A.T(y), atol=1e-10)
