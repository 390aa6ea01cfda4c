"""Data-free weight quantizers to compare SeedLM against, with exact bit accounting.

All act on a matrix W[rows, cols] along its rows (the input dimension, as SeedLM blocks
do) and return the dequantized float64 matrix. Bits per weight count everything that
would be stored: the codes, every scale or exponent, and padding.

- ``rtn``: round-to-nearest, symmetric absmax. Per row or per group of g consecutive
  weights of a row; scale = fp16(max|w| / qmax), qmax = 2^(n-1) - 1 (int4: -7..7,
  int3: -3..3), codes clip(round_half_even(w / scale), -qmax, qmax). Storage: n bits per
  weight plus one 16-bit scale per group; a row whose length is not a multiple of g ends
  in a partial group that still stores a full scale (the weights themselves pack densely).
- ``bfp``: block floating point, groups of g (128) weights of a row share one 8-bit
  exponent E = floor(log2(max|w|)), the largest weight's exponent (exact, via frexp); each
  weight keeps an n-bit two's-complement mantissa m = clip(round_half_even(w / 2^(E-n+2)),
  -2^(n-1), 2^(n-1)-1), w_hat = m * 2^(E-n+2). The largest magnitude lies in [2^(n-2),
  2^(n-1)) steps, so only weights that round up to 2^(n-1) clip. Storage: n bits per weight
  plus 8 bits per group, partial groups counted as for ``rtn``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FP16_SCALE_BITS = 16
BFP_EXPONENT_BITS = 8


@dataclass(frozen=True)
class Baseline:
    """One data-free quantizer: `kind` "rtn" or "bfp", `bits` per code, `group` (None = per row)."""

    kind: str
    bits: int
    group: int | None

    @property
    def name(self) -> str:
        g = "per-row" if self.group is None else f"g{self.group}"
        return f"{'RTN' if self.kind == 'rtn' else 'BFP'} int{self.bits} {g}"

    @property
    def qmax(self) -> int:
        return (1 << (self.bits - 1)) - 1

    def groups_per_row(self, cols: int) -> int:
        return 1 if self.group is None else -(-cols // self.group)

    def storage_bits(self, shape: tuple[int, int]) -> int:
        """Exact bits to store a [rows, cols] matrix: codes + one scale/exponent per group."""
        rows, cols = shape
        scale_bits = FP16_SCALE_BITS if self.kind == "rtn" else BFP_EXPONENT_BITS
        return rows * cols * self.bits + rows * self.groups_per_row(cols) * scale_bits

    def bits_per_weight(self, shape: tuple[int, int]) -> float:
        return self.storage_bits(shape) / (shape[0] * shape[1])

    def quantize(self, w) -> np.ndarray:
        """Dequantized W_hat (float64), same shape as w."""
        w = np.asarray(w, dtype=np.float64)
        if w.ndim != 2:
            raise ValueError(f"baselines quantize matrices, got shape {w.shape}")
        rows, cols = w.shape
        g = cols if self.group is None else self.group
        n = self.groups_per_row(cols)
        padded = np.zeros((rows, n * g))  # zero padding never changes a group's absmax
        padded[:, :cols] = w
        groups = padded.reshape(rows, n, g)
        amax = np.abs(groups).max(axis=-1, keepdims=True)
        if self.kind == "rtn":
            scale, lo = _rtn_scale(amax, self.qmax), -self.qmax
        else:
            scale, lo = _bfp_step(amax, self.bits), -self.qmax - 1
        codes = np.clip(np.rint(groups / scale), lo, self.qmax)
        return (codes * scale).reshape(rows, n * g)[:, :cols]


def _rtn_scale(amax: np.ndarray, qmax: int) -> np.ndarray:
    s = (amax / qmax).astype(np.float16).astype(np.float64)  # stored as fp16
    # fp16 underflows to 0 for tiny groups (and all-zero groups): any scale codes them as 0.
    return np.where(s > 0, s, 1.0)


def _bfp_step(amax: np.ndarray, bits: int) -> np.ndarray:
    """2^(E - bits + 2) with E = floor(log2(amax)) exactly; E is stored in 8 bits (-127..127)."""
    _, e = np.frexp(amax)  # amax = mant * 2^e, mant in [0.5, 1): floor(log2 amax) = e - 1
    E = np.clip(e.astype(np.int64) - 1, -127, 127)
    return np.where(amax > 0, np.ldexp(1.0, E - bits + 2), 1.0)


#: The default comparison set: ~4 and ~3 bits per weight.
DEFAULT_BASELINES: tuple[Baseline, ...] = tuple(
    [Baseline("rtn", b, g) for b in (4, 3) for g in (None, 128, 64, 32)]
    + [Baseline("bfp", b, 128) for b in (4, 3)]
)
