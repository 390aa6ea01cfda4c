"""Time `seedlm-fpga project` with no arguments (target: under 2 s wall, table and plots).

    python benchmarks/project_speed.py [--runs 5]

Prints wall and CPU seconds (parent + plot children) per run, their medians, and the
load average: on a shared machine wall time is only meaningful when the load is low.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

TARGET_S = 2.0


def one_run(folder: str) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "seedlm_fpga.cli", "project"], cwd=folder, check=True,
                   stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    walls, cpus = [], []
    with tempfile.TemporaryDirectory() as folder:
        for i in range(args.runs):
            wall, cpu = one_run(folder)
            walls.append(wall)
            cpus.append(cpu)
            print(f"run {i + 1}: {wall:.2f} s wall, {cpu:.2f} s CPU")
    wall = statistics.median(walls)
    print(f"median: {wall:.2f} s wall ({wall / TARGET_S:.2f} of the {TARGET_S:g} s target), "
          f"{statistics.median(cpus):.2f} s CPU; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
