"""Blocks/s of the exact seed search against this machine's GEMM bound.

For each preset (seedlm-4, seedlm-3) and device (CPU; CUDA when present) it searches a
timed slice of a 4096 x 4096 Gaussian matrix (--cpu-blocks on CPU; the whole matrix on CUDA
unless --cuda-blocks is given), prints
blocks/s and the time for the whole matrix (extrapolated from the slice, and labelled so),
the float32 GEMM rate measured in the same run, the GEMM-bound estimate of
2*C*P*(2^16-1) flops per block, the ratio to it, and the relative error ||W-W_hat||/||W||
of the searched blocks.

    python benchmarks/bench_search.py                     # CPU (+ CUDA if present)
    NUMBA_NUM_THREADS=1 python benchmarks/bench_search.py --device cpu   # one core
    python benchmarks/bench_search.py --device cuda
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from seedlm_fpga.compressor.encoder import resolve_bias, search_blocks
from seedlm_fpga.core.reference import decode_blocks, get_preset


def gemm_rate(device: str, n: int = 4096, reps: int = 5) -> float:
    """float32 matmul FLOP/s (TF32 off on CUDA: the search's bound uses plain float32)."""
    if device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = False
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b
    sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2.0 * n ** 3 * reps / (time.perf_counter() - t0)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench(name: str, device: str, rows: int, cols: int, n_slice: int | None, flops: float,
          kernel: str = "auto") -> None:
    preset = get_preset(name)
    C, P = preset.C, preset.P
    w = np.random.default_rng(0).standard_normal((rows, cols)).astype(np.float32) * 0.02
    cols_used = cols - cols % C
    blocks = w[:, :cols_used].reshape(-1, C).astype(np.float64)
    total = len(blocks)
    bias = resolve_bias("auto", w, preset)
    search_blocks(blocks[:64], preset, bias, device, kernel=kernel)  # warm-up: tables, compilation, upload
    sub = blocks if n_slice is None or n_slice >= total else blocks[:n_slice]
    sync(device)
    t0 = time.perf_counter()
    seeds, x, q, err = search_blocks(sub, preset, bias, device, kernel=kernel)
    sync(device)
    dt = time.perf_counter() - t0
    rate = len(sub) / dt
    per_block = 2.0 * C * P * ((1 << preset.K) - 1)
    bound = flops / per_block
    w_hat = decode_blocks(seeds.astype(np.int64), x, q, bias, preset)
    rel = np.linalg.norm(sub - w_hat) / np.linalg.norm(sub)
    whole = total / rate
    label = "measured" if len(sub) == total else f"extrapolated from {len(sub)} blocks"
    print(f"{name:9s} {device:5s} {kernel:5s} {rate:12,.0f} blocks/s | {rows}x{cols} ({total:,} blocks): "
          f"{whole:8.2f} s ({label}) | GEMM bound {bound:12,.0f} blocks/s "
          f"({per_block / 1e6:.2f} MFLOP/block) -> {rate / bound:5.2f}x of bound | rel err {rel:.4f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    ap.add_argument("--presets", default="seedlm-4,seedlm-3")
    ap.add_argument("--rows", type=int, default=4096)
    ap.add_argument("--cols", type=int, default=4096)
    ap.add_argument("--cpu-blocks", type=int, default=16384, help="timed slice on CPU")
    ap.add_argument("--kernels", default="auto",
                    help="comma-separated search kernels to time on CPU (auto, numba, gemm, torch)")
    ap.add_argument("--cuda-blocks", type=int, default=None, help="timed slice on CUDA (default: all)")
    args = ap.parse_args()
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    if "cuda" in devices and not torch.cuda.is_available():
        print("CUDA not available: skipping the CUDA measurements")
        devices.remove("cuda")
    load = os.getloadavg()
    print(f"nproc {os.cpu_count()}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    for device in devices:
        flops = gemm_rate(device)
        what = torch.cuda.get_device_name() if device == "cuda" else "CPU"
        print(f"{device}: {what}, float32 GEMM {flops / 1e9:,.0f} GFLOP/s")
        n_slice = args.cpu_blocks if device == "cpu" else args.cuda_blocks
        kernels = args.kernels.split(",") if device == "cpu" else ["auto"]
        for name in args.presets.split(","):
            for kernel in kernels:
                bench(name, device, args.rows, args.cols, n_slice, flops, kernel)


if __name__ == "__main__":
    main()
