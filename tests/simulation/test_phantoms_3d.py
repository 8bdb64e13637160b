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
