"""FDK (lesson 13, section 3): accuracy, scale, cone-beam artefacts, weights, errors.

The projections are exact line integrals of ellipsoids through the detector pixel
centres (``ellipsoid_line_integrals``), not ``A(x)``, so there is no inverse crime.
"""

import math

import numpy as np
import pytest
import torch

import course_utils as cu
from course_utils.simulation.phantoms_3d import _rasterise

torch.set_num_threads(1)


def exact_projections(ellipsoids, geometry, dtype=torch.float32):
    """Line integrals of the ellipsoids through every detector pixel centre, every view."""
    return torch.stack([cu.ellipsoid_line_integrals(ellipsoids, *geometry.source_and_pixels(i))
                        for i in range(geometry.n_angles)]).to(dtype)


# A small cone angle: 48 rows of 1.5 at (d_s + d_d) = 300, about 13.7 degrees.
SMALL_CONE = dict(n_angles=120, n_rows=48, n_cols=80, source_distance=200,
                  detector_distance=100, row_spacing=1.5, col_spacing=1.5)


@pytest.fixture(scope="module")
def small_cone():
    geometry = cu.ConeBeam(**SMALL_CONE)
    return cu.ConeBeamTransform(48, geometry)


def test_fdk_of_shepp_logan_matches_the_phantom_in_the_central_plane(small_cone):
    A, n = small_cone, 48
    x = cu.shepp_logan_3d(n)
    x_fdk = cu.fdk(A, exact_projections(cu.shepp_logan_3d_ellipsoids(n), A.geometry))
    assert x_fdk.shape == (n, n, n) and x_fdk.dtype == torch.float32
    centre = n // 2
    # measured: 0.027 in both middle slices (edges of the skull at 48^3 dominate);
    # FDK scaled by 0.9 instead gives 0.037, a blurred phantom 0.05
    for d in (centre - 1, centre):
        assert float((x_fdk[d] - x[d]).abs().mean()) < 0.032
    # measured: 0.1240 against 0.1233 (0.5 %) in the central slab of 8 slices
    slab = slice(centre - 4, centre + 4)
    assert float(x_fdk[slab].mean()) == pytest.approx(float(x[slab].mean()), rel=0.02)


def test_a_uniform_ball_reconstructs_to_its_value(small_cone):
    A, c = small_cone, 24
    ball = torch.tensor([[1.0, 16, 16, 16, 0, 0, 0, 0]], dtype=torch.float64)
    x_fdk = cu.fdk(A, exact_projections(ball, A.geometry))
    # measured: 0.999 in the central 2^3 and 8^3 voxels
    assert float(x_fdk[c - 1:c + 1, c - 1:c + 1, c - 1:c + 1].mean()) == pytest.approx(1, abs=0.05)
    assert float(x_fdk[c - 4:c + 4, c - 4:c + 4, c - 4:c + 4].mean()) == pytest.approx(1, abs=0.05)
    # and 0 outside the ball
    assert float(x_fdk[c, c, :4].abs().max()) < 0.05


def test_off_centre_balls_in_the_central_plane_need_the_distance_weights():
    # Large cone angle (56 degrees), but in the central plane FDK is fan-beam FBP:
    # exact.  Off the axis, the 1/U^2 weights matter (without them: 0.978, 0.977;
    # without the cosine weights: 1.010, 1.003).
    n = 40
    geometry = cu.ConeBeam(n_angles=90, n_rows=64, n_cols=64, source_distance=60,
                           detector_distance=60, row_spacing=2.0, col_spacing=2.0)
    A = cu.ConeBeamTransform(n, geometry)
    balls = torch.tensor([[1.0, 5, 5, 5, 11, 6, 0, 0], [1.0, 5, 5, 5, -8, -8, 0, 0]],
                         dtype=torch.float64)
    x_fdk = cu.fdk(A, exact_projections(balls, geometry))
    # centres: x = 11, y = 6 -> columns 30-31, rows 13-14; x = y = -8 -> 11-12, 27-28
    # measured: 1.001 and 0.996
    assert float(x_fdk[19:21, 13:15, 30:32].mean()) == pytest.approx(1.0, abs=0.01)
    assert float(x_fdk[19:21, 27:29, 11:13].mean()) == pytest.approx(1.0, abs=0.01)


def test_fdk_is_its_three_steps(tiny):
    # what lesson 13's exercise builds by hand: cosine weights, ramp filter with the
    # detector spacing scaled to the axis, voxel-driven weighted backprojection
    y = torch.rand(tiny.range_shape, generator=torch.Generator().manual_seed(2),
                   dtype=torch.float64)
    g = tiny.geometry
    q = cu.filter_sinogram(y * cu.fdk_cosine_weights(g), "shepp-logan",
                           detector_spacing=g.col_spacing / g.magnification)
    assert torch.allclose(cu.fdk(tiny, y, filter="shepp-logan"), cu.fdk_backproject(tiny, q),
                          atol=1e-12)


def defrise_errors(source_distance, n_rows, n=40):
    """FDK of a stack of five thin flat discs (z = 0, +-6, +-12); error per disc and peaks.

    Returns the mean absolute error over the 6 slices around each disc, from the
    central disc outwards (both sides together), and the mean value in the middle of
    each disc, from the central one outwards (one side).
    """
    geometry = cu.ConeBeam(n_angles=90, n_rows=n_rows, n_cols=64,
                           source_distance=source_distance, detector_distance=60,
                           row_spacing=2.0, col_spacing=2.0)
    A = cu.ConeBeamTransform(n, geometry)
    discs = torch.tensor([[1.0, 13, 13, 1.5, 0, 0, z, 0] for z in (-12, -6, 0, 6, 12)],
                         dtype=torch.float64)
    x = _rasterise(discs, (n, n, n), 4).float()
    x_fdk = cu.fdk(A, exact_projections(discs, geometry))
    error = (x_fdk - x).abs().mean(dim=(1, 2))          # per slice
    c = n // 2
    per_disc = [float(error[c - 3:c + 3].mean()),
                float(torch.cat([error[c - 9:c - 3], error[c + 3:c + 9]]).mean()),
                float(torch.cat([error[c - 15:c - 9], error[c + 9:c + 15]]).mean())]
    middle = x_fdk[:, c - 4:c + 4, c - 4:c + 4].mean(dim=(1, 2))
    peaks = [float(middle[c + z - 1:c + z + 1].mean()) for z in (0, 6, 12)]
    return per_disc, peaks


def test_cone_beam_artefacts_grow_away_from_the_central_plane_and_with_the_cone_angle():
    # A Defrise-like phantom (thin discs stacked along z) under a large cone angle:
    # 64 rows of 2 at (d_s + d_d) = 120, 56 degrees; then a small one, 17.5 degrees.
    large, large_peaks = defrise_errors(source_distance=60, n_rows=64)
    small, _ = defrise_errors(source_distance=200, n_rows=40)
    # measured (large cone): 0.037, 0.115, 0.129 from the central disc outwards
    assert large[0] < large[1] < large[2]
    assert large[2] > 2.5 * large[0]
    # measured: the central disc 0.99 (FDK is exact there), the outer ones 0.76, 0.50
    assert large_peaks[0] == pytest.approx(1.0, abs=0.05)
    assert large_peaks[2] < 0.75
    # measured (small cone): 0.043, 0.051, 0.074 -- the same trend, weaker
    assert small[2] > small[0]
    assert large[2] > 1.4 * small[2] and large[1] > 1.8 * small[1]


def test_cosine_weights_are_one_at_the_centre_and_decrease_outwards():
    # odd numbers of rows and columns: a pixel sits on the central ray
    geometry = cu.ConeBeam(n_angles=4, n_rows=5, n_cols=7, source_distance=100,
                           detector_distance=50, row_spacing=3.0, col_spacing=2.0)
    w = cu.fdk_cosine_weights(geometry)
    assert w.shape == (5, 7) and w.dtype == torch.float64
    assert float(w[2, 3]) == pytest.approx(1.0, abs=1e-12)
    assert torch.all(w[2, :3].diff() > 0) and torch.all(w[2, 3:].diff() < 0)
    assert torch.all(w[:2, 3].diff() > 0) and torch.all(w[2:, 3].diff() < 0)
    # pixel (0, 0): v = -2 * 3 / 1.5 = -4, u = -3 * 2 / 1.5 = -4 on the rotation axis
    assert float(w[0, 0]) == pytest.approx(100 / math.sqrt(100**2 + 4**2 + 4**2), rel=1e-12)
    v, u = cu.fdk_detector_coordinates(geometry)
    assert float(v[0]) == pytest.approx(-4) and float(u[0]) == pytest.approx(-4)


def test_distance_weights_by_hand():
    geometry = cu.ConeBeam(angles=[0.0, math.pi / 2], n_rows=4, n_cols=4,
                           source_distance=10, detector_distance=5)
    w = cu.fdk_distance_weights(geometry, (1, 3, 3))
    assert w.shape == (2, 3, 3)
    assert float(w[0, 1, 1]) == pytest.approx(1.0)        # the rotation axis
    # theta = 0: the source is at (0, -10, 0) and the central ray goes along +y, so the
    # bottom row (y = -1) is nearer the source: U = (10 - 1) / 10
    assert float(w[0, 2, 1]) == pytest.approx((10 / 9) ** 2)
    assert float(w[0, 0, 1]) == pytest.approx((10 / 11) ** 2)
    # theta = pi/2: the source is at (10, 0, 0), the central ray goes along -x
    assert float(w[1, 1, 2]) == pytest.approx((10 / 9) ** 2)
    assert float(w[1, 1, 0]) == pytest.approx((10 / 11) ** 2)


def test_backprojection_of_ones_is_the_sum_of_the_distance_weights(small_cone):
    A = small_cone
    volume = cu.fdk_backproject(A, torch.ones(A.geometry.sinogram_shape, dtype=torch.float64))
    expected = cu.fdk_distance_weights(A.geometry, A.volume_shape).sum(0) \
        * (math.pi / A.geometry.n_angles)
    # every voxel sees the detector in every view (away from its outermost half pixel)
    assert torch.allclose(volume[24], expected, rtol=1e-10)
    assert torch.allclose(volume[5], expected, rtol=1e-10)


@pytest.fixture(scope="module")
def tiny():
    geometry = cu.ConeBeam(n_angles=12, n_rows=12, n_cols=16, source_distance=40,
                           detector_distance=20, row_spacing=1.5, col_spacing=1.5)
    return cu.ConeBeamTransform((8, 10, 10), geometry)


def test_fdk_is_linear_and_takes_batches(tiny):
    gen = torch.Generator().manual_seed(0)
    y1, y2 = (torch.rand(tiny.range_shape, generator=gen, dtype=torch.float64)
              for _ in range(2))
    x1, x2 = cu.fdk(tiny, y1), cu.fdk(tiny, y2)
    assert torch.allclose(cu.fdk(tiny, 2 * y1 - 3 * y2), 2 * x1 - 3 * x2, atol=1e-10)
    batch = cu.fdk(tiny, torch.stack([y1, y2])[None])
    assert batch.shape == (1, 2, 8, 10, 10)
    assert torch.allclose(batch[0, 1], x2, atol=1e-12)
    assert x1.abs().max() > 0


def test_float32_and_float64_and_numpy_agree(tiny):
    y = torch.rand(tiny.range_shape, generator=torch.Generator().manual_seed(1),
                   dtype=torch.float64)
    x64 = cu.fdk(tiny, y, filter="hann", cutoff=0.8)
    x32 = cu.fdk(tiny, y.float(), filter="hann", cutoff=0.8)
    assert x64.dtype == torch.float64 and x32.dtype == torch.float32
    assert torch.allclose(x32.double(), x64, atol=1e-5 * float(x64.abs().max()))
    x_np = cu.fdk(tiny, y.numpy(), filter="hann", cutoff=0.8)
    assert isinstance(x_np, np.ndarray) and np.allclose(x_np, x64.numpy())
    # a smoother filter changes the result
    assert not torch.allclose(cu.fdk(tiny, y), x64)


def test_fdk_is_differentiable(tiny):
    y = torch.rand(tiny.range_shape, dtype=torch.float64, requires_grad=True)
    cu.fdk(tiny, y).sum().backward()
    assert y.grad is not None and float(y.grad.abs().sum()) > 0


def test_clear_errors(tiny):
    y = torch.zeros(tiny.range_shape)
    radon = cu.RadonTransform(16, cu.FanBeam(n_angles=8, n_detectors=24,
                                             source_distance=40, detector_distance=20))
    with pytest.raises(TypeError, match="ConeBeamTransform.*cu.fbp"):
        cu.fdk(radon, torch.zeros(8, 24))
    with pytest.raises(TypeError, match="ConeBeamTransform"):
        cu.fdk(y, tiny)
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 12, 12, 16\)"):
        cu.fdk(tiny, torch.zeros(12, 16, 12))
    with pytest.raises(ValueError, match="filter"):
        cu.fdk(tiny, y, filter="ramp")
    with pytest.raises(ValueError, match="cutoff"):
        cu.fdk(tiny, y, cutoff=1.5)
    with pytest.raises(TypeError):
        cu.fdk(tiny, torch.zeros(tiny.range_shape, dtype=torch.int64))
    with pytest.raises(TypeError, match="ConeBeam geometry"):
        cu.fdk_cosine_weights(radon.geometry)
    with pytest.raises(ValueError, match="shape"):
        cu.fdk_backproject(tiny, torch.zeros(3, 12, 16))


def test_slice_errors_by_hand():
    geometry = cu.ConeBeam(n_angles=4, n_rows=8, n_cols=8, source_distance=10,
                           detector_distance=5)
    ref = torch.zeros(4, 6, 5, dtype=torch.float64)
    x = ref.clone()
    x[0] = 2.0                                  # slice 0: RMS error 2
    x[3, 0, 0] = 3.0                            # slice 3: one voxel of 30 is off by 3
    angle, error = cu.slice_errors(x, ref, geometry)
    # slice centres at z = -1.5, -0.5, 0.5, 1.5
    expected = [math.degrees(math.atan(abs(z) / 10)) for z in (-1.5, -0.5, 0.5, 1.5)]
    torch.testing.assert_close(angle, torch.tensor(expected, dtype=torch.float64))
    torch.testing.assert_close(error, torch.tensor([2.0, 0, 0, 3 / math.sqrt(30)],
                                                   dtype=torch.float64))
    # batches and numpy
    batch_angle, batch_error = cu.slice_errors(np.stack([x.numpy(), ref.numpy()]),
                                               np.stack([ref.numpy(), ref.numpy()]), geometry)
    assert batch_error.shape == (2, 4) and isinstance(batch_angle, np.ndarray)
    with pytest.raises(ValueError, match="same shape"):
        cu.slice_errors(x, ref[:2], geometry)
    with pytest.raises(TypeError, match="ConeBeam"):
        cu.slice_errors(x, ref, "cone")
