"""Checks for the exercises of lesson 05: the deep image prior for tomography.

Each check runs the learner's function on a tiny problem it makes up, compares with a
reference computed here and, when the answer is wrong, recognises the usual mistakes
(optimising or re-drawing the input ``z``, ``A.T`` instead of ``A``, a forgotten
``zero_grad``, a detached output, a missing weight, anisotropic TV, a mean instead of
a sum, ...) and says which one it is.  A reference and its wrong variants are run from
the same initial weights, so on the CPU their results can be compared to rounding.
"""

from __future__ import annotations

import copy
import time

import torch
from torch import nn

from ..reconstruction.algorithms import image_gradient
from ..operators.geometry import ParallelBeam
from ..operators.linear_operator import MatrixOperator
from ..operators.radon import RadonTransform
from ._feedback import CheckFailed, compare_arrays, exercise_check, expect

__all__ = ["fit_dip", "discrepancy_stop", "dip_tv_loss"]


# --- shared helpers ------------------------------------------------------------------------

def _close(got, expected, rtol=1e-4, atol=1e-6):
    """True when ``got`` is a tensor of ``expected``'s shape and values."""
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        return False
    got = got.detach().to(expected.dtype)
    return bool(torch.allclose(got, expected, rtol=rtol, atol=atol))


def _radon(image_size, n_angles, n_detectors):
    geometry = ParallelBeam(n_angles=n_angles, n_detectors=n_detectors)
    return RadonTransform(image_size=image_size, geometry=geometry)


# --- Exercise 1: the deep-image-prior fitting loop -----------------------------------------

def _tiny_network(in_channels, seed):
    """A small convolutional network, the same weights for the same seed."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(in_channels, 8, 3, padding=1), nn.LeakyReLU(0.2),
        nn.Conv2d(8, 8, 3, padding=1), nn.LeakyReLU(0.2),
        nn.Conv2d(8, 1, 3, padding=1))


def _reference_fit(net, z, y, A, n_iter, lr, *, forward=None, zero_grad=True,
                   optimizer_each_step=False, loss_scale=0.5):
    """The reference loop and its wrong variants; returns (output after, last iterate)."""
    forward = A if forward is None else forward
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    x = None
    for _ in range(n_iter):
        if optimizer_each_step:
            optimizer = torch.optim.Adam(net.parameters(), lr=lr)
        x = net(z)
        loss = loss_scale * ((forward(x) - y) ** 2).sum()
        if zero_grad:
            optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return net(z), x.detach()


def _misfit(net, z, y, A):
    with torch.no_grad():
        return float(torch.linalg.vector_norm(A(net(z)) - y))


def _parameters(net):
    return [p.detach().clone() for p in net.parameters()]


@exercise_check("the deep-image-prior fitting loop")
def fit_dip(my_fit_dip):
    """Check ``my_fit_dip(net, z, y, A, n_iter, lr, callback=None)``.

    It should run ``n_iter`` Adam steps on the weights of ``net`` only, for the loss
    ½‖A net(z) − y‖², call ``callback(k, x)`` after step ``k = 1, ..., n_iter`` with
    the output ``x`` of that step, and return the output ``net(z)`` at the end.
    The check seeds its own networks; the caller's global random state is restored.
    """
    with torch.random.fork_rng(devices=[]):
        return _check_fit_dip(my_fit_dip)


def _check_fit_dip(my_fit_dip):
    # n_iter and lr differ from the notebook's N_ITER and LR, so that an answer that uses
    # the notebook's globals instead of its arguments is caught.
    size, n_iter, lr = 6, 25, 7e-3
    gen = torch.Generator().manual_seed(5)
    # Case 1: a square, non-symmetric matrix (A.T instead of A gives a different answer
    # instead of a shape error); case 2: a small Radon transform.
    square = MatrixOperator(torch.randn(size * size, size * size, generator=gen) / size,
                            (size, size), (size, size))
    cases = [(square, "a square matrix"), (_radon(size, 5, 9), "a small Radon transform")]
    for case, (A, name) in enumerate(cases):
        x_true = torch.rand(1, 1, size, size, generator=gen)
        y = A(x_true) + 0.01 * torch.randn((1, 1, *A.range_shape), generator=gen)
        z = 0.1 * torch.rand(1, 4, size, size, generator=gen)
        initial = _tiny_network(4, seed=case)
        net = copy.deepcopy(initial)
        z_before, before = z.clone(), _parameters(net)
        misfit_before = _misfit(initial, z, y, A)
        calls = []

        def callback(k, x):
            calls.append((k, x.detach().clone() if isinstance(x, torch.Tensor) else x))

        rng_before = torch.get_rng_state()
        what = f"my_fit_dip(net, z, y, A, n_iter={n_iter}, lr={lr}) for {name}"
        try:
            got = my_fit_dip(net, z, y, A, n_iter, lr, callback=callback)
        except RuntimeError as error:
            if "does not require grad" in str(error) or "grad_fn" in str(error):
                raise CheckFailed(
                    "loss.backward() found no path back to the weights: the output was "
                    "detached (x.detach(), x.numpy(), or computed under torch.no_grad()). "
                    "Keep x = net(z) attached while you compute the loss") from None
            raise
        rng_changed = not torch.equal(torch.get_rng_state(), rng_before)
        torch.set_rng_state(rng_before)

        # The input z: fixed, never optimised, never re-drawn.
        expect(torch.equal(z, z_before),
               "your function changed the input z: z is drawn once and stays FIXED; only "
               "the network's weights are optimised (give the optimiser net.parameters() "
               "only, and do not set z.requires_grad)")
        expect(not z.requires_grad,
               "your function made the input z trainable (z.requires_grad = True): in the "
               "deep image prior z is a fixed random input; only net.parameters() learn")
        expect(not rng_changed,
               "your loop draws random numbers (torch.rand / torch.randn ...): the input z "
               "must be drawn once, before fitting, and then used unchanged in every step. "
               "Re-drawing z each step asks the network to map ANY noise to the image")
        expect(any(not torch.equal(p, q) for p, q in zip(_parameters(net), before)),
               "the network's weights did not change: create the optimiser over "
               "net.parameters() and call optimizer.step() after loss.backward()")

        # Callback: once per step, k = 1, ..., n_iter, with the image of that step.
        expect(len(calls) > 0,
               "callback was never called: call callback(k, x) after every step")
        ks = [k for k, _ in calls]
        if ks == list(range(n_iter)):
            raise CheckFailed(f"callback got k = 0, ..., {n_iter - 1}: count the steps "
                              f"from 1, so that the last call has k = n_iter = {n_iter}")
        expect(ks == list(range(1, n_iter + 1)),
               f"callback should be called once per step with k = 1, ..., {n_iter}; "
               f"it got {len(ks)} calls with k = {ks[:3]}{' ...' if len(ks) > 3 else ''}")
        shape = (1, 1, size, size)
        expect(all(isinstance(x, torch.Tensor) and x.numel() == size * size
                   for _, x in calls),
               f"callback(k, x) should get the network's output x, a tensor of shape "
               f"{shape} (the image of that step)")

        if got is None:
            raise CheckFailed(f"{what} returned None — return the final output net(z)")
        if not isinstance(got, torch.Tensor) or got.numel() != size * size:
            kind = (f"shape {tuple(got.shape)}" if isinstance(got, torch.Tensor)
                    else f"a {type(got).__name__}")
            raise CheckFailed(f"{what} should return the network's output net(z), a tensor "
                              f"of shape {shape}, got {kind}")
        got = got.reshape(shape)      # a squeezed image is fine
        after, last = _reference_fit(copy.deepcopy(initial), z, y, A, n_iter, lr)
        if _close(got, after, rtol=1e-3, atol=1e-5) or _close(got, last, rtol=1e-3,
                                                             atol=1e-5):
            continue
        mistakes = [
            ("A.T", dict(forward=A.T),
             "you applied A.T to the image: the data misfit compares the PROJECTION of the "
             "image, A(x), with the sinogram y"),
            ("zero_grad", dict(zero_grad=False),
             "the gradients pile up from step to step: call optimizer.zero_grad() before "
             "loss.backward() in every step"),
            ("optimizer", dict(optimizer_each_step=True),
             "you create a new optimiser in every step, which resets Adam's running "
             "averages: create it once, before the loop"),
            ("lr", dict(lr=1e-3),
             "you ignored the argument lr: pass lr=lr to torch.optim.Adam"),
            ("lr", dict(lr=1e-2),
             "you used the notebook's learning rate LR instead of the argument lr: the "
             "function must use its own arguments"),
        ]
        for _, variant, message in mistakes:
            options = dict(variant)
            step = options.pop("lr", lr)
            wrong_after, wrong_last = _reference_fit(copy.deepcopy(initial), z, y, A,
                                                     n_iter, step, **options)
            if _close(got, wrong_after, 1e-3, 1e-5) or _close(got, wrong_last, 1e-3, 1e-5):
                raise CheckFailed(message)
        expect(_misfit(net, z, y, A) < 0.9 * misfit_before,
               f"the data misfit ‖A net(z) − y‖ did not go down ({misfit_before:.3g} before, "
               f"{_misfit(net, z, y, A):.3g} after {n_iter} steps): the loss should be "
               f"½‖A net(z) − y‖², and each step must go downhill")
        compare_arrays(got, after, what=what, rtol=1e-3, atol=1e-5)
    return "z fixed, weights updated, misfit down, same output as the reference on 2 problems"


# --- Exercise 2: the discrepancy principle's stopping step ----------------------------------

@exercise_check("the discrepancy principle's stopping step")
def discrepancy_stop(my_discrepancy_stop):
    """Check ``my_discrepancy_stop(misfits, delta, tau)``: the first step k (counted from
    1) with ``misfits[k - 1] <= tau * delta``, or ``len(misfits)`` if there is none."""
    cases = [
        # (misfits, delta, tau, expected): wiggles, a second crossing, equality, none
        ([9.0, 6.0, 4.1, 3.9, 4.2, 3.0, 2.0, 2.5], 2.0, 2.0, 4),
        ([5.0, 3.0, 2.5, 2.0, 1.0], 2.5, 1.0, 3),
        ([9.0, 6.0, 4.1, 3.9, 4.2, 3.0, 2.0, 2.5], 2.0, 1.5, 6),
        ([5.0, 4.0, 3.5, 3.2], 1.0, 1.1, 4),
        ([0.5, 0.4], 1.0, 1.0, 1),
    ]
    for misfits, delta, tau, expected in cases:
        what = f"my_discrepancy_stop({misfits}, delta={delta}, tau={tau})"
        got = my_discrepancy_stop(list(misfits), delta, tau)
        expect(got is not None, f"{what} returned None — also when the misfit never "
                                f"reaches τδ, return the last step, len(misfits)")
        try:
            got = int(got)
        except (TypeError, ValueError):
            raise CheckFailed(f"{what} should return a step number (an int), got "
                              f"{type(got).__name__}") from None
        if got == expected:
            continue
        crossings = [k for k, m in enumerate(misfits, 1) if m <= tau * delta]
        if crossings and got == expected - 1:
            raise CheckFailed(f"{what} returned {got}, expected {expected}: steps are "
                              f"counted from 1 (misfits[0] is the misfit after step 1)")
        if len(crossings) > 1 and got == crossings[-1]:
            raise CheckFailed(f"{what} returned {got}, the LAST step within the noise "
                              f"level; the rule stops at the FIRST one, {expected}")
        if got == next((k for k, m in enumerate(misfits, 1) if m <= delta), None):
            raise CheckFailed(f"{what} returned {got}: the threshold is τδ, not δ")
        if got == next((k for k, m in enumerate(misfits, 1) if m < tau * delta), None):
            raise CheckFailed(f"{what} returned {got}, expected {expected}: a misfit equal "
                              f"to τδ already satisfies ‖A x_k − y‖ ≤ τδ")
        if not crossings:
            raise CheckFailed(f"{what} returned {got}; the misfit never reaches τδ, and "
                              f"then the fit runs to the end: return len(misfits)")
        raise CheckFailed(f"{what} returned {got}, expected {expected}")
    return f"{len(cases)} misfit curves, with wiggles, equality and no crossing"


# --- Exercise 3: the DIP + TV loss ---------------------------------------------------------

def _gradient_cropped(x):
    """Forward differences without the last row / column (what slicing gives)."""
    down = x[..., 1:, :-1] - x[..., :-1, :-1]
    right = x[..., :-1, 1:] - x[..., :-1, :-1]
    return down, right


def _periodic_gradient(x):
    return torch.roll(x, -1, dims=-2) - x, torch.roll(x, -1, dims=-1) - x


@exercise_check("the DIP + TV loss")
def dip_tv_loss(my_dip_tv_loss):
    """Check ``my_dip_tv_loss(x, y, A, lam)`` = ½‖A x − y‖² + lam · TV(x), a scalar."""
    gen = torch.Generator().manual_seed(7)
    size = 8
    A = _radon(size, 6, 13)
    x = torch.rand(2, 1, size, size, generator=gen, dtype=torch.float64)
    x[0, 0, :4, :4] = 0.5                      # a flat patch: the gradient is 0 there
    x[1, 0, 4:, 2:7] = 0.0
    y = A(torch.rand(2, 1, size, size, generator=gen, dtype=torch.float64))
    y = y + 0.05 * torch.randn(y.shape, generator=gen, dtype=torch.float64)
    lam = 0.3

    def reference(x, lam):
        g = image_gradient(x)
        tv = torch.linalg.vector_norm(g, dim=-3).sum()
        return 0.5 * ((A(x) - y) ** 2).sum() + lam * tv

    for case, weight in enumerate((lam, 2.5)):
        what = f"my_dip_tv_loss(x, y, A, lam={weight})"
        x_in = x.clone().requires_grad_(True)
        got = my_dip_tv_loss(x_in, y, A, weight)
        if got is None:
            raise CheckFailed(f"{what} is None — did you forget a `return`?")
        if not isinstance(got, torch.Tensor):
            raise CheckFailed(f"{what} should be a torch tensor (to call .backward() on), "
                              f"got a {type(got).__name__}: compute it with torch "
                              f"operations, not NumPy or float()")
        expected = reference(x, weight)
        if got.numel() == 2 and _close(got.detach().reshape(-1).sum(), expected):
            raise CheckFailed(f"{what} has one value per image, shape {tuple(got.shape)}: "
                              f"sum over the batch too, the loss must be one number")
        if got.numel() != 1:
            raise CheckFailed(f"{what} should be one number (a 0-dim tensor), got shape "
                              f"{tuple(got.shape)}: sum over everything")
        got_value = got.detach().reshape(())
        # 2e-4: a smoothed TV, √(|∇x|² + ε) with ε up to about 1e-8, is accepted.
        if not _close(got_value, expected, rtol=2e-4, atol=1e-8):
            residual = ((A(x) - y) ** 2).sum()
            g = image_gradient(x)
            tv = torch.linalg.vector_norm(g, dim=-3).sum()
            down, right = _gradient_cropped(x)
            pdown, pright = _periodic_gradient(x)
            n_data, n_pixels = y.numel(), x.numel()
            mistakes = [
                ("the weight lam is missing: the loss is ½‖A x − y‖² + lam · TV(x)",
                 0.5 * residual + tv),
                ("lam multiplies the wrong term: the loss is ½‖A x − y‖² + lam · TV(x)",
                 weight * 0.5 * residual + tv),
                ("that is the ANISOTROPIC TV, Σ |∂₁x| + |∂₂x|; this lesson uses the "
                 "isotropic one, Σ √(∂₁x² + ∂₂x²) (the length of the gradient at each "
                 "pixel), as cu.total_variation",
                 0.5 * residual + weight * g.abs().sum()),
                ("that TV has no square root: Σ (∂₁x² + ∂₂x²) is a smoothness (Tikhonov) "
                 "penalty that blurs edges; TV sums the LENGTHS √(∂₁x² + ∂₂x²)",
                 0.5 * residual + weight * (g ** 2).sum()),
                ("the data term should be half the SUM of squares, ½‖A x − y‖²; you used "
                 "the mean (F.mse_loss averages), which divides it by the number of "
                 "sinogram entries and changes what lam means",
                 residual / n_data + weight * tv),
                ("the data term should be half the SUM of squares, ½‖A x − y‖²; you used "
                 "half the mean, which changes what lam means",
                 0.5 * residual / n_data + weight * tv),
                ("the TV should be the SUM over all pixels of the gradient length, not the "
                 "mean", 0.5 * residual + weight * tv / n_pixels),
                ("the data term is missing the factor ½: use ½‖A x − y‖², as cu.tv_pdhg, so "
                 "that lam means the same as there", residual + weight * tv),
                ("the data term should be the SQUARED norm, ½‖A x − y‖², not the norm",
                 0.5 * torch.sqrt(residual) + weight * tv),
                ("your differences wrap around the image edge (torch.roll): use forward "
                 "differences with 0 at the last row and column, as cu.image_gradient",
                 0.5 * residual + weight * torch.sqrt(pdown ** 2 + pright ** 2).sum()),
                ("your TV leaves out the last row and column (cropped differences): use "
                 "cu.image_gradient(x), whose differences are 0 past the edge but keep the "
                 "other direction's difference there",
                 0.5 * residual + weight * torch.sqrt(down ** 2 + right ** 2).sum()),
            ]
            for message, wrong in mistakes:
                if _close(got_value, wrong, rtol=1e-5, atol=1e-8):
                    raise CheckFailed(message)
            raise CheckFailed(f"{what} = {float(got_value):.7g}, expected "
                              f"{float(expected):.7g} (relative difference "
                              f"{abs(float(got_value - expected)) / abs(float(expected)):.1e},"
                              f" more than the 2e-4 allowed; a smoothed TV √(|∇x|² + ε) "
                              f"passes with ε up to about 1e-8)")

        # The loss must be differentiable, with finite gradients where the image is flat.
        expect(got.requires_grad,
               f"{what} does not depend on x for autograd: it was detached (.detach(), "
               f".item(), NumPy); the network is trained through this loss")
        (grad,) = torch.autograd.grad(got.reshape(()), x_in)
        if not torch.isfinite(grad).all():
            raise CheckFailed(
                "the gradient of your loss is NaN where the image is flat: torch.sqrt(0) "
                "has an infinite slope. Use torch.linalg.vector_norm(g, dim=-3) (its "
                "gradient at 0 is 0) or add a tiny ε inside the root, √(… + 1e-12)")
        x_ref = x.clone().requires_grad_(True)
        (expected_grad,) = torch.autograd.grad(reference(x_ref, weight), x_ref)
        compare_arrays(grad, expected_grad, what=f"the gradient of {what} with respect to x",
                       rtol=1e-3, atol=1e-3 * float(expected_grad.abs().max()))
    return "value and gradient, 2 weights, a batch of 2 images with flat patches"


# --- The reference fit that lesson 05 uses after the exercises ------------------------------

def record_fit(net, z, y, A, x_true, *, lam=0.0, n_iter=1500, lr=1e-2, noise_norm=None,
               tau=1.0, store_every=10, progress=None, stop=False):
    """Fit ``net`` to one sinogram ``y`` (1, 1, n_angles, n_det) and record the fit.

    Lesson 05's Exercises 1 to 3 with bookkeeping: ``n_iter`` Adam steps on
    ½‖A net(z) − y‖² + lam · TV(net(z)).  ``x_true`` (1, 1, N, N) is used only to
    score each step (PSNR, data range 1), never to fit.  Returns a dict of per-step
    lists ("misfit", "psnr", "seconds"), stored images ("iterates": {k: image}, every
    ``store_every`` steps), the last, best ("x_best", "k_best") and discrepancy-stopped
    ("x_stop", "k_stop": the first step with misfit ≤ tau · noise_norm, or the last)
    images.  ``progress`` wraps the range of steps (e.g. a tqdm partial).  With
    ``stop=True`` the fit ends at the discrepancy stop, as it would on a real scan
    ("x_last" is then "x_stop").
    """
    from ..metrics import psnr
    from ..operators.finite_differences import total_variation

    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    history = dict(misfit=[], psnr=[], seconds=[], iterates={}, k_best=0, k_stop=None)
    steps = range(1, n_iter + 1)
    start = time.perf_counter()
    for k in (progress(steps) if progress is not None else steps):
        x = net(z)
        residual = A(x) - y
        loss = 0.5 * (residual ** 2).sum()
        if lam > 0:
            loss = loss + lam * total_variation(x).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

        x = x.detach()
        history["misfit"].append(float(torch.linalg.vector_norm(residual.detach())))
        history["psnr"].append(float(psnr(x, x_true, data_range=1.0)))
        history["seconds"].append(time.perf_counter() - start)
        if k == 1 or history["psnr"][-1] > history["psnr"][history["k_best"] - 1]:
            history["k_best"], history["x_best"] = k, x.cpu()
        within_noise = noise_norm is not None and history["misfit"][-1] <= tau * noise_norm
        if history["k_stop"] is None and within_noise:
            history["k_stop"], history["x_stop"] = k, x.cpu()
            if stop:
                break
        if k % store_every == 0:
            history["iterates"][k] = x.cpu()
    history["x_last"] = x.cpu()
    if history["k_stop"] is None:     # never reached the noise level: take the last step
        history["k_stop"], history["x_stop"] = len(history["misfit"]), x.cpu()
    return history
