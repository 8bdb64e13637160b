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
"""

import functools

from course_utils.tools.grade import reference_answers

#: Lessons whose set-up cell generates the shared setting's data (``setting.train`` and
#: friends: about a minute per test process in quick mode).  Their answers need only the
#: imports, so their set-up cell is reduced to its imports, ``def`` and ``class``
#: statements, as the grader reduces the instructor's other cells.  Every other lesson
#: runs its whole set-up cell, as the grader does.
SLOW_SETUP = frozenset({"03", "04", "07", "10", "11"})


@functools.lru_cache(maxsize=None)
def load(lesson: str):
    """The :class:`~course_utils.tools.grade.ReferenceAnswers` of ``lesson`` ("01")."""
    return reference_answers(lesson, setup="definitions" if lesson in SLOW_SETUP else "full")


class Reference:
    """``reference(lesson).name``: ``name`` after the lesson's answers ran (loaded lazily)."""

    def __init__(self, lesson: str):
        self.lesson = lesson

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(load(self.lesson), name)

    def __repr__(self) -> str:
        return f"reference({self.lesson!r})"


def reference(lesson: str) -> Reference:
    """The answers of ``solutions/<lesson>_*.py``, loaded when first used."""
    return Reference(lesson)
