"""evaluate --plot: the Pareto front and the PNG (evaluation/pareto_plot.py)."""
from __future__ import annotations

from seedlm_fpga.evaluation.pareto_plot import family, pareto_front, plot_pareto, points


def _m(name, bits, ppl, role="baseline"):
    return {"method": name, "bits_per_weight": bits, "perplexity": ppl, "role": role}


REPORT = {"methods": [
    _m("original (float32)", 32.0, 3.6, "reference"),
    _m("seedlm-3 (re-encoded)", 3.3, 12.0, "seedlm"),
    _m("seedlm-3 (re-encoded), FPGA integer GEMV", 3.3, 12.1, "seedlm-fpga"),
    _m("seedlm-3 + rank 1 (re-encoded)", 3.5, 13.0, "seedlm"),  # dominated by the budget row (same bits)
    _m("budget 3.5 bits: per-tensor choice", 3.5, 9.0, "seedlm"),
    _m("RTN int3 g64", 3.25, 15.0),
    _m("RTN int3 g32", 3.5, 9.0),  # ties the budget row exactly: neither dominates the other
    _m("NF4 g64", 4.1, 4.0),
    _m("HQQ int4 g64", 4.5, 4.1),  # more bits and worse than NF4: off the front
]}


def test_front_and_families():
    pts = points(REPORT)
    assert [m["method"] for m in pts if "FPGA" in m["method"] or m["role"] == "reference"] == []
    front = [m["method"] for m in pareto_front(pts)]
    assert front == ["RTN int3 g64", "seedlm-3 (re-encoded)", "budget 3.5 bits: per-tensor choice", "RTN int3 g32",
                     "NF4 g64"]
    assert [family(m) for m in pts] == ["SeedLM", "SeedLM + extensions", "SeedLM, budget", "RTN", "RTN", "NF4", "HQQ"]


def test_plot_writes_a_png(tmp_path):
    path = tmp_path / "p.png"
    plot_pareto(REPORT, path, "test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and [p.name for p in tmp_path.iterdir()] == ["p.png"]
