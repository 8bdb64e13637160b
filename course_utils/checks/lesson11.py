"""Checks for the exercises of lesson 11: plug-and-play and diffusion posterior sampling.

Each check runs the learner's function on small cases it makes up, compares with the
reference in :mod:`course_utils.reconstruction.plug_and_play` or
:mod:`course_utils.learning.diffusion` and, when the answer is wrong, recognises the usual
mistakes (the denoiser before the gradient step, gradient ascent, a forgotten step size
or starting image, one iteration too few; the smallest score instead of the largest, a
single image's best instead of the mean; no pull towards the data, a gradient that
skips the network, the wrong sign, a raw gradient without the normalisation) and says
which one it is.
"""

from __future__ import annotations

import torch

from ..learning.diffusion import DiffusionPrior
from ..operators.geometry import ParallelBeam
from ..operators.radon import RadonTransform
from ..reconstruction.plug_and_play import pnp_pgd
from ._feedback import CheckFailed, compare_arrays, exercise_check, expect

__all__ = ["pnp_iterations", "choose_sigma", "guided_step"]


def _close(a, b, rtol=1e-4, atol=1e-5) -> bool:
    return (isinstance(a, torch.Tensor) and a.shape == b.shape
            and bool(torch.allclose(a.detach().to(b.dtype), b, rtol=rtol, atol=atol)))


def _radon(size=12, n_angles=7, n_detectors=19):
    geometry = ParallelBeam(n_angles=n_angles, n_detectors=n_detectors)
    return RadonTransform(image_size=size, geometry=geometry)


# --- Exercise 1: the plug-and-play iteration ---------------------------------------------

def _toy_denoiser(x, sigma):
    """A nonlinear 'denoiser' that depends on sigma: blur, then a soft pull towards [0, 1]."""
    kernel = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16
    blurred = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (1, 1, 1, 1),
                                                                 mode="replicate"),
                                         kernel.to(x)[None, None])
    return (1 - sigma) * blurred + sigma * torch.sigmoid(4 * (blurred - 0.5))


def _pnp_variants(A, y, n_iter, sigma, step, x0):
    def loop(order="gradient first", sign=-1.0, tau=step, start=x0, iterations=n_iter,
             level=sigma):
        x = start.clone()
        for _ in range(iterations):
            if order == "gradient first":
                x = _toy_denoiser(x + sign * tau * A.T(A(x) - y), level)
            else:
                x = _toy_denoiser(x, level)
                x = x + sign * tau * A.T(A(x) - y)
        return x

    return {
        "denoiser first": loop(order="denoiser first"),
        "ascent": loop(sign=1.0),
        "no step": loop(tau=1.0),
        "zero start": loop(start=torch.zeros_like(x0)),
        "one too few": loop(iterations=n_iter - 1),
        "step as sigma": loop(level=step),
    }


_PNP_MISTAKES = {
    "denoiser first": "you denoise first and take the gradient step after it; PnP takes "
                      "the gradient step on the data term, then denoises its result",
    "ascent": "your gradient step goes uphill: the gradient of ½‖Ax − y‖² is Aᵀ(Ax − y), "
              "and the step subtracts it",
    "no step": "the gradient step ignores the step size τ (argument step)",
    "zero start": "you start from zeros instead of the starting image x0",
    "one too few": "you run one iteration too few: n_iter denoiser calls are expected",
    "step as sigma": "the denoiser gets the step size as its noise level: call "
                     "denoiser(v, sigma)",
}


@exercise_check("the plug-and-play iteration")
def pnp_iterations(my_pnp):
    """Check ``my_pnp(A, y, denoiser, n_iter, sigma, step, x0)``.

    It should run ``n_iter`` iterations of :math:`x \\leftarrow D_\\sigma(x - \\tau
    A^T(Ax - y))` from ``x0`` and return the last image.
    """
    gen = torch.Generator().manual_seed(21)
    A = _radon()
    for n_iter, sigma, step in ((4, 0.3, 0.004), (2, 0.1, 0.006)):
        x_true = torch.rand(2, 1, 12, 12, generator=gen)
        y = A(x_true) + 0.05 * torch.randn(2, 1, 7, 19, generator=gen)
        x0 = torch.rand(2, 1, 12, 12, generator=gen)
        what = f"my_pnp(A, y, denoiser, n_iter={n_iter}, sigma={sigma}, step={step}, x0)"
        got = my_pnp(A, y.clone(), _toy_denoiser, n_iter, sigma, step, x0.clone())
        expected = pnp_pgd(A, y, _toy_denoiser, n_iter, sigma=sigma, step=step, x0=x0)
        if _close(got, expected):
            continue
        if isinstance(got, torch.Tensor) and got.shape == expected.shape:
            for name, variant in _pnp_variants(A, y, n_iter, sigma, step, x0).items():
                if _close(got, variant):
                    raise CheckFailed(f"{what}: {_PNP_MISTAKES[name]}")
        compare_arrays(got, expected, what=what, rtol=1e-4, atol=1e-5)
    return "gradient step on the data, then the denoiser"


# --- Exercise 2: choosing the denoiser's noise level on validation -------------------------

@exercise_check("choosing σ on validation")
def choose_sigma(my_choose_sigma):
    """Check ``my_choose_sigma(reconstruct, sigmas, y_val, x_val)``.

    ``reconstruct(y, sigma)`` returns images; the answer returns the ``sigma`` of the
    best **mean** PSNR over the validation images (data range 1), one of ``sigmas``.
    """
    gen = torch.Generator().manual_seed(22)
    x_val = torch.rand(4, 1, 8, 8, generator=gen)
    y_val = torch.zeros(4, 1, 3, 5)
    noise = torch.randn(4, 1, 8, 8, generator=gen)
    # image 0 is best at sigma 0.02, the others (and the mean) at 0.08
    best_for = torch.tensor([0.02, 0.08, 0.08, 0.08])

    def reconstruct(y, sigma):
        error = 0.02 + (sigma - best_for).abs().reshape(-1, 1, 1, 1)
        error = error * torch.tensor([0.3, 1.0, 1.0, 1.0]).reshape(-1, 1, 1, 1)
        return x_val + error * noise

    sigmas = [0.01, 0.02, 0.04, 0.08, 0.16]
    got = my_choose_sigma(reconstruct, list(sigmas), y_val, x_val)
    try:
        got = float(got)
    except (TypeError, ValueError):
        raise CheckFailed(f"my_choose_sigma returned {type(got).__name__}, expected one of "
                          f"the sigmas (a number)") from None
    from ..metrics import psnr
    scores = {s: float(psnr(reconstruct(y_val, s), x_val, data_range=1).mean())
              for s in sigmas}
    best = max(scores, key=scores.get)
    if abs(got - best) < 1e-12:
        return f"σ = {best:g}, the best mean PSNR"
    if any(abs(got - v) < 1e-9 for v in scores.values()):
        raise CheckFailed("you returned the best score; return the sigma that gives it")
    if abs(got - min(scores, key=scores.get)) < 1e-12:
        raise CheckFailed(f"you returned σ = {got:g}, the worst mean PSNR: take the largest "
                          f"PSNR (or the smallest error)")
    if abs(got - 0.02) < 1e-12:
        raise CheckFailed(f"you returned σ = {got:g}, the best for one image; choose by "
                          f"the mean PSNR over all validation images")
    expect(any(abs(got - s) < 1e-12 for s in sigmas),
           f"you returned {got:g}, which is not one of the sigmas tried")
    raise CheckFailed(f"you returned σ = {got:g}; the best mean validation PSNR is at "
                      f"σ = {best:g}")


# --- Exercise 3: one guided reverse-diffusion step ---------------------------------------

def _tiny_prior(seed=0):
    torch.manual_seed(seed)
    prior = DiffusionPrior(width=4, depth=2, n_timesteps=50)
    with torch.no_grad():                   # weights of a visible size, for a clear check
        for p in prior.parameters():
            p.mul_(3.0)
    return prior.eval().requires_grad_(False)


def _guided_variants(prior, x_t, t, t_next, A, y, guidance):
    x_next, _ = prior.ddim_step(x_t, t, t_next)
    variants = {"no pull": x_next}
    with torch.enable_grad():
        x = x_t.detach().requires_grad_(True)
        x0 = (prior.denoised(x, t) + 1) / 2
        misfit = torch.linalg.vector_norm((A(x0) - y).flatten(1), dim=1)
        g_xt, = torch.autograd.grad(misfit.sum(), x)
        x0_leaf = ((prior.denoised(x_t, t) + 1) / 2).detach().requires_grad_(True)
        misfit0 = torch.linalg.vector_norm((A(x0_leaf) - y).flatten(1), dim=1)
        g_x0, = torch.autograd.grad(misfit0.sum(), x0_leaf)

    def pulled(g, sign=-1.0, normalise=True):
        size = torch.linalg.vector_norm(g.flatten(1), dim=1).clamp(min=1e-12)
        zeta = guidance * (misfit.detach() / size ** 2 if normalise else torch.ones_like(size))
        return x_next + sign * zeta.reshape(-1, 1, 1, 1) * g

    variants["gradient skips the network"] = pulled(g_x0)
    variants["wrong sign"] = pulled(g_xt, sign=1.0)
    variants["not normalised"] = pulled(g_xt, normalise=False)
    with torch.enable_grad():                       # A applied in the model's [-1, 1] units
        x = x_t.detach().requires_grad_(True)
        m_units = torch.linalg.vector_norm((A(prior.denoised(x, t)) - y).flatten(1), dim=1)
        g_units, = torch.autograd.grad(m_units.sum(), x)
    size_units = torch.linalg.vector_norm(g_units.flatten(1), dim=1).clamp(min=1e-12)
    variants["units"] = x_next - (guidance * m_units.detach() / size_units ** 2).reshape(
        -1, 1, 1, 1) * g_units
    whole = torch.linalg.vector_norm(g_xt)          # one norm over the whole batch
    variants["batch norm"] = x_next - guidance * torch.linalg.vector_norm(
        misfit.detach()) / whole ** 2 * g_xt
    size = torch.linalg.vector_norm(g_xt.flatten(1), dim=1).clamp(min=1e-12)
    variants["norm not squared"] = x_next - (guidance * misfit.detach() / size).reshape(
        -1, 1, 1, 1) * g_xt
    return variants


_GUIDED_MISTAKES = {
    "units": "A takes images in [0, 1]: convert x̂0 with (x̂0 + 1) / 2 before applying A",
    "batch norm": "compute the misfit m_b and the gradient norm ‖g_b‖ per image (flatten "
                  "from dimension 1), not over the whole batch",
    "norm not squared": "you divide by ‖g‖ instead of ‖g‖²: the step ζ g should have length "
                        "guidance · ‖A x̂0 − y‖ / ‖g‖ (a Polyak step)",
    "no pull": "your step is the plain DDIM step: subtract ζ times the gradient of the "
               "data misfit",
    "gradient skips the network": "your gradient is taken with respect to x̂0, not x_t: "
                                  "make x_t require grad and differentiate through "
                                  "prior.denoised(x_t, t)",
    "wrong sign": "your pull goes away from the data: subtract the gradient",
    "not normalised": "the step is guidance times the raw gradient; scale it to "
                      "ζ = guidance · ‖A x̂0 − y‖ / ‖gradient‖², per image",
}


@exercise_check("one guided reverse-diffusion step")
def guided_step(my_guided_step):
    """Check ``my_guided_step(prior, x_t, t, t_next, A, y, guidance)`` (returns x_next).

    Against :meth:`DiffusionPrior.guided_step` on a tiny random model and operator.
    """
    with torch.random.fork_rng(devices=[]):
        prior = _tiny_prior()
        A = _radon(8, 5, 13)
        gen = torch.Generator().manual_seed(23)
        y = A(torch.rand(2, 1, 8, 8, generator=gen))
        for t, t_next, guidance in ((30, 20, 0.5), (12, 3, 1.0)):
            x_t = torch.randn(2, 1, 8, 8, generator=gen)
            what = f"my_guided_step(prior, x_t, t={t}, t_next={t_next}, A, y, guidance={guidance})"
            got = my_guided_step(prior, x_t.clone(), t, t_next, A, y, guidance)
            if isinstance(got, (tuple, list)):
                got = got[0]
            expected, _ = prior.guided_step(x_t, t, t_next, A, y, guidance)
            if _close(got, expected, rtol=1e-3, atol=1e-5):
                continue
            if isinstance(got, torch.Tensor) and got.shape == expected.shape:
                for name, variant in _guided_variants(prior, x_t, t, t_next, A, y,
                                                      guidance).items():
                    if _close(got, variant, rtol=1e-3, atol=1e-5):
                        raise CheckFailed(f"{what}: {_GUIDED_MISTAKES[name]}")
            compare_arrays(got, expected, what=what, rtol=1e-3, atol=1e-5)
    return "DDIM step, then the pull through the network and A"
