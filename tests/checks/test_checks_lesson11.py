"""The checks of lesson 11 accept the reference answers and diagnose typical mistakes."""

import pytest
import torch

import course_utils as cu
from course_utils.checks import lesson11
from lesson_references import reference, run, stub

# The reference answers, from solutions/11_plug_and_play_diffusion.py (lesson_references.py).
ref = reference("11")


# --- Exercise 1: the plug-and-play iteration ----------------------------------------------

def pnp_course(A, y, denoiser, n_iter, sigma, step, x0):
    return cu.pnp_pgd(A, y, denoiser, n_iter, sigma=sigma, step=step, x0=x0)


def pnp_two_lines(A, y, denoiser, n_iter, sigma, step, x0):
    x = x0.clone()
    for _ in range(n_iter):
        z = x - step * A.T(A(x) - y)
        x = denoiser(z, sigma)
    return x


def make_pnp(order="gradient first", sign=-1.0, use_step=True, use_x0=True, extra=0,
             sigma_from_step=False):
    def pnp(A, y, denoiser, n_iter, sigma, step, x0):
        tau = step if use_step else 1.0
        x = x0.clone() if use_x0 else torch.zeros_like(x0)
        level = step if sigma_from_step else sigma
        for _ in range(n_iter + extra):
            if order == "gradient first":
                x = denoiser(x + sign * tau * A.T(A(x) - y), level)
            else:
                x = denoiser(x, level)
                x = x + sign * tau * A.T(A(x) - y)
        return x
    return pnp


@pytest.mark.parametrize("good", ["reference", pnp_course, pnp_two_lines])
def test_pnp_accepts_correct_answers(good):
    fn = ref.pnp if good == "reference" else good
    result, line = run(lesson11.pnp_iterations, fn)
    assert result.status == "passed", line


@pytest.mark.parametrize("wrong, diagnosis", [
    (make_pnp(order="denoiser first"), "denoise first"),
    (make_pnp(sign=1.0), "uphill"),
    (make_pnp(use_step=False), "step size"),
    (make_pnp(use_x0=False), "starting image x0"),
    (make_pnp(extra=-1), "one iteration too few"),
    (make_pnp(sigma_from_step=True), "noise level"),
    (lambda A, y, denoiser, n_iter, sigma, step, x0: None, "None"),
])
def test_pnp_diagnoses_mistakes(wrong, diagnosis):
    result, line = run(lesson11.pnp_iterations, wrong)
    assert result.status == "failed", line
    assert diagnosis in line, line


def test_pnp_stub_is_not_attempted():
    result, line = run(lesson11.pnp_iterations, stub)
    assert result.status == "not attempted", line


# --- Exercise 2: choosing sigma on validation -----------------------------------------------

def choose_course(reconstruct, sigmas, y, x):
    return cu.choose_on_validation(reconstruct, sigmas, y, x)[0]


def choose_by_mse(reconstruct, sigmas, y, x):
    errors = [float(((reconstruct(y, s) - x) ** 2).mean()) for s in sigmas]
    return sigmas[min(range(len(sigmas)), key=errors.__getitem__)]


def _scores(reconstruct, sigmas, y, x, images=slice(None)):
    return [float(cu.psnr(reconstruct(y, s)[images], x[images], data_range=1).mean())
            for s in sigmas]


@pytest.mark.parametrize("good", ["reference", choose_course, choose_by_mse])
def test_choose_sigma_accepts_correct_answers(good):
    fn = ref.choose_sigma if good == "reference" else good
    result, line = run(lesson11.choose_sigma, fn)
    assert result.status == "passed", line


@pytest.mark.parametrize("wrong, diagnosis", [
    (lambda r, s, y, x: s[min(range(len(s)), key=_scores(r, s, y, x).__getitem__)], "worst"),
    (lambda r, s, y, x: s[max(range(len(s)), key=_scores(r, s, y, x, slice(0, 1)).__getitem__)],
     "best for one image"),
    (lambda r, s, y, x: max(_scores(r, s, y, x)), "best score"),
    (lambda r, s, y, x: s[0], "best mean validation PSNR is at"),
    (lambda r, s, y, x: None, "expected one of the sigmas"),
])
def test_choose_sigma_diagnoses_mistakes(wrong, diagnosis):
    result, line = run(lesson11.choose_sigma, wrong)
    assert result.status == "failed", line
    assert diagnosis in line, line


# --- Exercise 3: one guided step -------------------------------------------------------------

def guided_course(prior, x_t, t, t_next, A, y, guidance):
    return prior.guided_step(x_t, t, t_next, A, y, guidance)[0]


def make_guided(pull="through network", sign=-1.0, normalise="squared"):
    def step(prior, x_t, t, t_next, A, y, guidance):
        x_next, _ = prior.ddim_step(x_t, t, t_next)
        if pull == "none":
            return x_next
        with torch.enable_grad():
            if pull == "through network":
                x = x_t.detach().requires_grad_(True)
                x0 = (prior.denoised(x, t) + 1) / 2
            elif pull == "units":
                x = x_t.detach().requires_grad_(True)
                x0 = prior.denoised(x, t)
            else:
                x = ((prior.denoised(x_t, t) + 1) / 2).detach().requires_grad_(True)
                x0 = x
            m = torch.linalg.vector_norm((A(x0) - y).flatten(1), dim=1)
            g, = torch.autograd.grad(m.sum(), x)
        size = torch.linalg.vector_norm(g.flatten(1), dim=1)
        zeta = {"squared": guidance * m.detach() / size ** 2,
                "plain": guidance * m.detach() / size,
                "none": guidance * torch.ones_like(size)}[normalise]
        return x_next + sign * zeta.reshape(-1, 1, 1, 1) * g
    return step


def guided_one_by_one(prior, x_t, t, t_next, A, y, guidance):
    return torch.cat([guided_course(prior, x_t[b:b + 1], t, t_next, A, y[b:b + 1], guidance)
                      for b in range(len(x_t))])


@pytest.mark.parametrize("good", ["reference", guided_course, make_guided(), guided_one_by_one,
                                  lambda *args: guided_course(*args).double()])
def test_guided_step_accepts_correct_answers(good):
    fn = ref.guided_step if good == "reference" else good
    result, line = run(lesson11.guided_step, fn)
    assert result.status == "passed", line


@pytest.mark.parametrize("wrong, diagnosis", [
    (make_guided(pull="none"), "plain DDIM step"),
    (make_guided(pull="x0"), "with respect to x̂0"),
    (make_guided(sign=1.0), "away from the data"),
    (make_guided(normalise="plain"), "instead of ‖g‖²"),
    (make_guided(normalise="none"), "raw gradient"),
    (make_guided(pull="units"), "A takes images in [0, 1]"),
])
def test_guided_step_diagnoses_mistakes(wrong, diagnosis):
    result, line = run(lesson11.guided_step, wrong)
    assert result.status == "failed", line
    assert diagnosis in line, line


def test_guided_step_stub_is_not_attempted():
    result, line = run(lesson11.guided_step, stub)
    assert result.status == "not attempted", line
