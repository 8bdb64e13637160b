"""The one command of the tools: ``dltomo <subcommand>``."""

import subprocess
import sys
from pathlib import Path

import pytest

from course_utils.tools import cli

ROOT = Path(__file__).resolve().parents[2]


def test_help_lists_every_subcommand(capsys):
    assert cli.main([]) == 0
    text = capsys.readouterr().out
    for name in ("doctor", "release", "grade", "generator", "diffusion", "reconstructors",
                 "ctslices"):
        assert name in text


def test_unknown_subcommand_fails_with_the_list(capsys):
    assert cli.main(["relase"]) == 2
    err = capsys.readouterr().err
    assert "unknown subcommand 'relase'" in err and "release" in err


@pytest.mark.parametrize("name", ["doctor", "release", "grade", "generator", "diffusion",
                                  "reconstructors", "ctslices"])
def test_each_subcommand_has_help(name, capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main([name, "--help"])
    assert exit.value.code == 0
    assert f"dltomo {name}" in capsys.readouterr().out


def test_console_script_and_module_run_the_same_command():
    script = Path(sys.executable).parent / "dltomo"
    assert script.is_file(), "the console script is installed by pip install -e ."
    for command in ([str(script), "release", "--check"],
                    [sys.executable, "-m", "course_utils.tools", "release", "--check"]):
        result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "in sync" in result.stdout


def test_doctor_runs_as_a_plain_file():
    result = subprocess.run([sys.executable, "course_utils/tools/doctor.py", "--help"],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0 and "dltomo doctor" in result.stdout
