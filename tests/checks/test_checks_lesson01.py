"""The checks of lesson 01 accept the reference answers and diagnose typical mistakes."""

import math

import numpy as np
import pytest
import torch

import course_utils as cu
from lesson_references import reference

# The reference answers, from solutions/01_radon_fbp.py (see lesson_references.py).
ref = reference("01")


def stub(*args):
    raise NotImplementedError("Exercise 1 (backprojection): replace this line")


def outcome(check, function):
    result = check(function)
    return result.status, result.message


# --- backprojection ------------------------------------------------------------------------

def test_backproject_accepts_the_reference_and_numpy_interp():
    assert cu.checks.backproject(ref.backproject)

    def with_numpy(sinogram, angles, image_size):
        n_det = sinogram.shape[1]
        c = np.arange(image_size) + 0.5 - image_size / 2
        x, y = c[None, :], -c[:, None]
        u_k = np.arange(n_det) + 0.5 - n_det / 2
        return sum(np.interp(x * np.cos(t) + y * np.sin(t), u_k, p, left=0, right=0)
                   for p, t in zip(sinogram.numpy(), angles.numpy()))

    assert cu.checks.backproject(with_numpy)


def test_backproject_not_attempted_and_missing_return():
    assert outcome(cu.checks.backproject, stub)[0] == "not attempted"
    status, message = outcome(cu.checks.backproject, lambda s, a, n: None)
    assert status == "failed" and "return" in message


def test_backproject_y_downwards_is_diagnosed():
    def y_down(sinogram, angles, image_size):
        return torch.flipud(ref.backproject(sinogram, angles, image_size))

    status, message = outcome(cu.checks.backproject, y_down)
    assert status == "failed" and "y runs the wrong way" in message and "90°" in message


def test_backproject_cos_sin_swapped_is_diagnosed():
    def swapped(sinogram, angles, image_size):
        return ref.backproject(sinogram, math.pi / 2 - angles, image_size)

    status, message = outcome(cu.checks.backproject, swapped)
    assert status == "failed" and "swapped" in message
    assert "horizontal line at row 6" in message


def test_backproject_half_pixel_and_mean_and_nearest_are_diagnosed():
    def half_pixel(sinogram, angles, image_size):
        shifted = 0.5 * (sinogram + torch.nn.functional.pad(sinogram, (0, 1))[:, 1:])
        return ref.backproject(shifted, angles, image_size)

    status, message = outcome(cu.checks.backproject, half_pixel)
    assert status == "failed" and "half a pixel" in message

    def mean(sinogram, angles, image_size):
        return ref.backproject(sinogram, angles, image_size) / len(angles)

    status, message = outcome(cu.checks.backproject, mean)
    assert status == "failed" and "plain sum" in message and "not their mean" in message

    def nearest(sinogram, angles, image_size):
        n_det = sinogram.shape[1]
        c = torch.arange(image_size, dtype=sinogram.dtype) + 0.5 - image_size / 2
        x, y = c[None, :], -c[:, None]
        image = 0
        for p, t in zip(sinogram, angles):
            k = torch.round(x * torch.cos(t) + y * torch.sin(t) + n_det / 2 - 0.5).long()
            image = image + p[k.clamp(0, n_det - 1)]
        return image

    status, message = outcome(cu.checks.backproject, nearest)
    assert status == "failed" and "interpolate linearly" in message


# --- the ramp filter -------------------------------------------------------------------------

def test_ramp_accepts_reference_other_padding_and_exact_ramp():
    assert cu.checks.ramp_filter_projections(ref.ramp_filter_projections)

    def power_of_two(sinogram):
        n = sinogram.shape[-1]
        n_fft = 2 ** math.ceil(math.log2(2 * n))
        spectrum = torch.fft.rfft(sinogram, n=n_fft)
        return torch.fft.irfft(spectrum * torch.fft.rfftfreq(n_fft), n=n_fft)[..., :n]

    assert cu.checks.ramp_filter_projections(power_of_two)
    result = cu.checks.ramp_filter_projections(cu.filter_sinogram)
    assert result and "exact band-limited ramp" in result.message


def test_ramp_not_attempted():
    assert outcome(cu.checks.ramp_filter_projections, stub)[0] == "not attempted"


def test_ramp_without_padding_is_diagnosed():
    def circular(sinogram):
        nu = torch.fft.fftfreq(sinogram.shape[-1], dtype=sinogram.dtype)
        return torch.fft.ifft(torch.fft.fft(sinogram) * nu.abs()).real

    status, message = outcome(cu.checks.ramp_filter_projections, circular)
    assert status == "failed" and "no zero padding" in message and "wrap" in message


def test_ramp_in_radians_is_diagnosed():
    status, message = outcome(cu.checks.ramp_filter_projections,
                              lambda s: 2 * math.pi * ref.ramp_filter_projections(s))
    assert status == "failed" and "2πν" in message


def test_ramp_along_the_wrong_axis_is_diagnosed():
    status, message = outcome(cu.checks.ramp_filter_projections,
                              lambda s: ref.ramp_filter_projections(s.T).T)
    assert status == "failed" and "along the angles" in message


def test_ramp_not_cropped_is_diagnosed():
    def not_cropped(sinogram):
        n_fft = 2 * sinogram.shape[-1]
        nu = torch.fft.fftfreq(n_fft, dtype=sinogram.dtype)
        return torch.fft.ifft(torch.fft.fft(sinogram, n=n_fft) * nu.abs()).real

    status, message = outcome(cu.checks.ramp_filter_projections, not_cropped)
    assert status == "failed" and "first n_detectors" in message


# --- filtered backprojection ----------------------------------------------------------------

def test_fbp_accepts_reference_and_reports_the_mean_offset():
    result = cu.checks.fbp(ref.fbp)
    assert result and "PSNR" in result.message and "below" in result.message


def test_fbp_with_the_course_filter_and_midpoint_weights_is_identical():
    def exact(sinogram, angles, image_size):
        # the weights as the gaps between the midpoints, with the wrap-around at π
        theta = angles.numpy()
        extended = np.concatenate([[theta[-1] - np.pi], theta, [theta[0] + np.pi]])
        weights = np.diff((extended[1:] + extended[:-1]) / 2)
        filtered = cu.filter_sinogram(sinogram) * torch.from_numpy(weights)[:, None]
        return ref.backproject(filtered, angles, image_size)

    result = cu.checks.fbp(exact)
    assert result and "identical" in result.message


def test_fbp_accepts_weights_written_with_a_loop_and_numpy():
    def with_a_loop(sinogram, angles, image_size):
        theta = angles.tolist()
        n = len(theta)
        weights = [((theta[k + 1] if k + 1 < n else theta[0] + math.pi)
                    - (theta[k - 1] if k > 0 else theta[-1] - math.pi)) / 2 for k in range(n)]
        filtered = ref.ramp_filter_projections(sinogram)
        return sum(w * ref.backproject(filtered[k:k + 1], angles[k:k + 1], image_size)
                   for k, w in enumerate(weights))

    assert cu.checks.fbp(with_a_loop)


def uneven_fbp(weights_of):
    def fbp(sinogram, angles, image_size):
        filtered = ref.ramp_filter_projections(sinogram) * weights_of(angles)[:, None]
        return ref.backproject(filtered, angles, image_size)
    return fbp


@pytest.mark.parametrize("weights_of, words", [
    (lambda a: torch.full_like(a, math.pi / len(a)), "only right for evenly spaced"),
    (lambda a: torch.cat([(a[1:2] - a[:1]) / 2, (a[2:] - a[:-2]) / 2, (a[-1:] - a[-2:-1]) / 2]),
     "neighbours too"),
    (lambda a: torch.diff(torch.cat([a.new_zeros(1), (a[1:] + a[:-1]) / 2,
                                     a.new_full((1,), math.pi)])), "stop at 0 and at π"),
    (lambda a: torch.diff(torch.cat([a, a[:1] + math.pi])), "whole gap"),
])
def test_fbp_wrong_weights_for_uneven_angles_are_diagnosed(weights_of, words):
    status, message = outcome(cu.checks.fbp, uneven_fbp(weights_of))
    assert status == "failed" and words in message, message


def test_fbp_not_attempted_also_when_a_helper_is_a_stub():
    assert outcome(cu.checks.fbp, stub)[0] == "not attempted"

    def uses_stub(sinogram, angles, image_size):
        return stub(sinogram) * 2

    assert outcome(cu.checks.fbp, uses_stub)[0] == "not attempted"


@pytest.mark.parametrize("factor, words", [
    (lambda n: n / math.pi, "weight π/n_angles is missing"),
    (lambda n: 1 / math.pi, "π is missing"),
    (lambda n: 2.0, "180°"),
])
def test_fbp_wrong_weight_is_diagnosed(factor, words):
    def scaled(sinogram, angles, image_size):
        return factor(len(angles)) * ref.fbp(sinogram, angles, image_size)

    status, message = outcome(cu.checks.fbp, scaled)
    assert status == "failed" and words in message


def test_fbp_without_filter_is_diagnosed():
    status, message = outcome(cu.checks.fbp, lambda s, a, n: ref.backproject(s, a, n))
    assert status == "failed" and "plain (blurred) backprojection" in message


def test_fbp_upside_down_is_diagnosed():
    status, message = outcome(cu.checks.fbp, lambda s, a, n: torch.flipud(ref.fbp(s, a, n)))
    assert status == "failed" and "upside down" in message


# --- a detector narrower than the image's diagonal -------------------------------------------

def test_backproject_edge_values_outside_a_narrow_detector_are_diagnosed():
    def edge_clamped(sinogram, angles, image_size):   # np.interp's default: the edge values
        n_det = sinogram.shape[1]
        c = np.arange(image_size) + 0.5 - image_size / 2
        x, y = c[None, :], -c[:, None]
        u_k = np.arange(n_det) + 0.5 - n_det / 2
        return sum(np.interp(x * np.cos(t) + y * np.sin(t), u_k, p)
                   for p, t in zip(sinogram.numpy(), angles.numpy()))

    status, message = outcome(cu.checks.backproject, edge_clamped)
    assert status == "failed" and "narrower than the image's diagonal" in message
    assert "read 0" in message


def test_backproject_message_mentions_narrow_detectors():
    result = cu.checks.backproject(ref.backproject)
    assert result and "narrower" in result.message
