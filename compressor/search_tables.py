"""Per-preset constant tables for the format §4 seed search (built once, cached).

Seeds are handled by their *position* n on the LFSR cycle (seed = cycle[n]); with
g(m) = S(cycle[m]) / (2^(K-1) - 1) the basis of seed cycle[n] is
U[c][p] = g(n + c*P + p + 1), so b = U^T w for every seed comes from one correlation
of w with g (C multiply-adds per seed).

The fast searches rank seeds by a float32 *lower bound* on the quantized error,

    key(n) = ||w||^2 (1 - margin(n)) - ||z||^2,   z = R(n)^-T b(n),

where U = Q R (so z = Q^T w and ||w||^2 - ||z||^2 is the unquantized least-squares
residual, a lower bound on err(s)). `margin(n)` bounds the float32 rounding of the
whole chain (see `correlation_margin`), so key(n) <= the true residual for every seed
and every block: pruning with it never drops the exact arg-min.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from seedlm_fpga.core.lfsr import basis_U, lfsr_cycle
from seedlm_fpga.core.reference import Preset

U32 = 2.0 ** -24  # unit roundoff of float32
#: Relative error of the float64 tables (QR / inverse of U with cond(U) < 1e6: ~1e6 * 2^-53).
TABLE_ERROR = 1e-9


def _gamma(k: int) -> float:
    """Higham's gamma_k = k u / (1 - k u): bound on the relative error of k float32 operations."""
    return k * U32 / (1 - k * U32)


@dataclass(frozen=True)
class SearchTables:
    """Constant tables of one preset, indexed by cycle position n (seed = cycle[n])."""

    preset: Preset
    cycle: np.ndarray        # int64 [N]: seed at each position
    position: np.ndarray     # int64 [2^K]: position of each seed (-1 for 0)
    pinv: np.ndarray         # float64 [N, P, C]: pinv(U) per position
    s_ext: np.ndarray        # int64 [N + C*P + 1]: S at positions 0.. (periodic), for exact decode
    g32_ext: np.ndarray      # float32 [N + pad]: g at positions 0.. (periodic)
    a32: np.ndarray          # float32 [P(P+1)/2, N + pad]: lower-triangular R^-T per position, row-major
    margin: np.ndarray       # float32 [N + pad]: relative float32 error bound of key(n)
    inv_sigma_min: np.ndarray  # float64 [N]: 1 / smallest singular value of U
    ill_pos: np.ndarray      # int64 [M]: positions whose correlation bound is too loose (ILL_MARGIN)
    ill_q32: np.ndarray      # float32 [C*P, M]: orthonormal Q (U = Q R) of those, row c*P + p
    ill_margin: float        # relative float32 error bound of their key (`orthonormal_margin`)

    @property
    def n_seeds(self) -> int:
        return len(self.cycle)

    def pinv_by_seed(self) -> np.ndarray:
        """pinv(U(s)) for s = 1 .. 2^K - 1 (float64 [N, P, C])."""
        return self.pinv[self.position[1:]]


#: Seeds whose correlation margin exceeds this (a few hundred of 65,535, with cond(U) up to
#: ~3e5) get their bound from an orthonormal basis instead: margin(n) is set to EXCLUDED
#: there, which pushes their correlation key far above any threshold.
ILL_MARGIN = 1e-3
EXCLUDED = -1.0e30

#: Zero padding past N so that a tile of the fast kernels can read past the last position.
TABLE_PAD = 1024


def correlation_margin(inv_sigma_min: np.ndarray, C: int, P: int) -> np.ndarray:
    """Relative bound on |key(n) - (||w||^2 - ||w||^2 margin - residual)|, doubled for safety.

    With u the float32 unit roundoff, gamma_k = k u / (1 - k u), A = R^-T (||A|| = 1/sigma_min):
    - b: w and g rounded to float32, C products summed: |db_p| <= gamma_(C+2) ||w||_1,
      so ||db|| <= sqrt(P C) gamma_(C+2) ||w||;
    - z = fl(fl(A) b~): |dz| <= ||A|| ||db|| + gamma_(P+1) || |A| |b~| ||
      <= ||A|| ||w|| eta with eta = sqrt(P C) (gamma_(C+2) + sqrt(P) gamma_(P+1))
      (||b|| <= ||U||_F ||w|| <= sqrt(C P) ||w||, || |A| || <= sqrt(P) ||A||);
    - ||z~||^2 in float32 (P terms): relative gamma_P, and
      | ||z||^2 - ||z~||^2 | <= (2 ||A|| eta + ||A||^2 eta^2) ||w||^2;
    - ||w||^2 rounded to float32, the product by (1 - margin) and the final subtraction:
      at most 6 u ||w||^2 together (||z~||^2 <= ||w||^2 (1 + ||A|| eta)^2).
    The sum of these, times 2, is the margin; it holds for any summation order (fastmath).
    TABLE_ERROR covers the float64 rounding of the tables themselves (R^-T for cond(U) < 1e6).
    """
    a = inv_sigma_min
    eta = np.sqrt(P * C) * (_gamma(C + 2) + np.sqrt(P) * _gamma(P + 1))
    bound = 2 * a * eta + (a * eta) ** 2 + _gamma(P) * (1 + a * eta) ** 2 + 6 * U32
    return np.minimum(2.0 * bound + TABLE_ERROR, 4.0)  # beyond 1 the seed is simply always a candidate


def orthonormal_margin(C: int, P: int) -> float:
    """Relative float32 error bound of key = ||w||^2 (1 - m) - ||Q^T w||^2, doubled.

    |Q_cp| <= 1 with unit columns: each z_p = Q_p . w errs by <= gamma_(C+2) ||w||, so
    ||dz|| <= sqrt(P) gamma_(C+2) ||w||, ||z|| <= ||w||; the P-term sum of squares adds gamma_P,
    the rest 6 u as in `correlation_margin`.
    """
    d = np.sqrt(P) * _gamma(C + 2)
    return 2.0 * (2 * d + d * d + _gamma(P) * (1 + d) ** 2 + 6 * U32) + TABLE_ERROR


@lru_cache(maxsize=4)
def search_tables(preset: Preset) -> SearchTables:
    K, C, P = preset.K, preset.C, preset.P
    cycle, position = lfsr_cycle(K, preset.taps)
    N = len(cycle)
    if N != (1 << K) - 1:
        raise ValueError(f"taps {preset.taps} are not maximal length for K={K}")
    U = basis_U(cycle, C, P, K, preset.taps)  # [N, C, P], position order
    pinv = np.linalg.pinv(U)  # [N, P, C] float64
    sigma = np.linalg.svd(U, compute_uv=False)
    with np.errstate(divide="ignore"):
        inv_sigma_min = 1.0 / sigma[:, -1]
    Q, R = np.linalg.qr(U)  # [N, C, P], [N, P, P] upper triangular
    A = np.linalg.inv(R).transpose(0, 2, 1)  # R^-T, lower triangular
    pad = TABLE_PAD
    idx_ext = np.arange(N + pad) % N
    s_cycle = cycle - (1 << (K - 1))
    g = s_cycle / float(preset.s_scale)
    rows = [np.concatenate([A[:, i, k], np.zeros(pad)]) for i in range(P) for k in range(i + 1)]
    margin = correlation_margin(inv_sigma_min, C, P)
    ill = np.flatnonzero(margin > ILL_MARGIN)
    margin[ill] = EXCLUDED
    tables = SearchTables(
        preset=preset,
        cycle=cycle,
        position=position,
        pinv=np.ascontiguousarray(pinv),
        s_ext=np.ascontiguousarray(s_cycle[np.arange(N + C * P + 1) % N]),
        g32_ext=g[idx_ext].astype(np.float32),
        a32=np.ascontiguousarray(np.stack(rows).astype(np.float32)),
        margin=np.concatenate([margin, np.full(pad, 4.0)]).astype(np.float32),
        inv_sigma_min=inv_sigma_min,
        ill_pos=ill.astype(np.int64),
        ill_q32=np.ascontiguousarray(Q[ill].reshape(len(ill), C * P).T.astype(np.float32)),
        ill_margin=orthonormal_margin(C, P),
    )
    for arr in (tables.pinv, tables.s_ext, tables.g32_ext, tables.a32, tables.margin, tables.ill_pos,
                tables.ill_q32):
        arr.flags.writeable = False
    return tables
