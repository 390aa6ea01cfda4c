"""The `project` report: projections for boards x models x formats, the cycle model against the
RTL's stored Verilator measurements, the paper's GEMV, a GEMV-size sweep and roofline points.

`build_report` returns the JSON-ready dict that `seedlm-fpga project` prints and plots;
benchmarks/rtl_cycles.py re-measures the RTL figures it compares against.
"""
from __future__ import annotations

import json
from pathlib import Path

from seedlm_fpga.core import paper as _paper
from seedlm_fpga.sim.cycle_model import CycleModel
from seedlm_fpga.sim.projection import (DEFAULT_CONTEXT, LEFT_OUT, Overheads, default_context, layer_breakdown,
                                        plan_board, project, project_format)

RTL_CYCLES = Path(__file__).resolve().parent / "rtl_cycles.json"
REGENERATE = "python benchmarks/rtl_cycles.py"
#: format §8: the paper's GEMV at 64 bytes per cycle (figures: core.paper).
PAPER = {"rows": _paper.GEMV_ROWS, "cols": _paper.GEMV_COLS, "bus_bits": _paper.BUS_BITS,
         "paper": {"seedlm-4": _paper.SEEDLM_CYCLES, "fp16": _paper.FP16_CYCLES, "speedup": _paper.SPEEDUP}}
SWEEP_N = (256, 512, 1024, 2048, 4096, 8192, 16384)
#: Contexts of the speedup-vs-context plot (each model up to its maximum).
SWEEP_CONTEXT = (0, 1024, 2048, 4096, 8192, 16384, 32768)


# --- model vs RTL ----------------------------------------------------------------------------

def load_rtl_cycles(path: Path = RTL_CYCLES) -> dict:
    """The stored Verilator measurements (see benchmarks/rtl_cycles.py); empty if absent."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {"provenance": {"command": REGENERATE, "note": "not measured yet"}, "measurements": []}


def model_vs_rtl(measurements: list[dict]) -> list[dict]:
    """Each measurement beside the cycle model's figure for the same design and shape."""
    out = []
    for m in measurements:
        model = CycleModel(m["engine"], m["bus_bits"], m["act_bits"], m.get("preset") or "seedlm-4")
        eff = 1.0 - m.get("gap", 0.0)
        predicted = model.cycles(m["rows"], m["cols"], eff, act_efficiency=eff)  # the testbench throttles both
        out.append({"format": model.format, "shape": [m["rows"], m["cols"]], "bus_bits": m["bus_bits"],
                    "act_bits": m["act_bits"], "efficiency": eff, "model_cycles": round(predicted, 1),
                    "rtl_cycles": m["rtl_cycles"],
                    "error_pct": round(100 * (predicted - m["rtl_cycles"]) / m["rtl_cycles"], 3)})
    return out


def paper_comparison(checks: list[dict]) -> dict:
    r, c, w = PAPER["rows"], PAPER["cols"], PAPER["bus_bits"]
    model = {f: CycleModel("baseline" if f == "fp16" else "seedlm", w, 8).cycles(r, c) for f in ("seedlm-4", "fp16")}
    model["speedup"] = model["fp16"] / model["seedlm-4"]
    rtl = {ch["format"]: ch["rtl_cycles"] for ch in checks
           if ch["shape"] == [r, c] and ch["bus_bits"] == w and ch["efficiency"] == 1.0 and ch["act_bits"] == 8}
    if "seedlm-4" in rtl and "fp16" in rtl:
        rtl["speedup"] = rtl["fp16"] / rtl["seedlm-4"]
    ideal = {"seedlm-4": _paper.IDEAL_SEEDLM_CYCLES, "fp16": _paper.IDEAL_FP16_CYCLES,
             "speedup": _paper.IDEAL_FP16_CYCLES / _paper.IDEAL_SEEDLM_CYCLES}
    return {**PAPER, "model": model, "rtl": rtl or None, "ideal": ideal}


def gemv_sweep(bus_bits: int = 512) -> dict:
    base = CycleModel("baseline", bus_bits)
    out = {"bus_bits": bus_bits, "n": list(SWEEP_N)}
    for p in ("seedlm-4", "seedlm-3"):
        seed = CycleModel("seedlm", bus_bits, 8, p)
        out[p] = [base.cycles(n, n) / seed.cycles(n, n) for n in SWEEP_N]
    return out


# --- the report ------------------------------------------------------------------------------

def _roofline(plan, model, entries) -> dict:
    engines = {}
    for e in entries:
        if not e["gemvs"]:
            continue
        for r in layer_breakdown(e, model.layers):
            fmt = r["format"]
            if r["kind"] == "lm_head" and e["format"] != "fp16":
                continue
            ep = plan.engines[fmt]
            eng = engines.setdefault(fmt, {"bound": ep.bound, "peak_gmacs": ep.peak_gmacs,
                                           "stream_gbps": ep.stream_gbps, "points": []})
            eng["points"].append({"kind": r["kind"], "macs_per_byte": r["macs"] / r["bytes"], "gmacs": r["gmacs"]})
    mem = next(iter(plan.engines.values()))
    return {"board": plan.board, "model": model.name, "memory_gbps": mem.memory_gbps, "engines": engines}


#: A model that needs more boards than this in every format (or cannot be placed at all) is
#: named in one line rather than tabled and plotted on that board.
MAX_BOARDS_SHOWN = 16


def worth_showing(entries: list[dict]) -> bool:
    """Whether one board's entries for a model (all formats) are tabled and plotted."""
    return any(e["boards_needed"] is not None and e["boards_needed"] <= MAX_BOARDS_SHOWN for e in entries)


def context_sweep(plan, model, fmt: str, kv_bits: int, batch: int, overheads) -> dict:
    """Speedup of `fmt` over fp16 at the contexts of SWEEP_CONTEXT up to the model's maximum."""
    top = model.max_context or SWEEP_CONTEXT[-1]
    ctx = [c for c in SWEEP_CONTEXT if c <= top] + ([top] if top < SWEEP_CONTEXT[-1] and top not in SWEEP_CONTEXT
                                                     else [])
    out = {"board": plan.board, "model": model.name, "format": fmt, "context": [], "speedup": []}
    for c in ctx:
        kw = dict(context=c, kv_bits=kv_bits, batch=batch, overheads=overheads)
        a, b = project_format(plan, model, fmt, **kw), project_format(plan, model, "fp16", **kw)
        if a["token_seconds"] is None or b["token_seconds"] is None:
            break
        out["context"].append(c)
        out["speedup"].append(b["token_seconds"] / a["token_seconds"])
    return out


# --- measured runs (`seedlm-fpga run --json`) ---------------------------------------------------

#: The keys of a `run --json` report that a measured data point needs.
RUN_KEYS = ("model", "engine", "preset", "tokens", "cycles", "baseline_cycles", "model_cycles", "bit_exact",
            "cycles_source", "board", "board_name", "bus_bits", "clock_mhz")


def measured_run(path: str | Path) -> dict:
    """A `seedlm-fpga run --json` report as a data point: kernel cycles per token, the cycle model's
    figure for the same GEMVs, the 16-bit kernel's, and what that is per second at the run's clock."""
    from seedlm_fpga.core.files import load_json_file
    from seedlm_fpga.core.numeric import check_number
    from seedlm_fpga.errors import UserError

    r = load_json_file(path, "run report")
    missing = [k for k in RUN_KEYS if not isinstance(r, dict) or k not in r]
    if missing:
        raise UserError(f"{path}: not a `seedlm-fpga run --json` report (lacks {', '.join(missing)})")
    n = len(r["tokens"]) if isinstance(r["tokens"], list) else -1
    series = {k: r[k] for k in ("cycles", "baseline_cycles", "model_cycles")}
    if n < 1 or any(not isinstance(v, list) or len(v) != n for v in series.values()):
        raise UserError(f"{path}: needs at least one token and one cycles, baseline_cycles and model_cycles "
                        f"entry per token")
    for k, values in series.items():
        for v in values:
            check_number(f"{path}: {k}", v, 1, integer=True)
    clock = check_number(f"{path}: clock_mhz", r["clock_mhz"], 0, lo_open=True)
    seed, base, model = (sum(v) / n for v in series.values())
    return {"file": str(path), "model": r["model"], "engine": r["engine"], "cycles_source": r["cycles_source"],
            "bit_exact": r["bit_exact"], "preset": r["preset"], "board": r["board"], "board_name": r["board_name"],
            "bus_bits": r["bus_bits"], "clock_mhz": clock, "tokens": n,
            "cycles_per_token": seed, "baseline_cycles_per_token": base, "model_cycles_per_token": model,
            "model_error_pct": 100 * (model - seed) / seed, "speedup": base / seed,
            "kernel_us_per_token": seed / clock, "baseline_kernel_us_per_token": base / clock}


def build_report(boards: list[str], models, formats, act_bits: int = 8, context: int | None = None,
                 kv_bits: int = 16, batch: int = 1, overheads: Overheads = Overheads(),
                 measured: tuple[dict, ...] = ()) -> dict:
    from seedlm_fpga.sim.validation import validation_table

    rtl = load_rtl_cycles()
    checks = model_vs_rtl(rtl.get("measurements", []))
    entries, plans, roof, sweeps = [], [], [], []
    biggest = max(models, key=lambda m: m.params)
    fmts = [f for f in formats if f != "checkpoint"] + _checkpoint_presets(models)
    for name in boards:
        plan = plan_board(name, fmts, act_bits)
        band = None
        if plan.efficiency_band and plan.efficiency_band[0] != plan.efficiency_band[1]:
            band = tuple(plan_board(name, fmts, act_bits, efficiency=e) for e in plan.efficiency_band)
        plans.append({"board": plan.board, "name": plan.name, "memory": plan.memory, "memory_gb": plan.memory_gb,
                      "clock_source": plan.clock_source, "efficiency": plan.efficiency,
                      "efficiency_band": plan.efficiency_band, "efficiency_source": plan.efficiency_source,
                      "link_gbps": plan.link_gbps, "link_source": plan.link_source,
                      "engines": {f: {"bus_bits": p.bus_bits, "instances": p.instances, "channels": p.channels,
                                      "clock_mhz": p.clock_mhz, "channel_gbps": p.channel_gbps,
                                      "bound": p.bound if not p.too_small else "does not fit",
                                      "too_small": p.too_small, "note": p.note}
                                  for f, p in plan.engines.items()}})
        for model in models:
            ctx = default_context(model) if context is None else context
            es = project(plan, model, formats, ctx, kv_bits, batch, overheads, band)
            shown = worth_showing(es)
            main_fmt = next((f for f in formats if f not in ("fp16", "checkpoint")), None)
            if shown and main_fmt and not any(e["token_seconds"] is None for e in es):
                sweeps.append(context_sweep(plan, model, main_fmt, kv_bits, batch, overheads))
            for e in es:  # the checks of the engines this entry runs on (SeedLM layers, fp16 lm_head)
                used = {g["format"] for g in e["gemvs"]} or {e["format"]}
                e["model_vs_rtl"] = [c for c in checks if c["format"] in used]
                e["shown"] = shown
            entries += es
            if model is biggest:
                roof.append(_roofline(plan, model, es))
    return {
        "tool": "seedlm-fpga project",
        "formats": list(formats),
        "left_out": list(LEFT_OUT),
        "context": context if context is not None else f"{DEFAULT_CONTEXT}, or the model's maximum if shorter",
        "kv_bits": kv_bits, "batch": batch,
        "overheads": {"launch_us": overheads.launch_us, "memory_latency_ns": overheads.memory_latency_ns,
                      "source": overheads.source},
        "assumptions": [
            f"context {DEFAULT_CONTEXT} tokens unless --context (the model's maximum if shorter); KV cache fp16 "
            "unless --kv-bits; K and V of every past position read once per token",
            "attention overlaps its KV reads (usable memory bandwidth) with its MACs on the fp16 engines' "
            "multipliers; the longer sets its time",
            "clock = min(board target, engine Fmax estimate); memory efficiency from the board file, "
            "with its low/high band and source",
            "per-GEMV launch overhead and memory latency: 0 unless given (no kernel measurement yet)",
            "a model bigger than the weight memory: whole layers split greedily over boards of the same kind; "
            "each boundary hands hidden x 2 bytes per sequence over the board's link",
            "batch B: weights decode once per step, each beat used B times on the engine's multipliers",
            "one engine instance per weight-memory channel; rows split evenly, the busiest instance sets the time",
            "SeedLM engines sized by boards.sizing (resources may fit fewer than one per channel)",
            "fp16 baseline (format §7) on the bandwidth-sized bus on every channel (W/16 multipliers, no decoders)",
            "lm_head at 16 bits on the baseline engine; embedding table and norms stored at 16 bits",
            "memory stalls: a weight beat arrives with probability e = usable channel GB/s / engine GB/s",
        ],
        "boards": plans,
        "models": [{"name": m.name, "source": m.source, "params": m.params, "layers": m.layers,
                    "config": m.config} for m in models],
        "entries": entries,
        "model_vs_rtl": checks,
        "rtl_provenance": rtl.get("provenance", {}),
        "paper": paper_comparison(checks),
        "gemv_sweep": gemv_sweep(),
        "roofline": roof,
        "context_sweep": sweeps,
        "validation": validation_table(),
        "measured": list(measured),
    }


def _checkpoint_presets(models) -> list[str]:
    return sorted({g.preset for m in models for g in m.gemvs} - {None, "fp16"})
