"""Cycle model of one GEMV pass on the SeedLM and 16-bit baseline engines.

Derived from the RTL's structure (hdl/engine_core.py, gemv_engine.py, baseline_engine.py),
not fitted. Both engines share `GemvCore`: activation beats first, then one weight beat per
clock (the core never stalls with the output ready), then the pipeline drains:

    cycles = ceil(cols / N) + rows * R + latency

  N        activations per beat, E = L*C (SeedLM, L = floor(W / B)) or W/16 (baseline);
           the packed image (format §5.4): E = L'*C with L' = ceil(W / B) decoder lanes,
  R        weight beats per row = ceil(cols / E) (format §5.3 / §7), or, packed,
           ceil(nb * B / W) with nb = ceil(cols / C) (the beat that completes the row's
           last block ends the row), and
  latency  the sum of the engine's pipeline stages:
all from seedlm_fpga.core.engine_shape, the rules the Amaranth engines are built from.
tests/test_cycle_model.py checks the model against Verilator cycle counts.

A memory that delivers a weight beat in a given cycle with probability e (its sustained
efficiency; the co-simulation's throttle) makes the weight phase last rows * R / e cycles
on average: the engine is ready every cycle of that phase, so every empty cycle is lost.

`KernelCycleModel` (`kernel_models`) counts a start of the memory-mapped kernel around the
engine (format §11.4: launch, read latency, activation load, descriptors, extension streams,
weights, write-back, from `core.engine_shape.kernel_cycles`); with read credits that bind, memory
pauses or output back-pressure it walks the read path at mean delays (sim/read_path_model.py).
tests/test_kernel_cosim.py and tests/test_ext_kernel.py hold it to Verilator within 1%.
"""
from __future__ import annotations

from dataclasses import dataclass

from seedlm_fpga.core.engine_shape import (BASELINE_WEIGHT_BITS, DEFAULT_MEM_LATENCY, DESCRIPTOR_WORDS, IMAGE_LAYOUTS,
                                           KERNEL_TIMING, StreamTiming, baseline_stages, ext_y_rows, extension_last_y,
                                           kernel_cycles, largest_divisor_at_most, latency_of, read_buffer_depth,
                                           seedlm_beats_per_row, seedlm_lanes, seedlm_stages, y_fifo_depth)
from seedlm_fpga.core.reference import PRESETS
from seedlm_fpga.sim.read_path_model import Segment, accept_times

ENGINES = ("seedlm", "baseline")


@dataclass(frozen=True)
class CycleModel:
    """Cycles of one GEMV (rows, cols) on one engine of a design (bus W, activations A bits).

    `engine` is "seedlm" (then `preset` names its blocks and `image` the layout it streams,
    format §5.3 "beat" or §5.4 "packed") or "baseline" (16-bit weights, `image` ignored).
    """

    engine: str
    bus_bits: int
    act_bits: int = 8
    preset: str = "seedlm-4"
    image: str = "beat"

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if self.image not in IMAGE_LAYOUTS:
            raise ValueError(f"image must be one of {IMAGE_LAYOUTS}, got {self.image!r}")
        if self.engine == "seedlm" and self.blocks_per_beat < 1:
            raise ValueError(f"a {self.bus_bits}-bit bus cannot hold one {self.preset} block")
        if self.engine == "baseline" and self.bus_bits < BASELINE_WEIGHT_BITS:
            raise ValueError(f"a {self.bus_bits}-bit bus cannot hold one 16-bit weight")

    @property
    def format(self) -> str:
        """The weight format this engine streams: "fp16" or the preset's name."""
        return "fp16" if self.engine == "baseline" else self.preset

    @property
    def blocks_per_beat(self) -> int:  # L, or L' = ceil(W / B) decoder lanes (packed); SeedLM only
        return seedlm_lanes(self.bus_bits, PRESETS[self.preset].block_bits, self.image)

    @property
    def weights_per_beat(self) -> int:  # E
        if self.engine == "baseline":
            return self.bus_bits // BASELINE_WEIGHT_BITS
        return self.blocks_per_beat * PRESETS[self.preset].C

    @property
    def acts_per_beat(self) -> int:  # N
        return largest_divisor_at_most(self.weights_per_beat, self.bus_bits // self.act_bits)

    @property
    def latency(self) -> int:
        """Cycles from the accepting cycle of a row's last weight beat to its Y (hdl latency_cycles)."""
        if self.engine == "baseline":
            return latency_of(baseline_stages(self.weights_per_beat))
        return latency_of(seedlm_stages(PRESETS[self.preset].C, self.blocks_per_beat, self.image))

    def beats_per_row(self, cols: int) -> int:  # R
        if self.engine == "seedlm":
            p = PRESETS[self.preset]
            return seedlm_beats_per_row(cols, self.bus_bits, p.block_bits, p.C, self.image)
        return -(-cols // self.weights_per_beat)

    def act_beats(self, cols: int) -> int:
        return -(-cols // self.acts_per_beat)

    def weight_beats(self, rows: int, cols: int) -> int:
        return rows * self.beats_per_row(cols)

    def image_bytes(self, rows: int, cols: int) -> int:
        """Bytes of the memory image streamed for this GEMV (format §5.3 / §5.4: padding and waste included)."""
        return self.weight_beats(rows, cols) * self.bus_bits // 8

    def bits_per_weight(self, cols: int) -> float:
        """Effective bits per weight: R * W / cols."""
        return self.beats_per_row(cols) * self.bus_bits / cols

    def breakdown(self, rows: int, cols: int, efficiency: float = 1.0,
                  act_efficiency: float = 1.0) -> dict[str, float]:
        """Cycles by cause: activation load, weight beats, memory stalls, pipeline latency.

        `efficiency` e: the chance that the memory offers a weight beat in a cycle, so each
        beat takes 1/e cycles on average. `act_efficiency` does the same for activation beats
        after the first (which starts the count); activations normally come from on-chip
        buffers (1.0), the co-simulation's throttle slows both streams alike.
        """
        for name, e in (("efficiency", efficiency), ("act_efficiency", act_efficiency)):
            if not 0 < e <= 1:
                raise ValueError(f"{name} must lie in (0, 1], got {e}")
        beats = self.weight_beats(rows, cols)
        acts = self.act_beats(cols)
        return {"act": 1 + (acts - 1) / act_efficiency if acts else 0, "weights": beats,
                "stalls": beats / efficiency - beats, "latency": self.latency}

    def cycles(self, rows: int, cols: int, efficiency: float = 1.0, act_efficiency: float = 1.0) -> float:
        """Cycles of one pass, first act beat to last Y (exact at efficiency 1, the mean below)."""
        return sum(self.breakdown(rows, cols, efficiency, act_efficiency).values())


def design_models(preset: str = "seedlm-4", bus_bits: int = 512, act_bits: int = 8,
                  image: str = "beat") -> dict[str, CycleModel]:
    """The two engines of one generated design (hdl.config.DesignConfig), by format."""
    seed = CycleModel("seedlm", bus_bits, act_bits, preset, image)
    base = CycleModel("baseline", bus_bits, act_bits, preset)
    return {seed.format: seed, "fp16": base}


@dataclass(frozen=True)
class KernelCycleModel:
    """CYCLES of one start of the memory-mapped kernel (format §11.4) around `engine`'s core.

    With an unpaused memory whose latency the read credits hide, the count is exactly
    `core.engine_shape.kernel_cycles` (launch, L_r, activation beats, descriptors, extension
    streams, weight beats, read FIFO, engine latency, L_w, done). Otherwise the read stream is
    walked beat by beat with every random delay at its mean (`sim.read_path_model`):

    - credits: a burst of B = `max_burst` beats leaves only with B free places of the
      `read_buffer` (D, format §11.3); a place comes back `credit_loop` cycles after its beat was
      taken, so a memory slower than the kernel was sized for (L_r + B + credit_loop > D) caps
      the stream below one beat per clock;
    - memory pauses: an R channel paused in a cycle with probability p makes each beat wait
      p / (1 - p) cycles on average;
    - output back-pressure (W and B paused with probability q): one Y word per R weight beats must
      get through W, so weight beats take at least 1 / (R (1 - q)) cycles each, and the last Y's
      W beat and its B wait q / (1 - q) cycles each on average;
    - extension streams: the walk's per-row times go through §11.4's recurrence
      (`extension_last_y`), each stream's first beat waiting p / (1 - p) more on average.
    """

    engine: CycleModel
    mem_latency: int
    max_burst: int

    @property
    def read_buffer(self) -> int:
        return read_buffer_depth(self.mem_latency, self.max_burst)

    @property
    def ext_y_depth(self) -> int:
        """The engine's Y FIFO in a kernel with the extension unit (format §11.4)."""
        return y_fifo_depth(self.engine.latency, ext_y_rows(self.engine.weights_per_beat))

    def latency_hidden(self, read_latency: int) -> bool:
        """Whether the credits let one beat per clock through at read latency L_r (format §11.3)."""
        room = self.read_buffer // self.max_burst * self.max_burst
        return read_latency + self.max_burst - 1 + KERNEL_TIMING.credit_loop <= room

    def cycles(self, cols: int, rows: list[int], descriptors: bool, read_latency: int, write_latency: int,
               read_gap: float = 0.0, write_gap: float = 0.0,
               streams: list[StreamTiming | None] | None = None) -> float:
        """CYCLES for GEMVs of `rows` sharing `cols` (exact with no pauses and hidden latency).

        `streams`: each GEMV's extension stream (`core.ext_stream.stream_timing`, format §11.4) or
        None; read on m_axi_io beside the weights, so under pauses only its first beat waits more.
        """
        for name, p in (("read_gap", read_gap), ("write_gap", write_gap)):
            if not 0 <= p < 1:
                raise ValueError(f"{name} must lie in [0, 1), got {p}")
        R, acts = self.engine.beats_per_row(cols), self.engine.act_beats(cols)
        if read_gap == write_gap == 0 and self.latency_hidden(read_latency):  # integers: the exact formula
            return kernel_cycles(acts, R, self.engine.latency, rows, descriptors, read_latency, write_latency,
                                 streams=streams, y_depth=self.ext_y_depth)
        t = KERNEL_TIMING
        wait = read_gap / (1 - read_gap)
        segments = [Segment(acts)]
        for d, r in enumerate(rows):
            # descriptor d's word 0 arrives on m_axi_io (paused like gmem), then its weights may leave
            earliest = (t.desc_launch + read_latency + wait + DESCRIPTOR_WORDS * d / (1 - read_gap)
                        + t.desc_to_weights) if descriptors else 0.0
            segments.append(Segment(r * R, max(1.0, 1 / (R * (1 - write_gap))), earliest))
        taken = accept_times(segments, depth=self.read_buffer, max_burst=self.max_burst, read_latency=read_latency,
                             pause=read_gap, first_ar=t.launch)
        if streams and any(streams):
            firsts, lasts = taken[acts::R], taken[acts + R - 1::R]
            last_y = extension_last_y(firsts, lasts, R, self.engine.latency, rows, taken[acts - 1], read_latency,
                                      streams, read_wait=wait, y_depth=self.ext_y_depth)
        else:
            last_y = taken[-1] + self.engine.latency
        late_write = 2 * write_gap / (1 - write_gap)  # the last W beat and its B, each paused
        return last_y + write_latency + late_write + t.done


def kernel_models(preset: str = "seedlm-4", bus_bits: int = 512, act_bits: int = 8, image: str = "beat",
                  mem_latency: int = DEFAULT_MEM_LATENCY, max_burst: int | None = None) -> dict[str, KernelCycleModel]:
    """Both kernels of one generated design (format §11), by format; max_burst None: the generator's default."""
    if max_burst is None:
        from seedlm_fpga.hdl.kernel import default_max_burst
        max_burst = default_max_burst(bus_bits)
    return {fmt: KernelCycleModel(m, mem_latency, max_burst)
            for fmt, m in design_models(preset, bus_bits, act_bits, image).items()}
