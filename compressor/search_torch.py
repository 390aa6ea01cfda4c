"""The exact format §4 seed search in plain torch ops (the CUDA path; also runs on CPU).

Per chunk of blocks:
  1. lower bound of the quantized error for all seeds as one float32 GEMM: the residual
     ||w||^2 - w^T Proj(s) w with Proj(s) = Q Q^T (U = Q R) is linear in the C(C+1)/2 features
     w_c w_d, so [blocks x F] @ [F x N]; a uniform float32 margin makes it a safe bound
     (`projector_margin`). The bound matrix is read once more, for the smallest bound (and its
     seed) of each segment of SEG positions;
  2. the exact float64 error e0 (format §3 quantizer): the least over the smallest-bound seeds
     of the PROBE segments with the smallest minima;
  3. every seed whose bound is <= e0 is checked exactly (the optimum is <= e0, so it is among
     them); only segments whose minimum is <= e0 are looked at again. Ties go to the lowest seed.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from seedlm_fpga.core.lfsr import basis_U
from seedlm_fpga.core.reference import Preset
from seedlm_fpga.compressor.search_tables import TABLE_ERROR, U32, _gamma, search_tables


def projector_margin(C: int) -> float:
    """Relative float32 error bound of key = ||w||^2 (1 - m) - features . proj, doubled.

    Features w_c w_d (times 2 off the diagonal) are rounded once from float64, projector
    entries once (|Proj_cd| <= 1), F products summed together with the ||w||^2 (1 - m) term
    (one more feature with coefficient 1, padding features are 0): error
    <= gamma_(F+4) (sum |Proj_cd w_c w_d| + ||w||^2) <= gamma_(F+4) (C + 1) ||w||^2; rounding
    ||w||^2 (1 - m) to float32 adds 3 u ||w||^2.
    """
    F = C * (C + 1) // 2
    return 2.0 * (_gamma(F + 4) * (C + 1) + 3 * U32) + TABLE_ERROR


#: Feature count padded to a multiple of 8 (GEMM alignment); the extra rows are zero.
def _n_features(C: int) -> int:
    return -(-(C * (C + 1) // 2 + 1) // 8) * 8


@lru_cache(maxsize=4)
def _projector_features(preset: Preset) -> np.ndarray:
    """float32 [F', N]: -(coefficient of w_c w_d, c <= d, in w^T Proj(n) w), then a row of ones
    (it multiplies the ||w||^2 (1 - m) feature), then zero rows up to F'."""
    C = preset.C
    U = basis_U(search_tables(preset).cycle, C, preset.P, preset.K, preset.taps)  # [N, C, P]
    Q, _ = np.linalg.qr(U)
    proj = Q @ Q.transpose(0, 2, 1)  # [N, C, C]
    iu, ju = np.triu_indices(C)
    coef = -proj[:, iu, ju] * np.where(iu == ju, 1.0, 2.0)
    out = np.zeros((_n_features(C), U.shape[0]), dtype=np.float32)
    out[:len(iu)] = coef.T
    out[len(iu)] = 1.0
    return out


def _features(wn: torch.Tensor, margin: float) -> torch.Tensor:
    """float32 [n, F']: w_c w_d (c <= d), ||w||^2 (1 - margin), zeros."""
    n, C = wn.shape
    iu, ju = np.triu_indices(C)
    f = torch.zeros((n, _n_features(C)), dtype=torch.float64, device=wn.device)
    f[:, :len(iu)] = wn[:, iu] * wn[:, ju]
    f[:, len(iu)] = (wn * wn).sum(-1) * (1 - margin)
    return f.to(torch.float32)


#: Positions per segment (step 1), and segments whose smallest-bound seed gives e0 (step 2).
SEG = 256
PROBE = 4
#: Bound of the padding positions past N (a feature row of ones scaled by it): never a candidate.
PAD_KEY = 1.0e30


class TorchSearch:
    """Tables of one preset on one device."""

    def __init__(self, preset: Preset, device: str):
        t = search_tables(preset)
        self.preset = preset
        self.device = torch.device(device)
        dev = self.device
        self.cycle = torch.tensor(t.cycle, device=dev)
        self.pinv = torch.tensor(t.pinv, device=dev)
        C, P = preset.C, preset.P
        self.s_idx = torch.arange(C * P, device=dev).reshape(C, P) + 1
        self.s_ext = torch.tensor(t.s_ext, dtype=torch.float64, device=dev)
        proj = _projector_features(preset)
        N = proj.shape[1]
        pad = np.zeros((proj.shape[0], -(-N // SEG) * SEG - N), dtype=np.float32)
        pad[C * (C + 1) // 2] = PAD_KEY  # times ||w||^2 (1 - m) >= 0.24 for a normalised block
        self.n_seeds = N
        self.proj = torch.as_tensor(np.concatenate([proj, pad], axis=1), device=dev)
        self.margin = projector_margin(C)

    def exact(self, wn: torch.Tensor, bias: torch.Tensor, pos: torch.Tensor):
        """err, x, q of blocks wn[m, C] at positions pos[m] (float64, format §3)."""
        pinv = self.pinv[pos]
        t = torch.zeros_like(pinv[..., 0])
        for c in range(wn.shape[1]):  # fixed order c = 0 .. C-1, as brute_force_search
            t = t + pinv[..., c] * wn[:, c:c + 1]
        mx = t.abs().amax(-1)
        _, e = torch.frexp(mx)
        x = torch.clamp(e.to(torch.int64) - 3 - bias, 0, 15)
        x = torch.where(mx > 0, x, torch.zeros_like(x))
        scale = torch.ldexp(torch.ones_like(mx), x + bias)
        q = torch.clamp(torch.round(t / scale.unsqueeze(-1)), -8, 7)
        q = torch.where((mx > 0).unsqueeze(-1), q, torch.zeros_like(q))
        S = self.s_ext[pos.unsqueeze(-1).unsqueeze(-1) + self.s_idx]
        acc = (S * q.unsqueeze(-2)).sum(-1)  # exact integers in float64
        recon = acc * (scale / self.preset.s_scale).unsqueeze(-1)
        err = torch.zeros_like(mx)
        for c in range(wn.shape[1]):
            err = err + (wn[:, c] - recon[:, c]) ** 2
        return err, x, q

    def _lowest(self, err: torch.Tensor, pos: torch.Tensor, rows: torch.Tensor, n: int):
        """Per row: index into err of the smallest err, ties to the lowest seed."""
        best = torch.full((n,), float("inf"), dtype=torch.float64, device=self.device)
        best.scatter_reduce_(0, rows, err, "amin")
        seed = torch.where(err == best[rows], self.cycle[pos], torch.iinfo(torch.int64).max)
        best_seed = torch.full((n,), torch.iinfo(torch.int64).max, device=self.device)
        best_seed.scatter_reduce_(0, rows, seed, "amin")
        hit = (seed == best_seed[rows]).nonzero().squeeze(-1)
        idx = torch.empty(n, dtype=torch.int64, device=self.device)
        idx[rows[hit]] = hit
        return idx

    def keys(self, w: torch.Tensor) -> torch.Tensor:
        """float32 [n, N'] (N' = N padded to a multiple of SEG): lower bounds of the quantized error
        of blocks w at every position."""
        with _plain_float32():  # ||w||^2 (1 - margin) - w^T Proj w as one GEMM
            return _features(w, self.margin) @ self.proj

    def search(self, wn: np.ndarray, bias: np.ndarray):
        """(positions, x, q, err, candidates) for normalised nonzero blocks wn[n, C]."""
        dev = self.device
        w = torch.as_tensor(wn, device=dev)
        b = torch.as_tensor(bias, device=dev)
        n = w.shape[0]
        seg = self.keys(w).view(n, -1, SEG)
        smin = seg.amin(-1)  # [n, segments]; values only: a min with indices reads at half the rate
        top = smin.topk(min(PROBE, smin.shape[1]), dim=1, largest=False).indices
        pos0 = top * SEG + seg[torch.arange(n, device=dev).unsqueeze(1), top].argmin(-1)
        k = pos0.shape[1]
        rows0 = torch.arange(n, device=dev).repeat_interleave(k)
        e0 = self.exact(w[rows0], b[rows0], pos0.reshape(-1))[0].view(n, k).amin(1)
        thr = e0.to(torch.float32)  # round up: key <= e0  <=>  key <= thr
        thr = torch.where(thr.double() < e0, torch.nextafter(thr, torch.full_like(thr, float("inf"))), thr)
        rows, segs = (smin <= thr.unsqueeze(-1)).nonzero(as_tuple=True)
        hit, j = (seg[rows, segs] <= thr[rows].unsqueeze(-1)).nonzero(as_tuple=True)
        del seg, smin
        rows, pos = rows[hit], segs[hit] * SEG + j
        err = self.exact(w[rows], b[rows], pos)[0]
        bpos = pos[self._lowest(err, pos, rows, n)]
        err, x, q = self.exact(w, b, bpos)
        return (bpos.cpu().numpy(), x.cpu().numpy().astype(np.uint8),
                q.cpu().numpy().astype(np.int8), err.cpu().numpy(), int(len(rows)))


class _plain_float32:
    """No TF32 (nor reduced-precision reductions) in float32 matmuls inside: the margin assumes
    plain float32 products. Restores the caller's settings on exit."""

    def __enter__(self):
        m = torch.backends.cuda.matmul
        self.saved = (m.allow_tf32, m.allow_fp16_reduced_precision_reduction)
        m.allow_tf32 = False
        self.precision = torch.get_float32_matmul_precision()
        torch.set_float32_matmul_precision("highest")

    def __exit__(self, *exc):
        m = torch.backends.cuda.matmul
        m.allow_tf32, m.allow_fp16_reduced_precision_reduction = self.saved
        torch.set_float32_matmul_precision(self.precision)
