"""The one JSON report format: the command's own keys plus a "provenance" envelope.

    report = report_dict(body, inputs=[args.input])   # body's keys unchanged, "provenance" added last
    print(dumps(report), end="")                       # or write_report(path, body, inputs=...)

"provenance" = {"tool": "seedlm-fpga", "version": __version__,
"git": `git describe --always --dirty --tags` of the source checkout this package runs from
(null when it is not one), "command": ["seedlm-fpga", *argv], "inputs": {path as given:
sha256 of the file}}. It holds no time or duration, so the same command on the same
inputs and sources gives byte-identical reports (timings some reports carry in their
body are outside the envelope).
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from seedlm_fpga import __version__
from seedlm_fpga.core.files import write_text_atomic

TOOL = "seedlm-fpga"
_PACKAGE_DIR = Path(__file__).resolve().parent.parent

#: The argv (without the program name) of the command being run; set by the CLI dispatcher.
_argv: list[str] | None = None


def set_argv(argv: list[str]) -> None:
    """Record the command line (without the program name) that reports name as their command."""
    global _argv
    _argv = [str(a) for a in argv]


def command(argv: list[str] | None = None) -> list[str]:
    """["seedlm-fpga", *argv]: `argv`, else the one the CLI recorded, else sys.argv[1:]."""
    if argv is None:
        argv = _argv if _argv is not None else sys.argv[1:]
    return [TOOL, *map(str, argv)]


@functools.lru_cache(maxsize=1)
def git_describe() -> str | None:
    """`git describe --always --dirty --tags` of the checkout holding this package, else None.

    None when git is missing, slow or fails, or when the package is not tracked there (an
    installed copy inside some other repository's tree is not that repository's source).
    """
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}  # --dirty must not take the index lock

    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(["git", *args], cwd=_PACKAGE_DIR, env=env, capture_output=True,
                                  text=True, timeout=5)
        except (OSError, subprocess.SubprocessError):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    if git("ls-files", "--error-unmatch", "--", "__init__.py") is None:
        return None
    return git("describe", "--always", "--dirty", "--tags") or None


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks (memory stays flat for any size)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def input_hashes(paths) -> dict[str, str]:
    """{path as given: sha256} for each path that names a regular file (others are skipped:
    a shipped board's id, a checkpoint folder, an option left out as None)."""
    out: dict[str, str] = {}
    for p in paths or ():
        if p is not None and str(p) not in out and Path(p).is_file():
            out[str(p)] = sha256_file(p)
    return out


def provenance(inputs=(), argv: list[str] | None = None) -> dict:
    return {"tool": TOOL, "version": __version__, "git": git_describe(), "command": command(argv),
            "inputs": input_hashes(inputs)}


def report_dict(body: dict, inputs=(), argv: list[str] | None = None) -> dict:
    """`body` with "provenance" added after its own keys."""
    if "provenance" in body:
        raise ValueError('a report body may not have its own "provenance" key')
    return {**body, "provenance": provenance(inputs, argv)}


def dumps(report: dict, sort_keys: bool = False) -> str:
    """The report as JSON text: indent 2, keys in the report's order unless `sort_keys`, newline at the end."""
    return json.dumps(report, indent=2, sort_keys=sort_keys) + "\n"


def write_report(path: str | Path, body: dict, inputs=(), argv: list[str] | None = None) -> dict:
    """Write report_dict(body, ...) atomically to `path`; return the report written."""
    report = report_dict(body, inputs, argv)
    write_text_atomic(path, dumps(report))
    return report
