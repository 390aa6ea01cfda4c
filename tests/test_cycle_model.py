"""The cycle model against the RTL: hdl's own timing description, and Verilator cycle counts."""
from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest

from seedlm_fpga.core.engine_shape import tree_stages
from seedlm_fpga.core.reference import PRESETS, baseline_image, memory_image, packed_memory_image
from seedlm_fpga.sim.cycle_model import CycleModel, design_models

CONFIGS = [(p, w, a) for p in ("seedlm-4", "seedlm-3") for w in (32, 64, 96, 128, 256, 512, 1024, 2048)
           for a in (8, 16) if w >= PRESETS[p].block_bits]


@pytest.mark.parametrize("preset, bus_bits, act_bits", CONFIGS)
def test_model_parameters_equal_design_json(preset, bus_bits, act_bits):
    """N, E, L and the pipeline latency: what hdl.generate writes to design.json."""
    from seedlm_fpga.hdl.generate import DesignConfig, describe
    design = describe(DesignConfig(preset=preset, bus_bits=bus_bits, act_bits=act_bits, max_cols=4096))
    models = design_models(preset, bus_bits, act_bits)
    for model, d in ((models[preset], design), (models["fp16"], design["baseline"])):
        assert model.acts_per_beat == d["acts_per_beat"]
        assert model.weights_per_beat == d["acts_per_weight_beat"]
        assert model.latency == d["latency_cycles"]
        # the formula design.json states, evaluated, for a few shapes
        n, e, lat = d["acts_per_beat"], d["acts_per_weight_beat"], d["latency_cycles"]
        for rows, cols in ((1, 1), (7, 100), (64, 4096)):
            assert model.cycles(rows, cols) == -(-cols // n) + rows * -(-cols // e) + lat
    assert models[preset].blocks_per_beat == design["blocks_per_beat"]


@pytest.mark.parametrize("preset, bus_bits, act_bits", CONFIGS)
def test_packed_model_parameters_equal_design_json(preset, bus_bits, act_bits):
    """The packed image (format §5.4): lanes ceil(W / B), R = ceil(nb * B / W), the gear stage."""
    from seedlm_fpga.hdl.generate import DesignConfig, describe
    d = describe(DesignConfig(preset=preset, bus_bits=bus_bits, act_bits=act_bits, max_cols=4096, image="packed"))
    model = design_models(preset, bus_bits, act_bits, "packed")[preset]
    p = PRESETS[preset]
    assert d["image"] == "packed" and model.blocks_per_beat == d["blocks_per_beat"] == -(-bus_bits // p.block_bits)
    assert (model.acts_per_beat, model.weights_per_beat) == (d["acts_per_beat"], d["acts_per_weight_beat"])
    assert model.latency == d["latency_cycles"] == CycleModel("seedlm", bus_bits, act_bits, preset).latency + 1 \
        - (tree_stages(bus_bits // p.block_bits) - tree_stages(-(-bus_bits // p.block_bits)))
    for rows, cols in ((1, 1), (7, 100), (64, 4096)):
        R = -(-(-(-cols // p.C)) * p.block_bits // bus_bits)
        assert model.beats_per_row(cols) == R
        # the formula design.json states, evaluated exactly
        formula = d["timing"]["formula"].split("=", 1)[1]
        assert model.cycles(rows, cols) == eval(formula, {"ceil": math.ceil, "cols": Fraction(cols), "rows": rows})
        assert model.cycles(rows, cols) == -(-cols // model.acts_per_beat) + rows * R + model.latency


def test_packed_seedlm3_on_64_bits():
    """The target: seedlm-3 on a 64-bit bus streams 3.016 bits per weight packed (5.344 beat)."""
    packed, beat = CycleModel("seedlm", 64, 8, "seedlm-3", "packed"), CycleModel("seedlm", 64, 8, "seedlm-3")
    assert packed.beats_per_row(4096) == 193 and beat.beats_per_row(4096) == 342
    assert packed.bits_per_weight(4096) == pytest.approx(3.016, abs=1e-3) and packed.bits_per_weight(4096) <= 3.05
    base = CycleModel("baseline", 64, 8)
    assert base.cycles(64, 4096) / packed.cycles(64, 4096) >= 5.0
    assert packed.cycles(64, 4096) == 512 + 64 * 193 + 13


@pytest.mark.parametrize("preset, bus_bits", [("seedlm-4", 64), ("seedlm-3", 512), ("seedlm-3", 128)])
@pytest.mark.parametrize("rows, cols", [(3, 100), (2, 4096), (5, 13)])
def test_streamed_bytes_equal_the_memory_image(preset, bus_bits, rows, cols):
    p = PRESETS[preset]
    rng = np.random.default_rng(1)
    nb = -(-cols // p.C)
    image = memory_image(rng.integers(1, 99, (rows, nb)), np.zeros((rows, nb)), np.zeros((rows, nb, p.P)), p,
                         bus_bits)
    seed, base = CycleModel("seedlm", bus_bits, 8, preset), CycleModel("baseline", bus_bits)
    assert seed.image_bytes(rows, cols) == len(image)
    assert base.image_bytes(rows, cols) == len(baseline_image(np.zeros((rows, cols)), bus_bits))
    assert seed.bits_per_weight(cols) == len(image) * 8 / (rows * cols)
    packed = packed_memory_image(rng.integers(1, 99, (rows, nb)), np.zeros((rows, nb)), np.zeros((rows, nb, p.P)),
                                 p, bus_bits)
    assert CycleModel("seedlm", bus_bits, 8, preset, "packed").image_bytes(rows, cols) == len(packed)


def test_seedlm3_on_512_bits_streams_3_05_bits_per_weight():
    # 14 blocks of 36 bits per 512-bit beat: 512 / (14 * 12) = 3.048 bits per weight
    m = CycleModel("seedlm", 512, 8, "seedlm-3")
    assert m.blocks_per_beat == 14
    assert m.bits_per_weight(14 * 12 * 100) == pytest.approx(512 / 168)


def test_throttled_memory_stretches_only_the_weight_beats():
    m = CycleModel("seedlm", 512)
    full = m.breakdown(100, 4096)
    half = m.breakdown(100, 4096, efficiency=0.5)
    assert half["weights"] + half["stalls"] == 2 * full["weights"]
    assert (half["act"], half["latency"]) == (full["act"], full["latency"])
    # the testbench throttles activations too: the first act beat starts the count
    both = m.cycles(100, 4096, efficiency=0.5, act_efficiency=0.5)
    assert both == m.cycles(100, 4096, efficiency=0.5) + (m.act_beats(4096) - 1)
    with pytest.raises(ValueError, match=r"efficiency must lie in \(0, 1\], got 0"):
        m.cycles(1, 1, efficiency=0)


# --- Verilator ---------------------------------------------------------------------------------

#: (engine, preset, bus bits, act bits, shapes[, image]): both presets and the baseline, two buses,
#: both activation widths, ragged rows (cols not a multiple of C, of a beat, of an activation beat),
#: and the packed image (format §5.4: rows ending mid-beat, blocks straddling beats).
#: The builds are those of tests/test_cosim_runner.py (max_cols 256): cached, not rebuilt.
MAX_COLS = 256
EXACT_SPREAD = [
    ("seedlm", "seedlm-4", 64, 8, [(1, 8), (3, 100), (4, 256), (2, 7)]),
    ("seedlm", "seedlm-4", 128, 16, [(1, 8), (5, 100), (3, 256)]),
    ("seedlm", "seedlm-3", 128, 8, [(1, 12), (4, 100), (3, 256), (2, 1)]),
    ("baseline", None, 64, 16, [(1, 4), (3, 100), (4, 256)]),
    ("baseline", None, 128, 8, [(1, 8), (5, 100), (3, 255)]),
    ("seedlm", "seedlm-3", 64, 8, [(1, 12), (4, 100), (3, 256), (2, 1), (2, 64)], "packed"),
    ("seedlm", "seedlm-4", 80, 16, [(1, 8), (5, 100), (3, 256), (2, 5)], "packed"),
]


def _measure(*args, **kw):
    from seedlm_fpga.sim.rtl_measure import measure
    return measure(*args, **kw)


@pytest.mark.parametrize("engine, preset, bus_bits, act_bits, shapes, image",
                         [(*s, "beat") if len(s) == 5 else s for s in EXACT_SPREAD])
def test_model_is_exact_against_verilator_without_stalls(engine, preset, bus_bits, act_bits, shapes, image):
    runs = _measure(engine, shapes, bus_bits, act_bits, preset or "seedlm-4", max_cols=MAX_COLS, image=image)
    model = CycleModel(engine, bus_bits, act_bits, preset or "seedlm-4", image)
    for r in runs:
        assert r["act_beats"] == model.act_beats(r["cols"])
        assert r["weight_beats"] == model.weight_beats(r["rows"], r["cols"])
        assert r["rtl_cycles"] == model.cycles(r["rows"], r["cols"]), r


#: Long runs (20,480 weight beats): the throttle's randomness (relative spread about
#: sqrt(g / beats) < 0.3%) stays well inside 1%.
THROTTLED = [
    ("seedlm", "seedlm-4", 64, 8, (1280, 256), 0.2),
    ("baseline", None, 128, 8, (640, 256), 0.1),
]


@pytest.mark.parametrize("engine, preset, bus_bits, act_bits, shape, gap", THROTTLED)
def test_model_within_1pct_of_verilator_with_a_throttled_memory(engine, preset, bus_bits, act_bits, shape, gap):
    (r,) = _measure(engine, [shape], bus_bits, act_bits, preset or "seedlm-4", gap=gap, seed=3, max_cols=MAX_COLS)
    model = CycleModel(engine, bus_bits, act_bits, preset or "seedlm-4")
    predicted = model.cycles(*shape, efficiency=1 - gap, act_efficiency=1 - gap)
    assert abs(predicted - r["rtl_cycles"]) / r["rtl_cycles"] < 0.01, (predicted, r)


def test_stored_rtl_cycles_agree_with_the_model():
    """sim/rtl_cycles.json (benchmarks/rtl_cycles.py): what `project` prints as model-vs-RTL."""
    from seedlm_fpga.sim.projection_report import RTL_CYCLES, model_vs_rtl
    assert RTL_CYCLES.is_file(), f"{RTL_CYCLES} is missing: run python benchmarks/rtl_cycles.py"
    stored = json.loads(RTL_CYCLES.read_text())
    assert stored["provenance"]["command"] == "python benchmarks/rtl_cycles.py"
    checks = model_vs_rtl(stored["measurements"])
    assert checks
    for c in checks:
        assert abs(c["error_pct"]) < (1.0 if c["efficiency"] < 1 else 1e-9), c
