"""Tests of course_utils.learning.memory: the memory meter, and learned gradient descent
with and without gradient checkpointing (lesson 13, section 5)."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import _get_current_dispatch_mode
from torch.utils.checkpoint import checkpoint_sequential

import course_utils as cu
from course_utils.learning import memory
from course_utils.learning.memory import LearnedGradientDescent, MemoryTracker, peak_memory

MB = 1_000_000
ONE_MB = 250_000            # float32 values in 1 MB


@pytest.fixture(scope="module")
def cone():
    """A small cone-beam operator, 16³ voxels, 8 views of 16 x 16 pixels (norm cached)."""
    geometry = cu.ConeBeam(n_angles=8, n_rows=16, n_cols=16, source_distance=48,
                           detector_distance=16, row_spacing=1.5, col_spacing=1.5)
    return cu.ConeBeamTransform(16, geometry)


@pytest.fixture(scope="module")
def radon():
    return cu.RadonTransform(16, cu.ParallelBeam(n_angles=10, n_detectors=23))


def _trained_looking(A, n_iter, checkpointing=False, width=4):
    """A network whose last convolutions are not zero, so that every weight gets a gradient."""
    torch.manual_seed(0)
    net = LearnedGradientDescent(A, n_iter, width, checkpointing=checkpointing)
    for block in net.blocks:
        nn.init.normal_(block[-1].weight, std=0.02)
    return net


def _data(A, batch=2, seed=1):
    x = torch.rand(batch, 1, *A.domain_shape, generator=torch.Generator().manual_seed(seed))
    return A(x), x


def _training_step(net, y, x):
    return lambda: (net(y) - x).square().mean().backward()


# --- MemoryTracker --------------------------------------------------------------------

def test_the_names_are_flat_cu_names():
    assert memory.__all__ == ["MemoryTracker", "peak_memory", "LearnedGradientDescent"]
    assert cu.MemoryTracker is MemoryTracker and cu.peak_memory is peak_memory
    assert cu.LearnedGradientDescent is LearnedGradientDescent


def test_a_tensor_made_inside_is_counted_until_it_is_freed():
    with MemoryTracker() as tracker:
        a = torch.zeros(ONE_MB)
        assert tracker.current == MB
        b = a + 1
        assert tracker.current == 2 * MB
        del a
        assert tracker.current == MB
        del b
        assert tracker.current == 0
    assert tracker.peak == 2 * MB and tracker.current == 0
    assert tracker.peak_mib == pytest.approx(2 * MB / 2**20)
    assert "2.00 MB" in repr(tracker)


def test_tensors_from_before_the_block_their_views_and_in_place_changes_cost_nothing():
    x = torch.rand(ONE_MB)
    with MemoryTracker() as tracker:
        view, reshaped = x[:10], x.view(500, 500)
        x.add_(1)
        reshaped.mul_(2)
        torch.add(x, 1, out=x)
    assert tracker.peak == 0
    with MemoryTracker() as tracker:
        b = x * 2                                   # 1 MB, new
        parts = [b[::2], b.view(500, 500), b.unsqueeze(0)]
        b.add_(1)
        parts[1].mul_(3)
    assert tracker.peak == MB                       # one storage, counted once
    assert view.shape == (10,) and len(parts) == 3


def test_two_temporaries_freed_in_between_need_one_mb_held_together_two():
    with MemoryTracker() as one_after_the_other:
        for _ in range(2):
            t = torch.ones(ONE_MB)
            del t
    with MemoryTracker() as together:
        a, b = torch.ones(ONE_MB), torch.ones(ONE_MB)
        del a, b
    assert MB <= one_after_the_other.peak < 1.1 * MB
    assert 2 * MB <= together.peak < 2.1 * MB


def test_current_is_what_the_block_left_behind_and_stays_so_after_it():
    with MemoryTracker() as tracker:
        kept = torch.empty(ONE_MB)
        empty = torch.empty(0)
        torch.ones(2 * ONE_MB)                      # a temporary, freed at once
    assert tracker.current == MB and tracker.peak == 3 * MB
    del kept, empty
    assert tracker.current == MB                    # no longer followed after the block


def test_a_tensor_that_an_operation_resizes_is_counted_at_its_new_size():
    a = torch.ones(ONE_MB)
    with MemoryTracker() as tracker:
        out = torch.empty(0)
        torch.add(a, 1, out=out)                    # resizes `out` to 1 MB
        assert tracker.current == MB
        del out
    assert tracker.peak == MB and tracker.current == 0


def test_the_backward_pass_is_counted():
    w = torch.rand(ONE_MB, requires_grad=True)
    with MemoryTracker() as tracker:
        (w * 2).square().sum().backward()
    # forward: w * 2 (kept for the backward of square), its square; backward: gradients
    assert tracker.peak >= 3 * MB
    assert tracker.current == MB                    # w.grad
    assert w.grad is not None and w.grad.nbytes == MB


def test_an_error_inside_the_block_ends_the_measurement():
    tracker = MemoryTracker()
    with pytest.raises(ZeroDivisionError):
        with tracker:
            torch.ones(ONE_MB)
            1 / 0
    assert _get_current_dispatch_mode() is None
    torch.ones(ONE_MB)                              # after the block: not seen
    assert tracker.peak == MB and tracker.current == 0
    with tracker:                                   # and it can measure again
        torch.ones(2 * ONE_MB)
    assert tracker.peak == 2 * MB


def test_a_tracker_measures_one_block_at_a_time_but_trackers_nest():
    with MemoryTracker() as outer:
        a = torch.ones(ONE_MB)
        with MemoryTracker() as inner:
            b = torch.ones(ONE_MB)
        with pytest.raises(RuntimeError, match="already measuring"):
            with outer:
                pass
        del a, b
    assert (inner.peak, outer.peak, outer.current) == (MB, 2 * MB, 0)


def test_peak_memory_of_a_call():
    assert peak_memory(torch.ones, 500, 500) == MB
    assert peak_memory(torch.ones, ONE_MB, dtype=torch.float64) == 2 * MB
    assert peak_memory(lambda: None) == 0
    with pytest.raises(TypeError, match="callable"):
        peak_memory(torch.ones(3))


def test_checkpointing_a_deep_network_lowers_the_peak_of_a_training_step():
    torch.manual_seed(0)
    layers = []
    for _ in range(16):
        layers += [nn.Conv2d(8, 8, 3, padding=1), nn.ReLU()]
    net = nn.Sequential(*layers)
    x = torch.rand(1, 8, 32, 32)
    activation = x.nbytes                           # 32 KB
    plain = peak_memory(lambda: net(x).square().sum().backward())
    segments = peak_memory(lambda: checkpoint_sequential(
        net, 4, x, use_reentrant=False).square().sum().backward())
    # plain keeps the 16 outputs of the ReLUs; 4 segments keep 4 inputs and 4 outputs
    assert plain >= 16 * activation
    assert segments < 0.7 * plain                   # measured 328 KB against 623 KB


# --- LearnedGradientDescent -------------------------------------------------------------

def test_shapes_in_2d_and_3d(radon, cone):
    for A, conv in ((radon, nn.Conv2d), (cone, nn.Conv3d)):
        y, x = _data(A, batch=2)
        net = LearnedGradientDescent(A, n_iter=2, width=4)
        assert y.shape == (2, 1, *A.range_shape)
        assert net(y).shape == net(y, x).shape == (2, 1, *A.domain_shape)
        assert all(isinstance(m, conv) for m in net.blocks[0][::2])
        assert len(net.blocks) == 2 and net.blocks[0][0].out_channels == 4
    assert cone.range_shape == (8, 16, 16)
    assert net.step == pytest.approx(1 / cone.norm() ** 2)


def test_the_operator_is_not_in_the_weights(cone):
    net = LearnedGradientDescent(cone, n_iter=2, width=4, step=0.01)
    assert net.step == 0.01
    assert net.state_dict() and all(k.startswith("blocks.") for k in net.state_dict())
    assert "checkpointing=False" in repr(net) and "n_iter=2" in repr(net)


def test_an_untrained_network_returns_its_start(cone):
    y, x = _data(cone)
    net = LearnedGradientDescent(cone, n_iter=3, width=4)
    with torch.no_grad():
        assert torch.allclose(net(y, x), x)
        assert net(y).abs().max() == 0
    trained = _trained_looking(cone, 3)
    with torch.no_grad():
        assert not torch.allclose(trained(y, x), x, atol=1e-4)


@pytest.mark.parametrize("which", ["radon", "cone"])
def test_checkpointing_gives_the_same_outputs_and_gradients(which, request):
    A = request.getfixturevalue(which)
    y, x = _data(A)
    net = _trained_looking(A, 2)
    results = []
    for checkpointing in (False, True):
        net.checkpointing = checkpointing           # a switch, at any time
        net.zero_grad()
        out = net(y, 0.5 * x)
        (out - x).square().mean().backward()
        results.append((out.detach(), [p.grad for p in net.parameters()]))
    (out, grads), (out_ck, grads_ck) = results
    assert torch.allclose(out, out_ck, rtol=1e-5, atol=1e-6)
    assert len(grads) == len(grads_ck) == 2 * 8     # per block 3 x (weight, bias), 2 PReLUs
    for g, g_ck in zip(grads, grads_ck):
        assert g.abs().max() > 0
        assert torch.allclose(g, g_ck, rtol=1e-4, atol=1e-7)


@pytest.fixture(scope="module")
def peaks(cone):
    """Peak bytes of one training step, by (n_iter, checkpointing); one volume, width 4."""
    y, x = _data(cone, batch=1)
    return {(n, ck): peak_memory(_training_step(_trained_looking(cone, n, ck), y, x))
            for n in (1, 2, 4) for ck in (False, True)}


def test_checkpointing_lowers_the_peak_memory_of_a_training_step(peaks):
    assert peaks[4, True] < 0.5 * peaks[4, False]   # measured 0.51 MB against 1.33 MB


def test_without_checkpointing_memory_grows_linearly_with_the_iterations(peaks):
    volume = 16**3 * 4                                          # 16 KB in float32
    per_iteration = peaks[2, False] - peaks[1, False]           # measured 0.27 MB
    assert per_iteration > 4 * volume               # the activations of 4 channels and more
    growth = (peaks[4, False] - peaks[2, False]) / (2 * per_iteration)
    assert growth == pytest.approx(1, abs=0.15)
    # with checkpointing an iteration adds little more than its iterate (measured 33 KB)
    per_iteration_checkpointed = (peaks[4, True] - peaks[1, True]) / 3
    assert per_iteration_checkpointed < 0.25 * per_iteration


def test_clear_errors(radon, cone):
    with pytest.raises(TypeError, match="LinearOperator"):
        LearnedGradientDescent(torch.eye(4))
    with pytest.raises(ValueError, match="images .H, W. or volumes"):
        LearnedGradientDescent(cu.MatrixOperator(torch.eye(4), (4,), (4,)))
    with pytest.raises(ValueError, match="n_iter must be at least 1"):
        LearnedGradientDescent(radon, n_iter=0)
    with pytest.raises(TypeError, match="n_iter must be an int"):
        LearnedGradientDescent(radon, n_iter=2.0)
    with pytest.raises(ValueError, match="width must be at least 1"):
        LearnedGradientDescent(radon, width=0)
    with pytest.raises(ValueError, match="step must be a finite positive"):
        LearnedGradientDescent(radon, step=-1.0)
    net = LearnedGradientDescent(cone, n_iter=1, width=2)
    y, x = _data(cone)
    with pytest.raises(ValueError, match=r"y with shape \(B, 1, 8, 16, 16\)"):
        net(y[:, 0])
    with pytest.raises(ValueError, match=r"x0 with shape \(B, 1, 16, 16, 16\)"):
        net(y, x[:, :, :8])
    with pytest.raises(ValueError, match="same batch size"):
        net(y, x[:1])
    with pytest.raises(TypeError, match="torch.Tensor"):
        net(np.zeros((2, 1, 8, 16, 16), dtype=np.float32))
    with pytest.raises(TypeError, match="float32 or float64"):
        net(y.to(torch.int32))
