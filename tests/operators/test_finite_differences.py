"""The image gradient D as an operator, and the TV helpers that share its code."""

import math

import numpy as np
import pytest
import torch

import course_utils as cu


def random(shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("shape", [(7, 9), (2, 3, 5, 4), (1, 6), (6, 1)])
def test_gradient_operator_is_image_gradient_and_minus_divergence(shape):
    D = cu.Gradient(shape[-2:])
    x, q = random(shape, 1), random((*shape[:-2], 2, *shape[-2:]), 2)
    assert D(x).shape == (*shape[:-2], 2, *shape[-2:])
    assert torch.allclose(D(x), cu.image_gradient(x), atol=1e-14)
    assert torch.allclose(D.T(q), -cu.image_divergence(q), atol=1e-14)


def test_forward_differences_with_neumann_boundary():
    x = torch.tensor([[0.0, 1.0, 3.0], [2.0, 2.0, 7.0]], dtype=torch.float64)
    q = cu.Gradient((2, 3))(x)
    assert torch.allclose(q[0], torch.tensor([[2.0, 1.0, 4.0], [0.0, 0.0, 0.0]],
                                             dtype=torch.float64))
    assert torch.allclose(q[1], torch.tensor([[1.0, 2.0, 0.0], [0.0, 5.0, 0.0]],
                                             dtype=torch.float64))


@pytest.mark.parametrize("shape", [(2, 2), (8, 8), (5, 13), (1, 6), (32, 32)])
def test_norm_is_exact_and_below_sqrt_8(shape):
    D = cu.Gradient(shape)
    sigma_max = float(torch.linalg.matrix_norm(D.to_matrix().to_dense(), ord=2))
    assert D.norm() == pytest.approx(sigma_max, rel=1e-10)
    assert D.norm() < math.sqrt(8)
    assert D.T.norm() == D.norm()


def test_square_shorthand_repr_and_errors():
    assert cu.Gradient(6).domain_shape == (6, 6)
    assert cu.Gradient((4, 5)).range_shape == (2, 4, 5)
    assert repr(cu.Gradient((4, 5))) == "Gradient(image_shape=(4, 5), device='cpu')"
    with pytest.raises(ValueError, match=r"image_shape must be \(H, W\)"):
        cu.Gradient((4, 5, 6))
    with pytest.raises(ValueError, match="at least 1"):
        cu.Gradient((0, 5))
    with pytest.raises(TypeError, match="must be an int"):
        cu.Gradient((4.0, 5))
    with pytest.raises(ValueError, match=r"expects the gradient with shape \(\.\.\., 2, 4, 5\)"):
        cu.Gradient((4, 5)).T(torch.zeros(4, 5))


def test_total_variation_is_the_length_of_d_x():
    x = random((3, 6, 7), 3)
    D = cu.Gradient((6, 7))
    expected = torch.linalg.vector_norm(D(x), dim=-3).sum(dim=(-2, -1))
    assert torch.allclose(cu.total_variation(x), expected)
    assert isinstance(cu.total_variation(x.numpy()), np.ndarray)
