"""Checks for the exercises of lesson 06: MLEM unrolled into a network.

Each check runs the learner's code on a tiny emission problem it makes up, compares with
a reference computed here and, when the answer is wrong, recognises the usual mistakes
(the log-likelihood instead of its negative, a forgotten term, a sensitivity computed in
every call, a missing residual connection, a CNN before the EM update, a start image of
zeros, ...) and says which one it is.

The module also holds the reference pieces that lesson 06 uses after its exercises (so
that the lesson runs whether or not they are done, and the student copy shows no
answer): :func:`poisson_nll_of`, :class:`EMUpdate` and :func:`unrolled_iterates`.
"""

from __future__ import annotations

import torch
from torch import nn

from ..operators.geometry import ParallelBeam
from ..operators.linear_operator import MatrixOperator
from ..operators.radon import RadonTransform
from ._feedback import CheckFailed, compare_arrays, exercise_check, expect

__all__ = ["poisson_nll", "mlem_module", "mlem_gradient_step", "unrolled_mlem_forward"]


# --- shared helpers ------------------------------------------------------------------------

def _close(got, expected, rtol=1e-5, atol=1e-8):
    """True when ``got`` is a tensor of ``expected``'s shape and (nearly) its values."""
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        return False
    got = got.detach().to(expected.dtype)
    return bool(torch.allclose(got, expected, rtol=rtol, atol=atol, equal_nan=False))


def _known_mistake(got, expected, mistakes, rtol=1e-5, atol=1e-8):
    """Raise CheckFailed with the message of the first wrong answer that ``got`` matches.

    A wrong answer that happens to equal the right one on this case is skipped, so a
    correct answer is never blamed for a mistake.
    """
    for message, wrong in mistakes:
        if _close(got, wrong, rtol, atol) and not _close(wrong, expected, rtol, atol):
            raise CheckFailed(message)


def _radon(image_size, n_angles, n_detectors):
    geometry = ParallelBeam(n_angles=n_angles, n_detectors=n_detectors)
    return RadonTransform(image_size=image_size, geometry=geometry)


def _safe_ratio(numerator, denominator):
    """numerator / denominator, and 0 where the denominator is 0."""
    positive = denominator > 0
    return torch.where(positive, numerator / torch.where(positive, denominator, 1.0), 0.0)


def _em_update(x, A, y, sensitivity):
    """The reference EM update x / s · Aᵀ(y / A x), with 0 / 0 = 0 for empty rays."""
    return x * _safe_ratio(A.T(_safe_ratio(y, A(x))), sensitivity)


# --- Exercise 1: the Poisson negative log-likelihood ---------------------------------------

@exercise_check("the Poisson negative log-likelihood")
def poisson_nll(my_poisson_nll):
    """Check ``my_poisson_nll(y_bar, y)`` = Σ (ȳ − y log ȳ) over each sinogram.

    One value per sinogram (the sum over the last two dimensions), with the convention
    0 · log 0 = 0 for bins where both the expected and the measured counts are zero.
    """
    gen = torch.Generator().manual_seed(11)
    y_bar = 0.2 + 4 * torch.rand(3, 1, 5, 7, generator=gen, dtype=torch.float64)
    y = torch.poisson(y_bar, generator=gen)
    # Case 2: empty rays, where the expected counts are 0 and nothing is measured.
    y_bar_empty, y_empty = y_bar.clone(), y.clone()
    y_bar_empty[..., 0] = 0.0
    y_empty[..., 0] = 0.0
    cases = [(y_bar, y, "random counts"), (y_bar_empty, y_empty,
                                          "counts with empty rays (ȳ = y = 0)")]
    for y_bar_k, y_k, name in cases:
        what = f"my_poisson_nll(y_bar, y) for {name}"
        y_bar_in, y_in = y_bar_k.clone(), y_k.clone()
        got = my_poisson_nll(y_bar_in, y_in)
        expect(torch.equal(y_bar_in, y_bar_k) and torch.equal(y_in, y_k),
               "your function changed its inputs in place; compute a new tensor instead")
        if got is None:
            raise CheckFailed(f"{what} is None — did you forget a `return`?")
        if not isinstance(got, torch.Tensor):
            raise CheckFailed(f"{what} should be a torch tensor, got a {type(got).__name__}")
        expected = (y_bar_k - torch.xlogy(y_k, y_bar_k)).sum(dim=(-2, -1))
        if got.numel() == 1 and expected.numel() > 1:
            raise CheckFailed(f"{what} is a single number: sum over the last two dimensions "
                              f"only (one value per sinogram, shape "
                              f"{tuple(expected.shape)}), not over the batch too")
        if got.shape == y_k.shape:
            raise CheckFailed(f"{what} has one value per sinogram BIN, shape "
                              f"{tuple(got.shape)}: sum over the last two dimensions, "
                              f"dim=(-2, -1)")
        if got.shape == expected.shape and not torch.isfinite(got).all():
            if bool((y_bar_k > 0).all()):
                raise CheckFailed(
                    f"{what} contains NaN or inf although every expected count ȳ is "
                    f"positive: is there a log of the measured counts y (which can be 0)? "
                    f"The function gets (y_bar, y) and computes Σ (ȳ − y log ȳ)")
            raise CheckFailed(
                f"{what} contains NaN or inf: where ȳ = 0 and y = 0, y · log ȳ is 0 · (−∞). "
                f"The convention is 0 · log 0 = 0: use torch.xlogy(y, y_bar), which gives "
                f"exactly that")
        n_bins = y_k.shape[-2] * y_k.shape[-1]
        log_y_bar = torch.log(y_bar_k)
        _known_mistake(got, expected, [
            ("that is the log-likelihood Σ (y log ȳ − ȳ): the NEGATIVE log-likelihood is "
             "its minus, Σ (ȳ − y log ȳ), the quantity MLEM makes smaller",
             -expected),
            ("you left out the term Σ ȳ: the negative log-likelihood is Σ (ȳ − y log ȳ)",
             -torch.xlogy(y_k, y_bar_k).sum(dim=(-2, -1))),
            ("you left out the term −y log ȳ: the negative log-likelihood is Σ (ȳ − y log ȳ)",
             y_bar_k.sum(dim=(-2, -1))),
            ("the logarithm should be of the EXPECTED counts ȳ, not of the measured ones: "
             "Σ (ȳ − y log ȳ)",
             (y_bar_k - torch.xlogy(y_k, y_k)).sum(dim=(-2, -1))),
            ("the arguments are swapped: the function gets (y_bar, y), expected counts "
             "first, and computes Σ (ȳ − y log ȳ)",
             (y_k - torch.xlogy(y_bar_k, y_k)).sum(dim=(-2, -1))),
            ("you included the constant Σ log(y!): it does not depend on the image, so this "
             "lesson leaves it out — return Σ (ȳ − y log ȳ)",
             expected + torch.lgamma(y_k + 1).sum(dim=(-2, -1))),
            ("you took the mean over the bins: the log-likelihood of independent counts is "
             "a SUM over the bins", expected / n_bins),
            ("the sign of the log term is wrong: Σ (ȳ − y log ȳ), with a minus before y log ȳ",
             (y_bar_k + y_k * log_y_bar).sum(dim=(-2, -1))),
        ])
        compare_arrays(got, expected, what=what, rtol=1e-6, atol=1e-9)
    return "a batch of 3 sinograms, with and without empty rays"


# --- Exercise 2: the MLEM update as a module ----------------------------------------------

class _CountingMatrix(MatrixOperator):
    """A matrix operator that counts how often its adjoint (the backprojection) runs."""

    def __init__(self, matrix, domain_shape, range_shape):
        super().__init__(matrix, domain_shape, range_shape)
        self.backprojections = 0

    def _apply_adjoint(self, y):
        self.backprojections += 1
        return super()._apply_adjoint(y)


def _instantiate(MyMLEMStep, A):
    if not (isinstance(MyMLEMStep, type) and issubclass(MyMLEMStep, nn.Module)):
        raise CheckFailed(f"give the check the CLASS (a subclass of torch.nn.Module), e.g. "
                          f"cu.checks.mlem_module(MLEMStep), got "
                          f"{type(MyMLEMStep).__name__}")
    step = MyMLEMStep(A)
    expect(hasattr(step, "training"),
           "MLEMStep.__init__ must start with super().__init__(), as every nn.Module does")
    return step


@exercise_check("the MLEM update as a module")
def mlem_module(MyMLEMStep):
    """Check the class ``MyMLEMStep``: ``MyMLEMStep(A)(x, y)`` = x / s · Aᵀ(y / A x).

    The sensitivity ``s = Aᵀ1`` is computed once in ``__init__`` and stored as a buffer,
    the module has no trainable parameters, works on batches, does not change ``x`` in
    place, gives 0 (not NaN) on rays that see nothing, and keeps the autograd graph.
    """
    gen = torch.Generator().manual_seed(6)
    radon = _radon(8, 6, 13)        # the outer detectors see nothing: A x = 0 there
    matrix = torch.rand(20, 12, generator=gen, dtype=torch.float64)
    matrix[5, :] = 0.0              # an empty ray
    counting = _CountingMatrix(matrix, (3, 4), (4, 5))
    cases = [(radon, "an 8x8 Radon transform (with detectors that see nothing)"),
             (counting, "a small matrix with an empty ray")]
    for A, name in cases:
        dtype = torch.float32 if A is radon else torch.float64
        sensitivity = A.T(torch.ones(A.range_shape, dtype=dtype))
        counting.backprojections = 0
        step = _instantiate(MyMLEMStep, A)
        if A is counting:
            expect(counting.backprojections == 1,
                   f"MLEMStep(A) should compute the sensitivity Aᵀ1 once, with one "
                   f"backprojection, in __init__; it ran {counting.backprojections}")
        n_trainable = sum(p.numel() for p in step.parameters() if p.requires_grad)
        expect(n_trainable == 0,
               f"your MLEMStep has {n_trainable} trainable parameters: the EM update is "
               f"fixed physics, nothing in it is learned. Store the sensitivity with "
               f"self.register_buffer(...), not as an nn.Parameter")
        buffers = [b for b in step.buffers()]
        expect(any(b.shape[-2:] == sensitivity.shape
                   and torch.allclose(b.detach().to(dtype), sensitivity, rtol=1e-5,
                                      atol=1e-6) for b in buffers),
               "no buffer of your module holds the sensitivity image Aᵀ1 (the "
               "backprojection of a sinogram of ones): store it in __init__ with "
               "self.register_buffer('sensitivity', ...) so that it moves with .to(device)")

        x_true = 0.5 + torch.rand(2, 1, *A.domain_shape, generator=gen, dtype=dtype)
        y = torch.poisson(4 * A(x_true), generator=gen) / 4
        x = (0.5 + torch.rand(2, 1, *A.domain_shape, generator=gen, dtype=dtype)
             ).requires_grad_(True)
        x_before = x.detach().clone()
        before = counting.backprojections
        what = f"MLEMStep(A)(x, y) for {name}, a batch of 2"
        try:
            got = step(x, y)
        except RuntimeError as error:
            if "in-place" in str(error) or "inplace" in str(error):
                raise CheckFailed("your forward changes x in place (x *= ...): return a new "
                                  "tensor, x * correction, so autograd can follow") from None
            raise
        expect(torch.equal(x.detach(), x_before),
               "your forward changed its input x in place; return a new image instead")
        if got is None:
            raise CheckFailed(f"{what} is None — did you forget a `return` in forward?")
        if A is counting:
            calls = counting.backprojections - before
            expect(calls <= 1,
                   f"one forward pass ran {calls} backprojections: it should run exactly "
                   f"one, Aᵀ(y / A x). Compute the sensitivity once in __init__ and reuse "
                   f"the stored buffer in forward")
        if not isinstance(got, torch.Tensor):
            raise CheckFailed(f"{what} should be a tensor, got a {type(got).__name__}")
        with torch.no_grad():
            expected = _em_update(x.detach(), A, y, sensitivity)
        if got.shape == expected.shape and not torch.isfinite(got).all():
            raise CheckFailed(
                f"{what} contains NaN or inf: rays that see nothing have A x = 0 (and "
                f"y = 0). Guard the division: y / A(x).clamp(min=eps) with a small eps, "
                f"e.g. 1e-9")
        xd = x.detach()
        correction = A.T(_safe_ratio(y, A(xd)))
        _known_mistake(got, expected, [
            ("the update is not normalised by the sensitivity: divide by Aᵀ1",
             xd * correction),
            ("you multiplied by the sensitivity instead of dividing by it",
             xd * sensitivity * correction),
            ("you forgot the current image: MLEM multiplies x by the correction "
             "Aᵀ(y / A x) / s", _safe_ratio(correction, sensitivity).expand_as(xd)),
            ("you added the correction to x: the EM update is multiplicative, "
             "x · Aᵀ(y / A x) / s", xd + _safe_ratio(correction, sensitivity)),
            ("the ratio is upside down: it is measured / predicted, y / (A x)",
             xd * _safe_ratio(A.T(_safe_ratio(A(xd), y)), sensitivity)),
            ("that is an additive update with the difference y − A x; MLEM back-projects the "
             "RATIO y / A x and multiplies x by it",
             xd + _safe_ratio(A.T(y - A(xd)), sensitivity)),
        ], rtol=1e-4, atol=1e-7)
        compare_arrays(got, expected, what=what, rtol=1e-4, atol=1e-7)
        expect(got.requires_grad,
               "the output does not depend on x for autograd: it was computed under "
               "torch.no_grad() or detached (cu.mlem, for example, switches autograd off). "
               "The unrolled network is trained THROUGH this update")
        (grad,) = torch.autograd.grad(got.sum(), x)
        expect(bool(torch.isfinite(grad).all()),
               "the gradient through your update is NaN or inf: guard the division with "
               "A(x).clamp(min=eps), which has a finite gradient")
    return "the update on batches, empty rays, one backprojection per call, gradients flow"


# --- Exercise 3: the unrolled forward pass -------------------------------------------------

class _Recorder(nn.Module):
    """Wraps a block and records, in a shared list, the order of calls."""

    def __init__(self, block, label, log):
        super().__init__()
        self.block, self.label, self.log = block, label, log

    def forward(self, x):
        self.log.append(self.label)
        return self.block(x)


def _small_block(seed):
    """A tiny CNN whose output has both signs and a noticeable size."""
    torch.manual_seed(seed)
    block = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(4, 1, 3, padding=1))
    with torch.no_grad():
        for p in block.parameters():
            p.mul_(2.0)
    return block.double()


def _reference_unrolled(y, step, blocks, image_size, *, start=1.0, residual=True,
                        nonneg="relu", cnn_first=False, blocks_used=None, extra_step=False):
    """The reference forward pass and its wrong variants."""
    x = torch.full((*y.shape[:-2], image_size, image_size), start, dtype=y.dtype)
    used = blocks if blocks_used is None else blocks_used
    for block in used:
        if not cnn_first:
            x = step(x, y)
        z = x + block(x) if residual else block(x)
        x = {"relu": torch.relu, "abs": torch.abs, "none": lambda t: t}[nonneg](z)
        if cnn_first:
            x = step(x, y)
    if extra_step:
        x = step(x, y)
    return x


@exercise_check("the unrolled forward pass")
def unrolled_mlem_forward(my_unrolled):
    """Check ``my_unrolled(y, mlem_step, blocks, image_size)``.

    From the uniform image of ones, each of the ``len(blocks)`` unrolled iterations
    applies the EM update ``x = mlem_step(x, y)`` and then the inter-update CNN as a
    residual, kept non-negative: ``x = relu(x + block(x))``.  Returns the last image.
    The check seeds its own blocks; the caller's global random state is restored.
    """
    with torch.random.fork_rng(devices=[]):
        return _check_unrolled(my_unrolled)


def _check_unrolled(my_unrolled):
    size = 8
    A = _radon(size, 6, 13)
    sensitivity = A.T(torch.ones(A.range_shape, dtype=torch.float64))
    gen = torch.Generator().manual_seed(4)
    x_true = torch.rand(2, 1, size, size, generator=gen, dtype=torch.float64)
    x_true[..., 2:5, 3:6] += 1.0
    y = torch.poisson(5 * A(x_true), generator=gen) / 5

    def step(x, y):
        return _em_update(x, A, y, sensitivity)

    distinct = [_small_block(seed) for seed in range(3)]
    shared = [distinct[0]] * 3
    for blocks, name in [(distinct, "3 different blocks (per-iteration weights)"),
                         (shared, "one block used 3 times (shared weights)")]:
        log = []
        recorded = [_Recorder(b, f"cnn{i}", log) for i, b in enumerate(blocks)]

        def recording_step(x, y):
            log.append("em")
            return step(x, y)

        what = f"my_unrolled(y, mlem_step, blocks, image_size={size}) with {name}"
        got = my_unrolled(y, recording_step, recorded, size)
        if got is None:
            raise CheckFailed(f"{what} is None — did you forget a `return`?")
        if isinstance(got, (list, tuple)):
            raise CheckFailed(f"{what} returned a {type(got).__name__}: return only the "
                              f"last image, a tensor")
        n_em, n_cnn = log.count("em"), sum(e.startswith("cnn") for e in log)
        expect(n_em == len(blocks),
               f"mlem_step ran {n_em} times for {len(blocks)} blocks: one EM update per "
               f"unrolled iteration, as many as there are blocks")
        expect(n_cnn == len(blocks),
               f"the blocks ran {n_cnn} times in all: each of the {len(blocks)} iterations "
               f"applies ITS block once, after the EM update")
        if log and log[0] != "em":
            raise CheckFailed("the first thing to run should be the EM update: each "
                              "iteration is x = mlem_step(x, y), THEN x = relu(x + block(x))")
        if blocks is distinct:
            order = [e for e in log if e.startswith("cnn")]
            expect(order == ["cnn0", "cnn1", "cnn2"],
                   f"the blocks ran in the order {order}: iteration k uses blocks[k] "
                   f"(for k = 0, 1, 2), so each iteration can learn its own correction")

        expected = _reference_unrolled(y, step, blocks, size)
        if not isinstance(got, torch.Tensor):
            raise CheckFailed(f"{what} should be a tensor, got a {type(got).__name__}")
        mistakes = [
            ("the start image is zeros: MLEM multiplies, so a zero image stays zero; start "
             "from ones, torch.ones(*y.shape[:-2], image_size, image_size)",
             _reference_unrolled(y, step, blocks, size, start=0.0)),
            ("the residual connection is missing: the CNN predicts a CORRECTION, "
             "x = relu(x + block(x)), not a new image relu(block(x))",
             _reference_unrolled(y, step, blocks, size, residual=False)),
            ("the result has negative values: keep the image non-negative with "
             "x = torch.relu(x + block(x)) — the next EM update needs A x ≥ 0",
             _reference_unrolled(y, step, blocks, size, nonneg="none")),
            ("you used abs() to keep the image non-negative (as in Reader's workshop); this "
             "lesson uses relu(x + block(x)), which sets negative pixels to 0 instead of "
             "flipping them", _reference_unrolled(y, step, blocks, size, nonneg="abs")),
            ("the CNN runs before the EM update: each iteration is x = mlem_step(x, y), "
             "then x = relu(x + block(x))",
             _reference_unrolled(y, step, blocks, size, cnn_first=True)),
        ]
        if blocks is distinct:
            mistakes.append(("every iteration used the first block: iteration k should "
                             "use blocks[k]", _reference_unrolled(
                                 y, step, blocks, size, blocks_used=[distinct[0]] * 3)))
        _known_mistake(got, expected, mistakes, rtol=1e-6, atol=1e-9)
        if got.shape != expected.shape and got.numel() == expected.numel():
            got = got.reshape(expected.shape)
        compare_arrays(got, expected, what=what, rtol=1e-6, atol=1e-9)

    # Training needs gradients to reach every block through every iteration.
    blocks = [_small_block(seed) for seed in range(3)]
    out = my_unrolled(y, step, blocks, size)
    expect(isinstance(out, torch.Tensor) and out.requires_grad,
           "the output does not depend on the blocks' weights for autograd: do not "
           "detach x or use torch.no_grad() in the forward pass")
    out.sum().backward()
    for i, block in enumerate(blocks):
        expect(all(p.grad is not None for p in block.parameters()),
               f"no gradient reached block {i}: every block must be applied to the "
               f"running image, without detaching it")
    return "per-iteration and shared blocks, order of operations, gradients to every block"


# --- Exercise 3: MLEM as a scaled gradient step -------------------------------------------

@exercise_check("MLEM as a scaled gradient step")
def mlem_gradient_step(my_step):
    """Check ``my_step(x, grad, s)`` = x - (x / s) * grad, which is the MLEM update when
    grad = ∇L(x) = s - Aᵀ(y / A x)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(4)
        A = _radon(6, 5, 9)
        x = torch.rand(2, 1, 6, 6, dtype=torch.float64) + 0.1
        y = torch.poisson(A(torch.rand(2, 1, 6, 6, dtype=torch.float64)) * 5)
    s = A.T(torch.ones(A.range_shape, dtype=torch.float64))
    grad = s - A.T(y / A(x))
    mlem = x * A.T(y / A(x)) / s
    x_in, grad_in, s_in = x.clone(), grad.clone(), s.clone()
    got = my_step(x_in, grad_in, s_in)
    what = "my_step(x, grad, s)"
    expect(got is not None, f"{what} returned None — did you forget a `return`?")
    expect(torch.equal(x_in, x) and torch.equal(grad_in, grad) and torch.equal(s_in, s),
           f"{what} changed an input in place; compute a new tensor")
    if isinstance(got, torch.Tensor) and got.shape == mlem.shape:
        got_ = got.detach().double()
        wrong = [
            (x - grad, "that is a plain gradient step with step 1; MLEM's step is "
                       "different for every pixel: D = diag(x / s)"),
            (x - grad / s, "the step 1 / s is missing the factor x: D = diag(x / s)"),
            (x - x * grad, "the step x is missing the division by the sensitivity s"),
            (x + x / s * grad, "the sign: a gradient step goes DOWNhill, x - D ∇L"),
            (x / s * grad, "return the updated image x - D ∇L, not the step D ∇L"),
        ]
        if not torch.allclose(got_, mlem, rtol=1e-6, atol=1e-9):
            for value, message in wrong:
                if torch.allclose(got_, value, rtol=1e-6, atol=1e-9):
                    raise CheckFailed(message)
    compare_arrays(got, mlem, what=f"{what} (it should equal the MLEM update)",
                   rtol=1e-6, atol=1e-9)
    return "equals the MLEM update on a batch of 2 images"


# --- The reference pieces that lesson 06 uses after the exercises --------------------------

def poisson_nll_of(y_bar, y):
    """Σ (ȳ − y log ȳ) over each sinogram, with 0 · log 0 = 0: shape (...) for inputs
    (..., n_angles, n_det)."""
    return (y_bar - torch.xlogy(y, y_bar)).sum(dim=(-2, -1))


class EMUpdate(nn.Module):
    """One MLEM update x -> x / s · Aᵀ(y / A x), s = Aᵀ1, as a differentiable module.

    Images ``x`` (..., N, N), data ``y`` (..., n_angles, n_det); ``A x`` is clamped at
    ``eps`` so that rays that see no activity give 0, not NaN.
    """

    def __init__(self, A, eps=1e-9):
        super().__init__()
        self.A = A
        self.eps = eps
        self.register_buffer("sensitivity", A.T(torch.ones(A.range_shape, device=A.device)))

    def forward(self, x, y):
        return x * self.A.T(y / self.A(x).clamp(min=self.eps)) / self.sensitivity


def unrolled_iterates(y, em, cnns, n_iter, image_size):
    """Unrolled MLEM from images of ones: after each of ``n_iter`` EM updates ``em(x, y)``,
    the residual non-negative correction x <- relu(x + cnn(x)), with ``cnns[k % len(cnns)]``
    (one CNN: shared weights).  Returns [x after EM 1, after CNN 1, ..., after CNN K]."""
    x = torch.ones(*y.shape[:-2], image_size, image_size, dtype=y.dtype, device=y.device)
    images = []
    for k in range(n_iter):
        x = em(x, y)
        images.append(x)
        x = torch.relu(x + cnns[k % len(cnns)](x))
        images.append(x)
    return images
