"""Project decode speed of Llama-style models on FPGA boards: 16 bits vs SeedLM 4 and 3 bits.

With no arguments: the built-in models (llama2.c stories, TinyLlama, Llama 3.2 1B/3B and
format §9's five Llama 2/3 models) on four shipped boards (an HBM card, a DDR4 card, an
embedded SoC and a small ECP5 board) at a 4096-token context (the model's maximum if
shorter), a table on stdout, and projection.json plus four PNG plots in ./seedlm-report/.

Times come from the cycle model of the generated RTL (sim/cycle_model.py: exact against
Verilator without stalls), the boards' memories and the engine sizing of
seedlm_fpga.flows.sizing. A token counts the seven GEMVs of every layer, the lm_head
(kept at 16 bits) and attention over the KV cache; norms, RoPE and sampling are left out.
`--context 0` gives the weight-only figures. docs/projections.md lists every assumption.
"""
from __future__ import annotations

from pathlib import Path

from seedlm_fpga.core.files import check_not_input, write_text_atomic
from seedlm_fpga.core.numeric import check_number
from seedlm_fpga.core.report import dumps, report_dict
from seedlm_fpga.errors import UserError
from seedlm_fpga.sim.llama_shapes import BUILTIN_MODELS, builtin_model, model_from_checkpoint, model_from_config
from seedlm_fpga.sim.projection import DEFAULT_CONTEXT, FORMATS, NO_KERNEL, Overheads
from seedlm_fpga.sim.projection_report import MAX_BOARDS_SHOWN, REGENERATE, build_report

DEFAULT_BOARDS = ("alveo-u280", "vcu118", "kria-kv260", "ulx3s-85f")
#: Largest --context / --batch (a 16M-token context is already far past any model's).
MAX_COUNT = 1 << 24
#: Largest per-GEMV overhead flags: one second, in their units.
MAX_LAUNCH_US, MAX_LATENCY_NS = 1e6, 1e9


def add_arguments(parser) -> None:
    parser.add_argument("--board", action="append", metavar="B",
                        help=f"board id, name or .yaml file; repeat for several; 'all' = every shipped "
                             f"board (default: {', '.join(DEFAULT_BOARDS)})")
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--model", action="append", metavar="M",
                     help=f"built-in model; repeat for several (default: all of {', '.join(BUILTIN_MODELS)})")
    src.add_argument("--config", metavar="JSON", help="a Hugging Face config.json (Llama-style, GQA)")
    src.add_argument("--checkpoint", metavar="X.seedlm", help="a .seedlm file: its shapes and per-tensor presets")
    parser.add_argument("-o", "--output", default="seedlm-report", metavar="DIR",
                        help="folder for projection.json and the plots (default: ./seedlm-report)")
    parser.add_argument("--json", action="store_true", help="print the JSON report instead of the table")
    parser.add_argument("--act-bits", type=int, choices=(8, 16), default=8, help="activation bits (default 8)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--context", type=_nonneg, metavar="N",
                        help=f"tokens already in the KV cache (default: {DEFAULT_CONTEXT}, or the model's "
                             f"maximum if shorter; 0 = weights only)")
    parser.add_argument("--kv-bits", type=int, choices=(16, 8, 4), default=16, help="KV-cache bits (default 16)")
    parser.add_argument("--batch", type=_positive, default=1, metavar="B",
                        help="sequences decoded together (small batches, speculative decoding; default 1)")
    parser.add_argument("--launch-us", type=float, default=0.0, metavar="US",
                        help="per-GEMV launch/control overhead, microseconds (default 0: no kernel measurement yet)")
    parser.add_argument("--measured", action="append", default=[], metavar="RUN.json",
                        help="a `seedlm-fpga run --json` report, shown as a measured data point beside the "
                             "modelled rows (repeatable)")
    parser.add_argument("--memory-latency-ns", type=float, default=0.0, metavar="NS",
                        help="per-GEMV memory latency to the first beat, ns (default 0: no kernel measurement yet)")


def _nonneg(text: str) -> int:
    import argparse
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= n <= MAX_COUNT:
        raise argparse.ArgumentTypeError(f"must lie in 0..{MAX_COUNT:,}, got {n}")
    return n


def _positive(text: str) -> int:
    import argparse
    n = _nonneg(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {n}")
    return n


def _models(args):
    if args.config:
        return [model_from_config(args.config)], FORMATS
    if args.checkpoint:
        from seedlm_fpga.compressor.container import check_container

        check_container(args.checkpoint)  # the whole format, block values included, not just the header
        m = model_from_checkpoint(args.checkpoint)
        presets = sorted({g.preset for g in m.gemvs} - {"fp16", None})
        return [m], ("fp16", "checkpoint") if len(presets) > 1 else ("fp16", *presets)
    return [builtin_model(k) for k in (args.model or BUILTIN_MODELS)], FORMATS


def _boards(args) -> list[str]:
    from seedlm_fpga.boards.board import shipped_ids
    names = args.board or list(DEFAULT_BOARDS)
    return shipped_ids() if names == ["all"] else names



# --- text --------------------------------------------------------------------------------------

def _num(x, fmt="{:.3g}") -> str:
    return "-" if x is None else fmt.format(x)


def _rate(x) -> str:
    """Tokens/s: three significant digits, no exponent (1,090 rather than 1.09e+03)."""
    if x is None:
        return "-"
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}" if x >= 0.001 else f"{x:.1e}"


def _size(n: int) -> str:
    return f"{n / 1e9:.1f}B" if n >= 1e9 else f"{n / 1e6:.0f}M" if n >= 1e6 else f"{n / 1e3:.0f}K"


def format_table(report: dict) -> str:
    lines = []
    fmts = [f for f in report["formats"] if f != "fp16"]
    for board in report["boards"]:
        engines = "; ".join(
            f"{f}: {e['too_small'] and 'does not fit' or str(e['instances']) + ' of ' + str(e['channels'])}"
            f" x {e['bus_bits']}-bit" for f, e in board["engines"].items())
        lines.append(f"{board['name']} - {board['memory']} {board['memory_gb']:g} GB; engines {engines}")
        if board["efficiency"] is not None:
            lo, hi = board["efficiency_band"]
            band = f" (band {lo:g}-{hi:g})" if lo != hi else ""
            lines.append(f"  clock: {board['clock_source']}; memory efficiency {board['efficiency']:g}{band}: "
                         f"{board['efficiency_source']}")
        head = f"  {'model':<15}{'params':>7}{'context':>8}{'fp16 tok/s':>11}"
        for f in fmts:
            head += f"{f + ' tok/s':>16}{'speedup':>9}"
        boards_head = f"boards ({'/'.join(['16'] + [f.split('-')[-1] for f in fmts])})"
        head += f"  {boards_head:<14}  bound ({'/'.join(fmts)})"
        lines.append(head)
        rows = [e for e in report["entries"] if e["board"] == board["board"]]
        models = list(dict.fromkeys(e["model"] for e in rows))
        params = {m["name"]: m["params"] for m in report["models"]}
        hidden = []
        for model in models:
            by = {e["format"]: e for e in rows if e["model"] == model}
            need = [by[f]["boards_needed"] for f in ["fp16"] + fmts]
            if not by["fp16"]["shown"]:
                hidden.append(model)
                continue
            line = f"  {model:<15}{_size(params[model]):>7}{by['fp16']['context']:>8}{_rate(by['fp16']['tokens_per_s']):>11}"
            for f in fmts:
                line += f"{_rate(by[f]['tokens_per_s']):>16}{_num(by[f]['speedup_vs_fp16'], '{:.2f}x'):>9}"
            fits = "/".join("-" if n is None else str(n) for n in need)
            bound = "/".join(by[f]["bound"] for f in fmts)
            line += f"  {fits:<14}  {bound}"
            lines.append(line)
        if hidden:
            lines.append(f"  not shown (in every format more than {MAX_BOARDS_SHOWN} boards of {board['memory_gb']:g} GB, "
                         f"or one layer or the lm_head alone does not fit): {', '.join(hidden)}")
        shown = [m for m in models if m not in hidden]
        last = shown[-1] if shown else models[-1]
        for f in report["formats"]:
            e = next(x for x in rows if x["model"] == last and x["format"] == f)
            lines.append(f"  {last} {f} {_num(e['speedup_vs_fp16'], '{:.2f}x')}: " + "; ".join(e["reasons"]))
        lines.append("")
    p = report["paper"]
    rtl = p["rtl"] or {}
    lines.append(f"Paper's GEMV {p['rows']} x {p['cols']} at {p['bus_bits'] // 8} bytes/cycle (format §8):")
    lines.append(f"  {'':<8}{'seedlm-4':>10}{'fp16':>10}{'speedup':>9}")
    for label, d in (("paper", p["paper"]), ("model", p["model"]), ("RTL", rtl), ("ideal", p["ideal"])):
        lines.append(f"  {label:<8}{_num(d.get('seedlm-4'), '{:,.0f}'):>10}{_num(d.get('fp16'), '{:,.0f}'):>10}"
                     f"{_num(d.get('speedup'), '{:.3f}x'):>9}")
    checks = report["model_vs_rtl"]
    if checks:
        exact = [c for c in checks if c["efficiency"] == 1.0]
        thr = [c for c in checks if c["efficiency"] < 1.0]
        worst = max((abs(c["error_pct"]) for c in thr), default=0.0)
        lines.append(f"Cycle model vs Verilator: {sum(c['error_pct'] == 0 for c in exact)} of {len(exact)} "
                     f"unthrottled shapes exact; throttled: worst {worst:.2f}% over {len(thr)}")
    else:
        lines.append(f"Cycle model vs Verilator: no stored measurements (run {REGENERATE})")
    lines.append("Published decoders through the byte model (predicted vs measured tokens/s):")
    for v in report["validation"]:
        lines.append(f"  {v['system']:<12}{v['board']:<12}{v['model']:<12}{v['predicted_tokens_per_s']:>7.2f} vs "
                     f"{v['measured_tokens_per_s']:<5g}({v['error_pct']:+.0f}%)  [{v['source']}]")
    o = report["overheads"]
    lines.append(f"Context: {report['context']}; KV cache {report['kv_bits']}-bit; batch {report['batch']}; per-GEMV "
                 f"overheads {o['launch_us']:g} us + {o['memory_latency_ns']:g} ns ({o['source']})")
    lines.append("Left out of tokens/s (format-independent): " + ", ".join(report["left_out"]))
    for m in report.get("measured", []):
        lines += _measured_lines(m)
    return "\n".join(lines)


def _measured_lines(m: dict) -> list[str]:
    """A `run` report beside the projections: what one kernel did per token on a real model's GEMVs."""
    how = {True: "every Y bit-exact", None: "no hardware ran: the cycle model's figures"}.get(m["bit_exact"],
                                                                                            "NOT bit-exact")
    return [f"Measured: seedlm-fpga run {m['model']} ({m['file']}): {m['tokens']} tokens, engine {m['engine']} "
            f"({how}), one {m['bus_bits']}-bit kernel on the {m['board_name']} at {m['clock_mhz']:g} MHz",
            f"  per token: {m['preset']} {m['cycles_per_token']:,.0f} cycles ({m['cycles_source']}; cycle model "
            f"{m['model_cycles_per_token']:,.0f}, {m['model_error_pct']:+.2f}%), fp16 {m['baseline_cycles_per_token']:,.0f}: "
            f"{m['speedup']:.2f}x; kernel time {m['kernel_us_per_token']:.2f} us vs {m['baseline_kernel_us_per_token']:.2f} us "
            f"(compressed layers' GEMVs only, no memory stalls)"]


def run(args) -> int:
    check_number("--launch-us", args.launch_us, 0, MAX_LAUNCH_US)
    check_number("--memory-latency-ns", args.memory_latency_ns, 0, MAX_LATENCY_NS)
    models, formats = _models(args)
    measured = args.launch_us or args.memory_latency_ns
    overheads = Overheads(args.launch_us, args.memory_latency_ns, "given on the command line" if measured else NO_KERNEL)
    from seedlm_fpga.sim.projection_report import measured_run
    runs = tuple(measured_run(p) for p in args.measured)
    report = build_report(_boards(args), models, formats, args.act_bits, args.context, args.kv_bits, args.batch,
                          overheads, runs)
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise UserError(f"output {out} exists and is not a folder")
    inputs = [*(args.board or ()), args.config, args.checkpoint, *args.measured]
    check_not_input(out / "projection.json", inputs)
    text = dumps(report_dict(report, inputs=inputs))
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / "projection.json", text)
        finish = lambda: []  # noqa: E731
        if not args.no_plots:
            from seedlm_fpga.sim.plots import write_plots
            finish = write_plots(report, out)  # drawn in the background while the table prints
        print(text if args.json else format_table(report), end="" if args.json else "\n", flush=True)
        written = [out / "projection.json"] + finish()
    except OSError as exc:
        raise UserError(f"cannot write to {out}: {exc.strerror or exc}") from None
    if not args.json:
        print("wrote " + ", ".join(str(p) for p in written))
    return 0
