"""A 3D test object for cone-beam CT: the Shepp-Logan head as ellipsoids (lesson 13).

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
"""

from __future__ import annotations

import math

import torch

from ..arrays import as_tensor, check_floating, check_int, numpy_compatible

__all__ = ["shepp_logan_3d", "shepp_logan_3d_ellipsoids", "ellipsoid_line_integrals"]

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
