"""Tests of course_utils.learning.gan: the networks, the losses, training, latent reconstruction."""

import math

import pytest
import torch

import course_utils as cu
from course_utils.learning import gan
from course_utils.tools import generator


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_generator_and_discriminator_shapes():
    torch.manual_seed(0)
    G, D = cu.Generator(latent_dim=16, width=4), cu.Discriminator(width=4)
    with torch.no_grad():
        x = G(torch.randn(3, 16))
    assert x.shape == (3, 1, 64, 64)
    assert float(x.min()) > 0 and float(x.max()) < 1          # a sigmoid output
    assert D(x).shape == (3,)
    assert G.sample(5, generator=torch.Generator().manual_seed(1)).shape == (5, 1, 64, 64)


def test_networks_reject_bad_input():
    G, D = cu.Generator(latent_dim=16, width=4), cu.Discriminator(width=4)
    with pytest.raises(ValueError, match=r"\(batch, 16\)"):
        G(torch.randn(3, 8))
    with pytest.raises(TypeError, match="torch.Tensor"):
        G([0.0] * 16)
    with pytest.raises(ValueError, match="64, 64"):
        D(torch.rand(2, 1, 32, 32))
    with pytest.raises(ValueError, match="positive"):
        cu.Generator(latent_dim=0)


def test_losses_match_their_formulas():
    logits_real = torch.tensor([2.0, -1.0, 0.5])
    logits_fake = torch.tensor([-3.0, 0.0])
    sigma = torch.sigmoid
    expected_D = (-torch.log(sigma(logits_real)).mean()
                  - torch.log(1 - sigma(logits_fake)).mean())
    assert torch.allclose(cu.discriminator_loss(logits_real, logits_fake), expected_D)
    assert torch.allclose(cu.generator_loss(logits_fake), -torch.log(sigma(logits_fake)).mean())


def test_train_gan_is_deterministic_and_records_losses():
    images = cu.EllipsesDataset(8, 64, seed=0, style="disc").tensors()

    def run():
        torch.manual_seed(0)
        G, D = cu.Generator(latent_dim=8, width=4), cu.Discriminator(width=4)
        history = cu.train_gan(G, D, images, steps=3, batch_size=4, seed=1, progress=False,
                                recalibration_batches=2)
        return G, history

    (G1, h1), (G2, h2) = run(), run()
    assert len(h1["loss_D"]) == len(h1["loss_G"]) == 3
    assert all(math.isfinite(v) for v in h1["loss_D"] + h1["loss_G"])
    assert h1 == h2
    for p, q in zip(G1.state_dict().values(), G2.state_dict().values()):
        assert torch.equal(p, q)
    assert not G1.training                       # left in evaluation mode


def test_train_gan_rejects_bad_images():
    G, D = cu.Generator(latent_dim=8, width=4), cu.Discriminator(width=4)
    with pytest.raises(ValueError, match="images"):
        cu.train_gan(G, D, torch.rand(4, 64, 64), steps=1, progress=False)


def test_latent_reconstruction_fits_data_in_the_range():
    torch.manual_seed(0)
    G = cu.Generator(latent_dim=8, width=4).eval().requires_grad_(False)
    geometry = cu.ParallelBeam(n_angles=8, n_detectors=92)
    A = cu.RadonTransform(image_size=64, geometry=geometry)
    z_true = torch.randn(2, 8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        y = A(G(z_true))
    with torch.no_grad():                        # works inside no_grad, as in cu.evaluate
        out = cu.latent_reconstruction(G, A, y, n_iter=60, lr=0.1, mu=0.0, n_restarts=2)
    assert out["x"].shape == (2, 1, 64, 64) and out["z"].shape == (2, 8)
    assert out["misfit"].shape == (61, 2) and out["restart"].shape == (2,)
    assert bool((out["misfit"][-1] < 0.5 * out["misfit"][0]).all())
    with torch.no_grad():                        # the reported misfit is that of x
        final = (A(out["x"]) - y).flatten(1).norm(dim=1)
    assert torch.allclose(final, out["misfit"][-1], rtol=1e-4)


def test_latent_reconstruction_prior_shrinks_z_and_checks_input():
    torch.manual_seed(0)
    G = cu.Generator(latent_dim=8, width=4).eval().requires_grad_(False)
    A = cu.RadonTransform(image_size=64, geometry=cu.ParallelBeam(n_angles=4, n_detectors=92))
    y = A(cu.EllipsesDataset(1, 64, seed=2, style="disc").tensors())
    small = cu.latent_reconstruction(G, A, y, n_iter=20, mu=1e4, n_restarts=1)["z"]
    free = cu.latent_reconstruction(G, A, y, n_iter=20, mu=0.0, n_restarts=1)["z"]
    assert float(small.norm()) < float(free.norm())
    with pytest.raises(ValueError, match="B, 1, n_angles"):
        cu.latent_reconstruction(G, A, y[0], n_iter=2)
    with pytest.raises(ValueError, match="mu"):
        cu.latent_reconstruction(G, A, y, n_iter=2, mu=-1.0)


def test_save_and_load_generator(tmp_path):
    torch.manual_seed(0)
    G = cu.Generator(latent_dim=8, width=4).eval()
    path = cu.save_generator(G, tmp_path / "g.pt", steps=3)
    H = cu.load_generator(path)
    z = torch.randn(2, 8)
    assert torch.equal(G(z), H(z))
    assert H.metadata == {"steps": 3}
    assert not H.training and not any(p.requires_grad for p in H.parameters())


def test_load_generator_says_how_to_rebuild_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="dltomo generator"):
        cu.load_generator(tmp_path / "missing.pt")


def test_shipped_generator_loads_and_is_small():
    assert cu.GENERATOR_PATH.is_file(), "data/gan_generator_64.pt is missing"
    assert cu.GENERATOR_PATH.stat().st_size < 3e6
    G = cu.load_generator()
    x = G.sample(4, generator=torch.Generator().manual_seed(0))
    assert x.shape == (4, 1, 64, 64)
    assert 0 <= float(x.min()) and float(x.max()) <= 1
    assert float(x.std(dim=0).mean()) > 0.02                  # samples differ
    # the shipped file records the command that made it, under the name it had then
    # (``python -m course_utils.gan``, before the tools moved to ``dltomo generator``)
    command = G.metadata["command"]
    assert "--steps" in command and ("dltomo generator" in command
                                     or "course_utils.gan" in command)


def test_rebuild_command_runs(tmp_path, capsys):
    out = tmp_path / "g.pt"
    assert generator.main(["--out", str(out), "--steps", "2", "--n-images", "8",
                     "--batch-size", "4", "--width", "4", "--latent-dim", "8"]) == 0
    G = cu.load_generator(out)
    assert G.latent_dim == 8 and G.metadata["threads"] == 1
    assert "saved" in capsys.readouterr().out
