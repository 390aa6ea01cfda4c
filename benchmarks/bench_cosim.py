"""Measured RTL cycles of the paper's GEMV experiment (format §8), and simulator speed.

Runs the generated Verilog under cocotb + Verilator (bit-exact against the numpy
reference) and prints cycles, speedups and their targets:

- seedlm-4 vs the 16-bit baseline, the paper's 2048 x 2048 at W = 512 (64 bytes per
  cycle), no stalls: SeedLM <= 32,900 cycles and >= 3.99x (the paper's figures and the
  ideal, from seedlm_fpga.core.paper, are printed beside them);
- seedlm-3 vs the baseline, 4096 x 4096 at W = 512: >= 5.1x (14 blocks of 36 bits per
  beat, each row on a fresh beat: 25 beats per row against the baseline's 128, 5.12x
  before activation load and drain; 16/3 = 5.33x is the bound without beat padding);
- simulated cycles per second of each run.

    python benchmarks/bench_cosim.py            # both experiments
    python benchmarks/bench_cosim.py --quick    # the 2048 x 2048 one only
"""
from __future__ import annotations

import argparse
import time

from seedlm_fpga.core import paper
from seedlm_fpga.core.engine_shape import COSIM_MAX_COLS
from seedlm_fpga.sim.cosim_runner import generated_engine, run_cases
from seedlm_fpga.sim.stimulus import BASELINE, gaussian_case

BUS = paper.BUS_BITS


def run_pair(preset: str, rows: int, cols: int):
    out = {}
    for kind in (preset, BASELINE):
        t0 = time.perf_counter()
        engine = generated_engine(kind, BUS, 8, COSIM_MAX_COLS)
        t1 = time.perf_counter()
        sim = engine.build()
        t2 = time.perf_counter()
        case = gaussian_case(kind, rows, cols, 8, seed=0)
        r = run_cases(engine, [case])[0]
        rate = r.sim_cycles / r.sim_wall_s if r.sim_wall_s else float("nan")
        print(f"  {r.report()}")
        print(f"    generate {t1 - t0:.1f} s, Verilator build {t2 - t1:.1f} s"
              f"{' (cached)' if sim.cached else ''}; simulated {r.sim_cycles:,} cycles "
              f"in {r.sim_wall_s:.1f} s: {rate:,.0f} cycles/s")
        out[kind] = r
    return out[preset], out[BASELINE]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 4096 x 4096 seedlm-3 run")
    args = parser.parse_args()
    ok = True

    print(f"format §8: GEMV {paper.GEMV_ROWS} x {paper.GEMV_COLS}, W = {BUS} bits ({BUS // 8} B/cycle), A = 8, no stalls")
    s, b = run_pair(paper.PRESET, paper.GEMV_ROWS, paper.GEMV_COLS)
    speedup = b.cycles / s.cycles
    ideal = paper.IDEAL_FP16_CYCLES / paper.IDEAL_SEEDLM_CYCLES
    print(f"  {paper.PRESET} {s.cycles:,} cycles (target <= 32,900; paper {paper.SEEDLM_CYCLES:,}; "
          f"ideal {paper.IDEAL_SEEDLM_CYCLES:,})")
    print(f"  baseline {b.cycles:,} cycles (paper FP16 {paper.FP16_CYCLES:,}; ideal {paper.IDEAL_FP16_CYCLES:,})")
    print(f"  speedup {speedup:.3f}x (target >= 3.99x; paper {paper.SPEEDUP:.2f}x; ideal {ideal:.2f}x)")
    ok &= s.ok and b.ok and s.cycles <= 32900 and speedup >= 3.99

    if not args.quick:
        print("seedlm-3: GEMV 4096 x 4096, W = 512 bits, A = 8, no stalls")
        s, b = run_pair("seedlm-3", 4096, 4096)
        speedup = b.cycles / s.cycles
        print(f"  seedlm-3 {s.cycles:,} cycles, baseline {b.cycles:,} cycles")
        print(f"  speedup {speedup:.3f}x (target >= 5.1x; 16/3 = 5.33x without beat padding)")
        ok &= s.ok and b.ok and speedup >= 5.1
    print("all targets met" if ok else "TARGET MISSED or not bit-exact")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
