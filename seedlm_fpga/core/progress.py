"""Progress lines on stderr for the steps of a command that take seconds (stdlib only).

    from seedlm_fpga.core import progress

    with progress.step("building seedlm_gemv in Verilator") as s:
        ...                          # prints "  building seedlm_gemv in Verilator ... "
        s.note("1.2 MB")             # then "done in 41.3 s (1.2 MB)"
    progress.cached("building seedlm_gemv in Verilator")   # "  ... cached"
    progress.info("first run: yosys compiles its WebAssembly")

Lines go to stderr, never stdout, so ``--json`` output on stdout stays clean, and they
are printed in CI logs too. On a terminal a step is one line, finished in place; when
stderr is not a terminal (a log, a pipe, a test's capture) the start and the end are
two lines, so a log shows what is running while it runs. A step that raises ends with
"failed after N s". ``quiet()`` (or ``set_quiet(True)``) silences everything.
"""
from __future__ import annotations

import contextlib
import sys
import time
from typing import Iterator, TextIO

__all__ = ["Step", "StepBar", "step", "cached", "info", "quiet", "set_quiet", "is_quiet"]

_quiet = False
_open: "Step | None" = None  # the step whose line is open on a terminal (no newline yet)


def set_quiet(value: bool = True) -> bool:
    """Silence (or re-enable) progress lines; returns the previous setting."""
    global _quiet
    old, _quiet = _quiet, bool(value)
    return old


def is_quiet() -> bool:
    return _quiet


@contextlib.contextmanager
def quiet(value: bool = True) -> Iterator[None]:
    """Within the block, no progress lines (``quiet(False)``: force them on)."""
    old = set_quiet(value)
    try:
        yield
    finally:
        set_quiet(old)


def _stream() -> TextIO:
    return sys.stderr  # looked up on each call: pytest's capsys swaps it


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _write(text: str) -> None:
    stream = _stream()
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):  # stderr closed or gone: progress is never worth an error
        pass


def _break_open_line() -> None:
    """End a step's open terminal line before anything else is printed below it."""
    global _open
    if _open is not None and not _quiet:
        _write("\n")
        _open.broken = True
    _open = None


class Step:
    """One step in progress; `note` adds a detail to its closing line, `cached` marks it served from a cache."""

    def __init__(self, what: str):
        self.what = what
        self.notes: list[str] = []
        self.is_cached = False
        self.broken = False      # its terminal line was interrupted: the end repeats `what`
        self.start = time.perf_counter()
        self.seconds: float | None = None

    def note(self, text: str) -> None:
        self.notes.append(text)

    def cached(self, text: str = "") -> None:
        self.is_cached = True
        if text:
            self.notes.append(text)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def _ending(s: Step, failed: bool) -> str:
    if failed:
        head = f"failed after {s.seconds:.1f} s"
    elif s.is_cached:
        head = "cached"
    else:
        head = f"done in {s.seconds:.1f} s"
    return head + (f" ({'; '.join(s.notes)})" if s.notes else "")


@contextlib.contextmanager
def step(what: str) -> Iterator[Step]:
    """Announce `what` on stderr, run the block, then say how long it took (or "cached")."""
    global _open
    _break_open_line()
    s = Step(what)
    tty = _is_tty(_stream())
    if not _quiet:
        if tty:
            _write(f"  {what} ... ")
            _open = s
        else:
            _write(f"  {what} ...\n")
            s.broken = True
    failed = True
    try:
        yield s
        failed = False
    finally:
        s.seconds = s.elapsed()
        if not _quiet:
            if _open is s and not s.broken:
                _write(_ending(s, failed) + "\n")
            else:
                _write(f"  {what}: {_ending(s, failed)}\n")
        if _open is s:
            _open = None


def cached(what: str, detail: str = "") -> None:
    """One line for a step served from a cache: "  what ... cached (detail)"."""
    _break_open_line()
    if not _quiet:
        _write(f"  {what} ... cached" + (f" ({detail})" if detail else "") + "\n")


def info(text: str) -> None:
    """A line of its own (a notice within or between steps)."""
    _break_open_line()
    if not _quiet:
        _write(f"  {text}\n")


class StepBar:
    """A step with tqdm's ``update``/``close``: where a live bar would only clutter a log.

    ``StepBar("perplexity of X", unit="story")`` prints the start line at once and, on
    ``close``, "done in 2.3 s (100 stories)"; pass it where a tqdm bar is expected.
    """

    def __init__(self, what: str, total: int | None = None, unit: str = ""):
        self.n, self.total, self.unit = 0, total, unit
        self._cm = step(what)
        self._step = self._cm.__enter__()

    def update(self, n: int = 1) -> None:
        self.n += n

    def close(self) -> None:
        if self._cm is None:
            return
        if self.unit:
            units = self.unit[:-1] + "ies" if self.unit.endswith("y") else self.unit + "s"
            self._step.note(f"{self.n:,} {self.unit if self.n == 1 else units}")
        cm, self._cm = self._cm, None
        cm.__exit__(None, None, None)

    def __enter__(self) -> "StepBar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
