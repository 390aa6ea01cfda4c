"""Small numeric helpers used across the package (one definition each)."""
from __future__ import annotations

import math
import os

import numpy as np

from seedlm_fpga.errors import UserError


def relative_error(w, w_hat) -> float:
    """||W - W_hat||_F / ||W||_F in float64 (0 for an all-zero W reproduced exactly, inf if not)."""
    w = np.asarray(w, dtype=np.float64)
    num = float(np.linalg.norm(w - np.asarray(w_hat, dtype=np.float64)))
    den = float(np.linalg.norm(w))
    return num / den if den > 0 else (0.0 if num == 0 else float("inf"))


def pow2_at_least(x: float) -> int:
    """The smallest power of two >= x, and at least 1 (x > 0)."""
    return 1 << max(0, math.ceil(math.log2(x)))



def check_number(name: str, value, lo=None, hi=None, *, integer: bool = False, lo_open: bool = False):
    """A number the user gave (flag, file field): finite, an integer if `integer`, within
    [lo, hi] (lo excluded if `lo_open`). Returns it; raises UserError naming `name` otherwise."""
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise UserError(f"{name} must be {kind}, got {value!r}")
    if integer and not isinstance(value, (int, np.integer)):
        raise UserError(f"{name} must be {kind}, got {value!r}")
    if not integer and not math.isfinite(value):
        raise UserError(f"{name} must be a finite number, got {value!r}")
    below = lo is not None and (value <= lo if lo_open else value < lo)
    above = hi is not None and value > hi
    if below or above:
        left = "(" if lo_open else "["
        span = f"{left}{'-inf' if lo is None else f'{lo:,}'}, {'inf' if hi is None else f'{hi:,}'}]"
        shown = f"{value:,}" if integer else f"{value:g}"
        raise UserError(f"{name} must lie in {span}, got {shown}")
    return value


def machine_memory_bytes() -> int | None:
    """Physical memory of this machine (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_allocation(nbytes: int, what: str) -> None:
    """Refuse to start work that needs more memory than half this machine has: a small file
    or flag must not be able to ask for terabytes (UserError naming `what`)."""
    total = machine_memory_bytes()
    limit = total // 2 if total else 1 << 40
    if nbytes > limit:
        raise UserError(f"{what} would need about {nbytes / 2**30:,.1f} GiB of memory, more than the "
                        f"{limit / 2**30:,.1f} GiB allowed (half of this machine's)")
