"""Operators stored as a sparse matrix, and the one cache that keeps their matrices.

The course's projector and FBP's backprojection are both linear maps whose matrix is
mostly zeros: a ray crosses about ``2 N`` of the ``N * N`` pixels.  Stored as a sparse
CSR tensor, applying the operator to a whole batch of images is one sparse matrix
product, :math:`Y = A X` (the images are the columns of :math:`X`), and the adjoint is a
product with the stored transpose, :math:`A^T Y`, so it is exact by construction.

:class:`SparseMatrixOperator` is the base of such operators (lesson 02, section 1:
"The scanner as a matrix").  Building a matrix can take seconds, so every built matrix
goes into **one cache**, shared by all operators, with one memory budget:

* an entry is keyed by *what the matrix describes* (e.g. Joseph's projector of a
  64 x 64 image for this geometry), whether it is the transpose, its dtype and its
  device, so two operators that describe the same thing share one matrix, and the
  copy on the GPU or in float64 counts like any other;
* when the entries together hold more than :data:`CACHE_BUDGET_BYTES` bytes, the least
  recently used ones are dropped (and rebuilt if they are needed again);
* :func:`clear_cache` empties it, :func:`cache_info` says what it holds.
"""

from __future__ import annotations

import math
import warnings
from collections import OrderedDict, namedtuple

import torch

from .linear_operator import LinearOperator

__all__ = ["SparseMatrixOperator", "clear_cache", "cache_info"]

#: Memory budget of the matrix cache, in bytes: all entries together, the transposes and
#: every dtype and device counted.  2 GB holds what the largest lesson uses at once:
#: lesson 01 in full mode (256 x 256, 360 angles) needs the projector (340 MB), its
#: transpose (340 MB) and FBP's backprojection (380 MB), plus the smaller ones of the CT
#: slice.  Less would rebuild a matrix (seconds each) on nearly every call.  To change
#: it, assign a new value: ``course_utils.operators.sparse.CACHE_BUDGET_BYTES = 800e6``.
CACHE_BUDGET_BYTES = 2_000_000_000

#: What :func:`cache_info` returns.
CacheInfo = namedtuple("CacheInfo", ["entries", "bytes", "budget_bytes", "hits", "misses"])

_CACHE: OrderedDict = OrderedDict()      # key -> CSR tensor, least recently used first
_counts = {"hits": 0, "misses": 0}


def clear_cache() -> None:
    """Forget every stored sparse matrix (they are rebuilt when next needed).

    Use it to free memory, or before timing how long building an operator takes.
    Lesson 02, section 1 ("The scanner as a matrix") shows the matrices it holds.

    Examples
    --------
    >>> clear_cache()
    >>> cache_info().entries
    0
    """
    _CACHE.clear()
    _counts.update(hits=0, misses=0)


def cache_info() -> CacheInfo:
    """What the sparse-matrix cache holds now.

    Lesson 02, section 1 ("The scanner as a matrix") shows the matrices it holds.

    Returns
    -------
    CacheInfo
        A named tuple: ``entries`` (number of stored matrices, counting every
        transpose, dtype and device separately), ``bytes`` (their memory, in bytes),
        ``budget_bytes`` (:data:`CACHE_BUDGET_BYTES`), ``hits`` and ``misses``
        (look-ups that found a stored matrix, and those that had to build one, since
        the last :func:`clear_cache`).
    """
    return CacheInfo(len(_CACHE), sum(_nbytes(m) for m in _CACHE.values()),
                     CACHE_BUDGET_BYTES, _counts["hits"], _counts["misses"])


def _cached(key, build):
    """The matrix stored under ``key``, or ``build()``, stored (least recent ones go)."""
    if key in _CACHE:
        _CACHE.move_to_end(key)
        _counts["hits"] += 1
        return _CACHE[key]
    _counts["misses"] += 1
    _CACHE[key] = matrix = build()
    total = sum(_nbytes(m) for m in _CACHE.values())
    # The newest entry always stays, even alone over the budget: it is about to be used.
    while total > CACHE_BUDGET_BYTES and len(_CACHE) > 1:
        _, oldest = _CACHE.popitem(last=False)
        total -= _nbytes(oldest)
    return matrix


def _nbytes(matrix: torch.Tensor) -> int:
    """Memory of a CSR matrix: row pointers, column indices and values."""
    parts = (matrix.crow_indices(), matrix.col_indices(), matrix.values())
    return sum(part.numel() * part.element_size() for part in parts)


def csr_matrix(crow_indices, col_indices, values, size) -> torch.Tensor:
    """``torch.sparse_csr_tensor`` without its "beta" notice, which would only distract.

    The notice is silenced here, where the matrix is made, and not for the whole
    program: a learner's own sparse tensors still get it.  Every sparse matrix of the
    package is made by it (lesson 02, section 1, looks at them).

    Parameters
    ----------
    crow_indices : torch.Tensor, shape (n_rows + 1,)
        Where each row starts in ``col_indices`` and ``values``.
    col_indices, values : torch.Tensor, shape (nnz,)
        Column and value of every stored entry, row after row.
    size : tuple of int
        ``(n_rows, n_cols)``.

    Returns
    -------
    torch.Tensor
        Sparse CSR (its invariants are not checked: the callers build valid ones).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow_indices, col_indices, values, size=size,
                                       check_invariants=False)


def _convert(matrix: torch.Tensor, dtype, device) -> torch.Tensor:
    """The CSR matrix with values of another dtype, on another device."""
    values = matrix.values().to(dtype)
    return csr_matrix(matrix.crow_indices().to(device), matrix.col_indices().to(device),
                      values.to(device), matrix.shape)


def _transpose_csr(matrix: torch.Tensor) -> torch.Tensor:
    """The transpose of a CSR matrix, again in CSR form (one stable sort by column)."""
    n_rows, n_cols = matrix.shape
    crow, cols, values = matrix.crow_indices(), matrix.col_indices(), matrix.values()
    rows = torch.repeat_interleave(torch.arange(n_rows, dtype=torch.int32,
                                                device=cols.device), crow.diff())
    order = torch.argsort(cols, stable=True)
    new_crow = torch.zeros(n_cols + 1, dtype=torch.int64, device=cols.device)
    new_crow[1:] = torch.cumsum(torch.bincount(cols, minlength=n_cols), 0)
    return csr_matrix(new_crow.int(), rows[order], values[order], (n_cols, n_rows))


class _Projection(torch.autograd.Function):
    """``A x`` (or ``A^T x``) whose gradient is the product with the other one.

    Because backward calls this same function, second derivatives work too.
    """

    @staticmethod
    def forward(ctx, x, operator, adjoint):
        ctx.operator, ctx.adjoint = operator, adjoint
        return operator._product(x, adjoint)

    @staticmethod
    def backward(ctx, grad):
        return _Projection.apply(grad, ctx.operator, not ctx.adjoint), None, None


class SparseMatrixOperator(LinearOperator):
    """A linear operator stored as a sparse matrix, built on first use and cached.

    Subclasses give two methods:

    ``_build_matrix()``
        The matrix as a float32 sparse CSR tensor on the CPU, of shape
        ``(prod(range_shape), prod(domain_shape))``.
    ``_matrix_key()``
        A hashable description of what the matrix is (for example
        ``("joseph", image_size, geometry)``): operators with the same description
        share one stored matrix, so re-creating an operator costs nothing.

    The transpose, other dtypes and other devices are derived from the built matrix
    when first needed, and all of them live in the one cache of this module (see
    :func:`cache_info`).  Products are batched: the batch becomes the columns of one
    dense matrix, and the result is differentiable (the gradient of :math:`A x` is
    :math:`A^T`, and back).

    Taught in lesson 02, section 1 ("The scanner as a matrix"); the same parameters as
    :class:`~course_utils.operators.linear_operator.LinearOperator`.
    """

    def _build_matrix(self) -> torch.Tensor:
        raise NotImplementedError

    def _matrix_key(self) -> tuple:
        raise NotImplementedError

    def _matrix(self, dtype=torch.float32, transpose=False) -> torch.Tensor:
        """The matrix (or its transpose) with values of ``dtype``, where products run."""
        # Apple GPUs (MPS) have no sparse products yet: compute on the CPU there.
        device = torch.device("cpu") if self.device.type == "mps" else self.device
        return self._stored(transpose, dtype, device)

    def _stored(self, transpose, dtype, device) -> torch.Tensor:
        cpu = torch.device("cpu")

        def build():
            if dtype != torch.float32 or device != cpu:
                return _convert(self._stored(transpose, torch.float32, cpu), dtype, device)
            if transpose:
                return _transpose_csr(self._stored(False, torch.float32, cpu))
            return self._build_matrix()

        return _cached((self._matrix_key(), transpose, dtype, device), build)

    def _product(self, x, adjoint):
        matrix = self._matrix(x.dtype, transpose=adjoint)
        in_shape, out_shape = ((self.range_shape, self.domain_shape) if adjoint
                               else (self.domain_shape, self.range_shape))
        batch = x.shape[: x.dim() - len(in_shape)]
        columns = x.reshape(-1, math.prod(in_shape)).T.to(matrix.device)
        if columns.shape[1] > 1:
            columns = columns.contiguous()
        out = (matrix @ columns).T
        return out.reshape(*batch, *out_shape).to(x.device)

    def _apply(self, x):
        return _Projection.apply(x, self, False)

    def _apply_adjoint(self, y):
        return _Projection.apply(y, self, True)

    def to_matrix(self) -> torch.Tensor:
        """The stored matrix, float32 sparse CSR, ``(prod(range_shape), prod(domain_shape))``."""
        return self._matrix(torch.float32)
