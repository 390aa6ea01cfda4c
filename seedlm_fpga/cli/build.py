"""Build for a board in named, restartable steps: size, generate, lint, cosim, synth, project, deploy.

Each step writes OUT/<step>/report.json (JSON with the provenance envelope) and OUT/manifest.json
records per step its status, when it finished, how long it took and the sha256 of its inputs.
Run again, a step whose inputs (files, flags, earlier steps' outputs) did not change is skipped.
A failed step stops the build and says how to restart from it.

steps:
  size      bus width, clock, instances and max cols for the board (seedlm-fpga boards)
  generate  the engines' Verilog and design.json (seedlm-fpga generate)
  lint      verilator --lint-only -Wall of the generated Verilog
  cosim     one GEMV on the generated engine under cocotb + Verilator, bit-exact (seedlm-fpga cosim)
  synth     yosys (+ nextpnr on ECP5 / iCE40): resources and Fmax (seedlm-fpga synth)
  project   decode tokens/s projected for the board (seedlm-fpga project; --checkpoint: its shapes)
  deploy    what goes to the board (seedlm-fpga deploy): the ULX3S-85F bitstream, or the Alveo kernel package

example:
  seedlm-fpga build --board ulx3s-85f -o build-ulx3s/
  seedlm-fpga build --board ulx3s-85f -o build-ulx3s/ --from synth      # rerun synth; later steps if their inputs changed
  seedlm-fpga build --board alveo-u280 -o build-u280/ --to lint
"""
from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from seedlm_fpga.core.engine_shape import ACT_BITS
from seedlm_fpga.core.reference import PRESETS

STEP_NAMES = ("size", "generate", "lint", "cosim", "synth", "project", "deploy")
#: the cosim step's GEMV: enough rows for back-to-back rows, cols that span several beats
COSIM_ROWS, COSIM_COLS = 16, 256


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--board", required=True, metavar="NAME_OR_PATH",
                        help="a shipped board (see `seedlm-fpga boards`) or a board .yaml file")
    parser.add_argument("--checkpoint", metavar="X.seedlm",
                        help="a compressed model: project uses its shapes, deploy its weights "
                             "(default: the shipped stories260K, compressed at seedlm-4)")
    parser.add_argument("-o", "--out", required=True, metavar="DIR", help="output folder (created)")
    parser.add_argument("--preset", choices=list(PRESETS), default="seedlm-4", help="SeedLM preset")
    parser.add_argument("--act-bits", type=int, choices=ACT_BITS, default=8, help="activation bits")
    parser.add_argument("--from", dest="first", choices=STEP_NAMES, metavar="STEP",
                        help="rerun from STEP (earlier steps must be done); one of " + ", ".join(STEP_NAMES))
    parser.add_argument("--to", dest="last", choices=STEP_NAMES, metavar="STEP", help="stop after STEP")


def _board_file(board) -> Path:
    from seedlm_fpga.boards.board import board_file
    return board_file(board)


def steps():
    """The build's steps, in order (seedlm_fpga.flows.build runs them)."""
    from seedlm_fpga.flows.build import BuildStep

    def board_input(ctx):
        return [ctx.params["board_file"]]

    def flags(*keys):
        return lambda ctx: {k: ctx.params[k] for k in keys}

    out = lambda name, *files: (lambda ctx: [ctx.out / name / f for f in files])  # noqa: E731
    # the Verilog, not design.json: its provenance names the command line, which --from changes
    gen = out("generate", "seedlm_gemv.v", "baseline_gemv.v")
    checkpoint = lambda ctx: [ctx.params["checkpoint"]] if ctx.params["checkpoint"] else []  # noqa: E731
    return [
        BuildStep("size", _size, board_input, flags("preset", "act_bits")),
        BuildStep("generate", _generate, out("size", "report.json")),
        BuildStep("lint", _lint, gen),
        BuildStep("cosim", _cosim, lambda ctx: gen(ctx) + out("size", "report.json")(ctx)),
        BuildStep("synth", _synth, lambda ctx: gen(ctx) + board_input(ctx)),
        BuildStep("project", _project, lambda ctx: board_input(ctx) + checkpoint(ctx), flags("act_bits")),
        BuildStep("deploy", _deploy, lambda ctx: board_input(ctx) + checkpoint(ctx)),
    ]


def _size(ctx) -> dict:
    from seedlm_fpga.flows.sizing import size_for_board
    sized = size_for_board(ctx.params["board_file"], ctx.params["preset"], ctx.params["act_bits"], strict=False)
    if sized["too_small"]:
        raise RuntimeError(sized["reason"])
    return sized


def _config(ctx):
    from seedlm_fpga.core.engine_shape import DesignConfig
    sized = ctx.report("size")
    return DesignConfig(preset=sized["preset"], bus_bits=sized["bus_bits"], act_bits=sized["act_bits"],
                        max_cols=sized["max_cols"])


def _generate(ctx) -> dict:
    from seedlm_fpga.hdl.generate import generate
    sized = ctx.report("size")
    sized.pop("provenance", None)
    design = generate(_config(ctx), ctx.step_dir("generate"), board=sized)
    return {"design": "design.json", "verilog": [design["verilog"], design["baseline"]["verilog"]],
            "bus_bits": design["weight_bits"], "latency_cycles": design["latency_cycles"]}


def _lint(ctx) -> dict:
    from seedlm_fpga.hdl.generate import BASELINE_TOP, SEEDLM_TOP
    from seedlm_fpga.hdl.verilator_env import lint
    results = {}
    for top in (SEEDLM_TOP, BASELINE_TOP):
        code, messages = lint(ctx.out / "generate" / f"{top}.v", top)
        if code != 0:
            raise RuntimeError(f"verilator --lint-only {top}.v: {messages.strip().splitlines()[0]}")
        results[top] = {"exit_code": code, "messages": messages.strip().splitlines()}
    return {"tool": "verilator --lint-only -Wall (LINT_WAIVERS of seedlm_fpga.hdl.verilator_env)",
            "modules": results}


def _cosim(ctx) -> dict:
    from seedlm_fpga.sim.cosim_runner import run_gemv
    cfg = _config(ctx)
    cols = min(COSIM_COLS, cfg.max_cols)
    res = run_gemv(cfg.preset, COSIM_ROWS, cols, cfg.bus_bits, cfg.act_bits, max_cols=cfg.max_cols)
    if not res.ok:
        raise RuntimeError(res.report())
    return {"rows": res.rows, "cols": res.cols, "bus_bits": res.bus_bits, "act_bits": res.act_bits,
            "bit_exact": True, "cycles": res.cycles, "summary": res.report()}


def _synth(ctx) -> dict:
    from seedlm_fpga.boards.board import load_board
    from seedlm_fpga.flows.synth import synth_and_pnr
    board = load_board(ctx.params["board_file"])
    result = synth_and_pnr(ctx.out / "generate" / "seedlm_gemv.v", board, ctx.step_dir("synth"))
    body = {k: v for k, v in result.items() if k != "netlist"}
    if result.get("pnr"):
        body["fmax_mhz"], body["target_mhz"] = result["pnr"]["fmax_mhz"], result["pnr"]["target_mhz"]
    return body


def _project(ctx) -> dict:
    from seedlm_fpga.sim.llama_shapes import BUILTIN_MODELS, builtin_model, model_from_checkpoint
    from seedlm_fpga.sim.projection import FORMATS
    from seedlm_fpga.sim.projection_report import build_report
    ckpt = ctx.params["checkpoint"]
    models = [model_from_checkpoint(ckpt)] if ckpt else [builtin_model(BUILTIN_MODELS[0])]
    formats = ("checkpoint",) if ckpt else FORMATS
    return build_report([ctx.params["board_file"]], models, formats, ctx.params["act_bits"])


def _deploy(ctx) -> dict:
    from seedlm_fpga.cli.deploy import deploy_for_board
    return deploy_for_board(ctx.params["board_file"], ctx.step_dir("deploy"), ctx.params["checkpoint"])


def run(args) -> int:
    from seedlm_fpga.core.files import check_input_file
    from seedlm_fpga.flows.build import BuildContext, run_build

    board_file = _board_file(args.board)
    if args.checkpoint:
        check_input_file(args.checkpoint, "checkpoint")
    out = Path(args.out)
    params = {"board": args.board, "board_file": str(board_file), "preset": args.preset,
              "act_bits": args.act_bits, "checkpoint": args.checkpoint}
    again = ["seedlm-fpga", "build", "--board", args.board, "-o", args.out]
    if args.checkpoint:
        again += ["--checkpoint", args.checkpoint]
    hint = "`" + shlex.join(again) + " --from {step}`"
    manifest = run_build(steps(), BuildContext(out, params, hint), args.first, args.last)
    for name in manifest["order"]:
        entry = manifest["steps"].get(name)
        if entry:
            print(f"{name:9s} {entry['status']:8s} {out / name / 'report.json'}")
    print(f"manifest: {out / 'manifest.json'}")
    return 0
