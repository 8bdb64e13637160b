"""Every exercise of every lesson is tested against its reference answer from solutions/.

* Each check that a lesson's notebook calls accepts the instructor's answer, called as the
  grader calls it (a new exercise is covered here as soon as its check cell exists).
* Each lesson has a test module, test_checks_lessonNN.py, that names each of the lesson's
  checks and uses each answer that a check takes as ``ref.<name>`` (from
  lesson_references.py): that is where the check's typical mistakes are tested.
* Every exercise with a code answer has a check (or is listed as graded by hand below).

And the loader itself, course_utils.tools.grade.reference_answers.
"""

import ast
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import course_utils as cu
from course_utils.tools import grade as gr
from lesson_references import load

HERE = Path(__file__).resolve().parent
LESSONS = sorted(p.name[:2] for p in (gr.REPO_ROOT / "solutions").glob("[0-9][0-9]_*.py"))

#: Exercises with a code answer but deliberately no check, as (lesson, exercise key).
GRADED_BY_HAND: set[tuple[str, str]] = set()


def _bound_names(source: str) -> set[str]:
    """The names that a cell binds at its top level (def, class, assignment, import)."""
    names = set()
    for node in ast.parse(gr._python_source(source)).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


def _argument_names(check: dict) -> set[str]:
    sources = list(check["args"]) + list(check["kwargs"].values())
    return {n.id for s in sources for n in ast.walk(ast.parse(s, mode="eval"))
            if isinstance(n, ast.Name)}


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_check_accepts_the_reference_answer(lesson, capsys):
    ref = load(lesson)
    assert ref.checks, f"{ref.plan.name} has no check"
    failures = []
    for check in ref.checks:
        args, kwargs = ref.arguments(check)
        result = getattr(cu.checks, check["name"])(*args, **kwargs)
        if result.status != "passed":
            failures.append(f"{check['exercise']}: cu.checks.{check['name']}"
                            f"({', '.join(check['args'])}): {result.status}: "
                            f"{result.message}")
    capsys.readouterr()  # the checks' feedback lines
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_check_and_answer_is_used_by_the_lessons_check_tests(lesson):
    ref = load(lesson)
    module = HERE / f"test_checks_lesson{lesson}.py"
    assert module.exists(), f"{ref.plan.name} has checks but no tests in {module.name}"
    used = {(ast.unparse(node.value), node.attr)
            for node in ast.walk(ast.parse(module.read_text(encoding="utf-8")))
            if isinstance(node, ast.Attribute)}
    owners = {"cu.checks", "course_utils.checks", f"lesson{lesson}"}
    missing = []
    for check in ref.checks:
        if not any((owner, check["name"]) in used for owner in owners):
            missing.append(f"{check['exercise']}: no test calls cu.checks.{check['name']}")
        answer_cells = [source for grade_id, source in ref.answers.items()
                        if grade_id.startswith(f"{check['exercise']}-answer")]
        defined = set().union(*map(_bound_names, answer_cells))
        for name in sorted(_argument_names(check) & defined):
            if ("ref", name) not in used:
                missing.append(f"{check['exercise']}: the answer {name!r} (checked by "
                               f"cu.checks.{check['name']}) is never used as ref.{name}")
    assert not missing, f"{module.name}:\n" + "\n".join(missing)


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_exercise_with_a_code_answer_has_a_check(lesson):
    plan = load(lesson).plan
    answered = {grade_id.split("-answer")[0] for grade_id in plan.answer_cells}
    unchecked = [e["title"] for e in plan.exercises
                 if e["key"] in answered and e["n_checks"] == 0
                 and (lesson, e["key"]) not in GRADED_BY_HAND]
    assert not unchecked, (f"{plan.name}: no check for {unchecked}; add one (and its "
                           f"tests), or list the exercise in GRADED_BY_HAND")


# --- the loader ----------------------------------------------------------------------------

def test_the_loader_runs_the_graders_plan_quietly_and_leaves_the_process_alone(capsys):
    states = (random.getstate(), np.random.get_state()[1].copy(),
              torch.random.get_rng_state(), torch.get_num_threads())

    ref = gr.reference_answers("02")   # its set-up cell seeds everything and prints
    assert capsys.readouterr().out == ""
    assert "QUICK=" in ref.output
    assert random.getstate() == states[0]
    assert np.array_equal(np.random.get_state()[1], states[1])
    assert torch.equal(torch.random.get_rng_state(), states[2])
    assert torch.get_num_threads() == states[3]

    plan = gr.lesson_plan("02")
    assert list(ref.answers) == list(plan.answer_cells)
    assert "### BEGIN SOLUTION" not in "".join(ref.answers.values())
    assert ref.system_matrix is ref["system_matrix"]
    assert ref.system_matrix.__globals__ is ref.namespace
    assert ref.N_ITER is not None                       # the whole set-up cell ran
    args, kwargs = ref.arguments(ref.checks[0])
    assert args == [ref.system_matrix] and kwargs == {}
    with pytest.raises(AttributeError, match="define 'no_such_answer'"):
        ref.no_such_answer


def test_the_loader_can_reduce_the_set_up_cell_to_its_definitions():
    ref = gr.reference_answers("02", setup="definitions")
    assert callable(ref.system_matrix) and ref.torch is torch
    assert "N_ITER" not in ref.namespace and ref.output == ""
    with pytest.raises(ValueError, match="setup"):
        gr.reference_answers("02", setup="none")


def test_the_loader_rejects_unknown_lessons_and_reports_failing_answers(tmp_path):
    with pytest.raises(gr.GradeError):
        gr.reference_answers("99")
    shutil.copy(gr.REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "solutions").mkdir()
    (tmp_path / "solutions" / "01_tiny.py").write_text(
        "# %%\nimport math\n\n"
        "# %% [markdown]\n# ### Exercise 1: double\n\n"
        "# %%\n### BEGIN SOLUTION\ndef double(x):\n    return 2 * x\n\n\n"
        "math.sqrt(-1)\n### END SOLUTION\n\n"
        "# %%\ncu.checks.double(double);\n", encoding="utf-8")
    with pytest.raises(gr.GradeError, match="01_tiny: the answer cell ex1-answer raised "
                                            "ValueError") as info:
        gr.reference_answers("01", root=tmp_path)
    assert isinstance(info.value.__cause__, ValueError)


def test_quiz_questions_are_not_checks_of_the_loader_or_the_grader(tmp_path):
    shutil.copy(gr.REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "solutions").mkdir()
    (tmp_path / "solutions" / "01_tiny.py").write_text(
        "# %%\nimport course_utils as cu\n\n"
        "# %% [markdown]\n# ### Exercise 1: double\n\n"
        "# %%\ndef double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n"
        "    ### END SOLUTION\n\n"
        "# %%\ncu.checks.double(double);\n\n"
        "# %% [markdown]\n# ## Check your understanding\n\n"
        "# %%\ncu.checks.quiz('Twice 2?', ['3', '4'], answer=1, explain='2 + 2.')\n",
        encoding="utf-8")
    ref = gr.reference_answers("01", root=tmp_path)
    assert [c["name"] for c in ref.checks] == ["double"]
    assert ref.plan.exercises == [{"key": "ex1", "title": "Exercise 1: double",
                                   "points": 1, "n_checks": 1}]
    assert ref.double(3) == 6
