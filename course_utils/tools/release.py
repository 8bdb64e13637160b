"""Make the student notebooks from the instructor's solution files.

Instructor workflow
-------------------
``solutions/NN_slug.py`` (jupytext "percent" format) is the only file you edit by hand.
Each exercise answer sits between two nbgrader marker lines::

    def ramp_filter(n):
        ### BEGIN SOLUTION
        return torch.abs(torch.fft.fftfreq(n))
        ### END SOLUTION

A written answer in a Markdown cell uses the same markers (``# ### BEGIN SOLUTION`` in
the ``.py`` file).  Then run::

    dltomo release            # regenerate every notebook
    dltomo release 03_fbp     # only this lesson
    dltomo release --check    # CI: are the committed notebooks in sync?

which writes, without outputs,

* ``solutions/NN_slug.ipynb``: the full solution, marker lines removed;
* ``lessons/NN_slug.ipynb``: the student version, where each solution region becomes
  ``# YOUR CODE HERE`` and ``raise NotImplementedError("Exercise 2 (...): ...")``
  (or ``*Write your answer here.*`` in Markdown).

Points and grading
------------------
An exercise is everything from a Markdown heading ``### Exercise N: topic`` to the next
such heading: its answer cells (the cells with solution regions) and its check cells (code
cells calling ``cu.checks.<name>(...)`` after an answer cell).  It is worth 1 point unless
a marker line says otherwise, ``### BEGIN SOLUTION (points=2)``; when an exercise has
several regions, declare the points on any one of them (two different declarations in one
exercise are an error).  Both notebooks show the points in the heading,
``### Exercise 1: backprojection (2 points)``, and carry nbgrader cell metadata: answer
cells ``{"nbgrader": {"grade_id": "ex1-answer", "solution": true, ...}}``, check cells
``{"nbgrader": {"grade_id": "ex1-check", "grade": true, "points": 2, ...}}`` (an exercise
with several check cells splits its points evenly between them; one without a check is
graded by hand: its first answer cell carries the points).  ``python -m
course_utils.grade`` uses them to find a learner's answers; nbgrader can use them too.

What the student copies must not show
-------------------------------------
The release refuses (and ``--check`` reports) two kinds of text in the notebooks, each
named by file, cell index and line:

* **the answer elsewhere**: a *distinctive* line of a solution region that the student
  copy still shows outside the region, e.g. a later cell that re-implements the answer.
  A line is distinctive when, without comments and whitespace, it has at least
  ``MIN_DISTINCTIVE`` characters, is not an import, and names something beyond
  ``COMMON_NAMES`` (Python's keywords and built-ins, ``torch``, ``np``, ``self``, ``loss``,
  ``optimizer``...): ``return x``, ``optimizer.zero_grad()`` or ``plt.show()`` repeat
  in every lesson and give nothing away;
* **development notes**, in comments and Markdown of both notebooks: ``TODO``,
  ``FIXME``, ``XXX`` (as capitalised words), ``issue #13`` (or ``PR #13``), and the
  tracker spoken of as a request, ``the issue asks / requires / says ...``, ``the
  issue's ...``, ``per the issue`` (likewise ``the ticket``, ``the brief``).  "The issue
  with FBP is noise" is ordinary prose and passes.

nbgrader
--------
``dltomo release --nbgrader COURSE`` writes ``COURSE/source/NN_slug/NN_slug.ipynb``:
the notebook with the answers *and* the marker lines, and the nbgrader cell metadata,
which is what ``nbgrader generate_assignment NN_slug`` expects in its source folder.

Learners edit ``lessons/*.ipynb`` in place, so a lesson whose cells were edited since
it was generated is never overwritten silently: the command refuses, and with
``--force`` it first copies the file to ``lessons/.backup/NN_slug.<time>.ipynb``.
"""

from __future__ import annotations

import argparse
import builtins
import hashlib
import keyword
import json
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat

__all__ = ["ReleaseError", "Region", "Exercise", "find_regions", "find_exercises",
           "strip_solutions", "remove_markers", "build_notebooks", "nbgrader_source",
           "answer_leaks", "development_notes", "release", "check"]

REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCE_PATTERN = "[0-9][0-9]_*.py"

# Optional text after a marker (``### BEGIN SOLUTION (points=2)``) is kept in
# ``Region.options`` for later use (points per exercise).
BEGIN = re.compile(r"^(?P<indent>\s*)### BEGIN SOLUTION(?:\s+(?P<options>.*?))?\s*$")
END = re.compile(r"^(?P<indent>\s*)### END SOLUTION(?:\s+(?P<options>.*?))?\s*$")
CELL_START = re.compile(r"^\s*#\s*%%")  # the cell marker of jupytext's percent format
HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(?P<title>.+?)(?:\s+#+)?\s*$")
COMMENTED_CELL = re.compile(r"\[(markdown|md|raw)\]")  # cells written as comment lines
POINTS = re.compile(r"^\(?\s*points\s*=\s*(?P<points>\d+(?:\.\d+)?)\s*\)?$")
# ``cu.checks.quiz(...)`` asks a "check your understanding" question: not a graded check.
QUIZ = "quiz"
CHECK_CALL = re.compile(rf"\b(?:cu|course_utils)\.checks\.(?!{QUIZ}\b)(?P<name>\w+)\s*\(")
EXERCISE_NUMBER = re.compile(r"^exercise\s+(?P<number>[0-9A-Za-z]+(?:\.[0-9A-Za-z]+)*)",
                             re.IGNORECASE)
DEFAULT_POINTS = 1
NBGRADER_SCHEMA = 3

# Cell metadata that jupytext or Jupyter add for layout or bookkeeping only.
LAYOUT_METADATA = {"title", "lines_to_next_cell", "lines_to_end_of_cell_marker",
                   "cell_marker", "skipline", "noskipline", "autoscroll", "collapsed",
                   "scrolled", "trusted", "execution", "ExecuteTime"}
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)",
              "language": "python"}
ANSWER_STUB = "*Write your answer here.*"

#: A line of an answer is distinctive (see "What the student copies must not show")
#: with at least this many characters once its comment and whitespace are removed.
MIN_DISTINCTIVE = 20
#: Names that make no line distinctive on their own.
COMMON_NAMES = frozenset(keyword.kwlist) | frozenset(dir(builtins)) | {
    "self", "cls", "super", "torch", "nn", "F", "np", "numpy", "math", "cu", "plt",
    "model", "net", "optimizer", "opt", "loss", "losses", "zero_grad", "backward", "step",
    "item", "no_grad", "train", "eval", "parameters", "forward", "__init__", "shape",
    "append", "show", "x", "y", "z", "i", "j", "k", "n", "a", "b", "out", "result",
    "args", "kwargs", "device", "to", "dtype", "float32", "float64", "_", "lr", "n_iter",
    "epochs", "n_epochs"}
DEVELOPMENT_NOTE = re.compile(
    r"\b(?:TODO|FIXME|XXX)\b"
    r"|(?i:\b(?:issue|pr|pull request)\s*#\s*\d+"
    r"|\bthe\s+(?:issue|ticket|brief)(?:'s\b|\s+(?:asks?|asked|requires?|required"
    r"|wants?|wanted|says?|said|demands?|expects?|expected|specifies|mentions)\b)"
    r"|\b(?:per|see)\s+the\s+(?:issue|ticket|brief)\b)")

#: The first cell of every generated notebook. On Google Colab it fetches the course
#: and makes ``course_utils`` importable; anywhere else it does nothing. ``{url}`` is
#: ``[project.urls] Repository`` of pyproject.toml, so a fork changes it in one place.
COLAB_CELL = """\
# Running on Google Colab? This cell fetches the course and installs `course_utils`.
# Anywhere else (your laptop, JupyterLab, Binder) it does nothing.
import sys

if "google.colab" in sys.modules:
    import subprocess
    from pathlib import Path

    course = Path("/content/course")
    if not course.exists():
        subprocess.run(["git", "clone", "--depth", "1", "{url}", str(course)], check=True)
    # Colab has torch, NumPy, SciPy, scikit-image, matplotlib and ipywidgets already.
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "pydicom"], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-e",
                    str(course)], check=True)
    sys.path.insert(0, str(course))  # the install is seen by new kernels only
    from google.colab import output
    output.enable_custom_widget_manager()  # lets ipywidgets draw on Colab\
"""
COLAB_TAG = "colab-setup"


class ReleaseError(Exception):
    """A solution file cannot be released, or a lesson must not be overwritten."""


@dataclass
class Region:
    """One solution region: lines ``begin`` to ``end`` (1-based, markers included)."""

    begin: int
    end: int
    indent: str      # indentation of the BEGIN marker
    prefix: str      # "# " in Markdown cells of the .py file, "" in code cells
    markdown: bool
    exercise: str    # e.g. "Exercise 2 (the ramp filter)"
    options: str     # text after "### BEGIN SOLUTION", "" if none

    @property
    def points(self) -> int | float | None:
        """The points declared by ``(points=N)`` after the marker, or None."""
        return _parse_points(self.options)


def _parse_points(options: str) -> int | float | None:
    """``"(points=2)"`` -> 2, ``""`` -> None; ValueError for any other text."""
    if not options:
        return None
    match = POINTS.match(options.strip())
    if not match:
        raise ValueError(f"cannot read {options!r} after '### BEGIN SOLUTION': the only "
                         f"option is the exercise's points, e.g. '### BEGIN SOLUTION "
                         f"(points=2)'")
    value = float(match["points"])
    return int(value) if value.is_integer() else value


@dataclass
class Exercise:
    """One graded exercise of a lesson, as located in its generated notebooks.

    Cell indices count the cells of the generated notebooks (the Colab cell is 0); both
    notebooks have the same cells in the same order.
    """

    key: str                 # "ex1": the prefix of the nbgrader grade ids
    title: str               # "Exercise 1: backprojection", without the points
    points: int | float
    heading_cell: int | None
    answer_cells: list[int]
    check_cells: list[int]

    def answer_id(self, n: int) -> str:
        """The nbgrader ``grade_id`` of the exercise's ``n``-th answer cell (0-based)."""
        return f"{self.key}-answer" + (f"-{n + 1}" if n else "")

    def check_id(self, n: int) -> str:
        """The nbgrader ``grade_id`` of the exercise's ``n``-th check cell (0-based)."""
        return f"{self.key}-check" + (f"-{n + 1}" if n else "")

    @property
    def points_label(self) -> str:
        """``"1 point"``, ``"2 points"``, ``"0.5 points"``."""
        return f"{self.points:g} point{'' if self.points == 1 else 's'}"


def _pointer(title: str | None) -> str:
    """``"Exercise 2: the ramp filter"`` -> ``"Exercise 2 (the ramp filter)"``."""
    if not title:
        return "This exercise"
    name, sep, topic = title.partition(":")
    return f"{name.strip()} ({topic.strip()})" if sep and topic.strip() else name.strip()


def find_regions(text: str, filename: str = "<text>") -> list[Region]:
    """Find the solution regions of a percent-format ``.py`` text, checking the markers.

    Raises
    ------
    ReleaseError
        Naming ``filename`` and the 1-based line of an unclosed, unopened or nested
        marker, or of a BEGIN whose END is in another cell.
    """
    regions, open_region = [], None
    commented, exercise, heading = False, None, None
    for number, line in enumerate(text.splitlines(), start=1):
        if CELL_START.match(line):
            if open_region:
                raise ReleaseError(
                    f"{filename}, line {open_region.begin}: '### BEGIN SOLUTION' is not "
                    f"closed before the next cell starts at line {number} (BEGIN and "
                    f"END must be in the same cell)")
            commented = bool(COMMENTED_CELL.search(line))
            continue
        prefix = ""
        if commented and line.startswith("#"):
            prefix = "# " if line.startswith("# ") else "#"
        content = line[len(prefix):]
        if begin := BEGIN.match(content):
            if open_region:
                raise ReleaseError(
                    f"{filename}, line {number}: nested '### BEGIN SOLUTION' (the region "
                    f"opened at line {open_region.begin} is not closed yet)")
            open_region = Region(number, 0, begin["indent"], prefix, commented,
                                 _pointer(exercise or heading), begin["options"] or "")
            try:
                open_region.points
            except ValueError as error:
                raise ReleaseError(f"{filename}, line {number}: {error}") from None
        elif END.match(content):
            if not open_region:
                raise ReleaseError(f"{filename}, line {number}: '### END SOLUTION' "
                                   f"without a '### BEGIN SOLUTION' before it")
            open_region.end = number
            regions.append(open_region)
            open_region = None
        elif commented and (match := HEADING.match(content)):
            heading = match["title"].replace("*", "")  # "**Exercise 1**" counts too
            if heading.lower().startswith("exercise"):
                exercise = heading
    if open_region:
        raise ReleaseError(f"{filename}, line {open_region.begin}: '### BEGIN SOLUTION' "
                           f"is never closed by '### END SOLUTION'")
    return regions


def _exercise_heading(markdown: str) -> str | None:
    """The title of the last "Exercise ..." heading in a Markdown cell, or None."""
    title = None
    for line in markdown.splitlines():
        if (match := HEADING.match(line)):
            heading = match["title"].replace("*", "")
            if heading.lower().startswith("exercise"):
                title = heading
    return title


def find_exercises(text: str, filename: str = "<text>") -> list[Exercise]:
    """The exercises of a percent-format ``.py`` text (see "Points and grading" above).

    Raises
    ------
    ReleaseError
        For a marker error (as :func:`find_regions`) or two different point
        declarations in one exercise.
    """
    find_regions(text, filename)  # checks the markers and the options
    exercises, current, declared = [], None, {}
    for index, cell in enumerate(jupytext.reads(text, fmt="py:percent").cells, start=1):
        if cell.cell_type == "markdown" and (title := _exercise_heading(cell.source)):
            current = Exercise("", title, DEFAULT_POINTS, index, [], [])
        begins = [match for line in cell.source.splitlines()
                  if (match := BEGIN.match(line))]
        if begins:
            if current is None:  # answers without an exercise heading
                current = Exercise("", f"Exercise {len(exercises) + 1}", DEFAULT_POINTS,
                                   None, [], [])
            if not current.answer_cells:
                exercises.append(current)
                declared[id(current)] = set()
            current.answer_cells.append(index)
            declared[id(current)] |= {_parse_points(m["options"] or "") for m in begins}
        elif (cell.cell_type == "code" and current is not None and current.answer_cells
              and CHECK_CALL.search(cell.source)):
            current.check_cells.append(index)
    keys = set()
    for n, exercise in enumerate(exercises, start=1):
        points = declared[id(exercise)] - {None}
        if len(points) > 1:
            raise ReleaseError(f"{filename}: {exercise.title!r} declares different points "
                               f"{sorted(points)}; declare them on one of its regions")
        if points:
            exercise.points = points.pop()
        number = EXERCISE_NUMBER.match(exercise.title)
        key = f"ex{number['number'].replace('.', '-')}" if number else f"ex{n}"
        while key in keys:
            key += "x"
        keys.add(key)
        exercise.key = key
    return exercises


def _grading_metadata(exercises: list[Exercise]) -> dict[int, dict]:
    """The nbgrader metadata of each answer and check cell, by cell index."""
    metadata = {}
    for exercise in exercises:
        for n, index in enumerate(exercise.answer_cells):
            manual = not exercise.check_cells and n == 0  # no check: graded by hand
            metadata[index] = {"grade": manual, "grade_id": exercise.answer_id(n),
                               "locked": False, "schema_version": NBGRADER_SCHEMA,
                               "solution": True, "task": False}
            if manual:
                metadata[index]["points"] = exercise.points
        share = exercise.points / max(len(exercise.check_cells), 1)
        share = int(share) if float(share).is_integer() else round(share, 6)
        for n, index in enumerate(exercise.check_cells):
            metadata[index] = {"grade": True, "grade_id": exercise.check_id(n),
                               "locked": True, "points": share,
                               "schema_version": NBGRADER_SCHEMA, "solution": False,
                               "task": False}
    return metadata


def _with_points(markdown: str, exercise: Exercise) -> str:
    """The heading cell with " (2 points)" after the exercise's heading."""
    lines = markdown.splitlines()
    for n, line in enumerate(lines):
        match = HEADING.match(line)
        if match and match["title"].replace("*", "") == exercise.title:
            if not re.search(r"\(\s*[0-9.]+\s*points?\s*\)\s*$", line):
                lines[n] = f"{line.rstrip()} ({exercise.points_label})"
    return "\n".join(lines)


def strip_solutions(text: str, filename: str = "<text>") -> str:
    """Return the ``.py`` text with every solution region replaced by a stub."""
    lines = text.splitlines()
    for region in reversed(find_regions(text, filename)):
        if region.markdown:
            stub = [region.prefix + region.indent + ANSWER_STUB]
        else:
            message = json.dumps(f"{region.exercise}: replace this line with your code",
                                 ensure_ascii=False)
            stub = [f"{region.indent}# YOUR CODE HERE",
                    f"{region.indent}raise NotImplementedError({message})"]
        lines[region.begin - 1:region.end] = stub
    return "\n".join(lines) + "\n"


def remove_markers(text: str, filename: str = "<text>") -> str:
    """Return the ``.py`` text with the marker lines removed and the answers kept."""
    marker_lines = {n for r in find_regions(text, filename) for n in (r.begin, r.end)}
    kept = [line for n, line in enumerate(text.splitlines(), start=1)
            if n not in marker_lines]
    return "\n".join(kept) + "\n"


def _split_comment(line: str) -> tuple[str, str]:
    """``(code, comment)`` of one line of Python; ``#`` inside a string is code."""
    quote, i = None, 0
    while i < len(line):
        if quote:
            if line[i] == "\\":
                i += 2
                continue
            if line.startswith(quote, i):
                i, quote = i + len(quote), None
                continue
        elif line[i] in "'\"":
            quote = line[i:i + 3] if line[i:i + 3] in ('"""', "'''") else line[i]
            i += len(quote)
            continue
        elif line[i] == "#":
            return line[:i], line[i + 1:]
        i += 1
    return line, ""


def distinctive(line: str, markdown: bool = False) -> str | None:
    """The normalised form of a distinctive answer line, or None for a generic one.

    The form is the line without its comment (in code) and without any whitespace.
    Imports, lines shorter than :data:`MIN_DISTINCTIVE` characters and lines whose names
    are all in :data:`COMMON_NAMES` are not distinctive.
    """
    text = line if markdown else _split_comment(line)[0]
    if not markdown and text.lstrip().startswith(("import ", "from ")):
        return None
    form = "".join(text.split())
    if len(form) < MIN_DISTINCTIVE:
        return None
    if set(re.findall(r"[A-Za-z_]\w*", text)) <= COMMON_NAMES:
        return None
    return form


def _answer_lines(text: str, filename: str) -> list[tuple[Region, str]]:
    """Every line inside a solution region of the ``.py`` text, with its region."""
    lines = text.splitlines()
    return [(region, lines[n][len(region.prefix):])
            for region in find_regions(text, filename)
            for n in range(region.begin, region.end - 1)]


def answer_leaks(text: str, lesson, filename: str = "<text>",
                 name: str = "lessons/<lesson>") -> list[str]:
    """Where the student copy ``lesson`` shows a distinctive line of an answer.

    Parameters
    ----------
    text : str
        The ``.py`` source, with its marker lines.
    lesson : nbformat.NotebookNode
        The student copy built from it.
    filename, name : str
        How the messages name the source and the student copy.

    Returns
    -------
    list of str
        One message per cell and exercise, naming the cell's index and up to three of
        its lines.
    """
    answers = {}
    for region, line in _answer_lines(text, filename):
        if form := distinctive(line, region.markdown):
            answers.setdefault(form, region.exercise)
    found = {}
    for index, cell in enumerate(lesson.cells):
        markdown = cell.cell_type != "code"
        for line in cell.source.splitlines():
            form = distinctive(line, markdown)
            if form in answers:
                found.setdefault((index, answers[form]), []).append(line.strip())
    messages = []
    for (index, exercise), lines in found.items():
        shown = "; ".join(f"`{line}`" for line in lines[:3])
        more = f" and {len(lines) - 3} more line(s)" if len(lines) > 3 else ""
        messages.append(f"{name}, cell {index}: shows the answer of {exercise}: "
                        f"{shown}{more}")
    return messages


def development_notes(nb, name: str = "<notebook>") -> list[str]:
    """Development notes (``TODO``, ``issue #13``, "the issue asks"...) in ``nb``.

    Code cells are searched in their comments, Markdown and raw cells in all their text.
    Each note is reported with the cell index and the line.
    """
    messages = []
    for index, cell in enumerate(nb.cells):
        for line in cell.source.splitlines():
            text = line if cell.cell_type != "code" else _split_comment(line)[1]
            if DEVELOPMENT_NOTE.search(text):
                messages.append(f"{name}, cell {index}: development note `{line.strip()}`")
    return messages


def student_copy_problems(source: Path, notebooks: dict) -> list[str]:
    """The answer leaks and development notes of one lesson's generated notebooks."""
    text = source.read_text(encoding="utf-8")
    stem = source.stem
    problems = answer_leaks(text, notebooks["lessons"], f"solutions/{source.name}",
                            f"lessons/{stem}.ipynb")
    for folder in ("lessons", "solutions"):
        problems += development_notes(notebooks[folder], f"{folder}/{stem}.ipynb")
    return problems


def cells_sha256(nb) -> str:
    """Hash of the cells' (type, source) pairs: running a notebook does not change it."""
    cells = [[cell.cell_type, cell.source] for cell in nb.cells]
    return hashlib.sha256(json.dumps(cells, ensure_ascii=False).encode()).hexdigest()


def repository_url(root=REPO_ROOT) -> str:
    """The course's public repository, ``[project.urls] Repository`` of pyproject.toml."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    pyproject = Path(root) / "pyproject.toml"
    try:
        return tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["urls"][
            "Repository"]
    except (OSError, KeyError) as error:
        raise ReleaseError(f"{pyproject}: cannot read [project.urls] Repository, which "
                           f"the Colab set-up cell needs ({error!r})") from None


def colab_cell(url: str):
    """The Colab set-up cell for a course published at ``url``."""
    return nbformat.v4.new_code_cell(COLAB_CELL.replace("{url}", url), id="colab-setup",
                                     metadata={"tags": [COLAB_TAG]})


def _to_notebook(text: str, source_name: str, lesson: bool, url: str,
                 exercises: list[Exercise] = ()):
    """Convert percent-format text to a clean, deterministic notebook.

    ``exercises`` (from :func:`find_exercises` on the text with markers) adds the points
    to the exercise headings and the nbgrader metadata to answer and check cells.
    """
    cells, seen_ids = [colab_cell(url)], {"colab-setup"}
    grading = _grading_metadata(exercises)
    headings = {e.heading_cell: e for e in exercises if e.heading_cell is not None}
    for index, cell in enumerate(jupytext.reads(text, fmt="py:percent").cells, start=1):
        metadata = {k: v for k, v in cell.metadata.items() if k not in LAYOUT_METADATA}
        if index in grading:
            metadata["nbgrader"] = grading[index]
        if index in headings:
            cell.source = _with_points(cell.source, headings[index])
        # Stable cell ids: derived from the content, so that editing one cell changes
        # one id only (a readable git diff), made unique by counting duplicates.
        digest = hashlib.sha256(f"{cell.cell_type}\n{cell.source}".encode()).hexdigest()
        cell_id, n = digest[:8], 1
        while cell_id in seen_ids:
            cell_id, n = f"{digest[:8]}-{n}", n + 1
        seen_ids.add(cell_id)
        make = {"code": nbformat.v4.new_code_cell, "raw": nbformat.v4.new_raw_cell,
                "markdown": nbformat.v4.new_markdown_cell}[cell.cell_type]
        cells.append(make(cell.source, metadata=metadata, id=cell_id))
    nb = nbformat.v4.new_notebook(cells=cells, metadata={
        "kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"},
        "course": {"generated_from": source_name,
                   "generated_by": "dltomo release"}})
    if lesson:
        nb.metadata["course"]["generated_sha256"] = cells_sha256(nb)
    return nb


def build_notebooks(source: Path) -> dict[str, nbformat.NotebookNode]:
    """The solution and lesson notebooks of ``solutions/NN_slug.py``, keyed by folder."""
    text = source.read_text(encoding="utf-8")
    name = f"solutions/{source.name}"
    url = repository_url(source.resolve().parent.parent)
    exercises = find_exercises(text, name)
    notebooks = {"solutions": _to_notebook(remove_markers(text, name), name, False, url,
                                           exercises),
                 "lessons": _to_notebook(strip_solutions(text, name), name, True, url,
                                         exercises)}
    marked = len(jupytext.reads(text, fmt="py:percent").cells) + 1
    for folder, nb in notebooks.items():
        if len(nb.cells) != marked:  # the cells must line up for the grading metadata
            raise ReleaseError(f"{name}: the {folder} notebook has {len(nb.cells)} cells, "
                               f"the source {marked}; does a solution region make up a "
                               f"whole cell?")
    return notebooks


def nbgrader_source(source: Path) -> nbformat.NotebookNode:
    """The notebook that nbgrader's ``generate_assignment`` takes as its source.

    Like ``solutions/NN_slug.ipynb`` (answers and nbgrader cell metadata), but with the
    ``### BEGIN SOLUTION`` / ``### END SOLUTION`` lines kept, so that nbgrader replaces
    only the answer regions, not whole cells, in the copy it releases.
    """
    text = source.read_text(encoding="utf-8")
    name = f"solutions/{source.name}"
    url = repository_url(source.resolve().parent.parent)
    return _to_notebook(text, name, False, url, find_exercises(text, name))


def _as_text(nb) -> str:
    return nbformat.writes(nb, version=4) + "\n"


def _sources(root: Path, names=None) -> list[Path]:
    sources = sorted((root / "solutions").glob(SOURCE_PATTERN))
    if names is None:
        return sources
    chosen = []
    for name in names:
        stem = Path(name).stem
        matches = [s for s in sources if s.stem == stem or s.stem.startswith(stem + "_")]
        if len(matches) != 1:
            raise ReleaseError(f"{name!r} names {len(matches)} of the solution files "
                               f"{[s.name for s in sources]}; give one of them")
        chosen.append(matches[0])
    return chosen


def _learner_edited(path: Path, new_nb) -> bool:
    """Whether the lesson at ``path`` holds cell edits that regenerating would lose."""
    try:
        old = nbformat.read(path, as_version=4)
    except Exception:  # unreadable: we cannot tell, so we do not overwrite it
        return True
    stored = old.metadata.get("course", {}).get("generated_sha256")
    if stored is None:  # older file without a hash: only a difference counts
        return cells_sha256(old) != cells_sha256(new_nb)
    return cells_sha256(old) != stored


def release(root=REPO_ROOT, names=None, force=False, log=print) -> list[Path]:
    """Regenerate the notebooks of ``root/solutions/*.py`` and return the paths written.

    Nothing is written if a marker error is found, if a student copy would show an
    answer or a notebook a development note (:func:`student_copy_problems`), or if a
    lesson was edited by a learner (unless ``force``, which backs that lesson up to
    ``lessons/.backup/`` first).  Files whose bytes would not change are left untouched.
    """
    root = Path(root)
    outputs, problems = {}, []
    for source in _sources(root, names):
        notebooks = build_notebooks(source)
        problems += student_copy_problems(source, notebooks)
        for folder, nb in notebooks.items():
            outputs[root / folder / f"{source.stem}.ipynb"] = nb
    if problems:
        raise ReleaseError("nothing written: fix these in solutions/*.py first\n"
                           + "\n".join(problems))
    edited = [path for path, nb in outputs.items() if path.parent.name == "lessons"
              and path.exists() and _learner_edited(path, nb)]
    if edited and not force:
        raise ReleaseError("\n".join(
            f"{p.relative_to(root)}: not overwritten, its cells were edited since it "
            f"was generated (a learner's work?). Save that work elsewhere, or rerun "
            f"with --force to back it up to lessons/.backup/ and regenerate."
            for p in edited))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for path in edited:
        backup = root / "lessons" / ".backup" / f"{path.stem}.{stamp}.ipynb"
        backup.parent.mkdir(parents=True, exist_ok=True)
        n = 1
        while backup.exists():
            backup, n = backup.with_name(f"{path.stem}.{stamp}-{n}.ipynb"), n + 1
        shutil.copy2(path, backup)
        log(f"backed up the edited {path.relative_to(root)} to {backup.relative_to(root)}")
    written = []
    for path, nb in outputs.items():
        text = _as_text(nb)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
        log(f"wrote {path.relative_to(root)}")
    return written


def _summary(nb) -> dict:
    """What must agree between a committed notebook and a generated one."""
    return {"metadata": {k: nb.metadata.get(k) for k in ("kernelspec", "course")},
            "language": nb.metadata.get("language_info", {}).get("name"),
            "cells": [(c.cell_type, c.source, dict(c.metadata)) for c in nb.cells]}


def _difference(path: Path, expected) -> str | None:
    """A one-line reason why the notebook at ``path`` is not ``expected``, or None."""
    if not path.exists():
        return "missing"
    try:
        got = nbformat.read(path, as_version=4)
    except Exception as error:
        return f"cannot be read ({error.__class__.__name__})"
    if any(c.get("outputs") or c.get("execution_count") for c in got.cells):
        return "has outputs or execution counts"
    old, new = _summary(got), _summary(expected)
    if old == new:
        return None
    if len(old["cells"]) != len(new["cells"]):
        return f"has {len(old['cells'])} cells, the source gives {len(new['cells'])}"
    for index, (a, b) in enumerate(zip(old["cells"], new["cells"])):
        if a != b:
            return f"cell {index} differs from the source"
    return "notebook metadata differs from the generated one"


def check(root=REPO_ROOT, names=None) -> list[str]:
    """List every generated notebook that is missing, out of date, or an orphan, and
    every answer leak and development note (:func:`student_copy_problems`)."""
    root = Path(root)
    problems, expected_paths = [], set()
    for source in _sources(root, names):
        notebooks = build_notebooks(source)
        problems += student_copy_problems(source, notebooks)
        for folder, nb in notebooks.items():
            path = root / folder / f"{source.stem}.ipynb"
            expected_paths.add(path)
            if reason := _difference(path, nb):
                problems.append(f"{folder}/{path.name}: {reason}")
    if names is None:
        for folder in ("solutions", "lessons"):
            for path in sorted((root / folder).glob("*.ipynb")):
                if path not in expected_paths:
                    problems.append(f"{folder}/{path.name}: orphan, no solutions/"
                                    f"{path.stem}.py to generate it from")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="dltomo release",
        description="Generate lessons/*.ipynb and solutions/*.ipynb from solutions/*.py.")
    parser.add_argument("names", nargs="*", help="lessons to release, e.g. 03_fbp or 03 "
                        "(default: all)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true",
                      help="write nothing; exit 1 if a notebook is out of sync")
    mode.add_argument("--force", action="store_true",
                      help="overwrite lessons edited by a learner, after a backup")
    mode.add_argument("--nbgrader", type=Path, metavar="COURSE",
                      help="write the nbgrader source notebooks, with the answers and "
                      "their markers, to COURSE/source/NN_slug/NN_slug.ipynb")
    parser.add_argument("--root", type=Path, default=REPO_ROOT,
                        help="course repository (default: %(default)s)")
    args = parser.parse_args(argv)
    names = args.names or None
    try:
        if args.check:
            problems = check(args.root, names)
            for problem in problems:
                print(problem)
            if problems:
                print(f"{len(problems)} problem(s). Fix answers shown and development "
                      f"notes in solutions/*.py; `dltomo release` regenerates notebooks "
                      f"out of sync.")
                return 1
            print(f"All {len(_sources(args.root, names))} lesson(s) are in sync with "
                  f"their solutions/*.py sources.")
            return 0
        if args.nbgrader:
            for source in _sources(args.root, names):
                path = args.nbgrader / "source" / source.stem / f"{source.stem}.ipynb"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(_as_text(nbgrader_source(source)), encoding="utf-8")
                print(f"wrote {path}")
            return 0
        written = release(args.root, names, force=args.force)
        if not written:
            print("Nothing to do: every notebook is up to date.")
    except ReleaseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
