"""A small denoising diffusion model of the phantoms: a prior to sample from and to denoise with.

Lesson 11 teaches it.  A diffusion model (Ho, Jain and Abbeel 2020) learns to undo
Gaussian noise at every strength.  Write :math:`\\bar\\alpha_t` (from 1 down to nearly 0 as
:math:`t` goes from 0 to :math:`T`) for how much of the image survives at step :math:`t`:

.. math::  x_t = \\sqrt{\\bar\\alpha_t}\\, x_0 + \\sqrt{1 - \\bar\\alpha_t}\\, \\varepsilon,
           \\qquad \\varepsilon \\sim \\mathcal N(0, I).

A network :math:`\\varepsilon_\\theta(x_t, t)` is trained to predict the noise
:math:`\\varepsilon` (:meth:`DiffusionPrior.loss`).  From its prediction comes the
denoised estimate (Tweedie's formula, the posterior mean of :math:`x_0` given :math:`x_t`)

.. math::  \\hat x_0(x_t) = \\big(x_t - \\sqrt{1-\\bar\\alpha_t}\\,
           \\varepsilon_\\theta(x_t, t)\\big) / \\sqrt{\\bar\\alpha_t},

which makes the same network three things:

* a **Gaussian denoiser** at any noise level (:meth:`DiffusionPrior.denoise`), the
  plug-and-play prior of :func:`cu.pnp_pgd`;
* a **generative model**: start from pure noise and step down to :math:`t = 0`
  (:meth:`DiffusionPrior.sample`, the deterministic DDIM steps of Song, Meng and Ermon
  2021);
* a **posterior sampler** for CT: the same steps, each pulled towards the data by the
  gradient of :math:`\\|A\\hat x_0(x_t) - y\\|` through the network
  (:meth:`DiffusionPrior.posterior_sample`, diffusion posterior sampling, Chung et al.
  2023).

The network is the course's U-Net with two input channels: the noisy image and a constant
map of its noise level :math:`\\sqrt{1-\\bar\\alpha_t}` (as DRUNet, Zhang et al. 2021, feeds
its denoiser the noise level).  Images are in [0, 1]; inside, the model works on
:math:`2x - 1` in [-1, 1], the usual range of diffusion models.

The course ships one trained on 64 x 64 phantoms, ``data/diffusion_64.pt``, rebuilt by
``dltomo diffusion`` (:func:`load_diffusion_prior`).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import trange

from ..arrays import as_tensor, check_floating, check_int, check_number
from .checkpoints import load_checkpoint, read_checkpoint, save_checkpoint, shipped_file
from .networks import UNet
from .training import train_one_epoch

__all__ = ["DiffusionPrior", "train_diffusion", "save_diffusion_prior",
           "load_diffusion_prior", "DIFFUSION_PATH"]

#: The diffusion model that the course ships (lesson 11), rebuilt by ``dltomo diffusion``.
DIFFUSION_PATH = Path(__file__).resolve().parents[2] / "data" / "diffusion_64.pt"

#: Settings of the shipped model (``dltomo diffusion`` uses them as its defaults).
DEFAULTS = dict(width=16, depth=4, n_timesteps=1000, steps=8000, batch_size=16,
                lr=1e-3, n_images=4096, seed=0)


class DiffusionPrior(nn.Module):
    """A denoising diffusion model of images ``(B, 1, N, N)`` with values in [0, 1].

    Parameters
    ----------
    width, depth : int
        Of the U-Net (:class:`cu.UNet`) that predicts the noise; ``depth=4`` halves the
        image three times, so that a 64 x 64 network sees the whole image.
    n_timesteps : int
        :math:`T`, the number of noise levels of training; the noise variances
        :math:`\\beta_t` grow linearly from 1e-4 to 0.02 (Ho et al. 2020).

    Attributes
    ----------
    alpha_bar : torch.Tensor, shape (T,)
        :math:`\\bar\\alpha_t = \\prod_{s \\le t} (1 - \\beta_s)`, from 0.9999 to about 4e-5.

    Taught in lesson 11, section 3.
    """

    def __init__(self, width: int = 16, depth: int = 4, n_timesteps: int = 1000):
        super().__init__()
        self.width, self.depth = check_int(width, "width"), check_int(depth, "depth")
        self.n_timesteps = check_int(n_timesteps, "n_timesteps", minimum=2)
        # no batch normalisation: a batch mixes noise levels in training, but not in
        # sampling, so batch statistics would differ between the two
        self.net = UNet(in_channels=2, out_channels=1, depth=self.depth, width=self.width,
                        residual=False, batch_norm=False)
        betas = torch.linspace(1e-4, 0.02, self.n_timesteps, dtype=torch.float64)
        self.register_buffer("alpha_bar", torch.cumprod(1 - betas, 0).float())

    # --- the network and Tweedie's formula ---------------------------------------------------
    def _levels(self, t, batch: int, like: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t, device=like.device).long().reshape(-1)
        if t.numel() == 1:
            t = t.expand(batch)
        if t.numel() != batch or int(t.min()) < 0 or int(t.max()) >= self.n_timesteps:
            raise ValueError(f"t must hold one step or {batch} steps in [0, "
                             f"{self.n_timesteps - 1}], got {t.tolist()}")
        return self.alpha_bar.to(like.device)[t].reshape(-1, 1, 1, 1)

    def predict_noise(self, x_t: torch.Tensor, t) -> torch.Tensor:
        """:math:`\\varepsilon_\\theta(x_t, t)` for noisy images in the model's [-1, 1] units."""
        if x_t.ndim != 4 or x_t.shape[1] != 1:
            raise ValueError(f"x_t must have shape (B, 1, N, N), got {tuple(x_t.shape)}")
        a = self._levels(t, x_t.shape[0], x_t)
        level = torch.sqrt(1 - a).expand_as(x_t)
        return self.net(torch.cat([x_t, level], dim=1))

    def denoised(self, x_t: torch.Tensor, t) -> torch.Tensor:
        """:math:`\\hat x_0(x_t)` by Tweedie's formula, in the model's [-1, 1] units."""
        a = self._levels(t, x_t.shape[0], x_t)
        return (x_t - torch.sqrt(1 - a) * self.predict_noise(x_t, t)) / torch.sqrt(a)

    def forward(self, x_t: torch.Tensor, t) -> torch.Tensor:
        return self.predict_noise(x_t, t)

    # --- training ------------------------------------------------------------------------------
    def noisy(self, x0: torch.Tensor, t, noise: torch.Tensor) -> torch.Tensor:
        """:math:`x_t` from clean images ``x0`` in [0, 1] (returned in [-1, 1] units)."""
        a = self._levels(t, x0.shape[0], x0)
        return torch.sqrt(a) * (2 * x0 - 1) + torch.sqrt(1 - a) * noise

    def training_batch(self, x0: torch.Tensor, generator: torch.Generator | None = None):
        """One batch of the training problem: ``(inputs, target noise)``.

        Draws a step :math:`t` and a noise :math:`\\varepsilon` per image; the inputs are the
        two channels the network reads (``x_t`` and its noise level), the target is
        :math:`\\varepsilon`.  The loss :math:`\\|\\varepsilon_\\theta(x_t, t) -
        \\varepsilon\\|^2` is :meth:`loss`.
        """
        B = x0.shape[0]
        t = torch.randint(0, self.n_timesteps, (B,), generator=generator).to(x0.device)
        noise = torch.randn(x0.shape, generator=generator).to(x0)
        x_t = self.noisy(x0, t, noise)
        level = torch.sqrt(1 - self._levels(t, B, x0)).expand_as(x_t)
        return torch.cat([x_t, level], dim=1), noise

    def loss(self, x0: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The denoising loss of Ho et al. (2020): mean squared error of the predicted noise."""
        inputs, noise = self.training_batch(x0, generator)
        return F.mse_loss(self.net(inputs), noise)

    # --- a Gaussian denoiser (plug-and-play) ----------------------------------------------------
    def denoise(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        """Remove white Gaussian noise of standard deviation ``sigma`` from images in [0, 1].

        ``x = x0 + sigma n`` is, in the model's units and scaled by
        :math:`\\sqrt{\\bar\\alpha_t}`, the noisy image of the step :math:`t` whose
        :math:`\\bar\\alpha_t` is closest to :math:`1 / (1 + 4\\sigma^2)`; Tweedie's formula
        then gives the denoised image.  Differentiable.

        Parameters
        ----------
        x : torch.Tensor, shape (B, 1, N, N)
        sigma : float
            Noise level in image units (``sigma > 0``).

        Returns
        -------
        torch.Tensor, shape (B, 1, N, N)

        Taught in lesson 11, section 1 (the denoiser of plug-and-play).
        """
        sigma = check_number(sigma, "sigma", positive=True)
        target = 1.0 / (1.0 + 4 * sigma ** 2)              # 2 sigma: the [-1, 1] units
        t = int(torch.argmin((self.alpha_bar - target).abs()))
        a = float(self.alpha_bar[t])
        x0 = self.denoised(math.sqrt(a) * (2 * x - 1), t)
        return (x0 + 1) / 2

    # --- sampling ------------------------------------------------------------------------------
    def _schedule(self, n_steps: int) -> list:
        n_steps = check_int(n_steps, "n_steps")
        if n_steps > self.n_timesteps:
            raise ValueError(f"n_steps must be at most {self.n_timesteps}, got {n_steps}")
        steps = torch.linspace(self.n_timesteps - 1, 0, n_steps).round().long().tolist()
        return steps

    def sample(self, n: int, image_size: int = 64, *, n_steps: int = 50,
               generator: torch.Generator | None = None, progress: bool = False) -> torch.Tensor:
        """Draw ``n`` images from the model with deterministic DDIM steps.

        Parameters
        ----------
        n, image_size : int
        n_steps : int
            Steps from :math:`t = T-1` down to 0 (Song, Meng and Ermon 2021: tens of
            steps instead of the :math:`T` of training).
        generator : torch.Generator, optional
            For the starting noise.

        Returns
        -------
        torch.Tensor, shape (n, 1, image_size, image_size), values clipped to [0, 1]

        Taught in lesson 11, section 3.
        """
        device = self.alpha_bar.device
        x = torch.randn(n, 1, image_size, image_size, generator=generator).to(device)
        with torch.no_grad():
            x = self._reverse(x, self._schedule(n_steps), progress)
        return ((x + 1) / 2).clamp(0, 1)

    def posterior_sample(self, A, y: torch.Tensor, *, n_steps: int = 50,
                         guidance: float = 1.0, delta=None,
                         generator: torch.Generator | None = None,
                         progress: bool = False, callback=None, return_unfinished=False):
        """Samples of images that fit CT data ``y``: diffusion posterior sampling.

        Each DDIM step is followed by a step down the gradient of the data misfit of the
        denoised estimate, :math:`x_{t'} \\leftarrow x_{t'} - \\zeta_t\\,
        \\nabla_{x_t} \\|A\\hat x_0(x_t) - y\\|` (Chung et al. 2023), with the step
        :math:`\\zeta_t = \\text{guidance} \\cdot \\|A\\hat x_0 - y\\| / \\|\\nabla\\|^2`
        that removes the fraction ``guidance`` of the misfit to first order
        (:meth:`guided_step`).  The gradient goes through the network and
        through ``A``.

        Parameters
        ----------
        A : LinearOperator
            Images ``(..., N, N)`` in [0, 1] to sinograms.
        y : torch.Tensor, shape (B, 1, n_angles, n_detectors)
            One sample per sinogram: repeat a sinogram to draw several samples of it.
        n_steps, guidance, generator, progress
            As in :meth:`sample`; ``guidance`` is the step size of the data term.
        delta : torch.Tensor, shape (B,), optional
            The noise level :math:`\\|e\\|` of each sinogram.  If given, each sample is
            finished with CGLS iterations (lesson 02) from the sample, stopped at the first
            one whose misfit is at most ``delta`` (the discrepancy principle; at most 10):
            an exact data-consistency step, since DPS alone leaves a larger misfit.
        callback : callable, optional
            ``callback(k, x0_hat)`` after step ``k`` with the denoised estimate in [0, 1].
        return_unfinished : bool
            Also return the samples before the data-consistency finish.

        Returns
        -------
        torch.Tensor, shape (B, 1, N, N), values clipped to [0, 1]
            (with ``return_unfinished``: a pair, finished and unfinished samples).

        Taught in lesson 11, section 4 (Exercise 3 writes one guided step).
        """
        y = check_floating(as_tensor(y, "y"), "y")
        guidance = check_number(guidance, "guidance", positive=False)
        N = A.domain_shape[-1]
        device = self.alpha_bar.device
        x = torch.randn(y.shape[0], 1, N, N, generator=generator).to(device)
        steps = self._schedule(n_steps)
        bar = trange(len(steps), desc="posterior sampling", disable=not progress, leave=False)
        for k in bar:
            t = steps[k]
            t_next = steps[k + 1] if k + 1 < len(steps) else -1
            x, x0 = self.guided_step(x, t, t_next, A, y, guidance)
            if callback is not None:
                callback(k + 1, ((x0 + 1) / 2).clamp(0, 1))
        x = ((x + 1) / 2).clamp(0, 1)
        finished = x if delta is None else _fit_to_noise_level(A, x, y, delta)
        return (finished, x) if return_unfinished else finished

    def guided_step(self, x_t: torch.Tensor, t: int, t_next: int, A, y: torch.Tensor,
                    guidance: float) -> tuple:
        """One step of :meth:`posterior_sample`: a DDIM step, then a pull towards the data.

        .. math::  x_{t'} = \\text{DDIM}(x_t) - \\zeta\\, g, \\qquad
                   g = \\nabla_{x_t} \\|A\\hat x_0(x_t) - y\\|, \\qquad
                   \\zeta = \\text{guidance}\\,\\frac{\\|A\\hat x_0(x_t) - y\\|}{\\|g\\|^2},

        per image: to first order, the pull removes the fraction ``guidance`` of the misfit
        (a Polyak step; ``guidance = 1`` would fit the data exactly, noise included).
        Here :math:`\\hat x_0` is in [0, 1] units and the gradient goes through the
        network.  The last step (``t_next = -1``) returns the denoised estimate, unpulled.

        Returns
        -------
        (x_next, x0_hat) : torch.Tensor, torch.Tensor
            In the model's [-1, 1] units, as :meth:`ddim_step`.

        Taught in lesson 11, section 4 (Exercise 3 writes it).
        """
        with torch.no_grad():
            x_next, x0 = self.ddim_step(x_t, t, t_next)
        if t_next < 0:
            return x_next, x0
        with torch.enable_grad():
            x_t = x_t.detach().requires_grad_(True)
            x0_image = (self.denoised(x_t, t) + 1) / 2
            misfit = torch.linalg.vector_norm((A(x0_image) - y).flatten(1), dim=1)
            gradient, = torch.autograd.grad(misfit.sum(), x_t)
        size = torch.linalg.vector_norm(gradient.flatten(1), dim=1).clamp(min=1e-12)
        zeta = (guidance * misfit.detach() / size ** 2).reshape(-1, 1, 1, 1)
        return x_next - zeta * gradient, x0

    def ddim_step(self, x_t: torch.Tensor, t: int, t_next: int) -> tuple:
        """One deterministic DDIM step from step ``t`` to ``t_next < t`` (or -1: the end).

        Returns ``(x_next, x0_hat)`` in the model's units: the denoised estimate moved to
        the noise level of ``t_next`` along the predicted noise,
        :math:`x_{t'} = \\sqrt{\\bar\\alpha_{t'}}\\,\\hat x_0 + \\sqrt{1-\\bar\\alpha_{t'}}\\,
        \\hat\\varepsilon`.
        """
        a = self.alpha_bar[t]
        eps = self.predict_noise(x_t, t)
        x0 = ((x_t - torch.sqrt(1 - a) * eps) / torch.sqrt(a)).clamp(-1, 1)
        if t_next < 0:
            return x0, x0
        a_next = self.alpha_bar[t_next]
        eps = (x_t - torch.sqrt(a) * x0) / torch.sqrt(1 - a)     # consistent with clipping
        return torch.sqrt(a_next) * x0 + torch.sqrt(1 - a_next) * eps, x0

    def _reverse(self, x, steps, progress):
        bar = trange(len(steps), desc="sampling", disable=not progress, leave=False)
        for k in bar:
            t = steps[k]
            x, _ = self.ddim_step(x, t, steps[k + 1] if k + 1 < len(steps) else -1)
        return x


def _fit_to_noise_level(A, x, y, delta, max_iter: int = 10) -> torch.Tensor:
    """CGLS from ``x``, per image stopped when the misfit first reaches ``delta``."""
    from ..reconstruction.algorithms import cgls

    delta = torch.as_tensor(delta, dtype=x.dtype, device=x.device).reshape(-1)
    iterates = [x]
    cgls(A, y, max_iter, x0=x, callback=lambda k, x_k: iterates.append(x_k.clone()))
    stack = torch.stack(iterates)                                  # (max_iter + 1, B, ...)
    misfit = torch.linalg.vector_norm((A(stack) - y).flatten(2), dim=2)
    reached = misfit <= delta
    first = torch.where(reached.any(0), reached.float().argmax(0),
                        torch.full_like(delta, max_iter, dtype=torch.long))
    return stack[first, torch.arange(x.shape[0])]


def train_diffusion(prior: DiffusionPrior, images: torch.Tensor, *, steps: int,
                    batch_size: int = 16, lr: float = 1e-3, seed: int = 0,
                    progress: bool = True, log_every: int = 100) -> list:
    """Train a :class:`DiffusionPrior` on clean images; returns the mean loss per log interval.

    Adam with a learning rate that decays by cosine to 0, ``steps`` batches of images
    drawn at random (with replacement), each noised at a random step (:meth:`training
    batch <DiffusionPrior.training_batch>`), and the course's training step
    (:func:`cu.train_one_epoch`) on them.

    Parameters
    ----------
    prior : DiffusionPrior
    images : torch.Tensor, shape (n, 1, N, N)
        Clean training images in [0, 1].
    steps, batch_size, lr, seed
        Budget, batch, initial learning rate, and the seed of the draws.
    progress : bool
        Show a progress bar.
    log_every : int
        Steps per entry of the returned list.

    Returns
    -------
    list of float
        The mean training loss of every ``log_every`` steps.

    Taught in lesson 11, section 3; ``dltomo diffusion`` trains the shipped model with it.
    """
    images = check_floating(as_tensor(images, "images"), "images")
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"images must have shape (n, 1, N, N), got {tuple(images.shape)}")
    steps, batch_size = check_int(steps, "steps"), check_int(batch_size, "batch_size")
    log_every = check_int(log_every, "log_every")
    generator = torch.Generator().manual_seed(seed)
    device = prior.alpha_bar.device
    optimizer = torch.optim.Adam(prior.net.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    losses = []
    bar = trange(0, steps, log_every, desc="training the diffusion model", disable=not progress)
    for start in bar:
        n = min(log_every, steps - start)

        def batches():
            for _ in range(n):
                pick = torch.randint(0, len(images), (batch_size,), generator=generator)
                yield prior.training_batch(images[pick].to(device), generator)
                schedule.step()

        losses.append(train_one_epoch(prior.net, batches(), "mse", optimizer, device=device))
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
    prior.eval()
    return losses


def save_diffusion_prior(prior: DiffusionPrior, path, **metadata) -> Path:
    """Save a diffusion model's weights with its sizes (and how it was trained) to ``path``."""
    if not isinstance(prior, DiffusionPrior):
        raise TypeError(f"prior must be a DiffusionPrior, got {type(prior).__name__}")
    return save_checkpoint(prior, path, width=prior.width, depth=prior.depth,
                           n_timesteps=prior.n_timesteps, **metadata)


def load_diffusion_prior(path=None, *, device="cpu") -> DiffusionPrior:
    """Load the shipped diffusion model (or one saved by :func:`save_diffusion_prior`).

    Parameters
    ----------
    path : str or Path, optional
        Default ``data/diffusion_64.pt`` of the repository (seen from the package, or from
        a notebook's folder).
    device : str or torch.device

    Returns
    -------
    DiffusionPrior
        In ``eval()`` mode with its parameters frozen; ``prior.metadata`` says how it was
        trained.

    Raises
    ------
    FileNotFoundError
        If the file is missing, with the command that rebuilds it.

    Taught in lesson 11, section 3.
    """
    path = shipped_file(path, DIFFUSION_PATH, "dltomo diffusion", "diffusion model")
    metadata = read_checkpoint(path)["metadata"]
    if not {"width", "depth", "n_timesteps"} <= metadata.keys():
        raise ValueError(f"{path} is a checkpoint, but not of a diffusion model: save it "
                         f"with cu.save_diffusion_prior")
    prior = DiffusionPrior(metadata["width"], metadata["depth"], metadata["n_timesteps"])
    load_checkpoint(prior, path, map_location="cpu")
    prior.metadata = {k: v for k, v in metadata.items()
                      if k not in ("width", "depth", "n_timesteps")}
    prior.requires_grad_(False)
    return prior.eval().to(device)
