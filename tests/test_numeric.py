"""seedlm_fpga.core.numeric: hand-computed values."""
import numpy as np
import pytest
import torch

from seedlm_fpga.core.numeric import pow2_at_least, relative_error


def test_relative_error():
    w = np.array([[3.0, 4.0]])
    assert relative_error(w, np.array([[3.0, 0.0]])) == 0.8         # ||(0, 4)|| / ||(3, 4)|| = 4 / 5
    assert relative_error(w, w) == 0.0
    assert relative_error([[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]) == 1.0
    assert relative_error(np.zeros((2, 2)), np.zeros((2, 2))) == 0.0
    assert relative_error(np.zeros((2, 2)), [[0.0, 1.0], [0.0, 0.0]]) == float("inf")


def test_relative_error_is_float64():
    # float32 arithmetic would give 1 - 1 = 0 here: w_hat rounds to w in float32
    w = np.array([1.0, 1.0], dtype=np.float64)
    w_hat = np.array([1.0 + 2.0 ** -40, 1.0], dtype=np.float64)
    assert relative_error(w, w_hat) == pytest.approx(2.0 ** -40 / np.sqrt(2), rel=1e-12)
    # the compress command passes the torch tensor as float64 and the decoded float32 array
    t = torch.tensor([[0.1, -0.2]], dtype=torch.bfloat16)
    d = np.array([[0.1, -0.2]], dtype=np.float32)
    want = np.linalg.norm(t.to(torch.float64).numpy() - d) / np.linalg.norm(t.to(torch.float64).numpy())
    assert relative_error(t.to(torch.float64).numpy(), d) == float(want)


@pytest.mark.parametrize("x, expected", [
    (0.3, 1), (1, 1), (1.0001, 2), (2, 2), (3, 4), (16, 16), (17, 32), (32.0, 32), (511.9, 512), (513, 1024),
])
def test_pow2_at_least(x, expected):
    assert pow2_at_least(x) == expected
