"""Test images ("phantoms"): Shepp-Logan, random ellipses and real CT slices.

Conventions shared by the whole course: an image is a tensor of shape ``(H, W)``
(``(..., H, W)`` for batches); row 0 is the *top* of the picture; the image is centred
on the rotation axis of the scanner; a pixel has size 1.

An ellipse phantom is a sum of indicator functions of ellipses,

.. math::  f(x, y) = \\sum_k \\rho_k \\, \\mathbb 1\\left[
           \\left(\\tfrac{x'_k}{a_k}\\right)^2 + \\left(\\tfrac{y'_k}{b_k}\\right)^2 \\le 1
           \\right],

where :math:`(x'_k, y'_k)` are the coordinates relative to the centre of ellipse
:math:`k`, rotated by its angle.  Coordinates are *normalised*: the image square is
:math:`[-1, 1]^2`, :math:`x` points right and :math:`y` points up.  Pixels at the edges
of an ellipse are only partly inside it, so we average the indicator over a grid of
sub-pixel points (supersampling); this anti-aliasing avoids jagged edges that would
otherwise show up as streaks in reconstructions.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

__all__ = ["shepp_logan", "EllipsesDataset", "ellipse_line_integrals", "ct_slice",
           "real_ct_slices", "MU_WATER", "FINE_FACTOR"]

#: Linear attenuation coefficient of water in 1/cm at about 70 keV (the mean energy of
#: a typical 120 kVp CT spectrum).
MU_WATER = 0.19


# --- rasterising ellipses -------------------------------------------------------------

def _rasterise_ellipses(ellipses: torch.Tensor, size: int, supersample: int) -> torch.Tensor:
    """Sum of ellipse indicators, averaged over ``supersample**2`` points per pixel.

    We draw the ellipses on a grid ``supersample`` times finer than the image and then
    average each block of ``supersample x supersample`` fine pixels into one pixel.

    Parameters
    ----------
    ellipses : torch.Tensor, shape (k, 6)
        One row ``(intensity, a, b, x0, y0, phi)`` per ellipse: half-axes ``a`` (along
        x) and ``b`` (along y), centre ``(x0, y0)``, all normalised to ``[-1, 1]``, and
        the counter-clockwise rotation ``phi`` in radians.  The computation uses the
        dtype and device of this tensor.
    size : int
        The image is ``size x size`` pixels.
    supersample : int
        Sub-pixel samples per pixel along each axis.

    Returns
    -------
    torch.Tensor, shape (size, size)
    """
    n = size * supersample
    # centres of the fine pixels in [-1, 1]: x grows to the right, y grows upwards,
    # so row 0 (the top) has the largest y
    t = (torch.arange(n, dtype=ellipses.dtype, device=ellipses.device) + 0.5) / n * 2 - 1
    fine = torch.zeros(n, n, dtype=ellipses.dtype, device=ellipses.device)
    for rho, a, b, x0, y0, phi in ellipses.tolist():
        c, s = math.cos(phi), math.sin(phi)
        # only the pixels in the ellipse's bounding box can be inside it
        half_x = math.sqrt((a * c) ** 2 + (b * s) ** 2)
        half_y = math.sqrt((a * s) ** 2 + (b * c) ** 2)
        cols = _index_range(x0 - half_x, x0 + half_x, n)
        rows = _index_range(-y0 - half_y, -y0 + half_y, n)       # row i has y = -t[i]
        if cols is None or rows is None:
            continue
        dx = t[cols[0]:cols[1]] - x0                                  # (columns,)
        dy = -t[rows[0]:rows[1]] - y0                                 # (rows,)
        # coordinates in the frame of the ellipse, u = (dx c + dy s) / a and
        # v = (-dx s + dy c) / b, as (rows, columns) from a column and a row part
        u = (dx * (c / a))[None, :] + (dy * (s / a))[:, None]
        v = (dx * (-s / b))[None, :] + (dy * (c / b))[:, None]
        fine[rows[0]:rows[1], cols[0]:cols[1]] += rho * (u * u + v * v <= 1)
    return fine.reshape(size, supersample, size, supersample).mean(dim=(1, 3))


def _index_range(low: float, high: float, n: int):
    """Indices ``[first, stop)`` of the grid points ``t_j = (j + 1/2) 2/n - 1`` in [low, high]."""
    first = max(0, math.floor((low + 1) * n / 2 - 0.5))
    stop = min(n, math.ceil((high + 1) * n / 2 - 0.5) + 1)
    return (first, stop) if first < stop else None


# --- Shepp-Logan ------------------------------------------------------------------------

# The modified Shepp-Logan phantom with the higher-contrast intensities of Toft (1996):
# intensity, half-axes a (x) and b (y), centre (x0, y0), rotation in degrees.
_SHEPP_LOGAN_TOFT = [
    (1.0, 0.6900, 0.9200, 0.00, 0.0000, 0.0),    # skull
    (-0.8, 0.6624, 0.8740, 0.00, -0.0184, 0.0),  # brain
    (-0.2, 0.1100, 0.3100, 0.22, 0.0000, -18.0),  # right ventricle
    (-0.2, 0.1600, 0.4100, -0.22, 0.0000, 18.0),  # left ventricle
    (0.1, 0.2100, 0.2500, 0.00, 0.3500, 0.0),
    (0.1, 0.0460, 0.0460, 0.00, 0.1000, 0.0),
    (0.1, 0.0460, 0.0460, 0.00, -0.1000, 0.0),
    (0.1, 0.0460, 0.0230, -0.08, -0.6050, 0.0),   # the three small features at the bottom
    (0.1, 0.0230, 0.0230, 0.00, -0.6060, 0.0),
    (0.1, 0.0230, 0.0460, 0.06, -0.6050, 0.0),
]


def _check_size(size, name="size", minimum=1) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(size).__name__}")
    if size < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {size}")
    return int(size)


def shepp_logan(size: int, *, dtype: torch.dtype = torch.float32, device="cpu",
                supersample: int = 4) -> torch.Tensor:
    """The modified Shepp-Logan head phantom, rasterised at any size.

    Ten ellipses (Shepp & Logan, 1974) with the higher-contrast intensities of Toft
    (1996), so the values lie in ``[0, 1]``: skull 1, brain 0.2, ventricles 0 and small
    features 0.3.  Shown with row 0 at the top, the head's long axis is vertical and the
    three small features sit at the bottom, as in the usual pictures.

    Parameters
    ----------
    size : int
        Number of pixels along each side.
    dtype : torch.dtype
        ``torch.float32`` (default) or ``torch.float64``.
    device : str or torch.device
        Where the image is created.
    supersample : int
        Sub-pixel samples per pixel along each axis (anti-aliasing); 4 means 16 samples.

    Returns
    -------
    torch.Tensor, shape (size, size)
        Values in ``[0, 1]``; pixel size 1; centred on the rotation axis.

    Examples
    --------
    >>> x = shepp_logan(128)
    >>> x.shape, float(x.max())
    (torch.Size([128, 128]), 1.0)

    Used from lesson 01, section 1, on.
    """
    size = _check_size(size)
    supersample = _check_size(supersample, "supersample")
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    ellipses = torch.tensor(_SHEPP_LOGAN_TOFT, dtype=torch.float64)
    ellipses[:, 5] = torch.deg2rad(ellipses[:, 5])
    image = _rasterise_ellipses(ellipses, size, supersample)
    # overlaps are exact sums, so only rounding can leave [0, 1]
    return image.clamp(0.0, 1.0).to(dtype=dtype, device=device)


# --- random ellipses --------------------------------------------------------------------

#: The two families of random ellipses (see :class:`EllipsesDataset`).
ELLIPSE_STYLES = ("dival", "disc")

#: Fine samples per image pixel along each axis when rendering random ellipses: the
#: image is the average of 4 x 4 point samples, and the setting's measurements are
#: computed on the grid of these samples (4 times finer than the image).
FINE_FACTOR = 4


class EllipsesDataset(torch.utils.data.Dataset):
    """Random-ellipse phantoms: the standard synthetic training set of learned CT.

    Two families (``style``):

    ``"dival"`` (the default, the shared setting's images)
        The random ellipses of the dival benchmark (Leuschner et al., 2019, ``dival``'s
        ``EllipsesDataset.generator``; used by Baguer, Leuschner and Schmidt, 2020).
        Every image sums **50** ellipses in normalised coordinates ``[-1, 1]^2``:
        intensity ``Uniform(-0.5, 0.5) x Exponential(mean 0.4)``, half-axes
        ``0.2 x Exponential(mean 1)`` each, centre uniform in the square ``[-1, 1]^2``
        (ellipses may leave the image: only the part inside the square counts), rotation
        ``Uniform(0, 2 pi)``.  The sum is then shifted and scaled *on the pixels* so that
        the image spans exactly ``[0, 1]`` (dival subtracts the minimum and divides by the
        maximum), so the background is usually not zero.

    ``"disc"`` (the course's earlier family; the shipped GAN of lesson 08 learned it)
        ``1 + Poisson(mean_ellipses - 1)`` ellipses (at most ``max_ellipses``), half-axes
        ``Uniform(0.05, 0.4)``, rotation ``Uniform(0, pi)``, centres uniform in the disc
        of radius ``0.9 - max(a, b)`` so that every ellipse lies inside the inscribed
        circle, intensities ``Uniform(-0.5, 1)`` with the first one ``Uniform(0.3, 1)``
        (as in Adler and Öktem, 2017).  The sum is clipped at 0 and divided by its
        maximum: a zero background and values in ``[0, 1]``.

    Images are **pixel averages** of the continuous phantom: each pixel is the mean of
    ``4 x 4`` point samples (:data:`FINE_FACTOR`), and :meth:`render` gives the same
    phantom on a grid up to 4 times finer, normalised with the *same* shift and scale,
    so that averaging the fine image over 4 x 4 blocks gives the image exactly.  The
    shared setting projects that fine image to simulate its measurements, so its data
    never come from the operator that reconstructs them (no inverse crime).

    Image ``i`` depends only on ``(seed, i)``, not on the order in which items are read,
    so DataLoader workers and shuffling give identical data.

    Parameters
    ----------
    n : int
        Number of images.
    size : int
        Image side in pixels (at least 8).
    seed : int
        Non-negative seed; different seeds give independent data sets (e.g. 0 for
        training, 1 for testing).
    style : {"dival", "disc"}
        The family of ellipses (above).
    mean_ellipses : float
        Average number of ellipses per image (``"disc"`` only).
    max_ellipses : int
        Upper bound on the number of ellipses per image (``"disc"`` only).

    Examples
    --------
    >>> train = EllipsesDataset(100, 128, seed=0)
    >>> train[0].shape
    torch.Size([1, 128, 128])
    >>> train.tensors().shape
    torch.Size([100, 1, 128, 128])

    References
    ----------
    J. Leuschner, M. Schmidt, D. O. Baguer and P. Maass (2019). The LoDoPaB-CT dataset
    (and the dival library, https://github.com/jleuschn/dival).  D. O. Baguer,
    J. Leuschner and M. Schmidt (2020). Computed tomography reconstruction using deep
    image prior and learned reconstruction methods. Inverse Problems 36(9), 094004.
    J. Adler and O. Öktem (2017). Solving ill-posed inverse problems using iterative
    deep neural networks. Inverse Problems 33(12), 124007.
    """

    #: dival's number of ellipses per image
    DIVAL_ELLIPSES = 50

    def __init__(self, n: int, size: int, seed: int = 0, *, style: str = "dival",
                 mean_ellipses: float = 12.0, max_ellipses: int = 30):
        self.n = _check_size(n, "n", minimum=0)
        self.size = _check_size(size, "size", minimum=8)
        self.seed = _check_size(seed, "seed", minimum=0)
        if style not in ELLIPSE_STYLES:
            raise ValueError(f"style must be one of {ELLIPSE_STYLES}, got {style!r}")
        self.style = style
        if not 1 <= float(mean_ellipses) <= max_ellipses:
            raise ValueError(f"mean_ellipses must lie in [1, max_ellipses={max_ellipses}], "
                             f"got {mean_ellipses}")
        self.mean_ellipses = float(mean_ellipses)
        self.max_ellipses = _check_size(max_ellipses, "max_ellipses")

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return (f"EllipsesDataset(n={self.n}, size={self.size}, seed={self.seed}, "
                f"style={self.style!r})")

    def _generator(self, index: int) -> torch.Generator:
        # mix (seed, index) into one well-spread 63-bit seed, so that neighbouring
        # seeds or indices do not give related random streams
        state = np.random.SeedSequence([self.seed, index]).generate_state(2)
        return torch.Generator().manual_seed(int(state[0]) << 31 ^ int(state[1]))

    def ellipses(self, index: int) -> torch.Tensor:
        """The random ellipses of image ``index``, shape (k, 6), float64.

        Each row is ``(intensity, a, b, x0, y0, phi)`` in normalised coordinates
        (see the module docstring), ``phi`` in radians, before the image is normalised.
        """
        index = self._check_index(index)
        g = self._generator(index)
        if self.style == "dival":
            k = self.DIVAL_ELLIPSES
            u = torch.rand(k, 6, generator=g, dtype=torch.float64)
            # Exponential(mean m) = -m log(1 - U)
            intensity = (u[:, 0] - 0.5) * (-0.4 * torch.log1p(-u[:, 1]))
            a = -0.2 * torch.log1p(-u[:, 2])
            b = -0.2 * torch.log1p(-u[:, 3])
            x0, y0 = 2 * u[:, 4] - 1, 2 * u[:, 5] - 1
            phi = 2 * math.pi * torch.rand(k, generator=g, dtype=torch.float64)
            # a half-axis of exactly 0 would divide by zero; it draws nothing anyway
            a, b = a.clamp(min=1e-6), b.clamp(min=1e-6)
            return torch.stack([intensity, a, b, x0, y0, phi], dim=1)
        rate = torch.tensor([self.mean_ellipses - 1.0], dtype=torch.float64)
        k = min(1 + int(torch.poisson(rate, generator=g)), self.max_ellipses)
        u = torch.rand(k, 6, generator=g, dtype=torch.float64)
        a = 0.05 + 0.35 * u[:, 0]
        b = 0.05 + 0.35 * u[:, 1]
        phi = math.pi * u[:, 2]
        # uniform in a disc: radius sqrt(uniform), so the ellipse stays in radius 0.9
        radius = (0.9 - torch.maximum(a, b)) * u[:, 3].sqrt()
        angle = 2 * math.pi * u[:, 4]
        intensity = -0.5 + 1.5 * u[:, 5]
        intensity[0] = 0.3 + 0.7 * u[0, 5]
        return torch.stack([intensity, a, b, radius * angle.cos(), radius * angle.sin(), phi],
                           dim=1)

    def _check_index(self, index) -> int:
        if isinstance(index, torch.Tensor) and index.numel() == 1:
            index = int(index)
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        if not -self.n <= index < self.n:
            raise IndexError(f"index {index} is out of range for a data set of {self.n} images")
        return int(index) % self.n

    def render(self, index: int, factor: int = 1) -> torch.Tensor:
        """Image ``index`` on a grid ``factor`` times finer than the image, float32.

        Parameters
        ----------
        index : int
        factor : {1, 2, 4}
            Fine pixels per image pixel along each axis; must divide
            :data:`FINE_FACTOR`.  ``factor=1`` gives the image itself.

        Returns
        -------
        torch.Tensor, shape (size * factor, size * factor)
            The phantom, shifted and scaled with the constants of the ``size x size``
            image, so that ``avg_pool2d(render(i, f), f)`` equals ``self[i][0]``.
            Fine values may leave ``[0, 1]`` slightly (an image pixel averages them).
        """
        if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) \
                or factor < 1 or FINE_FACTOR % factor:
            raise ValueError(f"factor must divide {FINE_FACTOR} (1, 2 or 4), got {factor!r}")
        ellipses = self.ellipses(index).float()
        # point samples at the centres of a grid FINE_FACTOR times finer than the image
        samples = _rasterise_ellipses(ellipses, self.size * FINE_FACTOR, 1)
        if self.style == "disc":
            samples = samples.clamp(min=0)
        image = _block_mean(samples, FINE_FACTOR)
        if self.style == "dival":
            low = image.min()
            samples, image = samples - low, image - low
        peak = image.max()
        if peak > 0:
            samples = samples / peak
        return _block_mean(samples, FINE_FACTOR // int(factor))

    def point_sampled(self, index: int) -> torch.Tensor:
        """Image ``index`` as dival draws it: one point sample at each pixel centre.

        No anti-aliasing: edges are staircases, as in dival's own data (ODL's
        ``ellipsoid_phantom``), normalised on these pixels.  Used by the setting's
        ``sampling="point"`` (dival-compatible) variant.

        Returns
        -------
        torch.Tensor, shape (size, size), float32, values in [0, 1]
        """
        image = _rasterise_ellipses(self.ellipses(index).float(), self.size, 1)
        if self.style == "disc":
            image = image.clamp(min=0)
        else:
            image = image - image.min()
        peak = image.max()
        return image / peak if peak > 0 else image

    def __getitem__(self, index: int) -> torch.Tensor:
        """Image ``index`` as a float32 tensor of shape (1, size, size), values in [0, 1]."""
        return self.render(index, 1).clamp(0.0, 1.0)[None]

    def tensors(self, factor: int = 1) -> torch.Tensor:
        """All images stacked, shape (n, 1, size * factor, size * factor), float32.

        ``factor > 1`` gives the fine images of :meth:`render`.  The images are
        generated anew on every call (a few ms each); keep the result in a variable
        rather than calling this in a loop.
        """
        side = self.size * factor
        if self.n == 0:
            return torch.zeros(0, 1, side, side)
        if factor == 1:
            return torch.stack([self[i] for i in range(self.n)])
        return torch.stack([self.render(i, factor)[None] for i in range(self.n)])


def _block_mean(image: torch.Tensor, block: int) -> torch.Tensor:
    """Average ``block x block`` blocks of a square image ``(n, n)``."""
    if block == 1:
        return image
    n = image.shape[-1] // block
    return image.reshape(n, block, n, block).mean(dim=(1, 3))


# --- exact line integrals of ellipses -------------------------------------------------

def ellipse_line_integrals(ellipses, points, directions, *, image_size: int,
                           clip_to_image: bool = True) -> torch.Tensor:
    """Exact line integrals of a sum of ellipses, along straight rays.

    The reference the simulators are tested against: for the line
    :math:`p + t\\,d` and the ellipse :math:`E` the integral of
    :math:`\\rho\\,\\mathbb 1_E` is :math:`\\rho` times the chord length
    :math:`|\\{t : p + t d \\in E\\}|`, found by solving a quadratic in :math:`t`.  With
    ``clip_to_image`` the chord is cut to the image square, as the phantoms are.

    Parameters
    ----------
    ellipses : torch.Tensor, shape (k, 6)
        Rows ``(intensity, a, b, x0, y0, phi)`` in normalised coordinates
        (:meth:`EllipsesDataset.ellipses`).
    points, directions : torch.Tensor, shape (m, 2)
        Rays in pixel units (``geometry.rays()``); directions of unit length.
    image_size : int
        ``N``: normalised coordinates ``[-1, 1]`` span ``N`` pixels.

    Returns
    -------
    torch.Tensor, shape (m,), float64
        Line integrals in image units x pixels.

    The exact data behind lesson 02, section 5 (the inverse crime) and the tests of the projector.
    """
    e = torch.as_tensor(ellipses, dtype=torch.float64)
    half = image_size / 2
    p = torch.as_tensor(points, dtype=torch.float64) / half           # normalised units
    d = torch.as_tensor(directions, dtype=torch.float64)
    rho, a, b, x0, y0, phi = (e[:, j, None] for j in range(6))         # (k, 1)
    c, s = torch.cos(phi), torch.sin(phi)
    px, py = p[:, 0] - x0, p[:, 1] - y0                                # (k, m)
    # the ray in the frame of each ellipse, scaled so that the ellipse is the unit disc
    u0, v0 = (px * c + py * s) / a, (-px * s + py * c) / b
    du, dv = (d[:, 0] * c + d[:, 1] * s) / a, (-d[:, 0] * s + d[:, 1] * c) / b
    qa = du * du + dv * dv
    qb = u0 * du + v0 * dv
    qc = u0 * u0 + v0 * v0 - 1
    disc = (qb * qb - qa * qc).clamp(min=0).sqrt()
    t1, t2 = (-qb - disc) / qa, (-qb + disc) / qa
    if clip_to_image:
        # the ray's parameter interval inside the square [-1, 1]^2 (slab method)
        big = torch.tensor(1e30, dtype=torch.float64)
        lo = torch.full_like(p[:, 0], -1e30)
        hi = torch.full_like(p[:, 0], 1e30)
        for axis in (0, 1):
            dd = d[:, axis]
            safe = torch.where(dd.abs() > 1e-15, dd, torch.ones_like(dd))
            ta, tb = (-1 - p[:, axis]) / safe, (1 - p[:, axis]) / safe
            inside = (p[:, axis].abs() <= 1)
            lo = torch.where(dd.abs() > 1e-15, torch.maximum(lo, torch.minimum(ta, tb)),
                             torch.where(inside, lo, big))
            hi = torch.where(dd.abs() > 1e-15, torch.minimum(hi, torch.maximum(ta, tb)), hi)
        t1, t2 = torch.maximum(t1, lo), torch.minimum(t2, hi)
    chord = (t2 - t1).clamp(min=0)                                     # normalised units
    return (rho * chord).sum(dim=0) * half


# --- a real CT slice ----------------------------------------------------------------------

def ct_slice(*, normalize: bool = False, dtype: torch.dtype = torch.float32,
             device="cpu") -> torch.Tensor:
    """A real 128 x 128 CT slice, as linear attenuation in 1/cm.

    The image is ``CT_small.dcm``, a test file that ships inside the pydicom package
    (``pydicom.data.get_testdata_file("CT_small.dcm")``), so nothing is downloaded and
    this works offline.  Its pixels are 0.661 mm x 0.661 mm (DICOM ``PixelSpacing``),
    the slice is 5 mm thick, and the scan was taken at 120 kVp.

    Stored values become Hounsfield units, :math:`HU = \\text{slope} \\cdot s +
    \\text{intercept}` (DICOM ``RescaleSlope`` and ``RescaleIntercept``), and then linear
    attenuation :math:`\\mu = \\mu_{water} (1 + HU / 1000)`, clipped at 0, with
    :math:`\\mu_{water} = 0.19` / cm (about 70 keV).  Soft tissue is therefore close to
    0.19 / cm, air 0 and bone up to about 0.4 / cm.

    Parameters
    ----------
    normalize : bool
        If True, divide by the maximum so the values lie in ``[0, 1]`` (handy for
        learned methods, comparable with the other phantoms).
    dtype : torch.dtype
        ``torch.float32`` (default) or ``torch.float64``.
    device : str or torch.device
        Where the image is created.

    Returns
    -------
    torch.Tensor, shape (128, 128)
        :math:`\\mu` in 1/cm (or in ``[0, 1]`` if ``normalize``); row 0 is the top.

    Notes
    -----
    The course's projectors use a pixel size of 1, so a sinogram of this image is in
    units of (1/cm) x pixel.  Multiply by the pixel size in cm, 0.0661, to get the
    dimensionless line integrals of Beer-Lambert's law, e.g. with
    ``poisson_noise(y, photon_count, scale=0.0661)``.

    Used in lesson 01, section 1.
    """
    import pydicom
    from pydicom.data import get_testdata_file

    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    stored = dataset.pixel_array.astype(np.float64)
    hu = float(dataset.RescaleSlope) * stored + float(dataset.RescaleIntercept)
    mu = np.clip(MU_WATER * (1.0 + hu / 1000.0), 0.0, None)
    if normalize:
        mu = mu / mu.max()
    return torch.from_numpy(mu).to(dtype=dtype, device=device)


# --- real CT slices (lesson 12) ---------------------------------------------------------

#: Side of the slices stored in ``data/ct_slices.npz``.
CT_SLICES_SIZE = 256


def real_ct_slices(size: int = 64, factor: int = 1, *, dtype: torch.dtype = torch.float32,
                   device="cpu", path=None) -> torch.Tensor:
    """Three real CT slices, scaled to ``[0, 1]`` like the training phantoms.

    The slices are stored in ``data/ct_slices.npz`` in Hounsfield units (HU) at
    256 x 256 (``dltomo ctslices`` rebuilds the file from DICOM files of the pydicom and
    pydicom-data packages; ``data/README.md`` gives their origin and licences):

    ====  ============================  ===========================================
    0     ``CT_small``                  thorax around a vertebra (pydicom's test
                                        file, NEMA WG04 ``CT1_UNC``), 0.33 mm pixels
                                        at 256, upsampled from 128 by bilinear
                                        interpolation: the softest of the three
    1, 2  ``eCT_Supplemental frame k``  brain from a perfusion study (NEMA sample):
                                        skull, fluid and vessels set to air,
                                        0.78 mm pixels at 256
    ====  ============================  ===========================================

    Each pixel becomes :math:`x = \\mathrm{clip}((HU + 1000) / 2000, 0, 1)`: air 0,
    water 0.5, dense bone (1000 HU) and above 1.  This is a *display* scale for
    networks trained on images in ``[0, 1]``; :func:`ct_slice` instead gives the
    physical attenuation :math:`\\mu = \\mu_{water} (1 + HU / 1000)` in 1/cm, for which
    water is 0.19 / cm and air 0; the two are affine in HU, so
    :math:`x = \\mu / (2 \\mu_{water})` wherever neither is clipped.

    The ``256 x 256`` values are scaled first and then averaged over square blocks
    (area averaging) to ``size * factor`` pixels, so that averaging the result over
    ``factor x factor`` blocks gives ``real_ct_slices(size)`` exactly.

    Parameters
    ----------
    size : int
        Side of the image grid in pixels; ``size * factor`` must divide 256
        (1, 2, 4, ..., 256).
    factor : int
        Pixels of the returned grid per image pixel along each axis.  ``factor=4`` gives
        the grid 4 times finer on which :class:`SparseViewSetting` simulates its data:
        ``setting.measure(real_ct_slices(64, factor=4))`` are crime-free measurements
        whose ground truth is ``real_ct_slices(64)``.
    dtype : torch.dtype
        ``torch.float32`` (default) or ``torch.float64``.
    device : str or torch.device
        Where the images are created.
    path : str or pathlib.Path, optional
        The ``.npz`` file; by default the one the course ships in ``data/``.

    Returns
    -------
    torch.Tensor, shape (3, 1, size * factor, size * factor)
        Values in ``[0, 1]`` (dimensionless); row 0 at the top (anterior), the patient's
        right on the left.  The slices show different fields of view (85, 199 and 199 mm
        across), so a pixel of one is not the size of a pixel of another.

    Raises
    ------
    ValueError
        If ``size * factor`` does not divide 256.
    FileNotFoundError
        If the file is missing; the message names ``dltomo ctslices``.

    Examples
    --------
    >>> x = real_ct_slices(64)
    >>> x.shape, float(x.min()) >= 0, float(x.max()) <= 1
    (torch.Size([3, 1, 64, 64]), True, True)

    Used in lesson 12, section 2.
    """
    from ..learning.checkpoints import shipped_file

    size = _check_size(size)
    factor = _check_size(factor, "factor")
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    side = size * factor
    if side > CT_SLICES_SIZE or CT_SLICES_SIZE % side:
        raise ValueError(f"size * factor must divide {CT_SLICES_SIZE} (the stored slices are "
                         f"{CT_SLICES_SIZE} x {CT_SLICES_SIZE}, averaged over square "
                         f"blocks), got {size} * {factor} = {side}")
    default = Path(__file__).resolve().parents[2] / "data" / "ct_slices.npz"
    try:
        path = shipped_file(path, default, "dltomo ctslices", "real CT slices")
    except FileNotFoundError as error:
        raise FileNotFoundError(f"{error}\n(the command reads DICOM files of the "
                                f"pydicom-data package: pip install pydicom-data)") from None
    with np.load(path, allow_pickle=False) as data:
        hu = data["hu"]
    if hu.ndim != 3 or hu.shape[1:] != (CT_SLICES_SIZE, CT_SLICES_SIZE):
        raise ValueError(f"{path}: expected slices of {CT_SLICES_SIZE} x {CT_SLICES_SIZE}, "
                         f"got an array of shape {hu.shape}")
    x = np.clip((hu.astype(np.float64) + 1000.0) / 2000.0, 0.0, 1.0)
    block = CT_SLICES_SIZE // side
    x = x.reshape(len(x), side, block, side, block).mean(axis=(2, 4))
    return torch.from_numpy(x[:, None]).to(dtype=dtype, device=device)
