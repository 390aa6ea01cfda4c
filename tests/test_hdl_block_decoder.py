"""BlockDecoder against the format §6.1 bit stream (core.factorized): random and extreme words."""
import random

import numpy as np
import pytest

from seedlm_fpga.core import factorized as fz
from seedlm_fpga.core.lfsr import lfsr_states
from seedlm_fpga.core.reference import PRESETS, pack_words
from seedlm_fpga.hdl.block_decoder import BlockDecoder, stream_bits

from hdl_sim_util import run


def decode(preset, words: list[int], valid_pattern: list[bool] | None = None):
    """Feed block words (a gap where valid_pattern is False); returns [(z, q, x)] in order."""
    dut = BlockDecoder(preset)
    pattern = valid_pattern or [True] * len(words)
    out = []

    async def tb(ctx):
        it = iter(words)
        for i in range(len(pattern) + dut.latency):
            v = i < len(pattern) and pattern[i]
            if v:
                ctx.set(dut.block.payload.as_value(), next(it))
            ctx.set(dut.block.valid, v)
            _, _, valid, dec = await ctx.tick().sample(dut.decoded.valid, dut.decoded.payload)
            if valid:
                out.append((int(dec.z), [int(v) for v in dec.q], int(dec.x)))

    run(dut, tb)
    return out


def words_of(seeds, x, q, preset):
    return [int(w) for w in pack_words(np.array(seeds), np.array(x), np.array(q), preset)]


@pytest.mark.parametrize("name", list(PRESETS))
def test_random_words_with_gaps(name):
    p = PRESETS[name]
    rng = np.random.default_rng(1)
    n = 150
    seeds = rng.integers(1, 1 << p.K, n)
    x = rng.integers(0, 16, n)
    q = rng.integers(-8, 8, (n, p.P))
    pattern = [random.Random(2).random() < 0.7 for _ in range(220)]
    pattern += [True] * (n - sum(pattern))
    got = decode(p, words_of(seeds, x, q, p), pattern)
    assert got == [BlockDecoder.reference(int(s), int(xx), qq, p) for s, xx, qq in zip(seeds, x, q)]


@pytest.mark.parametrize("name", list(PRESETS))
def test_windows_are_the_lfsr_states(name):
    # state i + 1 after the seed is bits [i, i + K) of z (format §6.1)
    p = PRESETS[name]
    seeds = [1, (1 << p.K) - 1, 1 << (p.K - 1), 0xACE1]
    got = decode(p, words_of(seeds, [15] * 4, [[-8] * p.P] * 4, p))
    for seed, (z, q, x) in zip(seeds, got):
        states = [int(s) for s in lfsr_states(seed, p.C * p.P, p.K, p.taps)]
        assert [(z >> i) & ((1 << p.K) - 1) for i in range(p.C * p.P)] == states
        assert z < 1 << stream_bits(p) and q == [-8] * p.P and x == 15
    # the all-zero word (seed 0, format §5.2): every bit 0
    assert decode(p, [0]) == [(0, [0] * p.P, 0)]
    assert fz.bit_stream(0, 40, p.K, p.taps) == [0] * 40
