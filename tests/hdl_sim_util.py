"""Helpers for the Amaranth-simulator tests of seedlm_fpga.hdl: streams with random stalls.

A stream beat is sent by holding ``valid`` (and the payload) until a clock edge sees
``ready``; random idle cycles before each beat, and random low ``ready`` on receivers,
exercise every valid/ready pattern (format §10: results must not depend on them).
"""
from __future__ import annotations

import random

from amaranth.sim import Simulator


def run(dut, *testbenches, vcd: str | None = None):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for tb in testbenches:
        sim.add_testbench(tb)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()


async def send(ctx, port, payloads, rng: random.Random | None = None, stall: float = 0.0, times=None):
    """Send each payload on stream `port`; `times` (a list) gets each transfer's cycle."""
    cycle = 0
    for payload in payloads:
        while rng is not None and rng.random() < stall:
            ctx.set(port.valid, 0)
            await ctx.tick()
            cycle += 1
        ctx.set(port.payload, payload)
        ctx.set(port.valid, 1)
        while True:
            _, _, ready = await ctx.tick().sample(port.ready)
            cycle += 1
            if ready:
                break
        if times is not None:
            times.append(cycle - 1)
    ctx.set(port.valid, 0)


async def receive(ctx, port, count: int, rng: random.Random | None = None, stall: float = 0.0,
                  times=None, max_cycles: int = 1_000_000) -> list:
    """Receive `count` payloads from stream `port`, ready low with probability `stall`."""
    out = []
    cycle = 0
    while len(out) < count:
        ready = not (rng is not None and rng.random() < stall)
        ctx.set(port.ready, ready)
        _, _, valid, payload = await ctx.tick().sample(port.valid, port.payload)
        cycle += 1
        if valid and ready:
            out.append(payload)
            if times is not None:
                times.append(cycle - 1)
        if cycle > max_cycles:
            raise AssertionError(f"stream stalled: {len(out)} of {count} beats after {cycle} cycles")
    ctx.set(port.ready, 0)
    return out


async def _hold(ctx, port, cycles: int) -> int:
    ctx.set(port.ready, 0)
    for _ in range(cycles):
        await ctx.tick()
    return cycles


def run_gemvs(engine, jobs, rng: random.Random | None = None, stall: float = 0.0, y_hold: int = 0):
    """Drive GEMVs back to back through a `GemvCore` engine.

    jobs: [(cols, act_beats, weight_beats, rows)]. `cols` is set when a job's first act
    beat is offered. ``y.ready`` stays low for the first `y_hold` cycles. Returns
    (per job: (Y list, tlast list), timing) with timing = cycles of the act, weight and
    Y transfers: {"act": [...], "w": [...], "y": [...]} (all jobs).
    """
    timing = {"act": [], "w": [], "y": []}
    ys = []

    async def drive(ctx):
        clock = 0
        for cols, act_beats, weight_beats, _ in jobs:
            ctx.set(engine.cols, cols)
            for port, beats, key in ((engine.act, act_beats, "act"), (engine.w, weight_beats, "w")):
                times = []
                await send(ctx, port, [{"data": b, "last": i == len(beats) - 1} for i, b in enumerate(beats)],
                           rng, stall, times)
                timing[key] += [clock + t for t in times]
                clock += times[-1] + 1

    async def collect(ctx):
        held = await _hold(ctx, engine.y, y_hold)
        times = []
        beats = await receive(ctx, engine.y, sum(job[3] for job in jobs), rng, stall, times)
        timing["y"] = [held + t for t in times]
        ys.extend(beats)

    run(engine, drive, collect)
    results, i = [], 0
    for *_, rows in jobs:
        results.append(([int(b.data) for b in ys[i:i + rows]], [int(b.last) for b in ys[i:i + rows]]))
        i += rows
    return results, timing


def run_gemv(engine, cols: int, act_beats: list[int], weight_beats: list[int], rows: int,
             rng: random.Random | None = None, stall: float = 0.0, y_hold: int = 0):
    """One GEMV: returns (Y list, tlast list, timing); see `run_gemvs`."""
    [(y, last)], timing = run_gemvs(engine, [(cols, act_beats, weight_beats, rows)], rng, stall, y_hold)
    return y, last, timing


def image_beats(image: bytes, bus_bits: int) -> list[int]:
    """Split a format §5.3 memory image (little-endian bytes) into W-bit beats."""
    n = bus_bits // 8
    return [int.from_bytes(image[i:i + n], "little") for i in range(0, len(image), n)]
