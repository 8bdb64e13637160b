"""Checks for the exercises of lesson 04: learned filtered backprojection.

* ``learned_filter``: the learner's ``LearnedFilter(n_detectors)`` module (one trainable
  weight per rfft frequency of the zero-padded projections, initialised at the Ram-Lak
  response) is built for two detector counts and tried: its parameters, its output at
  initialisation against :func:`course_utils.filter_sinogram`, that its forward really
  uses the weights, and that gradients reach them.
* ``data_consistency``: ``data_consistency(x, y, A, n_steps, step)``, gradient steps on
  :math:`\\tfrac12\\|Ax - y\\|^2` started at a network's output, on a small square operator
  (so that the usual mix-ups, such as ``A`` for ``A.T`` or a wrong sign, still run and
  can be named) and on a small Radon transform.
* ``noise_terms``: ``noise_terms(reconstruct, A)``, the two squared Frobenius norms
  :math:`\\|R\\|_F^2` and :math:`\\|AR - I\\|_F^2` of a linear reconstruction, on small
  explicit matrices.

Every check runs in well under a second and leaves the global random state as it was.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn

from ..reconstruction.fbp import backproject_fbp, filter_response, filter_sinogram
from ..operators.geometry import ParallelBeam
from ..operators.linear_operator import MatrixOperator
from ..operators.radon import RadonTransform
from ._feedback import CheckFailed, compare_arrays, exercise_check, expect

__all__ = ["learned_filter", "data_consistency", "noise_terms"]


def _close(a: float, b: float, rtol: float = 1e-5, atol: float = 1e-9) -> bool:
    return math.isclose(a, b, rel_tol=rtol, abs_tol=atol)


def _allclose(got: torch.Tensor, expected: torch.Tensor, rtol: float = 1e-4) -> bool:
    """Equal up to float32 rounding, relative to the largest expected value."""
    if got.shape != expected.shape:
        return False
    scale = float(expected.abs().max()) if expected.numel() else 1.0
    return bool(torch.allclose(got.double(), expected.double(), rtol=rtol,
                               atol=rtol * max(scale, 1e-12)))


# --- Exercise 1: the learnable filter ------------------------------------------------------

def _missing_parameter_message(layer: nn.Module, what: str) -> str:
    """Why a module has no trainable parameters, naming the tensor that should be one."""
    plain = [name for name, value in vars(layer).items()
             if isinstance(value, torch.Tensor) and not isinstance(value, nn.Parameter)]
    buffers = [name for name, _ in layer.named_buffers()]
    frozen = [name for name, p in layer.named_parameters() if not p.requires_grad]
    if frozen:
        return (f"{what} has no trainable parameters: `{frozen[0]}` was made with "
                f"requires_grad=False; nn.Parameter(tensor) is trainable by default")
    if plain or buffers:
        name = (plain or buffers)[0]
        return (f"{what} has no trainable parameters: `self.{name}` is a plain tensor (or "
                f"a buffer), which model.parameters() — and so the optimiser — never "
                f"sees; register it with self.{name} = nn.Parameter(...)")
    return (f"{what} has no trainable parameters: store the filter weights in __init__ "
            f"as self.weights = nn.Parameter(...)")


def _initial_weights_diagnosis(weights: torch.Tensor, n_det: int, what: str) -> None:
    """Raise CheckFailed naming what the initial weights are, if they are not the ramp."""
    ramp = filter_response(n_det, "ram-lak")
    got = weights.detach().double().flatten()
    expected = ramp.double()
    if _allclose(got, expected):
        return
    n_fft = 2 * (len(ramp) - 1)
    nu = torch.fft.rfftfreq(n_fft, dtype=torch.float64)
    if _allclose(got, nu):
        raise CheckFailed(f"the initial weights of {what} are the sampled |ν| "
                          f"(torch.fft.rfftfreq): initialise them with "
                          f"cu.filter_response(n_detectors, 'ram-lak'), the exact "
                          f"band-limited ramp that cu.filter_sinogram uses (it gets the zero "
                          f"frequency right)")
    if _allclose(got, torch.ones_like(expected)):
        raise CheckFailed(f"the initial weights of {what} are all ones (a filter that "
                          f"changes nothing): start at the Ram-Lak response "
                          f"cu.filter_response(n_detectors, 'ram-lak')")
    if not got.abs().any():
        raise CheckFailed(f"the initial weights of {what} are all zeros: start at the "
                          f"Ram-Lak response cu.filter_response(n_detectors, 'ram-lak')")
    for name in ("shepp-logan", "cosine", "hann"):
        if _allclose(got, filter_response(n_det, name).double()):
            raise CheckFailed(f"the initial weights of {what} are the {name} filter; start "
                              f"at the plain ramp, cu.filter_response(n_detectors, 'ram-lak')")
    c = float(torch.dot(got, expected) / torch.dot(expected, expected))
    if abs(c) > 1e-12 and _allclose(got, c * expected):
        reasons = {2 * math.pi: " (ω = 2πν in radians? the response is in cycles per pixel)",
                   float(n_fft): " (multiplied by n_fft? irfft already divides by n_fft)",
                   1 / n_fft: " (divided by n_fft? irfft already does that)",
                   math.pi: " (the π of π/n_angles belongs to the backprojection)"}
        reason = next((text for value, text in reasons.items()
                       if math.isclose(c, value, rel_tol=1e-3)), "")
        raise CheckFailed(f"the initial weights of {what} are {c:.4g} times the Ram-Lak "
                          f"response{reason}: use cu.filter_response(n_detectors, "
                          f"'ram-lak') as it is")
    raise CheckFailed(f"the initial weights of {what} are not the Ram-Lak response: "
                      f"initialise them with cu.filter_response(n_detectors, 'ram-lak') "
                      f"(e.g. nn.Parameter(response.clone()))")


def _run_layer(layer: nn.Module, y: torch.Tensor, what: str) -> torch.Tensor:
    """``layer(y)`` with the broadcasting error of a missing zero padding explained."""
    try:
        out = layer(y)
    except RuntimeError as error:
        if "size of tensor" in str(error) or "must match the size" in str(error):
            raise CheckFailed(f"in {what} the spectrum of a projection and the weights "
                              f"have different lengths: zero-pad the projections to n_fft = "
                              f"2 * (len(weights) - 1), the length cu.filter_response was "
                              f"made for, with torch.fft.rfft(y, n=n_fft, dim=-1)") from None
        raise
    if out is None:
        raise CheckFailed(f"{what} returned None — did forward forget `return`?")
    if not isinstance(out, torch.Tensor):
        raise CheckFailed(f"{what} returned a {type(out).__name__}, expected a tensor")
    if out.is_complex():
        raise CheckFailed(f"{what} is complex: use torch.fft.irfft (real output) to go "
                          f"back from the rfft spectrum")
    return out


def _filter_output_diagnosis(out: torch.Tensor, y: torch.Tensor, weights: torch.Tensor,
                             what: str) -> None:
    """Raise CheckFailed naming how ``out`` differs from the zero-padded filter of ``y``."""
    n_det = y.shape[-1]
    n_fft = 2 * (len(weights) - 1)
    w = weights.detach().double()
    full = torch.fft.irfft(torch.fft.rfft(y.double(), n=n_fft, dim=-1) * w, n=n_fft, dim=-1)
    expected = full[..., :n_det]
    if out.shape[:-1] == y.shape[:-1] and out.shape[-1] in (n_fft, n_fft - 1):
        raise CheckFailed(f"{what} has shape {tuple(out.shape)}: after the inverse FFT keep "
                          f"only the first n_detectors = {n_det} samples of each projection "
                          f"(the rest belongs to the zero padding)")
    if out.shape != y.shape:
        compare_arrays(out, expected, what=what)
    if _allclose(out, expected):
        return
    for start in range(1, n_fft - n_det + 1):
        if _allclose(out, full[..., start:start + n_det]):
            raise CheckFailed(f"{what} keeps samples {start} to {start + n_det - 1} of the "
                              f"padded result; the projection sits at the start of the "
                              f"padded signal, so keep the first n_detectors samples")
    # The first n_det // 2 + 1 weights used on the unpadded projections.
    circular = torch.fft.irfft(torch.fft.rfft(y.double(), dim=-1) * w[:n_det // 2 + 1],
                               n=n_det, dim=-1)
    if _allclose(out, circular, rtol=1e-3):
        raise CheckFailed(f"{what} filters without zero padding: a product of FFTs is a "
                          f"circular convolution, so the filter wraps around the ends of "
                          f"each projection — use torch.fft.rfft(y, n=n_fft, dim=-1)")
    compare_arrays(out, expected, what=what, rtol=1e-4,
                   atol=1e-4 * float(expected.abs().max()))


@exercise_check("the learnable filter")
def learned_filter(filter_class):
    """Check ``filter_class(n_detectors)``: a per-frequency filter layer, initialised at the ramp.

    Tried for 40 and 23 detector pixels, on sinograms of shape ``(3, 1, 7, n_det)`` and
    ``(5, n_det)``.
    """
    if not (isinstance(filter_class, type) and issubclass(filter_class, nn.Module)):
        raise CheckFailed(f"pass the class itself (`LearnedFilter`, not `LearnedFilter(...)`), "
                          f"a subclass of torch.nn.Module; got {type(filter_class).__name__}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(11)
        for n_det in (40, 23):
            what = f"LearnedFilter({n_det})"
            layer = filter_class(n_det)
            ramp = filter_response(n_det, "ram-lak")
            n_freq, n_fft = len(ramp), 2 * (len(ramp) - 1)

            # --- the parameters ---
            params = [p for p in layer.parameters() if p.requires_grad]
            if not params:
                raise CheckFailed(_missing_parameter_message(layer, what))
            n_params = sum(p.numel() for p in params)
            if n_params != n_freq:
                hints = {n_fft: "one per frequency of the full FFT; the spectrum of a real "
                                "signal is symmetric, so use torch.fft.rfft and its "
                                "n_fft // 2 + 1 frequencies",
                         n_det // 2 + 1: "one per rfft frequency of the projection "
                                         "without zero padding",
                         n_det: "one per detector pixel"}
                hint = hints.get(n_params, "")
                raise CheckFailed(f"{what} has {n_params} trainable numbers, expected "
                                  f"{n_freq}: one weight per rfft frequency of the projections "
                                  f"zero-padded to n_fft = {n_fft} (the length of "
                                  f"cu.filter_response({n_det}))"
                                  + (f"; yours look like {hint}" if hint else ""))
            expect(len(params) == 1,
                   f"{what} has {len(params)} trainable tensors; keep the {n_freq} weights "
                   f"in one nn.Parameter")
            weights = params[0]
            # Two parameterisations are right: the response itself (initialised at the
            # ramp), or the window of the ramp (initialised at 1, response = ramp * window,
            # as the notebook's LearnedFBP stores it).
            start = weights.detach().double().flatten()
            window_mode = _allclose(start, torch.ones_like(start))
            if window_mode:
                y = torch.rand(2, 3, n_det)
                out = _run_layer(layer, y, f"{what}(y)")
                if out.shape == y.shape and _allclose(out, y):
                    raise CheckFailed(
                        f"the weights of {what} start at 1 and forward multiplies the "
                        f"spectrum by them alone: a filter that changes nothing. Either "
                        f"start the weights at the Ram-Lak response, or keep them as a "
                        f"window (ones) and multiply the spectrum by ramp * window")
            else:
                _initial_weights_diagnosis(weights, n_det, what)

            # --- the output at initialisation: cu.filter_sinogram(y, "ram-lak") ---
            for shape in ((3, 1, 7, n_det), (5, n_det)):
                y = torch.rand(shape)
                y_before = y.clone()
                out = _run_layer(layer, y, f"{what}(y) for y of shape {shape}")
                expect(torch.equal(y, y_before),
                       "forward changed its input in place; compute a new tensor instead")
                _filter_output_diagnosis(out, y, ramp, f"{what}(y) for y of shape {shape}")
                compare_arrays(out, filter_sinogram(y, "ram-lak"),
                               what=f"{what}(y) for y of shape {shape}", rtol=1e-4,
                               atol=1e-5 * float(filter_sinogram(y).abs().max()))

            # --- forward really uses the trainable weights ---
            y = torch.rand(2, 1, 6, n_det)
            hann = filter_response(n_det, "hann")
            saved = weights.detach().clone()
            with torch.no_grad():
                setting_to = hann / ramp if window_mode else hann
                weights.copy_(setting_to.reshape(weights.shape))
            out = _run_layer(layer, y, what)
            if not _allclose(out, filter_sinogram(y, "hann")):
                if _allclose(out, filter_sinogram(y, "ram-lak")):
                    raise CheckFailed(f"{what} does not use its trainable weights: after "
                                      f"setting them to the Hann response it still gives "
                                      f"the Ram-Lak filter — multiply the spectrum by the "
                                      f"nn.Parameter itself, not by a fixed copy")
                raise CheckFailed(f"after setting the weights of {what} to the Hann response "
                                  f"its output is not cu.filter_sinogram(y, 'hann'): "
                                  f"multiply the rfft spectrum by the weights, frequency by "
                                  f"frequency")

            # --- gradients reach the weights ---
            layer.zero_grad()
            out = _run_layer(layer, y, what)
            expect(out.requires_grad,
                   f"the output of {what} does not depend on its weights for autograd: no "
                   f"torch.no_grad(), .detach(), .data or NumPy inside forward")
            (out ** 2).sum().backward()
            expect(weights.grad is not None and bool(torch.isfinite(weights.grad).all())
                   and bool(weights.grad.abs().sum() > 0),
                   f"no gradient reaches the weights of {what}")
            with torch.no_grad():
                weights.copy_(saved)
    return ("one weight per rfft frequency, equals cu.filter_sinogram(y, 'ram-lak') at "
            "initialisation, uses its weights, gradients flow; 2 detector counts")


# --- Exercise 2: a data-consistency step after the network ------------------------------

def _square_operator() -> MatrixOperator:
    """A non-symmetric 12 x 12 operator from (3, 4) 'images' to (3, 4) 'sinograms'."""
    generator = torch.Generator().manual_seed(21)
    matrix = torch.rand(12, 12, generator=generator, dtype=torch.float64) \
        + torch.eye(12, dtype=torch.float64)
    return MatrixOperator(matrix, (3, 4), (3, 4))


def _gradient_steps(x, y, A, n_steps, step, sign=-1.0, adjoint=True, factor=1.0):
    """x_{k+1} = x_k + sign * factor * step * A^T (A x_k - y) (A instead of A^T if not adjoint)."""
    for _ in range(n_steps):
        residual = A(x) - y
        x = x + sign * factor * step * (A.T(residual) if adjoint else A(residual))
    return x


@exercise_check("a data-consistency step")
def data_consistency(my_data_consistency):
    """Check ``my_data_consistency(x, y, A, n_steps, step)``: gradient steps on ½‖Ax - y‖².

    Tried on a made-up non-symmetric square operator (so that A and A.T, or a wrong sign,
    still run and can be named), then on a small Radon transform in float32.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(22)
        A = _square_operator()
        step = 1.0 / float(torch.linalg.matrix_norm(A.matrix, ord=2)) ** 2
        x0 = torch.rand(2, 1, 3, 4, dtype=torch.float64)
        y = torch.rand(2, 1, 3, 4, dtype=torch.float64)
        n_steps = 5
        what = f"data_consistency(x, y, A, n_steps={n_steps}, step)"
        x_before, y_before = x0.clone(), y.clone()
        got = my_data_consistency(x0, y, A, n_steps, step)
        if got is None:
            raise CheckFailed(f"{what} returned None — did you forget a `return`?")
        if not isinstance(got, torch.Tensor):
            raise CheckFailed(f"{what} should return the corrected images (a tensor), got "
                              f"{type(got).__name__}")
        expect(torch.equal(x0, x_before) and torch.equal(y, y_before),
               "your function changed x or y in place (x -= ... or x.sub_): the caller's "
               "network output would be overwritten; compute x = x - ... instead")
        expected = _gradient_steps(x0, y, A, n_steps, step)
        if tuple(got.shape) != tuple(expected.shape):
            raise CheckFailed(f"{what} returned shape {tuple(got.shape)}, expected the shape "
                              f"of x, {tuple(x0.shape)}")
        got = got.detach().double()
        if not _allclose(got, expected, rtol=1e-6):
            candidates = [
                (_gradient_steps(x0, y, A, n_steps, step, sign=+1.0),
                 "a sign: the gradient of ½‖Ax - y‖² is Aᵀ(Ax - y), and a descent step "
                 "subtracts it: x - step · Aᵀ(Ax - y)"),
                (_gradient_steps(x0, y, A, n_steps, step, adjoint=False),
                 "you applied A to the residual; the gradient brings the sinogram residual "
                 "back to the image with the adjoint: A.T(A(x) - y)"),
                (_gradient_steps(x0, y, A, n_steps, step, factor=2.0),
                 "a factor 2: take the gradient of ½‖Ax - y‖², Aᵀ(Ax - y), as stated (the "
                 "step size already sets the scale)"),
                (_gradient_steps(x0, y, A, 1, step),
                 f"that is one step; take n_steps = {n_steps} steps, each from the result "
                 f"of the previous one"),
                (_gradient_steps(x0, y, A, n_steps - 1, step),
                 "one step too few: take exactly n_steps steps"),
                (_gradient_steps(x0, y, A, n_steps + 1, step),
                 "one step too many: take exactly n_steps steps"),
                (x0 - n_steps * step * A.T(A(x0) - y),
                 "every step used the gradient at the starting point; recompute the residual "
                 "A(x) - y from the current x at each step"),
                (_gradient_steps(torch.zeros_like(x0), y, A, n_steps, step),
                 "you started from zero; start from the network's output x (that is what "
                 "makes it a correction of x)"),
                (-step * A.T(A(_gradient_steps(x0, y, A, n_steps - 1, step)) - y),
                 "you returned the last update; return the corrected image x"),
            ]
            for value, message in candidates:
                if _allclose(got, value, rtol=1e-6):
                    raise CheckFailed(message)
            compare_arrays(got, expected, what=what, rtol=1e-6, atol=1e-9)

        # n_steps = 0 changes nothing.
        got0 = my_data_consistency(x0, y, A, 0, step)
        expect(isinstance(got0, torch.Tensor) and torch.allclose(got0.double(), x0),
               "with n_steps = 0 the function should return x unchanged")

        # A real Radon transform, float32, a batch of two.
        geometry = ParallelBeam(n_angles=5, n_detectors=13)
        A = RadonTransform(image_size=8, geometry=geometry)
        x = torch.rand(2, 1, 8, 8)
        y = A(torch.rand(2, 1, 8, 8))
        step = 1.0 / A.norm() ** 2
        got = my_data_consistency(x, y, A, 10, step)
        expected = _gradient_steps(x, y, A, 10, step)
        compare_arrays(got, expected, what="data_consistency with a RadonTransform (8 x 8)",
                       rtol=1e-4, atol=1e-5 * float(expected.abs().max()))
        before = float(((A(x) - y) ** 2).sum())
        after = float(((A(got) - y) ** 2).sum())
        expect(after < before, "10 steps should lower the data misfit ‖Ax - y‖²")
    return (f"{n_steps} gradient steps on ½‖Ax - y‖² on a made-up operator and on a "
            f"RadonTransform (misfit {before:.3g} → {after:.3g})")


# --- Exercise 3: the two noise terms -------------------------------------------------------

def _noise_problem():
    """Small explicit A (images (2, 3) -> sinograms (3, 4)) and R (sinograms -> images)."""
    generator = torch.Generator().manual_seed(31)
    matrix_a = torch.rand(12, 6, generator=generator, dtype=torch.float64)
    matrix_r = torch.randn(6, 12, generator=generator, dtype=torch.float64) / 4
    A = MatrixOperator(matrix_a, (2, 3), (3, 4))
    R = MatrixOperator(matrix_r, (3, 4), (2, 3))
    return A, R, matrix_a, matrix_r


def _two_numbers(value, what: str) -> tuple:
    if value is None:
        raise CheckFailed(f"{what} returned None — did you forget a `return`?")
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise CheckFailed(f"{what} should return a pair (image_term, data_term), got "
                          f"{type(value).__name__}"
                          + (f" of length {len(value)}" if isinstance(value, (tuple, list))
                             else ""))
    numbers_ = []
    for name, item in zip(("image_term", "data_term"), value):
        if isinstance(item, torch.Tensor):
            if item.numel() != 1:
                raise CheckFailed(f"{what}: {name} is a tensor of shape {tuple(item.shape)}; "
                                  f"it should be one number (sum over all entries)")
            item = float(item.detach())
        if isinstance(item, bool) or not isinstance(item, numbers.Real):
            raise CheckFailed(f"{what}: {name} should be a number, got {type(item).__name__}")
        numbers_.append(float(item))
    return tuple(numbers_)


@exercise_check("the two noise terms")
def noise_terms(my_noise_terms):
    """Check ``my_noise_terms(reconstruct, A)`` = ``(‖R‖_F², ‖A R - I‖_F²)``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(32)
        A, R, matrix_a, matrix_r = _noise_problem()
        calls = []

        def reconstruct(y):
            calls.append(tuple(y.shape))
            return R(y)

        what = "noise_terms(reconstruct, A)"
        image_term, data_term = _two_numbers(my_noise_terms(reconstruct, A), what)
        m, n = matrix_a.shape
        eye_m, eye_n = torch.eye(m, dtype=torch.float64), torch.eye(n, dtype=torch.float64)
        expected_image = float((matrix_r ** 2).sum())
        expected_data = float(((matrix_a @ matrix_r - eye_m) ** 2).sum())
        expect(calls, "your function never called reconstruct: feed it the unit sinograms")
        if _close(image_term, expected_image) and _close(data_term, expected_data):
            return "both terms on a made-up linear reconstruction"
        if _close(image_term, expected_data) and _close(data_term, expected_image):
            raise CheckFailed("the two terms are swapped: return (‖R‖², ‖A R - I‖²), the "
                              "image term first")
        if not _close(image_term, expected_image):
            for value, message in (
                    (math.sqrt(expected_image), "image_term is ‖R‖_F, not its square: sum "
                                                "the squares, no square root"),
                    (expected_image / m, "image_term is divided by the number of readings: "
                                         "sum over all unit sinograms, do not average"),
                    (expected_image / (m * n), "image_term is a mean: sum the squares of "
                                               "all entries of all reconstructions"),
                    (expected_image / n, "image_term is divided by the number of pixels: "
                                         "sum, do not average")):
                if _close(image_term, value):
                    raise CheckFailed(message)
            raise CheckFailed(f"image_term = {image_term:.6g}, expected ‖R‖_F² = "
                              f"{expected_image:.6g}: reconstruct every unit sinogram (one "
                              f"reading set to 1) and add up the squares of all the images")
        for value, message in (
                (math.sqrt(expected_data), "data_term is ‖A R - I‖_F, not its square"),
                (float(((matrix_a @ matrix_r) ** 2).sum()),
                 "data_term is ‖A R‖², the identity is missing: subtract the unit sinograms "
                 "from their reprojections, A(reconstruct(e_i)) - e_i"),
                (float(((matrix_r @ matrix_a - eye_n) ** 2).sum()),
                 "that is ‖R A - I‖² (image -> image); the self-supervised loss compares "
                 "sinograms: A(reconstruct(e_i)) - e_i"),
                (float(((matrix_a @ matrix_r + eye_m) ** 2).sum()),
                 "a sign: subtract the unit sinograms, A(reconstruct(e_i)) - e_i"),
                (expected_data / m, "data_term is divided by the number of readings: sum "
                                    "over all unit sinograms, do not average"),
                (expected_data / (m * m), "data_term is a mean: sum the squares of all "
                                          "entries")):
            if _close(data_term, value):
                raise CheckFailed(message)
        raise CheckFailed(f"data_term = {data_term:.6g}, expected ‖A R - I‖_F² = "
                          f"{expected_data:.6g}: reproject each reconstruction with A, "
                          f"subtract its unit sinogram, add up the squares")


# --- The notebook's own learned FBP -------------------------------------------------------
# Lesson 04 goes on with this model whether or not Exercise 1 is done (it is not one of the
# checks: the notebook imports it as ``from course_utils.checks.lesson04 import LearnedFBP``).

class LearnedFBP(nn.Module):
    """FBP with a learned filter: sinograms ``(..., n_angles, n_det)`` -> images ``(..., N, N)``.

    Layer 1: one trainable number per rfft frequency, stored as the *window* of the ramp
    (the filter ``init`` divided by the ramp, so 1 for Ram-Lak); the response is
    ``ramp * window``.  Layer 2: the fixed backprojection of ``cu.fbp``
    (:func:`course_utils.backproject_fbp`).  At initialisation it equals
    ``cu.fbp(A, y, init)``.

    Parameters
    ----------
    A : RadonTransform
        The operator whose geometry (detector count and pixel width) sets the filter.
    init : str
        The classical filter to start from (``"ram-lak"`` by default).
    """

    def __init__(self, A, init: str = "ram-lak"):
        super().__init__()
        self.A = A
        n_det, tau = A.geometry.n_detectors, A.geometry.detector_spacing
        ramp = filter_response(n_det, "ram-lak", tau)
        self.register_buffer("ramp", ramp)          # fixed, moves with the model
        self.window = nn.Parameter(filter_response(n_det, init, tau) / ramp)
        self.n_fft = 2 * (len(ramp) - 1)

    @property
    def response(self) -> torch.Tensor:
        """The filter's frequency response w(ν) = ramp(ν) · window(ν), shape (n_fft // 2 + 1,)."""
        return self.ramp * self.window

    def filter(self, y: torch.Tensor) -> torch.Tensor:
        """Layer 1: filter each projection of ``y`` with ``self.response`` (zero-padded)."""
        spectrum = torch.fft.rfft(y, n=self.n_fft, dim=-1)
        filtered = torch.fft.irfft(spectrum * self.response, n=self.n_fft, dim=-1)
        return filtered[..., : y.shape[-1]]

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return backproject_fbp(self.A, self.filter(y))
