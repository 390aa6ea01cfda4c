"""The .seedlm container's optional extension parts (format §5.5): outliers in CSR and a
low-rank residual, their metadata keys, stored layouts and checks. container.py calls these;
the parts themselves and their meaning live in core.extensions."""
from __future__ import annotations

import numpy as np

from seedlm_fpga.core.extensions import (LOWRANK_CODE_MAX, MAX_SHIFT, SPARSE_CODE_MAX, Extensions, LowRankPart,
                                         SparsePart, col_index_dtype, row_ptr_dtype)
from seedlm_fpga.errors import UserError

SPARSE_PARTS = ("sp_rowptr", "sp_col", "sp_val")
LOWRANK_PARTS = ("lr_left", "lr_right", "lr_shift")
EXT_PARTS = SPARSE_PARTS + LOWRANK_PARTS
#: Metadata entry keys of format_version 2 (absent: the tensor has no such part).
SPARSE_KEY, RANK_KEY = "sparse", "rank"


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def entry_fields(ext: Extensions | None) -> dict:
    """The metadata entry's extension keys for `ext` (none for a plain tensor)."""
    out: dict = {}
    if ext is not None and ext.sparse is not None:
        out[SPARSE_KEY] = {"nnz": ext.sparse.nnz, "shift": int(ext.sparse.shift)}
    if ext is not None and ext.lowrank is not None:
        out[RANK_KEY] = ext.lowrank.rank
    return out


def check_entry(where: str, e: dict, version: str) -> None:
    """The extension keys of a parsed entry: only in version 2, and well-formed."""
    present = [k for k in (SPARSE_KEY, RANK_KEY) if k in e]
    if present and version == "1":
        raise UserError(f"{where}: {', '.join(present)} need format_version 2 (the file says 1)")
    rows, cols = e["shape"]
    if SPARSE_KEY in e:
        sp = e[SPARSE_KEY]
        if (not isinstance(sp, dict) or set(sp) != {"nnz", "shift"} or not _int(sp["nnz"])
                or not _int(sp["shift"]) or not 1 <= sp["nnz"] <= rows * cols or not 0 <= sp["shift"] <= MAX_SHIFT):
            raise UserError(f"{where}: sparse must be {{\"nnz\": 1..rows*cols, \"shift\": 0..{MAX_SHIFT}}}, "
                            f"got {sp!r}")
    if RANK_KEY in e and not (_int(e[RANK_KEY]) and 1 <= e[RANK_KEY] <= min(rows, cols)):
        raise UserError(f"{where}: rank must be an integer in 1..min(rows, cols) = {min(rows, cols)}, "
                        f"got {e[RANK_KEY]!r}")


def part_specs(e: dict) -> tuple[tuple[str, type, tuple[int, ...]], ...]:
    """(part, numpy dtype, shape) of the entry's extension parts (format §5.5)."""
    rows, cols = e["shape"]
    specs = []
    if SPARSE_KEY in e:
        nnz = e[SPARSE_KEY]["nnz"]
        specs += [("sp_rowptr", row_ptr_dtype(nnz), (rows + 1,)), ("sp_col", col_index_dtype(cols), (nnz,)),
                  ("sp_val", np.int16, (nnz,))]
    if RANK_KEY in e:
        R = e[RANK_KEY]
        specs += [("lr_left", np.int8, (rows, R)), ("lr_right", np.int8, (cols, R)), ("lr_shift", np.uint8, (R,))]
    return tuple(specs)


def stored_parts(ext: Extensions | None) -> dict[str, np.ndarray]:
    """part -> array, as written (dtypes of part_specs)."""
    out: dict[str, np.ndarray] = {}
    if ext is not None and ext.sparse is not None:
        sp = ext.sparse
        out |= {"sp_rowptr": sp.row_ptr, "sp_col": sp.col, "sp_val": sp.val}
    if ext is not None and ext.lowrank is not None:
        lr = ext.lowrank
        out |= {"lr_left": lr.left, "lr_right": lr.right, "lr_shift": lr.shift}
    return out


def build(where: str, e: dict, parts: dict[str, np.ndarray]) -> Extensions:
    """Extensions from stored parts (dtypes and shapes already checked), values checked."""
    rows, cols = e["shape"]
    ext = Extensions()
    if SPARSE_KEY in e:
        ptr, col, val = (parts[p] for p in SPARSE_PARTS)
        ptr64 = ptr.astype(np.int64)
        if ptr64[0] != 0 or ptr64[-1] != len(val) or np.any(np.diff(ptr64) < 0):
            raise UserError(f"{where}: sp_rowptr must rise from 0 to nnz = {len(val)}")
        col64 = col.astype(np.int64)
        if len(col64) and col64.max() >= cols:
            raise UserError(f"{where}: sp_col holds a column index >= cols = {cols}")
        # within a row, columns strictly increase: a new row starts wherever they do not
        starts = np.zeros(len(col64), dtype=bool)
        starts[ptr64[:-1][np.diff(ptr64) > 0]] = True
        if np.any((np.diff(col64) <= 0) & ~starts[1:]):
            raise UserError(f"{where}: sp_col must strictly increase within each row")
        if len(val) and np.abs(val.astype(np.int64)).max() > SPARSE_CODE_MAX:
            raise UserError(f"{where}: sp_val holds -32768 (codes are -{SPARSE_CODE_MAX}..{SPARSE_CODE_MAX})")
        ext.sparse = SparsePart(row_ptr=ptr, col=col, val=val, shift=e[SPARSE_KEY]["shift"])
    if RANK_KEY in e:
        left, right, shift = (parts[p] for p in LOWRANK_PARTS)
        for name, codes in (("lr_left", left), ("lr_right", right)):
            if codes.size and np.abs(codes.astype(np.int64)).max() > LOWRANK_CODE_MAX:
                raise UserError(f"{where}: {name} holds -128 (codes are -{LOWRANK_CODE_MAX}..{LOWRANK_CODE_MAX})")
        if shift.size and shift.max() > MAX_SHIFT:
            raise UserError(f"{where}: lr_shift above {MAX_SHIFT}")
        ext.lowrank = LowRankPart(left=left, right=right, shift=shift)
    return ext
