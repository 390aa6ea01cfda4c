"""Fused CPU kernel of the exact format §4 seed search (numba).

Seeds are ranked by a float32 lower bound `key` of their quantized error (search_tables).
Pass 1, per group of GROUP blocks and per tile of TILE seed positions (the tile's tables stay
in L1/L2 across the group): correlation of w with g (C MACs per position), the gain
||z||^2 + ||w||^2 margin of every position of the tile (one fused vectorised loop, key = ||w||^2
- gain), and the smallest key of each segment of SEG positions from an int32 max of the gains
(`_segment_minima`); nothing else is stored and there is no threshold to maintain. Pass 2, per block (`_refine`), branch
and bound: segments in ascending order of their minimum, each recomputed once (correlation keys),
its smallest-key seed checked exactly (float64, format §3 quantizer), then every seed whose key
is <= the best exact error so far; stop at the first segment whose minimum is above the best
error; last the few hundred ill-conditioned seeds (search_tables.ILL_MARGIN), bounded through
their orthonormal bases. The optimum's key and its segment's minimum are <= its error <= the
best error at every step, so it is checked: the arg-min is exact, with no fallback pass. Ties go
to the lowest seed.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

TILE = 1024  # positions per tile: its 8 float32 table rows (32 KB) stay in L1/L2 for a GROUP
SEG = 512  # positions per segment: pass 1 keeps the smallest key of each (TILE is a multiple)
GROUP = 16  # blocks sharing each tile of tables
BIG = np.float32(3.0e38)  # finite sentinel: the kernel is compiled with fastmath (no infs)


@njit(cache=True)
def exact_error(w, bias, n, C, P, pinv, s_ext, s_scale, q, t):
    """err(seed at position n) with format §3 quantization, float64; fills q (and scratch t[P]),
    returns (err, x). Sums run c = 0 .. C-1 in order, as in brute_force_search."""
    tmax = 0.0
    for p in range(P):
        acc = 0.0
        for c in range(C):
            acc += pinv[n, p, c] * w[c]
        t[p] = acc
        tmax = max(tmax, abs(acc))
    if tmax == 0.0:
        for p in range(P):
            q[p] = 0
        err = 0.0
        for c in range(C):
            err += w[c] * w[c]
        return err, 0
    E = math.frexp(tmax)[1] - 1
    x = min(max(E - 2 - bias, 0), 15)
    scale = math.ldexp(1.0, x + bias)
    for p in range(P):
        v = np.rint(t[p] / scale)
        q[p] = min(max(v, -8.0), 7.0)
    step = scale / s_scale
    err = 0.0
    for c in range(C):
        acc_i = 0
        for p in range(P):
            acc_i += s_ext[n + c * P + p + 1] * np.int64(q[p])
        d = w[c] - acc_i * step
        err += d * d
    return err, x


@njit(cache=True, fastmath=True)
def _correlate(w32, m0, Lc, C, P, g32, corr):
    """corr[j] = sum_c w_c g(m0 + j + c*P) for j < Lc: b of position m0+j is corr[j+1 .. j+P].

    Taps eight (then four, then one) per pass, weights in registers: one load and store of
    corr per pass instead of per tap.
    """
    cr = corr[:Lc]
    g = g32[m0:m0 + Lc + (C - 1) * P]
    c = 0
    while c + 8 <= C:
        _taps8(w32[c:c + 8], g[c * P:], Lc, P, cr, c == 0)
        c += 8
    while c + 4 <= C:
        _taps4(w32[c:c + 4], g[c * P:], Lc, P, cr, c == 0)
        c += 4
    for c in range(c, C):
        wc = w32[c]
        gs = g[c * P:c * P + Lc]
        for j in range(Lc):
            cr[j] = (cr[j] if c > 0 else 0.0) + wc * gs[j]


@njit(cache=True, fastmath=True)
def _taps8(w, g, Lc, P, cr, first):
    w0, w1, w2, w3, w4, w5, w6, w7 = w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]
    g0, g1, g2, g3 = g[0:Lc], g[P:P + Lc], g[2 * P:2 * P + Lc], g[3 * P:3 * P + Lc]
    g4, g5, g6, g7 = g[4 * P:4 * P + Lc], g[5 * P:5 * P + Lc], g[6 * P:6 * P + Lc], g[7 * P:7 * P + Lc]
    if first:
        for j in range(Lc):
            cr[j] = (w0 * g0[j] + w1 * g1[j] + w2 * g2[j] + w3 * g3[j]
                     + w4 * g4[j] + w5 * g5[j] + w6 * g6[j] + w7 * g7[j])
    else:
        for j in range(Lc):
            cr[j] += (w0 * g0[j] + w1 * g1[j] + w2 * g2[j] + w3 * g3[j]
                      + w4 * g4[j] + w5 * g5[j] + w6 * g6[j] + w7 * g7[j])


@njit(cache=True, fastmath=True)
def _taps4(w, g, Lc, P, cr, first):
    w0, w1, w2, w3 = w[0], w[1], w[2], w[3]
    g0, g1, g2, g3 = g[0:Lc], g[P:P + Lc], g[2 * P:2 * P + Lc], g[3 * P:3 * P + Lc]
    if first:
        for j in range(Lc):
            cr[j] = w0 * g0[j] + w1 * g1[j] + w2 * g2[j] + w3 * g3[j]
    else:
        for j in range(Lc):
            cr[j] += w0 * g0[j] + w1 * g1[j] + w2 * g2[j] + w3 * g3[j]


@njit(cache=True, fastmath=True)
def _keys3(ww, m0, L, a32, margin, corr, key):
    """P = 3: key[0:L] of positions m0 .. m0+L-1, one fused vectorised loop."""
    b0, b1, b2 = corr[1:1 + L], corr[2:2 + L], corr[3:3 + L]
    a00, a10, a11 = a32[0, m0:m0 + L], a32[1, m0:m0 + L], a32[2, m0:m0 + L]
    a20, a21, a22 = a32[3, m0:m0 + L], a32[4, m0:m0 + L], a32[5, m0:m0 + L]
    mg = margin[m0:m0 + L]
    for j in range(L):
        z0 = a00[j] * b0[j]
        z1 = a10[j] * b0[j] + a11[j] * b1[j]
        z2 = a20[j] * b0[j] + a21[j] * b1[j] + a22[j] * b2[j]
        key[j] = ww - ww * mg[j] - (z0 * z0 + z1 * z1 + z2 * z2)


@njit(cache=True, fastmath=True)
def _keys4(ww, m0, L, a32, margin, corr, key):
    """P = 4: as `_keys3`."""
    b0, b1, b2, b3 = corr[1:1 + L], corr[2:2 + L], corr[3:3 + L], corr[4:4 + L]
    a00, a10, a11 = a32[0, m0:m0 + L], a32[1, m0:m0 + L], a32[2, m0:m0 + L]
    a20, a21, a22 = a32[3, m0:m0 + L], a32[4, m0:m0 + L], a32[5, m0:m0 + L]
    a30, a31, a32_, a33 = a32[6, m0:m0 + L], a32[7, m0:m0 + L], a32[8, m0:m0 + L], a32[9, m0:m0 + L]
    mg = margin[m0:m0 + L]
    for j in range(L):
        z0 = a00[j] * b0[j]
        z1 = a10[j] * b0[j] + a11[j] * b1[j]
        z2 = a20[j] * b0[j] + a21[j] * b1[j] + a22[j] * b2[j]
        z3 = a30[j] * b0[j] + a31[j] * b1[j] + a32_[j] * b2[j] + a33[j] * b3[j]
        key[j] = ww - ww * mg[j] - (z0 * z0 + z1 * z1 + z2 * z2 + z3 * z3)


@njit(cache=True)
def _ordered_min(ikey, L):
    """min over key[0:L], read through its int32 view ikey as order-preserving integers
    (negative floats have their magnitude bits flipped): an integer min vectorises, a float one
    does not here. Returns the ordered integer of the smallest key."""
    lo = np.int32(0x7FFFFFFF)
    for j in range(L):
        i = ikey[j]
        i = i ^ np.int32(0x7FFFFFFF) if i < 0 else i
        lo = i if i < lo else lo
    return lo


@njit(cache=True)
def _ordered(v, f1, i1):
    """The order-preserving int32 of float32 v (f1, i1: a one-element float32 buffer and its int32 view)."""
    f1[0] = v
    i = i1[0]
    return i ^ np.int32(0x7FFFFFFF) if i < 0 else i


@njit(cache=True, fastmath=True)
def _keys(ww, thr, m0, L, P, a32, margin, corr, z, key):
    """key[0:L] of positions m0 .. m0+L-1 (any P); returns how many are < thr."""
    kk = key[:L]
    kk[:] = ww
    zz = z[:L]
    row = 0
    for i in range(P):
        zz[:] = 0.0
        for k in range(i + 1):
            a = a32[row, m0:m0 + L]
            cs = corr[k + 1:k + 1 + L]
            row += 1
            for j in range(L):
                zz[j] += a[j] * cs[j]
        for j in range(L):
            kk[j] -= zz[j] * zz[j]
    mg = margin[m0:m0 + L]
    below = np.int32(0)
    for j in range(L):
        kk[j] -= ww * mg[j]
        below += np.int32(kk[j] < thr)
    return below


@njit(cache=True, fastmath=True)
def _gains3(ww, m0, L, a32, margin, corr, gain):
    """P = 3: gain[0:L] = ||z||^2 + ww margin of positions m0 .. m0+L-1 (key = ww - gain)."""
    b0, b1, b2 = corr[1:1 + L], corr[2:2 + L], corr[3:3 + L]
    a00, a10, a11 = a32[0, m0:m0 + L], a32[1, m0:m0 + L], a32[2, m0:m0 + L]
    a20, a21, a22 = a32[3, m0:m0 + L], a32[4, m0:m0 + L], a32[5, m0:m0 + L]
    mg = margin[m0:m0 + L]
    for j in range(L):
        z0 = a00[j] * b0[j]
        z1 = a10[j] * b0[j] + a11[j] * b1[j]
        z2 = a20[j] * b0[j] + a21[j] * b1[j] + a22[j] * b2[j]
        gain[j] = (z0 * z0 + z1 * z1 + z2 * z2) + ww * mg[j]


@njit(cache=True, fastmath=True)
def _gains4(ww, m0, L, a32, margin, corr, gain):
    """P = 4: as `_gains3`."""
    b0, b1, b2, b3 = corr[1:1 + L], corr[2:2 + L], corr[3:3 + L], corr[4:4 + L]
    a00, a10, a11 = a32[0, m0:m0 + L], a32[1, m0:m0 + L], a32[2, m0:m0 + L]
    a20, a21, a22 = a32[3, m0:m0 + L], a32[4, m0:m0 + L], a32[5, m0:m0 + L]
    a30, a31, a32_, a33 = a32[6, m0:m0 + L], a32[7, m0:m0 + L], a32[8, m0:m0 + L], a32[9, m0:m0 + L]
    mg = margin[m0:m0 + L]
    for j in range(L):
        z0 = a00[j] * b0[j]
        z1 = a10[j] * b0[j] + a11[j] * b1[j]
        z2 = a20[j] * b0[j] + a21[j] * b1[j] + a22[j] * b2[j]
        z3 = a30[j] * b0[j] + a31[j] * b1[j] + a32_[j] * b2[j] + a33[j] * b3[j]
        gain[j] = (z0 * z0 + z1 * z1 + z2 * z2 + z3 * z3) + ww * mg[j]


@njit(cache=True)
def _int_max(igain, L):
    """max over igain[0:L] as int32 (no arithmetic: stays a vectorised 32-bit max). On the int32
    view of float32 values it is the largest non-negative value whenever there is one: those
    keep their order as integers and every negative float is a negative integer."""
    hi = np.int32(-0x80000000)
    for j in range(L):
        v = igain[j]
        hi = v if v > hi else hi
    return hi


@njit(cache=True, fastmath=True)
def _sub32(ww, hi):
    """ww - hi in float32."""
    return ww - hi


@njit(cache=True)
def _segment_minima(ww, m0, L, P, a32, margin, corr, z, key, ikey, f1, i1, out):
    """out[k] = the smallest key of positions m0 + k*SEG .. (at most SEG of them, up to m0+L-1),
    as an ordered int32, for k < ceil(L / SEG) (corr correlated from m0; key, z: >= L floats).

    For P = 3 and 4 the gains of all L positions come from one call (per-call slicing costs
    about as much as 500 positions), then each segment's minimum is fl(ww - max_j gain_j),
    gain_j = fl(||z_j||^2 + fl(ww margin_j)): the smallest of the keys fl(ww - gain_j)
    (rounding is monotone), each of which is the key of `search_tables.correlation_margin` --
    the same terms ww, ww margin_j and ||z_j||^2, the same roundings, summed in another order
    (its bound holds for any order) -- so below the residual of seed j. A seed that is not ill
    has margin_j > 0, so gain_j >= 0 (a sum of non-negative rounded terms) and `_int_max` finds
    the largest gain; ill seeds (margin EXCLUDED, gain about -1e30 ww) are never it unless the
    whole segment is ill (none is; and its minimum would only reorder `_refine`, which bounds
    ill seeds separately and never checks them by correlation keys). The integer max runs about
    twice as fast as the min of ordered integers (which numba widens to 64-bit compares after
    the sign flip).
    """
    if P == 3 or P == 4:
        if P == 3:
            _gains3(ww, m0, L, a32, margin, corr, key)
        else:
            _gains4(ww, m0, L, a32, margin, corr, key)
        for k, s0 in enumerate(range(0, L, SEG)):
            i1[0] = _int_max(ikey[s0:], min(SEG, L - s0))
            out[k] = _ordered(_sub32(ww, f1[0]), f1, i1)
    else:
        for k, s0 in enumerate(range(0, L, SEG)):
            Ls = min(SEG, L - s0)
            _keys(ww, BIG, m0 + s0, Ls, P, a32, margin, corr[s0:], z, key)
            out[k] = _ordered_min(ikey, Ls)


@njit(cache=True)
def _keys_any(ww, m0, L, P, a32, margin, corr, z, key):
    """Keys of positions m0 .. m0+L-1 into key[:L], with the unrolled kernel for P = 3 or 4."""
    if P == 3:
        _keys3(ww, m0, L, a32, margin, corr, key)
    elif P == 4:
        _keys4(ww, m0, L, a32, margin, corr, key)
    else:
        _keys(ww, BIG, m0, L, P, a32, margin, corr, z, key)


@njit(cache=True, fastmath=True)
def _ill_keys(w32, ww, C, P, q32, margin, z, key):
    """Keys of the ill-conditioned seeds from their orthonormal bases (float32)."""
    M = q32.shape[1]
    for j in range(M):
        key[j] = ww - ww * margin
    for p in range(P):
        for j in range(M):
            z[j] = 0.0
        for c in range(C):
            wc = w32[c]
            row = q32[c * P + p]
            for j in range(M):
                z[j] += wc * row[j]
        for j in range(M):
            key[j] -= z[j] * z[j]


@njit(cache=True)
def _up32(v):
    """The smallest float32 above v: for float32 keys, key < _up32(v)  <=>  key <= v."""
    t = np.float32(v)
    if t <= v:
        t = np.nextafter(t, np.float32(np.inf))
    return t


@njit(cache=True)
def _segment_keys(w32, ww, s, N, C, P, g32, a32, margin, corr, z, key):
    """Keys of segment s (positions s*SEG ..) into key[:L]; returns L."""
    m0 = s * SEG
    L = min(SEG, N - m0)
    _correlate(w32, m0, L + P + 1, C, P, g32, corr)
    _keys_any(ww, m0, L, P, a32, margin, corr, z, key)
    return L


@njit(cache=True)
def _next_segment(segmin, prev, prev_s):
    """The segment after (prev, prev_s) in ascending (minimum, index) order, or (-1, 0)."""
    s, lo = -1, np.int32(0x7FFFFFFF)
    for i in range(len(segmin)):
        v = segmin[i]
        if (v > prev or (v == prev and i > prev_s)) and (s < 0 or v < lo):
            s, lo = i, v
    return s, lo


@njit(cache=True)
def _check(w, bias, n, C, P, cycle, pinv, s_ext, s_scale, qbuf, tbuf, best, best_pos, best_x, qbest):
    """Exact error of position n; returns the better of it and (best, best_pos, best_x) (ties: the
    lower seed), copying its q into qbest when it wins."""
    err, x = exact_error(w, bias, n, C, P, pinv, s_ext, s_scale, qbuf, tbuf)
    if err < best or (err == best and cycle[n] < cycle[best_pos]):
        qbest[:] = qbuf
        return err, n, x
    return best, best_pos, best_x


@njit(cache=True)
def _refine(wn, bias, w32, ww, segmin, N, C, P, g32, a32, margin, ill_pos, ill_q32, ill_margin, cycle, pinv,
            s_ext, s_scale, corr, z, key, ill_z, ill_key, f1, i1, qbuf, tbuf, qbest):
    """Pass 2 of one block, given its segment minima (any lower bounds of the keys of each segment's
    seeds): branch and bound, every segment computed at most once.

    Segments are taken in ascending order of their minimum; each one's keys are computed
    (correlation), its smallest-key seed is checked exactly first, then every seed whose key is
    <= the best exact error so far; it stops at the first segment whose minimum is above the best
    error. The ill-conditioned seeds (excluded from the correlation keys) come last, by their
    orthonormal keys. Why exact: best >= the optimum's error >= its key >= its segment's minimum
    at every step, so the optimum's segment is reached before the stop and the optimum itself
    (key <= best) is checked; so is every seed that ties it (same error, so key <= best), and
    `_check` keeps the lowest seed of a tie. Returns (best_err, best_pos, best_x, checked).
    """
    best, best_pos, best_x = np.inf, -1, 0
    checked = 0
    prev, prev_s = np.int32(-0x80000000), -1
    while True:
        s, lo = _next_segment(segmin, prev, prev_s)
        if s < 0:
            break
        if best_pos >= 0:
            thr = _up32(best)
            if lo >= _ordered(thr, f1, i1):  # segment minimum > best: so are all later ones
                break
        prev, prev_s = lo, s
        L = _segment_keys(w32, ww, s, N, C, P, g32, a32, margin, corr, z, key)
        j0 = np.argmin(key[:L])
        if best_pos < 0 or key[j0] < _up32(best):
            best, best_pos, best_x = _check(wn, bias, s * SEG + j0, C, P, cycle, pinv, s_ext, s_scale, qbuf,
                                            tbuf, best, best_pos, best_x, qbest)
            checked += 1
        thr = _up32(best)
        for j in range(L):
            if key[j] < thr and j != j0:
                best, best_pos, best_x = _check(wn, bias, s * SEG + j, C, P, cycle, pinv, s_ext, s_scale, qbuf,
                                                tbuf, best, best_pos, best_x, qbest)
                checked += 1
                thr = _up32(best)
    _ill_keys(w32, ww, C, P, ill_q32, ill_margin, ill_z, ill_key)
    thr = _up32(best)
    for j in range(len(ill_pos)):
        if ill_key[j] < thr:
            best, best_pos, best_x = _check(wn, bias, ill_pos[j], C, P, cycle, pinv, s_ext, s_scale, qbuf, tbuf,
                                            best, best_pos, best_x, qbest)
            checked += 1
            thr = _up32(best)
    return best, best_pos, best_x, checked


@njit(parallel=True, cache=True)
def search_kernel(wn, bias, w32, ww32, C, P, g32, a32, margin, ill_pos, ill_q32, ill_margin, cycle, pinv,
                  s_ext, s_scale, out_pos, out_x, out_q, out_err, out_cand):
    """Exact arg-min over all N positions for each block of wn (normalised float64 [n, C])."""
    n = wn.shape[0]
    N = len(cycle)
    nseg = (N + SEG - 1) // SEG
    ngroups = (n + GROUP - 1) // GROUP
    for gi in prange(ngroups):
        b0 = gi * GROUP
        b1 = min(n, b0 + GROUP)
        corr = np.empty(TILE + P + 1, dtype=np.float32)
        z = np.empty(TILE, dtype=np.float32)
        key = np.empty(TILE, dtype=np.float32)
        segmin = np.empty((GROUP, nseg), dtype=np.int32)  # ordered integers (`_ordered_min`)
        ikey = key.view(np.int32)
        f1 = np.empty(1, dtype=np.float32)
        i1 = f1.view(np.int32)
        ill_z = np.empty(len(ill_pos), dtype=np.float32)
        ill_key = np.empty(len(ill_pos), dtype=np.float32)
        qbuf = np.empty(P, dtype=np.int8)
        tbuf = np.empty(P)
        # pass 1: the smallest key of each segment, tile by tile (the tile's tables stay cached
        # across the group's blocks)
        for m0 in range(0, N, TILE):
            L = min(TILE, N - m0)
            for bi in range(b0, b1):
                _correlate(w32[bi], m0, L + P + 1, C, P, g32, corr)
                _segment_minima(ww32[bi], m0, L, P, a32, margin, corr, z, key, ikey, f1, i1,
                                segmin[bi - b0, m0 // SEG:])
        # pass 2, per block: branch and bound over the segments (`_refine`)
        for bi in range(b0, b1):
            best, pos, x, checked = _refine(wn[bi], bias[bi], w32[bi], ww32[bi], segmin[bi - b0], N, C, P, g32, a32,
                                            margin, ill_pos, ill_q32, ill_margin, cycle, pinv, s_ext, s_scale,
                                            corr, z, key, ill_z, ill_key, f1, i1, qbuf, tbuf, out_q[bi])
            out_pos[bi] = pos
            out_x[bi] = x
            out_err[bi] = best
            out_cand[bi] = checked


def run(kernel, wn: np.ndarray, bias: np.ndarray, tables, *pass_inputs):
    """Call a search kernel with `search_kernel`'s arguments around `pass_inputs`.

    Returns (positions, x, q, err, candidates) for normalised nonzero blocks wn [n, C].
    """
    preset = tables.preset
    C, P = preset.C, preset.P
    m = len(wn)
    pos = np.empty(m, dtype=np.int64)
    xs = np.empty(m, dtype=np.int64)
    qs = np.zeros((m, P), dtype=np.int8)
    es = np.empty(m, dtype=np.float64)
    cand = np.zeros(m, dtype=np.int64)
    w32 = wn.astype(np.float32)
    ww32 = (wn * wn).sum(axis=1).astype(np.float32)
    kernel(wn, np.ascontiguousarray(bias, dtype=np.int64), w32, ww32, *pass_inputs, C, P, tables.g32_ext,
           tables.a32, tables.margin, tables.ill_pos, tables.ill_q32, tables.ill_margin, tables.cycle,
           tables.pinv, tables.s_ext, float(preset.s_scale), pos, xs, qs, es, cand)
    return pos, xs, qs, es, int(cand.sum())


def search(wn: np.ndarray, bias: np.ndarray, tables):
    """(positions, x, q, err, candidates) with the fused kernel (both passes in numba)."""
    return run(search_kernel, wn, bias, tables)
