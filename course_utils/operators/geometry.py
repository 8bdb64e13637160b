"""Scanner geometries: where the X-rays go.

A geometry only describes the scanner; :class:`~course_utils.operators.radon.RadonTransform`
computes line integrals along its rays.  The conventions are ASTRA's:

* the image is centred on the rotation axis, pixels have size 1;
  pixel ``(row, col)`` of an ``N x N`` image has its centre at
  ``x = col + 0.5 - N/2`` (to the right) and ``y = N/2 - row - 0.5`` (upwards);
* at angle :math:`\\theta` the detector axis is :math:`(\\cos\\theta, \\sin\\theta)` and
  detector pixel ``k`` has its centre at :math:`u_k = (k + 0.5 - n_{det}/2)\\,\\Delta u`;
* a sinogram is laid out ``(n_angles, n_detectors)``.

Parallel beam (``ASTRA 'parallel'``): the ray through detector pixel ``k`` is the line
:math:`\\{ p : p \\cdot (\\cos\\theta, \\sin\\theta) = u_k \\}`, and angles cover
:math:`[0, \\pi)` by default.

Fan beam with a flat detector (``ASTRA 'fanflat'``): the source sits at
:math:`d_s (\\sin\\theta, -\\cos\\theta)`, the detector centre at
:math:`d_d (-\\sin\\theta, \\cos\\theta)`, and angles cover :math:`[0, 2\\pi)` by default.

Cone beam with a flat panel (``ASTRA 'cone'``, lesson 13): the same circle in the plane
:math:`z = 0`, now in 3D, with the rotation axis along :math:`z`.  A volume of shape
``(D, H, W)`` is centred on the origin with voxels of size 1: voxel ``(d, h, w)`` has
its centre at ``x = w + 0.5 - W/2``, ``y = H/2 - h - 0.5`` and ``z = d + 0.5 - D/2``,
so every slice ``volume[d]`` is an image with the conventions above.  The detector
columns run along :math:`(\\cos\\theta, \\sin\\theta, 0)` as in fan beam, the detector
rows along :math:`+z`, and projections are laid out ``(n_angles, n_rows, n_cols)``.
(ASTRA's own 3D volumes count rows the other way, upwards in :math:`y`, and lay
projections out ``(n_rows, n_angles, n_cols)``; see :class:`ConeBeam`.)
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..arrays import check_int

__all__ = ["ParallelBeam", "FanBeam", "ConeBeam"]


def _positive_float(value, name: str, allow_zero: bool = False) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}") from None
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be a {bound} finite number, got {value}")
    return value


def _make_angles(n_angles, angles, full_turn: float) -> torch.Tensor:
    """Projection angles in radians as a float64 tensor of shape ``(n_angles,)``."""
    if (n_angles is None) == (angles is None):
        raise ValueError("give exactly one of n_angles (equally spaced) or angles (radians)")
    if angles is None:
        n = check_int(n_angles, "n_angles")
        return torch.arange(n, dtype=torch.float64) * (full_turn / n)
    angles = torch.as_tensor(np.asarray(angles, dtype=np.float64))
    if angles.dim() != 1 or len(angles) == 0:
        raise ValueError(f"angles must be a non-empty 1D array, got shape {tuple(angles.shape)}")
    if not torch.isfinite(angles).all():
        raise ValueError("angles must be finite numbers (radians)")
    return angles


class _Geometry:
    """What both geometries share: angles, detector and ray bookkeeping."""

    angles: torch.Tensor
    n_detectors: int
    detector_spacing: float

    @property
    def n_angles(self) -> int:
        return len(self.angles)

    @property
    def sinogram_shape(self) -> tuple[int, int]:
        """``(n_angles, n_detectors)``."""
        return (self.n_angles, self.n_detectors)

    def _key(self) -> tuple:
        """Everything that defines the rays, hashable (used to reuse a built matrix)."""
        return tuple(sorted((name, value.numpy().tobytes() if torch.is_tensor(value) else value)
                            for name, value in vars(self).items()))

    def detector_positions(self) -> torch.Tensor:
        """Centres :math:`u_k` of the detector pixels along the detector axis, ``(n_detectors,)``."""
        k = torch.arange(self.n_detectors, dtype=torch.float64)
        return (k + 0.5 - self.n_detectors / 2) * self.detector_spacing

    def rays(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every ray as a point and a direction, in the order of the flattened sinogram.

        Returns
        -------
        points : torch.Tensor, shape (n_angles * n_detectors, 2)
            A point on each ray, ``(x, y)`` in pixel units.
        directions : torch.Tensor, shape (n_angles * n_detectors, 2)
            Unit direction of each ray.
        """
        raise NotImplementedError


class ParallelBeam(_Geometry):
    """Parallel-beam geometry (ASTRA's ``'parallel'``).

    Taught in lesson 01, section 1.2 ("The course's operator").

    Parameters
    ----------
    n_angles : int, optional
        Number of equally spaced angles in :math:`[0, \\pi)`.
    n_detectors : int
        Number of detector pixels.  ``ceil(sqrt(2) * N) + 1`` covers an ``N x N`` image.
    detector_spacing : float
        Width of a detector pixel, in image pixels (default 1).
    angles : array_like, optional
        Explicit projection angles in radians, instead of ``n_angles``.

    Examples
    --------
    >>> geom = ParallelBeam(n_angles=180, n_detectors=183)
    >>> geom.sinogram_shape
    (180, 183)
    """

    def __init__(self, *, n_angles=None, n_detectors, detector_spacing=1.0, angles=None):
        self.angles = _make_angles(n_angles, angles, math.pi)
        self.n_detectors = check_int(n_detectors, "n_detectors")
        self.detector_spacing = _positive_float(detector_spacing, "detector_spacing")

    def rays(self):
        cos, sin = torch.cos(self.angles)[:, None], torch.sin(self.angles)[:, None]
        u = self.detector_positions()[None, :]
        points = torch.stack([u * cos, u * sin], dim=-1)
        directions = torch.stack([sin, -cos], dim=-1).expand_as(points)
        return points.reshape(-1, 2), directions.reshape(-1, 2)

    def __repr__(self):
        return (f"ParallelBeam(n_angles={self.n_angles}, n_detectors={self.n_detectors}, "
                f"detector_spacing={self.detector_spacing:g})")


class FanBeam(_Geometry):
    """Fan-beam geometry with a flat detector (ASTRA's ``'fanflat'``).

    The lessons scan in parallel beam (lesson 01, section 1.2); the projector and
    ``cu.fbp`` handle this geometry too (lesson 01, "What to try next").

    Parameters
    ----------
    n_angles : int, optional
        Number of equally spaced source angles in :math:`[0, 2\\pi)`.
    n_detectors : int
        Number of detector pixels.
    source_distance : float
        Distance from the source to the rotation axis, in pixels.
    detector_distance : float
        Distance from the rotation axis to the detector, in pixels (0 is allowed: a
        virtual detector through the rotation axis).
    detector_spacing : float
        Width of a detector pixel, in pixels (default 1).
    angles : array_like, optional
        Explicit source angles in radians, instead of ``n_angles``.

    Notes
    -----
    The magnification is :math:`(d_s + d_d) / d_s`: a detector pixel seen from the
    rotation axis is ``detector_spacing / magnification`` wide.
    """

    def __init__(self, *, n_angles=None, n_detectors, source_distance, detector_distance,
                 detector_spacing=1.0, angles=None):
        self.angles = _make_angles(n_angles, angles, 2 * math.pi)
        self.n_detectors = check_int(n_detectors, "n_detectors")
        self.source_distance = _positive_float(source_distance, "source_distance")
        self.detector_distance = _positive_float(detector_distance, "detector_distance",
                                                 allow_zero=True)
        self.detector_spacing = _positive_float(detector_spacing, "detector_spacing")

    @property
    def magnification(self) -> float:
        return (self.source_distance + self.detector_distance) / self.source_distance

    def source_positions(self) -> torch.Tensor:
        """Source position for every angle, ``(n_angles, 2)``."""
        return self.source_distance * torch.stack(
            [torch.sin(self.angles), -torch.cos(self.angles)], dim=-1)

    def rays(self):
        cos, sin = torch.cos(self.angles)[:, None], torch.sin(self.angles)[:, None]
        u = self.detector_positions()[None, :]
        source = self.source_positions()[:, None, :]
        detector = torch.stack([-self.detector_distance * sin + u * cos,
                                self.detector_distance * cos + u * sin], dim=-1)
        directions = detector - source
        directions = directions / torch.linalg.vector_norm(directions, dim=-1, keepdim=True)
        points = source.expand_as(directions)
        return points.reshape(-1, 2), directions.reshape(-1, 2)

    def __repr__(self):
        return (f"FanBeam(n_angles={self.n_angles}, n_detectors={self.n_detectors}, "
                f"source_distance={self.source_distance:g}, "
                f"detector_distance={self.detector_distance:g}, "
                f"detector_spacing={self.detector_spacing:g})")


class ConeBeam:
    """Circular cone-beam geometry with a flat-panel detector (ASTRA's ``'cone'``).

    The source turns on a circle of radius ``source_distance`` around the rotation axis
    (the :math:`z` axis), and a flat detector of ``n_rows x n_cols`` pixels faces it on
    the other side, ``detector_distance`` from the axis.  At angle :math:`\\theta`:

    * the source is at :math:`d_s (\\sin\\theta, -\\cos\\theta, 0)`;
    * the detector centre is at :math:`d_d (-\\sin\\theta, \\cos\\theta, 0)`;
    * detector column ``k`` is :math:`u_k = (k + 0.5 - n_{cols}/2)\\,\\Delta u` along
      :math:`(\\cos\\theta, \\sin\\theta, 0)`, and detector row ``r`` is
      :math:`v_r = (r + 0.5 - n_{rows}/2)\\,\\Delta v` along :math:`+z`.

    The ray of pixel ``(r, k)`` goes from the source to that pixel's centre.  Lengths
    are in voxels (a voxel has size 1), angles in radians.  Taught in lesson 13,
    section 1 ("The cone-beam scanner").

    Parameters
    ----------
    n_angles : int, optional
        Number of equally spaced source angles in :math:`[0, 2\\pi)`.
    n_rows, n_cols : int
        Detector rows (along the rotation axis) and columns.
    source_distance : float
        Distance from the source to the rotation axis, in voxels.
    detector_distance : float
        Distance from the rotation axis to the detector, in voxels (0 is allowed: a
        virtual detector through the rotation axis).
    row_spacing, col_spacing : float
        Height of a detector row and width of a detector column, in voxels
        (default 1).
    angles : array_like, optional
        Explicit source angles in radians, instead of ``n_angles``.

    Notes
    -----
    The same scanner in ASTRA (lesson 13 compares the two)::

        astra.create_proj_geom("cone", col_spacing, row_spacing, n_rows, n_cols,
                               angles, source_distance, detector_distance)
        astra.create_vol_geom(H, W, D)      # for a volume of shape (D, H, W)

    ASTRA's projections are laid out ``(n_rows, n_angles, n_cols)`` (ours:
    ``(n_angles, n_rows, n_cols)``), and ASTRA's 3D volume rows go *up* in :math:`y`
    where ours go down (as in every image of the course), so an ASTRA volume is ours
    flipped along ``H``: ``volume.flip(-2)``.

    Examples
    --------
    >>> geom = ConeBeam(n_angles=90, n_rows=64, n_cols=64, source_distance=192,
    ...                 detector_distance=64, row_spacing=2.5, col_spacing=2.5)
    >>> geom.sinogram_shape
    (90, 64, 64)
    >>> round(geom.magnification, 3)
    1.333
    """

    def __init__(self, *, n_angles=None, n_rows, n_cols, source_distance, detector_distance,
                 row_spacing=1.0, col_spacing=1.0, angles=None):
        self.angles = _make_angles(n_angles, angles, 2 * math.pi)
        self.n_rows = check_int(n_rows, "n_rows")
        self.n_cols = check_int(n_cols, "n_cols")
        self.source_distance = _positive_float(source_distance, "source_distance")
        self.detector_distance = _positive_float(detector_distance, "detector_distance",
                                                 allow_zero=True)
        self.row_spacing = _positive_float(row_spacing, "row_spacing")
        self.col_spacing = _positive_float(col_spacing, "col_spacing")

    @property
    def n_angles(self) -> int:
        return len(self.angles)

    @property
    def sinogram_shape(self) -> tuple[int, int, int]:
        """Shape of the projections, ``(n_angles, n_rows, n_cols)``."""
        return (self.n_angles, self.n_rows, self.n_cols)

    @property
    def magnification(self) -> float:
        """:math:`(d_s + d_d) / d_s`: how much larger an object on the axis looks on the
        detector (a detector pixel covers ``spacing / magnification`` voxels there)."""
        return (self.source_distance + self.detector_distance) / self.source_distance

    @property
    def cone_angle(self) -> float:
        """Full opening angle of the beam along the rotation axis, in radians.

        The angle under which the source sees the detector's height in the central
        plane: :math:`2 \\arctan\\big(n_{rows} \\Delta v / (2 (d_s + d_d))\\big)`.  It is
        0 for a fan-beam scanner, and FDK is only exact in the central plane
        (lesson 13, section 1).
        """
        half_height = self.n_rows * self.row_spacing / 2
        return 2 * math.atan(half_height / (self.source_distance + self.detector_distance))

    def detector_positions(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Centres of the detector rows :math:`v_r` and columns :math:`u_k`, float64.

        Returns
        -------
        rows : torch.Tensor, shape (n_rows,)
            Heights of the row centres above the central plane.
        cols : torch.Tensor, shape (n_cols,)
            Positions of the column centres along the detector, from its centre.
        """
        r = torch.arange(self.n_rows, dtype=torch.float64)
        k = torch.arange(self.n_cols, dtype=torch.float64)
        return ((r + 0.5 - self.n_rows / 2) * self.row_spacing,
                (k + 0.5 - self.n_cols / 2) * self.col_spacing)

    def source_and_pixels(self, view: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Where the source and the centre of every detector pixel are in one view.

        Taught in lesson 13, section 1 (Exercise 1 asks for exactly this).

        Parameters
        ----------
        view : int
            Index of the projection angle, ``0 <= view < n_angles``.

        Returns
        -------
        source : torch.Tensor, shape (3,)
            ``(x, y, z)`` of the source, in voxels, float64.
        pixels : torch.Tensor, shape (n_rows, n_cols, 3)
            ``(x, y, z)`` of the centre of detector pixel ``(row, col)``.
        """
        view = check_int(view, "view", minimum=0)
        if view >= self.n_angles:
            raise IndexError(f"view {view} is out of range for {self.n_angles} angles")
        theta = float(self.angles[view])
        cos, sin = math.cos(theta), math.sin(theta)
        source = torch.tensor([self.source_distance * sin, -self.source_distance * cos, 0.0],
                              dtype=torch.float64)
        centre = torch.tensor([-self.detector_distance * sin, self.detector_distance * cos, 0.0],
                              dtype=torch.float64)
        along_cols = torch.tensor([cos, sin, 0.0], dtype=torch.float64)
        along_rows = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
        v, u = self.detector_positions()
        pixels = (centre + v[:, None, None] * along_rows
                  + u[None, :, None] * along_cols)
        return source, pixels

    def __repr__(self):
        return (f"ConeBeam(n_angles={self.n_angles}, n_rows={self.n_rows}, "
                f"n_cols={self.n_cols}, source_distance={self.source_distance:g}, "
                f"detector_distance={self.detector_distance:g}, "
                f"row_spacing={self.row_spacing:g}, col_spacing={self.col_spacing:g})")
