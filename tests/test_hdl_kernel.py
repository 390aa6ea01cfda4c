"""GemvKernel (format §11) end to end in Amaranth's simulator, against a Python AXI memory.

Y is compared bit for bit with the numpy reference (gemv_seedlm / gemv_baseline); CYCLES with
`core.engine_shape.kernel_cycles` for an unpaused memory.
"""
import random

import numpy as np
import pytest

from seedlm_fpga.core.engine_shape import KERNEL_REGISTERS as REG, DesignConfig, kernel_cycles_for
from seedlm_fpga.core.reference import (activation_beats, baseline_image, blocks_per_row, gemv_baseline,
                                        gemv_seedlm, memory_image, packed_memory_image)
from seedlm_fpga.hdl.kernel import GemvKernel

from kernel_sim_util import AxiMemory, simulate



def gemv_problem(cfg: DesignConfig, kind: str, rows: int, cols: int, rng) -> tuple[list[int], bytes]:
    """Random weights of one GEMV for `acts` later: returns (maker of Y given acts, weight image)."""
    p = cfg.preset_obj
    if kind == "baseline":
        w = rng.integers(-(1 << 15), 1 << 15, (rows, cols))
        return (lambda a: gemv_baseline(w, a)), baseline_image(w, cfg.bus_bits)
    nb = blocks_per_row(cols, p.C)
    seeds = rng.integers(1, 1 << p.K, (rows, nb))
    x = rng.integers(0, 16, (rows, nb))
    q = rng.integers(-8, 8, (rows, nb, p.P))
    write = packed_memory_image if cfg.image == "packed" else memory_image
    return (lambda a: gemv_seedlm(seeds, x, q, a, p)), write(seeds, x, q, p, cfg.bus_bits)


def activation_image(cfg: DesignConfig, kind: str, acts, rng) -> bytes:
    """Format §11.3: word k holds activation beat k in its low N*A bits; the rest is junk here."""
    shape = cfg.seedlm if kind == "seedlm" else cfg.baseline
    used = shape.acts_per_beat * shape.act_bits
    out = b""
    for beat in activation_beats(acts, cfg.act_bits, shape.acts_per_beat):
        junk = int(rng.integers(0, 1 << 62)) << used
        out += ((beat | junk) & ((1 << cfg.bus_bits) - 1)).to_bytes(cfg.bus_bits // 8, "little")
    return out


def run_kernel(cfg, kind, gemv_rows, cols, descriptors: bool, seed=0, read_latency=0, write_latency=0,
               r_pause=0.0, ready_stall=0.0, b_pause=0.0, mem_latency=32, max_burst=8):
    """One start: returns (Y per GEMV, Y reference per GEMV, CYCLES, memory)."""
    rng = np.random.default_rng(seed)
    kernel = GemvKernel(cfg, kind, mem_latency=mem_latency, max_burst=max_burst, max_descriptors=4)
    mem = AxiMemory(1 << 20, read_latency, write_latency, r_pause, ready_stall, b_pause, max_burst, seed)
    lo, hi = -(1 << (cfg.act_bits - 1)), 1 << (cfg.act_bits - 1)
    acts = rng.integers(lo, hi, cols)
    wb = cfg.bus_bits // 8
    acts_at = 0x1000 - 2 * wb                       # the activation image crosses a 4 KB edge
    mem.put(acts_at, activation_image(cfg, kind, acts, rng))
    images, at = [], 0x3000 - 3 * wb
    for rows in gemv_rows:
        y_of, image = gemv_problem(cfg, kind, rows, cols, rng)
        mem.put(at, image)
        images.append((at, rows, y_of(acts)))
        at += -(-(len(image) + 5 * wb) // wb) * wb
    gemvs, y_at = [], (at // 4096 + 2) * 4096 - 16    # Y: past the images, from 16 bytes before an edge
    for w_at, rows, ref in images:
        gemvs.append((w_at, y_at, rows, ref))
        y_at += 8 * rows + 24
    table = 0x2000 - 32                              # the descriptor list crosses a 4 KB edge
    for i, (w_at, y_to, rows, _) in enumerate(gemvs):
        mem.put(table + 32 * i, w_at.to_bytes(8, "little") + y_to.to_bytes(8, "little") + rows.to_bytes(4, "little")
                + bytes(12))
    result = {}

    async def program(ctx, host):
        await host.write64(ctx, REG["ACTS"], acts_at)
        await host.write(ctx, REG["COLS"], cols)
        if descriptors:
            await host.write64(ctx, REG["DESCRIPTORS"], table)
            await host.write(ctx, REG["N_DESCRIPTORS"], len(gemvs))
        else:
            (w_at, y_to, rows, _), = gemvs
            await host.write64(ctx, REG["WEIGHTS"], w_at)
            await host.write64(ctx, REG["Y"], y_to)
            await host.write(ctx, REG["ROWS"], rows)
        result["cycles"] = await host.start_and_wait(ctx)

    simulate(kernel, mem, program)
    ys = [[int.from_bytes(mem.data[y_to + 8 * r:y_to + 8 * r + 8], "little", signed=True) for r in range(rows)]
          for _, y_to, rows, _ in gemvs]
    refs = [[int(v) for v in ref] for *_, ref in gemvs]
    return ys, refs, result["cycles"], mem


CASES = [  # kind, preset, image, act bits, cols, GEMV rows, descriptors
    ("seedlm", "seedlm-4", "beat", 8, 40, [5], False),
    ("seedlm", "seedlm-3", "beat", 16, 29, [4, 1, 3], True),
    ("seedlm", "seedlm-3", "packed", 8, 61, [3], True),
    ("seedlm", "seedlm-4", "packed", 8, 57, [2, 6, 1, 3], True),   # max_descriptors GEMVs
    ("baseline", "seedlm-4", "beat", 8, 23, [6], False),
    ("baseline", "seedlm-4", "beat", 16, 9, [3, 2, 4], True),
]


@pytest.mark.parametrize("latency", [0, 30])
@pytest.mark.parametrize("kind,preset,image,act_bits,cols,gemv_rows,descriptors", CASES)
def test_exact_y_and_cycles(kind, preset, image, act_bits, cols, gemv_rows, descriptors, latency):
    cfg = DesignConfig(preset=preset, bus_bits=64, act_bits=act_bits, max_cols=64, image=image)
    write_latency = latency // 3
    ys, refs, cycles, mem = run_kernel(cfg, kind, gemv_rows, cols, descriptors, seed=cols + latency,
                                       read_latency=latency, write_latency=write_latency)
    assert ys == refs
    assert cycles == kernel_cycles_for(cfg, kind, cols, gemv_rows, descriptors, latency, write_latency)
    # the list starts 4 words before a 4 KB edge
    assert mem.bursts["io_ar"][:1] == ([(0x2000 - 32, 4)] if descriptors else [])
    assert sum(n for _, n in mem.bursts["io_ar"]) == (4 * len(gemv_rows) if descriptors else 0)
    assert mem.bursts["gmem_ar"][0] == (0x1000 - 16, 2)   # acts: two beats up to the 4 KB edge first


@pytest.mark.parametrize("seed", range(4))
def test_random_pauses_and_ready(seed):
    r = random.Random(seed)
    kind = r.choice(["seedlm", "baseline"])
    cfg = DesignConfig(preset=r.choice(["seedlm-4", "seedlm-3"]), bus_bits=r.choice([64, 128]), act_bits=8,
                       max_cols=64, image=r.choice(["beat", "packed"]))
    rows = [r.randint(1, 7) for _ in range(r.randint(1, 3))]
    cols = r.randint(1, 64)
    latency = r.randint(0, 40)
    ys, refs, cycles, _ = run_kernel(cfg, kind, rows, cols, len(rows) > 1 or seed % 2 == 0, seed=seed,
                                     read_latency=latency, write_latency=r.randint(0, 9), r_pause=0.3,
                                     ready_stall=0.3, b_pause=0.3)
    assert ys == refs
    assert cycles > kernel_cycles_for(cfg, kind, cols, rows, len(rows) > 1 or seed % 2 == 0, latency, 0)


@pytest.mark.parametrize("max_burst", [1, 2, 5])
def test_one_beat_per_clock_at_the_sized_latency(max_burst):
    # read latency = mem_latency: the read buffer's credits must keep the stream gapless
    cfg = DesignConfig(preset="seedlm-4", bus_bits=64, act_bits=8, max_cols=64)
    ys, refs, cycles, _ = run_kernel(cfg, "seedlm", [7, 5], 64, True, read_latency=12, write_latency=3,
                                     mem_latency=12, max_burst=max_burst)
    assert ys == refs
    assert cycles == kernel_cycles_for(cfg, "seedlm", 64, [7, 5], True, 12, 3)


def test_latency_beyond_what_the_kernel_is_sized_for():
    # a memory slower than mem_latency: the read stream has gaps, Y stays exact
    cfg = DesignConfig(preset="seedlm-4", bus_bits=64, act_bits=8, max_cols=64)
    ys, refs, cycles, _ = run_kernel(cfg, "seedlm", [9], 64, False, read_latency=40, mem_latency=0)
    assert ys == refs
    assert cycles > kernel_cycles_for(cfg, "seedlm", 64, [9], False, 40, 0)


def test_rejects_what_format_11_does_not_allow():
    with pytest.raises(ValueError, match="power of two"):
        GemvKernel(DesignConfig(bus_bits=96, max_cols=64))
    with pytest.raises(ValueError, match="max burst"):
        GemvKernel(DesignConfig(bus_bits=512, max_cols=64), max_burst=65)
    with pytest.raises(ValueError, match="64-bit Y"):
        GemvKernel(DesignConfig(bus_bits=64, act_bits=16))
    with pytest.raises(ValueError, match="kind"):
        GemvKernel(DesignConfig(bus_bits=64, max_cols=64), kind="fp16")


@pytest.mark.parametrize("preset,bus,image", [("seedlm-4", 64, "beat"), ("seedlm-3", 512, "beat"),
                                              ("seedlm-3", 64, "packed"), ("seedlm-4", 96, "packed")])
def test_row_beats_steps_are_the_engine_rule(preset, bus, image):
    # the kernel builds R from EngineShape.row_beats_ops; they must give format §10 item 3's R
    from seedlm_fpga.core.engine_shape import seedlm_beats_per_row
    cfg = DesignConfig(preset=preset, bus_bits=bus, image=image)
    p = cfg.preset_obj
    for cols in range(1, 3000):
        assert cfg.seedlm.row_beats(cols) == seedlm_beats_per_row(cols, bus, p.block_bits, p.C, image)
        assert cfg.baseline.row_beats(cols) == -(-cols // (bus // 16))
