"""GemvEngine end to end in Amaranth's simulator, bit-exact against reference.gemv_seedlm."""
import random

import numpy as np
import pytest

from seedlm_fpga.core.reference import (activation_beats, blocks_per_row, gemv_seedlm,
                                              memory_image, packed_memory_image)
from seedlm_fpga.core.engine_shape import DesignConfig
from seedlm_fpga.hdl.gemv_engine import GemvEngine

from hdl_sim_util import image_beats, run, run_gemv, run_gemvs


def problem(cfg: DesignConfig, rows: int, cols: int, seed: int, acts=None, q_fill=None, x_fill=None):
    """Random blocks (or filled ones) and activations -> (Y reference, act beats, weight beats)."""
    p = cfg.preset_obj
    rng = np.random.default_rng(seed)
    nb = blocks_per_row(cols, p.C)
    seeds = rng.integers(1, 1 << p.K, (rows, nb))
    x = np.full((rows, nb), x_fill) if x_fill is not None else rng.integers(0, 16, (rows, nb))
    q = np.full((rows, nb, p.P), q_fill) if q_fill is not None else rng.integers(-8, 8, (rows, nb, p.P))
    lo, hi = -(1 << (cfg.act_bits - 1)), 1 << (cfg.act_bits - 1)
    a = rng.integers(lo, hi, cols) if acts is None else np.asarray(acts)
    y_ref = gemv_seedlm(seeds, x, q, a, p)
    act_beats = activation_beats(a, cfg.act_bits, cfg.seedlm.acts_per_beat)
    write = packed_memory_image if cfg.image == "packed" else memory_image
    w_beats = image_beats(write(seeds, x, q, p, cfg.bus_bits), cfg.bus_bits)
    return [int(v) for v in y_ref], act_beats, w_beats, (seeds, x, q, a)


@pytest.mark.parametrize("preset", ["seedlm-4", "seedlm-3"])
def test_gemv_64x256_exact_and_cycle_exact(preset):
    cfg = DesignConfig(preset=preset, bus_bits=128, act_bits=8, max_cols=256)
    engine = GemvEngine(cfg)
    rows, cols = 64, 256
    y_ref, act_beats, w_beats, _ = problem(cfg, rows, cols, seed=11)
    y, last, t = run_gemv(engine, cols, act_beats, w_beats, rows)
    assert y == y_ref
    assert last == [0] * (rows - 1) + [1]
    # throughput rule: one weight beat per clock, from the cycle after the act tlast
    N, LC = cfg.seedlm.acts_per_beat, cfg.blocks_per_beat * cfg.preset_obj.C
    n_act, R = -(-cols // N), -(-cols // LC)
    assert t["act"] == list(range(n_act))
    assert t["w"] == list(range(n_act, n_act + rows * R))
    # Y[r] valid latency_cycles after its row's last beat; total = the documented formula
    assert t["y"] == [n_act + (r + 1) * R - 1 + engine.latency_cycles for r in range(rows)]
    assert t["y"][-1] + 1 == n_act + rows * R + engine.latency_cycles
    assert engine.latency_cycles == sum(s["cycles"] for s in engine.pipeline_stages())


@pytest.mark.parametrize("preset,bus,act_bits,cols", [
    ("seedlm-4", 128, 8, 77),    # cols not a multiple of C, nor of a beat
    ("seedlm-3", 128, 16, 101),
    ("seedlm-3", 64, 8, 13),     # L = 1, one block and one element
    ("seedlm-4", 96, 16, 40),    # L = 3, N does not fill the bus
    ("seedlm-3", 40, 16, 30),    # narrowest seedlm-3 bus: N = 2, six act beats per word
])
def test_random_stalls_and_ragged_rows(preset, bus, act_bits, cols):
    cfg = DesignConfig(preset=preset, bus_bits=bus, act_bits=act_bits, max_cols=128)
    engine = GemvEngine(cfg)
    rows = 12
    y_ref, act_beats, w_beats, _ = problem(cfg, rows, cols, seed=cols)
    y, last, _ = run_gemv(engine, cols, act_beats, w_beats, rows, rng=random.Random(cols), stall=0.35)
    assert y == y_ref
    assert last == [0] * (rows - 1) + [1]


@pytest.mark.parametrize("preset,bus,act_bits,cols1,cols2", [
    ("seedlm-4", 64, 16, 64, 9),    # N = 4 < C: the last block reaches past the last act beat
    ("seedlm-3", 128, 8, 120, 29),
])
def test_back_to_back_gemvs_and_garbage_past_cols(preset, bus, act_bits, cols1, cols2):
    # The second GEMV is shorter: stale activations of the first must not leak into the
    # padded tail of its last block; junk past cols in the tlast beat is ignored too.
    cfg = DesignConfig(preset=preset, bus_bits=bus, act_bits=act_bits, max_cols=128)
    engine = GemvEngine(cfg)
    y1, a1, w1, _ = problem(cfg, 5, cols1, seed=1)
    y2, a2, w2, _ = problem(cfg, 7, cols2, seed=2)
    N, A = cfg.seedlm.acts_per_beat, cfg.act_bits
    junk = sum(0x5A << (i * A) for i in range(cols2 % N, N))
    a2 = a2[:-1] + [a2[-1] | junk]
    res, _ = run_gemvs(engine, [(cols1, a1, w1, 5), (cols2, a2, w2, 7)], rng=random.Random(5), stall=0.2)
    assert res == [(y1, [0] * 4 + [1]), (y2, [0] * 6 + [1])]


def test_extremes_do_not_overflow():
    # q = -8 everywhere, x = 15, activations at their minimum and maximum with the signs
    # that make |Y| largest, at cols = max_cols (the bound the Y width is sized for).
    cfg = DesignConfig(preset="seedlm-4", bus_bits=64, act_bits=16, max_cols=64)
    engine = GemvEngine(cfg)
    p = cfg.preset_obj
    rng = np.random.default_rng(3)
    seeds = rng.integers(1, 1 << 16, (1, 8))
    from seedlm_fpga.core.reference import block_acc
    acc = block_acc(seeds, np.full((1, 8, p.P), -8), p).reshape(-1)
    amax, amin = (1 << 15) - 1, -(1 << 15)
    jobs, refs = [], []
    for sign in (1, -1):
        acts = np.where(acc * sign > 0, amax, amin)
        for qv in (-8, 7):
            y_ref, ab, wb, _ = problem(cfg, 4, 64, seed=3, acts=acts, q_fill=qv, x_fill=15)
            jobs.append((64, ab, wb, 4))
            refs.append((y_ref, [0, 0, 0, 1]))
    res, _ = run_gemvs(engine, jobs)
    assert res == refs
    assert max(abs(v) for y, _ in refs for v in y) > 1 << (cfg.seedlm.y_bits - 4)


def test_output_blocked_for_long():
    # y.ready low for longer than the whole weight stream: credits stop the weights
    # before the output FIFO could overflow, and nothing is lost.
    cfg = DesignConfig(preset="seedlm-4", bus_bits=64, act_bits=8, max_cols=64)
    engine = GemvEngine(cfg)
    rows = 3 * engine.y_fifo_depth
    y_ref, ab, wb, _ = problem(cfg, rows, 16, seed=9)
    y, _, t = run_gemv(engine, 16, ab, wb, rows, y_hold=rows + 50)
    assert y == y_ref
    assert t["w"][engine.y_fifo_depth - 1] < rows + 50 < t["w"][engine.y_fifo_depth]


@pytest.mark.parametrize("preset", ["seedlm-4", "seedlm-3"])
def test_paper_bus_512_bits_with_stalls(preset):
    # The W = 512 engines (16 lanes / 14 lanes, 128 / 168 MACs per beat), ragged rows.
    cfg = DesignConfig(preset=preset, bus_bits=512, act_bits=8, max_cols=1024)
    engine = GemvEngine(cfg)
    rows, cols = 4, 701
    y_ref, ab, wb, _ = problem(cfg, rows, cols, seed=512)
    y, last, _ = run_gemv(engine, cols, ab, wb, rows, rng=random.Random(512), stall=0.2)
    assert y == y_ref
    assert last == [0] * (rows - 1) + [1]


def test_no_combinational_path_from_ready():
    # Toggling y.ready (or w.valid) within a cycle changes no valid and no other ready:
    # they all come from registers.
    cfg = DesignConfig(preset="seedlm-4", bus_bits=64, act_bits=8, max_cols=64)
    engine = GemvEngine(cfg)
    rows = 2 * engine.y_fifo_depth
    _, ab, wb, _ = problem(cfg, rows, 16, seed=4)
    seen = []

    async def tb(ctx):
        ctx.set(engine.cols, 16)
        for i, beat in enumerate(ab):
            ctx.set(engine.act.payload, {"data": beat, "last": i == len(ab) - 1})
            ctx.set(engine.act.valid, 1)
            await ctx.tick()
        ctx.set(engine.act.valid, 0)
        for cycle in range(len(wb) + 40):
            ctx.set(engine.w.payload, {"data": wb[cycle % len(wb)], "last": 0})
            probes = []
            for y_ready, w_valid in ((0, 0), (1, 0), (0, 1), (1, 1)):
                ctx.set(engine.y.ready, y_ready)
                ctx.set(engine.w.valid, w_valid)
                probes.append((ctx.get(engine.y.valid), ctx.get(engine.w.ready), ctx.get(engine.act.ready)))
            assert len(set(probes)) == 1, (cycle, probes)
            seen.append(probes[0])
            ctx.set(engine.y.ready, cycle % 3 == 0)
            await ctx.tick()

    run(engine, tb)
    assert (1, 1, 0) in seen and (1, 0, 0) in seen  # Y waiting, and weights both taken and refused


# --- the packed image (format §5.4): the block gearbox ------------------------------------------

@pytest.mark.parametrize("preset,bus,act_bits,cols", [
    ("seedlm-3", 64, 8, 4096 // 16),  # the target bus: 2 lanes, r cycles through 9 residues
    ("seedlm-3", 64, 16, 101),
    ("seedlm-4", 64, 16, 77),         # B divides W: the gearbox is the identity
    ("seedlm-4", 40, 8, 50),          # 32-bit blocks on a 40-bit bus: 2 lanes, 4 residues
    ("seedlm-3", 40, 16, 30),         # narrowest seedlm-3 bus
    ("seedlm-3", 200, 8, 127),        # 6 lanes: rotation over 6 banks
    ("seedlm-3", 128, 8, 250),        # N = 16 not a multiple of C = 12: banks written 4 acts at a time
])
def test_packed_image_exact_and_cycle_exact(preset, bus, act_bits, cols):
    cfg = DesignConfig(preset=preset, bus_bits=bus, act_bits=act_bits, max_cols=256, image="packed")
    engine = GemvEngine(cfg)
    p = cfg.preset_obj
    rows = 6
    y_ref, act_beats, w_beats, _ = problem(cfg, rows, cols, seed=cols + bus)
    R = -(-blocks_per_row(cols, p.C) * p.block_bits // bus)
    assert len(w_beats) == rows * R
    y, last, t = run_gemv(engine, cols, act_beats, w_beats, rows)
    assert y == y_ref
    assert last == [0] * (rows - 1) + [1]
    n_act = len(act_beats)
    assert t["w"] == list(range(n_act, n_act + rows * R))  # one beat per clock
    assert t["y"] == [n_act + (r + 1) * R - 1 + engine.latency_cycles for r in range(rows)]
    assert engine.latency_cycles == sum(s["cycles"] for s in engine.pipeline_stages())
    y, last, _ = run_gemv(engine, cols, act_beats, w_beats, rows, rng=random.Random(cols), stall=0.35)
    assert y == y_ref


def test_packed_back_to_back_with_garbage_in_row_tails():
    # Bits past a row's last block (zero by format §5.4) are ignored: set them to ones; the
    # second GEMV is shorter, so its dead lanes meet the first one's stale activations.
    cfg = DesignConfig(preset="seedlm-3", bus_bits=64, act_bits=8, max_cols=128, image="packed")
    engine = GemvEngine(cfg)
    p = cfg.preset_obj
    jobs, refs = [], []
    for rows, cols, seed in ((5, 120, 1), (7, 29, 2), (3, 1, 3)):
        y_ref, ab, wb, _ = problem(cfg, rows, cols, seed=seed)
        R = len(wb) // rows
        used = blocks_per_row(cols, p.C) * p.block_bits - (R - 1) * 64
        junk = ((1 << 64) - 1) ^ ((1 << used) - 1)
        wb = [b | junk if (i + 1) % R == 0 else b for i, b in enumerate(wb)]
        jobs.append((cols, ab, wb, rows))
        refs.append((y_ref, [0] * (rows - 1) + [1]))
    res, _ = run_gemvs(engine, jobs, rng=random.Random(7), stall=0.2)
    assert res == refs


def test_packed_extremes_do_not_overflow():
    cfg = DesignConfig(preset="seedlm-3", bus_bits=64, act_bits=16, max_cols=96, image="packed")
    engine = GemvEngine(cfg)
    jobs, refs = [], []
    for a in ((1 << 15) - 1, -(1 << 15)):
        y_ref, ab, wb, _ = problem(cfg, 3, 96, seed=3, acts=np.full(96, a), q_fill=-8, x_fill=15)
        jobs.append((96, ab, wb, 3))
        refs.append((y_ref, [0, 0, 1]))
    res, _ = run_gemvs(engine, jobs)
    assert res == refs
