"""The LFSR of format §1 and the basis matrices V, S, U of format §2 (numpy reference).

Fibonacci form, shifting right, feedback into the top bit::

    b     = XOR of bit j of state, for every j in taps
    state = (state >> 1) | (b << (K - 1))

The hardware `LFSR` in `seedlm_fpga.hdl.lfsr` must produce exactly these states.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

#: Maximal-length taps per register length K (format §1; the paper's table).
TAPS: dict[int, tuple[int, ...]] = {
    2: (0, 1), 3: (0, 1), 4: (0, 1), 5: (0, 2), 6: (0, 1), 7: (0, 1),
    8: (0, 2, 3, 4), 9: (0, 4), 10: (0, 3), 11: (0, 2), 12: (0, 1, 2, 8),
    13: (0, 1, 2, 5), 14: (0, 1, 2, 12), 15: (0, 1), 16: (0, 1, 3, 12),
    17: (0, 3), 18: (0, 7), 19: (0, 1, 2, 5), 20: (0, 3), 21: (0, 2),
    22: (0, 1), 23: (0, 5), 24: (0, 1, 2, 7),
}


def default_taps(K: int) -> tuple[int, ...]:
    try:
        return TAPS[K]
    except KeyError:
        raise ValueError(f"no taps known for K={K} (supported: {min(TAPS)}..{max(TAPS)})") from None


def lfsr_step(state: int, K: int, taps: tuple[int, ...] | None = None) -> int:
    """One step of the format §1 LFSR."""
    taps = default_taps(K) if taps is None else taps
    b = 0
    for j in taps:
        b ^= (state >> j) & 1
    return (state >> 1) | (b << (K - 1))


def lfsr_states(seed: int, n: int, K: int = 16, taps: tuple[int, ...] | None = None) -> np.ndarray:
    """The `n` states that follow `seed` (the seed itself excluded), as int64."""
    if not 1 <= seed <= (1 << K) - 1:
        raise ValueError(f"seed must lie in 1..{(1 << K) - 1}, got {seed}")
    taps = default_taps(K) if taps is None else tuple(taps)
    out = np.empty(n, dtype=np.int64)
    s = seed
    for i in range(n):
        s = lfsr_step(s, K, taps)
        out[i] = s
    return out


@lru_cache(maxsize=8)
def lfsr_cycle(K: int = 16, taps: tuple[int, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The orbit of state 1 and each state's position in it.

    Returns ``(cycle, position)``: ``cycle[m]`` is the state m steps after state 1
    (``cycle[0] == 1``); ``position[s]`` is the m with ``cycle[m] == s`` (-1 for
    states not on the orbit, e.g. 0). For maximal-length taps the orbit has 2^K - 1
    states. Arrays are read-only and cached.
    """
    taps = default_taps(K) if taps is None else tuple(taps)
    size = 1 << K
    position = np.full(size, -1, dtype=np.int64)
    states = []
    s = 1
    while position[s] < 0:
        position[s] = len(states)
        states.append(s)
        s = lfsr_step(s, K, taps)
    cycle = np.asarray(states, dtype=np.int64)
    cycle.flags.writeable = False
    position.flags.writeable = False
    return cycle, position


def basis_V(seeds, C: int, P: int, K: int = 16, taps: tuple[int, ...] | None = None) -> np.ndarray:
    """V(s): the C*P states that follow each seed, row by row (format §2).

    `seeds` is an int or an array of any shape; the result has shape
    ``seeds.shape + (C, P)`` (int64).
    """
    taps = default_taps(K) if taps is None else tuple(taps)
    cycle, position = lfsr_cycle(K, taps)
    seeds = np.asarray(seeds, dtype=np.int64)
    if np.any((seeds < 1) | (seeds > (1 << K) - 1)):
        raise ValueError(f"seeds must lie in 1..{(1 << K) - 1}")
    start = position[seeds]
    if np.any(start < 0):
        raise ValueError(f"taps {taps} are not maximal length for K={K}: a seed is off the orbit of 1")
    offsets = np.arange(1, C * P + 1, dtype=np.int64).reshape(C, P)
    return cycle[(start[..., None, None] + offsets) % len(cycle)]


def basis_S(seeds, C: int, P: int, K: int = 16, taps: tuple[int, ...] | None = None) -> np.ndarray:
    """S = V - 2^(K-1): signed integers (int64), the hardware's top-bit-inverted state."""
    return basis_V(seeds, C, P, K, taps) - (1 << (K - 1))


def basis_U(seeds, C: int, P: int, K: int = 16, taps: tuple[int, ...] | None = None) -> np.ndarray:
    """U = S / (2^(K-1) - 1), in [-1, 1] (float64)."""
    return basis_S(seeds, C, P, K, taps) / float((1 << (K - 1)) - 1)
