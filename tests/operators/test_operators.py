"""The Radon transform operator over many geometries: adjointness, gradients, shapes,
ASTRA agreement, errors.  What every operator must do is tested once for all of them in
``test_linear_operators.py``."""

import math

import numpy as np
import pytest
import torch

import course_utils as cu
from conftest import CUDA, needs_astra, smooth_phantom

# --- exact adjoint, gradients, batching --------------------------------------------------


def test_adjoint_is_exact_in_float32_and_float64(operator):
    assert operator.check_adjoint(torch.float32) < 1e-5
    assert operator.check_adjoint(torch.float64) < 1e-12


def test_dot_product_test_by_hand(operator):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(*operator.domain_shape, generator=gen, dtype=torch.float64)
    y = torch.randn(*operator.range_shape, generator=gen, dtype=torch.float64)
    lhs = torch.sum(operator(x) * y)
    rhs = torch.sum(x * operator.T(y))
    assert abs(lhs - rhs) <= 1e-12 * abs(lhs)


def test_adjoint_of_adjoint_is_the_operator(operator):
    assert operator.T.T is operator
    assert operator.T.domain_shape == operator.range_shape
    assert operator.T.range_shape == operator.domain_shape


def test_gradient_of_data_fidelity_is_the_backprojected_residual(operator):
    x = torch.rand(*operator.domain_shape, dtype=torch.float64, requires_grad=True)
    y = torch.rand(*operator.range_shape, dtype=torch.float64)
    loss = 0.5 * torch.sum((operator(x) - y) ** 2)
    loss.backward()
    expected = operator.T(operator(x.detach()) - y)
    assert torch.allclose(x.grad, expected, rtol=1e-10, atol=1e-10)


def test_batches_of_any_shape_match_one_by_one(operator):
    x = torch.rand(2, 3, *operator.domain_shape)
    y = operator(x)
    assert y.shape == (2, 3, *operator.range_shape)
    assert torch.allclose(y[1, 2], operator(x[1, 2]), atol=1e-5)
    back = operator.T(y)
    assert back.shape == x.shape
    assert torch.allclose(back[0, 1], operator.T(y[0, 1]), atol=1e-4)


def test_dtype_is_preserved(operator):
    for dtype in (torch.float32, torch.float64):
        x = torch.rand(*operator.domain_shape, dtype=dtype)
        assert operator(x).dtype == dtype
        assert operator.T(operator(x)).dtype == dtype


def test_matrix_matches_the_operator(operator):
    M = operator.to_matrix()
    n_rays = math.prod(operator.range_shape)
    assert M.shape == (n_rays, math.prod(operator.domain_shape))
    x = torch.rand(*operator.domain_shape)
    assert torch.allclose((M @ x.reshape(-1)).reshape(operator.range_shape), operator(x),
                          atol=1e-5)
    dense = M.to_dense()
    assert torch.all(dense >= 0)
    assert torch.allclose(operator.T.to_matrix().to_dense(), dense.T)


def test_norm_is_the_largest_singular_value():
    A = cu.RadonTransform(image_size=16, geometry=cu.ParallelBeam(n_angles=20, n_detectors=23))
    sigma_max = torch.linalg.matrix_norm(A.to_matrix().to_dense().double(), ord=2)
    assert A.norm() == pytest.approx(float(sigma_max), rel=1e-3)
    assert A.T.norm() == A.norm()


def test_line_integrals_of_a_constant_image_are_chord_lengths():
    """A disc of value 1: the central ray of a parallel projection crosses 2 r pixels."""
    n, radius = 64, 20.0
    c = torch.arange(n) + 0.5 - n / 2
    disc = ((c[:, None] ** 2 + c[None, :] ** 2) <= radius**2).float()
    geom = cu.ParallelBeam(n_angles=8, n_detectors=64)
    y = cu.RadonTransform(n, geom)(disc)
    u = geom.detector_positions()
    chord = 2 * torch.sqrt(torch.clamp(radius**2 - u**2, min=0))
    inside = u.abs() < radius - 2          # away from the pixelated rim
    # a pixelated disc is a staircase: its chords are off by up to about 2 pixels
    assert torch.allclose(y[:, inside], chord[inside].float().expand_as(y[:, inside]), atol=2.1)
    assert float(y.sum(-1).mean()) == pytest.approx(float(disc.sum()), rel=1e-3)


def test_point_traces_a_sine():
    """The sinogram of one pixel peaks at u = x cos(theta) + y sin(theta) (its name)."""
    n = 64
    img = torch.zeros(n, n)
    row, col = 10, 50
    img[row, col] = 1.0
    geom = cu.ParallelBeam(n_angles=90, n_detectors=95)
    y = cu.RadonTransform(n, geom)(img)
    x0, y0 = col + 0.5 - n / 2, n / 2 - row - 0.5
    expected = x0 * torch.cos(geom.angles) + y0 * torch.sin(geom.angles)
    u = geom.detector_positions()
    centre_of_mass = (y.double() * u).sum(-1) / y.double().sum(-1)
    # Joseph's interpolation moves a lone pixel's footprint by up to 1/4 pixel near 45 deg
    assert torch.allclose(centre_of_mass, expected, atol=0.3)


@pytest.mark.parametrize("geometry", [
    cu.ParallelBeam(n_angles=64, n_detectors=95),
    cu.FanBeam(n_angles=90, n_detectors=160, source_distance=150.0, detector_distance=100.0),
], ids=["parallel", "fan"])
def test_line_integrals_of_a_gaussian_match_the_exact_formula(geometry):
    """A Gaussian exp(-|r - c|^2 / s^2) integrates to s sqrt(pi) exp(-d^2 / s^2) along a
    line at distance d from c: an analytic reference for both geometries."""
    n, s, centre = 64, 6.0, torch.tensor([10.3, -7.1], dtype=torch.float64)
    c = torch.arange(n, dtype=torch.float64) + 0.5 - n / 2
    img = torch.exp(-((c[None, :] - centre[0]) ** 2 + (-c[:, None] - centre[1]) ** 2) / s**2)
    points, directions = geometry.rays()
    offset = centre - points
    distance = (offset[:, 0] * directions[:, 1] - offset[:, 1] * directions[:, 0]).abs()
    exact = s * math.sqrt(math.pi) * torch.exp(-distance**2 / s**2)
    y = cu.RadonTransform(n, geometry)(img).reshape(-1)
    assert float(torch.linalg.norm(y - exact) / torch.linalg.norm(exact)) < 0.005


# --- agreement with ASTRA ---------------------------------------------------------------


@pytest.mark.parametrize("geometry", [
    cu.ParallelBeam(n_angles=64, n_detectors=95),
    cu.FanBeam(n_angles=90, n_detectors=160, source_distance=150.0, detector_distance=100.0),
], ids=["parallel", "fan"])
def test_torch_and_astra_backends_agree_on_a_smooth_phantom(geometry):
    needs_astra()
    x = smooth_phantom(64)
    ours = cu.RadonTransform(64, geometry)
    astra_op = cu.RadonTransform(64, geometry, backend="astra")
    y, y_astra = ours(x), astra_op(x)
    assert float(torch.linalg.norm(y - y_astra) / torch.linalg.norm(y_astra)) < 0.02
    # Backprojections: each is the exact adjoint of its own projector; ASTRA's fan-beam
    # 'line' kernel spreads weights a little differently from Joseph's interpolation.
    b, b_astra = ours.T(y_astra), astra_op.T(y_astra)
    assert float(torch.linalg.norm(b - b_astra) / torch.linalg.norm(b_astra)) < 0.05


def test_astra_backend_is_a_differentiable_operator_with_exact_cpu_adjoint():
    needs_astra()
    A = cu.RadonTransform(32, cu.ParallelBeam(n_angles=30, n_detectors=47), backend="astra")
    assert A.check_adjoint(torch.float32) < 1e-5
    x = torch.rand(2, 32, 32, requires_grad=True)
    y = torch.rand(2, 30, 47)
    torch.sum(A(x) * y).backward()
    assert torch.allclose(x.grad, A.T(y), atol=1e-5)
    assert A(x.detach().double()).dtype == torch.float64
    M = A.to_matrix()
    assert M.shape == (30 * 47, 32 * 32)


# --- the array policy -------------------------------------------------------------------


def test_numpy_in_numpy_out(operator):
    x = np.random.default_rng(0).random(operator.domain_shape)
    y = operator(x)
    assert isinstance(y, np.ndarray) and y.dtype == np.float64
    assert isinstance(operator.T(y), np.ndarray)
    assert np.allclose(y, operator(torch.from_numpy(x)).numpy())


# --- clear errors -----------------------------------------------------------------------


def test_wrong_image_shape_is_a_clear_error(operator):
    with pytest.raises(ValueError, match=r"expects the image with shape \(\.\.\., 32, 32\)"):
        operator(torch.rand(31, 32))
    with pytest.raises(ValueError, match="sinogram"):
        operator.T(torch.rand(32, 32))


def test_wrong_dtype_and_type_are_clear_errors(operator):
    with pytest.raises(TypeError, match="float32 or float64"):
        operator(torch.ones(32, 32, dtype=torch.int64))
    with pytest.raises(TypeError, match="torch.Tensor or NumPy"):
        operator([[1.0] * 32] * 32)


def test_tensor_on_another_device_is_a_clear_error(operator):
    with pytest.raises(ValueError, match="is on meta but the operator is on cpu"):
        operator(torch.rand(32, 32, device="meta"))


@pytest.mark.parametrize("make, message", [
    (lambda: cu.ParallelBeam(n_angles=0, n_detectors=10), "n_angles must be at least 1"),
    (lambda: cu.ParallelBeam(n_angles=10, n_detectors=-3), "n_detectors must be at least 1"),
    (lambda: cu.ParallelBeam(n_angles=10, n_detectors=10, detector_spacing=0),
     "detector_spacing must be a positive"),
    (lambda: cu.ParallelBeam(n_angles=10, angles=[0.0, 1.0], n_detectors=10), "exactly one"),
    (lambda: cu.ParallelBeam(angles=[[0.0, 1.0]], n_detectors=10), "1D"),
    (lambda: cu.FanBeam(n_angles=10, n_detectors=10, source_distance=-1,
                        detector_distance=10), "source_distance must be a positive"),
    (lambda: cu.FanBeam(n_angles=10, n_detectors=10, source_distance=10,
                        detector_distance=-1), "detector_distance must be a non-negative"),
    (lambda: cu.RadonTransform(64, cu.FanBeam(n_angles=10, n_detectors=10, source_distance=40,
                                              detector_distance=40)),
     "the source is inside the image"),
    (lambda: cu.RadonTransform(0, cu.ParallelBeam(n_angles=10, n_detectors=10)),
     "image_size must be at least 1, got 0"),
    (lambda: cu.RadonTransform((32, 16), cu.ParallelBeam(n_angles=10, n_detectors=10)),
     "square"),
    (lambda: cu.RadonTransform(32, cu.ParallelBeam(n_angles=10, n_detectors=10),
                               backend="skimage"), "backend must be one of"),
])
def test_impossible_geometry_is_a_clear_error(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_geometry_must_be_a_geometry():
    with pytest.raises(TypeError, match="ParallelBeam or FanBeam"):
        cu.RadonTransform(32, geometry="parallel")


@pytest.mark.parametrize("make, message", [
    (lambda: cu.ParallelBeam(n_angles=10, n_detectors=2.5), "n_detectors must be an int"),
    (lambda: cu.ParallelBeam(n_angles=10.0, n_detectors=10), "n_angles must be an int"),
    (lambda: cu.ParallelBeam(n_angles=True, n_detectors=10), "n_angles must be an int"),
    (lambda: cu.RadonTransform(32.0, cu.ParallelBeam(n_angles=10, n_detectors=10)),
     "image_size must be an int"),
])
def test_counts_that_are_not_integers_are_type_errors(make, message):
    with pytest.raises(TypeError, match=message):
        make()


def test_numpy_integers_are_counts():
    geometry = cu.ParallelBeam(n_angles=np.int64(10), n_detectors=np.int32(15))
    A = cu.RadonTransform(np.int64(8), geometry)
    assert A.domain_shape == (8, 8) and A.range_shape == (10, 15)
    assert type(A.image_size) is int and type(geometry.n_detectors) is int


def test_default_angles_cover_half_and_full_turns():
    assert cu.ParallelBeam(n_angles=4, n_detectors=5).angles.tolist() == pytest.approx(
        [0, math.pi / 4, math.pi / 2, 3 * math.pi / 4])
    fan = cu.FanBeam(n_angles=4, n_detectors=5, source_distance=10, detector_distance=5)
    assert fan.angles.tolist() == pytest.approx([0, math.pi / 2, math.pi, 3 * math.pi / 2])
    assert fan.magnification == pytest.approx(1.5)


# --- devices ----------------------------------------------------------------------------


@CUDA
def test_cuda_matches_cpu():
    geom = cu.FanBeam(n_angles=30, n_detectors=64, source_distance=80, detector_distance=40)
    A_cpu = cu.RadonTransform(32, geom)
    A_gpu = A_cpu.to("cuda")
    x = torch.rand(3, 32, 32)
    assert torch.allclose(A_gpu(x.cuda()).cpu(), A_cpu(x), atol=1e-4)
    assert A_gpu.check_adjoint(torch.float32) < 1e-5
    xg = x.cuda().requires_grad_()
    A_gpu(xg).sum().backward()
    assert xg.grad.device.type == "cuda"


def test_astra_backend_lives_in_its_own_module():
    from course_utils.operators import astra, radon
    assert radon.AstraProjector is astra.AstraProjector
    assert not hasattr(radon, "_AstraProjector") and not hasattr(radon, "_RECENT")


def test_operators_with_the_same_geometry_share_one_built_matrix():
    geom = cu.ParallelBeam(n_angles=12, n_detectors=23)
    A1, A2 = cu.RadonTransform(16, geom), cu.RadonTransform(16, geom)
    assert A1.to_matrix() is A2.to_matrix()
    other = cu.RadonTransform(16, cu.ParallelBeam(n_angles=12, n_detectors=23,
                                                  detector_spacing=1.1))
    assert other.to_matrix() is not A1.to_matrix()
    assert not torch.allclose(other.to_matrix().to_dense(), A1.to_matrix().to_dense())
