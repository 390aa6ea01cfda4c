"""`BlockDecoder`: one format §5.2 block word -> the LFSR bit window of its block (format §6.1).

The engine never forms S or acc[c] (format §6.1): the block dot is computed from the bit
stream z_1 .. z_(C*P+K-1) that the C*P states after the seed are windows of, so one block
costs C*P + K - 1 register bits here instead of C*P*K (state i + 1 after the seed is
bits [i, i + K) of ``z``). Lane c reads bits [c*P, c*P + K + P - 1).

Pipeline (one block word per cycle, no stalls; latency `BlockDecoder.latency` = 1):

    basis  z: each feedback bit an XOR of seed bits (the unrolled GF(2) map of `hdl.lfsr`,
           one LUT level or two for K = 16), registered with q and x.

Datapath registers have no reset (format §10: only control is reset); ``decoded.valid``
has one.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from seedlm_fpga.core.factorized import bit_stream
from seedlm_fpga.core.reference import Preset
from seedlm_fpga.hdl.lfsr import sequence_masks, xor_of


def block_word_layout(preset: Preset) -> data.StructLayout:
    """format §5.2, little-endian fields: seed [0, K), x [K, K+4), q_0 .. q_(P-1) 4 bits each."""
    return data.StructLayout({
        "seed": preset.K,
        "x": 4,
        "q": data.ArrayLayout(signed(4), preset.P),
    })


def acc_bits(preset: Preset) -> int:
    """Signed width that holds acc[c] for any block word: |acc| <= P * 2^(K-1) * 8."""
    return (preset.P * (1 << (preset.K + 2))).bit_length() + 1


def stream_bits(preset: Preset) -> int:
    """z_1 .. z_(C*P+K-1): the bits the C*P states after the seed are made of."""
    return preset.C * preset.P + preset.K - 1


def decoded_layout(preset: Preset) -> data.StructLayout:
    return data.StructLayout({
        "z": stream_bits(preset),
        "q": data.ArrayLayout(signed(4), preset.P),
        "x": 4,
    })


class BlockDecoder(wiring.Component):
    """Ports: ``block`` (stream of block words, always ready) -> ``decoded`` (z, q, x)."""

    latency = 1  # basis

    def __init__(self, preset: Preset):
        self.preset = preset
        super().__init__({
            "block": In(stream.Signature(block_word_layout(preset), always_ready=True)),
            "decoded": Out(stream.Signature(decoded_layout(preset), always_ready=True)),
        })

    @staticmethod
    def reference(seed: int, x: int, q, preset: Preset) -> tuple[int, list[int], int]:
        """(z as an integer, bit i = z_(i+1); q; x): what ``decoded`` must carry (any seed, 0 too)."""
        z = bit_stream(seed, stream_bits(preset) + 1, preset.K, preset.taps)[1:]
        return sum(b << i for i, b in enumerate(z)), [int(v) for v in q], int(x)

    def elaborate(self, platform):
        m = Module()
        K, C, P = self.preset.K, self.preset.C, self.preset.P
        blk = self.block.payload
        n_feedback = C * P  # z_K .. z_(K + C*P - 1)
        masks = sequence_masks(K, self.preset.taps, n_feedback)
        feedback = Signal(n_feedback, name="basis_feedback")
        for n in range(n_feedback):
            m.d.comb += feedback[n].eq(xor_of(blk.seed, masks[K + n]))
        z = Cat(blk.seed, feedback)  # z_0 .. z_(K + C*P - 1)
        basis = Signal(decoded_layout(self.preset), name="basis", reset_less=True)
        m.d.sync += [basis.z.eq(z[1:]), basis.q.eq(blk.q), basis.x.eq(blk.x)]
        m.d.comb += self.decoded.payload.eq(basis)
        m.d.sync += self.decoded.valid.eq(self.block.valid)
        return m
