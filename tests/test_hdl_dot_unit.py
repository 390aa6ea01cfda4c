"""DotUnit (the format §6.1 factorized MAC array) and RowAccumulator against exact integer references."""
import random

import pytest

from seedlm_fpga.core.reference import PRESETS, block_acc
from seedlm_fpga.core.engine_shape import tree_stages
from seedlm_fpga.hdl.block_decoder import BlockDecoder
from seedlm_fpga.hdl.dot_unit import DotUnit, RowAccumulator

from hdl_sim_util import run


def _acc_any(seed, q, p):
    """acc[c] for any seed field (0: every state 0, S = -2^(K-1))."""
    if seed == 0:
        return [-(sum(q) << (p.K - 1))] * p.C
    return [int(v) for v in block_acc(seed, q, p)]


def run_dot(dut: DotUnit, beats):
    """beats: [(seeds[L], q[L][P], x[L], acts[L*C])], one per cycle; returns the sums in order."""
    p = dut.preset
    out = []

    async def tb(ctx):
        for i in range(len(beats) + dut.latency):
            if i < len(beats):
                seeds, q, x, acts = beats[i]
                blocks = []
                for lane in range(dut.L):
                    z, qq, xx = BlockDecoder.reference(seeds[lane], x[lane], q[lane], p)
                    blocks.append({"z": z, "q": qq, "x": xx})
                ctx.set(dut.beat.payload, {"blocks": blocks, "acts": acts})
            ctx.set(dut.beat.valid, i < len(beats))
            _, _, valid, total = await ctx.tick().sample(dut.sum.valid, dut.sum.payload)
            if valid:
                out.append(int(total))

    run(dut, tb)
    return out


def expected(beat, p):
    seeds, q, x, acts = beat
    return DotUnit.reference([_acc_any(s, qq, p) for s, qq in zip(seeds, q)], x, acts)


@pytest.mark.parametrize("name,L,A", [("seedlm-4", 4, 8), ("seedlm-3", 3, 16), ("seedlm-4", 1, 8),
                                      ("seedlm-3", 5, 8), ("seedlm-4", 2, 16)])
def test_random_and_extreme_beats(name, L, A):
    p = PRESETS[name]
    C, K = p.C, p.K
    rng = random.Random(L * A)
    amax, amin = (1 << (A - 1)) - 1, -(1 << (A - 1))
    beats = []
    for _ in range(40):
        beats.append(([rng.randint(0, (1 << K) - 1) for _ in range(L)],
                      [[rng.randint(-8, 7) for _ in range(p.P)] for _ in range(L)],
                      [rng.randint(0, 15) for _ in range(L)],
                      [rng.randint(amin, amax) for _ in range(L * C)]))
    # extremes: seed 0 (S = -2^(K-1) everywhere), all-ones seeds, q = -8 / 7, x = 15, a at its ends
    for seed in (0, (1 << K) - 1, 1 << (K - 1), 1):
        for qv in (-8, 7):
            for av in (amin, amax):
                beats.append(([seed] * L, [[qv] * p.P] * L, [15] * L, [av] * (L * C)))
    beats.append(([0] * L, [[0] * p.P] * L, [0] * L, [0] * (L * C)))
    dut = DotUnit(p, L, A)
    assert dut.latency == 1 + tree_stages(C) + 3 + tree_stages(L)
    got = run_dot(dut, beats)
    assert got == [expected(b, p) for b in beats]


def test_row_accumulator_rows_and_extremes():
    y_bits = 40
    dut = RowAccumulator(30, y_bits)
    big = (1 << 29) - 1
    rows = [[big] * 512, [-(1 << 29)] * 512, [5, -7, 11], [3]]  # |Y| up to 2^38 < 2^39
    beats = [(s, j == len(r) - 1, i == len(rows) - 1) for i, r in enumerate(rows) for j, s in enumerate(r)]
    out = []

    async def tb(ctx):
        rng = random.Random(3)
        it = iter(beats)
        pending = len(beats)
        while len(out) < len(rows):
            v = pending > 0 and rng.random() < 0.8
            if v:
                s, row_last, last = next(it)
                pending -= 1
                ctx.set(dut.beat.payload, {"sum": s, "row_last": row_last, "last": last})
            ctx.set(dut.beat.valid, v)
            _, _, valid, y = await ctx.tick().sample(dut.y.valid, dut.y.payload)
            if valid:
                out.append((int(y.data), int(y.last)))

    run(dut, tb)
    assert out == [(sum(r), int(i == len(rows) - 1)) for i, r in enumerate(rows)]
