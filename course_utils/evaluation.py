"""Scoring reconstruction methods on the shared test set, one table row per method.

Every lesson ends with a results table in which its new method meets the earlier ones
on the same test images (:class:`~course_utils.setting.SparseViewSetting`):

>>> setting = cu.SparseViewSetting()                                  # doctest: +SKIP
>>> rows = cu.classical_baselines(setting)        # FBP, SIRT, CGLS, TV: tuned, scored
>>> rows.append(cu.evaluate(lambda y: unet(setting.fbp(y)), setting.test,
...                         name="FBPConvNet", parameters=cu.count_parameters(unet)))
>>> cu.results_table(rows)

Fair play: every hyper-parameter (the FBP filter, the number of iterations, the TV
weight, the training epochs) is chosen on the *validation* split; the *test* split is
only used to report.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from .algorithms import cgls, sirt, tv_pdhg
from .metrics import psnr, ssim
from .networks import count_parameters

__all__ = ["evaluate", "classical_methods", "classical_baselines"]


def evaluate(reconstruct, data, *, name=None, data_range: float = 1.0,
             batch_size: int = 32, parameters=None) -> dict:
    """PSNR, SSIM, time and size of a reconstruction method on a data set: one table row.

    Parameters
    ----------
    reconstruct : callable or torch.nn.Module
        Maps a batch of inputs to images ``(B, 1, H, W)``; for a split of the setting the
        inputs are its sinograms ``(B, 1, n_angles, n_detectors)``.  A module is put in
        evaluation mode (and back afterwards) and the batches are moved to its device.
    data : DataSplit or (inputs, targets) pair of tensors
        A split of :class:`~course_utils.setting.SparseViewSetting` (inputs ``split.y``,
        targets ``split.x``), or any pair, e.g. ``(split.x_fbp, split.x)`` to score a
        post-processing network alone.
    name : str, optional
        The method's name in the table; default: the module's class or function name.
    data_range : float
        Data range for PSNR and SSIM (1 for images in [0, 1]).
    batch_size : int
        Inputs given to ``reconstruct`` at once.
    parameters : int, optional
        Number of learned parameters to report; default: counted for a module, 0 for a
        function.  Give it when a function wraps a network (``lambda y: net(fbp(y))``).

    Returns
    -------
    dict
        ``{"method", "PSNR (dB)", "PSNR std", "SSIM", "SSIM std", "time / image (ms)",
        "parameters"}``: means and standard deviations over the images, and the
        wall-clock time per image (the whole batch loop divided by the number of
        images), for :func:`cu.results_table`.
    """
    if not callable(reconstruct):
        raise TypeError(f"reconstruct must be a function or a torch.nn.Module, got "
                        f"{type(reconstruct).__name__}")
    inputs, targets = _inputs_and_targets(data)
    is_module = isinstance(reconstruct, nn.Module)
    if name is None:
        name = type(reconstruct).__name__ if is_module else getattr(reconstruct, "__name__",
                                                                     "method")
        name = "method" if name == "<lambda>" else name
    if parameters is None:
        parameters = count_parameters(reconstruct) if is_module else 0
    device = inputs.device
    if is_module:
        first = next(reconstruct.parameters(), None)
        device = first.device if first is not None else device
        was_training = reconstruct.training
        reconstruct.eval()

    outputs = []
    try:
        with torch.no_grad():
            _synchronize(device)
            start = time.perf_counter()
            for batch in inputs.split(batch_size):
                outputs.append(reconstruct(batch.to(device)).to(targets.device))
            _synchronize(device)
            elapsed = time.perf_counter() - start
    finally:
        if is_module:
            reconstruct.train(was_training)

    x_hat = torch.cat(outputs)
    if x_hat.shape != targets.shape:
        raise ValueError(f"reconstruct must return images of the targets' shape "
                         f"{tuple(targets.shape[1:])} per item, got {tuple(x_hat.shape[1:])}")
    x_hat = x_hat.to(targets.dtype)
    p = psnr(x_hat, targets, data_range=data_range).reshape(len(targets), -1).mean(1)
    s = ssim(x_hat, targets, data_range=data_range).reshape(len(targets), -1).mean(1)
    return {
        "method": str(name),
        "PSNR (dB)": float(p.mean()),
        "PSNR std": float(p.std()) if len(p) > 1 else 0.0,
        "SSIM": float(s.mean()),
        "SSIM std": float(s.std()) if len(s) > 1 else 0.0,
        "time / image (ms)": 1000 * elapsed / len(targets),
        "parameters": int(parameters),
    }


def _inputs_and_targets(data):
    if hasattr(data, "x") and hasattr(data, "y") and not isinstance(data, torch.Tensor):
        return data.y, data.x
    if isinstance(data, (tuple, list)) and len(data) == 2 \
            and all(isinstance(t, torch.Tensor) for t in data):
        inputs, targets = data
        if len(inputs) != len(targets) or len(inputs) == 0:
            raise ValueError(f"inputs and targets must hold the same, non-zero number of "
                             f"items, got {len(inputs)} and {len(targets)}")
        return inputs, targets
    raise TypeError(f"data must be a split of the setting (with .y and .x) or an "
                    f"(inputs, targets) pair of tensors, got {type(data).__name__}")


def _synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --- the classical baselines -----------------------------------------------------------
def _best_iteration(algorithm, A, y, x, max_iter):
    """Run ``algorithm`` for ``max_iter`` iterations; the iteration with the best mean PSNR."""
    scores = []
    algorithm(A, y, max_iter, callback=lambda k, x_k: scores.append(
        float(psnr(x_k, x, data_range=1.0).mean())))
    return 1 + max(range(len(scores)), key=scores.__getitem__)


def classical_methods(setting, *, n_tune: int = 32, max_sirt: int = 400,
                      max_cgls: int = 30, tv_lambdas=None, tv_iterations: int = 100) -> dict:
    """The classical methods of lesson 02, each tuned on the setting's validation split.

    * **FBP**: the filter with the best validation PSNR (``setting.fbp_filter``);
    * **SIRT** (non-negative) and **CGLS**: the number of iterations with the best
      validation PSNR, up to ``max_sirt`` / ``max_cgls`` (stopping early is their
      regularisation);
    * **TV** (:func:`cu.tv_pdhg`, non-negative, ``tv_iterations`` iterations): the weight
      :math:`\\lambda` with the best validation PSNR among ``tv_lambdas``.

    Tuning uses the first ``n_tune`` validation images (enough to rank a handful of
    choices) and is done once per setting: a second call returns the same methods.

    Parameters
    ----------
    setting : SparseViewSetting
    n_tune : int
        Validation images used for tuning.
    max_sirt, max_cgls : int
        Largest iteration numbers tried.
    tv_lambdas : sequence of float, optional
        Candidate TV weights; default ``(N / 64) * (0.1, 0.3, 1, 3)``: the data term
        grows with the image size ``N``, so the good weight does too.
    tv_iterations : int
        Iterations of the Chambolle-Pock algorithm (enough to converge to about
        0.1 dB here).

    Returns
    -------
    dict
        ``{label: reconstruct}`` in the order FBP, SIRT, CGLS, TV; each label holds the
        chosen parameter (e.g. ``"TV (λ=0.3)"``) and each ``reconstruct`` maps sinograms
        ``(..., n_angles, n_detectors)`` to images ``(..., N, N)``.
    """
    N = setting.image_size
    if tv_lambdas is None:
        tv_lambdas = tuple(round(N / 64 * c, 6) for c in (0.1, 0.3, 1.0, 3.0))
    key = ("classical_methods", n_tune, max_sirt, max_cgls, tuple(tv_lambdas),
           tv_iterations)
    if key in setting.cache:
        return dict(setting.cache[key])

    A, val = setting.A, setting.val[:n_tune]
    if len(val) == 0:
        raise ValueError("the setting has no validation images to tune on (n_val=0)")
    k_sirt = _best_iteration(sirt, A, val.y, val.x, max_sirt)
    k_cgls = _best_iteration(cgls, A, val.y, val.x, max_cgls)
    tv_scores = {lam: float(psnr(tv_pdhg(A, val.y, lam, tv_iterations), val.x,
                                 data_range=1.0).mean()) for lam in tv_lambdas}
    lam = max(tv_scores, key=tv_scores.get)

    methods = {
        f"FBP ({setting.fbp_filter})": setting.fbp,
        f"SIRT ({k_sirt} it.)": lambda y: sirt(A, y, k_sirt),
        f"CGLS ({k_cgls} it.)": lambda y: cgls(A, y, k_cgls),
        f"TV (λ={lam:g})": lambda y: tv_pdhg(A, y, lam, tv_iterations),
    }
    setting.cache[key] = methods
    return dict(methods)


def classical_baselines(setting, split: str = "test", **tuning) -> list:
    """Results-table rows of FBP, SIRT, CGLS and TV, tuned on validation, scored on ``split``.

    The reference rows of every learned lesson: see :func:`classical_methods` for how
    each method's parameter is chosen (on the validation split, never on the test split).

    Parameters
    ----------
    setting : SparseViewSetting
    split : {"test", "val", "train"} or DataSplit
        Where to score (default the test split); a ``DataSplit``, e.g.
        ``setting.split("test", noise_level=0.1)``, scores on other data with the
        methods still tuned for the setting's own noise (as a trained network would be).
    **tuning
        Passed on to :func:`classical_methods`.

    Returns
    -------
    list of dict
        One :func:`evaluate` row per method, for :func:`cu.results_table`.
    """
    data = setting.split(split) if isinstance(split, str) else split
    return [evaluate(method, data, name=label)
            for label, method in classical_methods(setting, **tuning).items()]
