"""The learned primal-dual network (Adler and Öktem, 2018) of lessons 07 and 12.

Learned primal-dual unrolls a primal-dual algorithm (PDHG, lesson 07) for a fixed number
of iterations and replaces its two proximal steps by small convolutional networks, one
per iteration: a **dual block** updates a memory ``h`` of sinograms from the projection
of the current image and the data, a **primal block** updates a memory ``f`` of images
from the backprojection of ``h``.  The operator :math:`A` (and its transpose) sits
between the blocks as a fixed, differentiable layer, so the network always looks at the
data through the physics of the scanner.

Lesson 07 builds the blocks and the loop in its exercises and then trains
:class:`LearnedPrimalDual` (reachable there as ``cu.checks.lesson07.LearnedPrimalDual``,
so that the lesson runs whether or not the exercises are done); lesson 12 loads a trained
one (:func:`cu.load_reconstructors`) and moves it to scanners with other numbers of
angles (:meth:`LearnedPrimalDual.with_operator`).

The operator is **not** part of the network's weights: it is a plain attribute, not a
submodule, so ``state_dict()`` holds only the blocks' weights, and the same weights work
with any operator of the same kind.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..reconstruction.fbp import fbp

__all__ = ["LearnedPrimalDual"]


def _update_block(in_channels, out_channels, channels):
    """conv 3x3 - PReLU - conv 3x3 - PReLU - conv 3x3, the last one starting at zero."""
    layers = nn.Sequential(
        nn.Conv2d(in_channels, channels, 3, padding=1), nn.PReLU(channels),
        nn.Conv2d(channels, channels, 3, padding=1), nn.PReLU(channels),
        nn.Conv2d(channels, out_channels, 3, padding=1))
    nn.init.zeros_(layers[-1].weight)
    nn.init.zeros_(layers[-1].bias)
    return layers


class LearnedPrimalDual(nn.Module):
    """Learned primal-dual (Adler and Öktem, 2018): sinograms (B, 1, n_angles, n_det) ->
    images (B, 1, N, N), with the normalised operator A / ||A|| inside.

    Lesson 07's Exercises 2 to 4 in one module, with the two changes the lesson explains:
    the data are scaled by 1 / ||A||, and the network starts from the FBP image (in every
    primal channel) and a zero dual memory.  Iteration k updates the dual memory from
    ``A f[:, 1:2]`` (the second primal channel) and the primal memory from
    ``A.T h[:, :1]`` (the first dual channel); the reconstruction is ``f[:, :1]``.

    Parameters
    ----------
    A : LinearOperator
        The forward operator, images ``(..., N, N)`` to sinograms ``(..., n_angles,
        n_detectors)``.  It becomes a fixed layer of the network, but not a submodule:
        it is not in ``state_dict()`` and ``.to(device)`` does not move it (build it on
        the device you train on).
    n_iter, channels, n_primal, n_dual : int
        Unrolled iterations, hidden channels of every block, memory channels.
    fbp_filter, fbp_cutoff
        The FBP of the start, as for :func:`course_utils.fbp`.

    Attributes
    ----------
    scale : float
        ``1 / ||A||`` (:meth:`LinearOperator.norm`), by which the data and the operator
        are scaled inside.
    dual_blocks, primal_blocks : torch.nn.ModuleList
        The ``n_iter`` learned updates of each kind, all of the network's weights.

    Set ``checkpointing = True`` to recompute every iteration in the backward pass
    (:func:`torch.utils.checkpoint.checkpoint`) instead of storing its activations.

    Taught in lesson 07 (sections 2 to 4: the whole network, training, the memory of
    unrolling); lesson 12 loads a trained one with :func:`cu.load_reconstructors`.

    References
    ----------
    J. Adler and O. Öktem (2018). Learned primal-dual reconstruction. IEEE Transactions
    on Medical Imaging 37(6), 1322-1332.
    """

    def __init__(self, A, n_iter=10, channels=32, n_primal=5, n_dual=5,
                 fbp_filter="ram-lak", fbp_cutoff=1.0):
        super().__init__()
        if n_primal < 2:
            raise ValueError(f"n_primal must be at least 2 (the dual step projects the "
                             f"second primal channel), got {n_primal}")
        self.A, self.n_primal, self.n_dual = A, n_primal, n_dual
        self.n_iter, self.channels = n_iter, channels
        self.scale = 1.0 / float(A.norm())
        self.fbp_filter, self.fbp_cutoff = fbp_filter, fbp_cutoff
        self.dual_blocks = nn.ModuleList(_update_block(n_dual + 2, n_dual, channels)
                                         for _ in range(n_iter))
        self.primal_blocks = nn.ModuleList(_update_block(n_primal + 1, n_primal, channels)
                                           for _ in range(n_iter))
        self.checkpointing = False

    def start(self, y):
        """The scaled data g and the starting memories f (FBP) and h (zero)."""
        f = fbp(self.A, y, self.fbp_filter, self.fbp_cutoff)
        f = f.repeat(1, self.n_primal, 1, 1)
        h = y.new_zeros(y.shape[0], self.n_dual, *y.shape[2:])
        return y * self.scale, f, h

    def iteration(self, k, f, h, g):
        """One dual and one primal update, with the scaled operator."""
        Af = self.A(f[:, 1:2]) * self.scale
        h = h + self.dual_blocks[k](torch.cat([h, Af, g], 1))
        ATh = self.A.T(h[:, :1]) * self.scale
        f = f + self.primal_blocks[k](torch.cat([f, ATh], 1))
        return f, h

    def forward(self, y, return_iterates=False):
        """The reconstruction f[:, :1]; with ``return_iterates``, every (f[:, :1], h[:, :1])."""
        g, f, h = self.start(y)
        if self.checkpointing:
            f.requires_grad_()   # re-entrant checkpointing needs an input that needs a gradient
        iterates = [(f[:, :1], h[:, :1])]
        for k in range(len(self.dual_blocks)):
            if self.checkpointing and torch.is_grad_enabled():
                f, h = checkpoint(self.iteration, k, f, h, g, use_reentrant=True)
            else:
                f, h = self.iteration(k, f, h, g)
            iterates.append((f[:, :1], h[:, :1]))
        return iterates if return_iterates else f[:, :1]

    def with_operator(self, A) -> "LearnedPrimalDual":
        """The same trained network on another operator, e.g. a scanner with other angles.

        A learned primal-dual network calls its operator in every iteration, so it can
        read data of any scanner for which an operator exists: the blocks are
        convolutions, which work on sinograms with any number of angles.  Whether the
        weights, trained on one scanner, still do well on another is the question that
        lesson 12 asks (lesson 11 asks it for a U-Net and for plug-and-play).

        Parameters
        ----------
        A : LinearOperator
            The new operator, e.g. ``cu.RadonTransform(64, cu.dival_geometry(64, 15))``
            for the same 64 x 64 images seen from 15 angles; built on the device of the
            network.  The new network scales by ``1 / ||A||`` of the new operator (the
            blocks were trained on the *normalised* operator).

        Returns
        -------
        LearnedPrimalDual
            A new network with a copy of this one's weights (changing one does not
            change the other), the same sizes, FBP start (filter and cut-off),
            checkpointing, device, train or eval mode and frozen or trainable
            parameters.

        Raises
        ------
        TypeError
            If ``A`` is not an operator (callable, with a transpose ``A.T`` and a
            ``norm()``).

        Taught in lesson 12 (a network trained at 30 angles meets 15 and 60 angles).
        """
        if not (callable(A) and hasattr(A, "T") and hasattr(A, "norm")):
            raise TypeError(f"A must be a linear operator (callable, with A.T and "
                            f"A.norm()), e.g. a cu.RadonTransform, got {type(A).__name__}")
        new = LearnedPrimalDual(A, self.n_iter, self.channels, self.n_primal, self.n_dual,
                                self.fbp_filter, self.fbp_cutoff)
        first = next(self.parameters(), None)
        if first is not None:
            new.to(device=first.device, dtype=first.dtype)
        new.load_state_dict(self.state_dict())          # copies the values
        for mine, theirs in zip(self.parameters(), new.parameters()):
            theirs.requires_grad_(mine.requires_grad)
        new.checkpointing = self.checkpointing
        return new.train(self.training)
