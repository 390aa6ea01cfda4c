"""Measure GEMV cycle counts of the generated RTL under cocotb + Verilator (sim.cosim_runner).

Used by benchmarks/rtl_cycles.py (which stores sim/rtl_cycles.json, the figures
`seedlm-fpga project` prints beside the cycle model) and by tests/test_cycle_model.py.
Loads Amaranth, cocotb and Verilator: never imported on the `project` path.

Cycles are the co-simulation's: from the cycle the first activation beat is accepted to
the cycle of the last Y transfer, both included (hdl's timing formula counts the same
span). With ``gap`` g the testbench leaves each activation and weight cycle idle with
probability g (memory efficiency e = 1 - g); the Y port stays ready. Every count comes
from a bit-exact run: a wrong Y raises instead of returning a cycle count.
"""
from __future__ import annotations


def measure(engine: str, shapes, bus_bits: int, act_bits: int = 8, preset: str = "seedlm-4", gap: float = 0.0,
            seed: int = 0, max_cols: int | None = None, image: str = "beat") -> list[dict]:
    """Verilator cycles of each (rows, cols) in `shapes` on one engine, in one simulator run.

    Raises RuntimeError (with the co-simulation's report) if any Y differs from the reference.
    """
    from seedlm_fpga.sim.cosim_runner import COSIM_MAX_COLS, generated_engine, run_cases
    from seedlm_fpga.sim.stimulus import random_case

    kind = preset if engine == "seedlm" else "baseline"
    shapes = [(int(r), int(c)) for r, c in shapes]
    max_cols = max_cols or max(COSIM_MAX_COLS, *(c for _, c in shapes))
    eng = generated_engine(kind, bus_bits, act_bits, max_cols, image)
    cases = [random_case(kind, rows, cols, act_bits, seed + i) for i, (rows, cols) in enumerate(shapes)]
    results = run_cases(eng, cases, gap=gap, ready_gap=0.0, seed=seed)
    out = []
    for (rows, cols), res in zip(shapes, results):
        if not res.ok:
            raise RuntimeError(res.report())
        out.append({
            "engine": engine, "preset": preset if engine == "seedlm" else None, "rows": rows, "cols": cols,
            "bus_bits": bus_bits, "act_bits": act_bits, "max_cols": max_cols, "gap": gap, "seed": seed,
            "rtl_cycles": res.cycles, "act_beats": res.act_beats, "weight_beats": res.weight_beats,
            "latency_cycles": eng.latency_cycles,
            **({"image": image} if engine == "seedlm" and image != "beat" else {}),
        })
    return out
