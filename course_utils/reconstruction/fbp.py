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

One argument order, as everywhere in the course: the operator first, then the data,
``fbp(A, y, filter=..., cutoff=...)`` and ``backproject_fbp(A, q)``.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from ..arrays import check_floating, check_int, check_number, numpy_compatible
from ..operators.geometry import FanBeam
from ..operators.linear_operator import LinearOperator
from ..operators.sparse import SparseMatrixOperator, csr_matrix

__all__ = ["FILTERS", "filter_response", "filter_sinogram", "backproject_fbp", "fbp"]

#: The FBP filters, from sharpest to smoothest (lesson 01, section 5).
FILTERS = ("ram-lak", "shepp-logan", "cosine", "hann")


def _fft_size(n_detectors: int) -> int:
    """Zero-pad to at least twice the detector length (no wrap-around), a power of two."""
    return max(64, 2 ** math.ceil(math.log2(2 * n_detectors)))


def filter_response(n_detectors: int, filter: str = "ram-lak", detector_spacing: float = 1.0,
                    *, cutoff: float = 1.0, dtype=torch.float32,
                    device="cpu") -> torch.Tensor:
    """Frequency response of an FBP filter, for ``torch.fft.rfft`` of zero-padded rows.

    Taught in lesson 01, sections 3 (the ramp filter) and 5 (filters: resolution
    against noise); lesson 04 learns a window on top of it.

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
    cutoff = check_number(cutoff, "cutoff", positive=True)
    if cutoff > 1:
        raise ValueError(f"cutoff must lie in (0, 1] (a fraction of the Nyquist "
                         f"frequency), got {cutoff}")
    n_fft = _fft_size(check_int(n_detectors, "n_detectors"))
    tau = check_number(detector_spacing, "detector_spacing", positive=True)
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


@numpy_compatible
def filter_sinogram(sinogram: torch.Tensor, filter: str = "ram-lak",
                    detector_spacing: float = 1.0, cutoff: float = 1.0) -> torch.Tensor:
    """Filter every projection (the last axis) with an FBP filter, with zero padding.

    FBP's first layer, a convolution along the detector (lesson 04, section 1; the
    ramp filter itself is lesson 01, section 3).

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
    if not isinstance(sinogram, torch.Tensor):
        raise TypeError(f"filter_sinogram expects the sinogram as a torch.Tensor or NumPy "
                        f"array, got {type(sinogram).__name__}")
    check_floating(sinogram, "sinogram")
    if sinogram.dim() < 1:
        raise ValueError("filter_sinogram expects a sinogram of shape (..., n_detectors), "
                         "got a scalar")
    return _filter(sinogram, filter, detector_spacing, cutoff)


def _filter(sinogram, filter, detector_spacing, cutoff):
    """:func:`filter_sinogram` of an already checked tensor."""
    n_det = sinogram.shape[-1]
    response = filter_response(n_det, filter, detector_spacing, cutoff=cutoff,
                               dtype=sinogram.dtype, device=sinogram.device)
    n_fft = 2 * (len(response) - 1)
    spectrum = torch.fft.rfft(sinogram, n=n_fft, dim=-1)
    return torch.fft.irfft(spectrum * response, n=n_fft, dim=-1)[..., :n_det]


class _PixelDrivenBackprojection(SparseMatrixOperator):
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

    def to(self, device) -> "_PixelDrivenBackprojection":
        return _PixelDrivenBackprojection(self.geometry, self.image_size, device)

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
        return csr_matrix(crow, columns.reshape(-1), weights.reshape(-1),
                          (n * n, geometry.n_angles * n_det))


def _backproject(q: torch.Tensor, geometry, image_size: int) -> torch.Tensor:
    """Pixel-driven, weighted backprojection (no FBP scale) of ``q``, ``(..., A, D)``."""
    return _PixelDrivenBackprojection(geometry, image_size, q.device)(q)


def _checked_inputs(A, data, caller: str, name: str):
    """Check FBP's inputs once; return the backprojection operator and the data tensor.

    FBP computes where the data are (the backprojection is built on their device), so
    ``A`` only gives the geometry and the image size.
    """
    if not (isinstance(A, LinearOperator) and hasattr(A, "geometry")
            and hasattr(A, "image_size")):
        raise TypeError(
            f"{caller} expects a RadonTransform as A (it gives the geometry and the image "
            f"size), got {type(A).__name__}; the operator comes first: "
            f"{caller}(A, {name}, ...)")
    device = data.device if isinstance(data, torch.Tensor) else "cpu"
    B = _PixelDrivenBackprojection(A.geometry, A.image_size, device)
    return B, B.check_domain(data, name, caller=caller)


def _scaled_backprojection(B, q):
    """:math:`\\frac{\\pi}{n_\\theta} B q` for already checked ``q``."""
    return B._apply(q) * (math.pi / B.geometry.n_angles)


def _operator_first(function):
    """Let ``function(A, data, ...)`` also take the old order ``function(data, A, ...)``.

    The types decide: data (a tensor or NumPy array) first and an operator second is
    the old order, and the two are swapped.
    """

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        if args and isinstance(args[0], (torch.Tensor, np.ndarray)):
            if len(args) >= 2 and isinstance(args[1], LinearOperator):
                args = (args[1], args[0], *args[2:])
            elif len(args) == 1 and isinstance(kwargs.get("A"), LinearOperator):
                args = (kwargs.pop("A"), args[0])
        return function(*args, **kwargs)

    return wrapper


@_operator_first
@numpy_compatible
def backproject_fbp(A, q) -> torch.Tensor:
    """FBP's backprojection step, :math:`\\frac{\\pi}{n_\\theta} B q`, with its weights.

    ``fbp(A, y)`` is ``backproject_fbp(A, filter_sinogram(y))`` (after the fan-beam
    pre-weighting).  A fixed, differentiable linear layer: learned FBP trains a filter
    through it (lesson 04, section 1), and learned primal-dual starts from it
    (lesson 07).  It is *pixel driven* and so not exactly ``A.T``.

    Parameters
    ----------
    A : RadonTransform
        Gives the geometry and the image size.
    q : torch.Tensor or numpy.ndarray, shape (..., n_angles, n_detectors)
        Filtered projections.  The result is computed on their device.

    Returns
    -------
    torch.Tensor or numpy.ndarray, shape (..., N, N)

    Notes
    -----
    The old order ``backproject_fbp(q, A)`` is still accepted.
    """
    B, q = _checked_inputs(A, q, "backproject_fbp", "q")
    return _scaled_backprojection(B, q)


@_operator_first
@numpy_compatible
def fbp(A, y, filter: str = "ram-lak", cutoff: float = 1.0) -> torch.Tensor:
    """Filtered backprojection for the geometry of a :class:`RadonTransform`.

    Taught in lesson 01, sections 4 (FBP) and 5 (filters: resolution against noise).

    Parameters
    ----------
    A : RadonTransform
        Gives the geometry and the image size.
    y : torch.Tensor or numpy.ndarray, shape (..., n_angles, n_detectors)
        Line integrals, e.g. ``A(x)`` (plus noise).  The result is computed on their
        device.
    filter : {"ram-lak", "shepp-logan", "cosine", "hann"}
        Ramp filter and its window, from sharpest to smoothest.
    cutoff : float
        Cut-off frequency as a fraction of Nyquist, in ``(0, 1]`` (default 1: none).

    Returns
    -------
    torch.Tensor or numpy.ndarray, shape (..., N, N)
        The reconstruction, in the units of the image (attenuation per pixel).

    Notes
    -----
    Assumes the angles cover :math:`[0, \\pi)` (parallel beam) or :math:`[0, 2\\pi)` (fan
    beam) evenly.  Fewer angles give streaks; a shorter fan-beam arc would need Parker
    weights, which are not implemented.

    The old order ``fbp(y, A, filter, cutoff)`` is still accepted.
    """
    B, y = _checked_inputs(A, y, "fbp", "y")
    geometry = A.geometry
    if isinstance(geometry, FanBeam):
        # Move the detector to the rotation axis, then weight by the cosine of the fan angle.
        ds = geometry.source_distance
        spacing = geometry.detector_spacing / geometry.magnification
        a = geometry.detector_positions().to(y) / geometry.magnification
        y = y * (ds / torch.sqrt(ds**2 + a**2))
    else:
        spacing = geometry.detector_spacing
    return _scaled_backprojection(B, _filter(y, filter, spacing, cutoff))
