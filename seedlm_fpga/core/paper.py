"""The paper's FPGA reference figures (format §8: arXiv 2410.10714, 4-bit), in one place.

Everything that prints or compares against the paper imports these: `seedlm-fpga cosim
--paper`, `project`'s paper row, `synth`'s resource ratio and benchmarks/bench_cosim.py.
"""
from __future__ import annotations

#: The experiment: a 2048 x 2048 GEMV on a 64-bytes-per-cycle memory interface, seedlm-4.
GEMV_ROWS = 2048
GEMV_COLS = 2048
BUS_BITS = 512
PRESET = "seedlm-4"

#: Measured cycles of that GEMV: the SeedLM design and the FP16 design.
SEEDLM_CYCLES = 34_331
FP16_CYCLES = 136_559
#: The speed-up the paper prints (FP16 / SeedLM cycles, rounded: 136,559 / 34,331 = 3.978).
SPEEDUP = 3.98
#: The paper's speed-up row for growing GEMV sizes (the last one is the 2048 x 2048 above).
SPEEDUP_ROW = (3.67, 3.92, 3.98)

#: Ideal cycles at 64 bytes per cycle: weight bytes / 64 (4 bits and 16 bits per weight).
IDEAL_SEEDLM_CYCLES = GEMV_ROWS * GEMV_COLS * 4 // BUS_BITS      # 32,768
IDEAL_FP16_CYCLES = GEMV_ROWS * GEMV_COLS * 16 // BUS_BITS       # 131,072

#: The SeedLM design's resources (67K LUTs, 45.4K registers, 144 BRAMs, 128 DSPs), in
#: `seedlm-fpga synth`'s keys.
RESOURCES = {"lut": 67_000, "ff": 45_400, "dsp": 128, "bram36": 144}
