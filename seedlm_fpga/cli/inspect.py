"""Show what a .seedlm file holds: compressed tensors (shape, preset, bias, bits/weight),
carried tensors and totals. --json prints the same as one JSON object."""
from __future__ import annotations

from pathlib import Path

from seedlm_fpga.compressor.container import bits_per_weight, packed_bytes, read_container
from seedlm_fpga.core.reference import blocks_per_row
from seedlm_fpga.core.report import dumps, report_dict


def add_arguments(parser) -> None:
    parser.add_argument("input", help="the .seedlm file")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")


def describe(path: str | Path) -> dict:
    """Everything `inspect` shows, as plain data."""
    path = Path(path)
    c = read_container(path)
    compressed = [{"name": n, "shape": list(e.shape), "preset": e.preset.name, "K": e.preset.K, "C": e.preset.C,
                   "P": e.preset.P, "bias": e.bias, "dtype": c.dtypes[n],
                   "blocks": e.shape[0] * blocks_per_row(e.shape[1], e.preset.C),
                   "outliers": ext.sparse.nnz if (ext := c.extensions.get(n)) and ext.sparse else 0,
                   "rank": ext.lowrank.rank if ext and ext.lowrank else 0,
                   "bits_per_weight": bits_per_weight(e, ext), "packed_bytes": packed_bytes(e, ext)}
                  for n, e in c.compressed.items()]
    carried = [{"name": n, "shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch."),
                "bytes": t.numel() * t.element_size()} for n, t in c.carried.items()]
    weights = sum(e["shape"][0] * e["shape"][1] for e in compressed)
    packed = sum(e["packed_bytes"] for e in compressed)
    return {"file": str(path), "file_bytes": path.stat().st_size, "format_version": c.metadata["format_version"],
            "metadata": c.extra, "compressed": compressed, "carried": carried,
            "totals": {"compressed_weights": weights, "packed_bytes": packed,
                       "bits_per_weight": packed * 8 / weights if weights else 0.0,
                       "carried_values": sum(_numel(t["shape"]) for t in carried),
                       "carried_bytes": sum(t["bytes"] for t in carried)}}


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def run(args) -> int:
    from seedlm_fpga.core.text import format_table

    info = describe(args.input)
    if args.json:
        print(dumps(report_dict(info, inputs=[args.input]), sort_keys=True), end="")
        return 0
    t = info["totals"]
    print(f"{info['file']}: .seedlm format {info['format_version']}, {info['file_bytes']:,} bytes")
    for key in ("seedlm.source", "seedlm.source_format", "seedlm.generator"):
        if key in info["metadata"]:
            print(f"  {key.removeprefix('seedlm.')}: {info['metadata'][key]}")
    print(f"\ncompressed tensors ({len(info['compressed'])}):")
    rows = [[e["name"], "x".join(map(str, e["shape"])), e["dtype"], e["preset"], str(e["bias"]),
             f"{e['blocks']:,}", f"{e['outliers']:,}", str(e["rank"]), f"{e['bits_per_weight']:.3f}"]
            for e in info["compressed"]]
    print(format_table(["tensor", "shape", "dtype", "preset", "bias", "blocks", "outliers", "rank", "bits/weight"],
                       rows, right={1, 4, 5, 6, 7, 8}))
    print(f"\ncarried tensors ({len(info['carried'])}):")
    rows = [[e["name"], "x".join(map(str, e["shape"])) or "scalar", e["dtype"], f"{e['bytes']:,}"]
            for e in info["carried"]]
    print(format_table(["tensor", "shape", "dtype", "bytes"], rows, right={1, 3}))
    print(f"\ntotal: {t['compressed_weights']:,} compressed weights in {t['packed_bytes']:,} bytes "
          f"({t['bits_per_weight']:.3f} bits/weight); {t['carried_bytes']:,} bytes carried")
    return 0
