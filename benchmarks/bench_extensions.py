"""What outliers and low-rank parts cost the §11 kernel: the paper's GEMV shape and Llama rows.

For seedlm-4 at W = 512 (the paper's U280 engine), each shape is run plain and with 0.5% / 1%
outliers, rank 1 / 2 / 4 and both, and prints format §11.4's exact CYCLES (the extension unit reads
its stream on m_axi_io beside the weights, a word per cycle; a row's Y waits for its sum), the
overhead over the plain GEMV, and the stream's bytes beside the image's. With --verilator the
2048 x 2048 GEMV with 0.5% outliers and rank 1 also runs on the Verilated kernel, and its measured
CYCLES is printed beside the formula (a few minutes: one W = 512 build).

    python benchmarks/bench_extensions.py [--verilator]
"""
from __future__ import annotations

import argparse
import dataclasses
import sys

import numpy as np

from seedlm_fpga.core.engine_shape import DesignConfig, kernel_cycles_for
from seedlm_fpga.core.ext_stream import ext_words, stream_timing
from seedlm_fpga.sim import stimulus as stim

W, PRESET, L_R, L_W = 512, "seedlm-4", 120, 0
SHAPES = [(2048, 2048), (4096, 4096), (1792, 8192), (28672 // 32, 8192)]  # the paper's; Llama-8B/70B rows per engine
PARTS = [("0.5% outliers", 0.005, 0), ("1% outliers", 0.01, 0), ("rank 1", 0, 1), ("rank 2", 0, 2),
         ("rank 4", 0, 4), ("0.5% + rank 1", 0.005, 1)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--verilator", action="store_true", help="also run one GEMV on the Verilated kernel")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"{PRESET}, W = {W}, L_r = {L_R}: format §11.4 CYCLES of one GEMV (one descriptor)")
    print(f"{'rows x cols':>12}  {'parts':<14} {'cycles':>9} {'overhead':>9} {'stream/image':>13}")
    for rows, cols in SHAPES:
        cfg = DesignConfig(preset=PRESET, bus_bits=W, act_bits=8, max_cols=cols)
        plain = kernel_cycles_for(cfg, "seedlm", cols, [rows], True, L_R, L_W)
        image = rows * cfg.seedlm.row_beats(cols) * W // 8
        print(f"{rows:>5} x {cols:<5}  {'none':<14} {plain:>9,} {'':>9} {'':>13}")
        for name, frac, rank in PARTS:
            ext = stim.random_extensions(rng, rows, cols, round(frac * rows * cols), rank)
            cycles = kernel_cycles_for(cfg, "seedlm", cols, [rows], True, L_R, L_W,
                                       streams=[stream_timing(ext, (rows, cols))])
            share = 4 * ext_words(ext, (rows, cols)) / image
            print(f"{'':>12}  {name:<14} {cycles:>9,} {cycles / plain - 1:>+9.1%} {share:>13.1%}")
    if args.verilator:
        from seedlm_fpga.sim.kernel_runner import generated_kernel, kernel_case, read_latency, run_kernel_cases
        rows = cols = 2048
        kernel = generated_kernel(PRESET, W, 8, cols, mem_latency=128, extensions=True, ext_max_rows=rows)
        g = stim.random_case(PRESET, rows, cols, 8, seed=1)
        g = dataclasses.replace(g, ext=stim.random_extensions(rng, rows, cols, round(0.005 * rows * cols), 1,
                                                              max_shift=2))
        latency = L_R - (read_latency(0))
        r = run_kernel_cases(kernel, [kernel_case([g])], latency=latency)[0]
        cfg = DesignConfig(preset=PRESET, bus_bits=W, act_bits=8, max_cols=cols)
        want = kernel_cycles_for(cfg, "seedlm", cols, [rows], True, read_latency(latency), 2,
                                 streams=[stream_timing(g.ext, (rows, cols))])
        print(f"Verilator, {rows} x {cols}, 0.5% outliers + rank 1: {r.cycles:,} cycles, bit-exact {r.ok}, "
              f"format §11.4 {want:,} (L_w 2)")
        return 0 if r.ok and r.cycles == want else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
