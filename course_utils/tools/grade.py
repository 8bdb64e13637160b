"""Grade a class's submitted lesson notebooks: ``dltomo grade``.

Usage
-----
::

    dltomo grade 01 submissions/ --out grades/grades.csv
    dltomo grade 03_cnn_denoising alice.ipynb bob.ipynb --out grades.csv \\
        --jobs 4 --cell-timeout 120 --timeout 900

``LESSON`` names a lesson (``01`` or ``01_radon_fbp``); ``SUBMISSIONS`` are notebooks or
folders (searched recursively for ``*.ipynb``).  A student is named by the notebook's
file stem, or by its folder when the file keeps the lesson's name
(``submissions/alice/01_radon_fbp.ipynb`` -> ``alice``).  The grader writes

* ``grades.csv``: one row per student and exercise: student, exercise, points,
  max_points, status, feedback;
* ``feedback/<student>.md`` next to it: each exercise with its points, status and the
  check's feedback line, to send to the student;

and prints a summary table.  Both are written atomically: an interrupted run leaves the
previous files (or none), never half-written ones.  The exit status is 0 whenever the
grader did its job, however badly the submissions did; it is 1 only when the grader
itself failed (unknown lesson, unreadable source, no submissions, an internal error)
and 130 when interrupted.

Points come from the lesson's source, ``### BEGIN SOLUTION (points=2)`` (1 point by
default; see :mod:`course_utils.release`).  An exercise earns its points when its check
passes, and 0 otherwise, with one of the statuses

``passed``, ``failed``, ``not attempted``, ``error`` (the learner's code raised),
``timed out``, ``kernel died``, ``tampered``, ``missing`` (no answer cell found),
``unreadable`` (not a notebook), ``manual`` (an exercise without a check: grade by hand).

How a submission is graded
--------------------------
Each submission gets its own worker process, which starts its own Jupyter kernel (the
Python running the grader, with ``COURSE_QUICK=1`` unless ``--full``), in an empty
temporary folder.  The kernel runs the *instructor's* notebook with the student's
answers put in: the instructor's set-up cell, the instructor's other cells reduced to
their imports, ``def`` and ``class`` statements (no training: helpers an answer may
call), the student's answer cells (found by their nbgrader ``grade_id``, else by the
lesson's cell id, else by position or by their first line, with a warning), and, where
the instructor's notebook checks an exercise, the check, called through a reference
taken before any student code ran.  Nothing else from the submission runs: not its
check cells (editing or deleting them changes nothing), not its other cells.
:func:`reference_answers` runs the same plan with the instructor's own answers, in the
calling process: the check tests (tests/checks) take their reference answers from it.

Every cell has a time limit (``--cell-timeout``, the kernel is interrupted), every
submission too (``--timeout``).  A timeout, an exception, a kernel that dies
(``os._exit``, a segfault, running out of memory) costs the exercise where it happened:
the worker restarts the kernel, replays the earlier answers and goes on with the next
exercise.  Submissions run in parallel (``--jobs``, default: the number of CPU cores).

Tamper resistance: what is protected, and what is not
-----------------------------------------------------
Protected: checks are taken from the instructor's source, so edited or deleted check
cells, or a cell printing "passed", do nothing.  The checks are called through
references captured before the first student cell, so redefining ``cu.checks.x`` or
replacing ``course_utils`` in ``sys.modules`` does nothing.  Before and after every check
the grader compares a snapshot of the globals, functions' code, defaults and closures of
every ``course_utils`` module (so patching ``compare_arrays`` or ``CheckResult`` is
seen), of ``builtins``, ``math``, ``functools``, ``traceback``, ``json``, ``numpy``,
``torch`` (with ``torch.Tensor`` and ``torch.nn.Module``), and of ``sys.stdout``: a change
gives that exercise, and every later one, the status ``tampered`` and 0 points.  The
results travel on a channel that names a secret the kernel never sees.

Not protected: the grader is **not a sandbox**.  Student code runs with your user's
rights: it can read and write your files, use the network, start processes, and code
written to defeat this grader with knowledge of how it works (reaching the grader's
objects in the kernel, changing mutable state in place, tracing the check's frames,
faking a kernel module) can defeat it.  It guards against accidents and against simple
tricks, not against a determined attacker.  For a class you do not trust, run the
grader in a throw-away container or VM without your credentials, e.g.
``docker run --rm --network none -v $PWD:/course -w /course IMAGE python -m
course_utils.grade ...``.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import contextlib
import csv
import io
import json
import linecache
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["GradeError", "ExerciseGrade", "LessonPlan", "lesson_plan", "ReferenceAnswers",
           "reference_answers", "find_submissions", "student_names", "grade", "write_reports",
           "main"]

REPO_ROOT = Path(__file__).resolve().parents[2]
STATUSES = ("passed", "failed", "not attempted", "error", "timed out", "kernel died",
            "tampered", "missing", "unreadable", "manual", "grader error")
# The summary table's one-letter marks for the statuses that earn nothing.
MARKS = {"failed": "F", "not attempted": "N", "error": "E", "timed out": "T",
         "kernel died": "K", "tampered": "X", "missing": "M", "unreadable": "U",
         "manual": "?", "grader error": "G"}
STUB_TEXT = "replace this line with your code"  # the message of release.py's stubs
NAME_HINT = ("the grader runs only your answer cells (the ones that had `# YOUR CODE "
             "HERE`): keep your whole answer, helpers included, inside them")


class GradeError(Exception):
    """The grader cannot do its job (unknown lesson, no submissions, ...)."""


@dataclass
class ExerciseGrade:
    """One row of ``grades.csv``."""

    student: str
    exercise: str
    points: float
    max_points: float
    status: str
    feedback: str


# --- what the instructor's source says ------------------------------------------------------

@dataclass
class LessonPlan:
    """What to run for every submission of one lesson, built from the instructor's source.

    ``steps`` are run in order: ``setup`` (a cell's source), ``definitions`` (statements
    executed one by one, errors ignored), ``answer`` (a student's cell, by grade id) and
    ``check`` (a call of ``cu.checks.<name>`` on expressions of the notebook's names).
    """

    name: str                      # "01_radon_fbp"
    exercises: list[dict]          # key, title, points, n_checks
    steps: list[dict]
    answer_cells: dict[str, dict]  # grade_id -> cell id, index and first line in the lesson
    n_lesson_cells: int

    @property
    def max_points(self) -> float:
        return sum(e["points"] for e in self.exercises)


def _python_source(source: str) -> str:
    """Cell source with IPython syntax (``%magic``, ``!cmd``) turned into Python."""
    from IPython.core.inputtransformer2 import TransformerManager
    return TransformerManager().transform_cell(source)


def _definitions(source: str) -> list[str]:
    """The top-level imports, ``def`` and ``class`` statements of a cell, as sources."""
    try:
        source = _python_source(source)
        tree = ast.parse(source)
    except SyntaxError:
        return []
    lines = source.splitlines()
    kept = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef,
                             ast.AsyncFunctionDef, ast.ClassDef)):
            first = min([node.lineno] + [d.lineno for d in
                                         getattr(node, "decorator_list", [])])
            kept.append("\n".join(lines[first - 1:node.end_lineno]))
    return kept


def _check_calls(source: str) -> list[dict]:
    """The ``cu.checks.<name>(args)`` calls of a check cell: name, args and kwargs sources.

    ``cu.checks.quiz(...)`` ("check your understanding") is not a check and is left out.
    """
    from .release import QUIZ
    source = _python_source(source)
    calls = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        owner = node.func.value
        if (isinstance(owner, ast.Attribute) and owner.attr == "checks"
                and isinstance(owner.value, ast.Name)
                and owner.value.id in ("cu", "course_utils")
                and node.func.attr != QUIZ):  # a question, not a graded check
            calls.append({"name": node.func.attr,
                          "args": [ast.get_source_segment(source, a) for a in node.args],
                          "kwargs": {k.arg: ast.get_source_segment(source, k.value)
                                     for k in node.keywords if k.arg}})
    return calls


def lesson_plan(lesson: str, root=REPO_ROOT) -> LessonPlan:
    """Build the :class:`LessonPlan` of ``lesson`` (``"01"`` or ``"01_radon_fbp"``)."""
    from . import release as rel

    root = Path(root)
    try:
        source = rel._sources(root, [lesson])[0]
        text = source.read_text(encoding="utf-8")
        exercises = rel.find_exercises(text, f"solutions/{source.name}")
        notebooks = rel.build_notebooks(source)
    except (rel.ReleaseError, OSError, UnicodeDecodeError) as error:
        raise GradeError(f"cannot read the lesson {lesson!r}: {error}") from None
    solution, student_copy = notebooks["solutions"], notebooks["lessons"]
    roles = {}
    for exercise in exercises:
        for n, index in enumerate(exercise.answer_cells):
            roles[index] = ("answer", exercise, n)
        for n, index in enumerate(exercise.check_cells):
            roles[index] = ("check", exercise, n)
    code = [i for i, c in enumerate(solution.cells) if c.cell_type == "code"
            and rel.COLAB_TAG not in c.metadata.get("tags", [])]
    checked = [i for e in exercises for i in e.check_cells]
    if not checked:
        raise GradeError(f"{source.name} has no exercise with a check to grade")
    setup = code[0]
    steps, pending = [{"kind": "setup", "source": solution.cells[setup].source}], []
    answer_cells = {}
    for index in code[1:]:
        if index > max(checked):
            break
        role = roles.get(index)
        if role is None:
            pending += _definitions(solution.cells[index].source)
            continue
        if pending:
            steps.append({"kind": "definitions", "sources": pending})
            pending = []
        kind, exercise, n = role
        if kind == "answer":
            grade_id = exercise.answer_id(n)
            lines = [line for line in student_copy.cells[index].source.splitlines()
                     if line.strip() and not line.lstrip().startswith("#")]
            answer_cells[grade_id] = {"id": student_copy.cells[index].get("id"),
                                      "index": index,
                                      "first_line": lines[0].strip() if lines else None}
            steps.append({"kind": "answer", "exercise": exercise.key,
                          "grade_id": grade_id})
        else:
            for call in _check_calls(solution.cells[index].source):
                steps.append({"kind": "check", "exercise": exercise.key, **call})
    table = []
    for exercise in exercises:
        n_checks = sum(1 for s in steps if s["kind"] == "check"
                       and s["exercise"] == exercise.key)
        table.append({"key": exercise.key, "title": exercise.title,
                      "points": exercise.points, "n_checks": n_checks})
    return LessonPlan(source.stem, table, steps, answer_cells, len(student_copy.cells))


# --- what the submission gives -------------------------------------------------------------

def _answer_cell(nb, grade_id: str, lesson_cell: dict, n_lesson_cells: int):
    """The student's answer cell for ``grade_id`` and a warning (or None) on how found."""
    code = [c for c in nb.cells if c.get("cell_type") == "code"]
    tagged = [c for c in code
              if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id]
    if len(tagged) == 1:
        return tagged[0], None
    if tagged:
        same_id = [c for c in tagged if c.get("id") == lesson_cell["id"]]
        return (same_id or tagged)[-1], (f"{len(tagged)} cells carry the grade id "
                                         f"{grade_id!r} (a copied cell?); graded one of "
                                         f"them")
    same_id = [c for c in code if c.get("id") == lesson_cell["id"]]
    if same_id:
        return same_id[-1], "answer cell found by its cell id (its grading metadata is gone)"
    cells = nb.cells
    if len(cells) == n_lesson_cells and cells[lesson_cell["index"]].cell_type == "code":
        return cells[lesson_cell["index"]], "answer cell found by its position only"
    first = lesson_cell["first_line"]
    if first:
        similar = [c for c in code if first in c.source]
        if similar:
            return similar[-1], f"answer cell found by its first line `{first}` only"
    return None, None


def read_answers(path: Path, plan: LessonPlan):
    """The student's answer sources by grade id, and warnings; GradeError if unreadable."""
    import nbformat
    try:
        with open(path, encoding="utf-8") as file:
            nb = nbformat.read(file, as_version=4)
        cells = nb.cells
        assert isinstance(cells, list)
    except Exception as error:
        raise GradeError(f"cannot read {path.name} as a notebook "
                         f"({type(error).__name__}: {str(error)[:200]})") from None
    answers, warnings = {}, {}
    for grade_id, lesson_cell in plan.answer_cells.items():
        cell, warning = _answer_cell(nb, grade_id, lesson_cell, plan.n_lesson_cells)
        answers[grade_id] = None if cell is None else cell.source
        if warning:
            warnings[grade_id] = warning
    return answers, warnings


# --- the instructor's own answers, run in this process ---------------------------------------

@dataclass(eq=False)
class ReferenceAnswers:
    """The instructor's answers of one lesson, run by :func:`reference_answers`.

    ``ref.backproject`` (or ``ref["backproject"]``) is what the lesson's namespace holds
    under that name once the answers ran: the answer functions and classes, and whatever
    the set-up and the instructor's definitions put there.
    """

    plan: LessonPlan
    answers: dict[str, str]            # grade_id -> the solution's answer cell
    namespace: dict = field(repr=False)
    output: str = field(default="", repr=False)   # what the cells printed

    def __repr__(self) -> str:
        return f"<ReferenceAnswers of {self.plan.name}: {', '.join(self.answers)}>"

    def __getitem__(self, name: str):
        return self.namespace[name]

    def __getattr__(self, name: str):
        namespace = self.__dict__.get("namespace")
        if namespace is None or name.startswith("__"):
            raise AttributeError(name)
        try:
            return namespace[name]
        except KeyError:
            raise AttributeError(f"{self.plan.name}: neither the set-up, the instructor's "
                                 f"definitions nor the answers define {name!r}") from None

    @property
    def checks(self) -> list[dict]:
        """The lesson's check calls in order: exercise, name, args and kwargs (sources)."""
        return [step for step in self.plan.steps if step["kind"] == "check"]

    def arguments(self, check: dict) -> tuple[list, dict]:
        """The values the grader passes to a check: its argument sources evaluated here."""
        return ([eval(a, self.namespace) for a in check["args"]],
                {k: eval(v, self.namespace) for k, v in check["kwargs"].items()})


@contextlib.contextmanager
def _process_state_kept():
    """Restore the global random generators (CPU) and torch's number of threads."""
    import random

    import numpy
    import torch
    state = (random.getstate(), numpy.random.get_state(), torch.random.get_rng_state(),
             torch.get_num_threads())
    try:
        yield
    finally:
        random.setstate(state[0])
        numpy.random.set_state(state[1])
        torch.random.set_rng_state(state[2])
        torch.set_num_threads(state[3])


def reference_answers(lesson: str, root=REPO_ROOT, *, setup: str = "full") -> ReferenceAnswers:
    """Run the instructor's answers of ``lesson`` here, the way the grader runs a learner's.

    The steps of :func:`lesson_plan` run in order in one fresh namespace, in this process:
    the set-up cell, the instructor's other cells reduced to their imports, ``def`` and
    ``class`` statements (errors ignored), and the answer cells of the solution notebook
    built from ``solutions/NN_slug.py``, found by their grade ids as :func:`read_answers`
    finds a learner's.  The checks are not called: :attr:`ReferenceAnswers.checks` and
    :meth:`ReferenceAnswers.arguments` give what the grader would pass them.  Quick mode
    is this process's (``COURSE_QUICK`` when ``course_utils`` was imported).

    Parameters
    ----------
    lesson : str
        ``"01"`` or ``"01_radon_fbp"``.
    setup : {"full", "definitions"}
        ``"full"`` runs the set-up cell as the grader does; ``"definitions"`` reduces it to
        its imports, ``def`` and ``class`` statements, like the instructor's other cells:
        enough for answers that need only the imports, without the set-up's data.

    The cells' printed output is kept in :attr:`ReferenceAnswers.output`, not printed; the
    global random generators and torch's number of threads are restored afterwards.

    Raises
    ------
    GradeError
        For an unknown lesson, or when the set-up cell, one of its imports or an answer
        cell raises (the exception is chained).
    """
    from . import release as rel

    if setup not in ("full", "definitions"):
        raise ValueError(f'setup must be "full" or "definitions", got {setup!r}')
    plan = lesson_plan(lesson, root)
    try:
        solution = rel.build_notebooks(rel._sources(Path(root), [lesson])[0])["solutions"]
    except (rel.ReleaseError, OSError, UnicodeDecodeError) as error:
        raise GradeError(f"cannot read the lesson {lesson!r}: {error}") from None
    answers = {}
    for grade_id, lesson_cell in plan.answer_cells.items():
        cell, _ = _answer_cell(solution, grade_id, lesson_cell, plan.n_lesson_cells)
        if cell is None:
            raise GradeError(f"{plan.name}: no answer cell {grade_id!r} in the solution")
        answers[grade_id] = cell.source

    namespace = {"__name__": "__main__", "__builtins__": builtins}
    printed = io.StringIO()
    sources = []

    def run(code: str, what: str) -> None:
        # A name of its own per source, for tracebacks (as IPython does for cells).
        sources.append(code)
        filename = f"<{plan.name} #{len(sources)}: {what}>"
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        exec(compile(code, filename, "exec"), namespace)

    def failed(what: str, error: Exception) -> GradeError:
        return GradeError(f"{plan.name}: {what} raised {type(error).__name__}: {error}")

    with _process_state_kept(), contextlib.redirect_stdout(printed):
        for step in plan.steps:
            if step["kind"] == "setup" and setup == "full":
                try:
                    run(_python_source(step["source"]), "set-up cell")
                except Exception as error:
                    raise failed("the set-up cell", error) from error
            elif step["kind"] == "setup":
                for code in _definitions(step["source"]):
                    try:
                        run(code, "set-up cell")
                    except Exception as error:
                        if code.lstrip().startswith(("import ", "from ")):
                            raise failed(f"the set-up's `{code.splitlines()[0]}`",
                                         error) from error
            elif step["kind"] == "definitions":
                for code in step["sources"]:
                    try:
                        run(code, "instructor's definitions")
                    except Exception:
                        pass  # as the grader: a helper the answers may not need
            elif step["kind"] == "answer":
                grade_id = step["grade_id"]
                try:
                    run(_python_source(answers[grade_id]), grade_id)
                except Exception as error:
                    raise failed(f"the answer cell {grade_id}", error) from error
    return ReferenceAnswers(plan, answers, namespace, printed.getvalue())


def find_submissions(paths) -> list[Path]:
    """The notebooks to grade: files as given, folders searched for ``*.ipynb``."""
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(p for p in path.rglob("*.ipynb")
                            if not any(part.startswith(".")
                                       for part in p.relative_to(path).parts))
        elif path.exists():
            found.append(path)
        else:
            raise GradeError(f"{path}: no such file or folder")
    if not found:
        raise GradeError(f"no notebooks found in {', '.join(map(str, paths))}")
    return list(dict.fromkeys(found))


def student_names(paths: list[Path], lesson_name: str) -> list[str]:
    """The file stem, or the folder when the stem is the lesson's name; made unique."""
    names, seen = [], {}
    for path in paths:
        stem = path.stem
        name = path.resolve().parent.name if stem in (lesson_name, lesson_name[:2]) else stem
        n = seen.get(name, 0) + 1
        seen[name] = n
        names.append(name if n == 1 else f"{name}-{n}")
    return names


# --- the code that runs inside the student's kernel ------------------------------------------

KERNEL_CODE = r'''
import builtins, json, sys, types

WATCHED_MODULES = ("builtins", "math", "functools", "traceback", "json", "inspect",
                   "numpy", "numpy.linalg", "numpy.fft", "torch", "torch.fft",
                   "torch.linalg", "torch.nn", "torch.nn.functional")
WATCHED_CLASSES = (("torch", "Tensor"), ("torch.nn", "Module"))
IGNORED = {("builtins", "_"), ("builtins", "__"), ("builtins", "___")}


def _ours(name):
    return name == "course_utils" or name.startswith("course_utils.")


def _torch_wrapper(value):
    """torch wraps some of its own functions when it first imports torch._dynamo."""
    code = getattr(value, "__code__", None)
    torch = sys.modules.get("torch")
    return (isinstance(value, types.FunctionType) and hasattr(value, "__wrapped__")
            and torch is not None and code is not None
            and code.co_filename.startswith(torch.__path__[0]))


def _normalise(value):
    """Bound methods are made anew on each access: compare what they bind instead."""
    if _torch_wrapper(value):
        return _normalise(value.__wrapped__)
    if isinstance(value, types.MethodType):
        return ("bound method", value.__func__, value.__self__)
    if (isinstance(value, types.BuiltinMethodType)
            and not isinstance(value.__self__, types.ModuleType)):
        return ("bound builtin", value.__self__, value.__name__)
    return value


def _function(state, key, function, depth=0):
    """A course_utils function: its code, defaults and closure (the wrapped check)."""
    state[key + ("code",)] = function.__code__
    state[key + ("defaults",)] = function.__defaults__
    state[key + ("kwdefaults",)] = function.__kwdefaults__
    state[key + ("globals",)] = function.__globals__
    for n, cell in enumerate(function.__closure__ or ()):
        try:
            value = cell.cell_contents
        except ValueError:
            continue
        state[key + ("closure", n)] = _normalise(value)
        if (depth < 3 and isinstance(value, types.FunctionType)
                and _ours(getattr(value, "__module__", "") or "")):
            _function(state, key + ("closure", n), value, depth + 1)


def snapshot():
    state = {}
    for name, module in list(sys.modules.items()):
        if module is None or not (_ours(name) or name in WATCHED_MODULES):
            continue
        state[("sys.modules", name)] = module
        namespace = getattr(module, "__dict__", {})
        for key, value in list(namespace.items()):
            if (name, key) not in IGNORED and key != "__warningregistry__":
                state[(name, key)] = _normalise(value)
            if not _ours(name):
                continue
            home = getattr(value, "__module__", "") or ""
            if isinstance(value, types.FunctionType) and _ours(home):
                _function(state, (name, key), value)
            elif isinstance(value, type) and _ours(home):
                state[(name, key, "<names>")] = frozenset(vars(value))
                for attribute, member in list(vars(value).items()):
                    state[(name, key, attribute)] = _normalise(member)
                    if isinstance(member, (staticmethod, classmethod)):
                        member = member.__func__
                    if isinstance(member, property):
                        member = member.fget
                    if isinstance(member, types.FunctionType):
                        _function(state, (name, key, attribute), member)
        if _ours(name):  # a new global can shadow a builtin (print, isinstance, ...)
            state[(name, "<names>")] = frozenset(
                k for k, v in namespace.items()
                if not isinstance(v, types.ModuleType) and not k.startswith("__"))
    for module_name, class_name in WATCHED_CLASSES:
        cls = getattr(sys.modules.get(module_name), class_name, None)
        for key, value in list(vars(cls).items()) if cls is not None else ():
            state[(f"{module_name}.{class_name}", key)] = _normalise(value)
    # (IPython itself swaps sys.stdout.write around every cell, and restores it after.)
    for stream in ("stdout", "stderr"):
        state[("sys", stream)] = getattr(sys, stream)
    state[("sys", "gettrace()")] = sys.gettrace()
    state[("sys", "getprofile()")] = sys.getprofile()
    return state


def _same(before, after):
    if before is after:
        return True
    if type(before) is str and type(after) is str:
        return before == after
    if type(before) is frozenset and type(after) is frozenset:
        return before == after
    if type(before) is tuple and type(after) is tuple and len(before) == len(after):
        return all(_same(a, b) for a, b in zip(before, after))
    return False


def changes(baseline):
    current = snapshot()
    return [key for key, before in baseline.items()
            if key not in current or not _same(before, current[key])]


def _describe(keys):
    names = []
    for key in keys:
        text = ".".join(str(part) for part in key[:2] if part != "sys.modules")
        if text not in names:
            names.append(text)
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return (f"tampering detected: your code changed {shown}, which the checks rely on; "
            f"no points for this exercise or the ones after it")


def capture(check_names):
    """Called before any student code: keep references to the checks and the tools."""
    import course_utils.checks
    from IPython import get_ipython
    global CHECKS, CHECK_RESULT, BASELINE, SHELL, PRINT, DUMPS, EVAL, TAMPERED
    CHECKS = {name: getattr(course_utils.checks, name, None) for name in check_names}
    CHECK_RESULT = course_utils.checks.CheckResult
    SHELL, PRINT, DUMPS, EVAL = get_ipython(), builtins.print, json.dumps, builtins.eval
    BASELINE, TAMPERED = None, None


def arm():
    """Called right before the first student cell: the state to compare with."""
    global BASELINE
    BASELINE = snapshot()


def run_definitions(sources):
    for source in sources:
        try:
            exec(compile(source, "<instructor's notebook>", "exec"), SHELL.user_ns)
        except Exception:
            pass


def _emit(nonce, report):
    PRINT(nonce + " " + DUMPS(report), flush=True)


def run_check(exercise, n, name, args, kwargs, nonce):
    global TAMPERED
    report = {"exercise": exercise, "n": n}
    if TAMPERED is None and BASELINE is not None and (changed := changes(BASELINE)):
        TAMPERED = _describe(changed)
    if TAMPERED:
        return _emit(nonce, {**report, "status": "tampered", "message": TAMPERED})
    check = CHECKS.get(name)
    if check is None:
        return _emit(nonce, {**report, "status": "grader error",
                             "message": f"course_utils.checks has no check {name!r}"})
    try:
        values = [EVAL(a, SHELL.user_ns) for a in args]
        named = {k: EVAL(v, SHELL.user_ns) for k, v in kwargs.items()}
    except NameError as error:
        return _emit(nonce, {**report, "status": "error", "message": f"{error}"})
    except BaseException as error:
        return _emit(nonce, {**report, "status": "error", "message":
                             f"{type(error).__name__}: {error}"})
    try:
        result = check(*values, **named)
    except BaseException as error:  # KeyboardInterrupt from a timeout, SystemExit, ...
        result = error
    if BASELINE is not None and (changed := changes(BASELINE)):
        TAMPERED = _describe(changed)
        return _emit(nonce, {**report, "status": "tampered", "message": TAMPERED})
    if isinstance(result, BaseException):
        return _emit(nonce, {**report, "status": "error", "message":
                             f"the check was stopped: {type(result).__name__}"})
    if type(result) is not CHECK_RESULT:
        return _emit(nonce, {**report, "status": "tampered", "message":
                             "tampering detected: the check returned a "
                             f"{type(result).__name__}, not a CheckResult"})
    status = object.__getattribute__(result, "status")
    message = object.__getattribute__(result, "message")
    _emit(nonce, {**report, "status": str(status), "message": str(message)})
'''


# --- the worker: one submission, one kernel ----------------------------------------------------

class _KernelGone(Exception):
    """The kernel died, or stopped answering after a timeout."""


class _Kernel:
    """A fresh ipykernel of this Python, driven by nbclient, for one submission."""

    def __init__(self, folder: Path, env: dict, token: str, check_names: list[str]):
        import nbformat
        from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
        from jupyter_client.manager import AsyncKernelManager
        from nbclient import NotebookClient

        class ThisPython(KernelSpecManager):
            def get_kernel_spec(self, kernel_name, *args, **kwargs):
                return KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f",
                                        "{connection_file}"],
                                  display_name="Python (grader)", language="python")

        self.folder, self.env, self.token = folder, env, token
        self.check_names = check_names
        self.timeout = 60.0
        self.nbformat = nbformat
        self.km = AsyncKernelManager(kernel_spec_manager=ThisPython(), kernel_name="grader",
                                transport="ipc",
                                connection_file=str(folder / f"kernel-{secrets.token_hex(4)}.json"))
        self.client = NotebookClient(
            nbformat.v4.new_notebook(), km=self.km, allow_errors=True,
            interrupt_on_timeout=True, shutdown_kernel="immediate", iopub_timeout=5,
            error_on_timeout={"ename": "TimeoutError", "evalue": "cell timed out",
                              "traceback": []},
            timeout_func=lambda cell: self.timeout, record_timing=False)
        self.context = None

    def __enter__(self):
        self.log = open(self.folder / "kernel.log", "ab")
        self.context = self.client.setup_kernel(env=self.env, cwd=str(self.folder),
                                                stdout=self.log, stderr=self.log)
        self.context.__enter__()
        (self.folder / "kernel.pid").write_text(str(self.km.provisioner.pid))
        preamble = (f"import sys as __s, types as __t\n"
                    f"__m = __t.ModuleType({self.token!r}); __s.modules[{self.token!r}] = __m\n"
                    f"exec(compile({KERNEL_CODE!r}, '<course grader>', 'exec'), __m.__dict__)\n"
                    f"__m.capture({self.check_names!r})\n"
                    f"del __s, __t, __m")
        outcome = self.run(preamble, 120)
        if outcome["error"] or outcome["timed_out"]:
            raise RuntimeError(f"the grader's preamble failed in the kernel: {outcome}")
        return self

    def __exit__(self, *exc):
        try:
            self.context.__exit__(*exc)  # shuts the kernel down at once
        except Exception:
            pass
        try:
            os.killpg(self.km.provisioner.pid, signal.SIGKILL)
        except Exception:
            pass
        self.log.close()
        return False

    def call(self, function: str, *args) -> str:
        """Source of a cell calling a function of the grader's module in the kernel."""
        arguments = ", ".join(repr(a) for a in args)
        return f"__import__('sys').modules[{self.token!r}].{function}({arguments})"

    def run(self, source: str, timeout: float) -> dict:
        """Run one cell: its error (ename, evalue), stdout text and whether it timed out."""
        from nbclient.exceptions import DeadKernelError

        cell = self.nbformat.v4.new_code_cell(source)
        self.client.nb.cells = [cell]
        self.timeout = max(float(timeout), 1.0)
        start = time.monotonic()
        try:
            self.client.execute_cell(cell, 0)
        except DeadKernelError:
            raise _KernelGone("kernel died") from None
        elapsed = time.monotonic() - start
        error, stdout = None, []
        for output in cell.outputs:
            if output.output_type == "error":
                error = (output.ename, output.evalue)
            elif output.output_type == "stream" and output.name == "stdout":
                stdout.append(output.text)
        timed_out = elapsed >= self.timeout - 0.05 and (error is None or error[0] in (
            "KeyboardInterrupt", "TimeoutError"))
        if timed_out and not self.responsive():
            raise _KernelGone("timed out")
        return {"error": error, "stdout": "".join(stdout), "timed_out": timed_out}

    def responsive(self) -> bool:
        """After a timeout: did the interrupt work, so that the kernel answers again?"""
        from nbclient.exceptions import DeadKernelError
        cell = self.nbformat.v4.new_code_cell("pass")
        self.client.nb.cells = [cell]
        self.timeout = 10.0
        start = time.monotonic()
        try:
            self.client.execute_cell(cell, 0)
        except DeadKernelError:
            return False
        return time.monotonic() - start < 9.5


def _worker(job_path: str) -> int:
    """Grade one submission as described by the job file; print results as JSON lines."""
    job = json.loads(Path(job_path).read_text(encoding="utf-8"))
    channel = sys.stdin.readline().strip()  # the parent's secret: the kernel never sees it
    folder = Path(job["folder"])
    deadline = time.monotonic() + job["timeout"]
    steps, answers = job["steps"], job["answers"]
    check_names = sorted({s["name"] for s in steps if s["kind"] == "check"})
    n_checks = {}
    for s in steps:
        if s["kind"] == "check":
            s["n"] = n_checks.get(s["exercise"], 0)
            n_checks[s["exercise"]] = s["n"] + 1
    done = set()           # (exercise, n) of the checks already reported
    skipped_steps = set()  # answer or check steps that killed the kernel
    answer_errors = {}     # exercise -> what its answer cell raised
    stopped = {}           # exercise -> (status, message) decided before its check

    def emit(record):
        print(channel + " " + json.dumps(record), flush=True)

    def report(exercise, n, status, message):
        if (exercise, n) not in done:
            done.add((exercise, n))
            emit({"exercise": exercise, "n": n, "status": status, "message": message})

    def report_rest(status, message, only=None):
        for s in steps:
            if s["kind"] == "check" and (only is None or s["exercise"] == only):
                report(s["exercise"], s["n"], status, message)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    for attempt in range(len(steps) + 1):
        try:
            with _Kernel(folder, job["env"], "_course_grader_" + secrets.token_hex(8),
                         check_names) as kernel:
                armed = False
                for index, step in enumerate(steps):
                    if index in skipped_steps:
                        continue
                    kind, exercise = step["kind"], step.get("exercise")
                    if kind == "check" and (exercise, step["n"]) in done:
                        continue
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        report_rest("timed out", f"the notebook's time limit "
                                    f"({job['timeout']:g} s) ran out before this exercise")
                        return 0
                    # The instructor's cells are trusted: a slow import is not a hang.
                    limit = job["cell_timeout"] if kind in ("answer", "check") else max(
                        job["cell_timeout"], 300)
                    timeout = min(limit, remaining)
                    try:
                        if kind == "setup":
                            outcome = kernel.run(step["source"], timeout)
                            if outcome["error"] or outcome["timed_out"]:
                                emit({"grader_error": f"the instructor's set-up cell failed: "
                                                      f"{outcome['error'] or 'timed out'}"})
                        elif kind == "definitions":
                            kernel.run(kernel.call("run_definitions", step["sources"]),
                                       timeout)
                        elif kind == "answer":
                            source = answers.get(step["grade_id"])
                            if source is None:
                                stopped.setdefault(exercise, (
                                    "missing", "answer cell not found in the notebook (was "
                                    "it deleted?)"))
                                continue
                            if not armed:
                                kernel.run(kernel.call("arm"), timeout)
                                armed = True
                            outcome = kernel.run(source, timeout)
                            if outcome["timed_out"]:
                                answer_errors[exercise] = (f"your answer cell ran out of time "
                                                           f"({timeout:g} s)")
                            elif outcome["error"]:
                                ename, evalue = outcome["error"]
                                if ename == "NotImplementedError" and STUB_TEXT in evalue:
                                    stopped.setdefault(exercise, (
                                        "not attempted", "not attempted yet — replace the "
                                        "raise NotImplementedError line with your code."))
                                answer_errors[exercise] = (f"your answer cell raised {ename}: "
                                                           f"{evalue}"[:300])
                        else:  # check
                            if exercise in stopped:
                                report(exercise, step["n"], *stopped[exercise])
                                continue
                            nonce = secrets.token_hex(8)
                            outcome = kernel.run(kernel.call(
                                "run_check", exercise, step["n"], step["name"], step["args"],
                                step["kwargs"], nonce), timeout)
                            results = [json.loads(line[len(nonce) + 1:])
                                       for line in outcome["stdout"].splitlines()
                                       if line.startswith(nonce + " ")]
                            if outcome["timed_out"]:
                                report(exercise, step["n"], "timed out",
                                       f"the check of your code ran out of time "
                                       f"({timeout:g} s): an endless loop?")
                            elif results:
                                result = results[-1]
                                message = result["message"]
                                if result["status"] == "error" and "is not defined" in message:
                                    message = f"{message}: {NAME_HINT}"
                                    if exercise in answer_errors:
                                        message += f" ({answer_errors[exercise]})"
                                report(exercise, step["n"], result["status"], message)
                            else:
                                report(exercise, step["n"], "error",
                                       f"the check gave no result "
                                       f"({outcome['error'] or 'no output'})")
                    except _KernelGone as gone:
                        if kind in ("answer", "check"):
                            skipped_steps.add(index)
                            status = "timed out" if str(gone) == "timed out" else "kernel died"
                            where = "your answer cell" if kind == "answer" else "the check"
                            message = (f"the kernel {'stopped answering' if status == 'timed out' else 'died'} "
                                       f"while running {where} (os._exit, a crash, or "
                                       f"too much memory?); the exercises after it were "
                                       f"graded in a fresh kernel")
                            if status == "timed out":
                                message = (f"{where} ran out of time ({timeout:g} s) and "
                                           f"ignored the interrupt; the exercises after it "
                                           f"were graded in a fresh kernel")
                            stopped[exercise] = (status, message)
                            report_rest(status, message, only=exercise)
                        else:
                            emit({"grader_error": f"the kernel died in the instructor's "
                                                  f"{kind} cell"})
                            report_rest("kernel died", "the kernel died in the instructor's "
                                                       "code")
                            return 0
                        raise
                return 0
        except _KernelGone:
            continue  # a fresh kernel for the remaining exercises
    report_rest("kernel died", "the kernel died too often")
    return 0


# --- the parent: many submissions, in parallel -----------------------------------------------

_RUNNING: set = set()
_RUNNING_LOCK = threading.Lock()


def _kill_kernel(folder: Path) -> None:
    try:
        pid = int((folder / "kernel.pid").read_text())
        os.killpg(pid, signal.SIGKILL)  # the kernel leads its own process group
    except (OSError, ValueError):
        pass


def _kernel_env(quick: bool, jobs: int) -> dict:
    env = dict(os.environ)
    env.pop("COURSE_QUICK", None)
    # The checks raise instead of returning their result under nbgrader; this grader
    # reads the result, even when it runs inside an nbgrader session.
    env.pop("NBGRADER_EXECUTION", None)
    if quick:
        env["COURSE_QUICK"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT)] + [p for p in env.get(
        "PYTHONPATH", "").split(os.pathsep) if p])
    env.setdefault("MPLBACKEND", "agg")        # no figures drawn into outputs
    env.setdefault("TQDM_DISABLE", "1")
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    threads = str(max(1, (os.cpu_count() or 1) // max(jobs, 1)))
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(name, threads)
    return env


def _grade_one(path: Path, plan: LessonPlan, options: dict) -> tuple[dict, list[str]]:
    """Run a worker on one submission: ``({(exercise, n): (status, message)}, notes)``."""
    try:
        answers, warnings = read_answers(path, plan)
    except GradeError as error:
        return {"unreadable": str(error)}, []
    notes = [f"{grade_id}: {text}" for grade_id, text in warnings.items()]
    folder = Path(tempfile.mkdtemp(prefix="course-grade-"))
    channel = secrets.token_hex(16)
    job = {"folder": str(folder), "steps": plan.steps, "answers": answers,
           "timeout": options["timeout"], "cell_timeout": options["cell_timeout"],
           "env": options["env"]}
    job_path = folder / "job.json"
    job_path.write_text(json.dumps(job), encoding="utf-8")
    launcher = (f"import runpy, sys; sys.argv = ['grade', '--worker', {str(job_path)!r}]; "
                f"runpy.run_path({str(Path(__file__).resolve())!r}, run_name='__main__')")
    process = subprocess.Popen([sys.executable, "-c", launcher], cwd=folder,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    with _RUNNING_LOCK:
        _RUNNING.add((process, folder))
    limit = options["timeout"] + 60 * (1 + len(plan.exercises))  # kernel starts, restarts
    try:
        try:
            out, err = process.communicate(channel + "\n", timeout=limit)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                out, err = process.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                out, err = process.communicate()
    finally:
        _kill_kernel(folder)
        with _RUNNING_LOCK:
            _RUNNING.discard((process, folder))
        shutil.rmtree(folder, ignore_errors=True)
    results = {}
    for line in out.splitlines():
        if line.startswith(channel + " "):
            record = json.loads(line[len(channel) + 1:])
            if "grader_error" in record:
                notes.append("grader: " + record["grader_error"])
                options["grader_errors"].append(f"{path}: {record['grader_error']}")
            else:
                results[(record["exercise"], record["n"])] = (record["status"],
                                                              record["message"])
    if process.returncode not in (0, None) and len(results) < len(
            [s for s in plan.steps if s["kind"] == "check"]):
        tail = err.strip().splitlines()[-1:] or ["no message"]
        options["grader_errors"].append(f"{path}: the grading worker failed "
                                        f"(exit {process.returncode}): {tail[0]}")
        notes.append("grader: the grading worker stopped early")
    return results, notes


def _exercise_rows(student: str, plan: LessonPlan, results: dict, notes: list[str]):
    rows = []
    for exercise in plan.exercises:
        key, points = exercise["key"], exercise["points"]
        if "unreadable" in results:
            rows.append(ExerciseGrade(student, exercise["title"], 0, points, "unreadable",
                                      results["unreadable"]))
            continue
        if exercise["n_checks"] == 0:
            rows.append(ExerciseGrade(student, exercise["title"], 0, points, "manual",
                                      "no automatic check: grade this exercise by hand"))
            continue
        outcomes = [results.get((key, n), ("grader error", "no result from the grader"))
                    for n in range(exercise["n_checks"])]
        share = points / exercise["n_checks"]
        earned = sum(share for status, _ in outcomes if status == "passed")
        failing = [o for o in outcomes if o[0] != "passed"]
        status = failing[0][0] if failing else "passed"
        feedback = " / ".join(message for _, message in (failing or outcomes))
        extra = [n.split(": ", 1)[1] for n in notes if n.startswith(f"{key}-")]
        if extra:
            feedback += " [warning: " + "; ".join(extra) + "]"
        rows.append(ExerciseGrade(student, exercise["title"], round(earned, 6), points,
                                  status, feedback))
    return rows


def grade(lesson, submissions, *, root=REPO_ROOT, jobs: int | None = None,
          cell_timeout: float = 60, timeout: float = 600, quick: bool = True,
          progress: bool = True) -> tuple[list[ExerciseGrade], list[str]]:
    """Grade ``submissions`` (notebooks or folders) of ``lesson``.

    Returns the rows of the report, in the order of the submissions and exercises, and
    the list of grader errors (empty when the grader did its job).
    """
    plan = lesson if isinstance(lesson, LessonPlan) else lesson_plan(lesson, root)
    paths = find_submissions(submissions)
    names = student_names(paths, plan.name)
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(paths)))
    options = {"timeout": timeout, "cell_timeout": cell_timeout, "grader_errors": [],
               "env": _kernel_env(quick, jobs)}
    outcomes = {}
    executor = ThreadPoolExecutor(max_workers=jobs)
    try:
        futures = {executor.submit(_grade_one, path, plan, options): n
                   for n, path in enumerate(paths)}
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=len(paths), desc=f"grading {plan.name}", unit="notebook",
                       file=sys.stderr, leave=False)
        for future in as_completed(futures):
            n = futures[future]
            try:
                outcomes[n] = future.result()
            except Exception as error:  # a bug of the grader: report, go on
                options["grader_errors"].append(f"{paths[n]}: {type(error).__name__}: "
                                                f"{error}")
                outcomes[n] = ({}, [])
            if bar is not None:
                bar.update()
        if bar is not None:
            bar.close()
    except BaseException:
        executor.shutdown(wait=False, cancel_futures=True)
        _stop_all()
        raise
    executor.shutdown()
    rows = []
    for n, name in enumerate(names):
        results, notes = outcomes[n]
        rows += _exercise_rows(name, plan, results, notes)
    return rows, options["grader_errors"]


def _stop_all() -> None:
    """Stop every running worker and its kernel (on Ctrl-C)."""
    with _RUNNING_LOCK:
        running = list(_RUNNING)
    for process, folder in running:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except OSError:
            pass
        _kill_kernel(folder)


# --- the reports ---------------------------------------------------------------------------

def _number(value: float) -> str:
    return f"{value:g}"


def _write_atomic(path: Path, write) -> None:
    """Call ``write(file)`` on a temporary file, then move it to ``path`` in one step."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp",
                                             dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def _feedback_markdown(student: str, lesson: str, rows: list[ExerciseGrade]) -> str:
    total = sum(r.points for r in rows)
    maximum = sum(r.max_points for r in rows)
    lines = [f"# {lesson}: feedback for {student}", "",
             f"**Total: {_number(total)} / {_number(maximum)} points**", "",
             "| exercise | points | status |", "|---|---|---|"]
    lines += [f"| {r.exercise} | {_number(r.points)} / {_number(r.max_points)} | {r.status} |"
              for r in rows]
    lines.append("")
    for r in rows:
        lines += [f"## {r.exercise}: {_number(r.points)} / {_number(r.max_points)} "
                  f"({r.status})", "", r.feedback, ""]
    return "\n".join(lines)


def summary_table(rows: list[ExerciseGrade]) -> str:
    """One line per student: total, then each exercise's points (and a status mark)."""
    students = list(dict.fromkeys(r.student for r in rows))
    exercises = list(dict.fromkeys(r.exercise for r in rows))
    short = [re.sub(r"^exercise\s+", "ex", e.split(":")[0], flags=re.I) for e in exercises]
    by = {(r.student, r.exercise): r for r in rows}
    header = ["student", "points"] + short
    table = [header]
    for student in students:
        mine = [by[(student, e)] for e in exercises if (student, e) in by]
        total = sum(r.points for r in mine)
        maximum = sum(r.max_points for r in mine)
        cells = [student, f"{_number(total)}/{_number(maximum)}"]
        for exercise in exercises:
            r = by.get((student, exercise))
            cells.append("" if r is None else _number(r.points) + (
                "" if r.status == "passed" else " " + MARKS.get(r.status, "?")))
        table.append(cells)
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in table]
    used = sorted({r.status for r in rows if r.status != "passed"})
    if used:
        lines.append("marks: " + ", ".join(f"{MARKS.get(s, '?')} = {s}" for s in used))
    return "\n".join(lines)


def write_reports(rows: list[ExerciseGrade], out: Path, lesson: str) -> list[Path]:
    """Write ``out`` (the CSV) and ``feedback/<student>.md`` next to it, atomically."""
    out = Path(out)

    def write_csv(file):
        writer = csv.writer(file)
        writer.writerow(["student", "exercise", "points", "max_points", "status",
                         "feedback"])
        for r in rows:
            writer.writerow([r.student, r.exercise, _number(r.points),
                             _number(r.max_points), r.status, r.feedback])

    written = []
    folder = out.parent / "feedback"
    for student in dict.fromkeys(r.student for r in rows):
        path = folder / f"{student}.md"
        text = _feedback_markdown(student, lesson, [r for r in rows if r.student == student])
        _write_atomic(path, lambda file, text=text: file.write(text))
        written.append(path)
    _write_atomic(out, write_csv)  # last: its presence says the run completed
    return [out] + written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="dltomo grade",
        description="Grade submitted notebooks of one lesson against its exercise checks.")
    parser.add_argument("lesson", help="the lesson, e.g. 01 or 01_radon_fbp")
    parser.add_argument("submissions", nargs="+",
                        help="submitted notebooks, or folders holding them")
    parser.add_argument("--out", type=Path, default=Path("grades.csv"),
                        help="the CSV to write; feedback/ goes next to it "
                             "(default: %(default)s)")
    parser.add_argument("--jobs", "-j", type=int, default=None,
                        help="submissions graded at once (default: the number of CPU cores)")
    parser.add_argument("--cell-timeout", type=float, default=60,
                        help="seconds per cell, answer or check (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=600,
                        help="seconds per submission (default: %(default)s)")
    parser.add_argument("--full", action="store_true",
                        help="run the set-up in full mode (default: COURSE_QUICK=1)")
    parser.add_argument("--root", type=Path, default=REPO_ROOT,
                        help="course repository (default: %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        plan = lesson_plan(args.lesson, args.root)
        rows, errors = grade(plan, args.submissions, jobs=args.jobs,
                             cell_timeout=args.cell_timeout, timeout=args.timeout,
                             quick=not args.full, progress=not args.no_progress)
        written = write_reports(rows, args.out, plan.name)
    except GradeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: nothing written", file=sys.stderr)
        return 130
    print(summary_table(rows))
    n_students = len({r.student for r in rows})
    print(f"\n{n_students} submission(s) graded in {time.monotonic() - started:.0f} s; "
          f"wrote {written[0]} and {len(written) - 1} feedback file(s) in "
          f"{written[0].parent / 'feedback'}")
    for error in errors:
        print(f"grader error: {error}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        sys.exit(_worker(sys.argv[2]))
    sys.exit(main())
