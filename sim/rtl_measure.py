"""Measure GEMV cycle counts of the generated RTL under cocotb + Verilator.

Used by benchmarks/rtl_cycles.py (which stores sim/rtl_cycles.json, the figures
`seedlm-fpga project` prints beside the cycle model) and by tests/test_cycle_model.py.
Loads Amaranth, cocotb and Verilator: never imported on the `project` path.

What is counted: cycle 0 is the cycle the first activation beat is accepted, the last is
the one in which the last Y transfers, both ends included: the span of hdl's timing
formula. The testbench (sim/cosim_tb.py) loads the weight stream only after the
activation stream is done, so its first weight beat comes one cycle later than the RTL
could take it; that one testbench cycle is subtracted (`TB_LOAD_CYCLES`) and checked:
without throttling the first weight beat must arrive exactly that one cycle late.

With ``gap`` g the testbench leaves each activation and weight cycle idle with
probability g (the memory's efficiency e = 1 - g); the Y port stays ready.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from ..compressor.reference import (PRESETS, activation_beats, baseline_image, gemv_baseline, gemv_seedlm,
                                    memory_image)

#: The testbench presents the first weight beat the cycle after it sees the activations done.
TB_LOAD_CYCLES = 1


def _design(engine: str, preset: str, bus_bits: int, act_bits: int, max_cols: int, workdir: Path):
    from seedlm_fpga.hdl.generate import BASELINE_TOP, SEEDLM_TOP, DesignConfig, generate
    from seedlm_fpga.sim.cosim_build import build

    cfg = DesignConfig(preset=preset, bus_bits=bus_bits, act_bits=act_bits, max_cols=max_cols)
    out = workdir / f"{preset}-{bus_bits}-{act_bits}-{max_cols}"
    design = generate(cfg, out)
    top = SEEDLM_TOP if engine == "seedlm" else BASELINE_TOP
    info = design if engine == "seedlm" else design["baseline"]
    return build([out / f"{top}.v"], top), info


def _case(engine: str, preset: str, rows: int, cols: int, bus_bits: int, act_bits: int, acts_per_beat: int,
          rng: np.random.Generator, index: int):
    amax = 1 << (act_bits - 1)
    acts = rng.integers(-amax, amax, cols)
    if engine == "seedlm":
        p = PRESETS[preset]
        nb = -(-cols // p.C)
        seeds = rng.integers(1, 1 << p.K, (rows, nb))
        x = rng.integers(0, 16, (rows, nb))
        q = rng.integers(-8, 8, (rows, nb, p.P))
        image = memory_image(seeds, x, q, p, bus_bits)
        expected = gemv_seedlm(seeds, x, q, acts, p)
    else:
        w = rng.integers(-(1 << 15), 1 << 15, (rows, cols))
        image = baseline_image(w, bus_bits)
        expected = gemv_baseline(w, acts)
    name = f"w{index}.bin"
    beats = activation_beats(acts, act_bits, acts_per_beat)
    n_weight = len(image) // (bus_bits // 8)
    case = {"cols": cols, "rows": rows, "act_beats": [format(b, "x") for b in beats], "weights_file": name,
            "max_cycles": 4 * (len(beats) + n_weight) + 1000}
    return case, name, image, [str(int(v)) for v in expected]


def measure(engine: str, shapes, bus_bits: int, act_bits: int = 8, preset: str = "seedlm-4", gap: float = 0.0,
            seed: int = 0, max_cols: int | None = None, workdir: str | Path | None = None) -> list[dict]:
    """Verilator cycles of each (rows, cols) in `shapes`, one simulation run for them all.

    Every result also carries the phases the testbench saw, and `y_ok` (Y equals the numpy
    reference bit for bit), so a cycle count never comes from a wrong answer.
    """
    from seedlm_fpga.sim.cosim_build import simulate

    shapes = [(int(r), int(c)) for r, c in shapes]
    max_cols = max_cols or max(c for _, c in shapes)
    with tempfile.TemporaryDirectory(prefix="seedlm-rtl-cycles-") as tmp:
        work = Path(workdir) if workdir else Path(tmp)
        sim, info = _design(engine, preset, bus_bits, act_bits, max_cols, work)
        rng = np.random.default_rng(seed)
        cases, files, expected = [], {}, []
        for i, (rows, cols) in enumerate(shapes):
            case, name, image, y = _case(engine, preset, rows, cols, bus_bits, act_bits,
                                         info["acts_per_beat"], rng, i)
            cases.append(case)
            files[name] = image
            expected.append(y)
        stim = {"bus_bits": bus_bits, "gap": gap, "ready_gap": 0.0, "seed": seed, "drain_cycles": 8,
                "cases": cases}
        result = simulate(sim, stim, files)
    out = []
    for (rows, cols), res, y in zip(shapes, result["cases"], expected):
        if res["timeout"] or res["errors"]:
            raise RuntimeError(f"{engine} {rows}x{cols} at W={bus_bits}: {res['errors']}")
        span = res["last_y_cycle"] - res["first_act_cycle"] + 1
        out.append({
            "engine": engine, "preset": preset if engine == "seedlm" else None, "rows": rows, "cols": cols,
            "bus_bits": bus_bits, "act_bits": act_bits, "max_cols": max_cols, "gap": gap, "seed": seed,
            "rtl_cycles": span - TB_LOAD_CYCLES,
            "act_beats": res["act_accepted"], "weight_beats": res["w_accepted"],
            "first_weight_after_act": res["first_w_cycle"] - res["first_act_cycle"],
            "weight_cycles": res["last_w_cycle"] - res["first_w_cycle"] + 1,
            "drain_cycles": res["last_y_cycle"] - res["last_w_cycle"],
            "latency_cycles": info["latency_cycles"],
            "y_ok": res["y"][:rows] == y and len(res["y"]) == rows,
        })
    return out
