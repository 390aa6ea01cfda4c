"""A board that holds a model's weights in block RAM and computes GEMVs for a host (format §12).

`ByteGemvTop`: byte streams ``rx`` / ``tx`` carrying the §12 protocol, a `GemvEngine`, the
weight memory (every tensor's format §5.3 image, `core.board_protocol.BoardImage`) and the
table that finds each tensor. `UartGemvTop` puts a UART (`hdl.uart`) and a receive FIFO in
front of it: its ports are the two UART lines.

The frame parser (FSM below) reads the 5-byte header, checks it against the table, queues the
reply's first bytes (sync, status, INFO's payload) in the transmit FIFO, then for a GEMV feeds
the activation bytes to the engine N at a time, streams the tensor's weight words from the
memory (one per clock while the engine takes them) and waits until the Y serializer has sent
the pass's last Y before it reads the next frame. A bad frame gets its error status and its
payload is skipped, so the host keeps frame sync.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from seedlm_fpga.core import board_protocol as proto
from seedlm_fpga.hdl.gemv_engine import GemvEngine
from seedlm_fpga.hdl.uart import UartRx, UartTx

TX_FIFO_DEPTH = 16
RX_FIFO_DEPTH = 32


class ByteGemvTop(wiring.Component):
    """The §12 protocol over byte streams, for `image` (a `BoardImage`)."""
    rx: In(stream.Signature(8))
    tx: Out(stream.Signature(8))

    def __init__(self, image: proto.BoardImage, timeout_cycles: int = proto.FRAME_TIMEOUT_CYCLES):
        if image.config.act_bits != proto.ACT_BITS:
            raise ValueError("the board protocol carries int8 activations")
        self.image, self.timeout_cycles = image, timeout_cycles
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        img, cfg = self.image, self.image.config
        shape = cfg.seedlm
        N, W = shape.acts_per_beat, cfg.bus_bits
        m.submodules.engine = engine = GemvEngine(cfg)
        m.submodules.weights = weights = Memory(shape=unsigned(W), depth=max(2, len(img.words)),
                                                init=list(img.words))
        rd = weights.read_port()
        m.submodules.tx_fifo = tx_fifo = fifo.SyncFIFOBuffered(width=8, depth=TX_FIFO_DEPTH)
        m.d.comb += [self.tx.payload.eq(tx_fifo.r_data), self.tx.valid.eq(tx_fifo.r_rdy),
                     tx_fifo.r_en.eq(self.tx.ready)]

        # --- the tensor table (a few dozen entries: logic, not a RAM) ---------------------------
        n = len(img.tensors)
        table_cols = Array(Const(t.cols, range(cfg.max_cols + 1)) for t in img.tensors)
        table_base = Array(Const(t.base, range(len(img.words) + 1)) for t in img.tensors)
        table_beats = Array(Const(t.beats, range(len(img.words) + 1)) for t in img.tensors)

        # --- header fields ---------------------------------------------------------------------
        cmd, index, length = Signal(8), Signal(8), Signal(16)
        status = Signal(8)
        count = Signal(16)                           # payload bytes left / reply bytes sent
        cols = Signal(range(cfg.max_cols + 1))
        m.d.comb += engine.cols.eq(cols)
        # a payload whose bytes stop for timeout_cycles is finished with zeros (format §12)
        idle = Signal(range(self.timeout_cycles + 1))
        timed_out = Signal()
        rx_byte = Signal(8)
        rx_fire = Signal()
        m.d.comb += [rx_fire.eq((self.rx.valid | timed_out) & self.rx.ready),
                     rx_byte.eq(Mux(self.rx.valid, self.rx.payload, 0))]
        with m.If(self.rx.valid | ~self.rx.ready):
            m.d.sync += idle.eq(0)
        with m.Elif(idle != self.timeout_cycles):
            m.d.sync += idle.eq(idle + 1)

        # reply bytes queued by the FSM: sync, status, then INFO's payload
        info = proto.BoardImage.info_payload(img)
        reply = Array([Const(proto.BOARD_SYNC, 8), status] + [Const(b, 8) for b in info])
        reply_len = Signal(range(len(info) + 3))
        fsm_tx = Signal()                            # the FSM owns the transmit FIFO's write port
        fsm_tx_byte = Signal(8)

        # --- activation beats ------------------------------------------------------------------
        act_data = Signal(N * 8)
        act_k = Signal(range(N))
        act_valid, act_last = Signal(), Signal()
        m.d.comb += [engine.act.valid.eq(act_valid), engine.act.payload.data.eq(act_data),
                     engine.act.payload.last.eq(act_last)]
        with m.If(engine.act.valid & engine.act.ready):
            m.d.sync += act_valid.eq(0)

        # --- weight words ----------------------------------------------------------------------
        addr = Signal(range(len(img.words) + 1))
        w_left = Signal(range(len(img.words) + 1))   # words still to read
        w_valid, w_last = Signal(), Signal()
        m.d.comb += [engine.w.valid.eq(w_valid), engine.w.payload.data.eq(rd.data),
                     engine.w.payload.last.eq(w_last), rd.addr.eq(addr),
                     rd.en.eq(~w_valid | engine.w.ready)]

        # --- Y serializer: y_bytes bytes per Y, little-endian --------------------------------
        yb = img.y_bytes
        y_shift = Signal(yb * 8)
        y_left = Signal(range(yb + 1))
        y_is_last, pass_done = Signal(), Signal()
        y_ext = Signal(signed(yb * 8))
        m.d.comb += [y_ext.eq(engine.y.payload.data), engine.y.ready.eq(y_left == 0)]
        with m.If(engine.y.valid & engine.y.ready):
            m.d.sync += [y_shift.eq(y_ext), y_left.eq(yb), y_is_last.eq(engine.y.payload.last)]
        with m.Elif((y_left != 0) & ~fsm_tx & tx_fifo.w_rdy):
            m.d.sync += [y_shift.eq(y_shift >> 8), y_left.eq(y_left - 1)]
            with m.If((y_left == 1) & y_is_last):
                m.d.sync += pass_done.eq(1)
        m.d.comb += [tx_fifo.w_en.eq(Mux(fsm_tx, 1, y_left != 0) & tx_fifo.w_rdy),
                     tx_fifo.w_data.eq(Mux(fsm_tx, fsm_tx_byte, y_shift[:8]))]

        with m.FSM():
            for i, (state, field) in enumerate([("SYNC", None), ("CMD", cmd), ("INDEX", index),
                                                ("LEN0", length[:8]), ("LEN1", length[8:])]):
                with m.State(state):
                    m.d.comb += self.rx.ready.eq(1)
                    with m.If(rx_fire):
                        if field is None:
                            with m.If(rx_byte == proto.HOST_SYNC):
                                m.next = "CMD"
                        else:
                            m.d.sync += field.eq(rx_byte)
                            nxt = ["SYNC", "CMD", "INDEX", "LEN0", "LEN1", "CHECK"][i + 1]
                            m.next = nxt
            with m.State("CHECK"):
                m.d.sync += [count.eq(0), reply_len.eq(2)]
                m.next = "REPLY"
                with m.If(cmd == proto.CMD_INFO):
                    with m.If(length == 0):
                        m.d.sync += [status.eq(proto.STATUS_OK), reply_len.eq(2 + len(info))]
                    with m.Else():
                        m.d.sync += status.eq(proto.STATUS_BAD_LENGTH)
                with m.Elif(cmd == proto.CMD_GEMV):
                    with m.If(index >= n):
                        m.d.sync += status.eq(proto.STATUS_BAD_TENSOR)
                    with m.Elif(length != table_cols[index]):
                        m.d.sync += status.eq(proto.STATUS_BAD_LENGTH)
                    with m.Else():
                        m.d.sync += [status.eq(proto.STATUS_OK), cols.eq(table_cols[index]),
                                     addr.eq(table_base[index]), w_left.eq(table_beats[index])]
                with m.Else():
                    m.d.sync += status.eq(proto.STATUS_BAD_COMMAND)
            with m.State("REPLY"):
                m.d.comb += [fsm_tx.eq(1), fsm_tx_byte.eq(reply[count])]
                with m.If(tx_fifo.w_rdy):
                    m.d.sync += count.eq(count + 1)
                    with m.If(count + 1 == reply_len):
                        m.d.sync += [count.eq(length), act_k.eq(0), pass_done.eq(0)]
                        with m.If((status == proto.STATUS_OK) & (cmd == proto.CMD_GEMV)):
                            m.next = "ACTS"
                        with m.Elif(status == proto.STATUS_OK):
                            m.next = "SYNC"
                        with m.Else():
                            m.next = "SKIP"
            with m.State("SKIP"):  # a bad frame's payload
                m.d.comb += [self.rx.ready.eq(1), timed_out.eq(idle == self.timeout_cycles)]
                with m.If(count == 0):
                    m.next = "SYNC"
                with m.Elif(rx_fire):
                    m.d.sync += count.eq(count - 1)
            with m.State("ACTS"):
                m.d.comb += [self.rx.ready.eq(~act_valid), timed_out.eq(idle == self.timeout_cycles)]
                with m.If(rx_fire):
                    m.d.sync += [act_data.word_select(act_k, 8).eq(rx_byte), count.eq(count - 1),
                                 act_k.eq(Mux(act_k == N - 1, 0, act_k + 1))]
                    with m.If((act_k == N - 1) | (count == 1)):
                        m.d.sync += [act_valid.eq(1), act_last.eq(count == 1)]
                    with m.If(count == 1):
                        m.next = "WEIGHTS"
            with m.State("WEIGHTS"):
                with m.If(rd.en):
                    with m.If((w_left != 0) & ~act_valid):
                        m.d.sync += [w_valid.eq(1), w_last.eq(w_left == 1), addr.eq(addr + 1),
                                     w_left.eq(w_left - 1)]
                    with m.Else():
                        m.d.sync += w_valid.eq(0)
                        with m.If(w_left == 0):
                            m.next = "DRAIN"
            with m.State("DRAIN"):  # until the last Y of the pass is in the transmit FIFO
                with m.If(pass_done):
                    m.next = "SYNC"
        return m


class UartGemvTop(wiring.Component):
    """`ByteGemvTop` behind a UART: ports ``rx`` and ``tx`` are the serial lines."""
    rx: In(1, init=1)
    tx: Out(1, init=1)

    def __init__(self, image: proto.BoardImage, divisor: int,
                 timeout_cycles: int = proto.FRAME_TIMEOUT_CYCLES):
        self.image, self.divisor, self.timeout_cycles = image, divisor, timeout_cycles
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart_rx = urx = UartRx(self.divisor)
        m.submodules.uart_tx = utx = UartTx(self.divisor)
        m.submodules.rx_fifo = rx_fifo = fifo.SyncFIFOBuffered(width=8, depth=RX_FIFO_DEPTH)
        m.submodules.core = core = ByteGemvTop(self.image, self.timeout_cycles)
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx),
                     rx_fifo.w_data.eq(urx.data.payload), rx_fifo.w_en.eq(urx.data.valid),
                     core.rx.payload.eq(rx_fifo.r_data), core.rx.valid.eq(rx_fifo.r_rdy),
                     rx_fifo.r_en.eq(core.rx.ready)]
        wiring.connect(m, core.tx, utx.data)
        return m
