"""The checks of lesson 05 accept the reference answers and diagnose typical mistakes."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import course_utils as cu
from course_utils.checks import lesson05
from lesson_references import reference

# The reference answers, from solutions/05_deep_image_prior.py (see lesson_references.py).
ref = reference("05")


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise: replace this line with your code")


def make_fit(*, forward="A", zero_grad=True, optimizer_in_loop=False, params="net",
             fresh_z=False, detach=False, use_lr=True, step=True, callback_mode="ok",
             loss="half-sum", returns="after", sign=1.0, notebook_lr=None):
    """A fit_dip with one deliberate mistake (or none)."""

    def fit(net, z, y, A, n_iter, lr, callback=None):
        forward_op = A.T if forward == "A.T" else A
        if params == "net+z":
            z.requires_grad_(True)
            parameters = list(net.parameters()) + [z]
        elif params == "z-trainable":
            z.requires_grad_(True)
            parameters = list(net.parameters())
        else:
            parameters = list(net.parameters())
        if notebook_lr is not None:       # the notebook's global instead of the argument
            lr = notebook_lr
        optimizer = torch.optim.Adam(parameters, lr=lr if use_lr else 1e-3)
        x = None
        for k in range(1, n_iter + 1):
            if optimizer_in_loop:
                optimizer = torch.optim.Adam(parameters, lr=lr)
            z_k = 0.1 * torch.rand_like(z) if fresh_z else z
            x = net(z_k)
            if detach:
                x = x.detach()
            residual = forward_op(x) - y
            value = {"half-sum": 0.5 * (residual ** 2).sum(), "sum": (residual ** 2).sum(),
                     "mean": F.mse_loss(forward_op(x), y)}[loss]
            value = sign * value
            if zero_grad:
                optimizer.zero_grad()
            value.backward()
            if step:
                optimizer.step()
            if callback is not None and callback_mode != "none":
                callback(k - 1 if callback_mode == "from0" else k, x.detach())
        if returns == "none":
            return None
        if returns == "last":
            return x.detach()
        with torch.no_grad():
            return net(z)

    return fit


def run(check, fn):
    """The check's result and its feedback line."""
    result = check(fn)
    return result, result.line


# --- Exercise 1: the fitting loop ------------------------------------------------------------


def test_fit_dip_accepts_the_reference():
    result, line = run(lesson05.fit_dip, ref.fit_dip)
    assert result.status == "passed", line


@pytest.mark.parametrize("good", [
    make_fit(),                      # the scaffold of the mistakes below, without one
    make_fit(loss="sum"),            # with Adam the scale of the loss does not matter
    make_fit(loss="mean"),
    make_fit(returns="last"),        # the output of the last step is fine too
    lambda net, z, y, A, n_iter, lr, callback=None:     # a squeezed image is fine too
        ref.fit_dip(net, z, y, A, n_iter, lr, callback).squeeze(),
])
def test_fit_dip_accepts_equivalent_answers(good):
    result, line = run(lesson05.fit_dip, good)
    assert result, line
    assert result.status == "passed"


@pytest.mark.parametrize("wrong, diagnosis", [
    (make_fit(params="net+z"), "changed the input z"),
    (make_fit(params="z-trainable"), "made the input z trainable"),
    (make_fit(fresh_z=True), "draws random numbers"),
    (make_fit(forward="A.T"), "A.T"),
    (make_fit(zero_grad=False), "zero_grad"),
    (make_fit(detach=True), "detached"),
    (make_fit(optimizer_in_loop=True), "new optimiser in every step"),
    (make_fit(use_lr=False), "ignored the argument lr"),
    (make_fit(notebook_lr=1e-2), "notebook's learning rate LR"),
    (make_fit(step=False), "weights did not change"),
    (make_fit(callback_mode="none"), "callback was never called"),
    (make_fit(callback_mode="from0"), "count the steps from 1"),
    (make_fit(returns="none"), "returned None"),
    (make_fit(sign=-1.0), "did not go down"),
])
def test_fit_dip_diagnoses_mistakes(wrong, diagnosis):
    result, line = run(lesson05.fit_dip, wrong)
    assert not result
    assert result.status == "failed", line
    assert diagnosis in line, line


def test_fit_dip_stub_is_not_attempted():
    result, line = run(lesson05.fit_dip, stub)
    assert result.status == "not attempted", line


@pytest.mark.parametrize("answer", ["reference", "fresh z"])
def test_fit_dip_leaves_the_global_random_state_alone(answer):
    fn = ref.fit_dip if answer == "reference" else make_fit(fresh_z=True)
    torch.manual_seed(123)
    torch.rand(3)
    state = torch.get_rng_state()
    lesson05.fit_dip(fn)
    assert torch.equal(torch.get_rng_state(), state)


# --- Exercise 2: the discrepancy principle's stopping step -----------------------------


def _first(misfits, threshold, strict=False, start=1, default="last"):
    for k, m in enumerate(misfits, start=start):
        if (m < threshold) if strict else (m <= threshold):
            return k
    return len(misfits) if default == "last" else None


def test_discrepancy_stop_accepts_the_reference_and_other_forms():
    assert lesson05.discrepancy_stop(ref.discrepancy_stop)
    assert lesson05.discrepancy_stop(lambda m, delta, tau: _first(m, tau * delta))

    def with_numpy(misfits, delta, tau):
        within = np.asarray(misfits) <= tau * delta
        return int(np.argmax(within)) + 1 if within.any() else len(misfits)

    assert lesson05.discrepancy_stop(with_numpy)


@pytest.mark.parametrize("wrong, diagnosis", [
    (lambda m, delta, tau: _first(m, tau * delta, start=0), "counted from 1"),
    (lambda m, delta, tau: max([k for k, v in enumerate(m, 1) if v <= tau * delta]
                               or [len(m)]), "FIRST one"),
    (lambda m, delta, tau: _first(m, delta), "τδ, not δ"),
    (lambda m, delta, tau: _first(m, tau * delta, strict=True), "equal"),
    (lambda m, delta, tau: _first(m, tau * delta, default=None), "returned None"),
    (lambda m, delta, tau: _first(m, tau * delta, default=None) or 0, "never reaches"),
])
def test_discrepancy_stop_diagnoses_mistakes(wrong, diagnosis):
    result, line = run(lesson05.discrepancy_stop, wrong)
    assert result.status == "failed" and diagnosis in line, line


def test_discrepancy_stop_stub_is_not_attempted():
    result, line = run(lesson05.discrepancy_stop, stub)
    assert result.status == "not attempted", line


# --- Exercise 3: the DIP + TV loss -----------------------------------------------------------


def test_dip_tv_loss_accepts_reference_and_equivalent_answers():
    assert lesson05.dip_tv_loss(ref.dip_tv_loss)
    assert lesson05.dip_tv_loss(
        lambda x, y, A, lam: 0.5 * ((A(x) - y) ** 2).sum() + lam * cu.total_variation(x).sum())

    def with_epsilon(x, y, A, lam):        # a tiny epsilon inside the root is fine
        g = cu.image_gradient(x)
        return 0.5 * ((A(x) - y) ** 2).sum() + lam * torch.sqrt((g ** 2).sum(-3) + 1e-14).sum()

    assert lesson05.dip_tv_loss(with_epsilon)

    def smoothed(x, y, A, lam):            # a smoothed TV with ε = 1e-8 is accepted too
        g = cu.image_gradient(x)
        return 0.5 * ((A(x) - y) ** 2).sum() + lam * torch.sqrt((g ** 2).sum(-3) + 1e-8).sum()

    assert lesson05.dip_tv_loss(smoothed)


def test_dip_tv_loss_message_shows_enough_digits():
    def too_smooth(x, y, A, lam):           # ε = 1e-6 changes the TV visibly
        g = cu.image_gradient(x)
        return 0.5 * ((A(x) - y) ** 2).sum() + lam * torch.sqrt((g ** 2).sum(-3) + 1e-6).sum()

    result, line = run(lesson05.dip_tv_loss, too_smooth)
    assert result.status == "failed" and "198.3253" in line and "198.2572" in line, line


def _tv_variant(x, kind):
    g = cu.image_gradient(x)
    if kind == "anisotropic":
        return g.abs().sum()
    if kind == "squared":
        return (g ** 2).sum()
    if kind == "mean":
        return torch.linalg.vector_norm(g, dim=-3).mean()
    if kind == "sqrt":
        return torch.sqrt((g ** 2).sum(-3)).sum()
    if kind == "roll":
        down = torch.roll(x, -1, dims=-2) - x
        right = torch.roll(x, -1, dims=-1) - x
        return torch.sqrt(down ** 2 + right ** 2 + 1e-14).sum()
    if kind == "cropped":
        down = x[..., 1:, :-1] - x[..., :-1, :-1]
        right = x[..., :-1, 1:] - x[..., :-1, :-1]
        return torch.sqrt(down ** 2 + right ** 2 + 1e-14).sum()
    return torch.linalg.vector_norm(g, dim=-3).sum()


@pytest.mark.parametrize("wrong, diagnosis", [
    (lambda x, y, A, lam: 0.5 * ((A(x) - y) ** 2).sum() + _tv_variant(x, "iso"),
     "weight lam is missing"),
    (lambda x, y, A, lam: lam * 0.5 * ((A(x) - y) ** 2).sum() + _tv_variant(x, "iso"),
     "lam multiplies the wrong term"),
    (lambda x, y, A, lam: 0.5 * ((A(x) - y) ** 2).sum() + lam * _tv_variant(x, "anisotropic"),
     "ANISOTROPIC"),
    (lambda x, y, A, lam: 0.5 * ((A(x) - y) ** 2).sum() + lam * _tv_variant(x, "squared"),
     "no square root"),
    (lambda x, y, A, lam: F.mse_loss(A(x), y) + lam * _tv_variant(x, "iso"), "mean"),
    (lambda x, y, A, lam: 0.5 * ((A(x) - y) ** 2).mean() + lam * _tv_variant(x, "iso"),
     "half the mean"),
    (lambda x, y, A, lam: 0.5 * ((A(x) - y) ** 2).sum() + lam * _tv_variant(x, "mean"),
     "not the mean"),
    (lambda x, y, A, lam: ((A(x) - y) ** 2).sum() + lam * _tv_variant(x, "iso"),
     "factor ½"),
    (lambda x, y, A, lam: 0.5 * torch.linalg.vector_norm(A(x) - y)
     + lam * _tv_variant(x, "iso"), "SQUARED norm"),
    (lambda x, y, A, lam: 0.5 * ((A(x) - y) ** 2).sum() + lam * _tv_variant(x, "roll"),
     "wrap around"),
    (lambda x, y, A, lam: 0.5 * ((A(x) - y) ** 2).sum() + lam * _tv_variant(x, "cropped"),
     "last row and column"),
    (lambda x, y, A, lam: 0.5 * ((A(x) - y) ** 2).sum(dim=(-2, -1))
     + lam * cu.total_variation(x), "one value per image"),
    (lambda x, y, A, lam: ref.dip_tv_loss(x, y, A, lam).item(), "should be a torch tensor"),
    (lambda x, y, A, lam: ref.dip_tv_loss(x, y, A, lam).detach(), "detached"),
    (lambda x, y, A, lam: 0.5 * ((A(x) - y) ** 2).sum() + lam * _tv_variant(x, "sqrt"),
     "NaN where the image is flat"),
    (lambda x, y, A, lam: None, "return"),
])
def test_dip_tv_loss_diagnoses_mistakes(wrong, diagnosis):
    result, line = run(lesson05.dip_tv_loss, wrong)
    assert not result
    assert result.status == "failed", line
    assert diagnosis in line, line


def test_dip_tv_loss_stub_is_not_attempted():
    result, line = run(lesson05.dip_tv_loss, stub)
    assert result.status == "not attempted", line


def test_checks_are_exported():
    assert set(lesson05.__all__) == {"fit_dip", "discrepancy_stop", "dip_tv_loss"}
