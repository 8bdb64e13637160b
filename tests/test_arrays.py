"""Tests of course_utils.arrays: the one way every function checks its inputs."""

import numpy as np
import pytest
import torch

from course_utils.arrays import check_int, check_number


@pytest.mark.parametrize("value", [3, np.int64(3), torch.tensor(3)])
def test_check_int_accepts_integers_of_every_kind(value):
    assert check_int(value, "n_iter") == 3 and type(check_int(value, "n_iter")) is int


@pytest.mark.parametrize("value, error, words", [
    (True, TypeError, "must be an int, got bool"),
    (3.0, TypeError, "got float"),
    (torch.tensor(3.0), TypeError, "got Tensor"),
    ("3", TypeError, "got str"),
    (0, ValueError, "at least 1, got 0"),
])
def test_check_int_rejects_with_a_clear_message(value, error, words):
    with pytest.raises(error, match=words):
        check_int(value, "n_iter")


def test_check_int_minimum():
    assert check_int(0, "seed", minimum=0) == 0
    assert check_int(-5, "offset", minimum=None) == -5
    with pytest.raises(ValueError, match="size must be at least 8"):
        check_int(4, "size", minimum=8)


def test_check_number():
    assert check_number(torch.tensor(0.5), "lam", positive=True) == 0.5
    assert check_number(0, "noise_level", positive=False) == 0.0
    with pytest.raises(ValueError, match="positive"):
        check_number(0, "lam", positive=True)
    with pytest.raises(ValueError, match="finite"):
        check_number(float("nan"), "lam", positive=False)
    with pytest.raises(TypeError, match="real number"):
        check_number(True, "lam", positive=False)
