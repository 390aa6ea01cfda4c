"""CPU seed search with pass 1 as a tiled float32 GEMM (torch/BLAS), pass 2 from `search_cpu`.

Pass 1: the lower bound of every seed is linear in the C(C+1)/2 quadratic features of w,

    key(n) = ||w||^2 (1 - m) - sum_{c<=d} f_cd(w) Proj(n)_cd,   f_cc = w_c^2, f_cd = 2 w_c w_d,

with Proj(n) = Q Q^T (U = Q R, float64) the orthogonal projector onto span(U(n)): |Proj_cd| <= 1
whatever cond(U), so one uniform relative margin bounds the float32 rounding for every seed,
ill-conditioned ones included (`search_torch.projector_margin`; the features and table are
shared with the torch path). [blocks x F] @ [F x TILE] per call into a preallocated buffer,
reduced at once to the smallest key of each segment of `search_cpu.SEG` positions.

Rounding (why key <= the true residual): with u = 2^-24 and F = C(C+1)/2 + 1 terms (the last
feature is ||w||^2 (1 - m), coefficient 1), each feature is rounded once from float64 and each
table entry once from float64 (|entry| <= 2: 2 Proj_cd off the diagonal); BLAS sums the F
products in any order, with or without FMA, so |computed - exact| <= gamma_(F+4) times
(sum |f_cd Proj_cd| + ||w||^2) <= gamma_(F+4) (C + 1) ||w||^2, as sum_{c<=d} |f_cd| = ||w||_1^2
<= C ||w||^2. `projector_margin` is twice that plus 3u (rounding the constant feature) plus
TABLE_ERROR (1e-9; the float64 projector of the worst seed, cond(U) ~5e5, agrees between QR
and SVD to 1e-15). Blocks are normalised (max|w| in [0.5, 1), ||w||^2 >= 0.25), so the margin's
spare half (>= ~1e-6 absolute) also covers subnormal underflow of tiny products (<= 2^-149
each, F of them). Checked against float64 residuals of every seed in tests/test_encoder.py.

Pass 2 is the numba kernel's (`search_cpu._refine`): branch and bound over the segments in
ascending order of their GEMM minima, each segment's correlation keys computed once. Mixing the
two bounds is safe: both are below the true residual, so the optimum's segment has a GEMM
minimum <= the best error so far and the optimum itself a correlation key <= it.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np
import torch
from numba import njit, prange

from seedlm_fpga.compressor import search_cpu as sc
from seedlm_fpga.core.reference import Preset
from seedlm_fpga.compressor.search_tables import SearchTables
from seedlm_fpga.compressor.search_torch import PAD_KEY, _features, _plain_float32, _projector_features, projector_margin

#: Seed positions and blocks per GEMM call (per worker). Measured here, seedlm-4, pass 1 in us
#: per block on 2 cores (noisy shared machine, 3 runs each): 2048 x 1024: 29-31, 1024 x 1024:
#: 35-38, 4096 x 512: 30-32, 4096 x 4096: 40; the [BLOCKS x TILE] output (8 MiB) lives in L3.
TILE = 1024
BLOCKS = 2048


@lru_cache(maxsize=4)
def _tiles(preset: Preset) -> torch.Tensor:
    """float32 [tiles, TILE, F']: the projector feature table, padded to whole tiles (padding
    positions get key PAD_KEY * ||w||^2 (1 - m): never a segment minimum), each tile contiguous
    and position-major (multiplied as its transpose: ~15% faster here than feature-major)."""
    proj = _projector_features(preset)
    F, N = proj.shape
    n_tiles = -(-N // TILE)
    pad = np.zeros((F, n_tiles * TILE - N), dtype=np.float32)
    pad[preset.C * (preset.C + 1) // 2] = PAD_KEY
    full = np.concatenate([proj, pad], axis=1)
    return torch.from_numpy(np.ascontiguousarray(full.reshape(F, n_tiles, TILE).transpose(1, 2, 0)))


def segment_minima(wn: np.ndarray, preset: Preset) -> np.ndarray:
    """int32 [n, segments]: the smallest key of each segment of SEG positions, as the
    order-preserving integers of `search_cpu._ordered` (normalised blocks wn [n, C])."""
    tiles = _tiles(preset)
    n_tiles, T, _ = tiles.shape
    spt = T // sc.SEG
    n_seg = -(-_projector_features(preset).shape[1] // sc.SEG)  # as search_cpu: the last may be short
    feats = _features(torch.from_numpy(wn), projector_margin(preset.C))
    n = len(wn)
    out = torch.empty((n_tiles, n, spt), dtype=torch.float32)

    def work(starts):
        buf = torch.empty((BLOCKS, T), dtype=torch.float32)
        for b0 in starts:
            b1 = min(n, b0 + BLOCKS)
            kb = buf[:b1 - b0]
            for i in range(n_tiles):
                torch.mm(feats[b0:b1], tiles[i].t(), out=kb)
                torch.amin(kb.view(b1 - b0, spt, sc.SEG), dim=2, out=out[i, b0:b1])

    # One worker thread per core, each running single-threaded torch ops on its own groups of
    # blocks: each output tile stays in one core's L2, and a core taken by another process
    # slows one worker instead of stalling every op at a thread barrier.
    starts = list(range(0, n, BLOCKS))
    workers = max(1, min(torch.get_num_threads(), len(starts)))
    threads = torch.get_num_threads()
    with _plain_float32():  # the margin assumes plain float32 products
        try:
            torch.set_num_threads(1)
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(work, [starts[k::workers] for k in range(workers)]))
        finally:
            torch.set_num_threads(threads)
    keys = out.permute(1, 0, 2).reshape(n, n_tiles * spt)[:, :n_seg].contiguous()
    i = keys.view(torch.int32)
    return torch.where(i < 0, i ^ 0x7FFFFFFF, i).numpy()


@njit(parallel=True, cache=True)
def _pass2(wn, bias, w32, ww32, segmin, C, P, g32, a32, margin, ill_pos, ill_q32, ill_margin, cycle, pinv,
           s_ext, s_scale, out_pos, out_x, out_q, out_err, out_cand):
    """search_cpu.search_kernel's pass 2 for each block, given its segment minima."""
    n = wn.shape[0]
    N = len(cycle)
    for bi in prange(n):
        corr = np.empty(sc.TILE + P + 1, dtype=np.float32)
        z = np.empty(sc.TILE, dtype=np.float32)
        key = np.empty(sc.TILE, dtype=np.float32)
        f1 = np.empty(1, dtype=np.float32)
        i1 = f1.view(np.int32)
        ill_z = np.empty(len(ill_pos), dtype=np.float32)
        ill_key = np.empty(len(ill_pos), dtype=np.float32)
        qbuf = np.empty(P, dtype=np.int8)
        tbuf = np.empty(P)
        best, pos, x, checked = sc._refine(wn[bi], bias[bi], w32[bi], ww32[bi], segmin[bi], N, C, P, g32, a32,
                                           margin, ill_pos, ill_q32, ill_margin, cycle, pinv, s_ext, s_scale, corr,
                                           z, key, ill_z, ill_key, f1, i1, qbuf, tbuf, out_q[bi])
        out_pos[bi] = pos
        out_x[bi] = x
        out_err[bi] = best
        out_cand[bi] = checked


def search(wn: np.ndarray, bias: np.ndarray, tables: SearchTables):
    """(positions, x, q, err, candidates) for normalised nonzero blocks wn [n, C] (float64)."""
    return sc.run(_pass2, wn, bias, tables, segment_minima(wn, tables.preset))
