"""The checks of lesson 14 accept correct answers and diagnose typical mistakes."""

import numpy as np
import pytest
import torch
from scipy.stats import norm
from scipy.stats import t as student_t

import course_utils as cu
from course_utils.checks import lesson14
from lesson_references import broken, needs_solutions_for, reference, run, stub

# The reference answers, from solutions/14_choosing.py (lesson_references.py); the other
# correct answers below are written here, each in its own way.
ref = reference("14")
needs_solutions = needs_solutions_for("14")


def assert_diagnosed(result, line, diagnosis):
    assert result.status == "failed", line
    assert diagnosis in line, line
    assert not result.message.endswith("…"), f"message too long: {line}"


# --- Exercise 1 (section 2): the Pareto front -------------------------------------------

def front_loops(cost, quality):
    """Plain Python, a list of bools."""
    c, q = [float(v) for v in cost], [float(v) for v in quality]
    mask = []
    for i in range(len(c)):
        dominated = any(c[j] <= c[i] and q[j] >= q[i] and (c[j] < c[i] or q[j] > q[i])
                        for j in range(len(c)))
        mask.append(not dominated)
    return mask


def front_numpy(cost, quality):
    """NumPy broadcasting, a NumPy bool array."""
    c, q = np.asarray(cost, dtype=float), np.asarray(quality, dtype=float)
    no_worse = (c[:, None] <= c[None, :]) & (q[:, None] >= q[None, :])   # [j, i]
    strictly = (c[:, None] < c[None, :]) | (q[:, None] > q[None, :])
    return ~(no_worse & strictly).any(axis=0)


def front_sweep(cost, quality):
    """Sort by cost (then the best first) and sweep, keeping the best quality so far."""
    c = torch.as_tensor(cost, dtype=torch.float64)
    q = torch.as_tensor(quality, dtype=torch.float64)
    order = sorted(range(len(c)), key=lambda k: (float(c[k]), -float(q[k])))
    mask = torch.zeros(len(c), dtype=torch.bool)
    best_q, best_c = -float("inf"), None
    for k in order:
        if q[k] > best_q or (q[k] == best_q and c[k] == best_c):
            mask[k] = True
            best_q, best_c = float(q[k]), float(c[k])
    return mask


def make_front(cost_sign=1.0, quality_sign=1.0, domination="right", output="mask"):
    def front(cost, quality):
        c = cost_sign * torch.as_tensor(cost, dtype=torch.float64)
        q = quality_sign * torch.as_tensor(quality, dtype=torch.float64)
        c_j, c_i, q_j, q_i = c[None, :], c[:, None], q[None, :], q[:, None]
        others = ~torch.eye(len(c), dtype=torch.bool)
        if domination == "strict":
            dominated = ((c_j < c_i) & (q_j > q_i)).any(dim=1)
        elif domination == "weak":
            dominated = ((c_j <= c_i) & (q_j >= q_i) & others).any(dim=1)
        elif domination == "itself":
            dominated = ((c_j <= c_i) & (q_j >= q_i)).any(dim=1)
        else:
            dominated = ((c_j <= c_i) & (q_j >= q_i) & ((c_j < c_i) | (q_j > q_i))).any(1)
        mask = ~dominated
        if output == "indices":
            return torch.nonzero(mask).flatten()
        if output == "index list":
            return [int(k) for k in torch.nonzero(mask)]
        if output == "order":
            return torch.argsort(c)
        if output == "sorted mask":
            return mask[torch.argsort(c, stable=True)]
        if output == "inverted":
            return dominated
        if output == "ends":
            ends = torch.zeros(len(c), dtype=torch.bool)
            ends[torch.argmin(c)] = ends[torch.argmax(q)] = True
            return ends
        if output == "column":
            return mask[:, None]
        if output == "ints":
            return mask.int()
        return mask
    return front


@pytest.mark.parametrize("good", [front_loops, front_numpy, front_sweep,
                                  make_front(), make_front(output="ints")])
def test_front_accepts_correct_answers(good):
    result, line = run(cu.checks.pareto_front, good)
    assert result.status == "passed", line
    assert "8 cases, 71 methods tried" in line


@needs_solutions
def test_front_accepts_the_reference_answer():
    result, line = run(cu.checks.pareto_front, ref.front)
    assert result.status == "passed", line


@pytest.mark.parametrize("wrong, diagnosis", [
    (make_front(cost_sign=-1.0), "prefers the more expensive"),
    (make_front(quality_sign=-1.0), "prefers the lower quality"),
    (make_front(cost_sign=-1.0, quality_sign=-1.0), "both directions reversed"),
    (make_front(domination="strict"), "need not be strictly better in both"),
    (make_front(domination="weak"), "do not dominate each other"),
    (make_front(domination="itself"), "dominate itself"),
    (make_front(output="ends"), "only the cheapest and the best"),
    (make_front(output="indices"), "indices of the methods on the front"),
    (make_front(output="index list"), "indices of the methods on the front"),
    (make_front(output="order"), "an order of the methods"),
    (make_front(output="sorted mask"), "order of increasing cost"),
    (make_front(output="inverted"), "your mask is inverted"),
    (make_front(output="column"), "has shape (5, 1), expected (5,)"),
    (lambda cost, quality: quality > quality.mean(), "dominates it"),
    (lambda cost, quality: quality >= quality.max(), "is left off your front"),
    (lambda cost, quality: None, "did you forget a `return`"),
    (lambda cost, quality: "front", "should be a mask"),
    (lambda cost, quality: (cost * 2).tolist(), "numbers other than 0 and 1"),
])
def test_front_diagnoses_mistakes(wrong, diagnosis):
    assert_diagnosed(*run(cu.checks.pareto_front, wrong), diagnosis)


def test_front_gives_numpy_inputs_again_as_tensors():
    def tensors_only(cost, quality):
        return make_front()(cost.unsqueeze(0)[0], quality)

    result, line = run(cu.checks.pareto_front, tensors_only)
    assert result.status == "passed", line
    assert "not NumPy arrays" in line, line
    result, line = run(cu.checks.pareto_front, front_numpy)
    assert "NumPy" not in line, line

    def wrong_on_tensors_only(cost, quality):
        return ~make_front()(cost.unsqueeze(0)[0], quality)

    result, line = run(cu.checks.pareto_front, wrong_on_tensors_only)
    assert_diagnosed(result, line, "your mask is inverted")


def test_front_stub_is_not_attempted():
    result, line = run(cu.checks.pareto_front, stub)
    assert result.status == "not attempted", line


def test_front_reports_an_error_of_the_learners_code():
    result, line = run(cu.checks.pareto_front, broken)
    assert result.status == "error", line
    assert "IndexError" in line, line


def test_the_front_cases_hold_what_they_promise():
    cases = lesson14._front_cases(torch.Generator().manual_seed(14))
    tensors = [(torch.as_tensor(c), torch.as_tensor(q)) for c, q, _ in cases]
    assert isinstance(cases[-1][0], np.ndarray)
    assert [len(c) for c, _ in tensors] == [5, 12, 30, 5, 5, 4, 1, 9]
    # The clouds are not sorted, and their fronts have methods between the two ends.
    for c, q in tensors[1:3]:
        assert not torch.equal(torch.argsort(c), torch.arange(len(c)))
        assert int(cu.pareto_front(c, q).sum()) >= 4
    assert cu.pareto_front(*tensors[3]).tolist() == [True, True, False, True, True]
    for name in lesson14._FRONT_MISTAKES:
        assert any(not any(torch.equal(m, cu.pareto_front(c, q))
                           for m in lesson14._front_variants(c, q)[name])
                   for c, q in tensors), name



# --- Exercise 2 (section 3): ranking with paired intervals ----------------------------

def ranks_loops(rows):
    """Plain loops over the pairs with cu.paired_difference; float ranks."""
    ranks = {}
    for name in rows:
        beaten = 0
        for other in rows:
            if other != name and cu.paired_difference(rows[other], rows[name]).low > 0:
                beaten += 1
        ranks[name] = 1.0 + beaten
    return ranks


def ranks_vectorised(rows):
    """All paired intervals at once from a (methods, images) matrix; NumPy int ranks."""
    names = list(rows)
    scores = torch.stack([rows[name]["PSNR per image"] for name in names])
    n_images = scores.shape[1]
    differences = scores[:, None, :] - scores[None, :, :]       # [i, j]: i minus j
    half = (student_t.ppf(0.975, n_images - 1) * differences.std(dim=-1)
            / n_images**0.5)
    beats = (differences.mean(dim=-1) - half) > 0                # i beats j
    counts = beats.sum(dim=0).numpy()                            # how many beat j
    return {name: np.int64(1 + counts[k]) for k, name in enumerate(names)}


def ranks_mean_interval(rows):
    """cu.mean_interval of each pair's per-image differences (allowed: not the answer)."""
    names = list(rows)
    ranks = dict.fromkeys(names, 1)
    for a in names:
        for b in names:
            if a != b:
                mean, half = cu.mean_interval(rows[a]["PSNR per image"]
                                              - rows[b]["PSNR per image"])
                ranks[b] += mean - half > 0
    return ranks


def ranks_by_method_key(rows):
    """Keyed by row["method"], from the opposite interval end, sorted by rank."""
    table = list(rows.values())
    ranks = {}
    for row in table:
        losses = sum(cu.paired_difference(row, other).high < 0
                     for other in table if other is not row)
        ranks[row["method"]] = torch.tensor(1 + losses)
    return dict(sorted(ranks.items(), key=lambda item: int(item[1])))


def make_ranks(rule="paired", start=1, dense=False, output="dict", metric="PSNR"):
    """Ranks with the mistakes asked for."""
    n_pairs = None

    def beats(a, b):
        if rule == "paired":
            return cu.paired_difference(a, b, f"{metric} (dB)" if metric == "PSNR"
                                        else "SSIM").low > 0
        if rule == "own intervals":
            return a["PSNR (dB)"] - a["PSNR ±95%"] > b["PSNR (dB)"] + b["PSNR ±95%"]
        if rule == "welch":
            return (a["PSNR (dB)"] - b["PSNR (dB)"]
                    > (a["PSNR ±95%"] ** 2 + b["PSNR ±95%"] ** 2) ** 0.5)
        d = (a["PSNR per image"] - b["PSNR per image"]).numpy()
        n = len(d)
        if rule == "99":
            quantile = student_t.ppf(0.995, n - 1)
        elif rule == "bonferroni":
            quantile = student_t.ppf(1 - 0.05 / n_pairs / 2, n - 1)
        elif rule == "z":
            quantile = norm.ppf(0.975)
        else:
            raise ValueError(rule)
        return d.mean() - quantile * d.std(ddof=1) / np.sqrt(n) > 0

    def ranks(rows):
        nonlocal n_pairs
        names = list(rows)
        n_pairs = len(names) * (len(names) - 1) // 2
        if rule == "mean":
            order = sorted(names, key=lambda n: rows[n]["PSNR (dB)"], reverse=True)
            result = {n: order.index(n) + start for n in names}
        else:
            result = {}
            for n in names:
                if rule == "not worse":
                    count = sum(cu.paired_difference(rows[o], rows[n]).high >= 0
                                for o in names if o != n)
                elif rule == "reversed":
                    count = sum(cu.paired_difference(rows[o], rows[n]).high < 0
                                for o in names if o != n)
                else:
                    count = sum(beats(rows[o], rows[n]) for o in names if o != n)
                result[n] = start + count
        if dense:
            levels = sorted(set(result.values()))
            result = {n: levels.index(r) + 1 for n, r in result.items()}
        if output == "list":
            return [result[n] for n in names]
        if output == "missing":
            return {n: r for n, r in result.items() if n != names[-1]}
        if output == "extra":
            return {**result, "mean": 0}
        if output == "text":
            return {n: f"#{r}" for n, r in result.items()}
        if output == "by index":
            return {k: result[n] for k, n in enumerate(names)}
        return result
    return ranks


@pytest.mark.parametrize("good", [ranks_loops, ranks_vectorised, ranks_mean_interval,
                                  ranks_by_method_key, make_ranks()])
def test_ranks_accept_correct_answers(good):
    result, line = run(cu.checks.significance_ranks, good)
    assert result.status == "passed", line
    assert "8 tables, 34 methods ranked" in line


@needs_solutions
def test_ranks_accept_the_reference_answer():
    result, line = run(cu.checks.significance_ranks, ref.ranks)
    assert result.status == "passed", line


@pytest.mark.parametrize("wrong, diagnosis", [
    (make_ranks(rule="mean"), "mean PSNR alone"),
    (make_ranks(rule="mean", start=0), "start at 0"),
    (make_ranks(rule="not worse"), "not worse"),
    (make_ranks(rule="own intervals"), "each method's own interval"),
    (make_ranks(rule="welch"), "each method's own interval"),
    (make_ranks(rule="reversed"), "upside down"),
    (make_ranks(rule="99"), "a 99 % interval"),
    (make_ranks(rule="bonferroni"), "a multiple-comparison correction"),
    (make_ranks(rule="z"), "the normal quantile 1.96 instead of Student's t"),
    (make_ranks(start=0), "start at 0"),
    (make_ranks(dense=True), "dense"),
    (make_ranks(metric="SSIM"), "follow SSIM"),
    (make_ranks(output="list"), "returned a list"),
    (make_ranks(output="missing"), "has no rank for"),
    (make_ranks(output="extra"), "not methods of rows"),
    (make_ranks(output="by index"), "not methods of rows"),
    (make_ranks(output="text"), "a rank should be a number"),
    (lambda rows: None, "did you forget a `return`"),
    (lambda rows: {name: k + 1 for k, name in enumerate(rows)}, "expected"),
])
def test_ranks_diagnose_mistakes(wrong, diagnosis):
    assert_diagnosed(*run(cu.checks.significance_ranks, wrong), diagnosis)


def test_ranks_say_which_method_is_ranked_wrong_otherwise():
    def one_off(rows):
        ranks = ranks_loops(rows)
        last = list(rows)[-1]
        return {**ranks, last: ranks[last] + 2}

    result, line = run(cu.checks.significance_ranks, one_off)
    assert_diagnosed(result, line, "'FBPConvNet' gets rank 3, expected 1 — no method beats "
                                   "it on the paired 95 % interval")


def test_ranks_stub_is_not_attempted():
    result, line = run(cu.checks.significance_ranks, stub)
    assert result.status == "not attempted", line


def test_ranks_report_an_error_of_the_learners_code():
    result, line = run(cu.checks.significance_ranks, broken)
    assert result.status == "error", line
    assert "IndexError" in line, line


def test_the_rank_cases_hold_what_they_promise():
    tables = lesson14._rank_tables()
    assert lesson14._rank_tables()[7]["TV"]["PSNR per image"].equal(
        tables[7]["TV"]["PSNR per image"])
    expected = [cu.significance_ranks(rows) for rows in tables]
    # A gap after a tie (dense ranks differ), the non-transitive case, a lower mean
    # ranked above a higher one, a shuffled table.
    assert sorted(expected[0].values()) == [1, 2, 2, 4]
    assert expected[1] == {"LPD": 1, "DIP": 1, "FBP": 2}
    assert expected[2]["PnP"] < expected[2]["SIRT"]
    assert tables[2]["PnP"]["PSNR (dB)"] < tables[2]["SIRT"]["PSNR (dB)"]
    assert list(tables[3]) != [m[0] for m in lesson14._RANK_CASES[3][1]]
    # The exact tables: t-statistics as promised, and the rules they separate.

    def t_stat(rows, a, b):
        d = rows[a]["PSNR per image"] - rows[b]["PSNR per image"]
        return float(d.mean() / d.std() * len(d) ** 0.5)

    def quantile(level, n):
        return student_t.ppf(0.5 + level / 2, n - 1)

    bonferroni = {3: 1 - 0.05 / 3, 6: 1 - 0.05 / 15}
    assert t_stat(tables[5], "U-Net", "TV") == pytest.approx(2.37, abs=0.01)
    assert quantile(0.95, 20) < 2.37 < min(quantile(0.99, 20), quantile(bonferroni[3], 20))
    assert t_stat(tables[6], "LPD", "U-Net") == pytest.approx(3.02, abs=0.01)
    assert quantile(0.99, 30) < 3.02 < quantile(bonferroni[6], 30)
    assert t_stat(tables[6], "CGLS", "SIRT") == pytest.approx(2.40, abs=0.01)
    assert quantile(0.95, 30) < 2.40 < quantile(0.99, 30)
    assert t_stat(tables[7], "Noise2Inverse", "TV") == pytest.approx(2.19, abs=0.01)
    assert 1.96 < 2.19 < quantile(0.95, 6)
    assert expected[5] == {"U-Net": 1, "TV": 2, "FBP": 3}
    assert expected[6] == {"LPD": 1, "U-Net": 2, "CGLS": 3, "SIRT": 4, "FBP": 5,
                           "FBP (Hann)": 5}
    assert expected[7] == {"Noise2Inverse": 1, "TV": 1, "FBP": 3}
    variants = [lesson14._rank_variants(rows, right) for rows, right in zip(tables, expected)]
    assert variants[5]["99 %"] == variants[5]["bonferroni"] == {"U-Net": 1, "TV": 1,
                                                                 "FBP": 3}
    assert variants[6]["99 %"]["SIRT"] == 3 and variants[6]["99 %"]["U-Net"] == 2
    assert variants[6]["bonferroni"]["SIRT"] == 3 and variants[6]["bonferroni"]["U-Net"] == 1
    assert variants[7]["normal"] == {"Noise2Inverse": 1, "TV": 2, "FBP": 3}
    for name in ("99 %", "bonferroni"):
        assert variants[7][name] == expected[7], name
    # The older tables do not separate these three rules from the right one.
    for rows, right, variant in zip(tables[:5], expected, variants):
        for name in ("99 %", "bonferroni", "normal"):
            assert variant[name] == right, name
    # Every mistake gets some table wrong.
    for name in lesson14._RANK_MISTAKES:
        assert any(variant[name] != right for variant, right in zip(variants, expected)), name
    # The checks leave the learner's tables to the learner: they get copies.
    seen = []

    def spoiler(rows):
        seen.append(rows)
        ranks = ranks_loops(rows)
        for row in rows.values():
            row["PSNR per image"].zero_()
        return ranks

    assert run(cu.checks.significance_ranks, spoiler)[0].status == "passed"
    assert len(seen) == 8



# --- Both ---------------------------------------------------------------------------------

def test_the_checks_leave_the_global_random_state_alone():
    def noisy(*args):
        torch.rand(3)
        raise ValueError("not today")

    def noisy_but_right(check, answer):
        def answer_after_a_draw(*args):
            torch.rand(3)
            return answer(*args)
        return run(check, answer_after_a_draw)[0]

    state = torch.random.get_rng_state()
    for check, answer in ((lesson14.significance_ranks, ranks_loops),
                          (lesson14.pareto_front, front_loops)):
        assert run(check, noisy)[0].status == "error"
        assert noisy_but_right(check, answer).status == "passed"
    assert torch.equal(torch.random.get_rng_state(), state)


def front_compared_with_the_course(cost, quality):
    """A right answer of its own, that still calls cu.pareto_front to compare."""
    mask = front_numpy(cost, quality)
    assert (mask == cu.pareto_front(cost, quality).numpy()).all()
    return mask


def _course_answers():
    """Answers that hand the work to the course's own functions, as the lesson names them."""
    from course_utils.learning import evaluation

    return [
        (lesson14.pareto_front, "pareto_front", lambda c, q: cu.pareto_front(c, q)),
        (lesson14.pareto_front, "pareto_front",
         lambda c, q: evaluation.pareto_front(c, q)),
        (lesson14.pareto_front, "pareto_front", front_compared_with_the_course),
        (lesson14.significance_ranks, "significance_ranks",
         lambda rows: cu.significance_ranks(rows)),
        (lesson14.significance_ranks, "significance_ranks",
         lambda rows: evaluation.significance_ranks(list(rows.values()))),
        # The course's functions themselves, handed to the checks.
        (lesson14.pareto_front, "pareto_front", cu.pareto_front),
        (lesson14.significance_ranks, "significance_ranks", cu.significance_ranks),
    ]


@pytest.mark.parametrize("k", range(7))
def test_the_checks_fail_a_call_of_the_courses_own_function(k):
    from course_utils.learning import evaluation

    check, name, answer = _course_answers()[k]
    original = getattr(evaluation, name)
    assert getattr(cu, name) is original
    result, line = run(check, answer)
    assert_diagnosed(result, line, f"calls cu.{name}: the exercise asks you to write it "
                                   f"yourself (the course's version comes after the exercise)")
    assert "on 5 methods" in line or "on 4 methods and 24 images" in line, line
    # Both names are the course's own functions again.
    assert getattr(evaluation, name) is original and getattr(cu, name) is original


def test_the_checks_restore_the_courses_functions_when_the_answer_raises():
    from course_utils.learning import evaluation

    originals = (evaluation.pareto_front, evaluation.significance_ranks)

    def calls_then_raises(*args):
        (cu.pareto_front if len(args) == 2 else cu.significance_ranks)(*args)
        raise ValueError("not today")

    for check in (lesson14.pareto_front, lesson14.significance_ranks):
        assert run(check, calls_then_raises)[0].status == "error"
    assert (evaluation.pareto_front, evaluation.significance_ranks) == originals
    assert (cu.pareto_front, cu.significance_ranks) == originals


def test_the_helpers_the_exercises_use_stay_allowed():
    # ranks_loops calls cu.paired_difference, ranks_mean_interval cu.mean_interval.
    for answer in (ranks_loops, ranks_mean_interval):
        result, line = run(cu.checks.significance_ranks, answer)
        assert result.status == "passed", line


def test_the_mistake_lists_match_their_messages():
    rows = lesson14._rank_rows(torch.Generator().manual_seed(0), 8,
                               lesson14._RANK_CASES[1][1], False)
    assert set(lesson14._rank_variants(rows, cu.significance_ranks(rows))) == set(
        lesson14._RANK_MISTAKES)
    cost, quality = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])
    assert set(lesson14._front_variants(cost, quality)) == set(lesson14._FRONT_MISTAKES)
    assert lesson14.__all__ == ["pareto_front", "significance_ranks"]
