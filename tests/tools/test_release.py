"""Tests of `dltomo release` (solutions/*.py -> lessons and solutions)."""

import json
from pathlib import Path

import nbformat
import pytest

from course_utils.tools import release as rel

DEMO = '''\
# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # A demo lesson
#
# ### Exercise 1: doubling things
#
# Write `double(x)`.

# %%
import math


def double(x):
    """Return 2 x."""
    if x is None:
        ### BEGIN SOLUTION
        return None
        ### END SOLUTION
    ### BEGIN SOLUTION
    y = 2 * x
    return y
    ### END SOLUTION


# %%
assert math.isfinite(1.0)

# %% [markdown]
# ## Exercise 2: a constant

# %%
### BEGIN SOLUTION (points=2)
c = 3
### END SOLUTION
answer = c + 1

# %% [markdown]
# Why does this work? Explain in one sentence.
#
# ### BEGIN SOLUTION
# Because **three plus one** is four.
# ### END SOLUTION
'''


URL = "https://example.org/our/course"


def new_course(root):
    """An empty fake course: a solutions folder and a pyproject with the course's URL."""
    (root / "solutions").mkdir()
    (root / "pyproject.toml").write_text(f'[project]\nname = "demo"\n'
                                         f'[project.urls]\nRepository = "{URL}"\n')


@pytest.fixture
def course(tmp_path):
    """A fake course with one released lesson."""
    new_course(tmp_path)
    (tmp_path / "solutions" / "01_demo.py").write_text(DEMO)
    rel.release(tmp_path, log=lambda message: None)
    return tmp_path


def read(course, folder, name="01_demo"):
    return nbformat.read(course / folder / f"{name}.ipynb", as_version=4)


def code_of(nb):
    return "\n".join(c.source for c in nb.cells if c.cell_type == "code")


def quiet(*args, **kwargs):
    return rel.release(*args, log=lambda message: None, **kwargs)


# --- what is generated --------------------------------------------------------------------

def test_lesson_has_stubs_at_the_marker_indentation(course):
    code = code_of(read(course, "lessons"))
    pointer = '"Exercise 1 (doubling things): replace this line with your code"'
    assert f"        # YOUR CODE HERE\n        raise NotImplementedError({pointer})" in code
    assert f"    # YOUR CODE HERE\n    raise NotImplementedError({pointer})" in code
    assert ('# YOUR CODE HERE\nraise NotImplementedError("Exercise 2 (a constant): '
            'replace this line with your code")\nanswer = c + 1') in code
    assert "BEGIN SOLUTION" not in code and "y = 2 * x" not in code and "c = 3" not in code


def test_lesson_function_raises_with_the_pointer(course):
    namespace = {}
    function_cell = next(c for c in read(course, "lessons").cells if "def double" in c.source)
    exec(function_cell.source, namespace)
    with pytest.raises(NotImplementedError, match=r"Exercise 1 \(doubling things\)"):
        namespace["double"](3)


def test_markdown_answer_is_replaced(course):
    lesson, solution = read(course, "lessons"), read(course, "solutions")
    assert lesson.cells[-1].source.endswith("one sentence.\n\n*Write your answer here.*")
    assert solution.cells[-1].source.endswith("\n\nBecause **three plus one** is four.")


def test_solution_notebook_runs_and_has_no_markers(course):
    solution = read(course, "solutions")
    assert all("SOLUTION" not in cell.source for cell in solution.cells)
    namespace = {}
    exec(code_of(solution), namespace)
    assert namespace["double"](3) == 6 and namespace["double"](None) is None
    assert namespace["answer"] == 4


def test_notebooks_are_clean(course):
    for folder in ("lessons", "solutions"):
        nb = read(course, folder)
        nbformat.validate(nb)
        assert nb.metadata.kernelspec == {"name": "python3", "language": "python",
                                          "display_name": "Python 3 (ipykernel)"}
        assert nb.metadata.language_info["name"] == "python"
        assert "jupytext" not in nb.metadata
        for cell in nb.cells:
            assert not cell.get("outputs") and cell.get("execution_count") is None
            assert "lines_to_next_cell" not in cell.metadata
    assert "generated_sha256" in read(course, "lessons").metadata["course"]


def test_release_is_byte_deterministic(course, tmp_path_factory):
    other = tmp_path_factory.mktemp("again")
    new_course(other)
    (other / "solutions" / "01_demo.py").write_text(DEMO)
    quiet(other)
    for folder in ("lessons", "solutions"):
        path = Path(folder) / "01_demo.ipynb"
        assert (course / path).read_bytes() == (other / path).read_bytes()
    assert quiet(course) == []  # nothing changed, nothing rewritten


def test_options_after_the_marker_are_kept():
    regions = rel.find_regions(DEMO)
    assert [r.options for r in regions] == ["", "", "(points=2)", ""]
    assert [r.exercise for r in regions][2] == "Exercise 2 (a constant)"


def test_pointer_without_an_exercise_heading():
    text = "# %%\nx = 1\n### BEGIN SOLUTION\ny = 2\n### END SOLUTION\n"
    assert 'raise NotImplementedError("This exercise: replace' in rel.strip_solutions(text)


# --- marker errors name the file and the line ---------------------------------------------

@pytest.mark.parametrize("body, line, words", [
    ("# %%\nx = 1\n### BEGIN SOLUTION\ny = 2\n", 3, "never closed"),
    ("# %%\nx = 1\n### END SOLUTION\n", 3, "without a '### BEGIN SOLUTION'"),
    ("# %%\n### BEGIN SOLUTION\nx = 1\n    ### BEGIN SOLUTION\n### END SOLUTION\n", 4,
     "nested"),
    ("# %%\n### BEGIN SOLUTION\nx = 1\n\n# %%\n### END SOLUTION\n", 2, "same cell"),
])
def test_marker_errors(tmp_path, body, line, words):
    new_course(tmp_path)
    (tmp_path / "solutions" / "02_bad.py").write_text(body)
    with pytest.raises(rel.ReleaseError, match=f"solutions/02_bad.py, line {line}:") as info:
        quiet(tmp_path)
    assert words in str(info.value)
    assert not (tmp_path / "lessons").exists()  # nothing written


# --- --check ---------------------------------------------------------------------------------

def test_check_passes_when_in_sync(course, capsys):
    assert rel.check(course) == []
    assert rel.main(["--check", "--root", str(course)]) == 0
    assert "in sync" in capsys.readouterr().out


def test_check_ignores_formatting(course):
    path = course / "solutions" / "01_demo.ipynb"
    path.write_text(json.dumps(json.loads(path.read_text()), indent=4))
    assert rel.check(course) == []


def test_check_finds_drift_missing_and_orphans(course, capsys):
    source = course / "solutions" / "01_demo.py"
    source.write_text(DEMO.replace("y = 2 * x", "y = x + x"))
    (course / "lessons" / "01_demo.ipynb").unlink()
    (course / "lessons" / "07_gone.ipynb").write_text("{}")
    problems = rel.check(course)
    assert problems == ["solutions/01_demo.ipynb: cell 2 differs from the source",
                        "lessons/01_demo.ipynb: missing",
                        "lessons/07_gone.ipynb: orphan, no solutions/07_gone.py to "
                        "generate it from"]
    assert rel.main(["--check", "--root", str(course)]) == 1
    out = capsys.readouterr().out
    assert all(problem in out for problem in problems)


def test_check_writes_nothing(course):
    (course / "solutions" / "01_demo.py").write_text(DEMO.replace("c = 3", "c = 4"))
    before = (course / "lessons" / "01_demo.ipynb").read_bytes()
    assert rel.check(course)
    assert (course / "lessons" / "01_demo.ipynb").read_bytes() == before


# --- learners' work is never destroyed -----------------------------------------------------

def edit_lesson(course, change):
    path = course / "lessons" / "01_demo.ipynb"
    nb = nbformat.read(path, as_version=4)
    change(nb)
    nbformat.write(nb, path)
    return path


def learner_answers(nb):
    cell = next(c for c in nb.cells if "def double" in c.source)
    cell.source = cell.source.replace('raise NotImplementedError(', 'return 2 * x  # (')


def test_edited_lesson_is_not_overwritten(course, capsys):
    lesson = edit_lesson(course, learner_answers)
    edited = lesson.read_bytes()
    (course / "solutions" / "01_demo.py").write_text(DEMO.replace("c = 3", "c = 4"))
    with pytest.raises(rel.ReleaseError, match="lessons/01_demo.ipynb: not overwritten"):
        quiet(course)
    assert lesson.read_bytes() == edited
    assert rel.main(["--root", str(course)]) == 1
    assert "lessons/01_demo.ipynb" in capsys.readouterr().err
    assert lesson.read_bytes() == edited


def test_force_backs_up_the_edited_lesson(course, capsys):
    lesson = edit_lesson(course, learner_answers)
    edited = lesson.read_bytes()
    assert rel.main(["--force", "--root", str(course)]) == 0
    backups = list((course / "lessons" / ".backup").glob("01_demo.*.ipynb"))
    assert len(backups) == 1 and backups[0].read_bytes() == edited
    assert "backed up" in capsys.readouterr().out
    assert rel.check(course) == []  # the lesson is the generated one again


def test_running_a_lesson_is_not_an_edit(course):
    def run(nb):
        for n, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
            cell.execution_count = n + 1
            cell.outputs = [nbformat.v4.new_output("stream", text="hello\n")]
        nb.metadata.language_info["version"] = "3.11.2"

    edit_lesson(course, run)
    (course / "solutions" / "01_demo.py").write_text(DEMO.replace("c = 3", "c = 4"))
    assert course / "lessons" / "01_demo.ipynb" in quiet(course)


def test_lesson_without_stored_hash(course):
    def forget_hash(nb):
        del nb.metadata["course"]["generated_sha256"]

    edit_lesson(course, forget_hash)
    quiet(course)  # same content as generated: may be overwritten
    edit_lesson(course, forget_hash)
    edit_lesson(course, learner_answers)
    with pytest.raises(rel.ReleaseError, match="not overwritten"):
        quiet(course)


def test_release_only_the_named_lesson(course):
    (course / "solutions" / "02_more.py").write_text("# %%\nx = 1\n")
    assert quiet(course, ["02"]) == [course / "solutions" / "02_more.ipynb",
                                     course / "lessons" / "02_more.ipynb"]
    with pytest.raises(rel.ReleaseError, match="names 0 of the solution files"):
        quiet(course, ["03_nothing"])


# --- the course itself ---------------------------------------------------------------------

def test_generated_notebooks_of_the_course_are_in_sync():
    """Fails when lessons/ or solutions/*.ipynb drift from solutions/*.py.

    Fix: run `dltomo release` and commit the regenerated notebooks.
    """
    assert rel.check(rel.REPO_ROOT) == []


# --- the Colab set-up cell -------------------------------------------------------------------

@pytest.mark.parametrize("folder", ["lessons", "solutions"])
def test_first_cell_sets_up_colab(course, folder):
    first = read(course, folder).cells[0]
    assert first.cell_type == "code" and first.metadata["tags"] == [rel.COLAB_TAG]
    assert f'"{URL}"' in first.source and '"google.colab" in sys.modules' in first.source
    compile(first.source, "<colab cell>", "exec")


def test_colab_cell_does_nothing_elsewhere(monkeypatch):
    import sys
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    path_before, namespace = list(sys.path), {}
    exec(rel.colab_cell(URL).source, namespace)
    assert sys.path == path_before and "course" not in namespace


def test_missing_repository_url_is_a_clear_error(tmp_path):
    (tmp_path / "solutions").mkdir()
    (tmp_path / "solutions" / "01_demo.py").write_text(DEMO)
    with pytest.raises(rel.ReleaseError, match=r"\[project.urls\] Repository"):
        quiet(tmp_path)


def test_every_course_notebook_starts_with_the_colab_cell():
    url = rel.repository_url()
    for path in sorted(rel.REPO_ROOT.glob("*/[0-9][0-9]_*.ipynb")):
        first = nbformat.read(path, as_version=4).cells[0]
        assert first.metadata.get("tags") == [rel.COLAB_TAG], path
        assert url in first.source, path


# --- points and nbgrader metadata --------------------------------------------------------------

GRADED = '''\
# %% [markdown]
# ### Exercise 1: squares
#
# Write `square(x)`.

# %%
def square(x):
    ### BEGIN SOLUTION (points=3)
    return x * x
    ### END SOLUTION


# %%
cu.checks.square(square);

# %% [markdown]
# ### Exercise 2: cubes

# %%
def cube(x):
    ### BEGIN SOLUTION
    return x ** 3
    ### END SOLUTION


# %%
print(cube(2))

# %%
cu.checks.cube(cube)
'''


@pytest.fixture
def graded_course(tmp_path):
    new_course(tmp_path)
    (tmp_path / "solutions" / "02_graded.py").write_text(GRADED)
    quiet(tmp_path)
    return tmp_path


def nbgrader(cell):
    return cell.metadata.get("nbgrader")


def test_find_exercises():
    exercises = rel.find_exercises(GRADED)
    assert [(e.key, e.title, e.points, e.heading_cell, e.answer_cells, e.check_cells)
            for e in exercises] == [("ex1", "Exercise 1: squares", 3, 1, [2], [3]),
                                    ("ex2", "Exercise 2: cubes", 1, 4, [5], [7])]


@pytest.mark.parametrize("folder", ["lessons", "solutions"])
def test_points_and_nbgrader_metadata(graded_course, folder):
    cells = read(graded_course, folder, "02_graded").cells
    assert cells[1].source.startswith("### Exercise 1: squares (3 points)\n")
    assert cells[4].source == "### Exercise 2: cubes (1 point)"
    assert nbgrader(cells[2]) == {"grade": False, "grade_id": "ex1-answer", "locked": False,
                                  "schema_version": 3, "solution": True, "task": False}
    assert nbgrader(cells[3]) == {"grade": True, "grade_id": "ex1-check", "locked": True,
                                  "points": 3, "schema_version": 3, "solution": False,
                                  "task": False}
    assert nbgrader(cells[7])["points"] == 1 and nbgrader(cells[7])["grade_id"] == "ex2-check"
    assert nbgrader(cells[6]) is None          # print(cube(2)) is no check
    assert [i for i, c in enumerate(cells) if nbgrader(c)] == [2, 3, 5, 7]


def test_stub_pointer_has_no_points(graded_course):
    code = code_of(read(graded_course, "lessons", "02_graded"))
    assert 'NotImplementedError("Exercise 1 (squares): replace this line' in code


def test_exercise_without_check_is_graded_by_hand(course):
    cells = read(course, "lessons").cells
    double = next(c for c in cells if "def double" in c.source)
    assert nbgrader(double)["grade"] is True and nbgrader(double)["points"] == 1
    constant = next(c for c in cells if "answer = c + 1" in c.source)
    assert nbgrader(constant)["grade_id"] == "ex2-answer"
    assert nbgrader(constant)["points"] == 2  # (points=2) on its code region
    assert nbgrader(cells[-1])["grade_id"] == "ex2-answer-2"  # the written answer
    assert any(c.source == "## Exercise 2: a constant (2 points)" for c in cells)


def test_conflicting_points_are_an_error(tmp_path):
    new_course(tmp_path)
    source = DEMO.replace("        ### BEGIN SOLUTION\n        return None",
                          "        ### BEGIN SOLUTION (points=1)\n        return None")
    source = source.replace("    ### BEGIN SOLUTION\n    y = 2", "    ### BEGIN SOLUTION "
                            "(points=4)\n    y = 2")
    (tmp_path / "solutions" / "01_demo.py").write_text(source)
    with pytest.raises(rel.ReleaseError, match="different points"):
        quiet(tmp_path)


@pytest.mark.parametrize("options", ["(pionts=2)", "(points=-1)", "2 points"])
def test_unreadable_points_are_an_error(tmp_path, options):
    new_course(tmp_path)
    (tmp_path / "solutions" / "01_demo.py").write_text(
        DEMO.replace("### BEGIN SOLUTION (points=2)", f"### BEGIN SOLUTION {options}"))
    with pytest.raises(rel.ReleaseError, match=r"01_demo.py, line 37: cannot read"):
        quiet(tmp_path)


def test_course_notebooks_declare_their_points():
    """Every checked exercise of lessons 01-05 has its points in the heading and metadata."""
    for source in rel._sources(rel.REPO_ROOT, ["01", "02", "03", "04", "05"]):
        exercises = rel.find_exercises(source.read_text(encoding="utf-8"), source.name)
        assert exercises and all(e.check_cells for e in exercises), source
        nb = nbformat.read(rel.REPO_ROOT / "lessons" / f"{source.stem}.ipynb", as_version=4)
        for e in exercises:
            assert f"({e.points_label})" in nb.cells[e.heading_cell].source
            assert sum(nb.cells[i].metadata["nbgrader"]["points"]
                       for i in e.check_cells) == e.points


# --- quiz questions are not checks ----------------------------------------------------------

def test_a_quiz_after_the_last_check_is_neither_a_check_nor_graded(tmp_path):
    new_course(tmp_path)
    quiz = ('\n# %% [markdown]\n# ## Check your understanding\n\n'
            '# %%\ncu.checks.quiz("Which?", ["a", "b"], answer=1, explain="b.")\n')
    (tmp_path / "solutions" / "02_graded.py").write_text(GRADED + quiz)
    quiet(tmp_path)
    assert [e.check_cells for e in rel.find_exercises(GRADED + quiz)] == [[3], [7]]
    cells = read(tmp_path, "solutions", "02_graded").cells
    assert "cu.checks.quiz" in cells[-1].source and nbgrader(cells[-1]) is None
    assert sum(nbgrader(c).get("points", 0) for c in cells if nbgrader(c)) == 3 + 1


# --- the student copies must not show the answers ---------------------------------------------

LEAKY = '''\
# %% [markdown]
# ### Exercise 1: the filtered sinogram

# %%
import torch


def filtered(sinogram, ramp):
    ### BEGIN SOLUTION
    spectrum = torch.fft.rfft(sinogram, dim=-1)  # along the detector
    return torch.fft.irfft(spectrum * ramp, n=sinogram.shape[-1], dim=-1)
    ### END SOLUTION


# %%
cu.checks.filtered(filtered);

# %% [markdown]
# ### Exercise 2: training

# %%
def train(model, optimizer, data):
    ### BEGIN SOLUTION
    for x, y in data:
        loss = ((model(x) - y) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model
    ### END SOLUTION


# %%
cu.checks.train(train);

# %% [markdown]
# Now the course's version, used below.

# %%
import torch


def course_filter(sinogram, ramp):
    spectrum = torch.fft.rfft(sinogram,dim=-1)
    return torch.fft.irfft(spectrum*ramp, n=sinogram.shape[-1], dim=-1)  # as above


def course_training(model, optimizer, data):
    for x, y in data:
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model
'''


def test_an_answer_reimplemented_in_a_later_cell_is_reported_with_cell_and_lines(tmp_path):
    new_course(tmp_path)
    (tmp_path / "solutions" / "01_leaky.py").write_text(LEAKY)
    with pytest.raises(rel.ReleaseError) as info:
        quiet(tmp_path)
    message = str(info.value)
    assert not (tmp_path / "lessons").exists()  # nothing written
    # Whitespace and comments do not hide the copy; the generic training lines (loop,
    # zero_grad, backward, step, return) of Exercise 2 are not reported.
    assert message.splitlines()[1:] == [
        "lessons/01_leaky.ipynb, cell 8: shows the answer of Exercise 1 (the filtered "
        "sinogram): `spectrum = torch.fft.rfft(sinogram,dim=-1)`; "
        "`return torch.fft.irfft(spectrum*ramp, n=sinogram.shape[-1], dim=-1)  # as above`"]
    assert rel.check(tmp_path)[0] == message.splitlines()[1]


def test_the_answer_in_a_markdown_cell_is_reported_too():
    text = DEMO.replace("# Because **three plus one** is four.",
                        "# Because three plus one is four, whatever the base.")
    text += ("\n# %% [markdown]\n# Recall:\n#\n"
             "# Because three  plus one is four, whatever the base.\n")
    leaks = rel.answer_leaks(text, _lesson_of(text), name="lessons/01_demo.ipynb")
    assert len(leaks) == 1 and "cell 7" in leaks[0] and "Exercise 2" in leaks[0]


def _lesson_of(text):
    return rel._to_notebook(rel.strip_solutions(text), "demo", True, URL,
                            rel.find_exercises(text))


@pytest.mark.parametrize("line, distinctive", [
    ("    spectrum = torch.fft.rfft(sinogram, dim=-1)", True),
    ("kernel = torch.exp(-grid ** 2 / (2 * sigma ** 2))  # the Gaussian", True),
    ("    return x", False),
    ("    pass", False),
    ("from course_utils.operators import RadonTransform", False),
    ("import torch.nn.functional as F", False),
    ("    )", False),
    ("", False),
    ("        optimizer.zero_grad()", False),
    ("    for _ in range(n_iter):", False),
    ("    return super().forward(x, *args, **kwargs)", False),
    ("# spectrum = torch.fft.rfft(sinogram, dim=-1)", False),    # a comment only
    ('print("# spectrum = torch.fft.rfft(sinogram)")', True),   # '#' inside a string
])
def test_distinctive_lines(line, distinctive):
    assert (rel.distinctive(line) is not None) == distinctive


def test_answers_of_the_course_do_not_match_the_other_lessons():
    """No false alarm: no lesson's answers are 'found' in another lesson's notebooks."""
    sources = rel._sources(rel.REPO_ROOT)
    notebooks = {s: rel.build_notebooks(s) for s in sources}
    found = [leak for s in sources for t in sources if t != s
             for folder in ("lessons", "solutions")
             for leak in rel.answer_leaks(s.read_text(encoding="utf-8"),
                                          notebooks[t][folder], s.name, t.name)]
    assert found == []


@pytest.mark.parametrize("note", [
    "# the issue asks for 2 dB; we see 6.6",
    "# the issue's requirement",
    "x = 1  # TODO: a larger grid",
    "# FIXME wrong sign",
    "# XXX",
    "# see issue #13",
    "# as in PR #7",
    "# per the brief, three layers",
])
def test_development_notes_are_rejected_in_comments_and_markdown(tmp_path, note):
    new_course(tmp_path)
    for cell in ("# %%\n" + note + "\n", "# %% [markdown]\n# Text " + note.lstrip("# ") + "\n"):
        (tmp_path / "solutions" / "01_demo.py").write_text(DEMO + "\n" + cell)
        with pytest.raises(rel.ReleaseError, match="development note") as info:
            quiet(tmp_path)
        lines = info.value.args[0].splitlines()[1:]
        assert [line.split(",")[0] for line in lines] == ["lessons/01_demo.ipynb",
                                                          "solutions/01_demo.ipynb"]
        assert all(line.startswith(f"{line.split(',')[0]}, cell 7: development note `")
                   for line in lines)


@pytest.mark.parametrize("text", [
    "# %% [markdown]\n# The issue with FBP is noise: to do better, regularise.\n",
    "# %%\nlabel = 'TODO list'  # not a note: the word is in a string\n",
    "# %%\nissues = 13  # issues of a journal\n",
    "# %% [markdown]\n# A todo list, xxx-large images, Fig. #3.\n",
])
def test_ordinary_text_is_no_development_note(tmp_path, text):
    new_course(tmp_path)
    (tmp_path / "solutions" / "01_demo.py").write_text(DEMO + "\n" + text)
    assert quiet(tmp_path)


# --- the nbgrader source ---------------------------------------------------------------------

def test_nbgrader_source_keeps_answers_markers_and_metadata(graded_course):
    source = graded_course / "solutions" / "02_graded.py"
    nb = rel.nbgrader_source(source)
    solution = read(graded_course, "solutions", "02_graded")
    assert [nbgrader(c) for c in nb.cells] == [nbgrader(c) for c in solution.cells]
    assert "    ### BEGIN SOLUTION (points=3)\n    return x * x\n    ### END SOLUTION" \
        in nb.cells[2].source
    out = graded_course / "nbgrader"
    assert rel.main(["--root", str(graded_course), "--nbgrader", str(out)]) == 0
    written = nbformat.read(out / "source" / "02_graded" / "02_graded.ipynb", as_version=4)
    assert written.cells[2].source == nb.cells[2].source
