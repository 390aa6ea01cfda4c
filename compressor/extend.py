"""Tensors with outliers and a low-rank residual (format §5.5), and the per-tensor choice of a
variant under a bits/weight budget: what `compress --outliers/--rank/--budget` and `evaluate`
share.

A `Variant` is a preset plus optional extensions; `encode_variant` splits a tensor
(core.extensions.split_tensor) and encodes the dense rest; `allocate` picks one variant per
tensor so that the total storage fits a budget, minimizing the weight error (data-free).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seedlm_fpga.compressor import encoder
from seedlm_fpga.compressor.job import tensor_bias
from seedlm_fpga.core.extensions import (MAX_OUTLIER_FRACTION, Extensions, decode_extended, lowrank_bits,
                                         outlier_count, sparse_bits, split_tensor)
from seedlm_fpga.core.numeric import relative_error
from seedlm_fpga.core.reference import PRESETS, EncodedTensor, blocks_per_row

#: --budget's default extension sizes: SqueezeLLM's 0.5% outliers, and rank 1 (a rank-R part
#: costs 8R(rows + cols) bits: rank 1 is already 0.25 bits/weight on a 64 x 64 matrix).
DEFAULT_OUTLIERS = 0.005
DEFAULT_RANK = 1


@dataclass(frozen=True)
class Variant:
    preset: str
    outliers: float = 0.0  # fraction of the tensor's weights kept in the sparse part
    rank: int = 0

    def __post_init__(self):
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r} (known: {', '.join(PRESETS)})")
        if not 0 <= self.outliers <= MAX_OUTLIER_FRACTION:
            raise ValueError(f"outlier fraction {self.outliers} is not in 0..{MAX_OUTLIER_FRACTION}")
        if self.rank < 0:
            raise ValueError(f"rank {self.rank} is negative")

    @property
    def label(self) -> str:
        parts = [self.preset]
        if self.outliers:
            parts.append(f"{self.outliers * 100:g}% outliers")
        if self.rank:
            parts.append(f"rank {self.rank}")
        return " + ".join(parts)

    def storage_bits(self, shape: tuple[int, int]) -> int:
        """Every stored bit: block words (padding counted) plus the extension parts (format §5.5)."""
        rows, cols = shape
        p = PRESETS[self.preset]
        bits = rows * blocks_per_row(cols, p.C) * p.block_bits
        if self.outliers:
            bits += sparse_bits(rows, cols, outlier_count(shape, self.outliers))
        if self.rank:
            bits += lowrank_bits(rows, cols, min(self.rank, rows, cols))
        return bits


def check_rank(rank: int, shape: tuple[int, int], name: str) -> None:
    if rank > min(shape):
        raise ValueError(f"tensor {name!r} ({shape[0]}x{shape[1]}): rank {rank} exceeds min(rows, cols)")


def split_variant(w: np.ndarray, variant: Variant, bias_choice) -> tuple[np.ndarray, int, Extensions | None]:
    """(what the blocks encode, their bias, extensions or None) of W for `variant`; `bias_choice`
    is compress's --bias, applied to the dense part (format §5.5)."""
    preset = PRESETS[variant.preset]
    w = np.asarray(w, dtype=np.float64)

    def bias_of(a):
        return tensor_bias(bias_choice, float(np.max(np.abs(a), initial=0.0)), preset)

    if not variant.outliers and not variant.rank:
        return w, bias_of(w), None
    return split_tensor(w, preset.K, variant.outliers, variant.rank, bias_of)


def encode_variant(w: np.ndarray, variant: Variant, bias_choice, encode=encoder.encode_tensor
                   ) -> tuple[EncodedTensor, Extensions | None]:
    """(blocks, extensions or None) of W for `variant`; `encode(w, preset, bias)` encodes the dense
    part (encoder.encode_tensor, or a cached one)."""
    dense, bias, ext = split_variant(w, variant, bias_choice)
    return encode(dense, PRESETS[variant.preset], bias), ext


def budget_variants(outliers: float | None = None, rank: int | None = None) -> list[Variant]:
    """--budget's candidates: each preset plain, with outliers, with a low-rank part, with both."""
    f = DEFAULT_OUTLIERS if outliers is None else outliers
    r = DEFAULT_RANK if rank is None else rank
    return [Variant(p, fo, ro) for p in PRESETS for fo in (0.0, f) for ro in (0, r)]


def allocation_error(size: int, relative_error: float) -> float:
    """What `allocate` minimizes, summed over tensors: size * (relative error)^2, so every weight
    counts alike whatever its tensor's scale (data-free: no activations)."""
    return size * relative_error ** 2


def allocate(costs: dict[str, list[tuple[int, float]]], budget_bits: float) -> dict[str, int]:
    """One variant index per tensor: costs[name] = [(storage bits, error) per variant]; the total
    bits stay within budget_bits and the summed error is greedily minimized.

    Start from each tensor's cheapest variant, then repeatedly take the upgrade (a variant with
    more bits and less error) that buys the most error per bit and still fits; ties go to the
    earlier tensor and variant. Raises ValueError when even the cheapest choice does not fit.
    """
    pick = {n: min(range(len(c)), key=lambda i: (c[i][0], c[i][1], i)) for n, c in costs.items()}
    used = sum(costs[n][i][0] for n, i in pick.items())
    if used > budget_bits:
        raise ValueError(f"the cheapest variants already take {used:,} bits, over the budget of {budget_bits:,.0f}")
    while True:
        best = None
        for n, c in costs.items():
            bits0, err0 = c[pick[n]]
            for i, (bits, err) in enumerate(c):
                if bits > bits0 and err < err0 and used - bits0 + bits <= budget_bits:
                    gain = (err0 - err) / (bits - bits0)
                    if best is None or gain > best[0]:
                        best = (gain, n, i)
        if best is None:
            return pick
        _, n, i = best
        used += costs[n][i][0] - costs[n][pick[n]][0]
        pick[n] = i


@dataclass
class Choice:
    """One tensor's result: the variant taken, its blocks and extensions, and what it costs."""

    variant: Variant
    enc: EncodedTensor
    ext: Extensions | None
    bits: int
    relative_error: float


def choose_variants(names: list[str], load, variants: list[Variant], budget: float, bias_choice,
                    encode=encoder.encode_tensor, progress=None, shapes=None) -> dict[str, Choice]:
    """Encode every tensor (load(name) -> its float weights, one in memory at a time) with every
    variant that fits it, then `allocate` under `budget` bits/weight over all of them.
    progress(name, variant) is called before each encode; `shapes` (name -> (rows, cols)) saves a
    load per tensor for the up-front budget check."""
    tried: dict[str, list[Choice]] = {}
    shapes = {n: tuple(np.shape(load(n))) for n in names} if shapes is None else shapes
    cheapest = sum(min(v.storage_bits(shapes[n]) for v in variants if v.rank <= min(shapes[n])) for n in names)
    total = budget * sum(r * c for r, c in shapes.values())
    if cheapest > total:  # before any encoding
        raise ValueError(f"the cheapest variants already take {cheapest:,} bits, over the budget of {total:,.0f}")
    for name in names:
        w = np.asarray(load(name), dtype=np.float64)
        tried[name] = []
        for v in variants:
            if v.rank > min(w.shape):
                continue
            if progress is not None:
                progress(name, v)
            enc, ext = encode_variant(w, v, bias_choice, encode)
            tried[name].append(Choice(v, enc, ext, v.storage_bits(w.shape), relative_error(w, decode_extended(enc, ext))))
    sizes = {n: c[0].enc.shape[0] * c[0].enc.shape[1] for n, c in tried.items()}
    costs = {n: [(c.bits, allocation_error(sizes[n], c.relative_error)) for c in cs] for n, cs in tried.items()}
    pick = allocate(costs, budget * sum(sizes.values()))
    return {n: tried[n][i] for n, i in pick.items()}


class ResidualTensors:
    """A checkpoint's TensorStore in which the split tensors read as their dense residuals
    W - (outliers + low-rank) (format §5.5, step 5), so the chunked job (compressor/job.py) encodes
    what SeedLM should see. Only the parts are kept; a tensor's residual is rebuilt when its rows
    are first asked for (one tensor in memory at a time: units come tensor by tensor)."""

    def __init__(self, base, parts: dict[str, tuple[Extensions, int, int]]):
        self.base, self.parts = base, parts  # name -> (extensions, bias, K)
        self._cached: tuple[str, np.ndarray] | None = None

    def meta(self, name: str):
        return self.base.meta(name)

    def residual(self, name: str) -> np.ndarray:
        if self._cached is None or self._cached[0] != name:
            from seedlm_fpga.compressor.job import as_weights
            from seedlm_fpga.core.extensions import decode_extensions

            ext, bias, K = self.parts[name]
            w = np.asarray(as_weights(self.base[name]), dtype=np.float64)
            self._cached = (name, w - decode_extensions(ext, w.shape, bias, K))
        return self._cached[1]

    def rows(self, name: str, r0: int, r1: int):
        import torch

        if name in self.parts:
            return torch.from_numpy(np.ascontiguousarray(self.residual(name)[r0:r1]))
        return self.base.rows(name, r0, r1)


#: evaluate --extensions: each preset with the default outliers, the default rank, and both.
EXTENSION_VARIANTS = tuple(Variant(p, f, r) for p in PRESETS
                           for f, r in ((DEFAULT_OUTLIERS, 0), (0.0, DEFAULT_RANK), (DEFAULT_OUTLIERS, DEFAULT_RANK)))
