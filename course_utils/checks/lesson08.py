"""Checks for the exercises of lesson 08: generative adversarial networks.

Each check runs the learner's function on tiny stand-ins for the networks (a linear
"generator" from 3 latent numbers to a 4 x 4 image, a linear "discriminator") with a
plain SGD optimiser, so that the expected update can be computed exactly here.  When the
answer is wrong, the usual mistakes are recognised: labels swapped, a generated batch
not detached (the discriminator step then also pushes gradients into the generator), a
forgotten ``zero_grad`` or ``step``, the saturating instead of the non-saturating
generator loss, sums instead of means, a missing prior term, optimising the generator's
weights instead of the latent vector, and so on.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..operators.linear_operator import MatrixOperator
from ._feedback import CheckFailed, exercise_check, expect

__all__ = ["gan_discriminator_step", "gan_generator_step", "latent_optimisation",
           "noise_consistent_mu"]

_LATENT, _SIDE, _BATCH, _LR = 3, 4, 6, 0.1


# --- reference implementations the notebook uses after the exercises -------------------------
# (so that a learner who skipped an exercise can run the rest of the lesson, and so that
# the student copy shows no exercise's answer in a later cell)

def generator_step_reference(G, D, z, opt_G) -> float:
    """One non-saturating generator step (exercise 2 of lesson 08); returns L_G."""
    from ..learning.gan import generator_loss
    loss = generator_loss(D(G(z)))
    opt_G.zero_grad()
    loss.backward()
    opt_G.step()
    return loss.item()


def correction_reconstruction(G, A, y, z0, *, mu: float, lam: float, n_iter: int = 150,
                              lr: float = 0.01):
    """GAN prior plus a correction: Adam over (z, v) on
    ½‖A(G(z) + v) − y‖² + μ/2‖z‖² + λ TV(v), from (z0, 0); returns G(ẑ) + v̂.

    Lesson 08, section 5 (in the spirit of Dhar et al., 2018).  ``y`` (B, 1, n_angles,
    n_det), ``z0`` (B, latent_dim); the result has shape (B, 1, N, N).
    """
    from ..operators.finite_differences import total_variation
    z = z0.detach().clone().requires_grad_(True)
    v = torch.zeros(len(y), 1, *A.domain_shape, device=y.device, requires_grad=True)
    optimizer = torch.optim.Adam([z, v], lr=lr)
    with torch.enable_grad():
        for _ in range(n_iter):
            x = G(z) + v
            loss = (0.5 * (A(x) - y).pow(2).sum() + 0.5 * mu * z.pow(2).sum()
                    + lam * total_variation(v).sum())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return (G(z) + v).detach()


# --- tiny stand-ins ---------------------------------------------------------------------------

class _TinyGenerator(nn.Module):
    """z (B, 3) -> images (B, 1, 4, 4): one linear layer and a sigmoid."""

    latent_dim = _LATENT

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(_LATENT, _SIDE * _SIDE)

    def forward(self, z):
        return torch.sigmoid(self.linear(z)).view(-1, 1, _SIDE, _SIDE)


class _TinyDiscriminator(nn.Module):
    """images (B, 1, 4, 4) -> logits (B,): one linear layer."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(_SIDE * _SIDE, 1)

    def forward(self, x):
        return self.linear(x.flatten(1)).squeeze(1)


def _networks(seed=0):
    torch.manual_seed(seed)
    G, D = _TinyGenerator().double(), _TinyDiscriminator().double()
    g = torch.Generator().manual_seed(seed + 1)
    x_real = torch.rand(_BATCH, 1, _SIDE, _SIDE, generator=g, dtype=torch.float64)
    z = torch.randn(_BATCH, _LATENT, generator=g, dtype=torch.float64)
    return G, D, x_real, z


def _parameters(net):
    return [p.detach().clone() for p in net.parameters()]


def _same(a, b, tol=1e-10):
    return all(torch.allclose(p, q, rtol=0, atol=tol) for p, q in zip(a, b))


def _sgd_update(params, grads):
    return [p - _LR * g for p, g in zip(params, grads)]


def _as_number(value, what):
    if isinstance(value, torch.Tensor):
        expect(value.numel() == 1, f"{what} should be one number (the loss), got a tensor "
                                   f"of shape {tuple(value.shape)}")
        value = value.item()
    expect(isinstance(value, (int, float)), f"{what} should return the loss as a number "
                                            f"(loss.item()), got {type(value).__name__}")
    return float(value)


def _garbage_gradients(net, seed=5):
    """Fill the .grad of every parameter with nonsense, as a previous step would leave.

    Returns copies of the gradients put there.
    """
    g = torch.Generator().manual_seed(seed)
    for p in net.parameters():
        p.grad = torch.randn(p.shape, generator=g, dtype=p.dtype)
    return [p.grad.clone() for p in net.parameters()]


# --- Exercise 1: the discriminator step -------------------------------------------------------

def _d_loss(D, x_real, x_fake, real_label=1.0, fake_label=0.0, reduction="mean"):
    logits_real, logits_fake = D(x_real), D(x_fake)
    return (F.binary_cross_entropy_with_logits(
        logits_real, torch.full_like(logits_real, real_label), reduction=reduction)
        + F.binary_cross_entropy_with_logits(
            logits_fake, torch.full_like(logits_fake, fake_label), reduction=reduction))


@exercise_check("the discriminator step")
def gan_discriminator_step(discriminator_step):
    """Check ``discriminator_step(G, D, x_real, z, opt_D) -> float``."""
    G, D, x_real, z = _networks()
    G_before, D_before = _parameters(G), _parameters(D)
    with torch.no_grad():
        x_fake = G(z)
    expected_loss = _d_loss(D, x_real, x_fake)
    grads = torch.autograd.grad(expected_loss, list(D.parameters()))
    D_expected = _sgd_update(D_before, grads)
    expected_loss = expected_loss.item()

    _garbage_gradients(D)          # a correct step clears them first
    opt_D = torch.optim.SGD(D.parameters(), lr=_LR)
    loss = _as_number(discriminator_step(G, D, x_real, z, opt_D), "discriminator_step")
    D_after = _parameters(D)

    expect(_same(G_before, _parameters(G)),
           "the generator's weights changed: the discriminator step must update D only")
    if abs(loss - expected_loss) > 1e-6 * max(1.0, abs(expected_loss)):
        with torch.no_grad():
            wrong = {
                "swapped": float(_d_loss(_discriminator_with(D_before), x_real, x_fake, 0.0, 1.0)),
                "sum": float(_d_loss(_discriminator_with(D_before), x_real, x_fake,
                                     reduction="sum")),
            }
        if abs(loss - wrong["swapped"]) < 1e-6 * max(1.0, abs(loss)):
            raise CheckFailed("the loss has the labels swapped: real images should get "
                              "label 1 (torch.ones_like) and generated ones label 0")
        if abs(loss - wrong["sum"]) < 1e-6 * max(1.0, abs(loss)):
            raise CheckFailed("the loss is summed over the batch; use the mean (the "
                              "default reduction of binary_cross_entropy_with_logits)")
        if abs(loss - 0.5 * expected_loss) < 1e-6 * max(1.0, abs(loss)):
            raise CheckFailed("the loss is half the expected value: add the two terms "
                              "(real and generated), do not average them")
        if abs(loss + expected_loss) < 1e-6 * max(1.0, abs(loss)):
            raise CheckFailed("the loss has the wrong sign: the discriminator *minimises* "
                              "the binary cross-entropy")
        raise CheckFailed(f"the returned loss is {loss:.6g}, expected {expected_loss:.6g} "
                          f"(binary cross-entropy of D's logits: real images label 1, "
                          f"G(z) label 0, mean over each batch, the two terms added)")
    if _same(D_after, D_before):
        raise CheckFailed("the discriminator's weights did not change — did you call "
                          "opt_D.step() after loss.backward()?")
    if not _same(D_after, D_expected, 1e-8):
        raise CheckFailed("the update of D is not one step along the gradient of this "
                          "batch's loss — did you call opt_D.zero_grad() before "
                          "loss.backward()? (Old gradients add up otherwise.)")
    if any(p.grad is not None and p.grad.abs().sum() > 0 for p in G.parameters()):
        raise CheckFailed("gradients reached the generator: use G(z).detach() (or "
                          "torch.no_grad()) for the generated images in the discriminator "
                          "step; they are wasted work and pollute G's next step")
    return "loss value, update of D, G untouched"


def _discriminator_with(D_before):
    """A tiny discriminator with the weights ``D_before``."""
    copy = _TinyDiscriminator().double()
    with torch.no_grad():
        for p, q in zip(copy.parameters(), D_before):
            p.copy_(q)
    return copy


# --- Exercise 2: the generator step -----------------------------------------------------------

@exercise_check("the generator step")
def gan_generator_step(generator_step):
    """Check ``generator_step(G, D, z, opt_G) -> float`` (non-saturating loss)."""
    G, D, _, z = _networks(seed=3)
    G_before, D_before = _parameters(G), _parameters(D)
    logits = D(G(z))
    expected = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    grads = torch.autograd.grad(expected, list(G.parameters()))
    G_expected = _sgd_update(G_before, grads)
    with torch.no_grad():
        saturating = float(-F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits)))
        summed = float(F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits),
                                                          reduction="sum"))
        label_zero = float(F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits)))
    expected = expected.item()
    G.zero_grad()
    D.zero_grad()

    garbage = _garbage_gradients(G)
    opt_G = torch.optim.SGD(G.parameters(), lr=_LR)
    loss = _as_number(generator_step(G, D, z, opt_G), "generator_step")
    G_after = _parameters(G)

    expect(_same(D_before, _parameters(D)),
           "the discriminator's weights changed: the generator step must update G only")

    def near(a, b):
        return abs(a - b) < 1e-6 * max(1.0, abs(b))

    if not near(loss, expected):
        if near(loss, saturating):
            raise CheckFailed("this is the saturating loss log(1 − σ(D(G(z)))): its "
                              "gradient vanishes when D rejects G's images. Use the "
                              "non-saturating loss: label 1 for G(z), "
                              "binary_cross_entropy_with_logits(D(G(z)), ones)")
        if near(loss, label_zero):
            raise CheckFailed("the generated images got label 0: in the generator step "
                              "they should be labelled *real* (1), to fool D")
        if near(loss, summed):
            raise CheckFailed("the loss is summed over the batch; use the mean")
        if near(loss, -expected):
            raise CheckFailed("the loss has the wrong sign")
        raise CheckFailed(f"the returned loss is {loss:.6g}, expected {expected:.6g} "
                          f"(binary cross-entropy of D(G(z)) with label 1, mean over the "
                          f"batch)")
    if _same(G_after, G_before):
        grads = [torch.zeros_like(p) if p.grad is None else p.grad for p in G.parameters()]
        if _same(grads, garbage) or all(g.abs().sum() == 0 for g in grads):
            raise CheckFailed("no gradient reached the generator — is G(z) detached (or "
                              "computed under torch.no_grad())? In the generator step the "
                              "gradient must flow through D into G")
        raise CheckFailed("the generator's weights did not change — did you call "
                          "opt_G.step() after loss.backward()?")
    if not _same(G_after, G_expected, 1e-8):
        raise CheckFailed("the update of G is not one step along the gradient of this "
                          "batch's loss — did you call opt_G.zero_grad() before "
                          "loss.backward()? (Old gradients add up otherwise.)")
    return "non-saturating loss, update of G, D untouched"


# --- Exercise 3: the latent optimisation ------------------------------------------------------

def _reference_latent(G, A, y, z0, n_iter, lr, mu, *, misfit_scale=0.5, prior_scale=0.5,
                      sign=1.0):
    z = z0.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=lr)
    for _ in range(n_iter):
        loss = (misfit_scale * (A(G(z)) - y).pow(2).sum()
                + sign * prior_scale * mu * z.pow(2).sum())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return z.detach()


def _latent_problem():
    torch.manual_seed(11)
    G = _TinyGenerator().double()
    g = torch.Generator().manual_seed(12)
    matrix = torch.randn(10, _SIDE * _SIDE, generator=g, dtype=torch.float64)
    A = MatrixOperator(matrix, (_SIDE, _SIDE), (2, 5))
    z_true = torch.randn(2, _LATENT, generator=g, dtype=torch.float64)
    with torch.no_grad():
        y = A(G(z_true)) + 0.05 * torch.randn(2, 1, 2, 5, generator=g, dtype=torch.float64)
    z0 = torch.randn(2, _LATENT, generator=g, dtype=torch.float64)
    return G, A, y, z0


@exercise_check("the latent optimisation")
def latent_optimisation(latent_optimisation):
    """Check ``latent_optimisation(G, A, y, z0, n_iter, lr, mu) -> z``."""
    G, A, y, z0 = _latent_problem()
    # n_iter, lr and mu differ from the notebook's LATENT_STEPS, LR_Z = 0.05 and MU: an
    # answer that uses the notebook's globals instead of its arguments fails here
    n_iter, lr, mu = 60, 0.03, 0.5
    G_before, z0_before = _parameters(G), z0.clone()
    expected = _reference_latent(G, A, y, z0, n_iter, lr, mu)
    z = latent_optimisation(G, A, y, z0, n_iter, lr, mu)

    expect(z is not None, "latent_optimisation returned None — did you forget `return z`?")
    expect(isinstance(z, torch.Tensor), f"latent_optimisation should return the latent "
                                        f"vectors as a tensor, got {type(z).__name__}")
    expect(z.shape == z0.shape, f"the returned z has shape {tuple(z.shape)}, expected "
                                f"{tuple(z0.shape)} (the shape of z0)")
    expect(_same(G_before, _parameters(G)),
           "the generator's weights changed: optimise the latent vector z only "
           "(torch.optim.Adam([z], lr=lr)), the generator stays fixed")
    expect(torch.equal(z0, z0_before),
           "z0 was changed in place; start from a copy: z = z0.clone().requires_grad_(True)")
    z = z.detach().to(expected.dtype)
    with torch.no_grad():
        misfit_start = float((A(G(z0)) - y).norm())
        misfit_end = float((A(G(z)) - y).norm())
    if torch.allclose(z, expected, rtol=1e-4, atol=1e-6):
        return f"data misfit {misfit_start:.2f} → {misfit_end:.2f} in {n_iter} steps"
    expect(not torch.allclose(z, z0, atol=1e-12),
           "z did not move from z0 — did you call optimizer.step() in the loop (and "
           "return the optimised z, not z0)?")
    variants = {
        "without the prior term μ/2‖z‖² (is mu used?)":
            dict(mu=0.0),
        "with the prior's sign flipped: the prior should *add* μ/2‖z‖² to the loss":
            dict(sign=-1.0),
        "with the prior μ‖z‖² instead of μ/2‖z‖² (or the data term without its ½)":
            dict(prior_scale=1.0),
        "with the data term ‖A G(z) − y‖² without its ½ (or μ/2 halved)":
            dict(misfit_scale=1.0),
        f"with {n_iter - 1} steps instead of {n_iter} (off by one in the loop?)":
            dict(n_iter=n_iter - 1),
        "with the notebook's learning rate LR_Z = 0.05 instead of the argument lr (a "
        "function must use its arguments, never the notebook's globals)":
            dict(lr=0.05),
        "with the notebook's MU = 30 instead of the argument mu (a function must use its "
        "arguments, never the notebook's globals)":
            dict(mu=30.0),
    }
    for mistake, change in variants.items():
        args = dict(n_iter=n_iter, lr=lr, mu=mu)
        args.update({k: v for k, v in change.items() if k in args})
        scales = {k: v for k, v in change.items() if k not in args}
        wrong = _reference_latent(G, A, y, z0, args["n_iter"], args["lr"], args["mu"],
                                  **scales)
        if torch.allclose(z, wrong, rtol=1e-4, atol=1e-6):
            raise CheckFailed(f"your z matches the optimisation {mistake}")
    if misfit_end >= misfit_start:
        raise CheckFailed(f"the data misfit went up ({misfit_start:.3g} → "
                          f"{misfit_end:.3g}): is the loss ½‖A G(z) − y‖² + μ/2‖z‖², "
                          f"minimised (not maximised) with Adam over z?")
    raise CheckFailed(f"z differs from the expected result (largest difference "
                      f"{float((z - expected).abs().max()):.3g}): use Adam over [z] with "
                      f"learning rate lr, n_iter steps, loss ½‖A G(z) − y‖² + μ/2‖z‖² "
                      f"(sums over all entries), zero_grad before backward")


# --- Exercise 4: the noise-consistent weight of the prior -------------------------------------

def map_weight(y, noise_level: float) -> float:
    """The MAP weight μ = σ² of ½‖A G(z) − y‖² + μ/2‖z‖², with σ = noise_level · mean |y|
    (the reference answer of exercise 4 of lesson 08, used by the notebook after it)."""
    sigma = noise_level * float(torch.as_tensor(y).abs().mean())
    return sigma ** 2


def _mu_variants(y, level):
    """The reference weight sigma^2 and the usual wrong ones, as floats."""
    y = torch.as_tensor(y, dtype=torch.float64)
    sigma = level * float(y.abs().mean())
    rms = level * float(y.pow(2).mean().sqrt())
    return {
        "right": sigma ** 2,
        "sigma": sigma,
        "inverse": 1 / sigma ** 2,
        "half": sigma ** 2 / 2,
        "twice": 2 * sigma ** 2,
        "level": level ** 2,
        "norm": (level * float(y.norm())) ** 2,
        "rms": rms ** 2,
        "no-abs": (level * float(y.mean())) ** 2,
    }


@exercise_check("the noise-consistent weight of the prior")
def noise_consistent_mu(my_noise_consistent_mu):
    """Check ``my_noise_consistent_mu(y, noise_level) -> float``: the weight μ for which
    ½‖A G(z) − y‖² + μ/2‖z‖² is σ² times the negative log-posterior, with Gaussian noise
    of standard deviation σ = noise_level · mean |y| and z ~ N(0, I): μ = σ².
    """
    g = torch.Generator().manual_seed(21)
    # made-up sinograms with values of both signs, and levels that are not the notebook's
    cases = [(torch.randn(1, 1, 5, 7, generator=g, dtype=torch.float64) + 0.8, 0.04),
             (3 * torch.rand(2, 1, 4, 9, generator=g, dtype=torch.float64) - 0.5, 0.1)]
    messages = {
        "sigma": "that is σ: the weight is its square, μ = σ² (the noise's variance)",
        "inverse": "that is 1/σ²: multiply the negative log-posterior ½‖AG(z) − y‖²/σ² + "
                   "½‖z‖² by σ² to get the lesson's form; then μ = σ²",
        "half": "that is σ²/2: the lesson's prior term is already μ/2 ‖z‖², so μ = σ²",
        "twice": "that is 2σ²: the lesson's prior term is μ/2 ‖z‖², so μ = σ²",
        "level": "σ is noise_level times the mean absolute value of y, not noise_level "
                 "alone: the setting's noise is relative to the data",
        "norm": "σ is noise_level times the MEAN absolute value of y (one reading), not "
                "times the norm of the whole sinogram",
        "rms": "σ is noise_level times the mean ABSOLUTE value of y (dival's convention), "
               "not its root mean square",
        "no-abs": "take the mean of |y|, not of y",
    }
    for y, level in cases:
        got = my_noise_consistent_mu(y.clone(), level)
        if got is None:
            raise CheckFailed("noise_consistent_mu returned None — did you forget a "
                              "`return`?")
        try:
            value = float(got)
        except (TypeError, ValueError, RuntimeError):
            raise CheckFailed(f"noise_consistent_mu should return one number, got a "
                              f"{type(got).__name__}") from None
        variants = _mu_variants(y, level)
        if math.isclose(value, variants["right"], rel_tol=1e-5):
            continue
        for name, message in messages.items():
            if math.isclose(value, variants[name], rel_tol=1e-5):
                raise CheckFailed(message)
        raise CheckFailed(f"for noise_level = {level} you returned {value:.6g}, expected "
                          f"{variants['right']:.6g} (σ² with σ = noise_level · mean |y|)")
    return "two made-up sinograms and noise levels"
