"""The checks of lesson 07 accept the reference answers and diagnose typical mistakes."""

import torch
from torch import nn

from course_utils.checks import lesson07
from course_utils.learning.primal_dual import _update_block
from lesson_references import reference

# The reference answers, from solutions/07_learned_primal_dual.py (see lesson_references.py).
ref = reference("07")


# Three convolutions, the last one zero: the layers of the (wrong) blocks below, the
# same as those of the course's learned primal-dual.
conv_stack = _update_block


def outcome(check, answer):
    result = check(answer)
    return result.status, result.message


def block_variant(n_extra, *, residual=True, sign=1, zero_last=True, prelu=True,
                  order=None, shared_prelu=False):
    """A Dual/PrimalBlock (n_extra = 2 or 1 extra inputs) with one thing changed."""

    class Variant(nn.Module):
        def __init__(self, n_memory=5, channels=32):
            super().__init__()
            self.conv1 = nn.Conv2d(n_memory + n_extra, channels, 3, padding=1)
            self.act1 = nn.PReLU() if shared_prelu else nn.PReLU(channels)
            self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
            self.act2 = nn.PReLU() if shared_prelu else nn.PReLU(channels)
            self.conv3 = nn.Conv2d(channels, n_memory, 3, padding=1)
            if zero_last:
                nn.init.zeros_(self.conv3.weight)
                nn.init.zeros_(self.conv3.bias)

        def forward(self, memory, *extra):
            inputs = [memory, *extra] if order is None else [([memory, *extra])[k]
                                                             for k in order]
            z = self.conv1(torch.cat(inputs, dim=1))
            z = self.conv2(self.act1(z) if prelu else z)
            update = self.conv3(self.act2(z) if prelu else z)
            if not residual:
                return update
            return memory + sign * update

    return Variant


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise: replace this line with your code")


class StubBlock(nn.Module):
    def __init__(self, n_memory=5, channels=32):
        super().__init__()
        raise NotImplementedError("Exercise 1 (the dual update block): replace this line")


# --- Exercise 1: the proximal step of the dual variable -----------------------------------


def test_dual_prox_accepts_the_reference_and_other_forms():
    assert lesson07.lpd_dual_prox(ref.dual_prox)
    # written out term by term
    assert lesson07.lpd_dual_prox(lambda q, y, sigma: q / (1 + sigma) - sigma / (1 + sigma) * y)
    # through Moreau's identity, prox_σF*(q) = q - σ prox_F/σ(q / σ)
    assert lesson07.lpd_dual_prox(lambda q, y, sigma: q - sigma * (y + q) / (1 + sigma))
    # in place on a copy is fine
    assert lesson07.lpd_dual_prox(lambda q, y, sigma: q.clone().sub_(sigma * y).div_(1 + sigma))


def test_dual_prox_not_attempted():
    assert outcome(lesson07.lpd_dual_prox, stub)[0] == "not attempted"


def test_dual_prox_diagnoses_typical_mistakes():
    cases = [
        (lambda q, y, sigma: (q + sigma * y) / (1 + sigma), "conjugate"),
        (lambda q, y, sigma: (q - y) / (1 + sigma), "σ multiplies y"),
        (lambda q, y, sigma: q - sigma * y, "division by 1 + σ is missing"),
        (lambda q, y, sigma: q / (1 + sigma) - sigma * y, "only q is divided"),
        (lambda q, y, sigma: (q - sigma * y) / sigma, "not by σ"),
        (lambda q, y, sigma: q.sub_(sigma * y).div_(1 + sigma), "in place"),
    ]
    for answer, words in cases:
        status, message = outcome(lesson07.lpd_dual_prox, answer)
        assert status == "failed" and words in message, message

    def forgets_return(q, y, sigma):
        (q - sigma * y) / (1 + sigma)

    status, message = outcome(lesson07.lpd_dual_prox, forgets_return)
    assert status == "failed" and "return" in message


# --- Exercises 2 and 3: the blocks ---------------------------------------------------------


def test_block_checks_accept_the_reference_and_variants():
    assert lesson07.lpd_dual_block(ref.DualBlock)
    assert lesson07.lpd_primal_block(ref.PrimalBlock)
    # one shared PReLU slope per layer is fine too
    assert lesson07.lpd_dual_block(block_variant(2, shared_prelu=True))
    assert lesson07.lpd_primal_block(block_variant(1))


def test_block_checks_not_attempted_and_instance():
    assert outcome(lesson07.lpd_dual_block, StubBlock)[0] == "not attempted"
    assert outcome(lesson07.lpd_primal_block, StubBlock)[0] == "not attempted"
    status, message = outcome(lesson07.lpd_dual_block, ref.DualBlock(3, 6))
    assert status == "failed" and "the class itself" in message


def test_block_checks_diagnose_missing_residual_and_sign():
    status, message = outcome(lesson07.lpd_dual_block, block_variant(2, residual=False))
    assert status == "failed" and "residual" in message
    status, message = outcome(lesson07.lpd_primal_block, block_variant(1, sign=-1))
    assert status == "failed" and "subtracted" in message


def test_block_checks_diagnose_initialisation_order_and_activation():
    status, message = outcome(lesson07.lpd_dual_block, block_variant(2, zero_last=False))
    assert status == "failed" and "zero" in message and "identity" in message
    status, message = outcome(lesson07.lpd_dual_block, block_variant(2, order=[1, 2, 0]))
    assert status == "failed" and "another order" in message
    status, message = outcome(lesson07.lpd_dual_block, block_variant(2, order=[0, 2, 1]))
    assert status == "failed" and "another order" in message
    status, message = outcome(lesson07.lpd_primal_block, block_variant(1, prelu=False))
    assert status == "failed" and "PReLU" in message


def test_block_checks_diagnose_wrong_channel_counts():
    # the dual block built with only one extra input: Af or g is missing
    status, message = outcome(lesson07.lpd_dual_block, block_variant(1))
    assert status == "failed" and "first convolution" in message and "5 channels" in message

    class TooManyOut(nn.Module):
        def __init__(self, n_primal=5, channels=32):
            super().__init__()
            self.layers = conv_stack(n_primal + 1, 1, channels)

        def forward(self, f, ATh):
            return f + self.layers(torch.cat([f, ATh], dim=1))

    status, message = outcome(lesson07.lpd_primal_block, TooManyOut)
    assert status == "failed" and "last convolution" in message


# --- Exercise 4: the unrolled loop ---------------------------------------------------------


def test_unrolled_accepts_the_reference_and_an_indexed_loop():
    assert lesson07.lpd_unrolled(ref.learned_primal_dual)

    def indexed(g, A, dual_blocks, primal_blocks, f, h):
        for k in range(len(dual_blocks)):
            Af = A(f[:, 1].unsqueeze(1))
            h = dual_blocks[k](h, Af, g)
            f = primal_blocks[k](f, A.T(h[:, 0:1]))
        return f[:, 0:1]

    assert lesson07.lpd_unrolled(indexed)

    def narrowed(g, A, dual_blocks, primal_blocks, f, h):
        for dual_block, primal_block in zip(dual_blocks, primal_blocks):
            h = dual_block(h, A(f.narrow(1, 1, 1)), g)
            f = primal_block(f, A.T(h.narrow(1, 0, 1)))
        return f.narrow(1, 0, 1)

    assert lesson07.lpd_unrolled(narrowed)


def test_unrolled_not_attempted():
    assert outcome(lesson07.lpd_unrolled, stub)[0] == "not attempted"


def test_unrolled_diagnoses_swapped_operators_and_stale_dual():
    def swapped(g, A, dual_blocks, primal_blocks, f, h):
        for dual_block, primal_block in zip(dual_blocks, primal_blocks):
            h = dual_block(h, A.T(f[:, 1:2]), g)
            f = primal_block(f, A(h[:, :1]))
        return f[:, :1]

    status, message = outcome(lesson07.lpd_unrolled, swapped)
    assert status == "failed" and "swapped" in message

    def stale(g, A, dual_blocks, primal_blocks, f, h):
        for dual_block, primal_block in zip(dual_blocks, primal_blocks):
            h_new = dual_block(h, A(f[:, 1:2]), g)
            f = primal_block(f, A.T(h[:, :1]))
            h = h_new
        return f[:, :1]

    status, message = outcome(lesson07.lpd_unrolled, stale)
    assert status == "failed" and "new h" in message


def test_unrolled_diagnoses_order_count_and_return_value():
    def primal_first(g, A, dual_blocks, primal_blocks, f, h):
        for dual_block, primal_block in zip(dual_blocks, primal_blocks):
            f = primal_block(f, A.T(h[:, :1]))
            h = dual_block(h, A(f[:, 1:2]), g)
        return f[:, :1]

    status, message = outcome(lesson07.lpd_unrolled, primal_first)
    assert status == "failed" and "called first" in message

    def off_by_one(g, A, dual_blocks, primal_blocks, f, h):
        for k in range(len(dual_blocks) - 1):
            h = dual_blocks[k](h, A(f[:, 1:2]), g)
            f = primal_blocks[k](f, A.T(h[:, :1]))
        return f[:, :1]

    status, message = outcome(lesson07.lpd_unrolled, off_by_one)
    assert status == "failed" and "called 4 times, expected 6" in message

    def same_block(g, A, dual_blocks, primal_blocks, f, h):
        for _ in range(len(dual_blocks)):
            h = dual_blocks[0](h, A(f[:, 1:2]), g)
            f = primal_blocks[0](f, A.T(h[:, :1]))
        return f[:, :1]

    status, message = outcome(lesson07.lpd_unrolled, same_block)
    assert status == "failed" and "dual_blocks[k]" in message

    def returns_all(g, A, dual_blocks, primal_blocks, f, h):
        for dual_block, primal_block in zip(dual_blocks, primal_blocks):
            h = dual_block(h, A(f[:, 1:2]), g)
            f = primal_block(f, A.T(h[:, :1]))
        return f

    status, message = outcome(lesson07.lpd_unrolled, returns_all)
    assert status == "failed" and "f[:, :1]" in message

    def returns_dual(g, A, dual_blocks, primal_blocks, f, h):
        for dual_block, primal_block in zip(dual_blocks, primal_blocks):
            h = dual_block(h, A(f[:, 1:2]), g)
            f = primal_block(f, A.T(h[:, :1]))
        return h[:, :1]

    status, message = outcome(lesson07.lpd_unrolled, returns_dual)
    assert status == "failed" and "dual memory" in message

    def forgets_return(g, A, dual_blocks, primal_blocks, f, h):
        for dual_block, primal_block in zip(dual_blocks, primal_blocks):
            h = dual_block(h, A(f[:, 1:2]), g)
            f = primal_block(f, A.T(h[:, :1]))

    status, message = outcome(lesson07.lpd_unrolled, forgets_return)
    assert status == "failed" and "return" in message


def test_unrolled_diagnoses_the_projected_channel():
    def first_channel(g, A, dual_blocks, primal_blocks, f, h):
        for dual_block, primal_block in zip(dual_blocks, primal_blocks):
            h = dual_block(h, A(f[:, :1]), g)
            f = primal_block(f, A.T(h[:, :1]))
        return f[:, :1]

    status, message = outcome(lesson07.lpd_unrolled, first_channel)
    assert status == "failed" and "second" in message and "x̄" in message

    def index_drops_channel(g, A, dual_blocks, primal_blocks, f, h):
        for dual_block, primal_block in zip(dual_blocks, primal_blocks):
            h = dual_block(h, A(f[:, 1]), g)
            f = primal_block(f, A.T(h[:, :1]))
        return f[:, :1]

    status, message = outcome(lesson07.lpd_unrolled, index_drops_channel)
    assert status == "failed" and "1:2, not 1" in message


def test_unrolled_diagnoses_operator_on_all_channels():
    def whole_memory(g, A, dual_blocks, primal_blocks, f, h):
        for dual_block, primal_block in zip(dual_blocks, primal_blocks):
            h = dual_block(h, A(f), g)
            f = primal_block(f, A.T(h[:, :1]))
        return f[:, :1]

    status, message = outcome(lesson07.lpd_unrolled, whole_memory)
    assert status == "failed" and "one channel" in message


def test_checks_leave_the_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    lesson07.lpd_dual_block(ref.DualBlock)
    lesson07.lpd_unrolled(ref.learned_primal_dual)
    assert torch.equal(torch.rand(3), expected)


def test_reference_network_starts_as_the_fbp_and_projects_the_second_channel():
    import course_utils as cu

    A = cu.RadonTransform(16, cu.ParallelBeam(n_angles=6, n_detectors=23))
    net = lesson07.LearnedPrimalDual(A, n_iter=2, channels=4)
    y = A(torch.rand(2, 1, 16, 16))
    with torch.no_grad():
        assert torch.allclose(net(y), cu.fbp(A, y), atol=1e-5)
    g, f, h = net.start(y)
    seen = []
    net.A = type("Spy", (), {"__call__": lambda self, x: (seen.append(x), A(x))[1],
                             "T": A.T})()
    f = f + torch.arange(5.0).view(1, 5, 1, 1)      # tell the channels apart
    net.iteration(0, f, h, g)
    assert torch.equal(seen[0], f[:, 1:2])
