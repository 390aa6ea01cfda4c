"""The MAC array of a SeedLM beat, and the row accumulator shared by both engines.

`DotUnit` takes the L decoded blocks of one weight beat and the L*C activations they
meet, and returns the beat's contribution to Y[r] (format §6):

    prod   acc[l][c] * a[l*C + c]        (L*C signed multiplies: one DSP each)
    dot    d[l] = sum_c prod[l][c]       (adder tree, `pipeline.adder_tree`)
    shift  d[l] << x[l]                  (x in 0..15)
    lanes  sum over the L lanes          (adder tree)

`RowAccumulator` adds the beat sums of a row and emits Y[r] on the row's last beat.
Every width is derived from the bound of its inputs (any bit pattern), so no value can
overflow: `beat_sum_bits`, and the Y width chosen by the engine.
"""
from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from seedlm_fpga.core.reference import Preset
from seedlm_fpga.hdl.block_decoder import acc_bits, decoded_layout
from seedlm_fpga.core.engine_shape import ROW_LATENCY, tree_stages
from seedlm_fpga.hdl.pipeline import adder_tree, delay, sum_bits

MAX_SHIFT = 15  # x is a 4-bit code


def dot_input_layout(preset: Preset, L: int, act_bits: int) -> data.StructLayout:
    return data.StructLayout({
        "blocks": data.ArrayLayout(decoded_layout(preset), L),
        "acts": data.ArrayLayout(signed(act_bits), L * preset.C),
    })


def beat_sum_bits(preset: Preset, L: int, act_bits: int) -> int:
    d_bits = sum_bits(acc_bits(preset) + act_bits, preset.C)
    return sum_bits(d_bits + MAX_SHIFT, L)


class DotUnit(wiring.Component):
    """Ports: ``beat`` (L x (acc[C], x) and L*C activations) -> ``sum`` (signed, registered)."""

    def __init__(self, preset: Preset, L: int, act_bits: int):
        self.preset, self.L, self.act_bits = preset, L, act_bits
        self.latency = self.latency_for(preset.C, L)
        super().__init__({
            "beat": In(stream.Signature(dot_input_layout(preset, L, act_bits), always_ready=True)),
            "sum": Out(stream.Signature(signed(beat_sum_bits(preset, L, act_bits)), always_ready=True)),
        })

    @staticmethod
    def latency_for(C: int, L: int) -> int:
        return 1 + tree_stages(C) + 1 + tree_stages(L)  # prod, dot, shift, lanes

    @staticmethod
    def reference(acc, x, acts) -> int:
        """sum_l (sum_c acc[l][c] * a[l*C + c]) << x[l], exactly (Python ints)."""
        C = len(acc[0])
        return sum(sum(int(acc[l][c]) * int(acts[l * C + c]) for c in range(C)) << int(x[l])
                   for l in range(len(acc)))

    def elaborate(self, platform):
        m = Module()
        C, L = self.preset.C, self.L
        beat = self.beat.payload
        prod_bits = acc_bits(self.preset) + self.act_bits
        d_stages = tree_stages(C)

        lane_terms = []
        for lane in range(L):
            blk = beat.blocks[lane]
            prods = []
            for c in range(C):
                prod = Signal(signed(prod_bits), name=f"prod_{lane}_{c}")
                m.d.sync += prod.eq(blk.acc[c] * beat.acts[lane * C + c])
                prods.append(prod)
            d = adder_tree(m, prods, f"dot_{lane}_")
            x = delay(m, blk.x, 1 + d_stages, f"dot_x_{lane}")
            shifted = Signal(signed(Signal.like(d).shape().width + MAX_SHIFT), name=f"shift_{lane}")
            m.d.sync += shifted.eq(d << x)
            lane_terms.append(shifted)
        total = adder_tree(m, lane_terms, "lanes_")
        m.d.comb += [
            self.sum.payload.eq(total),
            self.sum.valid.eq(delay(m, self.beat.valid, self.latency, "sum_valid")),
        ]
        return m


def row_input_layout(sum_bits_: int) -> data.StructLayout:
    return data.StructLayout({"sum": signed(sum_bits_), "row_last": 1, "last": 1})


def y_layout(y_bits: int) -> data.StructLayout:
    return data.StructLayout({"data": signed(y_bits), "last": 1})


class RowAccumulator(wiring.Component):
    """Sums a row's beat sums; on ``row_last`` emits Y[r] (with ``last``) one cycle later.

    Ports: ``beat`` (sum, row_last, last) -> ``y`` (data, last). Both always ready: the
    engine guarantees room downstream (credits), so nothing here ever stalls.
    """

    latency = ROW_LATENCY

    def __init__(self, sum_bits_: int, y_bits: int):
        self.y_bits = y_bits
        super().__init__({
            "beat": In(stream.Signature(row_input_layout(sum_bits_), always_ready=True)),
            "y": Out(stream.Signature(y_layout(y_bits), always_ready=True)),
        })

    def elaborate(self, platform):
        m = Module()
        row_sum = Signal(signed(self.y_bits))
        total = Signal(signed(self.y_bits))
        m.d.comb += total.eq(row_sum + self.beat.payload.sum)
        m.d.sync += self.y.valid.eq(0)
        with m.If(self.beat.valid):
            with m.If(self.beat.payload.row_last):
                m.d.sync += [
                    row_sum.eq(0),
                    self.y.valid.eq(1),
                    self.y.payload.data.eq(total),
                    self.y.payload.last.eq(self.beat.payload.last),
                ]
            with m.Else():
                m.d.sync += row_sum.eq(total)
        return m
