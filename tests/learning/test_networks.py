"""Tests of course_utils.learning.networks: the U-Net and the parameter counter."""

import pytest
import torch
from torch import nn

import course_utils as cu


@pytest.mark.parametrize("shape", [(2, 1, 32, 32), (3, 1, 37, 50), (1, 1, 9, 13)])
@pytest.mark.parametrize("depth", [1, 3, 4])
def test_any_image_size(shape, depth):
    torch.manual_seed(0)
    net = cu.UNet(depth=depth, width=4, residual=False)
    out = net(torch.rand(shape))
    assert out.shape == shape


def test_channels():
    net = cu.UNet(in_channels=2, out_channels=3, width=4, residual=False)
    assert net(torch.rand(2, 2, 20, 24)).shape == (2, 3, 20, 24)
    with pytest.raises(ValueError, match="in_channels and out_channels"):
        cu.UNet(in_channels=2, out_channels=1, residual=True)
    with pytest.raises(ValueError, match="input channel"):
        net(torch.rand(2, 1, 20, 24))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        net(torch.rand(20, 24))


def test_residual_network_starts_as_identity():
    torch.manual_seed(0)
    net = cu.UNet(width=8)
    x = torch.rand(2, 1, 30, 30)
    torch.testing.assert_close(net(x), x)
    # ... but it learns: one gradient step moves it away from the identity
    loss = (net(x) - 0.5).pow(2).mean()
    loss.backward()
    assert net.output.weight.grad.abs().sum() > 0


def test_parameter_count():
    net = cu.UNet(depth=3, width=32)
    expected = sum(p.numel() for p in net.parameters())
    assert cu.count_parameters(net) == expected
    assert 400_000 < expected < 500_000     # the docstring's "0.47 M"
    # a hand-counted small case: depth 1, width 2, no batch norm:
    # conv 1->2 (2*9 + 2), conv 2->2 (4*9 + 2), 1x1 conv 2->1 (2 + 1)
    assert cu.count_parameters(cu.UNet(depth=1, width=2, batch_norm=False)) == 20 + 38 + 3
    frozen = nn.Linear(3, 2)
    frozen.weight.requires_grad_(False)
    assert cu.count_parameters(frozen) == 2
    assert cu.count_parameters(frozen, trainable_only=False) == 8
    with pytest.raises(TypeError):
        cu.count_parameters(torch.zeros(3))


def _sees(net, distance):
    """Whether the output at the centre of a 32 x 32 image depends on a pixel ``distance`` away."""
    x = torch.zeros(1, 1, 32, 32, requires_grad=True)
    net(x)[0, 0, 16, 16].backward()
    return bool(x.grad[0, 0, 16, 16 + distance] != 0)


def test_pooling_enlarges_the_receptive_field():
    torch.manual_seed(0)
    flat = cu.UNet(depth=1, width=4, residual=False, batch_norm=False)   # two 3x3 convs
    deep = cu.UNet(depth=3, width=4, residual=False, batch_norm=False)
    assert _sees(flat, 2) and not _sees(flat, 3)
    assert _sees(deep, 10)


def test_bad_arguments():
    with pytest.raises(ValueError, match="depth must be at least 1"):
        cu.UNet(depth=0)
    with pytest.raises(TypeError, match="width must be an int"):
        cu.UNet(width=2.5)
    with pytest.raises(TypeError, match="in_channels must be an int"):
        cu.UNet(in_channels=True)


def test_a_3d_unet_keeps_any_volume_size_and_starts_as_the_identity():
    net = cu.UNet(depth=3, width=4, dims=3)
    x = torch.rand(2, 1, 9, 12, 7)
    assert net(x).shape == x.shape
    torch.testing.assert_close(net(x), x)          # residual: the last layer starts at 0
    assert isinstance(net.down[0][0], torch.nn.Conv3d)
    # about 7 width^2 4^depth parameters in 2D; a 3 x 3 x 3 kernel has 3 times more
    n2, n3 = (cu.count_parameters(cu.UNet(depth=3, width=8, dims=d)) for d in (2, 3))
    assert 2.5 < n3 / n2 < 3.1


def test_a_3d_unet_learns_and_rejects_images():
    torch.manual_seed(0)
    net = cu.UNet(depth=2, width=4, dims=3, residual=False)
    x = torch.rand(2, 1, 8, 8, 8)
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        optimiser.zero_grad()
        loss = (net(x) - x.flip(-1)).square().mean()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    with pytest.raises(ValueError, match=r"\(B, C, D, H, W\)"):
        net(torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match="dims must be 2"):
        cu.UNet(dims=1)
