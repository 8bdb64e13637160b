"""Training a network: the loop of every learned lesson, with the comforts switched on.

At its heart, :func:`train` is the ten-line loop you write yourself in lesson 03 (CNN
denoising, section 3: "Training: one step, then many")::

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(epochs):
        model.train()
        for inputs, targets in batches:            # shuffled mini-batches
            loss = F.mse_loss(model(inputs), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

The inner loop, one pass over the training data, is :func:`train_one_epoch`.  Around
it, :func:`train` adds what a real experiment needs: a validation loss and PSNR after
every epoch, a progress bar, a live plot of the curves (in Jupyter), **early stopping**
(stop when the validation loss has not improved for ``patience`` epochs), and it hands
back the weights of the best validation epoch, not the last.  Saving weights to a file
is :mod:`course_utils.learning.checkpoints` (``cu.save_checkpoint``).
"""

from __future__ import annotations

import copy
import io
import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from matplotlib.ticker import MaxNLocator
from torch import nn
from tqdm.auto import trange

from ..arrays import check_int
from ..config import seed_everything
from ..metrics import psnr
from .checkpoints import save_checkpoint

__all__ = ["train", "train_one_epoch", "History"]

LOSSES = {"mse": F.mse_loss, "l1": F.l1_loss}


@dataclass
class History:
    """What happened during :func:`train`, one entry per epoch.

    Returned by ``cu.train``, taught in lesson 03 (CNN denoising and FBPConvNet,
    section 3: training, and section 8: over-fitting and early stopping).

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

    Taught in lesson 03 (CNN denoising and FBPConvNet): section 3 (training: one step,
    then many) writes the loop by hand, section 8 (over-fitting and early stopping)
    explains ``patience`` and the best-epoch weights; lessons 04, 06 and 07 train
    their networks with it.

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
        :func:`cu.save_checkpoint`, with the epoch and validation scores as metadata.
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

    Raises
    ------
    TypeError
        If ``model`` is not a module, the data are of the wrong kind, or ``epochs``,
        ``batch_size`` or ``patience`` is not an int.
    ValueError
        If ``epochs``, ``batch_size`` or ``patience`` is below 1, the loss is unknown,
        or inputs and targets differ in number.

    Examples
    --------
    >>> setting = cu.SparseViewSetting()                       # doctest: +SKIP
    >>> unet = cu.UNet(width=16)
    >>> history = cu.train(unet, (setting.train.x_fbp, setting.train.x),
    ...                    (setting.val.x_fbp, setting.val.x), epochs=10, patience=3)
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    epochs = check_int(epochs, "epochs")
    batch_size = check_int(batch_size, "batch_size")
    patience = None if patience is None else check_int(patience, "patience")
    loss_fn = _loss_function(loss)
    device = _device_of(model) if device is None else torch.device(device)
    model.to(device)
    seed_everything(seed)
    shuffle = torch.Generator().manual_seed(seed)
    train_batches = _batches(train_data, batch_size, shuffle, "train_data")
    val_batches = None if val_data is None else _batches(val_data, batch_size, None,
                                                         "val_data")
    if optimizer is None:
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    history, best_weights = History(), None
    plot = _LivePlot() if live_plot and _in_notebook() else None
    start = time.perf_counter()
    bar = trange(1, epochs + 1, desc="training", unit="epoch", disable=not progress)
    for epoch in bar:
        history.train_loss.append(
            train_one_epoch(model, train_batches(), loss_fn, optimizer, device=device))
        if val_batches is not None:
            val_loss, val_psnr = _validate(model, val_batches(), loss_fn, device,
                                           data_range)
            if val_loss < min(history.val_loss, default=math.inf):
                history.best_epoch = epoch
                best_weights = copy.deepcopy(model.state_dict())
                if checkpoint is not None:
                    save_checkpoint(model, checkpoint, epoch=epoch, val_loss=val_loss,
                                    val_psnr=val_psnr)
            history.val_loss.append(val_loss)
            history.val_psnr.append(val_psnr)
        bar.set_postfix(_latest_scores(history))
        history.time = time.perf_counter() - start
        if plot is not None:
            plot.update(history)
        if epoch < epochs and _no_improvement_for(patience, history):
            history.stopped_early = True
            break
    bar.close()

    if best_weights is not None and restore_best:
        model.load_state_dict(best_weights)
    if checkpoint is not None and val_batches is None:
        save_checkpoint(model, checkpoint, epoch=len(history.train_loss))
    if plot is not None:
        plot.update(history, final=True)
    if history.stopped_early and progress:
        print(f"Early stopping after epoch {len(history.train_loss)}: no improvement for "
              f"{patience} epochs; best epoch {history.best_epoch}.")
    history.time = time.perf_counter() - start
    return history


def train_one_epoch(model: nn.Module, batches, loss, optimizer, *, device=None) -> float:
    """One pass over the training data: a gradient step on every mini-batch.

    This is the inner loop of :func:`train`, the one you write by hand in lesson 03
    (CNN denoising, section 3: "Training: one step, then many").  Use it to write
    your own training loop, e.g. with your own validation or learning-rate schedule.

    Parameters
    ----------
    model : torch.nn.Module
        Trained in place; put in training mode (``model.train()``) first.
    batches : iterable of (inputs, targets) pairs of tensors
        The mini-batches of one epoch, e.g. a ``torch.utils.data.DataLoader`` with
        ``shuffle=True``; inputs and targets have the batch in their first dimension,
        e.g. ``(B, 1, H, W)`` each.
    loss : {"mse", "l1"} or callable
        ``loss(output, target)`` returning a scalar tensor, the mean over the batch.
    optimizer : torch.optim.Optimizer
        An optimiser over ``model.parameters()``, e.g. ``torch.optim.Adam``.
    device : str or torch.device, optional
        Where the batches are moved; default: where the model's parameters are.

    Returns
    -------
    float
        The mean training loss of the epoch: the batch losses weighted by batch size
        (in the units of ``loss``, e.g. squared intensity for ``"mse"``).

    Examples
    --------
    >>> data = torch.utils.data.TensorDataset(inputs, targets)    # doctest: +SKIP
    >>> loader = torch.utils.data.DataLoader(data, batch_size=16, shuffle=True)
    >>> optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    >>> for epoch in range(10):
    ...     print(epoch, cu.train_one_epoch(model, loader, "mse", optimizer))
    """
    if _is_tensor_pair(batches):
        raise TypeError("batches must be mini-batches of (inputs, targets), not one "
                        "(inputs, targets) pair: cut the pair into batches, e.g. with "
                        "torch.utils.data.DataLoader(TensorDataset(inputs, targets), "
                        "batch_size=16, shuffle=True), or use cu.train")
    loss_fn = _loss_function(loss)
    device = _device_of(model) if device is None else torch.device(device)
    model.train()      # batch norm and dropout behave differently in evaluation mode
    total, count = 0.0, 0
    for inputs, targets in batches:
        inputs, targets = inputs.to(device), targets.to(device)
        batch_loss = loss_fn(model(inputs), targets)
        optimizer.zero_grad()
        batch_loss.backward()
        optimizer.step()
        total += batch_loss.item() * len(inputs)
        count += len(inputs)
    if count == 0:
        raise ValueError("batches held no training pairs")
    return total / count


def _validate(model, batches, loss_fn, device, data_range) -> tuple[float, float]:
    """Mean loss and mean PSNR (dB) over the validation batches, without gradients.

    The PSNR is nan if the outputs are not images of the targets' shape.
    """
    model.eval()
    total_loss, psnr_values, count = 0.0, [], 0
    with torch.no_grad():
        for inputs, targets in batches:
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


def _no_improvement_for(patience, history: History) -> bool:
    """Early stopping: has the best validation epoch been ``patience`` epochs ago?"""
    if patience is None or history.best_epoch is None:
        return False
    return len(history.train_loss) - history.best_epoch >= patience


def _latest_scores(history: History) -> dict:
    """The latest losses (and PSNR), formatted for the progress bar."""
    scores = {"loss": f"{history.train_loss[-1]:.3g}"}
    if history.val_loss:
        scores.update(val_loss=f"{history.val_loss[-1]:.3g}",
                      val_psnr=f"{history.val_psnr[-1]:.2f}")
    return scores


def _device_of(model: nn.Module) -> torch.device:
    """Where the model's parameters are (the CPU for a model without parameters)."""
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def _is_tensor_pair(data) -> bool:
    return (isinstance(data, (tuple, list)) and len(data) == 2
            and all(isinstance(t, torch.Tensor) for t in data))


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
    if not _is_tensor_pair(data):
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
