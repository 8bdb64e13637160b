"""Tests of course_utils.evaluation: table rows and the classical baselines."""

import math

import pytest
import torch

import course_utils as cu

COLUMNS = ["method", "PSNR (dB)", "PSNR std", "SSIM", "SSIM std", "time / image (ms)",
           "parameters"]


@pytest.fixture(scope="module")
def setting():
    return cu.SparseViewSetting(size=32, n_train=4, n_val=8, n_test=8)


def test_row_of_fbp_and_oracle(setting):
    test = setting.test
    row = cu.evaluate(setting.fbp, test, name="FBP")
    assert list(row) == COLUMNS
    expected = cu.psnr(test.x_fbp, test.x, data_range=1.0).flatten()
    assert row["PSNR (dB)"] == pytest.approx(float(expected.mean()), rel=1e-5)
    assert row["PSNR std"] == pytest.approx(float(expected.std()), rel=1e-4)
    assert 0 < row["SSIM"] < 1 and row["time / image (ms)"] > 0 and row["parameters"] == 0

    oracle = cu.evaluate(lambda y: test.x, test, name="oracle", batch_size=len(test))
    assert math.isinf(oracle["PSNR (dB)"]) and oracle["SSIM"] == pytest.approx(1.0)

    # a pair of tensors: score the FBP images themselves (identity on FBP)
    same = cu.evaluate(lambda x: x, (test.x_fbp, test.x), name="identity on FBP")
    assert same["PSNR (dB)"] == pytest.approx(row["PSNR (dB)"], rel=1e-5)
    text = str(cu.results_table([row, same]))
    assert "identity on FBP" in text and "time / image (ms)" in text


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
    names = [row["method"] for row in rows]
    assert [name.split()[0] for name in names] == ["FBP", "SIRT", "CGLS", "TV"]
    fbp, sirt, cgls, tv = (row["PSNR (dB)"] for row in rows)
    assert tv > fbp + 3          # measured: about 6 dB
    assert sirt > fbp + 1        # measured: about 3.5 dB
    assert rows[3]["SSIM"] > rows[0]["SSIM"] + 0.1
    # tuned once per setting: a second call gives back the very same methods
    methods = cu.classical_methods(setting, n_tune=8)
    assert list(methods) == names
    again = cu.classical_methods(setting, n_tune=8)
    assert all(again[name] is methods[name] for name in names)
    # and they are the methods that were scored
    tv_row = cu.evaluate(methods[names[3]], setting.test, name=names[3])
    assert tv_row["PSNR (dB)"] == pytest.approx(tv, abs=1e-4)
