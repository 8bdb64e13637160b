"""Checks for the exercises of lesson 07: learned primal-dual reconstruction.

* ``lpd_dual_prox``: the learner's ``dual_prox(q, y, sigma)``, the proximal operator of
  :math:`\\sigma F^*` for :math:`F(z) = \\tfrac12\\|z - y\\|^2`, derived in the lesson:
  :math:`(q - \\sigma y) / (1 + \\sigma)`; tried with two step sizes other than 1 (so that
  a missing or misplaced :math:`\\sigma` shows), and the usual slips are named: the prox
  of :math:`F` instead of :math:`F^*`, :math:`\\sigma` on the wrong term, no division.
* ``lpd_dual_block``: the learner's ``DualBlock(n_dual, channels)``, the update of the
  dual memory :math:`h \\leftarrow h + \\Gamma_\\theta([h, A f, g])`; built small,
  its layers are compared with a reference forward pass through the learner's own
  layers (so any weights work), and the usual mistakes are named: no residual, wrong
  sign, inputs concatenated in another order, no PReLU, a last layer that does not
  start at zero.
* ``lpd_primal_block``: the same for ``PrimalBlock(n_primal, channels)``,
  :math:`f \\leftarrow f + \\Lambda_\\theta([f, A^T h])`.
* ``lpd_unrolled``: the learner's loop
  ``learned_primal_dual(g, A, dual_blocks, primal_blocks, f, h)`` run with made-up blocks
  that record how they are called, on a small square operator (so that ``A.T`` in place
  of ``A`` still runs and can be named).  As in Adler and Öktem (2018), the dual step
  projects the *second* primal channel ``f[:, 1:2]`` (the learned counterpart of PDHG's
  extrapolated image) and the primal step backprojects the first dual channel.

The module also gives :class:`LearnedPrimalDual`, the reference network that lesson 07
trains after the exercises (so that the lesson runs whether or not they are done, and
the student copy shows no answer), as ``cu.checks.lesson07.LearnedPrimalDual``; it lives
in :mod:`course_utils.learning.primal_dual` (also ``cu.LearnedPrimalDual``), because
lesson 12 loads a trained one.

Every check runs in well under a second and leaves the global random state as it was.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..learning.primal_dual import LearnedPrimalDual  # noqa: F401  (lesson 07 uses this name)
from ..operators.linear_operator import MatrixOperator
from ._feedback import CheckFailed, compare_arrays, exercise_check, expect

__all__ = ["lpd_dual_prox", "lpd_dual_block", "lpd_primal_block", "lpd_unrolled"]


def _close(got, expected, tol=1e-5) -> bool:
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        return False
    scale = max(float(expected.detach().abs().max()), 1e-6)
    return bool(torch.allclose(got.detach().double(), expected.detach().double(),
                               rtol=tol, atol=tol * scale))


# --- Exercise 1: the proximal step of the dual variable ------------------------------------

@exercise_check("the proximal step of the dual variable")
def lpd_dual_prox(my_dual_prox):
    """Check ``dual_prox(q, y, sigma)`` = prox of σF* for F(z) = ½||z - y||²."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(11)
        q = torch.randn(2, 1, 5, 7, dtype=torch.float64)
        y = torch.randn(2, 1, 5, 7, dtype=torch.float64)
    tried = []
    for sigma in (0.5, 2.7):
        q_in, y_in = q.clone(), y.clone()
        got = my_dual_prox(q_in, y_in, sigma)
        what = f"dual_prox(q, y, sigma={sigma})"
        expect(got is not None, f"{what} returned None — did you forget a `return`?")
        expect(torch.equal(q_in, q) and torch.equal(y_in, y),
               f"{what} changed its input q or y in place; compute a new tensor")
        expected = (q - sigma * y) / (1 + sigma)
        if isinstance(got, torch.Tensor) and got.shape == expected.shape:
            got_ = got.detach().double()
            wrong = [
                ((q + sigma * y) / (1 + sigma),
                 "this is the prox of σF, not of its conjugate σF*: the sign of the σy "
                 "term flips (go through the conjugate F*(p) = ½||p||² + <p, y> again)"),
                ((q - y) / (1 + sigma),
                 "the data term should carry the step: σ multiplies y"),
                (q - sigma * y,
                 "the division by 1 + σ is missing: the ½σ||p||² of σF* shrinks p as well"),
                (q / (1 + sigma) - sigma * y,
                 "only q is divided by 1 + σ; the whole q - σy is"),
                ((q - sigma * y) / sigma, "divide by 1 + σ, not by σ"),
                ((q - sigma * y) / (1 - sigma), "divide by 1 + σ, not by 1 - σ"),
            ]
            if not torch.allclose(got_, expected, rtol=1e-6, atol=1e-9):
                for value, message in wrong:
                    if torch.allclose(got_, value, rtol=1e-6, atol=1e-9):
                        raise CheckFailed(f"{what}: {message}")
        compare_arrays(got, expected, what=what, rtol=1e-6, atol=1e-9)
        tried.append(sigma)
    return f"step sizes {', '.join(f'{s:g}' for s in tried)}"


# --- Exercises 2 and 3: the update blocks ------------------------------------------------

def _build(block_class, what, *args):
    if isinstance(block_class, nn.Module):
        raise CheckFailed(f"pass the class itself (e.g. {what.split('(')[0]}), not an "
                          f"instance of it")
    block = block_class(*args)
    expect(isinstance(block, nn.Module), f"{what} should be a torch.nn.Module (subclass "
                                         f"nn.Module and call super().__init__())")
    return block


def _layers(block, what, n_memory, n_inputs, channels):
    """The block's three convolutions and two PReLUs, checked against the recipe."""
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    prelus = [m for m in block.modules() if isinstance(m, nn.PReLU)]
    expect(convs, f"{what} has no nn.Conv2d layers: create them in __init__ and store them "
                  f"as attributes (or in an nn.Sequential)")
    expect(len(convs) == 3, f"{what} has {len(convs)} convolutions, expected 3 (in, "
                            f"middle, out)")
    first, middle, last = convs
    expect(first.in_channels == n_memory + n_inputs,
           f"the first convolution of {what} takes {first.in_channels} channels; its input "
           f"is the {n_memory} memory channels and {n_inputs} more "
           f"({n_memory + n_inputs} channels)")
    expect(first.out_channels == channels and middle.in_channels == channels
           and middle.out_channels == channels and last.in_channels == channels,
           f"the hidden layers of {what} should have `channels` = {channels} channels")
    expect(last.out_channels == n_memory,
           f"the last convolution of {what} returns {last.out_channels} channels; it must "
           f"return an update for each of the {n_memory} memory channels")
    for conv in convs:
        expect(conv.kernel_size == (3, 3) and conv.padding == (1, 1) and conv.stride == (1, 1),
               f"use 3 x 3 convolutions with padding=1 in {what} (got kernel "
               f"{conv.kernel_size}, padding {conv.padding}, stride {conv.stride})")
    expect(len(prelus) == 2, f"{what} has {len(prelus)} nn.PReLU layers, expected 2 (after "
                             f"the first and the middle convolution, not after the last)")
    return convs, prelus


def _reference(memory, extra, convs, prelus):
    z = torch.cat([memory, *extra], dim=1)
    z = prelus[0](convs[0](z))
    z = prelus[1](convs[1](z))
    return convs[2](z)


def _check_block(block_class, what, n_memory, names, shape):
    """Shared body of the two block checks. ``names``: the extra inputs, in order."""
    channels = 6
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        block = _build(block_class, what, n_memory, channels)
        convs, prelus = _layers(block, what, n_memory, len(names), channels)
        memory = torch.randn(2, n_memory, *shape)
        extra = [torch.randn(2, 1, *shape) for _ in names]
        call = f"{what}({', '.join(['memory', *names])})"

        # --- a new block changes nothing: residual with a zero last layer ---
        with torch.no_grad():
            out = block(memory, *extra)
        if out is None:
            raise CheckFailed(f"{call} returned None — did you forget a `return`?")
        expect(isinstance(out, torch.Tensor), f"{call} should return a tensor, got "
                                              f"{type(out).__name__}")
        expect(tuple(out.shape) == tuple(memory.shape),
               f"{call} returned shape {tuple(out.shape)}, expected the memory's shape "
               f"{tuple(memory.shape)}")
        if not _close(out, memory):
            last_zero = bool((convs[2].weight == 0).all() and
                             (convs[2].bias is None or (convs[2].bias == 0).all()))
            if last_zero and _close(out, torch.zeros_like(memory)):
                raise CheckFailed("the block returns only the update; it must return the "
                                  "memory plus the update (residual connection)")
            raise CheckFailed("a newly built block should leave the memory unchanged: set "
                              "the weight and the bias of the last convolution to zero "
                              "(nn.init.zeros_) so that it starts as the identity")

        # --- with random weights: the forward pass follows the recipe ---
        with torch.no_grad():
            for conv in convs:
                conv.weight.normal_(0, 0.3)
                if conv.bias is not None:
                    conv.bias.normal_(0, 0.1)
            for prelu in prelus:
                prelu.weight.fill_(0.2)
            out = block(memory, *extra)
            update = _reference(memory, extra, convs, prelus)
        if _close(out, memory + update):
            pass
        elif _close(out, update):
            raise CheckFailed(f"{call} returns only the update; add the memory: "
                              f"return memory + update")
        elif _close(out, memory - update):
            raise CheckFailed("the update is subtracted; the recipe adds it: "
                              "memory + update")
        elif _close(out, memory + convs[2](convs[1](convs[0](torch.cat([memory, *extra],
                                                                         1))))):
            raise CheckFailed("no PReLU is applied: put one after the first and after "
                              "the middle convolution")
        else:
            orders = [[memory, *extra][::-1], [*extra, memory]]
            if len(extra) == 2:
                orders += [[memory, extra[1], extra[0]]]
            for order in orders:
                with torch.no_grad():
                    z = prelus[1](convs[1](prelus[0](convs[0](torch.cat(order, 1)))))
                    if _close(out, memory + convs[2](z)):
                        raise CheckFailed(f"the inputs are concatenated in another order; "
                                          f"use torch.cat([{', '.join(['memory', *names])}]"
                                          f", dim=1), the order the exercise gives")
            raise CheckFailed(f"{call} differs from memory + conv(PReLU(conv(PReLU(conv("
                              f"cat([{', '.join(['memory', *names])}])))))")

        # --- gradients reach every parameter ---
        block.zero_grad()
        (block(memory, *extra) ** 2).sum().backward()
        for name, p in block.named_parameters():
            expect(p.grad is not None and bool(p.grad.abs().sum() > 0),
                   f"no gradient reaches the parameter `{name}`: no torch.no_grad() or "
                   f".detach() in forward, and use every layer")
    n_parameters = sum(p.numel() for p in block.parameters())
    return f"shapes, identity at start, residual update, {n_parameters} parameters"


@exercise_check("the dual update block")
def lpd_dual_block(DualBlock):
    """Check ``DualBlock(n_dual, channels)``: ``forward(h, Af, g) -> h + Γ([h, Af, g])``."""
    return _check_block(DualBlock, "DualBlock", 3, ["Af", "g"], (5, 7))


@exercise_check("the primal update block")
def lpd_primal_block(PrimalBlock):
    """Check ``PrimalBlock(n_primal, channels)``: ``forward(f, ATh) -> f + Λ([f, ATh])``."""
    return _check_block(PrimalBlock, "PrimalBlock", 4, ["ATh"], (6, 6))


# --- Exercise 4: the unrolled loop ---------------------------------------------------------

class _Recorder(nn.Module):
    """A made-up block, simple and linear, that writes its calls into a shared log."""

    def __init__(self, kind, index, log, weights):
        super().__init__()
        self.kind, self.index, self.log = kind, index, log
        self.register_buffer("weights", weights)    # one number per memory channel

    def forward(self, memory, *extra):
        self.log.append((self.kind, self.index))
        if len(extra) != (2 if self.kind == "dual" else 1):
            raise CheckFailed(f"the {self.kind} block was called with {1 + len(extra)} "
                              f"arguments; call it as "
                              + ("the memory h, the projection and the data g"
                                 if self.kind == "dual"
                                 else "the memory f and the backprojection"))
        for tensor in extra:
            if tensor.dim() != 4 or tensor.shape[1] != 1:
                image = ("the second primal channel, sliced so that it keeps its channel "
                         "dimension (1:2, not 1)" if self.kind == "dual" else
                         "the first dual channel, sliced so that it keeps its channel "
                         "dimension (:1, not 0)")
                raise CheckFailed(f"the {self.kind} block got an input of shape "
                                  f"{tuple(tensor.shape)} where it expects one channel, "
                                  f"(B, 1, ...): the operator acts on {image}")
        w = self.weights.view(1, -1, 1, 1)
        if self.kind == "dual":
            Af, g = extra
            return memory + w * (Af - g)
        return memory - w * extra[0]


def _reference_loop(g, A, dual_blocks, primal_blocks, f, h, *, swap=False, stale=False,
                    primal_first=False, projected=1):
    """The loop of Adler and Öktem (2018); the keywords make the typical mistakes."""
    apply, adjoint = (A.T, A) if swap else (A, A.T)
    p = slice(projected, projected + 1)
    for dual_block, primal_block in zip(dual_blocks, primal_blocks):
        if primal_first:
            f = primal_block(f, adjoint(h[:, :1]))
            h = dual_block(h, apply(f[:, p]), g)
        else:
            h_old = h
            h = dual_block(h, apply(f[:, p]), g)
            f = primal_block(f, adjoint((h_old if stale else h)[:, :1]))
    return f, h


@exercise_check("the unrolled loop")
def lpd_unrolled(my_learned_primal_dual):
    """Check ``learned_primal_dual(g, A, dual_blocks, primal_blocks, f, h)`` -> f[:, :1]."""
    n_iter, n_primal, n_dual = 3, 3, 2
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        # Square images and "sinograms" (4 x 4): A.T in place of A still runs.
        A = MatrixOperator(torch.randn(16, 16, dtype=torch.float64) / 4, (4, 4), (4, 4))
        g = torch.randn(2, 1, 4, 4, dtype=torch.float64)
        f0 = torch.randn(2, n_primal, 4, 4, dtype=torch.float64)
        h0 = torch.randn(2, n_dual, 4, 4, dtype=torch.float64)

        def blocks(log):
            dual = nn.ModuleList(_Recorder("dual", k, log, 0.3 + 0.2 * k + 0.1 *
                                           torch.arange(n_dual, dtype=torch.float64))
                                 for k in range(n_iter))
            primal = nn.ModuleList(_Recorder("primal", k, log, 0.5 - 0.1 * k + 0.05 *
                                             torch.arange(n_primal, dtype=torch.float64))
                                   for k in range(n_iter))
            return dual, primal

        log = []
        dual, primal = blocks(log)
        got = my_learned_primal_dual(g, A, dual, primal, f0.clone(), h0.clone())

        expected_log = [(kind, k) for k in range(n_iter) for kind in ("dual", "primal")]
        expect(log, "no block was called: in each iteration call dual_blocks[k] and then "
                    "primal_blocks[k]")
        if log != expected_log:
            if log[0][0] == "primal":
                raise CheckFailed("the primal block was called first; each iteration "
                                  "updates the dual memory h first, then the primal f "
                                  "with A.T of the new h")
            if len(log) != len(expected_log):
                raise CheckFailed(f"the blocks were called {len(log)} times, expected "
                                  f"{len(expected_log)}: one dual and one primal call per "
                                  f"block pair ({n_iter} pairs here), e.g. "
                                  f"for dual_block, primal_block in zip(dual_blocks, "
                                  f"primal_blocks)")
            raise CheckFailed(f"the blocks were called in the order {log}; iteration k "
                              f"uses dual_blocks[k] and then primal_blocks[k]")
        if got is None:
            raise CheckFailed("learned_primal_dual returned None — did you forget a "
                              "`return`?")
        if isinstance(got, (tuple, list)):
            raise CheckFailed("return only the reconstruction, the first primal channel "
                              "f[:, :1], not a tuple")
        f_ref, h_ref = _reference_loop(g, A, *blocks([]), f0.clone(), h0.clone())
        expect(isinstance(got, torch.Tensor), f"learned_primal_dual should return a tensor, "
                                              f"got {type(got).__name__}")
        if _close(got, f_ref[:, :1]):
            return (f"{n_iter} iterations, blocks in order, A of the second primal channel, "
                    f"A.T of the first dual channel")
        if _close(got, f_ref):
            raise CheckFailed("you return all primal channels; the reconstruction is the "
                              "first one: return f[:, :1]")
        if got.shape == f_ref[:, :1].shape:
            wrong = [
                (_reference_loop(g, A, *blocks([]), f0.clone(), h0.clone(), projected=0)[0],
                 "the dual step projects the first primal channel; Adler and Öktem project "
                 "the second one, the learned counterpart of PDHG's extrapolated image x̄ "
                 "(the first channel stays the reconstruction)"),
                (_reference_loop(g, A, *blocks([]), f0.clone(), h0.clone(), swap=True)[0],
                 "A and A.T are swapped: the dual block gets a projection A(...) (a "
                 "sinogram), the primal block a backprojection A.T(...) (an image)"),
                (_reference_loop(g, A, *blocks([]), f0.clone(), h0.clone(), stale=True)[0],
                 "the primal block used the dual memory from before this iteration's dual "
                 "update; update h first and give the primal block A.T of the new h"),
                (_reference_loop(g, A, *blocks([]), f0.clone(), h0.clone(), swap=True,
                                 projected=0)[0],
                 "A and A.T are swapped, and the dual step should project the second "
                 "primal channel"),
                (h_ref[:, :1], "you return the dual memory; return the primal f[:, :1]"),
                (f0[:, :1], "the returned image is the starting f: assign the blocks' "
                            "outputs back, f = primal_block(...), h = dual_block(...)"),
            ]
            for value, message in wrong:
                if _close(got, value[:, :1] if value.shape[1] != 1 else value):
                    raise CheckFailed(message)
        raise CheckFailed(f"learned_primal_dual returned shape {tuple(got.shape)} with "
                          f"other values than expected (first primal channel after "
                          f"{n_iter} iterations, shape {tuple(f_ref[:, :1].shape)})")
