"""Saving and loading trained networks: one file format for every network of the course.

Lesson 03 (CNN denoising, FBPConvNet) saves the best epoch of a training run with
``cu.train(..., checkpoint="best.pt")``; lesson 08 (GANs, section 3) loads the shipped
generator with ``cu.load_generator()``.  Both write and read the same kind of file, a
dictionary saved with :func:`torch.save`::

    {"model": "UNet",                  # the class name, for error messages
     "state_dict": {...},              # the weights: model.state_dict(), on the CPU
     "metadata": {"epoch": 12, ...}}   # plain values: numbers, strings, lists, dicts

The file holds the weights, not the code of the network: to load it, build a model of
the same architecture (same class, same sizes) and call :func:`load_checkpoint`.  Store
the sizes you need for that in the metadata; :func:`cu.save_generator` does so with
``latent_dim`` and ``width``.

Files are read with ``torch.load(..., weights_only=True)``, which only accepts tensors
and plain values and cannot run code hidden in a file: a checkpoint from someone else
is safe to open.  That is why the metadata must be plain values.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

__all__ = ["save_checkpoint", "load_checkpoint", "read_checkpoint"]

#: The values that ``torch.load(..., weights_only=True)`` reads back (also inside
#: lists, tuples and dicts with string keys).  Exactly these types: NumPy's float64 is
#: a subclass of float, but it is saved as a NumPy object, which that load refuses.
_PLAIN = (str, int, float, bool, type(None))


def save_checkpoint(model: nn.Module, path, **metadata) -> Path:
    """Save a model's weights (its ``state_dict``) and some metadata to a file.

    Taught in lesson 03 (CNN denoising and FBPConvNet, section 8: over-fitting and
    early stopping), where ``cu.train(..., checkpoint=path)`` calls it for the best
    epoch; lesson 08 saves generators in the same format (:func:`cu.save_generator`).

    Parameters
    ----------
    model : torch.nn.Module
    path : str or Path
        File to write (``.pt`` by convention); missing folders are created.
    **metadata
        Plain values to store alongside, e.g. ``epoch=12, val_psnr=31.2, width=32``:
        numbers, strings, bools, None, tensors, and lists or dicts (with string keys)
        of them.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    TypeError
        If ``model`` is not a module, or a metadata value is not a plain value (the
        message names the value and how to convert it).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    _check_metadata(metadata)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # CPU copies: the file then loads on any computer, with or without a GPU
    weights = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    torch.save({"model": type(model).__name__, "state_dict": weights,
                "metadata": metadata}, path)
    return path


def load_checkpoint(model: nn.Module, path, map_location=None) -> dict:
    """Load weights saved by :func:`save_checkpoint` into ``model``; return the metadata.

    Taught in lesson 03 (CNN denoising and FBPConvNet, section 8: over-fitting and
    early stopping): reload the best epoch that ``cu.train(..., checkpoint=path)``
    saved.  Lesson 08's :func:`cu.load_generator` uses it too.

    Parameters
    ----------
    model : torch.nn.Module
        A model of the same architecture (same class and sizes) as the saved one; its
        weights are replaced in place.
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
        If the file is not a checkpoint, or if the saved weights do not fit the model
        (missing, extra or differently shaped tensors), with the names of the first
        few that differ.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if map_location is None:
        first = next(model.parameters(), None)
        map_location = first.device if first is not None else "cpu"
    checkpoint = read_checkpoint(path, map_location=map_location)
    saved, own = checkpoint["state_dict"], model.state_dict()
    problems = [f"missing {k}" for k in own if k not in saved]
    problems += [f"unexpected {k}" for k in saved if k not in own]
    problems += [f"{k}: saved {tuple(saved[k].shape)}, model {tuple(own[k].shape)}"
                 for k in own if k in saved and saved[k].shape != own[k].shape]
    if problems:
        more = f" and {len(problems) - 5} more" if len(problems) > 5 else ""
        raise ValueError(f"the checkpoint {path} (a {checkpoint['model']}) does not fit "
                         f"this {type(model).__name__}: {'; '.join(problems[:5])}{more}. "
                         f"Build the model with the same architecture and sizes as the "
                         f"saved one.")
    model.load_state_dict(saved)
    return checkpoint["metadata"]


def read_checkpoint(path, map_location="cpu") -> dict:
    """Read a checkpoint file without a model: to look at its metadata or weights.

    Taught with :func:`save_checkpoint` in lesson 03 (CNN denoising and FBPConvNet,
    section 8); lesson 08's :func:`cu.load_generator` reads the generator's sizes
    with it before it builds the network.

    Parameters
    ----------
    path : str or Path
        A file written by :func:`save_checkpoint` or :func:`cu.save_generator`.
    map_location : str or torch.device
        Where to load the tensors.

    Returns
    -------
    dict
        ``{"model": class name (str), "state_dict": {name: tensor}, "metadata": dict}``.

    Raises
    ------
    ValueError
        If the file is not a checkpoint of this course.

    Notes
    -----
    Generators saved before the course had one checkpoint format (among them the
    shipped ``data/gan_generator_64.pt``) have the layout ``{"latent_dim": int,
    "width": int, "state_dict": ..., "metadata": ...}``.  They are read as
    ``{"model": "Generator", "state_dict": ..., "metadata": {"latent_dim": ...,
    "width": ..., **metadata}}``, which is what :func:`cu.save_generator` writes now.
    """
    checkpoint = torch.load(Path(path), map_location=map_location, weights_only=True)
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ValueError(f"{path} is not a checkpoint written by cu.save_checkpoint")
    if "model" not in checkpoint and {"latent_dim", "width"} <= checkpoint.keys():
        sizes = {"latent_dim": checkpoint["latent_dim"], "width": checkpoint["width"]}
        return {"model": "Generator", "state_dict": checkpoint["state_dict"],
                "metadata": {**sizes, **checkpoint.get("metadata", {})}}
    return {"model": checkpoint.get("model", "model of unknown class"),
            "state_dict": checkpoint["state_dict"],
            "metadata": checkpoint.get("metadata", {})}


def shipped_file(path, default: Path, rebuild: str, what: str) -> Path:
    """The file of weights that the course ships in ``data/``, or the one given.

    With ``path=None``: ``default`` (``data/`` next to the package: a clone or an
    editable install), else ``data/`` seen from a notebook's folder (``lessons/`` or
    ``solutions/``) or from the repository root.  A missing file raises
    ``FileNotFoundError`` with the command that rebuilds it.  Used by
    :func:`cu.load_generator` (lesson 08) and :func:`cu.load_diffusion_prior` (lesson 11).
    """
    if path is None:
        candidates = [default, Path.cwd().parent / "data" / default.name,
                      Path.cwd() / "data" / default.name]
        path = next((c for c in candidates if c.is_file()), default)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no {what} at {path}. The course ships it in data/; if the file is missing, "
            f"rebuild it with\n    {rebuild} --out {path}")
    return path


def _check_metadata(value, where: str = "metadata") -> None:
    """Only plain values load with ``weights_only=True``: say which one is not."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where} keys must be strings, got {key!r}")
            _check_metadata(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for k, item in enumerate(value):
            _check_metadata(item, f"{where}[{k}]")
    elif not (type(value) in _PLAIN or isinstance(value, torch.Tensor)):
        raise TypeError(f"{where} must be a number, string, bool, None, tensor, or a "
                        f"list/dict of them, got {type(value).__name__}; convert it "
                        f"(e.g. float(value)) before saving")
