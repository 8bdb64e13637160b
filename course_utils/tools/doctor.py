"""Is this computer ready for the workshop?  Run ``dltomo doctor``.

The doctor checks, in a few seconds and without the network, everything a participant
needs before the first lesson:

* Python and every package that ``pyproject.toml`` asks for (read back from the
  installed package's metadata, so the list lives in one place only);
* the course's own operator: a projection, the adjoint test, an FBP and a few training
  steps through it, on the CPU;
* a GPU (CUDA or Apple MPS), if there is one, with a projection on it;
* the ASTRA toolbox (optional: the course's operator does not need it);
* the Jupyter kernel that ``jupyter lab`` will start, and the widgets;
* that the data ship with the packages (nothing is downloaded), free disk space, memory
  and write access to the lessons;
* how long each lesson will take on this computer, from a short benchmark scaled by the
  reference times of the README's course map.

It ends with a verdict, ``READY``, ``READY with notes`` or ``NOT READY``, and the command
that fixes each problem.  The exit status is 1 only when it is ``NOT READY``.

Options: ``--quick`` skips the slower checks (under 10 s in all); ``--json`` prints one
JSON object instead of the table.

If even ``dltomo doctor`` fails because a package is missing, run the
file directly, ``python course_utils/tools/doctor.py``: it then does not need to import the
course's package first.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata as metadata
import json
import math
import os
import platform
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["REFERENCE_SECONDS", "REFERENCE_BENCHMARK_SECONDS", "Check", "benchmark",
           "check_packages", "estimate_lesson_times", "run_checks", "verdict", "main"]

#: Seconds each lesson takes, top to bottom on a fresh kernel, on the reference machine
#: (2-core x86-64 CPU, no GPU, one torch thread; ``python benchmarks/lessons.py``, the
#: README's course map): ``(quick mode, full mode)``.  ``None`` means "not measured yet".
#: Keys are the notebook names in ``solutions/``; an entry is matched by its two-digit
#: number, so a lesson that is renamed keeps its times.
REFERENCE_SECONDS: dict[str, tuple[float | None, float | None]] = {
    # quick mode re-measured on 2026-12-06 after the setting became dival's benchmark
    # (one thread, on a machine shared with other jobs: an idle one is faster)
    "01_radon_fbp": (13, 60),
    "02_system_matrix": (24, None),       # re-timed after its new exercises
    "03_cnn_denoising": (210, None),
    "04_learned_fbp": (75, None),
    "05_deep_image_prior": (133, None),   # re-timed after its new exercise
    "06_unrolled_mlem": (180, None),
    "07_learned_primal_dual": (165, None),
    "08_gans": (97, None),               # re-timed after its new experiment; full not re-measured
    "09_neural_fields": (110, None),
    "10_noise2inverse": (97, None),       # quiet machine, 2026-12-06
    "11_plug_and_play_diffusion": (113, None),  # quiet machine, 2026-12-06
    "12_trust": (100, None),  # quiet machine, 2026-12-07
    "13_cone_beam": (52, None),  # quiet machine, 2026-12-07
    "14_choosing": (88, None),  # quiet machine, 2026-12-07, with its training-images study
}

#: Seconds that :func:`benchmark` takes on the reference machine.  A computer on which
#: the benchmark takes twice as long is expected to take about twice as long for every
#: lesson.  Measured on 2026-11-21 as the fastest of 90 runs, 0.0646 s of CPU time
#: (``time.process_time``, as :func:`benchmark` measures).
REFERENCE_BENCHMARK_SECONDS = 0.065

#: The kernel the notebooks name in their metadata.
KERNEL_NAME = "python3"

#: Packages the course can do without: a note, never a failure, when they are missing.
OPTIONAL = {"astra-toolbox": "the course's own operator (backend='torch') does not need it"}

#: Import names that differ from the distribution names.
IMPORT_NAMES = {"scikit-image": "skimage", "astra-toolbox": "astra"}

#: Packages checked by their version only: the kernel never imports them, and importing
#: JupyterLab's server takes seconds.
NOT_IMPORTED = {"jupyterlab", "jupytext", "ipykernel"}

OK, NOTE, FAIL = "ok", "note", "fail"
SYMBOLS = {OK: "✓", NOTE: "!", FAIL: "✗"}
ASCII_SYMBOLS = {OK: "ok", NOTE: "!", FAIL: "X"}
GB = 1024**3


@dataclass
class Check:
    """The result of one check: what was looked at, how it went, and how to fix it.

    Attributes
    ----------
    name : str
        Short name shown in the first column ("Python", "packages", ...).
    status : {"ok", "note", "fail"}
        ``"note"`` is worth knowing but does not stop anyone; ``"fail"`` does.
    detail : str
        One line of what was found.
    fix : str
        What to do about it (a command where possible); empty when nothing is needed.
    """

    name: str
    status: str
    detail: str
    fix: str = ""


def _pip(*arguments: str) -> str:
    """The pip command for *this* Python, so that it installs into the right environment."""
    return " ".join([shlex.quote(sys.executable), "-m", "pip", "install",
                     *(shlex.quote(a) for a in arguments)])


def _seconds(t: float) -> str:
    """13 -> '13 s', 95 -> '1.6 min', 7200 -> '2.0 h'."""
    if t < 60:
        return f"{t:.0f} s"
    if t < 3600:
        return f"{t / 60:.1f} min"
    return f"{t / 3600:.1f} h"


# --- requirements, read from the installed package ----------------------------------------

def course_requirements() -> tuple[list[str], str | None]:
    """The requirement strings and Python range of the installed ``course_utils``.

    Returns
    -------
    requirements : list of str
        E.g. ``["torch<3,>=2.1", 'astra-toolbox>=2.1; platform_system != "Darwin"', ...]``,
        the same list as ``[project] dependencies`` in ``pyproject.toml`` (and its extras).
    requires_python : str or None
        E.g. ``">=3.10"``.

    Raises
    ------
    importlib.metadata.PackageNotFoundError
        When ``course_utils`` is not installed in this Python.
    """
    requirements = metadata.requires("course_utils") or []
    return list(requirements), metadata.metadata("course_utils").get("Requires-Python")


def _parse(requirement: str):
    """``(name, specifier, applies)`` of a requirement string; extras never apply."""
    from packaging.requirements import Requirement

    req = Requirement(requirement)
    applies = req.marker is None or req.marker.evaluate({"extra": ""})
    return req.name, req.specifier, applies


def check_python(requires_python: str | None) -> Check:
    """Is this Python's version inside the package's ``Requires-Python`` range?"""
    from packaging.specifiers import SpecifierSet

    version = platform.python_version()
    if not requires_python:
        return Check("Python", OK, f"{version}")
    if SpecifierSet(requires_python).contains(version):
        return Check("Python", OK, f"{version} (needs {requires_python})")
    return Check("Python", FAIL, f"{version}, but the course needs {requires_python}",
                 "install a newer Python (python.org or conda), then make a new virtual "
                 "environment with it: python3 -m venv .venv && .venv/bin/pip install -e .")


def check_packages(requirements, version_of=metadata.version, import_module=None):
    """One check per problem with the installed packages, or one "all fine" check.

    Parameters
    ----------
    requirements : list of str
        Requirement strings such as ``"numpy>=1.24"`` (markers are evaluated here).
    version_of : callable
        ``version_of(name) -> str``, raising ``PackageNotFoundError`` when missing
        (``importlib.metadata.version``; tests pass a fake one).
    import_module : callable or None
        ``import_module(name)`` to check that a package imports; ``None`` skips that.

    Returns
    -------
    checks : list of Check
    versions : dict
        ``{name: version or None}`` of every requirement that applies here.
    """
    checks, versions = [], {}
    for requirement in requirements:
        name, specifier, applies = _parse(requirement)
        if not applies:
            continue
        wanted = f"{name}{specifier}"
        try:
            version = version_of(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
            if name in OPTIONAL:
                continue  # reported by its own check (ASTRA)
            fix = _pip(wanted)
            if name == "torch" and sys.platform.startswith("linux") \
                    and shutil.which("nvidia-smi") is None:
                # No NVIDIA driver: the CPU build, not several GB of CUDA libraries.
                fix = _pip(wanted, "--index-url", "https://download.pytorch.org/whl/cpu")
            checks.append(Check(name, FAIL, f"not installed (needs {wanted})", fix))
            continue
        versions[name] = version
        if specifier and not specifier.contains(version, prereleases=True):
            status = NOTE if name in OPTIONAL else FAIL
            checks.append(Check(name, status, f"{version} installed, the course needs "
                                              f"{wanted}", _pip(wanted)))
            continue
        if import_module is not None and name not in {*OPTIONAL, *NOT_IMPORTED}:
            try:
                import_module(IMPORT_NAMES.get(name, name.replace("-", "_")))
            except Exception as error:  # a broken install fails in many ways
                checks.append(Check(name, FAIL, f"{version} is installed but does not "
                                                f"import: {type(error).__name__}: {error}",
                                    _pip("--force-reinstall", wanted)))
    failed = sum(c.status == FAIL for c in checks)
    if failed == 0:
        found = sum(v is not None for v in versions.values())
        checks.insert(0, Check("packages", OK, f"{found} of {len(versions)} installed, "
                                               "versions as required"))
    elif failed > 1:
        checks.append(Check("packages", FAIL, f"{failed} packages need installing",
                            "all at once, from the repository root: " + _pip("-e", ".")))
    return checks, versions


# --- the course itself --------------------------------------------------------------------

def check_course_utils() -> Check:
    """Does ``import course_utils`` work, and from where?"""
    try:
        import course_utils as cu
        cu.RadonTransform  # the package loads its maths (and torch) on first use
    except Exception as error:
        return Check("course_utils", FAIL, f"does not import: {type(error).__name__}: "
                                           f"{error}",
                     "from the repository root: " + _pip("-e", "."))
    where = Path(cu.__file__).resolve().parent
    return Check("course_utils", OK, f"{getattr(cu, '__version__', '?')} from {where}")


def check_operator() -> Check:
    """A projection, the adjoint test and an FBP with the course's own operator (CPU)."""
    import torch

    import course_utils as cu

    A = cu.RadonTransform(image_size=64, geometry=cu.ParallelBeam(n_angles=60,
                                                                  n_detectors=93))
    x = cu.shepp_logan(64)
    y = A(x)
    adjoint_error = A.check_adjoint(n_trials=2)
    quality = float(cu.psnr(cu.fbp(A, y, filter="hann"), x, data_range=1.0))
    if tuple(y.shape) != (60, 93) or not torch.isfinite(y).all():
        return Check("operator", FAIL, f"A(x) gave shape {tuple(y.shape)} or non-finite "
                                       "values", "reinstall: " + _pip("-e", "."))
    if adjoint_error > 1e-6 or quality < 20:
        return Check("operator", FAIL, f"adjoint error {adjoint_error:.1e} (expected < "
                                       f"1e-6), FBP {quality:.1f} dB (expected > 20)",
                     "reinstall: " + _pip("-e", ".") + "; if it persists, report it")
    return Check("operator", OK, f"64x64 -> sinogram (60, 93), adjoint error "
                                 f"{adjoint_error:.0e}, FBP {quality:.1f} dB")


def _gradient_step(net, lr: float) -> None:
    """One step of plain gradient descent on every parameter that has a gradient."""
    import torch

    with torch.no_grad():
        for p in net.parameters():
            if p.grad is not None:
                p -= lr * p.grad


def check_training(steps: int = 5) -> Check:
    """A few gradient steps of a small U-Net whose loss goes through the operator.

    The network learns to map noisy images to images whose sinograms match the clean
    ones; from a random start the loss falls by more than half in five steps.  Plain
    gradient descent keeps the check fast: the first ``torch.optim`` optimizer in a
    process imports ``torch._dynamo``, which takes seconds.
    """
    import torch

    import course_utils as cu

    generator = torch.Generator().manual_seed(0)
    A = cu.RadonTransform(image_size=32, geometry=cu.ParallelBeam(n_angles=20,
                                                                  n_detectors=47))
    x_true = cu.EllipsesDataset(4, 32, seed=0).tensors()            # (4, 1, 32, 32)
    x_in = x_true + 0.1 * torch.randn(x_true.shape, generator=generator)
    y = A(x_true)
    torch.manual_seed(0)
    net = cu.UNet(depth=2, width=8, residual=False)
    losses = []
    for _ in range(steps):
        net.zero_grad()
        loss = torch.mean((A(net(x_in)) - y) ** 2)        # data fit through A: autograd
        loss.backward()
        _gradient_step(net, lr=1e-4)
        losses.append(loss.item())
    if not all(math.isfinite(v) for v in losses) or not losses[-1] < 0.5 * losses[0]:
        return Check("training", FAIL, f"loss {losses[0]:.3g} -> {losses[-1]:.3g} (should "
                                       "fall by half)",
                     "reinstall torch: " + _pip("--force-reinstall", "torch>=2.1,<3"))
    return Check("training", OK, f"{steps} steps of a U-Net through A: loss "
                                 f"{losses[0]:.3g} -> {losses[-1]:.3g}")


def check_gpu() -> Check:
    """Which device ``cu.device()`` picks, and a projection on it when it is a GPU."""
    import torch

    import course_utils as cu

    device = cu.device()
    if device.type == "cpu":
        return Check("GPU", NOTE, "none: the lessons run on the CPU (fine in quick mode; "
                                  "full mode of 03 and 05 takes hours)",
                     "none needed: use quick mode (COURSE_QUICK=1) in the workshop")
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else "Apple GPU"
    try:
        A = cu.RadonTransform(image_size=32, device=device,
                              geometry=cu.ParallelBeam(n_angles=20, n_detectors=47))
        x = cu.shepp_logan(32)
        y_gpu = A(x.to(device)).cpu()
        y_cpu = cu.RadonTransform(image_size=32, geometry=A.geometry)(x)
        difference = float((y_gpu - y_cpu).abs().max() / y_cpu.abs().max())
    except Exception as error:
        return Check("GPU", FAIL, f"{device.type} ({name}) found, but the operator fails "
                                  f"on it: {type(error).__name__}: {error}",
                     "hide the GPU to use the CPU (CUDA_VISIBLE_DEVICES= jupyter lab), or "
                     "install the torch build that matches your driver (pytorch.org)")
    if difference > 1e-4:
        return Check("GPU", FAIL, f"{device.type} ({name}): projection differs from the "
                                  f"CPU by {difference:.1e}",
                     "install the torch build that matches your driver (pytorch.org)")
    return Check("GPU", OK, f"{device.type} ({name}): projection matches the CPU")


def check_astra(project: bool = True) -> Check:
    """ASTRA is optional: import it and, unless ``project=False``, make one projection."""
    if sys.platform == "darwin":
        return Check("ASTRA", OK, "not on PyPI for macOS; optional (the course's own "
                                  "operator is the default)")
    try:
        astra = importlib.import_module("astra")
    except Exception as error:
        return Check("ASTRA", NOTE, f"not available ({type(error).__name__}): optional, "
                                    f"{OPTIONAL['astra-toolbox']}",
                     "only to compare with ASTRA: " + _pip("astra-toolbox>=2.1"))
    version = getattr(astra, "__version__", "?")
    if not project:
        return Check("ASTRA", OK, f"{version} imports (optional)")
    try:
        import course_utils as cu
        A = cu.RadonTransform(image_size=16, backend="astra",
                              geometry=cu.ParallelBeam(n_angles=8, n_detectors=23))
        y = A(cu.shepp_logan(16))
        if not float(y.sum()) > 0:
            raise RuntimeError("the projection is empty")
    except Exception as error:
        return Check("ASTRA", NOTE, f"{version} imports but a CPU projection fails: "
                                    f"{type(error).__name__}: {error}; optional, "
                                    f"{OPTIONAL['astra-toolbox']}",
                     "only to compare with ASTRA: " + _pip("--force-reinstall",
                                                           "astra-toolbox>=2.1"))
    return Check("ASTRA", OK, f"{version}, CPU projection works (optional)")


# --- Jupyter -----------------------------------------------------------------------------

def check_kernel() -> Check:
    """The kernel JupyterLab starts for the notebooks: does it see ``course_utils``?

    The notebooks ask for the kernel ``"python3"``.  One of that name left behind by
    another Python installation is a common cause of "No module named course_utils".
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    install_kernel = f"{shlex.quote(sys.executable)} -m ipykernel install --sys-prefix"
    scripts = Path(sys.executable).parent
    if shutil.which("jupyter-lab", path=str(scripts)) is None:
        return Check("Jupyter", FAIL, "JupyterLab is not installed in this environment",
                     _pip("jupyterlab>=4"))
    try:
        python = KernelSpecManager().get_kernel_spec(KERNEL_NAME).argv[0]
    except NoSuchKernel:
        return Check("Jupyter", FAIL, f"no kernel named {KERNEL_NAME!r}", install_kernel)
    if python in {"python", f"python{sys.version_info[0]}",
                  "python{}.{}".format(*sys.version_info[:2])}:
        python = sys.executable      # Jupyter starts these names with its own Python
    python = shutil.which(python) or python
    probe = ("import sys, importlib.util; print(sys.prefix); "
             "print(importlib.util.find_spec('course_utils') is not None)")
    try:
        # From a neutral folder, so that a course_utils folder here does not count.
        answer = subprocess.run([python, "-c", probe], capture_output=True, text=True,
                                timeout=30, check=True, cwd=tempfile.gettempdir()
                                ).stdout.split()
    except (OSError, subprocess.SubprocessError) as error:
        return Check("Jupyter", FAIL, f"kernel {KERNEL_NAME!r} runs {python}, which does "
                                      f"not start: {error}", install_kernel)
    if answer[-1:] != ["True"]:
        return Check("Jupyter", FAIL, f"kernel {KERNEL_NAME!r} runs {python}, which cannot "
                                      "import course_utils", install_kernel)
    same = os.path.realpath(answer[0]) == os.path.realpath(sys.prefix)
    detail = (f"kernel {KERNEL_NAME!r} runs {python} "
              f"({'this environment' if same else 'another one with course_utils'})")
    on_path = shutil.which("jupyter")
    if on_path and Path(on_path).parent.resolve() != scripts.resolve():
        return Check("Jupyter", NOTE, f"{detail}; but `jupyter` on your PATH is {on_path}",
                     f"start JupyterLab with {scripts / 'jupyter'} lab")
    return Check("Jupyter", OK, detail)


def check_widgets() -> Check:
    """ipywidgets in the kernel, and jupyterlab_widgets, which draws them in the browser."""
    try:
        ipywidgets = importlib.import_module("ipywidgets")
    except Exception as error:
        return Check("widgets", FAIL, f"ipywidgets does not import: {error}",
                     _pip("ipywidgets>=8"))
    try:
        front_end = metadata.version("jupyterlab_widgets")
    except metadata.PackageNotFoundError:
        return Check("widgets", FAIL, f"ipywidgets {ipywidgets.__version__}, but "
                                      "jupyterlab_widgets is missing: sliders will not show",
                     _pip("jupyterlab_widgets"))
    return Check("widgets", OK, f"ipywidgets {ipywidgets.__version__}, "
                                f"jupyterlab_widgets {front_end}")


# --- the machine -------------------------------------------------------------------------

class _NoNetwork:
    """Inside ``with _NoNetwork() as guard``, internet connections raise ``OSError``.

    ``guard.attempts`` lists the addresses something tried to reach.
    """

    def __enter__(self):
        self.attempts, self._connect = [], socket.socket.connect
        guard = self

        def connect(sock, address):
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                guard.attempts.append(address)
                raise OSError(f"network use blocked by the doctor: {address}")
            return guard._connect(sock, address)

        socket.socket.connect = connect
        return self

    def __exit__(self, *exc):
        socket.socket.connect = self._connect
        return False


def check_offline() -> Check:
    """Everything the lessons load comes with the packages: load it with the network off."""
    import course_utils as cu

    try:
        with _NoNetwork() as guard:
            slice_ = cu.ct_slice()
            cu.shepp_logan(64)
            cu.EllipsesDataset(2, 32, seed=0)[1]
    except Exception as error:
        return Check("offline", FAIL, f"the shipped data do not load without the network: "
                                      f"{type(error).__name__}: {error}",
                     "reinstall the data packages: " + _pip("--force-reinstall",
                                                            "pydicom>=2.4"))
    if guard.attempts:
        return Check("offline", NOTE, f"something tried the network: {guard.attempts}", "")
    return Check("offline", OK, f"data ship with the packages (CT slice "
                                f"{tuple(slice_.shape)}); no network used")


def course_folder() -> Path:
    """The repository's ``lessons/`` folder when there is one, else the working folder."""
    here = Path(__file__).resolve().parents[2]
    return here / "lessons" if (here / "lessons").is_dir() else Path.cwd()


def check_disk(folder: Path | None = None) -> Check:
    """Write access where the notebooks are saved, and free disk space there."""
    folder = course_folder() if folder is None else Path(folder)
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".doctor-"):
            pass
    except OSError as error:
        return Check("disk", FAIL, f"cannot write in {folder}: {error}",
                     "copy the repository to a folder of your own (e.g. your home folder)")
    free = shutil.disk_usage(folder).free / GB
    if free < 0.5:
        return Check("disk", FAIL, f"{free:.2f} GB free in {folder}",
                     "free at least 1 GB (checkpoints, figures, pip's cache)")
    if free < 2:
        return Check("disk", NOTE, f"{free:.1f} GB free in {folder}",
                     "free a few GB if you want to keep trained networks")
    return Check("disk", OK, f"{free:.0f} GB free; {folder} is writable")


def check_memory() -> Check:
    """Total memory: quick mode needs little, full mode of lesson 01 about 3.5 GB."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GB
    except (AttributeError, ValueError, OSError):
        return Check("memory", OK, "unknown on this system (quick mode needs about 2 GB)")
    if total < 4:
        return Check("memory", NOTE, f"{total:.1f} GB: enough for quick mode, not for "
                                     "full mode of lesson 01 (3.5 GB)",
                     "start JupyterLab with COURSE_QUICK=1")
    return Check("memory", OK, f"{total:.0f} GB")


# --- how long will the lessons take? -------------------------------------------------------

def benchmark(repeats: int = 3, clock=time.process_time) -> float:
    """Seconds of a fixed piece of lesson-like work, the fastest of ``repeats`` runs.

    The work is what the quick-mode lessons spend their time on: 20 batched sparse
    projections and backprojections of 16 images of 64 x 64 with 30 angles, and 2
    training steps (forward and backward) of a small U-Net on 4 such images.  It runs
    on the CPU with one torch thread, as the reference times were measured.

    ``clock`` is the process's CPU time by default: on an idle computer it equals the
    wall-clock time, and on a busy one it still measures the computer, not what else
    runs on it (:data:`REFERENCE_BENCHMARK_SECONDS` was measured the same way).
    ``time.perf_counter`` gives wall-clock time instead.
    """
    import torch

    import course_utils as cu

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        generator = torch.Generator().manual_seed(0)
        A = cu.RadonTransform(image_size=64, geometry=cu.ParallelBeam(n_angles=30,
                                                                      n_detectors=93))
        x = torch.rand(16, 64, 64, generator=generator)
        torch.manual_seed(0)
        net = cu.UNet(depth=3, width=8)

        def work():
            for _ in range(20):
                A.T(A(x))
            for _ in range(2):
                net.zero_grad()
                loss = torch.mean((net(x[:4, None]) - x[:4, None]) ** 2)
                loss.backward()
                _gradient_step(net, lr=1e-4)

        work()                                  # warm-up: builds the matrix, allocates
        times = []
        for _ in range(max(1, repeats)):
            start = clock()
            work()
            times.append(clock() - start)
        return min(times)
    finally:
        torch.set_num_threads(threads)


def _load_average() -> float | None:
    """Processes waiting for a CPU, averaged over the last minute (None on Windows)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _lesson_names() -> dict[str, str]:
    """``{"01": "01_radon_fbp", ...}``: the reference table, renamed to the files in
    ``solutions/`` where the repository is there, plus any lesson the table lacks."""
    names = {key[:2]: key for key in REFERENCE_SECONDS}
    solutions = Path(__file__).resolve().parents[2] / "solutions"
    if solutions.is_dir():
        for path in sorted(solutions.glob("[0-9][0-9]_*.py")):
            names[path.stem[:2]] = path.stem
    return dict(sorted(names.items()))


def estimate_lesson_times(ratio: float, reference=None) -> dict:
    """Expected seconds per lesson on this computer: reference seconds times ``ratio``.

    Parameters
    ----------
    ratio : float
        Benchmark time here / benchmark time on the reference machine (2 = half as fast).
    reference : dict, optional
        ``{lesson: (quick_seconds, full_seconds)}``; default :data:`REFERENCE_SECONDS`.

    Returns
    -------
    dict
        ``{lesson: {"quick": seconds or None, "full": seconds or None}}``; ``None`` where
        the reference time is not measured yet.
    """
    if not ratio > 0:
        raise ValueError(f"ratio must be a positive number, got {ratio!r}")
    if reference is None:
        by_number = {key[:2]: value for key, value in REFERENCE_SECONDS.items()}
        reference = {name: by_number.get(number, (None, None))
                     for number, name in _lesson_names().items()}
    return {name: {mode: None if t is None else t * ratio
                   for mode, t in zip(("quick", "full"), times, strict=True)}
            for name, times in reference.items()}


# --- putting it together -----------------------------------------------------------------

def _guarded(name: str, check, *args, timings=None) -> Check:
    """Run one check; an unexpected exception becomes a failed check, not a crash.

    The seconds it took go into ``timings[name]`` when a dict is given.
    """
    start = time.perf_counter()
    try:
        return check(*args)
    except Exception as error:
        return Check(name, FAIL, f"the check itself failed: {type(error).__name__}: {error}",
                     "reinstall the course: " + _pip("-e", "."))
    finally:
        if timings is not None:
            timings[name] = round(time.perf_counter() - start, 3)


def run_checks(quick: bool = False) -> tuple[list[Check], dict]:
    """Run every check; ``quick=True`` skips the ASTRA projection and repeats less.

    Returns
    -------
    checks : list of Check
    facts : dict
        What was measured along the way: package versions, seconds per check, the
        benchmark and the lesson estimates.
    """
    timings: dict[str, float] = {}
    facts = {"python": sys.executable, "platform": platform.platform(),
             "cpu_count": os.cpu_count(), "course_quick": os.environ.get("COURSE_QUICK"),
             "timings": timings}
    checks = []
    try:
        import packaging  # noqa: F401  (matplotlib and Jupyter need it too)
    except ImportError:
        return [Check("packaging", FAIL, "the package 'packaging' is missing",
                      _pip("packaging"))], facts
    try:
        requirements, requires_python = course_requirements()
    except metadata.PackageNotFoundError:
        return [Check("course_utils", FAIL, "not installed in this Python",
                      "from the repository root: " + _pip("-e", "."))], facts
    checks.append(check_python(requires_python))
    start = time.perf_counter()
    package_checks, facts["packages"] = check_packages(
        requirements, import_module=importlib.import_module)
    timings["packages"] = round(time.perf_counter() - start, 3)
    checks += package_checks
    core = ("torch", "numpy", "scipy", "scikit-image", "matplotlib", "pydicom")
    if any(c.status == FAIL and c.name in core for c in package_checks):
        return checks, facts          # the course cannot run: the remaining checks would too
    checks.append(_guarded("course_utils", check_course_utils, timings=timings))
    if checks[-1].status == FAIL:
        return checks, facts

    import torch

    # One thread: several threads on a busy machine wait for each other and make these
    # tiny computations many times slower, which would say nothing about the course.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for name, check, *args in [
                ("operator", check_operator), ("training", check_training),
                ("GPU", check_gpu), ("ASTRA", check_astra, not quick),
                ("Jupyter", check_kernel), ("widgets", check_widgets),
                ("offline", check_offline), ("disk", check_disk), ("memory", check_memory)]:
            checks.append(_guarded(name, check, *args, timings=timings))
        start = time.perf_counter()
        try:
            seconds = benchmark(repeats=2 if quick else 5)
        except Exception as error:
            checks.append(Check("benchmark", FAIL, f"{type(error).__name__}: {error}",
                                "reinstall the course: " + _pip("-e", ".")))
        else:
            ratio = seconds / REFERENCE_BENCHMARK_SECONDS
            facts["benchmark"] = {"seconds": seconds, "ratio": ratio,
                                  "reference_seconds": REFERENCE_BENCHMARK_SECONDS,
                                  "load_average": _load_average()}
            facts["estimates"] = estimate_lesson_times(ratio)
        timings["benchmark"] = round(time.perf_counter() - start, 3)
    finally:
        torch.set_num_threads(threads)
    return checks, facts


def verdict(checks) -> str:
    """``"NOT READY"`` if any check failed, ``"READY with notes"`` if any has a note,
    else ``"READY"``."""
    statuses = {c.status for c in checks}
    if FAIL in statuses:
        return "NOT READY"
    return "READY with notes" if NOTE in statuses else "READY"


def _symbols() -> dict:
    """Tick marks, or plain letters where the terminal cannot print them."""
    try:
        "".join(SYMBOLS.values()).encode(sys.stdout.encoding or "ascii")
        return SYMBOLS
    except (UnicodeEncodeError, LookupError):
        return ASCII_SYMBOLS


def report(checks, facts) -> str:
    """The table of checks, the time estimates and the verdict, as text."""
    symbols = _symbols()
    lines = ["Workshop readiness check: Deep learning for tomographic image reconstruction",
             f"Python {platform.python_version()} at {sys.executable}",
             f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores; "
             f"COURSE_QUICK={facts.get('course_quick') or '(not set)'}", ""]
    width = max(len(c.name) for c in checks)
    for c in checks:
        lines.append(f"  {symbols[c.status]:>2}  {c.name:<{width}}  {c.detail}")
        if c.fix:
            lines.append(f"      {'':<{width}}  fix: {c.fix}")
    if "estimates" in facts:
        bench = facts["benchmark"]
        lines += ["", "Estimated run time of each lesson on this computer, on the CPU "
                      f"(benchmark {bench['seconds'] * 1000:.0f} ms: {bench['ratio']:.2g} x "
                      "the time of the reference 2-core CPU):"]
        load = bench.get("load_average")
        if load is not None and load > (os.cpu_count() or 1):
            lines.append(f"  This computer is busy (load {load:.1f} on {os.cpu_count()} "
                         "cores): while it is, the lessons take longer than this.")
        lines.append(f"  {'lesson':<26}{'quick mode':>18}{'full mode':>18}")
        for name, times in facts["estimates"].items():
            cells = ["not measured yet" if t is None else "about " + _seconds(t)
                     for t in (times["quick"], times["full"])]
            lines.append(f"  {name:<26}{cells[0]:>18}{cells[1]:>18}")
        lines.append("  Quick mode: start JupyterLab with COURSE_QUICK=1. A GPU shortens "
                     "the full mode of lessons 03 and 05 to minutes.")
    result = verdict(checks)
    lines += ["", f"Verdict: {result}"]
    if result == "NOT READY":
        lines.append("  Fix the lines marked " + symbols[FAIL] + " with the commands shown, "
                     "then run this check again: "
                     f"{shlex.quote(sys.executable)} -m course_utils.tools doctor")
    elif result == "READY with notes":
        lines.append("  You can take part; the lines marked " + symbols[NOTE]
                     + " are worth knowing.")
    return "\n".join(lines)


def main(argv=None) -> int:
    """Command line: run the checks, print them, return 1 only when NOT READY."""
    parser = argparse.ArgumentParser(
        prog="dltomo doctor",
        description="Check that this computer is ready for the course's workshop.")
    parser.add_argument("--quick", action="store_true",
                        help="skip the slower checks (under 10 s in all)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    checks, facts = run_checks(quick=args.quick)
    facts["seconds"] = time.perf_counter() - start
    result = verdict(checks)
    if args.json:
        print(json.dumps({"verdict": result, "ready": result != "NOT READY",
                          "checks": [asdict(c) for c in checks], **facts}, indent=2))
    else:
        print(report(checks, facts))
        print(f"(checked in {facts['seconds']:.1f} s)")
    return 1 if result == "NOT READY" else 0


if __name__ == "__main__":
    if not __package__:
        # Run as a file (python course_utils/tools/doctor.py): import the course from the
        # repository, not the package's own modules as if they were top-level ones.
        sys.path[0] = str(Path(__file__).resolve().parents[2])
    sys.exit(main())
