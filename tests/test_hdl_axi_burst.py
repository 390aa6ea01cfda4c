"""BurstIssuer (format §11.1 burst rule) and the kernel's constant dividers."""
import random

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from seedlm_fpga.hdl.axi_burst import BurstIssuer
from seedlm_fpga.hdl.kernel import ceil_div_const


def split_model(addr: int, beats: int, bytes_per_beat: int, max_burst: int) -> list[tuple[int, int]]:
    """Format §11.1: INCR bursts of at most max_burst beats, none crossing a 4 KB boundary."""
    out = []
    while beats:
        n = min(beats, max_burst, (4096 - addr % 4096) // bytes_per_beat)
        out.append((addr, n))
        addr += n * bytes_per_beat
        beats -= n
    return out


def issue(jobs, bytes_per_beat, max_burst, ready_stall=0.0, seed=0):
    """Run jobs through a BurstIssuer; return (bursts, cycles with a valid burst waiting)."""
    dut = BurstIssuer(bytes_per_beat, max_burst, count_bits=16)
    rng = random.Random(seed)
    bursts, valid_cycles = [], []

    async def feed(ctx):
        ctx.set(dut.allow, 1)
        for addr, beats in jobs:
            ctx.set(dut.job.payload.addr, addr)
            ctx.set(dut.job.payload.beats, beats)
            ctx.set(dut.job.valid, 1)
            while not (await ctx.tick().sample(dut.job.ready))[2]:
                pass
        ctx.set(dut.job.valid, 0)

    async def take(ctx):
        total, cycle = sum(b for _, b in jobs), 0
        while sum(n for _, n in bursts) < total:
            ready = rng.random() >= ready_stall
            ctx.set(dut.ready, ready)
            _, _, valid, addr, length = await ctx.tick().sample(dut.valid, dut.addr, dut.len)
            if valid:
                valid_cycles.append(cycle)
                if ready:
                    bursts.append((addr, length + 1))
            cycle += 1
            assert cycle < 10_000

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(feed, background=True)
    sim.add_testbench(take)
    sim.run()
    return bursts, valid_cycles


@pytest.mark.parametrize("bytes_per_beat,max_burst", [(8, 16), (64, 64), (16, 7), (128, 1)])
def test_bursts_follow_the_rule(bytes_per_beat, max_burst):
    rng = random.Random(bytes_per_beat + max_burst)
    jobs = []
    for length in list(range(1, 12)) + [max_burst, max_burst + 1, 3 * max_burst + 2]:
        # starts just before a 4 KB edge, on it, and anywhere
        edge = rng.randrange(1, 64) * 4096
        for start in (edge - bytes_per_beat * rng.randrange(1, 6), edge, rng.randrange(0, 1 << 20)):
            jobs.append((start - start % bytes_per_beat, length))
    expected = [b for addr, beats in jobs for b in split_model(addr, beats, bytes_per_beat, max_burst)]
    bursts, valid_cycles = issue(jobs, bytes_per_beat, max_burst, ready_stall=0.3, seed=max_burst)
    assert bursts == expected


@pytest.mark.parametrize("bytes_per_beat,max_burst", [(8, 64), (64, 64)])
def test_long_jobs_carry_into_the_high_address_bits(bytes_per_beat, max_burst):
    # the issuer keeps the job's page and counts pages crossed: jobs over many pages whose
    # page number carries across bit 32 and bit 63
    beats = 5 * 4096 // bytes_per_beat + 3
    jobs = [((1 << 32) - 2 * 4096 - bytes_per_beat, beats), ((1 << 63) - 4096 + 8 * bytes_per_beat, beats),
            ((1 << 44) - 3 * 4096, beats)]
    expected = [b for addr, n in jobs for b in split_model(addr, n, bytes_per_beat, max_burst)]
    assert issue(jobs, bytes_per_beat, max_burst, ready_stall=0.2, seed=1)[0] == expected


def test_one_burst_per_cycle_across_jobs():
    jobs = [(0x1000 - 8, 3), (0x2000, 1), (0x3000, 1), (0x4000, 20)]
    bursts, valid_cycles = issue(jobs, 8, 4)
    assert bursts == [(0xFF8, 1), (0x1000, 2), (0x2000, 1), (0x3000, 1)] + [(0x4000 + 32 * i, 4) for i in range(5)]
    assert valid_cycles == list(range(valid_cycles[0], valid_cycles[0] + len(bursts)))


@pytest.mark.parametrize("divisor", [1, 3, 7, 8, 12, 56, 168, 1000])
def test_ceil_div_const(divisor):
    bits = 21
    value = Signal(bits)
    m = Module()
    out = Signal(bits + 1)
    m.d.comb += out.eq(ceil_div_const(value, divisor, bits))
    rng = random.Random(divisor)
    values = list(range(0, 3 * divisor + 3)) + [(1 << bits) - 1 - i for i in range(3 * divisor)]
    values += [rng.randrange(1 << bits) for _ in range(300)]
    values += [v for k in (1000, 5000) for v in (k * divisor - 1, k * divisor, k * divisor + 1) if v < 1 << bits]
    got = []

    async def tb(ctx):
        for v in values:
            ctx.set(value, v)
            got.append(ctx.get(out))

    sim = Simulator(m)
    sim.add_testbench(tb)
    sim.run()
    assert got == [-(-v // divisor) for v in values]
