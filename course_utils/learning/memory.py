"""The memory of learning in 3D: a meter that works on any device, and a network to measure.

An unrolled network (learned gradient descent here, learned primal-dual in lesson 07)
applies a small CNN once per iteration.  To train it, backpropagation needs what every
layer computed in the forward pass, so the memory of one training step grows with the
number of iterations times the size of one iteration's activations.  In 2D that is
harmless; in 3D a single activation of ``width=16`` channels on a 256³ volume already
takes 256³ x 16 x 4 bytes = 1.07 GB in float32, and a few convolutions per iteration
times a few iterations no longer fit on a GPU.

**Measuring it.**  :class:`MemoryTracker` counts the bytes of every tensor that PyTorch
creates inside a ``with`` block, and subtracts them when the tensor is freed; its
``peak`` is the most memory the block held at once.  It works on the CPU too, where
PyTorch keeps no statistics of its own (on a GPU, ``torch.cuda.max_memory_allocated``
does).  :func:`peak_memory` measures one call, e.g. one training step.

**Gradient checkpointing** (Chen et al., 2016) trades time for memory: keep only the
input of every iteration in the forward pass, throw its activations away, and recompute
them, one iteration at a time, in the backward pass.  Memory then grows with the
iterates alone (one volume per iteration) plus the activations of a single iteration;
the price is a second forward pass of every iteration in each training step.
:class:`LearnedGradientDescent` does it with ``checkpointing=True``.

**Going further.**  LIRE (Moriakov, Sonke and Teuwen) builds its iterations from
invertible (reversible) blocks: the input of an iteration can be computed back from its
output, so the backward pass recomputes the iterates as well as the activations, and
the memory no longer grows with the number of iterations.  It also computes the
convolutions patch by patch, so that only one part of a volume's activations exists at
a time.

Taught in lesson 13, section 5 ("learning in 3D and its memory").

References
----------
T. Chen, B. Xu, C. Zhang and C. Guestrin (2016). Training deep nets with sublinear
memory cost. arXiv:1604.06174.

N. Moriakov, J.-J. Sonke and J. Teuwen. LIRE: Learned invertible reconstruction for
cone beam CT.
"""

from __future__ import annotations

import threading
import weakref

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.checkpoint import checkpoint

from ..arrays import check_int, check_number
from ..operators.linear_operator import LinearOperator

__all__ = ["MemoryTracker", "peak_memory", "LearnedGradientDescent"]


# --- measuring memory ------------------------------------------------------------------

def _tensors(values):
    """The tensors among ``values``, also inside lists and tuples (as in ``torch.cat``)."""
    for value in values:
        if isinstance(value, torch.Tensor):
            yield value
        elif isinstance(value, (list, tuple)):
            yield from _tensors(value)


def _storage(tensor):
    """The memory block (storage) behind a tensor, or None if it has none to count.

    Sparse tensors are skipped (their values and indices are tensors of their own,
    counted when they were made), and so are "meta" tensors, which hold no data.
    """
    if tensor.layout != torch.strided or tensor.is_meta:
        return None
    return tensor.untyped_storage()


class _CountingMode(TorchDispatchMode):
    """Sees every operation PyTorch runs (forward, backward, factory functions such as
    ``torch.zeros``) and hands each output to the tracker."""

    def __init__(self, tracker):
        super().__init__()
        self.tracker = tracker

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        inputs = {id(s) for s in map(_storage, _tensors((*args, *kwargs.values())))}
        out = func(*args, **kwargs)
        for storage in map(_storage, _tensors([out])):
            if storage is not None:
                self.tracker._count(storage, inputs)
        return out


class MemoryTracker:
    """Measures the tensor memory that PyTorch allocates inside a ``with`` block.

    Use as ``with MemoryTracker() as memory: ...``, then read ``memory.peak``.  Works
    on every device, the CPU included, where PyTorch has no memory statistics.

    **What it counts**: every block of memory (a *storage*) that a PyTorch operation
    creates inside the block, from the moment it is created until it is freed: the
    activations of the forward pass, the tensors autograd saves for the backward pass,
    the gradients, temporaries, and tensors made with ``torch.zeros`` and friends.
    Views (``x[:, :1]``, ``x.reshape(...)``) share the storage of their tensor and
    cost nothing; in-place operations (``x.add_(1)``) reuse theirs.

    **What it does not count**: tensors that existed before the block (a network's
    parameters, the input batch, an operator's precomputed tables; also when an
    operation inside writes into them), scratch memory that a kernel allocates for
    itself, memory outside PyTorch (NumPy arrays), and what the allocator of a GPU
    keeps on top: it rounds every block up (to 512 bytes on CUDA) and keeps freed
    blocks cached for reuse.  Build and warm up everything you do not want to measure
    (the operator, the network, the data) before the block.

    Taught in lesson 13, section 5 ("learning in 3D and its memory").

    Attributes
    ----------
    peak : int
        The most bytes held at once by tensors created in the block (0 before it).
    current : int
        Bytes created in the block and still held when it ended (e.g. the gradients of
        the parameters after ``loss.backward()``); while the block runs, the bytes held
        now.

    Examples
    --------
    >>> with MemoryTracker() as memory:
    ...     a = torch.zeros(1000, 1000)       # 4 MB in float32
    ...     b = a + 1                         # 4 MB more
    ...     del a, b
    >>> memory.peak, memory.current
    (8000000, 0)

    Notes
    -----
    It watches every operation with a
    :class:`torch.utils._python_dispatch.TorchDispatchMode` (a PyTorch tool whose name
    starts with an underscore: it may change between PyTorch versions) and follows each
    new storage with :class:`weakref.finalize` to see it freed.  On the CPU the backward
    pass runs in the calling thread and is counted.  On a GPU, autograd runs it in a
    thread of its own, to which PyTorch hands its thread-local state, this watcher
    included; this has not been tested on a GPU here, so there compare with PyTorch's
    own counter::

        torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
        start = torch.cuda.memory_allocated()
        ...                                   # the step
        cuda_peak = torch.cuda.max_memory_allocated() - start

    which should come out a little above ``peak`` (rounding and scratch memory).
    Watching every operation from Python slows small operations down, and the first
    measurement of a session takes a few seconds more: PyTorch then loads its compiler
    (``torch._dynamo``), which it keeps away from such watchers.
    """

    def __init__(self):
        self.peak = 0
        self.current = 0
        self._held = {}         # id(storage) -> (bytes, finalizer)
        # Tensors may be freed by another thread (autograd's on a GPU); the finalizer
        # can even run in the middle of _count, when Python collects garbage, hence an
        # RLock rather than a Lock.
        self._lock = threading.RLock()
        self._mode = None

    @property
    def peak_mib(self) -> float:
        """``peak`` in MiB (2**20 bytes)."""
        return self.peak / 2**20

    def __enter__(self) -> "MemoryTracker":
        if self._mode is not None:
            raise RuntimeError("this MemoryTracker is already measuring; use a new one")
        self.peak = self.current = 0
        self._mode = _CountingMode(self)
        self._mode.__enter__()
        return self

    def __exit__(self, *error):
        self._mode.__exit__(*error)
        self._mode = None
        with self._lock:
            # Stop following the storages: `current` keeps its value at the end.
            for _, finalizer in self._held.values():
                finalizer.detach()
            self._held.clear()
        return False            # an error inside the block is raised as usual

    def _count(self, storage, inputs):
        """Add a storage made by an operation, unless it is an input's (view, in place)."""
        key = id(storage)       # the same storage object for all tensors that share it
        with self._lock:
            if key in self._held:
                # ours already; an in-place resize (out=) may have changed its size
                size, finalizer = self._held[key]
                self.current += storage.nbytes() - size
                self._held[key] = (storage.nbytes(), finalizer)
            elif key in inputs:
                return          # memory that existed before the block
            else:
                finalizer = weakref.finalize(storage, self._release, key)
                self._held[key] = (storage.nbytes(), finalizer)
                self.current += storage.nbytes()
            self.peak = max(self.peak, self.current)

    def _release(self, key):
        with self._lock:
            if key in self._held:
                size, _ = self._held.pop(key)
                self.current -= size

    def __repr__(self):
        return (f"MemoryTracker(peak={self.peak / 1e6:.2f} MB, "
                f"current={self.current / 1e6:.2f} MB)")


def peak_memory(fn, *args, **kwargs) -> int:
    """Peak tensor memory, in bytes, of the call ``fn(*args, **kwargs)``; any device.

    The call runs under a :class:`MemoryTracker` (see there what is counted); its
    result is thrown away.  For one training step, pass a function that does the
    forward and the backward pass::

        peak_memory(lambda: F.mse_loss(model(y), x).backward())

    Taught in lesson 13, section 5 ("learning in 3D and its memory").

    Parameters
    ----------
    fn : callable
    *args, **kwargs
        Passed on to ``fn``; they exist before the call, so they are not counted.

    Returns
    -------
    int
        The most bytes held at once by tensors created during the call.

    Examples
    --------
    >>> peak_memory(torch.ones, 1000, 1000)       # 10**6 float32 values
    4000000
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable (e.g. a lambda), got {type(fn).__name__}")
    with MemoryTracker() as memory:
        fn(*args, **kwargs)
    return memory.peak


# --- a network to measure ------------------------------------------------------------

def _update_block(n_dims, width):
    """conv 3x3(x3) - PReLU - conv - PReLU - conv to 1 channel, the last one at zero."""
    conv = nn.Conv2d if n_dims == 2 else nn.Conv3d
    layers = nn.Sequential(
        conv(2, width, 3, padding=1), nn.PReLU(width),
        conv(width, width, 3, padding=1), nn.PReLU(width),
        conv(width, 1, 3, padding=1))
    # so that an untrained network changes nothing: it returns its start x0
    nn.init.zeros_(layers[-1].weight)
    nn.init.zeros_(layers[-1].bias)
    return layers


class LearnedGradientDescent(nn.Module):
    """Learned gradient descent for any linear operator, in 2D or in 3D.

    .. math:: x_{k+1} = x_k + \\Lambda_k\\big(x_k,\\; s\\, A^T(A x_k - y)\\big),
              \\qquad k = 0, \\dots, n_{iter} - 1

    Each :math:`\\Lambda_k` is a small CNN of its own (three 3 x 3 convolutions, 3 x 3
    x 3 for volumes, with PReLU between them) that sees the iterate and the gradient of
    the data term :math:`\\tfrac12\\|A x - y\\|^2`, scaled by the Landweber step
    :math:`s = 1/\\|A\\|^2` (lesson 02) so that it has the size of an image.  Its last
    convolution starts at zero, so an untrained network returns its start ``x0``.

    Taught in lesson 13, section 5 ("learning in 3D and its memory").

    Parameters
    ----------
    A : LinearOperator
        The forward operator: images ``(H, W)`` to sinograms (e.g.
        :class:`~course_utils.operators.radon.RadonTransform`) or volumes ``(D, H, W)``
        to projections (e.g. :class:`~course_utils.operators.cone_beam.ConeBeamTransform`);
        the number of dimensions of ``A.domain_shape`` chooses 2D or 3D convolutions.
        It is a fixed layer of the network but not a submodule: it is not in
        ``state_dict()`` and ``.to(device)`` does not move it (build it on the device
        you train on).
    n_iter : int
        Unrolled iterations, each with its own CNN.
    width : int
        Channels of the hidden convolutions.
    checkpointing : bool
        Recompute every iteration in the backward pass instead of keeping its
        activations (:func:`torch.utils.checkpoint.checkpoint`): the memory of a
        training step then grows by one iterate per iteration instead of by all of an
        iteration's activations.  An attribute: it can be switched at any time.
    step : float, optional
        The scale :math:`s` of the gradient; default ``1 / A.norm()**2``.  ``A.norm()``
        takes up to 100 products with ``A`` and ``A.T`` the first time (then the
        operator remembers it): pass a number to skip it for a large operator.

    Attributes
    ----------
    blocks : torch.nn.ModuleList
        The ``n_iter`` CNNs, all of the network's weights.

    Examples
    --------
    >>> import course_utils as cu
    >>> A = cu.RadonTransform(32, cu.ParallelBeam(n_angles=20, n_detectors=45))
    >>> net = LearnedGradientDescent(A, n_iter=4, width=16, checkpointing=True)
    >>> y = A(torch.rand(2, 1, 32, 32))                  # data (2, 1, 20, 45)
    >>> net(y).shape                                     # start from zero
    torch.Size([2, 1, 32, 32])

    For cone-beam CT, start from the FDK reconstruction: ``net(y, cu.fdk(A, y))``.

    Notes
    -----
    Memory of one training step (forward and backward), measured with
    :func:`peak_memory` on the CPU for one 16³ volume (16 KB in float32), 8 views of
    16 x 16 pixels and ``width=4``: each iteration adds about 0.31 MB (19 volumes: the
    activations of the CNN, the gradient, the projections) without checkpointing, and
    about 22 KB (little more than its iterate) with it; at ``n_iter=4`` the peak is
    1.33 MB against 0.51 MB.  The activations grow with ``width`` and with the number
    of voxels, the iterates only with the voxels.
    """

    def __init__(self, A, n_iter=4, width=16, *, checkpointing=False, step=None):
        super().__init__()
        if not isinstance(A, LinearOperator):
            raise TypeError(f"A must be a LinearOperator (e.g. cu.RadonTransform or "
                            f"cu.ConeBeamTransform), got {type(A).__name__}")
        n_dims = len(A.domain_shape)
        if n_dims not in (2, 3):
            raise ValueError(f"A must map images (H, W) or volumes (D, H, W), but its "
                             f"domain_shape is {A.domain_shape}")
        self.A = A
        self.n_iter = check_int(n_iter, "n_iter")
        self.width = check_int(width, "width")
        self.checkpointing = bool(checkpointing)
        self.step = (1.0 / A.norm() ** 2 if step is None
                     else check_number(step, "step", positive=True))
        self.blocks = nn.ModuleList(_update_block(n_dims, self.width)
                                    for _ in range(self.n_iter))

    def iteration(self, block, x, y):
        """One step, ``x + block([x, s A^T(A x - y)])``; x is ``(B, 1, *domain_shape)``."""
        gradient = self.A.T(self.A(x) - y) * self.step
        return x + block(torch.cat([x, gradient], dim=1))

    def forward(self, y, x0=None):
        """Reconstruct from data ``y``, starting at ``x0`` (default: zero).

        Parameters
        ----------
        y : torch.Tensor, shape (B, 1, *A.range_shape)
            The data, e.g. ``(B, 1, n_angles, n_rows, n_cols)`` for cone-beam
            projections, on the operator's device, in the dtype of the network.
        x0 : torch.Tensor, shape (B, 1, *A.domain_shape), optional
            Where to start, e.g. an FBP or FDK reconstruction.

        Returns
        -------
        torch.Tensor, shape (B, 1, *A.domain_shape)
            The last iterate.
        """
        y = self._check(y, "y", self.A.range_shape, self.A.check_range)
        if x0 is None:
            x = y.new_zeros(y.shape[0], 1, *self.A.domain_shape)
        else:
            x = self._check(x0, "x0", self.A.domain_shape, self.A.check_domain)
            if x.shape[0] != y.shape[0]:
                raise ValueError(f"x0 and y must have the same batch size, got "
                                 f"{x.shape[0]} and {y.shape[0]}")
        for block in self.blocks:
            if self.checkpointing and torch.is_grad_enabled():
                x = checkpoint(self.iteration, block, x, y, use_reentrant=False)
            else:
                x = self.iteration(block, x, y)
        return x

    def _check(self, t, name, trailing_shape, operator_check):
        """``t`` with shape ``(B, 1, *trailing_shape)``; ``operator_check`` does the rest
        (dtype, device): ``A.check_range`` or ``A.check_domain``."""
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"LearnedGradientDescent expects {name} as a torch.Tensor, "
                            f"got {type(t).__name__}")
        expected = f"(B, 1, {', '.join(map(str, trailing_shape))})"
        if t.dim() != 2 + len(trailing_shape) or t.shape[1:] != (1, *trailing_shape):
            raise ValueError(f"LearnedGradientDescent expects {name} with shape "
                             f"{expected}, got {tuple(t.shape)}")
        return operator_check(t, name, caller="LearnedGradientDescent")

    def extra_repr(self) -> str:
        return (f"A={self.A!r}, n_iter={self.n_iter}, width={self.width}, "
                f"checkpointing={self.checkpointing}, step={self.step:.4g}")
