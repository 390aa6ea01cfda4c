"""Project decode speed of Llama-scale models on FPGA boards: 16 bits vs SeedLM 4 and 3 bits.

With no arguments: format §9's five Llama models on four shipped boards (an HBM card, a
DDR4 card, an embedded SoC and a small ECP5 board), a table on stdout, and
projection.json plus three PNG plots in ./seedlm-report/.

Times come from the cycle model of the generated RTL (sim/cycle_model.py: exact against
Verilator without stalls), the boards' memories and the engine sizing of
seedlm_fpga.flows.sizing. A token counts the seven GEMVs of every layer and the lm_head
(kept at 16 bits); attention over the KV cache, norms, RoPE and sampling are left out.
"""
from __future__ import annotations

from pathlib import Path

from seedlm_fpga.core.files import write_text_atomic
from seedlm_fpga.core.report import dumps, report_dict
from seedlm_fpga.errors import UserError
from seedlm_fpga.sim.llama_shapes import BUILTIN_MODELS, builtin_model, model_from_checkpoint, model_from_config
from seedlm_fpga.sim.projection import FORMATS
from seedlm_fpga.sim.projection_report import REGENERATE, build_report

DEFAULT_BOARDS = ("alveo-u280", "vcu118", "kria-kv260", "ulx3s-85f")


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


def _models(args):
    if args.config:
        return [model_from_config(args.config)], FORMATS
    if args.checkpoint:
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


def format_table(report: dict) -> str:
    lines = []
    fmts = [f for f in report["formats"] if f != "fp16"]
    for board in report["boards"]:
        engines = "; ".join(
            f"{f}: {e['too_small'] and 'does not fit' or str(e['instances']) + ' of ' + str(e['channels'])}"
            f" x {e['bus_bits']}-bit" for f, e in board["engines"].items())
        lines.append(f"{board['name']} - {board['memory']} {board['memory_gb']:g} GB; engines {engines}")
        head = f"  {'model':<13}{'params':>8}{'fp16 tok/s':>12}"
        for f in fmts:
            head += f"{f + ' tok/s':>17}{'speedup':>9}"
        fits_head = f"fits {board['memory_gb']:g} GB ({'/'.join(['16'] + [f.split('-')[-1] for f in fmts])})"
        head += f"  {fits_head}  bound"
        lines.append(head)
        rows = [e for e in report["entries"] if e["board"] == board["board"]]
        models = list(dict.fromkeys(e["model"] for e in rows))
        params = {m["name"]: m["params"] for m in report["models"]}
        for model in models:
            by = {e["format"]: e for e in rows if e["model"] == model}
            n = params[model]
            size = f"{n / 1e9:.1f}B" if n >= 1e9 else f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.0f}K"
            line = f"  {model:<13}{size:>8}{_num(by['fp16']['tokens_per_s']):>12}"
            for f in fmts:
                line += f"{_num(by[f]['tokens_per_s']):>17}{_num(by[f]['speedup_vs_fp16'], '{:.2f}x'):>9}"
            fits = "/".join("yes" if by[f]["fits_memory"] else "no" for f in ["fp16"] + fmts)
            bound = "/".join(by[f]["bound"] for f in fmts)
            line += f"  {fits:<{len(fits_head)}}  {bound}"
            lines.append(line)
        last = models[-1]
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
    lines.append("Left out of tokens/s (format-independent): " + ", ".join(report["left_out"]))
    return "\n".join(lines)


def run(args) -> int:
    models, formats = _models(args)
    report = build_report(_boards(args), models, formats, args.act_bits)
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise UserError(f"output {out} exists and is not a folder")
    text = dumps(report_dict(report, inputs=[*(args.board or ()), args.config, args.checkpoint]))
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
