"""Tests of course_utils.learning.self_supervised: Noise2Inverse's pieces and the blind spot."""

import pytest
import torch

import course_utils as cu


@pytest.fixture(scope="module")
def scan():
    geometry = cu.ParallelBeam(n_angles=24, n_detectors=33)
    A = cu.RadonTransform(image_size=24, geometry=geometry)
    gen = torch.Generator().manual_seed(0)
    x = cu.shepp_logan(24)[None, None]
    y = A(x.expand(3, 1, 24, 24)) + 0.05 * torch.randn(3, 1, 24, 33, generator=gen)
    return A, x, y


@pytest.mark.parametrize("strategy", ["interleaved", "contiguous"])
def test_angle_subsets_are_a_partition(strategy):
    subsets = cu.angle_subsets(12, 3, strategy)
    assert [len(s) for s in subsets] == [4, 4, 4]
    assert sorted(torch.cat(subsets).tolist()) == list(range(12))


def test_interleaved_and_contiguous_subsets():
    assert [s.tolist() for s in cu.angle_subsets(6, 3)] == [[0, 3], [1, 4], [2, 5]]
    assert [s.tolist() for s in cu.angle_subsets(6, 3, "contiguous")] == [[0, 1], [2, 3],
                                                                          [4, 5]]


@pytest.mark.parametrize("K", [1, 5, 2.0])
def test_angle_subsets_reject_bad_K(K):
    with pytest.raises((ValueError, TypeError), match="K"):
        cu.angle_subsets(12, K)


def test_angle_subsets_reject_unknown_strategy():
    with pytest.raises(ValueError, match="strategy"):
        cu.angle_subsets(12, 2, "random")


def test_split_sinogram_gives_rows_and_geometries(scan):
    A, _, y = scan
    parts = cu.split_sinogram(y, A.geometry, 4)
    assert len(parts) == 4
    for j, (y_j, g_j) in enumerate(parts):
        assert y_j.shape == (3, 1, 6, 33)
        assert torch.equal(y_j, y[..., j::4, :])
        assert torch.allclose(g_j.angles, A.geometry.angles[j::4])
        assert g_j.n_detectors == 33


def test_split_sinogram_checks_its_input(scan):
    A, _, y = scan
    with pytest.raises(ValueError, match="sinograms of shape"):
        cu.split_sinogram(y[..., :-1], A.geometry, 2)
    with pytest.raises(TypeError, match="ParallelBeam"):
        cu.split_sinogram(y, "geometry", 2)


def test_mean_of_sub_reconstructions_is_the_full_fbp(scan):
    A, _, y = scan
    for K in (2, 3, 4):
        subs = cu.sub_reconstructions(A, y, K)
        assert subs.shape == (K, 3, 1, 24, 24)
        assert torch.allclose(subs.mean(0), cu.fbp(A, y), atol=1e-5)


def test_sub_reconstructions_are_as_bright_as_the_full_one(scan):
    # each subset's FBP weights its angles by its own step: same mean value as the full FBP
    A, x, _ = scan
    y = A(x)
    full = float(cu.fbp(A, y).mean())
    for image in cu.sub_reconstructions(A, y, 4):
        assert float(image.mean()) == pytest.approx(full, rel=0.05)


def test_sub_reconstruction_noise_is_independent():
    geometry = cu.ParallelBeam(n_angles=32, n_detectors=25)
    A = cu.RadonTransform(image_size=16, geometry=geometry)
    noise = torch.randn(200, 1, 32, 25, generator=torch.Generator().manual_seed(1))
    subs = cu.sub_reconstructions(A, noise, 2)        # FBP of pure noise, two halves
    a, b = subs[0].flatten(), subs[1].flatten()
    rho = float(torch.corrcoef(torch.stack([a, b]))[0, 1])
    assert abs(rho) < 0.02


def test_noise2inverse_pairs_x_to_one_and_one_to_x():
    subs = torch.arange(3 * 2 * 4, dtype=torch.float64).reshape(3, 2, 1, 2, 2)
    inputs, targets = cu.noise2inverse_pairs(subs)
    assert inputs.shape == targets.shape == (6, 1, 2, 2)
    assert torch.equal(targets[1], subs[0, 1])                 # item j * B + b
    assert torch.allclose(inputs[1], (subs[1, 1] + subs[2, 1]) / 2)
    swapped = cu.noise2inverse_pairs(subs, "1:X")
    assert torch.equal(swapped[0], targets) and torch.equal(swapped[1], inputs)
    with pytest.raises(ValueError, match="scheme"):
        cu.noise2inverse_pairs(subs, "X:X")
    with pytest.raises(ValueError, match="K, B, 1, N, N"):
        cu.noise2inverse_pairs(subs[0])


def test_noise2inverse_predict_averages_the_k_outputs():
    subs = torch.rand(4, 2, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    identity = torch.nn.Conv2d(1, 1, 1, bias=False)
    torch.nn.init.ones_(identity.weight)
    # the identity maps each input (mean of the others) to itself; their mean is the mean
    out = cu.noise2inverse_predict(identity, subs)
    assert out.shape == (2, 1, 8, 8)
    assert torch.allclose(out, subs.mean(0), atol=1e-6)
    assert identity.training                                   # mode restored


def test_blind_spot_dataset_hides_a_grid_of_pixels():
    images = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    data = cu.BlindSpotDataset(images, spacing=4)
    torch.manual_seed(0)
    masked, target = data[1]
    mask = target[1]
    assert masked.shape == (1, 8, 8) and target.shape == (2, 8, 8)
    assert torch.equal(target[0], images[1, 0])
    assert int(mask.sum()) == 4                                 # one pixel in 16
    hidden = mask.bool()
    assert torch.equal(masked[0][~hidden], images[1, 0][~hidden])
    r, c = [int(v[0]) for v in torch.nonzero(hidden, as_tuple=True)]
    padded = torch.nn.functional.pad(images[1:2], (1, 1, 1, 1), mode="reflect")[0, 0]
    neighbours = (padded[r, c + 1] + padded[r + 2, c + 1] + padded[r + 1, c]
                  + padded[r + 1, c + 2]) / 4
    assert float(masked[0, r, c]) == pytest.approx(float(neighbours), rel=1e-6)
    with pytest.raises(ValueError, match="spacing"):
        cu.BlindSpotDataset(images, spacing=1)
    with pytest.raises(ValueError, match="n, 1, N, N"):
        cu.BlindSpotDataset(images[0])


def test_blind_spot_loss_counts_only_hidden_pixels():
    output = torch.zeros(1, 1, 2, 2)
    target = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[1.0, 0.0], [0.0, 1.0]]]])
    assert float(cu.blind_spot_loss(output, target)) == pytest.approx((1 + 16) / 2)


def test_neighbour_correlation_of_white_and_smoothed_noise():
    white = torch.randn(8, 64, 64, generator=torch.Generator().manual_seed(4))
    assert abs(cu.neighbour_correlation(white)) < 0.02
    smooth = 0.5 * (white + torch.roll(white, 1, dims=-1))
    assert cu.neighbour_correlation(smooth) == pytest.approx(0.5, abs=0.02)
    assert abs(cu.neighbour_correlation(smooth, (1, 0))) < 0.02
    assert cu.neighbour_correlation(3 + 10 * smooth) == pytest.approx(
        cu.neighbour_correlation(smooth), abs=1e-6)
    with pytest.raises(ValueError, match="shift"):
        cu.neighbour_correlation(white, (0, 64))


def test_autocorrelation_is_one_at_the_centre_and_symmetric():
    white = torch.randn(4, 32, 32, generator=torch.Generator().manual_seed(5))
    smooth = 0.5 * (white + torch.roll(white, 1, dims=-1))
    rho = cu.autocorrelation(smooth, 3)
    assert rho.shape == (7, 7)
    assert float(rho[3, 3]) == pytest.approx(1.0)
    assert torch.allclose(rho, rho.flip(0, 1), atol=1e-5)
    # the zero-padded FFT correlation counts fewer pairs at a shift: close to the direct one
    assert float(rho[3, 4]) == pytest.approx(cu.neighbour_correlation(smooth), abs=0.05)
    assert abs(float(cu.autocorrelation(white, 3)[3, 5])) < 0.05


class _Copy(torch.nn.Module):
    """A 'network' that returns its input: its blind-spot prediction is the neighbour mean."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(()))

    def forward(self, x):
        return self.weight * x


def test_blind_spot_predict_never_sees_the_pixel_it_predicts():
    images = torch.rand(2, 1, 9, 9, generator=torch.Generator().manual_seed(6))
    padded = torch.nn.functional.pad(images, (1, 1, 1, 1), mode="reflect")
    neighbours = (padded[..., :-2, 1:-1] + padded[..., 2:, 1:-1] + padded[..., 1:-1, :-2]
                  + padded[..., 1:-1, 2:]) / 4
    copy = _Copy()
    for spacing in (2, 4):
        out = cu.blind_spot_predict(copy, images, spacing)
        assert torch.allclose(out, neighbours, atol=1e-6)
    assert copy.training
    with pytest.raises(ValueError, match="n, 1, N, N"):
        cu.blind_spot_predict(copy, images[0])
