"""Tests of course_utils.learning.reconstructors: lesson 12's U-Nets and learned primal-dual."""

import pytest
import torch

import course_utils as cu
from course_utils.learning import reconstructors
from course_utils.tools import cli


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The rebuild command on a tiny budget, and what it wrote, loaded."""
    from course_utils.tools import reconstructors as command
    out = tmp_path_factory.mktemp("reconstructors") / "r.pt"
    assert command.main(["--out", str(out), "--unet-steps", "20", "--lpd-steps", "10",
                         "--n-train", "16", "--n-members", "2", "--unet-width", "4",
                         "--lpd-channels", "4"]) == 0
    return out, cu.load_reconstructors(out)


@pytest.fixture(scope="module")
def val():
    setting = cu.SparseViewSetting(64, n_train=0, n_val=32, n_test=0)
    setting.tune_fbp()
    return setting, setting.val[:3]


def test_rebuild_command_writes_what_lesson_12_loads(built, val):
    _, r = built
    setting, data = val
    assert isinstance(r, cu.Reconstructors) and len(r.unets) == 2
    assert (r.fbp_filter, r.fbp_cutoff) == (setting.fbp_filter, setting.fbp_cutoff)
    assert torch.allclose(r.fbp(data.y), data.x_fbp, atol=1e-6)
    members = r.ensemble(data.x_fbp)
    assert members.shape == (2, 3, 1, 64, 64)
    assert torch.equal(r.unet(data.x_fbp), members[0])
    assert not torch.allclose(members[0], members[1], atol=1e-4), "members should differ"
    assert r.lpd(data.y).shape == (3, 1, 64, 64)
    assert r.lpd.A.range_shape == (30, setting.geometry.n_detectors)


def test_loaded_networks_are_in_eval_mode_and_frozen(built):
    _, r = built
    assert not any(m.training for m in r.modules())
    assert not any(p.requires_grad for p in r.parameters())
    moved = r.lpd.with_operator(cu.RadonTransform(64, cu.dival_geometry(64, 15)))
    assert not moved.training and not any(p.requires_grad for p in moved.parameters())
    y15 = moved.A(torch.rand(1, 1, 64, 64))
    assert moved(y15).shape == (1, 1, 64, 64)


def test_metadata_says_how_they_were_made(built):
    _, r = built
    m = r.metadata
    assert m["command"].startswith("dltomo reconstructors ")
    assert "--unet-steps 20" in m["command"] and "--lpd-steps 10" in m["command"]
    assert m["threads"] == 1 and m["n_train"] == 16 and m["n_val"] == 32
    assert "n_test=0" in m["training_data"]
    scores = m["val_psnr"]
    assert len(scores["unets"]) == 2 and len(m["losses"]["unets"]) == 2
    assert len(m["losses"]["lpd"]) == 10
    assert all(15 < v < 50 for v in [scores["fbp"], scores["ensemble_mean"], scores["lpd"],
                                      *scores["unets"]])


def test_save_and_load_give_the_same_networks(tmp_path, val):
    _, data = val
    torch.manual_seed(0)
    r = cu.Reconstructors(n_members=2, unet_width=4, lpd_iterations=2, lpd_channels=4,
                          fbp_filter="hann", fbp_cutoff=0.8)
    with torch.no_grad():
        for p in r.parameters():
            p.add_(0.05 * torch.randn(p.shape))
    r.metadata = {"note": "made up"}
    r.eval()
    path = cu.save_reconstructors(r, tmp_path / "r.pt", extra=3)
    loaded = cu.load_reconstructors(path)
    assert loaded.metadata == {"note": "made up", "extra": 3}
    assert (loaded.fbp_filter, loaded.fbp_cutoff, loaded.lpd_iterations) == ("hann", 0.8, 2)
    with torch.no_grad():
        assert torch.allclose(loaded.ensemble(data.x_fbp), r.ensemble(data.x_fbp), atol=1e-6)
        assert torch.allclose(loaded.lpd(data.y), r.lpd(data.y), atol=1e-6)


def test_missing_file_names_the_rebuild_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="dltomo reconstructors"):
        cu.load_reconstructors(tmp_path / "missing.pt")


def test_a_checkpoint_of_another_kind_is_refused_clearly(tmp_path):
    unet = cu.save_checkpoint(cu.UNet(width=4), tmp_path / "unet.pt", epoch=3)
    with pytest.raises(ValueError, match="of a UNet, not of the course's reconstructors"):
        cu.load_reconstructors(unet)
    prior = cu.save_diffusion_prior(cu.DiffusionPrior(width=4, depth=2, n_timesteps=10),
                                    tmp_path / "prior.pt")
    with pytest.raises(ValueError, match="DiffusionPrior"):
        cu.load_reconstructors(prior)


def test_save_refuses_other_objects_and_other_scanners(tmp_path):
    with pytest.raises(TypeError, match="Reconstructors"):
        cu.save_reconstructors(cu.UNet(width=4), tmp_path / "x.pt")
    fan = cu.RadonTransform(16, cu.ParallelBeam(n_angles=6, n_detectors=23))
    r = cu.Reconstructors(n_members=1, unet_width=4, lpd_iterations=1, lpd_channels=4, A=fan)
    with pytest.raises(ValueError, match="dival_geometry"):
        cu.save_reconstructors(r, tmp_path / "x.pt")


def test_training_needs_the_fbp_and_whole_epochs():
    setting = cu.SparseViewSetting(16, n_train=2, n_val=2, n_test=0)
    with pytest.raises(RuntimeError, match="tune_fbp"):
        cu.train_reconstructors(setting)
    setting.tune_fbp()
    with pytest.raises(ValueError, match="unet_steps must be a positive multiple of 10"):
        cu.train_reconstructors(setting, unet_steps=25)


def test_training_is_repeatable_and_members_start_apart():
    setting = cu.SparseViewSetting(16, n_train=8, n_val=4, n_test=0)
    setting.tune_fbp()
    tiny = dict(n_members=2, unet_width=4, unet_steps=10, unet_batch=2, lpd_steps=10,
                lpd_batch=2, lpd_iterations=1, lpd_channels=4, progress=False)
    lines = []
    first = cu.train_reconstructors(setting, **tiny, log=lines.append)
    second = cu.train_reconstructors(setting, **tiny)
    assert len(lines) == 3 and "U-Net 1/2" in lines[0] and "primal-dual" in lines[2]
    a, b = first.state_dict(), second.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert first.metadata["val_psnr"] == second.metadata["val_psnr"]
    # each member has its own seed (initialisation and batches): their weights differ
    w0, w1 = (net.down[0][0].weight for net in first.unets)
    assert not torch.allclose(w0, w1)
    assert not first.training and first.lpd.A is setting.A


def test_the_holder_is_not_itself_a_network():
    r = cu.Reconstructors(n_members=1, unet_width=4, lpd_iterations=1, lpd_channels=4)
    assert (r.image_size, r.n_angles) == (64, 30)
    with pytest.raises(TypeError, match="r.ensemble"):
        r(torch.zeros(1, 1, 64, 64))


def test_the_names_are_exported_and_the_command_is_wired():
    assert set(reconstructors.__all__) == {"Reconstructors", "train_reconstructors",
                                           "save_reconstructors", "load_reconstructors",
                                           "RECONSTRUCTORS_PATH"}
    assert cu.RECONSTRUCTORS_PATH.name == "reconstructors_64.pt"
    assert cu.RECONSTRUCTORS_PATH.parent.name == "data"
    assert cli.SUBCOMMANDS["reconstructors"][0] == "reconstructors"
    assert cli.SUBCOMMANDS["ctslices"][0] == "ct_slices"
    assert "reconstructors" in cli.usage() and "ctslices" in cli.usage()


def test_the_subcommand_has_help(capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main(["reconstructors", "--help"])
    assert exit.value.code == 0
    text = capsys.readouterr().out
    assert "dltomo reconstructors" in text and "--lpd-steps" in text


def test_shipped_file_loads_is_small_and_beats_fbp(val):
    setting, _ = val
    r = cu.load_reconstructors()
    assert reconstructors.RECONSTRUCTORS_PATH.stat().st_size < 5e6
    assert "dltomo reconstructors" in r.metadata["command"]
    assert (len(r.unets), r.image_size, r.n_angles) == (4, 64, 30)
    assert (r.fbp_filter, r.fbp_cutoff) == (setting.fbp_filter, setting.fbp_cutoff)
    data = setting.val[:8]
    with torch.no_grad():
        fbp = cu.psnr(data.x_fbp, data.x, data_range=1).mean()
        unet = cu.psnr(r.unet(data.x_fbp), data.x, data_range=1).mean()
        lpd = cu.psnr(r.lpd(data.y), data.x, data_range=1).mean()
    assert float(unet) > float(fbp) + 2 and float(lpd) > float(fbp) + 2
