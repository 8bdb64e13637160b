"""The instructor's answers, for the check tests: read from solutions/, never retyped.

A test module writes ``ref = reference("01")`` at its top and ``ref.backproject`` where it
needs the answer of ``solutions/01_radon_fbp.py``.  The answers are run by
:func:`course_utils.tools.grade.reference_answers`, which follows the grader's own plan
of the lesson (the set-up cell, the instructor's other cells reduced to their imports,
``def`` and ``class`` statements, then the answer cells found by their grade ids): an
answer that the checks accept here is one that the grader accepts.  They are loaded on
first use, not when pytest collects the tests, and once per test process.

(test_reference_answers.py expects the name ``ref``: it checks that every answer that a
lesson's checks take is used as ``ref.<name>`` in that lesson's test module.)

The small helpers that the lessons' check tests share live here too:
:func:`needs_solutions_for` (skip a test where ``solutions/<lesson>_*.py`` is not there),
:func:`stub` (a student's untouched answer), :func:`broken` (an answer that crashes) and
:func:`run` (run a check, return its result and feedback line).
"""

import functools

import pytest

from course_utils.tools.grade import REPO_ROOT, reference_answers

#: Lessons whose set-up cell generates the shared setting's data (``setting.train`` and
#: friends: about a minute per test process in quick mode).  Their answers need only the
#: imports, so their set-up cell is reduced to its imports, ``def`` and ``class``
#: statements, as the grader reduces the instructor's other cells.  Every other lesson
#: runs its whole set-up cell, as the grader does.
SLOW_SETUP = frozenset({"03", "04", "07", "10", "11"})


@functools.lru_cache(maxsize=None)
def _answers(lesson: str, setup: str):
    """The answers of ``lesson`` run with ``setup``, once per test process."""
    return reference_answers(lesson, setup=setup)


def load(lesson: str, setup: str | None = None):
    """Run the reference answers of a lesson (once per test process).

    Parameters
    ----------
    lesson : str
        The lesson's two-digit number, e.g. ``"01"``.
    setup : {None, "full", "definitions"}, optional
        How much of the lesson's set-up cell runs, as for
        :func:`course_utils.tools.grade.reference_answers`.  ``None`` (default):
        ``"definitions"`` for the lessons in :data:`SLOW_SETUP`, ``"full"`` otherwise.

    Returns
    -------
    course_utils.tools.grade.ReferenceAnswers
        The answers, cached per ``(lesson, setup)``.
    """
    if setup is None:
        setup = "definitions" if lesson in SLOW_SETUP else "full"
    return _answers(lesson, setup)


class Reference:
    """``reference(lesson).name``: ``name`` after the lesson's answers ran (loaded lazily).

    Parameters
    ----------
    lesson : str
        The lesson's two-digit number, e.g. ``"01"``.
    setup : {None, "full", "definitions"}, optional
        Passed on to :func:`load`.
    """

    def __init__(self, lesson: str, setup: str | None = None):
        self.lesson = lesson
        self.setup = setup

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(load(self.lesson, self.setup), name)

    def __repr__(self) -> str:
        if self.setup is None:
            return f"reference({self.lesson!r})"
        return f"reference({self.lesson!r}, setup={self.setup!r})"


def reference(lesson: str, setup: str | None = None) -> Reference:
    """The answers of ``solutions/<lesson>_*.py``, loaded when first used.

    Parameters
    ----------
    lesson : str
        The lesson's two-digit number, e.g. ``"01"``.
    setup : {None, "full", "definitions"}, optional
        How much of the set-up cell runs; see :func:`load`.

    Returns
    -------
    Reference
        ``ref.name`` is the value of ``name`` after the answers ran; nothing runs before
        the first attribute is looked up (not at collection time).
    """
    return Reference(lesson, setup)


def needs_solutions_for(lesson: str) -> pytest.MarkDecorator:
    """A marker that skips a test where the lesson's solution notebook is not there.

    Parameters
    ----------
    lesson : str
        The lesson's two-digit number, e.g. ``"13"``.

    Returns
    -------
    pytest.MarkDecorator
        ``pytest.mark.skipif`` on "no ``solutions/<lesson>_*.py``" (checked on the call,
        that is when the test module is imported).
    """
    return pytest.mark.skipif(
        not list((REPO_ROOT / "solutions").glob(f"{lesson}_*.py")),
        reason=f"solutions/{lesson}_*.py is not there")


def stub(*args, **kwargs):
    """A student's answer left as the lesson hands it out.

    Parameters
    ----------
    *args, **kwargs
        Whatever the check passes; ignored.

    Raises
    ------
    NotImplementedError
        Always, with the message of the lessons' answer stubs.
    """
    raise NotImplementedError("Exercise: replace this line with your code")


def broken(*args, **kwargs):
    """An answer that crashes with an unexpected error (an ``IndexError``).

    Parameters
    ----------
    *args, **kwargs
        Whatever the check passes; ignored.

    Raises
    ------
    IndexError
        Always.
    """
    return [][0]


def run(check, fn):
    """Run a check on an answer.

    Parameters
    ----------
    check : callable
        A check from :mod:`course_utils.checks`, called as ``check(fn)``.
    fn : callable
        The answer to check.

    Returns
    -------
    result : object
        What the check returned (with ``status``, ``message`` and ``line``).
    line : str
        ``result.line``, the feedback line (handy as an assertion message).
    """
    result = check(fn)
    return result, result.line
