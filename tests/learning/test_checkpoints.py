"""Tests of course_utils.learning.checkpoints: one file format for every network."""

import numpy as np
import pytest
import torch

import course_utils as cu


def tiny_unet(seed=0):
    torch.manual_seed(seed)
    return cu.UNet(depth=2, width=4)


def assert_same_weights(model, other):
    assert model.state_dict().keys() == other.state_dict().keys()
    for a, b in zip(model.state_dict().values(), other.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_round_trip(tmp_path):
    model = tiny_unet()
    path = cu.save_checkpoint(model, tmp_path / "runs" / "unet.pt", epoch=3, val_psnr=31.5,
                              sizes=[4, 8], scores={"psnr": 31.5, "ssim": None}, note="test")
    assert path == tmp_path / "runs" / "unet.pt" and path.is_file()
    copy = tiny_unet(seed=1)
    # the two random initialisations differ, so the comparison below can fail
    assert not torch.allclose(copy.down[0][0].weight, model.down[0][0].weight)
    metadata = cu.load_checkpoint(copy, path)
    assert metadata == {"epoch": 3, "val_psnr": 31.5, "sizes": [4, 8],
                        "scores": {"psnr": 31.5, "ssim": None}, "note": "test"}
    assert_same_weights(model, copy)


def test_the_file_format(tmp_path):
    path = cu.save_checkpoint(tiny_unet(), tmp_path / "unet.pt", epoch=1)
    checkpoint = cu.read_checkpoint(path)
    assert set(checkpoint) == {"model", "state_dict", "metadata"}
    assert checkpoint["model"] == "UNet" and checkpoint["metadata"] == {"epoch": 1}
    assert all(t.device.type == "cpu" for t in checkpoint["state_dict"].values())
    # a plain torch.load, safe mode, reads the same dictionary
    raw = torch.load(path, weights_only=True)
    assert set(raw) == {"model", "state_dict", "metadata"}


@pytest.mark.parametrize("metadata, where", [
    ({"optimizer": torch.optim.SGD}, "metadata['optimizer']"),
    ({"val_psnr": np.float64(31.5)}, "metadata['val_psnr']"),    # a subclass of float
    ({"sizes": [4, np.int64(8)]}, "metadata['sizes'][1]"),
    ({"scores": {"psnr": np.float32(1.0)}}, "metadata['scores']['psnr']"),
])
def test_metadata_must_be_plain_values(tmp_path, metadata, where):
    path = tmp_path / "bad.pt"
    with pytest.raises(TypeError, match="convert it") as error:
        cu.save_checkpoint(tiny_unet(), path, **metadata)
    assert where in str(error.value)
    assert not path.exists()                   # nothing half-written


def test_metadata_keys_must_be_strings(tmp_path):
    with pytest.raises(TypeError, match="keys must be strings"):
        cu.save_checkpoint(tiny_unet(), tmp_path / "bad.pt", scores={1: 0.5})


def test_only_modules_are_saved_and_loaded(tmp_path):
    with pytest.raises(TypeError, match="torch.nn.Module"):
        cu.save_checkpoint(tiny_unet().state_dict(), tmp_path / "bad.pt")
    path = cu.save_checkpoint(tiny_unet(), tmp_path / "unet.pt")
    with pytest.raises(TypeError, match="torch.nn.Module"):
        cu.load_checkpoint(tiny_unet().state_dict(), path)


def test_loading_into_the_wrong_architecture_says_what_differs(tmp_path):
    path = cu.save_checkpoint(tiny_unet(), tmp_path / "unet.pt")
    with pytest.raises(ValueError, match="does not fit") as error:
        cu.load_checkpoint(cu.UNet(depth=2, width=8), path)
    assert "saved (4, 1, 3, 3), model (8, 1, 3, 3)" in str(error.value)
    assert "same architecture" in str(error.value)
    with pytest.raises(ValueError, match="missing"):
        cu.load_checkpoint(cu.UNet(depth=3, width=4), path)
    with pytest.raises(ValueError, match=r"a UNet\) does not fit this Generator"):
        cu.load_checkpoint(cu.Generator(latent_dim=8, width=4), path)


def test_a_file_that_is_no_checkpoint_is_refused(tmp_path):
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    with pytest.raises(ValueError, match="not a checkpoint"):
        cu.load_checkpoint(tiny_unet(), tmp_path / "tensor.pt")


def test_generators_use_the_same_format(tmp_path):
    torch.manual_seed(0)
    G = cu.Generator(latent_dim=8, width=4).eval()
    path = cu.save_generator(G, tmp_path / "g.pt", steps=3)
    checkpoint = cu.read_checkpoint(path)
    assert checkpoint["model"] == "Generator"
    assert checkpoint["metadata"] == {"latent_dim": 8, "width": 4, "steps": 3}
    # ... so that load_checkpoint reads it into a generator of the same sizes
    H = cu.Generator(latent_dim=8, width=4)
    assert cu.load_checkpoint(H, path)["steps"] == 3
    assert_same_weights(G, H)
    # and load_generator refuses a checkpoint that does not say the sizes
    unet_path = cu.save_checkpoint(tiny_unet(), tmp_path / "unet.pt")
    with pytest.raises(ValueError, match="not of a generator"):
        cu.load_generator(unet_path)


def test_generators_saved_in_the_earlier_layout_still_load(tmp_path):
    """The layout of save_generator before the one format (that of the shipped file)."""
    torch.manual_seed(0)
    G = cu.Generator(latent_dim=8, width=4).eval()
    torch.save({"latent_dim": 8, "width": 4, "state_dict": G.state_dict(),
                "metadata": {"steps": 3}}, tmp_path / "old.pt")
    checkpoint = cu.read_checkpoint(tmp_path / "old.pt")
    assert checkpoint["model"] == "Generator"
    assert checkpoint["metadata"] == {"latent_dim": 8, "width": 4, "steps": 3}
    H = cu.load_generator(tmp_path / "old.pt")
    assert (H.latent_dim, H.width) == (8, 4) and H.metadata == {"steps": 3}
    assert_same_weights(G, H)


def test_the_shipped_generator_loads():
    checkpoint = cu.read_checkpoint(cu.GENERATOR_PATH)
    assert checkpoint["model"] == "Generator"
    sizes = {k: checkpoint["metadata"][k] for k in ("latent_dim", "width")}
    assert sizes == {"latent_dim": 128, "width": 8}
    G = cu.load_generator()
    assert (G.latent_dim, G.width) == (128, 8)
    assert "latent_dim" not in G.metadata and "command" in G.metadata
    # the generic loader reads it too, into a generator built with the saved sizes
    H = cu.Generator(**sizes)
    assert cu.load_checkpoint(H, cu.GENERATOR_PATH)["width"] == 8
    assert_same_weights(G, H)
