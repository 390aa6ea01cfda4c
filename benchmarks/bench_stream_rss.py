"""Peak memory of `compress` on a synthetic multi-shard Hugging Face checkpoint of >= 4 GB.

Writes N shards of float32 4096 x 4096 matrices (64 MiB each) plus one small 256 x 4096
projection per shard into a temporary folder, then runs `seedlm-fpga compress` on it in a
child process with --include limited to the small projections (so the search takes
seconds, not hours) -- every other tensor is carried into the output, read and written one
at a time -- and prints the child's peak RSS (resource.getrusage(RUSAGE_CHILDREN)).
The readers read headers at load and one tensor (or row range) at a time after that, so
the peak is bounded by a few tensors, not by the checkpoint.

    python benchmarks/bench_stream_rss.py                 # 4 shards x 17 tensors = 4.3 GiB
    python benchmarks/bench_stream_rss.py --shards 6 --keep /some/dir
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

LIMIT_GB = 2.5


def write_checkpoint(folder: Path, shards: int, per_shard: int) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    weight_map, total = {}, 0
    g = torch.Generator().manual_seed(0)
    for s in range(shards):
        name = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        sd = {f"model.layers.{s}.mlp.w{i}.weight": torch.randn(4096, 4096, generator=g) * 0.02
              for i in range(per_shard)}
        sd[f"model.layers.{s}.small_proj.weight"] = torch.randn(256, 4096, generator=g) * 0.02
        save_file(sd, folder / name)
        total += (folder / name).stat().st_size
        weight_map.update(dict.fromkeys(sd, name))
        del sd
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--per-shard", type=int, default=17, help="64 MiB matrices per shard (default 17)")
    ap.add_argument("--keep", type=Path, help="write the checkpoint here and keep it (default: a temp dir)")
    ap.add_argument("--ray", action="store_true", help="compress with --ray (driver RSS only)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="seedlm-rss-"))
    folder = args.keep or tmp / "hf"
    try:
        t0 = time.perf_counter()
        size = write_checkpoint(folder, args.shards, args.per_shard)
        print(f"checkpoint: {folder}, {args.shards} shards, {size / 2**30:.2f} GiB "
              f"(written in {time.perf_counter() - t0:.0f} s)")
        cmd = [sys.executable, "-m", "seedlm_fpga.cli.main", "compress", str(folder), "-o", str(tmp / "out.seedlm"),
               "--include", r"small_proj", *(["--ray"] if args.ray else [])]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            sys.exit(f"compress failed ({proc.returncode}): {proc.stderr[-2000:]}")
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # KiB on Linux
        out = (tmp / "out.seedlm").stat().st_size
        print(f"compress --include small_proj ({args.shards} tensors compressed, the rest carried): "
              f"{wall:.0f} s, output {out / 2**30:.2f} GiB")
        print(f"peak RSS of the compress process: {peak / 2**30:.2f} GiB "
              f"({'<=' if peak <= LIMIT_GB * 2**30 else '>'} {LIMIT_GB} GB target; "
              f"checkpoint {size / 2**30:.2f} GiB)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
