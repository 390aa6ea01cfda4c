"""format §6.1: the factorized block dot equals sum_c acc[c] a_c exactly, for every field."""
from hypothesis import given, settings
from hypothesis import strategies as st

from seedlm_fpga.core import factorized as fz
from seedlm_fpga.core.lfsr import TAPS, lfsr_states
from seedlm_fpga.core.reference import PRESETS, block_acc


def _acc_direct(seed, q, K, C, P, taps):
    """sum_p S[c][p] q_p by stepping the LFSR (seed 0 allowed: it stays 0)."""
    states = [0] * (C * P) if seed == 0 else [int(s) for s in lfsr_states(seed, C * P, K, taps)]
    return [sum((states[c * P + p] - (1 << (K - 1))) * q[p] for p in range(P)) for c in range(C)]


@st.composite
def blocks(draw):
    preset = draw(st.sampled_from([None, *PRESETS.values()]))
    if preset is None:
        K = draw(st.integers(2, 24))
        C = draw(st.integers(1, 16))
        P = draw(st.integers(1, (60 - K) // 4))
        taps = TAPS[K]
    else:
        K, C, P, taps = preset.K, preset.C, preset.P, preset.taps
    seed = draw(st.integers(0, (1 << K) - 1))
    q = draw(st.lists(st.integers(-8, 7), min_size=P, max_size=P))
    act_bits = draw(st.sampled_from([8, 16]))
    lim = 1 << (act_bits - 1)
    a = draw(st.lists(st.integers(-lim, lim - 1), min_size=C, max_size=C))
    return K, C, P, taps, seed, q, a


@settings(max_examples=400, deadline=None)
@given(blocks())
def test_factorized_acc_and_dot_are_exact(case):
    K, C, P, taps, seed, q, a = case
    acc = _acc_direct(seed, q, K, C, P, taps)
    assert fz.factorized_acc(seed, q, K, C, P, taps) == acc
    assert fz.factorized_dot(seed, q, a, K, C, P, taps) == sum(x * y for x, y in zip(acc, a))


def test_interior_weight_is_Q():
    q = [3, -8, 7, -1]
    for m in range(3, 16):
        assert fz.edge_weight(m, q, 16) == fz.q_scale(q) << (m - 3)


def test_k3_toy_example_and_presets_against_reference():
    # format §2: K = 3, seed 4, C x P = 4 x 2: V = [[2,5],[6,7],[3,1],[4,2]]
    q = [1, -2]
    S = [[2, 5], [6, 7], [3, 1], [4, 2]]
    assert fz.factorized_acc(4, q, 3, 4, 2, (0, 1)) == [(v0 - 4) * 1 + (v1 - 4) * -2 for v0, v1 in S]
    for p in PRESETS.values():
        q = [-8, 7, -1, 5][:p.P]
        assert fz.factorized_acc(0xACE1, q, p.K, p.C, p.P, p.taps) == [int(v) for v in block_acc(0xACE1, q, p)]
