"""The repository contract: one dependency list in two files, README commands, CI script."""

import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PIP = {"pytorch": "torch", "playwright-python": "playwright"}
NOT_PACKAGES = {"python", "pip"}


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;:\[]", requirement.strip(), maxsplit=1)[0].lower()


def pyproject_packages() -> set:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {_name(r) for r in project["dependencies"]}
    names |= {_name(r) for r in project["optional-dependencies"]["test"]}
    return names - {"tomli"}  # a back-port for Python 3.10 only


def environment_packages() -> set:
    names, in_dependencies = set(), False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if line.startswith("dependencies:"):
            in_dependencies = True
        elif in_dependencies and re.match(r"^  - [A-Za-z]", line):
            name = _name(line[4:])
            names.add(CONDA_TO_PIP.get(name, name))
    return names - NOT_PACKAGES


def test_environment_yml_and_pyproject_name_the_same_packages():
    assert environment_packages() == pyproject_packages()


def test_torch_is_a_range_not_a_pin():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    torch = [r for r in project["dependencies"] if _name(r) == "torch"]
    assert torch and "==" not in torch[0] and ">=" in torch[0]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    command = next(line for line in ci.splitlines() if "pytest" in line and "venv" in line)
    assert command.strip() in readme


def test_readme_quick_start_has_a_lab_command():
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"python3 -m venv \.venv && .*jupyter lab", readme)


def test_readme_has_colab_and_binder_badges_for_every_lesson():
    from course_utils.tools.release import repository_url
    readme = (ROOT / "README.md").read_text()
    owner_repo = repository_url().split("github.com/")[1]
    lessons = sorted(p.name for p in (ROOT / "lessons").glob("[0-9][0-9]_*.ipynb"))
    assert lessons
    for name in lessons:
        assert (f"https://colab.research.google.com/github/{owner_repo}/blob/main/"
                f"lessons/{name}") in readme, name
        assert (f"https://mybinder.org/v2/gh/{owner_repo}/main?urlpath=lab/tree/"
                f"lessons/{name}") in readme, name
