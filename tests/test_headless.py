"""Every lesson runs headless to the end, and a hang fails the test (issue #12 §4).

``jupyter nbconvert --execute``, papermill and ``benchmarks/lessons.py`` run notebooks
with nbclient, without a browser.  With ``ipywidgets.interact`` such a run hung now and
then at the widget cell, forever, with the kernel idle: nbclient mimics the ``Output``
widget that ``interact`` draws into by sending messages to the kernel on the channel on
which it waits for the kernel's reply, and sometimes it misses that reply
(jupyter/nbclient#312, jupyter/nbconvert#2029).  The lessons use ``cu.interact``, which
has no ``Output`` widget, so nbclient never sends anything while a cell runs.

Here every ``solutions/NN_*.ipynb`` is executed with nbclient, in quick mode
(``COURSE_QUICK=1``), one test per notebook, as ``benchmarks/lessons.py`` does.  Three
guards turn a hang into a failure:

* nbclient's time limit per cell: ``CELL_TIMEOUT``, and ``WIDGET_CELL_TIMEOUT`` for
  the cells that make widgets (they only draw what earlier cells computed);
* a limit for the whole notebook (``NOTEBOOK_TIMEOUT``), after which the run is
  cancelled and its kernel shut down;
* the symptom itself: a reply that the kernel sent but nbclient received much later
  (``REPLY_DELAY``).  With a time limit per cell, nbclient finds a missed reply only
  when that limit runs out, and the cell then passes, late (with ``ipywidgets.interact``
  in a small notebook: 12 of 30 runs, each late by the whole limit); this check makes
  it fail.

``COURSE_CELL_TIMEOUT`` and ``COURSE_NOTEBOOK_TIMEOUT`` (seconds) change the first two
limits, for a slow machine.

Each notebook then must show the figure of its ``cu.interact`` cell as ordinary output
(``image/png``), not only inside a widget.  The notebooks are made from the sources
``solutions/NN_*.py`` by ``dltomo release``: run it after changing a source.
The lessons take one to five minutes each in quick mode on a 2-core machine.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
NOTEBOOKS = sorted(SOLUTIONS.glob("[0-9][0-9]_*.ipynb"))
SOURCES = sorted(SOLUTIONS.glob("[0-9][0-9]_*.py"))

CELL_TIMEOUT = int(os.environ.get("COURSE_CELL_TIMEOUT", 900))           # seconds per cell
WIDGET_CELL_TIMEOUT = 180   # seconds for a cell that makes widgets (it only draws)
NOTEBOOK_TIMEOUT = int(os.environ.get("COURSE_NOTEBOOK_TIMEOUT", 1800))  # per notebook
REPLY_DELAY = 30   # seconds between the kernel's reply and nbclient receiving it, at most

# Widgets that draw through an ``Output`` widget, which nbclient mimics (the hang).
HANG_PRONE = re.compile(
    r"(?<![\w.])(?:ipywidgets\.|widgets\.)?"                   # not cu.interact
    r"(?:interact|interactive|interact_manual|interactive_output|Output)\s*\("
    r"|^\s*@(?:ipywidgets\.|widgets\.)?interact", re.MULTILINE)
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def code_of(source: str) -> str:
    """The lines of a cell that are not comments."""
    return "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("#"))


def hang_prone_calls(source: str) -> list[str]:
    """Lines that call ipywidgets' interact family or make an Output widget."""
    return [line.strip() for line in code_of(source).splitlines() if HANG_PRONE.search(line)]


def execute(notebook, folder: Path, *, env=None) -> dict:
    """Run ``notebook`` in ``folder`` with nbclient under the three guards.

    Fails the test when the notebook takes longer than ``NOTEBOOK_TIMEOUT`` or when
    nbclient received a reply more than ``REPLY_DELAY`` seconds after the kernel sent it.
    The outputs end up in ``notebook``; returned are copies of each code cell's outputs
    as they were when that cell finished (later cells may update them).
    """
    import copy

    from nbclient import NotebookClient

    started: list[int] = []
    late: list[str] = []
    when_run: dict[int, list] = {}

    def on_cell_start(cell, cell_index):
        started.append(cell_index)

    def on_cell_executed(cell, cell_index, execute_reply):
        when_run[cell_index] = copy.deepcopy(cell.outputs)
        sent = execute_reply["header"]["date"]
        if isinstance(sent, str):
            sent = datetime.fromisoformat(sent.replace("Z", "+00:00"))
        if sent.tzinfo is None:
            sent = sent.replace(tzinfo=timezone.utc)
        delay = (datetime.now(timezone.utc) - sent).total_seconds()
        if delay > REPLY_DELAY:
            late.append(f"cell {cell_index}: nbclient received the kernel's reply {delay:.0f} s "
                        f"after it was sent (the hang of jupyter/nbclient#312):\n"
                        f"{cell.source[:300]}")

    def timeout(cell):
        return WIDGET_CELL_TIMEOUT if "interact(" in cell.source else CELL_TIMEOUT

    client = NotebookClient(notebook, timeout_func=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(folder)}},
                            on_cell_start=on_cell_start, on_cell_executed=on_cell_executed)
    env = {**os.environ, "COURSE_QUICK": "1", **(env or {})}

    async def run():
        await asyncio.wait_for(client.async_execute(env=env), NOTEBOOK_TIMEOUT)

    try:
        asyncio.run(run())
    except asyncio.TimeoutError:
        cell = notebook.cells[started[-1]].source[:300] if started else "(none)"
        pytest.fail(f"the notebook did not finish within {NOTEBOOK_TIMEOUT} s; the cell "
                    f"running then (cell {started[-1] if started else '-'}):\n{cell}")
    assert not late, "\n\n".join(late)
    return when_run


def outputs_with(cell, mime: str) -> list:
    return [o for o in cell.get("outputs", []) if mime in o.get("data", {})]


# --- the sources: no widget that hangs a headless run ----------------------------------

@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_lessons_use_cu_interact(source):
    text = source.read_text()
    assert not hang_prone_calls(text), (
        f"{source.name} uses ipywidgets' interact or an Output widget, which can hang a "
        f"headless run (jupyter/nbclient#312); use cu.interact: {hang_prone_calls(text)}")
    assert "cu.interact(" in text, f"{source.name} has no cu.interact cell"


def test_hang_prone_calls_are_recognised():
    assert hang_prone_calls("widgets.interact(f, x=widgets.IntSlider());")
    assert hang_prone_calls("out = widgets.Output()")
    assert hang_prone_calls("@widgets.interact(x=(0, 10))\ndef f(x):\n    pass")
    assert hang_prone_calls("interactive_output(f, {'x': slider})")
    assert hang_prone_calls("from ipywidgets import interact\ninteract(f, x=(0, 10))")
    assert hang_prone_calls("cu.interact(f, x=s); ipywidgets.interact(g, y=t)")
    assert not hang_prone_calls("cu.interact(f, x=widgets.IntSlider());")
    assert not hang_prone_calls("interaction = cu.interact(f, x=widgets.IntSlider())")
    assert not hang_prone_calls("# widgets.interact(f) is what we avoid")


# --- a small notebook: cu.interact in a real kernel, run by nbclient ---------------------

SMALL_NOTEBOOK = [
    """import matplotlib.pyplot as plt
import numpy as np
import ipywidgets as widgets
from course_utils import plotting


def show(freq=3, label="sine"):
    print(f"{label} at {freq}")
    x = np.linspace(0, 1, 100)
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot(x, np.sin(2 * np.pi * freq * x))
    ax.set_title(f"{label}: {freq}")
    plt.show()""",
    """interaction = plotting.interact(show, freq=widgets.IntSlider(value=3, min=1, max=9),
                               label=widgets.Dropdown(options=["sine", "wave"]))""",
    """interaction.controls["freq"].value = 7   # what a slider move does
print(interaction.calls, len(plt.get_fignums()))""",
]


def test_cu_interact_headless_in_a_kernel(tmp_path):
    """The function runs once, as plain output; a control's change updates that output."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    notebook = new_notebook(cells=[new_code_cell(code) for code in SMALL_NOTEBOOK])
    start = time.perf_counter()
    when_run = execute(notebook, tmp_path)
    assert time.perf_counter() - start < 120
    _, cell, after = notebook.cells
    first = when_run[1]
    # as the cell left it: the controls, the printed line and the figure, each a display
    assert [o.output_type for o in first] == ["display_data"] * 3
    assert WIDGET_VIEW in first[0].data
    assert first[1].data["text/plain"] == "sine at 3\n"
    assert "image/png" in first[2].data
    # the next cell moved the slider: the same displays, new contents
    assert [o.output_type for o in cell.outputs] == ["display_data"] * 3
    assert cell.outputs[1].data["text/plain"] == "sine at 7\n"
    assert cell.outputs[2].data["image/png"] != first[2].data["image/png"]
    assert [o.get("text") for o in after.outputs] == ["2 0\n"]   # called twice, no figure left
    nbformat.validate(notebook)


# --- every lesson, top to bottom -----------------------------------------------------------

@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_lesson_runs_headless(path):
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    stale = [line for cell in notebook.cells if cell.cell_type == "code"
             for line in hang_prone_calls(cell.source)]
    assert not stale, (f"{path.name} still calls {stale}: regenerate the notebooks from "
                       f"solutions/*.py with `dltomo release`")
    execute(notebook, path.parent)

    widget_cells = [cell for cell in notebook.cells
                    if cell.cell_type == "code" and "cu.interact(" in cell.source]
    assert widget_cells, f"{path.name} has no cu.interact cell"
    for cell in widget_cells:
        assert outputs_with(cell, WIDGET_VIEW), f"no controls shown:\n{cell.source[:200]}"
        assert outputs_with(cell, "image/png"), (
            f"the cu.interact cell shows no figure as output:\n{cell.source[:200]}")
