"""Tests of course_utils.simulation.phantoms: Shepp-Logan, random ellipses, the real CT slice."""

import math

import numpy as np
import pytest
import torch

import course_utils as cu
from course_utils.simulation.phantoms import EllipsesDataset, ct_slice, shepp_logan


def _radius_map(size):
    """Distance of every pixel centre from the image centre, in pixels."""
    c = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    return torch.sqrt(c[:, None] ** 2 + c[None, :] ** 2)


# --- Shepp-Logan ------------------------------------------------------------------------

@pytest.mark.parametrize("size", [1, 7, 64, 128])
def test_shepp_logan_shape_dtype_range(size):
    x = shepp_logan(size)
    assert x.shape == (size, size)
    assert x.dtype == torch.float32
    assert x.min() >= 0 and x.max() <= 1


def test_shepp_logan_values_and_dtype():
    x = shepp_logan(256, dtype=torch.float64)
    assert x.dtype == torch.float64
    assert x.max() == pytest.approx(1.0)          # the skull
    assert x[128, 128] == pytest.approx(0.2)      # brain between the two central dots
    assert x[0, 0] == 0 and x[-1, -1] == 0        # air in the corners
    # anti-aliasing: edge pixels take intermediate values
    assert ((x > 0.21) & (x < 0.99)).sum() > 100


def test_shepp_logan_orientation():
    x = shepp_logan(128)
    rows = torch.nonzero(x.sum(dim=1) > 0).flatten()
    cols = torch.nonzero(x.sum(dim=0) > 0).flatten()
    height, width = rows.max() - rows.min(), cols.max() - cols.min()
    assert height > 1.2 * width                   # long axis vertical
    # value 0.3: the three small features in the bottom quarter, the round ellipse in
    # the top half, nothing in between the two central dots
    level_03 = (x - 0.3).abs() < 0.01
    assert level_03[96:].sum() > 0 and level_03[:64].sum() > 0
    ventricles = (x[40:100, :] < 0.01) & (x[40:100, :] >= 0)
    assert ventricles[:, 30:60].sum() > 0 and ventricles[:, 70:100].sum() > 0
    # left-right mirror symmetric except for the ventricles and small features
    assert (x - x.flip(1)).abs().mean() < 0.02


def test_shepp_logan_matches_scikit_image():
    from skimage.data import shepp_logan_phantom

    from skimage.transform import resize

    # scikit-image ships the same modified phantom at 400 x 400
    ref = resize(shepp_logan_phantom(), (200, 200), anti_aliasing=True)
    x = shepp_logan(200).numpy()
    assert np.abs(x - ref).mean() < 0.008
    # the test can tell: mirrored or upside-down versions do not match
    assert np.abs(x[:, ::-1] - ref).mean() > 0.012
    assert np.abs(x[::-1] - ref).mean() > 0.03


def test_shepp_logan_bad_input():
    with pytest.raises(ValueError, match="size"):
        shepp_logan(0)
    with pytest.raises(TypeError, match="size"):
        shepp_logan(64.0)
    with pytest.raises(TypeError, match="dtype"):
        shepp_logan(64, dtype=torch.int32)


# --- random ellipses --------------------------------------------------------------------

def test_ellipses_dataset_basic():
    ds = EllipsesDataset(5, 64, seed=0)
    assert len(ds) == 5
    assert isinstance(ds, torch.utils.data.Dataset)
    x = ds[0]
    assert x.shape == (1, 64, 64) and x.dtype == torch.float32
    stacked = ds.tensors()
    assert stacked.shape == (5, 1, 64, 64) and stacked.dtype == torch.float32
    assert stacked.min() >= 0
    assert torch.allclose(stacked.flatten(1).amax(dim=1), torch.ones(5))   # normalised
    assert torch.equal(ds[-1], stacked[4])


def test_ellipses_dataset_reproducible_and_order_independent():
    a = EllipsesDataset(6, 48, seed=3)
    b = EllipsesDataset(6, 48, seed=3)
    forward = [a[i] for i in range(6)]
    backward = [b[i] for i in reversed(range(6))][::-1]
    for x, y in zip(forward, backward):
        assert torch.equal(x, y)
    assert torch.equal(a.tensors(), torch.stack(forward))
    # different items, different seeds: different images
    assert not torch.equal(a[0], a[1])
    assert not torch.equal(a[0], EllipsesDataset(6, 48, seed=4)[0])


def test_ellipses_dataset_with_dataloader():
    ds = EllipsesDataset(8, 32, seed=1)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    seen = torch.cat([batch for batch in loader])
    assert seen.shape == (8, 1, 32, 32)
    # the shuffled batches hold the same images as the data set
    expected = ds.tensors()
    for image in seen:
        assert any(torch.equal(image, e) for e in expected)


def test_disc_ellipses_stay_inside_inscribed_circle():
    size = 64
    x = EllipsesDataset(200, size, seed=2, style="disc").tensors()[:, 0]
    outside = _radius_map(size) > 0.9 * size / 2 + 1      # beyond radius 0.9, one pixel margin
    assert x[:, outside].max() == 0
    assert (x.flatten(1).amax(dim=1) > 0).all()           # no empty image


def test_dival_ellipses_follow_dival():
    """50 ellipses, exponential sizes and values, centres anywhere in the square."""
    ds = EllipsesDataset(200, 32, seed=0)
    e = torch.cat([ds.ellipses(i) for i in range(len(ds))])
    assert all(len(ds.ellipses(i)) == 50 for i in range(3))
    intensity, a, b, x0, y0, phi = e.T
    # half-axes 0.2 x Exp(1): mean 0.2; intensities U(-.5, .5) x Exp(0.4): mean 0, mean |v| 0.1
    assert float(a.mean()) == pytest.approx(0.2, rel=0.05)
    assert float(b.mean()) == pytest.approx(0.2, rel=0.05)
    assert abs(float(intensity.mean())) < 0.01
    assert float(intensity.abs().mean()) == pytest.approx(0.1, rel=0.05)
    assert -1 <= float(x0.min()) and float(x0.max()) <= 1 and float(y0.abs().max()) <= 1
    assert float(x0.abs().mean()) == pytest.approx(0.5, rel=0.05)
    assert 0 <= float(phi.min()) and float(phi.max()) <= 2 * math.pi
    # normalised on the pixels: exactly [0, 1], background usually not zero
    x = ds.tensors()
    assert torch.allclose(x.flatten(1).amin(dim=1), torch.zeros(200), atol=1e-6)
    assert torch.allclose(x.flatten(1).amax(dim=1), torch.ones(200), atol=1e-6)


def test_render_is_consistent_with_the_image():
    ds = EllipsesDataset(3, 32, seed=5)
    for style in ("dival", "disc"):
        ds = EllipsesDataset(3, 32, seed=5, style=style)
        for factor in (2, 4):
            fine = ds.render(1, factor)
            assert fine.shape == (32 * factor, 32 * factor)
            pooled = torch.nn.functional.avg_pool2d(fine[None], factor)[0]
            assert torch.allclose(pooled, ds[1][0], atol=1e-6)
    assert ds.tensors(4).shape == (3, 1, 128, 128)
    with pytest.raises(ValueError, match="factor"):
        ds.render(0, 3)


def test_exact_line_integrals_of_a_disc():
    """A centred disc of radius r: chord 2 sqrt(r^2 - u^2), whatever the angle."""
    geometry = cu.ParallelBeam(n_angles=7, n_detectors=41)
    points, directions = geometry.rays()
    disc = torch.tensor([[2.0, 0.5, 0.5, 0.0, 0.0, 0.3]])         # radius 0.5 of [-1, 1]
    y = cu.ellipse_line_integrals(disc, points, directions, image_size=32).reshape(7, 41)
    u = geometry.detector_positions()
    expected = 2.0 * 2 * (8.0 ** 2 - u ** 2).clamp(min=0).sqrt()   # radius 8 pixels
    assert torch.allclose(y, expected.expand(7, 41), atol=1e-9)
    # an ellipse larger than the image is cut to the image square: the chord of the
    # square along the ray through its centre at angle 0 is 32 pixels
    big = torch.tensor([[1.0, 5.0, 5.0, 0.0, 0.0, 0.0]])
    through_centre = cu.ellipse_line_integrals(big, torch.zeros(1, 2),
                                               torch.tensor([[0.0, 1.0]]), image_size=32)
    assert float(through_centre) == pytest.approx(32.0)
    # against a fine-grid numerical projection of a rotated ellipse
    ellipse = torch.tensor([[1.0, 0.6, 0.3, 0.1, -0.2, 0.7]])
    image = cu.simulation.phantoms._rasterise_ellipses(ellipse, 256, 1)
    A = cu.RadonTransform(image_size=256, geometry=cu.ParallelBeam(
        n_angles=7, n_detectors=41, detector_spacing=8.0))
    numeric = A(image) / 8
    exact = cu.ellipse_line_integrals(ellipse, points, directions, image_size=32).reshape(7, 41)
    assert float((numeric - exact).norm() / exact.norm()) < 0.01


def test_disc_ellipses_are_varied():
    ds = EllipsesDataset(50, 128, seed=0, style="disc")
    x = ds.tensors()
    counts = [len(ds.ellipses(i)) for i in range(len(ds))]
    assert 8 < np.mean(counts) < 16 and max(counts) <= ds.max_ellipses
    covered = (x > 0).float().mean(dim=(1, 2, 3))
    assert covered.min() > 0.01 and covered.std() > 0.02
    assert len(torch.unique((x * 100).round())) > 50       # many grey levels


def test_ellipses_dataset_bad_input():
    with pytest.raises(ValueError, match="size"):
        EllipsesDataset(10, 4)
    with pytest.raises(ValueError, match="n"):
        EllipsesDataset(-1, 64)
    with pytest.raises(ValueError, match="seed"):
        EllipsesDataset(10, 64, seed=-1)
    with pytest.raises(TypeError):
        EllipsesDataset(10, 64.5)
    with pytest.raises(ValueError, match="style"):
        EllipsesDataset(10, 64, style="squares")
    ds = EllipsesDataset(3, 32)
    with pytest.raises(IndexError):
        ds[3]
    with pytest.raises(TypeError):
        ds[0.5]
    assert EllipsesDataset(0, 32).tensors().shape == (0, 1, 32, 32)


# --- the real CT slice ------------------------------------------------------------------

def test_ct_slice_units():
    mu = ct_slice()
    assert mu.shape == (128, 128) and mu.dtype == torch.float32
    assert mu.min() >= 0
    # most of the slice is soft tissue, close to water: 0.19 / cm
    assert float(mu.median()) == pytest.approx(cu.MU_WATER, abs=0.02)
    # bone is denser than water, but not absurdly so
    assert 0.25 < float(mu.max()) < 0.6


def test_ct_slice_normalized_and_dtype():
    mu = ct_slice(dtype=torch.float64)
    x = ct_slice(normalize=True)
    assert mu.dtype == torch.float64
    assert float(x.max()) == pytest.approx(1.0) and x.min() >= 0
    assert torch.allclose(x.double(), mu / mu.max(), atol=1e-6)
    with pytest.raises(TypeError, match="dtype"):
        ct_slice(dtype=torch.int16)
