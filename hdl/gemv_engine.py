"""`GemvEngine`: the SeedLM GEMV engine of format §10 (Y = W_hat a, exact integers, format §6).

Ports (lib.stream; `axi_top.AxiStreamTop` renames them to the AXI4-Stream names):
``cols``; ``act`` = s_axis_act (N activations of A bits per beat, {data, last});
``w`` = s_axis_w (the format §5.3 memory image, W bits per beat, {data, last});
``y`` = m_axis_y (one signed Y[r] per transfer, {data, last}).

Each weight beat holds L = floor(W / B) block words; all L are decoded and multiplied in
the beat's cycle (L `BlockDecoder` lanes and a `DotUnit`), so the engine takes one
weight beat per clock: the bus is the only limit. Nothing is time-multiplexed: on the
narrow buses of small boards (W = 32..64 bits) L is 1 or 2 and a lane is already small.
W >= B is required: a narrower bus (e.g. 16 bits) cannot carry one block word in a
format §5.3 image. Generated with ``image = "packed"`` the engine streams the format §5.4
image instead (blocks back to back across beats): `GemvCore`'s block gearbox hands
L = ceil(W / B) lane-aligned blocks to the same datapath, one beat per clock, after one
more register (stage ``gear``); R = ceil(nb * B / W) beats per row.

Pipeline (stage names are the register names in the Verilog), per weight beat:

    beat    weight beat + its activation word (buffer read)        1
    basis   LFSR bit stream z of all L blocks (GF(2) map)          1
    prod    I_c * a_c (format §6.1), masked sums begin             1
    dot     X, B_m, sum a: adder trees over C (2 levels/register)  ceil(ceil(log2 C) / 2)
    scale   Q*X and the 2P - 1 small edge products                 1
    fold    low and high groups (<= 4 terms each)                  1
    shift   d = lo + (hi << (K-P+1)), d << x                       1
    lanes   adder tree over L  (2 levels per register)             ceil(ceil(log2 L) / 2)
    row     row accumulator: Y[r] on the row's last beat           1
    fifo    output FIFO (write -> valid)                           2

Exact timing without stalls (cycle 0 = the cycle the first act beat is accepted),
with nA = ceil(cols / N) act beats and R = ceil(cols / (L*C)) weight beats per row:
the first weight beat can be accepted in cycle nA (the cycle after the act beat with
tlast), weight beats arrive back to back, and Y[r] is valid `latency_cycles` cycles
after the cycle its row's last weight beat was accepted. The last Y transfer therefore
happens in cycle nA + rows*R + latency_cycles - 1:

    total cycles = ceil(cols / N) + rows * ceil(cols / (L*C)) + latency_cycles

e.g. W = 512, seedlm-4, int8: N = 64, L*C = 128, latency 13; 2048 x 2048 takes
32 + 32,768 + 13 = 32,813 cycles (the 16-bit baseline: 64 + 131,072 + 8 = 131,144).
"""
from __future__ import annotations

from amaranth.hdl import Module, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from seedlm_fpga.core.reference import gemv_seedlm
from seedlm_fpga.hdl.block_decoder import BlockDecoder
from seedlm_fpga.core.engine_shape import DesignConfig, latency_of
from seedlm_fpga.hdl.dot_unit import DotUnit, beat_sum_bits
from seedlm_fpga.hdl.engine_core import GemvCore, datapath_input_layout
from seedlm_fpga.hdl.pipeline import delay


class SeedLMBeat(wiring.Component):
    """One weight beat -> its contribution to Y[r]: L decoders feeding a `DotUnit`."""

    def __init__(self, cfg: DesignConfig):
        self.cfg = cfg
        self.preset = cfg.preset_obj
        self.L = cfg.blocks_per_beat
        self.latency = self.latency_for(cfg)
        super().__init__({
            "beat": In(stream.Signature(datapath_input_layout(cfg.seedlm), always_ready=True)),
            "sum": Out(stream.Signature(signed(beat_sum_bits(self.preset, self.L, cfg.act_bits)),
                                        always_ready=True)),
        })

    @staticmethod
    def latency_for(cfg: DesignConfig) -> int:
        return BlockDecoder.latency + DotUnit.latency_for(cfg.preset_obj.C, cfg.blocks_per_beat)

    def elaborate(self, platform):
        m = Module()
        B = self.preset.block_bits
        m.submodules.dot = dot = DotUnit(self.preset, self.L, self.cfg.act_bits)
        for lane in range(self.L):
            dec = m.submodules[f"decoder_{lane}"] = BlockDecoder(self.preset)
            m.d.comb += [
                dec.block.valid.eq(self.beat.valid),
                dec.block.payload.eq(self.beat.payload.w[lane * B:(lane + 1) * B]),
                dot.beat.payload.blocks[lane].eq(dec.decoded.payload),
            ]
            if lane == 0:
                m.d.comb += dot.beat.valid.eq(dec.decoded.valid)
        # activations wait for the decoders
        m.d.comb += [
            dot.beat.payload.acts.eq(delay(m, self.beat.payload.acts, BlockDecoder.latency, "acts",
                                           reset_less=True)),
            self.sum.payload.eq(dot.sum.payload),
            self.sum.valid.eq(dot.sum.valid),
        ]
        return m


class GemvEngine(GemvCore):
    """The SeedLM engine for `cfg` (a `DesignConfig`): see the module docstring."""

    def __init__(self, cfg: DesignConfig, keep_acts: bool = False, min_y_rows: int = 0):
        self.cfg = cfg
        super().__init__(cfg.seedlm, lambda: SeedLMBeat(cfg), SeedLMBeat.latency_for(cfg),
                         keep_acts, min_y_rows)
        assert self.latency_cycles == latency_of(cfg.seedlm_stages), "hdl and core.engine_shape disagree"

    def pipeline_stages(self) -> list[dict]:
        """Named stages from weight-beat acceptance to Y valid; cycles sum to latency_cycles."""
        return [{"name": n, "cycles": c} for n, c in self.cfg.seedlm_stages]

    @staticmethod
    def reference(seeds, x, q, acts, preset):
        """Y[r] the engine must produce (numpy reference `gemv_seedlm`)."""
        return gemv_seedlm(seeds, x, q, acts, preset)
