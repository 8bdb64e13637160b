"""``benchmarks/ellipses.py`` runs, resumes, and keeps every image's scores.

The ``smoke`` budget trains every learned row for one epoch on 16 images, so the script's
whole path (setting, training, scoring, the locked merge into the CSV files, the
Markdown) runs in seconds; its numbers mean nothing.  The shipped table itself is
checked in ``tests/learning/test_evaluation.py``.
"""

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import course_utils as cu

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "ellipses.py"


def run(out, *methods, n_test=5):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--budget", "smoke", "--n-test", str(n_test),
         "--n-val", "4", "--out", str(out), "--methods", *methods],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    first = run(out, "lfbp", "lgd", "dip", "nf")
    second = run(out, "unet", "pnp")   # a second run adds its rows next to the first's
    third = run(out, "lfbp", "unet")   # everything asked for is there: nothing recomputed
    return out, first, second, third


def test_rows_of_separate_runs_are_merged_in_the_table_order(results):
    out, *_ = results
    with (out / "ellipses_smoke_area.csv").open() as handle:
        methods = [row["method"] for row in csv.DictReader(handle)]
    assert methods == ["learned FBP (filter)", "FBP + U-Net", "learned gradient descent",
                       "plug-and-play (U-Net denoiser)", "DIP", "neural field"]
    header = (out / "ellipses_smoke_area.md").read_text().splitlines()[0]
    assert header.startswith("Ellipses benchmark, budget `smoke`, sampling `area`, 5 test "
                             "images (DIP rows: the first 2; neural field: the first 2)")


def test_every_row_keeps_its_per_image_scores(results):
    out, *_ = results
    rows, _ = cu.load_results("ellipses_smoke_area", folder=out)
    for row in rows:
        # the deep image prior and the neural field fit a network per image: the budget's
        # first few only
        n = 2 if row["method"] in ("DIP", "neural field") else 5
        assert row["images"].tolist() == list(range(n))
        assert row["PSNR per image"].shape == (n,)
        assert row["PSNR per image"].mean().item() == pytest.approx(row["PSNR (dB)"], abs=1e-6)
        assert row["SSIM per image"].mean().item() == pytest.approx(row["SSIM"], abs=1e-6)
    d = cu.paired_difference(rows[1], rows[0])
    assert d.n == 5 and d.low <= d.mean <= d.high
    for fitted in rows[-2:]:                                    # DIP, neural field
        assert cu.paired_difference(fitted, rows[0]).n == 2     # on their 2 images
        assert fitted["time / image (ms)"] > 0 and fitted["parameters"] > 0


def test_a_finished_group_is_not_computed_again(results):
    _, first, second, third = results
    computed = re.compile(r"^(\w+): \d+ s$", re.MULTILINE)      # "lfbp: 2 s"
    assert computed.findall(first) == ["lfbp", "lgd", "dip", "nf"]
    assert computed.findall(second) == ["unet", "pnp"]
    assert computed.findall(third) == []
    assert "lfbp: already done" in third and "unet: already done" in third


def test_an_unknown_group_is_named(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), "--budget", "smoke", "--methods",
                             "nonsense", "--n-test", "2", "--n-val", "2", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "unknown method group 'nonsense'" in result.stderr


def test_dip_tv_takes_its_weight_grid_from_the_tv_row(tmp_path):
    """DIP + TV's weights are λ_TV and λ_TV/3, with λ_TV read from the TV row's name."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("ellipses_benchmark", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    table = tmp_path / "t.csv"
    table.write_text("method,family\nFBP (hann, cut-off 0.5),classical\nTV (λ=9.05),classical\n")
    assert script._tv_weight(None, table) == pytest.approx(9.05)
    assert script.ROWS["diptv"] == {"DIP + TV"} and "diptv" in script.METHODS
    asked = {}
    script._dip_rows = lambda setting, budget, device, name, candidates: asked.update(
        {name: candidates}) or []
    script.dip_tv_row(None, {}, "cpu", csv_path=table)
    script.dip_row(None, {}, "cpu")
    assert asked["DIP + TV"] == [(9.05, 1e-3), (9.05, 1e-2), (9.05 / 3, 1e-3), (9.05 / 3, 1e-2)]
    assert asked["DIP"] == [(0.0, 1e-3), (0.0, 1e-2)]


def test_a_shorter_field_fit_is_the_start_of_a_longer_one():
    """The neural field's step count is chosen on validation from the PSNR recorded along
    one long fit; a test fit of k steps must give that fit's image at step k, so the
    learning-rate schedule runs over the budget's steps, not over k."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("ellipses_benchmark", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    setting = cu.SparseViewSetting(size=16, n_train=1, n_val=1, n_test=1, n_angles=6)
    budget = dict(nf_steps=6, nf_every=2, nf_rays=32)
    y, x = setting.test.y, setting.test.x
    long_image, _, psnr, parameters = script._field_fit(y, x, setting, budget, 3.0, 6, "cpu",
                                                        record=True)
    short_image, seconds, _, _ = script._field_fit(y, x, setting, budget, 3.0, 4, "cpu")
    assert len(psnr) == 3 and seconds > 0 and parameters > 0
    assert float(cu.psnr(short_image, x, data_range=1.0)) == pytest.approx(psnr[1], abs=1e-3)
    assert not torch.allclose(short_image, long_image)
