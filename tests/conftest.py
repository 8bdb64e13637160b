"""Shared fixtures: a small registry of operators that every operator test runs over."""

import os
import sys

import matplotlib
import pytest
import torch

matplotlib.use("Agg")  # no windows during tests

import course_utils as cu  # noqa: E402

if os.environ.get("PYTEST_XDIST_WORKER"):
    # One torch thread per test worker: two workers with two threads each on a 2-core
    # machine slow small tensor operations down ten-fold.  Notebook kernels started by
    # nbval from this worker inherit the environment variable.
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def needs_astra():
    """Import ASTRA; skip only where it cannot be installed from PyPI (macOS)."""
    if sys.platform == "darwin":
        return pytest.importorskip("astra")
    import astra
    return astra


GEOMETRIES = {
    "parallel": lambda: cu.ParallelBeam(n_angles=40, n_detectors=47),
    "parallel-odd-detectors-spacing": lambda: cu.ParallelBeam(n_angles=33, n_detectors=31,
                                                              detector_spacing=1.5),
    "parallel-explicit-angles": lambda: cu.ParallelBeam(angles=torch.rand(25) * 6.3,
                                                        n_detectors=45),
    "fan": lambda: cu.FanBeam(n_angles=60, n_detectors=80, source_distance=60.0,
                              detector_distance=40.0),
    "fan-virtual-detector": lambda: cu.FanBeam(n_angles=48, n_detectors=50,
                                               source_distance=100.0, detector_distance=0.0,
                                               detector_spacing=0.8),
}


@pytest.fixture(params=sorted(GEOMETRIES))
def operator(request):
    """A torch-backend RadonTransform of a 32 x 32 image for each geometry above."""
    torch.manual_seed(0)
    return cu.RadonTransform(image_size=32, geometry=GEOMETRIES[request.param]())


def smooth_phantom(n, dtype=torch.float32):
    """Two smooth Gaussian blobs and a soft disc, off centre (no symmetry to hide errors)."""
    c = torch.arange(n, dtype=torch.float64) - n / 2 + 0.5
    y, x = -c[:, None], c[None, :]
    img = torch.exp(-((x - 0.2 * n) ** 2 + (y - 0.15 * n) ** 2) / (0.01 * n * n))
    img = img + 0.6 * torch.exp(-((x + 0.1 * n) ** 2 + (y + 0.2 * n) ** 2) / (0.02 * n * n))
    img = img + 0.4 * torch.sigmoid((0.12 * n - torch.sqrt((x + 0.15 * n) ** 2
                                                            + (y - 0.1 * n) ** 2)) / 3.0)
    return img.to(dtype)
