"""Whole-checkpoint compression throughput (weights/s) per configuration, and the time that
extrapolates to for Llama 3 70B.

Writes a synthetic safetensors checkpoint (--tensors float32 matrices of --rows x 4096, the
width of a Llama 3 8B projection), then times `seedlm-fpga compress` end to end (reading,
the bias scan, the search, the chunk files, the container) in a fresh child process for:
- one process (the numba CPU search on every core);
- --ray with the embedded local Ray (one worker per core; Ray start included, measured apart);
- --device cuda, and --ray --device cuda, when CUDA is present.
Each configuration's output must be byte-identical to the one-process output (checked).
The Llama 3 70B figure is LLAMA3_70B_WEIGHTS / (weights/s): the 80 layers' q, k, v, o,
gate, up and down projections (embeddings and the head stay uncompressed), labelled as an
extrapolation.

    python benchmarks/bench_compress.py                       # 2 x 512 x 4096 (2.1 M weights)
    python benchmarks/bench_compress.py --rows 2048 --tensors 4
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

#: Llama 3 70B: 80 layers x (q 8192^2 + k, v 1024 x 8192 + o 8192^2 + gate, up, down 28672 x 8192).
LLAMA3_70B_WEIGHTS = 80 * (2 * 8192 * 8192 + 2 * 1024 * 8192 + 3 * 28672 * 8192)


def run_tool(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return time.perf_counter() - t0


def _ray_start_s(workers: int) -> float:
    code = ("import ray, time; t = time.perf_counter(); "
            f"ray.init(num_cpus={workers}, include_dashboard=False, logging_level='ERROR'); "
            "print(time.perf_counter() - t); ray.shutdown()")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return float(out.split()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=512)
    ap.add_argument("--cols", type=int, default=4096)
    ap.add_argument("--tensors", type=int, default=2)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="seedlm-bench-"))
    try:
        g = torch.Generator().manual_seed(0)
        sd = {f"layers.{i}.proj.weight": (torch.randn(args.rows, args.cols, generator=g) * 0.02).to(torch.bfloat16)
              for i in range(args.tensors)}
        save_file(sd, tmp / "m.safetensors")
        n_w = args.tensors * args.rows * args.cols
        configs = [("one process, CPU", [])]
        try:
            import ray  # noqa: F401
            configs.append((f"local Ray, {os.cpu_count()} CPU workers", ["--ray"]))
        except ImportError:
            print("(ray not installed: pip install -e '.[ray]' for the Ray row)")
        if torch.cuda.is_available():
            configs.append(("one process, CUDA", ["--device", "cuda"]))
            configs.append(("local Ray, CUDA (1 task per GPU)", ["--ray", "--device", "cuda"]))
        print(f"checkpoint: {args.tensors} x {args.rows} x {args.cols} bfloat16 ({n_w:,} weights); "
              f"{os.cpu_count()} CPU cores" + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""))
        print(f"{'configuration':<36} {'wall s':>8} {'weights/s':>12} {'Llama 3 70B (extrapolated)':>28}")
        reference = None
        for label, flags in configs:
            out = tmp / f"out{len(flags)}-{hash(label) & 0xffff}.seedlm"
            cmd = [sys.executable, "-m", "seedlm_fpga.cli.main", "compress", str(tmp / "m.safetensors"),
                   "-o", str(out), *flags]
            wall = run_tool(cmd)
            digest = hashlib.sha256(out.read_bytes()).hexdigest()
            reference = reference or digest
            same = "" if digest == reference else "  OUTPUT DIFFERS"
            rate = n_w / wall
            hours = LLAMA3_70B_WEIGHTS / rate / 3600
            print(f"{label:<36} {wall:>8.1f} {rate:>12,.0f} {hours:>25.1f} h{same}")
        if any("--ray" in f for _, f in configs):
            print(f"(Ray rows include starting the local Ray: {_ray_start_s(os.cpu_count()):.1f} s measured alone; "
                  f"it is paid once per run, negligible at 70B scale)")
        print(f"Llama 3 70B: {LLAMA3_70B_WEIGHTS:,} compressible weights; extrapolated = that / weights/s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
