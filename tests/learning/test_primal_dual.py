"""Tests of course_utils.learning.primal_dual: learned primal-dual and with_operator."""

import pytest
import torch

import course_utils as cu
from course_utils.checks import lesson07
from course_utils.learning import primal_dual


def _operator(n_angles, size=16):
    return cu.RadonTransform(size, cu.dival_geometry(size, n_angles))


@pytest.fixture()
def net():
    """A small network with weights that are not zero, so that it is not just the FBP."""
    torch.manual_seed(0)
    net = cu.LearnedPrimalDual(_operator(8), n_iter=2, channels=4, fbp_filter="hann",
                               fbp_cutoff=0.8)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn(p.shape))
    return net


def test_the_class_moved_but_lesson_07_still_finds_it():
    assert lesson07.LearnedPrimalDual is cu.LearnedPrimalDual is primal_dual.LearnedPrimalDual
    assert cu.LearnedPrimalDual.__module__ == "course_utils.learning.primal_dual"
    assert primal_dual.__all__ == ["LearnedPrimalDual"]


def test_the_operator_is_not_in_the_weights(net):
    names = list(net.state_dict())
    assert names and all(n.startswith(("dual_blocks.", "primal_blocks.")) for n in names)
    assert "A" not in dict(net.named_modules()) and "A" not in dict(net.named_buffers())
    # so the same state dict loads into a network on another operator
    other = cu.LearnedPrimalDual(_operator(15), n_iter=2, channels=4)
    other.load_state_dict(net.state_dict())


def test_with_the_same_operator_the_output_is_the_same(net):
    y = net.A(torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(1)))
    copy = net.with_operator(net.A)
    with torch.no_grad():
        out = net(y)
        assert not torch.allclose(out, cu.fbp(net.A, y, "hann", 0.8), atol=1e-4)
        assert torch.allclose(copy(y), out, atol=1e-6)
    assert (copy.fbp_filter, copy.fbp_cutoff) == ("hann", 0.8)
    assert (copy.n_iter, copy.channels, copy.n_primal, copy.n_dual) == (2, 4, 5, 5)


def test_with_another_operator_reads_its_sinograms_with_the_same_weights(net):
    A15 = _operator(15)
    moved = net.with_operator(A15)
    assert moved.A is A15 and net.A is not A15
    assert moved.scale == pytest.approx(1 / A15.norm()) and moved.scale != net.scale
    y15 = A15(torch.rand(2, 1, 16, 16, generator=torch.Generator().manual_seed(2)))
    assert y15.shape[2] == 15
    reference = cu.LearnedPrimalDual(A15, n_iter=2, channels=4, fbp_filter="hann",
                                     fbp_cutoff=0.8)
    reference.load_state_dict(net.state_dict())
    with torch.no_grad():
        out = moved(y15)
        assert out.shape == (2, 1, 16, 16)
        assert torch.allclose(out, reference(y15), atol=1e-6)
        with pytest.raises(ValueError, match="8, 25"):
            net(y15)                      # the original still expects 8 angles


def test_the_weights_are_copies_not_shared(net):
    moved = net.with_operator(_operator(15))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    for mine, theirs in zip(net.parameters(), moved.parameters()):
        assert torch.equal(mine, theirs) and mine.data_ptr() != theirs.data_ptr()
    with torch.no_grad():
        for p in moved.parameters():
            p.add_(1.0)
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())


def test_mode_freezing_and_checkpointing_are_kept(net):
    net.eval()
    assert not net.with_operator(net.A).training
    net.train()
    net.checkpointing = True
    moved = net.with_operator(_operator(15))
    assert moved.training and moved.checkpointing
    assert all(p.requires_grad for p in moved.parameters())
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.with_operator(net.A).parameters())


def test_with_operator_rejects_what_is_not_an_operator(net):
    with pytest.raises(TypeError, match="linear operator"):
        net.with_operator(torch.zeros(3))
