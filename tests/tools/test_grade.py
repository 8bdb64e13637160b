"""Tests of `dltomo grade` on a synthetic class of lesson 01.

The class is graded once (module fixture, through the command-line entry point); the
tests read its CSV, feedback files and summary.  Lesson 01's checks are fast.
"""

import contextlib
import csv
import io
import re
import shutil

import nbformat
import pytest

from course_utils.tools import grade as gr
from course_utils.tools import release as rel

LESSON = "01_radon_fbp"
CELL_TIMEOUT = 10  # seconds per answer or check: the endless loop costs this once

WRONG_FBP = '''\
def fbp(sinogram, angles, image_size):
    """Forgets the angular weight pi / n_angles."""
    return backproject(ramp_filter_projections(sinogram), angles, image_size)
'''
RAISES = '''\
def fbp(sinogram, angles, image_size):
    return 1 / 0
'''
LOOPS = '''\
def ramp_filter_projections(sinogram):
    while True:
        pass
'''
MONKEY_PATCH = '''\
import course_utils
import course_utils.checks._feedback as feedback

def ramp_filter_projections(sinogram):
    return sinogram            # wrong, but the patches below should hide it


def always_passed(*args, **kwargs):
    print("✅ passed")
    return feedback.CheckResult("anything", "passed", "passed")


cu.checks.ramp_filter_projections = always_passed
cu.checks.fbp = always_passed
course_utils.checks.lesson01.compare_arrays = lambda *args, **kwargs: None
feedback.CheckResult.__bool__ = lambda self: True
'''
KILL = "import os\nos._exit(1)\n"


def answer(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id")
                == grade_id)


def checks_of(nb):
    return [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]


def variant(lesson, solution, solved=(), replaced=None, change=None):
    """The lesson with the solution's answers for ``solved`` and other replacements."""
    nb = nbformat.from_dict(nbformat.reads(nbformat.writes(lesson), as_version=4))
    for grade_id in solved:
        answer(nb, grade_id).source = answer(solution, grade_id).source
    for grade_id, source in (replaced or {}).items():
        answer(nb, grade_id).source = source
    if change:
        change(nb)
    return nb


def edit_checks(nb):
    for cell in checks_of(nb):
        cell.source = 'print("✅ passed")'
    nb.cells.append(nbformat.v4.new_code_cell('print("✅ all exercises: passed")'))


def forget_metadata(nb):
    for cell in nb.cells:
        cell.metadata.pop("nbgrader", None)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade the synthetic class once; return its folder, exit code, summary and CSV."""
    folder = tmp_path_factory.mktemp("class")
    submissions = folder / "submissions"
    lesson = nbformat.read(rel.REPO_ROOT / "lessons" / f"{LESSON}.ipynb", as_version=4)
    solution = nbformat.read(rel.REPO_ROOT / "solutions" / f"{LESSON}.ipynb", as_version=4)
    notebooks = {
        "full": solution,
        f"untouched/{LESSON}": lesson,
        "partial": variant(lesson, solution, ["ex1-answer", "ex2-answer"],
                           {"ex3-answer": WRONG_FBP}, change=forget_metadata),
        "edited_checks": variant(lesson, solution, ["ex1-answer", "ex2-answer"],
                                 {"ex3-answer": WRONG_FBP}, change=edit_checks),
        "misbehaves": variant(lesson, solution, [], {"ex1-answer": KILL,
                                                     "ex2-answer": LOOPS,
                                                     "ex3-answer": RAISES}),
        "monkey_patch": variant(lesson, solution, ["ex1-answer", "ex3-answer"],
                                {"ex2-answer": MONKEY_PATCH}),
    }
    for name, nb in notebooks.items():
        path = submissions / f"{name}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)
    (submissions / "corrupt.ipynb").write_text('{"cells": [oops')
    out = folder / "report" / "grades.csv"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = gr.main(["01", str(submissions), "--out", str(out), "--jobs", "2",
                        "--cell-timeout", str(CELL_TIMEOUT), "--timeout", "240",
                        "--no-progress"])
    with open(out, encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    return {"folder": folder, "code": code, "summary": stdout.getvalue(), "rows": rows,
            "out": out}


def marks(graded, student):
    """{exercise number: (points, status)} of one student."""
    return {int(re.search(r"\d+", r["exercise"])[0]): (float(r["points"]), r["status"])
            for r in graded["rows"] if r["student"] == student}


def feedback_of(graded, student, exercise):
    return next(r["feedback"] for r in graded["rows"]
                if r["student"] == student and r["exercise"].startswith(f"Exercise {exercise}"))


def test_exit_code_and_csv_columns(graded):
    assert graded["code"] == 0   # failing submissions are not a failure of the grader
    assert list(graded["rows"][0]) == ["student", "exercise", "points", "max_points",
                                       "status", "feedback"]
    students = {r["student"] for r in graded["rows"]}
    assert students == {"full", "untouched", "partial", "misbehaves", "edited_checks",
                        "monkey_patch", "corrupt"}
    assert len(graded["rows"]) == 3 * len(students)
    assert not list(graded["out"].parent.glob(".*.tmp"))


def test_full_solution_gets_full_marks(graded):
    assert marks(graded, "full") == {1: (2, "passed"), 2: (1, "passed"), 3: (1, "passed")}
    assert all(float(r["max_points"]) == {1: 2, 2: 1, 3: 1}[n]
               for n, r in zip((1, 2, 3), [r for r in graded["rows"] if r["student"] == "full"]))


def test_untouched_lesson_is_not_attempted(graded):
    assert marks(graded, "untouched") == {n: (0, "not attempted") for n in (1, 2, 3)}


def test_partly_correct_and_matched_without_metadata(graded):
    assert marks(graded, "partial") == {1: (2, "passed"), 2: (1, "passed"), 3: (0, "failed")}
    assert "π/n_angles" in feedback_of(graded, "partial", 3)
    assert "found by its cell id" in feedback_of(graded, "partial", 3)


def test_crash_loop_and_exception_cost_only_their_exercise(graded):
    """Exercise 1 kills the kernel, exercise 2 loops forever, exercise 3 raises."""
    assert marks(graded, "misbehaves") == {1: (0, "kernel died"), 2: (0, "timed out"),
                                           3: (0, "error")}
    assert "fresh kernel" in feedback_of(graded, "misbehaves", 1)
    assert "ran out of time" in feedback_of(graded, "misbehaves", 2)
    assert "ZeroDivisionError" in feedback_of(graded, "misbehaves", 3)


def test_edited_check_cells_change_nothing(graded):
    """Its check cells all print "passed"; it is graded as the same answers above."""
    assert marks(graded, "edited_checks") == marks(graded, "partial")


def test_monkey_patching_the_checks_is_detected(graded):
    result = marks(graded, "monkey_patch")
    assert result[1] == (2, "passed")           # graded before the patches
    assert result[2] == (0, "tampered") and result[3] == (0, "tampered")
    assert "tampering detected" in feedback_of(graded, "monkey_patch", 2)


def test_corrupt_notebook_gets_zero(graded):
    assert marks(graded, "corrupt") == {n: (0, "unreadable") for n in (1, 2, 3)}


def test_feedback_files(graded):
    folder = graded["out"].parent / "feedback"
    assert sorted(p.stem for p in folder.glob("*.md")) == sorted(
        {r["student"] for r in graded["rows"]})
    text = (folder / "partial.md").read_text(encoding="utf-8")
    assert "**Total: 3 / 4 points**" in text
    title = gr.lesson_plan(LESSON).exercises[2]["title"]  # the lesson may rename it
    assert f"## {title}: 0 / 1 (failed)" in text


def test_summary_table(graded):
    lines = graded["summary"].splitlines()
    assert lines[0].split() == ["student", "points", "ex1", "ex2", "ex3"]
    row = next(line for line in lines if line.startswith("monkey_patch"))
    assert row.split() == ["monkey_patch", "2/4", "2", "0", "X", "0", "X"]
    assert "X = tampered" in graded["summary"]


# --- the grader's own failures, atomic writes, the plan ----------------------------------------

def test_grader_errors_exit_non_zero(tmp_path, capsys):
    assert gr.main(["77", str(tmp_path), "--out", str(tmp_path / "g.csv")]) == 1
    assert gr.main(["01", str(tmp_path), "--out", str(tmp_path / "g.csv")]) == 1
    assert "no notebooks found" in capsys.readouterr().err
    assert gr.main(["01", str(tmp_path / "nothing"), "--out", str(tmp_path / "g.csv")]) == 1
    assert not (tmp_path / "g.csv").exists()


def test_interrupted_run_writes_nothing(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "alice.ipynb")
    monkeypatch.setattr(gr, "grade", interrupted)
    assert gr.main(["01", str(tmp_path / "alice.ipynb"), "--out",
                    str(tmp_path / "g.csv")]) == 130
    assert list(tmp_path.iterdir()) == [tmp_path / "alice.ipynb"]


def test_write_is_atomic(tmp_path):
    path = tmp_path / "grades.csv"
    path.write_text("the old grades\n")

    def half_written(file):
        file.write("student,exercise\nalice,")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        gr._write_atomic(path, half_written)
    assert path.read_text() == "the old grades\n"
    assert list(tmp_path.iterdir()) == [path]


def test_plan_runs_instructor_setup_and_definitions_only():
    plan = gr.lesson_plan("01")
    kinds = [s["kind"] for s in plan.steps]
    assert kinds[0] == "setup" and "cu.seed_everything(0)" in plan.steps[0]["source"]
    assert [s["grade_id"] for s in plan.steps if s["kind"] == "answer"] == [
        "ex1-answer", "ex2-answer", "ex3-answer"]
    assert [s["name"] for s in plan.steps if s["kind"] == "check"] == [
        "backproject", "ramp_filter_projections", "fbp"]
    definitions = "\n".join(src for s in plan.steps if s["kind"] == "definitions"
                            for src in s["sources"])
    assert "def backproject_subset" in definitions
    assert "cu.show_images" not in definitions and "A(x_true)" not in definitions
    assert [e["points"] for e in plan.exercises] == [2, 1, 1] and plan.max_points == 4


COURSE_LESSONS = sorted(p.stem[:2] for p in (gr.REPO_ROOT / "solutions").glob("[0-9][0-9]_*.py"))


@pytest.mark.parametrize("lesson", COURSE_LESSONS)
def test_checks_take_only_the_learners_code(lesson):
    """The grader runs checks without the notebook's state: one name, no other argument."""
    plan = gr.lesson_plan(lesson)
    answers = [s for s in plan.steps if s["kind"] == "check"]
    assert len(answers) == len(plan.exercises)
    for step in answers:
        assert len(step["args"]) == 1 and not step["kwargs"], step
        assert step["args"][0].isidentifier()


def test_student_names(tmp_path):
    paths = [tmp_path / "alice" / f"{LESSON}.ipynb", tmp_path / "bob.ipynb",
             tmp_path / "x" / "bob.ipynb"]
    assert gr.student_names(paths, LESSON) == ["alice", "bob", "bob-2"]


def test_find_submissions_skips_checkpoints(tmp_path):
    (tmp_path / "a" / ".ipynb_checkpoints").mkdir(parents=True)
    (tmp_path / "a" / ".ipynb_checkpoints" / "x-checkpoint.ipynb").write_text("{}")
    (tmp_path / "a" / "x.ipynb").write_text("{}")
    assert gr.find_submissions([tmp_path]) == [tmp_path / "a" / "x.ipynb"]
    shutil.rmtree(tmp_path / "a")
    with pytest.raises(gr.GradeError, match="no notebooks"):
        gr.find_submissions([tmp_path])
