"""Tests of course_utils.simulation.setting: the shared sparse-view experiment."""

import math

import pytest
import torch

import course_utils as cu
from course_utils.simulation import setting as setting_module


def small(**kwargs):
    """A small setting (32 x 32, a few images per split) for fast tests."""
    options = dict(size=32, n_train=6, n_val=4, n_test=4)
    options.update(kwargs)
    return cu.SparseViewSetting(**options)


def test_shapes_and_geometry():
    s = small(fbp=("hann", 1.0))
    assert s.image_size == 32
    assert s.geometry.n_angles == 30
    assert s.geometry.n_detectors == 2 * math.ceil(32 / math.sqrt(2)) + 1 == 47
    assert s.A.domain_shape == (32, 32) and s.A.range_shape == (30, 47)
    for name, n in (("train", 6), ("val", 4), ("test", 4)):
        split = s.split(name)
        assert split.x.shape == (n, 1, 32, 32) and split.x.dtype == torch.float32
        assert split.y.shape == (n, 1, 30, 47) and split.y.dtype == torch.float32
        assert split.x_fbp.shape == (n, 1, 32, 32)
        assert len(split) == n
        assert 0.0 <= float(split.x.min()) and float(split.x.max()) == pytest.approx(1.0)
    assert s.train is s.split("train") and s.val is s.split("val") and s.test is s.split("test")


def test_same_data_every_time():
    a, b = small(), small()
    for name in ("train", "val", "test"):
        assert torch.equal(a.split(name).x, b.split(name).x)
        assert torch.equal(a.split(name).y, b.split(name).y)
    # A split does not depend on the size of the others, and the seed changes the data.
    c = small(n_train=2)
    assert torch.equal(c.test.y, a.test.y)
    assert not torch.equal(small(seed=1).test.x, a.test.x)


def test_splits_are_disjoint():
    s = small(n_train=20, n_val=10, n_test=10)
    images = {name: s.split(name).x.flatten(1) for name in ("train", "val", "test")}
    for first, second in (("train", "val"), ("train", "test"), ("val", "test")):
        distances = torch.cdist(images[first], images[second])
        assert float(distances.min()) > 1.0, f"{first} and {second} share an image"


def test_dival_geometry_at_128():
    """Full mode is dival's ellipses geometry: 183 pixels of 0.98918, angles (k + 1/2) 6 deg."""
    g = cu.dival_geometry(128, 30)
    assert g.n_detectors == 183
    assert g.detector_spacing == pytest.approx(0.98918, abs=1e-5)
    assert g.n_detectors * g.detector_spacing == pytest.approx(128 * math.sqrt(2))
    degrees = torch.rad2deg(g.angles)
    assert torch.allclose(degrees, (torch.arange(30, dtype=torch.float64) + 0.5) * 6)


def test_gaussian_noise_level_is_realised():
    """Standard deviation 2.5 % of the mean absolute clean value, per sinogram (dival)."""
    s = small(n_test=16)
    y_clean = s.split("test", noise_level=0.0).y
    error = s.test.y - y_clean
    sigma = error.flatten(1).std(dim=1)
    expected = 0.025 * y_clean.abs().flatten(1).mean(dim=1)
    assert torch.allclose(sigma, expected, rtol=0.05)
    # the discrepancy principle's delta: the expected norm of that noise
    assert torch.allclose(s.noise_norm(s.test.y)[:, 0], error.flatten(1).norm(dim=1), rtol=0.05)
    # Another level scales the same noise draw.
    louder = s.split("test", noise_level=0.05)
    assert torch.equal(louder.x, s.test.x)
    assert torch.allclose(louder.y - y_clean, 2 * error, atol=1e-4)


def test_no_inverse_crime():
    """Clean data are line integrals on a 4x finer grid, not A(x) of the ground truth."""
    s = small(n_test=8)
    y_clean = s.split("test", noise_level=0.0).y
    y_crime = s.A(s.test.x)
    gap = float((y_clean - y_crime).norm() / y_clean.norm())
    # they differ by the discretisation error: small, but far above rounding
    assert 1e-4 < gap < 0.03
    # and the fine-grid data agree with the exact line integrals of the ellipses far
    # better than A(x) does (the ellipses of image 0, normalised as the image is)
    phantoms = cu.EllipsesDataset(8, 32, seed=2)
    ellipses = phantoms.ellipses(0)
    fine = phantoms.render(0, 4)
    raw = torch.nn.functional.avg_pool2d(
        cu.simulation.phantoms._rasterise_ellipses(ellipses.float(), 128, 1)[None], 4)[0]
    shift = float(raw.min())
    scale = float((raw - shift).max())
    assert torch.allclose((raw - shift) / scale, s.test.x[0, 0], atol=1e-5)
    points, directions = s.geometry.rays()
    exact = cu.ellipse_line_integrals(ellipses, points, directions, image_size=32)
    square = cu.ellipse_line_integrals(torch.tensor([[1.0, 10, 10, 0, 0, 0]]), points,
                                       directions, image_size=32)   # the whole image
    exact = ((exact - shift * square) / scale).reshape(30, 47)
    error_fine = float((y_clean[0, 0] - exact).norm() / exact.norm())
    error_crime = float((y_crime[0, 0] - exact).norm() / exact.norm())
    assert error_fine < 0.5 * error_crime
    assert torch.allclose(torch.nn.functional.avg_pool2d(fine[None], 4)[0], s.test.x[0, 0],
                          atol=1e-5)


def test_clean_sinogram_of_coarse_images_is_not_A():
    s = small()
    x = cu.shepp_logan(32)
    y = s.clean_sinogram(x)
    assert y.shape == (30, 47)
    gap = float((y - s.A(x)).norm() / y.norm())
    assert 1e-4 < gap < 0.05
    with pytest.raises(ValueError, match="images of shape"):
        s.clean_sinogram(torch.zeros(33, 33))


def test_poisson_variant():
    s = small(noise="poisson")
    y_clean = s.split("test", noise="gaussian", noise_level=0.0).y
    # the largest line integral is a few units (physically plausible attenuation)
    assert 0.5 < float(s.scale * y_clean.max()) < 5
    error = s.test.y - y_clean
    relative = float((error.flatten(1).norm(dim=1) / y_clean.flatten(1).norm(dim=1)).mean())
    assert 0.01 < relative < 0.1
    # more photons, less noise
    high_dose = s.split("test", photon_count=1e6)
    assert float((high_dose.y - y_clean).norm()) < 0.2 * float(error.norm())
    assert "Poisson" in repr(s) and "photons" in s.describe()


def test_quick_and_full_sizes(monkeypatch):
    monkeypatch.setattr(setting_module, "QUICK", True)
    quick = cu.SparseViewSetting()
    assert quick.image_size == 64 and quick.sizes == {"train": 512, "val": 32, "test": 32}
    monkeypatch.setattr(setting_module, "QUICK", False)
    full = cu.SparseViewSetting()
    assert full.image_size == 128 and full.sizes == {"train": 2000, "val": 100, "test": 100}
    assert full.geometry.n_detectors == 183
    # nothing is generated until a split is used
    assert full._phantoms == {}


def test_measure_and_fbp():
    s = small()
    g = torch.Generator().manual_seed(3)
    y = s.measure(cu.shepp_logan(32), generator=g)
    assert y.shape == (30, 47)
    y_again = s.measure(cu.shepp_logan(32), generator=torch.Generator().manual_seed(3))
    assert torch.equal(y, y_again)
    # no hidden work: FBP is chosen only when asked, on validation
    assert s.fbp_filter is None and "tune_fbp" in s.fbp_name
    with pytest.raises(RuntimeError, match="tune_fbp"):
        s.test.x_fbp
    chosen = s.tune_fbp()
    assert chosen == (s.fbp_filter, s.fbp_cutoff)
    assert chosen == cu.tune_fbp_filter(s.A, s.val.y, s.val.x)
    assert s.fbp_filter in cu.FILTERS and 0 < s.fbp_cutoff <= 1
    assert s.fbp_filter in s.fbp_name
    assert torch.allclose(s.fbp(s.test.y), s.test.x_fbp)
    # FBP is a reasonable reconstruction, far better than the mean image
    fbp_psnr = float(cu.psnr(s.test.x_fbp, s.test.x, data_range=1.0).mean())
    flat = s.test.x.mean(dim=(-2, -1), keepdim=True).expand_as(s.test.x)
    assert fbp_psnr > float(cu.psnr(flat, s.test.x, data_range=1.0).mean()) + 3


def test_fixed_fbp_and_its_errors():
    s = small(fbp=("shepp-logan", 0.5))
    assert (s.fbp_filter, s.fbp_cutoff) == ("shepp-logan", 0.5)
    assert torch.allclose(s.test.x_fbp, cu.fbp(s.A, s.test.y, "shepp-logan", cutoff=0.5))
    s.use_fbp("hann")                     # changing it recomputes the FBP images
    assert torch.allclose(s.test.x_fbp, cu.fbp(s.A, s.test.y, "hann"))
    with pytest.raises(ValueError, match="filter"):
        s.use_fbp("ramp")
    with pytest.raises(ValueError, match="cutoff"):
        s.use_fbp("hann", 1.5)
    with pytest.raises(ValueError, match="n_val=0"):
        small(n_val=0).tune_fbp()


def test_indexing_and_text():
    s = small()
    part = s.test[:2]
    assert isinstance(part, cu.DataSplit) and len(part) == 2
    assert torch.equal(part.y, s.test.y[:2])
    assert s.test[-1].x.shape == (1, 1, 32, 32)
    assert "32x32" in repr(s) and "30 angles" in repr(s)
    text = s.describe()
    assert "30 angles" in text and "validation" in text
    assert "test" in repr(s.test)


@pytest.mark.parametrize("kwargs, error", [
    (dict(noise="salt"), ValueError),
    (dict(phantoms="squares"), ValueError),
    (dict(noise_level=-0.1), ValueError),
    (dict(photon_count=0), ValueError),
    (dict(size=32.0), TypeError),
    (dict(n_train=-1), ValueError),
])
def test_bad_arguments(kwargs, error):
    with pytest.raises(error):
        small(**kwargs)


def test_bad_split_name():
    with pytest.raises(ValueError, match="split must be one of"):
        small().split("training")


def test_disc_phantoms_keep_a_zero_background():
    s = small(phantoms="disc")
    corners = s.test.x[..., :2, :2]
    assert float(corners.abs().max()) == 0.0
    assert "disc" in repr(s)


def test_point_sampled_variant_is_dival_construction():
    """sampling="point": one sample per pixel, data from the image enlarged 4 times."""
    s = small(sampling="point", n_test=3)
    phantoms = cu.EllipsesDataset(3, 32, seed=2)
    assert torch.allclose(s.test.x[1, 0], phantoms.point_sampled(1))
    clean = s.split("test", noise_level=0.0).y
    assert torch.allclose(clean, s.clean_sinogram(s.test.x), atol=1e-5)
    assert not torch.allclose(s.test.x, small(n_test=3).test.x, atol=1e-3)
    assert "point-sampled" in repr(s)
    with pytest.raises(ValueError, match="sampling"):
        small(sampling="exact")
