"""Tests of course_utils.metrics: PSNR and SSIM."""

import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from course_utils.metrics import psnr, ssim
from course_utils.simulation.phantoms import shepp_logan


# --- PSNR -------------------------------------------------------------------------------

def test_psnr_constant_offset():
    ref = torch.zeros(32, 32)
    # MSE = 0.1^2 = 0.01 and R = 1: PSNR = 10 log10(1 / 0.01) = 20 dB
    assert float(psnr(ref + 0.1, ref, data_range=1.0)) == pytest.approx(20.0, abs=1e-4)
    assert float(psnr(ref + 0.01, ref, data_range=1.0)) == pytest.approx(40.0, abs=1e-3)
    assert float(psnr(ref + 0.1, ref, data_range=2.0)) == pytest.approx(20 + 20 * math.log10(2), abs=1e-4)


def test_psnr_default_data_range_and_identity():
    ref = shepp_logan(64, dtype=torch.float64)       # range 1
    x = ref + 0.05
    assert float(psnr(x, ref)) == pytest.approx(float(psnr(x, ref, data_range=1.0)))
    assert float(psnr(ref, ref)) == math.inf
    assert psnr(ref, ref).ndim == 0


def test_psnr_batched():
    ref = torch.zeros(2, 3, 16, 16, dtype=torch.float64)
    offsets = torch.tensor([0.1, 0.01, 0.001], dtype=torch.float64)
    x = ref + offsets[None, :, None, None]
    values = psnr(x, ref, data_range=1.0)
    assert values.shape == (2, 3)
    assert torch.allclose(values, torch.tensor([[20.0, 40.0, 60.0]] * 2, dtype=torch.float64))
    # one data range per image
    values = psnr(x, ref, data_range=torch.tensor([1.0, 10.0, 100.0]))
    assert torch.allclose(values[0], torch.tensor([20.0, 60.0, 100.0], dtype=torch.float64))


def test_psnr_matches_scikit_image_and_numpy_in_numpy_out():
    from skimage.metrics import peak_signal_noise_ratio

    rng = np.random.default_rng(0)
    ref = rng.random((40, 50))
    x = ref + 0.1 * rng.standard_normal(ref.shape)
    value = psnr(x, ref, data_range=1.0)
    assert isinstance(value, np.ndarray) and value.shape == ()
    assert float(value) == pytest.approx(peak_signal_noise_ratio(ref, x, data_range=1.0), abs=1e-10)


def test_psnr_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        psnr(torch.zeros(8, 8), torch.zeros(8, 9))
    with pytest.raises(ValueError, match=r"\(\.\.\., H, W\)"):
        psnr(torch.zeros(8), torch.zeros(8))
    with pytest.raises(ValueError, match="data_range"):
        psnr(torch.zeros(8, 8), torch.ones(8, 8))           # constant ref, no data_range
    with pytest.raises(ValueError, match="data_range"):
        psnr(torch.zeros(8, 8), torch.ones(8, 8), data_range=0)
    with pytest.raises(TypeError, match="float32 or float64"):
        psnr(torch.zeros(8, 8, dtype=torch.uint8), torch.zeros(8, 8))


# --- SSIM -------------------------------------------------------------------------------

def _test_images():
    rng = np.random.default_rng(1)
    ref = shepp_logan(64, dtype=torch.float64).numpy()
    return [
        (ref + 0.05 * rng.standard_normal(ref.shape), ref),
        (np.clip(ref + 0.3 * rng.standard_normal(ref.shape), 0, 1), ref),
        (0.5 * ref + 0.2, ref),
        (rng.random((23, 37)), rng.random((23, 37))),
    ]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_ssim_matches_scikit_image(dtype):
    for x, ref in _test_images():
        x, ref = x.astype(dtype), ref.astype(dtype)
        expected = structural_similarity(x, ref, data_range=1.0, gaussian_weights=True,
                                         sigma=1.5, use_sample_covariance=False)
        assert float(ssim(x, ref, data_range=1.0)) == pytest.approx(expected, abs=1e-4)
        assert float(ssim(torch.from_numpy(x), torch.from_numpy(ref), data_range=1.0)) == \
            pytest.approx(expected, abs=1e-4)


def test_ssim_identity_batched_and_differentiable():
    ref = shepp_logan(48).expand(2, 3, 48, 48)
    assert torch.allclose(ssim(ref, ref), torch.ones(2, 3))
    x = (ref + 0.1 * torch.randn(2, 3, 48, 48, generator=torch.Generator().manual_seed(0)))
    values = ssim(x, ref, data_range=1.0)
    assert values.shape == (2, 3) and (values < 0.9).all()
    single = ssim(x[1, 2], ref[1, 2], data_range=1.0)
    assert single.ndim == 0 and float(single) == pytest.approx(float(values[1, 2]), abs=1e-6)
    x = x.clone().requires_grad_()
    (1 - ssim(x, ref, data_range=1.0)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_ssim_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        ssim(torch.zeros(16, 16), torch.zeros(2, 16, 16))
    with pytest.raises(ValueError, match="11 x 11"):
        ssim(torch.rand(8, 32), torch.rand(8, 32))
    with pytest.raises(ValueError, match="data_range"):
        ssim(torch.rand(16, 16), torch.zeros(16, 16))
    with pytest.raises(TypeError, match="float32 or float64"):
        ssim(torch.zeros(16, 16, dtype=torch.int64), torch.zeros(16, 16, dtype=torch.int64))
