"""The extension stream: a tensor's outliers and low-rank factors as the kernel's extension unit
reads them (format §5.6), and its size and cycles. numpy only.

The stream is a sequence of 32-bit little-endian words, zero-padded to a whole 64-bit word: the
kernel reads it on its 64-bit `m_axi_io` port beside the weights (format §11.3), whatever the
weight bus W. The unit takes one word per cycle (so the layout spends a word where the unit
spends a cycle: four int8 right factors, up to four int8 left factors, one outlier):

    word 0            rank R (bits 0..2), has-sparse (bit 3), e (bits 4..9), rows (bits 16..31)
    word 1            f_k at bits 6k .. 6k+5 (k < R)
    R x ceil(cols/4)  right factors: component k, columns 4i .. 4i+3, byte j = rho[4i+j, k]
    per row r         a left word (R > 0): byte k = l[r, k]; then (sparse) the row's outliers,
                      val (bits 0..15) | col (bits 16..30) | last (bit 31); a row without
                      outliers has one entry (val 0, col 0, last 1)
"""
from __future__ import annotations

import numpy as np

from seedlm_fpga.core.engine_shape import IO_BITS, StreamTiming
from seedlm_fpga.core.extensions import Extensions

#: the unit's limits: 4 components (one left word), 15-bit columns, 16-bit rows in the header
EXT_MAX_RANK = 4
EXT_MAX_COLS = 1 << 15
EXT_MAX_ROWS = (1 << 16) - 1
EXT_WORD_BITS = 32
RIGHT_PER_WORD = 4
HEADER_WORDS = 2


def ext_y_bound(ext: Extensions, shape: tuple[int, int], act_bits: int) -> int:
    """The largest |Y_ext[r]| format §6.2 allows for these parts and any A-bit activations."""
    rows, cols = shape
    amax = 1 << (act_bits - 1)
    bound = 0
    if ext.sparse is not None:
        per_row = int(np.diff(ext.sparse.row_ptr.astype(np.int64)).max(initial=0))
        bound += (32767 * per_row * amax) << ext.sparse.shift
    if ext.lowrank is not None:
        bound += sum((127 * 127 * cols * amax) << int(f) for f in ext.lowrank.shift)
    return bound


def ext_problems(ext: Extensions, shape: tuple[int, int], act_bits: int = 8, y_bits: int | None = None) -> list[str]:
    """Why the extension unit cannot run these parts (empty: it can). `y_bits`: the engine's Y width;
    given, the parts must keep Y within the kernel's 64-bit words (the unit computes modulo 2^64)."""
    rows, cols = shape
    problems = []
    if y_bits is not None and (1 << (y_bits - 1)) + ext_y_bound(ext, shape, act_bits) >= 1 << 63:
        problems.append("the parts' shifts could carry Y past 64 bits")
    if ext.lowrank is not None and ext.lowrank.rank > EXT_MAX_RANK:
        problems.append(f"rank {ext.lowrank.rank} above the unit's {EXT_MAX_RANK}")
    if cols > EXT_MAX_COLS:
        problems.append(f"cols {cols} above the unit's {EXT_MAX_COLS}")
    if rows > EXT_MAX_ROWS:
        problems.append(f"rows {rows} above the unit's {EXT_MAX_ROWS}")
    return problems


def sparse_row_words(ext: Extensions, rows: int) -> int:
    """Outlier words: one per outlier, one per row without any."""
    if ext.sparse is None:
        return 0
    counts = np.diff(ext.sparse.row_ptr.astype(np.int64))
    return int(np.maximum(counts, 1).sum())


def ext_words(ext: Extensions, shape: tuple[int, int]) -> int:
    rows, cols = shape
    rank = ext.lowrank.rank if ext.lowrank is not None else 0
    return HEADER_WORDS + rank * -(-cols // RIGHT_PER_WORD) + (rows if rank else 0) + sparse_row_words(ext, rows)


def ext_words_bound(rows: int, cols: int, nnz: int = 0, rank: int = 0) -> int:
    """ext_words without the per-row counts (a file header has only nnz): outlier words are at
    most nnz + rows (one per outlier, one per row without any), exact when no row has 2 or more."""
    return (HEADER_WORDS + rank * -(-cols // RIGHT_PER_WORD) + (rows if rank else 0)
            + (nnz + rows if nnz else 0))


def io_beats(words: int) -> int:
    """64-bit `m_axi_io` beats of a stream of `words` words (descriptor +20, format §11.3)."""
    return -(-words * EXT_WORD_BITS // IO_BITS)


def stream_timing(ext: Extensions, shape: tuple[int, int]) -> StreamTiming:
    """Format §11.4's view of the stream: the word completing each row's sum, and its io beats."""
    rows, cols = shape
    rank = ext.lowrank.rank if ext.lowrank is not None else 0
    per_row = np.zeros(rows, dtype=np.int64)
    if rank:
        per_row += 1
    if ext.sparse is not None:
        per_row += np.maximum(np.diff(ext.sparse.row_ptr.astype(np.int64)), 1)
    ends = HEADER_WORDS + rank * -(-cols // RIGHT_PER_WORD) + np.cumsum(per_row) - 1
    return StreamTiming(tuple(int(j) for j in ends), io_beats(ext_words(ext, shape)))


def extension_stream(ext: Extensions, shape: tuple[int, int]) -> bytes:
    """The stream's bytes (the module text), 8 * io_beats(ext_words(...)) of them."""
    problems = ext_problems(ext, shape)
    if problems:
        raise ValueError("; ".join(problems))
    rows, cols = shape
    rank = ext.lowrank.rank if ext.lowrank is not None else 0
    sp = ext.sparse
    words = [rank | (int(sp is not None) << 3) | ((sp.shift if sp is not None else 0) << 4) | (rows << 16),
             sum(int(f) << (6 * k) for k, f in enumerate(ext.lowrank.shift)) if rank else 0]
    body = []
    if rank:
        nq = -(-cols // RIGHT_PER_WORD)
        right = np.zeros((nq * RIGHT_PER_WORD, rank), dtype=np.int8)
        right[:cols] = ext.lowrank.right
        quads = np.ascontiguousarray(right.T).reshape(rank, nq, RIGHT_PER_WORD).view(np.uint8).astype(np.uint32)
        body.append((quads * (np.uint32(1) << (8 * np.arange(4, dtype=np.uint32)))).sum(-1).ravel())
    left = np.zeros((rows, RIGHT_PER_WORD), dtype=np.int8)
    if rank:
        left[:, :rank] = ext.lowrank.left
    left_words = (left.view(np.uint8).astype(np.uint32) << (8 * np.arange(4, dtype=np.uint32))).sum(-1)
    ptr = sp.row_ptr.astype(np.int64) if sp is not None else None
    per_row = []
    for r in range(rows):
        row = [int(left_words[r])] if rank else []
        if sp is not None:
            lo, hi = ptr[r], ptr[r + 1]
            if hi == lo:
                row.append(1 << 31)
            for i in range(lo, hi):
                row.append((int(sp.val[i]) & 0xFFFF) | (int(sp.col[i]) << 16) | (int(i == hi - 1) << 31))
        per_row.extend(row)
    all_words = np.concatenate([np.array(words, dtype=np.uint64)] + [b.astype(np.uint64) for b in body]
                               + [np.array(per_row, dtype=np.uint64)]).astype(np.uint32)
    padded = np.zeros(io_beats(len(all_words)) * IO_BITS // EXT_WORD_BITS, dtype="<u4")
    padded[:len(all_words)] = all_words
    return padded.tobytes()
