"""Checks for the exercises of lesson 03: CNN denoising and post-processing.

The exercises are about *learned* code, so the checks do not compare one array with
another: they build the learner's network and try it (shapes, layers, parameter count,
whether gradients reach every weight, the residual connection), run the learner's
training step on a tiny made-up batch next to a reference step (is the loss the one
that was back-propagated, did the weights move as one optimiser step says, are the
gradients reset in between), and score a made-up model on a made-up split (evaluation
mode, no gradients, which average, which data range).  Every check runs in well under
a second on a CPU and leaves the global random state as it found it.
"""

from __future__ import annotations

import copy
import math
import numbers

import torch
import torch.nn.functional as F
from torch import nn

from ..metrics import psnr
from ..simulation.setting import DataSplit
from ._feedback import CheckFailed, exercise_check, expect

__all__ = ["small_cnn", "cnn_size", "cnn_train_step", "test_set_psnr"]


# --- shared helpers ------------------------------------------------------------------------

def _as_float(value, what: str, hint: str) -> float:
    """``value`` as a Python float, or CheckFailed saying what it is instead."""
    if value is None:
        raise CheckFailed(f"{what} returned None — did you forget a `return`?")
    if isinstance(value, torch.Tensor):
        kind = ("a tensor that still requires grad" if value.requires_grad else "a tensor")
        raise CheckFailed(f"{what} returned {kind} of shape {tuple(value.shape)}; return a "
                          f"Python float instead ({hint})")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise CheckFailed(f"{what} should return a float, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise CheckFailed(f"{what} returned {value}, expected a finite number")
    return value


def _close(a: float, b: float, rtol: float = 1e-4, atol: float = 1e-7) -> bool:
    return math.isclose(a, b, rel_tol=rtol, abs_tol=atol)


def _parameters_close(model_a: nn.Module, model_b: nn.Module, rtol=1e-4, atol=1e-6) -> bool:
    pairs = zip(model_a.parameters(), model_b.parameters())
    return all(torch.allclose(a.detach(), b.detach(), rtol=rtol, atol=atol) for a, b in pairs)


# --- Exercise 1: a small PReLU CNN -----------------------------------------------------------

def _build(cnn_class, what: str, **kwargs) -> nn.Module:
    model = cnn_class(**kwargs)
    if not isinstance(model, nn.Module):
        raise CheckFailed(f"{what} is a {type(model).__name__}, not a torch.nn.Module: "
                          f"the class must inherit from nn.Module and call "
                          f"super().__init__() first")
    return model


def _conv_parameters(channels: int, n_layers: int) -> int:
    """Weights and biases of n_layers 3 x 3 convolutions 1 -> C -> ... -> C -> 1."""
    first = 9 * channels + channels
    middle = (n_layers - 2) * (9 * channels * channels + channels)
    last = 9 * channels + 1
    return first + middle + last


def _check_order(model: nn.Module, convs, n_layers: int, setting: str) -> None:
    """Run the model once and check the order of its layers: conv, PReLU, ..., conv.

    Forward hooks record which convolutions and PReLUs run, in order, and what the last
    convolution returned: without ``residual`` the network's output must be exactly that
    (nothing, no activation, after the last convolution).
    """
    calls, last_output = [], {}

    def record(module, inputs, output):
        calls.append(module)
        if module is convs[-1]:
            last_output["value"] = output.detach().clone()

    handles = [m.register_forward_hook(record) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.PReLU))]
    try:
        with torch.no_grad():
            out = model(torch.rand(2, 1, 9, 9))
    finally:
        for handle in handles:
            handle.remove()
    kinds = ["conv" if isinstance(m, nn.Conv2d) else "PReLU" for m in calls]
    ran = {id(m) for m in calls if isinstance(m, nn.Conv2d)}
    if len(ran) < len(convs):
        raise CheckFailed(f"only {len(ran)} of the {len(convs)} convolutions of {setting} run "
                          f"in forward: is every layer used, in order?")
    wanted = ["conv", "PReLU"] * (n_layers - 1) + ["conv"]
    preluses = [m for m in calls if isinstance(m, nn.PReLU)]
    if kinds[-1:] == ["PReLU"] or kinds == wanted + ["PReLU"]:
        raise CheckFailed(f"{setting} applies a PReLU after the last convolution; leave the "
                          f"last convolution linear, so that the output (and, with "
                          f"residual=True, the correction it adds) can take any value")
    if kinds != wanted:
        raise CheckFailed(f"{setting} runs its layers in the order {' - '.join(kinds)}; "
                          f"expected {' - '.join(wanted)}: one nn.PReLU() after every "
                          f"convolution except the last")
    if len({id(m) for m in preluses}) != n_layers - 1:
        raise CheckFailed(f"{setting} uses one nn.PReLU module {len(preluses)} times; make a "
                          f"new nn.PReLU() after each convolution, so that each layer learns "
                          f"its own slope")
    if "value" in last_output and not getattr(model, "residual", False):
        expect(torch.allclose(out, last_output["value"], atol=1e-6),
               f"the output of {setting} (residual=False) is not what its last convolution "
               f"returns: apply nothing after the last convolution")


@exercise_check("a small PReLU CNN")
def small_cnn(cnn_class):
    """Check ``cnn_class(channels, n_layers, residual)``: a CNN from (B, 1, H, W) to the same."""
    if not (isinstance(cnn_class, type) and issubclass(cnn_class, nn.Module)):
        raise CheckFailed(f"pass the class itself (e.g. `SmallCNN`, not `SmallCNN()`), a "
                          f"subclass of torch.nn.Module; got {type(cnn_class).__name__}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        for channels, n_layers in ((8, 4), (16, 5)):
            setting = f"SmallCNN(channels={channels}, n_layers={n_layers})"
            model = _build(cnn_class, setting, channels=channels, n_layers=n_layers)

            # --- the layers ---
            convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
            expect(len(convs) == n_layers,
                   f"{setting} has {len(convs)} nn.Conv2d layers, expected n_layers = "
                   f"{n_layers}: the first maps 1 -> channels, {n_layers - 2} map "
                   f"channels -> channels and the last maps channels -> 1")
            for k, conv in enumerate(convs):
                expect(tuple(conv.kernel_size) == (3, 3),
                       f"convolution {k} of {setting} has a {conv.kernel_size} kernel; "
                       f"use 3 x 3 kernels (kernel_size=3)")
            wanted = [(1, channels)] + [(channels, channels)] * (n_layers - 2) + [(channels, 1)]
            got = [(c.in_channels, c.out_channels) for c in convs]
            expect(got == wanted,
                   f"the convolutions of {setting} map channels {got}, expected {wanted}")
            if not any(isinstance(m, nn.PReLU) for m in model.modules()):
                others = sorted({type(m).__name__ for m in model.modules()
                                 if isinstance(m, (nn.ReLU, nn.LeakyReLU, nn.Tanh,
                                                   nn.Sigmoid, nn.ELU))})
                raise CheckFailed(
                    f"{setting} has no nn.PReLU activation"
                    + (f" (it uses {', '.join(others)})" if others else "")
                    + ": put an nn.PReLU() after every convolution except the last")
            n_parameters = sum(p.numel() for p in model.parameters())
            n_conv = _conv_parameters(channels, n_layers)
            low = n_conv - n_layers - channels * (n_layers - 1)      # biases left out
            high = n_conv + n_layers * channels                      # a PReLU slope per channel
            expect(low <= n_parameters <= high,
                   f"{setting} has {n_parameters} parameters; 3 x 3 convolutions "
                   f"1 -> {channels} -> ... -> 1 have {n_conv}, plus a few PReLU slopes")

            # --- shapes ---
            for shape in ((2, 1, 16, 16), (1, 1, 23, 17)):
                x = torch.rand(shape)
                x_before = x.clone()
                try:
                    out = model(x)
                except RuntimeError as error:
                    if "Expected 3D (unbatched) or 4D (batched)" not in str(error):
                        raise
                    raise CheckFailed(
                        f"{setting} failed on an input of shape {shape}: the input is "
                        f"already a batch (B, 1, H, W), as nn.Conv2d wants, so do not add "
                        f"dimensions (the workshop's CNN took one (H, W) image and "
                        f"unsqueezed it)") from None
                if not isinstance(out, torch.Tensor):
                    raise CheckFailed(f"{setting}(x) returned {type(out).__name__}, "
                                      f"expected a tensor — did forward forget `return`?")
                expect(torch.equal(x, x_before),
                       "forward changed its input in place; compute a new tensor instead")
                if tuple(out.shape) != shape:
                    hint = ""
                    if out.numel() == x.numel():
                        hint = (" — no squeeze/unsqueeze: the input is already a batch "
                                "(B, 1, H, W), as nn.Conv2d wants")
                    elif out.shape[-2:] != x.shape[-2:]:
                        hint = (" — the image shrank or grew: pad each 3 x 3 convolution "
                                "by one pixel (padding=1)")
                    raise CheckFailed(f"{setting} maps an input of shape {shape} to shape "
                                      f"{tuple(out.shape)}, expected {shape}{hint}")

            _check_order(model, convs, n_layers, setting)

            # --- gradients reach every parameter ---
            x = torch.rand(2, 1, 12, 12)
            out = model(x)
            expect(out.requires_grad,
                   f"the output of {setting} does not depend on its parameters for "
                   f"autograd: no torch.no_grad() or .detach() inside forward")
            model.zero_grad()
            ((out - x.flip(-1)) ** 2).mean().backward()
            for name, p in model.named_parameters():
                expect(p.grad is not None and bool(torch.isfinite(p.grad).all()),
                       f"no gradient reaches the parameter `{name}` of {setting}: is "
                       f"every layer used in forward, in order?")
            for k, conv in enumerate(convs):
                expect(bool(conv.weight.grad.abs().sum() > 0),
                       f"the gradient of convolution {k} of {setting} is zero: is every "
                       f"layer used in forward, in order?")

        # --- the residual connection ---
        plain = _build(cnn_class, "SmallCNN(8, 4, residual=False)", channels=8,
                       n_layers=4, residual=False)
        residual = _build(cnn_class, "SmallCNN(8, 4, residual=True)", channels=8,
                          n_layers=4, residual=True)
        try:
            residual.load_state_dict(plain.state_dict())
        except RuntimeError:
            raise CheckFailed("residual=True should use the same layers as "
                              "residual=False (only forward changes), but their "
                              "parameters differ") from None
        x = torch.rand(2, 1, 16, 16)
        with torch.no_grad():
            f_x, r_x = plain(x), residual(x)
        if torch.allclose(r_x, f_x, atol=1e-6):
            raise CheckFailed("with residual=True the output is the same as without: add "
                              "the input, return x + layers(x)")
        if torch.allclose(r_x, f_x - x, atol=1e-5):
            raise CheckFailed("with residual=True you return layers(x) - x; residual "
                              "learning adds the input: x + layers(x)")
        # x - layers(x) (DnCNN's "subtract the predicted noise") is residual learning too.
        expect(torch.allclose(r_x, x + f_x, atol=1e-5) or torch.allclose(r_x, x - f_x,
                                                                        atol=1e-5),
               "with residual=True the output should be x + layers(x): the input plus "
               "what the same layers compute with residual=False")
    return "2 sizes, shapes kept, PReLU, gradients reach every weight, residual flag"


# --- Exercise 2: receptive field and parameter count ---------------------------------------

def _as_int(value, what: str) -> int:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise CheckFailed(f"{what} should be a whole number, got {type(value).__name__}")
    if float(value) != int(value):
        raise CheckFailed(f"{what} should be a whole number, got {value}")
    return int(value)


@exercise_check("receptive field and parameter count")
def cnn_size(my_cnn_size):
    """Check ``my_cnn_size(channels, n_layers)`` = (receptive-field side, parameter count).

    The network is the SmallCNN of Exercise 1: ``n_layers`` 3 x 3 convolutions with
    biases, 1 -> channels -> ... -> channels -> 1, and one ``nn.PReLU()`` (one slope)
    after each but the last.  Tried for several sizes, and compared with a real count.
    """
    cases = ((16, 5), (8, 4), (32, 3), (4, 2), (64, 10))
    for channels, n_layers in cases:
        what = f"cnn_size({channels}, {n_layers})"
        value = my_cnn_size(channels, n_layers)
        if value is None:
            raise CheckFailed(f"{what} returned None — did you forget a `return`?")
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            raise CheckFailed(f"{what} should return a pair (receptive_field, n_parameters), "
                              f"got {type(value).__name__}")
        field = _as_int(value[0], f"the receptive field of {what}")
        count = _as_int(value[1], f"the parameter count of {what}")
        if count == 2 * n_layers + 1 and field != 2 * n_layers + 1:
            raise CheckFailed(f"{what}: the two numbers are swapped; return "
                              f"(receptive_field, n_parameters)")
        wanted_field = 2 * n_layers + 1
        for wrong, message in ((2 * n_layers - 1, "each 3 x 3 layer adds one pixel on EACH "
                                                  "side; start from the single output pixel"),
                               (n_layers + 1, "each layer widens the view by one pixel on "
                                              "each side, so by 2 pixels in all"),
                               (3 * n_layers, "the fields of successive layers overlap: "
                                              "the side grows by 2 per layer, not by 3"),
                               ((2 * n_layers + 1) ** 2, "give the side of the square "
                                                         "patch, not its number of pixels")):
            if field == wrong and wrong != wanted_field:
                raise CheckFailed(f"{what}: receptive field {field}; {message}")
        expect(field == wanted_field,
               f"{what}: receptive field {field}, expected the side of the patch that one "
               f"output pixel depends on")
        conv = _conv_parameters(channels, n_layers)
        wanted = conv + (n_layers - 1)
        mistakes = {conv: "the PReLU slopes are parameters too: one per nn.PReLU()",
                    conv - n_layers + (n_layers - 1): "each convolution has a bias per "
                                                      "output channel as well",
                    conv + n_layers: "there is no PReLU after the last convolution",
                    conv + channels * (n_layers - 1): "nn.PReLU() learns ONE slope, shared by "
                                                      "all channels (nn.PReLU(channels) "
                                                      "would learn one per channel)",
                    n_layers * (9 * channels * channels + channels) + (n_layers - 1):
                        "the first layer has 1 input channel and the last 1 output channel",
                    conv - (n_layers - 2) * 9 * channels * channels
                    + (n_layers - 2) * 3 * channels * channels + (n_layers - 1):
                        "a 3 x 3 kernel has 9 weights per pair of channels"}
        if count != wanted:
            for value_, message in mistakes.items():
                if count == value_ and value_ != wanted:
                    raise CheckFailed(f"{what}: {count} parameters; {message}")
            raise CheckFailed(f"{what}: {count} parameters, expected {wanted} (weights and "
                              f"biases of the convolutions, and the PReLU slopes)")
    return f"receptive field and parameter count right for {len(cases)} sizes"


# --- Exercise 3: one training step -----------------------------------------------------------

class _TinyNet(nn.Module):
    """conv - batch norm - PReLU - conv: small, and different in train and eval mode."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.norm = nn.BatchNorm2d(4)
        self.act = nn.PReLU()
        self.conv2 = nn.Conv2d(4, 1, 3, padding=1)

    def forward(self, x):
        return self.conv2(self.act(self.norm(self.conv1(x))))


def _reference_step(model, optimizer, x_in, x_target, loss_fn, zero_grad=True) -> float:
    model.train()
    loss = loss_fn(model(x_in), x_target)
    if zero_grad:
        optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def _tiny_problem():
    """A tiny model (in eval mode, as after validation) and a batch to fit."""
    model = _TinyNet()
    with torch.no_grad():   # running statistics far from the batch's: eval != train
        model.norm.running_mean.fill_(0.3)
        model.norm.running_var.fill_(4.0)
    model.eval()
    x_in = torch.rand(4, 1, 10, 10)
    x_target = F.avg_pool2d(x_in, 3, stride=1, padding=1)    # learn to smooth
    return model, x_in, x_target


@exercise_check("one training step")
def cnn_train_step(my_train_step):
    """Check ``my_train_step(model, optimizer, x_in, x_target, loss_fn)`` -> loss (float)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(4)
        for loss_fn, loss_name in ((F.mse_loss, "F.mse_loss"), (F.l1_loss, "F.l1_loss")):
            model, x_in, x_target = _tiny_problem()
            reference = copy.deepcopy(model)
            accumulating = copy.deepcopy(model)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            ref_optimizer = torch.optim.SGD(reference.parameters(), lr=0.1)
            acc_optimizer = torch.optim.SGD(accumulating.parameters(), lr=0.1)
            with torch.no_grad():
                eval_loss = loss_fn(model(x_in), x_target).item()
                other = F.l1_loss if loss_fn is F.mse_loss else F.mse_loss
                other_loss = other(copy.deepcopy(model).train()(x_in), x_target).item()
            before = [p.detach().clone() for p in model.parameters()]
            what = f"train_step(model, optimizer, x_in, x_target, {loss_name})"

            got = _as_float(my_train_step(model, optimizer, x_in, x_target, loss_fn),
                            what, "loss.item()")
            expected = _reference_step(reference, ref_optimizer, x_in, x_target, loss_fn)
            _reference_step(accumulating, acc_optimizer, x_in, x_target, loss_fn)

            expect(model.training,
                   "after your step the model is in evaluation mode: call model.train() "
                   "at the start of the step (after a validation pass the model may still "
                   "be in eval mode, and batch normalisation or dropout then behave "
                   "differently)")
            if all(torch.equal(b, p.detach()) for b, p in zip(before, model.parameters())):
                raise CheckFailed("the parameters did not change: call loss.backward() "
                                  "and then optimizer.step() (zero the gradients before "
                                  "backward, not between backward and step)")
            if not _close(got, expected):
                with torch.no_grad():
                    after = loss_fn(copy.deepcopy(model).train()(x_in), x_target).item()
                if _close(got, eval_loss):
                    raise CheckFailed("the loss you return was computed in evaluation "
                                      "mode: call model.train() before the forward pass")
                if _close(got, other_loss):
                    raise CheckFailed(f"you used another loss than the one passed in: "
                                      f"compute loss_fn(model(x_in), x_target) with the "
                                      f"`loss_fn` argument ({loss_name} here)")
                if _close(got, after):
                    raise CheckFailed("you return the loss after the update; return the "
                                      "loss you back-propagated (computed before "
                                      "optimizer.step())")
                raise CheckFailed(f"{what} returned {got:.6g}, but the loss of the model "
                                  f"on this batch (before the update) is {expected:.6g}")
            if not _parameters_close(model, reference):
                raise CheckFailed("after one step the weights differ from one optimiser "
                                  "step on loss_fn(model(x_in), x_target): back-propagate "
                                  "that loss, then call optimizer.step() once")

            # A second step: the gradients of the first must not be added again.
            my_train_step(model, optimizer, x_in, x_target, loss_fn)
            _reference_step(reference, ref_optimizer, x_in, x_target, loss_fn)
            _reference_step(accumulating, acc_optimizer, x_in, x_target, loss_fn,
                            zero_grad=False)
            if not _parameters_close(model, reference):
                if _parameters_close(model, accumulating):
                    raise CheckFailed("the gradients accumulate from one step to the next: "
                                      "PyTorch ADDS new gradients to .grad, so call "
                                      "optimizer.zero_grad() before loss.backward()")
                raise CheckFailed("the second step does not match a plain optimiser step: "
                                  "compute the loss, zero the gradients, back-propagate, "
                                  "step")

        # And it learns: a few steps with Adam reduce the loss on a fixed batch.
        model, x_in, x_target = _tiny_problem()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        losses = [_as_float(my_train_step(model, optimizer, x_in, x_target, F.mse_loss),
                            "train_step", "loss.item()") for _ in range(25)]
        expect(losses[-1] < 0.5 * losses[0],
               f"25 Adam steps on one fixed batch should reduce the loss a lot, but it "
               f"went from {losses[0]:.3g} to {losses[-1]:.3g}")
    return (f"loss and update match a reference step, gradients reset, "
            f"loss {losses[0]:.3g} → {losses[-1]:.3g} in 25 steps")


# --- Exercise 4: the test-set PSNR -----------------------------------------------------------

class _RecordingNet(nn.Module):
    """A fixed post-processing net that notes how it was called (mode, grad, input shape)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(1)
        self.calls = []
        with torch.no_grad():
            self.conv.weight.fill_(0.0)
            self.conv.weight[0, 0, 1, 1] = 0.8
            self.conv.weight[0, 0, 1, 0] = 0.1
            self.conv.weight[0, 0, 1, 2] = 0.1
            self.norm.weight.fill_(1.0)
            self.norm.bias.fill_(0.0)
            self.norm.running_mean.fill_(0.0)   # eval mode: (x - 0) / sqrt(1) = identity
            self.norm.running_var.fill_(1.0)

    def forward(self, x):
        self.calls.append(dict(training=self.training, grad=torch.is_grad_enabled(),
                               shape=tuple(x.shape)))
        return self.norm(self.conv(x))


def _made_up_split():
    n, size = 6, 16
    c = torch.linspace(-1, 1, size)
    x = torch.zeros(n, 1, size, size)
    for k in range(n):    # discs of different sizes and grey values
        radius = 0.3 + 0.1 * k
        x[k, 0] = (0.4 + 0.1 * k) * ((c[:, None] ** 2 + c[None, :] ** 2) < radius ** 2)
    levels = torch.tensor([0.01, 0.02, 0.04, 0.06, 0.1, 0.15]).view(n, 1, 1, 1)
    x_fbp = x + levels * torch.randn(x.shape)       # very different errors per image
    y = torch.randn(n, 1, 5, 23)                     # "sinograms": another shape
    return DataSplit("test", x, y, x_fbp=x_fbp)


@exercise_check("the test-set PSNR")
def test_set_psnr(my_test_psnr):
    """Check ``my_test_psnr(model, split)``: mean per-image PSNR of model(split.x_fbp)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        split = _made_up_split()
        model = _RecordingNet()
        model.train()                                # as it is right after training
        with torch.no_grad():
            outputs = copy.deepcopy(model).eval()(split.x_fbp)
            train_outputs = copy.deepcopy(model).train()(split.x_fbp)
        expected = float(psnr(outputs, split.x, data_range=1.0).mean())

        got = _as_float(my_test_psnr(model, split), "test_psnr(model, split)",
                        "e.g. float(values.mean()) or .item()")
        calls = model.calls
        expect(calls, "your function never called the model: apply model to split.x_fbp")
        if any(call["shape"][-2:] == tuple(split.y.shape[-2:]) for call in calls):
            raise CheckFailed("you gave the model the sinograms split.y; this network "
                              "post-processes the FBP images split.x_fbp")
        expect(not any(call["training"] for call in calls),
               "the model ran in training mode: call model.eval() first (batch "
               "normalisation would otherwise use the statistics of the test batch and "
               "update its running averages)")
        expect(not any(call["grad"] for call in calls),
               "the model ran with gradients enabled: wrap the evaluation in `with "
               "torch.no_grad():` (no graph is kept: faster, much less memory)")
        if _close(got, expected, rtol=1e-4, atol=1e-4):
            return f"{got:.2f} dB on a made-up split, eval mode, no gradients"

        mse = ((outputs - split.x) ** 2).mean(dim=(-2, -1)).flatten()
        per_range = psnr(outputs, split.x).mean()
        mistakes = [
            (10 * math.log10(1.0 / float(mse.mean())),
             "you averaged the MSE over the images and took the PSNR of that; we ask for "
             "the mean over the images of each image's PSNR (as cu.evaluate reports)"),
            (float(psnr(split.x_fbp, split.x, data_range=1.0).mean()),
             "that is the PSNR of the input split.x_fbp: score the model's output"),
            (float(psnr(train_outputs, split.x, data_range=1.0).mean()),
             "the outputs were computed in training mode: call model.eval() first"),
            (float(per_range),
             "without data_range, PSNR uses each image's max - min; pass data_range=1.0 "
             "(the images lie in [0, 1])"),
            (float(psnr(outputs, split.x, data_range=255.0).mean()),
             "data_range=255 is for 8-bit images; ours lie in [0, 1]: data_range=1.0"),
            (float(psnr(outputs, split.x, data_range=1.0).median()),
             "that is the median; return the mean over the images"),
            (float((10 * torch.log10(1.0 / mse)).mean()) / 10,
             "PSNR is 10 log10(R² / MSE) in dB: a factor of 10 is missing"),
        ]
        for value, message in mistakes:
            if _close(got, value, rtol=1e-4, atol=1e-4):
                raise CheckFailed(message)
    raise CheckFailed(f"test_psnr returned {got:.4g} dB, expected {expected:.4g} dB (the "
                      f"mean over the images of psnr(model(split.x_fbp), split.x, "
                      f"data_range=1.0))")


# --- The notebook's own helpers ------------------------------------------------------------
# Lesson 03 goes on with these whether or not the exercises are done (they are not checks:
# the notebook imports them from this module).

def reference_cnn(channels: int = 16, n_layers: int = 5) -> nn.Sequential:
    """The layers of lesson 03's small CNN: ``n_layers`` 3 x 3 convolutions, 1 -> channels
    -> ... -> 1, with an ``nn.PReLU()`` after each but the last; ``(B, 1, H, W)`` -> same."""
    layers = [nn.Conv2d(1, channels, 3, padding=1), nn.PReLU()]
    for _ in range(n_layers - 2):
        layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.PReLU()]
    return nn.Sequential(*layers, nn.Conv2d(channels, 1, 3, padding=1))


class Residual(nn.Module):
    """Residual learning around any image-to-image network ``g``: ``x -> x + g(x)``."""

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def reference_train_step(model, optimizer, x_in, x_target, loss_fn) -> float:
    """One optimisation step on a mini-batch; returns the batch loss before the step."""
    return _reference_step(model, optimizer, x_in, x_target, loss_fn)


def apply_network(net: nn.Module, images: torch.Tensor, device=None,
                  batch_size: int = 64) -> torch.Tensor:
    """``net`` applied to ``images`` (n, 1, N, N) for evaluation, in batches; on the CPU."""
    device = device if device is not None else next(net.parameters()).device
    net.eval()
    with torch.no_grad():
        return torch.cat([net(batch.to(device)).cpu() for batch in images.split(batch_size)])
