"""Filtered backprojection: filters, scaling, both geometries, gradients, errors."""

import math

import numpy as np
import pytest
import torch

import course_utils as cu
from conftest import smooth_phantom


def test_ramp_is_about_abs_frequency_with_a_small_positive_dc():
    response = cu.filter_response(100, "ram-lak")
    nu = torch.fft.rfftfreq(2 * (len(response) - 1))
    middle = (nu > 0.05) & (nu < 0.45)
    assert torch.allclose(response[middle], nu[middle].float(), rtol=0.05)
    assert 0 < float(response[0]) < 0.01


def test_windows_are_ordered_from_sharpest_to_smoothest():
    responses = [cu.filter_response(64, name) for name in cu.FILTERS]
    for sharper, smoother in zip(responses, responses[1:]):
        assert torch.all(smoother <= sharper + 1e-7)
        assert float(smoother[-1]) < float(sharper[-1])


def test_filter_scales_with_detector_spacing():
    ramp1 = cu.filter_response(64, "ram-lak", detector_spacing=1.0)
    ramp2 = cu.filter_response(64, "ram-lak", detector_spacing=2.0)
    assert torch.allclose(ramp2, ramp1 / 2, rtol=1e-6)


@pytest.mark.parametrize("geometry, min_psnr", [
    (cu.ParallelBeam(n_angles=256, n_detectors=363), 30.0),
    (cu.FanBeam(n_angles=256, n_detectors=800, source_distance=500.0, detector_distance=500.0),
     28.0),
], ids=["parallel", "fan"])
def test_fbp_reconstructs_shepp_logan_at_256(geometry, min_psnr):
    x = cu.shepp_logan(256)
    A = cu.RadonTransform(256, geometry)
    x_fbp = cu.fbp(A, A(x))
    assert float(cu.psnr(x_fbp, x, data_range=1.0)) > min_psnr
    assert float(x_fbp.mean()) == pytest.approx(float(x.mean()), rel=0.02)


@pytest.mark.parametrize("geometry", [
    cu.ParallelBeam(n_angles=180, n_detectors=95, detector_spacing=1.0),
    cu.ParallelBeam(n_angles=180, n_detectors=70, detector_spacing=1.4),
    cu.FanBeam(n_angles=240, n_detectors=140, source_distance=200, detector_distance=100),
], ids=["parallel", "parallel-wide-pixels", "fan"])
def test_fbp_is_scaled_right_for_every_geometry(geometry):
    x = smooth_phantom(64)
    A = cu.RadonTransform(64, geometry)
    x_fbp = cu.fbp(A, A(x), filter="hann")
    assert float(torch.linalg.norm(x_fbp - x) / torch.linalg.norm(x)) < 0.1


def test_fewer_angles_lower_the_psnr():
    x = cu.shepp_logan(128)   # measured: 28.9 dB with 180 angles, 21.1 dB with 30
    psnrs = []
    for n_angles in (180, 30):
        A = cu.RadonTransform(128, cu.ParallelBeam(n_angles=n_angles, n_detectors=183))
        psnrs.append(float(cu.psnr(cu.fbp(A, A(x)), x, data_range=1.0)))
    assert psnrs[1] < psnrs[0] - 5


def test_smoother_filters_win_on_noisy_data():
    x = smooth_phantom(64)
    A = cu.RadonTransform(64, cu.ParallelBeam(n_angles=90, n_detectors=95))
    y = cu.gaussian_noise(A(x), 0.05, generator=torch.Generator().manual_seed(0))
    ram_lak = float(cu.psnr(cu.fbp(A, y, "ram-lak"), x, data_range=1.0))
    hann = float(cu.psnr(cu.fbp(A, y, "hann"), x, data_range=1.0))
    assert hann > ram_lak + 1


def test_fbp_is_batched_differentiable_and_numpy_friendly():
    A = cu.RadonTransform(32, cu.ParallelBeam(n_angles=20, n_detectors=47))
    y = A(torch.rand(2, 3, 32, 32, dtype=torch.float64)).requires_grad_()
    x = cu.fbp(A, y)
    assert x.shape == (2, 3, 32, 32) and x.dtype == torch.float64
    assert torch.allclose(x[1, 2], cu.fbp(A, y[1, 2]))
    x.sum().backward()
    assert y.grad is not None and torch.isfinite(y.grad).all()
    out = cu.fbp(A, y.detach().numpy())
    assert isinstance(out, np.ndarray) and out.shape == (2, 3, 32, 32)


def test_fbp_errors_are_clear():
    A = cu.RadonTransform(32, cu.ParallelBeam(n_angles=20, n_detectors=47))
    with pytest.raises(ValueError, match=r"fbp expects y with shape \(\.\.\., 20, 47\), "
                                         r"got \(20, 46\)"):
        cu.fbp(A, torch.rand(20, 46))
    with pytest.raises(ValueError, match="filter must be one of"):
        cu.fbp(A, torch.rand(20, 47), filter="ramp")
    with pytest.raises(TypeError, match="RadonTransform as A"):
        cu.fbp(torch.rand(20, 47), A.to_matrix())
    with pytest.raises(TypeError, match=r"operator comes first: fbp\(A, y"):
        cu.fbp(torch.rand(20, 47), torch.rand(20, 47))
    with pytest.raises(TypeError, match="float32 or float64"):
        cu.fbp(A, torch.ones(20, 47, dtype=torch.int32))
    with pytest.raises(TypeError, match="y as a torch.Tensor or NumPy array"):
        cu.fbp(A, [[0.0] * 47] * 20)
    with pytest.raises(ValueError, match=r"backproject_fbp expects q with shape"):
        cu.backproject_fbp(A, torch.rand(20, 46))
    with pytest.raises(TypeError, match="cutoff must be a real number"):
        cu.fbp(A, torch.rand(20, 47), cutoff="low")


def test_old_argument_order_still_works():
    """fbp(y, A) and backproject_fbp(q, A), the order before issue #12, give the same
    result as fbp(A, y) and backproject_fbp(A, q), with every way of passing options."""
    A = cu.RadonTransform(32, cu.ParallelBeam(n_angles=20, n_detectors=47))
    y = A(smooth_phantom(32))
    expected = cu.fbp(A, y, filter="hann", cutoff=0.8)
    for old in (cu.fbp(y, A, "hann", 0.8), cu.fbp(y, A, filter="hann", cutoff=0.8),
                cu.fbp(y, A=A, filter="hann", cutoff=0.8)):
        assert torch.allclose(old, expected)
    assert not torch.allclose(cu.fbp(A, y), expected)     # the options were not ignored
    q = cu.filter_sinogram(y, "ram-lak")
    assert torch.allclose(cu.backproject_fbp(q, A), cu.backproject_fbp(A, q))
    out = cu.fbp(y.numpy(), A)
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, cu.fbp(A, y).numpy(), rtol=1e-5, atol=1e-6)


def test_fbp_checks_its_input_once(monkeypatch):
    """One check of the sinogram per call: not again in the filter, the backprojection
    and the operator."""
    A = cu.RadonTransform(32, cu.ParallelBeam(n_angles=20, n_detectors=47))
    y = A(torch.rand(32, 32))
    calls = []
    check = cu.LinearOperator._check

    def counting_check(self, *args, **kwargs):
        calls.append(type(self).__name__)
        return check(self, *args, **kwargs)

    monkeypatch.setattr(cu.LinearOperator, "_check", counting_check)
    cu.fbp(A, y)
    assert len(calls) == 1
    cu.backproject_fbp(A, y)
    assert len(calls) == 2


def test_pixels_whose_rays_miss_the_detector_get_nothing():
    """One angle, one lit detector pixel at the left edge (u = -3.5): only pixels within
    one pixel of it get a value; pixels further left, off the detector, get exactly 0."""
    from course_utils.reconstruction.fbp import _backproject
    geometry = cu.ParallelBeam(angles=[0.0], n_detectors=8)
    q = torch.zeros(1, 8)
    q[0, 0] = 1.0
    image = _backproject(q, geometry, 32)
    x = torch.arange(32) + 0.5 - 16                  # pixel centres along a row
    assert torch.all(image[:, x < -4.5] == 0)
    assert torch.all(image[:, (x > -4.5) & (x < -2.5)] > 0)


def test_fbp_is_fast_because_its_backprojection_is_a_stored_sparse_matrix():
    A = cu.RadonTransform(32, cu.ParallelBeam(n_angles=20, n_detectors=47))
    y = A(torch.rand(32, 32))
    cu.fbp(A, y)
    from course_utils.reconstruction.fbp import _PixelDrivenBackprojection
    B = _PixelDrivenBackprojection(A.geometry, 32)
    assert isinstance(B, cu.SparseMatrixOperator)
    assert B.to_matrix() is _PixelDrivenBackprojection(A.geometry, 32).to_matrix()
    assert B.check_adjoint(torch.float64) < 1e-12


def test_cutoff_removes_high_frequencies():
    """cutoff c stretches the window over [0, c] Nyquist and zeroes the rest (ODL's
    frequency_scaling); c = 1 is the plain filter."""
    full = cu.filter_response(64, "hann")
    assert torch.allclose(cu.filter_response(64, "hann", cutoff=1.0), full)
    half = cu.filter_response(64, "hann", cutoff=0.5)
    nu = torch.fft.rfftfreq(2 * (len(half) - 1), dtype=torch.float64)
    assert float(half[nu > 0.25 + 1e-9].abs().max()) < 1e-12
    ramp = cu.filter_response(64, "ram-lak").double()
    window = 0.5 * (1 + torch.cos(2 * math.pi * nu / 0.5))
    kept = nu <= 0.25
    assert torch.allclose(half.double()[kept], (ramp * window)[kept], atol=1e-6)
    for bad in (0, 1.5, -0.2):
        with pytest.raises(ValueError, match="cutoff"):
            cu.filter_response(64, "hann", cutoff=bad)
    with pytest.raises(TypeError, match="cutoff"):
        cu.filter_response(64, "hann", cutoff="low")
