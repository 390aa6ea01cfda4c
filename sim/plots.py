"""PNG plots of a projection report (matplotlib's Agg canvas; pyplot is not imported: it is slow).

- ``speedup_vs_model_size.png``: speedup over 16 bits per board and format against model
  size, beside square GEMVs on the paper's 64-bytes-per-cycle engine: the speedup
  approaches 16/4 = 4x (16/3 at 3 bits) as fixed costs amortize.
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


def plot_speedup(report: dict, path: Path) -> None:
    fig = _figure(10, 5.0)
    fig.subplots_adjust(bottom=0.3)  # room for the per-board legend under the axes
    ax_gemv, ax_model = fig.subplots(1, 2)
    sweep = report["gemv_sweep"]
    for fmt in ("seedlm-4", "seedlm-3"):
        color, marker, line = FORMAT_STYLE[fmt]
        ax_gemv.plot(sweep["n"], sweep[fmt], line, marker=marker, color=color, label=f"{fmt} (model)")
    paper = report["paper"]
    ax_gemv.plot([paper["rows"]], [paper["paper"]["speedup"]], "k*", ms=12, label="paper (format §8)")
    for bound, text in ((4.0, "16/4"), (16 / 3, "16/3")):
        ax_gemv.axhline(bound, color="k", lw=0.6, ls=":")
        ax_gemv.annotate(text, (sweep["n"][0], bound), xytext=(2, 2), textcoords="offset points", fontsize=8)
    _log_axes(ax_gemv)
    ax_gemv.set(xlabel="GEMV n x n", ylabel="speedup over 16 bits",
                title=f"one engine, {sweep['bus_bits'] // 8} bytes/cycle")
    ax_gemv.set_xticks(sweep["n"], [str(n) for n in sweep["n"]])
    ax_gemv.legend(fontsize=8)

    boards = list(dict.fromkeys(e["board"] for e in report["entries"]))
    params = {m["name"]: m["params"] / 1e9 for m in report["models"]}
    family = {m["name"]: m["name"].rsplit(" ", 1)[0] for m in report["models"]}  # "Llama 2 7B" -> "Llama 2"
    for i, board in enumerate(boards):
        for fmt in [f for f in report["formats"] if f != "fp16"]:
            _, marker, line = FORMAT_STYLE.get(fmt, ("k", "D", "-"))
            label = f"{board} {fmt}"
            for fam in dict.fromkeys(family.values()):  # one line per model family: same vocab
                pts = sorted((params[e["model"]], e["speedup_vs_fp16"]) for e in report["entries"]
                             if e["board"] == board and e["format"] == fmt and e["speedup_vs_fp16"]
                             and family[e["model"]] == fam)
                if pts:
                    ax_model.plot(*zip(*pts), line, marker=marker, color=COLORS[i % len(COLORS)], label=label)
                    label = None
    for bound in (4.0, 16 / 3):
        ax_model.axhline(bound, color="k", lw=0.6, ls=":")
    _log_axes(ax_model)
    ax_model.set_xticks([1, 2, 5, 10, 20, 50, 100], ["1B", "2B", "5B", "10B", "20B", "50B", "100B"])
    ax_model.set_xlim(min(params.values()) / 1.3, max(params.values()) * 1.3)
    ax_model.set(xlabel="model parameters (billions)", ylabel="tokens/s speedup over 16 bits",
                 title="decode, per board")
    if ax_model.get_legend_handles_labels()[0]:
        ax_model.legend(fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    _save(fig, path)


def plot_roofline(report: dict, path: Path) -> None:
    rl = report["roofline"]
    n = len(rl)
    cols = min(n, 2 if n == 4 else 3)
    rows = -(-n // cols)
    fig = _figure(4.2 * cols, 3.6 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, board in zip(axes, rl):
        xs = [0.25, 4.0]
        ax.plot(xs, [board["memory_gbps"] * x for x in xs], "k-", lw=1, label="memory roof")
        for fmt, eng in board["engines"].items():
            color, marker, _ = FORMAT_STYLE.get(fmt, ("k", "o", "-"))
            ax.axhline(eng["peak_gmacs"], color=color, lw=0.8, ls="--")
            if eng["stream_gbps"] < 0.95 * board["memory_gbps"]:  # fewer engines than channels
                ax.plot(xs, [eng["stream_gbps"] * x for x in xs], color=color, lw=0.8, ls=":")
            pts = eng["points"]
            if pts:
                ax.scatter([p["macs_per_byte"] for p in pts], [p["gmacs"] for p in pts], color=color,
                           marker=marker, s=18, label=f"{fmt}: {eng['bound']}-bound")
        _log_axes(ax, True, True)
        ax.set(xlabel="MACs per byte", ylabel="GMAC/s",
               title=f"{board['board']} ({board['model']})")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7)
    for ax in axes[n:]:
        ax.set_visible(False)
    _save(fig, path)


def plot_model_vs_rtl(report: dict, path: Path) -> None:
    checks = report["model_vs_rtl"]
    fig = _figure(7, 3.6)
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
    _log_axes(ax)
    ax.set(xlabel="Verilator cycles", ylabel="model error (%)",
           title="cycle model vs RTL (exact without stalls, mean of the throttle with)")
    ax.title.set_fontsize(9)
    if checks:
        ax.legend(fontsize=7)
    _save(fig, path)


PLOTS = {"speedup_vs_model_size.png": plot_speedup, "roofline.png": plot_roofline,
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
