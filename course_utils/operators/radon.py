"""The Radon transform as a differentiable linear operator: ``y = A(x)``, ``x_bp = A.T(y)``.

The ``"torch"`` backend (the default) builds the **system matrix** :math:`A` once, with
Joseph's method, and stores it as a sparse CSR tensor
(:class:`~course_utils.operators.sparse.SparseMatrixOperator`).  Projecting is then one
sparse matrix product, :math:`y = A x`, and backprojecting is a product with the stored
transpose, :math:`A^T y`.  That makes the adjoint exact by construction, lets autograd
flow through both (the gradient of :math:`A x` is :math:`A^T`, and back), and runs on the
CPU and on CUDA, for a whole batch of images in one product.

Joseph's method (Joseph, 1982): a ray that is closer to horizontal steps through the
image one column at a time (a steep ray one row at a time); at each step it
interpolates linearly between the two nearest pixel centres in that column and weights
the result by the ray's length inside one column, :math:`1/|\\cos\\varphi|`.
It is ASTRA's ``'linear'`` projector.

The ``"astra"`` backend (:mod:`course_utils.operators.astra`) computes the same
operator with the ASTRA toolbox's projectors (CPU, or CUDA when the operator lives on a
GPU), for comparison.
"""

from __future__ import annotations

import math

import torch

from ..arrays import check_int
from .astra import AstraProjector
from .geometry import FanBeam, _Geometry
from .sparse import SparseMatrixOperator, csr_matrix

__all__ = ["RadonTransform", "joseph_matrix"]

_BACKENDS = ("torch", "astra")


def _steps_inside(offset, slope, n):
    """First step and number of steps at which ``o(s) = offset + s * slope`` is in (-1, n).

    Only there does the ray have a pixel centre within one pixel of it.
    """
    lo = torch.where(slope == 0, torch.zeros_like(offset), (-1 - offset) / slope)
    hi = torch.where(slope == 0, torch.full_like(offset, n - 1), (n - offset) / slope)
    lo, hi = torch.minimum(lo, hi), torch.maximum(lo, hi)
    first = torch.floor(lo).clamp(0, n).long()
    last = torch.ceil(hi).clamp(-1, n - 1).long()
    count = (last - first + 1).clamp(min=0)
    misses = (slope == 0) & ((offset <= -1) | (offset >= n))
    return first, torch.where(misses, torch.zeros_like(count), count)


def joseph_matrix(image_size: int, points: torch.Tensor, directions: torch.Tensor,
                  chunk: int = 1 << 22) -> torch.Tensor:
    """System matrix of the given rays through an ``N x N`` image, by Joseph's method.

    The matrix behind :class:`RadonTransform`; lesson 02, section 1 ("The scanner as a
    matrix") looks at it row by row and column by column.

    Parameters
    ----------
    image_size : int
        ``N``; pixels have size 1 and the image is centred on the origin.
    points, directions : torch.Tensor, shape (n_rays, 2)
        A point on each ray and its unit direction, ``(x, y)`` in pixel units
        (see :meth:`ParallelBeam.rays`).
    chunk : int
        Steps computed at once; bounds the temporary memory.

    Returns
    -------
    torch.Tensor
        Sparse CSR, float32, shape ``(n_rays, N * N)``, int32 indices.  Row ``i`` holds
        the weights with which each pixel (row-major) contributes to ray ``i``.
    """
    n = image_size
    # Index coordinates: column c = x + N/2 - 1/2, row r = N/2 - 1/2 - y.
    col0, row0 = points[:, 0] + n / 2 - 0.5, n / 2 - 0.5 - points[:, 1]
    dcol, drow = directions[:, 0], -directions[:, 1]
    along_cols = dcol.abs() >= drow.abs()   # flat rays step column by column
    # s: the index we step along; o: the index we interpolate along.
    s0, o0 = torch.where(along_cols, col0, row0), torch.where(along_cols, row0, col0)
    ds, do = torch.where(along_cols, dcol, drow), torch.where(along_cols, drow, dcol)
    slope = do / ds
    offset = o0 - s0 * slope                # o at s = 0
    length = 1.0 / ds.abs()                 # ray length per step (unit directions)
    # Flat pixel index = o * o_stride + s * s_stride.
    o_stride = torch.where(along_cols, n, 1).to(torch.int32)
    s_stride = torch.where(along_cols, 1, n).to(torch.int32)

    first, count = _steps_inside(offset, slope, n)
    # CSR layout: two entries (the two neighbours) per step, rays one after the other.
    steps_before = torch.cumsum(count, 0) - count
    crow = torch.cat([2 * steps_before, 2 * count.sum().reshape(1)])
    n_rays, n_steps = len(points), int(count.sum())
    if 2 * n_steps >= 2**31:
        raise ValueError(
            f"this system matrix would hold {2 * n_steps:,} weights, more than 32-bit "
            f"indices allow: use fewer angles or detectors, a smaller image, or "
            f"backend='astra'")
    columns = torch.empty(n_steps, 2, dtype=torch.int32)
    weights = torch.empty(n_steps, 2, dtype=torch.float32)

    for rays in _chunks(count, chunk):
        ray = torch.repeat_interleave(torch.arange(rays.start, rays.stop), count[rays])
        out = slice(int(steps_before[rays.start]), int(steps_before[rays.start]) + len(ray))
        s = first[ray] + torch.arange(out.start, out.stop) - steps_before[ray]   # step index
        o = offset[ray].float() + s.float() * slope[ray].float()
        o_low = torch.floor(o)
        w_high = o - o_low
        o_low = o_low.int()
        w = length[ray].float()
        # The two neighbours' weights; a neighbour outside the image gets weight 0.
        weights[out, 0] = (1 - w_high) * w * ((o_low >= 0) & (o_low < n))
        weights[out, 1] = w_high * w * ((o_low >= -1) & (o_low < n - 1))
        s_part = s.int() * s_stride[ray]
        columns[out, 0] = s_part + o_low.clamp(0, n - 1) * o_stride[ray]
        columns[out, 1] = s_part + (o_low + 1).clamp(0, n - 1) * o_stride[ray]

    return csr_matrix(crow.int(), columns.reshape(-1), weights.reshape(-1), (n_rays, n * n))


def _chunks(count, chunk):
    """Consecutive slices of rays with about ``chunk`` steps each (at least one ray)."""
    ends = torch.cumsum(count, 0)
    start = 0
    while start < len(count):
        done = int(ends[start - 1]) if start else 0
        stop = max(start + 1, int(torch.searchsorted(ends, done + chunk, right=True)))
        yield slice(start, stop)
        start = stop


class RadonTransform(SparseMatrixOperator):
    """The discrete Radon transform :math:`A` of a scanner geometry.

    .. math:: (A x)_i = \\int_{\\text{ray } i} x(\\mathbf{r})\\, d\\ell

    Taught in lesson 01, section 1.2 ("The course's operator"); its system matrix in
    lesson 02, section 1 ("The scanner as a matrix").

    Parameters
    ----------
    image_size : int
        ``N``: images are ``N x N`` pixels of size 1, centred on the rotation axis.
    geometry : ParallelBeam or FanBeam
        The scanner.
    backend : {"torch", "astra"}
        ``"torch"``: sparse system matrix in PyTorch (CPU and CUDA, exact adjoint,
        differentiable, batched).  ``"astra"``: the ASTRA toolbox's projectors
        (``'linear'`` for parallel beam, ``'line_fanflat'`` for fan beam on the CPU;
        ``'cuda'`` on a GPU), one image at a time.
    device : str or torch.device
        Where the operator computes; inputs must be on the same device.

    Examples
    --------
    >>> A = RadonTransform(image_size=64, geometry=ParallelBeam(n_angles=90, n_detectors=93))
    >>> y = A(torch.rand(8, 64, 64))      # (8, 90, 93)
    >>> x_bp = A.T(y)                     # (8, 64, 64)
    >>> A.T.T is A
    True

    Notes
    -----
    Memory: the torch backend stores about ``2 N`` weights per ray, twice (A and its
    transpose), 8 bytes each (value and column index): ``32 * n_angles * n_detectors * N``
    bytes, about 60 MB for 128 x 128 with 180 angles and 430 MB for 256 x 256 with 256
    angles.  The matrices live in the shared cache of
    :mod:`~course_utils.operators.sparse` (see ``cu.cache_info()``), so a second operator
    with the same image size and geometry costs nothing.
    """

    def __init__(self, image_size, geometry, *, backend="torch", device="cpu"):
        if isinstance(image_size, (tuple, list)):
            if len(image_size) != 2 or image_size[0] != image_size[1]:
                raise ValueError(f"image_size must be one integer N (square N x N images), "
                                 f"got {image_size!r}")
            image_size = image_size[0]
        image_size = check_int(image_size, "image_size")
        if not isinstance(geometry, _Geometry):
            raise TypeError("geometry must be a ParallelBeam or FanBeam, got "
                            f"{type(geometry).__name__}")
        if backend not in _BACKENDS:
            raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")
        if isinstance(geometry, FanBeam):
            radius = image_size / math.sqrt(2)
            if geometry.source_distance <= radius:
                raise ValueError(
                    f"the source is inside the image: source_distance="
                    f"{geometry.source_distance:g} but a {image_size}x{image_size} image "
                    f"reaches {radius:.1f} pixels from the rotation axis")
        super().__init__((image_size, image_size), geometry.sinogram_shape, device,
                         domain_name="image", range_name="sinogram")
        self.image_size = image_size
        self.geometry = geometry
        self.backend = backend
        if backend == "astra":
            self._astra = AstraProjector(image_size, geometry, self.device)

    # --- the torch backend: the Joseph system matrix -----------------------------
    def _build_matrix(self):
        return joseph_matrix(self.image_size, *self.geometry.rays())

    def _matrix_key(self):
        return ("joseph", self.image_size, self.geometry._key())

    def _product(self, x, adjoint):
        if self.backend == "astra":
            return self._astra.product(x, adjoint)
        return super()._product(x, adjoint)

    # --- LinearOperator interface --------------------------------------------------------
    def to_matrix(self) -> torch.Tensor:
        """The system matrix, sparse CSR of shape ``(n_angles * n_detectors, N * N)``.

        Row ``i`` is ray ``i`` of the flattened sinogram; column ``j`` is pixel ``j``
        of the row-major flattened image, so ``A(x).flatten() == A.to_matrix() @ x.flatten()``
        (lesson 02, section 1).
        """
        if self.backend == "astra":
            return self._astra.matrix()
        return super().to_matrix()

    def to(self, device) -> "RadonTransform":
        """The same operator on another device (a new object; it shares the cached matrices)."""
        return RadonTransform(self.image_size, self.geometry, backend=self.backend,
                              device=device)

    def __repr__(self):
        return (f"RadonTransform(image_size={self.image_size}, geometry={self.geometry!r}, "
                f"backend={self.backend!r}, device='{self.device}')")
