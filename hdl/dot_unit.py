"""The factorized MAC array of a SeedLM beat (format §6.1), and the row accumulator of both engines.

`DotUnit` takes the L decoded blocks of one weight beat (`BlockDecoder`: the LFSR bit
stream z, q, x) and the L*C activations they meet, and returns the beat's contribution
to Y[r] = sum_l d[l] << x[l] (format §6), with each block dot computed as format §6.1:

    d = Q*X + sum_low w_m B_m + 2^(K-P+1) * (sum_j h_j B_(K+j) - 2^(P-2) (sum q)(sum a))

    X   = sum_c I_c a_c     I_c: the K-P+1 interior bits of lane c's window, unsigned
    B_m = sum_c u_(c,m) a_c (masked activation sums, one per edge position; sum a likewise)
    Q   = sum_p q_p 2^(P-1-p),  w_m (low edges),  h_j = w_(K+j) / 2^(K-P+1) (high edges)

Stages (register names in the Verilog):

    prod   I_c * a_c, registered (C per lane; `hdl.dsp48e2.registered_product`: on
           UltraScale+ a DSP48E2 with its P register); the masked sums B_m and sum a
           start here: the pair sums a_2i + a_2i+1, each B_m's 4:1 choice per pair
           (0, a_2i, a_2i+1 or the pair sum) and one adder level
    dot    adder trees over C (2 levels per register); in the last dot cycle Q, w_m, h_j
           and -2^(P-2) sum q are formed from the delayed q and registered
    scale  Q*X, w_m*B_m, h_j*B_(K+j), (-2^(P-2) sum q) * sum a, registered (DSPs as in prod)
    fold   the low group and the high group, each <= 4 terms (2 levels), registered
    shift  d = lo + (hi << (K-P+1)), then d << x
    lanes  adder tree over the L lanes

Latency 1 + T(C) + 3 + T(L) after the decoders' 1: the same as the S*q design it
replaces. Every register holds its value's full range for any bit pattern on the bus
(Amaranth widens every + and *; d fits `d_bits`, checked by the tests' extremes).
Datapath registers have no reset; only the valid line does.
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from seedlm_fpga.core.reference import Preset
from seedlm_fpga.hdl.block_decoder import acc_bits, decoded_layout
from seedlm_fpga.hdl.dsp48e2 import registered_product
from seedlm_fpga.core.engine_shape import LEVELS_PER_STAGE, ROW_LATENCY, tree_stages
from seedlm_fpga.hdl.pipeline import adder_tree, delay, staged_sum, sum_bits

MAX_SHIFT = 15  # x is a 4-bit code


def dot_input_layout(preset: Preset, L: int, act_bits: int) -> data.StructLayout:
    return data.StructLayout({
        "blocks": data.ArrayLayout(decoded_layout(preset), L),
        "acts": data.ArrayLayout(signed(act_bits), L * preset.C),
    })


def d_bits(preset: Preset, act_bits: int) -> int:
    """Signed width of a block dot d for any block word: C terms |acc * a| <= 2^(acc_bits-1) 2^(A-1)."""
    return sum_bits(acc_bits(preset) + act_bits, preset.C)


def beat_sum_bits(preset: Preset, L: int, act_bits: int) -> int:
    return sum_bits(d_bits(preset, act_bits) + MAX_SHIFT, L)


def _reg(m, value, name: str):
    """`value` registered (no reset), in a signal as wide as the expression."""
    reg = Signal(value.shape(), name=name, reset_less=True)
    m.d.sync += reg.eq(value)
    return reg


class DotUnit(wiring.Component):
    """Ports: ``beat`` (L x (z, q, x) and L*C activations) -> ``sum`` (signed, registered)."""

    def __init__(self, preset: Preset, L: int, act_bits: int):
        assert 2 <= preset.P <= min(4, preset.K), "the fold stage sums <= 4 terms per group"
        self.preset, self.L, self.act_bits = preset, L, act_bits
        self.latency = self.latency_for(preset.C, L)
        super().__init__({
            "beat": In(stream.Signature(dot_input_layout(preset, L, act_bits), always_ready=True)),
            "sum": Out(stream.Signature(signed(beat_sum_bits(preset, L, act_bits)), always_ready=True)),
        })

    @staticmethod
    def latency_for(C: int, L: int) -> int:
        return 1 + tree_stages(C) + 3 + tree_stages(L)  # prod, dot, scale, fold, shift, lanes

    @staticmethod
    def reference(acc, x, acts) -> int:
        """sum_l (sum_c acc[l][c] * a[l*C + c]) << x[l], exactly (Python ints)."""
        C = len(acc[0])
        return sum(sum(int(acc[l][c]) * int(acts[l * C + c]) for c in range(C)) << int(x[l])
                   for l in range(len(acc)))

    def _lane(self, m, lane: int, blk, acts, platform):
        """One block: d (d_bits signed) << x, registered at the end of `shift`."""
        K, C, P = self.preset.K, self.preset.C, self.preset.P
        T = tree_stages(C)
        name = f"l{lane}_"
        u = lambda c, pos: blk.z[c * P + pos]                          # u_(c,m)
        low, high = list(range(P - 1)), [K + j for j in range(P - 1)]

        # prod: I_c * a_c (the multiplier's output register), and the masked sums' first levels
        prods = []
        for c in range(C):
            interior = blk.z[c * P + P - 1:c * P + K]                  # I_c, unsigned K-P+1 bits
            prods.append(registered_product(m, interior.as_unsigned(), acts[c], f"prod_{name}{c}", platform))
        X = adder_tree(m, prods, f"dot_{name}x_")
        # The masked sums share one adder level: each pair (a_2i, a_2i+1) contributes 0, a_2i,
        # a_2i+1 or their sum, a 4:1 choice of the pair sum (one LUT6 per bit) where a gated
        # adder would need two LUTs per bit; sum a is the tree over the pair sums.
        pairs = [acts[c:c + 2] for c in range(0, C, 2)]
        pair_sums = [sum(pair) for pair in pairs]

        def masked_pair(pos, i):
            c, pair = 2 * i, pairs[i]
            if len(pair) == 1:
                return Mux(u(c, pos), pair[0], 0)
            return Mux(u(c, pos), Mux(u(c + 1, pos), pair_sums[i], pair[0]), Mux(u(c + 1, pos), pair[1], 0))

        B = {pos: staged_sum(m, [masked_pair(pos, i) for i in range(len(pairs))], 1 + T,
                             f"dot_{name}b{pos}_", first_levels=LEVELS_PER_STAGE - 1)
             for pos in low + high}
        sum_a = staged_sum(m, pair_sums, 1 + T, f"dot_{name}a_", first_levels=LEVELS_PER_STAGE - 1)

        # dot (last cycle): the q-derived factors, from q delayed alongside the trees
        q = [delay(m, blk.q[p], T, f"dot_{name}q{p}", reset_less=True) for p in range(P)]
        Q = _reg(m, sum(q[p] << (P - 1 - p) for p in range(P)), f"dot_{name}Q")
        w = {pos: _reg(m, sum(q[p] << (pos - p) for p in range(pos + 1)), f"dot_{name}w{pos}") for pos in low}
        h = {K + j: _reg(m, sum(q[p] << (j + P - 1 - p) for p in range(j + 1, P)), f"dot_{name}h{j}")
             for j in range(P - 1)}
        neg_sq = _reg(m, -sum(q) << (P - 2), f"dot_{name}negsq")

        # scale
        product = lambda a, b, what: registered_product(m, a, b, f"scale_{name}{what}", platform)
        lo_terms = [product(Q, X, "qx")] + [product(w[pos], B[pos], f"w{pos}") for pos in low]
        hi_terms = [product(h[pos], B[pos], f"h{pos}") for pos in high] + [product(neg_sq, sum_a, "sa")]
        # fold
        lo = staged_sum(m, lo_terms, 1, f"fold_{name}lo")
        hi = staged_sum(m, hi_terms, 1, f"fold_{name}hi")
        # shift
        d = Signal(signed(d_bits(self.preset, self.act_bits)), name=f"shift_{name}d")
        m.d.comb += d.eq(lo + (hi << (K - P + 1)))
        x = delay(m, blk.x, 1 + T + 2, f"dot_x_{lane}", reset_less=True)
        return _reg(m, d << x, f"shift_{lane}")

    def elaborate(self, platform):
        m = Module()
        C, L = self.preset.C, self.L
        beat = self.beat.payload
        lane_terms = [self._lane(m, lane, beat.blocks[lane], [beat.acts[lane * C + c] for c in range(C)], platform)
                      for lane in range(L)]
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
