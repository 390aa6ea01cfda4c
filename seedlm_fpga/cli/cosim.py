"""Run the generated Verilog under cocotb + Verilator, bit-exact, with cycle counts.

Generates the SeedLM engine and the 16-bit baseline engine for one bus, drives each with
the same GEMV (compressed Gaussian weights; the baseline gets them as int16), checks
every output against the numpy reference bit for bit, and prints the measured cycles
(first activation beat accepted to last output) and the speedup.

  seedlm-fpga cosim --rows 256 --cols 1024 --bus-bits 512 --preset seedlm-4
  seedlm-fpga cosim --paper        # format §8: 2048 x 2048 at 64 bytes per cycle, no stalls

With --kernel it runs the memory-mapped kernels instead (format §11: seedlm_kernel and
baseline_kernel): the host driver (sim/kernel_host.py) lays out the activation image, weight
images, descriptors and Y buffers in one shared AXI memory (cocotbext-axi, sim/axi_memory.py)
that answers reads --mem-latency cycles late and pauses its R channels with probability
--mem-gap; --ready-gap pauses W and B (output back-pressure). It programs the registers over
AXI4-Lite, starts, waits for the interrupt, reads Y and checks every bit; cycles are the CYCLES
register (ap_start taken to ap_done), checked against the bench's own count. --descriptors K
runs K GEMVs of the shape in one start through the descriptor list (one activation load).
The kernels are generated to hide the memory they meet (generate --mem-latency max(128, N + 2)).

  seedlm-fpga cosim --kernel --paper --mem-latency 120

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
KERNEL_OPTIONS = ("mem_latency", "mem_gap", "descriptors", "outliers", "rank")
MAX_MEM_LATENCY = 4000


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
    parser.add_argument("--ready-gap", type=float, help="probability that the output's tready is low (default 0); with --kernel: that W and B "
                             "of m_axi_io pause in a cycle (output back-pressure)")
    parser.add_argument("--stimulus", choices=("gaussian", "random"), default="gaussian",
                        help="compressed Gaussian weights (default) or random block fields")
    parser.add_argument("--max-cols", type=int, help="max cols the engines are generated for "
                        f"(default {COSIM_MAX_COLS}, or cols if larger)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of stimulus and stalls (default 0)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    kernel = parser.add_argument_group("memory-mapped kernels (format §11)")
    kernel.add_argument("--kernel", action="store_true",
                        help="run seedlm_kernel and baseline_kernel against an AXI memory instead of the bare engines")
    kernel.add_argument("--mem-latency", type=int,
                        help="memory read latency N in cycles (default 0): the first R beat transfers N + 2 edges "
                             "after its AR (format §11.4's L_r = N + 2)")
    kernel.add_argument("--mem-gap", type=float,
                        help="probability that the memory pauses its R channels in a cycle (default 0)")
    kernel.add_argument("--descriptors", type=int,
                        help="K GEMVs of the shape per start through the descriptor list, sharing one activation "
                             "load (default: one GEMV from the registers)")
    kernel.add_argument("--outliers", type=float, metavar="F",
                        help="SeedLM GEMVs carry outliers as `compress --outliers F` keeps them (format §5.5); the "
                             "SeedLM kernel gets the extension unit (§11.3) and runs them through descriptors")
    kernel.add_argument("--rank", type=int, metavar="R",
                        help="SeedLM GEMVs carry a rank-R part as `compress --rank R` makes it (1..4 on the kernel)")


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


def _kernel_settings(args, s: dict) -> dict:
    given = [k for k in KERNEL_OPTIONS if getattr(args, k) is not None]
    if not args.kernel:
        if given:
            raise UserError(f"--{given[0].replace('_', '-')} needs --kernel")
        return {}
    if s["gap"]:
        raise UserError("--gap throttles the engine streams; with --kernel use --mem-gap")
    k = {"mem_latency": 0 if args.mem_latency is None else args.mem_latency,
         "mem_gap": 0.0 if args.mem_gap is None else args.mem_gap, "descriptors": args.descriptors or 0}
    check_number("--mem-latency", k["mem_latency"], 0, MAX_MEM_LATENCY, integer=True)
    if not 0 <= k["mem_gap"] < 1:
        raise UserError(f"--mem-gap must lie in [0, 1), got {k['mem_gap']}")
    check_number("--descriptors", k["descriptors"], 0, 1024, integer=True)
    k["outliers"], k["rank"] = args.outliers or 0.0, args.rank or 0
    if k["outliers"] or k["rank"]:
        from seedlm_fpga.core.extensions import MAX_OUTLIER_FRACTION
        from seedlm_fpga.core.ext_stream import EXT_MAX_RANK

        check_number("--outliers", k["outliers"], 0, MAX_OUTLIER_FRACTION)
        check_number("--rank", k["rank"], 0, min(EXT_MAX_RANK, s["rows"], s["cols"]), integer=True)
        k["descriptors"] = max(1, k["descriptors"])  # the extension streams come through descriptors
    return k


def _kernel_dict(r, model_cycles: float) -> dict:
    return {"engine": r.engine, "ok": r.ok, "cycles": r.cycles, "tb_cycles": r.tb_cycles,
            "model_cycles": round(model_cycles, 1), "rows": r.rows, "cols": r.cols, "errors": r.errors,
            "mismatched_rows": len(r.mismatches), "sim_cycles": r.sim_cycles, "sim_wall_s": round(r.sim_wall_s, 3),
            "sim_cycles_per_s": round(r.sim_cycles / r.sim_wall_s) if r.sim_wall_s else None}


def _run_kernels(args, s: dict, k: dict, max_cols: int, make) -> tuple[dict, dict]:
    """Both kernels on the same GEMV(s); returns (results by engine, JSON dicts by engine)."""
    import dataclasses

    from seedlm_fpga.core.engine_shape import DEFAULT_MAX_DESCRIPTORS, DEFAULT_MEM_LATENCY, DesignConfig
    from seedlm_fpga.sim import stimulus as stim
    from seedlm_fpga.sim.axi_memory import BASE_WRITE_LATENCY
    from seedlm_fpga.sim.cycle_model import kernel_models
    from seedlm_fpga.sim.kernel_runner import generated_kernel, kernel_case, read_latency, run_kernel_cases

    from seedlm_fpga.core.ext_stream import stream_timing
    from seedlm_fpga.hdl.kernel import KINDS, KernelParams, check_kernel

    l_r = read_latency(k["mem_latency"])
    sized = max(DEFAULT_MEM_LATENCY, l_r)  # a kernel generated to hide the memory it meets
    n = max(1, k["descriptors"])
    extended = bool(k.get("outliers") or k.get("rank"))
    ext_rows = 1 << max(0, s["rows"] - 1).bit_length()  # the extension unit's Y buffer: a power of two
    params = KernelParams(mem_latency=sized, max_descriptors=max(DEFAULT_MAX_DESCRIPTORS, n), extensions=extended,
                          ext_max_rows=ext_rows)
    cfg = DesignConfig(preset=s["preset"], bus_bits=s["bus_bits"], act_bits=args.act_bits, max_cols=max_cols,
                       image=args.image)
    for kind in KINDS:  # refuse before generating anything
        check_kernel(cfg, kind, params)
    results, dicts = {}, {}
    for kind in (s["preset"], stim.BASELINE):
        kernel = generated_kernel(kind, s["bus_bits"], args.act_bits, max_cols, args.image, sized,
                                  max_descriptors=params.max_descriptors, preset=s["preset"], extensions=extended,
                                  ext_max_rows=ext_rows)
        if extended and kind != stim.BASELINE:
            with progress.step(f"splitting and compressing {n} x {s['rows']} x {s['cols']} Gaussian weights "
                               f"(outliers {k['outliers']}, rank {k['rank']})"):
                gemvs = [stim.extended_case(kind, s["rows"], s["cols"], args.act_bits, args.seed + i,
                                            k["outliers"], k["rank"]) for i in range(n)]
        elif kind == stim.BASELINE or args.stimulus != "gaussian":
            gemvs = [make(kind, s["rows"], s["cols"], args.act_bits, args.seed + i) for i in range(n)]
        else:
            what = f"{n} GEMVs of " if n > 1 else ""
            with progress.step(f"compressing {what}{s['rows']} x {s['cols']} Gaussian weights with {kind}"):
                gemvs = [make(kind, s["rows"], s["cols"], args.act_bits, args.seed + i) for i in range(n)]
        gemvs = [dataclasses.replace(g, acts=gemvs[0].acts) for g in gemvs]
        case = kernel_case(gemvs, descriptors=k["descriptors"] > 0)
        r = run_kernel_cases(kernel, [case], k["mem_latency"], k["mem_gap"], s["ready_gap"], args.seed)[0]
        model = kernel_models(s["preset"], s["bus_bits"], args.act_bits, args.image, sized, kernel.max_burst)
        streams = [stream_timing(g.ext, (g.rows, g.cols)) if g.ext else None for g in gemvs]
        predicted = model["fp16" if kind == stim.BASELINE else kind].cycles(
            s["cols"], [s["rows"]] * n, case.descriptors, l_r, BASE_WRITE_LATENCY, k["mem_gap"], s["ready_gap"],
            streams=streams)
        results[kind], dicts[kind] = r, _kernel_dict(r, predicted)
    return results, dicts


def run(args) -> int:
    from seedlm_fpga.sim import stimulus as stim
    from seedlm_fpga.sim.cosim_build import CosimError
    from seedlm_fpga.sim.cosim_runner import generated_engine, run_cases

    s = _settings(args)
    k = _kernel_settings(args, s)
    max_cols = args.max_cols or max(COSIM_MAX_COLS, s["cols"])
    if max_cols < s["cols"]:
        raise UserError(f"--max-cols {max_cols} is less than --cols {s['cols']}")
    make = stim.gaussian_case if args.stimulus == "gaussian" else stim.random_case
    results = {}
    t0 = time.perf_counter()
    try:
        if args.kernel:
            return _report_kernels(args, s, k, max_cols, *_run_kernels(args, s, k, max_cols, make), t0)
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
            out["paper"] = _paper_json()
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


def _paper_json() -> dict:
    """Format §8's published cycle counts, as both reports give them."""
    return {"seedlm_cycles": paper.SEEDLM_CYCLES, "fp16_cycles": paper.FP16_CYCLES,
            "speedup": round(paper.FP16_CYCLES / paper.SEEDLM_CYCLES, 4)}


def _report_kernels(args, s: dict, k: dict, max_cols: int, results: dict, dicts: dict, t0: float) -> int:
    from seedlm_fpga.sim.stimulus import BASELINE

    seedlm, base = results[s["preset"]], results[BASELINE]
    speedup = base.cycles / seedlm.cycles if seedlm.cycles and base.cycles else None
    ok = seedlm.ok and base.ok
    if args.json:
        out = {"settings": {**s, **k, "kernel": True, "act_bits": args.act_bits, "max_cols": max_cols,
                            "seed": args.seed, "stimulus": args.stimulus, "image": args.image},
               "seedlm": dicts[s["preset"]], "baseline": dicts[BASELINE],
               "speedup": round(speedup, 4) if speedup else None, "ok": ok,
               "wall_s": round(time.perf_counter() - t0, 2)}
        if args.paper:
            out["paper"] = {**_paper_json(), "ideal_seedlm_cycles": paper.IDEAL_SEEDLM_CYCLES}
        print(dumps(report_dict(out)), end="")
        return 0 if ok else 1
    n = max(1, k["descriptors"])
    print(f"kernels: {n} GEMV(s) of {s['rows']} x {s['cols']} per start, W = {s['bus_bits']} bits, "
          f"A = {args.act_bits} bits, memory latency {k['mem_latency']}, memory gap {k['mem_gap']}, "
          f"output back-pressure {s['ready_gap']}, {args.stimulus} stimulus, {args.image} image")
    if k.get("outliers") or k.get("rank"):
        print(f"  SeedLM GEMVs with outliers {k['outliers']} and rank {k['rank']} (format §5.5) on the extension unit")
    for kind, r in results.items():
        print(f"  {r.report()} (model {dicts[kind]['model_cycles']:,.0f})")
    if speedup:
        print(f"  speedup {s['preset']} over the 16-bit kernel: {speedup:.3f}x ({base.cycles:,} / {seedlm.cycles:,} "
              f"cycles, ap_start to ap_done)")
    if args.paper:
        print(f"  paper (format §8): {paper.SEEDLM_CYCLES:,} vs {paper.FP16_CYCLES:,} cycles; "
              f"SeedLM / ideal {paper.IDEAL_SEEDLM_CYCLES:,}: {seedlm.cycles / paper.IDEAL_SEEDLM_CYCLES:.4f}")
    return 0 if ok else 1
