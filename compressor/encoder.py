"""The SeedLM encoder: exact format §4 seed search over all 2^K - 1 seeds, tensor by tensor.

For every block w of C weights it returns the seed, exponent code x and coefficients q
with the lowest quantized error ||w - w_hat||^2 (format §3 quantizer, float64), ties to the
lowest seed -- the same result as `brute_force_search`, only fast:

- CPU (default): the fused numba kernel (`search_cpu`): pass 1 (float32 lower bound of every
  seed by correlation with the LFSR cycle, C + P(P+1)/2 + P multiply-adds per seed, smallest
  per segment), pass 2 (branch and bound: exact float64 checks of the few seeds it cannot rule
  out). kernel="gemm": pass 1 as a tiled BLAS GEMM over quadratic features of w
  (`search_gemm`), same pass 2 and result; measured ~2x slower on the shared 2-core box (its
  [blocks x seeds] output goes through memory, the numba kernel's tables stay in L1/L2).
- CUDA (``device="cuda"``), or CPU without numba: plain torch ops (`search_torch`).
Both prune only with a lower bound that provably stays below the true unquantized residual
(float32 rounding bounded, see `search_tables`), so the arg-min is exact.

Blocks are scaled by a power of two (max |w| in [0.5, 1)) and the bias shifted to match:
x and q are unchanged by such a scaling, and errors scale back exactly.

Per-tensor exponent bias b (format §3), `resolve_bias`:
- "auto" (default): b = floor(log2 max|W|) - 17 + AUTO_HEADROOM (0), so that x = 15 holds
  coefficients up to 2^(18 + b) = 2^(E+1) > max|W|: the largest blocks sit at the top code and
  small blocks keep 15 octaves below. Measured (seedlm-4 / -3, exact search) on stories260K
  wq0, wo2, w1_1, w2_3 and a Gaussian matrix: headroom 0 gives the lowest error of -3..3
  (e.g. wo2: 0.1221 at 0, 0.1226 at +1..+3, 0.1245 at -1, 0.167 at -2, where clipping
  starts); "paper" equals it on these unit-scale tensors but gives 0.59 on a Gaussian
  scaled to 2e-6, where most blocks fall below its exponent floor.
- "paper": b = -10 (the paper's absolute exponent); an int: that b.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Callable

import numpy as np

from seedlm_fpga.errors import UserError
from seedlm_fpga.core.reference import (AUTO_BIAS_OFFSET, BIAS_RANGE, PAPER_BIAS, EncodedTensor, Preset,
                                        blocks_per_row, quantize)
from seedlm_fpga.core.lfsr import basis_S
from seedlm_fpga.compressor.search_tables import search_tables

#: Bumped whenever a change could alter any encoding (caches of encodings key on it).
SEARCH_VERSION = 2
#: log2 headroom of the "auto" bias above max|W| (see resolve_bias).
AUTO_HEADROOM = 0
#: A chunk of rows holds at most this many blocks: memory stays bounded on any tensor.
CHUNK_BLOCKS = 1 << 16


class EncoderInputError(UserError, ValueError):
    """Bad weights or options for the encoder (a UserError for the CLI, a ValueError for callers)."""


# --- the exhaustive reference ----------------------------------------------------------------

@lru_cache(maxsize=4)
def _brute_tables(preset: Preset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    seeds = np.arange(1, 1 << preset.K, dtype=np.int64)
    S = basis_S(seeds, preset.C, preset.P, preset.K, preset.taps).astype(np.float64)
    return seeds, search_tables(preset).pinv_by_seed(), S


def brute_force_search(block: np.ndarray, preset: Preset, bias: int) -> tuple[int, int, np.ndarray, float]:
    """format §4 by exhaustion: every seed, t = pinv(U) w, reference.quantize, err = ||w - w_hat||^2.

    Returns (seed, x, q[P], err); ties go to the lowest seed. float64 numpy throughout.
    Sums run in a fixed order (c = 0, 1, ..., C-1), the order every fast path uses too, so
    that t lands on the same side of a rounding or exponent boundary everywhere (an exact
    fit puts max|t| exactly on a power of two).
    """
    w = np.asarray(block, dtype=np.float64)
    seeds, pinv, S = _brute_tables(preset)
    t = np.zeros(pinv.shape[:2])
    for c in range(preset.C):
        t += pinv[:, :, c] * w[c]
    x, q = quantize(t, bias)
    scale = np.ldexp(1.0, x.astype(np.int64) + bias) / preset.s_scale
    w_hat = np.einsum("scp,sp->sc", S, q.astype(np.float64)) * scale[:, None]  # = decode_blocks
    err = np.zeros(len(seeds))
    for c in range(preset.C):
        err += (w[c] - w_hat[:, c]) ** 2
    i = int(np.argmin(err))  # first minimum: lowest seed
    return int(seeds[i]), int(x[i]), q[i].copy(), float(err[i])


# --- the fast search ---------------------------------------------------------------------------

def _check_device(device: str) -> str:
    if device == "cpu":
        return device
    if device == "cuda" or device.startswith("cuda:"):
        import torch

        if not torch.cuda.is_available():
            raise EncoderInputError("CUDA requested but torch.cuda.is_available() is False")
        return device
    raise EncoderInputError(f"unknown device {device!r} (use 'cpu' or 'cuda')")


@lru_cache(maxsize=4)
def _torch_search(preset: Preset, device: str):
    from seedlm_fpga.compressor.search_torch import TorchSearch

    return TorchSearch(preset, device)


#: Most blocks per torch call on CUDA (fewer calls, less fixed cost per call).
TORCH_MAX_STEP = 65536


def _torch_step(device: str, n_seeds: int) -> int:
    """Blocks per torch call: [step x N] float32 bounds take at most 1/4 of GPU memory
    (65536 blocks, 17 GB, on an 80 GB H100)."""
    if device == "cpu":
        return 256
    import torch

    total = torch.cuda.get_device_properties(torch.device(device)).total_memory
    return int(min(TORCH_MAX_STEP, max(1024, total // (16 * n_seeds))))


def search_blocks(blocks: np.ndarray, preset: Preset, bias: int, device: str = "cpu", *,
                  kernel: str = "auto", stats: dict | None = None):
    """Best seed per block (exact format §4 arg-min, ties to the lowest seed).

    blocks: float [n, C]. Returns (seeds uint16 [n], x uint8 [n], q int8 [n, P], err float64 [n]),
    err = ||w - w_hat||^2. kernel: "auto" (numba on CPU when numba is installed, else torch),
    "gemm" (CPU: pass 1 as a BLAS GEMM, pass 2 numba; see search_gemm), "numba", "torch".
    `stats`, if given, receives diagnostics: "candidates" (seeds whose lower bound did not rule
    them out: on CPU those checked exactly, on torch every seed with a bound <= the first upper bound).
    """
    device = _check_device(device)
    w = np.ascontiguousarray(blocks, dtype=np.float64)
    n, C = w.shape
    if C != preset.C:
        raise ValueError(f"blocks have {C} weights, preset {preset.name} needs C={preset.C}")
    P = preset.P
    seeds = np.ones(n, dtype=np.uint16)
    x = np.zeros(n, dtype=np.uint8)
    q = np.zeros((n, P), dtype=np.int8)
    err = np.zeros(n, dtype=np.float64)
    mx = np.abs(w).max(axis=1) if n else np.zeros(0)
    live = np.flatnonzero(mx > 0)  # zero blocks: seed 1, x = 0, q = 0, err = 0 (format §3)
    if len(live) == 0:
        return seeds, x, q, err
    k = np.frexp(mx[live])[1].astype(np.int64)  # max |w| = m 2^k, m in [0.5, 1)
    wn = np.ldexp(w[live], -k[:, None])
    bias_n = int(bias) - k
    tables = search_tables(preset)
    if kernel == "auto":
        kernel = "numba" if device == "cpu" else "torch"
    if kernel == "numba":
        if device != "cpu":
            raise ValueError("the numba kernel needs device='cpu'")
        from seedlm_fpga.compressor import search_cpu  # numba compiles on first use: import it here

        pos, xs, qs, es, n_cand = search_cpu.search(wn, bias_n, tables)
    elif kernel == "gemm":
        if device != "cpu":
            raise ValueError("the gemm kernel needs device='cpu'")
        from seedlm_fpga.compressor import search_gemm

        pos, xs, qs, es, n_cand = search_gemm.search(wn, bias_n, tables)
    elif kernel == "torch":
        ts = _torch_search(preset, device)
        step = _torch_step(device, tables.n_seeds)
        parts = [ts.search(wn[i:i + step], bias_n[i:i + step]) for i in range(0, len(live), step)]
        pos, xs, qs, es = (np.concatenate([p[j] for p in parts]) for j in range(4))
        n_cand = sum(p[4] for p in parts)
    else:
        raise ValueError(f"unknown kernel {kernel!r} (use 'auto', 'numba', 'gemm' or 'torch')")
    seeds[live] = tables.cycle[pos]
    x[live] = xs
    q[live] = qs
    err[live] = np.ldexp(es, 2 * k)
    if stats is not None:
        stats["candidates"] = stats.get("candidates", 0) + n_cand
    return seeds, x, q, err


# --- tensors -------------------------------------------------------------------------------------

def resolve_bias(bias: str | int, w: np.ndarray, preset: Preset) -> int:
    """The tensor's exponent bias b: "auto" (documented rule), "paper" (-10) or an integer."""
    if isinstance(bias, str) and bias not in ("auto", "paper"):
        try:
            bias = int(bias)
        except ValueError:
            raise EncoderInputError(f"unknown bias {bias!r} (use 'auto', 'paper' or an integer)") from None
    if bias == "paper":
        return PAPER_BIAS
    if bias == "auto":
        return auto_bias(_max_abs(np.asarray(w)))
    if isinstance(bias, (bool, np.bool_)) or not isinstance(bias, (int, np.integer)):
        raise EncoderInputError(f"unknown bias {bias!r} (use 'auto', 'paper' or an integer)")
    if not BIAS_RANGE[0] <= bias <= BIAS_RANGE[1]:
        raise EncoderInputError(f"bias {bias} out of range {BIAS_RANGE[0]}..{BIAS_RANGE[1]}")
    return int(bias)


def auto_bias(wmax: float) -> int:
    """The "auto" bias of a tensor whose largest |weight| is wmax (see resolve_bias)."""
    if wmax == 0:
        return PAPER_BIAS  # any bias encodes zeros exactly
    return (math.frexp(wmax)[1] - 1) - AUTO_BIAS_OFFSET + AUTO_HEADROOM


def chunk_rows(nb: int, max_blocks: int | None = None) -> int:
    """Rows per chunk: as many as fit in max_blocks (default CHUNK_BLOCKS) blocks, at least one."""
    max_blocks = CHUNK_BLOCKS if max_blocks is None else max_blocks
    return max(1, max_blocks // max(1, nb))


def row_chunks(rows: int, nb: int, max_blocks: int | None = None):
    """(r0, r1) of each chunk of rows, in order: the boundaries every run of a tensor uses."""
    step = chunk_rows(nb, max_blocks)
    for r0 in range(0, rows, step):
        yield r0, min(rows, r0 + step)


def _max_abs(w: np.ndarray) -> float:
    """max |w| in row chunks (no full-size temporaries); raises on non-finite weights."""
    if w.ndim != 2:
        return float(np.max(np.abs(w))) if w.size else 0.0
    m = 0.0
    for r0, r1 in row_chunks(w.shape[0], max(1, w.shape[1] // 8)):
        part = np.abs(np.asarray(w[r0:r1], dtype=np.float64))
        if not np.all(np.isfinite(part)):
            raise EncoderInputError("weights contain non-finite values (NaN or inf)")
        if part.size:
            m = max(m, float(part.max()))
    return m


def _check_weights(w, preset: Preset) -> np.ndarray:
    w = np.asarray(w)
    if w.ndim != 2:
        raise EncoderInputError(f"weights must be a 2-D array (rows, cols), got shape {w.shape}")
    if not (np.issubdtype(w.dtype, np.floating) or np.issubdtype(w.dtype, np.integer)):
        raise EncoderInputError(f"weights must be real numbers, got dtype {w.dtype}")
    if w.shape[1] < preset.C:
        raise EncoderInputError(f"rows of {w.shape[1]} weights are shorter than one block "
                                f"(C={preset.C} for {preset.name})")
    _max_abs(w)  # raises on NaN / inf
    return w


def encode_tensor(w: np.ndarray, preset: Preset, bias: str | int = "auto", device: str = "cpu",
                  progress: Callable[[int], None] | None = None) -> EncodedTensor:
    """Compress W [rows, cols] block by block (rows zero-padded to a multiple of C).

    Works in chunks of rows (at most CHUNK_BLOCKS blocks each), so memory stays bounded;
    progress(n) is called with the number of blocks finished after each chunk.
    """
    w = _check_weights(w, preset)
    device = _check_device(device)
    b = resolve_bias(bias, w, preset)
    rows, cols = w.shape
    C, P = preset.C, preset.P
    nb = blocks_per_row(cols, C)
    seeds = np.empty((rows, nb), dtype=np.uint16)
    x = np.empty((rows, nb), dtype=np.uint8)
    q = np.empty((rows, nb, P), dtype=np.int8)
    for r0, r1 in row_chunks(rows, nb):
        chunk = np.zeros((r1 - r0, nb * C), dtype=np.float64)
        chunk[:, :cols] = w[r0:r1]
        s, xx, qq, _ = search_blocks(chunk.reshape(-1, C), preset, b, device)
        seeds[r0:r1] = s.reshape(r1 - r0, nb)
        x[r0:r1] = xx.reshape(r1 - r0, nb)
        q[r0:r1] = qq.reshape(r1 - r0, nb, P)
        if progress is not None:
            progress((r1 - r0) * nb)
    return EncodedTensor(seeds=seeds, x=x, q=q, bias=b, preset=preset, shape=(rows, cols))
