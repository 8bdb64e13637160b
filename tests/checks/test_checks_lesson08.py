"""The checks of lesson 08 accept the reference answers and diagnose typical mistakes."""

import pytest
import torch
import torch.nn.functional as F

import course_utils as cu
from lesson_references import reference

# The reference answers, from solutions/08_gans.py (see lesson_references.py).
ref = reference("08")


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise: replace this line with your code")


# --- wrong answers -----------------------------------------------------------------------------

def make_d_step(*, detach=True, real=1.0, fake=0.0, reduction="mean", zero_grad=True,
                step=True, half=False):
    def d_step(G, D, x_real, z, opt_D):
        x_fake = G(z).detach() if detach else G(z)
        lr_, lf = D(x_real), D(x_fake)
        loss = (F.binary_cross_entropy_with_logits(lr_, torch.full_like(lr_, real),
                                                   reduction=reduction)
                + F.binary_cross_entropy_with_logits(lf, torch.full_like(lf, fake),
                                                     reduction=reduction))
        if half:
            loss = 0.5 * loss
        if zero_grad:
            opt_D.zero_grad()
        loss.backward()
        if step:
            opt_D.step()
        return loss.item()
    return d_step


def make_g_step(*, loss="non-saturating", detach=False, zero_grad=True, step=True):
    def g_step(G, D, z, opt_G):
        x = G(z).detach() if detach else G(z)
        logits = D(x)
        if loss == "saturating":
            value = -F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits))
        elif loss == "label0":
            value = F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits))
        elif loss == "sum":
            value = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits),
                                                       reduction="sum")
        else:
            value = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        if zero_grad:
            opt_G.zero_grad()
        if value.requires_grad:
            value.backward()
        if step:
            opt_G.step()
        return value.item()
    return g_step


def make_latent(*, mu_used=True, sign=1.0, prior_scale=0.5, misfit_scale=0.5, params="z",
                in_place=False, off_by_one=False, step=True, global_lr=None, global_mu=None):
    def latent(G, A, y, z0, n_iter, lr, mu):
        lr = lr if global_lr is None else global_lr      # the notebook's LR_Z = 0.05
        mu = mu if global_mu is None else global_mu      # the notebook's MU = 30
        z = z0.requires_grad_(True) if in_place else z0.clone().requires_grad_(True)
        optimizer = torch.optim.Adam([z] if params == "z" else list(G.parameters()), lr=lr)
        for _ in range(n_iter - (1 if off_by_one else 0)):
            loss = misfit_scale * (A(G(z)) - y).pow(2).sum()
            if mu_used:
                loss = loss + sign * prior_scale * mu * z.pow(2).sum()
            optimizer.zero_grad()
            loss.backward()
            if step:
                optimizer.step()
        return z.detach()
    return latent


# --- correct answers written differently ------------------------------------------------------

def d_step_with_course_loss(G, D, x_real, z, opt_D):
    with torch.no_grad():
        x_fake = G(z)
    opt_D.zero_grad()
    loss = cu.discriminator_loss(D(x_real), D(x_fake))
    loss.backward()
    opt_D.step()
    return float(loss.detach())


def d_step_with_logsigmoid(G, D, x_real, z, opt_D):
    fake = D(G(z).detach())
    loss = -F.logsigmoid(D(x_real)).mean() - F.logsigmoid(-fake).mean()
    opt_D.zero_grad()
    loss.backward()
    opt_D.step()
    return loss.item()


def g_step_with_logsigmoid(G, D, z, opt_G):
    loss = -F.logsigmoid(D(G(z))).mean()
    opt_G.zero_grad()
    loss.backward()
    opt_G.step()
    return loss.item()


def g_step_with_course_loss(G, D, z, opt_G):
    opt_G.zero_grad()
    loss = cu.generator_loss(D(G(z)))
    loss.backward()
    opt_G.step()
    return float(loss.detach())


def latent_written_differently(G, A, y, z0, n_iter, lr, mu):
    z = z0.detach().clone()
    z.requires_grad = True
    optimizer = torch.optim.Adam(params=[z], lr=lr)
    for _ in range(n_iter):
        optimizer.zero_grad()
        residual = A(G(z)) - y
        loss = torch.sum(residual * residual) / 2 + mu / 2 * torch.sum(z * z)
        loss.backward()
        optimizer.step()
    return z.detach().clone()


def latent_with_norms(G, A, y, z0, n_iter, lr, mu):
    z = torch.nn.Parameter(z0.clone())
    optimizer = torch.optim.Adam([z], lr)
    for _ in range(n_iter):
        loss = 0.5 * torch.linalg.vector_norm(A(G(z)) - y) ** 2 \
            + 0.5 * mu * torch.linalg.vector_norm(z) ** 2
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return z.data


# --- tests -------------------------------------------------------------------------------------

@pytest.mark.parametrize("check, answer", [
    (cu.checks.gan_discriminator_step, d_step_with_course_loss),
    (cu.checks.gan_discriminator_step, d_step_with_logsigmoid),
    (cu.checks.gan_generator_step, g_step_with_logsigmoid),
    (cu.checks.gan_generator_step, g_step_with_course_loss),
    (cu.checks.latent_optimisation, latent_written_differently),
    (cu.checks.latent_optimisation, latent_with_norms),
])
def test_checks_accept_answers_written_differently(check, answer):
    result = check(answer)
    assert result, result.message

@pytest.mark.parametrize("check, answer", [
    (cu.checks.gan_discriminator_step, lambda: ref.discriminator_step),
    (cu.checks.gan_generator_step, lambda: ref.generator_step),
    (cu.checks.latent_optimisation, lambda: ref.latent_optimisation),
    (cu.checks.noise_consistent_mu, lambda: ref.noise_consistent_mu),
])
def test_checks_accept_the_reference_answers(check, answer, capsys):
    result = check(answer())
    assert result, result.message
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("check, answer", [
    (cu.checks.gan_discriminator_step, make_d_step()),
    (cu.checks.gan_generator_step, make_g_step()),
    (cu.checks.latent_optimisation, make_latent()),
])
def test_the_wrong_answers_without_their_mistake_pass(check, answer):
    result = check(answer)
    assert result, result.message


@pytest.mark.parametrize("check", [cu.checks.gan_discriminator_step,
                                   cu.checks.gan_generator_step,
                                   cu.checks.latent_optimisation,
                                   cu.checks.noise_consistent_mu])
def test_stubs_are_not_attempted(check):
    assert check(stub).status == "not attempted"


@pytest.mark.parametrize("wrong, words", [
    (make_d_step(detach=False), "detach"),
    (make_d_step(real=0.0, fake=1.0), "swapped"),
    (make_d_step(reduction="sum"), "summed"),
    (make_d_step(half=True), "half"),
    (make_d_step(zero_grad=False), "zero_grad"),
    (make_d_step(step=False), "opt_D.step()"),
])
def test_discriminator_step_diagnoses_mistakes(wrong, words):
    result = cu.checks.gan_discriminator_step(wrong)
    assert result.status == "failed"
    assert words in result.message, result.message


@pytest.mark.parametrize("wrong, words", [
    (make_g_step(loss="saturating"), "non-saturating"),
    (make_g_step(loss="label0"), "label 0"),
    (make_g_step(loss="sum"), "summed"),
    (make_g_step(detach=True), "detached"),
    (make_g_step(zero_grad=False), "zero_grad"),
    (make_g_step(step=False), "opt_G.step()"),
])
def test_generator_step_diagnoses_mistakes(wrong, words):
    result = cu.checks.gan_generator_step(wrong)
    assert result.status == "failed"
    assert words in result.message, result.message


def test_generator_step_must_not_change_the_discriminator():
    def both(G, D, z, opt_G):
        opt_D = torch.optim.SGD(D.parameters(), lr=0.1)
        loss = ref.generator_step(G, D, z, opt_G)
        opt_D.step()                 # D got gradients too: updating it is wrong here
        return loss
    result = cu.checks.gan_generator_step(both)
    assert result.status == "failed" and "update G only" in result.message


@pytest.mark.parametrize("wrong, words", [
    (make_latent(mu_used=False), "without the prior"),
    (make_latent(sign=-1.0), "sign flipped"),
    (make_latent(prior_scale=1.0), "μ‖z‖²"),
    (make_latent(misfit_scale=1.0), "without its ½"),
    (make_latent(off_by_one=True), "off by one"),
    (make_latent(params="G"), "generator's weights changed"),
    (make_latent(in_place=True), "in place"),
    (make_latent(step=False), "did not move"),
    (make_latent(global_lr=0.05), "notebook's learning rate"),
    (make_latent(global_mu=30.0), "notebook's MU"),
])
def test_latent_optimisation_diagnoses_mistakes(wrong, words):
    result = cu.checks.latent_optimisation(wrong)
    assert result.status == "failed"
    assert words in result.message, result.message


def test_latent_optimisation_missing_return():
    def no_return(G, A, y, z0, n_iter, lr, mu):
        ref.latent_optimisation(G, A, y, z0, n_iter, lr, mu)
    result = cu.checks.latent_optimisation(no_return)
    assert result.status == "failed" and "return" in result.message


# --- Exercise 4: the noise-consistent weight --------------------------------------------------

def make_mu(kind="right"):
    def mu(y, noise_level):
        if kind == "numpy":           # correct, written differently
            import numpy as np
            return float(np.mean(np.abs(y.numpy())) ** 2 * noise_level ** 2)
        if kind == "tensor":          # correct, a 0-d tensor
            return (noise_level * y.abs().mean()) ** 2
        sigma = noise_level * y.abs().mean()
        return float({"right": sigma ** 2, "sigma": sigma, "inverse": 1 / sigma ** 2,
                      "half": sigma ** 2 / 2, "level": noise_level ** 2,
                      "norm": (noise_level * y.norm()) ** 2,
                      "rms": (noise_level * y.pow(2).mean().sqrt()) ** 2,
                      "no-abs": (noise_level * y.mean()) ** 2}[kind])
    return mu


@pytest.mark.parametrize("kind", ["right", "numpy", "tensor"])
def test_noise_consistent_mu_accepts_answers_written_differently(kind):
    result = cu.checks.noise_consistent_mu(make_mu(kind))
    assert result, result.message


@pytest.mark.parametrize("kind, words", [
    ("sigma", "that is σ"),
    ("inverse", "1/σ²"),
    ("half", "σ²/2"),
    ("level", "not noise_level alone"),
    ("norm", "MEAN absolute"),
    ("rms", "root mean square"),
    ("no-abs", "mean of |y|"),
])
def test_noise_consistent_mu_diagnoses_mistakes(kind, words):
    result = cu.checks.noise_consistent_mu(make_mu(kind))
    assert result.status == "failed"
    assert words in result.message, result.message


def test_noise_consistent_mu_needs_one_number():
    result = cu.checks.noise_consistent_mu(
        lambda y, level: (level * y.abs().mean(dim=(-2, -1))) ** 2)
    assert result.status == "failed" and "one number" in result.message


def test_map_weight_is_the_reference_answer():
    y = torch.rand(3, 1, 6, 9, generator=torch.Generator().manual_seed(0)) - 0.2
    assert abs(cu.checks.lesson08.map_weight(y, 0.025)
               - ref.noise_consistent_mu(y, 0.025)) < 1e-9


def test_generator_step_reference_passes_its_check():
    assert cu.checks.gan_generator_step(cu.checks.lesson08.generator_step_reference)
