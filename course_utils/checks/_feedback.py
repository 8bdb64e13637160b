"""The machinery behind the exercise checks: one friendly line of feedback per check.

A lesson's check is written as a plain function that tries the learner's code on cases
it makes up and raises :class:`CheckFailed` with a helpful message when something is
wrong.  The decorator :func:`exercise_check` turns it into the public check that the
notebook calls::

    @exercise_check("the ramp filter")
    def ramp_filter(my_ramp_filter):
        n = 16
        expected = torch.fft.fftfreq(n).abs()     # computed here, never shown as code
        compare_arrays(my_ramp_filter(n), expected, what=f"my_ramp_filter({n})")
        return "3 sizes tried"

and in the notebook ``cu.checks.ramp_filter(my_ramp_filter)`` prints exactly one line:

* ``✅ the ramp filter: passed (3 sizes tried)``
* ``⏳ the ramp filter: not attempted yet — replace the raise NotImplementedError ...``
* ``❌ the ramp filter: my_ramp_filter(16) has shape (8,), expected (16,)``
* ``❌ the ramp filter: your code raised ZeroDivisionError: division by zero ...``

The line is printed (so it also shows in plain Python scripts and when a cell runs
several checks), and the returned :class:`CheckResult` displays nothing in Jupyter (its
``_ipython_display_`` is empty), so the line never appears twice.  The result is truthy
only when the check passed, which lets a notebook write ``assert cu.checks.x(f)``.

Under a grader the same line fails the cell instead: when the environment variable
``NBGRADER_EXECUTION`` is set (nbgrader sets it while it autogrades or validates a
notebook), a check that did not pass raises ``AssertionError`` with that line, because
nbgrader gives a check cell its points unless the cell raises.
"""

from __future__ import annotations

import functools
import math
import os
import site
import sysconfig
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["CheckFailed", "CheckResult", "exercise_check", "graded", "compare_arrays",
           "expect"]

_SYMBOLS = {"passed": "✅", "failed": "❌", "not attempted": "⏳", "error": "❌"}
_MAX_MESSAGE = 300  # characters of an exception message we show
GRADER_VARIABLE = "NBGRADER_EXECUTION"  # nbgrader: "autograde" or "validate"


class CheckFailed(Exception):
    """Raised inside a check when the learner's answer is wrong; the message says how."""


@dataclass
class CheckResult:
    """The outcome of one exercise check.

    ``status`` is one of ``"passed"``, ``"failed"``, ``"not attempted"``, ``"error"``;
    ``bool(result)`` is True only for ``"passed"``.
    """

    exercise: str
    status: str
    message: str

    def __bool__(self) -> bool:
        return self.status == "passed"

    @property
    def line(self) -> str:
        """The one line of feedback, e.g. ``"✅ the ramp filter: passed"``."""
        return f"{_SYMBOLS[self.status]} {self.exercise}: {self.message}"

    def __str__(self) -> str:
        return self.line

    def _ipython_display_(self) -> None:
        """Show nothing: the check has already printed its line."""


def expect(condition, message: str) -> None:
    """Raise ``CheckFailed(message)`` unless ``condition`` is true."""
    if not condition:
        raise CheckFailed(message)


# --- deciding whose code raised an exception -------------------------------------------

_LIBRARY_DIRS = tuple(
    str(Path(folder).resolve())
    for folder in [*(sysconfig.get_paths()[key]
                     for key in ("stdlib", "platstdlib", "purelib", "platlib")),
                   site.getusersitepackages(),
                   Path(__file__).resolve().parent.parent]  # course_utils itself
)


def _is_learner_file(filename: str) -> bool:
    """True for notebook cells and the learner's own files, False for libraries."""
    if filename.startswith("<frozen"):
        return False
    if filename.startswith("<"):  # e.g. "<ipython-input-3-...>", "<string>"
        return True
    path = str(Path(filename).resolve())
    return not path.startswith(_LIBRARY_DIRS)


def _learner_frame(error: BaseException):
    """The innermost frame of the learner's code, and whether the error was raised there.

    Returns ``(frame, raised_there)``; ``frame`` is None when no learner code ran.
    """
    frames = traceback.extract_tb(error.__traceback__)
    for depth, frame in enumerate(reversed(frames)):
        if _is_learner_file(frame.filename):
            return frame, depth == 0
    return None, False


def _one_line(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= _MAX_MESSAGE else text[:_MAX_MESSAGE - 1] + "…"


def graded() -> bool:
    """Whether a grader runs this notebook: ``NBGRADER_EXECUTION`` is set and not empty."""
    return bool(os.environ.get(GRADER_VARIABLE))


def exercise_check(exercise: str):
    """Decorator: make ``check(*args)`` (which raises :class:`CheckFailed`) a public check.

    Parameters
    ----------
    exercise : str
        How the feedback line names the exercise, e.g. ``"the ramp filter"``.

    The decorated check prints one line and returns a :class:`CheckResult`.  Whatever
    string ``check`` returns is shown in brackets after "passed".  Under a grader
    (:func:`graded` is true) a check that did not pass raises ``AssertionError`` with
    that line instead of printing it.
    """

    def decorate(check):
        @functools.wraps(check)
        def public_check(*args, **kwargs) -> CheckResult:
            try:
                details = check(*args, **kwargs)
                status = "passed"
                message = f"passed ({details})" if details else "passed"
            except CheckFailed as error:
                status, message = "failed", str(error)
            except Exception as error:  # the learner's code raised
                frame, raised_there = _learner_frame(error)
                # The stub's own ``raise NotImplementedError``, not one from a library.
                if isinstance(error, NotImplementedError) and raised_there:
                    status = "not attempted"
                    message = ("not attempted yet — replace the raise "
                               "NotImplementedError line with your code.")
                else:
                    status = "error"
                    message = f"your code raised {type(error).__name__}: {error}"
                    if frame is not None and frame.line:
                        message += f" (in `{frame.line.strip()}`)"
            result = CheckResult(exercise, status, _one_line(message))
            if not result and graded():
                raise AssertionError(result.line) from None
            print(result.line)
            return result

        return public_check

    return decorate


# --- comparing arrays with a diagnosis ---------------------------------------------------

def _to_numpy(x, what: str) -> np.ndarray:
    """``x`` as a float64 (or complex128) NumPy array, or CheckFailed saying what it is."""
    if x is None:
        raise CheckFailed(f"{what} is None — did you forget a `return`?")
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        x = x.resolve_conj() if x.is_complex() else x.double()
    elif not isinstance(x, (np.ndarray, np.number, int, float, complex)):
        raise CheckFailed(f"{what} should be a tensor (or NumPy array), got a "
                          f"{type(x).__name__}")
    x = np.asarray(x)
    if x.dtype.kind not in "biufc":
        raise CheckFailed(f"{what} should hold numbers, got an array of {x.dtype}")
    return x.astype(np.complex128 if x.dtype.kind == "c" else np.float64)


def _shape_hint(got: tuple, expected: tuple) -> str:
    if len(got) >= 2 and got[:-2] == expected[:-2] and got[-2:] == expected[-2:][::-1]:
        return " — transposed?"
    if got == expected[::-1]:
        return " — transposed?"
    if tuple(n for n in got if n != 1) == tuple(n for n in expected if n != 1):
        return " — an extra or missing dimension of size 1 (squeeze / unsqueeze)?"
    if math.prod(got) == math.prod(expected):
        return " — the right number of values in the wrong arrangement (reshape)?"
    return ""


def _factor_name(c: float) -> str:
    """Name a scale factor when it is a usual suspect (π, 1/(2π), √2, ...)."""
    suspects = {"π": math.pi, "1/π": 1 / math.pi,
                "2π": 2 * math.pi, "1/(2π)": 1 / (2 * math.pi), "√2": math.sqrt(2),
                "1/√2": 1 / math.sqrt(2)}
    for name, value in suspects.items():
        if math.isclose(abs(c), value, rel_tol=1e-3):
            return f" ({'-' if c < 0 else ''}{name})"
    return ""


def _shifted_by_one(got, expected, close):
    """The (axis, direction) along which ``got`` is ``expected`` shifted by one element."""
    for axis in range(expected.ndim):
        if expected.shape[axis] < 3:
            continue
        head = [slice(None)] * expected.ndim
        tail = [slice(None)] * expected.ndim
        head[axis], tail[axis] = slice(None, -1), slice(1, None)
        head, tail = tuple(head), tuple(tail)
        if close(expected[head], expected[tail]):
            continue  # shifting changes nothing along this axis: no diagnosis possible
        if close(got[tail], expected[head]):
            return axis, "got[i] ≈ expected[i-1]"
        if close(got[head], expected[tail]):
            return axis, "got[i] ≈ expected[i+1]"
    return None


def compare_arrays(got, expected, *, what: str = "the result", rtol: float = 1e-5,
                   atol: float = 1e-6) -> None:
    """Raise :class:`CheckFailed` with a diagnosis unless ``got`` ≈ ``expected``.

    Parameters
    ----------
    got : torch.Tensor or numpy.ndarray
        The learner's answer (tensors may require grad or live on a GPU).
    expected : torch.Tensor or numpy.ndarray
        The reference values, computed inside the check.
    what : str
        How the message names ``got``, e.g. ``"my_ramp_filter(16)"``.
    rtol, atol : float
        Tolerances as in :func:`numpy.allclose`.

    The diagnosis tried, in order: not an array (e.g. None from a missing ``return``),
    wrong shape (transposed?), NaN or inf, wrong sign, wrong scale (with the factor),
    shifted by one element along an axis, and otherwise the largest error and where.
    """
    got = _to_numpy(got, what)
    expected = _to_numpy(expected, "the expected value")
    if got.shape != expected.shape:
        raise CheckFailed(f"{what} has shape {tuple(got.shape)}, expected "
                          f"{tuple(expected.shape)}{_shape_hint(got.shape, expected.shape)}")
    if np.iscomplexobj(got) and not np.iscomplexobj(expected):
        if np.abs(got.imag).max(initial=0) > atol:
            raise CheckFailed(f"{what} is complex, real values were expected (.real?)")
        got = got.real
    for bad, name in ((np.isnan, "NaN (not a number)"), (np.isinf, "inf")):
        wrong = bad(got) & ~bad(expected)
        if wrong.any():
            first = tuple(int(i) for i in np.argwhere(wrong)[0])
            raise CheckFailed(f"{what} contains {name} in {int(wrong.sum())} of "
                              f"{got.size} entries, first at index {first} — a division "
                              f"by zero, or the log or sqrt of a negative number?")

    def close(a, b):
        return np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)

    if close(got, expected):
        return
    scale = np.max(np.abs(np.nan_to_num(expected)), initial=0)
    if scale > atol:
        if close(got, 0 * expected):
            raise CheckFailed(f"{what} is all zeros — is the computed value assigned "
                              f"to the variable you return?")
        if close(got, -expected):
            raise CheckFailed(f"{what} has the wrong sign: it is minus the expected values")
        finite = np.isfinite(expected)
        c = np.vdot(expected[finite], got[finite]) / np.vdot(expected[finite],
                                                              expected[finite])
        c = c.real if abs(c.imag) <= 1e-12 * abs(c) else c
        if expected.size > 1 and close(got, c * expected):
            raise CheckFailed(f"{what} is off by a constant factor: it is {c:.4g}"
                              f"{_factor_name(c) if np.isreal(c) else ''} times the "
                              f"expected values")
    if shift := _shifted_by_one(got, expected, close):
        axis, how = shift
        raise CheckFailed(f"{what} is shifted by one element along axis {axis} ({how}) "
                          f"— an off-by-one index or slice?")
    error = np.abs(got - expected)
    error = np.where(np.isnan(error), 0, error)
    where = tuple(int(i) for i in np.unravel_index(np.argmax(error), error.shape))
    wrong = ~np.isclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)
    norm = np.linalg.norm(np.nan_to_num(expected).ravel())
    error_norm = np.linalg.norm(np.nan_to_num(got - expected).ravel())
    relative = f", relative error {error_norm / norm:.2%}" if norm > 0 else ""
    at = f" at index {where}" if got.ndim else ""
    raise CheckFailed(f"{what} differs from the expected values in {int(wrong.sum())} of "
                      f"{got.size} entries: largest error {error[where]:.3g}{at} "
                      f"(got {got[where]:.4g}, expected {expected[where]:.4g}){relative}")
