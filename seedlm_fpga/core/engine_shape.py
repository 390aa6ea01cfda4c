"""`DesignConfig`: the parameters fixed when Verilog is generated, and what follows from them.

Both engines share the weight bus (W bits), the activation format (A bits) and max-cols.

Activation bus width N (acts per beat): the largest divisor of E that keeps the
activation stream no wider than the weight bus (N * A <= W), where E is the number of
activations one weight beat meets (E = L*C for SeedLM, W/16 for the baseline). The
activation buffer holds words of E activations, so beat k of a row reads word k in one
cycle; N dividing E makes each activation beat fill one aligned 1/(E/N) slice of a
word: no gearbox, no realignment. seedlm-4 on a power-of-two bus gets N * A = W
(N = W/A); seedlm-3 at W = 512, int8 gets N = 56 (448 bits); the baseline gets N = W/16.
"""
from __future__ import annotations

from dataclasses import dataclass

from seedlm_fpga.core.reference import Preset, blocks_per_row, get_preset

#: Default max-cols: 28672 is the longest row of SPEC 9 (Llama 2/3 70B down_proj); the
#: activation buffer then holds 28 KiB (int8) or 56 KiB (int16).
DEFAULT_MAX_COLS = 28672
#: Co-simulation's max-cols (sim.cosim_runner, `cosim`, benchmarks), on purpose smaller: a
#: cached Verilator build per engine and bus serves every GEMV up to 4096 cols (all shapes of
#: sim/rtl_cycles.json and bench_cosim.py) with a 7x smaller buffer; wider GEMVs get their own.
COSIM_MAX_COLS = 4096
ACT_BITS = (8, 16)
BASELINE_WEIGHT_BITS = 16
MAX_BUS_BITS = 4096


def largest_divisor_at_most(n: int, limit: int) -> int:
    return max(d for d in range(1, min(n, limit) + 1) if n % d == 0)


@dataclass(frozen=True)
class EngineShape:
    """What one engine's buses and buffer look like (SeedLM or baseline)."""

    weight_bits: int        # W
    act_bits: int           # A
    acts_per_word: int      # E: activations one weight beat meets
    max_cols: int
    y_bits: int

    @property
    def acts_per_beat(self) -> int:  # N
        return largest_divisor_at_most(self.acts_per_word, self.weight_bits // self.act_bits)

    @property
    def beats_per_word(self) -> int:  # G = E / N
        return self.acts_per_word // self.acts_per_beat

    @property
    def buffer_words(self) -> int:
        """Activation-buffer depth: ceil(max_cols / E) words (at least 2: no 0-bit address)."""
        return max(2, -(-self.max_cols // self.acts_per_word))


@dataclass(frozen=True)
class DesignConfig:
    """One generated design: a SeedLM engine and the 16-bit baseline on the same bus."""

    preset: str = "seedlm-4"
    bus_bits: int = 512
    act_bits: int = 8
    max_cols: int = DEFAULT_MAX_COLS

    def __post_init__(self):
        try:
            p = get_preset(self.preset)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        if not isinstance(self.bus_bits, int) or self.bus_bits % 8 or not 0 < self.bus_bits <= MAX_BUS_BITS:
            raise ValueError(f"bus width must be a multiple of 8 bits in 8..{MAX_BUS_BITS}, got {self.bus_bits}")
        if self.bus_bits < p.block_bits:
            raise ValueError(f"a {self.bus_bits}-bit bus cannot hold one {p.block_bits}-bit {p.name} block "
                             f"(need --bus-bits >= {-(-p.block_bits // 8) * 8})")
        if self.act_bits not in ACT_BITS:
            raise ValueError(f"activation bits must be 8 or 16, got {self.act_bits}")
        if not isinstance(self.max_cols, int) or not 1 <= self.max_cols <= 1 << 20:
            raise ValueError(f"max cols must lie in 1..{1 << 20}, got {self.max_cols}")

    @property
    def preset_obj(self) -> Preset:
        return get_preset(self.preset)

    @property
    def blocks_per_beat(self) -> int:  # L
        return self.bus_bits // self.preset_obj.block_bits

    @property
    def seedlm(self) -> EngineShape:
        p = self.preset_obj
        return EngineShape(self.bus_bits, self.act_bits, self.blocks_per_beat * p.C, self.max_cols,
                           seedlm_y_bits_any(self.max_cols, self.act_bits, p))

    @property
    def baseline(self) -> EngineShape:
        return EngineShape(self.bus_bits, self.act_bits, self.bus_bits // BASELINE_WEIGHT_BITS, self.max_cols,
                           baseline_y_bits_any(self.max_cols, self.act_bits))


def seedlm_y_bits_any(max_cols: int, act_bits: int, preset: Preset) -> int:
    """Y width for ANY bits on the bus (|acc| <= P 2^(K+2), |a| <= 2^(A-1), x <= 15).

    At least `reference.seedlm_y_bits` (which bounds valid words only).
    """
    nb = blocks_per_row(max_cols, preset.C)
    acc_max = preset.P << (preset.K + 2)
    bound = nb * preset.C * acc_max * (1 << (act_bits - 1)) << 15
    return bound.bit_length() + 1


def baseline_y_bits_any(max_cols: int, act_bits: int) -> int:
    """|W a| <= cols * 2^15 * 2^(A-1) (as `reference.baseline_y_bits`)."""
    return (max_cols * (1 << 15) * (1 << (act_bits - 1))).bit_length() + 1
