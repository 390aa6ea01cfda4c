"""The factorized block dot (format §6.1): what the hardware computes instead of C x P products.

Consecutive LFSR states are shifted windows of one bit stream (format §1): with z_0 .. z_(K-1)
the seed bits and z_(K+n) the n-th feedback bit, state i is z_i .. z_(i+K-1) (bit k of state i
is z_(i+k)). Block lane c uses states n_c + p, n_c = c*P + 1, p = 0 .. P-1, so it reads the
K + P - 1 bits u_(c,m) = z_(n_c + m), m = 0 .. K+P-2, and

    sum_p q_p * V[c][p] = sum_m u_(c,m) * w_m,    w_m = sum_{p : 0 <= m-p <= K-1} q_p 2^(m-p).

For the K - P + 1 *interior* positions P-1 <= m <= K-1 every p contributes, so
w_m = Q * 2^(m-P+1) with Q = sum_p q_p 2^(P-1-p). The P-1 low positions m < P-1 and the P-1
high positions m = K+j (j = 0 .. P-2) see only some p:

    low  w_m     = sum_{p <= m} q_p 2^(m-p)
    high w_(K+j) = sum_{p > j}  q_p 2^(K+j-p)

With S = V - 2^(K-1) and I_c = the interior bits u_(c,P-1) .. u_(c,K-1) as an unsigned number:

    acc[c] = Q * I_c + sum_{edge m} u_(c,m) w_m - 2^(K-1) sum_p q_p

and the block dot d = sum_c acc[c] a_c (format §6) is exactly

    d = Q * X + sum_{edge m} w_m * B_m - 2^(K-1) * (sum_p q_p) * (sum_c a_c),
        X = sum_c I_c a_c,   B_m = sum_c u_(c,m) a_c     (masked activation sums).

C multiplies of (K-P+1)-bit unsigned by A-bit activations, one (P+4)-bit by X multiply and
2P - 1 small ones, instead of C*P shift-add products and C wide multiplies. All of it holds
for any seed field including 0 (all bits 0). numpy/stdlib only; Python integers (exact).
"""
from __future__ import annotations

from seedlm_fpga.core.lfsr import default_taps


def bit_stream(seed: int, n: int, K: int, taps: tuple[int, ...] | None = None) -> list[int]:
    """z_0 .. z_(n-1): the seed bits, then the feedback bits (any seed, 0 included)."""
    taps = default_taps(K) if taps is None else tuple(taps)
    z = [(seed >> k) & 1 for k in range(K)]
    while len(z) < n:
        i = len(z) - K
        f = 0
        for j in taps:
            f ^= z[i + j]
        z.append(f)
    return z[:n]


def q_scale(q) -> int:
    """Q = sum_p q_p 2^(P-1-p): |Q| <= 8 (2^P - 1), a (P+4)-bit signed number."""
    P = len(q)
    return sum(int(v) << (P - 1 - p) for p, v in enumerate(q))


def edge_positions(K: int, P: int) -> tuple[list[int], list[int]]:
    """(low, high) window positions that the interior factor Q does not cover.

    For P <= K (both presets): m = 0 .. P-2 and m = K .. K+P-2. For P > K the interior is
    empty and every window position is an edge (the identity still holds).
    """
    n = K + P - 1
    low = [m for m in range(n) if m < P - 1 and m <= K - 1]
    high = [m for m in range(n) if m > K - 1]
    return low, high


def edge_weight(m: int, q, K: int) -> int:
    """w_m = sum_{p : 0 <= m-p <= K-1} q_p 2^(m-p) (any m; interior m gives Q 2^(m-P+1))."""
    return sum(int(v) << (m - p) for p, v in enumerate(q) if 0 <= m - p <= K - 1)


def lane_windows(seed: int, C: int, P: int, K: int, taps=None) -> list[list[int]]:
    """u[c][m] = z_(c*P + 1 + m), m = 0 .. K+P-2: the bits block lane c reads."""
    z = bit_stream(seed, C * P + K + P, K, taps)
    return [z[c * P + 1:c * P + K + P] for c in range(C)]


def interior(u_c: list[int], K: int, P: int) -> int:
    """I_c: bits P-1 .. K-1 of the window, as an unsigned (K-P+1)-bit number (0 if P > K)."""
    return sum(b << i for i, b in enumerate(u_c[P - 1:K]))


def factorized_acc(seed: int, q, K: int, C: int, P: int, taps=None) -> list[int]:
    """acc[c] = Q I_c + sum_edge u w_m - 2^(K-1) sum q (equals `reference.block_acc`)."""
    Q, sq = q_scale(q), sum(int(v) for v in q)
    low, high = edge_positions(K, P)
    out = []
    for u in lane_windows(seed, C, P, K, taps):
        edge = sum(u[m] * edge_weight(m, q, K) for m in low + high)
        out.append(Q * interior(u, K, P) + edge - (sq << (K - 1)))
    return out


def factorized_dot_terms(seed: int, q, acts, K: int, C: int, P: int, taps=None) -> dict:
    """The parts of d that the engine computes: Q, X, {m: (w_m, B_m)}, sum q, sum a."""
    u = lane_windows(seed, C, P, K, taps)
    a = [int(v) for v in acts]
    low, high = edge_positions(K, P)
    return {
        "Q": q_scale(q),
        "X": sum(interior(u[c], K, P) * a[c] for c in range(C)),
        "edges": {m: (edge_weight(m, q, K), sum(u[c][m] * a[c] for c in range(C))) for m in low + high},
        "sum_q": sum(int(v) for v in q),
        "sum_a": sum(a),
    }


def factorized_dot(seed: int, q, acts, K: int, C: int, P: int, taps=None) -> int:
    """d = Q X + sum_edge w_m B_m - 2^(K-1) (sum q)(sum a): equals sum_c acc[c] a_c exactly."""
    t = factorized_dot_terms(seed, q, acts, K, C, P, taps)
    return (t["Q"] * t["X"] + sum(w * b for w, b in t["edges"].values())
            - (t["sum_q"] * t["sum_a"] << (K - 1)))
