"""Grading the course with the real nbgrader: generate_assignment, then autograde.

For lesson 01 and for one learned lesson (08, the shortest in quick mode), a temporary
nbgrader course gets the source notebook of ``dltomo release --nbgrader`` and three
submissions, graded by ``nbgrader autograde`` in quick mode:

* the full solution: every point;
* the student copy, untouched: no point (the stubs raise, so the checks say "not
  attempted", which fails the cell under nbgrader);
* plausible wrong answers (each function returns its input unchanged), written into
  nbgrader's own release of the assignment: fewer points than the maximum.

The learned lesson's notebooks end after their last graded cell: what follows cannot
change a grade, and would only add minutes of training to each run.

Skipped when nbgrader is not installed (``pip install -e ".[grading]"``), unless
``COURSE_REQUIRE_NBGRADER=1``, as in CI.
"""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course_utils.tools import grade as gr
from course_utils.tools import release as rel

if os.environ.get("COURSE_REQUIRE_NBGRADER") == "1":
    import nbgrader  # noqa: F401 (CI must fail, not skip, without it)
else:
    pytest.importorskip("nbgrader")

from nbgrader.api import Gradebook  # noqa: E402

#: Lesson 01 and one learned lesson (the shortest in quick mode, README's course map).
LESSONS = ["01", "08"]
#: Lessons whose notebooks end after their last graded cell here.
TRUNCATED = {"08"}
STUB = re.compile(r"^(?P<indent>[ \t]*)raise NotImplementedError\(.*\)[ \t]*$", re.M)
COMMENT = re.compile(r"^[ \t]*# YOUR CODE HERE[ \t]*\n", re.M)


def nbgrader(course: Path, *args: str) -> str:
    """Run an nbgrader command in ``course`` (with this Python), return its output."""
    env = dict(os.environ, COURSE_QUICK="1", OMP_NUM_THREADS="1", MPLBACKEND="agg",
               TQDM_DISABLE="1", PYDEVD_DISABLE_FILE_VALIDATION="1")
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def graded_cells(nb) -> list[int]:
    return [i for i, c in enumerate(nb.cells)
            if c.metadata.get("nbgrader", {}).get("grade")]


def truncated(nb, end: int):
    nb = nbformat.from_dict(nb)
    nb.cells = nb.cells[:end + 1]
    return nb


def wrong_answer(source: str) -> str:
    """The answer cell ``source`` whose stubs return the function's input unchanged.

    ``def fbp(sinogram, angles, image_size): <stub>`` becomes ``... return sinogram``:
    a plausible answer of the right type, and a wrong one.
    """
    functions = [node for node in ast.walk(ast.parse(source))
                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    lines = source.splitlines()
    for number, line in enumerate(lines, start=1):
        if match := STUB.match(line):
            inner = [f for f in functions if f.lineno < number <= f.end_lineno]
            names = [a.arg for f in inner[-1:] for a in f.args.posonlyargs + f.args.args
                     if a.arg not in ("self", "cls")]
            lines[number - 1] = match["indent"] + (f"return {names[0]}" if names else "pass")
    return "\n".join(lines)


def with_wrong_answers(nb):
    """nbgrader's release of the assignment, its stubs replaced by wrong answers."""
    nb = nbformat.from_dict(nb)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("solution") and cell.cell_type == "code":
            assert STUB.search(cell.source), f"no stub in:\n{cell.source}"
            cell.source = wrong_answer(COMMENT.sub("", cell.source))
    return nb


def test_a_wrong_answer_returns_the_input_unchanged():
    stub = ('class Step:\n    def forward(self, x, y):\n        """Doc."""\n'
            '        raise NotImplementedError("Exercise 2: ...")\n')
    assert wrong_answer(stub).splitlines()[-1] == "        return x"
    assert wrong_answer("raise NotImplementedError()") == "pass"


@pytest.mark.parametrize("lesson", LESSONS)
def test_nbgrader_gives_the_solution_every_point_and_wrong_answers_fewer(lesson, tmp_path,
                                                                       monkeypatch):
    # nbgrader runs the `alembic` command of its environment, which may not be on PATH.
    monkeypatch.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent),
                                                os.environ.get("PATH", "")]))
    source = rel._sources(rel.REPO_ROOT, [lesson])[0]
    name = source.stem
    plan = gr.lesson_plan(lesson)
    notebooks = rel.build_notebooks(source)
    origin = rel.nbgrader_source(source)
    if lesson in TRUNCATED:
        end = max(graded_cells(origin))
        origin, notebooks = truncated(origin, end), {
            folder: truncated(nb, end) for folder, nb in notebooks.items()}

    course = tmp_path / "course"
    (course / "source" / name).mkdir(parents=True)
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        "c.CourseDirectory.course_id = 'dltomo'\n"
        f"c.CourseDirectory.db_assignments = [dict(name={name!r})]\n"
        "c.CourseDirectory.db_students = [dict(id='solution'), dict(id='untouched'),\n"
        "                                 dict(id='wrong')]\n"
        "c.Execute.timeout = 600\n", encoding="utf-8")
    nbformat.write(origin, course / "source" / name / f"{name}.ipynb")
    nbgrader(course, "generate_assignment", name)
    released = nbformat.read(course / "release" / name / f"{name}.ipynb", as_version=4)

    submissions = {"solution": notebooks["solutions"],
                   "untouched": notebooks["lessons"],
                   "wrong": with_wrong_answers(released)}
    for student, nb in submissions.items():
        folder = course / "submitted" / student / name
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{name}.ipynb")
    nbgrader(course, "autograde", name)

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        assignment = gradebook.find_assignment(name)
        maximum = assignment.max_score
        scores = {student: gradebook.find_submission(name, student).score
                  for student in submissions}
    print(f"{name}: max {maximum}, scores {scores}")
    assert maximum == plan.max_points  # quiz cells and other cells carry no points
    assert scores["solution"] == maximum
    assert scores["untouched"] == 0
    assert scores["wrong"] < maximum
