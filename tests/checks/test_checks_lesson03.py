"""The checks of lesson 03 accept the reference answers and diagnose typical mistakes."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import course_utils as cu
from course_utils.checks import lesson03
from lesson_references import reference

# The reference answers, from solutions/03_cnn_denoising.py (see lesson_references.py).
ref = reference("03")


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise: replace this line with your code")


def run(check, answer):
    """The check's result and its feedback line."""
    result = check(answer)
    return result, result.line


def failed_with(check, answer, diagnosis):
    result, line = run(check, answer)
    assert result.status in ("failed", "error") and diagnosis in line, line


# --- Exercise 1: the small CNN ----------------------------------------------------------------


def variant(make_layers=None, forward=None, init_extra=None):
    """A SmallCNN (the reference's forward by default) with one part replaced by a mistake."""

    class Variant(nn.Module):
        def __init__(self, channels=16, n_layers=5, residual=False):
            super().__init__()
            self.residual = residual
            self.layers = (make_layers or default_layers)(channels, n_layers)

        def forward(self, x):
            return (forward or ref.SmallCNN.forward)(self, x)

    return Variant


def default_layers(channels, n_layers, act=nn.PReLU, kernel=3, padding=1):
    layers = [nn.Conv2d(1, channels, kernel, padding=padding), act()]
    for _ in range(n_layers - 2):
        layers += [nn.Conv2d(channels, channels, kernel, padding=padding), act()]
    layers.append(nn.Conv2d(channels, 1, kernel, padding=padding))
    return nn.Sequential(*layers)


def test_small_cnn_accepts_reference_and_variants():
    assert lesson03.small_cnn(ref.SmallCNN)

    # Reader's workshop style: reflect padding, one PReLU slope per channel, built in a loop.
    def workshop_layers(channels, n_layers):
        layers = []
        for k in range(n_layers):
            c_in = 1 if k == 0 else channels
            c_out = 1 if k == n_layers - 1 else channels
            layers.append(nn.Conv2d(c_in, c_out, 3, padding=1, padding_mode="reflect"))
            if k < n_layers - 1:
                layers.append(nn.PReLU(c_out))
        return nn.Sequential(*layers)

    assert lesson03.small_cnn(variant(make_layers=workshop_layers))
    # DnCNN's sign convention: subtract the predicted artefacts.
    assert lesson03.small_cnn(variant(
        forward=lambda self, x: x - self.layers(x) if self.residual else self.layers(x)))


def test_small_cnn_accepts_module_lists_and_a_loop_in_forward():
    class Listed(nn.Module):
        def __init__(self, channels=16, n_layers=5, residual=False):
            super().__init__()
            sizes = [1] + [channels] * (n_layers - 1) + [1]
            self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1)
                                       for a, b in zip(sizes, sizes[1:]))
            self.acts = nn.ModuleList(nn.PReLU() for _ in range(n_layers - 1))
            self.residual = residual

        def forward(self, x):
            h = x
            for conv, act in zip(self.convs, self.acts):
                h = act(conv(h))
            h = self.convs[-1](h)
            return x + h if self.residual else h

    assert lesson03.small_cnn(Listed)


def prelu_after_last(channels, n_layers):
    return nn.Sequential(*default_layers(channels, n_layers), nn.PReLU())


def one_prelu(channels, n_layers):       # a single PReLU, after the first layer only
    layers = [nn.Conv2d(1, channels, 3, padding=1), nn.PReLU()]
    layers += [nn.Conv2d(channels, channels, 3, padding=1) for _ in range(n_layers - 2)]
    return nn.Sequential(*layers, nn.Conv2d(channels, 1, 3, padding=1))


class SharedPReLU(nn.Module):            # one PReLU module used after every layer
    def __init__(self, channels=16, n_layers=5, residual=False):
        super().__init__()
        sizes = [1] + [channels] * (n_layers - 1) + [1]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1)
                                   for a, b in zip(sizes, sizes[1:]))
        self.act = nn.PReLU()
        self.residual = residual

    def forward(self, x):
        h = x
        for conv in self.convs[:-1]:
            h = self.act(conv(h))
        h = self.convs[-1](h)
        return x + h if self.residual else h


def relu_after_last(self, x):            # a functional activation after the last layer
    out = F.relu(self.layers(x))
    return x + out if self.residual else out


@pytest.mark.parametrize("wrong, diagnosis", [
    (variant(make_layers=lambda c, n: default_layers(c, n, act=nn.ReLU)), "no nn.PReLU"),
    (variant(make_layers=lambda c, n: default_layers(c, n, padding=0)), "padding=1"),
    (variant(make_layers=lambda c, n: default_layers(c, n, kernel=5, padding=2)),
     "3 x 3"),
    (variant(make_layers=lambda c, n: default_layers(c, n - 1)), "nn.Conv2d layers"),
    (variant(forward=lambda self, x: self.layers(x)), "the same as without"),
    (variant(forward=lambda self, x: self.layers(x) - x if self.residual
             else self.layers(x)), "layers(x) - x"),
    (variant(forward=lambda self, x: self.layers(x.unsqueeze(0))), "already a batch"),
    (variant(forward=lambda self, x: self.layers(x)[:, 0]), "squeeze"),
    (variant(forward=lambda self, x: self.layers(x).detach()), "does not depend"),
    (variant(forward=lambda self, x: None), "return"),
    (variant(make_layers=prelu_after_last), "after the last convolution"),
    (variant(make_layers=one_prelu), "expected conv - PReLU"),
    (SharedPReLU, "one nn.PReLU module"),
    (variant(forward=relu_after_last), "apply nothing after the last convolution"),
])
def test_small_cnn_diagnoses_mistakes(wrong, diagnosis):
    failed_with(lesson03.small_cnn, wrong, diagnosis)


def test_small_cnn_unused_layer_and_instance():
    def unused_last(self, x):       # forgets the last convolution
        out = self.layers[:-1](x)[:, :1]
        return x + out if self.residual else out

    failed_with(lesson03.small_cnn, variant(forward=unused_last), "convolutions of")
    failed_with(lesson03.small_cnn, ref.SmallCNN(), "pass the class itself")


def test_small_cnn_stub_not_attempted():
    class Stub(nn.Module):
        def __init__(self, channels=16, n_layers=5, residual=False):
            super().__init__()
            raise NotImplementedError("Exercise 1: replace this line with your code")

    assert lesson03.small_cnn(Stub).status == "not attempted"


# --- Exercise 2: receptive field and parameter count ---------------------------------------


def count_by_building(channels, n_layers):
    """Another correct answer: build the reference network and count."""
    return 2 * n_layers + 1, cu.count_parameters(lesson03.reference_cnn(channels, n_layers))


def test_cnn_size_accepts_reference_and_a_count():
    assert lesson03.cnn_size(ref.cnn_size)
    assert lesson03.cnn_size(count_by_building)
    # a list and numpy-free tensors are fine too
    assert lesson03.cnn_size(lambda c, n: [torch.tensor(v) for v in ref.cnn_size(c, n)])


def _with(field=None, count=None):
    def answer(c, n):
        f, p = ref.cnn_size(c, n)
        return (f if field is None else field(c, n), p if count is None else count(c, n))
    return answer


def _conv(c, n):
    return 10 * c + (n - 2) * (9 * c * c + c) + 9 * c + 1


@pytest.mark.parametrize("wrong, diagnosis", [
    (_with(field=lambda c, n: 2 * n - 1), "EACH side"),
    (_with(field=lambda c, n: n + 1), "by 2 pixels"),
    (_with(field=lambda c, n: (2 * n + 1) ** 2), "side of the square"),
    (_with(count=_conv), "PReLU slopes"),
    (_with(count=lambda c, n: _conv(c, n) - n + n - 1), "bias"),
    (_with(count=lambda c, n: _conv(c, n) + n), "no PReLU after the last"),
    (_with(count=lambda c, n: _conv(c, n) + c * (n - 1)), "ONE slope"),
    (_with(count=lambda c, n: n * (9 * c * c + c) + n - 1), "1 input channel"),
    (lambda c, n: ref.cnn_size(c, n)[::-1], "swapped"),
    (lambda c, n: ref.cnn_size(c, n)[0], "pair"),
    (lambda c, n: None, "return"),
])
def test_cnn_size_diagnoses_mistakes(wrong, diagnosis):
    failed_with(lesson03.cnn_size, wrong, diagnosis)


def test_cnn_size_stub_not_attempted():
    assert lesson03.cnn_size(stub).status == "not attempted"


# --- Exercise 3: one training step ----------------------------------------------------------


def test_train_step_accepts_reference_and_other_orders():
    assert lesson03.cnn_train_step(ref.train_step)

    def zero_grad_last(model, optimizer, x_in, x_target, loss_fn):
        model.train()
        loss = loss_fn(model(x_in), x_target)
        loss.backward()
        optimizer.step()
        model.zero_grad()
        return float(loss.detach())

    assert lesson03.cnn_train_step(zero_grad_last)


def no_zero_grad(model, optimizer, x_in, x_target, loss_fn):
    model.train()
    loss = loss_fn(model(x_in), x_target)
    loss.backward()
    optimizer.step()
    return loss.item()


def no_train_mode(model, optimizer, x_in, x_target, loss_fn):
    loss = loss_fn(model(x_in), x_target)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def returns_tensor(model, optimizer, x_in, x_target, loss_fn):
    model.train()
    loss = loss_fn(model(x_in), x_target)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


def hard_coded_mse(model, optimizer, x_in, x_target, loss_fn):
    return ref.train_step(model, optimizer, x_in, x_target, F.mse_loss)


def loss_after_update(model, optimizer, x_in, x_target, loss_fn):
    ref.train_step(model, optimizer, x_in, x_target, loss_fn)
    with torch.no_grad():
        return loss_fn(model(x_in), x_target).item()


def no_step(model, optimizer, x_in, x_target, loss_fn):
    model.train()
    loss = loss_fn(model(x_in), x_target)
    optimizer.zero_grad()
    loss.backward()
    return loss.item()


def zero_grad_between(model, optimizer, x_in, x_target, loss_fn):
    model.train()
    loss = loss_fn(model(x_in), x_target)
    loss.backward()
    optimizer.zero_grad()
    optimizer.step()
    return loss.item()


def two_steps(model, optimizer, x_in, x_target, loss_fn):
    ref.train_step(model, optimizer, x_in, x_target, loss_fn)
    return ref.train_step(model, optimizer, x_in, x_target, loss_fn)


@pytest.mark.parametrize("wrong, diagnosis", [
    (no_zero_grad, "zero_grad"),
    (no_train_mode, "model.train()"),
    (returns_tensor, "requires grad"),
    (hard_coded_mse, "another loss"),
    (loss_after_update, "after the update"),
    (no_step, "did not change"),
    (zero_grad_between, "did not change"),
    (two_steps, "returned"),
    (lambda *args: None, "return"),
])
def test_train_step_diagnoses_mistakes(wrong, diagnosis):
    failed_with(lesson03.cnn_train_step, wrong, diagnosis)


def test_train_step_stub_not_attempted():
    assert lesson03.cnn_train_step(stub).status == "not attempted"


def test_checks_leave_the_global_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    lesson03.cnn_train_step(ref.train_step)
    lesson03.small_cnn(ref.SmallCNN)
    assert torch.equal(torch.rand(3), expected)


# --- Exercise 4: the test-set PSNR ----------------------------------------------------------


def test_test_psnr_accepts_reference_and_a_loop():
    assert lesson03.test_set_psnr(ref.test_psnr)

    def one_at_a_time(model, split):
        model.eval()
        values = []
        with torch.no_grad():
            for k in range(len(split)):
                image = split[k]
                values.append(float(cu.psnr(model(image.x_fbp), image.x, data_range=1.0)))
        return sum(values) / len(values)

    assert lesson03.test_set_psnr(one_at_a_time)


def psnr_of_mean_mse(model, split):
    model.eval()
    with torch.no_grad():
        mse = ((model(split.x_fbp) - split.x) ** 2).mean()
    return float(10 * torch.log10(1 / mse))


def no_eval(model, split):
    with torch.no_grad():
        return float(cu.psnr(model(split.x_fbp), split.x, data_range=1.0).mean())


def no_no_grad(model, split):
    model.eval()
    return float(cu.psnr(model(split.x_fbp), split.x, data_range=1.0).mean())


def default_range(model, split):
    model.eval()
    with torch.no_grad():
        return float(cu.psnr(model(split.x_fbp), split.x).mean())


def range_255(model, split):
    model.eval()
    with torch.no_grad():
        return float(cu.psnr(model(split.x_fbp), split.x, data_range=255).mean())


def on_sinograms(model, split):
    model.eval()
    with torch.no_grad():
        model(split.y)
    return 0.0


def scores_input(model, split):
    model.eval()
    with torch.no_grad():
        model(split.x_fbp)
    return float(cu.psnr(split.x_fbp, split.x, data_range=1.0).mean())


def returns_tensor_psnr(model, split):
    model.eval()
    with torch.no_grad():
        return cu.psnr(model(split.x_fbp), split.x, data_range=1.0).mean()


@pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad")
@pytest.mark.parametrize("wrong, diagnosis", [
    (psnr_of_mean_mse, "averaged the MSE"),
    (no_eval, "model.eval()"),
    (no_no_grad, "torch.no_grad()"),
    (default_range, "data_range=1.0"),
    (range_255, "data_range=255"),
    (on_sinograms, "split.y"),
    (scores_input, "input"),
    (returns_tensor_psnr, "Python float"),
    (lambda model, split: None, "return"),
])
def test_test_psnr_diagnoses_mistakes(wrong, diagnosis):
    failed_with(lesson03.test_set_psnr, wrong, diagnosis)


def test_test_psnr_stub_not_attempted():
    assert lesson03.test_set_psnr(stub).status == "not attempted"


def test_public_names():
    assert set(lesson03.__all__) == {"small_cnn", "cnn_size", "cnn_train_step", "test_set_psnr"}


def test_notebook_helpers_match_the_exercises():
    """The helpers the notebook goes on with pass the lesson's own checks."""
    class Helper(nn.Module):
        def __init__(self, channels=16, n_layers=5, residual=False):
            super().__init__()
            self.net = lesson03.Residual(lesson03.reference_cnn(channels, n_layers))
            self.residual = residual

        def forward(self, x):
            return self.net(x) if self.residual else self.net.body(x)

    assert lesson03.small_cnn(Helper)
    assert lesson03.cnn_train_step(lesson03.reference_train_step)

    def via_apply_network(model, split):
        return float(cu.psnr(lesson03.apply_network(model, split.x_fbp), split.x,
                             data_range=1.0).mean())

    assert lesson03.test_set_psnr(via_apply_network)
