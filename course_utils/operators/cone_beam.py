"""Cone-beam CT as a differentiable linear operator: ``y = A(x)``, ``x_bp = A.T(y)``.

A cone-beam scanner (lesson 13) records a whole volume per turn: a point source and a
flat panel of ``n_rows x n_cols`` pixels turn around the volume
(:class:`~course_utils.operators.geometry.ConeBeam`).  :class:`ConeBeamTransform` maps a
volume ``(D, H, W)`` to its projections ``(n_angles, n_rows, n_cols)``.

**A ray.**  In one view, the ray of a detector pixel is the straight line from the
source to the centre of that pixel (``ConeBeam.source_and_pixels``).  The pixel measures
the line integral of the volume along it,

.. math:: (A x)_{\\theta, r, k} = \\int_{\\text{ray}(\\theta, r, k)} x(\\mathbf{p})\\, d\\ell .

**Joseph's method in 3D**, as in 2D (lesson 01) and in ASTRA's GPU cone projector.  A
ray steps from one plane of voxel centres to the next along the horizontal axis it is
most aligned with: a ray closer to the :math:`x` axis than to the :math:`y` axis crosses
the ``W`` planes :math:`x = \\text{const}`, one per column of voxels; the others cross
the ``H`` planes :math:`y = \\text{const}`.  In each plane the ray passes through one
point, between four voxel centres; we interpolate bilinearly between them and weight the
value by the length of the ray between two planes, :math:`1/|\\cos\\varphi|` (the ray
makes the angle :math:`\\varphi` with the stepping axis).  The sum over the planes is
the line integral.  The volume is zero outside, so a point within half a voxel of a face
still sees part of the voxels on that face.

**The flat panel makes it cheap.**  Detector rows are parallel to the rotation axis, so
all rays of one detector column lie in one vertical plane; seen from above, they all
follow the fan-beam ray of that column.  Where they cross a plane of voxel centres, the
fraction :math:`\\lambda` of the way from the source to the detector is the same for
every row, and the height is :math:`z = \\lambda v_r` (:math:`v_r`: the height of row
:math:`r`).  So a table of (planes x detector columns) numbers and the row heights give
the position of every sample.

**Vectorised with** ``torch.nn.functional.grid_sample``, which samples a batch of 2D
images at given points by bilinear interpolation.  The batch is the ``W`` slices
``x[:, :, w]`` (or the ``H`` slices ``x[:, h, :]`` for the rays that step along
:math:`y`; the volumes of a batch are the channels), and in each slice we ask for the
points where the rays cross it.  With ``align_corners=False``, grid coordinates -1
and 1 are the outer faces of the volume, so a sample's grid coordinate is its position
divided by half the volume's size, and voxel centres are hit exactly.

**Why the adjoint is exact.**  The forward map is: sample (a fixed interpolation
matrix), multiply by the step lengths, sum over the planes.  Its transpose repeats each
projection value on every plane, multiplies by the same lengths and spreads each sample
back onto the four voxels it was interpolated from, with the same four weights.  That
last step is PyTorch's own backward of ``grid_sample`` (its vector-Jacobian product),
called directly.  Forward and adjoint use the very same sample positions, so
:math:`\\langle A x, y\\rangle = \\langle x, A^T y\\rangle` to rounding (about
:math:`10^{-16}` in float64): ``A.T`` is the transpose of the *discrete* operator, not a
discretisation of the continuous backprojection.  The gradient of ``A`` is ``A.T`` and
the other way round, so both are differentiable to any order.

**Cost.**  One bilinear sample (4 voxel reads) per ray and plane, at most
``n_angles * n_rows * n_cols * W``; rays whose track misses the volume are skipped.
For the scan of ``benchmarks/operators.py`` at 64³ (64 x 64 detector, 90 views) that
is 16.5 million samples, and forward plus adjoint take about 0.3 s on one CPU thread.
The positions of the samples do not depend on the volume: the operator keeps them, per
dtype, while they fit :data:`CACHE_BUDGET_BYTES` (two numbers per sample: 132 MB in
float32 for that scan), and otherwise recomputes them on every call (about 30 %
slower).  Rays are processed in chunks of about :data:`CHUNK_SAMPLES` samples (times
the batch size) to bound the temporary memory.  ``benchmarks/README.md`` records the
times.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from ..arrays import check_int
from .geometry import ConeBeam
from .linear_operator import LinearOperator

__all__ = ["ConeBeamTransform"]

#: Samples interpolated at once, per volume of the batch: bounds the temporary memory
#: (two grid coordinates and one value per sample: 24 MB in float32).
CHUNK_SAMPLES = 1 << 21

#: Largest memory, in bytes, that one operator spends keeping the positions of its
#: samples, per dtype (132 MB in float32 at 64³ with a 64 x 64 detector and 90 views,
#: ``A.cache_bytes``).  Above it they are recomputed on every call, about 30 % slower.
#: To change it, assign a new value before creating the operator:
#: ``course_utils.operators.cone_beam.CACHE_BUDGET_BYTES = 2e9``.
CACHE_BUDGET_BYTES = 512_000_000


class _Stack(NamedTuple):
    """The rays that step along one axis, and where they cross its planes of voxels.

    ``axis`` 0: the ``W`` planes :math:`x = \\text{const}`, each an image ``x[:, :, w]``
    of shape ``(D, H)``; ``axis`` 1: the ``H`` planes :math:`y = \\text{const}`, each an
    image ``x[:, h, :]`` of shape ``(D, W)``.  Positions are grid coordinates of
    ``grid_sample`` (-1 and 1 are the faces of the volume).

    Attributes
    ----------
    columns : torch.Tensor, shape (n,)
        The detector columns whose rays step along this axis, as ``view * n_cols + col``.
    across : torch.Tensor, shape (n_planes, n)
        Grid coordinate across the slice where the column's rays cross each plane (the
        same for every row).
    height : torch.Tensor, shape (n_planes, n)
        Grid coordinate along :math:`z` per unit of row height there, :math:`2\\lambda/D`.
    step : torch.Tensor, shape (n, n_rows)
        Length of each ray between two planes, in voxels.
    rows : torch.Tensor, shape (n_rows,)
        Heights :math:`v_r` of the detector rows.
    grid : torch.Tensor or None, shape (n_planes, n, n_rows, 2)
        The grid coordinates of all samples, when the operator keeps them.
    """

    axis: int
    columns: torch.Tensor
    across: torch.Tensor
    height: torch.Tensor
    step: torch.Tensor
    rows: torch.Tensor
    grid: torch.Tensor | None


def _plan(volume_shape, geometry: ConeBeam) -> list[_Stack]:
    """Where every ray crosses the planes of voxel centres, in float64 on the CPU."""
    depth, height, width = volume_shape
    views = [geometry.source_and_pixels(i) for i in range(geometry.n_angles)]
    sources = torch.stack([source for source, _ in views])     # (n_angles, 3)
    pixels = torch.stack([pixel for _, pixel in views])        # (n_angles, n_rows, n_cols, 3)
    # The (x, y) track of every detector column, from the source to the column.
    start = sources[:, None, :2].expand(-1, geometry.n_cols, -1).reshape(-1, 2)
    track = pixels[:, 0, :, :2].reshape(-1, 2) - start         # (n_angles * n_cols, 2)
    rows = pixels[0, :, 0, 2]                                  # (n_rows,), source at z = 0
    x_dominant = track[:, 0].abs() >= track[:, 1].abs()

    stacks = []
    for axis in (0, 1):
        if axis == 0:   # planes x = const through voxel centres; across them runs y
            planes = torch.arange(width, dtype=torch.float64) + 0.5 - width / 2
            across_size, across_sign = height, -1.0     # row 0 is the top (largest y)
            mine = x_dominant
        else:           # planes y = const; across them runs x
            planes = height / 2 - 0.5 - torch.arange(height, dtype=torch.float64)
            across_size, across_sign = width, 1.0
            mine = ~x_dominant
        columns = mine.nonzero()[:, 0]
        origin, direction = start[columns], track[columns]
        # lambda: how far each plane is from the source (0) towards the detector column (1)
        fraction = (planes[:, None] - origin[:, axis]) / direction[:, axis]   # (planes, n)
        across = origin[:, 1 - axis] + fraction * direction[:, 1 - axis]
        # Skip the columns whose track never comes within half a voxel of the volume.
        hits = (across.abs() < across_size / 2 + 0.5).any(dim=0)
        columns, direction = columns[hits], direction[hits]
        fraction, across = fraction[:, hits], across[:, hits]
        # the ray's length between two planes: |pixel - source| over its extent along the axis
        length = torch.sqrt((direction ** 2).sum(-1)[:, None] + rows ** 2)
        stacks.append(_Stack(
            axis=axis, columns=columns,
            across=across * (across_sign * 2 / across_size),
            height=fraction * (2 / depth),
            step=length / direction[:, axis].abs()[:, None],
            rows=rows, grid=None))
    return stacks


def _positions(stack: _Stack, start: int, stop: int) -> torch.Tensor:
    """Grid coordinates of the samples of columns ``start:stop``, ``(n_planes, n, n_rows, 2)``.

    The positions kept by the operator, or computed now from the (planes x columns)
    tables and the row heights: :math:`z = \\lambda v_r`.
    """
    if stack.grid is not None:
        return stack.grid[:, start:stop]
    across, height = stack.across[:, start:stop], stack.height[:, start:stop]
    grid = across.new_empty(*across.shape, len(stack.rows), 2)
    grid[..., 0] = across[:, :, None]
    grid[..., 1] = height[:, :, None] * stack.rows
    return grid


def _spread(values: torch.Tensor, grid: torch.Tensor, shape) -> torch.Tensor:
    """The transpose of ``grid_sample(slices, grid)``: every sample back onto its voxels.

    Each value goes to the four voxels its sample was interpolated from, with the same
    bilinear weights, and the contributions add up.  This is PyTorch's backward of
    ``grid_sample`` with respect to its input (its vector-Jacobian product), called
    directly to skip a forward pass over zeros.

    Parameters
    ----------
    values : torch.Tensor, shape (n_planes, batch, n, n_rows)
    grid : torch.Tensor, shape (n_planes, n, n_rows, 2)
    shape : tuple
        Shape of the slices, ``(n_planes, batch, D, H or W)``.
    """
    slices = values.new_zeros(shape)      # only its shape and dtype are used
    bilinear, zeros = 0, 0                # grid_sample's mode="bilinear", padding_mode="zeros"
    return torch.ops.aten.grid_sampler_2d_backward(
        values, slices, grid, bilinear, zeros, False, [True, False])[0]


class _ConeProjection(torch.autograd.Function):
    """``A x`` (or ``A^T y``) whose gradient is the product with the other one.

    Because backward calls this same function, second derivatives work too.
    """

    @staticmethod
    def forward(ctx, x, operator, adjoint):
        ctx.operator, ctx.adjoint = operator, adjoint
        return operator._backproject(x) if adjoint else operator._project(x)

    @staticmethod
    def backward(ctx, grad):
        return _ConeProjection.apply(grad, ctx.operator, not ctx.adjoint), None, None


class ConeBeamTransform(LinearOperator):
    """The cone-beam X-ray transform :math:`A` of a circular scan with a flat panel.

    .. math:: (A x)_{\\theta, r, k}
              = \\int_{\\text{ray}(\\theta, r, k)} x(\\mathbf{p})\\, d\\ell

    Matrix-free: Joseph's method in 3D, vectorised with ``grid_sample`` (see the module
    docstring); the adjoint ``A.T`` is the exact transpose of ``A``.  Taught in lesson
    13, section 2 ("A cone-beam projector").

    Parameters
    ----------
    volume_shape : int or tuple of int
        ``(D, H, W)``: slices along the rotation axis, rows and columns; one int ``N``
        means ``(N, N, N)``.  Voxels have size 1 and the volume is centred on the
        origin (conventions in :mod:`~course_utils.operators.geometry`).
    geometry : ConeBeam
        The scanner.
    device : str or torch.device
        Where the operator computes (CPU or CUDA); inputs must be on the same device.
    dtype : torch.dtype
        The precision whose sample positions are prepared now (``torch.float32`` or
        ``torch.float64``).  The operator computes in the dtype of its input and
        prepares the other one on first use.

    Examples
    --------
    >>> geom = ConeBeam(n_angles=90, n_rows=64, n_cols=64, source_distance=192,
    ...                 detector_distance=64, row_spacing=2.5, col_spacing=2.5)
    >>> A = ConeBeamTransform(64, geom)
    >>> y = A(torch.rand(2, 64, 64, 64))      # (2, 90, 64, 64)
    >>> x_bp = A.T(y)                         # (2, 64, 64, 64)

    Notes
    -----
    Rays step along :math:`x` or :math:`y`, never along the rotation axis, so the
    samples are at most one voxel apart in :math:`z` as long as every ray makes less
    than 45° with the central plane: a cone angle below 90°, which every scanner
    has.  On CUDA, the adjoint adds samples in parallel (atomic additions), so its last
    digits can change from one call to the next.
    """

    def __init__(self, volume_shape, geometry, *, device="cpu", dtype=torch.float32):
        volume_shape = _check_volume_shape(volume_shape)
        if not isinstance(geometry, ConeBeam):
            raise TypeError(f"geometry must be a ConeBeam, got {type(geometry).__name__}")
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        _, height, width = volume_shape
        radius = math.hypot(height, width) / 2
        if geometry.source_distance <= radius:
            raise ValueError(
                f"the source is inside the volume: source_distance="
                f"{geometry.source_distance:g} but a volume of {height} x {width} voxels "
                f"across reaches {radius:.1f} voxels from the rotation axis")
        super().__init__(volume_shape, geometry.sinogram_shape, device,
                         domain_name="volume", range_name="projections")
        self.volume_shape = volume_shape
        self.geometry = geometry
        self.dtype = dtype
        self._plan = _plan(volume_shape, geometry)
        self._stacks_by_dtype = {}
        self._stacks(dtype)

    # --- the sample positions, per dtype ------------------------------------------------
    def _stacks(self, dtype) -> list[_Stack]:
        """The plan in ``dtype`` on the operator's device, positions kept if they fit."""
        if dtype not in self._stacks_by_dtype:
            stacks = [stack._replace(**{name: getattr(stack, name).to(self.device, dtype)
                                        for name in ("across", "height", "step", "rows")},
                                     columns=stack.columns.to(self.device))
                      for stack in self._plan]
            size = torch.finfo(dtype).bits // 8
            n_bytes = sum(2 * size * stack.across.numel() * len(stack.rows)
                          for stack in stacks)
            if n_bytes <= CACHE_BUDGET_BYTES:
                stacks = [stack._replace(grid=_positions(stack, 0, len(stack.columns)))
                          for stack in stacks]
            self._stacks_by_dtype[dtype] = stacks
        return self._stacks_by_dtype[dtype]

    @property
    def cache_bytes(self) -> int:
        """Memory, in bytes, of the sample positions this operator keeps (all dtypes)."""
        return sum(stack.grid.numel() * stack.grid.element_size()
                   for stacks in self._stacks_by_dtype.values() for stack in stacks
                   if stack.grid is not None)

    def _chunks(self, stack: _Stack, batch: int):
        """Consecutive ranges of the stack's columns, about CHUNK_SAMPLES samples each."""
        n_planes, n_columns = stack.across.shape
        per_chunk = max(1, CHUNK_SAMPLES // (n_planes * len(stack.rows) * max(batch, 1)))
        for start in range(0, n_columns, per_chunk):
            yield start, min(start + per_chunk, n_columns)

    # --- projection and its transpose --------------------------------------------------------
    def _project(self, x: torch.Tensor) -> torch.Tensor:
        """``A x`` for volumes ``(..., D, H, W)``, without autograd (see ``_apply``)."""
        n_angles, n_rows, n_cols = self.range_shape
        batch = x.shape[: x.dim() - 3]
        volumes = x.reshape(-1, *self.volume_shape)
        out = x.new_zeros(volumes.shape[0], n_angles * n_cols, n_rows)
        for stack in self._stacks(x.dtype):
            # the planes of voxels as a batch of 2D images, the volumes as their channels
            order = (3, 0, 1, 2) if stack.axis == 0 else (2, 0, 1, 3)
            slices = volumes.permute(order).contiguous()
            for start, stop in self._chunks(stack, volumes.shape[0]):
                samples = F.grid_sample(slices, _positions(stack, start, stop),
                                        mode="bilinear", padding_mode="zeros",
                                        align_corners=False)      # (planes, batch, n, rows)
                out[:, stack.columns[start:stop]] = samples.sum(0) * stack.step[start:stop]
        out = out.reshape(*batch, n_angles, n_cols, n_rows)
        return out.transpose(-1, -2).contiguous()

    def _backproject(self, y: torch.Tensor) -> torch.Tensor:
        """``A^T y`` for projections ``(..., n_angles, n_rows, n_cols)``: the transpose."""
        n_angles, n_rows, n_cols = self.range_shape
        depth, height, width = self.volume_shape
        batch = y.shape[: y.dim() - 3]
        values = y.reshape(-1, n_angles, n_rows, n_cols).transpose(-1, -2)
        values = values.reshape(-1, n_angles * n_cols, n_rows)
        n_volumes = values.shape[0]
        volumes = y.new_zeros(n_volumes, depth, height, width)
        for stack in self._stacks(y.dtype):
            n_planes = stack.across.shape[0]
            shape = ((width, n_volumes, depth, height) if stack.axis == 0
                     else (height, n_volumes, depth, width))
            slices = y.new_zeros(shape)
            for start, stop in self._chunks(stack, n_volumes):
                weighted = values[:, stack.columns[start:stop]] * stack.step[start:stop]
                every_plane = weighted.expand(n_planes, *weighted.shape).contiguous()
                slices += _spread(every_plane, _positions(stack, start, stop), shape)
            order = (1, 2, 3, 0) if stack.axis == 0 else (1, 2, 0, 3)
            volumes += slices.permute(order)
        return volumes.reshape(*batch, depth, height, width)

    # --- LinearOperator interface ----------------------------------------------------------
    def _apply(self, x):
        return _ConeProjection.apply(x, self, False)

    def _apply_adjoint(self, y):
        return _ConeProjection.apply(y, self, True)

    def to(self, device) -> "ConeBeamTransform":
        """The same operator on another device (a new object)."""
        return ConeBeamTransform(self.volume_shape, self.geometry, device=device,
                                 dtype=self.dtype)

    def __repr__(self):
        return (f"ConeBeamTransform(volume_shape={self.volume_shape}, "
                f"geometry={self.geometry!r}, device='{self.device}')")


def _check_volume_shape(volume_shape) -> tuple[int, int, int]:
    """``(D, H, W)`` from an int ``N`` or a sequence of three ints, with clear errors."""
    if isinstance(volume_shape, (tuple, list, torch.Size)):
        if len(volume_shape) != 3:
            raise ValueError(f"volume_shape must be (D, H, W) or one int N, got "
                             f"{tuple(volume_shape)!r}")
        return tuple(check_int(n, f"volume_shape[{i}]") for i, n in enumerate(volume_shape))
    n = check_int(volume_shape, "volume_shape")
    return (n, n, n)
