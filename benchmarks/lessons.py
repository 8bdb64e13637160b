"""How long each lesson takes to run, top to bottom, on this machine.

Runs every ``solutions/NN_*.ipynb`` (or the ones named) on a fresh kernel, one after
the other, in quick mode (``COURSE_QUICK=1``) unless ``--full`` is given, and prints a
table of wall-clock seconds: the numbers of the README's course map.

Run:  python benchmarks/lessons.py [01 02 ...] [--full] [--lessons]
``--lessons`` times the student copies (``lessons/``) instead of the solutions.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def run_notebook(path: Path, timeout: int = 1800) -> float:
    """Execute a notebook in its own folder and return the seconds it took."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="lesson numbers or names (default: all)")
    parser.add_argument("--full", action="store_true", help="full mode instead of quick")
    parser.add_argument("--lessons", action="store_true", help="time the student copies")
    args = parser.parse_args()

    os.environ["COURSE_QUICK"] = "0" if args.full else "1"   # the kernels inherit it
    folder = ROOT / ("lessons" if args.lessons else "solutions")
    paths = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if args.names:
        paths = [p for p in paths if any(p.stem.startswith(n) for n in args.names)]
    mode = "full" if args.full else "quick"
    print(f"| notebook | {mode} mode (s) |\n|---|---|")
    for path in paths:
        print(f"| {folder.name}/{path.name} | {run_notebook(path):.0f} |", flush=True)


if __name__ == "__main__":
    main()
