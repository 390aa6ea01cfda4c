"""DotUnit and RowAccumulator against exact integer references, extremes included."""
import random

import pytest

from seedlm_fpga.core.reference import PRESETS
from seedlm_fpga.hdl.block_decoder import acc_bits
from seedlm_fpga.hdl.dot_unit import DotUnit, RowAccumulator
from seedlm_fpga.core.engine_shape import tree_stages

from hdl_sim_util import run


def run_dot(dut: DotUnit, beats):
    """beats: [(acc[L][C], x[L], acts[L*C])], one per cycle; returns the sums in order."""
    out = []

    async def tb(ctx):
        for i in range(len(beats) + dut.latency):
            if i < len(beats):
                acc, x, acts = beats[i]
                ctx.set(dut.beat.payload, {
                    "blocks": [{"acc": acc[lane], "x": x[lane]} for lane in range(dut.L)],
                    "acts": acts,
                })
            ctx.set(dut.beat.valid, i < len(beats))
            _, _, valid, total = await ctx.tick().sample(dut.sum.valid, dut.sum.payload)
            if valid:
                out.append(int(total))

    run(dut, tb)
    return out


@pytest.mark.parametrize("name,L,A", [("seedlm-4", 4, 8), ("seedlm-3", 3, 16), ("seedlm-4", 1, 8),
                                      ("seedlm-3", 5, 8)])
def test_random_and_extreme_beats(name, L, A):
    p = PRESETS[name]
    C = p.C
    rng = random.Random(L * A)
    amax, amin = (1 << (A - 1)) - 1, -(1 << (A - 1))
    accmax, accmin = (1 << (acc_bits(p) - 1)) - 1, -(1 << (acc_bits(p) - 1))
    beats = []
    for _ in range(40):
        beats.append(([[rng.randint(accmin, accmax) for _ in range(C)] for _ in range(L)],
                      [rng.randint(0, 15) for _ in range(L)],
                      [rng.randint(amin, amax) for _ in range(L * C)]))
    # extremes: every product at its largest magnitude, both signs, x = 15
    for acc_v, a_v in ((accmin, amin), (accmin, amax), (accmax, amin), (accmax, amax)):
        beats.append(([[acc_v] * C] * L, [15] * L, [a_v] * (L * C)))
    beats.append(([[0] * C] * L, [0] * L, [0] * (L * C)))
    dut = DotUnit(p, L, A)
    assert dut.latency == 1 + tree_stages(C) + 1 + tree_stages(L)
    got = run_dot(dut, beats)
    assert got == [DotUnit.reference(acc, x, acts) for acc, x, acts in beats]
    assert got[-5] == L * C * accmin * amin << 15  # the largest positive beat sum


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
