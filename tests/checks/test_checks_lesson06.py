"""The checks of lesson 06 accept the reference answers and diagnose typical mistakes."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import course_utils as cu
from course_utils.checks import lesson06
from lesson_references import reference

# The reference answers, from solutions/06_unrolled_mlem.py (see lesson_references.py).
ref = reference("06")


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise: replace this line with your code")


# --- helpers --------------------------------------------------------------------------------


def run(check, answer, capsys):
    result = check(answer)
    line = capsys.readouterr().out.strip()
    assert line == result.line       # exactly one line printed, the result's
    return result


def assert_fails(check, answer, capsys, *words):
    result = run(check, answer, capsys)
    assert result.status in ("failed", "error"), result.line
    for word in words:
        assert word.lower() in result.message.lower(), result.line
    return result


# --- Exercise 1: the Poisson negative log-likelihood ----------------------------------------


def test_poisson_nll_accepts_reference(capsys):
    assert run(cu.checks.poisson_nll, ref.poisson_nll, capsys)


def test_poisson_nll_accepts_log_with_tiny_epsilon(capsys):
    def with_eps(y_bar, y):
        return (y_bar - y * torch.log(y_bar + 1e-30)).sum(dim=(-2, -1))
    assert run(cu.checks.poisson_nll, with_eps, capsys)


def test_poisson_nll_stub_is_not_attempted(capsys):
    assert run(cu.checks.poisson_nll, stub, capsys).status == "not attempted"


@pytest.mark.parametrize("wrong, words", [
    (lambda y_bar, y: -(y_bar - torch.xlogy(y, y_bar)).sum(dim=(-2, -1)),
     ["log-likelihood", "negative"]),
    (lambda y_bar, y: -torch.xlogy(y, y_bar).sum(dim=(-2, -1)), ["left out the term Σ ȳ"]),
    (lambda y_bar, y: (y_bar - torch.xlogy(y, y)).sum(dim=(-2, -1)), ["expected counts"]),
    (lambda y_bar, y: (y - torch.xlogy(y_bar, y)).sum(dim=(-2, -1)), ["measured counts y"]),
    (lambda y_bar, y: (y_bar - torch.xlogy(y, y_bar)).mean(dim=(-2, -1)), ["mean"]),
    (lambda y_bar, y: (y_bar - torch.xlogy(y, y_bar)).sum(), ["single number"]),
    (lambda y_bar, y: y_bar - torch.xlogy(y, y_bar), ["per sinogram bin"]),
    (lambda y_bar, y: (y_bar - y * torch.log(y_bar)).sum(dim=(-2, -1)), ["xlogy"]),
    (lambda y_bar, y: (y_bar - torch.xlogy(y, y_bar) + torch.lgamma(y + 1)).sum(dim=(-2, -1)),
     ["log(y!)"]),
    (lambda y_bar, y: None, ["return"]),
])
def test_poisson_nll_diagnoses_mistakes(capsys, wrong, words):
    assert_fails(cu.checks.poisson_nll, wrong, capsys, *words)


# --- Exercise 2: the MLEM update as a module -------------------------------------------------


def test_mlem_module_accepts_reference(capsys):
    assert run(cu.checks.mlem_module, ref.MLEMStep, capsys)


def test_mlem_module_accepts_additive_epsilon(capsys):
    class Plus(ref.MLEMStep):
        def forward(self, x, y):
            return x * self.A.T(y / (self.A(x) + 1e-9)) / self.sensitivity
    assert run(cu.checks.mlem_module, Plus, capsys)


def test_mlem_module_stub_is_not_attempted(capsys):
    class Stub(nn.Module):
        def __init__(self, A):
            super().__init__()
            raise NotImplementedError("Exercise: replace this line with your code")
    assert run(cu.checks.mlem_module, Stub, capsys).status == "not attempted"


def _variant(forward=None, init=None):
    """The reference MLEMStep with a replaced forward and/or __init__."""
    attributes = {}
    if forward is not None:
        attributes["forward"] = forward
    if init is not None:
        attributes["__init__"] = init
    return type("Wrong", (ref.MLEMStep,), attributes)


def _no_sensitivity(self, x, y):
    return x * self.A.T(y / self.A(x).clamp(min=1e-9))


def _times_sensitivity(self, x, y):
    return x * self.A.T(y / self.A(x).clamp(min=1e-9)) * self.sensitivity


def _upside_down(self, x, y):
    return x * self.A.T(self.A(x) / y.clamp(min=1e-9)) / self.sensitivity


def _unguarded(self, x, y):
    return x * self.A.T(y / self.A(x)) / self.sensitivity


def _no_grad(self, x, y):
    with torch.no_grad():
        return x * self.A.T(y / self.A(x).clamp(min=1e-9)) / self.sensitivity


def _sensitivity_every_call(self, x, y):
    s = self.A.T(torch.ones(self.A.range_shape, device=self.A.device))
    return x * self.A.T(y / self.A(x).clamp(min=1e-9)) / s


def _in_place(self, x, y):
    x *= self.A.T(y / self.A(x).clamp(min=1e-9)) / self.sensitivity
    return x


def _plain_attribute(self, A):
    nn.Module.__init__(self)
    self.A = A
    self.sensitivity_image = None       # not a buffer: the check must not find it
    self._s = A.T(torch.ones(A.range_shape))


def _plain_attribute_forward(self, x, y):
    return x * self.A.T(y / self.A(x).clamp(min=1e-9)) / self._s


def _as_parameter(self, A):
    nn.Module.__init__(self)
    self.A = A
    self.sensitivity = nn.Parameter(A.T(torch.ones(A.range_shape)))


@pytest.mark.parametrize("forward, init, words", [
    (_no_sensitivity, None, ["normalised by the sensitivity"]),
    (_times_sensitivity, None, ["multiplied by the sensitivity"]),
    (_upside_down, None, ["upside down"]),
    (_unguarded, None, ["nan", "clamp"]),
    (_no_grad, None, ["autograd"]),
    (_sensitivity_every_call, None, ["once"]),
    (_in_place, None, ["in place"]),
    (_plain_attribute_forward, _plain_attribute, ["register_buffer"]),
    (None, _as_parameter, ["trainable parameters"]),
    (lambda self, x, y: None, None, ["return"]),
])
def test_mlem_module_diagnoses_mistakes(capsys, forward, init, words):
    assert_fails(cu.checks.mlem_module, _variant(forward, init), capsys, *words)


def test_mlem_module_wants_the_class(capsys):
    assert_fails(cu.checks.mlem_module, ref.MLEMStep(cu.RadonTransform(
        image_size=8, geometry=cu.ParallelBeam(n_angles=6, n_detectors=13))), capsys,
        "class")


# --- Exercise 3: the unrolled forward pass ----------------------------------------------------


def test_unrolled_accepts_reference(capsys):
    assert run(cu.checks.unrolled_mlem_forward, ref.unrolled_mlem, capsys)


def test_unrolled_stub_is_not_attempted(capsys):
    assert run(cu.checks.unrolled_mlem_forward, stub, capsys).status == "not attempted"


def test_unrolled_check_keeps_global_random_state(capsys):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    run(cu.checks.unrolled_mlem_forward, ref.unrolled_mlem, capsys)
    assert torch.equal(torch.rand(3), expected)


def make_unrolled(*, start=1.0, residual=True, nonneg="relu", cnn_first=False,
                  first_block_only=False, detach=False, return_list=False, extra_step=False):
    """An unrolled forward pass with one deliberate mistake (or none)."""

    def unrolled(y, mlem_step, blocks, image_size):
        x = torch.full((*y.shape[:-2], image_size, image_size), start, dtype=y.dtype)
        images = []
        for block in blocks:
            block = blocks[0] if first_block_only else block
            if not cnn_first:
                x = mlem_step(x, y)
            z = x + block(x) if residual else block(x)
            x = {"relu": F.relu, "abs": torch.abs, "none": lambda t: t}[nonneg](z)
            if cnn_first:
                x = mlem_step(x, y)
            if detach:
                x = x.detach()
            images.append(x)
        if extra_step:
            x = mlem_step(x, y)
        return images if return_list else x

    return unrolled


def test_unrolled_without_a_mistake_passes(capsys):
    assert run(cu.checks.unrolled_mlem_forward, make_unrolled(), capsys)


@pytest.mark.parametrize("options, words", [
    (dict(start=0.0), ["zeros"]),
    (dict(residual=False), ["residual"]),
    (dict(nonneg="none"), ["negative"]),
    (dict(nonneg="abs"), ["abs"]),
    (dict(cnn_first=True), ["em update"]),
    (dict(first_block_only=True), ["blocks[k]"]),
    (dict(detach=True), ["autograd"]),
    (dict(return_list=True), ["last image"]),
    (dict(extra_step=True), ["mlem_step ran 4 times"]),
])
def test_unrolled_diagnoses_mistakes(capsys, options, words):
    assert_fails(cu.checks.unrolled_mlem_forward, make_unrolled(**options), capsys, *words)


def test_mlem_gradient_step_accepts_the_reference_and_other_forms(capsys):
    assert lesson06.mlem_gradient_step(ref.mlem_as_gradient_step)
    assert lesson06.mlem_gradient_step(lambda x, grad, s: x * (1 - grad / s))
    assert lesson06.mlem_gradient_step(lambda x, grad, s: x - torch.div(x, s).mul(grad))


@pytest.mark.parametrize("wrong, words", [
    (lambda x, grad, s: x - grad, "plain gradient step"),
    (lambda x, grad, s: x - grad / s, "missing the factor x"),
    (lambda x, grad, s: x - x * grad, "division by the sensitivity"),
    (lambda x, grad, s: x + x / s * grad, "DOWNhill"),
    (lambda x, grad, s: x / s * grad, "not the step"),
    (lambda x, grad, s: x.sub_(x / s * grad), "in place"),
    (lambda x, grad, s: None, "return"),
])
def test_mlem_gradient_step_diagnoses_mistakes(capsys, wrong, words):
    result = lesson06.mlem_gradient_step(wrong)
    assert result.status == "failed" and words in result.message, result.message


def test_mlem_gradient_step_stub_is_not_attempted(capsys):
    def stub(x, grad, s):
        raise NotImplementedError("Exercise 3: replace this line with your code")

    assert lesson06.mlem_gradient_step(stub).status == "not attempted"


def test_check_names_are_exported():
    assert set(lesson06.__all__) == {"poisson_nll", "mlem_module", "mlem_gradient_step",
                                     "unrolled_mlem_forward"}
    for name in lesson06.__all__:
        assert callable(getattr(cu.checks, name))
