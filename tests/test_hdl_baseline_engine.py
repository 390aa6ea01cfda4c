"""BaselineEngine (format §7) end to end, bit-exact against reference.gemv_baseline."""
import random

import numpy as np
import pytest

from seedlm_fpga.core.reference import activation_beats, baseline_image, gemv_baseline
from seedlm_fpga.hdl.baseline_engine import BaselineEngine
from seedlm_fpga.core.engine_shape import DesignConfig

from hdl_sim_util import image_beats, run_gemv


def problem(cfg: DesignConfig, rows: int, cols: int, seed: int, weights=None, acts=None):
    rng = np.random.default_rng(seed)
    w = rng.integers(-(1 << 15), 1 << 15, (rows, cols)) if weights is None else np.asarray(weights)
    lo, hi = -(1 << (cfg.act_bits - 1)), 1 << (cfg.act_bits - 1)
    a = rng.integers(lo, hi, cols) if acts is None else np.asarray(acts)
    y_ref = [int(v) for v in gemv_baseline(w, a)]
    return (y_ref, activation_beats(a, cfg.act_bits, cfg.baseline.acts_per_beat),
            image_beats(baseline_image(w, cfg.bus_bits), cfg.bus_bits))


def test_gemv_64x256_exact_and_cycle_exact():
    cfg = DesignConfig(preset="seedlm-4", bus_bits=128, act_bits=8, max_cols=256)
    engine = BaselineEngine(cfg)
    rows, cols = 64, 256
    y_ref, ab, wb = problem(cfg, rows, cols, seed=4)
    y, last, t = run_gemv(engine, cols, ab, wb, rows)
    assert y == y_ref
    assert last == [0] * (rows - 1) + [1]
    n_act, R = -(-cols // cfg.baseline.acts_per_beat), -(-cols // (cfg.bus_bits // 16))
    assert t["w"] == list(range(n_act, n_act + rows * R))
    assert t["y"][-1] + 1 == n_act + rows * R + engine.latency_cycles
    assert engine.latency_cycles == sum(s["cycles"] for s in engine.pipeline_stages())


@pytest.mark.parametrize("bus,act_bits,cols", [(128, 16, 45), (64, 8, 3), (96, 8, 50)])
def test_random_stalls_ragged_rows_and_extremes(bus, act_bits, cols):
    cfg = DesignConfig(preset="seedlm-3", bus_bits=bus, act_bits=act_bits, max_cols=64)
    engine = BaselineEngine(cfg)
    rng = np.random.default_rng(cols)
    amin, amax = -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1
    acts = rng.choice([amin, amax], cols)
    # extreme rows first: every product +2^(15+A-1) or every product at its most negative
    w = rng.integers(-(1 << 15), 1 << 15, (10, cols))
    w[0] = np.where(acts < 0, -(1 << 15), (1 << 15) - 1)
    w[1] = np.where(acts < 0, (1 << 15) - 1, -(1 << 15))
    y_ref, ab, wb = problem(cfg, 10, cols, seed=0, weights=w, acts=acts)
    y, last, _ = run_gemv(engine, cols, ab, wb, 10, rng=random.Random(bus), stall=0.35)
    assert y == y_ref
    assert last == [0] * 9 + [1]
