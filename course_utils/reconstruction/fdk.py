"""FDK: filtered backprojection for a circular cone-beam scan (Feldkamp, Davis, Kress 1984).

FDK is the fan-beam FBP of :mod:`~course_utils.reconstruction.fbp` applied row by row
to the detector, with the rays of every row tilted out of the central plane taken
into account by one extra cosine.  For the scanner of
:class:`~course_utils.operators.geometry.ConeBeam` (source at distance :math:`d_s`
from the rotation axis, flat detector) and projections :math:`p_\\theta(u, v)`:

1. **Move the detector to the rotation axis.**  Divide every detector coordinate by
   the magnification :math:`M = (d_s + d_d)/d_s`: column :math:`u = u_k / M`, row
   :math:`v = v_r / M` (:func:`fdk_detector_coordinates`).
2. **Cosine pre-weighting** (:func:`fdk_cosine_weights`): multiply every pixel by
   :math:`d_s / \\sqrt{d_s^2 + u^2 + v^2}`, the cosine of the angle between its ray and
   the central ray.
3. **Ramp filtering row by row** along the detector columns (:math:`u`), with the
   filters of 2D FBP (``filter_sinogram``, zero padding) and the scaled spacing
   :math:`\\Delta u / M`.
4. **Distance-weighted backprojection** (:func:`fdk_backproject`): every voxel
   :math:`\\mathbf{x}` looks up, by bilinear interpolation on the detector, where the
   ray from the source through it hits the detector, and adds that value times
   :math:`1/U^2`, with

   .. math:: U(\\mathbf{x}, \\theta) = \\frac{d_s + \\mathbf{x}\\cdot\\hat{\\mathbf{s}}_\\theta}{d_s},

   :math:`\\hat{\\mathbf{s}}_\\theta = (-\\sin\\theta, \\cos\\theta, 0)` the direction of
   the central ray (from the source towards the detector): :math:`d_s U` is the
   voxel's distance from the source along the central ray
   (:func:`fdk_distance_weights`).
5. **Scale** by :math:`\\frac{1}{2}\\cdot\\frac{2\\pi}{n_\\theta} = \\pi / n_\\theta`: the
   integral over the full circle :math:`[0, 2\\pi)`, where every ray is measured twice
   (the 1/2).

.. math:: x(\\mathbf{x}) \\approx \\frac{\\pi}{n_\\theta} \\sum_\\theta
          \\frac{1}{U(\\mathbf{x}, \\theta)^2}\\,
          q_\\theta\\big(u(\\mathbf{x}, \\theta), v(\\mathbf{x}, \\theta)\\big),\\qquad
          q_\\theta = h * \\Big(\\frac{d_s}{\\sqrt{d_s^2 + u^2 + v^2}}\\, p_\\theta\\Big).

FDK is exact in the central plane (:math:`z = 0`, where it *is* fan-beam FBP) and
approximate elsewhere: a circular orbit does not measure enough data away from it
(Tuy's condition), so structures along :math:`z` (thin horizontal discs) are blurred and
their grey values drop, more so at larger cone angles (lesson 13, section 3).

**The backprojector is voxel driven**, not ``A.T``.  ``A.T`` is the transpose of a
ray-driven (Joseph) projector: it spreads each ray over the voxels that ray samples,
which for a diverging beam leaves a pattern of ray density on the volume.  FDK's
derivation needs the continuous backprojection, "every voxel reads the filtered value
of the ray through its centre", and that is what a voxel-driven backprojector does:
one bilinear look-up per voxel and view (``grid_sample``, one call per view), so every
voxel gets exactly one sample per view.  It is linear and differentiable (a learned
filter can be trained through it) but not the transpose of ``A``.

Taught in lesson 13, section 3.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..arrays import numpy_compatible
from ..operators.cone_beam import ConeBeamTransform, _check_volume_shape
from ..operators.geometry import ConeBeam
from .fbp import FILTERS, _filter

__all__ = ["fdk", "fdk_backproject", "fdk_cosine_weights", "fdk_distance_weights",
           "fdk_detector_coordinates", "slice_errors"]


def _check_geometry(geometry, caller: str) -> ConeBeam:
    if not isinstance(geometry, ConeBeam):
        raise TypeError(f"{caller} expects a ConeBeam geometry, got "
                        f"{type(geometry).__name__}")
    return geometry


def _check_operator(A, caller: str, name: str) -> ConeBeamTransform:
    if not isinstance(A, ConeBeamTransform):
        hint = (" (for 2D parallel or fan beam, use cu.fbp)"
                if hasattr(A, "image_size") else "")
        raise TypeError(f"{caller} expects a ConeBeamTransform as A (it gives the geometry "
                        f"and the volume shape), got {type(A).__name__}{hint}; the "
                        f"operator comes first: {caller}(A, {name}, ...)")
    return A


def fdk_detector_coordinates(geometry: ConeBeam) -> tuple[torch.Tensor, torch.Tensor]:
    """Centres of the detector rows and columns, scaled to the rotation axis.

    The detector is moved, in thought, to the plane through the rotation axis facing
    the source: every coordinate is divided by the magnification
    :math:`M = (d_s + d_d)/d_s`.  Taught in lesson 13, section 3.

    Parameters
    ----------
    geometry : ConeBeam

    Returns
    -------
    v : torch.Tensor, shape (n_rows,), float64
        :math:`v_r / M`, heights of the row centres above the central plane, in voxels.
    u : torch.Tensor, shape (n_cols,), float64
        :math:`u_k / M`, positions of the column centres from the detector centre, in
        voxels (``ConeBeam`` conventions: along :math:`(\\cos\\theta, \\sin\\theta, 0)`).
    """
    geometry = _check_geometry(geometry, "fdk_detector_coordinates")
    rows, cols = geometry.detector_positions()
    return rows / geometry.magnification, cols / geometry.magnification


def fdk_cosine_weights(geometry: ConeBeam, *, dtype=torch.float64,
                       device="cpu") -> torch.Tensor:
    """FDK's cosine pre-weights :math:`d_s / \\sqrt{d_s^2 + u^2 + v^2}` of every pixel.

    :math:`d_s` is the source-to-rotation-axis distance (``source_distance``) and
    :math:`(u, v)` the pixel centre's column and row coordinates *scaled to the rotation
    axis* (detector coordinates divided by the magnification,
    :func:`fdk_detector_coordinates`).  The weight is the cosine of the angle between
    the pixel's ray and the central ray; the same number as
    :math:`(d_s + d_d)/\\sqrt{(d_s + d_d)^2 + u_k^2 + v_r^2}` with the unscaled
    detector coordinates.  It is 1 where the central ray hits (the detector centre,
    between pixels when the numbers of rows and columns are even) and decreases
    outwards.  Taught in lesson 13, section 3.

    Parameters
    ----------
    geometry : ConeBeam
    dtype : torch.dtype
    device : str or torch.device

    Returns
    -------
    torch.Tensor, shape (n_rows, n_cols)
        Dimensionless weights in ``(0, 1]``.

    Examples
    --------
    >>> geom = ConeBeam(n_angles=8, n_rows=4, n_cols=4, source_distance=100,
    ...                 detector_distance=100, row_spacing=2, col_spacing=2)
    >>> w = fdk_cosine_weights(geom)      # pixel (0, 0): u = v = -3 / 2
    >>> round(float(w[0, 0]), 6) == round(100 / math.sqrt(100**2 + 2 * 1.5**2), 6)
    True
    """
    geometry = _check_geometry(geometry, "fdk_cosine_weights")
    v, u = fdk_detector_coordinates(geometry)
    ds = geometry.source_distance
    weights = ds / torch.sqrt(ds**2 + u[None, :] ** 2 + v[:, None] ** 2)
    return weights.to(dtype=dtype, device=device)


def _voxel_centres(volume_shape):
    """x (columns), y (rows, pointing up) and z (slices) of the voxel centres, float64."""
    depth, height, width = volume_shape
    x = torch.arange(width, dtype=torch.float64) + 0.5 - width / 2
    y = height / 2 - 0.5 - torch.arange(height, dtype=torch.float64)
    z = torch.arange(depth, dtype=torch.float64) + 0.5 - depth / 2
    return x, y, z


def _view_positions(geometry: ConeBeam, theta: float, x, y):
    """For the voxel columns ``(H, W)`` at one angle: where they project, and U.

    Returns ``u`` (the detector column coordinate, scaled to the axis, of every voxel
    column ``(x, y)``), ``stretch = d_s / (d_s + x·s)`` (so a voxel at height ``z``
    projects to ``v = stretch * z`` on the axis-scaled detector) and ``U = 1 / stretch``.
    """
    cos, sin = math.cos(theta), math.sin(theta)
    ds = geometry.source_distance
    along_central_ray = -x[None, :] * sin + y[:, None] * cos        # x·s_theta, (H, W)
    along_detector = x[None, :] * cos + y[:, None] * sin            # (H, W)
    stretch = ds / (ds + along_central_ray)
    return along_detector * stretch, stretch, 1 / stretch


def fdk_distance_weights(geometry: ConeBeam, volume_shape, *, dtype=torch.float64,
                         device="cpu") -> torch.Tensor:
    """FDK's backprojection weights :math:`1/U(\\mathbf{x}, \\theta)^2` of every view.

    .. math:: U(\\mathbf{x}, \\theta) = \\frac{d_s + \\mathbf{x}\\cdot
              \\hat{\\mathbf{s}}_\\theta}{d_s},\\qquad
              \\hat{\\mathbf{s}}_\\theta = (-\\sin\\theta, \\cos\\theta, 0),

    so :math:`d_s U` is the voxel's distance from the source measured along the central
    ray (the source sits at :math:`-d_s \\hat{\\mathbf{s}}_\\theta`), and the weight is
    :math:`\\big(d_s / (d_s + s)\\big)^2` with :math:`s = \\mathbf{x}\\cdot
    \\hat{\\mathbf{s}}_\\theta`.  It does not depend on the height :math:`z`, so it is
    given per voxel column.  Voxels nearer the source than the axis get weights above
    1, voxels beyond it below 1.  Taught in lesson 13, section 3.

    Parameters
    ----------
    geometry : ConeBeam
    volume_shape : int or tuple of int
        ``(D, H, W)`` (or one int ``N``); only ``H`` and ``W`` matter.
    dtype : torch.dtype
    device : str or torch.device

    Returns
    -------
    torch.Tensor, shape (n_angles, H, W)
        Dimensionless weights, voxel centres as in
        :mod:`~course_utils.simulation.phantoms_3d` (row 0 is the top, largest y).
    """
    geometry = _check_geometry(geometry, "fdk_distance_weights")
    x, y, _ = _voxel_centres(_check_volume_shape(volume_shape))
    weights = torch.stack([_view_positions(geometry, float(theta), x, y)[2] ** -2
                           for theta in geometry.angles])
    return weights.to(dtype=dtype, device=device)


def _backproject(A: ConeBeamTransform, q: torch.Tensor) -> torch.Tensor:
    """Voxel-driven, distance-weighted backprojection with FDK's scale, ``q`` checked."""
    geometry = A.geometry
    depth, height, width = A.volume_shape
    n_angles, n_rows, n_cols = geometry.sinogram_shape
    batch = q.shape[: q.dim() - 3]
    views = q.reshape(-1, n_angles, n_rows, n_cols)
    x, y, z = _voxel_centres(A.volume_shape)
    # grid_sample's coordinates (align_corners=False): -1 and 1 are the outer edges of
    # the detector, so a detector coordinate (scaled to the axis) over half the
    # detector's (scaled) width; pixel centres are hit exactly.
    half_width = n_cols * geometry.col_spacing / geometry.magnification / 2
    half_height = n_rows * geometry.row_spacing / geometry.magnification / 2
    volume = q.new_zeros(views.shape[0], depth, height * width)
    for view, theta in enumerate(geometry.angles.tolist()):
        u, stretch, big_u = _view_positions(geometry, theta, x, y)     # (H, W) each
        grid = torch.empty(depth, height * width, 2, dtype=torch.float64)
        grid[..., 0] = (u / half_width).reshape(1, -1)                 # column: u
        grid[..., 1] = z[:, None] * (stretch / half_height).reshape(1, -1)  # row: v
        grid = grid.to(device=q.device, dtype=q.dtype)
        # the batch is grid_sample's channels: one 2D image of n_rows x n_cols
        values = F.grid_sample(views[None, :, view], grid[None], mode="bilinear",
                               padding_mode="zeros", align_corners=False)[0]
        weight = (big_u ** -2).reshape(1, 1, -1).to(device=q.device, dtype=q.dtype)
        volume = volume + values * weight
    volume = volume * (math.pi / n_angles)
    return volume.reshape(*batch, depth, height, width)


@numpy_compatible
def fdk_backproject(A, q) -> torch.Tensor:
    """FDK's backprojection, :math:`\\frac{\\pi}{n_\\theta}\\sum_\\theta U^{-2} q_\\theta`.

    Voxel driven: every voxel reads, by bilinear interpolation, the value of the
    (filtered) projection where the ray from the source through its centre hits the
    detector, times :math:`1/U(\\mathbf{x}, \\theta)^2` (:func:`fdk_distance_weights`);
    outside the detector it reads 0.  ``fdk(A, y)`` is ``fdk_backproject(A, q)`` of the
    cosine-weighted, ramp-filtered ``y``.  Linear and differentiable in ``q``, but not
    ``A.T`` (see the module docstring).  Taught in lesson 13, section 3.

    Parameters
    ----------
    A : ConeBeamTransform
        Gives the geometry and the volume shape.
    q : torch.Tensor or numpy.ndarray, shape (..., n_angles, n_rows, n_cols)
        Filtered projections, float32 or float64, on the device of ``A``.

    Returns
    -------
    torch.Tensor or numpy.ndarray, shape (..., D, H, W)
        In the dtype of ``q``.
    """
    A = _check_operator(A, "fdk_backproject", "q")
    return _backproject(A, A.check_range(q, "q", caller="fdk_backproject"))


@numpy_compatible
def fdk(A, y, filter: str = "ram-lak", cutoff: float = 1.0) -> torch.Tensor:
    """FDK reconstruction of a full circular cone-beam scan (Feldkamp et al., 1984).

    Cosine pre-weighting (:func:`fdk_cosine_weights`), ramp filtering of every detector
    row along the columns with the filters of 2D FBP (spacing scaled to the rotation
    axis, ``col_spacing / magnification``; zero padding), then the voxel-driven,
    distance-weighted backprojection :func:`fdk_backproject` with the scale
    :math:`\\pi / n_\\theta` (the module docstring has the formula).  Exact in the
    central plane; away from it the cone-beam ("Feldkamp") artefacts grow with the
    cone angle.  Taught in lesson 13, section 3.

    Parameters
    ----------
    A : ConeBeamTransform
        Gives the geometry (a :class:`~course_utils.operators.geometry.ConeBeam`) and
        the volume shape ``(D, H, W)``.
    y : torch.Tensor or numpy.ndarray, shape (..., n_angles, n_rows, n_cols)
        Line integrals (in voxel units), e.g. ``A(x)`` plus noise, float32 or float64,
        on the device of ``A``.
    filter : {"ram-lak", "shepp-logan", "cosine", "hann"}
        The ramp and its window (``cu.FILTERS``), from sharpest to smoothest.
    cutoff : float
        Cut-off frequency as a fraction of Nyquist, in ``(0, 1]`` (default 1: none).

    Returns
    -------
    torch.Tensor or numpy.ndarray, shape (..., D, H, W)
        The reconstruction, in the units of the volume (attenuation per voxel), in the
        dtype of ``y``.

    Notes
    -----
    Assumes the angles cover :math:`[0, 2\\pi)` evenly (``ConeBeam``'s default).  A
    short scan would need Parker weights, which are not implemented.

    Examples
    --------
    >>> geom = ConeBeam(n_angles=90, n_rows=64, n_cols=64, source_distance=192,
    ...                 detector_distance=64, row_spacing=2.5, col_spacing=2.5)
    >>> A = ConeBeamTransform(64, geom)
    >>> x_fdk = fdk(A, A(shepp_logan_3d(64)))       # (64, 64, 64)
    """
    A = _check_operator(A, "fdk", "y")
    y = A.check_range(y, "y", caller="fdk")
    if filter not in FILTERS:
        raise ValueError(f"filter must be one of {FILTERS}, got {filter!r}")
    geometry = A.geometry
    weighted = y * fdk_cosine_weights(geometry, dtype=y.dtype, device=y.device)
    filtered = _filter(weighted, filter, geometry.col_spacing / geometry.magnification,
                       cutoff)
    return _backproject(A, filtered)


@numpy_compatible
def slice_errors(x, ref, geometry) -> tuple[torch.Tensor, torch.Tensor]:
    """The error of every axial slice, and the angle under which the source sees it.

    For slice :math:`d` of a ``(D, H, W)`` volume, at height
    :math:`z_d = d + 0.5 - D/2`:

    * ``angle[d]`` :math:`= \\arctan(|z_d| / d_s)` in degrees, the elevation of the ray
      from the source to the slice's centre on the rotation axis (0 in the central
      plane, where FDK is exact);
    * ``error[d]`` :math:`= \\sqrt{\\tfrac{1}{HW}\\sum_{h,w} (x_{dhw} - x^*_{dhw})^2}`,
      the slice's root-mean-square error.

    Plotting ``error`` against ``angle`` shows the cone-beam (Feldkamp) artefacts of
    FDK growing away from the central plane.  Taught in lesson 13, section 3
    (Exercise 3 writes it).

    Parameters
    ----------
    x, ref : torch.Tensor or numpy.ndarray, shape (..., D, H, W)
        Reconstructions and the true volumes.
    geometry : ConeBeam
        The scanner (its ``source_distance``).

    Returns
    -------
    angle : torch.Tensor, shape (D,)
        Degrees, float64.
    error : torch.Tensor, shape (..., D)
        In the units of the volumes.
    """
    geometry = _check_geometry(geometry, "slice_errors")
    if x.shape != ref.shape or x.dim() < 3:
        raise ValueError(f"x and ref must be volumes (..., D, H, W) of the same shape, got "
                         f"{tuple(x.shape)} and {tuple(ref.shape)}")
    _, _, z = _voxel_centres(x.shape[-3:])
    angle = torch.rad2deg(torch.atan(z.abs() / geometry.source_distance))
    error = (x - ref.to(x.dtype)).square().mean(dim=(-2, -1)).sqrt()
    return angle, error
