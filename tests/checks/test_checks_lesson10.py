"""The checks of lesson 10 accept the reference answers and diagnose typical mistakes."""

import numpy as np
import pytest
import torch

import course_utils as cu
from course_utils.checks import lesson10
from lesson_references import reference

# The reference answers, from solutions/10_noise2inverse.py (see lesson_references.py).
ref = reference("10")


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise: replace this line with your code")


def run(check, fn):
    result = check(fn)
    return result, result.line


# --- Exercise 1: the correlation of neighbouring pixels -----------------------------------

def corr_numpy(noise):
    a = noise[..., :, :-1].numpy().ravel()
    b = noise[..., :, 1:].numpy().ravel()
    return np.corrcoef(a, b)[0, 1]


def corr_loop(noise):                       # per-image sums, n - 1 normalisation
    n = noise.reshape(-1, *noise.shape[-2:])
    n = n - n.mean()
    num = sum(float((img[:, :-1] * img[:, 1:]).sum()) for img in n)
    pairs = n.shape[0] * n.shape[1] * (n.shape[2] - 1)
    return (num / (pairs - 1)) / float(n.var())


@pytest.mark.parametrize("good", ["reference", corr_numpy, corr_loop,
                                  lambda n: torch.tensor(cu.neighbour_correlation(n))])
def test_neighbour_correlation_accepts_correct_answers(good):
    fn = ref.neighbour_correlation if good == "reference" else good
    result, line = run(lesson10.neighbour_correlation, fn)
    assert result.status == "passed", line


@pytest.mark.parametrize("wrong, diagnosis", [
    (lambda n: float((n[..., :, :-1] * n[..., :, 1:]).mean() / (n ** 2).mean()),
     "subtract the mean"),
    (lambda n: float(((n - n.mean())[..., :, :-1] * (n - n.mean())[..., :, 1:]).mean()),
     "covariance"),
    (lambda n: cu.neighbour_correlation(n, (1, 0)), "the one below it"),
    (lambda n: 1.0, "paired with itself"),
    (lambda n: None, "expected one number"),
])
def test_neighbour_correlation_diagnoses_mistakes(wrong, diagnosis):
    result, line = run(lesson10.neighbour_correlation, wrong)
    assert result.status == "failed", line
    assert diagnosis in line, line


def test_neighbour_correlation_stub_is_not_attempted():
    result, line = run(lesson10.neighbour_correlation, stub)
    assert result.status == "not attempted", line


# --- Exercise 2: K sub-reconstructions ----------------------------------------------------

def subrecs_list(A, y, K):
    g = A.geometry
    out = []
    for j in range(K):
        index = torch.arange(j, g.n_angles, K)
        sub = cu.ParallelBeam(angles=g.angles[index], n_detectors=g.n_detectors,
                              detector_spacing=g.detector_spacing)
        out.append(cu.fbp(cu.RadonTransform(image_size=A.image_size, geometry=sub),
                          y.index_select(-2, index)))
    return out


def subrecs_contiguous(A, y, K):
    return cu.sub_reconstructions(A, y, K, strategy="contiguous")


def subrecs_zero_filled(A, y, K):
    out = []
    for j in range(K):
        keep = torch.zeros_like(y)
        keep[..., j::K, :] = 1
        out.append(cu.fbp(A, y * keep))
    return torch.stack(out)


def subrecs_first_angles(A, y, K):
    g = A.geometry
    sub = cu.ParallelBeam(angles=g.angles[: g.n_angles // K], n_detectors=g.n_detectors,
                          detector_spacing=g.detector_spacing)
    A_sub = cu.RadonTransform(image_size=A.image_size, geometry=sub)
    return torch.stack([cu.fbp(A_sub, y[..., j::K, :]) for j in range(K)])


def subrecs_no_spacing(A, y, K):
    g = A.geometry
    out = []
    for j in range(K):
        sub = cu.ParallelBeam(angles=g.angles[j::K], n_detectors=g.n_detectors)
        out.append(cu.fbp(cu.RadonTransform(image_size=A.image_size, geometry=sub),
                          y[..., j::K, :]))
    return torch.stack(out)


def subrecs_hann(A, y, K):
    return cu.sub_reconstructions(A, y, K, "hann")


@pytest.mark.parametrize("good", ["reference", subrecs_list,
                                  lambda A, y, K: cu.sub_reconstructions(A, y, K)])
def test_sub_reconstructions_accepts_correct_answers(good):
    fn = ref.sub_reconstructions if good == "reference" else good
    result, line = run(lesson10.sub_reconstructions, fn)
    assert result.status == "passed", line
    assert "FBP of all angles" in line


@pytest.mark.parametrize("wrong, diagnosis", [
    (subrecs_contiguous, "consecutive angles"),
    (subrecs_zero_filled, "1/K"),
    (subrecs_first_angles, "wrong angles"),
    (subrecs_no_spacing, "detector_spacing"),
    (subrecs_hann, "differs from the expected values"),
    (lambda A, y, K: cu.sub_reconstructions(A, y, K)[:-1], "expected (3, 2, 1, 16, 16)"),
    (lambda A, y, K: list(cu.sub_reconstructions(A, y, K))[:-1], "expected K"),
    (lambda A, y, K: None, "forget the return"),
])
def test_sub_reconstructions_diagnoses_mistakes(wrong, diagnosis):
    result, line = run(lesson10.sub_reconstructions, wrong)
    assert result.status == "failed", line
    assert diagnosis in line, line


def test_sub_reconstructions_stub_is_not_attempted():
    result, line = run(lesson10.sub_reconstructions, stub)
    assert result.status == "not attempted", line


# --- Exercise 3: the X:1 pairs --------------------------------------------------------------

def pairs_scan_major(subs):                 # the pairs in another order: fine
    K = subs.shape[0]
    others = (subs.sum(0, keepdim=True) - subs) / (K - 1)
    return others.transpose(0, 1).flatten(0, 1), subs.transpose(0, 1).flatten(0, 1)


def pairs_loop(subs):
    K, B = subs.shape[:2]
    inputs, targets = [], []
    for j in range(K):
        for b in range(B):
            others = [subs[i, b] for i in range(K) if i != j]
            inputs.append(torch.stack(others).mean(0))
            targets.append(subs[j, b])
    return torch.stack(inputs), torch.stack(targets)


@pytest.mark.parametrize("good", ["reference", pairs_scan_major, pairs_loop,
                                  lambda s: cu.noise2inverse_pairs(s)])
def test_x_to_one_pairs_accepts_correct_answers(good):
    fn = ref.x_to_one_pairs if good == "reference" else good
    result, line = run(lesson10.x_to_one_pairs, fn)
    assert result.status == "passed", line


@pytest.mark.parametrize("wrong, diagnosis", [
    (lambda s: (s.mean(0, keepdim=True).expand_as(s).flatten(0, 1), s.flatten(0, 1)),
     "the target included"),
    (lambda s: cu.noise2inverse_pairs(s, "1:X"), "that is 1:X"),
    (lambda s: ((s.sum(0, keepdim=True) - s).flatten(0, 1), s.flatten(0, 1)), "sum of the other"),
    (lambda s: (torch.roll(s, 1, dims=0).flatten(0, 1), s.flatten(0, 1)),
     "single sub-reconstruction"),
    (lambda s: (s.flatten(0, 1), s.flatten(0, 1)), "single sub-reconstruction"),
    (lambda s: ((s.sum(0) - s[0]) / (s.shape[0] - 1), s[0]), "expected"),
    (lambda s: cu.noise2inverse_pairs(s)[0], "should return a pair"),
    (lambda s: (cu.noise2inverse_pairs(s)[0], s[:1].expand_as(s).flatten(0, 1)),
     "targets twice"),
])
def test_x_to_one_pairs_diagnoses_mistakes(wrong, diagnosis):
    result, line = run(lesson10.x_to_one_pairs, wrong)
    assert result.status == "failed", line
    assert diagnosis in line, line


def test_x_to_one_pairs_stub_is_not_attempted():
    result, line = run(lesson10.x_to_one_pairs, stub)
    assert result.status == "not attempted", line
