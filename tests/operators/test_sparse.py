"""The sparse-matrix operators' one cache, its budget, and the "beta" notice of torch."""

import subprocess
import sys

import pytest
import torch

import course_utils as cu
from course_utils.operators import sparse


def radon(offset=0.0, n=16):
    """A small Radon transform; ``offset`` shifts its angles, so it is another matrix."""
    angles = torch.arange(12, dtype=torch.float64) * 0.26 + offset
    return cu.RadonTransform(n, cu.ParallelBeam(angles=angles, n_detectors=23))


@pytest.fixture(autouse=True)
def empty_cache():
    cu.clear_cache()
    yield
    cu.clear_cache()


def test_clear_cache_empties_it():
    A = radon()
    A(torch.rand(16, 16))
    info = cu.cache_info()
    assert info.entries == 1 and info.bytes > 0 and info.misses == 1
    cu.clear_cache()
    assert cu.cache_info() == (0, 0, sparse.CACHE_BUDGET_BYTES, 0, 0)
    # the operator still works: its matrix is built again
    assert torch.allclose(A(torch.ones(16, 16)), radon()(torch.ones(16, 16)))
    assert cu.cache_info().entries == 1


def test_a_recreated_operator_reuses_the_cached_matrix():
    x = torch.rand(16, 16)
    y = radon()(x)
    misses = cu.cache_info().misses
    again = radon()                                    # a new object, the same geometry
    assert torch.allclose(again(x), y)
    assert cu.cache_info().misses == misses            # nothing was built
    assert again.to_matrix() is radon().to_matrix()
    assert not hasattr(again, "_matrices")             # no private copies besides the cache


def test_every_copy_is_counted():
    """The transpose and a float64 copy are entries of the same cache, with their bytes."""
    A = radon()
    A(torch.rand(16, 16))
    one = cu.cache_info()
    A.T(torch.rand(12, 23))
    assert cu.cache_info().entries == 2
    A(torch.rand(16, 16, dtype=torch.float64))
    info = cu.cache_info()
    assert info.entries == 3
    nnz = A.to_matrix()._nnz()
    # float64 values take 4 more bytes per weight than float32 ones
    assert info.bytes - 2 * one.bytes == pytest.approx(one.bytes + 4 * nnz, rel=0.01)


def test_the_budget_drops_the_least_recently_used_matrix(monkeypatch):
    x = torch.rand(16, 16)
    A1, A2, A3 = radon(0.0), radon(0.01), radon(0.02)
    A1(x)
    size = cu.cache_info().bytes
    monkeypatch.setattr(sparse, "CACHE_BUDGET_BYTES", int(2.5 * size))   # room for two
    A2(x)
    A1(x)                                  # A1 is now more recently used than A2
    assert cu.cache_info().entries == 2
    A3(x)                                  # over budget: A2's matrix goes
    info = cu.cache_info()
    assert info.entries == 2 and info.bytes <= 2.5 * size
    misses = info.misses
    A1(x)
    A3(x)
    assert cu.cache_info().misses == misses          # both still there
    A2(x)
    assert cu.cache_info().misses == misses + 1      # built again


def test_a_matrix_larger_than_the_budget_is_still_used(monkeypatch):
    monkeypatch.setattr(sparse, "CACHE_BUDGET_BYTES", 1)
    A = radon()
    x = torch.rand(16, 16)
    expected = (A.to_matrix().to_dense() @ x.reshape(-1)).reshape(A.range_shape)
    assert torch.allclose(A(x), expected, atol=1e-5)
    assert cu.cache_info().entries == 1          # only the newest stays


def test_fbp_uses_the_same_cache():
    A = radon()
    cu.fbp(A, A(torch.rand(16, 16)))
    assert cu.cache_info().entries == 2          # the projector and FBP's backprojection
    cu.clear_cache()
    assert cu.cache_info().entries == 0


def run_python(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)


def test_importing_course_utils_leaves_the_warning_filters_alone():
    result = run_python(
        "import warnings, torch\n"
        "before = list(warnings.filters)\n"
        "import course_utils as cu\n"
        "cu.RadonTransform  # imports every module\n"
        "added = [f for f in warnings.filters if f not in before]\n"
        "print(added)\n"
        "assert not added\n")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_sparse_beta_notice_is_silenced_only_inside_course_utils():
    """With the notice turned into an error, torch's own CSR constructor fails, but
    building, moving and using the course's operators does not."""
    error = "-W error:Sparse CSR tensor support is in beta"
    raw = subprocess.run(
        [sys.executable, error, "-c",
         "import torch; torch.sparse_csr_tensor(torch.tensor([0, 1]), torch.tensor([0]), "
         "torch.tensor([1.0]), size=(1, 1))"], capture_output=True, text=True, timeout=300)
    if raw.returncode == 0:
        pytest.skip("this torch version no longer warns about sparse CSR tensors")
    ours = subprocess.run(
        [sys.executable, error, "-c",
         "import torch, course_utils as cu\n"
         "A = cu.RadonTransform(8, cu.ParallelBeam(n_angles=4, n_detectors=11))\n"
         "y = A(torch.rand(8, 8, dtype=torch.float64))\n"
         "A.T(y), cu.fbp(A, y), A.to('cpu')(torch.rand(8, 8))\n"],
        capture_output=True, text=True, timeout=300)
    assert ours.returncode == 0, ours.stderr
