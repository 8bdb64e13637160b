"""The cone-beam operator of lesson 13 and its geometry: exact adjoint, gradients,
batches, analytic line integrals, the fan- and parallel-beam limits, clear errors, and
ASTRA (its 3D projectors need a GPU)."""

import math

import numpy as np
import pytest
import torch

import course_utils as cu
from conftest import CUDA, needs_astra
from course_utils.operators import cone_beam

# --- small scanners: odd and even sizes, non-square detectors ----------------------------

GEOMETRIES = {
    # 12 x 14 x 16 volume, 7 x 20 detector, angles through 45 degrees (ties of the axes)
    "even": lambda: cu.ConeBeam(n_angles=8, n_rows=7, n_cols=20, source_distance=30.0,
                                detector_distance=18.0, row_spacing=1.9, col_spacing=1.6),
    "odd-explicit-angles": lambda: cu.ConeBeam(
        angles=[0.1, 0.8, 1.9, 2.5, 3.3, 4.0, 5.7], n_rows=9, n_cols=15,
        source_distance=25.0, detector_distance=0.0, row_spacing=1.2, col_spacing=1.3),
    "wide-cone": lambda: cu.ConeBeam(n_angles=5, n_rows=16, n_cols=11, source_distance=12.0,
                                     detector_distance=20.0, row_spacing=3.0, col_spacing=4.0),
}
SHAPE = (12, 14, 16)


@pytest.fixture(params=sorted(GEOMETRIES))
def operator(request):
    return cu.ConeBeamTransform(SHAPE, GEOMETRIES[request.param]())


def tiny_operator():
    """Small enough for gradcheck and an explicit matrix: 3 x 4 x 5 voxels, 24 rays."""
    geometry = cu.ConeBeam(n_angles=3, n_rows=2, n_cols=4, source_distance=10.0,
                           detector_distance=5.0, row_spacing=1.5, col_spacing=1.5)
    return cu.ConeBeamTransform((3, 4, 5), geometry)


def random(shape, seed=0, dtype=torch.float64, **kwargs):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen, dtype=dtype, **kwargs)


def voxel_centres(shape, dtype=torch.float64):
    """x, y, z of the voxel centres as broadcastable (1, 1, W), (1, H, 1), (D, 1, 1)."""
    depth, height, width = shape
    x = torch.arange(width, dtype=dtype) + 0.5 - width / 2
    y = height / 2 - 0.5 - torch.arange(height, dtype=dtype)
    z = torch.arange(depth, dtype=dtype) + 0.5 - depth / 2
    return x[None, None, :], y[None, :, None], z[:, None, None]


#: Three smooth blobs off the centre in x, y and z: (centre, width, value).
BLOBS = [((5.0, 7.0, -3.0), 6.0, 1.0), ((-6.0, -4.0, 5.0), 5.0, 0.7),
         ((2.0, -8.0, -6.0), 4.5, 0.5)]


def gaussian_blobs(shape, dtype=torch.float64):
    """The blobs, sampled at the voxel centres: smooth enough that a good projector lands
    within a fraction of a percent of their exact line integrals, and without symmetry,
    so a flipped or swapped axis shows at once."""
    x, y, z = voxel_centres(shape, dtype)
    volume = torch.zeros(shape, dtype=dtype)
    for (cx, cy, cz), width, value in BLOBS:
        volume += value * torch.exp(-((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2)
                                    / width**2)
    return volume


def blob_line_integrals(geometry):
    """exp(-|p - c|^2 / s^2) integrates to s sqrt(pi) exp(-d^2 / s^2) along a line at
    distance d from c."""
    views = []
    for view in range(geometry.n_angles):
        source, pixels = geometry.source_and_pixels(view)
        direction = pixels - source
        direction = direction / direction.norm(dim=-1, keepdim=True)
        total = 0.0
        for centre, width, value in BLOBS:
            offset = torch.tensor(centre, dtype=torch.float64) - source
            distance2 = offset.dot(offset) - (direction @ offset) ** 2
            total = total + value * width * math.sqrt(math.pi) * torch.exp(-distance2 / width**2)
        views.append(total)
    return torch.stack(views)


# --- the adjoint, gradients, batches, dtypes ---------------------------------------------


def test_adjoint_is_exact_in_float32_and_float64(operator):
    assert operator.check_adjoint(torch.float32) < 1e-5
    assert operator.check_adjoint(torch.float64) < 1e-12


def test_dot_product_test_by_hand(operator):
    x, y = random(operator.domain_shape, 1), random(operator.range_shape, 2)
    lhs, rhs = torch.sum(operator(x) * y), torch.sum(x * operator.T(y))
    assert abs(float(lhs - rhs)) <= 1e-12 * float(operator(x).norm() * y.norm())


def test_adjoint_of_adjoint_is_the_operator(operator):
    assert operator.T.T is operator
    assert operator.domain_shape == SHAPE
    assert operator.range_shape == operator.geometry.sinogram_shape
    assert operator.T.domain_shape == operator.range_shape


def test_gradcheck_forward_and_adjoint():
    A = tiny_operator()
    x = random((2, *A.domain_shape), 3, requires_grad=True)
    y = random((2, *A.range_shape), 4, requires_grad=True)
    assert torch.autograd.gradcheck(A, (x,))
    assert torch.autograd.gradcheck(A.T, (y,))
    assert torch.autograd.gradgradcheck(A, (x,))
    assert torch.autograd.gradgradcheck(A.T, (y,))


def test_gradient_of_data_fidelity_is_the_backprojected_residual(operator):
    x = random(operator.domain_shape, 5).requires_grad_()
    y = random(operator.range_shape, 6)
    loss = 0.5 * torch.sum((operator(x) - y) ** 2)
    loss.backward()
    expected = operator.T(operator(x.detach()) - y)
    assert torch.allclose(x.grad, expected, rtol=1e-10, atol=1e-10)


def test_batches_of_any_shape_match_one_by_one(operator):
    x = random((2, 3, *operator.domain_shape), 7)
    y = operator(x)
    assert y.shape == (2, 3, *operator.range_shape)
    assert torch.allclose(y[1, 2], operator(x[1, 2]), atol=1e-12)
    back = operator.T(y)
    assert back.shape == x.shape
    assert torch.allclose(back[0, 1], operator.T(y[0, 1]), atol=1e-12)
    assert operator(x[:0]).shape == (0, 3, *operator.range_shape)


def test_float32_agrees_with_float64_and_dtypes_are_kept(operator):
    x = torch.rand(operator.domain_shape, dtype=torch.float64)
    y64, y32 = operator(x), operator(x.float())
    assert y32.dtype == torch.float32 and y64.dtype == torch.float64
    assert float((y32.double() - y64).norm() / y64.norm()) < 1e-5
    b64, b32 = operator.T(y64), operator.T(y64.float())
    assert b32.dtype == torch.float32
    assert float((b32.double() - b64).norm() / b64.norm()) < 1e-5


def test_chunks_and_recomputed_positions_give_the_same_operator(monkeypatch):
    geometry = GEOMETRIES["even"]()
    kept = cu.ConeBeamTransform(SHAPE, geometry, dtype=torch.float64)
    assert kept.cache_bytes > 0
    monkeypatch.setattr(cone_beam, "CHUNK_SAMPLES", 500)
    monkeypatch.setattr(cone_beam, "CACHE_BUDGET_BYTES", 0)
    recomputed = cu.ConeBeamTransform(SHAPE, geometry, dtype=torch.float64)
    assert recomputed.cache_bytes == 0
    x, y = random((2, *SHAPE), 8), random((2, *kept.range_shape), 9)
    assert torch.allclose(recomputed(x), kept(x), atol=1e-12)
    assert torch.allclose(recomputed.T(y), kept.T(y), atol=1e-12)
    assert recomputed.check_adjoint(torch.float64) < 1e-12


def test_numpy_in_numpy_out(operator):
    x = np.random.default_rng(0).random(operator.domain_shape)
    y = operator(x)
    assert isinstance(y, np.ndarray) and y.dtype == np.float64 and y.shape == operator.range_shape
    back = operator.T(y)
    assert isinstance(back, np.ndarray) and back.shape == operator.domain_shape
    np.testing.assert_allclose(y, operator(torch.from_numpy(x)).numpy(), rtol=1e-12)


def test_matrix_and_norm_of_a_tiny_operator():
    A = tiny_operator()
    M = A.to_matrix().to_dense()
    assert M.shape == (math.prod(A.range_shape), math.prod(A.domain_shape))
    assert torch.all(M >= 0)
    x = random(A.domain_shape, 10)
    assert torch.allclose((M @ x.reshape(-1)).reshape(A.range_shape), A(x), atol=1e-12)
    assert torch.allclose(A.T.to_matrix().to_dense(), M.T)
    sigma_max = float(torch.linalg.matrix_norm(M, ord=2))
    assert A.norm() == pytest.approx(sigma_max, rel=1e-3)


# --- analytic values -----------------------------------------------------------------------


def test_line_integrals_of_smooth_blobs_match_the_exact_formula():
    """Smooth objects, so only the projector's own error remains (that of bilinear
    interpolation, 0.6 %); the volume flipped along H would be off by 75 %."""
    shape = (40, 44, 48)
    geometry = cu.ConeBeam(n_angles=30, n_rows=40, n_cols=56, source_distance=150.0,
                           detector_distance=50.0, row_spacing=2.0, col_spacing=2.0)
    A = cu.ConeBeamTransform(shape, geometry, dtype=torch.float64)
    exact = blob_line_integrals(geometry)
    volume = gaussian_blobs(shape)
    assert float((A(volume) - exact).norm() / exact.norm()) < 0.008
    assert float((A(volume.flip(-2)) - exact).norm() / exact.norm()) > 0.5


def _shepp_logan_error(n, n_angles=4):
    geometry = cu.ConeBeam(n_angles=n_angles, n_rows=48, n_cols=48, source_distance=3 * n,
                           detector_distance=n, row_spacing=3.2 * n / 64,
                           col_spacing=3.2 * n / 64)
    projections = cu.ConeBeamTransform(n, geometry)(cu.shepp_logan_3d(n)).double()
    ellipsoids = cu.shepp_logan_3d_ellipsoids(n)
    exact = torch.stack([cu.ellipsoid_line_integrals(ellipsoids, *geometry.source_and_pixels(i))
                         for i in range(n_angles)])
    return float((projections - exact).norm() / exact.norm())


def test_shepp_logan_projections_approach_the_exact_line_integrals():
    """The voxelised phantom against its ellipsoids, through the same pixel centres.

    The error is the voxelisation of the phantom (its skull is less than one voxel thick
    at 64³), so it halves when the voxels do: 14 % at 32³, 9 % at 64³, 4 % at 128³.
    Joseph's 2D projector has the same behaviour on the 2D phantom (6 % at 64²).
    """
    coarse, fine = _shepp_logan_error(32), _shepp_logan_error(64)
    assert fine < 0.1
    assert fine < 0.65 * coarse


def test_central_ray_through_a_constant_volume_is_its_chord():
    """The central pixel's ray passes through the origin: in a volume of ones its line
    integral is the length of the chord of the box, n / cos(theta) for a cube whose
    faces it crosses (odd detector: a pixel sits on the central ray)."""
    n = 10
    angles = torch.tensor([0.0, 0.3, -0.5, math.pi / 2 + 0.2], dtype=torch.float64)
    geometry = cu.ConeBeam(angles=angles, n_rows=5, n_cols=7, source_distance=40.0,
                           detector_distance=20.0)
    projections = cu.ConeBeamTransform(n, geometry, dtype=torch.float64)(
        torch.ones(n, n, n, dtype=torch.float64))
    # the central ray runs along (-sin, cos, 0): its angle with the nearest axis
    tilt = torch.minimum(angles.abs(), (angles.abs() - math.pi / 2).abs())
    assert torch.allclose(projections[:, 2, 3], n / torch.cos(tilt), atol=1e-10)


def test_rays_that_miss_the_volume_measure_nothing():
    geometry = cu.ConeBeam(n_angles=6, n_rows=30, n_cols=30, source_distance=40.0,
                           detector_distance=40.0, row_spacing=2.0, col_spacing=2.0)
    A = cu.ConeBeamTransform(8, geometry, dtype=torch.float64)
    y = A(torch.ones(8, 8, 8, dtype=torch.float64))
    # a ball of radius 7 around the origin holds the volume: its shadow on the detector
    # has radius 7 * 80 / sqrt(40^2 - 7^2) < 14.3, so the outer pixels see nothing
    v, u = geometry.detector_positions()
    far = (u[None, :] ** 2 + v[:, None] ** 2) > 14.5**2
    assert torch.all(y[:, far] == 0) and torch.all(y[:, ~far].sum(-1) > 0)


def test_zero_cone_angle_gives_the_2d_radon_transform_of_the_middle_slice():
    """A source far away and a detector through the axis: the central detector row sees
    the middle slice (odd D) in parallel beam, by Joseph's method, as RadonTransform."""
    geometry = cu.ConeBeam(n_angles=12, n_rows=5, n_cols=25, source_distance=1e7,
                           detector_distance=0.0)
    x = torch.rand(17, 16, 16, dtype=torch.float64)
    y = cu.ConeBeamTransform((17, 16, 16), geometry, dtype=torch.float64)(x)
    radon = cu.RadonTransform(16, cu.ParallelBeam(angles=geometry.angles, n_detectors=25))
    assert torch.allclose(y[:, 2], radon(x[8]), atol=1e-4)


def test_fan_beam_limit_of_a_z_invariant_volume():
    """A volume that does not change along z, and a single detector row at z = 0: every
    ray stays in the central plane, and the cone beam is the 2D fan beam."""
    fan = cu.FanBeam(n_angles=10, n_detectors=30, source_distance=40.0,
                     detector_distance=25.0, detector_spacing=1.5)
    cone = cu.ConeBeam(angles=fan.angles, n_rows=1, n_cols=30, source_distance=40.0,
                       detector_distance=25.0, col_spacing=1.5)
    image = torch.rand(16, 16, dtype=torch.float64)
    y = cu.ConeBeamTransform((5, 16, 16), cone, dtype=torch.float64)(image.expand(5, 16, 16))
    assert torch.allclose(y[:, 0], cu.RadonTransform(16, fan)(image), atol=1e-4)


# --- the geometry ------------------------------------------------------------------------


def test_source_and_pixel_centres_by_hand():
    geometry = cu.ConeBeam(angles=[0.0, math.pi / 2], n_rows=2, n_cols=3, source_distance=10.0,
                           detector_distance=5.0, row_spacing=2.0, col_spacing=0.5)
    source, pixels = geometry.source_and_pixels(0)
    assert torch.allclose(source, torch.tensor([0.0, -10.0, 0.0], dtype=torch.float64))
    assert pixels.shape == (2, 3, 3) and pixels.dtype == torch.float64
    # rows at z = -1 and 1, columns at u = -0.5, 0, 0.5 along x, the detector at y = 5
    assert torch.allclose(pixels[0, 0], torch.tensor([-0.5, 5.0, -1.0], dtype=torch.float64))
    assert torch.allclose(pixels[1, 2], torch.tensor([0.5, 5.0, 1.0], dtype=torch.float64))
    source, pixels = geometry.source_and_pixels(1)      # a quarter turn later
    assert torch.allclose(source, torch.tensor([10.0, 0.0, 0.0], dtype=torch.float64),
                          atol=1e-12)
    assert torch.allclose(pixels[1, 2], torch.tensor([-5.0, 0.5, 1.0], dtype=torch.float64),
                          atol=1e-12)
    rows, cols = geometry.detector_positions()
    assert rows.tolist() == [-1.0, 1.0] and cols.tolist() == [-0.5, 0.0, 0.5]


def test_geometry_follows_astra_cone_vectors():
    """ASTRA's own conversion of 'cone' to 'cone_vec' (CPU only): source, detector
    centre, and the steps from one column and one row to the next."""
    astra = needs_astra()
    geometry = cu.ConeBeam(angles=[0.0, 0.7, 2.9], n_rows=4, n_cols=5, source_distance=30.0,
                           detector_distance=12.0, row_spacing=1.3, col_spacing=0.8)
    vectors = astra.functions.geom_2vec(astra.create_proj_geom(
        "cone", geometry.col_spacing, geometry.row_spacing, geometry.n_rows,
        geometry.n_cols, geometry.angles.numpy(), geometry.source_distance,
        geometry.detector_distance))["Vectors"]
    for view, (s, d, u, v) in enumerate(torch.from_numpy(vectors).reshape(-1, 4, 3)):
        source, pixels = geometry.source_and_pixels(view)
        r = torch.arange(4, dtype=torch.float64)[:, None, None] + 0.5 - 2
        k = torch.arange(5, dtype=torch.float64)[None, :, None] + 0.5 - 2.5
        assert torch.allclose(source, s, atol=1e-12)
        assert torch.allclose(pixels, d + k * u + r * v, atol=1e-12)


def test_magnification_cone_angle_and_default_angles():
    geometry = cu.ConeBeam(n_angles=4, n_rows=10, n_cols=6, source_distance=30.0,
                           detector_distance=10.0, row_spacing=2.0)
    assert geometry.magnification == pytest.approx(4 / 3)
    assert geometry.cone_angle == pytest.approx(2 * math.atan(10.0 / 40.0))
    assert geometry.angles.tolist() == pytest.approx([0, math.pi / 2, math.pi, 3 * math.pi / 2])
    assert geometry.sinogram_shape == (4, 10, 6)
    assert "ConeBeam(n_angles=4, n_rows=10" in repr(geometry)
    assert "volume_shape=(3, 4, 5)" in repr(tiny_operator())


def test_names_are_exported_flat():
    from course_utils.operators.cone_beam import ConeBeamTransform
    from course_utils.operators.geometry import ConeBeam
    assert cu.ConeBeamTransform is ConeBeamTransform and cu.ConeBeam is ConeBeam


# --- clear errors --------------------------------------------------------------------------


def test_wrong_volume_shape_dtype_and_device_are_clear_errors(operator):
    with pytest.raises(ValueError, match=r"expects the volume with shape \(\.\.\., 12, 14, 16\)"):
        operator(torch.rand(12, 14, 15))
    with pytest.raises(ValueError, match="projections"):
        operator.T(torch.rand(*SHAPE))
    with pytest.raises(TypeError, match="float32 or float64"):
        operator(torch.ones(SHAPE, dtype=torch.int64))
    with pytest.raises(ValueError, match="is on meta but the operator is on cpu"):
        operator(torch.rand(SHAPE, device="meta"))


@pytest.mark.parametrize("make, error, message", [
    (lambda: cu.ConeBeam(n_angles=0, n_rows=4, n_cols=4, source_distance=10,
                         detector_distance=5), ValueError, "n_angles must be at least 1"),
    (lambda: cu.ConeBeam(n_angles=4, n_rows=0, n_cols=4, source_distance=10,
                         detector_distance=5), ValueError, "n_rows must be at least 1"),
    (lambda: cu.ConeBeam(n_angles=4, n_rows=4, n_cols=2.5, source_distance=10,
                         detector_distance=5), TypeError, "n_cols must be an int"),
    (lambda: cu.ConeBeam(n_angles=4, n_rows=4, n_cols=4, source_distance=-1,
                         detector_distance=5), ValueError, "source_distance must be a positive"),
    (lambda: cu.ConeBeam(n_angles=4, n_rows=4, n_cols=4, source_distance=10,
                         detector_distance=-1), ValueError,
     "detector_distance must be a non-negative"),
    (lambda: cu.ConeBeam(n_angles=4, n_rows=4, n_cols=4, source_distance=10,
                         detector_distance=5, row_spacing=0), ValueError,
     "row_spacing must be a positive"),
    (lambda: cu.ConeBeam(n_angles=4, n_rows=4, n_cols=4, source_distance=10,
                         detector_distance=5, col_spacing=float("nan")), ValueError,
     "col_spacing must be a positive"),
    (lambda: cu.ConeBeam(n_angles=4, angles=[0.0], n_rows=4, n_cols=4, source_distance=10,
                         detector_distance=5), ValueError, "exactly one"),
    (lambda: cu.ConeBeam(n_angles=4, n_rows=4, n_cols=4, source_distance=10,
                         detector_distance=5).source_and_pixels(4), IndexError, "out of range"),
    (lambda: cu.ConeBeamTransform(8, cu.ConeBeam(n_angles=4, n_rows=4, n_cols=4,
                                                 source_distance=5, detector_distance=5)),
     ValueError, "the source is inside the volume"),
    (lambda: cu.ConeBeamTransform((8, 8), GEOMETRIES["even"]()), ValueError, r"\(D, H, W\)"),
    (lambda: cu.ConeBeamTransform((8, 0, 8), GEOMETRIES["even"]()), ValueError,
     r"volume_shape\[1\] must be at least 1"),
    (lambda: cu.ConeBeamTransform(8.0, GEOMETRIES["even"]()), TypeError,
     "volume_shape must be an int"),
    (lambda: cu.ConeBeamTransform(8, cu.FanBeam(n_angles=4, n_detectors=8, source_distance=20,
                                                detector_distance=5)),
     TypeError, "geometry must be a ConeBeam"),
    (lambda: cu.ConeBeamTransform(8, GEOMETRIES["even"](), dtype=torch.float16), TypeError,
     "dtype must be"),
    (lambda: cu.RadonTransform(8, GEOMETRIES["even"]()), TypeError, "ParallelBeam or FanBeam"),
])
def test_bad_geometries_and_shapes_are_clear_errors(make, error, message):
    with pytest.raises(error, match=message):
        make()


# --- devices and ASTRA -------------------------------------------------------------------------


def test_operator_and_its_adjoint_move():
    A = tiny_operator()
    moved = A.to("cpu")
    assert moved is not A and moved.device.type == "cpu"
    y = random(A.range_shape, 12)
    assert torch.allclose(A.T.to("cpu")(y), A.T(y), atol=1e-12)


@CUDA
def test_cuda_matches_cpu():
    A_cpu = cu.ConeBeamTransform(SHAPE, GEOMETRIES["even"]())
    A_gpu = A_cpu.to("cuda")
    x = torch.rand(3, *SHAPE)
    assert torch.allclose(A_gpu(x.cuda()).cpu(), A_cpu(x), atol=1e-4)
    y = torch.rand(3, *A_cpu.range_shape)
    assert torch.allclose(A_gpu.T(y.cuda()).cpu(), A_cpu.T(y), atol=1e-4)
    assert A_gpu.check_adjoint(torch.float32) < 1e-5
    assert A_gpu.check_adjoint(torch.float64) < 1e-12
    xg = x.cuda().requires_grad_()
    A_gpu(xg).sum().backward()
    assert xg.grad.device.type == "cuda"


@CUDA
def test_astra_cone_projector_agrees():
    """ASTRA's GPU cone projector (Joseph's method too) on the same scanner.

    ASTRA's 3D volumes are laid out ``(D, H, W)`` like ours, but their rows go *up* in
    y where ours go down, so ASTRA's volume is ours flipped along H; its projections
    are laid out ``(n_rows, n_angles, n_cols)``.  The blobs are smooth, so the two
    discretisations (ASTRA picks the stepping axis per view, we per detector column)
    differ by much less than the tolerance, and a flipped or swapped axis by far more.
    """
    astra = needs_astra()
    if not astra.use_cuda():
        pytest.skip("ASTRA was built without CUDA")
    shape = (40, 44, 48)                                   # D, H, W: all different
    geometry = cu.ConeBeam(n_angles=30, n_rows=40, n_cols=56, source_distance=150.0,
                           detector_distance=50.0, row_spacing=2.0, col_spacing=2.0)
    volume = gaussian_blobs(shape, torch.float32)
    volume_geometry = astra.create_vol_geom(shape[1], shape[2], shape[0])
    projection_geometry = astra.create_proj_geom(
        "cone", geometry.col_spacing, geometry.row_spacing, geometry.n_rows, geometry.n_cols,
        geometry.angles.numpy(), geometry.source_distance, geometry.detector_distance)
    data_id, theirs = astra.create_sino3d_gpu(volume.flip(-2).contiguous().numpy(),
                                              projection_geometry, volume_geometry)
    astra.data3d.delete(data_id)
    theirs = torch.from_numpy(theirs).transpose(0, 1)     # (n_angles, n_rows, n_cols)
    ours = cu.ConeBeamTransform(shape, geometry, device="cuda")(volume.cuda()).cpu()
    assert float((ours - theirs).norm() / theirs.norm()) < 0.015
