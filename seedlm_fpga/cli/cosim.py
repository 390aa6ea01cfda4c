"""Run the generated Verilog under cocotb + Verilator, bit-exact, with cycle counts.

Generates the SeedLM engine and the 16-bit baseline engine for one bus, drives each with
the same GEMV (compressed Gaussian weights; the baseline gets them as int16), checks
every output against the numpy reference bit for bit, and prints the measured cycles
(first activation beat accepted to last output) and the speedup.

  seedlm-fpga cosim --rows 256 --cols 1024 --bus-bits 512 --preset seedlm-4
  seedlm-fpga cosim --paper        # format §8: 2048 x 2048 at 64 bytes per cycle, no stalls

Verilator builds are cached under $SEEDLM_FPGA_CACHE (default ~/.cache/seedlm-fpga).
Exit status: 0 if both engines are bit-exact, 1 if not, 2 on bad arguments.
"""
from __future__ import annotations

import time

from seedlm_fpga.core import paper
from seedlm_fpga.core.engine_shape import COSIM_MAX_COLS
from seedlm_fpga.core.numeric import check_allocation, check_number
from seedlm_fpga.core.report import dumps, report_dict
from seedlm_fpga.core import progress
from seedlm_fpga.errors import UserError

#: format §8: the paper's FPGA experiment (its figures: core.paper).
PAPER = {"rows": paper.GEMV_ROWS, "cols": paper.GEMV_COLS, "bus_bits": paper.BUS_BITS, "preset": paper.PRESET}
#: Largest GEMV a cosim runs (Verilator simulates every cycle; 65536 x 65536 is hours already).
MAX_ROWS, MAX_COLS = 1 << 16, 1 << 20
SHAPE_OPTIONS = ("rows", "cols", "bus_bits", "preset", "gap", "ready_gap")


def add_arguments(parser) -> None:
    parser.add_argument("--paper", action="store_true",
                        help=f"the paper's experiment: {paper.GEMV_ROWS} x {paper.GEMV_COLS}, {paper.PRESET}, "
                             f"W = {paper.BUS_BITS}, no stalls")
    parser.add_argument("--rows", type=int, help="output rows (default 256)")
    parser.add_argument("--cols", type=int, help="input columns (default 1024)")
    parser.add_argument("--bus-bits", type=int, help="weight bus width W in bits (default 512)")
    parser.add_argument("--preset", choices=("seedlm-4", "seedlm-3"), help="SeedLM preset (default seedlm-4)")
    parser.add_argument("--act-bits", type=int, choices=(8, 16), default=8, help="activation bits (default 8)")
    parser.add_argument("--image", choices=("beat", "packed"), default="beat",
                        help="the SeedLM engine's weight image: beat (format §5.3, default) or packed (§5.4)")
    parser.add_argument("--gap", type=float,
                        help="probability of an idle cycle before each input beat (memory throttle, default 0)")
    parser.add_argument("--ready-gap", type=float, help="probability that the output's tready is low (default 0)")
    parser.add_argument("--stimulus", choices=("gaussian", "random"), default="gaussian",
                        help="compressed Gaussian weights (default) or random block fields")
    parser.add_argument("--max-cols", type=int, help="max cols the engines are generated for "
                        f"(default {COSIM_MAX_COLS}, or cols if larger)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of stimulus and stalls (default 0)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def _settings(args) -> dict:
    given = {k: getattr(args, k) for k in SHAPE_OPTIONS if getattr(args, k) is not None}
    if args.paper:
        if given:
            names = ", ".join("--" + k.replace("_", "-") for k in given)
            raise UserError(f"--paper fixes the shape, bus and stalls; do not combine it with {names}")
        return {**PAPER, "gap": 0.0, "ready_gap": 0.0}
    s = {"rows": 256, "cols": 1024, "bus_bits": 512, "preset": "seedlm-4", "gap": 0.0, "ready_gap": 0.0}
    s.update(given)
    if s["rows"] < 1 or s["cols"] < 1:
        raise UserError(f"rows and cols must be at least 1, got {s['rows']} x {s['cols']}")
    check_number("--rows", s["rows"], 1, MAX_ROWS, integer=True)  # simulated cycle by cycle: keep it bounded
    check_number("--cols", s["cols"], 1, MAX_COLS, integer=True)
    check_number("--seed", args.seed, 0, 2**63 - 1, integer=True)
    check_allocation(s["rows"] * s["cols"] * 64, f"a {s['rows']} x {s['cols']} cosim stimulus")  # ~64 B/weight
    for name in ("gap", "ready_gap"):
        if not 0 <= s[name] < 1:
            raise UserError(f"--{name.replace('_', '-')} must lie in [0, 1), got {s[name]}")
    return s


def _result_dict(r) -> dict:
    return {"engine": r.engine, "ok": r.ok, "cycles": r.cycles, "weight_beats": r.weight_beats,
            "act_beats": r.act_beats, "rows": r.rows, "cols": r.cols, "errors": r.errors,
            "mismatched_rows": len(r.mismatched_rows), "diagnosis": r.diagnosis,
            "sim_cycles": r.sim_cycles, "sim_wall_s": round(r.sim_wall_s, 3),
            "sim_cycles_per_s": round(r.sim_cycles / r.sim_wall_s) if r.sim_wall_s else None}


def run(args) -> int:
    from seedlm_fpga.sim import stimulus as stim
    from seedlm_fpga.sim.cosim_build import CosimError
    from seedlm_fpga.sim.cosim_runner import generated_engine, run_cases

    s = _settings(args)
    max_cols = args.max_cols or max(COSIM_MAX_COLS, s["cols"])
    if max_cols < s["cols"]:
        raise UserError(f"--max-cols {max_cols} is less than --cols {s['cols']}")
    make = stim.gaussian_case if args.stimulus == "gaussian" else stim.random_case
    results = {}
    t0 = time.perf_counter()
    try:
        for kind in (s["preset"], stim.BASELINE):
            engine = generated_engine(kind, s["bus_bits"], args.act_bits, max_cols, args.image)
            if kind == stim.BASELINE or args.stimulus != "gaussian":  # no encoding: fast
                case = make(kind, s["rows"], s["cols"], args.act_bits, args.seed)
            else:
                with progress.step(f"compressing {s['rows']} x {s['cols']} Gaussian weights with {kind}"):
                    case = make(kind, s["rows"], s["cols"], args.act_bits, args.seed)
            results[kind] = run_cases(engine, [case], s["gap"], s["ready_gap"], args.seed)[0]
    except ValueError as exc:  # bad combinations caught by the generator (e.g. bus too narrow)
        raise UserError(str(exc)) from None
    except CosimError as exc:
        raise UserError(str(exc).splitlines()[0]) from None
    seedlm, base = results[s["preset"]], results[stim.BASELINE]
    speedup = base.cycles / seedlm.cycles if seedlm.cycles and base.cycles else None
    ok = seedlm.ok and base.ok
    if args.json:
        out = {"settings": {**s, "act_bits": args.act_bits, "max_cols": max_cols, "seed": args.seed,
                            "stimulus": args.stimulus, "image": args.image},
               "seedlm": _result_dict(seedlm), "baseline": _result_dict(base),
               "speedup": round(speedup, 4) if speedup else None, "ok": ok,
               "wall_s": round(time.perf_counter() - t0, 2)}
        if args.paper:
            out["paper"] = {"seedlm_cycles": paper.SEEDLM_CYCLES, "fp16_cycles": paper.FP16_CYCLES,
                            "speedup": round(paper.FP16_CYCLES / paper.SEEDLM_CYCLES, 4)}
        print(dumps(report_dict(out)), end="")
        return 0 if ok else 1
    print(f"GEMV {s['rows']} x {s['cols']}, W = {s['bus_bits']} bits, A = {args.act_bits} bits, "
          f"gap {s['gap']}, ready gap {s['ready_gap']}, {args.stimulus} stimulus, {args.image} image")
    bits = seedlm.weight_beats * s["bus_bits"] / (s["rows"] * s["cols"])
    print(f"  {s['preset']} streams {bits:.3f} bits/weight ({args.image} image)")
    for r in (seedlm, base):
        print(f"  {r.report()}")
    if speedup:
        print(f"  speedup {s['preset']} over the 16-bit baseline: {speedup:.3f}x "
              f"({base.cycles:,} / {seedlm.cycles:,} cycles)")
    if args.paper:
        print(f"  paper (format §8): {paper.SEEDLM_CYCLES:,} vs {paper.FP16_CYCLES:,} cycles, "
              f"{paper.FP16_CYCLES / paper.SEEDLM_CYCLES:.2f}x; ideal {paper.IDEAL_SEEDLM_CYCLES:,} vs "
              f"{paper.IDEAL_FP16_CYCLES:,}, {paper.IDEAL_FP16_CYCLES / paper.IDEAL_SEEDLM_CYCLES:.2f}x")
    sim_cycles = seedlm.sim_cycles + base.sim_cycles
    sim_wall = seedlm.sim_wall_s + base.sim_wall_s
    if sim_wall:
        print(f"  simulated {sim_cycles:,} cycles in {sim_wall:.1f} s ({sim_cycles / sim_wall:,.0f} cycles/s); "
              f"total {time.perf_counter() - t0:.1f} s")
    return 0 if ok else 1
