"""Seconds per token of `seedlm-fpga run` on stories260K, numpy and Verilator (target <= 2 s in Verilator).

Compresses the shipped stories260K (seedlm-4 unless --preset), then decodes --tokens tokens from
BOS with each engine and prints, per engine: the simulators' start-up (Verilator builds are cached
by content, so a second run measures the start of cocotb only), the seconds per decoded token after
it, the CPU seconds per token of all processes (the figure a busy machine does not inflate), the
machine's load average, and the kernel figures of the run (cycles per token, speedup).

    python benchmarks/bench_run.py                       # seedlm-4, 32 tokens, both engines
    python benchmarks/bench_run.py --preset seedlm-3 --tokens 8 --engines verilator
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from seedlm_fpga.cli.main import main as cli
from seedlm_fpga.core.progress import quiet
from seedlm_fpga.evaluation.decode import NumpyBackend, greedy_decode, load_decode_model
from seedlm_fpga.examples import MODEL
from seedlm_fpga.flows.sizing import size_for_board

TARGET_S = 2.0


def bench(engine: str, model, preset: str, tokens: int, board: str) -> dict:
    reference = NumpyBackend(model)
    t0 = time.perf_counter()
    if engine == "numpy":
        backend = reference
    else:
        from seedlm_fpga.sim.kernel_backend import KernelDesign, checked_kernel_backend
        max_cols = max(e.shape[1] for e in model.compressed.values())
        design = KernelDesign(preset, size_for_board(board, preset)["bus_bits"], max_cols, 32)
        backend = checked_kernel_backend(model, reference, design)
    t1 = time.perf_counter()
    cpu1 = os.times()
    cycles: list[int] = []
    try:
        ids = greedy_decode(model, backend, [1], tokens,
                            lambda rec, new: cycles.append(sum(r.cycles or 0 for _, r in rec.starts)))
    finally:
        backend.close()
    t2 = time.perf_counter()
    cpu2 = os.times()  # the simulators are waited for by now: their CPU time is in children_*
    cpu = sum(getattr(cpu2, k) - getattr(cpu1, k) for k in ("user", "system", "children_user", "children_system"))
    n = max(1, len(ids))
    return {"startup_s": t1 - t0, "per_token_s": (t2 - t1) / n, "cpu_per_token_s": cpu / n, "tokens": len(ids),
            "cycles": cycles}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="seedlm-4", choices=("seedlm-4", "seedlm-3"))
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--engines", default="numpy,verilator")
    parser.add_argument("--board", default="alveo-u280")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{args.preset}.seedlm"
        with quiet():
            assert cli(["compress", str(MODEL), "-o", str(path), "--preset", args.preset]) == 0
        model = load_decode_model(path)
        print(f"stories260K {args.preset}, {args.tokens} tokens from BOS, board {args.board}")
        for engine in args.engines.split(","):
            r = bench(engine, model, args.preset, args.tokens, args.board)
            load = os.getloadavg()[0]
            verdict = ""
            if engine == "verilator":
                verdict = f" (target <= {TARGET_S:g} s: {'met' if r['per_token_s'] <= TARGET_S else 'NOT met'})"
                verdict += f"; kernel CYCLES per token {r['cycles'][0]:,}"
            print(f"  {engine:<10} start-up {r['startup_s']:.1f} s, {r['per_token_s']:.3f} s per token over "
                  f"{r['tokens']} tokens{verdict}; CPU {r['cpu_per_token_s']:.3f} s per token (all processes; "
                  f"the simulators run side by side); load average {load:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
