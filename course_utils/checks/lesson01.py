"""Checks for the exercises of lesson 01: backprojection, the ramp filter and FBP.

Conventions the exercises state (those of :mod:`course_utils.geometry`, i.e. ASTRA's):

* image pixel ``(row, col)`` of an ``N x N`` image has its centre at
  ``x = col + 1/2 - N/2`` (to the right) and ``y = N/2 - 1/2 - row`` (upwards);
* detector pixel ``k`` has its centre at ``u_k = k + 1/2 - n_det/2`` (spacing 1);
* at angle ``theta`` (radians) the ray through a point hits the detector at
  ``u = x cos(theta) + y sin(theta)``;
* a sinogram is ``(n_angles, n_detectors)``.

The expected values are computed here with ``course_utils`` itself; each check tries the
learner's function on small made-up cases and names the most likely mistake.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..reconstruction.fbp import _backproject
from ..reconstruction.fbp import fbp as _course_fbp
from ..reconstruction.fbp import filter_sinogram as _course_filter_sinogram
from ..operators.geometry import ParallelBeam
from ..simulation.phantoms import shepp_logan
from ..operators.radon import RadonTransform
from ._feedback import CheckFailed, _to_numpy, compare_arrays, exercise_check, expect

__all__ = ["backproject", "ramp_filter_projections", "fbp"]


def _close(got: np.ndarray, expected: np.ndarray, rtol: float = 1e-5) -> bool:
    """Equal up to rounding, relative to the largest expected value."""
    if got.shape != expected.shape:
        return False
    scale = max(float(np.abs(expected).max(initial=0)), 1e-12)
    return bool(np.allclose(got, expected, rtol=rtol, atol=rtol * scale))


def _relative_error(got: np.ndarray, expected: np.ndarray) -> float:
    return float(np.linalg.norm(got - expected) / max(np.linalg.norm(expected), 1e-300))


def _best_factor(got: np.ndarray, expected: np.ndarray) -> float:
    """The c that makes ``c * expected`` closest to ``got`` (least squares)."""
    return float(np.vdot(expected, got) / max(np.vdot(expected, expected), 1e-300))


def _real_array(value, what: str) -> np.ndarray:
    """The learner's result as a real float64 array (complex only if really complex)."""
    array = _to_numpy(value, what)
    if np.iscomplexobj(array):
        scale = max(float(np.abs(array).max(initial=0)), 1e-12)
        expect(np.abs(array.imag).max(initial=0) <= 1e-6 * scale,
               f"{what} is complex with a sizeable imaginary part; the filtered projections "
               f"are real: take .real after the inverse FFT")
        array = array.real
    return array


# --- Exercise: backprojection ------------------------------------------------------------

def _expected_backprojection(sinogram: torch.Tensor, angles: torch.Tensor,
                             image_size: int) -> np.ndarray:
    geometry = ParallelBeam(angles=angles, n_detectors=sinogram.shape[-1])
    return _backproject(sinogram, geometry, image_size).numpy()


def _interp_backprojection(sinogram: torch.Tensor, angles: torch.Tensor, image_size: int,
                           outside: float | None) -> np.ndarray:
    """Backprojection with ``np.interp``, reading ``outside`` beyond the outermost centres.

    ``outside=0.0`` is also accepted (zero beyond the outermost detector centres instead of
    a linear fall to zero over the next half pixel: at an edge both are fair readings of
    "zero outside the detector"); ``outside=None`` (the edge pixel's value, np.interp's
    default) is the usual mistake.
    """
    n_det = sinogram.shape[-1]
    c = np.arange(image_size) + 0.5 - image_size / 2
    x, y = c[None, :], -c[:, None]
    u_k = np.arange(n_det) + 0.5 - n_det / 2
    return sum(np.interp(x * math.cos(t) + y * math.sin(t), u_k, p, left=outside,
                         right=outside)
               for p, t in zip(sinogram.numpy(), angles.numpy().tolist()))


def _line(image: np.ndarray):
    """``("vertical", column)`` or ``("horizontal", row)`` if an image is one thin line.

    The position is the centre of mass of ``|image|`` across the line; None otherwise.
    """
    mass = np.abs(image)
    total = mass.sum()
    if total == 0:
        return None
    spread = {}
    for orientation, axis in (("vertical", 0), ("horizontal", 1)):
        profile = mass.sum(axis) / total           # mass per column (vertical) or row
        index = np.arange(len(profile))
        centre = float(index @ profile)
        spread[orientation] = (centre, math.sqrt(max(float((index - centre) ** 2 @ profile), 0)))
    (v_centre, v_spread), (h_centre, h_spread) = spread["vertical"], spread["horizontal"]
    if v_spread < 1.0 <= h_spread:
        return "vertical", v_centre
    if h_spread < 1.0 <= v_spread:
        return "horizontal", h_centre
    return None


def _describe_line(image: np.ndarray) -> str:
    if not np.abs(image).any():
        return "an image of zeros"
    line = _line(image)
    if line is None:
        return "neither one row nor one column"
    orientation, position = line
    return f"a {orientation} line at {'column' if orientation == 'vertical' else 'row'} " \
           f"{position:.1f}"


def _check_single_ray(student_backproject, theta: float, label: str) -> None:
    """Backproject one detector pixel at one angle: it must smear into one straight line."""
    n, n_det, k = 24, 36, 23          # detector pixel 23 sits at u = +5.5
    u = k + 0.5 - n_det / 2
    sinogram = torch.zeros(1, n_det, dtype=torch.float64)
    sinogram[0, k] = 1.0
    angles = torch.tensor([theta], dtype=torch.float64)
    expected = _expected_backprojection(sinogram, angles, n)
    what = f"backproject(sinogram, angles, {n})"
    got = _to_numpy(student_backproject(sinogram.clone(), angles.clone(), n), what)
    if got.shape != expected.shape:
        compare_arrays(got, expected, what=what)
    if _close(got, expected):
        return
    if label == "0°":   # u = x: the column whose centre x = col + 1/2 - N/2 equals u
        orientation, position, where = "vertical", u + n / 2 - 0.5, "column"
        mirrored = np.fliplr(expected)
        mirror_hint = " — x runs the wrong way: x = col + 1/2 - N/2 grows to the right"
    else:               # u = y: the row whose centre y = N/2 - 1/2 - row equals u
        orientation, position, where = "horizontal", n / 2 - 0.5 - u, "row"
        mirrored = np.flipud(expected)
        mirror_hint = (" — y runs the wrong way: row 0 is the top, so y = N/2 - 1/2 - row "
                       "grows upwards (or the angle's sign is wrong)")
    message = (f"one detector pixel (u = {u:+.1f}) at θ = {label} should smear into a "
               f"{orientation} line at {where} {position:.0f} of a {n}x{n} image; yours gives "
               f"{_describe_line(got)}")
    if _close(got, mirrored):
        raise CheckFailed(message + mirror_hint)
    if any(_close(got, swapped) for swapped in (expected.T, np.flipud(expected.T),
                                                np.fliplr(expected.T))):
        raise CheckFailed(message + " — x and y (rows and columns, or cos and sin) are swapped")
    c = _best_factor(got, expected)
    if abs(c) > 1e-12 and _close(got, c * expected, rtol=1e-4):
        raise CheckFailed(message + f", with values {c:.4g} instead of 1: interpolate between "
                                    f"detector pixels with weights that sum to 1, and add no "
                                    f"extra factor")
    line = _line(got)
    if line is not None and line[0] == orientation and abs(abs(line[1] - position) - 0.5) < 0.05:
        raise CheckFailed(message + " — half a pixel off: pixel centres are at "
                                    "x = col + 1/2 - N/2, y = N/2 - 1/2 - row; detector "
                                    "centres at u_k = k + 1/2 - n_det/2")
    raise CheckFailed(message)


@exercise_check("backprojection")
def backproject(student_backproject):
    """Check ``backproject(sinogram, angles, image_size) -> (image_size, image_size)``.

    First one detector pixel at 0° and at 90° (the orientation: a line where it must be),
    then random sinograms with even and odd sizes and irregular angles, against the
    pixel-driven backprojection of :func:`course_utils.fbp`; two of them with a detector
    narrower than the image's diagonal (or even than the image), where the corner pixels'
    rays miss the detector and must read zero.
    """
    _check_single_ray(student_backproject, 0.0, "0°")
    _check_single_ray(student_backproject, math.pi / 2, "90°")

    generator = torch.Generator().manual_seed(101)
    cases = [(24, 36, torch.arange(16, dtype=torch.float64) * math.pi / 16),
             (25, 37, torch.sort(torch.rand(7, generator=generator, dtype=torch.float64)
                                 * math.pi).values),
             (24, 28, torch.arange(12, dtype=torch.float64) * math.pi / 12),   # < diagonal
             (25, 19, torch.sort(torch.rand(5, generator=generator, dtype=torch.float64)
                                 * math.pi).values)]                           # < image
    for n, n_det, angles in cases:
        sinogram = torch.rand(len(angles), n_det, generator=generator, dtype=torch.float64)
        expected = _expected_backprojection(sinogram, angles, n)
        what = f"backproject(sinogram, angles, {n}) with {len(angles)} angles"
        got = _to_numpy(student_backproject(sinogram.clone(), angles.clone(), n), what)
        if _close(got, expected):
            continue
        if got.shape != expected.shape:
            compare_arrays(got, expected, what=what)
        if n_det < math.sqrt(2) * n and _close(
                got, _interp_backprojection(sinogram, angles, n, 0.0)):
            continue
        if n_det < math.sqrt(2) * n and _close(
                got, _interp_backprojection(sinogram, angles, n, None)):
            raise CheckFailed(f"{what}, with a detector of {n_det} pixels (narrower than "
                              f"the image's diagonal): outside the detector you read the "
                              f"edge pixel's value; a ray that misses the detector measured "
                              f"nothing, so read 0 there (np.interp: left=0, right=0; or "
                              f"pad the projection with zeros)")
        c = _best_factor(got, expected)
        n_angles = len(angles)
        if _close(got, c * expected, rtol=1e-4):
            if math.isclose(c, 1 / n_angles, rel_tol=1e-3):
                raise CheckFailed(f"{what} is 1/n_angles times the expected image: a "
                                  f"backprojection is the plain sum over the angles, not "
                                  f"their mean")
            if math.isclose(c, math.pi / n_angles, rel_tol=1e-3):
                raise CheckFailed(f"{what} is π/n_angles times the expected image: keep "
                                  f"backproject a plain sum; the weight π/n_angles "
                                  f"belongs in fbp")
        error = _relative_error(got, expected)
        if error < 0.2:
            raise CheckFailed(f"{what} is close but not equal (relative error "
                              f"{error:.1%}): interpolate linearly between the two "
                              f"detector pixels on either side of u (nearest-neighbour "
                              f"look-up gives errors like this)")
        compare_arrays(got, expected, what=what, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    return ("single rays at 0° and 90°, random sinograms on 24x24 and 25x25 images, "
            "also with detectors narrower than the image's diagonal")


# --- Exercise: the ramp filter -------------------------------------------------------------

def _ramp_filtered(sinogram: np.ndarray, n_fft: int, axis: int = -1,
                   crop: bool = True) -> np.ndarray:
    """Lines along ``axis`` filtered by |ν| sampled at ``n_fft`` frequencies.

    ν is in cycles per sample; with ``crop`` the result keeps the input's length.
    """
    response = np.abs(np.fft.fftfreq(n_fft))
    shape = [1] * sinogram.ndim
    shape[axis] = n_fft
    spectrum = np.fft.fft(sinogram, n=n_fft, axis=axis) * response.reshape(shape)
    filtered = np.fft.ifft(spectrum, axis=axis).real
    if not crop:
        return filtered
    return np.take(filtered, np.arange(sinogram.shape[axis]), axis=axis)


def _ramp_diagnosis(got: np.ndarray, sinogram: np.ndarray, what: str) -> str | None:
    """Name the mistake when ``got`` is a wrongly filtered ``sinogram``."""
    n_angles, n_det = sinogram.shape
    for n_fft in range(n_det, 2 * n_det - 1):
        if _close(got, _ramp_filtered(sinogram, n_fft)):
            if n_fft == n_det:
                return (f"{what} has no zero padding: a product of FFTs is a circular "
                        f"convolution, so the ramp's long tails wrap around the ends of each "
                        f"projection — zero-pad to n_fft = 2 * n_detectors first")
            return (f"{what} is zero-padded to only {n_fft} samples: pad to at least "
                    f"2 * n_detectors - 1 (use 2 * n_detectors) so that nothing wraps around")
    if _close(got, _ramp_filtered(sinogram, 2 * n_angles, axis=0)):
        return (f"{what} filters along the angles (axis 0); filter each projection, i.e. "
                f"each row, along the last axis (dim=-1)")
    reference = _ramp_filtered(sinogram, 2 * n_det)
    circular = _ramp_filtered(sinogram, n_det)
    factors = {2 * math.pi: "you used ω = 2πν (radians per pixel); this exercise uses ν "
                            "from torch.fft.fftfreq(n_fft), in cycles per pixel",
               1 / (2 * math.pi): "an extra 1/(2π): use |ν| from torch.fft.fftfreq(n_fft) "
                                  "as it is",
               2 * n_det: "you used integer frequencies 0, 1, 2, ...: torch.fft.fftfreq("
                          "n_fft) gives ν in cycles per pixel, between -1/2 and 1/2",
               1 / (2 * n_det): "an extra 1/n_fft: torch.fft.ifft already divides by n_fft",
               2.0: "twice the expected values: the ramp is |ν|, not 2|ν|",
               0.5: "half the expected values: use |ν| for the negative frequencies too "
                    "(abs of torch.fft.fftfreq), or both halves of the spectrum"}
    for candidate, label in ((reference, ""), (circular, " (and no zero padding)")):
        c = _best_factor(got, candidate)
        if abs(c) > 1e-12 and _close(got, c * candidate, rtol=1e-4):
            for factor, explanation in factors.items():
                if math.isclose(c, factor, rel_tol=1e-3):
                    return f"{what} is {c:.4g} times the expected values{label}: {explanation}"
            return f"{what} is off by a constant factor {c:.4g}{label}"
    padded = _ramp_filtered(sinogram, 2 * n_det, crop=False)
    for start in range(1, n_det + 1):
        if _close(got, padded[:, start:start + n_det]):
            return (f"{what} keeps samples {start} to {start + n_det - 1} of the padded "
                    f"result; the projection sits at the start of the padded signal, so "
                    f"keep the first n_detectors samples")
    return None


@exercise_check("the ramp filter")
def ramp_filter_projections(student_filter):
    """Check ``ramp_filter_projections(sinogram) -> filtered sinogram`` (same shape).

    Accepted: |ν| sampled at any ``n_fft >= 2 n_det - 1`` (zero padding) and the exact
    band-limited ramp of :func:`course_utils.filter_sinogram`.
    """
    generator = torch.Generator().manual_seed(7)
    notes = set()
    for n_angles, n_det in ((12, 40), (7, 33)):
        # Large values right up to the detector edges, where wrap-around shows most.
        detector = torch.linspace(-1, 1, n_det, dtype=torch.float64)
        sinogram = 1 + 0.5 * torch.cos(3 * detector) \
            + 0.2 * torch.rand(n_angles, n_det, generator=generator, dtype=torch.float64)
        what = f"ramp_filter_projections(sinogram of shape ({n_angles}, {n_det}))"
        got = _real_array(student_filter(sinogram.clone()), what)
        data = sinogram.numpy()
        if got.ndim == 2 and got.shape[0] == n_angles and got.shape[1] > n_det:
            raise CheckFailed(f"{what} has shape {got.shape}: after the inverse FFT keep "
                              f"only the first n_detectors = {n_det} samples of each row "
                              f"(the rest is the zero padding)")
        if got.shape != data.shape:
            compare_arrays(got, data, what=what)
        if _close(got, _course_filter_sinogram(sinogram).numpy()):
            notes.add("the exact band-limited ramp")
            continue
        accepted = [n_fft for n_fft in range(2 * n_det - 1, 8 * n_det + 1)
                    if _close(got, _ramp_filtered(data, n_fft))]
        if accepted:
            notes.add("|ν| with zero padding")
            continue
        diagnosis = _ramp_diagnosis(got, data, what)
        if diagnosis:
            raise CheckFailed(diagnosis)
        compare_arrays(got, _ramp_filtered(data, 2 * n_det), what=what)
    return f"{' and '.join(sorted(notes))}, 2 sinogram sizes"


# --- Exercise: filtered backprojection -------------------------------------------------------

def _psnr(got: np.ndarray, reference: np.ndarray) -> float:
    mse = float(np.mean((got - reference) ** 2))
    data_range = float(reference.max() - reference.min())
    return math.inf if mse == 0 else 10 * math.log10(data_range**2 / mse)


_FBP_THRESHOLD_DB = 35.0


# --- FBP for unevenly spaced angles: the weights -------------------------------------------

def _expected_angle_weights(angles: np.ndarray) -> np.ndarray:
    """Half the distance between each angle's two neighbours, periodic with period π."""
    after = np.roll(angles, -1)
    after[-1] += math.pi
    before = np.roll(angles, 1)
    before[0] -= math.pi
    return (after - before) / 2


def _check_uneven_angles(student_fbp, results) -> None:
    """FBP of a scan with uneven angles (and a wide gap across 0 and π) against the weights."""
    generator = torch.Generator().manual_seed(13)
    n = 48
    angles = torch.sort(0.4 + 2.2 * torch.rand(24, generator=generator,
                                                dtype=torch.float64)).values
    geometry = ParallelBeam(angles=angles, n_detectors=math.ceil(math.sqrt(2) * n) + 1)
    sinogram = RadonTransform(n, geometry)(shepp_logan(n, dtype=torch.float64))
    filtered = _course_filter_sinogram(sinogram)
    theta = angles.numpy()

    def weighted(weights: np.ndarray) -> np.ndarray:
        return _backproject(filtered * torch.from_numpy(weights)[:, None], geometry,
                            n).numpy()

    expected = weighted(_expected_angle_weights(theta))
    what = f"fbp(sinogram, angles, {n}) with 24 unevenly spaced angles in [0.4, 2.6]"
    got = _to_numpy(student_fbp(sinogram.clone(), angles.clone(), n), what)
    if got.shape != expected.shape:
        compare_arrays(got, expected, what=what)
    quality = _psnr(got, expected)
    if quality >= _FBP_THRESHOLD_DB:
        results.append((quality, float(got.mean() / expected.mean() - 1)))
        return
    for message, wrong in _angle_weight_mistakes(theta):
        if _psnr(got, weighted(wrong)) >= _FBP_THRESHOLD_DB:
            raise CheckFailed(f"{what}: {message}")
    raise CheckFailed(f"{what} is only {quality:.1f} dB PSNR away from the FBP with the "
                      f"derived weights (evenly spaced angles were fine): give each angle "
                      f"the weight of the interval it stands for; the weights sum to π")


def _angle_weight_mistakes(angles: np.ndarray):
    """(message, wrong weights) for the usual mistakes."""
    n = len(angles)
    gaps_after = np.diff(np.append(angles, angles[0] + math.pi))
    one_sided = np.empty(n)
    one_sided[1:-1] = (angles[2:] - angles[:-2]) / 2
    one_sided[0] = (angles[1] - angles[0]) / 2
    one_sided[-1] = (angles[-1] - angles[-2]) / 2
    midpoints = (angles[1:] + angles[:-1]) / 2
    clipped = np.diff(np.concatenate([[0.0], midpoints, [math.pi]]))
    expected = _expected_angle_weights(angles)
    wrap = ("the first and the last angle are neighbours too: θ and θ + π measure the "
            "same lines, so the neighbour before θ_0 is θ_(n-1) − π and the one after "
            "θ_(n-1) is θ_0 + π")
    return [
        ("every weight is π/n_θ: that is only right for evenly spaced angles; here each "
         "angle stands for the interval between the midpoints to its two neighbours",
         np.full(n, math.pi / n)),
        ("the first and last weights are too small (the weights sum to less than π): "
         + wrap, one_sided),
        ("your intervals stop at 0 and at π: " + wrap, clipped),
        ("each weight is the whole gap to the next angle: the interval of an angle "
         "reaches halfway to its previous and halfway to its next neighbour", gaps_after),
        ("twice the expected weights (they sum to 2π): each angle's interval reaches only "
         "HALFWAY to its neighbours", 2 * expected),
        ("the weights are in degrees (they sum to 180): work in radians",
         np.degrees(expected)),
    ]


@exercise_check("filtered backprojection")
def fbp(student_fbp):
    """Check ``fbp(sinogram, angles, image_size) -> (image_size, image_size)``.

    The learner's reconstruction of a Shepp-Logan sinogram must be within
    35 dB PSNR of :func:`course_utils.fbp` (a sampled |ν| ramp gives about 41 dB;
    the exact ramp gives identical images), first for evenly spaced angles, then for
    uneven ones, where each projection's weight is half the gap between its neighbours
    (periodic with period π).
    """
    results = []
    for n, n_angles in ((48, 60), (33, 40)):
        geometry = ParallelBeam(n_angles=n_angles, n_detectors=math.ceil(math.sqrt(2) * n) + 1)
        A = RadonTransform(n, geometry)
        x = shepp_logan(n, dtype=torch.float64)
        sinogram = A(x)
        expected = _course_fbp(A, sinogram).numpy()
        what = f"fbp(sinogram, angles, {n}) with {n_angles} angles"
        got = _to_numpy(student_fbp(sinogram.clone(), geometry.angles.clone(), n), what)
        if got.shape != expected.shape:
            compare_arrays(got, expected, what=what)
        quality = _psnr(got, expected)
        if quality >= _FBP_THRESHOLD_DB:
            results.append((quality, float(got.mean() / expected.mean() - 1)))
            continue
        theta = geometry.angles.double().numpy()
        for message, wrong in _angle_weight_mistakes(theta)[1:4]:   # the wrap-around ones
            if np.allclose(wrong, _expected_angle_weights(theta)):
                continue
            weighted = _course_filter_sinogram(sinogram) * torch.from_numpy(wrong)[:, None]
            if _psnr(got, _backproject(weighted, geometry, n).numpy()) >= _FBP_THRESHOLD_DB:
                raise CheckFailed(f"{what}: {message}")
        # The factor between the zero-mean images: a sampled |ν| ramp shifts the mean a bit.
        c = _best_factor(got - got.mean(), expected - expected.mean())
        if abs(c) > 1e-12 and _psnr(got / c, expected) >= _FBP_THRESHOLD_DB:
            reasons = {n_angles / math.pi: "the weight π/n_angles is missing",
                       1 / math.pi: "π is missing from the weight π/n_angles",
                       float(n_angles): "the division by n_angles is missing",
                       2.0: "the angular step is π/n_angles (angles cover 180°, not 360°)",
                       0.5: "the angular step is π/n_angles, not π/(2 n_angles)",
                       2 * math.pi: "a factor 2π too many (ramp in radians per pixel?)",
                       1 / (2 * math.pi): "a factor 1/(2π) too many"}
            reason = next((text for value, text in reasons.items()
                           if math.isclose(c, value, rel_tol=0.02)), "check the weight π/n_angles")
            raise CheckFailed(f"{what} has the right shape of image but {c:.4g} times the "
                              f"values of cu.fbp: {reason}")
        plain = _expected_backprojection(sinogram, geometry.angles, n) * math.pi / n_angles
        c = _best_factor(got, plain)
        if abs(c) > 1e-12 and _psnr(got / c, plain) >= _FBP_THRESHOLD_DB:
            raise CheckFailed(f"{what} looks like a plain (blurred) backprojection: "
                              f"ramp-filter the projections before backprojecting them")
        for name, flipped in (("upside down", np.flipud(got)), ("mirrored", np.fliplr(got)),
                              ("transposed", got.T)):
            if _psnr(flipped, expected) >= _FBP_THRESHOLD_DB:
                raise CheckFailed(f"{what} is {name} compared with cu.fbp: check the image "
                                  f"conventions of backproject (run its check)")
        raise CheckFailed(f"{what} is only {quality:.1f} dB PSNR away from cu.fbp (at least "
                          f"{_FBP_THRESHOLD_DB:.0f} dB expected): run the checks of "
                          f"backproject and ramp_filter_projections first")
    _check_uneven_angles(student_fbp, results)
    worst = min(q for q, _ in results)
    offset = max((o for _, o in results), key=abs)
    details = (f"PSNR ≥ {worst:.1f} dB against cu.fbp" if worst < 100
               else "identical to cu.fbp up to rounding")
    if abs(offset) > 0.01:
        details += (f"; your image's mean is {abs(offset):.1%} "
                    f"{'below' if offset < 0 else 'above'} cu.fbp's — see the note on "
                    f"the zero frequency")
    return details
