"""Checks for the exercises of lesson 10: Noise2Inverse.

Each check runs the learner's function on small cases it makes up, compares with the
reference in :mod:`course_utils.learning.self_supervised` and, when the answer is wrong,
recognises the usual mistakes (blocks of consecutive angles instead of interleaved
subsets, the full scan's angular weight, the wrong angles in a sub-geometry, a target
inside its own input, input and target swapped, a sum instead of a mean, a correlation
without the mean removed or without normalisation, the wrong axis) and says which one
it is.
"""

from __future__ import annotations

import torch

from ..learning.self_supervised import (neighbour_correlation as _neighbour_correlation,
                                        noise2inverse_pairs, sub_reconstructions as
                                        _sub_reconstructions)
from ..operators.geometry import ParallelBeam
from ..operators.radon import RadonTransform
from ..reconstruction.fbp import fbp
from ._feedback import CheckFailed, compare_arrays, exercise_check, expect

__all__ = ["sub_reconstructions", "x_to_one_pairs", "neighbour_correlation"]


def _close(a, b, rtol=1e-4, atol=1e-5) -> bool:
    return (isinstance(a, torch.Tensor) and a.shape == b.shape
            and bool(torch.allclose(a.detach().to(b.dtype), b, rtol=rtol, atol=atol)))


# --- Exercise 2: K sub-reconstructions ---------------------------------------------------

def _as_stack(result, K, what):
    if isinstance(result, (list, tuple)):
        expect(len(result) == K, f"{what} returned {len(result)} images, expected K = {K}")
        expect(all(isinstance(r, torch.Tensor) for r in result),
               f"{what} returned a {type(result).__name__} of non-tensors")
        result = torch.stack(list(result))
    expect(isinstance(result, torch.Tensor),
           f"{what} returned {type(result).__name__}, expected a tensor of shape (K, ..., N, N)"
           " (did you forget the return?)")
    return result


def _wrong_angle_variants(A, y, K):
    """What common mistakes give: name -> images (K, ..., N, N)."""
    g = A.geometry
    n = g.n_angles // K
    variants = {"contiguous": _sub_reconstructions(A, y, K, strategy="contiguous")}
    # FBP of each subset with the other angles set to zero, on the full geometry: each
    # angle is weighted by pi / n_angles of the *full* scan, so the image is 1/K too weak.
    zero_filled = []
    for j in range(K):
        keep = torch.zeros(g.n_angles, 1)
        keep[j::K] = 1
        zero_filled.append(fbp(A, y * keep))
    variants["zero-filled"] = torch.stack(zero_filled)
    # The right rows of y, but the geometry of the first n angles for every subset.
    first = ParallelBeam(angles=g.angles[:n], n_detectors=g.n_detectors,
                         detector_spacing=g.detector_spacing)
    A_first = RadonTransform(image_size=A.image_size, geometry=first)
    variants["first angles"] = torch.stack([fbp(A_first, y[..., j::K, :]) for j in range(K)])
    # The right angles, but the detector pixels of the default width 1.
    no_spacing = []
    for j in range(K):
        sub = ParallelBeam(angles=g.angles[j::K], n_detectors=g.n_detectors)
        no_spacing.append(fbp(RadonTransform(image_size=A.image_size, geometry=sub),
                              y[..., j::K, :]))
    variants["no spacing"] = torch.stack(no_spacing)
    return variants


_ANGLE_MISTAKES = {
    "contiguous": "your subsets are blocks of consecutive angles (a limited-angle scan each); "
                  "Noise2Inverse interleaves them: subset j holds angles j, j + K, j + 2K, ...",
    "zero-filled": "each of your images is 1/K of the expected one: did you FBP the full "
                   "sinogram with the other angles set to zero? FBP weights each angle by "
                   "π / (its scan's number of angles); give each subset its own geometry",
    "no spacing": "your sub-geometries have detector pixels of width 1: copy the full scan's "
                  "detector_spacing (and n_detectors) into each subset's cu.ParallelBeam",
    "first angles": "your sub-reconstructions use the data of the right angles with the wrong "
                    "angles in the geometry (the first n / K of the scan for every subset): "
                    "take geometry.angles at the subset's indices",
}


@exercise_check("K sub-reconstructions")
def sub_reconstructions(my_sub_reconstructions):
    """Check ``my_sub_reconstructions(A, y, K)`` against the interleaved reference.

    It should return the ram-lak FBP of each of the ``K`` interleaved subsets of the
    angles, each on its own geometry, stacked as ``(K, ..., N, N)`` (a list of ``K``
    images is accepted too).
    """
    gen = torch.Generator().manual_seed(10)
    # Detector pixels narrower than the image's, as in the lesson's scanner: an answer
    # that forgets the spacing in the sub-geometries is caught.
    cases = [(16, 12, 25, 3, (2, 1), 0.8), (12, 8, 19, 2, (1,), 0.9)]
    for size, n_angles, n_det, K, batch, spacing in cases:
        geometry = ParallelBeam(n_angles=n_angles, n_detectors=n_det, detector_spacing=spacing)
        A = RadonTransform(image_size=size, geometry=geometry)
        x = torch.rand(*batch, size, size, generator=gen)
        y = A(x) + 0.1 * torch.randn(*batch, n_angles, n_det, generator=gen)
        what = f"my_sub_reconstructions(A, y, K={K}) ({n_angles} angles, y {tuple(y.shape)})"
        got = _as_stack(my_sub_reconstructions(A, y.clone(), K), K, what)
        expected = _sub_reconstructions(A, y, K)
        if _close(got, expected):
            continue
        if isinstance(got, torch.Tensor) and got.shape == expected.shape:
            for name, variant in _wrong_angle_variants(A, y, K).items():
                if _close(got, variant):
                    raise CheckFailed(f"{what}: {_ANGLE_MISTAKES[name]}")
        compare_arrays(got, expected, what=what, rtol=1e-4, atol=1e-5)
    gap = float((expected.mean(0) - fbp(A, y)).abs().max())
    return f"and the mean of your K images is the FBP of all angles, to {gap:.0e}"


# --- Exercise 3: X:1 pairs ---------------------------------------------------------------

def _match(rows, bank):
    """For each row, the index of the equal row of ``bank`` (or -1)."""
    index = []
    for row in rows:
        hits = [i for i in range(len(bank)) if torch.allclose(row, bank[i], atol=1e-6)]
        index.append(hits[0] if hits else -1)
    return index


@exercise_check("the X:1 training pairs")
def x_to_one_pairs(my_x_to_one_pairs):
    """Check ``my_x_to_one_pairs(sub_images)``: (inputs, targets) of Noise2Inverse's X:1.

    ``sub_images`` has shape ``(K, B, 1, N, N)``; the answer returns two tensors of
    shape ``(K * B, 1, N, N)``: for every subset ``j`` and scan ``b`` the input is the
    mean of the other ``K - 1`` sub-reconstructions of scan ``b`` and the target is
    sub-reconstruction ``j``.  Any order of the pairs is accepted, as long as inputs
    and targets stay paired.
    """
    gen = torch.Generator().manual_seed(11)
    for K, B in ((4, 2), (3, 3), (2, 2)):
        subs = torch.rand(K, B, 1, 5, 5, generator=gen, dtype=torch.float64)
        what = f"my_x_to_one_pairs(sub_images of shape {tuple(subs.shape)})"
        result = my_x_to_one_pairs(subs.clone())
        expect(isinstance(result, (tuple, list)) and len(result) == 2,
               f"{what} should return a pair (inputs, targets), got "
               f"{type(result).__name__}")
        inputs, targets = result
        expect(all(isinstance(t, torch.Tensor) for t in (inputs, targets)),
               f"{what}: inputs and targets must be tensors")
        shape = (K * B, 1, 5, 5)
        for name, t in (("inputs", inputs), ("targets", targets)):
            expect(tuple(t.shape) == shape,
                   f"{what}: {name} has shape {tuple(t.shape)}, expected {shape} "
                   f"(K * B pairs; flatten the first two dimensions)")
        inputs, targets = inputs.detach().double(), targets.detach().double()
        ref_inputs, ref_targets = noise2inverse_pairs(subs, "X:1")
        where = _match(targets, ref_targets)
        if -1 in where:
            if -1 not in _match(targets, ref_inputs) and K > 2:
                raise CheckFailed(f"{what}: your targets are means of K - 1 images and "
                                  f"(probably) your inputs single ones: that is 1:X; "
                                  f"X:1 feeds the mean of the others and predicts one")
            raise CheckFailed(f"{what}: a target is not one of the sub-reconstructions; "
                              f"the target of pair j is sub_images[j]")
        expect(sorted(where) == list(range(K * B)),
               f"{what}: some sub-reconstructions are targets twice and others never: "
               f"every (j, b) should be the target of exactly one pair")
        ref_for_mine = ref_inputs[where]
        if torch.allclose(inputs, ref_for_mine, atol=1e-6):
            continue
        all_mean = subs.mean(0, keepdim=True).expand_as(subs).flatten(0, 1)[where]
        others_sum = (subs.sum(0, keepdim=True) - subs).flatten(0, 1)[where]
        if torch.allclose(inputs, all_mean, atol=1e-6):
            raise CheckFailed(f"{what}: each input is the mean of all K images, the target "
                              f"included: the network can then copy its target's noise "
                              f"(leave subset j out of its own input)")
        if torch.allclose(inputs, others_sum, atol=1e-6):
            raise CheckFailed(f"{what}: each input is the sum of the other K - 1 images; "
                              f"take their mean, so that input and target are images of "
                              f"the same brightness")
        if -1 not in _match(inputs, subs.flatten(0, 1)) and K > 2:
            raise CheckFailed(f"{what}: each input is a single sub-reconstruction; with "
                              f"K > 2 the input of X:1 is the mean of the other K - 1")
        compare_arrays(inputs, ref_for_mine, what=f"{what}: the inputs (paired with "
                       f"your targets)", rtol=1e-6, atol=1e-6)
    return "input and target never share a subset"


# --- Exercise 1: the correlation of neighbouring noise ---------------------------------

def _smoothed(noise, axis):
    """Noise averaged with its neighbour along one axis: correlated along that axis."""
    return 0.5 * (noise + torch.roll(noise, 1, dims=axis))


@exercise_check("the correlation of neighbouring pixels")
def neighbour_correlation(my_neighbour_correlation):
    """Check ``my_neighbour_correlation(noise)``: correlation of horizontal neighbours.

    ``noise`` has shape ``(..., N, N)``; the answer is one number, the correlation
    coefficient between the noise of pixels ``(r, c)`` and ``(r, c + 1)`` over all pairs
    of all images (0 for white noise, 1 for identical neighbours).  Small differences
    in normalisation (n or n - 1, one mean or two) are accepted.
    """
    gen = torch.Generator().manual_seed(12)
    white = torch.randn(4, 48, 48, generator=gen, dtype=torch.float64)
    cases = [
        ("white noise", white),
        ("noise smoothed along the rows", _smoothed(white, -1)),
        ("noise smoothed along the columns (correlated vertically only)", _smoothed(white, -2)),
        ("smoothed noise with a large offset (mean 5)", 5 + _smoothed(white, -1)),
        ("smoothed noise 10 times stronger", 10 * _smoothed(white, -1)),
    ]
    for name, noise in cases:
        got = my_neighbour_correlation(noise.clone())
        what = f"my_neighbour_correlation({name})"
        try:
            got = float(got)
        except (TypeError, ValueError):
            raise CheckFailed(f"{what} returned {type(got).__name__}, expected one number "
                              f"(a float)") from None
        expected = _neighbour_correlation(noise)
        if abs(got - expected) <= 0.02:
            continue
        if abs(got - 1) < 1e-6:
            raise CheckFailed(f"{what} is 1: is the pixel paired with itself (shift 0) "
                              f"instead of its right-hand neighbour?")
        if abs(got - _neighbour_correlation(noise, (1, 0))) <= 0.02:
            raise CheckFailed(f"{what} = {got:.3f}, expected {expected:.3f}: you paired "
                              f"each pixel with the one below it; the exercise asks for "
                              f"the right-hand neighbour (the last axis)")
        centred = noise - noise.mean()
        covariance = float((centred[..., :, :-1] * centred[..., :, 1:]).mean())
        if abs(got - covariance) <= 0.02 * max(1.0, abs(covariance)) and abs(covariance - expected) > 0.02:
            raise CheckFailed(f"{what} = {got:.3f}, expected {expected:.3f}: that is the "
                              f"covariance; divide it by the variance of the noise")
        if "offset" in name:
            raise CheckFailed(f"{what} = {got:.3f}, expected {expected:.3f}: subtract the "
                              f"mean of the noise before multiplying neighbours")
        if "stronger" in name:
            raise CheckFailed(f"{what} = {got:.3f}, expected {expected:.3f}: a correlation "
                              f"does not change when the noise is scaled; divide the "
                              f"covariance by the variance")
        raise CheckFailed(f"{what} = {got:.3f}, expected {expected:.3f}")
    return "white noise ≈ 0, noise smoothed along the rows ≈ 0.5"
