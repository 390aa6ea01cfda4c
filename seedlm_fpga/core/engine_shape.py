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
#: Weight-image layouts a SeedLM engine can consume (format §5.3 `beat`, §5.4 `packed`).
IMAGE_LAYOUTS = ("beat", "packed")
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


def seedlm_stages(C: int, L: int, image: str = "beat") -> list[tuple[str, int]]:
    """Named SeedLM stages, weight-beat acceptance to Y valid; the cycles sum to latency_cycles.

    beat register, (packed image only: the block gearbox, gear), the LFSR bit stream (basis),
    the I_c * a_c products (prod, format §6.1), the C-term trees (dot), Q*X and the edge
    products (scale), their two groups (fold), the block dot and its exponent shift (shift),
    the L-lane tree, the row accumulator, the Y FIFO.
    """
    gear = [("gear", 1)] if image == "packed" else []
    return [("beat", 1), *gear, ("basis", 1), ("prod", 1), ("dot", tree_stages(C)), ("scale", 1), ("fold", 1),
            ("shift", 1), ("lanes", tree_stages(L)), ("row", ROW_LATENCY), ("fifo", FIFO_LATENCY)]


def baseline_stages(weights_per_beat: int) -> list[tuple[str, int]]:
    """Named 16-bit baseline stages: beat register, products, sum tree, row accumulator, Y FIFO."""
    return [("beat", 1), ("prod", 1), ("sum", tree_stages(weights_per_beat)),
            ("row", ROW_LATENCY), ("fifo", FIFO_LATENCY)]


def latency_of(stages: list[tuple[str, int]]) -> int:
    return sum(cycles for _, cycles in stages)


@dataclass(frozen=True)
class Packing:
    """The packed image's block gearbox (format §5.4): blocks of `block_bits`, `block_acts` (C)
    activations each, `lanes` = ceil(W / B) decoder lanes (the most blocks one beat can complete)."""

    block_bits: int         # B
    block_acts: int         # C
    lanes: int              # L' = ceil(W / B)


@dataclass(frozen=True)
class EngineShape:
    """What one engine's buses and buffer look like (SeedLM or baseline)."""

    weight_bits: int        # W
    act_bits: int           # A
    acts_per_word: int      # E: activations one weight beat meets (packed: L' * C, one bank row)
    max_cols: int
    y_bits: int
    packing: Packing | None = None  # the packed image (format §5.4); None: format §5.3 / §7

    @property
    def datapath_weight_bits(self) -> int:
        """Bits of weights the datapath takes per beat: W, or L' * B lane-aligned blocks (packed)."""
        return self.packing.lanes * self.packing.block_bits if self.packing else self.weight_bits

    @property
    def acts_per_beat(self) -> int:  # N
        return largest_divisor_at_most(self.acts_per_word, self.weight_bits // self.act_bits)

    @property
    def beats_per_word(self) -> int:  # G = E / N
        return self.acts_per_word // self.acts_per_beat

    @property
    def row_beats_ops(self) -> list[tuple[str, int]]:
        """R (weight beats per row, format §10 item 3) from cols, as steps the kernel builds in
        hardware: ceil(cols / E); packed: ceil(ceil(cols / C) * B / W)."""
        if self.packing:
            return [("ceil_div", self.packing.block_acts), ("mul", self.packing.block_bits),
                    ("ceil_div", self.weight_bits)]
        return [("ceil_div", self.acts_per_word)]

    def row_beats(self, cols: int) -> int:
        value = cols
        for op, k in self.row_beats_ops:
            value = -(-value // k) if op == "ceil_div" else value * k
        return value

    @property
    def buffer_words(self) -> int:
        """Activation-buffer depth: ceil(max_cols / E) words (at least 2: no 0-bit address).

        Packed: one word more, so that a lane past a row's last block (masked to the zero
        word) still reads an address inside the buffer.
        """
        return max(2, -(-self.max_cols // self.acts_per_word) + (1 if self.packing else 0))


@dataclass(frozen=True)
class DesignConfig:
    """One generated design: a SeedLM engine and the 16-bit baseline on the same bus."""

    preset: str = "seedlm-4"
    bus_bits: int = 512
    act_bits: int = 8
    max_cols: int = DEFAULT_MAX_COLS
    image: str = "beat"     # the SeedLM engine's weight image: "beat" (format §5.3) or "packed" (§5.4)

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
        if self.image not in IMAGE_LAYOUTS:
            raise ValueError(f"image layout must be one of {', '.join(IMAGE_LAYOUTS)}, got {self.image!r}")

    @property
    def preset_obj(self) -> Preset:
        return get_preset(self.preset)

    @property
    def blocks_per_beat(self) -> int:
        """Decoder lanes: L = floor(W / B) (beat image), or ceil(W / B) (packed: the most blocks
        that complete in one beat)."""
        return seedlm_lanes(self.bus_bits, self.preset_obj.block_bits, self.image)

    @property
    def seedlm(self) -> EngineShape:
        p = self.preset_obj
        packing = Packing(p.block_bits, p.C, self.blocks_per_beat) if self.image == "packed" else None
        return EngineShape(self.bus_bits, self.act_bits, self.blocks_per_beat * p.C, self.max_cols,
                           seedlm_y_bits_any(self.max_cols, self.act_bits, p), packing)

    @property
    def seedlm_stages(self) -> list[tuple[str, int]]:
        return seedlm_stages(self.preset_obj.C, self.blocks_per_beat, self.image)

    @property
    def baseline_stages(self) -> list[tuple[str, int]]:
        return baseline_stages(self.baseline.acts_per_word)

    @property
    def baseline(self) -> EngineShape:
        return EngineShape(self.bus_bits, self.act_bits, self.bus_bits // BASELINE_WEIGHT_BITS, self.max_cols,
                           baseline_y_bits_any(self.max_cols, self.act_bits))


def seedlm_lanes(bus_bits: int, block_bits: int, image: str = "beat") -> int:
    """Decoder lanes of a SeedLM engine: floor(W / B) (format §5.3) or ceil(W / B) (§5.4 packed)."""
    return -(-bus_bits // block_bits) if image == "packed" else bus_bits // block_bits


def seedlm_beats_per_row(cols: int, bus_bits: int, block_bits: int, C: int, image: str = "beat") -> int:
    """R, weight beats per row: ceil(nb / L) (format §5.3) or ceil(nb * B / W) (§5.4), nb = ceil(cols / C)."""
    nb = blocks_per_row(cols, C)
    if image == "packed":
        return -(-nb * block_bits // bus_bits)
    return -(-nb // (bus_bits // block_bits))


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


# --- the memory-mapped kernel (format §11) -----------------------------------------------------

#: AXI4 data widths the kernel's `m_axi_gmem` may have (format §11.1): powers of two.
KERNEL_BUS_BITS = (32, 64, 128, 256, 512, 1024)
#: `m_axi_io`: descriptors in, Y out, 64-bit words.
IO_BITS = 64
#: AXI4: an INCR burst has at most 256 beats and never crosses a 4 KB boundary.
AXI_MAX_BURST = 256
AXI_BOUNDARY = 4096
#: A descriptor is 32 bytes, four 64-bit words: weights address, Y address, rows (+ reserved).
DESCRIPTOR_WORDS = 4
MAX_ROWS = (1 << 24) - 1
#: Generation defaults: the read latency hidden at full rate (HBM/DDR answer in ~100-130 cycles
#: at 300 MHz) and the GEMVs one start may chain (a layer has at most 7).
DEFAULT_MEM_LATENCY = 128
DEFAULT_MAX_DESCRIPTORS = 16
#: Y-buffer rows of the kernel's extension unit (each half; a power of two >= Llama's 14,336).
DEFAULT_EXT_MAX_ROWS = 16384
#: `s_axi_control` (format §11.2): byte offsets of the 32-bit registers.
KERNEL_REGISTERS = {
    "CTRL": 0x00, "GIE": 0x04, "IER": 0x08, "ISR": 0x0C,
    "WEIGHTS": 0x10, "ACTS": 0x18, "Y": 0x20,           # 64-bit: low word, high word at +4
    "ROWS": 0x28, "COLS": 0x2C, "DESCRIPTORS": 0x30,    # DESCRIPTORS 64-bit
    "N_DESCRIPTORS": 0x38, "CYCLES": 0x40,
}
KERNEL_ADDRESS_BITS = 7
#: CTRL bits
AP_START, AP_DONE, AP_IDLE, AP_READY = 1, 2, 4, 8


def check_kernel_params(bus_bits: int, max_burst: int, mem_latency: int, max_descriptors: int) -> None:
    """Raise ValueError for kernel parameters format §11 does not allow."""
    if bus_bits not in KERNEL_BUS_BITS:
        raise ValueError(f"the kernel's memory bus must be an AXI4 data width (a power of two, 32..1024 "
                         f"bits), got W = {bus_bits}")
    limit = min(AXI_MAX_BURST, AXI_BOUNDARY * 8 // bus_bits)
    if not isinstance(max_burst, int) or not 1 <= max_burst <= limit:
        raise ValueError(f"max burst must lie in 1..{limit} beats at W = {bus_bits}, got {max_burst}")
    if not isinstance(mem_latency, int) or not 0 <= mem_latency <= 4096:
        raise ValueError(f"memory latency must lie in 0..4096 cycles, got {mem_latency}")
    if not isinstance(max_descriptors, int) or not 1 <= max_descriptors <= 1024:
        raise ValueError(f"max descriptors must lie in 1..1024, got {max_descriptors}")


def read_buffer_depth(mem_latency: int, max_burst: int) -> int:
    """Beats the kernel's read FIFO holds (and keeps in flight): the smallest power of two
    >= mem_latency + 2 * max_burst and >= mem_latency + max_burst + KERNEL_TIMING.credit_loop
    (a new burst needs max_burst free credits; a credit comes back `credit_loop` cycles after
    its beat arrived), so that bursts leave early enough for one beat per clock."""
    need = max(mem_latency + 2 * max_burst, mem_latency + max_burst + KERNEL_TIMING.credit_loop)
    depth = 1
    while depth < need:
        depth *= 2
    return depth


@dataclass(frozen=True)
class KernelTiming:
    """The kernel's fixed delays in cycles (format §11.4); the RTL asserts its own against them.

    launch:          cycle 0 (ap_start taken) -> the first `m_axi_gmem` AR handshake (acts)
    desc_launch:     cycle 0 -> the first `m_axi_io` AR handshake (descriptor list)
    desc_to_weights: the cycle descriptor d's word 0 arrives on `m_axi_io` R -> its weight AR
    read_fifo:       an R beat arrives -> the engine accepts it (read FIFO)
    done:            the last B handshake -> the first cycle CTRL reads ap_done = 1
    credit_loop:     an R beat arrives -> its credit can let a burst's AR be handshaken
    ext_row:         the extension unit takes a stream's first beat (cycle f) -> the row whose
                     sum stream word j completes may leave from f + ext_row + j (parse, MAC,
                     row count, its register)
    """

    launch: int = 5
    desc_launch: int = 3
    desc_to_weights: int = 7
    read_fifo: int = 2
    done: int = 2
    credit_loop: int = 4
    ext_row: int = 4


KERNEL_TIMING = KernelTiming()


def y_fifo_depth(latency_cycles: int, min_rows: int = 0) -> int:
    """The engine's Y FIFO (hdl.engine_core), and its row credits: the smallest power of two
    > latency + 2 (every row in flight has a place) and >= min_rows."""
    depth = 4
    while depth <= latency_cycles + 2 or depth < min_rows:
        depth *= 2
    return depth


def ext_y_rows(weights_per_beat: int) -> int:
    """Rows the engine of a kernel with the extension unit may run ahead of the Ys it sent (its Y
    FIFO's minimum depth): 2E. A stream's header and right factors (at most cols + 6 words) come
    before any row's sum, and 2E rows of R >= cols / E beats take at least 2 cols cycles, so the
    engine does not wait for them (format §11.4)."""
    return 2 * weights_per_beat


@dataclass(frozen=True)
class StreamTiming:
    """What format §11.4 needs of a GEMV's extension stream (`core.ext_stream.stream_timing`):
    per row, the index of the stream word that completes the row's sum, and the stream's
    64-bit `m_axi_io` beats (padding included)."""

    row_last_words: tuple[int, ...]
    io_beats: int


def kernel_cycles(act_beats: int, beats_per_row: int, latency_cycles: int, rows: list[int],
                  descriptors: bool, read_latency: int, write_latency: int,
                  timing: KernelTiming = KERNEL_TIMING, streams: list[StreamTiming | None] | None = None,
                  y_depth: int | None = None) -> int:
    """CYCLES of one start (format §11.4): ap_start taken (cycle 0) -> ap_done reads 1.

    For a memory answering every AR exactly `read_latency` cycles after its handshake (R beats
    in order, one per cycle, never paused), AR/AW/W always ready, B exactly `write_latency`
    cycles after the last W beat of its burst, and `read_latency` <= the kernel's mem_latency.
    rows: each GEMV's rows (one entry with descriptors=False: the registers' GEMV).
    The R stream is one beat per cycle from its first slot, except where a descriptor's weight
    AR leaves later than the previous image ends (start_d below).
    streams: per GEMV, its extension stream's timing or None (descriptors only); a row's Y
    then waits for the row's sum, the engine for row credits (`extension_last_y`; y_depth: the
    engine's Y FIFO depth, default `y_fifo_depth(latency_cycles)`).
    """
    slot = timing.launch + read_latency + act_beats       # first weight beat's R slot
    starts = []
    for d, r in enumerate(rows):
        if descriptors:
            arrives = timing.desc_launch + read_latency + DESCRIPTOR_WORDS * d
            slot = max(slot, arrives + timing.desc_to_weights + read_latency)
        starts.append(slot)
        slot += r * beats_per_row
    if streams and any(streams):
        firsts = [s + k * beats_per_row + timing.read_fifo for s, r in zip(starts, rows) for k in range(r)]
        acts_taken = timing.launch + read_latency + act_beats - 1 + timing.read_fifo
        last_y = extension_last_y(firsts, [f + beats_per_row - 1 for f in firsts], beats_per_row, latency_cycles,
                                  rows, acts_taken, read_latency, streams, timing, y_depth=y_depth)
        return last_y + write_latency + timing.done
    last_w_accepted = slot - 1 + timing.read_fifo
    return last_w_accepted + latency_cycles + write_latency + timing.done


def extension_last_y(row_first: list[float], row_last: list[float], beats_per_row: int, latency_cycles: int,
                     rows: list[int], acts_taken: float, read_latency: int, streams: list[StreamTiming | None],
                     timing: KernelTiming = KERNEL_TIMING, read_wait: float = 0,
                     y_depth: int | None = None) -> float:
    """The cycle the last Y leaves the extension unit (format §11.4, kernels with extension streams).

    row_first / row_last: per row of the start, in order, the earliest cycle the engine can take
    its first / last weight beat (the unstalled R schedule + read_fifo; a row started late takes
    its buffered beats one per clock); acts_taken: the cycle the last activation beat is taken;
    `read_wait`: a mean wait added to a stream's first beat (sim.cycle_model, paused memories).

    The unit takes stream e's first 64-bit beat at f_e = the latest of: its arrival + read_fifo
    (the stream's AR leaves desc_to_weights after its descriptor's word 0, after every descriptor
    word and every earlier stream's beat on m_axi_io R); the activations' last beat + 1; the
    previous stream's first beat + 2 per beat (a word per cycle); and, from the third stream on,
    the last Y of stream e - 2 + 1 (its Y-buffer half). Word j of the stream then completes in
    cycle f_e + 2 + j, and the row it ends may leave from f_e + ext_row + j. The engine takes a row's
    first weight beat no earlier than its R slot + read_fifo, the cycle after the previous row's
    last beat, and the cycle after the Y of the row `y_depth` rows back left (row credits);
    its Y is ready latency_cycles after the row's last beat, and Ys leave one per cycle.
    """
    t = timing
    depth = y_depth or y_fifo_depth(latency_cycles)
    n = len(rows)
    desc_end = t.desc_launch + read_latency + DESCRIPTOR_WORDS * n - 1
    acts_in = acts_taken + 1
    y_out: list[int] = []            # every row's Y, in order
    last_y_of_stream: list[int] = []
    accepted = -1                    # the previous row's last weight beat
    arrival = first = prev_beats = None
    for d, (r, stream) in enumerate(zip(rows, streams)):
        ready = None
        if stream is not None:
            arrives = t.desc_launch + read_latency + DESCRIPTOR_WORDS * d   # its descriptor's word 0
            arrival = max(arrives + t.desc_to_weights + read_latency + read_wait, desc_end + 1,
                          arrival + prev_beats if arrival is not None else 0)
            e = len(last_y_of_stream)
            # the unit takes a word per cycle: a 64-bit beat every IO_BITS / 32 cycles
            first = max(arrival + t.read_fifo, acts_in, first + IO_BITS // 32 * prev_beats if first is not None else 0,
                        last_y_of_stream[e - 2] + 1 if e >= 2 else 0)
            prev_beats = stream.io_beats
            ready = [first + t.ext_row + j for j in stream.row_last_words]
        for k in range(r):
            i = len(y_out)
            start = max(row_first[i], accepted + 1, y_out[i - depth] + 1 if i >= depth else 0)
            accepted = max(row_last[i], start + beats_per_row - 1)
            y = max(accepted + latency_cycles, y_out[-1] + 1 if y_out else 0, ready[k] if ready else 0)
            y_out.append(y)
        if stream is not None:
            last_y_of_stream.append(y_out[-1])
    return y_out[-1]


def kernel_cycles_for(cfg: DesignConfig, kind: str, cols: int, rows: list[int], descriptors: bool,
                      read_latency: int, write_latency: int, streams: list[StreamTiming | None] | None = None) -> int:
    """`kernel_cycles` for the SeedLM ("seedlm") or baseline ("baseline") kernel of `cfg`."""
    if kind == "seedlm":
        shape, lat = cfg.seedlm, latency_of(cfg.seedlm_stages)
    elif kind == "baseline":
        shape, lat = cfg.baseline, latency_of(cfg.baseline_stages)
    else:
        raise ValueError(f"kernel kind must be seedlm or baseline, got {kind!r}")
    return kernel_cycles(-(-cols // shape.acts_per_beat), shape.row_beats(cols), lat, rows, descriptors,
                         read_latency, write_latency, streams=streams,
                         y_depth=y_fifo_depth(lat, ext_y_rows(shape.acts_per_word)) if streams else None)
