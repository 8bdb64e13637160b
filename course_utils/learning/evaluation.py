"""Scoring reconstruction methods on the shared test set, one table row per method.

Every lesson ends with a results table in which its new method meets the earlier ones
on the same test images (:class:`~course_utils.simulation.setting.SparseViewSetting`):

>>> setting = cu.SparseViewSetting()                                  # doctest: +SKIP
>>> rows = cu.classical_baselines(setting)        # FBP, SIRT, CGLS, TV: tuned, scored
>>> rows.append(cu.evaluate(lambda y: unet(setting.fbp(y)), setting.test,
...                         name="FBPConvNet", parameters=cu.count_parameters(unet)))
>>> cu.results_table(rows)

Fair play: every hyper-parameter (the FBP filter, the number of iterations, the TV
weight, the training epochs) is chosen on the *validation* split; the *test* split is
only used to report.

Uncertainty: a row keeps every image's score, shows the mean with its 95 % confidence
interval, and :func:`paired_difference` compares two methods *on the same images*: the
mean of the per-image differences and its 95 % interval.  "A beats B" is a claim about
the lower end of that interval, never about two means:

>>> d = cu.paired_difference(rows[-1], rows[0])                       # doctest: +SKIP
>>> print(d)        # FBPConvNet - FBP: +5.12 dB, 95 % CI [4.80, 5.44], 32 images
>>> assert d.low > 0
"""

from __future__ import annotations

import csv
import math
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..reconstruction.algorithms import cgls, sirt, tv_pdhg
from ..reconstruction.fbp import fbp
from ..config import QUICK
from ..metrics import psnr, psnr_3d, ssim, ssim_3d
from .networks import count_parameters

__all__ = ["evaluate", "classical_methods", "ClassicalMethods", "classical_baselines",
           "paired_difference", "choose_on_validation",
           "PairedDifference", "mean_interval", "tune_tv_weight", "pareto_front",
           "significance_ranks", "load_results"]


def _t_quantile(n: int) -> float:
    """The 97.5 % quantile of Student's t with ``n - 1`` degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(0.975, n - 1))


def mean_interval(values) -> tuple:
    """Mean of per-image scores and the half-width of its 95 % confidence interval.

    Student's t-interval, :math:`\\bar v \\pm t_{0.975, n-1}\\, s / \\sqrt n`, with
    :math:`s` the sample standard deviation of the ``n`` values.

    Parameters
    ----------
    values : sequence of float or torch.Tensor, shape (n,)

    Returns
    -------
    (mean, half_width) : tuple of float
        ``half_width`` is ``nan`` for a single value.

    Taught in lesson 03, section 1.
    """
    v = torch.as_tensor(values, dtype=torch.float64).flatten()
    if v.numel() == 0:
        raise ValueError("mean_interval needs at least one value")
    if v.numel() == 1:
        return float(v[0]), float("nan")
    return float(v.mean()), _t_quantile(v.numel()) * float(v.std()) / math.sqrt(v.numel())


@dataclass
class PairedDifference:
    """The paired comparison of two methods on the same images (:func:`paired_difference`).

    Attributes
    ----------
    mean : float
        Mean over the images of ``score(A) - score(B)`` (for two rows scored on
        different subsets, over the images they share).
    low, high : float
        The 95 % confidence interval of that mean (Student's t on the differences).
    n : int
        Number of images.
    metric : str
        ``"PSNR (dB)"`` or ``"SSIM"``.
    names : tuple of str
        ``(A, B)``.

    Taught in lesson 02, section 5 (the inverse crime) and used by every results table after it.
    """

    mean: float
    low: float
    high: float
    n: int
    metric: str
    names: tuple

    def __str__(self) -> str:
        unit = " dB" if "PSNR" in self.metric else ""
        digits = 2 if "PSNR" in self.metric else 3
        return (f"{self.names[0]} - {self.names[1]}: {self.mean:+.{digits}f}{unit}, "
                f"95 % CI [{self.low:+.{digits}f}, {self.high:+.{digits}f}], "
                f"{self.n} images ({self.metric.split()[0]})")

    def _repr_html_(self) -> str:
        return f"<code>{str(self)}</code>"


def paired_difference(a, b, metric: str = "PSNR (dB)") -> PairedDifference:
    """Compare two methods on the same images: mean difference and its 95 % interval.

    Because both methods are scored on the same images, the image-to-image spread
    (some phantoms are simply harder) cancels in the differences; the paired interval
    is much narrower than the two rows' intervals, and it is the right test of
    "A beats B".

    Parameters
    ----------
    a, b : dict or sequence of float
        Rows of :func:`evaluate` (which keep every image's score) or the per-image
        scores themselves, in the same image order.  Two rows of :func:`load_results`
        say which test images they were scored on (``"images"``); when they differ (the
        deep image prior runs on the first 20 only), they are compared on the images
        they share.
    metric : {"PSNR (dB)", "SSIM"}

    Returns
    -------
    PairedDifference
        ``.mean``, ``.low``, ``.high`` (95 % CI of the mean of ``a - b``), ``.n``;
        prints as one line.

    Examples
    --------
    >>> d = paired_difference([30.0, 31.0, 29.5, 30.2], [29.0, 30.1, 28.9, 29.0])
    >>> round(d.mean, 3), d.low > 0
    (0.925, True)

    Taught in lesson 02, section 5 (the inverse crime) and used by every results table after it.
    """
    if metric not in ("PSNR (dB)", "SSIM"):
        raise ValueError(f'metric must be "PSNR (dB)" or "SSIM", got {metric!r}')
    names, scores = [], []
    for side, label in ((a, "A"), (b, "B")):
        if isinstance(side, dict):
            key = metric.split()[0] + " per image"
            if key not in side:
                raise ValueError(f"row {side.get('method', label)!r} has no per-image "
                                 f"scores ({key!r}): make it with cu.evaluate")
            names.append(str(side.get("method", label)))
            scores.append(torch.as_tensor(side[key], dtype=torch.float64).flatten())
        else:
            names.append(label)
            scores.append(torch.as_tensor(side, dtype=torch.float64).flatten())
    images = [side.get("images") if isinstance(side, dict) else None for side in (a, b)]
    if images[0] is not None and images[1] is not None:
        scores = _on_shared_images(images[0], scores[0], images[1], scores[1])
    else:                     # one side has no indices: it must be the images 0, 1, ...
        for known, other in ((images[0], scores[1]), (images[1], scores[0])):
            if known is not None and [int(i) for i in known] != list(range(len(other))):
                raise ValueError("one row says which test images it was scored on and the "
                                 "other does not: they cannot be paired safely")
    if scores[0].shape != scores[1].shape:
        raise ValueError(f"a and b must be scored on the same images, got "
                         f"{scores[0].numel()} and {scores[1].numel()} scores")
    if scores[0].numel() < 2:
        raise ValueError("a paired interval needs at least 2 images")
    mean, half = mean_interval(scores[0] - scores[1])
    return PairedDifference(mean, mean - half, mean + half, scores[0].numel(), metric,
                            tuple(names))


def _on_shared_images(images_a, scores_a, images_b, scores_b) -> list:
    """The two rows' scores on the images that both were scored on, in one order."""
    index_a = {int(i): k for k, i in enumerate(images_a)}
    index_b = {int(i): k for k, i in enumerate(images_b)}
    if len(index_a) != len(images_a) or len(index_b) != len(images_b):
        raise ValueError("a row lists the same test image twice: its per-image scores are "
                         "corrupt")
    shared = sorted(index_a.keys() & index_b.keys())
    if not shared:
        raise ValueError("the two rows were scored on different images: nothing to pair")
    return [scores_a[[index_a[i] for i in shared]], scores_b[[index_b[i] for i in shared]]]


#: Where ``benchmarks/ellipses.py`` writes its tables (a folder of the repository).
RESULTS_FOLDER = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


def load_results(name: str = "ellipses_small_area", folder=None) -> tuple:
    """A results table that ``benchmarks/ellipses.py`` measured, with its provenance.

    Parameters
    ----------
    name : str
        The file's stem: ``ellipses_<budget>_<sampling>`` (default: the course's
        full-mode setting, the CPU budget, pixel-area sampling).
    folder : str or Path, optional
        Default: ``benchmarks/results`` of the repository.

    Returns
    -------
    (rows, provenance) : list of dict, str
        One dict per method, numbers as floats (empty cells as ``nan``); and the first
        line of the Markdown twin, which says the budget, date, machine and torch.
        When the table's per-image twin ``<name>_per_image.csv`` exists, every row also
        has ``"PSNR per image"`` and ``"SSIM per image"`` (tensors of shape ``(n,)``) and
        ``"images"`` (the indices of those test images, shape ``(n,)``), so that
        :func:`paired_difference` and :func:`significance_ranks` work on shipped rows as
        on rows of :func:`evaluate`, pairing two rows on the images they share.

    Taught in lesson 14, section 1.  Rebuild with ``python benchmarks/ellipses.py
    --budget small`` (see ``benchmarks/README.md`` for how long each group takes).
    """
    folder = RESULTS_FOLDER if folder is None else Path(folder)
    path = folder / f"{name}.csv"
    if not path.exists():
        raise FileNotFoundError(f"no results table {path}: run python benchmarks/ellipses.py "
                                f"(see benchmarks/README.md) to make it")
    with path.open(newline="") as handle:
        raw = list(csv.DictReader(handle))

    def value(text):
        try:
            return float(text) if text != "" else math.nan
        except ValueError:
            return text

    rows = [{key: value(text) if key not in ("method", "family", "budget") else text
             for key, text in row.items()} for row in raw]
    per_image = path.with_name(f"{name}_per_image.csv")
    if per_image.exists():
        with per_image.open(newline="") as handle:
            scores = list(csv.DictReader(handle))
        for row in rows:
            mine = sorted((s for s in scores if s["method"] == row["method"]),
                          key=lambda s: int(s["image"]))
            if not mine:
                raise ValueError(f"{per_image.name} has no scores for {row['method']!r}: "
                                 f"rerun python benchmarks/ellipses.py for that row")
            row["images"] = torch.tensor([int(s["image"]) for s in mine])
            for metric in ("PSNR", "SSIM"):
                column = "PSNR (dB)" if metric == "PSNR" else "SSIM"
                row[f"{metric} per image"] = torch.tensor([float(s[column]) for s in mine],
                                                          dtype=torch.float64)
    markdown = path.with_suffix(".md")
    provenance = (markdown.read_text().splitlines()[0] if markdown.exists()
                  else "provenance unknown (no Markdown twin)")
    return rows, provenance


def pareto_front(cost, quality) -> torch.Tensor:
    """Which methods no other method beats in both cost and quality (the Pareto front).

    Method :math:`i` is *dominated* when some :math:`j` costs no more and scores at
    least as well, and is strictly better in one of the two:
    :math:`c_j \\le c_i,\\ q_j \\ge q_i` and :math:`(c_j < c_i` or :math:`q_j > q_i)`.
    The front is every method that is not dominated; two methods with the same cost
    and quality are both on it (or both off it).

    Parameters
    ----------
    cost : sequence of float or torch.Tensor, shape (n,)
        Lower is better, e.g. the time per image in seconds.
    quality : sequence of float or torch.Tensor, shape (n,)
        Higher is better, e.g. the mean PSNR in dB.

    Returns
    -------
    torch.Tensor, shape (n,), bool
        True for the methods on the front.

    Examples
    --------
    >>> pareto_front([1.0, 2.0, 3.0], [20.0, 25.0, 24.0]).tolist()
    [True, True, False]

    Taught in lesson 14, section 2 (Exercise 1 writes it).
    """
    cost = torch.as_tensor(cost, dtype=torch.float64).flatten()
    quality = torch.as_tensor(quality, dtype=torch.float64).flatten()
    if cost.shape != quality.shape:
        raise ValueError(f"cost and quality must have one value per method, got "
                         f"{cost.numel()} and {quality.numel()}")
    if bool(torch.isnan(cost).any() | torch.isnan(quality).any()):
        raise ValueError("cost and quality must not contain nan: leave such methods out")
    no_worse = (cost[None, :] <= cost[:, None]) & (quality[None, :] >= quality[:, None])
    better = (cost[None, :] < cost[:, None]) | (quality[None, :] > quality[:, None])
    return ~(no_worse & better).any(dim=1)     # row i: is some j no worse and better?


def significance_ranks(rows, metric: str = "PSNR (dB)") -> dict:
    """Rank methods by the course's rule: only a paired 95 % interval separates two.

    The rank of a method is one plus the number of methods that beat it on the paired
    interval of :func:`paired_difference` (its lower end above 0). Methods that no
    interval separates share a rank, as in a competition ranking.

    Parameters
    ----------
    rows : dict or sequence of dict
        Rows of :func:`evaluate` on the *same* images (``{name: row}`` or a list of rows
        with a ``"method"`` key).
    metric : {"PSNR (dB)", "SSIM"}

    Returns
    -------
    dict
        ``{method: rank}``, 1 for the best.

    Raises
    ------
    ValueError
        If the rows say (``"images"``, as rows of :func:`load_results` do) that they
        were scored on different test images: rank such rows separately.

    Taught in lesson 14, section 3 (Exercise 2 writes it).
    """
    if not isinstance(rows, dict):
        rows = {row["method"]: row for row in rows}
    if len(rows) < 1:
        raise ValueError("rows is empty: give at least one method")
    image_sets = {name: tuple(int(i) for i in row["images"])
                  for name, row in rows.items() if "images" in row}
    if len(set(image_sets.values())) > 1:
        sizes = {name: len(images) for name, images in image_sets.items()}
        raise ValueError(f"rank rows scored on the same images only (a method compared on "
                         f"fewer images is harder to separate, so it would rank too high); "
                         f"these rows have {sizes} images: rank them separately")
    ranks = {}
    for name, row in rows.items():
        beaten_by = sum(paired_difference(other, row, metric).low > 0
                        for other_name, other in rows.items() if other_name != name)
        ranks[name] = 1 + int(beaten_by)
    return ranks


def evaluate(reconstruct, data, *, name=None, data_range: float = 1.0,
             batch_size: int = 32, parameters=None, volumes: bool = False) -> dict:
    """PSNR, SSIM, time and size of a reconstruction method on a data set: one table row.

    Parameters
    ----------
    reconstruct : callable or torch.nn.Module
        Maps a batch of inputs to images ``(B, 1, H, W)``; for a split of the setting the
        inputs are its sinograms ``(B, 1, n_angles, n_detectors)``.  A module is put in
        evaluation mode (and back afterwards) and the batches are moved to its device.
    data : DataSplit or (inputs, targets) pair of tensors
        A split of :class:`~course_utils.simulation.setting.SparseViewSetting` (inputs ``split.y``,
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
    volumes : bool
        The items are volumes ``(B, 1, D, H, W)`` (lesson 13): score each with
        :func:`~course_utils.metrics.psnr_3d` (one MSE over all voxels) and
        :func:`~course_utils.metrics.ssim_3d` (the mean over axial slices) instead of
        image by image.

    Returns
    -------
    dict
        ``{"method", "PSNR (dB)", "PSNR ±95%", "SSIM", "SSIM ±95%", "time / image (ms)",
        "parameters", "PSNR per image", "SSIM per image"}``: means over the images with
        the half-widths of their 95 % confidence intervals, the wall-clock time per image
        (the whole batch loop divided by the number of images), and every image's score
        (for :func:`paired_difference`; :func:`cu.results_table` does not show them).

    Taught in lesson 02, section 5; the results table of every learned lesson uses it.
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
    image_psnr, image_ssim = (psnr_3d, ssim_3d) if volumes else (psnr, ssim)
    p = image_psnr(x_hat, targets, data_range=data_range).reshape(len(targets), -1).mean(1)
    s = image_ssim(x_hat, targets, data_range=data_range).reshape(len(targets), -1).mean(1)
    p_mean, p_half = mean_interval(p)
    s_mean, s_half = mean_interval(s)
    return {
        "method": str(name),
        "PSNR (dB)": p_mean,
        "PSNR ±95%": p_half,
        "SSIM": s_mean,
        "SSIM ±95%": s_half,
        "time / image (ms)": 1000 * elapsed / len(targets),
        "parameters": int(parameters),
        "PSNR per image": p.detach().cpu().double(),
        "SSIM per image": s.detach().cpu().double(),
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


def tune_tv_weight(A, y, x, *, start: float, tol: float = 1e-4, max_iter: int = 3000,
                   finest_ratio: float = 2 ** 0.25) -> tuple:
    """The TV weight of the best mean PSNR, on a logarithmic grid refined around it.

    A walk on the grid :math:`\\lambda = \\text{start} \\cdot 2^{j}` (ratio 2) finds the
    best weight; the grid is then halved in log scale (ratios :math:`\\sqrt 2`,
    :math:`2^{1/4}`, ...) around the best weight until its ratio is at most
    ``finest_ratio``.  Every run goes to convergence (:func:`cu.tv_pdhg` with ``tol``).

    Parameters
    ----------
    A : LinearOperator
    y, x : torch.Tensor
        Validation data ``(n, 1, n_angles, n_detectors)`` and images ``(n, 1, N, N)``.
    start : float
        First weight tried.
    tol, max_iter : float, int
        Convergence criterion and iteration cap of every TV run.
    finest_ratio : float
        Ratio of neighbouring weights on the final grid (default :math:`2^{1/4} = 1.19`).

    Returns
    -------
    (lam, scores) : float, dict
        The best weight and the mean validation PSNR of every weight tried.

    Used in lesson 02, section 5, and by :func:`classical_methods`.
    """
    scores = {}

    def score(lam):
        lam = float(f"{lam:.4g}")
        if lam not in scores:
            scores[lam] = float(psnr(tv_pdhg(A, y, max_iter, lam=lam, tol=tol), x,
                                     data_range=1.0).mean())
        return lam, scores[lam]

    best, best_score = score(start)
    ratio = 2.0
    while True:
        # walk at this resolution until neither neighbour is better
        while True:
            moved = False
            for candidate in (best * ratio, best / ratio):
                lam, value = score(candidate)
                if value > best_score:
                    best, best_score, moved = lam, value, True
                    break
            if not moved:
                break
        if ratio <= finest_ratio * (1 + 1e-9):
            return best, scores
        ratio = math.sqrt(ratio)


def choose_on_validation(reconstruct, candidates, y, x, *, metric=psnr) -> tuple:
    """The candidate parameter with the best mean PSNR on validation data.

    Parameters
    ----------
    reconstruct : callable
        ``reconstruct(y, parameter)`` returns images ``(n, 1, N, N)``.
    candidates : sequence
        The values to try (e.g. noise levels of a denoiser).
    y, x : torch.Tensor
        Validation sinograms and their images (values in [0, 1]), never test data.
    metric : callable
        ``metric(x_hat, x, data_range=1.0)``, higher is better: ``cu.psnr`` (the
        default) or ``cu.psnr_3d`` for volumes (lesson 13).

    Returns
    -------
    (best, scores) : one of ``candidates``, dict
        The best candidate and the mean PSNR of each.

    Taught in lesson 11, section 1 (Exercise 2 writes it).
    """
    candidates = list(candidates)
    if not candidates:
        raise ValueError("candidates is empty: give at least one value to try")
    scores = {c: float(metric(reconstruct(y, c), x, data_range=1.0).mean())
              for c in candidates}
    return max(scores, key=scores.get), scores


def classical_methods(setting, *, n_tune: int | None = None, max_sirt: int = 2000,
                      max_cgls: int = 60, tv_start: float | None = None, tv_tol: float = 1e-4,
                      tv_max_iter: int = 3000, tv_finest_ratio: float = 2 ** 0.25) -> dict:
    """The classical methods of lesson 02, each converged and tuned on validation.

    * **FBP**: the filter and frequency cut-off with the best validation PSNR
      (``setting.fbp_name``: 4 filters x 15 cut-offs);
    * **SIRT** (non-negative) and **CGLS**: the number of iterations with the best
      validation PSNR, up to ``max_sirt`` / ``max_cgls`` (stopping early is their
      regularisation);
    * **TV** (:func:`cu.tv_pdhg`, non-negative): every run to convergence (relative
      change of the iterate below ``tv_tol``, at most ``tv_max_iter`` iterations), and
      the weight :math:`\\lambda` with the best validation PSNR on a logarithmic grid
      refined to a ratio of :math:`2^{1/4} \\approx 1.19` around the optimum
      (:func:`tune_tv_weight`).

    Tuning uses the first ``n_tune`` validation images (default: all of them).  It is
    remembered here, in this module, per setting and arguments (never inside the
    setting): a second call in the same session returns the same methods at no cost.
    Nothing is tuned on the test split.  FBP is tuned by ``setting.tune_fbp()`` if the
    setting's FBP is not chosen yet.

    Parameters
    ----------
    setting : SparseViewSetting
    n_tune : int, optional
        Validation images used for tuning (default all).
    max_sirt, max_cgls : int
        Largest iteration numbers tried.
    tv_start : float, optional
        Where the search for the TV weight starts; default ``N / 20`` (the data term
        grows with the image size ``N``, so the good weight does too).
    tv_tol, tv_max_iter, tv_finest_ratio
        Convergence criterion, iteration cap and final grid ratio of the TV search.

    Returns
    -------
    ClassicalMethods
        A dict ``{label: reconstruct}`` in the order FBP, SIRT, CGLS, TV; each label
        holds the chosen parameter (e.g. ``"TV (λ=3.36)"``) and each ``reconstruct`` maps
        sinograms ``(..., n_angles, n_detectors)`` to images ``(..., N, N)``.  Its
        attribute ``tuning`` is the record of the choice: ``"SIRT iterations"``,
        ``"CGLS iterations"``, ``"TV weight"``, ``"TV scores"`` (every weight tried and
        its validation PSNR) and ``"FBP"`` (filter, cut-off).  Taught in lesson 03,
        section 6, and used by lessons 04-09.
    """
    N = setting.image_size
    tv_start = N / 20 if tv_start is None else float(tv_start)
    key = (n_tune, max_sirt, max_cgls, tv_start, tv_tol, tv_max_iter, tv_finest_ratio,
           setting.fbp_filter, setting.fbp_cutoff)
    remembered = _TUNED.setdefault(setting, {})
    if key in remembered:
        return ClassicalMethods(remembered[key], remembered[key].tuning)
    if setting.fbp_filter is None:
        setting.tune_fbp()

    A, val = setting.A, setting.val if n_tune is None else setting.val[:n_tune]
    if len(val) == 0:
        raise ValueError("the setting has no validation images to tune on (n_val=0)")
    k_sirt = _best_iteration(sirt, A, val.y, val.x, max_sirt)
    k_cgls = _best_iteration(cgls, A, val.y, val.x, max_cgls)
    lam, tv_scores = tune_tv_weight(A, val.y, val.x, start=tv_start, tol=tv_tol,
                                    max_iter=tv_max_iter, finest_ratio=tv_finest_ratio)
    if k_sirt == max_sirt or k_cgls == max_cgls:
        import warnings
        warnings.warn(f"the best SIRT or CGLS iteration is the last one tried "
                      f"({k_sirt}/{max_sirt}, {k_cgls}/{max_cgls}): raise max_sirt / max_cgls")

    def tv(y):
        return tv_pdhg(A, y, tv_max_iter, lam=lam, tol=tv_tol)

    filter, cutoff = setting.fbp_filter, setting.fbp_cutoff
    methods = ClassicalMethods({
        setting.fbp_name: lambda y: fbp(A, y, filter, cutoff),
        f"SIRT ({k_sirt} it.)": lambda y: sirt(A, y, k_sirt),
        f"CGLS ({k_cgls} it.)": lambda y: cgls(A, y, k_cgls),
        f"TV (λ={lam:.3g})": tv,
    }, {"SIRT iterations": k_sirt, "CGLS iterations": k_cgls, "TV weight": lam,
        "TV scores": tv_scores, "FBP": (filter, cutoff)})
    remembered[key] = methods
    return ClassicalMethods(methods, methods.tuning)


class ClassicalMethods(dict):
    """``{label: reconstruct}`` of :func:`classical_methods`, with its ``tuning`` record.

    Lesson 03, section 6, and lessons 04-09.
    """

    def __init__(self, methods, tuning: dict):
        super().__init__(methods)
        self.tuning = dict(tuning)


# classical_methods' results, per setting (forgotten with the setting) and arguments
_TUNED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


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
