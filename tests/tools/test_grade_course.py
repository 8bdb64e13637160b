"""Every lesson of the course can be graded: its solution earns full marks, its
untouched student copy earns zero, "not attempted", and nothing is flagged as tampering.

This guards the contract between a lesson and the grader: checks that take only the
learner's code, answers that need only the set-up cell and earlier definitions.
"""

import shutil

import pytest

from course_utils.tools import grade as gr

LESSONS = sorted(p.stem for p in (gr.REPO_ROOT / "solutions").glob("[0-9][0-9]_*.py"))


@pytest.mark.parametrize("lesson", LESSONS)
def test_solution_earns_full_marks_and_the_blank_lesson_zero(lesson, tmp_path):
    shutil.copy(gr.REPO_ROOT / "solutions" / f"{lesson}.ipynb", tmp_path / "solved.ipynb")
    shutil.copy(gr.REPO_ROOT / "lessons" / f"{lesson}.ipynb", tmp_path / "blank.ipynb")
    rows, errors = gr.grade(lesson[:2], [tmp_path], jobs=1, progress=False)
    assert errors == []
    solved = [r for r in rows if r.student == "solved"]
    blank = [r for r in rows if r.student == "blank"]
    assert solved and len(solved) == len(blank)
    assert all(r.status == "passed" and r.points == r.max_points for r in solved), [
        (r.exercise, r.status, r.feedback) for r in solved if r.status != "passed"]
    assert all(r.status == "not attempted" and r.points == 0 for r in blank), [
        (r.exercise, r.status) for r in blank]
