"""Tests of the real CT slices of lesson 12: cu.real_ct_slices and dltomo ctslices."""

from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import torch

import course_utils as cu
from course_utils.simulation.phantoms import real_ct_slices
from course_utils.tools import ct_slices

SHIPPED = Path(__file__).resolve().parents[2] / "data" / "ct_slices.npz"
NAMES = ["CT_small", "eCT_Supplemental frame 0", "eCT_Supplemental frame 1"]


def _needs_pydicom_data():
    """Skip where pydicom-data (only needed to rebuild the file) is not installed."""
    try:
        metadata.distribution("pydicom-data")
    except metadata.PackageNotFoundError:
        pytest.skip("pydicom-data is not installed (pip install pydicom-data)")


def _block_mean(x: np.ndarray, k: int) -> np.ndarray:
    n = x.shape[-1] // k
    return x.reshape(*x.shape[:-2], n, k, n, k).mean(axis=(-3, -1))


# --- the shipped file -------------------------------------------------------------------

def test_shipped_file_is_small_and_described():
    assert SHIPPED.is_file()
    assert SHIPPED.stat().st_size < 1_000_000
    with np.load(SHIPPED, allow_pickle=False) as data:
        assert data["hu"].dtype == np.int16 and data["hu"].shape == (3, 256, 256)
        assert list(data["names"]) == NAMES
        assert len(data["sources"]) == 3
        assert "CT_small.dcm" in data["sources"][0] and "pydicom " in data["sources"][0]
        for k in (1, 2):
            assert "eCT_Supplemental.dcm" in data["sources"][k]
            assert "pydicom-data" in data["sources"][k]
        # no CQ500 slice (CC BY-NC-SA 4.0 cannot be shipped in an MIT repository)
        assert not any("693" in str(source) for source in data["sources"])
        # pixel sizes after resampling: 0.661 / 2 (upsampled), 0.3887 * 2 mm
        assert np.allclose(data["pixel_mm"], [0.330734, 0.777344, 0.777344], atol=1e-5)
        provenance = str(data["provenance"])
        for words in ("CT1_UNC", "nemamfct", "dltomo ctslices", "left out"):
            assert words in provenance, words
        hu = data["hu"]
    # air at -1024 (the masked brain), soft tissue near 0-80 HU, bone in CT_small
    assert hu.min() == -1024
    assert hu[0].min() > -1000 and hu[0].max() > 1000     # no air; a dense vertebra
    for k in (1, 2):                      # the masked brain: tissue below 200 HU, or air
        tissue = hu[k][hu[k] > -100]
        assert tissue.max() < 200 and 20 < np.median(tissue) < 60


# --- cu.real_ct_slices ------------------------------------------------------------------

@pytest.mark.parametrize("size, factor", [(64, 1), (64, 4), (32, 2), (256, 1), (1, 1)])
def test_shapes_dtype_and_range(size, factor):
    x = cu.real_ct_slices(size, factor)
    side = size * factor
    assert x.shape == (3, 1, side, side) and x.dtype == torch.float32
    assert x.min() >= 0 and x.max() <= 1
    if side >= 64:
        assert float(x.min()) == 0.0                  # air
        assert float(x[0].max()) > 0.9                # the vertebra of CT_small


def test_scale_follows_hounsfield_units():
    x = real_ct_slices(256, dtype=torch.float64)[:, 0].numpy()
    with np.load(SHIPPED) as data:
        hu = data["hu"].astype(np.float64)
    assert np.allclose(x, np.clip((hu + 1000) / 2000, 0, 1), atol=1e-12)
    # water 0.5: the brain of the enhanced CT is close to it
    brain = x[1][x[1] > 0.3]
    assert abs(np.median(brain) - 0.5) < 0.05


def test_factor_1_is_the_block_mean_of_factor_4():
    coarse = real_ct_slices(64)
    fine = real_ct_slices(64, factor=4)
    assert fine.shape == (3, 1, 256, 256)
    pooled = torch.nn.functional.avg_pool2d(fine, 4)
    assert torch.allclose(pooled, coarse, atol=1e-6)
    # and the fine grid holds more detail than the coarse one repeated
    repeated = coarse.repeat_interleave(4, dim=2).repeat_interleave(4, dim=3)
    assert (fine - repeated).abs().mean() > 1e-3


def test_float64_and_device():
    x64 = real_ct_slices(32, 2, dtype=torch.float64, device="cpu")
    x32 = real_ct_slices(32, 2)
    assert x64.dtype == torch.float64 and x64.device.type == "cpu"
    assert torch.allclose(x64.float(), x32, atol=1e-6)
    with pytest.raises(TypeError, match="dtype"):
        real_ct_slices(64, dtype=torch.int16)


@pytest.mark.parametrize("size, factor", [(48, 1), (100, 1), (128, 4), (3, 2)])
def test_a_size_that_does_not_divide_256_fails_clearly(size, factor):
    with pytest.raises(ValueError, match="must divide 256"):
        real_ct_slices(size, factor)


def test_bad_arguments_fail_clearly():
    with pytest.raises(ValueError, match="size"):
        real_ct_slices(0)
    with pytest.raises(ValueError, match="factor"):
        real_ct_slices(64, 0)
    with pytest.raises(TypeError, match="size"):
        real_ct_slices(64.0)


def test_a_missing_file_names_the_rebuild_command(tmp_path):
    missing = tmp_path / "nowhere" / "ct_slices.npz"
    with pytest.raises(FileNotFoundError, match="dltomo ctslices") as error:
        real_ct_slices(64, path=missing)
    assert str(missing) in str(error.value) and "pip install pydicom-data" in str(error.value)


def test_another_file_is_read_through_path(tmp_path):
    hu = np.full((2, 256, 256), -1000, dtype=np.int16)
    hu[1, :128] = 1000
    np.savez_compressed(tmp_path / "two.npz", hu=hu)
    x = real_ct_slices(2, path=tmp_path / "two.npz")
    assert x.shape == (2, 1, 2, 2)
    assert torch.equal(x[0], torch.zeros(1, 2, 2))
    assert torch.allclose(x[1, 0], torch.tensor([[1.0, 1.0], [0.0, 0.0]]))
    np.savez_compressed(tmp_path / "bad.npz", hu=hu[:, :128])
    with pytest.raises(ValueError, match="256 x 256"):
        real_ct_slices(64, path=tmp_path / "bad.npz")


# --- CT_small against cu.ct_slice() -----------------------------------------------------

def _smooth_like_bilinear_2x_then_average(image: np.ndarray) -> np.ndarray:
    """What bilinear 2x upsampling followed by 2x2 averaging does: [1/8, 3/4, 1/8] per axis."""
    for axis in (0, 1):
        padded = np.pad(image, [(1, 1) if a == axis else (0, 0) for a in (0, 1)], mode="edge")
        lo, mid, hi = (np.take(padded, range(s, s + image.shape[axis]), axis=axis)
                       for s in (0, 1, 2))
        image = 0.125 * lo + 0.75 * mid + 0.125 * hi
    return image


def test_ct_small_agrees_with_ct_slice():
    # real_ct_slices(128): CT_small upsampled 128 -> 256 (bilinear), then averaged back
    x = real_ct_slices(128, dtype=torch.float64)[0, 0].numpy()
    mu = cu.ct_slice(dtype=torch.float64).numpy()
    # the same Hounsfield units on the two scales: x = mu / (2 mu_water) (no air in CT_small)
    reference = np.clip(mu / (2 * cu.MU_WATER), 0, 1)
    difference = np.abs(x - reference)
    # the round trip blurs by [1/8, 3/4, 1/8]: small on average, a few per cent at edges
    assert difference.mean() < 0.01 and difference.max() < 0.06
    # flipped or shifted images would differ far more
    assert np.abs(x - reference[::-1]).mean() > 0.05
    assert np.abs(x - reference[:, ::-1]).mean() > 0.05
    assert np.abs(x - np.roll(reference, 2, axis=1)).mean() > 0.02


def test_ct_small_is_the_bilinear_upsampling_of_ct_slice():
    # in HU, exactly: the stored 256 x 256 slice, averaged 2x2, is CT_small blurred by
    # [1/8, 3/4, 1/8] along each axis, up to the rounding to whole HU
    with np.load(SHIPPED) as data:
        stored = _block_mean(data["hu"][0].astype(np.float64), 2)
    hu = 1000 * (cu.ct_slice(dtype=torch.float64).numpy() / cu.MU_WATER - 1)
    assert np.abs(stored - _smooth_like_bilinear_2x_then_average(hu)).max() <= 0.5 + 1e-6


# --- dltomo ctslices --------------------------------------------------------------------

def test_rebuild_reproduces_the_shipped_file(tmp_path, capsys):
    _needs_pydicom_data()
    out = tmp_path / "rebuilt.npz"
    assert ct_slices.main(["--out", str(out)]) == 0
    assert "saved" in capsys.readouterr().out
    with np.load(out) as new, np.load(SHIPPED) as old:
        assert list(new["names"]) == list(old["names"])
        assert new["hu"].dtype == np.int16
        assert np.allclose(new["hu"], old["hu"], atol=1)     # rounding may differ by 1 HU
        assert np.allclose(new["pixel_mm"], old["pixel_mm"])


def test_rebuild_follows_the_dicom_files():
    # the conversion, recomputed from the DICOM files: rescale, air floor, flip, averaging
    _needs_pydicom_data()
    import pydicom

    with np.load(SHIPPED) as data:
        hu = data["hu"].astype(np.float64)
    brain = pydicom.dcmread(ct_slices.pydicom_data_path("eCT_Supplemental.dcm"))
    frames = brain.pixel_array.astype(np.float64) - 1024     # intercept -1024, slope 1
    for k in range(2):
        expected = _block_mean(np.maximum(frames[k], -1024)[:, ::-1], 2)
        assert np.abs(expected - hu[1 + k]).max() <= 0.5
        # not flipped would be wrong
        assert np.abs(_block_mean(np.maximum(frames[k], -1024), 2) - hu[1 + k]).mean() > 10


def test_rebuild_without_pydicom_data_says_how_to_install_it(monkeypatch, tmp_path):
    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", not_installed)
    with pytest.raises(SystemExit, match="pip install pydicom-data"):
        ct_slices.main(["--out", str(tmp_path / "x.npz")])
    assert not (tmp_path / "x.npz").exists()


def test_rebuild_has_help(capsys):
    with pytest.raises(SystemExit) as exit:
        ct_slices.main(["--help"])
    assert exit.value.code == 0
    assert "dltomo ctslices" in capsys.readouterr().out
