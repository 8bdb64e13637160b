"""A linear operator that reads like the maths: ``A(x)``, ``A.T(y)``, ``A.norm()``.

Every reconstruction method in the course needs the same few things from the forward
model :math:`A`: apply it, apply its adjoint :math:`A^T`, know its norm
:math:`\\|A\\|_2` (to choose step sizes) and, for small problems, see it as a matrix.
:class:`LinearOperator` provides exactly these; subclasses only say how to compute
:math:`A x` and :math:`A^T y`.

Shapes: an operator maps tensors of shape ``(..., *domain_shape)`` to tensors of shape
``(..., *range_shape)``.  Leading dimensions are batch dimensions.

Lesson 01 introduces ``A`` and ``A.T`` (section 8, "The bridge to lesson 02"); lesson 02
uses the rest (section 1: the matrix and the adjoint test; section 3: ``A.norm()`` for
step sizes).
"""

from __future__ import annotations

import numpy as np
import torch

from ..arrays import as_tensor, check_floating, check_int, check_number, numpy_compatible

__all__ = ["LinearOperator", "MatrixOperator"]


class LinearOperator:
    """Base class of linear maps between tensors of fixed trailing shapes.

    Taught in lesson 01, section 8 (the operator ``A``, its adjoint ``A.T`` and
    autograd) and lesson 02, section 1 (the system matrix and the adjoint test).

    Parameters
    ----------
    domain_shape : tuple of int
        Trailing shape of an input, e.g. ``(H, W)`` for images.
    range_shape : tuple of int
        Trailing shape of an output, e.g. ``(n_angles, n_detectors)`` for sinograms.
    device : str or torch.device
        Where the operator computes; inputs must live there too.
    domain_name, range_name : str
        Words used in error messages ("image", "sinogram").

    Notes
    -----
    Subclasses implement ``_apply(x)`` and ``_apply_adjoint(y)`` for already
    validated tensors with any number of leading batch dimensions, and ``to(device)``
    if they can move.
    """

    def __init__(self, domain_shape, range_shape, device="cpu",
                 domain_name="input", range_name="output"):
        self.domain_shape = tuple(int(n) for n in domain_shape)
        self.range_shape = tuple(int(n) for n in range_shape)
        self.device = torch.device(device)
        self.domain_name = domain_name
        self.range_name = range_name
        self._adjoint = None
        self._norms = {}          # (n_iter, rtol, seed) -> norm estimate

    # --- what subclasses provide -------------------------------------------------
    def _apply(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _apply_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    # --- the public interface ------------------------------------------------------
    @numpy_compatible
    def __call__(self, x):
        """Apply the operator: ``(..., *domain_shape) -> (..., *range_shape)``.

        NumPy arrays are accepted and give NumPy arrays back (NumPy arrays live on the
        CPU: give an operator on a GPU tensors on that GPU).
        """
        return self._apply(self.check_domain(x))

    @property
    def T(self) -> "LinearOperator":
        """The adjoint operator :math:`A^T` (``A.T.T is A``)."""
        if self._adjoint is None:
            self._adjoint = _Adjoint(self)
        return self._adjoint

    def norm(self, n_iter: int = 100, rtol: float = 1e-6, seed: int = 0) -> float:
        """Operator 2-norm :math:`\\|A\\|_2 = \\sqrt{\\lambda_{max}(A^T A)}` by power iteration.

        The result is cached: a later call with the same arguments returns it at once.
        Taught in lesson 02, section 3.1 (Landweber's step size :math:`1/\\|A\\|_2^2`).

        Parameters
        ----------
        n_iter : int
            Maximum number of power iterations.
        rtol : float
            Stop when the estimate changes by less than this relative amount.
        seed : int
            Seed of the random start vector.

        Returns
        -------
        float
            An estimate from below that approaches :math:`\\|A\\|_2` as ``n_iter``
            grows.
        """
        key = (check_int(n_iter, "n_iter"), check_number(rtol, "rtol", positive=False),
               check_int(seed, "seed", minimum=0))
        if key not in self._norms:
            gen = torch.Generator().manual_seed(seed)
            # float32 is plenty for a step size, and avoids a float64 copy of the matrix
            x = torch.rand(self.domain_shape, generator=gen).to(self.device)
            estimate = 0.0
            for _ in range(n_iter):
                x = x / torch.linalg.vector_norm(x)
                ata_x = self._apply_adjoint(self._apply(x))
                new = float(torch.linalg.vector_norm(ata_x)) ** 0.5
                x = ata_x
                if abs(new - estimate) <= rtol * new:
                    estimate = new
                    break
                estimate = new
            self._norms[key] = estimate
        return self._norms[key]

    def check_adjoint(self, dtype=torch.float64, n_trials: int = 3, seed: int = 0) -> float:
        """Dot-product test of the adjoint: the worst relative error over random pairs.

        Taught in lesson 01, section 8 and lesson 02, section 1 (the adjoint test).

        .. math:: \\frac{|\\langle A x, y\\rangle - \\langle x, A^T y\\rangle|}
                        {\\|A x\\|\\,\\|y\\|}

        Returns
        -------
        float
            About 1e-7 in float32 and 1e-15 in float64 for an exact adjoint.
        """
        gen = torch.Generator().manual_seed(seed)
        worst = 0.0
        for _ in range(n_trials):
            x = torch.rand(self.domain_shape, generator=gen, dtype=dtype).to(self.device)
            y = torch.rand(self.range_shape, generator=gen, dtype=dtype).to(self.device)
            ax = self._apply(x)
            lhs = torch.sum(ax * y, dtype=torch.float64)
            rhs = torch.sum(x * self._apply_adjoint(y), dtype=torch.float64)
            scale = torch.linalg.vector_norm(ax.double()) * torch.linalg.vector_norm(y.double())
            worst = max(worst, float(abs(lhs - rhs) / scale))
        return worst

    def to_matrix(self) -> torch.Tensor:
        """The explicit matrix of the operator, ``(prod(range_shape), prod(domain_shape))``.

        The default builds it column by column, ``A e_j``, as a sparse COO tensor; it is
        meant for small sizes.  Subclasses with a cheaper way override it.  Taught in
        lesson 02, section 1 ("The scanner as a matrix").
        """
        n = int(np.prod(self.domain_shape))
        columns = []
        for start in range(0, n, 256):
            stop = min(start + 256, n)
            basis = torch.zeros(stop - start, n, dtype=torch.float64, device=self.device)
            basis[torch.arange(stop - start), torch.arange(start, stop)] = 1.0
            out = self._apply(basis.reshape(-1, *self.domain_shape))
            columns.append(out.reshape(stop - start, -1))
        return torch.cat(columns).T.to_sparse()

    def to(self, device) -> "LinearOperator":
        """Not every operator can move; subclasses that can override this."""
        raise NotImplementedError(f"{type(self).__name__} cannot be moved to another device")

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.domain_name} {self.domain_shape} -> "
                f"{self.range_name} {self.range_shape}, device={self.device})")

    # --- input checks ----------------------------------------------------------------
    def check_domain(self, x, name: str | None = None, *, caller: str | None = None):
        """Check that ``x`` is an input of the operator, ``(..., *domain_shape)``; return it.

        A clear ``TypeError`` for anything but a float32 or float64 tensor or NumPy array
        (which becomes a tensor), a ``ValueError`` for a wrong trailing shape or device.
        ``A(x)`` calls it (lesson 01, section 8).

        Parameters
        ----------
        x : torch.Tensor or numpy.ndarray, shape (..., *domain_shape)
        name : str, optional
            What ``x`` is called in the messages (default ``"the "`` and the
            ``domain_name``, e.g. ``"the image"``).
        caller : str, optional
            Who checks, in the messages (default the operator's class name).

        Returns
        -------
        torch.Tensor
            ``x`` itself (a NumPy array as a tensor sharing its memory).
        """
        return self._check(x, self.domain_shape, name or f"the {self.domain_name}", caller)

    def check_range(self, y, name: str | None = None, *, caller: str | None = None):
        """Check that ``y`` is an output of the operator, ``(..., *range_shape)``; return it.

        The same checks as :meth:`check_domain`, for the data side (``A.T(y)`` checks
        ``y`` this way); algorithms check their data ``y`` with it once, before their
        loop (lesson 02, section 3).
        """
        return self._check(y, self.range_shape, name or f"the {self.range_name}", caller)

    def _check(self, x, trailing_shape, what: str, caller) -> torch.Tensor:
        caller = caller or type(self).__name__
        if isinstance(x, np.ndarray):
            x = as_tensor(x)
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{caller} expects {what} as a torch.Tensor or NumPy array, "
                            f"got {type(x).__name__}")
        check_floating(x, what)
        k = len(trailing_shape)
        if x.dim() < k or tuple(x.shape[x.dim() - k:]) != trailing_shape:
            raise ValueError(f"{caller} expects {what} with shape (..., "
                             f"{', '.join(map(str, trailing_shape))}), got {tuple(x.shape)}")
        if x.device != self.device and not (
            x.device.type == self.device.type == "cuda" and self.device.index is None
        ):
            raise ValueError(
                f"{what} is on {x.device} but the operator is on {self.device}; "
                f"move one of them, e.g. x.to('{self.device}') or A.to('{x.device}')"
            )
        return x


class _Adjoint(LinearOperator):
    """The adjoint :math:`A^T` of an operator; its own adjoint is the operator itself."""

    def __init__(self, parent: LinearOperator):
        super().__init__(parent.range_shape, parent.domain_shape, parent.device,
                         domain_name=parent.range_name, range_name=parent.domain_name)
        self._parent = parent
        self._adjoint = parent

    def _apply(self, y):
        return self._parent._apply_adjoint(y)

    def _apply_adjoint(self, x):
        return self._parent._apply(x)

    def norm(self, *args, **kwargs) -> float:
        """:math:`\\|A^T\\|_2 = \\|A\\|_2` (see :meth:`LinearOperator.norm`)."""
        return self._parent.norm(*args, **kwargs)

    def to_matrix(self) -> torch.Tensor:
        """The transpose of the operator's matrix (see :meth:`LinearOperator.to_matrix`)."""
        return self._parent.to_matrix().t()

    def to(self, device) -> "LinearOperator":
        """The adjoint of the operator moved to ``device``: ``A.T.to(d)`` is ``A.to(d).T``."""
        return self._parent.to(device).T

    def __repr__(self) -> str:
        return f"{self._parent!r}.T"


class MatrixOperator(LinearOperator):
    """A linear operator given by an explicit (dense or sparse) matrix.

    Useful for small problems, e.g. a system matrix built by hand from point responses
    (lesson 02, section 1, Exercise 1).

    Parameters
    ----------
    matrix : torch.Tensor or numpy.ndarray, shape (prod(range_shape), prod(domain_shape))
        Dense or sparse (COO or CSR) matrix.
    domain_shape, range_shape : tuple of int
        How a flat input / output vector is laid out, e.g. ``(32, 32)`` and
        ``(n_angles, n_detectors)``.
    """

    def __init__(self, matrix, domain_shape, range_shape,
                 domain_name="image", range_name="sinogram"):
        matrix = as_tensor(matrix, "matrix")
        check_floating(matrix, "matrix")
        expected = (int(np.prod(range_shape)), int(np.prod(domain_shape)))
        if tuple(matrix.shape) != expected:
            raise ValueError(
                f"matrix must have shape {expected} for domain {tuple(domain_shape)} and "
                f"range {tuple(range_shape)}, got {tuple(matrix.shape)}"
            )
        super().__init__(domain_shape, range_shape, matrix.device, domain_name, range_name)
        self.matrix = matrix

    def _apply(self, x):
        return _batched_matmul(self.matrix, x, len(self.domain_shape), self.range_shape)

    def _apply_adjoint(self, y):
        return _batched_matmul(self.matrix.t(), y, len(self.range_shape), self.domain_shape)

    def to_matrix(self) -> torch.Tensor:
        """The matrix given at creation (not a copy)."""
        return self.matrix

    def to(self, device) -> "MatrixOperator":
        """The same operator with its matrix on ``device`` (a new object)."""
        return MatrixOperator(self.matrix.to(device), self.domain_shape, self.range_shape,
                              self.domain_name, self.range_name)


def _batched_matmul(matrix, x, n_trailing, out_shape):
    batch = x.shape[: x.dim() - n_trailing]
    flat = x.reshape(-1, int(np.prod(x.shape[x.dim() - n_trailing:]))).T
    out = (matrix.to(x.dtype) @ flat).T
    return out.reshape(*batch, *out_shape)
