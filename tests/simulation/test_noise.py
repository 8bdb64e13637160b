"""Tests of course_utils.simulation.noise: relative Gaussian noise, low-dose Poisson, emission counts."""

import math

import numpy as np
import pytest
import torch

from course_utils.simulation.noise import gaussian_noise, poisson_counts, poisson_noise


def _sinogram(shape=(180, 256), dtype=torch.float32):
    """A smooth, positive, sinogram-like test signal."""
    t = torch.linspace(-1, 1, shape[-1], dtype=dtype)
    angle = torch.linspace(0, math.pi, shape[-2], dtype=dtype)[:, None]
    return (torch.clamp(1 - (t - 0.3 * torch.cos(angle)) ** 2, min=0) * 5).expand(shape).clone()


# --- Gaussian ---------------------------------------------------------------------------

@pytest.mark.parametrize("level", [0.01, 0.05, 0.2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gaussian_noise_level(level, dtype):
    y = _sinogram(dtype=dtype)
    y_noisy = gaussian_noise(y, level, generator=torch.Generator().manual_seed(0))
    assert y_noisy.shape == y.shape and y_noisy.dtype == dtype
    ratio = float((y_noisy - y).norm() / y.norm())
    assert ratio == pytest.approx(level, rel=0.1)


def test_gaussian_noise_is_per_item():
    y = torch.stack([_sinogram(), 100 * _sinogram()])   # (2, 180, 256), very different norms
    e = gaussian_noise(y, 0.1, generator=torch.Generator().manual_seed(1)) - y
    for k in range(2):
        assert float(e[k].norm() / y[k].norm()) == pytest.approx(0.1, rel=0.1)
    # zero mean: the sample mean is within 5 standard errors of 0
    assert abs(float(e[0].mean())) < 5 * float(e[0].std()) / math.sqrt(e[0].numel())


def test_gaussian_noise_reproducible():
    y = _sinogram((4, 30, 40))
    a = gaussian_noise(y, 0.05, generator=torch.Generator().manual_seed(7))
    b = gaussian_noise(y, 0.05, generator=torch.Generator().manual_seed(7))
    c = gaussian_noise(y, 0.05, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(gaussian_noise(y, 0.0), y)


def test_gaussian_noise_numpy_and_1d():
    y = _sinogram((20, 30)).numpy()
    y_noisy = gaussian_noise(y, 0.1, generator=torch.Generator().manual_seed(0))
    assert isinstance(y_noisy, np.ndarray) and y_noisy.shape == y.shape
    v = torch.ones(10_000, dtype=torch.float64)
    e = gaussian_noise(v, 0.1, generator=torch.Generator().manual_seed(0)) - v
    assert float(e.norm() / v.norm()) == pytest.approx(0.1, rel=0.05)


def test_gaussian_noise_bad_input():
    y = _sinogram((10, 10))
    with pytest.raises(ValueError, match="level"):
        gaussian_noise(y, -0.1)
    with pytest.raises(TypeError, match="level"):
        gaussian_noise(y, "5%")
    with pytest.raises(TypeError, match="float32 or float64"):
        gaussian_noise(torch.ones(10, 10, dtype=torch.int64), 0.1)
    with pytest.raises(TypeError, match="Tensor or a NumPy"):
        gaussian_noise([[1.0, 2.0]], 0.1)


# --- Poisson, transmission --------------------------------------------------------------

def test_poisson_noise_unbiased_and_dose_dependent():
    y = torch.full((200, 200), 2.0, dtype=torch.float64)
    errors = []
    for photon_count in (1e3, 1e5):
        y_noisy = poisson_noise(y, photon_count, generator=torch.Generator().manual_seed(0))
        assert y_noisy.dtype == torch.float64 and y_noisy.shape == y.shape
        assert float(y_noisy.mean()) == pytest.approx(2.0, abs=0.01)
        errors.append(float((y_noisy - y).std()))
    # the variance of -log(N/N0) is about 1 / (N0 e^{-p})
    assert errors[0] == pytest.approx(math.sqrt(math.exp(2.0) / 1e3), rel=0.1)
    assert errors[1] == pytest.approx(math.sqrt(math.exp(2.0) / 1e5), rel=0.1)


def test_poisson_noise_scale_keeps_units():
    y = torch.full((100, 100), 40.0)
    y_noisy = poisson_noise(y, 1e4, scale=0.05, generator=torch.Generator().manual_seed(0))
    assert float(y_noisy.mean()) == pytest.approx(40.0, rel=0.01)   # same units as y


def test_poisson_noise_zero_counts_are_clamped():
    y = torch.full((50, 50), 30.0)     # e^{-30} N0: practically no photon arrives
    y_noisy = poisson_noise(y, 100.0, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(y_noisy).all()
    assert float(y_noisy.max()) == pytest.approx(math.log(100.0), rel=1e-5)


def test_poisson_noise_reproducible_and_numpy():
    y = _sinogram((3, 20, 30))
    a = poisson_noise(y, 1e3, scale=0.5, generator=torch.Generator().manual_seed(3))
    b = poisson_noise(y, 1e3, scale=0.5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    c = poisson_noise(y.numpy(), 1e3, scale=0.5, generator=torch.Generator().manual_seed(3))
    assert isinstance(c, np.ndarray) and np.array_equal(c, a.numpy())


def test_poisson_noise_bad_input():
    y = _sinogram((10, 10))
    with pytest.raises(ValueError, match="photon_count"):
        poisson_noise(y, 0)
    with pytest.raises(ValueError, match="scale"):
        poisson_noise(y, 1e4, scale=-1.0)
    with pytest.raises(TypeError, match="float32 or float64"):
        poisson_noise(torch.ones(3, 3, dtype=torch.int32), 1e4)


# --- Poisson, emission ------------------------------------------------------------------

def test_poisson_counts_mean_and_variance():
    expected = torch.tensor([0.0, 0.5, 5.0, 50.0], dtype=torch.float64).repeat(20_000, 1)
    counts = poisson_counts(expected, generator=torch.Generator().manual_seed(0))
    assert counts.dtype == torch.float64 and counts.shape == expected.shape
    assert torch.equal(counts, counts.round()) and counts.min() >= 0
    assert torch.all(counts[:, 0] == 0)
    mean, var = counts.mean(dim=0), counts.var(dim=0)
    assert torch.allclose(mean[1:], expected[0, 1:], rtol=0.03)
    assert torch.allclose(var[1:], expected[0, 1:], rtol=0.05)     # Poisson: var = mean


def test_poisson_counts_reproducible_float32():
    expected = torch.rand(2, 30, 40) * 10
    a = poisson_counts(expected, generator=torch.Generator().manual_seed(5))
    b = poisson_counts(expected, generator=torch.Generator().manual_seed(5))
    assert a.dtype == torch.float32 and torch.equal(a, b)


def test_poisson_counts_bad_input():
    with pytest.raises(ValueError, match="non-negative"):
        poisson_counts(torch.tensor([1.0, -0.5]))
    with pytest.raises(ValueError, match="finite"):
        poisson_counts(torch.tensor([1.0, float("nan")]))
    with pytest.raises(TypeError, match="float32 or float64"):
        poisson_counts(torch.tensor([1, 2]))
