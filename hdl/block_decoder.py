"""`BlockDecoder`: one format §5.2 block word -> the C exact integers acc[c] of format §6.

    acc[c] = sum_p S[c][p] * q_p,   S[c][p] = (state c*P + p + 1 after seed) - 2^(K-1)

Pipeline (one block word per cycle, no stalls; latency `BlockDecoder.latency` = 3):

    basis  the LFSR's C*P states (unrolled GF(2) map, `LFSR`), registered. S is the
           state with its top bit inverted read as two's complement: no logic.
    sq     the P products S[c][p] * q_p per c, as shift-adds of S selected by the bits
           of q (`times_q`): LUTs and carry chains, never a DSP block.
    acc    their sum acc[c].

Widths hold any bit pattern, not only valid words: S in [-2^(K-1), 2^(K-1) - 1] (an
all-zero word has seed 0, S = -2^(K-1), q = 0) and q in [-8, 7], so
|acc| <= P * 2^(K+2): `acc_bits`. The exponent code x travels along, delayed to match.
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from seedlm_fpga.core.reference import Preset, block_acc
from seedlm_fpga.hdl.lfsr import LFSR
from seedlm_fpga.hdl.pipeline import balanced_sum, delay


def block_word_layout(preset: Preset) -> data.StructLayout:
    """format §5.2, little-endian fields: seed [0, K), x [K, K+4), q_0 .. q_(P-1) 4 bits each."""
    return data.StructLayout({
        "seed": preset.K,
        "x": 4,
        "q": data.ArrayLayout(signed(4), preset.P),
    })


def acc_bits(preset: Preset) -> int:
    """Signed width of acc[c] for any block word: |acc| <= P * 2^(K-1) * 8."""
    return (preset.P * (1 << (preset.K + 2))).bit_length() + 1


def decoded_layout(preset: Preset) -> data.StructLayout:
    return data.StructLayout({
        "acc": data.ArrayLayout(signed(acc_bits(preset)), preset.C),
        "x": 4,
    })


def times_q(S, q):
    """S * q for a 4-bit two's-complement q: S*q0 + 2S*q1 + 4S*q2 - 8S*q3 (two adder levels)."""
    def bit(i):
        return Mux(q[i], S << i, 0)
    return (bit(0) + bit(1)) + (bit(2) - bit(3))


class BlockDecoder(wiring.Component):
    """Ports: ``block`` (stream of block words, always ready) -> ``decoded`` (acc[C], x)."""

    latency = LFSR.latency + 2  # basis, sq, acc

    def __init__(self, preset: Preset):
        self.preset = preset
        super().__init__({
            "block": In(stream.Signature(block_word_layout(preset), always_ready=True)),
            "decoded": Out(stream.Signature(decoded_layout(preset), always_ready=True)),
        })

    @staticmethod
    def reference(seed: int, x: int, q, preset: Preset) -> tuple[list[int], int]:
        """(acc[C], x) the decoder must produce (numpy reference: `block_acc`)."""
        return [int(v) for v in block_acc(seed, q, preset)], x

    def elaborate(self, platform):
        m = Module()
        K, C, P = self.preset.K, self.preset.C, self.preset.P
        blk = self.block.payload

        # basis: C*P states after the seed (valid words never hold seed 0; a zero word
        # has q = 0, so its all-zero "states" are harmless).
        lfsr = m.submodules.lfsr = LFSR(K, self.preset.taps, C * P)
        m.d.comb += [lfsr.seed.payload.eq(blk.seed), lfsr.seed.valid.eq(self.block.valid)]
        basis_q = delay(m, blk.q, 1, "basis_q")
        basis_x = delay(m, blk.x, 1, "basis_x")

        def S(c, p):  # top bit inverted, two's complement: S = V - 2^(K-1)
            state = lfsr.states.payload[c * P + p]
            return (state ^ (1 << (K - 1))).as_signed()

        # sq: S[c][p] * q_p
        sq = [[Signal(signed(K + 4), name=f"sq_{c}_{p}") for p in range(P)] for c in range(C)]
        for c in range(C):
            for p in range(P):
                m.d.sync += sq[c][p].eq(times_q(S(c, p), basis_q[p]))
        sq_x = delay(m, basis_x, 1, "sq_x")

        # acc: sum over p
        for c in range(C):
            m.d.sync += self.decoded.payload.acc[c].eq(balanced_sum(sq[c]))
        m.d.sync += self.decoded.payload.x.eq(sq_x)
        m.d.comb += self.decoded.valid.eq(delay(m, lfsr.states.valid, 2, "decoded_valid"))
        return m
