"""Tests of course_utils.learning.gan: the networks, the losses, training, latent reconstruction."""

import math

import pytest
import torch
from torch import nn

import course_utils as cu
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
    with pytest.raises(ValueError, match="latent_dim must be at least 1"):
        cu.Generator(latent_dim=0)
    with pytest.raises(TypeError, match="width must be an int"):
        cu.Discriminator(width=2.5)


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
    for key in ("loss_D", "loss_G"):
        assert h1[key] == pytest.approx(h2[key], rel=1e-5)
    for p, q in zip(G1.state_dict().values(), G2.state_dict().values()):
        torch.testing.assert_close(p, q)
    assert not G1.training                       # left in evaluation mode
    with pytest.raises(ValueError, match="steps must be at least 1"):
        cu.train_gan(G1, cu.Discriminator(width=4), images, steps=0, progress=False)


def test_train_gan_rejects_bad_images():
    G, D = cu.Generator(latent_dim=8, width=4), cu.Discriminator(width=4)
    with pytest.raises(ValueError, match="images"):
        cu.train_gan(G, D, torch.rand(4, 64, 64), steps=1, progress=False)


class AffineGenerator(nn.Module):
    """A generator whose range is a plane: ``G(z) = mean + sum_k z_k basis_k``.

    With it, latent reconstruction is (ridge) linear least squares, whose exact answer
    the tests compute in float64 and compare with, whatever the float32 rounding of
    the library release.
    """

    def __init__(self, mean, basis):
        super().__init__()
        self.latent_dim = basis.shape[0]
        self.register_buffer("mean", mean)       # (N, N)
        self.register_buffer("basis", basis)     # (latent_dim, N, N)

    def forward(self, z):
        return (self.mean + torch.einsum("bk,kij->bij", z, self.basis))[:, None]


def bump(n, x0, y0, width):
    """A Gaussian bump on an ``n x n`` grid, centred ``(x0, y0)`` pixels off the middle."""
    c = torch.arange(n) - n / 2 + 0.5
    y, x = torch.meshgrid(c, c, indexing="ij")
    return torch.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * width**2))


@pytest.fixture
def plane_problem():
    """Noisy sinograms ``(2, 1, 8, 46)`` of two images in the range of an AffineGenerator."""
    n = 32
    basis = 0.1 * torch.stack([bump(n, -6, -5, 4), bump(n, 7, -3, 3), bump(n, -2, 8, 5),
                               bump(n, 5, 6, 2.5)])
    G = AffineGenerator(0.5 * bump(n, 0, 0, 8), basis)
    A = cu.RadonTransform(image_size=n, geometry=cu.ParallelBeam(n_angles=8, n_detectors=46))
    g = torch.Generator().manual_seed(3)
    z_true = torch.randn(2, G.latent_dim, generator=g)
    with torch.no_grad():
        clean = A(G(z_true))
    noise = 0.05 * torch.randn(clean.shape, generator=g)
    return G, A, clean + noise, noise


def ridge_regression(G, A, y, mu):
    """The exact minimiser of 1/2 |A G(z) - y|^2 + mu/2 |z|^2 (float64) and its misfit."""
    M = A(G.basis[:, None]).reshape(G.latent_dim, -1).T.double()         # (m, latent_dim)
    b = (y - A(G.mean)).reshape(len(y), -1).T.double()                   # (m, B)
    z = torch.linalg.solve(M.T @ M + mu * torch.eye(G.latent_dim, dtype=torch.double),
                           M.T @ b)
    return z.T, (M @ z - b).norm(dim=0)


def test_latent_reconstruction_fits_data_in_the_range(plane_problem):
    G, A, y, noise = plane_problem
    with torch.no_grad():                        # works inside no_grad, as in cu.evaluate
        out = cu.latent_reconstruction(G, A, y, n_iter=200, lr=0.1, mu=0.0, n_restarts=2)
    z_best, misfit_best = ridge_regression(G, A, y, mu=0.0)
    misfit = out["misfit"][-1].double()
    # the random start is far from the data, so a solver that does not converge fails
    assert bool((out["misfit"][0] > 5 * misfit_best).all())
    # least squares over the plane: the misfit drops to the best possible one ...
    assert bool((misfit <= 1.01 * misfit_best).all())
    assert bool((misfit >= 0.999 * misfit_best).all())     # else it is misreported
    torch.testing.assert_close(out["z"].double(), z_best, rtol=0, atol=1e-2)
    # ... which is the noise level: 4 latent numbers cannot fit the noise of 368 data
    noise_level = noise.flatten(1).norm(dim=1).double()
    assert bool(((misfit > 0.9 * noise_level) & (misfit < 1.01 * noise_level)).all())


def test_latent_reconstruction_prior_is_ridge_regression(plane_problem):
    G, A, y, _ = plane_problem
    mu = 10.0                        # of the order of the squared singular values of A G
    out = cu.latent_reconstruction(G, A, y, n_iter=200, lr=0.1, mu=mu, n_restarts=2)
    z_best, misfit_best = ridge_regression(G, A, y, mu=mu)
    torch.testing.assert_close(out["z"].double(), z_best, rtol=0, atol=1e-2)
    torch.testing.assert_close(out["misfit"][-1].double(), misfit_best, rtol=1e-2, atol=0)
    # mu/2 |z|^2, not mu |z|^2: the solution for 2 mu is clearly another one
    z_double_mu, _ = ridge_regression(G, A, y, mu=2 * mu)
    assert float((z_best - z_double_mu).norm(dim=1).min()) > 0.1


def test_latent_reconstruction_keeps_the_best_restart(plane_problem):
    G, A, y, _ = plane_problem
    mu, last = 1.0, {}
    out = cu.latent_reconstruction(G, A, y, n_iter=3, lr=0.1, mu=mu, n_restarts=3,
                                   callback=lambda k, z: last.update(z=z.clone()))
    assert out["x"].shape == (2, 1, 32, 32) and out["z"].shape == (2, G.latent_dim)
    assert out["misfit"].shape == (4, 2) and out["restart"].shape == (2,)
    # the objective of every restart after the last step
    R, B = last["z"].shape[:2]
    with torch.no_grad():
        x = G(last["z"].reshape(R * B, -1)).reshape(R, B, 1, 32, 32)
        objective = (0.5 * (A(x) - y).pow(2).sum(dim=(2, 3, 4))
                     + 0.5 * mu * last["z"].pow(2).sum(dim=2))                 # (R, B)
    lowest = objective.min(dim=0).values
    assert bool((objective.max(dim=0).values > 1.1 * lowest).all())   # restarts differ
    chosen = objective[out["restart"], torch.arange(B)]
    torch.testing.assert_close(chosen, lowest, rtol=1e-3, atol=0)
    torch.testing.assert_close(out["z"], last["z"][out["restart"], torch.arange(B)])
    # the reported misfit is that of the returned images
    with torch.no_grad():
        final = (A(out["x"]) - y).flatten(1).norm(dim=1)
    torch.testing.assert_close(out["misfit"][-1], final, rtol=1e-3, atol=0)


def test_latent_reconstruction_runs_with_the_gan_generator():
    torch.manual_seed(0)
    G = cu.Generator(latent_dim=8, width=4).eval().requires_grad_(False)
    geometry = cu.ParallelBeam(n_angles=8, n_detectors=92)
    A = cu.RadonTransform(image_size=64, geometry=geometry)
    z_true = torch.randn(2, 8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        y = A(G(z_true))
    with torch.no_grad():
        out = cu.latent_reconstruction(G, A, y, n_iter=60, lr=0.1, mu=0.0, n_restarts=2)
    assert out["x"].shape == (2, 1, 64, 64) and out["z"].shape == (2, 8)
    assert out["misfit"].shape == (61, 2) and out["restart"].shape == (2,)
    # noise-free data in the range: the misfit falls far below where it started (by a
    # factor of about 15; its float32 value is not compared more closely, since it is
    # the small difference of two sinograms 70 000 times larger)
    assert bool((out["misfit"][-1] < 0.5 * out["misfit"][0]).all())


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
    torch.testing.assert_close(G(z), H(z))
    assert (H.latent_dim, H.width) == (8, 4) and H.metadata == {"steps": 3}
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
