"""Filtered backprojection (FBP): filter every projection with a ramp, then backproject.

Parallel beam, angles evenly covering :math:`[0, \\pi)`:

.. math:: x(\\mathbf{r}) \\approx \\frac{\\pi}{n_\\theta} \\sum_{\\theta}
          q_\\theta(\\mathbf{r}\\cdot\\boldsymbol\\theta), \\qquad
          q_\\theta = \\mathcal{F}^{-1}\\big[\\,|\\omega|\\, W(\\omega)\\,
          \\mathcal{F} p_\\theta \\big],

where :math:`|\\omega|` is the ramp and :math:`W` a window that trades resolution for
noise (``"ram-lak"`` is no window, then ``"shepp-logan"``, ``"cosine"``, ``"hann"`` are
ever smoother).

Fan beam with a flat detector, source angles evenly covering :math:`[0, 2\\pi)` (Kak &
Slaney, 1988, ch. 3.4.2): rescale the detector to the rotation axis (coordinate
:math:`a`), weight each projection by :math:`d_s/\\sqrt{d_s^2 + a^2}`, ramp-filter, and
backproject with the distance weight :math:`d_s^2/U^2`, where :math:`U` is the distance
from the source to the pixel along the central ray.

The backprojection here is *pixel driven*: every pixel looks up, by linear
interpolation, where its ray hit the detector.  Its weights are stored as a sparse
matrix, like the system matrix, so FBP of a whole batch is one product, and it is
differentiable, so a learned filter can be trained through it.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch

from ..arrays import check_floating, numpy_compatible
from ..operators.geometry import FanBeam
from ..operators.radon import _SparseOperator

__all__ = ["FILTERS", "filter_response", "filter_sinogram", "backproject_fbp", "fbp"]

#: The FBP filters, from sharpest to smoothest.
FILTERS = ("ram-lak", "shepp-logan", "cosine", "hann")


def _fft_size(n_detectors: int) -> int:
    """Zero-pad to at least twice the detector length (no wrap-around), a power of two."""
    return max(64, 2 ** math.ceil(math.log2(2 * n_detectors)))


def filter_response(n_detectors: int, filter: str = "ram-lak", detector_spacing: float = 1.0,
                    *, cutoff: float = 1.0, dtype=torch.float32,
                    device="cpu") -> torch.Tensor:
    """Frequency response of an FBP filter, for ``torch.fft.rfft`` of zero-padded rows.

    The ramp is the Fourier transform of the band-limited ramp's sampled kernel
    (Kak & Slaney, eq. 3.61), :math:`h(0) = 1/(4\\tau^2)`,
    :math:`h(n\\tau) = -1/(n\\pi\\tau)^2` for odd :math:`n`, 0 for even :math:`n`,
    which gets the zero frequency right (plain :math:`|\\omega|` sampling does not and
    gives a biased, "cupped" image).

    Parameters
    ----------
    n_detectors : int
        Length of a projection; it is zero-padded to ``n_fft`` (a power of two at least
        twice as long).
    filter : {"ram-lak", "shepp-logan", "cosine", "hann"}
    detector_spacing : float
        :math:`\\tau`, the detector pixel width (pixels).
    cutoff : float
        Cut-off frequency as a fraction of the Nyquist frequency, in ``(0, 1]``: the
        window is stretched over ``[0, cutoff]`` and the response is zero above
        (ODL's and dival's ``frequency_scaling``).  Lower cut-offs trade resolution for
        less noise.

    Returns
    -------
    torch.Tensor, shape (n_fft // 2 + 1,)
        Real response at frequencies ``torch.fft.rfftfreq(n_fft)`` (cycles per sample).
    """
    if filter not in FILTERS:
        raise ValueError(f"filter must be one of {FILTERS}, got {filter!r}")
    cutoff = _check_cutoff(cutoff)
    n_fft = _fft_size(int(n_detectors))
    tau = float(detector_spacing)
    n = torch.arange(n_fft, dtype=torch.float64)
    n = torch.where(n <= n_fft // 2, n, n - n_fft)            # signed sample index
    kernel = torch.zeros(n_fft, dtype=torch.float64)
    kernel[0] = 1 / (4 * tau**2)
    odd = n.remainder(2) == 1
    kernel[odd] = -1 / (math.pi * n[odd] * tau) ** 2
    ramp = tau * torch.fft.rfft(kernel).real                   # about |omega|, in 1/pixel
    nu = torch.fft.rfftfreq(n_fft, dtype=torch.float64)        # 0 ... 1/2 cycles per sample
    kept = nu <= 0.5 * cutoff + 1e-12
    nu = nu / cutoff
    window = {
        "ram-lak": torch.ones_like(nu),
        "shepp-logan": torch.sinc(nu),                         # sin(pi nu) / (pi nu)
        "cosine": torch.cos(math.pi * nu),
        "hann": 0.5 * (1 + torch.cos(2 * math.pi * nu)),
    }[filter] * kept
    return (ramp * window).to(dtype=dtype, device=device)


def _check_cutoff(cutoff) -> float:
    try:
        cutoff = float(cutoff)
    except (TypeError, ValueError):
        raise TypeError(f"cutoff must be a number, got {type(cutoff).__name__}") from None
    if not 0 < cutoff <= 1:
        raise ValueError(f"cutoff must lie in (0, 1] (a fraction of the Nyquist "
                         f"frequency), got {cutoff}")
    return cutoff


@numpy_compatible
def filter_sinogram(sinogram: torch.Tensor, filter: str = "ram-lak",
                    detector_spacing: float = 1.0, cutoff: float = 1.0) -> torch.Tensor:
    """Filter every projection (the last axis) with an FBP filter, with zero padding.

    Parameters
    ----------
    sinogram : torch.Tensor, shape (..., n_angles, n_detectors)
    filter : {"ram-lak", "shepp-logan", "cosine", "hann"}
    detector_spacing : float
        Detector pixel width, in pixels.
    cutoff : float
        Cut-off as a fraction of the Nyquist frequency (:func:`filter_response`).

    Returns
    -------
    torch.Tensor, same shape as ``sinogram``.
    """
    check_floating(sinogram, "sinogram")
    n_det = sinogram.shape[-1]
    response = filter_response(n_det, filter, detector_spacing, cutoff=cutoff,
                               dtype=sinogram.dtype, device=sinogram.device)
    n_fft = 2 * (len(response) - 1)
    spectrum = torch.fft.rfft(sinogram, n=n_fft, dim=-1)
    return torch.fft.irfft(spectrum * response, n=n_fft, dim=-1)[..., :n_det]


class _PixelDrivenBackprojection(_SparseOperator):
    """Pixel-driven (weighted) backprojection, sinograms ``(..., A, D)`` -> images ``(..., N, N)``.

    Every pixel, at every angle, looks up by linear interpolation where its ray hit the
    detector; fan beam multiplies by the distance weight :math:`d_s^2 / U^2`.  The
    weights are stored as a sparse matrix (two per pixel and angle), so a batch is
    backprojected in one product and the gradient comes for free.
    """

    def __init__(self, geometry, image_size: int, device="cpu"):
        super().__init__(geometry.sinogram_shape, (image_size, image_size), device,
                         domain_name="sinogram", range_name="image")
        self.geometry, self.image_size = geometry, image_size

    def _matrix_key(self):
        return ("pixel-driven backprojection", self.image_size, self.geometry._key())

    def _build_matrix(self):
        geometry, n, n_det = self.geometry, self.image_size, self.geometry.n_detectors
        centres = torch.arange(n, dtype=torch.float64) + 0.5 - n / 2
        x = centres.repeat(n)[:, None]                    # each pixel's x (columns)
        y = -centres.repeat_interleave(n)[:, None]        # rows go down, y goes up
        cos, sin = torch.cos(geometry.angles)[None], torch.sin(geometry.angles)[None]
        along_detector = x * cos + y * sin                # (pixels, angles)
        if isinstance(geometry, FanBeam):
            distance = geometry.source_distance + (-x * sin + y * cos)     # U
            u = (geometry.source_distance + geometry.detector_distance) \
                * along_detector / distance
            weight = ((geometry.source_distance / distance) ** 2).float()
        else:
            u, weight = along_detector, 1.0
        k = (u / geometry.detector_spacing + n_det / 2 - 0.5).float()  # detector index
        k_low = torch.floor(k)
        t = k - k_low
        k_low = k_low.int()
        # Two neighbours per (pixel, angle); one outside the detector gets weight 0.
        weights = torch.stack([(1 - t) * ((k_low >= 0) & (k_low < n_det)),
                               t * ((k_low >= -1) & (k_low < n_det - 1))], -1)
        weights = weights * (weight[..., None] if torch.is_tensor(weight) else weight)
        row_start = torch.arange(geometry.n_angles, dtype=torch.int32)[None] * n_det
        columns = torch.stack([row_start + k_low.clamp(0, n_det - 1),
                               row_start + (k_low + 1).clamp(0, n_det - 1)], -1)
        crow = torch.arange(n * n + 1, dtype=torch.int32) * (2 * geometry.n_angles)
        return torch.sparse_csr_tensor(crow, columns.reshape(-1), weights.reshape(-1),
                                       size=(n * n, geometry.n_angles * n_det),
                                       check_invariants=False)


_BACKPROJECTIONS: OrderedDict = OrderedDict()   # a few recent ones, ready on their device


def _backproject(q: torch.Tensor, geometry, image_size: int) -> torch.Tensor:
    """Pixel-driven, weighted backprojection (no FBP scale) of ``q``, ``(..., A, D)``."""
    key = (image_size, geometry._key(), q.device)
    if key not in _BACKPROJECTIONS:
        _BACKPROJECTIONS[key] = _PixelDrivenBackprojection(geometry, image_size, q.device)
        if len(_BACKPROJECTIONS) > 8:
            _BACKPROJECTIONS.popitem(last=False)
    _BACKPROJECTIONS.move_to_end(key)
    return _BACKPROJECTIONS[key](q)


def _check_fbp_inputs(sinogram, A):
    geometry = getattr(A, "geometry", None)
    if geometry is None or not hasattr(A, "image_size"):
        raise TypeError(f"expected a RadonTransform as A, got {type(A).__name__}")
    if not isinstance(sinogram, torch.Tensor):
        raise TypeError(f"sinogram must be a torch.Tensor or NumPy array, "
                        f"got {type(sinogram).__name__}")
    check_floating(sinogram, "sinogram")
    if sinogram.dim() < 2 or tuple(sinogram.shape[-2:]) != geometry.sinogram_shape:
        raise ValueError(f"expected a sinogram of shape (..., {geometry.n_angles}, "
                         f"{geometry.n_detectors}), got {tuple(sinogram.shape)}")
    return geometry


@numpy_compatible
def backproject_fbp(q: torch.Tensor, A) -> torch.Tensor:
    """FBP's backprojection step, :math:`\\frac{\\pi}{n_\\theta} B q`, with its weights.

    ``fbp(y, A)`` is ``backproject_fbp(filter_sinogram(y), A)`` (after the fan-beam
    pre-weighting).  A fixed, differentiable linear layer: learned FBP (lesson 04)
    trains a filter through it.  It is *pixel driven* and so not exactly ``A.T``.

    Parameters
    ----------
    q : torch.Tensor, shape (..., n_angles, n_detectors)
        Filtered projections.
    A : RadonTransform
        Gives the geometry and the image size.

    Returns
    -------
    torch.Tensor, shape (..., N, N)
    """
    geometry = _check_fbp_inputs(q, A)
    return _backproject(q, geometry, A.image_size) * (math.pi / geometry.n_angles)


@numpy_compatible
def fbp(sinogram: torch.Tensor, A, filter: str = "ram-lak", cutoff: float = 1.0) -> torch.Tensor:
    """Filtered backprojection for the geometry of a :class:`RadonTransform`.

    Parameters
    ----------
    sinogram : torch.Tensor, shape (..., n_angles, n_detectors)
        Line integrals, e.g. ``A(x)`` (plus noise).
    A : RadonTransform
        Gives the geometry and the image size.
    filter : {"ram-lak", "shepp-logan", "cosine", "hann"}
        Ramp filter and its window, from sharpest to smoothest.
    cutoff : float
        Cut-off frequency as a fraction of Nyquist, in ``(0, 1]`` (default 1: none).

    Returns
    -------
    torch.Tensor, shape (..., N, N)
        The reconstruction, in the units of the image (attenuation per pixel).

    Notes
    -----
    Assumes the angles cover :math:`[0, \\pi)` (parallel beam) or :math:`[0, 2\\pi)` (fan
    beam) evenly.  Fewer angles give streaks; a shorter fan-beam arc would need Parker
    weights, which are not implemented.
    """
    geometry = _check_fbp_inputs(sinogram, A)
    if isinstance(geometry, FanBeam):
        # Move the detector to the rotation axis, then weight by the cosine of the fan angle.
        ds = geometry.source_distance
        spacing = geometry.detector_spacing / geometry.magnification
        a = geometry.detector_positions().to(sinogram) / geometry.magnification
        sinogram = sinogram * (ds / torch.sqrt(ds**2 + a**2))
    else:
        spacing = geometry.detector_spacing
    return backproject_fbp(filter_sinogram(sinogram, filter, spacing, cutoff), A)
