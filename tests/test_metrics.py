"""Tests of course_utils.metrics: PSNR and SSIM."""

import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

import course_utils as cu
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


def test_psnr_3d_is_one_mse_over_all_voxels():
    g = torch.Generator().manual_seed(0)
    ref = torch.rand(2, 6, 12, 14, generator=g, dtype=torch.float64)
    x = ref + 0.05 * torch.randn(ref.shape, generator=g, dtype=torch.float64)
    x[:, 0] += 0.5                                  # one bad slice per volume
    mse = (x - ref).square().mean(dim=(-3, -2, -1))
    torch.testing.assert_close(cu.psnr_3d(x, ref, data_range=1.0), -10 * torch.log10(mse))
    # not the mean of the slices' PSNRs (the bad slice weighs in through its MSE)
    per_slice = cu.psnr(x, ref, data_range=1.0).mean(dim=-1)
    assert (per_slice - cu.psnr_3d(x, ref, data_range=1.0)).min() > 1.0
    # the default data range is that of each volume
    R = ref.amax(dim=(-3, -2, -1)) - ref.amin(dim=(-3, -2, -1))
    torch.testing.assert_close(cu.psnr_3d(x, ref), cu.psnr_3d(x, ref, data_range=R))


def test_ssim_3d_is_the_mean_over_axial_slices():
    g = torch.Generator().manual_seed(1)
    ref = torch.rand(3, 5, 16, 16, generator=g)
    x = ref + 0.1 * torch.randn(ref.shape, generator=g)
    expected = torch.stack([cu.ssim(x[i], ref[i], data_range=1.0).mean() for i in range(3)])
    torch.testing.assert_close(cu.ssim_3d(x, ref, data_range=1.0), expected)
    assert float(cu.ssim_3d(ref[0], ref[0], data_range=1.0)) == pytest.approx(1.0)
    # numpy in, numpy out
    assert isinstance(cu.ssim_3d(x.numpy(), ref.numpy(), data_range=1.0), np.ndarray)


def test_volume_metrics_reject_images_and_constant_volumes():
    with pytest.raises(ValueError, match=r"\(\.\.\., D, H, W\)"):
        cu.psnr_3d(torch.zeros(16, 16), torch.zeros(16, 16), data_range=1.0)
    with pytest.raises(ValueError, match="constant value"):
        cu.psnr_3d(torch.zeros(4, 16, 16), torch.zeros(4, 16, 16))
    with pytest.raises(ValueError, match="data_range must be positive"):
        cu.ssim_3d(torch.zeros(4, 16, 16), torch.zeros(4, 16, 16), data_range=0.0)
