"""3D test objects for cone-beam CT: ellipsoid phantoms and their exact projections (lesson 13).

A volume is a tensor of shape ``(D, H, W)`` centred on the rotation axis, with voxels of
size 1 and the conventions of :mod:`~course_utils.operators.geometry`: voxel
``(d, h, w)`` has its centre at ``x = w + 0.5 - W/2``, ``y = H/2 - h - 0.5`` (row 0 is
the top of each slice, as in every image of the course) and ``z = d + 0.5 - D/2``.

An ellipsoid phantom is a sum of indicator functions of ellipsoids,

.. math::  f(\\mathbf{p}) = \\sum_k \\rho_k \\, \\mathbb 1\\left[
           \\left(\\tfrac{x'_k}{a_k}\\right)^2 + \\left(\\tfrac{y'_k}{b_k}\\right)^2
           + \\left(\\tfrac{z - z_k}{c_k}\\right)^2 \\le 1 \\right],

where :math:`(x'_k, y'_k)` are the horizontal coordinates relative to the centre of
ellipsoid :math:`k`, rotated by its angle :math:`\\varphi_k` about the vertical axis.
Its line integrals have a closed form (:func:`ellipsoid_line_integrals`), so they are
the exact reference a projector is tested against, and a voxel is the average of
``4 x 4 x 4`` point samples of it (:func:`shepp_logan_3d`), as for the 2D phantoms.

The same closed form gives lesson 13 its data: :func:`cone_beam_projections` averages it
over the area of every detector pixel, for every view of a ``ConeBeam`` scan, so that
data never come from the projector that reconstructs (no inverse crime).  The objects
are the Shepp-Logan head, random head-like phantoms for learned reconstruction
(:class:`EllipsoidsDataset`) and the Defrise stack of thin discs, which shows the
cone-beam artefacts of FDK (:func:`defrise_ellipsoids`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..arrays import as_tensor, check_floating, check_int, check_number, numpy_compatible
from ..operators.geometry import ConeBeam

__all__ = ["shepp_logan_3d", "shepp_logan_3d_ellipsoids", "ellipsoid_line_integrals",
           "rasterise_ellipsoids",
           "cone_beam_projections", "EllipsoidsDataset", "defrise_ellipsoids"]

# The 3D Shepp-Logan head of Schabel's phantom3d (MATLAB File Exchange 9416, the table
# also used by ODL and TIGRE), with Toft's (1996) higher contrasts, in the cube [-1, 1]^3:
# intensity, half-axes a (x), b (y), c (z), centre (x0, y0, z0), rotation about z in
# degrees.
_SHEPP_LOGAN_3D = [
    (1.0, 0.6900, 0.9200, 0.8100, 0.00, 0.0000, 0.00, 0.0),     # skull
    (-0.8, 0.6624, 0.8740, 0.7800, 0.00, -0.0184, 0.00, 0.0),   # brain
    (-0.2, 0.1100, 0.3100, 0.2200, 0.22, 0.0000, 0.00, -18.0),  # right ventricle
    (-0.2, 0.1600, 0.4100, 0.2800, -0.22, 0.0000, 0.00, 18.0),  # left ventricle
    (0.1, 0.2100, 0.2500, 0.4100, 0.00, 0.3500, -0.15, 0.0),
    (0.1, 0.0460, 0.0460, 0.0500, 0.00, 0.1000, 0.25, 0.0),
    (0.1, 0.0460, 0.0460, 0.0500, 0.00, -0.1000, 0.25, 0.0),
    (0.1, 0.0460, 0.0230, 0.0500, -0.08, -0.6050, 0.00, 0.0),   # the three small features
    (0.1, 0.0230, 0.0230, 0.0200, 0.00, -0.6060, 0.00, 0.0),
    (0.1, 0.0230, 0.0460, 0.0200, 0.06, -0.6050, 0.00, 0.0),
]


def shepp_logan_3d_ellipsoids(size: int) -> torch.Tensor:
    """The ellipsoids of the 3D Shepp-Logan head, in voxels of a ``size``³ volume.

    The table of Schabel's ``phantom3d`` ("Modified Shepp-Logan": the ellipses of Shepp
    and Logan (1974) made ellipsoids, as in Kak and Slaney's 3D head phantom), with the
    contrasts of Toft (1996): skull 1, brain 0.2, ventricles 0, small features 0.3.  The
    two ventricles are turned by ∓18° about the vertical axis, as in the 2D phantom
    (``phantom3d`` adds a third Euler angle of 10° to both, which breaks the
    left-right symmetry; ODL, for example, leaves it out too).

    Taught in lesson 13, section 2 (testing the projector against exact line
    integrals).

    Parameters
    ----------
    size : int
        The volume is ``size x size x size`` voxels; the phantom fills the cube
        :math:`[-1, 1]^3` scaled by ``size / 2``.

    Returns
    -------
    torch.Tensor, shape (10, 8), float64
        One row ``(intensity, a, b, c, x0, y0, z0, phi)`` per ellipsoid: half-axes
        along x, y and z and the centre in voxels (coordinates as in the module
        docstring), ``phi`` the counter-clockwise rotation about the z axis in radians.
        The input of :func:`ellipsoid_line_integrals`.

    References
    ----------
    L. A. Shepp and B. F. Logan (1974). The Fourier reconstruction of a head section.
    IEEE Transactions on Nuclear Science 21(3), 21-43.  A. C. Kak and M. Slaney (1988).
    Principles of Computerized Tomographic Imaging, IEEE Press.  P. Toft (1996). The
    Radon Transform: Theory and Implementation, PhD thesis, Technical University of
    Denmark.  M. Schabel (2006). 3D Shepp-Logan phantom, MATLAB Central File Exchange
    9416.
    """
    size = check_int(size, "size")
    table = torch.tensor(_SHEPP_LOGAN_3D, dtype=torch.float64)
    table[:, 1:7] *= size / 2
    table[:, 7] = torch.deg2rad(table[:, 7])
    return table


def shepp_logan_3d(size: int, *, dtype: torch.dtype = torch.float32, device="cpu",
                   supersample: int = 4) -> torch.Tensor:
    """The 3D Shepp-Logan head phantom, rasterised at any size.

    Each voxel is the average of ``supersample³`` point samples of the ellipsoids of
    :func:`shepp_logan_3d_ellipsoids` (anti-aliasing, as for ``cu.shepp_logan``).  The
    middle slice ``x[size // 2]`` looks like the 2D phantom: head upright, the three small
    features at the bottom.  Taught in lesson 13, section 2.

    Parameters
    ----------
    size : int
        Number of voxels along each side.
    dtype : torch.dtype
        ``torch.float32`` (default) or ``torch.float64``.
    device : str or torch.device
        Where the volume is created.
    supersample : int
        Point samples per voxel along each axis; 4 means 64 samples.

    Returns
    -------
    torch.Tensor, shape (size, size, size)
        ``(D, H, W)``, values in ``[0, 1]``: the sum of the ellipsoids' intensities.

    Examples
    --------
    >>> x = shepp_logan_3d(64)
    >>> x.shape, float(x.max())
    (torch.Size([64, 64, 64]), 1.0)
    """
    size = check_int(size, "size")
    supersample = check_int(supersample, "supersample")
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    volume = _rasterise(shepp_logan_3d_ellipsoids(size), (size, size, size), supersample)
    # overlaps are exact sums, so only rounding can leave [0, 1]
    return volume.clamp(0.0, 1.0).to(dtype=dtype, device=device)


def rasterise_ellipsoids(ellipsoids, size: int, *, supersample: int = 4,
                         dtype: torch.dtype = torch.float32, device="cpu") -> torch.Tensor:
    """Any table of ellipsoids as a ``size``³ volume, each voxel a mean of point samples.

    The volume that goes with exact projections of the same table
    (:func:`cone_beam_projections`), e.g. of :func:`defrise_ellipsoids`.  Taught in
    lesson 13, section 3.

    Parameters
    ----------
    ellipsoids : torch.Tensor or numpy.ndarray, shape (k, 8)
        Rows ``(intensity, a, b, c, x0, y0, z0, phi)`` in voxels, ``phi`` in radians.
    size : int
        Voxels along each side.
    supersample : int
        Point samples per voxel along each axis (4: 64 samples).
    dtype, device
        Of the result.

    Returns
    -------
    torch.Tensor, shape (size, size, size)
        ``(D, H, W)``: the sum of the ellipsoids' intensities (not clipped).

    Examples
    --------
    >>> rasterise_ellipsoids(defrise_ellipsoids(32), 32).shape
    torch.Size([32, 32, 32])
    """
    ellipsoids = check_floating(as_tensor(ellipsoids, "ellipsoids"), "ellipsoids")
    if ellipsoids.dim() != 2 or ellipsoids.shape[1] != 8:
        raise ValueError("ellipsoids must have shape (k, 8): (intensity, a, b, c, x0, y0, "
                         f"z0, phi) per row, got {tuple(ellipsoids.shape)}")
    size = check_int(size, "size")
    supersample = check_int(supersample, "supersample")
    volume = _rasterise(ellipsoids.double().cpu(), (size, size, size), supersample)
    return volume.to(dtype=dtype, device=device)


def _rasterise(ellipsoids: torch.Tensor, shape, supersample: int) -> torch.Tensor:
    """Sum of ellipsoid indicators, each voxel the mean of ``supersample³`` point samples.

    Only the voxels in an ellipsoid's bounding box are visited, a few slices at a time,
    so the memory stays small even for large volumes.
    """
    depth, height, width = shape
    n = supersample
    volume = torch.zeros(shape, dtype=torch.float64)
    offsets = (torch.arange(n, dtype=torch.float64) + 0.5) / n     # inside one voxel
    for rho, a, b, c, x0, y0, z0, phi in ellipsoids.tolist():
        cos, sin = math.cos(phi), math.sin(phi)
        half_x, half_y = math.hypot(a * cos, b * sin), math.hypot(a * sin, b * cos)
        # voxel w spans x in [w - W/2, w + 1 - W/2], row h spans y in [H/2 - h - 1, H/2 - h]
        cols = _voxels(x0 - half_x + width / 2, x0 + half_x + width / 2, width)
        rows = _voxels(height / 2 - y0 - half_y, height / 2 - y0 + half_y, height)
        slices = _voxels(z0 - c + depth / 2, z0 + c + depth / 2, depth)
        if cols is None or rows is None or slices is None:
            continue
        dx = _samples(cols, offsets) - width / 2 - x0                 # (columns * n,)
        dy = height / 2 - _samples(rows, offsets) - y0                # (rows * n,)
        # the horizontal part of the ellipsoid's equation, the same for every z
        u = (dx * (cos / a))[None, :] + (dy * (sin / a))[:, None]
        v = (dx * (-sin / b))[None, :] + (dy * (cos / b))[:, None]
        horizontal = u * u + v * v                                    # (rows * n, columns * n)
        per_chunk = max(1, (1 << 22) // (horizontal.numel() * n))
        for first in range(slices[0], slices[1], per_chunk):
            stop = min(first + per_chunk, slices[1])
            dz = _samples((first, stop), offsets) - depth / 2 - z0
            inside = (horizontal[None] + (dz / c)[:, None, None] ** 2) <= 1
            blocks = inside.reshape(stop - first, n, rows[1] - rows[0], n,
                                    cols[1] - cols[0], n).double().mean(dim=(1, 3, 5))
            volume[first:stop, rows[0]:rows[1], cols[0]:cols[1]] += rho * blocks
    return volume


def _voxels(low: float, high: float, n: int):
    """Indices ``[first, stop)`` of the voxels ``[i, i + 1)`` that meet ``[low, high]``."""
    first, stop = max(0, math.floor(low)), min(n, math.floor(high) + 1)
    return (first, stop) if first < stop else None


def _samples(voxels, offsets: torch.Tensor) -> torch.Tensor:
    """Positions ``i + offset`` of the point samples of voxels ``[first, stop)``, flat."""
    first = torch.arange(voxels[0], voxels[1], dtype=torch.float64)
    return (first[:, None] + offsets[None, :]).reshape(-1)


@numpy_compatible
def ellipsoid_line_integrals(ellipsoids, sources, points) -> torch.Tensor:
    """Exact line integrals of a sum of ellipsoids along rays from sources through points.

    The reference a cone-beam projector is tested against: the ray from ``source``
    through ``point`` (e.g. a detector pixel's centre) meets ellipsoid :math:`k` along a
    chord of closed-form length :math:`\\ell_k`, and the line integral is
    :math:`\\sum_k \\rho_k \\ell_k`.  In the ellipsoid's own frame, scaled by its
    half-axes, the ellipsoid is the unit sphere and the ray :math:`\\mathbf{q}_0 + t
    \\mathbf{e}` meets it where :math:`|\\mathbf{q}_0 + t\\mathbf{e}|^2 = 1`, a quadratic
    in :math:`t`; its two roots are where the ray enters and leaves.  Only the part of
    the ray after the source counts (it is a half-line, like an X-ray).

    Taught in lesson 13, section 2 (the projector against exact line integrals).

    Parameters
    ----------
    ellipsoids : torch.Tensor or numpy.ndarray, shape (k, 8)
        One row ``(intensity, a, b, c, x0, y0, z0, phi)`` per ellipsoid, lengths in the
        units of ``sources`` and ``points`` (voxels, for
        :func:`shepp_logan_3d_ellipsoids`), ``phi`` about the z axis in radians.
    sources, points : torch.Tensor or numpy.ndarray, shape (..., 3)
        ``(x, y, z)`` of the start of each ray and of a point it goes through;
        broadcast against each other, e.g. ``(3,)`` and ``(n_rows, n_cols, 3)``
        from ``ConeBeam.source_and_pixels``.

    Returns
    -------
    torch.Tensor, shape (...)
        The line integrals, in the dtype of ``points`` (computed in float64).

    Examples
    --------
    >>> geom = ConeBeam(n_angles=8, n_rows=64, n_cols=64, source_distance=192,
    ...                 detector_distance=64, row_spacing=2.5, col_spacing=2.5)
    >>> source, pixels = geom.source_and_pixels(0)
    >>> ellipsoid_line_integrals(shepp_logan_3d_ellipsoids(64), source, pixels).shape
    torch.Size([64, 64])
    """
    ellipsoids = check_floating(as_tensor(ellipsoids, "ellipsoids"), "ellipsoids")
    sources = check_floating(as_tensor(sources, "sources"), "sources")
    points = check_floating(as_tensor(points, "points"), "points")
    if ellipsoids.dim() != 2 or ellipsoids.shape[1] != 8:
        raise ValueError("ellipsoids must have shape (k, 8): (intensity, a, b, c, x0, y0, "
                         f"z0, phi) per row, got {tuple(ellipsoids.shape)}")
    if sources.shape[-1:] != (3,) or points.shape[-1:] != (3,):
        raise ValueError(f"sources and points must have shape (..., 3), got "
                         f"{tuple(sources.shape)} and {tuple(points.shape)}")
    start = sources.double()
    direction = points.double() - start
    length = torch.linalg.vector_norm(direction, dim=-1, keepdim=True)
    if bool((length == 0).any()):
        raise ValueError("a point coincides with its source: no ray goes through both")
    direction = direction / length
    total = torch.zeros(torch.broadcast_shapes(start.shape, direction.shape)[:-1],
                        dtype=torch.float64, device=points.device)
    for rho, a, b, c, x0, y0, z0, phi in ellipsoids.double().tolist():
        if min(a, b, c) <= 0:
            raise ValueError(f"half-axes must be positive, got a={a}, b={b}, c={c}")
        cos, sin = math.cos(phi), math.sin(phi)

        def to_unit_sphere(p, centre):
            # rotate by -phi about z, then divide by the half-axes
            px, py, pz = p[..., 0] - centre[0], p[..., 1] - centre[1], p[..., 2] - centre[2]
            return torch.stack([(px * cos + py * sin) / a, (-px * sin + py * cos) / b,
                                pz / c], dim=-1)

        q0 = to_unit_sphere(start, (x0, y0, z0))
        e = to_unit_sphere(direction, (0.0, 0.0, 0.0))
        # |q0 + t e|^2 = 1  <=>  A t^2 + 2 B t + C = 0
        A = (e * e).sum(-1)
        B = (q0 * e).sum(-1)
        C = (q0 * q0).sum(-1) - 1
        root = torch.sqrt(torch.clamp(B * B - A * C, min=0))
        enter, leave = (-B - root) / A, (-B + root) / A
        chord = torch.clamp(leave - torch.clamp(enter, min=0), min=0)
        total = total + rho * chord
    return total.to(points.dtype)


# --- exact cone-beam data ------------------------------------------------------------------

#: Rays (x sub-rays) whose chords are computed at once in :func:`cone_beam_projections`:
#: bounds its temporary memory (about 10 float64 arrays of this many numbers: 170 MB).
_PROJECTION_CHUNK = 1 << 21


@numpy_compatible
def cone_beam_projections(ellipsoids, geometry, *, subpixels: int = 2,
                          dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Exact cone-beam projections of ellipsoids: every detector pixel, every view.

    How lesson 13 simulates data without the inverse crime: the measurements come
    from the continuous phantom (closed-form chords, as in
    :func:`ellipsoid_line_integrals`), never from the voxel projector that
    reconstructs.  A real detector pixel also integrates over its area, so each pixel
    is the *average* of ``subpixels x subpixels`` line integrals, along the rays from
    the source to points spread evenly over the pixel: offsets
    :math:`\\big((i + \\tfrac12)/s - \\tfrac12\\big)\\,\\Delta` from its centre along
    the rows and the columns, :math:`i = 0, \\dots, s - 1`.  ``subpixels=1`` gives the
    line integrals through the pixel centres (the rays of ``ConeBeamTransform``).

    All views are computed at once: on a flat panel a ray's direction is the sum of a
    part that depends on the view and the detector column and a part along :math:`z`
    that depends only on the row, so the quadratic of each ray is an outer sum of
    small tables.  Only the detector rows and columns that can see an ellipsoid in
    some view are visited for it, and the views are taken in chunks to bound the
    memory (about 200 MB at most).

    Taught in lesson 13, section 2 (simulated data without the inverse crime).

    Parameters
    ----------
    ellipsoids : torch.Tensor or numpy.ndarray, shape (k, 8)
        One row ``(intensity, a, b, c, x0, y0, z0, phi)`` per ellipsoid, in voxels
        (coordinates of :mod:`~course_utils.simulation.phantoms_3d`), ``phi`` the
        rotation about the z axis in radians: :func:`shepp_logan_3d_ellipsoids`,
        :meth:`EllipsoidsDataset.ellipsoids` or :func:`defrise_ellipsoids`.
    geometry : ConeBeam
        The scanner (``A.geometry`` of a ``ConeBeamTransform`` ``A``).
    subpixels : int
        Rays per pixel along each detector axis; 2 (the default) means 4 rays.
    dtype : torch.dtype
        ``torch.float32`` (default) or ``torch.float64`` for the result; the chords
        are computed in float64.

    Returns
    -------
    torch.Tensor, shape (n_angles, n_rows, n_cols)
        The projections, laid out as the output of ``ConeBeamTransform`` (intensity x
        voxels).  NumPy in, NumPy out.

    Examples
    --------
    >>> geom = ConeBeam(n_angles=90, n_rows=64, n_cols=64, source_distance=192,
    ...                 detector_distance=64, row_spacing=2.5, col_spacing=2.5)
    >>> y = cone_beam_projections(shepp_logan_3d_ellipsoids(64), geom)
    >>> y.shape, y.dtype
    (torch.Size([90, 64, 64]), torch.float32)
    """
    ellipsoids = check_floating(as_tensor(ellipsoids, "ellipsoids"), "ellipsoids")
    if ellipsoids.dim() != 2 or ellipsoids.shape[1] != 8:
        raise ValueError("ellipsoids must have shape (k, 8): (intensity, a, b, c, x0, y0, "
                         f"z0, phi) per row, got {tuple(ellipsoids.shape)}")
    if not isinstance(geometry, ConeBeam):
        hint = (" (for a ConeBeamTransform A, pass A.geometry)"
                if hasattr(geometry, "geometry") else "")
        raise TypeError(f"geometry must be a cu.ConeBeam, got {type(geometry).__name__}{hint}")
    subpixels = check_int(subpixels, "subpixels")
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    table = ellipsoids.detach().double().cpu()
    if table.numel() and not bool(torch.isfinite(table).all()):
        raise ValueError("ellipsoids must be finite numbers")
    if table.numel() and float(table[:, 1:4].min()) <= 0:
        raise ValueError("half-axes must be positive, got "
                         f"{float(table[:, 1:4].min())}")

    s = subpixels
    n_rows, n_cols = geometry.n_rows, geometry.n_cols
    d_s = geometry.source_distance
    length = d_s + geometry.detector_distance            # source to detector centre
    # the sub-pixel positions: a grid s times finer than the detector, in order
    v = ((torch.arange(n_rows * s, dtype=torch.float64) + 0.5) / s - n_rows / 2) \
        * geometry.row_spacing
    u = ((torch.arange(n_cols * s, dtype=torch.float64) + 0.5) / s - n_cols / 2) \
        * geometry.col_spacing
    # The ray from the source S to the point (u, v) of the detector is S + t D, t >= 0,
    # D = L (-sin, cos, 0) + u (cos, sin, 0) + v (0, 0, 1): t = 1 on the detector, and
    # |D| = sqrt(L^2 + u^2 + v^2) in every view (the three parts are orthogonal).
    ray_length = torch.sqrt(length ** 2 + u[None, :] ** 2 + v[:, None] ** 2)   # (v, u)
    angles = geometry.angles.double()
    out = torch.empty(geometry.n_angles, n_rows, n_cols, dtype=dtype)
    per_chunk = max(1, _PROJECTION_CHUNK // (len(u) * len(v)))
    for first in range(0, geometry.n_angles, per_chunk):
        theta = angles[first:first + per_chunk]
        cos, sin = torch.cos(theta)[:, None], torch.sin(theta)[:, None]
        source = (d_s * sin, -d_s * cos)                                      # (views, 1)
        direction = (-length * sin + u * cos, length * cos + u * sin)        # (views, u)
        total = torch.zeros(len(theta), len(v), len(u), dtype=torch.float64)
        for row in table.tolist():
            _add_chords(total, row, source, direction, u, v, d_s, length)
        total *= ray_length
        out[first:first + len(theta)] = total.reshape(
            len(theta), n_rows, s, n_cols, s).mean(dim=(2, 4)).to(dtype)
    return out


def _add_chords(total, ellipsoid, source, direction, u, v, d_s, length):
    """Add ``rho x`` (chord length in units of ``t``) of one ellipsoid to ``total``.

    ``total`` has shape ``(views, len(v), len(u))``; ``source`` and ``direction`` are the
    horizontal parts of the rays' start and direction, ``(views, 1)`` and
    ``(views, len(u))``; the vertical part of the direction is ``v``.
    """
    rho, a, b, c, x0, y0, z0, phi = ellipsoid
    if rho == 0:
        return
    # Rows and columns that can see the ellipsoid in some view: its points lie within
    # `reach` of the axis and at heights z0 +- c, so at depths d_s +- reach from the
    # source (along the central ray) they land at u = L lateral / depth, v = L z / depth.
    reach = math.hypot(x0, y0) + max(a, b)
    rows = cols = slice(None)
    front = reach < d_s          # the whole ellipsoid is in front of the source
    if front:
        near, far = d_s - reach, d_s + reach
        heights = [length * z / depth for z in (z0 - c, z0 + c) for depth in (near, far)]
        margin = 1e-9 * (1 + length)
        rows = _sorted_range(v, min(heights) - margin, max(heights) + margin)
        widest = length * reach / near + margin
        cols = _sorted_range(u, -widest, widest)
        if rows is None or cols is None:
            return
    cos_phi, sin_phi = math.cos(phi), math.sin(phi)
    # the ray in the frame of the ellipsoid, scaled so that it is the unit sphere
    sx, sy = source[0] - x0, source[1] - y0
    qx, qy, qz = (sx * cos_phi + sy * sin_phi) / a, (-sx * sin_phi + sy * cos_phi) / b, -z0 / c
    dx, dy = direction[0][:, cols], direction[1][:, cols]
    ex, ey = (dx * cos_phi + dy * sin_phi) / a, (-dx * sin_phi + dy * cos_phi) / b
    ez = v[rows] / c
    # |q + t e|^2 = 1  <=>  A t^2 + 2 B t + C = 0, with A and B outer sums
    quad_a = (ex * ex + ey * ey)[:, None, :] + (ez * ez)[None, :, None]
    quad_b = (qx * ex + qy * ey)[:, None, :] + (qz * ez)[None, :, None]
    quad_c = (qx * qx + qy * qy + qz * qz - 1)[:, :, None]                  # (views, 1, 1)
    root = torch.sqrt(torch.clamp(quad_b * quad_b - quad_a * quad_c, min=0))
    if front:
        # both crossings at t > 0 when the ray meets the ellipsoid at all
        chord = (2 * rho) * root / quad_a
    else:
        # the source may be inside or beyond: only the part with t >= 0 counts
        enter, leave = (-quad_b - root) / quad_a, (-quad_b + root) / quad_a
        chord = rho * torch.clamp(leave - torch.clamp(enter, min=0), min=0)
    total[:, rows, cols] += chord


def _sorted_range(values: torch.Tensor, low: float, high: float):
    """The slice of the sorted ``values`` that lie in ``[low, high]`` (None if empty)."""
    first = int(torch.searchsorted(values, torch.tensor(low, dtype=values.dtype)))
    stop = int(torch.searchsorted(values, torch.tensor(high, dtype=values.dtype), right=True))
    return slice(first, stop) if first < stop else None


# --- random ellipsoids -----------------------------------------------------------------------


class EllipsoidsDataset(torch.utils.data.Dataset):
    """Random 3D ellipsoid phantoms: training and test volumes for learned cone-beam CT.

    The 3D analogue of ``EllipsesDataset(style="disc")``, with a head-like layout (all
    lengths below in units of ``size / 2``, the half-side of the volume):

    * a **body**: half-axes ``Uniform(0.55, 0.8)`` along x, y and z, rotation about z
      ``Uniform(0, pi)``, intensity ``Uniform(0.2, 0.5)``, its centre offset from the
      origin by at most 0.1 horizontally (uniform in a disc) and 0.1 along z;
    * ``1 + Poisson(7)`` **features** (at most 15) inside it: half-axes
      ``Uniform(0.04, 0.3)`` each (so some are thin slabs along z), rotation about z
      ``Uniform(0, pi)``, intensity ``Uniform(-rho_body, 0.6)`` (holes and dense
      parts), centres uniform in the body shrunk so that the whole feature lies inside
      it (a sufficient condition: the centre lies in the body scaled by ``1 - s``,
      ``s`` the largest stretch of the body's unit-sphere map on the feature's
      half-axes).

    Every ellipsoid lies inside the cylinder of radius ``0.45 size`` around the z axis
    and inside ``|z| < 0.45 size``, so every view of lesson 13's scanners sees the whole
    object.  Ellipsoids only turn about the z axis (the rotations that
    :func:`ellipsoid_line_integrals` and :func:`cone_beam_projections` support).

    **Normalisation.**  The phantom is rasterised as :func:`shepp_logan_3d` is (each
    voxel the mean of ``4 x 4 x 4`` point samples).  If a voxel is negative (holes that
    overlap and dig below zero), the whole phantom is rejected and drawn again from the
    same random stream, so the result still depends only on ``(seed, index)``.  Then
    all intensities are divided by the largest voxel: the volume's maximum is exactly 1,
    and since the phantom is linear in its intensities, :meth:`ellipsoids` (the scaled
    table) still gives its exact projections (:meth:`projections`).

    Volume ``i`` depends only on ``(seed, i)``, not on the order in which items are
    read, so DataLoader workers and shuffling give identical data.  Taught in lesson 13,
    section 2 (data for learned cone-beam reconstruction, simulated without the
    inverse crime).

    Parameters
    ----------
    n : int
        Number of volumes.
    size : int
        Side of the cubic volume in voxels (at least 8).
    seed : int
        Non-negative seed; different seeds give independent data sets (e.g. 0 for
        training, 1 for testing).

    Examples
    --------
    >>> train = EllipsoidsDataset(10, 32, seed=0)
    >>> train[0].shape, float(train[0].max())
    (torch.Size([1, 32, 32, 32]), 1.0)
    >>> train.ellipsoids(0).shape[1]
    8
    """

    #: Average number of features beyond the first, and the most features per phantom.
    MEAN_EXTRA_FEATURES = 7.0
    MAX_FEATURES = 15
    #: Radius of the cylinder (around the z axis) and half-height that hold every
    #: ellipsoid, as fractions of ``size``.
    FIELD_OF_VIEW = 0.45
    #: Draws of one phantom before giving up (a draw is rejected when holes overlap
    #: below zero: about one draw in four).
    MAX_DRAWS = 100

    def __init__(self, n: int, size: int, seed: int = 0):
        self.n = check_int(n, "n", minimum=0)
        self.size = check_int(size, "size", minimum=8)
        self.seed = check_int(seed, "seed", minimum=0)

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return f"EllipsoidsDataset(n={self.n}, size={self.size}, seed={self.seed})"

    def _check_index(self, index) -> int:
        if isinstance(index, torch.Tensor) and index.numel() == 1 \
                and not index.is_floating_point():
            index = int(index)
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an int, got {type(index).__name__}")
        if not -self.n <= index < self.n:
            raise IndexError(f"index {index} is out of range for a data set of {self.n} "
                             "volumes")
        return int(index) % self.n

    def _generator(self, index: int) -> torch.Generator:
        # mix (seed, index) into one well-spread 63-bit seed, as EllipsesDataset does
        state = np.random.SeedSequence([self.seed, index]).generate_state(2)
        return torch.Generator().manual_seed(int(state[0]) << 31 ^ int(state[1]))

    def _draw(self, g: torch.Generator) -> torch.Tensor:
        """One unnormalised phantom, shape (k, 8), in voxels."""
        half = self.size / 2
        fov = self.FIELD_OF_VIEW / 0.5          # 0.9 in units of size / 2

        def uniform(low, high, k):
            return low + (high - low) * torch.rand(k, generator=g, dtype=torch.float64)

        # the body: half-axes, centre and rotation, in units of size / 2
        body_axes = uniform(0.55, 0.8, 3)
        a, b, c = body_axes.tolist()
        radius, angle, z = torch.rand(3, generator=g, dtype=torch.float64).tolist()
        # offsets of at most 0.1: with half-axes of at most 0.8 the body stays in 0.9
        offset = min(0.1, fov - max(a, b)) * math.sqrt(radius)
        x0, y0 = offset * math.cos(2 * math.pi * angle), offset * math.sin(2 * math.pi * angle)
        z0 = min(0.1, fov - c) * (2 * z - 1)
        phi = float(uniform(0.0, math.pi, 1))
        rho = float(uniform(0.2, 0.5, 1))
        rows = [(rho, a, b, c, x0, y0, z0, phi)]

        rate = torch.tensor([self.MEAN_EXTRA_FEATURES], dtype=torch.float64)
        k = min(1 + int(torch.poisson(rate, generator=g)), self.MAX_FEATURES)
        axes = uniform(0.04, 0.3, 3 * k).reshape(k, 3)
        angles = uniform(0.0, math.pi, k)
        intensities = uniform(-rho, 0.6, k)
        directions = torch.randn(k, 3, generator=g, dtype=torch.float64)
        radii = torch.rand(k, generator=g, dtype=torch.float64) ** (1 / 3)
        cos, sin = math.cos(phi), math.sin(phi)
        for j in range(k):
            fa, fb, fc = axes[j].tolist()
            turn = float(angles[j]) - phi       # the feature's rotation in the body's frame
            # The body maps to the unit sphere by p -> diag(1/a, 1/b, 1/c) R(-phi) p; the
            # feature's points, minus its centre, map into a ball of radius `stretch`.
            block = torch.tensor([[math.cos(turn) * fa / a, -math.sin(turn) * fb / a],
                                  [math.sin(turn) * fa / b, math.cos(turn) * fb / b]],
                                 dtype=torch.float64)
            stretch = max(float(torch.linalg.matrix_norm(block, ord=2)), fc / c)
            # a centre uniform in the body shrunk by 1 - stretch (> 0.45 here)
            w = directions[j] / directions[j].norm().clamp(min=1e-12) \
                * (float(radii[j]) * (1 - stretch))
            u, v = float(w[0]) * a, float(w[1]) * b
            rows.append((float(intensities[j]), fa, fb, fc, x0 + u * cos - v * sin,
                         y0 + u * sin + v * cos, z0 + float(w[2]) * c, float(angles[j])))
        table = torch.tensor(rows, dtype=torch.float64)
        table[:, 1:7] *= half
        return table

    def _phantom(self, index: int):
        """The scaled ellipsoids of volume ``index`` and the volume, float64."""
        index = self._check_index(index)
        g = self._generator(index)
        shape = (self.size,) * 3
        for _ in range(self.MAX_DRAWS):
            table = self._draw(g)
            volume = _rasterise(table, shape, 4)
            if float(volume.min()) >= -1e-6:
                break
        else:       # pragma: no cover - about 0.25 ** 100
            raise RuntimeError(f"no phantom without negative voxels in {self.MAX_DRAWS} "
                               f"draws for index {index}")
        peak = float(volume.max())
        table[:, 0] /= peak
        return table, volume / peak

    def ellipsoids(self, index: int) -> torch.Tensor:
        """The ellipsoids of volume ``index``, already scaled, shape (k, 8), float64.

        Rows ``(intensity, a, b, c, x0, y0, z0, phi)`` in voxels, as
        :func:`shepp_logan_3d_ellipsoids`: the input of :func:`cone_beam_projections`
        and :func:`ellipsoid_line_integrals`.  The first row is the body.  (Computing
        the scale rasterises the volume: a few tens of ms at 32³.)
        """
        return self._phantom(index)[0]

    def __getitem__(self, index: int) -> torch.Tensor:
        """Volume ``index``, shape (1, size, size, size), float32, values in [0, 1]."""
        volume = self._phantom(index)[1]
        # overlaps are exact sums, so only rounding can leave [0, 1]
        return volume.clamp(0.0, 1.0).float()[None]

    def tensors(self) -> torch.Tensor:
        """All volumes stacked, shape (n, 1, size, size, size), float32.

        The volumes are generated anew on every call (tens of ms each at 32³); keep
        the result in a variable rather than calling this in a loop.
        """
        if self.n == 0:
            return torch.zeros(0, 1, self.size, self.size, self.size)
        return torch.stack([self[i] for i in range(self.n)])

    def projections(self, index: int, geometry, *, subpixels: int = 2,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Exact projections of volume ``index``: :func:`cone_beam_projections` of
        :meth:`ellipsoids`, shape ``(n_angles, n_rows, n_cols)``."""
        return cone_beam_projections(self.ellipsoids(index), geometry, subpixels=subpixels,
                                     dtype=dtype)


# --- the Defrise phantom ---------------------------------------------------------------------


def defrise_ellipsoids(size: int, n_discs: int = 5, *, radius: float = 0.4,
                       thickness: float = 0.05, spacing: float | None = None,
                       intensity: float = 1.0) -> torch.Tensor:
    """The Defrise phantom: thin flat discs stacked along the rotation axis.

    Feldkamp's algorithm (FDK) is exact only in the central plane ``z = 0``; away from
    it a circular scan misses data, and the discs of this phantom, which are thin along
    z, come out smeared and fainter the farther they are from the central plane and
    the wider the cone (lesson 13, section 3).  The discs are flat ellipsoids (round
    in the horizontal plane), evenly spaced along z and symmetric about ``z = 0`` (one
    disc sits on the central plane when ``n_discs`` is odd).

    All lengths are fractions of ``size``, the side of the volume.  Taught in lesson 13,
    section 3 (the cone-beam artefacts of FDK).

    Parameters
    ----------
    size : int
        Side of the volume in voxels.
    n_discs : int
        Number of discs.
    radius : float
        Radius of each disc: ``radius * size`` voxels (at most 0.5, the volume's side).
    thickness : float
        Full thickness of each disc: ``thickness * size`` voxels, so the half-axis
        along z is ``thickness * size / 2``.
    spacing : float, optional
        Gap between two neighbouring discs, ``spacing * size`` voxels; by default equal
        to the thickness (a disc's centre every ``2 * thickness * size`` voxels).
    intensity : float
        Value inside the discs.

    Returns
    -------
    torch.Tensor, shape (n_discs, 8), float64
        One row ``(intensity, a, b, c, x0, y0, z0, phi)`` per disc, from the bottom
        (negative z) up, in voxels: the input of :func:`cone_beam_projections`.

    Raises
    ------
    ValueError
        If the stack is taller than the volume or a disc is wider than it.

    Examples
    --------
    >>> discs = defrise_ellipsoids(40, radius=0.325, thickness=0.075)
    >>> discs[:, 6].tolist()                    # the centres along z
    [-12.0, -6.0, 0.0, 6.0, 12.0]
    >>> discs[0, 1:4].tolist()                  # radius 13, half-thickness 1.5
    [13.0, 13.0, 1.5]
    """
    size = check_int(size, "size")
    n_discs = check_int(n_discs, "n_discs")
    radius = check_number(radius, "radius", positive=True)
    thickness = check_number(thickness, "thickness", positive=True)
    spacing = thickness if spacing is None else check_number(spacing, "spacing",
                                                              positive=False)
    intensity = check_number(intensity, "intensity", positive=True)
    if radius > 0.5:
        raise ValueError(f"radius must be at most 0.5 (a fraction of size), got {radius}")
    period = thickness + spacing
    height = (n_discs - 1) * period + thickness          # of the whole stack
    if height > 1 + 1e-12:
        raise ValueError(f"{n_discs} discs of thickness {thickness} with gaps of {spacing} "
                         f"make a stack {height:g} x size tall: taller than the volume")
    centres = (torch.arange(n_discs, dtype=torch.float64) - (n_discs - 1) / 2) * period
    table = torch.zeros(n_discs, 8, dtype=torch.float64)
    table[:, 0] = intensity
    table[:, 1:3] = radius * size
    table[:, 3] = thickness * size / 2
    table[:, 6] = centres * size
    return table
