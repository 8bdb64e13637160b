"""The small generative adversarial network (GAN) of lesson 08, for 64 x 64 phantoms.

A GAN (Goodfellow et al., 2014) is two networks that learn from each other:

* the **generator** :math:`G` turns a random latent vector :math:`z \\sim N(0, I)` into
  an image :math:`G(z)`;
* the **discriminator** :math:`D` looks at an image and returns a score, the logit of
  the probability that the image is a real training image rather than a generated one.

They are trained in turn.  The discriminator step lowers

.. math:: L_D = -\\log \\sigma(D(x)) - \\log(1 - \\sigma(D(G(z))))

(binary cross-entropy: real images are labelled 1, generated ones 0), and the generator
step lowers the *non-saturating* loss :math:`L_G = -\\log \\sigma(D(G(z)))`, i.e. it
changes :math:`G` so that the discriminator labels its images as real.

The architectures follow DCGAN (Radford et al., 2016), shrunk to run on a laptop CPU:

* :class:`Generator`: a linear layer maps :math:`z` to ``4 x 4`` feature maps; four
  (nearest-neighbour upsampling by 2, 3 x 3 convolution, batch normalisation, ReLU)
  blocks double the height and width up to ``64 x 64``; a 3 x 3 convolution and a
  sigmoid give one channel with values in ``(0, 1)``, the range of the phantoms.
  DCGAN uses transposed convolutions with stride 2 instead of upsampling; they cost
  less but leave a regular hatching pattern in the images (Odena et al., 2016), which
  a first version of the shipped generator showed clearly;
* :class:`Discriminator`: the mirror image, four (4 x 4 convolution with stride 2, leaky
  ReLU) blocks from ``64 x 64`` down to ``4 x 4``, then a linear layer to one logit.  Its
  layers are spectrally normalised (Miyato et al., 2018): every weight matrix has
  largest singular value 1, which keeps the discriminator smooth, so that the
  generator gets useful gradients and training rarely collapses.

The course ships one trained generator, ``data/gan_generator_64.pt``; load it with
:func:`load_generator`.  Generators are saved in the course's one checkpoint format
(:mod:`course_utils.learning.checkpoints`), with their sizes in the metadata.  The
command that rebuilds it (:mod:`course_utils.tools.generator`) is::

    dltomo generator --out data/gan_generator_64.pt

(see ``data/README.md`` for the run time, the seed and the training data).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..arrays import check_int
from .checkpoints import load_checkpoint, read_checkpoint, save_checkpoint, shipped_file

__all__ = ["Generator", "Discriminator", "discriminator_loss", "generator_loss",
           "train_gan", "latent_reconstruction", "load_generator", "save_generator",
           "GENERATOR_PATH"]

#: Where the shipped generator of lesson 08 (section 3) lives: ``data/gan_generator_64.pt``
#: in the repository.
GENERATOR_PATH = Path(__file__).resolve().parents[2] / "data" / "gan_generator_64.pt"

#: The settings of the shipped generator (and the defaults of the rebuild command).
DEFAULTS = dict(latent_dim=128, width=8, n_images=4096, steps=3000, batch_size=32,
                seed=0, lr=2e-4)


# --- the two networks ---------------------------------------------------------------------

class Generator(nn.Module):
    """DCGAN-style generator: latent vectors ``(B, latent_dim)`` to images ``(B, 1, 64, 64)``.

    Taught in lesson 08 (GANs, section 1: the two-player game); the architecture is
    described at the top of this module.

    Parameters
    ----------
    latent_dim : int
        Length of the latent vector :math:`z`.
    width : int
        Channels of the last (64 x 64) block; the ``4 x 4`` block has ``8 * width``.

    Notes
    -----
    Output values lie in ``(0, 1)`` (a sigmoid), like the phantoms.  Use the network in
    ``eval()`` mode for reconstruction, so that batch normalisation uses its stored
    statistics and one image does not depend on the others in the batch.
    """

    image_size = 64

    def __init__(self, latent_dim: int = 128, width: int = 8):
        super().__init__()
        self.latent_dim = latent_dim = check_int(latent_dim, "latent_dim")
        self.width = width = check_int(width, "width")
        channels = [8 * width, 4 * width, 2 * width, width, width]
        self.project = nn.Linear(latent_dim, channels[0] * 4 * 4)
        blocks = [nn.BatchNorm2d(channels[0]), nn.ReLU(inplace=True)]
        for c_in, c_out in zip(channels[:-1], channels[1:]):   # 4 -> 8 -> 16 -> 32 -> 64
            blocks += [nn.Upsample(scale_factor=2, mode="nearest"),
                       nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                       nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        blocks.append(nn.Conv2d(channels[-1], 1, 3, padding=1))
        self.blocks = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if not isinstance(z, torch.Tensor):
            raise TypeError(f"z must be a torch.Tensor, got {type(z).__name__}")
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape (batch, {self.latent_dim}), "
                             f"got {tuple(z.shape)}")
        h = self.project(z).view(z.shape[0], 8 * self.width, 4, 4)
        return torch.sigmoid(self.blocks(h))

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` random images ``(n, 1, 64, 64)`` from :math:`z \\sim N(0, I)`, no gradients."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator).to(device)
        with torch.no_grad():
            return self(z)


class Discriminator(nn.Module):
    """DCGAN-style discriminator: images ``(B, 1, 64, 64)`` to logits ``(B,)``.

    A large logit means "looks real".  The layers are spectrally normalised.  Taught
    in lesson 08 (GANs, section 1: the two-player game).

    Parameters
    ----------
    width : int
        Channels of the first (32 x 32) block; the ``4 x 4`` block has ``8 * width``.
    """

    def __init__(self, width: int = 8):
        super().__init__()
        self.width = width = check_int(width, "width")
        sn = nn.utils.parametrizations.spectral_norm
        channels = [1, width, 2 * width, 4 * width, 8 * width]
        layers = []
        for c_in, c_out in zip(channels[:-1], channels[1:]):   # 64 -> 32 -> 16 -> 8 -> 4
            layers += [sn(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1)),
                       nn.LeakyReLU(0.2, inplace=True)]
        self.features = nn.Sequential(*layers)
        self.score = sn(nn.Linear(8 * width * 4 * 4, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, 64, 64):
            raise ValueError(f"x must have shape (batch, 1, 64, 64), got {tuple(x.shape)}")
        return self.score(self.features(x).flatten(1)).squeeze(1)


# --- the two losses -----------------------------------------------------------------------

def discriminator_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the discriminator: real images are 1, generated ones 0.

    :math:`L_D = \\text{mean}[-\\log\\sigma(D(x))] + \\text{mean}[-\\log(1-\\sigma(D(G(z))))]`,
    computed from the logits for numerical stability.  Lesson 08 (GANs, section 1,
    exercise 1: the discriminator step) derives it.

    Parameters
    ----------
    logits_real : torch.Tensor, shape (B,)
        Discriminator logits of real images.
    logits_fake : torch.Tensor, shape (B',)
        Discriminator logits of generated images.

    Returns
    -------
    torch.Tensor
        A scalar (in nats).
    """
    return (F.binary_cross_entropy_with_logits(logits_real, torch.ones_like(logits_real))
            + F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake)))


def generator_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss :math:`L_G = \\text{mean}[-\\log\\sigma(D(G(z)))]`.

    Lesson 08 (GANs, section 1, exercise 2: the generator step) derives it.

    Parameters
    ----------
    logits_fake : torch.Tensor, shape (B,)
        Discriminator logits of generated images.

    Returns
    -------
    torch.Tensor
        A scalar (in nats).
    """
    return F.binary_cross_entropy_with_logits(logits_fake, torch.ones_like(logits_fake))


# --- training -------------------------------------------------------------------------------

def train_gan(G: Generator, D: Discriminator, images: torch.Tensor, *, steps: int,
              batch_size: int = 64, lr: float = 2e-4, seed: int = 0, progress: bool = True,
              log_every: int = 0, callback=None, recalibration_batches: int = 50,
              ema_decay: float = 0.999) -> dict:
    """Train a GAN by alternating one discriminator step and one generator step.

    Taught in lesson 08 (GANs, section 2: training a GAN, briefly); the shipped
    generator was trained with it (``dltomo generator``).

    Parameters
    ----------
    G : Generator
    D : Discriminator
    images : torch.Tensor, shape (n, 1, 64, 64)
        The training images, values in [0, 1].
    steps : int
        Number of (discriminator step, generator step) pairs.
    batch_size : int
        Real and generated images per step.
    lr : float
        Adam learning rate of both networks (with betas (0.5, 0.999), as in DCGAN).
    seed : int
        Seeds the batches and the latent vectors, so that a run can be repeated.
    progress : bool
        Show a progress bar.
    log_every : int
        If positive, print the losses every ``log_every`` steps (for the command line).
    callback : callable, optional
        Called as ``callback(step, G, D)`` every ``log_every`` steps, e.g. to show samples.
    ema_decay : float
        On return, ``G`` holds an exponential moving average of its weights over the
        steps (Yazıcı et al., 2019), with this decay (warmed up as
        ``min(ema_decay, (1 + step) / (10 + step))``); 0 returns the last weights.
        Averaging smooths out the oscillations of the game, which otherwise show up
        as artefacts that come and go from one step to the next.
    recalibration_batches : int
        Random batches of 64 latent vectors over which the generator's batch-norm
        statistics are averaged at the end (see :func:`recalibrate_batch_norm`).

    Returns
    -------
    dict
        ``{"loss_D": [...], "loss_G": [...]}``, one value per step.  ``G`` and ``D`` are
        trained in place and left in ``eval()`` mode.
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"images must be a tensor of shape (n, 1, 64, 64), got "
                         f"{getattr(images, 'shape', type(images).__name__)}")
    steps = check_int(steps, "steps")
    batch_size = check_int(batch_size, "batch_size")
    device = next(G.parameters()).device
    g = torch.Generator().manual_seed(seed)
    opt_G = torch.optim.Adam(G.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999))
    history = {"loss_D": [], "loss_G": []}
    average = [p.detach().clone() for p in G.parameters()]
    G.train()
    D.train()
    bar = range(steps)
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(bar, desc="GAN training")
    start = time.perf_counter()
    for step in bar:
        index = torch.randint(len(images), (batch_size,), generator=g)
        x_real = images[index].to(device)
        z = torch.randn(batch_size, G.latent_dim, generator=g).to(device)

        # discriminator step: generated images are detached, so G does not change
        opt_D.zero_grad()
        loss_D = discriminator_loss(D(x_real), D(G(z).detach()))
        loss_D.backward()
        opt_D.step()

        # generator step: gradients flow through D into G, but only G is updated
        opt_G.zero_grad()
        loss_G = generator_loss(D(G(z)))
        loss_G.backward()
        opt_G.step()
        with torch.no_grad():
            decay = min(ema_decay, (1 + step) / (10 + step))
            for p_avg, p in zip(average, G.parameters()):
                p_avg.lerp_(p.detach(), 1 - decay)

        history["loss_D"].append(loss_D.item())
        history["loss_G"].append(loss_G.item())
        if log_every and (step + 1) % log_every == 0:
            print(f"step {step + 1:6d}/{steps}  loss_D {loss_D.item():.3f}  "
                  f"loss_G {loss_G.item():.3f}  ({time.perf_counter() - start:.0f} s)",
                  flush=True)
            if callback is not None:
                callback(step + 1, G, D)
    with torch.no_grad():
        for p_avg, p in zip(average, G.parameters()):
            p.copy_(p_avg)
    recalibrate_batch_norm(G, n_batches=recalibration_batches, seed=seed + 1)
    G.eval()
    D.eval()
    return history


def recalibrate_batch_norm(G: Generator, *, n_batches: int = 50, batch_size: int = 64,
                           seed: int = 1) -> None:
    """Set the generator's batch-norm statistics to their averages over random batches.

    During training, batch normalisation keeps *running* averages that lag behind the
    changing weights; recomputing them at the end makes ``G.eval()`` give images like
    those seen in training.  Called at the end of :func:`train_gan` (lesson 08,
    section 2).

    Parameters
    ----------
    G : Generator
        Changed in place and left in ``eval()`` mode.
    n_batches : int
        Number of random batches to average over.
    batch_size : int
        Latent vectors per batch.
    seed : int
        Seeds the latent vectors.
    """
    g = torch.Generator().manual_seed(seed)
    device = next(G.parameters()).device
    norms = [m for m in G.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None            # None: a plain average over all batches seen
    G.train()
    with torch.no_grad():
        for _ in range(n_batches):
            G(torch.randn(batch_size, G.latent_dim, generator=g).to(device))
    for m in norms:
        m.momentum = 0.1
    G.eval()


# --- reconstruction in the range of the generator -------------------------------------------

def latent_reconstruction(G: nn.Module, A, y: torch.Tensor, *, n_iter: int = 300,
                          lr: float = 0.05, mu: float = 1.0, n_restarts: int = 4,
                          seed: int = 0, callback=None, progress: bool = False) -> dict:
    """Reconstruct in the range of a generator: :math:`\\min_z \\tfrac12\\|A G(z) - y\\|^2 +
    \\tfrac{\\mu}{2}\\|z\\|^2`, then :math:`\\hat x = G(\\hat z)` (Bora et al., 2017).

    Taught in lesson 08 (GANs, section 4: reconstruction in the range of the
    generator, exercise 3).  The problem is not convex in :math:`z`, so Adam is started
    from ``n_restarts`` random latent vectors per sinogram (all optimised together, as
    one batch) and the restart with the lowest final objective is kept.  The prior
    term shrinks :math:`z` towards 0.  With Gaussian noise of standard deviation
    :math:`\\sigma` and :math:`z \\sim N(0, I)`, the MAP weight is :math:`\\mu = \\sigma^2`;
    a much larger :math:`\\mu` pulls :math:`\\hat z` far inside the shell
    :math:`\\|z\\| \\approx \\sqrt{\\text{latent\\_dim}}` where the generator was trained
    (lesson 08, section 4, measures both).  Only :math:`z` is optimised; the generator's
    weights are not changed.

    Parameters
    ----------
    G : torch.nn.Module
        A generator, latent vectors ``(B, latent_dim)`` to images ``(B, 1, N, N)``, best
        in ``eval()`` mode (as returned by :func:`load_generator`).
    A : LinearOperator
        The forward operator, images ``(..., N, N)`` to sinograms
        ``(..., n_angles, n_detectors)``.
    y : torch.Tensor, shape (B, 1, n_angles, n_detectors)
        Measured sinograms.
    n_iter : int
        Adam steps.
    lr : float
        Adam's learning rate (in units of the latent vector, whose entries are about 1).
    mu : float
        Weight of the Gaussian prior :math:`\\tfrac{\\mu}{2}\\|z\\|^2` (0: none).
    n_restarts : int
        Random starting points per sinogram.
    seed : int
        Seeds the starting points.
    callback : callable, optional
        Called as ``callback(k, z)`` after step ``k = 1, ..., n_iter`` with all latent
        vectors ``(n_restarts, B, latent_dim)`` (detached).
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict
        ``"x"``: images :math:`G(\\hat z)`, ``(B, 1, N, N)``; ``"z"``: the chosen latent
        vectors ``(B, latent_dim)``; ``"misfit"``: :math:`\\|A G(z_k) - y\\|` of the chosen
        restart at steps ``k = 0, ..., n_iter``, ``(n_iter + 1, B)``; ``"restart"``:
        the index of the chosen restart per sinogram, ``(B,)``.
    """
    if not isinstance(y, torch.Tensor) or y.ndim != 4 or y.shape[1] != 1:
        raise ValueError(f"y must be a tensor of sinograms (B, 1, n_angles, n_detectors), "
                         f"got {getattr(y, 'shape', type(y).__name__)}")
    n_iter = check_int(n_iter, "n_iter")
    n_restarts = check_int(n_restarts, "n_restarts")
    if mu < 0:
        raise ValueError(f"mu must be non-negative, got {mu}")
    B, R = y.shape[0], n_restarts
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(R, B, G.latent_dim, generator=g).to(y.device).requires_grad_(True)
    y = y.detach()
    optimizer = torch.optim.Adam([z], lr=lr)

    def objective():
        x = G(z.reshape(R * B, -1)).reshape(R, B, *y.shape[1:2], *A.domain_shape)
        residual = A(x) - y                                  # y broadcasts over restarts
        misfit2 = residual.pow(2).sum(dim=(2, 3, 4))         # (R, B)
        return 0.5 * misfit2 + 0.5 * mu * z.pow(2).sum(dim=2), misfit2.detach().sqrt()

    misfits = []
    steps = range(1, n_iter + 1)
    if progress:
        from tqdm.auto import tqdm
        steps = tqdm(steps, desc="latent optimisation", leave=False)
    with torch.enable_grad():          # also inside torch.no_grad(), e.g. in cu.evaluate
        for k in steps:
            loss, misfit = objective()
            misfits.append(misfit)
            optimizer.zero_grad()
            loss.sum().backward()      # the restarts and images are independent problems
            optimizer.step()
            if callback is not None:
                callback(k, z.detach())
    with torch.no_grad():
        loss, misfit = objective()
        misfits.append(misfit)
        best = loss.argmin(dim=0)                             # (B,)
        items = torch.arange(B, device=best.device)
        z_hat = z.detach()[best, items]
        x_hat = G(z_hat)
    misfits = torch.stack(misfits)[:, best, items]            # (n_iter + 1, B)
    return {"x": x_hat, "z": z_hat, "misfit": misfits, "restart": best}


# --- the shipped generator ------------------------------------------------------------------

def save_generator(G: Generator, path, **metadata) -> Path:
    """Save a generator's weights, with its sizes and some metadata, to ``path``.

    Lesson 08 (GANs, section 3: the pretrained generator) loads what this saved; the
    rebuild command ``dltomo generator`` calls it.  The file is a checkpoint of
    :func:`cu.save_checkpoint` (lesson 03) whose metadata also hold ``latent_dim`` and
    ``width``, the sizes that :func:`load_generator` builds the network with.

    Parameters
    ----------
    G : Generator
    path : str or Path
        File to write (``.pt``); missing folders are created.
    **metadata
        Plain values (numbers, strings, lists, dicts) on how it was trained, e.g.
        ``steps=3000``; ``latent_dim`` and ``width`` are added by this function.

    Returns
    -------
    Path
        The file written.
    """
    if not isinstance(G, Generator):
        raise TypeError(f"G must be a Generator, got {type(G).__name__}")
    return save_checkpoint(G, path, latent_dim=G.latent_dim, width=G.width, **metadata)


def load_generator(path=None, *, device="cpu") -> Generator:
    """Load the shipped pretrained generator (or another one saved by :func:`save_generator`).

    Taught in lesson 08 (GANs, section 3: the pretrained generator), which then
    reconstructs in its range with :func:`latent_reconstruction`.

    Parameters
    ----------
    path : str or Path, optional
        Default: ``data/gan_generator_64.pt`` of the repository (:data:`GENERATOR_PATH`;
        if the package was installed elsewhere, ``../data/`` and ``data/`` seen from the
        current folder are tried too).  Files in the generator layout of earlier course
        versions, like the shipped one, load too (see :func:`cu.read_checkpoint`).
    device : str or torch.device
        Where to put the network.

    Returns
    -------
    Generator
        In ``eval()`` mode, with gradients of its parameters switched off (we optimise
        latent vectors, not weights).  ``G.metadata`` holds how it was trained (the
        saved metadata without the sizes, which are ``G.latent_dim`` and ``G.width``).

    Raises
    ------
    FileNotFoundError
        If the file is missing, with the command that rebuilds it.
    ValueError
        If the file is not a generator checkpoint, or its weights do not fit its sizes.
    """
    path = shipped_file(path, GENERATOR_PATH, "dltomo generator",
                        "generator weights (about 20 minutes on a 2-core CPU to rebuild)")
    metadata = read_checkpoint(path)["metadata"]
    if not {"latent_dim", "width"} <= metadata.keys():
        raise ValueError(f"{path} is a checkpoint, but not of a generator: its metadata "
                         f"lack latent_dim and width; save generators with "
                         f"cu.save_generator")
    G = Generator(latent_dim=metadata["latent_dim"], width=metadata["width"])
    load_checkpoint(G, path, map_location="cpu")
    G.metadata = {k: v for k, v in metadata.items() if k not in ("latent_dim", "width")}
    G.requires_grad_(False)
    return G.eval().to(device)
