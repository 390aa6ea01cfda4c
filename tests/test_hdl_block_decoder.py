"""BlockDecoder against reference.block_acc: random and extreme words, one per cycle."""
import random

import numpy as np
import pytest

from seedlm_fpga.core.reference import PRESETS, block_acc, pack_words
from seedlm_fpga.hdl.block_decoder import BlockDecoder, acc_bits

from hdl_sim_util import run


def decode(preset, words: list[int], valid_pattern: list[bool] | None = None):
    """Feed block words (a gap where valid_pattern is False); returns [(acc, x)] in order."""
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
                out.append(([int(a) for a in dec.acc], int(dec.x)))

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
    expect = [([int(a) for a in block_acc(int(s), qq, p)], int(xx)) for s, xx, qq in zip(seeds, x, q)]
    assert got == expect
    assert got[0] == BlockDecoder.reference(int(seeds[0]), int(x[0]), q[0], p)


@pytest.mark.parametrize("name", list(PRESETS))
def test_extremes(name):
    p = PRESETS[name]
    # q = -8 and +7 everywhere, x = 15, seeds at the ends of the range and where S is largest
    seeds = [1, (1 << p.K) - 1, 1 << (p.K - 1), 0xACE1]
    cases = [(s, 15, [qv] * p.P) for s in seeds for qv in (-8, 7)] + [(0xFFFF, 0, [0] * p.P)]
    s_, x_, q_ = zip(*cases)
    got = decode(p, words_of(s_, x_, q_, p))
    assert got == [([int(a) for a in block_acc(s, q, p)], x) for s, x, q in cases]
    # the all-zero word (seed 0, format §5.2) decodes to zero weights
    assert decode(p, [0]) == [([0] * p.C, 0)]


def test_acc_width_holds_any_word():
    # seed 0 is not a valid seed but the bus may carry it: S = -2^15 everywhere
    p = PRESETS["seedlm-3"]
    bits = acc_bits(p)
    assert -(1 << (bits - 1)) <= -p.P * (1 << 15) * 7 and p.P * (1 << 15) * 8 <= (1 << (bits - 1)) - 1
    word = words_of([0], [3], [[-8] * p.P], p)[0]
    assert decode(p, [word]) == [([p.P * (1 << 15) * 8] * p.C, 3)]
