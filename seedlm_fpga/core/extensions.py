"""Dense-and-sparse outliers and a low-rank residual on top of SeedLM (format §5.5, §6.2): numpy only.

A tensor W is stored as W ~ S + L R^T + D: S the sparse outliers (CSR), L R^T a rank-R
product, D the SeedLM blocks. Both extra parts are integers in the tensor's own SeedLM unit
u = 2^b / (2^(K-1) - 1), scaled by powers of two, so the integer GEMV of format §6 stays
exact: Y = Y_seedlm + (Y_sparse << sparse_shift) + sum_k (L[:, k] * T_k) << lr_shift_k.

`split_tensor` makes the parts (data-free: from the weights alone), `gemv_extensions` is the
integer reference, `decode_extensions` the float64 reconstruction, `extension_bits` the
exact storage of the parts.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Sparse values are int16 codes; low-rank factors int8 codes in -127..127 (symmetric, as the
#: reader checks); both shifts are uint8 0..MAX_SHIFT (format §5.5).
SPARSE_CODE_MAX = (1 << 15) - 1
LOWRANK_CODE_MAX = 127
MAX_SHIFT = 63
#: Row pointers and column indices are uint16 while their values fit, else uint32 (format §5.5).
SHIFT_BITS = 8
SPARSE_VALUE_BITS = 16
LOWRANK_CODE_BITS = 8
#: --outliers takes a fraction in (0, MAX_OUTLIER_FRACTION].
MAX_OUTLIER_FRACTION = 0.5


def col_index_bits(cols: int) -> int:
    """16 while every column index fits a uint16, else 32 (format §5.5)."""
    return 16 if cols <= 1 << 16 else 32


def row_ptr_bits(nnz: int) -> int:
    """16 while every row pointer (0 .. nnz) fits a uint16, else 32 (format §5.5)."""
    return 16 if nnz < 1 << 16 else 32


def row_ptr_dtype(nnz: int):
    return np.uint16 if row_ptr_bits(nnz) == 16 else np.uint32


def col_index_dtype(cols: int):
    return np.uint16 if col_index_bits(cols) == 16 else np.uint32


@dataclass
class SparsePart:
    """CSR outliers: row r's values are val[row_ptr[r]:row_ptr[r+1]] at columns col[...]
    (increasing), each worth val * 2^shift SeedLM units."""

    row_ptr: np.ndarray  # uint16/uint32 [rows + 1]
    col: np.ndarray  # uint16/uint32 [nnz]
    val: np.ndarray  # int16 [nnz]
    shift: int

    @property
    def nnz(self) -> int:
        return int(len(self.val))

    def take_rows(self, idx: np.ndarray) -> SparsePart:
        """The part of the matrix whose row i is this part's row idx[i]."""
        ptr = self.row_ptr.astype(np.int64)
        counts = np.diff(ptr)[idx]
        pick = np.concatenate([np.arange(ptr[r], ptr[r + 1]) for r in idx]) if len(idx) else np.zeros(0, np.int64)
        new_ptr = np.concatenate([[0], np.cumsum(counts)])
        return SparsePart(new_ptr.astype(self.row_ptr.dtype), self.col[pick.astype(np.int64)],
                          self.val[pick.astype(np.int64)], self.shift)

    def dense_codes(self, shape: tuple[int, int]) -> np.ndarray:
        """The integer codes as a dense int64 [rows, cols] matrix (zeros elsewhere)."""
        out = np.zeros(shape, dtype=np.int64)
        rows_of = np.repeat(np.arange(shape[0]), np.diff(self.row_ptr.astype(np.int64)))
        out[rows_of, self.col.astype(np.int64)] = self.val
        return out


@dataclass
class LowRankPart:
    """W_lr[r, c] = sum_k left[r, k] * right[c, k] * 2^shift[k] SeedLM units."""

    left: np.ndarray  # int8 [rows, R]
    right: np.ndarray  # int8 [cols, R]
    shift: np.ndarray  # uint8 [R]

    @property
    def rank(self) -> int:
        return int(self.left.shape[1])

    def take_rows(self, idx: np.ndarray) -> LowRankPart:
        """The part of the matrix whose row i is this part's row idx[i] (rows live in the left factor)."""
        return LowRankPart(self.left[idx], self.right, self.shift)


@dataclass
class Extensions:
    """A tensor's optional extra parts (either may be None)."""

    sparse: SparsePart | None = None
    lowrank: LowRankPart | None = None

    def __bool__(self) -> bool:
        return self.sparse is not None or self.lowrank is not None

    def take_rows(self, idx: np.ndarray) -> Extensions:
        """The parts of the matrix whose row i is row idx[i] of this one (a permutation or selection)."""
        return Extensions(self.sparse.take_rows(idx) if self.sparse is not None else None,
                          self.lowrank.take_rows(idx) if self.lowrank is not None else None)


def seedlm_unit(bias: int, K: int) -> float:
    """u = 2^b / (2^(K-1) - 1): one step of Y (format §6)."""
    return float(np.ldexp(1.0, bias)) / ((1 << (K - 1)) - 1)


# --- sizes -------------------------------------------------------------------------------------------

def sparse_bits(rows: int, cols: int, nnz: int) -> int:
    """Stored bits of a CSR part: values, column indices, row pointers and the shift byte."""
    return nnz * (SPARSE_VALUE_BITS + col_index_bits(cols)) + (rows + 1) * row_ptr_bits(nnz) + SHIFT_BITS


def lowrank_bits(rows: int, cols: int, rank: int) -> int:
    """Stored bits of a rank-R part: int8 codes of both factors and one shift byte per component."""
    return rank * (rows + cols) * LOWRANK_CODE_BITS + rank * SHIFT_BITS


def extension_bits(shape: tuple[int, int], ext: Extensions | None) -> int:
    rows, cols = shape
    if ext is None:
        return 0
    return ((sparse_bits(rows, cols, ext.sparse.nnz) if ext.sparse is not None else 0)
            + (lowrank_bits(rows, cols, ext.lowrank.rank) if ext.lowrank is not None else 0))


def outlier_count(shape: tuple[int, int], fraction: float) -> int:
    """max(1, round_half_even(fraction * rows * cols)): how many weights --outliers keeps."""
    return max(1, int(np.rint(fraction * shape[0] * shape[1])))


# --- splitting a tensor (the compressor's side, data-free) ---------------------------------------------

def outlier_positions(w: np.ndarray, n: int) -> np.ndarray:
    """Flat indices of the n largest |w| in the tensor, ties to the lower index, sorted."""
    order = np.argsort(-np.abs(w).ravel(), kind="stable")[:n]
    return np.sort(order)


def _shift_for(peak_units: float, code_max: int) -> int:
    """The smallest s >= 0 with peak_units / 2^s rounding to at most code_max."""
    s = 0
    while s <= MAX_SHIFT and np.rint(peak_units / np.ldexp(1.0, s)) > code_max:
        s += 1
    if s > MAX_SHIFT:
        raise ValueError(f"an extension value of {peak_units:.3g} units needs a shift above {MAX_SHIFT}: "
                         f"the bias is too low for this tensor")
    return s


def make_sparse(w: np.ndarray, positions: np.ndarray, unit: float) -> SparsePart:
    rows, cols = w.shape
    values = w.ravel()[positions] / unit
    shift = _shift_for(float(np.max(np.abs(values), initial=0.0)), SPARSE_CODE_MAX)
    val = np.clip(np.rint(values / np.ldexp(1.0, shift)), -SPARSE_CODE_MAX, SPARSE_CODE_MAX).astype(np.int16)
    r, c = np.divmod(positions, cols)
    row_ptr = np.zeros(rows + 1, dtype=row_ptr_dtype(len(positions)))
    np.cumsum(np.bincount(r, minlength=rows), out=row_ptr[1:])
    return SparsePart(row_ptr=row_ptr, col=c.astype(col_index_dtype(cols)), val=val, shift=shift)


def lowrank_factors(w: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """Real factors l [rows, R], r [cols, R] of the best rank-R approximation (SVD), the singular
    value split evenly, each component's sign fixed so its largest |r| entry is positive."""
    u, s, vt = np.linalg.svd(np.asarray(w, dtype=np.float64), full_matrices=False)
    root = np.sqrt(s[:rank])
    left, right = u[:, :rank] * root, vt[:rank].T * root
    flip = np.sign(right[np.argmax(np.abs(right), axis=0), np.arange(right.shape[1])])
    flip[flip == 0] = 1
    return left * flip, right * flip


def make_lowrank(left: np.ndarray, right: np.ndarray, unit: float) -> LowRankPart:
    """Quantize real factors: left codes on max|l_k| / 127, the power-of-two shift f_k then
    the smallest that keeps the right codes within 127 (so the product is f_k-aligned units)."""
    rank = left.shape[1]
    lcodes = np.zeros(left.shape, dtype=np.int8)
    rcodes = np.zeros(right.shape, dtype=np.int8)
    shifts = np.zeros(rank, dtype=np.uint8)
    for k in range(rank):
        lmax, rmax = float(np.max(np.abs(left[:, k]))), float(np.max(np.abs(right[:, k])))
        if lmax == 0 or rmax == 0:
            continue
        l_step = lmax / LOWRANK_CODE_MAX
        # right step = 2^f * unit / l_step must hold rmax within 127 codes
        f = max(0, int(np.ceil(np.log2(rmax * l_step / (LOWRANK_CODE_MAX * unit)))))
        while f <= MAX_SHIFT and np.rint(rmax * l_step / (np.ldexp(1.0, f) * unit)) > LOWRANK_CODE_MAX:
            f += 1
        if f > MAX_SHIFT:
            raise ValueError(f"low-rank component {k} needs a shift above {MAX_SHIFT}: the bias is too low")
        r_step = np.ldexp(1.0, f) * unit / l_step
        lcodes[:, k] = np.clip(np.rint(left[:, k] / l_step), -LOWRANK_CODE_MAX, LOWRANK_CODE_MAX)
        rcodes[:, k] = np.clip(np.rint(right[:, k] / r_step), -LOWRANK_CODE_MAX, LOWRANK_CODE_MAX)
        shifts[k] = f
    return LowRankPart(left=lcodes, right=rcodes, shift=shifts)


def split_tensor(w: np.ndarray, K: int, outliers: float, rank: int, bias_of) -> tuple[np.ndarray, int, Extensions]:
    """W -> (dense residual D, bias b, extensions), format §5.5's procedure:

    1. the max(1, round(F * rows * cols)) largest |w| (ties to the lower flat index) are the outliers;
    2. a rank-R SVD of W with the outliers zeroed gives real factors;
    3. b = bias_of(W - outliers - real low-rank product), the --bias rule on what SeedLM will see;
    4. outliers and factors are quantized in the unit u(b) of a K-bit LFSR; D = W minus their
       reconstruction, so the outliers' rounding error is left to SeedLM.
    """
    w = np.asarray(w, dtype=np.float64)
    rows, cols = w.shape
    positions = outlier_positions(w, outlier_count(w.shape, outliers)) if outliers > 0 else None
    no_outliers = w.copy()
    if positions is not None:
        no_outliers.ravel()[positions] = 0.0
    factors = lowrank_factors(no_outliers, rank) if rank > 0 else None
    approx = no_outliers - (factors[0] @ factors[1].T if factors is not None else 0.0)
    bias = int(bias_of(approx))
    unit = seedlm_unit(bias, K)
    ext = Extensions(sparse=make_sparse(w, positions, unit) if positions is not None else None,
                     lowrank=make_lowrank(*factors, unit) if factors is not None else None)
    return w - decode_extensions(ext, (rows, cols), bias, K), bias, ext


# --- the integer GEMV and the float reconstruction -----------------------------------------------------

def _lowrank_codes_product(lr: LowRankPart) -> list:
    """Per component k: (left codes int64 [rows], right codes int64 [cols], shift)."""
    return [(lr.left[:, k].astype(np.int64), lr.right[:, k].astype(np.int64), int(lr.shift[k]))
            for k in range(lr.rank)]


def gemv_extensions(ext: Extensions, shape: tuple[int, int], acts) -> np.ndarray:
    """The extensions' integer contribution to Y (format §6.2), exactly, as Python ints (object
    array): Y_sparse[r] = sum_k val_k * a[col_k], added << sparse shift; T_k = sum_c right[c, k] *
    a[c], Y_lr[r] = sum_k (left[r, k] * T_k) << shift_k."""
    rows, cols = shape
    a = np.zeros(cols, dtype=np.int64)
    acts = np.asarray(acts, dtype=np.int64).ravel()
    if len(acts) > cols:
        raise ValueError(f"{len(acts)} activations for rows of {cols} weights")
    a[:len(acts)] = acts
    y = np.array([0] * rows, dtype=object)
    if ext.sparse is not None:
        sp = ext.sparse
        prod = sp.val.astype(np.int64) * a[sp.col.astype(np.int64)]  # |.| < 2^15 * max|a|
        sums = np.zeros(rows, dtype=np.int64)  # exact while cols * 2^15 * max|a| < 2^63
        np.add.at(sums, np.repeat(np.arange(rows), np.diff(sp.row_ptr.astype(np.int64))), prod)
        y = y + np.array([int(s) << sp.shift for s in sums], dtype=object)
    if ext.lowrank is not None:
        for left, right, f in _lowrank_codes_product(ext.lowrank):
            t = int(right @ a)  # |T_k| < cols * 127 * max|a|: int64 for any realistic cols
            y = y + np.array([int(v) * t << f for v in left], dtype=object)
    return y


def decode_extensions(ext: Extensions, shape: tuple[int, int], bias: int, K: int) -> np.ndarray:
    """The extensions' weights, float64 [rows, cols]: (integer codes << shifts) * u(b), each
    component's integer product exact before the one multiply by u."""
    unit = seedlm_unit(bias, K)
    out = np.zeros(shape, dtype=np.float64)
    if ext.sparse is not None:
        out += ext.sparse.dense_codes(shape).astype(np.float64) * (np.ldexp(1.0, ext.sparse.shift) * unit)
    if ext.lowrank is not None:
        for left, right, f in _lowrank_codes_product(ext.lowrank):
            out += np.outer(left, right).astype(np.float64) * (np.ldexp(1.0, f) * unit)
    return out


def gemv_extended(enc, ext: Extensions | None, acts) -> np.ndarray:
    """Y of format §6.2 for an EncodedTensor and its extensions: gemv_seedlm + gemv_extensions
    (an object array of Python ints when there are extensions)."""
    from seedlm_fpga.core.reference import gemv_seedlm

    y = gemv_seedlm(enc.seeds, enc.x, enc.q, acts, enc.preset)
    if not ext:
        return y
    return np.array([int(v) for v in y], dtype=object) + gemv_extensions(ext, enc.shape, acts)


def decode_extended(enc, ext: Extensions | None) -> np.ndarray:
    """W_hat [rows, cols] float64: the SeedLM blocks plus the extensions' weights."""
    w = enc.decode()
    return w if not ext else w + decode_extensions(ext, enc.shape, enc.bias, enc.preset.K)


def extension_int_matrix(ext: Extensions, shape: tuple[int, int]) -> np.ndarray:
    """M [rows, cols] int64 with Y_ext = M @ a (format §6.2): (sparse codes << e) plus
    sum_k (left * right) << f_k. Raises ValueError where int64 could overflow."""
    bound = 0
    if ext.sparse is not None:
        bound += SPARSE_CODE_MAX << ext.sparse.shift
    if ext.lowrank is not None:
        bound += sum((LOWRANK_CODE_MAX * LOWRANK_CODE_MAX) << int(f) for f in ext.lowrank.shift)
    if bound >= 1 << 62:
        raise ValueError(f"extension weights up to {bound} units overflow int64")
    m = np.zeros(shape, dtype=np.int64)
    if ext.sparse is not None:
        m += ext.sparse.dense_codes(shape) << ext.sparse.shift
    if ext.lowrank is not None:
        for left, right, f in _lowrank_codes_product(ext.lowrank):
            m += np.outer(left, right) << f
    return m
