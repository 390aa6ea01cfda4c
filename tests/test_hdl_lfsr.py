"""The hardware LFSR against the numpy reference (compressor.lfsr) and the format §2 vectors."""
import random

import pytest

from seedlm_fpga.core.lfsr import TAPS, lfsr_cycle, lfsr_states
from seedlm_fpga.hdl.lfsr import LFSR, LFSRBank, sequence_masks

from hdl_sim_util import run


def drive_lfsr(dut: LFSR, seeds: list[int]) -> list[list[int]]:
    """A new seed every cycle; returns the M states that came out for each seed."""
    out = []

    async def tb(ctx):
        for i in range(len(seeds) + dut.latency):
            if i < len(seeds):
                ctx.set(dut.seed.payload, seeds[i])
            ctx.set(dut.seed.valid, i < len(seeds))
            _, _, valid, states = await ctx.tick().sample(dut.states.valid, dut.states.payload)
            if i >= dut.latency:
                assert valid
                out.append([int(s) for s in states])

    run(dut, tb)
    return out


def test_whole_period_k16_seed_reload_every_cycle():
    # seedlm-4's decoder LFSR: C*P = 24 states per cycle. Seed n is the state 24*n steps
    # after state 1, so the outputs tile the whole 65,535-state period (and wrap around).
    dut = LFSR(16, TAPS[16], M=24)
    cycle, _ = lfsr_cycle(16, TAPS[16])
    period = len(cycle)
    assert period == 65535
    starts = list(range(0, period, 24))
    got = drive_lfsr(dut, [int(cycle[s]) for s in starts])
    for start, states in zip(starts, got):
        assert states == [int(cycle[(start + i) % period]) for i in range(1, 25)], start
    assert {s for states in got for s in states} == set(int(v) for v in cycle)


def test_spec_vectors():
    dut = LFSR(16, M=8)
    assert drive_lfsr(dut, [1]) == [[32768, 16384, 8192, 4096, 34816, 17408, 8704, 4352]]
    # the paper's worked example: K=3, taps (0, 1), seed 4, C=4, P=2, row by row
    dut = LFSR(3, (0, 1), M=8)
    assert drive_lfsr(dut, [4]) == [[2, 5, 6, 7, 3, 1, 4, 2]]
    dut = LFSR(16, M=24)
    assert drive_lfsr(dut, [0xACE1]) == [[54896, 60216, 62876, 31438, 48487, 57011, 61273, 30636, 15318,
                                          7659, 3829, 34682, 17341, 8670, 4335, 2167, 1083, 33309,
                                          16654, 8327, 4163, 34849, 50192, 25096]]


@pytest.mark.parametrize("K", [2, 5, 8, 12, 19, 24])
def test_other_register_lengths(K):
    rng = random.Random(K)
    M = 3 * K + 1  # more states than register bits: every bit comes from feedback
    dut = LFSR(K, TAPS[K], M)
    seeds = [rng.randrange(1, 1 << K) for _ in range(20)] + [1, (1 << K) - 1]
    got = drive_lfsr(dut, seeds)
    assert got == [dut.reference(s) for s in seeds]
    assert got == [[int(v) for v in lfsr_states(s, M, K)] for s in seeds]


def test_masks_are_the_gf2_map():
    # bit k of state i is the XOR of the seed bits in mask z_(i+k): check on one-hot seeds
    K, taps, M = 16, TAPS[16], 40
    masks = sequence_masks(K, taps, M)
    for j in range(K):
        states = lfsr_states(1 << j, M, K)
        for i in range(1, M + 1):
            for k in range(K):
                assert (int(states[i - 1]) >> k) & 1 == (masks[i + k] >> j) & 1


def test_bank_lanes_are_independent():
    rng = random.Random(7)
    dut = LFSRBank(L=4, K=16, M=12)
    batches = [[rng.randrange(1, 1 << 16) for _ in range(4)] for _ in range(30)]
    out = []

    async def tb(ctx):
        for i in range(len(batches) + 1):
            if i < len(batches):
                ctx.set(dut.seeds.payload, batches[i])
            ctx.set(dut.seeds.valid, i < len(batches))
            _, _, valid, states = await ctx.tick().sample(dut.states.valid, dut.states.payload)
            if i >= 1:
                assert valid
                out.append([[int(s) for s in lane] for lane in states])

    run(dut, tb)
    assert out == [dut.reference(b) for b in batches]
