"""GEMV stimulus for co-simulation: compressed tensors, activations, and the expected Y.

A `GemvCase` holds one GEMV for one engine: the blocks (seed, x, q) of a SeedLM tensor or
the int16 weights of the baseline, an integer activation vector, and it gives the
memory image (format §5.3 / 7), the activation beats (format §10) and the exact Y of the numpy
reference (format §6). Makers below cover real compressed tensors (Gaussian weights, a
stories260K matrix) and the corners of the datapath (q = -8, x = 15, activations at
their extremes, all-zero block words, padded row tails).

Real tensors of up to `EXACT_ENCODE_BLOCKS` blocks (the test shapes, the stories260K
matrix) are compressed by the project's exact encoder (`compressor.encoder.encode_tensor`).
Larger ones (the paper's 2048 x 2048) use `encode_fast`: least squares over a random subset
of seeds, quantized exactly as format §3 -- real compressed blocks in seconds rather than a
minute; the bit-exact check of the engine does not depend on how good the seeds are.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seedlm_fpga.core import reference as ref
from seedlm_fpga.core.lfsr import basis_U
from seedlm_fpga.core.extensions import Extensions, gemv_extensions
from seedlm_fpga.core.reference import to_int16

BASELINE = "baseline"
#: Tensors up to this many blocks go through the exact format §4 encoder; larger ones through `encode_fast`.
EXACT_ENCODE_BLOCKS = 1 << 15
ENGINES = ("seedlm-4", "seedlm-3", BASELINE)


@dataclass
class GemvCase:
    """One GEMV: Y = W a, W given as SeedLM blocks (`seeds`, `x`, `q`) or int16 `weights`."""

    label: str
    engine: str                      # "seedlm-4" | "seedlm-3" | "baseline"
    cols: int
    acts: np.ndarray                 # int64 [cols]
    seeds: np.ndarray | None = None  # [rows, nb]; 0 only in all-zero block words
    x: np.ndarray | None = None      # [rows, nb]
    q: np.ndarray | None = None      # [rows, nb, P]
    weights: np.ndarray | None = None  # int16 [rows, cols] (baseline)
    ext: Extensions | None = None    # outliers / low-rank parts (format §5.5), SeedLM only

    @property
    def preset(self) -> ref.Preset | None:
        return None if self.engine == BASELINE else ref.get_preset(self.engine)

    @property
    def rows(self) -> int:
        return int((self.weights if self.engine == BASELINE else self.seeds).shape[0])

    def image(self, bus_bits: int, layout: str = "beat") -> bytes:
        """The weight image: format §7 (baseline), §5.3 (`layout` "beat") or §5.4 ("packed")."""
        if self.engine == BASELINE:
            return ref.baseline_image(self.weights, bus_bits)
        if layout == "packed":
            return ref.packed_memory_image(self.seeds, self.x, self.q, self.preset, bus_bits)
        return ref.memory_image(self.seeds, self.x, self.q, self.preset, bus_bits)

    def act_beats(self, act_bits: int, acts_per_beat: int) -> list[int]:
        return ref.activation_beats(self.acts, act_bits, acts_per_beat)

    def expected(self) -> list[int]:
        if self.engine == BASELINE:
            return [int(v) for v in ref.gemv_baseline(self.weights, self.acts)]
        y = [int(v) for v in ref.gemv_seedlm(self._ref_seeds(), self.x, self.q, self.acts, self.preset)]
        if self.ext:
            y = [a + int(b) for a, b in zip(y, gemv_extensions(self.ext, (self.rows, self.cols), self.acts))]
        return y

    def _ref_seeds(self) -> np.ndarray:
        """Seed 0 appears only in all-zero words (zero weights, format §5.2): any seed decodes them."""
        zero = self.seeds == 0
        if np.any(zero & ((self.x != 0) | np.any(self.q != 0, axis=-1))):
            raise ValueError(f"{self.label}: seed 0 in a block that is not all zero")
        return np.where(zero, 1, self.seeds)

    def block_fields(self, row: int, j: int, group: int = 1) -> str:
        """Block j of `row` (SeedLM), or its j-th group of `group` weights (baseline), for reports."""
        if self.engine == BASELINE:
            return f"weights {self.weights[row, j * group:(j + 1) * group].tolist()}"
        return f"seed={int(self.seeds[row, j])} x={int(self.x[row, j])} q={self.q[row, j].tolist()}"

    def isolate_row(self, row: int, group: int) -> "GemvCase":
        """A case with one row per unit of `row` (block, or `group` baseline weights), each
        holding only that unit (the rest zero): its outputs are the per-unit terms."""
        if self.engine == BASELINE:
            n = -(-self.cols // group)
            w = np.zeros((n, self.cols), dtype=np.int16)
            for u in range(n):
                w[u, u * group:(u + 1) * group] = self.weights[row, u * group:(u + 1) * group]
            return GemvCase(f"{self.label} row {row} per {group}-weight beat", BASELINE, self.cols,
                            self.acts, weights=w)
        nb = self.seeds.shape[1]
        eye = np.eye(nb, dtype=bool)
        seeds = np.where(eye, self.seeds[row][None, :], 0)
        x = np.where(eye, self.x[row][None, :], 0)
        q = np.where(eye[..., None], self.q[row][None, :, :], 0)
        return GemvCase(f"{self.label} row {row} per block", self.engine, self.cols, self.acts,
                        seeds=seeds.astype(self.seeds.dtype), x=x.astype(np.uint8), q=q.astype(np.int8))


# --- activations ---------------------------------------------------------------------------

def act_range(act_bits: int) -> tuple[int, int]:
    return -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1


def random_acts(cols: int, act_bits: int, rng: np.random.Generator) -> np.ndarray:
    lo, hi = act_range(act_bits)
    return rng.integers(lo, hi + 1, cols, dtype=np.int64)


# --- a fast encoder for stimulus -----------------------------------------------------------

def encode_fast(weights, preset: ref.Preset, rng: np.random.Generator, n_seeds: int = 64,
                chunk: int = 8192):
    """Compress weights[rows, cols] over `n_seeds` random seeds: (seeds, x, q, bias).

    Per block: the seed of least unquantized least-squares residual, then format §3's
    quantizer with the per-tensor bias that puts the largest block at x = 15.
    """
    w = np.asarray(weights, dtype=np.float64)
    rows, cols = w.shape
    C, P = preset.C, preset.P
    nb = ref.blocks_per_row(cols, C)
    padded = np.zeros((rows, nb * C))
    padded[:, :cols] = w
    blocks = padded.reshape(-1, C)
    cand = rng.choice(np.arange(1, 1 << preset.K), size=n_seeds, replace=False)
    U = basis_U(cand, C, P, preset.K, preset.taps)            # [n, C, P]
    pinv = np.linalg.pinv(U)                                   # [n, P, C]
    best_seed = np.empty(len(blocks), dtype=np.int64)
    best_t = np.empty((len(blocks), P))
    for s in range(0, len(blocks), chunk):
        b = blocks[s:s + chunk]
        t = np.einsum("npc,bc->bnp", pinv, b)                  # [b, n, P]
        resid = np.einsum("ncp,bnp->bnc", U, t) - b[:, None, :]
        k = np.argmin(np.sum(resid * resid, axis=-1), axis=1)
        best_seed[s:s + chunk] = cand[k]
        best_t[s:s + chunk] = t[np.arange(len(b)), k]
    m = np.max(np.abs(best_t))
    bias = int(np.frexp(m)[1] - 1) - 2 - 15 if m > 0 else ref.PAPER_BIAS
    x, q = ref.quantize(best_t, bias)
    return (best_seed.reshape(rows, nb).astype(np.uint16), x.reshape(rows, nb),
            q.reshape(rows, nb, P), bias)


# --- case makers ---------------------------------------------------------------------------

def weights_case(label: str, engine: str, weights, act_bits: int, rng: np.random.Generator,
                 acts=None) -> GemvCase:
    """A case from real weights[rows, cols]: compressed for SeedLM, int16 for the baseline."""
    weights = np.asarray(weights)
    cols = weights.shape[1]
    acts = random_acts(cols, act_bits, rng) if acts is None else np.asarray(acts, dtype=np.int64)
    if engine == BASELINE:
        return GemvCase(label, engine, cols, acts, weights=to_int16(weights))
    preset = ref.get_preset(engine)
    if weights.shape[0] * ref.blocks_per_row(cols, preset.C) <= EXACT_ENCODE_BLOCKS:
        from seedlm_fpga.compressor.encoder import encode_tensor
        enc = encode_tensor(weights, preset)
        seeds, x, q = enc.seeds, enc.x, enc.q
    else:
        seeds, x, q, _ = encode_fast(weights, preset, rng)
    return GemvCase(label, engine, cols, acts, seeds=seeds, x=x, q=q)


def extended_case(engine: str, rows: int, cols: int, act_bits: int, seed: int, outliers: float,
                  rank: int) -> GemvCase:
    """Gaussian weights split as `compress --outliers F --rank R` splits them (format §5.5, bias
    "auto"): the parts as stored, the residual encoded as `weights_case` encodes weights."""
    from seedlm_fpga.compressor.extend import Variant, split_variant

    rng = np.random.default_rng(seed)
    w = rng.normal(0.0, 0.02, (rows, cols))
    dense, _, ext = split_variant(w, Variant(engine, outliers, rank), "auto")
    case = weights_case(f"gaussian {rows}x{cols}, outliers {outliers}, rank {rank}", engine, dense, act_bits, rng)
    return dataclasses.replace(case, ext=ext)


def random_extensions(rng, rows: int, cols: int, nnz: int = 0, rank: int = 0, max_shift: int = 8) -> Extensions:
    """Random format §5.5 parts: `nnz` outliers at distinct places (full-range int16 codes), a rank-`rank`
    product of full-range int8 factors, shifts in 0..max_shift-1."""
    from seedlm_fpga.core.extensions import LowRankPart, SparsePart, col_index_dtype, row_ptr_dtype

    sp = lr = None
    if nnz:
        pos = np.sort(rng.choice(rows * cols, nnz, replace=False))
        r, c = np.divmod(pos, cols)
        ptr = np.zeros(rows + 1, dtype=row_ptr_dtype(nnz))
        np.cumsum(np.bincount(r, minlength=rows), out=ptr[1:])
        sp = SparsePart(ptr, c.astype(col_index_dtype(cols)), rng.integers(-32767, 32768, nnz).astype(np.int16),
                        int(rng.integers(0, max_shift)))
    if rank:
        lr = LowRankPart(rng.integers(-127, 128, (rows, rank)).astype(np.int8),
                         rng.integers(-127, 128, (cols, rank)).astype(np.int8),
                         rng.integers(0, max_shift, rank).astype(np.uint8))
    return Extensions(sp, lr)


def gaussian_case(engine: str, rows: int, cols: int, act_bits: int, seed: int = 0) -> GemvCase:
    rng = np.random.default_rng(seed)
    w = rng.normal(0.0, 0.02, (rows, cols))
    return weights_case(f"gaussian {rows}x{cols}", engine, w, act_bits, rng)


def random_case(engine: str, rows: int, cols: int, act_bits: int, seed: int = 0) -> GemvCase:
    """Uniformly random fields: any seed, x in 0..15, q in -8..7, full-range activations."""
    rng = np.random.default_rng(seed)
    acts = random_acts(cols, act_bits, rng)
    label = f"random {rows}x{cols}"
    if engine == BASELINE:
        w = rng.integers(-32768, 32768, (rows, cols), dtype=np.int64).astype(np.int16)
        return GemvCase(label, engine, cols, acts, weights=w)
    p = ref.get_preset(engine)
    nb = ref.blocks_per_row(cols, p.C)
    seeds = rng.integers(1, 1 << p.K, (rows, nb)).astype(np.uint16)
    x = rng.integers(0, 16, (rows, nb)).astype(np.uint8)
    q = rng.integers(-8, 8, (rows, nb, p.P)).astype(np.int8)
    return GemvCase(label, engine, cols, acts, seeds=seeds, x=x, q=q)


def extreme_case(engine: str, rows: int, cols: int, act_bits: int, act_sign: int = -1,
                 seed: int = 0) -> GemvCase:
    """The largest magnitudes: q = -8 and x = 15 everywhere (baseline: -32768), and every
    activation at its minimum (act_sign = -1) or maximum (+1); act_sign = 0 picks min or
    max per element so that every product of row 0 is negative: |Y[0]| near its bound."""
    rng = np.random.default_rng(seed)
    lo, hi = act_range(act_bits)
    acts = np.full(cols, lo if act_sign < 0 else hi, dtype=np.int64)
    label = f"extreme {rows}x{cols} acts={({-1: 'min', 1: 'max'}).get(act_sign, 'aligned')}"
    if engine == BASELINE:
        return GemvCase(label, engine, cols, acts if act_sign else np.full(cols, hi, np.int64),
                        weights=np.full((rows, cols), -32768, np.int16))
    p = ref.get_preset(engine)
    nb = ref.blocks_per_row(cols, p.C)
    seeds = rng.integers(1, 1 << p.K, (rows, nb)).astype(np.uint16)
    x = np.full((rows, nb), 15, np.uint8)
    q = np.full((rows, nb, p.P), -8, np.int8)
    if act_sign == 0:
        acc = ref.block_acc(seeds[0], q[0], p).reshape(-1)[:cols]
        acts = np.where(acc > 0, lo, hi).astype(np.int64)
    return GemvCase(label, engine, cols, acts, seeds=seeds, x=x, q=q)


def zero_words_case(engine: str, rows: int, cols: int, act_bits: int, seed: int = 0,
                    fraction: float = 0.5) -> GemvCase:
    """Random blocks with a `fraction` of all-zero block words (seed 0, x 0, q 0), including a
    row of zero words only (baseline: zero weights)."""
    case = random_case(engine, rows, cols, act_bits, seed)
    rng = np.random.default_rng(seed + 1)
    if engine == BASELINE:
        zero = rng.random(case.weights.shape) < fraction
        zero[0] = True
        case.weights = np.where(zero, 0, case.weights).astype(np.int16)
    else:
        zero = rng.random(case.seeds.shape) < fraction
        zero[0] = True
        case.seeds = np.where(zero, 0, case.seeds).astype(np.uint16)
        case.x = np.where(zero, 0, case.x).astype(np.uint8)
        case.q = np.where(zero[..., None], 0, case.q).astype(np.int8)
    case.label = f"zero words {rows}x{cols}"
    return case


def stories_case(engine: str, act_bits: int, tensor: str = "layers.0.w2", rows: int | None = None,
                 seed: int = 0, path: str | Path | None = None) -> GemvCase:
    """A stories260K matrix (default w2: 64 x 172, rows not a multiple of C nor of a beat)."""
    from seedlm_fpga.compressor.llama2c import read_llama2c
    from seedlm_fpga.examples import MODEL

    path = Path(path) if path is not None else MODEL
    _, tensors = read_llama2c(path)
    w = tensors[tensor][:rows]
    rng = np.random.default_rng(seed)
    return weights_case(f"stories260K {tensor} {w.shape[0]}x{w.shape[1]}", engine, w, act_bits, rng)
