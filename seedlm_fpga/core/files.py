"""Atomic file writes: the one helper every file the tool writes goes through.

``atomic_write(path)`` yields a temp file in the target's folder; on success it is
flushed, fsynced and renamed over the target (``os.replace``), so readers see the old
file or the new one, never half of one. On any exception the temp file is removed and
the target is left as it was. The final file gets the permissions a plain ``open(path,
"w")`` would give (0o666 less the umask), not mkstemp's 0o600.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def current_umask() -> int:
    """The process umask, without changing it where the OS lets us read it.

    Linux reports it in /proc/self/status ("Umask:"), which is safe with other threads
    running. Elsewhere the only way is to set it and put it back (os.umask returns the old
    value); another thread creating a file in that instant would get umask 0.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb", **open_args):
    """Yield a file opened with `mode` ("wb" or "w") next to `path`; replace `path` on success.

    `open_args` go to ``os.fdopen`` (e.g. ``encoding`` / ``newline`` in text mode).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write opens files for writing only ('wb' or 'w'), got {mode!r}")
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **open_args) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    with atomic_write(path, "wb") as f:
        f.write(data)


def write_text_atomic(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    with atomic_write(path, "w", encoding=encoding) as f:
        f.write(text)
