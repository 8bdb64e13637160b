"""Run-time configuration shared by every lesson: quick mode, device and seeds.

``QUICK`` is read once, when the package is imported, from the environment variable
``COURSE_QUICK``.  The test run sets ``COURSE_QUICK=1`` so that every notebook picks
small sizes and short training and finishes in about two minutes on a laptop CPU.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["QUICK", "device", "seed_everything"]


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


#: True when the environment variable ``COURSE_QUICK`` is ``1`` (or ``true``/``yes``).
QUICK: bool = _flag(os.environ.get("COURSE_QUICK"))


def device() -> torch.device:
    """The best available device: CUDA, then Apple MPS, then the CPU.

    Returns
    -------
    torch.device

    Used from lesson 01, section 0 (set-up), on.
    """
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) so that a run can be repeated.

    Parameters
    ----------
    seed : int
        Any non-negative integer.

    Returns
    -------
    torch.Generator
        A CPU generator seeded with ``seed``, handy for noise and data functions.

    Used from lesson 01, section 0 (set-up), on.
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
