"""Measurement noise: relative Gaussian noise, low-dose CT (Poisson) and emission counts.

Every function takes an optional ``generator`` (a ``torch.Generator``) so that an
experiment can be repeated exactly: the same seed gives the same noise.  The noise is
drawn on the generator's device and then moved to the data's device, so a CPU
generator works for data on a GPU too (and gives the same noise there as on the CPU).
Without a generator, the noise comes from PyTorch's global random state on the data's
device (seed it with ``cu.seed_everything``).

Shapes: measurements are ``(..., n_angles, n_detectors)`` (any shape works for the
Poisson functions); leading dimensions are batch dimensions.
"""

from __future__ import annotations

import math

import torch

from ..arrays import as_tensor, check_floating, check_number, numpy_compatible

__all__ = ["gaussian_noise", "poisson_noise", "poisson_counts"]


def _check_measurement(y, name: str) -> torch.Tensor:
    y = check_floating(as_tensor(y, name), name)
    if y.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension, got a 0-dim tensor")
    return y




def _on_generator_device(generator: torch.Generator | None, device: torch.device):
    """Device on which to draw random numbers: the generator's own, else the data's."""
    return device if generator is None else generator.device


@numpy_compatible
def gaussian_noise(y, level: float, *, relative_to: str = "norm",
                   generator: torch.Generator | None = None):
    """Add white Gaussian noise of a given *relative* level: ``y + e``.

    .. math::  e \\sim \\mathcal N(0, \\sigma^2 I), \\qquad
               \\sigma = \\text{level} \\cdot \\frac{\\|y\\|_2}{\\sqrt m}
               \\quad\\text{or}\\quad
               \\sigma = \\text{level} \\cdot \\frac{\\|y\\|_1}{m},

    per item, with the norms over the last two dimensions and :math:`m` the number of
    entries in them.  With ``relative_to="norm"`` (the default),
    :math:`\\mathbb E \\|e\\|^2 = \\text{level}^2 \\|y\\|^2`, so ``level=0.05`` means
    about 5 % noise: :math:`\\|e\\| / \\|y\\| \\approx 0.05`.  With
    ``relative_to="mean_abs"`` the standard deviation is ``level`` times the mean
    absolute value of the clean measurement: the convention of the dival benchmark
    (its ``relative_stddev``), which the shared setting follows with ``level=0.025``.

    Parameters
    ----------
    y : torch.Tensor or numpy.ndarray, shape (..., n_angles, n_detectors)
        Clean measurements, float32 or float64.  A 1-D vector is treated as one
        measurement.
    level : float
        Relative noise level, ``>= 0``.
    relative_to : {"norm", "mean_abs"}
        What the level is relative to (above).
    generator : torch.Generator, optional
        Source of randomness, for reproducible noise.

    Returns
    -------
    torch.Tensor or numpy.ndarray
        Noisy measurements, same shape, dtype and device as ``y``.

    Examples
    --------
    >>> y = torch.ones(180, 128)
    >>> g = torch.Generator().manual_seed(0)
    >>> e = gaussian_noise(y, 0.05, generator=g) - y
    >>> round(float(e.norm() / y.norm()), 2)
    0.05

    Taught in lesson 01, section 5; the shared setting of lessons 03-09 uses it.
    """
    y = _check_measurement(y, "y")
    level = check_number(level, "level", positive=False)
    dims = (-2, -1) if y.ndim >= 2 else (-1,)
    m = math.prod(y.shape[d] for d in dims)
    if relative_to == "norm":
        sigma = level * torch.linalg.vector_norm(y, dim=dims, keepdim=True) / math.sqrt(m)
    elif relative_to == "mean_abs":
        sigma = level * y.abs().mean(dim=dims, keepdim=True)
    else:
        raise ValueError(f'relative_to must be "norm" or "mean_abs", got {relative_to!r}')
    e = torch.randn(y.shape, generator=generator, dtype=y.dtype,
                    device=_on_generator_device(generator, y.device))
    return y + sigma * e.to(y.device)


@numpy_compatible
def poisson_noise(y, photon_count: float, *, scale: float = 1.0,
                  generator: torch.Generator | None = None):
    """Low-dose transmission CT: Poisson photon counts through Beer-Lambert's law.

    An X-ray beam with ``photon_count`` photons per detector pixel (the dose) crosses
    the object; the expected number that arrives is :math:`N_0 e^{-p}`, where
    :math:`p` is the line integral of the attenuation.  We draw the counts and take
    the logarithm back, as a scanner does:

    .. math::  p = \\text{scale} \\cdot y, \\quad
               N \\sim \\text{Poisson}(N_0 e^{-p}), \\quad
               y_{noisy} = -\\log\\left(\\max(N, 1) / N_0\\right) / \\text{scale}.

    Fewer photons means more noise, and the noise is strongest where the object is
    most attenuating (few photons arrive there), unlike Gaussian noise.

    Why ``scale``: our phantoms are in units per pixel, so a line integral through a
    128-pixel [0, 1] phantom is tens of units, and :math:`e^{-30}` would mean that no
    photon ever arrives.  Real line integrals are a few units at most.  ``scale``
    converts to physical units (e.g. the pixel size in cm for an image in 1/cm);
    for a synthetic phantom choose it so that the largest line integral is a few
    units, e.g. ``scale = 3 / float(y.max())``.  The result is in the units of ``y``.

    Why ``max(N, 1)``: with few photons a detector can count 0, and
    :math:`-\\log 0` is infinite; counting such a reading as 1 photon is the usual
    simple fix (it caps the line integral at :math:`\\log N_0`).

    Parameters
    ----------
    y : torch.Tensor or numpy.ndarray, shape (..., n_angles, n_detectors)
        Clean line integrals (a sinogram), float32 or float64.
    photon_count : float
        Incident photons per detector pixel, :math:`N_0 > 0` (e.g. 1e4 for low dose,
        1e6 for nearly noise-free).
    scale : float
        Factor from the units of ``y`` to dimensionless line integrals, ``> 0``.
    generator : torch.Generator, optional
        Source of randomness, for reproducible noise.

    Returns
    -------
    torch.Tensor or numpy.ndarray
        Noisy line integrals, same shape, dtype, device and units as ``y``.

    Taught in lesson 02, section 3; the low-dose variant of the shared setting.
    """
    y = _check_measurement(y, "y")
    photon_count = check_number(photon_count, "photon_count", positive=True)
    scale = check_number(scale, "scale", positive=True)
    expected = photon_count * torch.exp(-scale * y)
    counts = _draw_poisson(expected, generator)
    return -torch.log(counts.clamp(min=1.0) / photon_count) / scale


def _draw_poisson(expected: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    device = _on_generator_device(generator, expected.device)
    counts = torch.poisson(expected.to(device), generator=generator)
    return counts.to(expected.device)


@numpy_compatible
def poisson_counts(expected, *, generator: torch.Generator | None = None):
    """Emission data (PET/SPECT): photon counts :math:`N \\sim \\text{Poisson}(\\bar N)`.

    In emission tomography the measured counts in each detector bin are Poisson with
    mean :math:`\\bar N = A x`, the projection of the activity ``x``.  This is the
    noise model behind MLEM.

    Parameters
    ----------
    expected : torch.Tensor or numpy.ndarray, any shape
        Expected counts :math:`\\bar N \\ge 0`, float32 or float64.
    generator : torch.Generator, optional
        Source of randomness, for reproducible counts.

    Returns
    -------
    torch.Tensor or numpy.ndarray
        Counts (whole numbers stored as floats), same shape, dtype and device.

    Taught in lesson 02, section 3, and used for emission data in lesson 06.
    """
    expected = check_floating(as_tensor(expected, "expected"), "expected")
    if not torch.isfinite(expected).all():
        raise ValueError("expected counts must be finite, got inf or nan")
    if expected.numel() > 0 and expected.min() < 0:
        raise ValueError(
            f"expected counts must be non-negative, got a minimum of {float(expected.min()):.4g}; "
            "clip them with .clamp(min=0) first"
        )
    return _draw_poisson(expected, generator)
