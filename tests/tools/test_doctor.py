"""The workshop-readiness check: ``dltomo doctor``."""

import importlib.metadata
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import course_utils as cu
from course_utils.tools import doctor
from course_utils.tools.doctor import FAIL, NOTE, OK, Check

ROOT = Path(__file__).resolve().parents[2]


def fake_versions(**installed):
    """A stand-in for importlib.metadata.version: these packages, nothing else."""
    def version_of(name):
        if name not in installed:
            raise importlib.metadata.PackageNotFoundError(name)
        return installed[name]
    return version_of


# --- the whole check, in this environment --------------------------------------------------

def test_command_line_reports_ready_here():
    result = subprocess.run([sys.executable, "-m", "course_utils.tools", "doctor", "--quick"],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Verdict: READY" in result.stdout
    assert "01_radon_fbp" in result.stdout            # the table of estimates
    assert "✗" not in result.stdout and "Traceback" not in result.stderr


def test_main_json_parses_and_scales_estimates_with_the_benchmark(capsys, monkeypatch):
    # The benchmark "takes" twice the reference time: every estimate doubles.
    monkeypatch.setattr(doctor, "benchmark",
                        lambda repeats: 2 * doctor.REFERENCE_BENCHMARK_SECONDS)
    assert doctor.main(["--quick", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] in ("READY", "READY with notes") and report["ready"]
    names = [c["name"] for c in report["checks"]]
    for name in ("Python", "packages", "operator", "training", "GPU", "ASTRA", "Jupyter",
                 "widgets", "offline", "disk", "memory"):
        assert name in names
    assert not [c for c in report["checks"] if c["status"] == FAIL]
    assert report["benchmark"]["ratio"] == pytest.approx(2.0)
    quick, full = doctor.REFERENCE_SECONDS["01_radon_fbp"]
    assert report["estimates"]["01_radon_fbp"] == {"quick": 2 * quick, "full": 2 * full}
    assert set(report["packages"]) >= {"torch", "numpy", "ipywidgets", "jupyterlab"}


# --- verdict and exit code ------------------------------------------------------------------

def test_verdict_is_the_worst_status():
    ok, note, fail = Check("a", OK, ""), Check("b", NOTE, ""), Check("c", FAIL, "")
    assert doctor.verdict([ok, ok]) == "READY"
    assert doctor.verdict([ok, note]) == "READY with notes"
    assert doctor.verdict([note, fail, ok]) == "NOT READY"


@pytest.mark.parametrize("status, code", [(OK, 0), (NOTE, 0), (FAIL, 1)])
def test_exit_code_is_non_zero_only_when_not_ready(status, code, monkeypatch, capsys):
    checks = [Check("Python", OK, "3.11"), Check("thing", status, "detail", "do this")]
    monkeypatch.setattr(doctor, "run_checks", lambda quick: (checks, {}))
    assert doctor.main([]) == code
    out = capsys.readouterr().out
    assert f"Verdict: {doctor.verdict(checks)}" in out and "fix: do this" in out


# --- simulated problems ---------------------------------------------------------------------

def test_missing_package_fails_with_the_pip_command():
    checks, versions = doctor.check_packages(["numpy>=1.24", "notapackage>=1.0"],
                                             version_of=fake_versions(numpy="2.0.1"))
    [problem] = [c for c in checks if c.status == FAIL]
    assert problem.name == "notapackage" and "not installed" in problem.detail
    assert f"{sys.executable} -m pip install" in problem.fix
    assert "notapackage>=1.0" in problem.fix
    assert versions == {"numpy": "2.0.1", "notapackage": None}
    assert doctor.verdict(checks) == "NOT READY"


def test_too_old_version_fails_and_says_what_is_needed():
    checks, _ = doctor.check_packages(["numpy>=1.24", "torch<3,>=2.1"],
                                      version_of=fake_versions(numpy="1.21.0",
                                                               torch="2.13.0+cpu"))
    [problem] = [c for c in checks if c.status == FAIL]
    assert problem.name == "numpy"
    assert "1.21.0" in problem.detail and ">=1.24" in problem.detail
    assert "numpy>=1.24" in problem.fix                 # pip upgrades to the range


def test_all_present_is_one_ok_line_and_extras_and_markers_are_respected():
    requirements = ["numpy>=1.24", 'pytest>=7.4; extra == "test"',
                    'winonly>=1; platform_system == "NoSuchSystem"', "astra-toolbox>=2.1"]
    checks, versions = doctor.check_packages(requirements,
                                             version_of=fake_versions(numpy="2.0"))
    assert [c.status for c in checks] == [OK]            # ASTRA missing: not a failure
    assert set(versions) == {"numpy", "astra-toolbox"}   # no test extra, no other OS


def test_package_that_does_not_import_fails():
    def broken_import(name):
        raise ImportError("libfoo.so: cannot open shared object file")
    checks, _ = doctor.check_packages(["numpy>=1.24"], version_of=fake_versions(numpy="2.0"),
                                      import_module=broken_import)
    assert [c.status for c in checks] == [FAIL]
    assert "does not import" in checks[0].detail and "--force-reinstall" in checks[0].fix


def test_a_too_old_core_package_makes_the_command_fail(monkeypatch, capsys):
    monkeypatch.setattr(doctor, "course_requirements",
                        lambda: (["torch>=99", "numpy>=1.0"], ">=3.10"))
    assert doctor.main([]) == 1
    out = capsys.readouterr().out
    assert "Verdict: NOT READY" in out
    assert "-m pip install 'torch>=99'" in out


def test_python_range():
    assert doctor.check_python(">=3.10").status == OK
    too_old = doctor.check_python(">=99")
    assert too_old.status == FAIL and "needs >=99" in too_old.detail and too_old.fix


def test_no_gpu_is_a_note_not_a_failure(monkeypatch):
    monkeypatch.setattr(cu, "device", lambda: torch.device("cpu"))
    check = doctor.check_gpu()
    assert check.status == NOTE and "CPU" in check.detail
    assert doctor.verdict([Check("Python", OK, ""), check]) == "READY with notes"


def test_kernel_with_a_missing_python_fails(tmp_path, monkeypatch):
    kernel = tmp_path / "kernels" / doctor.KERNEL_NAME
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(json.dumps({
        "argv": [str(tmp_path / "no-such-python"), "-m", "ipykernel_launcher", "-f",
                 "{connection_file}"],
        "display_name": "Python 3", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))    # searched before the others
    check = doctor.check_kernel()
    assert check.status == FAIL and "no-such-python" in check.detail
    assert "ipykernel install" in check.fix


def test_disk_and_memory_here(tmp_path):
    assert doctor.check_disk(tmp_path).status in (OK, NOTE)
    assert doctor.check_memory().status in (OK, NOTE)


def test_network_guard_blocks_internet_and_restores_sockets():
    connect = socket.socket.connect
    with doctor._NoNetwork() as guard:
        with pytest.raises(OSError, match="blocked"):
            socket.create_connection(("127.0.0.1", 9), timeout=1)
    assert guard.attempts and socket.socket.connect is connect


# --- estimates ------------------------------------------------------------------------------

def test_estimates_scale_with_the_benchmark_ratio():
    reference = {"01_a": (10, 100), "02_b": (20, None)}
    assert doctor.estimate_lesson_times(1.0, reference) == {
        "01_a": {"quick": 10, "full": 100}, "02_b": {"quick": 20, "full": None}}
    assert doctor.estimate_lesson_times(2.5, reference)["01_a"] == {"quick": 25, "full": 250}
    with pytest.raises(ValueError, match="positive"):
        doctor.estimate_lesson_times(0.0, reference)


def test_report_says_not_measured_yet_for_unknown_times():
    facts = {"benchmark": {"seconds": 0.2, "ratio": 1.0},
             "estimates": {"06_new": {"quick": None, "full": None},
                           "01_a": {"quick": 13, "full": 7200}}}
    text = doctor.report([Check("Python", OK, "3.11")], facts)
    assert "not measured yet" in text and "about 13 s" in text and "about 2.0 h" in text


def test_every_lesson_in_solutions_has_a_reference_entry():
    numbers = {key[:2] for key in doctor.REFERENCE_SECONDS}
    lessons = sorted(p.stem for p in (ROOT / "solutions").glob("[0-9][0-9]_*.py"))
    assert lessons, "no lessons found"
    assert all(name[:2] in numbers for name in lessons)
    assert set(doctor.estimate_lesson_times(1.0)) >= set(lessons)


def test_benchmark_is_short_and_positive():
    seconds = doctor.benchmark(repeats=1)
    assert 0 < seconds < 10


def test_another_jupyter_on_the_path_is_a_note(tmp_path, monkeypatch):
    fake = tmp_path / "jupyter"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    check = doctor.check_kernel()
    assert check.status == NOTE and str(fake) in check.detail
    assert "jupyter lab" in check.fix
