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
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..arrays import check_int

__all__ = ["ParallelBeam", "FanBeam"]


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
