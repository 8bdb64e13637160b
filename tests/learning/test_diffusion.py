"""Tests of course_utils.learning.diffusion: the schedule, Tweedie, sampling, guidance, files."""

import math

import pytest
import torch

import course_utils as cu
from course_utils.learning import diffusion


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return cu.DiffusionPrior(width=4, depth=2, n_timesteps=50).eval()


def test_schedule_falls_from_one_to_nearly_zero():
    prior = cu.DiffusionPrior(width=4, depth=2)
    a = prior.alpha_bar
    assert a.shape == (1000,)
    assert float(a[0]) == pytest.approx(1 - 1e-4)
    assert bool((a[1:] < a[:-1]).all())
    assert float(a[-1]) < 1e-4


def test_noisy_image_has_the_right_mean_and_variance(tiny):
    x0 = torch.full((2000, 1, 4, 4), 0.75)          # 0.5 in the model's units
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(1))
    t = 20
    a = float(tiny.alpha_bar[t])
    x_t = tiny.noisy(x0, t, noise)
    assert float(x_t.mean()) == pytest.approx(math.sqrt(a) * 0.5, abs=0.01)
    assert float(x_t.std()) == pytest.approx(math.sqrt(1 - a), rel=0.02)


def test_tweedie_inverts_the_noising_with_the_true_noise(tiny):
    x0 = torch.rand(2, 1, 8, 8)
    noise = torch.randn(x0.shape)

    class Oracle(torch.nn.Module):       # predicts exactly the noise that was added
        def forward(self, inputs):
            return noise

    net, tiny.net = tiny.net, Oracle()
    try:
        x_t = tiny.noisy(x0, 30, noise)
        assert torch.allclose((tiny.denoised(x_t, 30) + 1) / 2, x0, atol=1e-5)
    finally:
        tiny.net = net


def test_training_batch_and_loss(tiny):
    x0 = torch.rand(3, 1, 8, 8)
    inputs, target = tiny.training_batch(x0, torch.Generator().manual_seed(2))
    assert inputs.shape == (3, 2, 8, 8) and target.shape == (3, 1, 8, 8)
    # the second channel is the constant noise level of each image
    level = inputs[:, 1]
    assert torch.allclose(level, level[:, :1, :1].expand_as(level))
    assert float(tiny.loss(x0).detach()) > 0


def test_training_lowers_the_loss():
    torch.manual_seed(0)
    prior = cu.DiffusionPrior(width=4, depth=2, n_timesteps=100)
    images = cu.EllipsesDataset(16, 16, seed=3).tensors()
    losses = cu.train_diffusion(prior, images, steps=60, batch_size=8, lr=3e-3,
                                log_every=20, progress=False)
    assert len(losses) == 3 and losses[-1] < losses[0]


def test_denoise_keeps_shape_and_range(tiny):
    x = torch.rand(2, 1, 8, 8)
    out = tiny.denoise(x, 0.1)
    assert out.shape == x.shape and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="sigma"):
        tiny.denoise(x, 0.0)


def test_sample_and_posterior_sample_shapes(tiny):
    samples = tiny.sample(3, 8, n_steps=5, generator=torch.Generator().manual_seed(4))
    assert samples.shape == (3, 1, 8, 8)
    assert float(samples.min()) >= 0 and float(samples.max()) <= 1
    A = cu.RadonTransform(image_size=8, geometry=cu.ParallelBeam(n_angles=5, n_detectors=13))
    y = A(torch.rand(2, 1, 8, 8))
    calls = []
    post = tiny.posterior_sample(A, y, n_steps=4, guidance=0.5,
                                 callback=lambda k, x: calls.append(k))
    assert post.shape == (2, 1, 8, 8) and calls == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="n_steps"):
        tiny.sample(1, 8, n_steps=51)


def test_guided_step_moves_towards_the_data(tiny):
    A = cu.RadonTransform(image_size=8, geometry=cu.ParallelBeam(n_angles=5, n_detectors=13))
    y = A(torch.rand(2, 1, 8, 8))
    x_t = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(5))
    plain, _ = tiny.ddim_step(x_t, 30, 20)
    pulled, _ = tiny.guided_step(x_t, 30, 20, A, y, 0.5)
    assert not torch.allclose(plain, pulled)
    # the pull is a Polyak step: guidance x misfit / |gradient| long, per image
    x = x_t.clone().requires_grad_(True)
    misfit = torch.linalg.vector_norm((A((tiny.denoised(x, 30) + 1) / 2) - y).flatten(1), dim=1)
    gradient, = torch.autograd.grad(misfit.sum(), x)
    size = torch.linalg.vector_norm(gradient.flatten(1), dim=1)
    moved = torch.linalg.vector_norm((plain - pulled).flatten(1), dim=1)
    assert torch.allclose(moved, 0.5 * misfit.detach() / size, rtol=1e-3)
    last, x0 = tiny.guided_step(x_t, 3, -1, A, y, 0.5)
    assert torch.equal(last, x0)


def test_bad_timesteps_are_rejected(tiny):
    with pytest.raises(ValueError, match="t must hold"):
        tiny.predict_noise(torch.zeros(2, 1, 8, 8), 50)
    with pytest.raises(ValueError, match="B, 1, N, N"):
        tiny.predict_noise(torch.zeros(2, 8, 8), 3)


def test_save_and_load(tmp_path, tiny):
    path = cu.save_diffusion_prior(tiny, tmp_path / "d.pt", steps=3)
    loaded = cu.load_diffusion_prior(path)
    assert loaded.metadata["steps"] == 3 and loaded.n_timesteps == 50
    x = torch.rand(1, 1, 8, 8)
    assert torch.allclose(loaded.denoise(x, 0.1), tiny.denoise(x, 0.1))
    with pytest.raises(FileNotFoundError, match="dltomo diffusion"):
        cu.load_diffusion_prior(tmp_path / "missing.pt")
    with pytest.raises(TypeError, match="DiffusionPrior"):
        cu.save_diffusion_prior(torch.nn.Linear(2, 2), tmp_path / "x.pt")


def test_shipped_model_loads_and_is_small():
    prior = cu.load_diffusion_prior()
    assert diffusion.DIFFUSION_PATH.stat().st_size < 5e6
    assert "dltomo diffusion" in prior.metadata["command"]
    x = cu.EllipsesDataset(2, 64, seed=7).tensors()
    noisy = x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(6))
    assert float(cu.psnr(prior.denoise(noisy, 0.05), x, data_range=1).mean()) > \
        float(cu.psnr(noisy, x, data_range=1).mean())


def test_rebuild_command_runs_on_a_tiny_budget(tmp_path):
    from course_utils.tools import diffusion as command
    out = tmp_path / "d.pt"
    assert command.main(["--out", str(out), "--steps", "2", "--n-images", "4",
                         "--width", "4", "--depth", "2"]) == 0
    prior = cu.load_diffusion_prior(out)
    assert prior.width == 4 and "--steps 2" in prior.metadata["command"]
