"""Atomic file writes: the one helper every file the tool writes goes through.

``atomic_write(path)`` yields a temp file in the target's folder; on success it is
flushed, fsynced and renamed over the target (``os.replace``), so readers see the old
file or the new one, never half of one. On any exception the temp file is removed and
the target is left as it was. The final file gets the permissions a plain ``open(path,
"w")`` would give (0o666 less the umask), not mkstemp's 0o600. A failed write (read-only
folder, full disk, file-size limit) raises ``UserOSError`` naming the target.

The input side lives here too, one rule each: ``check_input_file`` (a regular file we can
read: never a FIFO that blocks ``open`` forever, a device or a folder), ``read_input_text`` /
``load_json_file`` (size-bounded, UTF-8, nesting-bounded JSON), ``check_output_file`` (a
writable file path in an existing folder, never a folder) and ``check_not_input`` (an
output is never one of the command's inputs: same real path or same inode, through
symlinks and hard links).
"""
from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

from seedlm_fpga.errors import UserError, UserOSError

#: Largest small text input (config.json, board YAML, index.json, state files) read whole: 64 MiB.
MAX_TEXT_BYTES = 64 << 20


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
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise UserOSError(f"{path}: cannot write ({_why(exc)})") from None
    try:
        with os.fdopen(fd, mode, **open_args) as f:
            try:
                yield f
                f.flush()
                os.fsync(f.fileno())
            except UserOSError:
                raise
            except OSError as exc:  # full disk, file-size limit, I/O error: never a half-written target
                if exc.errno is None:
                    raise
                raise UserOSError(f"{path}: cannot write ({_why(exc)})") from None
        os.chmod(tmp, 0o666 & ~current_umask())
        try:
            os.replace(tmp, path)
        except OSError as exc:
            raise UserOSError(f"{path}: cannot write ({_why(exc)})") from None
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


# --- inputs and outputs: one rule each -----------------------------------------------------------

def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def check_input_file(path: str | Path, what: str = "file") -> os.stat_result:
    """Stat `path` (through symlinks) and insist on a regular file; UserError otherwise.

    A FIFO would block ``open`` forever and a device can be endless, so neither is read.
    """
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except OSError as exc:
        raise UserOSError(f"{path}: cannot read {what} ({_why(exc)})") from None
    if stat.S_ISDIR(st.st_mode):
        raise UserError(f"{path}: is a folder, expected a {what}")
    if not stat.S_ISREG(st.st_mode):
        raise UserError(f"{path}: not a regular file (a FIFO, device or socket); expected a {what}")
    if not os.access(path, os.R_OK):
        raise UserOSError(f"{path}: cannot read {what} (Permission denied)")
    return st


def read_input_bytes(path: str | Path, what: str = "file", max_bytes: int = MAX_TEXT_BYTES) -> bytes:
    """The whole of a small regular file, refused above `max_bytes`."""
    st = check_input_file(path, what)
    if st.st_size > max_bytes:
        raise UserError(f"{path}: {what} of {st.st_size:,} bytes is larger than the {max_bytes:,} allowed")
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise UserOSError(f"{path}: cannot read {what} ({_why(exc)})") from None
    if len(data) > max_bytes:
        raise UserError(f"{path}: {what} is larger than the {max_bytes:,} bytes allowed")
    return data


def read_input_text(path: str | Path, what: str = "file", max_bytes: int = MAX_TEXT_BYTES) -> str:
    """A small regular UTF-8 text file."""
    data = read_input_bytes(path, what, max_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: {what} is not UTF-8 text (byte {exc.start})") from None


def parse_json(text: str | bytes, origin: str, what: str | None = None):
    """json.loads that fails with one line naming `origin` (and `what`, if given): bad syntax,
    nesting too deep, integers too long."""
    head = f"{origin}: {what} is" if what else f"{origin}:"
    try:
        return json.loads(text)
    except RecursionError:
        raise UserError(f"{head} nested too deeply") from None
    except UnicodeDecodeError:
        raise UserError(f"{head} not UTF-8 text") from None
    except ValueError as exc:  # JSONDecodeError, and integers past sys.get_int_max_str_digits()
        raise UserError(f"{head} not valid JSON ({str(exc).splitlines()[0]})") from None


def load_json_file(path: str | Path, what: str = "JSON file", max_bytes: int = MAX_TEXT_BYTES):
    """Read and parse a small JSON file; every failure is a one-line UserError naming it."""
    return parse_json(read_input_text(path, what, max_bytes), str(path))


def _identity(path: Path) -> tuple[str, tuple[int, int] | None]:
    try:
        st = os.stat(path)
        ino = (st.st_dev, st.st_ino)
    except OSError:
        ino = None
    return os.path.realpath(path), ino


def same_file(a: str | Path, b: str | Path) -> bool:
    """True if `a` and `b` name one file: the same real path, or the same device and inode
    (a symlink or hard link to it)."""
    ra, ia = _identity(Path(a))
    rb, ib = _identity(Path(b))
    return ra == rb or (ia is not None and ia == ib)


def check_not_input(output: str | Path, inputs: Iterable[str | Path], flag: str = "-o") -> None:
    """Refuse an output that is one of the files the command reads (an output inside a model
    folder is fine; one of the files read from it is not)."""
    for inp in inputs:
        if inp is not None and same_file(output, inp):
            raise UserError(f"{flag} {output} is the input {inp}; refusing to overwrite an input")


def check_output_file(output: str | Path, flag: str = "-o") -> Path:
    """An output file path: not empty, its folder exists and is writable, and it is not a folder
    or some other non-regular file (a FIFO, a device) that a rename would clobber."""
    text = str(output)
    if not text or text.endswith(os.sep):
        raise UserError(f"{flag} {text!r}: expected a file name")
    output = Path(output)
    parent = output.parent
    if not parent.is_dir():
        raise UserError(f"{parent}: output folder does not exist")
    if os.path.lexists(output):
        try:
            st = os.stat(output)
        except OSError:  # a dangling symlink: the rename replaces the link itself
            st = None
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise UserError(f"{flag} {output}: is a folder, expected a file name")
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise UserError(f"{flag} {output}: exists and is not a regular file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserOSError(f"{parent}: cannot write to the output folder (Permission denied)")
    return output
