"""`GemvCore`: the control shared by the SeedLM and the baseline engine.

It owns everything but the arithmetic of one weight beat (the `datapath`):

- Phases. ACT: ``act`` is ready; beats are written to the activation buffer. The cycle
  after the act beat with ``last`` the core switches to WEIGHTS: ``w`` is ready (given
  a credit, below) until the beat with ``last``, then back to ACT for the next GEMV,
  unless ``keep_acts`` (an input only with ``keep_acts=True``) is high with that beat: then
  the core stays in WEIGHTS and the next GEMV (same ``cols``) reuses the activation buffer
  (the kernel's descriptors, format §10 item 7 and §11).
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

Packed image (format §5.4, ``shape.packing``): the buffer is L' banks of one block's C
activations, the weight beats go through a block gearbox (stage ``gear``, +1 cycle), and
a row ends at the beat completing its last block; see `_weights_packed`.

Timing without stalls (cycle 0 = the first act beat accepted):
    act beats at cycles 0 .. nA-1, nA = ceil(cols / N); weight beats at nA .. nA + rows*R - 1;
    Y[r] valid `latency_cycles` after the cycle its row's last beat is accepted;
    the last Y transfer is in cycle  nA + rows*R + latency_cycles - 1
    (so nA + rows*R + latency_cycles cycles in all, counting both ends).
"""
from __future__ import annotations

from math import gcd
from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from seedlm_fpga.core.engine_shape import FIFO_LATENCY, EngineShape, y_fifo_depth
from seedlm_fpga.hdl.dot_unit import RowAccumulator, y_layout
from seedlm_fpga.hdl.pipeline import delay


def beat_layout(data_bits: int) -> data.StructLayout:
    return data.StructLayout({"data": data_bits, "last": 1})


def datapath_input_layout(shape: EngineShape) -> data.StructLayout:
    return data.StructLayout({
        "w": shape.datapath_weight_bits,
        "acts": data.ArrayLayout(signed(shape.act_bits), shape.acts_per_word),
    })


class Phase(enum.Enum, shape=1):
    ACT = 0
    WEIGHTS = 1


class GemvCore(wiring.Component):
    """Ports: ``cols``, ``act`` / ``w`` (streams of {data, last}), ``y`` (stream of {data, last}),
    and with ``keep_acts=True`` the input ``keep_acts`` (format §10 item 7; not a port of the
    stream tops): sampled with the weight beat carrying ``last``, 1 = the next GEMV reuses the
    activation buffer.

    `make_datapath()` builds (at elaboration) a component with an always-ready input
    stream ``beat`` of `datapath_input_layout(shape)` and an output stream ``sum`` that
    follows ``beat`` by exactly `datapath_latency` cycles.
    """

    def __init__(self, shape: EngineShape, make_datapath, datapath_latency: int, keep_acts: bool = False,
                 min_y_rows: int = 0):
        self.shape = shape
        self.has_keep_acts = keep_acts
        self.make_datapath = make_datapath
        self.datapath_latency = datapath_latency
        # packed image (format §5.4): the block gearbox registers the lane-aligned blocks once
        self.gear_latency = 1 if shape.packing else 0
        # beat register (1) + gearbox + datapath + row accumulator (1) + FIFO (write to r_rdy)
        self.latency_cycles = (1 + self.gear_latency + datapath_latency + RowAccumulator.latency
                               + self.FIFO_LATENCY)
        self.y_fifo_depth = y_fifo_depth(self.latency_cycles, min_y_rows)
        super().__init__({
            "cols": In(range(shape.max_cols + 1)),
            # (only if asked for: the stream engines' Verilog stays as it was)
            **({"keep_acts": In(1)} if keep_acts else {}),
            "act": In(stream.Signature(beat_layout(shape.acts_per_beat * shape.act_bits))),
            "w": In(stream.Signature(beat_layout(shape.weight_bits))),
            "y": Out(stream.Signature(y_layout(shape.y_bits))),
        })

    FIFO_LATENCY = FIFO_LATENCY  # SyncFIFOBuffered: write in cycle t -> r_rdy in cycle t + 2

    def _back_to_acts(self):
        """The weight beat (when accepted) ends the pass's weights and the next pass loads acts."""
        last = self.w.payload.last
        return last & ~self.keep_acts if self.has_keep_acts else last

    def elaborate(self, platform):
        m = Module()
        sh = self.shape
        N, A, E, G = sh.acts_per_beat, sh.act_bits, sh.acts_per_word, sh.beats_per_word
        words = sh.buffer_words

        phase = Signal(Phase, init=Phase.ACT)

        # --- activation buffer -------------------------------------------------------
        if sh.packing:
            wr, banks = self._act_banks(m)
        else:
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
        if sh.packing:
            return self._weights_packed(m, phase, act_fire, act_first, banks)

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
            with m.If(self._back_to_acts()):
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

        self._outputs(m, dp, y_fifo, y_fire, beat_row_last, beat_last, dp.latency)
        return m

    # --- the packed image (format §5.4) -------------------------------------------------------

    def _act_banks(self, m):
        """The activation buffer as L' banks of C activations (one block each): block j lies in
        bank j mod L' at address j div L', so the L' consecutive blocks a packed beat can meet
        are read in one cycle, one per bank, whatever block they start at. The write side is
        the beat image's (words of E = L'*C activations, G slices of N), each bank taking its
        part of a word at a granularity of gcd(N, C) activations.
        """
        sh = self.shape
        N, A, E, G = sh.acts_per_beat, sh.act_bits, sh.acts_per_word, sh.beats_per_word
        C, lanes = sh.packing.block_acts, sh.packing.lanes
        words = sh.buffer_words
        wr = SimpleNamespace(addr=Signal(range(words), name="act_wr_addr"),
                             data=Signal(E * A, name="act_wr_data"), en=Signal(G, name="act_wr_en"))
        chunk = gcd(N, C)
        banks = []
        for b in range(lanes):
            mem = m.submodules[f"act_bank_{b}"] = Memory(shape=unsigned(C * A), depth=words, init=[])
            port = mem.write_port(granularity=chunk * A)
            m.d.comb += [port.addr.eq(wr.addr), port.data.eq(wr.data[b * C * A:(b + 1) * C * A])]
            for k in range(C // chunk):
                m.d.comb += port.en[k].eq(wr.en[(b * C + k * chunk) // N])
            banks.append(mem.read_port())
        return wr, banks

    def _weights_packed(self, m, phase, act_fire, act_first, banks):
        """Weight beats of the packed image: a block gearbox, one beat per clock.

        Per row the control keeps r = (k*W) mod B, the bits of the first block completing in
        beat k that lie in beat k-1; n = floor((r + W) / B), the blocks completing in beat k
        (block j0 = floor(k*W / B) first, at bit W - r of the window {beat k-1, beat k});
        j0 as (j0 div L', j0 mod L') for the bank addresses; and the activations left,
        cols - j0*C. Block j0 + i is live if i < n and (j0 + i)*C < cols; the row ends at the
        beat that completes its last block (acts left <= n*C), i.e. beat ceil(nb*B / W) - 1.
        All of these are registers: the accepting cycle only compares and adds constants.

        Stage beat registers the beat, the previous one, r, j0 mod L' and the lane mask; stage
        gear registers the L' live blocks, block j0 + i moved to lane (j0 + i) mod L' (the bank
        that holds its activations); dead lanes carry the all-zero word (d = 0 exactly).
        """
        sh = self.shape
        W, B, C, lanes = sh.weight_bits, sh.packing.block_bits, sh.packing.block_acts, sh.packing.lanes
        words = sh.buffer_words
        residues = sorted({(k * W) % B for k in range(B)})
        n_of = {r: (r + W) // B for r in residues}
        step = {r: (r + W) % B for r in residues}
        aligned = len(residues) == 1  # B divides W: r = 0, n = L', j0 mod L' = 0 always

        row_cols = Signal(range(sh.max_cols + 1))       # cols of this pass (read on its first act beat)
        acts_left = Signal(range(sh.max_cols + 1))      # cols - j0*C
        r = Signal(range(B), init=0)
        n = Signal(range(lanes + 1), init=n_of[0])
        n_acts = Signal(range(lanes * C + 1), init=n_of[0] * C)  # n*C
        j0q = Signal(range(words))
        j0m = Signal(range(lanes))
        with m.If(act_fire & act_first):
            m.d.sync += [row_cols.eq(self.cols), acts_left.eq(self.cols)]

        y_fifo = m.submodules.y_fifo = fifo.SyncFIFOBuffered(width=sh.y_bits + 1, depth=self.y_fifo_depth)
        credits_used = Signal(range(self.y_fifo_depth + 1))
        row_last = Signal()
        ends_row = Signal()
        w_fire = Signal()
        y_fire = Signal()
        mask = Signal(lanes)
        m.d.comb += [
            self.w.ready.eq((phase == Phase.WEIGHTS) & (credits_used != self.y_fifo_depth)),
            w_fire.eq(self.w.valid & self.w.ready),
            row_last.eq(acts_left <= n_acts),
            ends_row.eq(row_last | self.w.payload.last),
        ]
        for i in range(lanes):
            m.d.comb += mask[i].eq((n > i) & (acts_left > i * C))
        for b, port in enumerate(banks):
            m.d.comb += [port.addr.eq(j0q + (j0m > b)), port.en.eq(w_fire)]
        with m.If(w_fire):
            with m.If(ends_row):
                m.d.sync += [acts_left.eq(row_cols), r.eq(0), n.eq(n_of[0]), n_acts.eq(n_of[0] * C),
                             j0q.eq(0), j0m.eq(0)]
            with m.Else():
                m.d.sync += acts_left.eq(acts_left - n_acts)
                if not aligned:
                    with m.Switch(r):
                        for rv in residues:
                            with m.Case(rv):
                                nxt = step[rv]
                                m.d.sync += [r.eq(nxt), n.eq(n_of[nxt]), n_acts.eq(n_of[nxt] * C)]
                    wrap = j0m + n
                    with m.If(wrap >= lanes):
                        m.d.sync += [j0m.eq(wrap - lanes), j0q.eq(j0q + 1)]
                    with m.Else():
                        m.d.sync += j0m.eq(wrap)
                else:
                    m.d.sync += j0q.eq(j0q + 1)
            with m.If(self._back_to_acts()):
                m.d.sync += phase.eq(Phase.ACT)
        m.d.sync += credits_used.eq(credits_used + (w_fire & ends_row) - y_fire)

        # stage `beat`: this beat, the row's previous beat, where the blocks start, which live
        beat_w = Signal(W, reset_less=True)
        beat_prev = Signal(W, reset_less=True)
        beat_r = Signal(range(B), reset_less=True)
        beat_rot = Signal(range(lanes), reset_less=True)
        beat_mask = Signal(lanes, reset_less=True)
        beat_valid = Signal()
        beat_row_last = Signal()
        beat_last = Signal()
        m.d.sync += beat_valid.eq(w_fire)
        with m.If(w_fire):
            m.d.sync += [beat_w.eq(self.w.payload.data), beat_prev.eq(beat_w), beat_r.eq(r), beat_rot.eq(j0m),
                         beat_mask.eq(mask), beat_row_last.eq(ends_row), beat_last.eq(self.w.payload.last)]

        # stage `gear`: the live blocks, each in the lane of its activation bank
        pad = max(0, lanes * B - W)
        window = Cat(beat_prev, beat_w, Const(0, pad))  # block j0 + i at bit W - r + i*B
        blocks_at = Signal(lanes * B, name="gear_aligned")
        if aligned:
            m.d.comb += blocks_at.eq(window[W:W + lanes * B])
        else:
            with m.Switch(beat_r):
                for rv in residues:
                    with m.Case(rv):
                        m.d.comb += blocks_at.eq(window[W - rv:W - rv + lanes * B])
        live = [Mux(beat_mask[i], blocks_at[i * B:(i + 1) * B], 0) for i in range(lanes)]
        gear_w = Signal(lanes * B, reset_less=True)
        if aligned:
            m.d.sync += gear_w.eq(Cat(*live))
        else:
            with m.Switch(beat_rot):
                for rot in range(lanes):
                    with m.Case(rot):
                        m.d.sync += gear_w.eq(Cat(*(live[(b - rot) % lanes] for b in range(lanes))))
        gear_acts = Signal(sh.acts_per_word * sh.act_bits, reset_less=True)
        m.d.sync += gear_acts.eq(Cat(*(port.data for port in banks)))
        gear_valid = Signal()
        m.d.sync += gear_valid.eq(beat_valid)

        dp = m.submodules.datapath = self.make_datapath()
        assert dp.latency == self.datapath_latency
        m.d.comb += [
            dp.beat.valid.eq(gear_valid),
            dp.beat.payload.w.eq(gear_w),
            dp.beat.payload.acts.eq(gear_acts),
        ]
        self._outputs(m, dp, y_fifo, y_fire, beat_row_last, beat_last, 1 + dp.latency)
        return m

    def _outputs(self, m, dp, y_fifo, y_fire, beat_row_last, beat_last, after_beat: int):
        racc = m.submodules.row_acc = RowAccumulator(len(dp.sum.payload), self.shape.y_bits)
        m.d.comb += [
            racc.beat.valid.eq(dp.sum.valid),
            racc.beat.payload.sum.eq(dp.sum.payload),
            racc.beat.payload.row_last.eq(delay(m, beat_row_last, after_beat, "dp_row_last")),
            racc.beat.payload.last.eq(delay(m, beat_last, after_beat, "dp_last")),
            y_fifo.w_en.eq(racc.y.valid),
            y_fifo.w_data.eq(racc.y.payload.as_value()),
            self.y.valid.eq(y_fifo.r_rdy),
            self.y.payload.eq(y_fifo.r_data),
            y_fifo.r_en.eq(self.y.ready),
            y_fire.eq(self.y.valid & self.y.ready),
        ]
