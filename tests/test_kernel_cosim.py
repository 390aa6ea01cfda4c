"""The memory-mapped kernels (format §11) under cocotb + Verilator against the shared AXI memory.

Every Y is compared bit for bit with the numpy reference (sim.kernel_runner judges it), the
CYCLES register is held to the bench's own count (start write to interrupt) and, with an
unpaused memory whose latency the kernel hides, to format §11.4's `kernel_cycles_for` exactly.
Builds: seedlm-4 and the baseline at W = 128 (max cols 256), a seedlm-3 packed kernel at
W = 64, and a seedlm-4 kernel sized for a short latency (mem_latency 16, bursts of 16) whose
read credits, not the memory, set the pace at L_r = 102.
"""
from __future__ import annotations

import dataclasses

import pytest

from seedlm_fpga.core.engine_shape import DesignConfig, kernel_cycles_for
from seedlm_fpga.sim import stimulus as stim
from seedlm_fpga.sim.axi_memory import BASE_WRITE_LATENCY
from seedlm_fpga.sim.cycle_model import kernel_models
from seedlm_fpga.sim.kernel_runner import generated_kernel, kernel_case, read_latency, run_kernel_cases

MAX_COLS = 256


def shared(cases):
    """The cases with the first one's activations (one start shares them, format §11.3)."""
    return [dataclasses.replace(c, acts=cases[0].acts) for c in cases]


def cases_for(engine: str, act_bits: int = 8):
    group = shared([stim.random_case(engine, 5, 203, act_bits, seed=2),
                    stim.extreme_case(engine, 3, 203, act_bits, act_sign=-1),
                    stim.zero_words_case(engine, 4, 203, act_bits, seed=3)])
    return [
        kernel_case([stim.gaussian_case(engine, 12, 203, act_bits, seed=1)], descriptors=False),
        kernel_case(group, descriptors=True),
        kernel_case([stim.extreme_case(engine, 2, MAX_COLS, act_bits, act_sign=+1)], descriptors=True),
        kernel_case([stim.random_case(engine, 1, 1, act_bits, seed=4)], descriptors=False),
    ]


def formula(kernel, case, latency):
    cfg = DesignConfig(preset="seedlm-4" if kernel.kind == stim.BASELINE else kernel.kind, bus_bits=kernel.bus_bits,
                       act_bits=kernel.act_bits, max_cols=kernel.max_cols, image=kernel.image)
    kind = "baseline" if kernel.kind == stim.BASELINE else "seedlm"
    return kernel_cycles_for(cfg, kind, case.cols, [g.rows for g in case.gemvs], case.descriptors,
                             read_latency(latency), BASE_WRITE_LATENCY)


@pytest.mark.parametrize("engine", ["seedlm-4", stim.BASELINE])
@pytest.mark.parametrize("latency", [0, 37, 126])
def test_kernel_bit_exact_with_exact_cycles(engine, latency):
    """Hidden latencies (L_r <= mem_latency 128): CYCLES is format §11.4's count, cycle for cycle."""
    kernel = generated_kernel(engine, 128, 8, MAX_COLS)
    cases = cases_for(engine)
    for case, r in zip(cases, run_kernel_cases(kernel, cases, latency=latency, seed=latency)):
        assert r.ok, r.report()
        assert r.y == [g.expected() for g in case.gemvs]
        assert r.cycles == formula(kernel, case, latency), case.label


@pytest.mark.parametrize("engine", ["seedlm-4", stim.BASELINE])
def test_kernel_bit_exact_under_pauses_and_back_pressure(engine):
    """A latency beyond the kernel's sizing, R pauses and W/B pauses, with a polling host."""
    kernel = generated_kernel(engine, 128, 8, MAX_COLS)
    cases = cases_for(engine)
    results = run_kernel_cases(kernel, cases, latency=200, gap=0.3, write_gap=0.5, seed=9, interrupt=False)
    for case, r in zip(cases, results):
        assert r.ok, r.report()
        assert r.cycles >= formula(kernel, case, 200)  # pauses only add cycles (format §11.4)
    assert sum(r.cycles for r in results) > sum(formula(kernel, c, 200) for c in cases)


def test_packed_seedlm3_kernel():
    kernel = generated_kernel("seedlm-3", 64, 8, MAX_COLS, image="packed", preset="seedlm-3")
    cases = cases_for("seedlm-3")[:2]
    for case, r in zip(cases, run_kernel_cases(kernel, cases, latency=50, seed=1)):
        assert r.ok, r.report()
        assert r.cycles == formula(kernel, case, 50)


def test_unaligned_bursts_split_at_4kb():
    """Images one beat off a 4 KB boundary, long rows: bursts must split there (the memory checks)."""
    kernel = generated_kernel("seedlm-4", 128, 8, MAX_COLS)
    case = kernel_case([stim.random_case("seedlm-4", 300, MAX_COLS, 8, seed=6)], descriptors=True)
    r = run_kernel_cases(kernel, [case], latency=5, skew=16)[0]  # 300 x 8 beats x 16 B: 9 pages
    assert r.ok, r.report()


# --- the cycle model (sim.cycle_model.KernelCycleModel) against Verilator ---------------------

#: (memory latency N, R pause probability, W/B pause probability): sampled points
MODEL_POINTS = [(0, 0.0, 0.0), (120, 0.0, 0.0), (200, 0.0, 0.0), (60, 0.2, 0.0), (120, 0.0, 0.3),
                (200, 0.1, 0.2)]


@pytest.mark.parametrize("mem_latency, max_burst, points", [
    (128, None, MODEL_POINTS),
    (16, 16, [(100, 0.0, 0.0)]),  # credit-bound: 64 buffer places for L_r = 102
], ids=["sized-128", "credit-bound"])
def test_cycle_model_within_one_percent(mem_latency, max_burst, points):
    kernel = generated_kernel("seedlm-4", 128, 8, MAX_COLS, mem_latency=mem_latency, max_burst=max_burst)
    model = kernel_models("seedlm-4", 128, 8, mem_latency=mem_latency, max_burst=kernel.max_burst)["seedlm-4"]
    big = stim.random_case("seedlm-4", 2000, MAX_COLS, 8, seed=1)   # 16,000 weight beats
    small = dataclasses.replace(stim.random_case("seedlm-4", 3, MAX_COLS, 8, seed=2), acts=big.acts)
    cases = [kernel_case([big], descriptors=False), kernel_case([small, big, small], descriptors=True)]
    for n, (latency, gap, write_gap) in enumerate(points):
        for case, r in zip(cases, run_kernel_cases(kernel, cases, latency, gap, write_gap, seed=n)):
            assert r.ok, r.report()
            predicted = model.cycles(case.cols, r.rows, case.descriptors, read_latency(latency), BASE_WRITE_LATENCY,
                                     gap, write_gap)
            assert predicted == pytest.approx(r.cycles, rel=0.01), (latency, gap, write_gap, case.label)
            if gap == write_gap == 0 and read_latency(latency) <= mem_latency:
                assert predicted == r.cycles
