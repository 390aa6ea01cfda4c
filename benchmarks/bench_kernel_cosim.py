"""Issue #13's kernel targets, measured under Verilator: the paper's GEMV through the memory-mapped
kernels (format §11) against an AXI memory with read latency.

    python benchmarks/bench_kernel_cosim.py                  # --mem-latency 120 (L_r = 122)
    python benchmarks/bench_kernel_cosim.py --mem-latency 0 --mem-gap 0.1

What `seedlm-fpga cosim --kernel --paper --mem-latency 120` runs: seedlm-4 and the 16-bit kernel,
2048 x 2048 at W = 512 (64 bytes per cycle), int8, one GEMV from the registers. Printed side by
side with the targets: SeedLM cycles (ap_start to ap_done, the CYCLES register) / the ideal 32,768
weight beats (target <= 1.01; paper 1.048), speedup over the 16-bit kernel (target >= 3.98), every
Y bit-exact; and the kernel cycle model's figures and the simulator's cycles per second.
"""
from __future__ import annotations

import argparse
import sys
import time

from seedlm_fpga.core import paper
from seedlm_fpga.core.engine_shape import COSIM_MAX_COLS, DEFAULT_MEM_LATENCY
from seedlm_fpga.sim.axi_memory import BASE_WRITE_LATENCY
from seedlm_fpga.sim.cycle_model import kernel_models
from seedlm_fpga.sim.kernel_runner import generated_kernel, kernel_case, read_latency, run_kernel_cases
from seedlm_fpga.sim.stimulus import BASELINE, gaussian_case

TARGET_RATIO, TARGET_SPEEDUP = 1.01, 3.98


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mem-latency", type=int, default=120, help="memory read latency N (L_r = N + 2)")
    parser.add_argument("--mem-gap", type=float, default=0.0, help="R pause probability per cycle")
    args = parser.parse_args()
    l_r = read_latency(args.mem_latency)
    sized = max(DEFAULT_MEM_LATENCY, l_r)
    rows, cols, bus = paper.GEMV_ROWS, paper.GEMV_COLS, paper.BUS_BITS
    models = kernel_models(paper.PRESET, bus, 8, mem_latency=sized)
    out = {}
    for kind in (paper.PRESET, BASELINE):
        kernel = generated_kernel(kind, bus, 8, COSIM_MAX_COLS, mem_latency=sized)
        kernel.build()
        case = kernel_case([gaussian_case(kind, rows, cols, 8, seed=0)], descriptors=False)
        t0 = time.perf_counter()
        r = run_kernel_cases(kernel, [case], args.mem_latency, args.mem_gap)[0]
        model = models["fp16" if kind == BASELINE else kind].cycles(cols, [rows], False, l_r, BASE_WRITE_LATENCY,
                                                                   args.mem_gap)
        print(f"  {r.report()}; model {model:,.0f}; {r.sim_cycles / r.sim_wall_s:,.0f} simulated cycles/s "
              f"({time.perf_counter() - t0:.1f} s with start-up)")
        out[kind] = r
    s, b = out[paper.PRESET], out[BASELINE]
    ok = s.ok and b.ok
    ratio = s.cycles / paper.IDEAL_SEEDLM_CYCLES
    speedup = b.cycles / s.cycles
    print(f"GEMV {rows} x {cols}, W = {bus}, memory latency {args.mem_latency} (L_r = {l_r}), gap {args.mem_gap}")
    print(f"  {'':28s} {'measured':>10s}  {'target':>8s}  {'paper':>8s}")
    print(f"  {'SeedLM cycles / 32,768':28s} {ratio:10.4f}  {'<= ' + str(TARGET_RATIO):>8s}  "
          f"{paper.SEEDLM_CYCLES / paper.IDEAL_SEEDLM_CYCLES:8.3f}")
    print(f"  {'speedup over 16-bit kernel':28s} {speedup:10.3f}  {'>= ' + str(TARGET_SPEEDUP):>8s}  "
          f"{paper.FP16_CYCLES / paper.SEEDLM_CYCLES:8.3f}")
    print(f"  {'bit-exact':28s} {str(ok):>10s}  {'True':>8s}")
    met = ok and ratio <= TARGET_RATIO and speedup >= TARGET_SPEEDUP
    print("all targets met" if met else "TARGETS MISSED")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
