"""PNG plots of a projection report (matplotlib's Agg canvas; pyplot is not imported: it is slow).

- ``speedup_vs_model_size.png``: speedup over 16 bits per board and format against model
  size, beside square GEMVs on the paper's 64-bytes-per-cycle engine: the speedup
  approaches 16/4 = 4x (16/3 at 3 bits) as fixed costs amortize.
- ``speedup_vs_context.png``: per board, each model's speedup against the context (KV-cache
  reads and attention are the same in both formats, so the speedup falls as they grow).
- ``roofline.png``: per board, each layer GEMV's attained MAC rate against its MACs per
  byte, under the memory roof and each format's compute roof (engines x MACs per clock).
- ``model_vs_rtl.png``: the cycle model's error against Verilator cycle counts.
"""
from __future__ import annotations

import os
from pathlib import Path

from seedlm_fpga.core.files import atomic_write

FORMAT_STYLE = {"fp16": ("tab:gray", "o", ":"), "seedlm-4": ("tab:blue", "s", "-"),
                "seedlm-3": ("tab:orange", "^", "--")}
COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive")


def _figure(width: float, height: float):
    # no constrained layout: it measures every tick label several times (most of the time taken)
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), dpi=90)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.13, top=0.9, wspace=0.25, hspace=0.4)
    return fig


def _log_axes(ax, x=True, y=False) -> None:
    """Log scale without minor ticks (building them dominates the drawing time)."""
    from matplotlib.ticker import NullLocator
    if x:
        ax.set_xscale("log")
        ax.xaxis.set_minor_locator(NullLocator())
    if y:
        ax.set_yscale("log")
        ax.yaxis.set_minor_locator(NullLocator())


def _save(fig, path: Path) -> None:
    """Written atomically (core.files): never a half-written PNG."""
    with atomic_write(path) as f:
        fig.savefig(f, format="png")


LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)))
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
MODEL_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink",
                "tab:olive", "tab:cyan", "black", "gold", "navy")


def family_of(name: str) -> str:
    """Model family for line styles: 'Llama 2 7B' -> 'Llama 2', 'stories15M' -> 'llama2.c stories'."""
    if name.startswith("stories"):
        return "llama2.c stories"
    head, _, tail = name.rpartition(" ")
    return head if head and tail[:1].isdigit() else name


def _count(n: float) -> str:
    for scale, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.3g}"


def _count_ticks(ax, lo: float, hi: float) -> None:
    """Parameter-count ticks (15M, 1B, 70B) on a log x axis from lo to hi."""
    ticks = [m * 10 ** e for e in range(3, 13) for m in (1, 3)]
    ticks = [t for t in ticks if lo <= t <= hi] or [lo, hi]
    ax.set_xticks(ticks, [_count(t) for t in ticks])


def _grid(n: int, width: float, height: float):
    cols = min(n, 2)
    rows = -(-n // cols)
    fig = _figure(width * cols, height * rows)
    return fig, fig.subplots(rows, cols, squeeze=False).ravel()


def plot_speedup(report: dict, path: Path) -> None:
    """One panel for the GEMV sweep, one per board: speedup against model size, colour = format,
    line style = model family."""
    from matplotlib.lines import Line2D
    boards = list(dict.fromkeys(e["board"] for e in report["entries"]))
    fig, axes = _grid(len(boards) + 1, 5.2, 3.7)
    fig.subplots_adjust(bottom=0.2 if len(axes) <= 2 else 0.12, top=0.92, hspace=0.55, left=0.07)
    ax_gemv = axes[0]
    sweep = report["gemv_sweep"]
    for fmt in ("seedlm-4", "seedlm-3"):
        color, marker, line = FORMAT_STYLE[fmt]
        ax_gemv.plot(sweep["n"], sweep[fmt], line, marker=marker, color=color, label=f"{fmt} (cycle model)")
    paper = report["paper"]
    ax_gemv.plot([paper["rows"]], [paper["paper"]["speedup"]], "k*", ms=12, label="paper (format §8)")
    _ref_lines(ax_gemv, sweep["n"][0])
    _log_axes(ax_gemv)
    ax_gemv.set(xlabel="square GEMV n x n", ylabel="speedup over 16 bits", ylim=(0, 6),
                title=f"one engine, {sweep['bus_bits'] // 8} bytes/cycle, no context")
    ax_gemv.set_xticks(sweep["n"], [str(n) for n in sweep["n"]])
    ax_gemv.legend(fontsize=7, loc="lower right")

    params = {m["name"]: m["params"] for m in report["models"]}
    families = list(dict.fromkeys(family_of(m) for m in params))
    style = {f: LINESTYLES[i % len(LINESTYLES)] for i, f in enumerate(families)}
    fmts = [f for f in report["formats"] if f != "fp16"]
    ctx = report["context"]
    for ax, board in zip(axes[1:], boards):
        name = next((b["name"] for b in report["boards"] if b["board"] == board), board)
        for fmt in fmts:
            color, marker, _ = FORMAT_STYLE.get(fmt, ("k", "D", "-"))
            for fam in families:
                pts = sorted((params[e["model"]], e["speedup_vs_fp16"]) for e in report["entries"]
                             if e["board"] == board and e["format"] == fmt and e["speedup_vs_fp16"]
                             and e["shown"] and family_of(e["model"]) == fam)
                if pts:
                    ax.plot(*zip(*pts), ls=style[fam], marker=marker, color=color, ms=4)
        _ref_lines(ax, min(params.values()))
        _log_axes(ax)
        lo, hi = min(params.values()) / 1.5, max(params.values()) * 1.5
        ax.set_xlim(lo, hi)
        _count_ticks(ax, lo, hi)
        ax.set(xlabel="model parameters", ylabel="tokens/s speedup over 16 bits", ylim=(0, 6),
               title=f"{name}, context {ctx}")
        ax.title.set_fontsize(9)
    for ax in axes[len(boards) + 1:]:
        ax.set_visible(False)
    handles = [Line2D([], [], color=FORMAT_STYLE.get(f, ("k",))[0], marker=FORMAT_STYLE.get(f, ("k", "D"))[1],
                      label=f) for f in fmts]
    handles += [Line2D([], [], color="gray", ls=style[f], label=f) for f in families]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 8), fontsize=8, frameon=False,
               title="colour: format; line style: model family", title_fontsize=8)
    _save(fig, path)


def _ref_lines(ax, x0) -> None:
    """The byte-ratio bounds 16/4 and 16/3, labelled."""
    for bound, text in ((4.0, "16/4 = 4x"), (16 / 3, "16/3 = 5.33x")):
        ax.axhline(bound, color="k", lw=0.6, ls=":")
        ax.annotate(text, (x0, bound), xytext=(2, 2), textcoords="offset points", fontsize=7)


def plot_context(report: dict, path: Path) -> None:
    """Speedup over 16 bits against context, one panel per board, one line per model."""
    from matplotlib.lines import Line2D
    sweeps = report["context_sweep"]
    boards = list(dict.fromkeys(s["board"] for s in sweeps)) or ["none"]
    models = list(dict.fromkeys(s["model"] for s in sweeps))
    families = list(dict.fromkeys(family_of(m) for m in models))
    style = {f: LINESTYLES[i % len(LINESTYLES)] for i, f in enumerate(families)}
    color = {m: MODEL_COLORS[i % len(MODEL_COLORS)] for i, m in enumerate(models)}
    marker = {m: MARKERS[i % len(MARKERS)] for i, m in enumerate(models)}
    fig, axes = _grid(len(boards), 5.0, 3.6)
    fig.subplots_adjust(right=0.8, top=0.9, hspace=0.5, left=0.08)
    fmt = sweeps[0]["format"] if sweeps else "seedlm-4"
    kv = report["kv_bits"]
    for ax, board in zip(axes, boards):
        name = next((b["name"] for b in report["boards"] if b["board"] == board), board)
        for s in (x for x in sweeps if x["board"] == board):
            ax.plot([c / 1024 for c in s["context"]], s["speedup"], ls=style[family_of(s["model"])],
                    marker=marker[s["model"]], ms=3, color=color[s["model"]])
        ax.axhline(4.0, color="k", lw=0.6, ls=":")
        ax.annotate("16/4 = 4x", (0, 4.0), xytext=(2, 2), textcoords="offset points", fontsize=7)
        ax.axhline(1.0, color="k", lw=0.6, ls=":")
        ax.annotate("no gain", (0, 1.0), xytext=(2, 2), textcoords="offset points", fontsize=7)
        ax.set_xticks([0, 4, 8, 16, 24, 32], ["0", "4k", "8k", "16k", "24k", "32k"])
        ax.set(xlim=(0, 33), ylim=(0, 4.5), xlabel="context (tokens in the KV cache)",
               ylabel=f"{fmt} speedup over 16 bits", title=f"{name}, KV cache {kv}-bit")
        ax.title.set_fontsize(9)
    for ax in axes[len(boards):]:
        ax.set_visible(False)
    handles = [Line2D([], [], color=color[m], ls=style[family_of(m)], marker=marker[m], ms=4, label=m)
               for m in models]
    fig.legend(handles=handles, loc="center right", fontsize=8, frameon=False,
               title="each line ends at the\nmodel's maximum context", title_fontsize=7)
    _save(fig, path)


def plot_roofline(report: dict, path: Path) -> None:
    rl = report["roofline"]
    fig, axes = _grid(len(rl), 4.8, 3.8)
    fig.subplots_adjust(hspace=0.45, top=0.92)
    xs = [0.125, 16.0]
    for ax, board in zip(axes, rl):
        mem = board["memory_gbps"]
        ax.plot(xs, [mem * x for x in xs], "k-", lw=1, label=f"memory roof {mem:.3g} GB/s")
        for fmt, eng in board["engines"].items():
            color, marker, _ = FORMAT_STYLE.get(fmt, ("k", "o", "-"))
            ax.axhline(eng["peak_gmacs"], color=color, lw=0.8, ls="--",
                       label=f"{fmt} compute roof {eng['peak_gmacs']:.3g} GMAC/s")
            if eng["stream_gbps"] < 0.95 * mem:  # fewer engines than channels
                ax.plot(xs, [eng["stream_gbps"] * x for x in xs], color=color, lw=0.8, ls=":",
                        label=f"{fmt} engines stream {eng['stream_gbps']:.3g} GB/s")
            pts = eng["points"]
            if pts:
                ax.scatter([p["macs_per_byte"] for p in pts], [p["gmacs"] for p in pts], color=color,
                           marker=marker, s=22, zorder=3, label=f"{fmt} layer GEMVs ({eng['bound']}-bound)")
        _log_axes(ax, True, True)
        ticks = [0.125, 0.25, 0.5, 1, 2, 4, 8, 16]
        ax.set_xticks(ticks, ["1/8", "1/4", "1/2", "1", "2", "4", "8", "16"])
        ax.set_xlim(xs)
        ax.set(xlabel="MACs per weight byte (16 bits: 0.5, 4 bits: 2)", ylabel="GMAC/s",
               title=f"{board['board']}: {board['model']} layer GEMVs")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=6, loc="upper left")
    for ax in axes[len(rl):]:
        ax.set_visible(False)
    _save(fig, path)


def plot_model_vs_rtl(report: dict, path: Path) -> None:
    checks = report["model_vs_rtl"]
    fig = _figure(7, 3.6)
    fig.subplots_adjust(left=0.13, bottom=0.15)
    ax = fig.subplots()
    if not checks:
        ax.text(0.5, 0.5, "no RTL measurements (sim/rtl_cycles.json)", ha="center", transform=ax.transAxes)
    buses = sorted({c["bus_bits"] for c in checks})
    for i, bus in enumerate(buses):
        for throttled, marker in ((False, "o"), (True, "x")):
            pts = [(c["rtl_cycles"], c["error_pct"]) for c in checks
                   if c["bus_bits"] == bus and (c["efficiency"] < 1) == throttled]
            if pts:
                ax.scatter(*zip(*pts), color=COLORS[i % len(COLORS)], marker=marker,
                           label=f"W={bus}" + (" throttled" if throttled else ""))
    ax.axhline(0, color="k", lw=0.6)
    for lim in (-1, 1):
        ax.axhline(lim, color="r", lw=0.6, ls=":")
    ax.annotate("±1%", (1, 1), xycoords=("axes fraction", "data"), xytext=(-22, 2), textcoords="offset points",
                fontsize=7, color="r")
    _log_axes(ax)
    ax.set(xlabel="Verilator cycles per GEMV", ylabel="cycle model error (%)",
           title="cycle model vs RTL (exact without stalls, mean of the throttle with)")
    ax.title.set_fontsize(9)
    if checks:
        ax.legend(fontsize=7)
    _save(fig, path)


PLOTS = {"speedup_vs_model_size.png": plot_speedup, "speedup_vs_context.png": plot_context,
         "roofline.png": plot_roofline,
         "model_vs_rtl.png": plot_model_vs_rtl}


def write_plots(report: dict, folder: Path, parallel: bool = True):
    """Start writing every plot into `folder`; returns `finish()`, which waits and returns the paths.

    matplotlib draws on one core, so with `parallel` (and os.fork) each plot is drawn in
    a child process forked after matplotlib is imported: `seedlm-fpga project` prints its
    table meanwhile and stays under 2 s. A plot that fails raises in `finish()`.
    """
    from matplotlib import figure, font_manager  # noqa: F401  (import once, before forking)
    from matplotlib.backends import backend_agg  # noqa: F401

    # load the default font once too: each child would otherwise parse it again
    font_manager.get_font(font_manager.findfont(font_manager.FontProperties()))

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / name for name in PLOTS]
    if not (parallel and hasattr(os, "fork")):
        for path, fn in zip(paths, PLOTS.values()):
            fn(report, path)
        return lambda: paths
    children = {}
    for path, fn in zip(paths, PLOTS.values()):
        pid = os.fork()
        if pid == 0:  # child: draw one plot, never return into the caller
            code = 1
            try:
                fn(report, path)
                code = 0
            except BaseException:
                import traceback
                traceback.print_exc()
            finally:
                os._exit(code)
        children[pid] = path.name

    def finish() -> list[Path]:
        failed = [name for pid, name in children.items() if os.waitpid(pid, 0)[1] != 0]
        if failed:
            raise RuntimeError(f"drawing {', '.join(failed)} failed")
        return paths

    return finish
