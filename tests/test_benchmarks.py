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
    first = run(out, "lfbp", "lgd", "dip", "dipstop", "nf")
    second = run(out, "unet", "pnp", "dps")   # a second run adds its rows next to the first's
    third = run(out, "lfbp", "unet")   # everything asked for is there: nothing recomputed
    return out, first, second, third


def test_rows_of_separate_runs_are_merged_in_the_table_order(results):
    out, *_ = results
    with (out / "ellipses_smoke_area.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    methods = [row["method"] for row in rows]
    stopped = rows[methods.index("DIP (discrepancy stop)")]["budget"]
    assert re.search(r"τ = [0-9.]+, both chosen on 1 validation image; stops at steps "
                     r"\d+-\d+ \(median [0-9.]+, mean \d+; \d of 2 reached τ δ within 4\)", stopped), stopped
    assert methods == ["learned FBP (filter)", "FBP + U-Net", "learned gradient descent",
                       "plug-and-play (U-Net denoiser)", "diffusion posterior sampling", "DIP",
                       "DIP (discrepancy stop)", "neural field"]
    sampled = rows[methods.index("diffusion posterior sampling")]["budget"]
    assert re.search(r"mean of 2 samples of 3 DDIM steps, (each finished by CGLS to the "
                     r"data's noise level δ|not finished by CGLS \(the finish lost on "
                     r"validation\)); guidance [0-9.]+ and the finish chosen on 1 validation "
                     r"image; first 2 test images only", sampled), sampled
    header = (out / "ellipses_smoke_area.md").read_text().splitlines()[0]
    assert header.startswith("Ellipses benchmark, budget `smoke`, sampling `area`, 5 test "
                             "images (DIP rows: the first 2; diffusion posterior sampling: "
                             "the first 2; neural field: the first 2)")


def test_every_row_keeps_its_per_image_scores(results):
    out, *_ = results
    rows, _ = cu.load_results("ellipses_smoke_area", folder=out)
    for row in rows:
        # the deep image prior and the neural field fit a network per image, and diffusion
        # posterior sampling draws samples per image: the budget's first few only
        per_image = row["method"].startswith(("DIP", "neural field", "diffusion"))
        n = 2 if per_image else 5
        assert row["images"].tolist() == list(range(n))
        assert row["PSNR per image"].shape == (n,)
        assert row["PSNR per image"].mean().item() == pytest.approx(row["PSNR (dB)"], abs=1e-6)
        assert row["SSIM per image"].mean().item() == pytest.approx(row["SSIM"], abs=1e-6)
    d = cu.paired_difference(rows[1], rows[0])
    assert d.n == 5 and d.low <= d.mean <= d.high
    for fitted in rows[-4:]:              # diffusion sampling, the two DIP rows, neural field
        assert cu.paired_difference(fitted, rows[0]).n == 2     # on their 2 images
        assert fitted["time / image (ms)"] > 0 and fitted["parameters"] > 0


def test_a_finished_group_is_not_computed_again(results):
    _, first, second, third = results
    computed = re.compile(r"^(\w+): \d+ s$", re.MULTILINE)      # "lfbp: 2 s"
    assert computed.findall(first) == ["lfbp", "lgd", "dip", "dipstop", "nf"]
    assert computed.findall(second) == ["unet", "pnp", "dps"]
    assert computed.findall(third) == []
    assert "lfbp: already done" in third and "unet: already done" in third


def test_the_split_sizes_are_recorded_and_kept(results, tmp_path):
    """Rows scored on splits of other sizes are refused: a split's noise depends on its
    size, so they would be paired on different data."""
    import json

    out, *_ = results
    assert json.loads((out / "ellipses_smoke_area.splits.json").read_text()) == \
        {"n_val": 4, "n_test": 5}
    for folder, record in ((out, None), (tmp_path, None), (tmp_path, {"n_val": 4, "n_test": 9})):
        if folder == tmp_path:        # a table without a record, then one with another size
            (tmp_path / "ellipses_smoke_area.csv").write_text("method,family\nFBP,classical\n")
            if record:
                (tmp_path / "ellipses_smoke_area.splits.json").write_text(json.dumps(record))
        result = subprocess.run([sys.executable, str(SCRIPT), "--budget", "smoke", "--n-test",
                                 "3", "--n-val", "4", "--out", str(folder), "--methods", "lfbp"],
                                capture_output=True, text=True, timeout=300)
        assert result.returncode != 0, result.stdout
        assert "this run asks for --n-val 4 --n-test 3" in result.stderr, result.stderr
        assert ("no record" if folder == tmp_path and not record else
                f"--n-test {(record or {'n_test': 5})['n_test']}") in result.stderr


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


def test_the_discrepancy_stop_ends_the_fit_where_the_full_fit_would_stop():
    """The "DIP (discrepancy stop)" row picks τ from one validation fit per image (every
    larger τ stops on the way) and ends each test fit at its stop: the stopped fit must be
    the start of the full one, and stop at the step the full fit's misfits give."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("ellipses_benchmark", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script._discrepancy_step([5.0, 4.0, 3.0, 2.0], 2.5, 1.0) == 4
    assert script._discrepancy_step([5.0, 4.0, 3.0, 2.0], 2.5, 1.2) == 3
    assert script._discrepancy_step([5.0, 4.0], 1.0, 1.0) == 2       # never: the last step
    # τ is scored by the PSNR of the stopped image (step k is psnr[k - 1]), averaged over fits
    fits = [dict(misfit=[5.0, 4.0, 3.0, 2.0], psnr=[10.0, 20.0, 30.0, 25.0]),
            dict(misfit=[5.0, 2.9, 2.0, 1.0], psnr=[12.0, 22.0, 18.0, 16.0])]
    scores = script._tau_scores(fits, [2.5, 2.5], (1.0, 1.2))
    assert scores.tolist() == pytest.approx([(25.0 + 18.0) / 2, (30.0 + 22.0) / 2])

    setting = cu.SparseViewSetting(size=16, n_train=1, n_val=1, n_test=1, n_angles=6)
    A, budget = setting.A, dict(dip_width=2, dip_depth=2)
    y, x = setting.test.y, setting.test.x
    full, _ = script._dip_fit(y, x, A, budget, 0.0, 1e-2, 40)
    # a noise norm that the full fit's misfit reaches in the middle of the fit
    delta = full["misfit"][19]
    k = script._discrepancy_step(full["misfit"], delta, 1.0)
    assert k > 1
    stopped, _ = script._dip_fit(y, x, A, budget, 0.0, 1e-2, 40, noise_norm=delta)
    assert stopped["k_stop"] == k and len(stopped["misfit"]) == k
    assert stopped["misfit"] == pytest.approx(full["misfit"][:k], rel=1e-4)
    assert torch.allclose(stopped["x_stop"], stopped["x_last"])
    assert float(cu.psnr(stopped["x_stop"], x, data_range=1.0)) == pytest.approx(
        full["psnr"][k - 1], abs=1e-3)


def test_the_diffusion_model_is_trained_once_per_setting(tmp_path):
    """The "dps" row trains its diffusion model (lesson 11's, on the clean training
    images) and keeps it, so that a run interrupted while sampling does not train it
    again; a change of budget or training set trains a new one."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("ellipses_benchmark", SCRIPT)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    setting = cu.SparseViewSetting(size=16, n_train=4, n_val=1, n_test=1, n_angles=6)
    budget = dict(dps_width=2, dps_depth=2, dps_steps=3, dps_batch=2)
    cache = tmp_path / "diffusion.pt"
    prior, seconds = script._diffusion_prior(setting, budget, "cpu", cache)
    assert cache.exists() and seconds > 0
    again, seconds_again = script._diffusion_prior(setting, budget, "cpu", cache)
    assert seconds_again == pytest.approx(seconds)                  # read back, not retrained
    for p, q in zip(prior.net.parameters(), again.net.parameters()):
        assert torch.allclose(p, q)
    longer, _ = script._diffusion_prior(setting, {**budget, "dps_steps": 4}, "cpu", cache)
    assert longer.metadata["settings"]["dps_steps"] == 4
    assert not all(torch.allclose(p, q) for p, q in zip(prior.net.parameters(),
                                                          longer.net.parameters()))
    cache.write_bytes(b"not a checkpoint")            # a damaged file is trained again
    _, seconds_damaged = script._diffusion_prior(setting, budget, "cpu", cache)
    assert seconds_damaged != pytest.approx(seconds) and cache.stat().st_size > 100
