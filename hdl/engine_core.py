"""`GemvCore`: the control shared by the SeedLM and the baseline engine.

It owns everything but the arithmetic of one weight beat (the `datapath`):

- Phases. ACT: ``act`` is ready; beats are written to the activation buffer. The cycle
  after the act beat with ``last`` the core switches to WEIGHTS: ``w`` is ready (given
  a credit, below) until the beat with ``last``, then back to ACT for the next GEMV.
- Activation buffer (`amaranth.lib.memory.Memory`, one BRAM-friendly synchronous read
  port): words of E activations, ceil(max_cols / E) words. Act beat i (N elements)
  fills slice i mod G of word i div G (G = E / N) through the write port's byte-enable
  style granularity. Elements at or past `cols` are written as zero, and the act beat
  with ``last`` also zeroes the rest of its word: the padded tail of a row's last block
  always meets zero activations. R (weight beats per row) = words written
  = ceil(cols / E).
- Weight beats. Beat k of a row (k = 0 .. R-1) reads word k, so it meets activations
  [k*E, (k+1)*E). The read is issued in the accepting cycle; the beat and the word
  reach the datapath together one cycle later (stage ``beat``).
- Output. A `RowAccumulator` turns beat sums into Y[r]; Y goes through a FIFO to ``y``.
  Backpressure never stalls the pipeline: the core accepts a weight beat only while it
  holds a credit (rows accepted but not yet sent < FIFO depth), so every row in flight
  has a FIFO slot. ``w.ready`` is a function of registers only: no combinational path
  from ``y.ready`` (or anything) to a valid, nor from ``y.ready`` to ``w.ready``.
  The FIFO is deeper than the pipeline, so with ``y.ready`` high the credit never runs
  out: one weight beat per clock, no bubble between rows or between GEMVs' weights.

Timing without stalls (cycle 0 = the first act beat accepted):
    act beats at cycles 0 .. nA-1, nA = ceil(cols / N); weight beats at nA .. nA + rows*R - 1;
    Y[r] valid `latency_cycles` after the cycle its row's last beat is accepted;
    the last Y transfer is in cycle  nA + rows*R + latency_cycles - 1
    (so nA + rows*R + latency_cycles cycles in all, counting both ends).
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from seedlm_fpga.core.engine_shape import FIFO_LATENCY, EngineShape
from seedlm_fpga.hdl.dot_unit import RowAccumulator, y_layout
from seedlm_fpga.hdl.pipeline import delay


def beat_layout(data_bits: int) -> data.StructLayout:
    return data.StructLayout({"data": data_bits, "last": 1})


def datapath_input_layout(shape: EngineShape) -> data.StructLayout:
    return data.StructLayout({
        "w": shape.weight_bits,
        "acts": data.ArrayLayout(signed(shape.act_bits), shape.acts_per_word),
    })


class Phase(enum.Enum, shape=1):
    ACT = 0
    WEIGHTS = 1


def fifo_depth_for(latency: int) -> int:
    """Smallest power of two > latency + 2: enough credits for every row in flight."""
    depth = 4
    while depth <= latency + 2:
        depth *= 2
    return depth


class GemvCore(wiring.Component):
    """Ports: ``cols``, ``act`` / ``w`` (streams of {data, last}), ``y`` (stream of {data, last}).

    `make_datapath()` builds (at elaboration) a component with an always-ready input
    stream ``beat`` of `datapath_input_layout(shape)` and an output stream ``sum`` that
    follows ``beat`` by exactly `datapath_latency` cycles.
    """

    def __init__(self, shape: EngineShape, make_datapath, datapath_latency: int):
        self.shape = shape
        self.make_datapath = make_datapath
        self.datapath_latency = datapath_latency
        # beat register (1) + datapath + row accumulator (1) + FIFO (write to r_rdy)
        self.latency_cycles = 1 + datapath_latency + RowAccumulator.latency + self.FIFO_LATENCY
        self.y_fifo_depth = fifo_depth_for(self.latency_cycles)
        super().__init__({
            "cols": In(range(shape.max_cols + 1)),
            "act": In(stream.Signature(beat_layout(shape.acts_per_beat * shape.act_bits))),
            "w": In(stream.Signature(beat_layout(shape.weight_bits))),
            "y": Out(stream.Signature(y_layout(shape.y_bits))),
        })

    FIFO_LATENCY = FIFO_LATENCY  # SyncFIFOBuffered: write in cycle t -> r_rdy in cycle t + 2

    def elaborate(self, platform):
        m = Module()
        sh = self.shape
        N, A, E, G = sh.acts_per_beat, sh.act_bits, sh.acts_per_word, sh.beats_per_word
        words = sh.buffer_words

        phase = Signal(Phase, init=Phase.ACT)

        # --- activation buffer -------------------------------------------------------
        mem = m.submodules.act_buffer = Memory(shape=unsigned(E * A), depth=words, init=[])
        wr = mem.write_port(granularity=N * A)
        rd = mem.read_port()

        act_word = Signal(range(words + 1))
        # elements of the pass not yet written (cols minus this beat's first index), kept
        # in a register so that the masks below are one compare each (no subtraction from
        # `cols` on the path into the buffer): `cols` itself is read on the pass's first beat
        act_first = Signal(init=1)
        act_left = Signal(range(sh.max_cols + 1))
        beats_per_row = Signal(range(words + 1))        # R

        act_fire = Signal()
        m.d.comb += [self.act.ready.eq(phase == Phase.ACT), act_fire.eq(self.act.valid & self.act.ready)]

        remaining = Signal(range(sh.max_cols + 1))  # elements of this beat below cols
        m.d.comb += remaining.eq(Mux(act_first, self.cols, act_left))
        masked = Signal(N * A)
        for i in range(N):
            elem = self.act.payload.data[i * A:(i + 1) * A]
            m.d.comb += masked[i * A:(i + 1) * A].eq(Mux(remaining > i, elem, 0))
        m.d.comb += wr.addr.eq(act_word)
        if G == 1:
            m.d.comb += [wr.data.eq(masked), wr.en.eq(act_fire)]
            with m.If(act_fire):
                m.d.sync += act_word.eq(act_word + 1)
        else:
            act_slice = Signal(G, init=1)  # one-hot: which slice of the word this beat fills
            for s in range(G):
                here = act_slice[s]
                # the beat with `last` also clears the slices after it: zero tail of the row
                clear = self.act.payload.last & act_slice[:s].any() if s else 0
                m.d.comb += [
                    wr.data[s * N * A:(s + 1) * N * A].eq(Mux(here, masked, 0)),
                    wr.en[s].eq(act_fire & (here | clear)),
                ]
            with m.If(act_fire):
                m.d.sync += act_slice.eq(act_slice.rotate_left(1))
                with m.If(act_slice[G - 1]):
                    m.d.sync += act_word.eq(act_word + 1)
                with m.If(self.act.payload.last):
                    m.d.sync += act_slice.eq(1)
        with m.If(act_fire):
            m.d.sync += [act_left.eq(Mux(remaining > N, remaining - N, 0)), act_first.eq(0)]
            with m.If(self.act.payload.last):
                m.d.sync += [
                    beats_per_row.eq(act_word + 1),
                    act_word.eq(0), act_first.eq(1),
                    phase.eq(Phase.WEIGHTS),
                ]

        # --- weight beats, credits ---------------------------------------------------
        y_fifo = m.submodules.y_fifo = fifo.SyncFIFOBuffered(width=sh.y_bits + 1, depth=self.y_fifo_depth)
        credits_used = Signal(range(self.y_fifo_depth + 1))  # rows accepted, Y not yet sent
        beat_in_row = Signal(range(words))                     # k
        row_last = Signal()
        ends_row = Signal()  # the beat closes a row: R-th beat, or tlast (which always ends one)
        w_fire = Signal()
        y_fire = Signal()
        m.d.comb += [
            self.w.ready.eq((phase == Phase.WEIGHTS) & (credits_used != self.y_fifo_depth)),
            w_fire.eq(self.w.valid & self.w.ready),
            row_last.eq(beat_in_row == beats_per_row - 1),
            ends_row.eq(row_last | self.w.payload.last),
            rd.addr.eq(beat_in_row),
            rd.en.eq(w_fire),
        ]
        with m.If(w_fire):
            m.d.sync += beat_in_row.eq(Mux(ends_row, 0, beat_in_row + 1))
            with m.If(self.w.payload.last):
                m.d.sync += phase.eq(Phase.ACT)
        m.d.sync += credits_used.eq(credits_used + (w_fire & ends_row) - y_fire)

        # stage `beat`: the weight beat and its activation word, side by side
        beat_w = Signal(sh.weight_bits, reset_less=True)  # datapath: no reset
        beat_valid = Signal()
        beat_row_last = Signal()
        beat_last = Signal()
        m.d.sync += beat_valid.eq(w_fire)
        with m.If(w_fire):
            m.d.sync += [beat_w.eq(self.w.payload.data), beat_row_last.eq(ends_row),
                         beat_last.eq(self.w.payload.last)]

        dp = m.submodules.datapath = self.make_datapath()
        assert dp.latency == self.datapath_latency
        m.d.comb += [
            dp.beat.valid.eq(beat_valid),
            dp.beat.payload.w.eq(beat_w),
            dp.beat.payload.acts.eq(rd.data),
        ]

        racc = m.submodules.row_acc = RowAccumulator(len(dp.sum.payload), sh.y_bits)
        m.d.comb += [
            racc.beat.valid.eq(dp.sum.valid),
            racc.beat.payload.sum.eq(dp.sum.payload),
            racc.beat.payload.row_last.eq(delay(m, beat_row_last, dp.latency, "dp_row_last")),
            racc.beat.payload.last.eq(delay(m, beat_last, dp.latency, "dp_last")),
            y_fifo.w_en.eq(racc.y.valid),
            y_fifo.w_data.eq(racc.y.payload.as_value()),
            self.y.valid.eq(y_fifo.r_rdy),
            self.y.payload.eq(y_fifo.r_data),
            y_fifo.r_en.eq(self.y.ready),
            y_fire.eq(self.y.valid & self.y.ready),
        ]
        return m
