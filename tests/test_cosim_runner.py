"""The generated engines under cocotb + Verilator, bit for bit against the numpy reference.

Coverage (one Verilator build per row below; builds dominate the time, so not all 18
engine x W x A combinations are built): every engine at every bus width, each width
with both activation widths across the SeedLM presets, and each engine with both
activation widths somewhere:

    seedlm-4: W 64/A 8, W 128/A 16, W 512/A 8
    seedlm-3: W 64/A 16, W 128/A 8, W 512/A 16
    baseline: W 64/A 16, W 128/A 8, W 512/A 8
    packed image (format §5.4): seedlm-3 W 64/A 8 (the target bus), seedlm-4 W 80/A 16 (3 lanes,
    blocks straddling beats)

Each build runs the same case list twice in one simulator each: without stalls (and
then the measured cycles must equal the design's timing formula) and with random valid
gaps on both inputs and random ready gaps on the output. The cases: compressed Gaussian
weights with cols a multiple of neither C nor the beat, a stories260K matrix (64 x 172),
uniformly random fields, q = -8 / x = 15 with activations at min and at max, all-zero
block words, and a 1 x 1 GEMV. max_cols is 256 for all test builds.
"""

import numpy as np
import pytest

from seedlm_fpga.core import reference as ref
from seedlm_fpga.sim import stimulus as stim
from seedlm_fpga.sim.cosim_runner import generated_engine, run_cases
from example_data import example_file

MAX_COLS = 256
MATRIX = [
    ("seedlm-4", 64, 8, "beat"), ("seedlm-4", 128, 16, "beat"), ("seedlm-4", 512, 8, "beat"),
    ("seedlm-3", 64, 16, "beat"), ("seedlm-3", 128, 8, "beat"), ("seedlm-3", 512, 16, "beat"),
    ("baseline", 64, 16, "beat"), ("baseline", 128, 8, "beat"), ("baseline", 512, 8, "beat"),
    ("seedlm-3", 64, 8, "packed"), ("seedlm-4", 80, 16, "packed"),
]


def stories_case(engine, act_bits):
    return stim.stories_case(engine, act_bits, "layers.0.w2", path=example_file("stories260K.bin"))


def cases_for(engine, act_bits):
    return [
        stim.gaussian_case(engine, 12, 203, act_bits, seed=1),
        stories_case(engine, act_bits),
        stim.random_case(engine, 6, MAX_COLS, act_bits, seed=2),
        stim.extreme_case(engine, 3, MAX_COLS, act_bits, act_sign=-1),
        stim.extreme_case(engine, 2, 100, act_bits, act_sign=+1),
        stim.extreme_case(engine, 2, MAX_COLS, act_bits, act_sign=0),
        stim.zero_words_case(engine, 4, 50, act_bits, seed=3),
        stim.random_case(engine, 1, 1, act_bits, seed=4),
    ]


def weight_beats_per_row(engine, bus_bits, cols, image="beat"):
    if engine == stim.BASELINE:
        return -(-cols // (bus_bits // 16))
    p = ref.get_preset(engine)
    layout = ref.PackedImageLayout if image == "packed" else ref.ImageLayout
    return layout(bus_bits, p.block_bits, ref.blocks_per_row(cols, p.C)).beats_per_row


@pytest.mark.parametrize("engine, bus_bits, act_bits, image", MATRIX,
                         ids=[f"{e}-W{w}-A{a}" + ("" if i == "beat" else f"-{i}") for e, w, a, i in MATRIX])
def test_engine_bit_exact(engine, bus_bits, act_bits, image):
    eng = generated_engine(engine, bus_bits, act_bits, MAX_COLS, image)
    cases = cases_for(engine, act_bits)
    for gap, ready_gap in ((0.0, 0.0), (0.3, 0.4)):
        results = run_cases(eng, cases, gap=gap, ready_gap=ready_gap, seed=bus_bits + act_bits)
        for case, r in zip(cases, results):
            assert r.ok, r.report()
            assert r.y == case.expected()
            R = weight_beats_per_row(engine, bus_bits, case.cols, image)
            assert r.weight_beats == case.rows * R
            assert r.act_beats == -(-case.cols // eng.acts_per_beat)
            ideal = r.act_beats + r.weight_beats + eng.latency_cycles
            if gap == 0 and ready_gap == 0:
                assert r.cycles == ideal, f"{case.label}: {r.cycles} cycles, timing formula {ideal}"
            else:
                assert r.cycles >= ideal


@pytest.mark.parametrize("engine", stim.ENGINES)
def test_aligned_extreme_case_comes_near_the_output_width(engine):
    """The aligned q = -8 / x = 15 case drives Y[0] to within 2 bits of the widest Y."""
    for act_bits in (8, 16):
        y0 = stim.extreme_case(engine, 2, MAX_COLS, act_bits, act_sign=0).expected()[0]
        if engine == stim.BASELINE:
            width = ref.baseline_y_bits(MAX_COLS, act_bits)
        else:
            width = ref.seedlm_y_bits(MAX_COLS, act_bits, ref.get_preset(engine))
        assert y0 < 0 and (-y0).bit_length() >= width - 3


def test_isolated_blocks_sum_to_the_row():
    case = stim.random_case("seedlm-3", 3, 100, 16, seed=5)
    iso = case.isolate_row(1, group=8)
    assert iso.rows == case.seeds.shape[1]
    assert sum(iso.expected()) == case.expected()[1]
    base = stim.random_case("baseline", 3, 100, 8, seed=6)
    iso = base.isolate_row(2, group=8)
    assert iso.rows == 13 and sum(iso.expected()) == base.expected()[2]
    assert case.block_fields(1, 0) == (f"seed={int(case.seeds[1, 0])} x={int(case.x[1, 0])} "
                                       f"q={case.q[1, 0].tolist()}")


def test_zero_words_are_in_the_image():
    case = stim.zero_words_case("seedlm-4", 4, 50, 8, seed=3)
    seeds, x, q = ref.parse_memory_image(case.image(64), ref.get_preset("seedlm-4"), 64, 4, 7)
    assert np.all(seeds[0] == 0) and np.all(q[0] == 0)
    assert np.array_equal(seeds, case.seeds)
