"""Perplexity against bits/weight for every method of an evaluation, with the Pareto front
(the methods no other beats on both axes), as a PNG (matplotlib, written atomically)."""
from __future__ import annotations

from pathlib import Path

from seedlm_fpga.core.files import atomic_write

#: method family -> (color, marker): SeedLM and its extensions in warm colors, baselines cool.
FAMILIES = {"SeedLM": ("tab:red", "o"), "SeedLM + extensions": ("tab:orange", "D"),
            "SeedLM, budget": ("darkred", "*"), "RTN": ("tab:blue", "s"), "BFP": ("tab:gray", "v"),
            "HQQ": ("tab:green", "^"), "NF4": ("tab:purple", "P")}


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

    methods = points(report)
    fig = Figure(figsize=(9, 6), dpi=100)
    ax = fig.add_subplot()
    fig.subplots_adjust(left=0.09, right=0.98, bottom=0.1, top=0.92)
    for fam, (color, marker) in FAMILIES.items():
        ms = [m for m in methods if family(m) == fam]
        if ms:
            ax.scatter([m["bits_per_weight"] for m in ms], [m["perplexity"] for m in ms], color=color,
                       marker=marker, s=70 if fam != "SeedLM, budget" else 160, label=fam, zorder=3)
    front = pareto_front(methods)
    # a staircase: with b bits, the best reachable is the last front point at or below b
    ax.plot([m["bits_per_weight"] for m in front], [m["perplexity"] for m in front], color="black", lw=1,
            ls="--", drawstyle="steps-post", zorder=2, label="Pareto front")
    labelled = set()
    for m in front:
        at = (round(m["bits_per_weight"], 3), round(m["perplexity"], 3))
        if at not in labelled:  # the file and its re-encoded twin sit on one point
            labelled.add(at)
            ax.annotate(_short(m["method"]), (m["bits_per_weight"], m["perplexity"]), textcoords="offset points",
                        xytext=(6, 4), fontsize=8)
    for m in methods:  # the extension variants off the front, in grey: the table has the rest
        if family(m) == "SeedLM + extensions" and m not in front:
            ax.annotate(_short(m["method"]), (m["bits_per_weight"], m["perplexity"]), textcoords="offset points",
                        xytext=(5, -10), fontsize=7, color="dimgray")
    ref = next((m for m in report["methods"] if m["role"] == "reference"), None)
    if ref is not None and ref["perplexity"] is not None:
        ax.axhline(ref["perplexity"], color="black", lw=0.8, ls=":")
        ax.annotate(f"original {ref['perplexity']:.2f}", (ax.get_xlim()[0], ref["perplexity"]),
                    textcoords="offset points", xytext=(4, 3), fontsize=8)
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    ax.set_yscale("log")
    lo, hi = ax.get_ylim()
    ax.yaxis.set_major_locator(FixedLocator([t for t in (3, 3.5, 4, 4.5, 5, 6, 7, 8, 10, 12, 15, 20, 30, 40, 60, 100)
                                             if lo <= t <= hi]))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("bits per weight (everything stored counted)")
    ax.set_ylabel("perplexity (log scale; lower is better)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize=9)
    with atomic_write(path) as f:
        fig.savefig(f, format="png")


def _short(name: str) -> str:
    return (name.removesuffix(" (re-encoded)").removeprefix("this file: ").replace(", our per-tensor bias", "")
            .replace(": per-tensor choice", "").replace("% outliers", "% out."))
