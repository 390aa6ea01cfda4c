"""`ExtUnit`: the kernel's extension unit (format §5.6, §11.3): outliers and low-rank factors added
into Y exactly as format §6.2 defines.

    ExtUnit(bus_bits, act_bits, acts_per_beat, max_cols, max_rows, max_gemvs)

It keeps its own copy of the activation vector (written from the activation beats the router
gives the engine: the engine's buffer has one read port, busy every cycle), takes a GEMV's
extension stream (format §5.6) in `bus_bits`-wide beats (the kernel's 64-bit `m_axi_io`) while
the engine takes the weights, one 32-bit word per cycle, and writes each row's extension sum into
a Y buffer: two halves of max_rows 64-bit words, by stream parity, so one stream may fill a half
while the previous GEMV's Y still reads the other. On the Y path it adds the buffer's word to the
engine's Y for GEMVs that have a stream.

Two stages per word: (1) parse (header, right factors, left word, outlier) and address the
activation copy; (2) multiply-accumulate: T_k += 4 products (right factors), a row's low-rank
sum sum_k (l_k T_k) << f_k (left word), the row's outlier sum (entries; << e at the row's last).
Arithmetic is modulo 2^64 like the Y words; the host refuses parts whose exact bound does not fit.

Interlocks (format §11.4 counts them): a stream's first beat waits until the activation copy is
complete (`acts_ready`) and while the Y buffer half it would write is still being read (two
streams ahead); a row's Y waits until the row's sum is in the buffer, `EXT_ROW_STAGES` after the
stream's first beat plus one cycle per word before the row's last.
"""
from __future__ import annotations

from amaranth.hdl import Array, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from seedlm_fpga.core.engine_shape import IO_BITS, KERNEL_TIMING, MAX_ROWS
from seedlm_fpga.core.ext_stream import EXT_MAX_COLS, EXT_MAX_RANK, EXT_MAX_ROWS, EXT_WORD_BITS, RIGHT_PER_WORD

#: |T_k| <= 127 * cols * 2^(A-1) < 2^(7 + 15 + 15): 40 signed bits hold it for A <= 16
T_BITS = 40
#: a stream's first beat taken (cycle f) -> the row ending with word j may leave from f + 4 + j:
#: the word's parse, its multiply-accumulate and buffer write, the row count, its register
EXT_ROW_STAGES = (("parse", 1), ("mac", 1), ("rows_done", 1), ("rows_ok", 1))


def gemv_info_layout() -> data.StructLayout:
    return data.StructLayout({"rows": MAX_ROWS.bit_length(), "ext": 1})


class Phase(enum.Enum, shape=3):
    DONE = 1  # from 1, as hdl.kernel.Stage
    HDR0 = 2
    HDR1 = 3
    RIGHT = 4
    ROWS = 5


class Op(enum.Enum, shape=2):
    NONE = 0
    RIGHT = 1
    LEFT = 2
    SPARSE = 3


def check_ext_unit(acts_per_beat: int, max_cols: int, max_rows: int) -> None:
    """Raise ValueError for an extension unit this module cannot build."""
    N = acts_per_beat
    if N % RIGHT_PER_WORD or N & (N - 1):
        # right-factor words read 4 activations of one beat; outliers find theirs by shifts
        raise ValueError(f"the extension unit needs a power-of-two multiple of 4 activations per beat, got {N}")
    if not 1 <= max_rows <= EXT_MAX_ROWS + 1 or max_rows & (max_rows - 1):
        raise ValueError(f"the extension unit's max rows must be a power of two up to {EXT_MAX_ROWS + 1}, got {max_rows}")
    if max_cols > EXT_MAX_COLS:
        raise ValueError(f"the extension unit takes at most {EXT_MAX_COLS} cols (15-bit columns), max cols is {max_cols}")


class ExtUnit(wiring.Component):
    def __init__(self, bus_bits: int, act_bits: int, acts_per_beat: int, max_cols: int, max_rows: int,
                 max_gemvs: int):
        N = acts_per_beat
        check_ext_unit(N, max_cols, max_rows)
        assert sum(c for _, c in EXT_ROW_STAGES) == KERNEL_TIMING.ext_row, "hdl.ext_unit and core.engine_shape disagree"
        self.W, self.A, self.N = bus_bits, act_bits, N
        self.max_cols, self.max_rows, self.max_gemvs = max_cols, max_rows, max_gemvs
        super().__init__({
            "start": In(1),
            "cols": In(max_cols.bit_length()),
            "acts_ready": In(1),
            "act_valid": In(1), "act_data": In(N * act_bits),
            "beat": In(stream.Signature(bus_bits)), "first": In(1),
            "gemv": In(stream.Signature(gemv_info_layout())),
            "y_in": In(stream.Signature(signed(IO_BITS))),
            "y_out": Out(stream.Signature(IO_BITS)),
        })

    def elaborate(self, platform):
        m = Module()
        W, A, N = self.W, self.A, self.N
        E = W // EXT_WORD_BITS
        row_bits = (self.max_rows - 1).bit_length()

        # --- the activation copy ----------------------------------------------------------
        depth = max(2, -(-self.max_cols // N))
        acts = m.submodules.acts = Memory(shape=unsigned(N * A), depth=depth, init=[])
        aw, ar = acts.write_port(), acts.read_port()
        act_count = Signal(range(depth + 1))
        m.d.comb += [aw.addr.eq(act_count), aw.data.eq(self.act_data), aw.en.eq(self.act_valid)]
        with m.If(self.start):
            m.d.sync += act_count.eq(0)
        with m.Elif(self.act_valid):
            m.d.sync += act_count.eq(act_count + 1)

        ybuf = m.submodules.ybuf = Memory(shape=signed(IO_BITS), depth=2 * self.max_rows, init=[])
        yw, yr = ybuf.write_port(), ybuf.read_port()

        # GEMV counters (mod 4): streams begun, streams whose last row is written, ext GEMVs whose Y left
        started, finished, y_done = Signal(2), Signal(2), Signal(2)

        # --- beats in, one word per cycle ---------------------------------------------------
        beat, widx, holding = Signal(W), Signal(range(max(E, 2))), Signal()
        blocked = self.first & (((started - y_done)[:2] == 2) | ~self.acts_ready)
        m.d.comb += self.beat.ready.eq((~holding | (widx == E - 1)) & ~blocked)
        fire = self.beat.valid & self.beat.ready
        word = beat.word_select(widx, EXT_WORD_BITS) if E > 1 else beat[:EXT_WORD_BITS]
        proc = holding
        with m.If(proc):
            m.d.sync += widx.eq(Mux(widx == E - 1, 0, widx + 1))
            with m.If(widx == E - 1):
                m.d.sync += holding.eq(0)
        with m.If(fire):
            m.d.sync += [beat.eq(self.beat.payload), holding.eq(1), widx.eq(0)]

        # --- stage 1: parse -----------------------------------------------------------------
        phase = Signal(Phase, init=Phase.DONE)
        rank, has_sp, e_shift, rows = Signal(3), Signal(), Signal(6), Signal(16)
        f = Array(Signal(6, name=f"f{k}") for k in range(EXT_MAX_RANK))
        k_idx, q_idx, row = Signal(2), Signal(range(-(-self.max_cols // RIGHT_PER_WORD) + 1)), Signal(16)
        expect_left, parity = Signal(), Signal()
        lr_reg, sp_acc = Signal(signed(IO_BITS)), Signal(signed(IO_BITS))
        T = Array(Signal(signed(T_BITS), name=f"t{k}") for k in range(EXT_MAX_RANK))
        nq = (self.cols + RIGHT_PER_WORD - 1) >> 2
        op, s2_word, s2_k, s2_sel, s2_end, s2_final = (Signal(Op), Signal(EXT_WORD_BITS), Signal(2),
                                                       Signal(range(N)), Signal(), Signal())
        s2_row, s2_parity = Signal(row_bits), Signal()
        m.d.sync += [op.eq(Op.NONE), s2_end.eq(0), s2_final.eq(0), s2_word.eq(word), s2_row.eq(row), s2_parity.eq(parity)]
        quads_per_beat = N // RIGHT_PER_WORD
        col = word[16:31]
        with m.If(proc):
            with m.Switch(phase):
                with m.Case(Phase.HDR0):
                    m.d.sync += [rank.eq(word[:3]), has_sp.eq(word[3]), e_shift.eq(word[4:10]), rows.eq(word[16:]),
                                 row.eq(0), expect_left.eq(word[:3].any()), phase.eq(Phase.HDR1),
                                 lr_reg.eq(0), sp_acc.eq(0)] + [t.eq(0) for t in T]
                with m.Case(Phase.HDR1):
                    m.d.sync += [f[k].eq(word[6 * k:6 * k + 6]) for k in range(EXT_MAX_RANK)]
                    m.d.sync += [k_idx.eq(0), q_idx.eq(0), phase.eq(Mux(rank.any(), Phase.RIGHT, Phase.ROWS))]
                with m.Case(Phase.RIGHT):
                    m.d.comb += ar.addr.eq(q_idx >> (quads_per_beat.bit_length() - 1))
                    m.d.sync += [op.eq(Op.RIGHT), s2_k.eq(k_idx), q_idx.eq(q_idx + 1),
                                 s2_sel.eq(q_idx & (quads_per_beat - 1))]
                    with m.If(q_idx == nq - 1):
                        m.d.sync += [q_idx.eq(0), k_idx.eq(k_idx + 1)]
                        with m.If(k_idx == rank - 1):
                            m.d.sync += phase.eq(Phase.ROWS)
                with m.Case(Phase.ROWS):
                    row_end = Signal()
                    with m.If(expect_left):
                        m.d.sync += op.eq(Op.LEFT)
                        m.d.comb += row_end.eq(~has_sp)
                        with m.If(has_sp):
                            m.d.sync += expect_left.eq(0)
                    with m.Else():
                        m.d.comb += [ar.addr.eq(col >> (N.bit_length() - 1)), row_end.eq(word[31])]
                        m.d.sync += [op.eq(Op.SPARSE), s2_sel.eq(col & (N - 1))]
                        with m.If(word[31]):
                            m.d.sync += expect_left.eq(rank.any())
                    m.d.sync += [s2_end.eq(row_end), s2_final.eq(row_end & (row == rows - 1))]
                    with m.If(row_end):
                        m.d.sync += row.eq(row + 1)
                        with m.If(row == rows - 1):
                            m.d.sync += phase.eq(Phase.DONE)
        with m.If(fire & self.first):
            m.d.sync += [phase.eq(Phase.HDR0), parity.eq(started[0]), started.eq(started + 1)]

        # --- stage 2: multiply-accumulate, write the row's sum ------------------------------
        act_word = ar.data
        quad = act_word.word_select(s2_sel[:max(1, (quads_per_beat - 1).bit_length())], RIGHT_PER_WORD * A) \
            if quads_per_beat > 1 else act_word
        dot4 = sum(s2_word[8 * j:8 * j + 8].as_signed() * quad[A * j:A * (j + 1)].as_signed()
                   for j in range(RIGHT_PER_WORD))
        lr_terms = []
        for k in range(EXT_MAX_RANK):
            term = Signal(signed(IO_BITS), name=f"lr_term{k}")
            m.d.comb += term.eq((s2_word[8 * k:8 * k + 8].as_signed() * T[k]) << f[k])
            lr_terms.append(term)
        lr_sum = Signal(signed(IO_BITS))
        m.d.comb += lr_sum.eq(sum(lr_terms))
        lane = act_word.word_select(s2_sel, A).as_signed()
        sp_total = Signal(signed(IO_BITS))
        m.d.comb += sp_total.eq(sp_acc + s2_word[:16].as_signed() * lane)
        row_sum = Signal(signed(IO_BITS))
        m.d.comb += [yw.addr.eq(Cat(s2_row, s2_parity)), yw.data.eq(row_sum)]
        with m.Switch(op):
            with m.Case(Op.RIGHT):
                m.d.sync += T[s2_k].eq(T[s2_k] + dot4)
            with m.Case(Op.LEFT):
                m.d.comb += [row_sum.eq(lr_sum), yw.en.eq(s2_end)]
                m.d.sync += lr_reg.eq(lr_sum)
            with m.Case(Op.SPARSE):
                m.d.comb += [row_sum.eq(lr_reg + (sp_total << e_shift)), yw.en.eq(s2_end)]
                m.d.sync += sp_acc.eq(Mux(s2_end, 0, sp_total))
        # rows of the stream in progress written, as the Y side may rely on them: a row written in
        # cycle t is in the buffer from t + 1 and in the read port's data from t + 2
        rows_done, rows_ok = Signal(16), Signal(16)
        with m.If(yw.en & (s2_parity == parity)):  # not the previous stream's last row
            m.d.sync += rows_done.eq(rows_done + 1)
        m.d.sync += rows_ok.eq(rows_done)
        with m.If(fire & self.first):  # both: the Y path may look at this stream from the next cycle
            m.d.sync += [rows_done.eq(0), rows_ok.eq(0)]
        # the row's word is in the buffer from the next cycle on; count the stream done after that
        wrote_last = Signal()
        m.d.sync += wrote_last.eq(s2_end & s2_final)
        with m.If(wrote_last):
            m.d.sync += finished.eq(finished + 1)

        # --- the Y path ---------------------------------------------------------------------
        infos = m.submodules.infos = fifo.SyncFIFO(width=gemv_info_layout().size, depth=self.max_gemvs)
        m.d.comb += [infos.w_en.eq(self.gemv.valid), infos.w_data.eq(self.gemv.payload), self.gemv.ready.eq(1)]
        info = gemv_info_layout()(infos.r_data)
        y_row = Signal(MAX_ROWS.bit_length())
        streaming = (started - 1)[:2] == y_done  # this GEMV's stream is still being read
        allow = infos.r_rdy & (~info.ext | (finished != y_done) | (streaming & (rows_ok > y_row)))
        m.d.comb += [self.y_out.valid.eq(self.y_in.valid & allow), self.y_in.ready.eq(self.y_out.ready & allow),
                     self.y_out.payload.eq(self.y_in.payload + Mux(info.ext, yr.data, 0))]
        y_fire = self.y_in.valid & self.y_in.ready
        y_end = y_fire & (y_row == info.rows - 1)
        next_row = Mux(y_end, 0, Mux(y_fire, y_row + 1, y_row))
        next_parity = Mux(y_end & info.ext, ~y_done[0], y_done[0])
        m.d.comb += [yr.addr.eq(Cat(next_row[:row_bits], next_parity)), infos.r_en.eq(y_end)]
        with m.If(y_fire):
            m.d.sync += y_row.eq(next_row)
        with m.If(y_end & info.ext):
            m.d.sync += y_done.eq(y_done + 1)

        with m.If(self.start):
            m.d.sync += [started.eq(0), finished.eq(0), y_done.eq(0), y_row.eq(0), phase.eq(Phase.DONE)]
        return m
