"""One rule for arrays across the package: tensors in, tensors out; NumPy in, NumPy out.

Every public function of ``course_utils`` computes with ``torch.Tensor``.  It also
accepts NumPy arrays (handy next to scikit-image), converts them to tensors, and gives
NumPy arrays back, so that a learner never has to think about the conversion.  The
decorator :func:`numpy_compatible` implements that rule in one place.
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any, Callable

import numpy as np
import torch

__all__ = ["as_tensor", "numpy_compatible", "check_floating", "check_number", "check_int"]


def as_tensor(x: Any, name: str = "input") -> torch.Tensor:
    """Return ``x`` as a tensor (NumPy arrays are converted without copying when possible).

    Raises
    ------
    TypeError
        If ``x`` is neither a tensor nor a NumPy array.

    The input rule of every ``cu`` function (README, ``course_utils`` in one screen).
    """
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    raise TypeError(
        f"{name} must be a torch.Tensor or a NumPy array, got {type(x).__name__}"
    )


def check_floating(x: torch.Tensor, name: str = "input") -> torch.Tensor:
    """Raise a clear ``TypeError`` unless ``x`` is a float32 or float64 tensor.

    The input rule of every ``cu`` function (README, ``course_utils`` in one screen).
    """
    if x.dtype not in (torch.float32, torch.float64):
        raise TypeError(
            f"{name} must be float32 or float64, got {x.dtype}; "
            f"convert it with .float() (or .double())"
        )
    return x


def check_number(value, name: str, *, positive: bool) -> float:
    """A finite real number as a float: > 0 if ``positive``, else >= 0 (clear errors).

    The input rule of every ``cu`` function (README, ``course_utils`` in one screen).
    """
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        expected = "positive" if positive else "non-negative"
        raise ValueError(f"{name} must be a finite {expected} number, got {value}")
    return value


def check_int(value, name: str, *, minimum: int | None = 1) -> int:
    """An integer as a Python ``int``, at least ``minimum`` (``None``: any), with clear errors.

    Accepts Python and NumPy integers and one-element integer tensors; rejects ``bool``
    (``True`` is an ``int`` in Python, but never a count of iterations) and floats such
    as ``3.0`` (a float where a count is expected is usually a mix-up of two arguments).

    The input rule of every ``cu`` function (README, ``course_utils`` in one screen).
    """
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_floating_point():
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def _to_numpy(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, tuple):
        return tuple(_to_numpy(v) for v in value)
    if isinstance(value, list):
        return [_to_numpy(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_numpy(v) for k, v in value.items()}
    return value


def numpy_compatible(fn: Callable) -> Callable:
    """Let ``fn`` take NumPy arrays: convert them to tensors and convert results back.

    If any positional or keyword argument is a NumPy array, all NumPy arguments become
    tensors before the call and every tensor in the result (also inside tuples, lists
    and dicts) becomes a NumPy array after it.  Tensor-only calls are untouched.

    The input rule of every ``cu`` function (README, ``course_utils`` in one screen).
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        uses_numpy = any(isinstance(a, np.ndarray) for a in args) or any(
            isinstance(v, np.ndarray) for v in kwargs.values()
        )
        if not uses_numpy:
            return fn(*args, **kwargs)
        args = [as_tensor(a) if isinstance(a, np.ndarray) else a for a in args]
        kwargs = {
            k: as_tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()
        }
        return _to_numpy(fn(*args, **kwargs))

    return wrapper
