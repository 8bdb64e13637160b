"""Tests of course_utils.learning.evaluation: table rows and the classical baselines."""

import math

from pathlib import Path

import pytest
import torch

import course_utils as cu

COLUMNS = ["method", "PSNR (dB)", "PSNR ±95%", "SSIM", "SSIM ±95%", "time / image (ms)",
           "parameters", "PSNR per image", "SSIM per image"]


@pytest.fixture(scope="module")
def setting():
    setting = cu.SparseViewSetting(size=32, n_train=4, n_val=8, n_test=8)
    setting.tune_fbp()
    return setting


def test_row_of_fbp_and_oracle(setting):
    test = setting.test
    row = cu.evaluate(setting.fbp, test, name="FBP")
    assert list(row) == COLUMNS
    expected = cu.psnr(test.x_fbp, test.x, data_range=1.0).flatten()
    assert row["PSNR (dB)"] == pytest.approx(float(expected.mean()), rel=1e-5)
    assert torch.allclose(row["PSNR per image"], expected.double(), rtol=1e-5)
    # the 95 % t-interval of the mean: t_{0.975, 7} = 2.365 for 8 images
    half = 2.365 * float(expected.std()) / math.sqrt(len(expected))
    assert row["PSNR ±95%"] == pytest.approx(half, rel=1e-3)
    assert 0 < row["SSIM"] < 1 and row["time / image (ms)"] > 0 and row["parameters"] == 0

    oracle = cu.evaluate(lambda y: test.x, test, name="oracle", batch_size=len(test))
    assert math.isinf(oracle["PSNR (dB)"]) and oracle["SSIM"] == pytest.approx(1.0)

    # a pair of tensors: score the FBP images themselves (identity on FBP)
    same = cu.evaluate(lambda x: x, (test.x_fbp, test.x), name="identity on FBP")
    assert same["PSNR (dB)"] == pytest.approx(row["PSNR (dB)"], rel=1e-5)
    text = str(cu.results_table([row, same]))
    assert "identity on FBP" in text and "time / image (ms)" in text
    assert "PSNR ±95%" in text and "per image" not in text


def test_module_mode_and_parameters(setting):
    torch.manual_seed(0)
    net = cu.UNet(depth=2, width=4)
    net.train()
    row = cu.evaluate(net, (setting.test.x_fbp, setting.test.x), batch_size=3)
    assert row["method"] == "UNet" and row["parameters"] == cu.count_parameters(net)
    assert net.training          # put back in training mode afterwards
    # an untrained residual U-Net is the identity: it scores like FBP
    fbp_row = cu.evaluate(setting.fbp, setting.test)
    assert row["PSNR (dB)"] == pytest.approx(fbp_row["PSNR (dB)"], rel=1e-5)
    wrapped = cu.evaluate(lambda y: net(setting.fbp(y)), setting.test, name="FBPConvNet",
                          parameters=cu.count_parameters(net))
    assert wrapped["parameters"] == row["parameters"]


def test_bad_inputs(setting):
    with pytest.raises(ValueError, match="targets' shape"):
        cu.evaluate(lambda y: y, setting.test, name="sinogram out")
    with pytest.raises(TypeError, match="data must be"):
        cu.evaluate(setting.fbp, setting.test.y)
    with pytest.raises(TypeError, match="reconstruct must be"):
        cu.evaluate("FBP", setting.test)


def test_classical_baselines_tv_beats_fbp():
    """The claim of lesson 02 in the shared setting: TV (and SIRT) beat FBP clearly.

    The validation and test images are those of the quick-mode default setting
    (64 x 64), fewer of them to keep the test fast.
    """
    setting = cu.SparseViewSetting(size=64, n_train=0, n_val=8, n_test=8)
    rows = cu.classical_baselines(setting, n_tune=8)
    assert all(row["PSNR ±95%"] > 0 for row in rows)
    names = [row["method"] for row in rows]
    assert [name.split()[0] for name in names] == ["FBP", "SIRT", "CGLS", "TV"]
    fbp, sirt, cgls, tv = (row["PSNR (dB)"] for row in rows)
    assert cu.paired_difference(rows[3], rows[0]).low > 3      # measured: about 6 dB
    assert cu.paired_difference(rows[1], rows[0]).low > 0.5    # measured: about 2 dB
    assert rows[3]["SSIM"] > rows[0]["SSIM"] + 0.1
    # tuned once per setting: a second call gives back the very same methods, and the
    # setting itself holds no scores (only the FBP it was asked to choose)
    methods = cu.classical_methods(setting, n_tune=8)
    assert list(methods) == names
    again = cu.classical_methods(setting, n_tune=8)
    assert all(again[name] is methods[name] for name in names)
    assert again.tuning == methods.tuning and "TV weight" in methods.tuning
    assert not hasattr(setting, "cache")
    assert methods.tuning["FBP"] == (setting.fbp_filter, setting.fbp_cutoff)
    # and they are the methods that were scored
    tv_row = cu.evaluate(methods[names[3]], setting.test, name=names[3])
    assert tv_row["PSNR (dB)"] == pytest.approx(tv, abs=1e-4)


def test_paired_difference():
    a = [30.0, 31.0, 29.5, 30.2, 28.0]
    b = [29.0, 30.1, 28.9, 29.0, 27.5]
    d = cu.paired_difference(a, b)
    diffs = torch.tensor(a, dtype=torch.float64) - torch.tensor(b, dtype=torch.float64)
    half = 2.776 * float(diffs.std()) / math.sqrt(5)            # t_{0.975, 4} = 2.776
    assert d.mean == pytest.approx(float(diffs.mean()))
    assert d.low == pytest.approx(d.mean - half, rel=1e-3)
    assert d.high == pytest.approx(d.mean + half, rel=1e-3)
    assert d.n == 5 and d.low > 0
    # pairing matters: the same scores shuffled give a wide, inconclusive interval
    shuffled = cu.paired_difference(a, [b[4], b[2], b[0], b[3], b[1]])
    assert shuffled.high - shuffled.low > 3 * (d.high - d.low)
    assert "95 % CI" in str(d) and "dB" in str(d)
    with pytest.raises(ValueError, match="same images"):
        cu.paired_difference(a, b[:4])
    with pytest.raises(ValueError, match="metric"):
        cu.paired_difference(a, b, metric="MSE")
    with pytest.raises(ValueError, match="per-image"):
        cu.paired_difference({"method": "X", "PSNR (dB)": 3.0}, b)


def test_paired_difference_of_rows(setting):
    fbp = cu.evaluate(setting.fbp, setting.test, name="FBP")
    ram_lak = cu.evaluate(lambda y: cu.fbp(setting.A, y), setting.test, name="Ram-Lak")
    d = cu.paired_difference(fbp, ram_lak)
    assert d.names == ("FBP", "Ram-Lak") and d.n == len(setting.test)
    assert d.mean == pytest.approx(fbp["PSNR (dB)"] - ram_lak["PSNR (dB)"], abs=1e-9)
    s = cu.paired_difference(fbp, ram_lak, metric="SSIM")
    assert s.mean == pytest.approx(fbp["SSIM"] - ram_lak["SSIM"], abs=1e-9)


def test_mean_interval():
    mean, half = cu.mean_interval([1.0, 2.0, 3.0])
    assert mean == pytest.approx(2.0) and half == pytest.approx(4.303 / math.sqrt(3), rel=1e-3)
    assert math.isnan(cu.mean_interval([5.0])[1])
    with pytest.raises(ValueError):
        cu.mean_interval([])


def test_tv_baseline_is_converged_and_finely_tuned():
    """Quick mode: a twice finer weight grid, or twice the iterations, gains < 0.05 dB."""
    setting = cu.SparseViewSetting(size=64, n_train=0, n_val=32, n_test=0)
    val = setting.val
    methods = cu.classical_methods(setting)
    tuning = methods.tuning
    lam, scores = tuning["TV weight"], tuning["TV scores"]
    best = scores[lam]
    # the best weight is interior, and its neighbours on the final grid are worse
    assert min(scores) < lam < max(scores)
    # twice finer grid around the optimum
    finer, finer_scores = cu.tune_tv_weight(setting.A, val.y, val.x, start=lam,
                                            finest_ratio=2 ** 0.125)
    assert max(finer_scores.values()) - best < 0.05
    # twice the iterations (and a tolerance ten times stricter)
    longer = cu.tv_pdhg(setting.A, val.y, 6000, lam=lam, tol=1e-5)
    assert float(cu.psnr(longer, val.x, data_range=1.0).mean()) - best < 0.05
    # the iteration-count baselines are interior too
    assert 1 < tuning["SIRT iterations"] < 2000 and 1 < tuning["CGLS iterations"] < 60
    assert len(methods) == 4


def test_evaluate_scores_volumes_as_volumes():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 1, 4, 16, 16, generator=g)
    noisy = x + 0.05 * torch.randn(x.shape, generator=g)
    noisy[:, :, 0] += 0.5                              # one bad slice per volume
    row = cu.evaluate(lambda y: y, (noisy, x), name="identity", volumes=True)
    torch.testing.assert_close(row["PSNR per image"],
                               cu.psnr_3d(noisy, x, data_range=1.0).flatten().double())
    torch.testing.assert_close(row["SSIM per image"],
                               cu.ssim_3d(noisy, x, data_range=1.0).flatten().double())
    by_slices = cu.evaluate(lambda y: y, (noisy, x), name="identity")
    assert by_slices["PSNR (dB)"] > row["PSNR (dB)"] + 1.0


def test_pareto_front_by_hand():
    cost = [1.0, 2.0, 3.0, 2.0, 0.5, 4.0]
    quality = [20.0, 25.0, 24.0, 25.0, 10.0, 30.0]
    # 3.0/24 is beaten by 2.0/25; the two identical 2.0/25 points are both kept
    assert cu.pareto_front(cost, quality).tolist() == [True, True, False, True, True, True]
    assert cu.pareto_front([1.0], [1.0]).tolist() == [True]
    # equal cost: only the better quality survives
    assert cu.pareto_front([1.0, 1.0], [2.0, 3.0]).tolist() == [False, True]
    with pytest.raises(ValueError, match="one value per method"):
        cu.pareto_front([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="nan"):
        cu.pareto_front([1.0, float("nan")], [1.0, 2.0])


def test_significance_ranks_follow_the_paired_intervals():
    g = torch.Generator().manual_seed(0)
    difficulty = 30 + 3 * torch.randn(30, generator=g, dtype=torch.float64)

    def row(name, shift, spread=0.05):
        scores = difficulty + shift + spread * torch.randn(30, generator=g, dtype=torch.float64)
        return {"method": name, "PSNR (dB)": float(scores.mean()), "PSNR per image": scores}

    rows = {"best": row("best", 1.0), "tied": row("tied", 1.0), "worse": row("worse", 0.0),
            "worst": row("worst", -1.0)}
    assert cu.significance_ranks(rows) == {"best": 1, "tied": 1, "worse": 3, "worst": 4}
    # a list of rows works too, and one method alone is first
    assert cu.significance_ranks(list(rows.values()))["worst"] == 4
    assert cu.significance_ranks({"alone": rows["best"]}) == {"alone": 1}


def test_load_results_reads_the_shipped_benchmark(tmp_path):
    rows, provenance = cu.load_results()
    assert "Ellipses benchmark" in provenance and "test images" in provenance
    methods = [r["method"] for r in rows]
    assert any(m.startswith("TV") for m in methods) and "FBP + U-Net" in methods
    assert all(isinstance(r["PSNR (dB)"], float) and 15 < r["PSNR (dB)"] < 45 for r in rows)
    with pytest.raises(FileNotFoundError, match="benchmarks/ellipses.py"):
        cu.load_results("no_such_table", folder=tmp_path)


def test_shipped_rows_keep_every_image_for_paired_comparisons():
    rows, _ = cu.load_results()
    for r in rows:
        # the deep image prior and the neural field fit one network per image, diffusion
        # posterior sampling draws samples per image: the first 20 test images only
        per_image = r["method"].startswith(("DIP", "neural field", "diffusion"))
        n = 20 if per_image else 100
        assert r["images"].tolist() == list(range(n)), r["method"]
        assert r["PSNR per image"].shape == r["SSIM per image"].shape == (n,)
        # the per-image scores are the ones the table's mean was taken over
        assert r["PSNR per image"].mean().item() == pytest.approx(r["PSNR (dB)"], abs=1e-6)
        assert r["SSIM per image"].mean().item() == pytest.approx(r["SSIM"], abs=1e-6)
    fbp = next(r for r in rows if r["method"].startswith("FBP ("))
    tv = next(r for r in rows if r["method"].startswith("TV"))
    assert cu.paired_difference(tv, fbp).low > 3, "TV is several dB above FBP in full mode"


def test_shipped_tables_record_the_split_sizes_they_were_scored_on():
    """Each shipped table names the sizes of its splits, so that a later run with other
    sizes (other noise draws) cannot be merged into it (see benchmarks/ellipses.py)."""
    import json

    folder = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
    tables = sorted(folder.glob("ellipses_*_*.csv"))
    tables = [t for t in tables if not t.stem.endswith("_per_image")]
    assert tables
    for table in tables:
        splits = json.loads(table.with_suffix(".splits.json").read_text())
        header = table.with_suffix(".md").read_text().splitlines()[0]
        assert f", {splits['n_test']} test images" in header, (table.name, header)


def _write_table(folder, per_image_rows):
    (folder / "t.csv").write_text("method,family,PSNR (dB),SSIM\nA,x,30.5,0.9\nB,x,29.0,0.8\n")
    (folder / "t.md").write_text("Ellipses benchmark, made for a test.\n")
    lines = ["method,image,PSNR (dB),SSIM,SSIM (dival)"] + per_image_rows
    (folder / "t_per_image.csv").write_text("\n".join(lines) + "\n")


def test_load_results_orders_per_image_scores_by_image(tmp_path):
    _write_table(tmp_path, ["A,1,31,0.95,0.9", "A,0,30,0.85,0.8",
                            "B,0,29,0.8,0.7", "B,1,29,0.8,0.7"])
    rows, provenance = cu.load_results("t", folder=tmp_path)
    assert provenance == "Ellipses benchmark, made for a test."
    assert rows[0]["PSNR per image"].tolist() == [30.0, 31.0]
    assert rows[0]["SSIM per image"].tolist() == pytest.approx([0.85, 0.95])
    assert cu.paired_difference(rows[0], rows[1]).mean == pytest.approx(1.5)


def test_rows_scored_on_different_images_are_paired_on_the_shared_ones(tmp_path):
    _write_table(tmp_path, ["A,0,30,0.85,0.8", "A,1,31,0.95,0.9", "A,2,35,0.9,0.9",
                            "B,0,29,0.8,0.7", "B,1,29.5,0.8,0.7"])
    a, b = cu.load_results("t", folder=tmp_path)[0]
    assert a["images"].tolist() == [0, 1, 2] and b["images"].tolist() == [0, 1]
    d = cu.paired_difference(a, b)          # image 2 has no partner: left out
    assert d.n == 2 and d.mean == pytest.approx(1.25)
    assert cu.paired_difference(b, a).mean == pytest.approx(-1.25)
    with pytest.raises(ValueError, match="safely"):
        cu.paired_difference(a, b["PSNR per image"])     # bare scores: no indices to pair
    assert cu.paired_difference(a, [29.0, 29.5, 30.0]).n == 3    # images 0, 1, 2: fine
    b["images"] = torch.tensor([1, 0])            # the same images in another order
    b["PSNR per image"] = b["PSNR per image"].flip(0)
    assert cu.paired_difference(a, b).mean == pytest.approx(1.25)
    with pytest.raises(ValueError, match="safely"):  # bare scores against a subset 1, 0
        cu.paired_difference([30.0, 31.0], b)
    with pytest.raises(ValueError, match="same images only"):
        cu.significance_ranks([a, b])                # 3 images against 2: rank apart
    a["images"] = torch.tensor([5, 6, 7])
    with pytest.raises(ValueError, match="nothing to pair"):
        cu.paired_difference(a, b)
    a["images"] = torch.tensor([0, 0, 1])
    with pytest.raises(ValueError, match="twice"):
        cu.paired_difference(a, b)


def test_load_results_names_a_row_without_per_image_scores(tmp_path):
    _write_table(tmp_path, ["A,0,30,0.85,0.8", "A,1,31,0.95,0.9"])
    with pytest.raises(ValueError, match="no scores for 'B'"):
        cu.load_results("t", folder=tmp_path)
