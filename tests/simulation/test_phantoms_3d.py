"""Tests of course_utils.simulation.phantoms_3d: the 3D Shepp-Logan head and the exact
line integrals of ellipsoids."""

import math

import numpy as np
import pytest
import torch

import course_utils as cu
from course_utils.simulation.phantoms_3d import _rasterise


def ball(radius, centre=(0.0, 0.0, 0.0), value=1.0):
    return torch.tensor([[value, radius, radius, radius, *centre, 0.0]], dtype=torch.float64)


# --- the phantom ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 7, 32])
def test_shape_dtype_range(size):
    x = cu.shepp_logan_3d(size)
    assert x.shape == (size, size, size) and x.dtype == torch.float32
    assert x.min() >= 0 and x.max() <= 1
    assert cu.shepp_logan_3d(size, dtype=torch.float64).dtype == torch.float64


def test_values_and_orientation():
    x = cu.shepp_logan_3d(64, dtype=torch.float64)
    assert float(x.max()) == pytest.approx(1.0)            # the skull
    assert float(x[32, 32, 32]) == pytest.approx(0.2)      # brain, near the centre
    assert x[0].sum() == 0 and x[:, 0, 0].sum() == 0       # air outside the head
    assert ((x > 0.21) & (x < 0.99)).sum() > 1000          # partial voxels at the edges
    # the head is taller (y) than wide (x) and deep (z), as its half-axes 0.92, 0.69, 0.81
    extent = [int((x.sum(dim=[j for j in range(3) if j != i]) > 0).sum()) for i in range(3)]
    assert extent[1] > extent[0] > extent[2]
    # left-right mirror symmetric except for the ventricles and the small features
    assert float((x - x.flip(-1)).abs().mean()) < 0.01


def test_middle_slice_looks_like_the_2d_phantom():
    """At z = 0 the ellipsoids cut the ellipses of the 2D phantom, except the three
    that sit off the central plane (two small dots and, smaller, the round one on top)."""
    x3, x2 = cu.shepp_logan_3d(64)[32], cu.shepp_logan(64)
    assert float(((x3 - x2).abs() > 0.05).float().mean()) < 0.03
    features = ((x2 - 0.3).abs() < 0.01)[44:]                # the three at the bottom
    assert features.sum() > 0 and torch.equal(features, ((x3 - 0.3).abs() < 0.01)[44:])


def test_mass_is_the_sum_of_the_ellipsoid_volumes():
    n = 48
    ellipsoids = cu.shepp_logan_3d_ellipsoids(n)
    rho, a, b, c = ellipsoids[:, :4].T
    mass = float((rho * 4 / 3 * math.pi * a * b * c).sum())
    assert float(cu.shepp_logan_3d(n, dtype=torch.float64).sum()) == pytest.approx(mass, rel=3e-3)


def test_ellipsoids_are_scaled_to_voxels():
    table = cu.shepp_logan_3d_ellipsoids(64)
    assert table.shape == (10, 8) and table.dtype == torch.float64
    assert table[0, :4].tolist() == pytest.approx([1.0, 0.69 * 32, 0.92 * 32, 0.81 * 32])
    assert table[2, 7] == pytest.approx(math.radians(-18))
    assert cu.shepp_logan_3d_ellipsoids(2)[:, 1:7].abs().max() <= 1


def test_supersampling_averages_point_samples():
    """A ball of radius 3 voxels: with one sample per voxel a voxel is in or out; with
    many, the total approaches the ball's volume."""
    one = _rasterise(ball(3.0), (8, 8, 8), 1)
    assert set(one.unique().tolist()) <= {0.0, 1.0}
    many = _rasterise(ball(3.0), (8, 8, 8), 8)
    assert float(many.sum()) == pytest.approx(4 / 3 * math.pi * 27, rel=5e-3)
    assert float(many[4, 4, 4]) == 1.0


# --- exact line integrals ------------------------------------------------------------------


def test_chords_of_a_ball():
    """Rays parallel to y at distance d from the centre of a ball of radius R: 2 sqrt(R²-d²)."""
    d = torch.linspace(0, 6, 13, dtype=torch.float64)
    sources = torch.stack([d, torch.full_like(d, -20.0), torch.zeros_like(d)], dim=-1)
    points = sources + torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    chords = cu.ellipsoid_line_integrals(ball(5.0, value=2.0), sources, points)
    expected = 2.0 * 2 * torch.sqrt(torch.clamp(25 - d**2, min=0))
    assert torch.allclose(chords, expected, atol=1e-12)


def test_only_the_part_after_the_source_counts():
    ellipsoid = ball(4.0)
    inside = cu.ellipsoid_line_integrals(ellipsoid, torch.zeros(3, dtype=torch.float64),
                                         torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))
    assert float(inside) == pytest.approx(4.0)              # from the centre to the surface
    away = cu.ellipsoid_line_integrals(ellipsoid, torch.tensor([10.0, 0.0, 0.0]),
                                       torch.tensor([20.0, 0.0, 0.0]))
    assert float(away) == 0.0


def test_rotated_ellipsoid_against_a_fine_numerical_integral():
    ellipsoid = torch.tensor([[1.5, 6.0, 3.0, 4.0, 1.0, -2.0, 0.5, 0.7]], dtype=torch.float64)
    source = torch.tensor([-15.0, -12.0, 3.0], dtype=torch.float64)
    # rays aimed at the centre and at two points off it, inside the ellipsoid
    aims = torch.tensor([[1.0, -2.0, 0.5], [2.5, -3.0, 1.5], [-1.0, -1.0, -1.0]],
                        dtype=torch.float64)
    points = source + 2 * (aims - source)
    exact = cu.ellipsoid_line_integrals(ellipsoid, source, points)
    value, a, b, c, x0, y0, z0, phi = ellipsoid[0].tolist()
    step = 1e-4
    for point, chord in zip(points, exact):
        direction = (point - source) / (point - source).norm()
        p = source + torch.arange(0, 50, step, dtype=torch.float64)[:, None] * direction
        dx, dy, dz = p[:, 0] - x0, p[:, 1] - y0, p[:, 2] - z0
        u = (dx * math.cos(phi) + dy * math.sin(phi)) / a
        v = (-dx * math.sin(phi) + dy * math.cos(phi)) / b
        numeric = value * step * float(((u**2 + v**2 + (dz / c) ** 2) <= 1).sum())
        assert float(chord) == pytest.approx(numeric, abs=1e-3)
        assert float(chord) > 1


def test_broadcasting_dtype_and_numpy():
    geometry = cu.ConeBeam(n_angles=4, n_rows=6, n_cols=5, source_distance=60.0,
                           detector_distance=30.0, row_spacing=4.0, col_spacing=4.0)
    source, pixels = geometry.source_and_pixels(1)
    ellipsoids = cu.shepp_logan_3d_ellipsoids(32)
    y = cu.ellipsoid_line_integrals(ellipsoids, source, pixels)
    assert y.shape == (6, 5) and y.dtype == torch.float64 and bool((y > 0).any())
    assert cu.ellipsoid_line_integrals(ellipsoids, source, pixels.float()).dtype == torch.float32
    y_np = cu.ellipsoid_line_integrals(ellipsoids.numpy(), source.numpy(), pixels.numpy())
    assert isinstance(y_np, np.ndarray)
    np.testing.assert_allclose(y_np, y.numpy())


@pytest.mark.parametrize("args, error, message", [
    ((torch.zeros(2, 6, dtype=torch.float64), torch.zeros(3), torch.ones(3)), ValueError,
     r"shape \(k, 8\)"),
    ((ball(1.0), torch.zeros(2), torch.ones(2)), ValueError, r"shape \(\.\.\., 3\)"),
    ((ball(1.0), torch.zeros(3), torch.zeros(3)), ValueError, "coincides with its source"),
    ((ball(0.0), torch.zeros(3), torch.ones(3)), ValueError, "half-axes must be positive"),
    ((ball(1.0), torch.zeros(3, dtype=torch.int64), torch.ones(3)), TypeError, "float32"),
    ((ball(1.0), [0.0, 0.0, 0.0], torch.ones(3)), TypeError, "torch.Tensor or a NumPy"),
])
def test_line_integral_bad_input_is_a_clear_error(args, error, message):
    with pytest.raises(error, match=message):
        cu.ellipsoid_line_integrals(*args)


@pytest.mark.parametrize("call, error, message", [
    (lambda: cu.shepp_logan_3d(0), ValueError, "size must be at least 1"),
    (lambda: cu.shepp_logan_3d(16.0), TypeError, "size must be an int"),
    (lambda: cu.shepp_logan_3d(16, supersample=0), ValueError, "supersample"),
    (lambda: cu.shepp_logan_3d(16, dtype=torch.int32), TypeError, "dtype"),
    (lambda: cu.shepp_logan_3d_ellipsoids(-2), ValueError, "size"),
])
def test_phantom_bad_input_is_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


# --- exact cone-beam projections ---------------------------------------------------------------

from course_utils.simulation import phantoms_3d  # noqa: E402  (for monkeypatching)


def pixel_centre_projections(ellipsoids, geometry):
    """The reference: ellipsoid_line_integrals through every pixel centre, view by view."""
    return torch.stack([cu.ellipsoid_line_integrals(ellipsoids, *geometry.source_and_pixels(i))
                        for i in range(geometry.n_angles)])


def sub_ray_points(geometry, view, subpixels):
    """Source and the points of every sub-ray, (n_rows, n_cols, s, s, 3), built from the
    pixel centres of source_and_pixels and the steps between neighbouring pixels."""
    source, pixels = geometry.source_and_pixels(view)
    along_rows = pixels[1, 0] - pixels[0, 0]               # one row spacing, along +z
    along_cols = pixels[0, 1] - pixels[0, 0]
    offsets = (torch.arange(subpixels, dtype=torch.float64) + 0.5) / subpixels - 0.5
    points = (pixels[:, :, None, None] + offsets[:, None, None] * along_rows
              + offsets[None, :, None] * along_cols)
    return source, points


GEOMETRIES = {
    # the source well outside every ellipsoid's reach
    "far": lambda: cu.ConeBeam(n_angles=6, n_rows=10, n_cols=12, source_distance=60.0,
                               detector_distance=30.0, row_spacing=4.0, col_spacing=3.5),
    # source inside the cylinder that holds the skull, no detector distance, odd sizes
    "near": lambda: cu.ConeBeam(angles=[0.1, 1.3, 2.9, 4.4], n_rows=9, n_cols=11,
                                source_distance=12.0, detector_distance=0.0,
                                row_spacing=3.0, col_spacing=2.5),
}


@pytest.mark.parametrize("name", sorted(GEOMETRIES))
def test_one_subpixel_is_the_line_integral_through_the_pixel_centre(name):
    geometry = GEOMETRIES[name]()
    ellipsoids = torch.cat([cu.shepp_logan_3d_ellipsoids(32),
                            cu.EllipsoidsDataset(1, 32, seed=4).ellipsoids(0)])
    y = cu.cone_beam_projections(ellipsoids, geometry, subpixels=1, dtype=torch.float64)
    expected = pixel_centre_projections(ellipsoids, geometry)
    assert y.shape == geometry.sinogram_shape and y.dtype == torch.float64
    assert float(expected.abs().max()) > 1
    # measured: 1e-13 (far), 1e-14 (near) of the largest value
    assert torch.allclose(y, expected, rtol=0, atol=1e-9 * float(expected.abs().max()))


def test_subpixel_average_is_the_mean_over_its_sub_rays():
    geometry = cu.ConeBeam(n_angles=3, n_rows=3, n_cols=4, source_distance=30.0,
                           detector_distance=15.0, row_spacing=5.0, col_spacing=6.0)
    ellipsoids = cu.shepp_logan_3d_ellipsoids(24)
    y = cu.cone_beam_projections(ellipsoids, geometry, subpixels=3, dtype=torch.float64)
    # every sub-ray on its own, (n_rows, n_cols, 3, 3) per view, then the mean
    brute = torch.stack([
        cu.ellipsoid_line_integrals(ellipsoids, *sub_ray_points(geometry, view, 3)).mean((2, 3))
        for view in range(geometry.n_angles)])
    assert torch.allclose(y, brute, rtol=0, atol=1e-9)
    # large pixels over the edges inside the head: the average is not the centre's value
    # (measured: up to 0.46, the values are 3-5)
    centres = cu.cone_beam_projections(ellipsoids, geometry, subpixels=1, dtype=torch.float64)
    assert float((y - centres).abs().max()) > 0.2


def test_projections_of_a_ball_are_averaged_chords():
    """A ball of radius R: the ray at distance d from its centre carries 2 sqrt(R² - d²)."""
    radius, centre = 6.0, torch.tensor([3.0, -2.0, 4.0], dtype=torch.float64)
    geometry = cu.ConeBeam(n_angles=5, n_rows=8, n_cols=9, source_distance=50.0,
                           detector_distance=25.0, row_spacing=3.0, col_spacing=3.0)
    y = cu.cone_beam_projections(ball(radius, centre.tolist(), value=0.5), geometry,
                                 subpixels=2)
    assert y.dtype == torch.float32
    for view in range(geometry.n_angles):
        source, points = sub_ray_points(geometry, view, 2)
        direction = points - source
        direction = direction / direction.norm(dim=-1, keepdim=True)
        to_centre = centre - source
        along = (to_centre * direction).sum(-1, keepdim=True)
        distance2 = (to_centre - along * direction).pow(2).sum(-1)
        chords = 2 * torch.sqrt(torch.clamp(radius**2 - distance2, min=0))
        expected = 0.5 * chords.mean(dim=(2, 3))
        assert torch.allclose(y[view].double(), expected, rtol=1e-5, atol=1e-5)
    assert float(y.max()) == pytest.approx(radius, rel=0.05)    # near the central chord


def test_only_what_lies_in_front_of_the_source_is_seen():
    geometry = cu.ConeBeam(angles=[0.0], n_rows=4, n_cols=4, source_distance=20.0,
                           detector_distance=10.0)
    # at angle 0 the source is at (0, -20, 0), the detector beyond y = 10
    behind = ball(3.0, (0.0, -30.0, 0.0))
    assert float(cu.cone_beam_projections(behind, geometry).abs().max()) == 0.0
    around = ball(3.0, (0.0, -20.0, 0.0))                  # the source at the centre
    y = cu.cone_beam_projections(around, geometry, subpixels=1)
    assert torch.allclose(y, torch.full_like(y, 3.0))


@pytest.mark.parametrize("n", [32, 64])
def test_cone_beam_transform_of_a_dataset_volume_agrees_with_the_exact_projections(n):
    """The voxel projector on the rasterised volume against the continuous phantom.

    Measured for volumes 0-3 of seed 0, subpixels=2: 1.4 %, 1.4 %, 1.9 %, 2.1 % at 32³
    (40 views, 32 x 32 detector) and 0.7 %, 0.7 %, 0.9 %, 1.0 % at 64³ (90 views,
    64 x 64; the same with the 12 views used here); through the pixel centres alone
    (subpixels=1) 3.6-5.3 % and 1.8-2.4 %: Joseph's bilinear samples blur like a
    pixel's area does.  The volume flipped upside down: 18-41 % at 32³.
    """
    n_angles, detector = (40, 32) if n == 32 else (12, 64)
    geometry = cu.ConeBeam(n_angles=n_angles, n_rows=detector, n_cols=detector,
                           source_distance=3 * n, detector_distance=n,
                           row_spacing=2.5 * n / detector, col_spacing=2.5 * n / detector)
    A = cu.ConeBeamTransform(n, geometry)
    data = cu.EllipsoidsDataset(2, n, seed=0)
    x, exact = data[1][0], data.projections(1, geometry)
    assert float((A(x) - exact).norm() / exact.norm()) < (0.03 if n == 32 else 0.015)
    assert float((A(x.flip(-2)) - exact).norm() / exact.norm()) > 0.1


def test_projections_chunk_over_views_and_take_numpy(monkeypatch):
    geometry = GEOMETRIES["far"]()
    ellipsoids = cu.shepp_logan_3d_ellipsoids(32)
    whole = cu.cone_beam_projections(ellipsoids, geometry, dtype=torch.float64)
    monkeypatch.setattr(phantoms_3d, "_PROJECTION_CHUNK", 700)   # 1 view of 480 sub-rays
    chunked = cu.cone_beam_projections(ellipsoids, geometry, dtype=torch.float64)
    assert torch.allclose(chunked, whole, rtol=0, atol=1e-12) and float(whole.max()) > 1
    y_np = cu.cone_beam_projections(ellipsoids.numpy(), geometry)
    assert isinstance(y_np, np.ndarray) and y_np.dtype == np.float32
    np.testing.assert_allclose(y_np, whole.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("call, error, message", [
    (lambda g: cu.cone_beam_projections(ball(1.0), g, subpixels=0), ValueError,
     "subpixels must be at least 1"),
    (lambda g: cu.cone_beam_projections(ball(1.0), g, subpixels=1.5), TypeError,
     "subpixels must be an int"),
    (lambda g: cu.cone_beam_projections(ball(1.0), cu.FanBeam(
        n_angles=4, n_detectors=8, source_distance=20, detector_distance=10)), TypeError,
     "geometry must be a cu.ConeBeam, got FanBeam"),
    (lambda g: cu.cone_beam_projections(ball(1.0), cu.ConeBeamTransform(4, g)), TypeError,
     "A.geometry"),
    (lambda g: cu.cone_beam_projections(torch.zeros(2, 6, dtype=torch.float64), g),
     ValueError, r"shape \(k, 8\)"),
    (lambda g: cu.cone_beam_projections(ball(0.0), g), ValueError, "half-axes must be positive"),
    (lambda g: cu.cone_beam_projections(ball(1.0).long(), g), TypeError, "float32"),
    (lambda g: cu.cone_beam_projections(ball(1.0).tolist(), g), TypeError, "NumPy"),
    (lambda g: cu.cone_beam_projections(ball(1.0), g, dtype=torch.int32), TypeError, "dtype"),
])
def test_projection_bad_input_is_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call(GEOMETRIES["far"]())


# --- random ellipsoid phantoms ---------------------------------------------------------------


def test_a_volume_depends_only_on_seed_and_index():
    data = cu.EllipsoidsDataset(4, 16, seed=3)
    later = [data[i] for i in (0, 1, 2)][2]
    first = cu.EllipsoidsDataset(4, 16, seed=3)[2]           # read first, fresh object
    assert torch.allclose(first, later, rtol=0, atol=1e-7)
    assert torch.allclose(cu.EllipsoidsDataset(9, 16, seed=3)[-7], first, rtol=0, atol=1e-7)
    assert torch.allclose(data.ellipsoids(2), cu.EllipsoidsDataset(4, 16, seed=3).ellipsoids(2))
    other_seed = cu.EllipsoidsDataset(4, 16, seed=4)[2]
    assert float((other_seed - first).abs().max()) > 0.1
    assert float((data[3] - first).abs().max()) > 0.1


@pytest.fixture(scope="module")
def volumes():
    # volumes 1-3 of seed 2 were drawn twice (overlapping holes in the first draws)
    data = cu.EllipsoidsDataset(4, 32, seed=2)
    return data, [data[i][0] for i in range(len(data))]


def test_volumes_are_normalised_and_inside_the_field_of_view(volumes):
    data, xs = volumes
    n = data.size
    centres = torch.arange(n, dtype=torch.float64) + 0.5 - n / 2
    # voxels that lie wholly outside the cylinder of radius 0.45 n or the slab |z| < 0.45 n
    radius = torch.sqrt(centres[None, :] ** 2 + centres[:, None] ** 2)      # (H, W)
    outside = ((radius > 0.45 * n + 0.75)[None]
               | (centres.abs() > 0.45 * n + 0.5)[:, None, None])
    assert outside.sum() > 0.3 * n**3
    for i, x in enumerate(xs):
        assert x.shape == (n, n, n) and x.dtype == torch.float32
        assert float(x.min()) >= 0 and float(x.max()) == pytest.approx(1.0, abs=1e-6)
        assert float(x[outside].abs().max()) == 0
        # the scaled table rasterises to the same volume: no clamping was needed
        fine = _rasterise(data.ellipsoids(i), (n, n, n), 4)
        assert float(fine.min()) >= -1e-6 and float(fine.max()) == pytest.approx(1, abs=1e-9)
        assert torch.allclose(fine.float(), x, rtol=0, atol=1e-6)
        assert float((x > 0).float().mean()) > 0.1            # a body, not a speck


def test_ellipsoid_tables_follow_the_recipe(volumes):
    data, _ = volumes
    half = data.size / 2
    counts = []
    for i in range(len(data)):
        table = data.ellipsoids(i)
        assert table.dtype == torch.float64 and table.shape[1] == 8
        counts.append(len(table))
        rho, a, b, c, x0, y0, z0, phi = table.T
        # every ellipsoid inside the cylinder and the slab of 0.45 size
        assert bool((torch.hypot(x0, y0) + torch.maximum(a, b) <= 0.45 * data.size + 1e-9).all())
        assert bool((z0.abs() + c <= 0.45 * data.size + 1e-9).all())
        assert bool(((table[0, 1:4] >= 0.55 * half - 1e-9) & (table[0, 1:4] <= 0.8 * half)).all())
        assert bool(((table[1:, 1:4] >= 0.04 * half - 1e-9)
                     & (table[1:, 1:4] <= 0.3 * half + 1e-9)).all())
        assert float(rho[0]) > 0 and bool((rho[1:] >= -rho[0] - 1e-12).all())
        # the features lie inside the body: points of their surfaces in its equation
        directions = torch.randn(200, 3, generator=torch.Generator().manual_seed(i),
                                 dtype=torch.float64)
        directions = directions / directions.norm(dim=1, keepdim=True)
        body = table[0].tolist()
        for row in table[1:].tolist():
            points = _surface(row, directions)
            assert float(_equation(body, points).max()) <= 1 + 1e-9
    assert all(2 <= k <= 16 for k in counts) and len(set(counts)) > 1


def _surface(row, unit):
    _, a, b, c, x0, y0, z0, phi = row
    u, v = unit[:, 0] * a, unit[:, 1] * b
    return torch.stack([x0 + u * math.cos(phi) - v * math.sin(phi),
                        y0 + u * math.sin(phi) + v * math.cos(phi), z0 + unit[:, 2] * c], dim=1)


def _equation(row, points):
    _, a, b, c, x0, y0, z0, phi = row
    dx, dy, dz = points[:, 0] - x0, points[:, 1] - y0, points[:, 2] - z0
    u = (dx * math.cos(phi) + dy * math.sin(phi)) / a
    v = (-dx * math.sin(phi) + dy * math.cos(phi)) / b
    return u**2 + v**2 + (dz / c) ** 2


def test_tensors_len_repr_and_projections():
    data = cu.EllipsoidsDataset(3, 8, seed=2)
    stack = data.tensors()
    assert stack.shape == (3, 1, 8, 8, 8) and stack.dtype == torch.float32
    assert torch.allclose(stack[1], data[1], rtol=0, atol=1e-7)
    assert len(data) == 3 and repr(data) == "EllipsoidsDataset(n=3, size=8, seed=2)"
    assert cu.EllipsoidsDataset(0, 8).tensors().shape == (0, 1, 8, 8, 8)
    geometry = cu.ConeBeam(n_angles=3, n_rows=6, n_cols=6, source_distance=24.0,
                           detector_distance=8.0, row_spacing=2.0, col_spacing=2.0)
    y = data.projections(1, geometry, subpixels=1)
    assert torch.allclose(y.double(), pixel_centre_projections(data.ellipsoids(1), geometry),
                          rtol=1e-5, atol=1e-5)
    assert float(y.max()) > 1


@pytest.mark.parametrize("call, error, message", [
    (lambda: cu.EllipsoidsDataset(-1, 16), ValueError, "n must be at least 0"),
    (lambda: cu.EllipsoidsDataset(2.0, 16), TypeError, "n must be an int"),
    (lambda: cu.EllipsoidsDataset(2, 4), ValueError, "size must be at least 8"),
    (lambda: cu.EllipsoidsDataset(2, 16.0), TypeError, "size must be an int"),
    (lambda: cu.EllipsoidsDataset(2, 16, seed=-1), ValueError, "seed must be at least 0"),
    (lambda: cu.EllipsoidsDataset(2, 16, seed=0.5), TypeError, "seed must be an int"),
    (lambda: cu.EllipsoidsDataset(2, 16)[2], IndexError, "out of range"),
    (lambda: cu.EllipsoidsDataset(2, 16)[1.0], TypeError, "index must be an int"),
    (lambda: cu.EllipsoidsDataset(2, 16).ellipsoids(-3), IndexError, "out of range"),
])
def test_dataset_bad_input_is_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


# --- the Defrise phantom -----------------------------------------------------------------------


def test_defrise_discs_are_evenly_spaced_symmetric_and_apart():
    discs = cu.defrise_ellipsoids(64, 6, radius=0.35, thickness=0.04, spacing=0.06)
    assert discs.shape == (6, 8) and discs.dtype == torch.float64
    z, half_thickness = discs[:, 6], discs[:, 3]
    assert torch.allclose(z, -z.flip(0), atol=1e-12)                 # symmetric about 0
    assert torch.allclose(z.diff(), torch.full((5,), 0.1 * 64, dtype=torch.float64))
    assert bool((z.diff() - 2 * half_thickness[1:] >= 0.06 * 64 - 1e-9).all())   # the gaps
    assert torch.allclose(discs[:, 1:3], torch.full((6, 2), 0.35 * 64, dtype=torch.float64))
    assert torch.allclose(half_thickness, torch.full((6,), 1.28, dtype=torch.float64))
    assert bool((discs[:, 0] == 1).all()) and not bool(discs[:, [4, 5, 7]].any())
    # rasterised: the discs stay apart, with empty slices between them (at 40³ discs
    # 4 voxels thick at z = 0, +-8, +-16 fill whole slices)
    x = _rasterise(cu.defrise_ellipsoids(40, radius=0.3, thickness=0.1), (40, 40, 40), 4)
    profile = x[:, 20, 20]
    assert float(profile.max()) == pytest.approx(1.0)
    assert ((profile[1:] > 0.5) & (profile[:-1] < 0.01)).sum() == 5   # five rising edges


def test_defrise_defaults_and_the_stack_of_the_fdk_tests():
    # the stack of tests/reconstruction/test_fdk.py: radius 13, half-thickness 1.5,
    # z = 0, +-6, +-12 at 40³
    expected = torch.tensor([[1.0, 13, 13, 1.5, 0, 0, z, 0] for z in (-12, -6, 0, 6, 12)],
                            dtype=torch.float64)
    assert torch.allclose(cu.defrise_ellipsoids(40, radius=0.325, thickness=0.075), expected,
                          atol=1e-12)
    default = cu.defrise_ellipsoids(40)
    assert default[:, 6].tolist() == pytest.approx([-8, -4, 0, 4, 8])
    assert default[0, 1:4].tolist() == pytest.approx([16, 16, 1])
    assert cu.defrise_ellipsoids(40, 4, intensity=0.5)[:, 6].tolist() \
        == pytest.approx([-6, -2, 2, 6])


@pytest.mark.parametrize("call, error, message", [
    (lambda: cu.defrise_ellipsoids(32, 11), ValueError, "taller than the volume"),
    (lambda: cu.defrise_ellipsoids(32, radius=0.6), ValueError, "radius must be at most 0.5"),
    (lambda: cu.defrise_ellipsoids(32, 0), ValueError, "n_discs must be at least 1"),
    (lambda: cu.defrise_ellipsoids(32.0), TypeError, "size must be an int"),
    (lambda: cu.defrise_ellipsoids(32, thickness=0), ValueError, "thickness"),
    (lambda: cu.defrise_ellipsoids(32, spacing=-0.1), ValueError, "spacing"),
    (lambda: cu.defrise_ellipsoids(32, intensity="1"), TypeError, "intensity"),
])
def test_defrise_bad_input_is_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_rasterise_ellipsoids_is_the_volume_of_any_table():
    table = cu.defrise_ellipsoids(24)
    volume = cu.rasterise_ellipsoids(table, 24)
    assert volume.shape == (24, 24, 24) and volume.dtype == torch.float32
    # the discs' total volume: n * pi r^2 * thickness, in voxels (intensity 1)
    expected = sum(math.pi * a * b * 4 / 3 * c for _, a, b, c, *_ in table.tolist())
    assert float(volume.sum()) == pytest.approx(expected, rel=0.02)
    same = cu.rasterise_ellipsoids(table.numpy(), 24, dtype=torch.float64)
    torch.testing.assert_close(same.float(), volume)
    with pytest.raises(ValueError, match=r"\(k, 8\)"):
        cu.rasterise_ellipsoids(table[:, :6], 24)
