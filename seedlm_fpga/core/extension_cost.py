"""What the extensions (format §5.5, §6.2) cost a GEMV beside the SeedLM blocks: multiply-accumulates,
bytes streamed and cycles, for the cycle model and projections to add.

The model (until the engine's side streams exist, issue #18): the sparse part is one MAC per
stored outlier; the low-rank part is R*cols MACs for T = R^T a, then R*rows for L T. Both are
streamed from memory like the blocks (`extension_bits` is exactly what they store), so a side
unit of `macs_per_cycle` multipliers on a `bus_bits` bus needs the larger of the two counts.
"""
from __future__ import annotations

from seedlm_fpga.core.extensions import lowrank_bits, sparse_bits


def extension_macs(rows: int, cols: int, nnz: int = 0, rank: int = 0) -> int:
    """nnz + R * (rows + cols): the side stream's multiply-accumulates for one GEMV."""
    return nnz + rank * (rows + cols)


def extension_stream_bits(rows: int, cols: int, nnz: int = 0, rank: int = 0) -> int:
    """Bits the side stream reads per GEMV: the stored sparse and low-rank parts."""
    return ((sparse_bits(rows, cols, nnz) if nnz else 0) + (lowrank_bits(rows, cols, rank) if rank else 0))


def extension_cycles(rows: int, cols: int, nnz: int, rank: int, macs_per_cycle: int, bus_bits: int) -> int:
    """Cycles of the side stream, compute- or memory-bound, whichever is longer (ceil of each)."""
    if macs_per_cycle < 1 or bus_bits < 8:
        raise ValueError("macs_per_cycle must be >= 1 and bus_bits >= 8")
    macs = extension_macs(rows, cols, nnz, rank)
    bits = extension_stream_bits(rows, cols, nnz, rank)
    return max(-(-macs // macs_per_cycle), -(-bits // bus_bits))
