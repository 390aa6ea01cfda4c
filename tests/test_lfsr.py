"""The format §1/2 LFSR and basis: test vectors, whole periods, maximal length."""
import numpy as np
import pytest

from seedlm_fpga.core.lfsr import (TAPS, basis_S, basis_U, basis_V, lfsr_cycle, lfsr_states,
                                         lfsr_step)


def test_spec_vector_k16_seed1():
    assert lfsr_states(1, 8).tolist() == [32768, 16384, 8192, 4096, 34816, 17408, 8704, 4352]


def test_spec_vector_paper_worked_example():
    assert basis_V(4, C=4, P=2, K=3, taps=(0, 1)).tolist() == [[2, 5], [6, 7], [3, 1], [4, 2]]


def test_spec_vector_ace1():
    assert basis_V(0xACE1, C=8, P=3).tolist() == [
        [54896, 60216, 62876], [31438, 48487, 57011], [61273, 30636, 15318], [7659, 3829, 34682],
        [17341, 8670, 4335], [2167, 1083, 33309], [16654, 8327, 4163], [34849, 50192, 25096]]


def test_step_is_the_spec_formula():
    # b = XOR of tapped bits; state = (state >> 1) | (b << (K - 1)), written out for K = 16.
    for s in (1, 0xACE1, 0xFFFF, 0x8000, 12345):
        b = ((s >> 0) ^ (s >> 1) ^ (s >> 3) ^ (s >> 12)) & 1
        assert lfsr_step(s, 16) == (s >> 1) | (b << 15)


def test_k16_whole_period_visits_every_nonzero_state_once():
    states = lfsr_states(1, 65535)
    assert states[-1] == 1  # back to the seed after exactly 2^16 - 1 steps
    assert len(set(states[:-1].tolist()) | {1}) == 65535
    assert 0 not in set(states.tolist())
    assert np.all(lfsr_states(1, 65534) != 1)


@pytest.mark.parametrize("K", range(2, 21))
def test_taps_table_is_maximal_length(K):
    cycle, position = lfsr_cycle(K, TAPS[K])
    assert len(cycle) == (1 << K) - 1
    assert position[0] == -1 and np.all(position[1:] >= 0)
    assert lfsr_step(int(cycle[-1]), K, TAPS[K]) == 1


def test_cycle_agrees_with_stepping():
    cycle, position = lfsr_cycle(16)
    for seed in (1, 2, 777, 0xACE1, 65535):
        n = position[seed]
        expected = cycle[(n + 1 + np.arange(50)) % 65535]
        assert lfsr_states(seed, 50).tolist() == expected.tolist()


def test_basis_S_and_U():
    seeds = np.array([[1, 2], [0xACE1, 65535]])
    V = basis_V(seeds, C=12, P=4)
    assert V.shape == (2, 2, 12, 4)
    S = basis_S(seeds, C=12, P=4)
    assert np.array_equal(S, V - 32768)
    # The hardware view: S is the state with its top bit inverted, read as two's complement.
    flipped = (V ^ 0x8000).astype(np.uint16).view(np.int16)
    assert np.array_equal(S, flipped)
    U = basis_U(seeds, C=12, P=4)
    assert np.all(np.abs(U) <= 1.0) and np.allclose(U * 32767, S)


@pytest.mark.parametrize("seed", [0, 65536, -1])
def test_seed_out_of_range(seed):
    with pytest.raises(ValueError, match="seed"):
        basis_V(seed, C=8, P=3)
