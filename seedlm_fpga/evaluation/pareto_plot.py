"""Perplexity against bits/weight for every method of an evaluation, with the Pareto front
(the methods no other beats on both axes), as a PNG (matplotlib, written atomically): the whole
range on the left, the crowded region around 4 bits/weight enlarged on the right."""
from __future__ import annotations

from pathlib import Path

from seedlm_fpga.core.files import atomic_write

#: method family -> (color, marker): SeedLM and its extensions in warm colors, baselines cool.
FAMILIES = {"SeedLM": ("tab:red", "o"), "SeedLM + extensions": ("tab:orange", "D"),
            "SeedLM, budget": ("darkred", "*"), "RTN": ("tab:blue", "s"), "BFP": ("tab:gray", "v"),
            "HQQ": ("tab:green", "^"), "NF4": ("tab:purple", "P")}
#: The right panel: methods from this many bits/weight up (the ~4-bit crowd).
ZOOM_FROM_BITS = 3.95


def family(method: dict) -> str:
    name = method["method"]
    if name.startswith("budget "):
        return "SeedLM, budget"
    if method["role"] != "baseline":
        return "SeedLM + extensions" if " + " in name.split(",")[0] or "outliers/low-rank" in name else "SeedLM"
    return name.split()[0]


def points(report: dict) -> list[dict]:
    """The plotted methods: those with a perplexity, float rows only (the FPGA rows sit on them)."""
    return [m for m in report["methods"] if m["perplexity"] is not None and m["role"] != "reference"
            and not m["role"].endswith("-fpga")]


def pareto_front(methods: list[dict]) -> list[dict]:
    """Methods no other has at most the bits and at most the perplexity (one strictly), by bits."""
    front = [m for m in methods
             if not any(o["bits_per_weight"] <= m["bits_per_weight"] and o["perplexity"] <= m["perplexity"]
                        and (o["bits_per_weight"], o["perplexity"]) != (m["bits_per_weight"], m["perplexity"])
                        for o in methods)]
    return sorted(front, key=lambda m: m["bits_per_weight"])


def plot_pareto(report: dict, path: Path, title: str) -> None:
    from matplotlib.figure import Figure

    methods = [m for m in points(report) if m["role"] != "compressed"] or points(report)  # the file has a twin
    front = pareto_front(methods)
    ref = next((m for m in report["methods"] if m["role"] == "reference"), None)
    fig = Figure(figsize=(14, 6.5), dpi=100)
    full, zoom = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.15]})
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.09, top=0.9, wspace=0.12)
    near = [m for m in methods if m["bits_per_weight"] >= ZOOM_FROM_BITS]
    for ax, shown in ((full, methods), (zoom, near)):
        _draw(ax, shown, front, ref)
    for m in front:
        if m["bits_per_weight"] < ZOOM_FROM_BITS:
            full.annotate(_short(m["method"]), (m["bits_per_weight"], m["perplexity"]), textcoords="offset points",
                          xytext=(6, 4), fontsize=8)
    for m in methods:  # the extension variants off the front, in grey
        if family(m) == "SeedLM + extensions" and m not in front and m["bits_per_weight"] < ZOOM_FROM_BITS:
            full.annotate(_short(m["method"]), (m["bits_per_weight"], m["perplexity"]), textcoords="offset points",
                          xytext=(5, -11), fontsize=7, color="dimgray")
    if near:
        full.axvspan(ZOOM_FROM_BITS, max(m["bits_per_weight"] for m in near) + 0.02, color="gold", alpha=0.12)
        _label_crowd(zoom, near, front)
        zoom.set_title(f"enlarged: {ZOOM_FROM_BITS:g} bits/weight and up (all methods labelled)", fontsize=10)
    full.set_title("all methods (front labelled)", fontsize=10)
    full.set_ylabel("perplexity (log scale; lower is better)")
    full.legend(loc="upper right", fontsize=9)
    fig.suptitle(title)
    with atomic_write(path) as f:
        fig.savefig(f, format="png")


def _draw(ax, shown: list[dict], front: list[dict], ref) -> None:
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    for fam, (color, marker) in FAMILIES.items():
        ms = [m for m in shown if family(m) == fam]
        if ms:
            ax.scatter([m["bits_per_weight"] for m in ms], [m["perplexity"] for m in ms], color=color,
                       marker=marker, s=70 if fam != "SeedLM, budget" else 160, label=fam, zorder=3)
    # a staircase: with b bits, the best reachable is the last front point at or below b
    ax.plot([m["bits_per_weight"] for m in front], [m["perplexity"] for m in front], color="black", lw=1,
            ls="--", drawstyle="steps-post", zorder=2, label="Pareto front")
    ys = [m["perplexity"] for m in shown] + ([ref["perplexity"]] if ref and ref["perplexity"] else [])
    xs = [m["bits_per_weight"] for m in shown]
    ax.set_xlim(min(xs) - 0.04, max(xs) + 0.1)
    ax.set_yscale("log")
    ax.set_ylim(min(ys) * 0.96, max(ys) * 1.08)
    if ref is not None and ref["perplexity"] is not None:
        ax.axhline(ref["perplexity"], color="black", lw=0.8, ls=":")
        ax.annotate(f"original {ref['perplexity']:.2f}", (min(xs) - 0.04, ref["perplexity"]),
                    textcoords="offset points", xytext=(4, 3), fontsize=8)
    lo, hi = ax.get_ylim()
    ticks = ((3, 3.25, 3.5, 3.75, 4, 4.25, 4.5, 4.75, 5, 5.5, 6, 7, 8) if hi / lo < 2.5 else
             (3, 3.5, 4, 5, 6, 8, 10, 12, 15, 20, 30, 40, 60, 100))
    ax.yaxis.set_major_locator(FixedLocator([t for t in ticks if lo <= t <= hi]))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("bits per weight (everything stored counted)")
    ax.grid(True, alpha=0.3)


#: Where a label may go, in points from its marker (tried in order; the first free one is taken).
LABEL_OFFSETS = [(7, 5), (7, -13), (-7, 5), (-7, -13), (7, 17), (7, -25), (-7, 17), (-7, -25), (7, 29),
                 (7, -37), (-7, 29), (-7, -37), (7, 41), (7, -49)]


def _label_crowd(ax, shown: list[dict], front: list[dict]) -> None:
    """Short labels placed clear of each other and of the markers: for each method (front first)
    the first offset in LABEL_OFFSETS whose text box overlaps nothing placed yet; a thin leader
    line joins labels moved away from their marker."""
    scale = ax.figure.dpi / 72  # points -> pixels
    to_px = ax.transData.transform
    taken = [(x - 7, y - 7, x + 7, y + 7) for x, y in (to_px((m["bits_per_weight"], m["perplexity"]))
                                                      for m in shown)]
    order = sorted(shown, key=lambda m: (m not in front, m["bits_per_weight"]))
    for m in order:
        text = _compact(m["method"])
        w, h = 5.2 * len(text) * scale, 10 * scale
        px, py = to_px((m["bits_per_weight"], m["perplexity"]))
        for dx, dy in LABEL_OFFSETS:
            x0 = px + dx * scale - (w if dx < 0 else 0)
            y0 = py + dy * scale
            box = (x0, y0, x0 + w, y0 + h)
            if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in taken):
                break
        taken.append(box)
        far = abs(dy) > 20
        ax.annotate(text, (m["bits_per_weight"], m["perplexity"]), textcoords="offset points", xytext=(dx, dy),
                    ha="right" if dx < 0 else "left", va="bottom", fontsize=8,
                    fontweight="bold" if m in front else "normal", color="black" if m in front else "dimgray",
                    arrowprops={"arrowstyle": "-", "color": "silver", "lw": 0.6} if far else None)


def _short(name: str) -> str:
    return (name.removesuffix(" (re-encoded)").removeprefix("this file: ").replace(", our per-tensor bias", "")
            .replace(": per-tensor choice", "").replace("% outliers", "% out."))


def _compact(name: str) -> str:
    """'seedlm-4 + 0.5% outliers + rank 1' -> 's4+0.5%o+r1', 'RTN int4 g64' -> 'RTN4 g64'."""
    s = _short(name)
    if s.startswith("seedlm-"):
        return s.replace("seedlm-", "s").replace("% out.", "%o").replace("rank ", "r").replace(" + ", "+")
    return s.replace(" int", "").replace(" bits", "")
