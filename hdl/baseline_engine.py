"""`BaselineEngine`: the 16-bit GEMV engine of format §7, same ports and control as `GemvEngine`.

Each W-bit weight beat carries W/16 int16 weights of one row (rows start on fresh beats,
tail zero), so it meets E = W/16 activations: word k of the activation buffer. The
datapath is W/16 multipliers and an adder tree; the rest (`GemvCore`) is shared with
the SeedLM engine, so the two differ only in what one beat of the same bus is worth.

Pipeline: beat 1, prod 1 (`hdl.dsp48e2.registered_product`, as in the SeedLM engine),
sum ceil(log2(W/16) / 2), row 1, fifo 2.
Timing without stalls: total cycles = ceil(cols / N) + rows * ceil(cols / (W/16)) + latency_cycles
(cycle 0 = the first act beat accepted; see `engine_core`).
"""
from __future__ import annotations

from amaranth.hdl import Module, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from seedlm_fpga.core.reference import gemv_baseline
from seedlm_fpga.core.engine_shape import BASELINE_WEIGHT_BITS, DesignConfig, latency_of, tree_stages
from seedlm_fpga.hdl.dsp48e2 import registered_product
from seedlm_fpga.hdl.engine_core import GemvCore, datapath_input_layout
from seedlm_fpga.hdl.pipeline import adder_tree, delay, sum_bits


class BaselineBeat(wiring.Component):
    """One beat of W/16 int16 weights x W/16 activations -> their dot product."""

    def __init__(self, cfg: DesignConfig):
        self.shape = cfg.baseline
        self.n = self.shape.acts_per_word
        self.latency = self.latency_for(cfg)
        self.prod_bits = BASELINE_WEIGHT_BITS + cfg.act_bits
        super().__init__({
            "beat": In(stream.Signature(datapath_input_layout(self.shape), always_ready=True)),
            "sum": Out(stream.Signature(signed(sum_bits(self.prod_bits, self.n)), always_ready=True)),
        })

    @staticmethod
    def latency_for(cfg: DesignConfig) -> int:
        return 1 + tree_stages(cfg.baseline.acts_per_word)  # prod, sum

    def elaborate(self, platform):
        m = Module()
        w = self.beat.payload.w
        prods = []
        for i in range(self.n):
            weight = w[i * BASELINE_WEIGHT_BITS:(i + 1) * BASELINE_WEIGHT_BITS].as_signed()
            prod = registered_product(m, weight, self.beat.payload.acts[i], f"prod_{i}", platform)
            assert len(prod) == self.prod_bits
            prods.append(prod)
        m.d.comb += [
            self.sum.payload.eq(adder_tree(m, prods, "sum_")),
            self.sum.valid.eq(delay(m, self.beat.valid, self.latency, "sum_valid")),
        ]
        return m


class BaselineEngine(GemvCore):
    """The 16-bit baseline engine for `cfg` (bus, activation bits and max-cols of `cfg`)."""

    def __init__(self, cfg: DesignConfig, keep_acts: bool = False):
        self.cfg = cfg
        super().__init__(cfg.baseline, lambda: BaselineBeat(cfg), BaselineBeat.latency_for(cfg),
                         keep_acts)
        assert self.latency_cycles == latency_of(cfg.baseline_stages), "hdl and core.engine_shape disagree"

    def pipeline_stages(self) -> list[dict]:
        """Named stages from weight-beat acceptance to Y valid; cycles sum to latency_cycles."""
        return [{"name": n, "cycles": c} for n, c in self.cfg.baseline_stages]

    @staticmethod
    def reference(weights, acts):
        """Y[r] the engine must produce (numpy reference `gemv_baseline`)."""
        return gemv_baseline(weights, acts)
