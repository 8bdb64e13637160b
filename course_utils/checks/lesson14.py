"""Checks for the exercises of lesson 14: the course's results table and choosing a method.

Exercise 1 (section 2) writes the Pareto front, ``front(cost, quality)``, checked by
:func:`pareto_front`; Exercise 2 (section 3) writes the ranks from paired intervals,
``ranks(rows)``, checked by :func:`significance_ranks`.  Each check runs the learner's
function on small cases it makes up, compares with the reference computed here
(:func:`~course_utils.learning.evaluation.pareto_front`,
:func:`~course_utils.learning.evaluation.significance_ranks`) and, when the answer is
wrong, recognises the usual mistakes and says which one it is:

* **the Pareto front** (random clouds of 5 to 30 methods, identical points on and off
  the front, equal costs, equal qualities, a single method, NumPy input): cost
  maximised, quality minimised or both directions reversed, domination that needs
  strictly better in both (methods with an equal cost or quality kept), identical
  points dominating each other (both removed), a method dominating itself (an empty
  front), only the cheapest and the best method, the inverted mask (the dominated
  ones), the mask in the order of increasing cost; and indices or a sorting order
  instead of a mask, a mask of the wrong length.  Code that takes tensors only (as the
  exercise asks) is given the NumPy case as tensors.
* **ranking with paired intervals** (rows of ``cu.evaluate`` on the same images: clear
  winners, ties, a non-transitive case where A beats C but neither beats B, a method
  with a lower mean ranked above one with a higher mean, methods in shuffled order, and
  tables whose paired t-statistics are set exactly: a pair separated at 95 % but not
  at 99 % nor after a Bonferroni correction, a pair separated at 99 % but not after
  the correction, and a pair on 6 images that 1.96 separates but Student's t does
  not): ranks by the mean PSNR alone (1 to n), ranks by SSIM instead of PSNR, each
  method's own interval (mean ± half-width, or the difference of two unpaired means)
  instead of the paired one, a 99 % interval, a Bonferroni correction for the number
  of pairs, the normal quantile 1.96 instead of Student's t, counting the methods that
  are not worse (ties included) instead of those that beat it, counting the methods it
  beats (the interval read the wrong way round: the best gets the largest rank), ranks
  from 0, dense ranks (1, 2, 2, 3 where the rule gives 1, 2, 2, 4); and a list instead
  of a dict, methods missing from the result or names that are not methods, ranks that
  are not numbers.  The rank counts the methods that beat a method, so ranks need not
  be consecutive (1, 2, 2, 4), nor do they always skip after a tie: in a
  non-transitive case (A beats C, B is tied with both) they are 1, 1, 2.

Both checks fail an answer that calls the course's own ``cu.pareto_front`` or
``cu.significance_ranks`` (the exercise asks to write it; the lesson shows the course's
version after it); ``cu.paired_difference`` and ``cu.mean_interval`` are allowed.
Every check leaves the global random state as it found it.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Mapping

import numpy as np
import torch

from ..learning.evaluation import mean_interval, paired_difference
from ..learning.evaluation import pareto_front as _pareto_front
from ..learning.evaluation import significance_ranks as _significance_ranks
from ._feedback import CheckFailed, exercise_check, expect

__all__ = ["pareto_front", "significance_ranks"]


def _diagnose(got: list, variants: dict, close) -> str | None:
    """The name of the mistake whose results match the learner's.

    ``got`` holds the learner's results case by case (None where right), ``variants``
    maps a name to the function ``case -> result`` of that mistake.  A variant that
    matches every wrong case wins; otherwise the one that matches most of them, if it
    matches more than half (on a small case a wrong answer can match a mistake by chance).
    """
    wrong = [i for i, g in enumerate(got) if g is not None]
    matches = {name: sum(close(got[i], variant(i)) for i in wrong)
               for name, variant in variants.items()}
    best = max(matches, key=matches.get)
    return best if 2 * matches[best] > len(wrong) else None


@contextlib.contextmanager
def _own_work(name: str):
    """While the learner's code runs, record whether it calls the course's ``name``.

    ``course_utils.learning.evaluation.<name>`` and the flat ``cu.<name>`` are replaced
    by wrappers that note the call and then do the work (so the learner's code runs on);
    the check fails afterwards.  Yields the list of calls; restores both names.
    """
    import course_utils
    from ..learning import evaluation

    course_utils._load()            # the flat names exist only once the package is loaded
    original = getattr(evaluation, name)
    flat = getattr(course_utils, name)
    calls = []

    @functools.wraps(original)
    def recording(*args, **kwargs):
        calls.append(name)
        return original(*args, **kwargs)

    try:
        setattr(evaluation, name, recording)
        setattr(course_utils, name, recording)
        yield calls
    finally:
        setattr(evaluation, name, original)
        setattr(course_utils, name, flat)


def _run_own(name: str, what: str, fn, *args):
    """``fn(*args)``, failing when it calls the course's ``cu.<name>`` to do the work."""
    from ..learning import evaluation

    with _own_work(name) as calls, torch.random.fork_rng(devices=[]):
        if fn is getattr(evaluation, name).__wrapped__:   # the course's function itself
            calls.append(name)
            result = None
        else:
            result = fn(*args)
    expect(not calls, f"{what} calls cu.{name}: the exercise asks you to write it "
                      f"yourself (the course's version comes after the exercise)")
    return result


# --- Exercise 1 (section 2): the Pareto front -------------------------------------------

def _cloud(gen: torch.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` methods in random order: quality grows with log(cost), with scatter."""
    log_cost = -1.0 + 3.5 * torch.rand(n, generator=gen, dtype=torch.float64)
    quality = (27.0 + 2.0 * log_cost
               + 1.5 * torch.randn(n, generator=gen, dtype=torch.float64))
    return 10.0**log_cost, quality


def _front_cases(gen: torch.Generator) -> list:
    """(cost, quality, note): clouds, ties, equal costs or qualities, one method, NumPy."""
    t = torch.tensor
    f64 = torch.float64
    cases = [(*_cloud(gen, n), "") for n in (5, 12, 30)]
    cases += [
        (t([2.0, 1.0, 3.0, 2.0, 0.5], dtype=f64),
         t([25.0, 22.0, 24.0, 25.0, 18.0], dtype=f64),
         " (two identical methods)"),
        (t([1.5, 4.0, 1.5, 4.0, 0.5], dtype=f64),
         t([27.0, 26.0, 27.5, 26.0, 22.0], dtype=f64),
         " (equal costs, and two identical methods)"),
        (t([5.0, 2.0, 8.0, 1.0], dtype=f64), t([30.0, 30.0, 31.0, 28.0], dtype=f64),
         " (equal qualities)"),
        (t([2.5], dtype=f64), t([27.0], dtype=f64), " (a single method)"),
    ]
    cost, quality = _cloud(gen, 9)
    cases.append((cost.numpy(), quality.numpy(), " (NumPy arrays)"))
    return cases


def _first_of(values: torch.Tensor, *, largest: bool) -> int:
    return int(torch.argmax(values) if largest else torch.argmin(values))


def _ends(cost, quality, *, careful: bool) -> torch.Tensor:
    """Only the cheapest and the best method (ties broken by the other score, or not)."""
    mask = torch.zeros(len(cost), dtype=torch.bool)
    if careful:
        cheapest = cost == cost.min()
        mask[_first_of(torch.where(cheapest, quality, -torch.inf), largest=True)] = True
        best = quality == quality.max()
        mask[_first_of(torch.where(best, cost, torch.inf), largest=False)] = True
    else:
        mask[_first_of(cost, largest=False)] = True
        mask[_first_of(quality, largest=True)] = True
    return mask


def _cost_orders(cost, quality) -> list:
    """The orders of increasing cost a sort gives (ties kept, or by quality)."""
    stable = torch.sort(cost, stable=True).indices
    by_both = torch.from_numpy(np.lexsort((-quality.numpy(), cost.numpy())))
    return [stable, by_both]


def _front_variants(cost, quality) -> dict:
    """name -> list of the masks of that mistake."""
    right = _pareto_front(cost, quality)
    others = ~torch.eye(len(cost), dtype=torch.bool)
    c_j, c_i = cost[None, :], cost[:, None]
    q_j, q_i = quality[None, :], quality[:, None]
    strictly = ((c_j < c_i) & (q_j > q_i) & others).any(dim=1)
    weakly = ((c_j <= c_i) & (q_j >= q_i) & others).any(dim=1)
    return {
        "cost maximised": [_pareto_front(-cost, quality)],
        "quality minimised": [_pareto_front(cost, -quality)],
        "both reversed": [_pareto_front(-cost, -quality)],
        "strict": [~strictly],
        "weak": [~weakly],
        "itself": [torch.zeros(len(cost), dtype=torch.bool)],
        "ends": [_ends(cost, quality, careful=False), _ends(cost, quality, careful=True)],
        "inverted": [~right],
        "sorted": [right[order] for order in _cost_orders(cost, quality)],
    }


_FRONT_MISTAKES = {
    "cost maximised": "your front prefers the more expensive methods: a lower cost is "
                      "better (and a higher quality)",
    "quality minimised": "your front prefers the lower quality: a higher quality is better "
                         "(and a lower cost)",
    "both reversed": "your front has both directions reversed: it keeps expensive, "
                     "low-quality methods; a lower cost and a higher quality are better",
    "strict": "a method with the same cost and a lower quality (or the same quality and a "
              "higher cost) is dominated too: no worse in both and better in one is "
              "enough, it need not be strictly better in both",
    "weak": "two methods with exactly the same cost and quality do not dominate each "
            "other, so both stay on the front: domination needs being better in at least "
            "one of the two",
    "itself": "your front is empty, yet some method (the best of the cheapest) is always "
              "on it: does a method dominate itself in your comparison?",
    "ends": "your front holds only the cheapest and the best method; a method in between "
            "is on it too when no other method costs no more and scores at least as well",
    "inverted": "your mask is inverted: True should mark the methods on the front (those "
                "no other method dominates), False the dominated ones",
    "sorted": "your mask is in the order of increasing cost; give it in the methods' own "
              "order: entry i says whether method i is on the front",
}


def _mask_of(result, what: str, right: torch.Tensor) -> torch.Tensor:
    """The learner's mask as a bool tensor, or CheckFailed saying what came back."""
    n = len(right)
    expect(result is not None, f"{what} returned None — did you forget a `return`?")
    if isinstance(result, torch.Tensor):
        values = result.detach().cpu().numpy()
    elif isinstance(result, np.ndarray):
        values = result
    elif isinstance(result, (list, tuple)):
        try:
            values = np.array([v.item() if isinstance(v, (torch.Tensor, np.ndarray))
                               else v for v in result])
        except (ValueError, RuntimeError):
            raise CheckFailed(f"{what} should be a mask: one True/False per method") \
                from None
    else:
        raise CheckFailed(f"{what} should be a mask (a bool tensor, one True/False per "
                          f"method), got a {type(result).__name__}")
    expect(values.dtype.kind in "biuf",
           f"{what} should be a mask of True/False values, got an array of {values.dtype}")
    mask_like = values.dtype == bool or (values.shape == (n,)
                                         and np.isin(values, (0, 1)).all())
    if values.dtype != bool and values.ndim == 1:
        indices = np.flatnonzero(right.numpy())
        if (len(values) == len(indices) and np.array_equal(np.sort(values), indices)
                and not (mask_like and np.array_equal(values, right.numpy()))):
            raise CheckFailed(f"{what} returned the indices of the methods on the front; "
                              f"return a mask instead: one True/False per method, True "
                              f"for those on the front")
        if (n > 2 or not mask_like) and np.array_equal(np.sort(values), np.arange(n)):
            raise CheckFailed(f"{what} returned an order of the methods (a permutation of "
                              f"0 to {n - 1}), as a sort gives; return a mask: one "
                              f"True/False per method, True for those on the front")
        if not mask_like and np.isin(values, np.arange(n)).all() and len(values) <= n:
            raise CheckFailed(f"{what} returned indices of methods; return a mask "
                              f"instead: one True/False per method, True for those on the "
                              f"front")
    expect(mask_like or values.shape != (n,),
           f"{what} should be a mask of True/False values, got numbers other than 0 and 1")
    expect(values.shape == (n,),
           f"{what} has shape {values.shape}, expected ({n},): one True/False per method")
    return torch.from_numpy(values.astype(bool))


def _describe_point(k: int, cost, quality) -> str:
    return f"method {k} (cost {float(cost[k]):.4g}, quality {float(quality[k]):.4g})"


@exercise_check("the Pareto front")
def pareto_front(my_front):
    """Exercise 1 (section 2): ``my_front(cost, quality)`` -> bool mask of the Pareto front.

    Against ``cu.pareto_front`` on random clouds of 5, 12 and 30 methods, two identical
    methods, equal costs, equal qualities, a single method and NumPy arrays (given again
    as tensors when the learner's code raises on them: the exercise promises tensors).
    The mask may be a bool tensor, a NumPy array or a list of bools.  Calling the
    course's ``cu.pareto_front`` to do the work fails: the exercise asks to write it.
    """
    gen = torch.Generator().manual_seed(14)
    cases = _front_cases(gen)
    tensors = [(torch.as_tensor(c), torch.as_tensor(q)) for c, q, _ in cases]
    got, expected, whats = [], [], []
    tensors_only = False
    for (cost, quality, note), (c, q) in zip(cases, tensors):
        what = f"my_front(cost, quality) on {len(c)} method{'s' if len(c) > 1 else ''}{note}"
        if isinstance(cost, np.ndarray):
            # The exercise promises tensors: NumPy input is a bonus, not a test.
            try:
                result = _run_own("pareto_front", what, my_front, cost.copy(),
                                  quality.copy())
            except CheckFailed:
                raise
            except Exception:
                tensors_only = True
                what = what.replace(" (NumPy arrays)", "")
                result = _run_own("pareto_front", what, my_front, c.clone(), q.clone())
        else:
            result = _run_own("pareto_front", what, my_front, cost.clone(), quality.clone())
        right = _pareto_front(c, q)
        mask = _mask_of(result, what, right)
        got.append(None if torch.equal(mask, right) else mask)
        expected.append(right)
        whats.append(what)
    if all(g is None for g in got):
        n_methods = sum(len(c) for c, _ in tensors)
        bonus = ("; your code takes tensors, not NumPy arrays, as the exercise asks"
                 if tensors_only else "")
        return f"{len(cases)} cases, {n_methods} methods tried{bonus}"

    def close(mask, masks):
        return any(torch.equal(mask, m) for m in masks)

    all_variants = functools.lru_cache(maxsize=None)(lambda i: _front_variants(*tensors[i]))
    variants = {name: (lambda i, name=name: all_variants(i)[name])
                for name in _FRONT_MISTAKES}
    first = next(i for i, g in enumerate(got) if g is not None)
    mistake = _diagnose(got, variants, close)
    if mistake is not None:
        raise CheckFailed(f"{whats[first]}: {_FRONT_MISTAKES[mistake]}")
    (c, q), mask, right = tensors[first], got[first], expected[first]
    k = int(torch.nonzero(mask != right)[0])
    if mask[k]:
        dominates = (c <= c[k]) & (q >= q[k]) & ((c < c[k]) | (q > q[k]))
        j = int(torch.nonzero(dominates)[0])
        raise CheckFailed(f"{whats[first]}: {_describe_point(k, c, q)} is on your front, "
                          f"but {_describe_point(j, c, q)} dominates it: it costs no more, "
                          f"scores at least as well and is better in one")
    raise CheckFailed(f"{whats[first]}: {_describe_point(k, c, q)} is left off your front, "
                      f"but no other method costs no more and scores at least as well "
                      f"while being better in one")


# --- Exercise 2 (section 3): ranking with paired intervals ----------------------------

#: One case per entry: (number of images, [(name, PSNR offset, noise, SSIM offset)],
#: shuffle, exact).  Every image has its own difficulty (a spread of 3 dB shared by all
#: methods), so each method's own interval is wide while the paired ones are narrow.
#: In the ``exact`` tables the methods' noises are orthogonal and centred, so the paired
#: difference of a and b has mean offset_a - offset_b and standard deviation
#: sqrt(noise_a² + noise_b²) exactly: its t-statistic is set by the numbers below.
_RANK_CASES = [
    # Clear winners and a tie: ranks 1, 2, 2, 4 (dense ranks would say 1, 2, 2, 3).
    (24, [("FBP", 0.0, 0.3, 0.03), ("TV", 1.5, 0.3, 0.0), ("CGLS", 1.55, 0.3, 0.01),
          ("FBPConvNet", 3.0, 0.3, -0.02)], False, False),
    # Not transitive: LPD beats FBP, but the noisy DIP is tied with both (1, 1, 2).
    (16, [("LPD", 1.0, 0.2, -0.01), ("DIP", 0.5, 1.6, 0.02), ("FBP", 0.0, 0.2, 0.0)],
     False, False),
    # A lower mean ranked above a higher one: nothing separates the noisy "PnP" from
    # "Noise2Inverse", which beats "SIRT".
    (12, [("SIRT", 1.0, 0.2, 0.0), ("Noise2Inverse", 2.0, 0.2, -0.03),
          ("PnP", 0.8, 2.5, 0.02), ("FBP", -0.5, 0.2, 0.01)], False, False),
    # Six methods in shuffled order: two tied pairs and clear gaps (1, 1, 3, 4, 4, 6).
    (40, [("FBP", 0.0, 0.3, 0.04), ("SIRT", 0.3, 0.3, 0.03), ("TV", 0.35, 0.3, 0.02),
          ("unrolled MLEM", 1.2, 0.3, 0.01), ("LPD", 2.0, 0.3, -0.01),
          ("FBPConvNet", 2.05, 0.3, 0.0)], True, False),
    # Few images, everything within noise of its neighbour except a clear gap.
    (8, [("A", 0.0, 0.3, 0.0), ("B", 0.05, 0.3, -0.01), ("C", 1.0, 0.3, -0.02),
         ("D", 3.0, 0.3, -0.03), ("E", 3.1, 0.3, -0.04)], True, False),
    # 20 images, U-Net - TV has t = 0.30 √20 / 0.57 = 2.37: separated at 95 %
    # (t_0.975 = 2.09), not at 99 % (2.86) nor with Bonferroni for 3 pairs (2.63).
    (20, [("U-Net", 2.0, 0.4, -0.01), ("TV", 1.7, 0.4, 0.01), ("FBP", 0.0, 0.4, 0.0)],
     False, True),
    # 30 images, six methods (15 pairs): LPD - U-Net has t = 0.39 √30 / 0.71 = 3.02,
    # separated at 99 % (2.76) but not with Bonferroni (3.20); CGLS - SIRT has t = 2.40,
    # separated at 95 % (2.05) only; FBP - "FBP (Hann)" t = 1.01, tied for every rule.
    (30, [("LPD", 4.0, 0.5, -0.02), ("U-Net", 3.61, 0.5, -0.01), ("CGLS", 2.1, 0.5, 0.0),
          ("SIRT", 1.79, 0.5, 0.01), ("FBP", 0.3, 0.5, 0.02),
          ("FBP (Hann)", 0.17, 0.5, 0.03)], True, True),
    # 6 images, Noise2Inverse - TV has t = 0.38 √6 / 0.42 = 2.19: the normal quantile
    # 1.96 separates them, Student's t_0.975 with 5 degrees of freedom (2.57) does not.
    (6, [("Noise2Inverse", 1.0, 0.3, 0.0), ("TV", 0.62, 0.3, -0.01),
         ("FBP", -2.0, 0.3, 0.01)], False, True),
]


def _standard(gen: torch.Generator, n: int) -> torch.Tensor:
    """``n`` random values with mean exactly 0 and standard deviation exactly 1."""
    z = torch.randn(n, generator=gen, dtype=torch.float64)
    return (z - z.mean()) / z.std()


def _orthogonal_standard(gen: torch.Generator, n: int, count: int) -> torch.Tensor:
    """(n, count): columns of mean 0 and standard deviation 1, orthogonal to each other."""
    z = torch.randn(n, count, generator=gen, dtype=torch.float64)
    q, _ = torch.linalg.qr(z - z.mean(dim=0))    # still centred: combinations of centred
    return q * math.sqrt(n - 1)


def _rank_rows(gen: torch.Generator, n_images: int, methods, shuffle: bool,
               exact: bool = False) -> dict:
    """``{name: row}`` as ``cu.evaluate`` makes them, every method on the same images."""
    difficulty = 3.0 * torch.randn(n_images, generator=gen, dtype=torch.float64)
    structure = 0.04 * torch.randn(n_images, generator=gen, dtype=torch.float64)
    order = (torch.randperm(len(methods), generator=gen).tolist() if shuffle
             else range(len(methods)))
    noises = _orthogonal_standard(gen, n_images, len(methods)) if exact else None
    rows = {}
    for k in order:
        name, offset, noise, ssim_offset = methods[k]
        z = noises[:, k] if exact else _standard(gen, n_images)
        psnr = 30.0 + difficulty + offset + noise * z
        ssim = (0.85 + structure + ssim_offset
                + 0.004 * _standard(gen, n_images)).clamp(max=1.0)
        p_mean, p_half = mean_interval(psnr)
        s_mean, s_half = mean_interval(ssim)
        rows[name] = {"method": name, "PSNR (dB)": p_mean, "PSNR ±95%": p_half,
                      "SSIM": s_mean, "SSIM ±95%": s_half,
                      "time / image (ms)": 1.0 + k, "parameters": 1000 * k,
                      "PSNR per image": psnr, "SSIM per image": ssim}
    return rows


def _rank_tables() -> list:
    """The tables of :data:`_RANK_CASES`, always the same."""
    gen = torch.Generator().manual_seed(14)
    return [_rank_rows(gen, *case) for case in _RANK_CASES]


def _copy_rows(rows: dict) -> dict:
    """A fresh copy, so that the learner's code cannot change ours."""
    return {name: {key: (value.clone() if isinstance(value, torch.Tensor) else value)
                   for key, value in row.items()} for name, row in rows.items()}


def _count_ranks(rows: dict, beats) -> dict:
    """``{name: 1 + number of others o with beats(o, row)}``."""
    return {name: 1 + sum(bool(beats(other, row)) for other_name, other in rows.items()
                          if other_name != name)
            for name, row in rows.items()}


def _ordinal(rows: dict, key: str) -> dict:
    """Ranks 1 to n by ``row[key]``, the largest first."""
    order = sorted(rows, key=lambda name: -rows[name][key])
    return {name: order.index(name) + 1 for name in rows}


def _dense(ranks: dict) -> dict:
    levels = sorted(set(ranks.values()))
    return {name: levels.index(rank) + 1 for name, rank in ranks.items()}


def _own_interval(row) -> tuple[float, float]:
    return mean_interval(row["PSNR per image"])


def _beats_unpaired(a, b) -> bool:
    """a's interval lies above b's: the two rows' own intervals do not overlap."""
    (ma, ha), (mb, hb) = _own_interval(a), _own_interval(b)
    return ma - ha > mb + hb


def _beats_welch(a, b) -> bool:
    """The difference of the two means, its half-width from both rows' own intervals."""
    (ma, ha), (mb, hb) = _own_interval(a), _own_interval(b)
    return ma - mb - (ha**2 + hb**2) ** 0.5 > 0


def _beats_with(quantile):
    """"a beats b" when mean(a - b) - quantile(n, m) s / √n > 0 (m methods, n images)."""
    def beats_in(rows):
        def beats(a, b):
            d = (torch.as_tensor(a["PSNR per image"], dtype=torch.float64)
                 - torch.as_tensor(b["PSNR per image"], dtype=torch.float64))
            n = d.numel()
            return float(d.mean()) - quantile(n, len(rows)) * float(d.std()) / n**0.5 > 0
        return beats
    return beats_in


def _t(level: float):
    """Student's t quantile of a two-sided ``level`` interval, as ``quantile(n, m)``."""
    def quantile(n, m):
        # imported when a check runs: importing course_utils must not import scipy
        # (scipy changes the warning filters; tests/operators/test_sparse.py)
        from scipy.stats import t
        return float(t.ppf(0.5 + level / 2, n - 1))
    return quantile


def _bonferroni(pairs):
    """Student's t, the 5 % shared out over ``pairs(m)`` comparisons."""
    def quantile(n, m):
        from scipy.stats import t
        return float(t.ppf(1 - 0.025 / pairs(m), n - 1))
    return quantile


_WIDER = {
    "99 %": _beats_with(_t(0.99)),
    "bonferroni": _beats_with(_bonferroni(lambda m: m * (m - 1) / 2)),
    "bonferroni (ordered pairs)": _beats_with(_bonferroni(lambda m: m * (m - 1))),
    "normal": _beats_with(lambda n, m: 1.96),
}


def _rank_variants(rows: dict, expected: dict) -> dict:
    """name -> the ranks of that mistake."""
    return {
        "0-based": {name: rank - 1 for name, rank in expected.items()},
        "dense": _dense(expected),
        "reversed": _count_ranks(rows, lambda o, r: paired_difference(r, o).low > 0),
        "not worse": _count_ranks(rows, lambda o, r: paired_difference(o, r).high >= 0),
        **{name: _count_ranks(rows, beats(rows)) for name, beats in _WIDER.items()},
        "unpaired": _count_ranks(rows, _beats_unpaired),
        "welch": _count_ranks(rows, _beats_welch),
        "mean": _ordinal(rows, "PSNR (dB)"),
        "ssim": _count_ranks(rows, lambda o, r: paired_difference(o, r, "SSIM").low > 0),
        "ssim mean": _ordinal(rows, "SSIM"),
    }


_UNPAIRED = ("you compare each method's own interval (mean ± half-width); those are wide, "
             "as some images are harder for every method, and overlap even when one "
             "method wins on every image: use the paired interval of the per-image "
             "differences")
_SSIM = ("your ranks follow SSIM; this exercise ranks by PSNR, with the paired intervals "
         "of the \"PSNR per image\" scores")

_CORRECTED = ("you apply a multiple-comparison correction (Bonferroni: a wider interval "
              "for each of the many pairs); the rule uses each pair's plain paired 95 % "
              "interval, as cu.paired_difference(other, row) gives")

_RANK_MISTAKES = {
    "0-based": "your ranks start at 0; the best method has rank 1 (1 + the number of "
               "methods that beat it)",
    "dense": "your ranks are dense (1, 2, 2, 3); the rank is 1 + the number of methods "
             "that beat a method, so one that the three above it all beat has rank 4, "
             "not 3: ranks need not be consecutive",
    "reversed": "your ranks are upside down: you count the methods that each method beats, "
                "so the best one gets the largest rank; count those that beat it (their "
                "paired interval against it lies above 0)",
    "not worse": "you count the methods that are not worse than each one (the ties too); "
                 "count only those that beat it: their paired 95 % interval against it "
                 "lies entirely above 0",
    "99 %": "you use a 99 % interval; the rule is the paired 95 % interval (Student's "
            "t_0.975 with n - 1 degrees of freedom), as cu.paired_difference(other, row) "
            "gives",
    "bonferroni": _CORRECTED,
    "bonferroni (ordered pairs)": _CORRECTED,
    "normal": "you use the normal quantile 1.96 instead of Student's t: with few images "
              "t_0.975 with n - 1 degrees of freedom is larger (2.57 for 6 images), as "
              "cu.paired_difference(other, row) uses",
    "unpaired": _UNPAIRED,
    "welch": _UNPAIRED,
    "mean": "your ranks follow the mean PSNR alone (1, 2, 3, …); two methods share a rank "
            "unless the paired 95 % interval of their difference separates them",
    "ssim": _SSIM,
    "ssim mean": _SSIM,
}


def _rank_value(value, what: str, name: str) -> float:
    """A rank as a float: an int, a float, a NumPy number or a one-number tensor."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    elif isinstance(value, np.ndarray) and value.size == 1:
        value = value.item()
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    raise CheckFailed(f"{what}[{name!r}] is a {type(value).__name__}; a rank should be a "
                      f"number (1 for the best method)")


def _ranks_of(result, what: str, names: list) -> dict:
    """The learner's ``{name: rank}`` as floats, or CheckFailed saying what came back."""
    expect(result is not None, f"{what} returned None — did you forget a `return`?")
    if isinstance(result, (list, tuple, torch.Tensor, np.ndarray)):
        raise CheckFailed(f"{what} returned a {type(result).__name__}; return a dict that "
                          f"maps each method's name (the keys of rows) to its rank")
    expect(isinstance(result, Mapping),
           f"{what} should return a dict from each method's name to its rank, got a "
           f"{type(result).__name__}")
    extra = [key for key in result if key not in names]
    expect(not extra, f"{what} has ranks for {', '.join(map(repr, extra[:3]))}, which are "
                      f"not methods of rows; the keys are the methods' names, those of rows")
    missing = [name for name in names if name not in result]
    expect(not missing, f"{what} has no rank for {', '.join(map(repr, missing))}: give "
                        f"every method of rows a rank ({len(names)} methods)")
    return {name: _rank_value(result[name], what, name) for name in names}


def _same_ranks(got: dict, ranks: dict) -> bool:
    return all(abs(got[name] - ranks[name]) < 1e-9 for name in ranks)


@exercise_check("ranking with paired intervals")
def significance_ranks(my_ranks):
    """Exercise 2 (section 3): ``my_ranks(rows)`` -> ``{name: rank}``.

    Against ``cu.significance_ranks`` on eight tables of ``cu.evaluate`` rows (3 to 6
    methods, 6 to 40 images, the same images for every method): the rank of a method is
    1 + the number of other methods whose paired 95 % interval against it
    (``cu.paired_difference(other, row)``, Student's t) lies above 0.  Ranks need not
    be consecutive (1, 2, 2, 4) and a non-transitive tie gives 1, 1, 2.  Ranks may be
    ints or floats, the dict in any order.  Calling the course's
    ``cu.significance_ranks`` to do the work fails: the exercise asks to write it.
    """
    tables = _rank_tables()
    got, expected, whats = [], [], []
    for rows in tables:
        n_images = len(next(iter(rows.values()))["PSNR per image"])
        what = f"my_ranks(rows) on {len(rows)} methods and {n_images} images"
        result = _run_own("significance_ranks", what, my_ranks, _copy_rows(rows))
        ranks = _ranks_of(result, what, list(rows))
        right = _significance_ranks(rows)
        got.append(None if _same_ranks(ranks, right) else ranks)
        expected.append(right)
        whats.append(what)
    for what, ranks in zip(whats, got):
        expect(ranks is None or abs(min(ranks.values())) > 1e-9,
               f"{what}: {_RANK_MISTAKES['0-based']}")
    if all(g is None for g in got):
        n_methods = sum(len(rows) for rows in tables)
        return f"{len(tables)} tables, {n_methods} methods ranked"
    all_variants = functools.lru_cache(maxsize=None)(
        lambda i: _rank_variants(tables[i], expected[i]))
    variants = {name: (lambda i, name=name: all_variants(i)[name]) for name in _RANK_MISTAKES}
    first = next(i for i, g in enumerate(got) if g is not None)
    mistake = _diagnose(got, variants, _same_ranks)
    if mistake is not None:
        raise CheckFailed(f"{whats[first]}: {_RANK_MISTAKES[mistake]}")
    rows, ranks, right = tables[first], got[first], expected[first]
    name = next(n for n in rows if abs(ranks[n] - right[n]) >= 1e-9)
    winners = [o for o in rows if o != name
               and paired_difference(rows[o], rows[name]).low > 0]
    beaten_by = (f"{len(winners)} method{'s' if len(winners) != 1 else ''} "
                 f"({', '.join(map(repr, winners))}) beat" if winners else "no method beats")
    raise CheckFailed(f"{whats[first]}: {name!r} gets rank {ranks[name]:g}, expected "
                      f"{right[name]} — {beaten_by} it on the paired 95 % interval")
