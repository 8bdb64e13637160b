"""The trained reconstructors of lesson 12: a deep ensemble of U-Nets and a learned primal-dual.

Lesson 12 asks whether a learned reconstruction can be trusted: how it fails on data
unlike its training data (other numbers of angles, other images), and whether it can
say where it is unsure.  It needs networks trained on the shared setting, and training
them in the notebook would take too long, so the course ships them, in one file,
``data/reconstructors_64.pt``, rebuilt by ``dltomo reconstructors``
(:func:`load_reconstructors`):

* **U-Nets** (FBPConvNet, lesson 03): ``cu.UNet(width=16)`` maps the FBP image to the
  image.  Several of them, trained alike but each from its own random initialisation
  and on its own random order of batches, make a **deep ensemble** (Lakshminarayanan,
  Pritzel and Blundell, 2017): where the members disagree, the data did not decide the
  answer, and their spread is a cheap estimate of the uncertainty.  Member 0 is "the
  U-Net" of the lesson.
* a **learned primal-dual** network (lesson 07, :class:`cu.LearnedPrimalDual`), which
  reads the sinogram itself through the operator; moved to another scanner with
  :meth:`~course_utils.learning.primal_dual.LearnedPrimalDual.with_operator`.

All of them are trained on the training split of the shared setting at 64 x 64
(:class:`cu.SparseViewSetting`, 30 angles, Gaussian noise of 2.5 %, seed 0), with the
FBP (filter and cut-off) that :meth:`~cu.SparseViewSetting.tune_fbp` chose on its
validation split; no test image was seen.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, RandomSampler, TensorDataset

from ..arrays import check_int, check_number
from ..config import seed_everything
from ..metrics import psnr
from ..operators.radon import RadonTransform
from ..reconstruction.fbp import fbp
from ..simulation.setting import dival_geometry
from .checkpoints import load_checkpoint, read_checkpoint, save_checkpoint, shipped_file
from .networks import UNet
from .primal_dual import LearnedPrimalDual
from .training import train

__all__ = ["Reconstructors", "train_reconstructors", "save_reconstructors",
           "load_reconstructors", "RECONSTRUCTORS_PATH"]

#: The reconstructors that the course ships (lesson 12), rebuilt by ``dltomo reconstructors``.
RECONSTRUCTORS_PATH = Path(__file__).resolve().parents[2] / "data" / "reconstructors_64.pt"

#: Settings of the shipped file (``dltomo reconstructors`` uses them as its defaults).
#: ``lpd_lr`` is the learning rate of the learned primal-dual, which starts there and
#: decays to 0 along a cosine (lesson 07, section 3, found 3e-3 with this decay best on
#: small budgets); the U-Nets train with Adam at a constant ``lr``, as in lesson 03.
DEFAULTS = dict(n_members=4, unet_width=16, unet_steps=2000, unet_batch=8, lpd_steps=2000,
                lpd_batch=4, lpd_iterations=5, lpd_channels=16, lr=1e-3, lpd_lr=3e-3,
                n_train=2000, seed=0)

#: What a file stores besides the weights to build the same networks again.
_SIZES = ("n_members", "unet_width", "lpd_iterations", "lpd_channels", "image_size",
          "n_angles", "fbp_filter", "fbp_cutoff")

#: Added to ``seed`` for the learned primal-dual (U-Net member k uses ``seed + k``).
_LPD_SEED_OFFSET = 1000


class Reconstructors(nn.Module):
    """A deep ensemble of U-Nets (FBP -> image) and a learned primal-dual (sinogram -> image).

    Parameters
    ----------
    n_members : int
        U-Nets in the ensemble; member 0 is "the U-Net".
    unet_width : int
        Width of every U-Net (``cu.UNet(width=unet_width)``: depth 3, residual, batch
        normalisation).
    lpd_iterations, lpd_channels : int
        Unrolled iterations and hidden channels of the learned primal-dual (5 primal and
        5 dual memory channels).
    fbp_filter : str
        FBP filter (one of ``cu.FILTERS``) of the U-Nets' inputs and of the learned
        primal-dual's start.
    fbp_cutoff : float
        FBP cut-off, a fraction of Nyquist in (0, 1].
    A : LinearOperator, optional
        The operator of the learned primal-dual and of :meth:`fbp`; default the shared
        setting's scanner at 64 x 64, ``cu.SparseViewSetting(64).A`` (parallel beam,
        ``cu.dival_geometry(64, 30)``: 30 angles, 93 detector pixels), on the CPU.

    Attributes
    ----------
    unets : torch.nn.ModuleList
        The ``n_members`` U-Nets of the ensemble.
    lpd : LearnedPrimalDual
        The learned primal-dual network; ``lpd(y)`` reconstructs sinograms ``y``
        ``(B, 1, n_angles, n_detectors)``.
    fbp_filter, fbp_cutoff : str, float
        The FBP of :meth:`fbp`.
    image_size, n_angles : int
        Of the operator: images ``(B, 1, image_size, image_size)``.
    metadata : dict
        How the networks were trained (empty for new ones): settings, training losses,
        validation PSNRs (``metadata["val_psnr"]``), and the command and time of
        ``dltomo reconstructors``.

    Examples
    --------
    >>> r = cu.load_reconstructors()                               # doctest: +SKIP
    >>> x_fbp = r.fbp(setting.test.y)
    >>> members = r.ensemble(x_fbp)           # (n_members, B, 1, 64, 64)
    >>> mean, spread = members.mean(0), members.std(0)
    >>> x_lpd = r.lpd(setting.test.y)

    Taught in lesson 12 (can we trust a learned reconstruction?).
    """

    def __init__(self, n_members: int = 4, unet_width: int = 16, lpd_iterations: int = 5,
                 lpd_channels: int = 16, *, fbp_filter: str = "ram-lak",
                 fbp_cutoff: float = 1.0, A=None):
        super().__init__()
        self.n_members = check_int(n_members, "n_members")
        self.unet_width = check_int(unet_width, "unet_width")
        self.lpd_iterations = check_int(lpd_iterations, "lpd_iterations")
        self.lpd_channels = check_int(lpd_channels, "lpd_channels")
        self.fbp_filter = str(fbp_filter)
        self.fbp_cutoff = check_number(fbp_cutoff, "fbp_cutoff", positive=True)
        if A is None:
            A = RadonTransform(64, dival_geometry(64, 30))
        self.image_size = int(A.domain_shape[-1])
        self.n_angles = int(A.range_shape[-2])
        self.unets = nn.ModuleList(UNet(width=self.unet_width) for _ in range(self.n_members))
        self.lpd = LearnedPrimalDual(A, self.lpd_iterations, self.lpd_channels, n_primal=5,
                                     n_dual=5, fbp_filter=self.fbp_filter,
                                     fbp_cutoff=self.fbp_cutoff)
        self.metadata: dict = {}

    @property
    def A(self):
        """The operator of the learned primal-dual and of :meth:`fbp`."""
        return self.lpd.A

    def fbp(self, y: torch.Tensor) -> torch.Tensor:
        """The FBP that the U-Nets read: sinograms ``(B, 1, n_angles, n_det)`` -> ``(B, 1, N, N)``.

        Units: as :func:`cu.fbp`, images with values near [0, 1] for the setting's data.
        """
        return fbp(self.A, y, self.fbp_filter, self.fbp_cutoff)

    def unet(self, x_fbp: torch.Tensor) -> torch.Tensor:
        """The U-Net (member 0): FBP images ``(B, 1, N, N)`` -> images ``(B, 1, N, N)``."""
        return self.unets[0](x_fbp)

    def ensemble(self, x_fbp: torch.Tensor) -> torch.Tensor:
        """Every member's output, ``(n_members, B, 1, N, N)``, for FBP images ``(B, 1, N, N)``.

        Their mean over the first dimension is the ensemble's reconstruction, their
        standard deviation its (cheap, and not calibrated) uncertainty.  Gradients flow
        as usual: call it inside ``torch.no_grad()`` when you need none.
        """
        return torch.stack([net(x_fbp) for net in self.unets])

    def forward(self, *args, **kwargs):
        raise TypeError("Reconstructors holds several networks: call r.unet(x_fbp), "
                        "r.ensemble(x_fbp) or r.lpd(y) (and r.fbp(y) for the U-Nets' input)")

    def __repr__(self) -> str:
        return (f"Reconstructors({self.n_members} U-Nets of width {self.unet_width}, "
                f"learned primal-dual with {self.lpd_iterations} iterations x "
                f"{self.lpd_channels} channels; {self.image_size} x {self.image_size}, "
                f"{self.n_angles} angles, FBP {self.fbp_filter} cut-off {self.fbp_cutoff:g})")


def train_reconstructors(setting, *, n_members: int = 4, unet_width: int = 16,
                         unet_steps: int = 2000, unet_batch: int = 8, lpd_steps: int = 2000,
                         lpd_batch: int = 4, lpd_iterations: int = 5, lpd_channels: int = 16,
                         lr: float = 1e-3, lpd_lr: float = 3e-3, seed: int = 0,
                         progress: bool = True, log=None) -> Reconstructors:
    """Train the U-Nets of a deep ensemble and a learned primal-dual on a setting's data.

    Every U-Net member ``k`` learns ``setting.train.x_fbp -> setting.train.x`` (whole
    images, mean squared error) with :func:`cu.train`: Adam at learning rate ``lr``,
    exactly ``unet_steps`` batches of ``unet_batch`` pairs drawn with replacement, in 10
    epochs of ``unet_steps // 10`` batches, seed ``seed + k`` for its initialisation and
    its draws (so that the members differ in both).  The learned primal-dual learns
    ``setting.train.y -> setting.train.x`` the same way with ``lpd_steps`` batches of
    ``lpd_batch`` and seed ``seed + 1000``, but with a learning rate that starts at
    ``lpd_lr`` and decays to 0 along a cosine over its steps (lesson 07, section 3).
    Afterwards every network is scored on the validation split (never the test split).

    Parameters
    ----------
    setting : SparseViewSetting
        With its FBP chosen (:meth:`~cu.SparseViewSetting.tune_fbp`) and at least one
        training and one validation image.  The networks are built on its device and on
        its operator ``setting.A``.
    n_members, unet_width, lpd_iterations, lpd_channels : int
        The sizes, as for :class:`Reconstructors`.
    unet_steps, lpd_steps : int
        Training steps (batches) of every U-Net and of the learned primal-dual: positive
        multiples of 10.
    unet_batch, lpd_batch : int
        Pairs per batch.
    lr, lpd_lr : float
        Learning rates of the U-Nets (constant) and of the learned primal-dual (initial).
    seed : int
        Seed of the initialisations and of the batches.
    progress : bool
        Show :func:`cu.train`'s progress bars.
    log : callable, optional
        Called with one line of text after each network (e.g. ``print``).

    Returns
    -------
    Reconstructors
        In ``eval()`` mode, on the setting's device; ``metadata`` holds the settings,
        the training losses per tenth of the steps (``"losses"``), the minutes
        (``"minutes_unets"``, ``"minutes_lpd"``) and the mean validation PSNRs in dB
        (``"val_psnr"``: ``"fbp"``, ``"unets"`` (one per member), ``"ensemble_mean"``,
        ``"lpd"``).

    Raises
    ------
    RuntimeError
        If the setting's FBP is not chosen yet.
    ValueError
        If a step count is not a positive multiple of 10, or a split is empty.

    Taught in lesson 12; ``dltomo reconstructors`` trains the shipped file with it.
    """
    if setting.fbp_filter is None:
        raise RuntimeError("the setting's FBP filter is not chosen yet: call "
                           "setting.tune_fbp() first (the U-Nets read its FBP images)")
    unet_steps, lpd_steps = _steps(unet_steps, "unet_steps"), _steps(lpd_steps, "lpd_steps")
    unet_batch, lpd_batch = check_int(unet_batch, "unet_batch"), check_int(lpd_batch, "lpd_batch")
    seed = check_int(seed, "seed", minimum=0)
    lr, lpd_lr = check_number(lr, "lr", positive=True), check_number(lpd_lr, "lpd_lr",
                                                                     positive=True)
    train_split, val = setting.train, setting.val
    if len(train_split) == 0 or len(val) == 0:
        raise ValueError(f"the setting needs training and validation images, got "
                         f"{len(train_split)} and {len(val)}")
    log = log if log is not None else (lambda line: None)
    device = setting.device

    r = Reconstructors(n_members, unet_width, lpd_iterations, lpd_channels,
                       fbp_filter=setting.fbp_filter, fbp_cutoff=setting.fbp_cutoff,
                       A=setting.A)
    losses, scores = {"unets": [], "lpd": []}, {"unets": []}
    scores["fbp"] = float(psnr(val.x_fbp, val.x, data_range=1.0).mean())

    start = time.perf_counter()
    pairs = TensorDataset(train_split.x_fbp, train_split.x)
    for k in range(r.n_members):
        seed_everything(seed + k)                       # the member's own initialisation
        net = UNet(width=r.unet_width).to(device)
        history = train(net, _loader(pairs, unet_steps, unet_batch, seed + k), epochs=10,
                        lr=lr, live_plot=False, progress=progress, seed=seed + k)
        r.unets[k] = net.eval()
        losses["unets"].append([float(v) for v in history.train_loss])
        with torch.no_grad():
            scores["unets"].append(_mean_psnr(net, val.x_fbp, val.x))
        log(f"U-Net {k + 1}/{r.n_members}: {unet_steps} steps in {history.time / 60:.1f} min, "
            f"validation PSNR {scores['unets'][-1]:.2f} dB (FBP {scores['fbp']:.2f} dB)")
    minutes_unets = (time.perf_counter() - start) / 60
    with torch.no_grad():
        scores["ensemble_mean"] = _mean_psnr(lambda x: r.ensemble(x).mean(0), val.x_fbp,
                                             val.x)

    start = time.perf_counter()
    lpd_seed = seed + _LPD_SEED_OFFSET
    seed_everything(lpd_seed)
    r.lpd = LearnedPrimalDual(setting.A, r.lpd_iterations, r.lpd_channels, n_primal=5,
                              n_dual=5, fbp_filter=r.fbp_filter,
                              fbp_cutoff=r.fbp_cutoff).to(device)
    history = train(r.lpd, _loader(TensorDataset(train_split.y, train_split.x), lpd_steps,
                                   lpd_batch, lpd_seed),
                    epochs=10, optimizer=_CosineAdam(r.lpd.parameters(), lpd_lr, lpd_steps),
                    live_plot=False, progress=progress, seed=lpd_seed)
    r.lpd.eval()
    losses["lpd"] = [float(v) for v in history.train_loss]
    with torch.no_grad():
        scores["lpd"] = _mean_psnr(r.lpd, val.y, val.x)
    log(f"learned primal-dual: {lpd_steps} steps in {history.time / 60:.1f} min, "
        f"validation PSNR {scores['lpd']:.2f} dB")

    r.metadata = dict(
        n_members=r.n_members, unet_width=r.unet_width, unet_steps=unet_steps,
        unet_batch=unet_batch, lpd_steps=lpd_steps, lpd_batch=lpd_batch,
        lpd_iterations=r.lpd_iterations, lpd_channels=r.lpd_channels, lr=lr, lpd_lr=lpd_lr,
        seed=seed, n_train=len(train_split), n_val=len(val), losses=losses,
        minutes_unets=round(minutes_unets, 2),
        minutes_lpd=round((time.perf_counter() - start) / 60, 2),
        val_psnr={"fbp": scores["fbp"], "unets": scores["unets"],
                  "ensemble_mean": scores["ensemble_mean"], "lpd": scores["lpd"]})
    return r.eval()


def save_reconstructors(reconstructors: Reconstructors, path, **metadata) -> Path:
    """Save the networks' weights with their sizes, FBP and metadata to ``path``.

    Parameters
    ----------
    reconstructors : Reconstructors
        Its operator must be the shared setting's kind of scanner,
        ``cu.dival_geometry(image_size, n_angles)`` (the file stores only those two
        numbers, not the operator).
    path : str or Path
    **metadata
        Plain values, added to (and overriding) ``reconstructors.metadata``, e.g. the
        command and the time of the run.

    Returns
    -------
    Path
        The file written (:func:`cu.save_checkpoint`'s format).

    Raises
    ------
    TypeError
        If ``reconstructors`` is not a :class:`Reconstructors`, or a metadata value is
        not a plain value.
    ValueError
        If its operator is not ``cu.dival_geometry(image_size, n_angles)``.

    Taught in lesson 12; ``dltomo reconstructors`` saves the shipped file with it.
    """
    if not isinstance(reconstructors, Reconstructors):
        raise TypeError(f"reconstructors must be a Reconstructors, got "
                        f"{type(reconstructors).__name__}")
    r = reconstructors
    expected = dival_geometry(r.image_size, r.n_angles)
    geometry = getattr(r.A, "geometry", None)
    if not isinstance(r.A, RadonTransform) or geometry is None or \
            geometry._key() != expected._key():
        raise ValueError(f"save_reconstructors stores the scanner as "
                         f"dival_geometry({r.image_size}, {r.n_angles}) (the shared "
                         f"setting's), but these networks' operator is another one: "
                         f"{r.A!r}")
    sizes = {name: getattr(r, name) for name in _SIZES}
    return save_checkpoint(r, path, **{**r.metadata, **metadata, **sizes})


def load_reconstructors(path=None, *, device="cpu") -> Reconstructors:
    """Load the shipped reconstructors (or ones saved by :func:`save_reconstructors`).

    Parameters
    ----------
    path : str or Path, optional
        Default ``data/reconstructors_64.pt`` of the repository (seen from the package,
        or from a notebook's folder).
    device : str or torch.device
        Where the networks and their operator live.

    Returns
    -------
    Reconstructors
        In ``eval()`` mode with its parameters frozen (the U-Nets' batch
        normalisation uses its stored statistics); ``.metadata`` says how they were
        trained and how they scored on the validation split (``metadata["val_psnr"]``).

    Raises
    ------
    FileNotFoundError
        If the file is missing, with the command that rebuilds it.
    ValueError
        If the file is a checkpoint of something else.

    Taught in lesson 12.
    """
    path = shipped_file(path, RECONSTRUCTORS_PATH, "dltomo reconstructors",
                        "trained reconstructors (U-Nets and learned primal-dual)")
    checkpoint = read_checkpoint(path)
    metadata = checkpoint["metadata"]
    if checkpoint["model"] != "Reconstructors" or not set(_SIZES) <= metadata.keys():
        raise ValueError(f"{path} is a checkpoint, but of a {checkpoint['model']}, not of "
                         f"the course's reconstructors: save them with "
                         f"cu.save_reconstructors (or rebuild the file with "
                         f"dltomo reconstructors)")
    A = RadonTransform(metadata["image_size"],
                       dival_geometry(metadata["image_size"], metadata["n_angles"]),
                       device=device)
    r = Reconstructors(metadata["n_members"], metadata["unet_width"],
                       metadata["lpd_iterations"], metadata["lpd_channels"],
                       fbp_filter=metadata["fbp_filter"], fbp_cutoff=metadata["fbp_cutoff"],
                       A=A)
    load_checkpoint(r, path, map_location="cpu")
    r.metadata = {k: v for k, v in metadata.items() if k not in _SIZES}
    r.requires_grad_(False)
    return r.eval().to(device)


# --- helpers ---------------------------------------------------------------------------------

class _CosineAdam(torch.optim.Adam):
    """Adam whose learning rate decays from lr to 0 along a cosine over total_steps steps."""

    def __init__(self, params, lr, total_steps):
        super().__init__(params, lr=lr)
        self.schedule = torch.optim.lr_scheduler.CosineAnnealingLR(self, total_steps)

    def step(self, closure=None):
        loss = super().step(closure)
        self.schedule.step()
        return loss


def _loader(pairs: TensorDataset, steps: int, batch: int, seed: int) -> DataLoader:
    """Batches drawn with replacement: ``steps // 10`` of them per epoch, for 10 epochs."""
    draws = RandomSampler(pairs, replacement=True, num_samples=steps // 10 * batch,
                          generator=torch.Generator().manual_seed(seed))
    return DataLoader(pairs, batch_size=batch, sampler=draws)


def _mean_psnr(reconstruct, inputs: torch.Tensor, targets: torch.Tensor,
               batch: int = 32) -> float:
    """Mean PSNR in dB (data range 1) of ``reconstruct(inputs)`` over the images."""
    outputs = torch.cat([reconstruct(chunk) for chunk in inputs.split(batch)])
    return float(psnr(outputs, targets, data_range=1.0).mean())


def _steps(value, name: str) -> int:
    """A step budget: a positive multiple of 10 (10 epochs of ``steps // 10`` batches)."""
    steps = check_int(value, name)
    if steps % 10:
        raise ValueError(f"{name} must be a positive multiple of 10 (10 epochs of "
                         f"{name} // 10 batches each), got {steps}")
    return steps
