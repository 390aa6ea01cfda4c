"""Engine-shape rules: the parameters fixed when Verilog is generated, and what follows from them.

This is the one home of the rules that the Amaranth engines build (hdl/) and the cycle model
(sim/cycle_model.py) counts: lanes, bus widths, activation beats, Y widths, and the pipeline
stages from a weight beat to its Y. numpy/stdlib only, so `project` loads no Amaranth.

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

#: Default max-cols: 28672 is the longest row of format §9 (Llama 2/3 70B down_proj); the
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


# --- pipeline stages (format §10: latency_cycles) ------------------------------------------------

#: Adder-tree levels per pipeline register: two 2-input adds of <= 48 bits per stage is
#: comfortable at 250-300 MHz on current FPGAs (one carry chain each).
LEVELS_PER_STAGE = 2
#: Output FIFO (Amaranth SyncFIFOBuffered): written in cycle t, readable in cycle t + 2.
FIFO_LATENCY = 2
#: The row accumulator registers Y once.
ROW_LATENCY = 1


def tree_stages(n_terms: int, levels_per_stage: int = LEVELS_PER_STAGE) -> int:
    """Registers of an adder tree over n terms: ceil(ceil(log2 n) / levels_per_stage)."""
    levels = max(0, (n_terms - 1).bit_length())
    return -(-levels // levels_per_stage)


def seedlm_stages(C: int, L: int) -> list[tuple[str, int]]:
    """Named SeedLM stages, weight-beat acceptance to Y valid; the cycles sum to latency_cycles.

    beat register, the LFSR bit stream (basis), the I_c * a_c products (prod, format §6.1),
    the C-term trees (dot), Q*X and the edge products (scale), their two groups (fold), the
    block dot and its exponent shift (shift), the L-lane tree, the row accumulator, the Y FIFO.
    """
    return [("beat", 1), ("basis", 1), ("prod", 1), ("dot", tree_stages(C)), ("scale", 1), ("fold", 1),
            ("shift", 1), ("lanes", tree_stages(L)), ("row", ROW_LATENCY), ("fifo", FIFO_LATENCY)]


def baseline_stages(weights_per_beat: int) -> list[tuple[str, int]]:
    """Named 16-bit baseline stages: beat register, products, sum tree, row accumulator, Y FIFO."""
    return [("beat", 1), ("prod", 1), ("sum", tree_stages(weights_per_beat)),
            ("row", ROW_LATENCY), ("fifo", FIFO_LATENCY)]


def latency_of(stages: list[tuple[str, int]]) -> int:
    return sum(cycles for _, cycles in stages)


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
    def seedlm_stages(self) -> list[tuple[str, int]]:
        return seedlm_stages(self.preset_obj.C, self.blocks_per_beat)

    @property
    def baseline_stages(self) -> list[tuple[str, int]]:
        return baseline_stages(self.baseline.acts_per_word)

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
