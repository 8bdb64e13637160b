"""The checks of lesson 04 accept the reference answers and diagnose typical mistakes."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import course_utils as cu
from course_utils.checks import lesson04
from lesson_references import reference

# The reference answers, from solutions/04_learned_fbp.py (see lesson_references.py).
ref = reference("04")


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise: replace this line with your code")


def outcome(check, answer):
    result = check(answer)
    return result.status, result.message


def filter_variant(init=None, forward=None, register=True):
    """A LearnedFilter with another initialisation, forward or registration."""

    class Variant(nn.Module):
        def __init__(self, n_detectors):
            super().__init__()
            self.n_detectors = n_detectors
            ramp = cu.filter_response(n_detectors, "ram-lak")
            self.n_fft = 2 * (len(ramp) - 1)
            weights = ramp.clone() if init is None else init(ramp, self.n_fft)
            self.weights = nn.Parameter(weights) if register else weights

        def forward(self, y):
            if forward is not None:
                return forward(self, y)
            return ref.LearnedFilter.forward(self, y)

    return Variant


# --- Exercise 1: the learnable filter ------------------------------------------------------


def test_learned_filter_accepts_the_reference_and_a_full_fft_version():
    assert lesson04.learned_filter(ref.LearnedFilter)

    def full_fft(self, y):      # the full FFT with the symmetric response: the same filter
        response = torch.cat([self.weights, self.weights[1:-1].flip(0)])
        spectrum = torch.fft.fft(y, n=self.n_fft, dim=-1)
        return torch.fft.ifft(spectrum * response, dim=-1).real[..., : self.n_detectors]

    assert lesson04.learned_filter(filter_variant(forward=full_fft))


class WindowFilter(nn.Module):
    """The notebook's own parameterisation: a window of the ramp, initialised at 1."""

    def __init__(self, n_detectors):
        super().__init__()
        ramp = cu.filter_response(n_detectors, "ram-lak")
        self.register_buffer("ramp", ramp)
        self.window = nn.Parameter(torch.ones_like(ramp))
        self.n_fft = 2 * (len(ramp) - 1)

    def forward(self, y):
        spectrum = torch.fft.rfft(y, n=self.n_fft, dim=-1)
        out = torch.fft.irfft(spectrum * self.ramp * self.window, n=self.n_fft, dim=-1)
        return out[..., : y.shape[-1]]


def test_learned_filter_accepts_the_window_parameterisation():
    assert lesson04.learned_filter(WindowFilter)


def test_learned_filter_ones_without_the_ramp_is_diagnosed():
    status, message = outcome(lesson04.learned_filter,
                              filter_variant(init=lambda ramp, n: torch.ones_like(ramp)))
    assert status == "failed" and "changes nothing" in message and "ramp * window" in message


def test_learned_filter_not_attempted_and_instance_passed():
    class Stub(nn.Module):
        def __init__(self, n_detectors):
            super().__init__()
            raise NotImplementedError("Exercise 1 (the learnable filter): replace this line")

    assert outcome(lesson04.learned_filter, Stub)[0] == "not attempted"
    status, message = outcome(lesson04.learned_filter, ref.LearnedFilter(40))
    assert status == "failed" and "the class itself" in message


def test_learned_filter_plain_tensor_is_diagnosed():
    status, message = outcome(lesson04.learned_filter, filter_variant(register=False))
    assert status == "failed" and "nn.Parameter" in message and "self.weights" in message


def test_learned_filter_wrong_initialisation_is_diagnosed():
    status, message = outcome(lesson04.learned_filter,
                              filter_variant(init=lambda ramp, n: 2 * math.pi * ramp))
    assert status == "failed" and "6.283 times" in message and "2πν" in message
    status, message = outcome(lesson04.learned_filter,
                              filter_variant(init=lambda ramp, n: torch.fft.rfftfreq(n)))
    assert status == "failed" and "sampled |ν|" in message
    status, message = outcome(lesson04.learned_filter,
                              filter_variant(init=lambda ramp, n: torch.randn(len(ramp))))
    assert status == "failed" and "not the Ram-Lak response" in message


def test_learned_filter_missing_zero_padding_is_diagnosed():
    class Unpadded(nn.Module):           # weights for the unpadded projection
        def __init__(self, n_detectors):
            super().__init__()
            self.weights = nn.Parameter(torch.fft.rfftfreq(n_detectors))

        def forward(self, y):
            return torch.fft.irfft(torch.fft.rfft(y) * self.weights, n=y.shape[-1])

    status, message = outcome(lesson04.learned_filter, Unpadded)
    assert status == "failed" and "without zero padding" in message

    def no_padding(self, y):             # the right weights, the FFT without n=n_fft
        return torch.fft.irfft(torch.fft.rfft(y) * self.weights, n=y.shape[-1])

    status, message = outcome(lesson04.learned_filter, filter_variant(forward=no_padding))
    assert status == "failed" and "zero-pad" in message and "n=n_fft" in message


def test_learned_filter_forward_mistakes_are_diagnosed():
    def uncropped(self, y):
        return torch.fft.irfft(torch.fft.rfft(y, n=self.n_fft) * self.weights, n=self.n_fft)

    status, message = outcome(lesson04.learned_filter, filter_variant(forward=uncropped))
    assert status == "failed" and "first n_detectors" in message

    def fixed_ramp(self, y):
        return cu.filter_sinogram(y, "ram-lak")

    status, message = outcome(lesson04.learned_filter, filter_variant(forward=fixed_ramp))
    assert status == "failed" and "does not use its trainable weights" in message

    def detached(self, y):
        spectrum = torch.fft.rfft(y, n=self.n_fft)
        out = torch.fft.irfft(spectrum * self.weights.detach(), n=self.n_fft)
        return out[..., : self.n_detectors]

    status, message = outcome(lesson04.learned_filter, filter_variant(forward=detached))
    assert status == "failed" and "autograd" in message

    def no_return(self, y):
        ref.LearnedFilter.forward(self, y)

    status, message = outcome(lesson04.learned_filter, filter_variant(forward=no_return))
    assert status == "failed" and "return" in message


# --- Exercise 2: a data-consistency step --------------------------------------------------


def test_data_consistency_accepts_the_reference_and_other_forms():
    assert lesson04.data_consistency(ref.data_consistency)

    def with_landweber(x, y, A, n_steps, step):     # the course's Landweber, started at x
        return x if n_steps == 0 else cu.landweber(A, y, n_steps, step=step, x0=x)

    def residual_form(x, y, A, n_steps, step):      # x + t A^T (y - A x), a while loop
        k = 0
        while k < n_steps:
            x = x + step * A.T(y - A(x))
            k += 1
        return x

    assert lesson04.data_consistency(with_landweber)
    assert lesson04.data_consistency(residual_form)


def _steps(sign=-1.0, adjoint=True, factor=1.0, extra=0, start_zero=False):
    def answer(x, y, A, n_steps, step):
        x = torch.zeros_like(x) if start_zero else x
        for _ in range(max(n_steps + extra, 0)):
            r = A(x) - y
            x = x + sign * factor * step * (A.T(r) if adjoint else A(r))
        return x
    return answer


def frozen_gradient(x, y, A, n_steps, step):
    g = A.T(A(x) - y)
    return x - n_steps * step * g


def in_place(x, y, A, n_steps, step):
    for _ in range(n_steps):
        x -= step * A.T(A(x) - y)
    return x


def returns_update(x, y, A, n_steps, step):
    update = torch.zeros_like(x)
    for _ in range(n_steps):
        update = -step * A.T(A(x) - y)
        x = x + update
    return update


@pytest.mark.parametrize("wrong, diagnosis", [
    (_steps(sign=+1.0), "a sign"),
    (_steps(adjoint=False), "adjoint"),
    (_steps(factor=2.0), "factor 2"),
    (_steps(extra=-1), "one step too few"),
    (_steps(extra=+1), "one step too many"),
    (_steps(start_zero=True), "started from zero"),
    (frozen_gradient, "starting point"),
    (in_place, "in place"),
    (returns_update, "last update"),
    (lambda x, y, A, n, t: float((A(x) - y).sum()), "tensor"),
    (lambda x, y, A, n, t: None, "return"),
])
def test_data_consistency_diagnoses_mistakes(wrong, diagnosis):
    status, message = outcome(lesson04.data_consistency, wrong)
    assert status == "failed" and diagnosis in message, message


def test_data_consistency_not_attempted():
    assert outcome(lesson04.data_consistency, stub)[0] == "not attempted"


# --- Exercise 3: the two noise terms -------------------------------------------------------


def test_noise_terms_accepts_the_reference_tensors_and_a_loop():
    assert lesson04.noise_terms(ref.noise_terms)
    assert lesson04.noise_terms(
        lambda r, A: tuple(torch.tensor(v) for v in ref.noise_terms(r, A)))

    def one_at_a_time(reconstruct, A):
        m = math.prod(A.range_shape)
        image_term = data_term = 0.0
        for i in range(m):
            e = torch.zeros(m, dtype=torch.float64)
            e[i] = 1.0
            e = e.reshape(A.range_shape)
            image = reconstruct(e)
            image_term += float((image ** 2).sum())
            data_term += float(((A(image) - e) ** 2).sum())
        return image_term, data_term

    assert lesson04.noise_terms(one_at_a_time)


def test_noise_terms_not_attempted_and_wrong_type():
    assert outcome(lesson04.noise_terms, stub)[0] == "not attempted"
    status, message = outcome(lesson04.noise_terms, lambda r, A: ref.noise_terms(r, A)[0])
    assert status == "failed" and "pair" in message


def test_noise_terms_mistakes_are_diagnosed():
    status, message = outcome(lesson04.noise_terms, lambda r, A: ref.noise_terms(r, A)[::-1])
    assert status == "failed" and "swapped" in message
    status, message = outcome(lesson04.noise_terms,
                              lambda r, A: tuple(math.sqrt(v) for v in ref.noise_terms(r, A)))
    assert status == "failed" and "square root" in message

    def without_identity(reconstruct, A):
        m = math.prod(A.range_shape)
        images = reconstruct(torch.eye(m).reshape(m, *A.range_shape))
        return float((images ** 2).sum()), float((A(images) ** 2).sum())

    status, message = outcome(lesson04.noise_terms, without_identity)
    assert status == "failed" and "identity is missing" in message

    def image_side(reconstruct, A):
        n = math.prod(A.domain_shape)
        m = math.prod(A.range_shape)
        images = reconstruct(torch.eye(m).reshape(m, *A.range_shape))
        unit_images = torch.eye(n).reshape(n, *A.domain_shape)
        return (float((images ** 2).sum()),
                float(((reconstruct(A(unit_images)) - unit_images) ** 2).sum()))

    status, message = outcome(lesson04.noise_terms, image_side)
    assert status == "failed" and "R A - I" in message

    def means(reconstruct, A):
        m = math.prod(A.range_shape)
        images = reconstruct(torch.eye(m).reshape(m, *A.range_shape))
        return float((images ** 2).mean()), float(((A(images) - torch.eye(m).reshape(
            m, *A.range_shape)) ** 2).mean())

    status, message = outcome(lesson04.noise_terms, means)
    assert status == "failed" and "mean" in message


def test_checks_are_exported_and_leave_the_random_state_alone():
    assert set(lesson04.__all__) == {"learned_filter", "data_consistency", "noise_terms"}
    state = torch.random.get_rng_state()
    lesson04.learned_filter(ref.LearnedFilter)
    lesson04.data_consistency(ref.data_consistency)
    lesson04.noise_terms(ref.noise_terms)
    assert torch.equal(state, torch.random.get_rng_state())
