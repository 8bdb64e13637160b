"""Tests of course_utils.reconstruction.plug_and_play."""

import pytest
import torch

import course_utils as cu


@pytest.fixture(scope="module")
def problem():
    A = cu.RadonTransform(image_size=16, geometry=cu.ParallelBeam(n_angles=12, n_detectors=23))
    x = cu.shepp_logan(16)[None, None]
    return A, x, A(x)


def test_identity_denoiser_gives_landweber(problem):
    A, x, y = problem
    step = 1 / A.norm() ** 2
    out = cu.pnp_pgd(A, y, lambda v, s: v, 5, sigma=0.1)
    assert torch.allclose(out, cu.landweber(A, y, 5, step=step), atol=1e-5)


def test_nonnegativity_denoiser_and_callback(problem):
    A, x, y = problem
    seen = []
    out = cu.pnp_pgd(A, y, lambda v, s: v.clamp(min=0), 20, sigma=0.1,
                     x0=torch.zeros_like(x), callback=lambda k, v: seen.append(k))
    assert seen == list(range(1, 21)) and float(out.min()) >= 0
    # the data misfit falls
    assert float((A(out) - y).norm()) < float(y.norm())


def test_denoiser_receives_sigma(problem):
    A, x, y = problem
    sigmas = []
    cu.pnp_pgd(A, y, lambda v, s: sigmas.append(s) or v, 3, sigma=0.07)
    assert sigmas == [0.07] * 3


def test_bad_input(problem):
    A, x, y = problem
    with pytest.raises(TypeError, match="denoiser"):
        cu.pnp_pgd(A, y, "denoiser", 3, sigma=0.1)
    with pytest.raises(ValueError, match="sigma"):
        cu.pnp_pgd(A, y, lambda v, s: v, 3, sigma=0.0)


def test_choose_on_validation():
    x = torch.rand(3, 1, 4, 4)
    best, scores = cu.choose_on_validation(lambda y, c: x + c, [0.3, 0.01, 0.1], None, x)
    assert best == 0.01 and set(scores) == {0.3, 0.01, 0.1}
    with pytest.raises(ValueError, match="empty"):
        cu.choose_on_validation(lambda y, c: x, [], None, x)


def test_choose_on_validation_scores_volumes_with_the_metric_it_is_given():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 1, 4, 12, 12, generator=g)
    # candidate 1 ruins one slice, candidate 2 adds a little noise everywhere: the mean of
    # the slices' PSNRs prefers the first, the volume's PSNR (one MSE) the second
    ruined = x.clone()
    ruined[:, :, 0] += 1.0
    noisy = x + 0.2 * torch.randn(x.shape, generator=g)
    outputs = {1: ruined, 2: noisy}
    by_slices, _ = cu.choose_on_validation(lambda y, c: outputs[c], [1, 2], None, x)
    by_volume, _ = cu.choose_on_validation(lambda y, c: outputs[c], [1, 2], None, x,
                                           metric=cu.psnr_3d)
    assert (by_slices, by_volume) == (1, 2)
