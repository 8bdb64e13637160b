"""Training a network: the loop of every learned lesson, with the comforts switched on.

At its heart, :func:`train` is the ten-line loop you write yourself in lesson 03::

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(epochs):
        for inputs, targets in batches:            # shuffled mini-batches
            loss = F.mse_loss(model(inputs), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

Around it, :func:`train` adds what a real experiment needs: a validation loss and
PSNR after every epoch, a progress bar, a live plot of the curves (in Jupyter),
**early stopping** (stop when the validation loss has not improved for ``patience``
epochs), and it hands back the weights of the best validation epoch, not the last.
:func:`save_checkpoint` and :func:`load_checkpoint` store and restore trained weights.
"""

from __future__ import annotations

import copy
import io
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from matplotlib.ticker import MaxNLocator
from torch import nn
from tqdm.auto import trange

from ..config import seed_everything
from ..metrics import psnr

__all__ = ["train", "History", "save_checkpoint", "load_checkpoint"]

LOSSES = {"mse": F.mse_loss, "l1": F.l1_loss}


@dataclass
class History:
    """What happened during :func:`train`, one entry per epoch.

    Attributes
    ----------
    train_loss : list of float
        Mean training loss of each epoch (over its mini-batches, weighted by size).
    val_loss, val_psnr : list of float
        Validation loss and mean validation PSNR (dB) after each epoch; empty without
        validation data.
    best_epoch : int or None
        The epoch (counted from 1) with the lowest validation loss, whose weights the
        model holds after training; None without validation data.
    time : float
        Wall-clock training time in seconds.
    stopped_early : bool
        Whether early stopping ended the training before ``epochs``.
    """

    train_loss: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_psnr: list = field(default_factory=list)
    best_epoch: int | None = None
    time: float = 0.0
    stopped_early: bool = False

    @property
    def epochs(self) -> list:
        """Epoch numbers 1, 2, ..., for the horizontal axis."""
        return list(range(1, len(self.train_loss) + 1))

    @property
    def losses(self) -> dict:
        """``{"training": (epochs, losses), "validation": ...}`` for :func:`cu.plot_curves`."""
        curves = {"training": (self.epochs, self.train_loss)}
        if self.val_loss:
            curves["validation"] = (self.epochs, self.val_loss)
        return curves

    def plot(self, fig=None):
        """Loss curves (log scale) and, with validation data, the validation PSNR.

        Parameters
        ----------
        fig : matplotlib.figure.Figure, optional
            Figure to draw into (it is cleared); default: a new pyplot figure.

        Returns
        -------
        matplotlib.figure.Figure
        """
        if fig is None:
            import matplotlib.pyplot as plt
            fig = plt.figure(figsize=(9, 3.2), layout="constrained")
        fig.clear()
        axes = fig.subplots(1, 2 if self.val_psnr else 1, squeeze=False)[0]
        from ..plotting import plot_curves
        plot_curves(self.losses, xlabel="epoch", ylabel="loss", logy=True, ax=axes[0],
                    title="Loss")
        if self.best_epoch is not None:
            axes[0].axvline(self.best_epoch, color="grey", linestyle=":", label="best")
        if self.val_psnr:
            plot_curves({"validation": (self.epochs, self.val_psnr)}, xlabel="epoch",
                        ylabel="PSNR (dB)", ax=axes[1], title="Validation PSNR")
        for ax in axes:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        return fig

    def __repr__(self) -> str:
        if not self.train_loss:
            return "History(no epochs)"
        text = (f"History({len(self.train_loss)} epochs in {self.time:.1f} s, "
                f"final training loss {self.train_loss[-1]:.4g}")
        if self.best_epoch is not None:
            b = self.best_epoch - 1
            text += (f", best epoch {self.best_epoch}: validation loss "
                     f"{self.val_loss[b]:.4g}, PSNR {self.val_psnr[b]:.2f} dB")
        return text + ")"


def train(model: nn.Module, train_data, val_data=None, *, loss="mse", epochs: int = 10,
          batch_size: int = 16, lr: float = 1e-3, optimizer=None, patience=None,
          restore_best: bool = True, checkpoint=None, data_range: float = 1.0,
          live_plot: bool = True, progress: bool = True, device=None,
          seed: int = 0) -> History:
    """Train ``model`` to map inputs to targets, by mini-batch gradient descent.

    Parameters
    ----------
    model : torch.nn.Module
        The network, e.g. ``cu.UNet()``; trained in place.
    train_data : (inputs, targets) pair of tensors, Dataset or DataLoader
        Training pairs.  Tensors have the batch in their first dimension, e.g.
        ``(setting.train.x_fbp, setting.train.x)``, both ``(n, 1, H, W)``.  A
        ``Dataset`` must return ``(input, target)`` pairs; a ``DataLoader`` is used as
        it is (its own batch size and shuffling).
    val_data : same kinds as ``train_data``, optional
        Validation pairs, evaluated after every epoch (loss and PSNR).
    loss : {"mse", "l1"} or callable
        ``loss(output, target)`` returning a scalar tensor.
    epochs : int
        Maximal number of passes over the training data.
    batch_size : int
        Mini-batch size (for tensors and Datasets).
    lr : float
        Learning rate of the default optimiser, Adam (Kingma & Ba, 2015).
    optimizer : torch.optim.Optimizer, optional
        Your own optimiser over ``model.parameters()`` (then ``lr`` is ignored).
    patience : int, optional
        Early stopping: stop when the validation loss has not improved for this many
        epochs.  None trains for all ``epochs``.
    restore_best : bool
        With validation data, give the model the weights of its best validation epoch
        at the end (default).  False keeps the last weights.
    checkpoint : str or Path, optional
        Save the best weights (or, without validation data, the final ones) there with
        :func:`save_checkpoint`, with the epoch and validation scores as metadata.
    data_range : float
        Data range of the targets, for the validation PSNR (1 for images in [0, 1]).
    live_plot : bool
        In Jupyter, draw the loss curves and update them in place (at most about once
        a second).  Outside Jupyter nothing is drawn.
    progress : bool
        Show a progress bar over the epochs with the latest losses.
    device : str or torch.device, optional
        Where to train; default: where the model's parameters are.  Batches are moved
        there, so the data can stay on the CPU.
    seed : int
        Seeds the shuffling and PyTorch's global random state (``cu.seed_everything``),
        so that the same call gives the same losses again (on the CPU; some GPU
        operations are not deterministic).

    Returns
    -------
    History
        Losses and validation PSNR per epoch, the best epoch, the time; plot it with
        ``history.plot()`` or ``cu.plot_curves(history.losses, logy=True)``.

    Examples
    --------
    >>> setting = cu.SparseViewSetting()                       # doctest: +SKIP
    >>> unet = cu.UNet(width=16)
    >>> history = cu.train(unet, (setting.train.x_fbp, setting.train.x),
    ...                    (setting.val.x_fbp, setting.val.x), epochs=10, patience=3)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    _positive_int(epochs, "epochs")
    _positive_int(batch_size, "batch_size")
    if patience is not None:
        _positive_int(patience, "patience")
    loss_fn = _loss_function(loss)
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    device = torch.device(device)
    model.to(device)
    seed_everything(seed)
    shuffle = torch.Generator().manual_seed(seed)
    train_batches = _batches(train_data, batch_size, shuffle, "train_data")
    val_batches = None if val_data is None else _batches(val_data, batch_size, None,
                                                         "val_data")
    if optimizer is None:
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    history = History()
    best_loss, best_state = math.inf, None
    plot = _LivePlot() if live_plot and _in_notebook() else None
    start = time.perf_counter()
    bar = trange(1, epochs + 1, desc="training", unit="epoch", disable=not progress)
    for epoch in bar:
        # --- one pass over the training data ---
        model.train()
        total, count = 0.0, 0
        for inputs, targets in train_batches():
            inputs, targets = inputs.to(device), targets.to(device)
            batch_loss = loss_fn(model(inputs), targets)
            optimizer.zero_grad()
            batch_loss.backward()
            optimizer.step()
            total += batch_loss.item() * len(inputs)
            count += len(inputs)
        history.train_loss.append(total / count)
        scores = {"loss": f"{history.train_loss[-1]:.3g}"}

        # --- validation, early stopping ---
        if val_batches is not None:
            val_loss, val_psnr = _validate(model, val_batches, loss_fn, device, data_range)
            history.val_loss.append(val_loss)
            history.val_psnr.append(val_psnr)
            scores.update(val_loss=f"{val_loss:.3g}", val_psnr=f"{val_psnr:.2f}")
            if val_loss < best_loss:
                best_loss, history.best_epoch = val_loss, epoch
                best_state = copy.deepcopy(model.state_dict())
                if checkpoint is not None:
                    save_checkpoint(model, checkpoint, epoch=epoch, val_loss=val_loss,
                                    val_psnr=val_psnr)
        bar.set_postfix(scores)
        history.time = time.perf_counter() - start
        if plot is not None:
            plot.update(history)
        if patience is not None and history.best_epoch is not None \
                and epoch - history.best_epoch >= patience and epoch < epochs:
            history.stopped_early = True
            break
    bar.close()

    if best_state is not None and restore_best:
        model.load_state_dict(best_state)
    if checkpoint is not None and val_batches is None:
        save_checkpoint(model, checkpoint, epoch=len(history.train_loss))
    if plot is not None:
        plot.update(history, final=True)
    if history.stopped_early and progress:
        print(f"Early stopping after epoch {len(history.train_loss)}: no improvement for "
              f"{patience} epochs; best epoch {history.best_epoch}.")
    history.time = time.perf_counter() - start
    return history


def _validate(model, batches, loss_fn, device, data_range):
    """Mean loss and mean PSNR over the validation data (PSNR: nan if not images)."""
    model.eval()
    total_loss, psnr_values, count = 0.0, [], 0
    with torch.no_grad():
        for inputs, targets in batches():
            inputs, targets = inputs.to(device), targets.to(device)
            outputs = model(inputs)
            total_loss += loss_fn(outputs, targets).item() * len(inputs)
            count += len(inputs)
            if outputs.shape == targets.shape and outputs.dim() >= 3:
                psnr_values.append(psnr(outputs.float(), targets.float(),
                                        data_range=data_range).reshape(len(inputs), -1)
                                   .mean(dim=1).cpu())
    mean_psnr = float(torch.cat(psnr_values).mean()) if psnr_values else math.nan
    return total_loss / count, mean_psnr


def _batches(data, batch_size, generator, name):
    """A function that returns an iterator over ``(inputs, targets)`` mini-batches.

    Tensor pairs are cut into batches directly (shuffled with ``generator`` unless it is
    None); Datasets go through a DataLoader; DataLoaders are used as they are.
    """
    if isinstance(data, torch.utils.data.DataLoader):
        return lambda: iter(data)
    if isinstance(data, torch.utils.data.Dataset):
        loader = torch.utils.data.DataLoader(data, batch_size=batch_size,
                                             shuffle=generator is not None,
                                             generator=generator)
        return lambda: iter(loader)
    if not (isinstance(data, (tuple, list)) and len(data) == 2
            and all(isinstance(t, torch.Tensor) for t in data)):
        hint = ""
        if hasattr(data, "x") and hasattr(data, "y"):
            hint = (" (for a split of the setting, say which pairs: e.g. "
                    "(split.x_fbp, split.x) or (split.y, split.x))")
        raise TypeError(f"{name} must be an (inputs, targets) pair of tensors, a Dataset "
                        f"or a DataLoader, got {type(data).__name__}{hint}")
    inputs, targets = data
    if len(inputs) != len(targets) or len(inputs) == 0:
        raise ValueError(f"{name}: inputs and targets must hold the same, non-zero number "
                         f"of items, got {len(inputs)} and {len(targets)}")

    def iterate():
        order = (torch.arange(len(inputs)) if generator is None
                 else torch.randperm(len(inputs), generator=generator))
        for index in order.split(batch_size):
            yield inputs[index.to(inputs.device)], targets[index.to(targets.device)]
    return iterate


def _loss_function(loss):
    if callable(loss):
        return loss
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {tuple(LOSSES)} or a function "
                         f"loss(output, target), got {loss!r}")
    return LOSSES[loss]


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


# --- the live plot ---------------------------------------------------------------------
def _in_notebook() -> bool:
    """True inside a Jupyter kernel (also under nbval), False in scripts and terminals."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class _LivePlot:
    """One picture in the notebook output, replaced in place as the epochs go by.

    The figure is made without pyplot, so Jupyter does not show it a second time at
    the end of the cell, and it is sent as a PNG image whose ``display_id`` lets us
    replace it instead of adding a new picture every epoch.
    """

    def __init__(self, min_interval: float = 1.0):
        from matplotlib.figure import Figure
        self.figure = Figure(figsize=(9, 3.2), layout="constrained")
        self.handle = None
        self.min_interval = min_interval
        self.last = -math.inf

    def update(self, history: History, final: bool = False):
        now = time.perf_counter()
        if not final and now - self.last < self.min_interval:
            return
        from IPython.display import Image, display
        history.plot(self.figure)
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png", dpi=80)
        image = Image(data=buffer.getvalue(), format="png")
        if self.handle is None:
            self.handle = display(image, display_id=True)
        else:
            self.handle.update(image)
        self.last = now


# --- checkpoints -------------------------------------------------------------------------
_PLAIN = (str, int, float, bool, type(None), torch.Tensor)


def _check_metadata(value, where="metadata"):
    """Only plain values load with ``weights_only=True``: say which one is not."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} keys must be strings, got {key!r}")
            _check_metadata(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for k, item in enumerate(value):
            _check_metadata(item, f"{where}[{k}]")
    elif not isinstance(value, _PLAIN):
        raise TypeError(f"{where} must be a number, string, bool, None, tensor, or a "
                        f"list/dict of them, got {type(value).__name__}; convert it "
                        f"(e.g. float(value)) before saving")


def save_checkpoint(model: nn.Module, path, **metadata) -> Path:
    """Save a model's weights (its ``state_dict``) and some metadata to a file.

    Parameters
    ----------
    model : torch.nn.Module
    path : str or Path
        File to write (``.pt`` by convention); missing folders are created.
    **metadata
        Plain values to store alongside, e.g. ``epoch=12, val_psnr=31.2,
        width=32``: numbers, strings, bools, None, tensors, and lists or dicts of them.

    Returns
    -------
    Path
        The file written.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    _check_metadata(metadata)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": type(model).__name__, "state_dict": model.state_dict(),
                "metadata": metadata}, path)
    return path


def load_checkpoint(model: nn.Module, path, map_location=None) -> dict:
    """Load weights saved by :func:`save_checkpoint` into ``model``; return the metadata.

    The file is read with ``torch.load(..., weights_only=True)``, which cannot run code
    hidden in a file, so checkpoints from others are safe to open.

    Parameters
    ----------
    model : torch.nn.Module
        A model of the same architecture (same class and sizes) as the saved one.
    path : str or Path
    map_location : str or torch.device, optional
        Where to load the tensors; default: the device of the model's parameters.

    Returns
    -------
    dict
        The metadata given to :func:`save_checkpoint`.

    Raises
    ------
    ValueError
        If the saved weights do not fit the model (missing, extra or differently shaped
        tensors), with the names of the first few that differ.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if map_location is None:
        first = next(model.parameters(), None)
        map_location = first.device if first is not None else "cpu"
    checkpoint = torch.load(Path(path), map_location=map_location, weights_only=True)
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ValueError(f"{path} is not a checkpoint written by cu.save_checkpoint")
    saved, own = checkpoint["state_dict"], model.state_dict()
    problems = [f"missing {k}" for k in own if k not in saved]
    problems += [f"unexpected {k}" for k in saved if k not in own]
    problems += [f"{k}: saved {tuple(saved[k].shape)}, model {tuple(own[k].shape)}"
                 for k in own if k in saved and saved[k].shape != own[k].shape]
    if problems:
        more = f" and {len(problems) - 5} more" if len(problems) > 5 else ""
        raise ValueError(f"the checkpoint {path} (a {checkpoint.get('model')}) does not fit "
                         f"this {type(model).__name__}: {'; '.join(problems[:5])}{more}. "
                         f"Build the model with the same architecture and sizes as the "
                         f"saved one.")
    model.load_state_dict(saved)
    return checkpoint.get("metadata", {})
