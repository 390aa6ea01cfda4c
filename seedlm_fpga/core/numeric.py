"""Small numeric helpers used across the package (one definition each)."""
from __future__ import annotations

import math

import numpy as np


def relative_error(w, w_hat) -> float:
    """||W - W_hat||_F / ||W||_F in float64 (0 for an all-zero W reproduced exactly, inf if not)."""
    w = np.asarray(w, dtype=np.float64)
    num = float(np.linalg.norm(w - np.asarray(w_hat, dtype=np.float64)))
    den = float(np.linalg.norm(w))
    return num / den if den > 0 else (0.0 if num == 0 else float("inf"))


def pow2_at_least(x: float) -> int:
    """The smallest power of two >= x, and at least 1 (x > 0)."""
    return 1 << max(0, math.ceil(math.log2(x)))

