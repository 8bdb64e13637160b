"""Tests of the exercise-check machinery (course_utils/checks/_feedback.py)."""

import numpy as np
import pytest
import torch

from course_utils.checks._feedback import (CheckFailed, CheckResult, compare_arrays,
                                           exercise_check, expect)


def reference_double(x):
    return 2 * x


@exercise_check("doubling")
def check_double(my_double):
    """A check as a lesson would write it: values computed here, compared with a diagnosis."""
    x = torch.linspace(-1, 3, 12).reshape(3, 4)
    compare_arrays(my_double(x), reference_double(x), what="my_double(x)")
    return "1 case"


# --- compare_arrays: one typical wrong answer per diagnosis -------------------------------

EXPECTED = np.arange(1.0, 13.0).reshape(3, 4) ** 1.5


def diagnosis(got, expected=EXPECTED):
    with pytest.raises(CheckFailed) as info:
        compare_arrays(got, expected, what="f(x)")
    return str(info.value)


def test_correct_answers_pass_numpy_torch_grad():
    compare_arrays(EXPECTED.copy(), EXPECTED)
    compare_arrays(torch.tensor(EXPECTED, requires_grad=True) * 1.0, EXPECTED)
    compare_arrays(torch.tensor(EXPECTED, dtype=torch.float32), torch.tensor(EXPECTED))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_gpu_tensor_is_accepted():
    compare_arrays(torch.tensor(EXPECTED, device="cuda"), EXPECTED)


def test_none_means_missing_return():
    message = diagnosis(None)
    assert "f(x) is None" in message and "return" in message


def test_not_an_array():
    assert "got a list" in diagnosis([1.0, 2.0])


def test_transposed():
    message = diagnosis(EXPECTED.T)
    assert "shape (4, 3), expected (3, 4)" in message and "transposed?" in message


def test_transposed_with_batch_dimension():
    batch = np.stack([EXPECTED, EXPECTED])
    assert "transposed?" in diagnosis(batch.transpose(0, 2, 1), batch)


def test_extra_dimension():
    assert "dimension of size 1" in diagnosis(EXPECTED[None])


def test_nan():
    got = EXPECTED.copy()
    got[1, 2] = np.nan
    message = diagnosis(got)
    assert "NaN" in message and "1 of 12" in message and "(1, 2)" in message


def test_wrong_sign():
    assert "wrong sign" in diagnosis(-EXPECTED)


def test_wrong_scale_names_the_factor():
    assert "constant factor" in diagnosis(2 * EXPECTED) and "it is 2 times" in diagnosis(
        2 * EXPECTED)
    assert "(π)" in diagnosis(np.pi * EXPECTED)


def test_off_by_one():
    message = diagnosis(np.roll(EXPECTED, 1, axis=1))
    assert "shifted by one element along axis 1" in message
    assert "axis 0" in diagnosis(np.roll(EXPECTED, -1, axis=0))


def test_otherwise_largest_error_and_where():
    got = EXPECTED.copy()
    got[2, 3] += 0.5
    message = diagnosis(got)
    assert "1 of 12 entries" in message and "index (2, 3)" in message
    assert "largest error 0.5" in message


def test_expect():
    expect(True, "never shown")
    with pytest.raises(CheckFailed, match="too big"):
        expect(False, "too big")


# --- the decorated check: status, truthiness and exactly one printed line -----------------

@pytest.fixture(autouse=True)
def learner(monkeypatch):
    """Every test runs as a learner's notebook, unless it sets NBGRADER_EXECUTION itself."""
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)


def run_check(capsys, fn):
    result = check_double(fn)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [result.line]  # exactly one line, and the result shows nothing more
    return result, lines[0]


def test_passed(capsys):
    result, line = run_check(capsys, lambda x: x + x)
    assert result and result.status == "passed"
    assert line == "✅ doubling: passed (1 case)"


def test_failed_gives_the_diagnosis(capsys):
    result, line = run_check(capsys, lambda x: 3 * x)
    assert not result and result.status == "failed"
    assert line.startswith("❌ doubling: my_double(x) is off by a constant factor")


def test_missing_return(capsys):
    def my_double(x):
        2 * x  # noqa: B018 (the typical mistake)

    result, line = run_check(capsys, my_double)
    assert result.status == "failed" and "is None" in line


def test_not_attempted(capsys):
    def my_double(x):
        # YOUR CODE HERE
        raise NotImplementedError("Exercise 1 (doubling): replace this line with your code")

    result, line = run_check(capsys, my_double)
    assert not result and result.status == "not attempted"
    assert line.startswith("⏳ doubling: not attempted yet")
    assert "Traceback" not in line


def test_not_implemented_from_a_library_is_an_error(capsys):
    class Doubler(torch.nn.Module):
        def forwrad(self, x):  # typo: torch raises NotImplementedError, not the stub
            return 2 * x

    result, line = run_check(capsys, Doubler())
    assert result.status == "error" and "NotImplementedError" in line


def test_other_exception_is_an_error_with_the_line(capsys):
    def my_double(x):
        scale = 2 / 0
        return scale * x

    result, line = run_check(capsys, my_double)
    assert not result and result.status == "error"
    assert line.startswith("❌ doubling: your code raised ZeroDivisionError: division by zero")
    assert "scale = 2 / 0" in line


def test_check_result_truthiness_and_no_second_display():
    assert CheckResult("x", "passed", "passed")
    for status in ("failed", "not attempted", "error"):
        assert not CheckResult("x", status, "m")
    assert CheckResult("x", "passed", "passed")._ipython_display_() is None


# --- under a grader: a check that does not pass fails the cell ----------------------------

def not_attempted(x):
    raise NotImplementedError("Exercise 1 (doubling): replace this line with your code")


@pytest.mark.parametrize("answer, status", [(lambda x: 0 * x, "failed"),
                                            (lambda x: x, "failed"),
                                            (not_attempted, "not attempted"),
                                            (lambda x: 1 / 0, "error")])
def test_under_nbgrader_a_check_that_does_not_pass_raises_its_one_line(
        monkeypatch, capsys, answer, status):
    as_learner = check_double(answer)
    capsys.readouterr()
    assert as_learner.status == status

    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.raises(AssertionError) as info:
        check_double(answer)
    assert str(info.value) == as_learner.line  # the same friendly line, nothing printed
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("value", ["autograde", "validate"])
def test_under_nbgrader_a_passing_check_prints_and_returns_as_for_a_learner(
        monkeypatch, capsys, value):
    monkeypatch.setenv("NBGRADER_EXECUTION", value)
    result, line = run_check(capsys, lambda x: x + x)
    assert result and line == "✅ doubling: passed (1 case)"


def test_an_empty_nbgrader_variable_is_not_a_grader(monkeypatch, capsys):
    monkeypatch.setenv("NBGRADER_EXECUTION", "")
    result, line = run_check(capsys, lambda x: 3 * x)
    assert result.status == "failed" and line.startswith("❌ doubling:")
