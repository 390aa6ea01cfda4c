"""A UART receiver and transmitter: 8 data bits, no parity, 1 stop bit (8N1), LSB first.

`divisor` is clock cycles per bit (e.g. 25 MHz / 1 Mbaud = 25); at least 4, so that the
receiver can sample mid-bit. Amaranth has no UART of its own, and the maintained ones
(LiteX's, amlib's) bring a framework; this pair is small and tested on its own
(tests/test_uart.py) against a bit-level model.
"""

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

MIN_DIVISOR = 4


def _check(component, divisor: int) -> int:
    if not isinstance(divisor, int) or divisor < MIN_DIVISOR:
        component._MustUse__silence = True  # refused, never elaborated: no "created but never used"
        raise ValueError(f"UART divisor must be an integer >= {MIN_DIVISOR} clock cycles per bit, got {divisor}")
    return divisor


class UartRx(wiring.Component):
    """``rx`` (the line, idle high) -> ``data``: one byte per frame whose stop bit is high.

    ``data`` has no ready: a byte is valid for one cycle (put a FIFO behind it). A frame whose
    stop bit is low (a break, a baud mismatch) is dropped and counted in ``errors``.
    """
    rx: In(1, init=1)
    data: Out(stream.Signature(8, always_ready=True))
    errors: Out(8)

    def __init__(self, divisor: int):
        self.divisor = _check(self, divisor)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        line = Signal(init=1)
        m.submodules.sync_rx = FFSynchronizer(self.rx, line, init=1)
        timer = Signal(range(self.divisor * 3 // 2 + 1))
        bit = Signal(range(9))
        shift = Signal(8)
        m.d.sync += self.data.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):  # start bit: sample the first data bit 1.5 bits from here
                    m.d.sync += [timer.eq(self.divisor * 3 // 2 - 1), bit.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [shift.eq(Cat(shift[1:], line)), timer.eq(self.divisor - 1), bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    with m.If(line):
                        m.d.sync += [self.data.payload.eq(shift), self.data.valid.eq(1)]
                    with m.Else():
                        m.d.sync += self.errors.eq(self.errors + 1)
                    m.next = "WAIT_IDLE"
            with m.State("WAIT_IDLE"):  # a low stop bit: wait for the line to go idle again
                with m.If(line):
                    m.next = "IDLE"
        return m


class UartTx(wiring.Component):
    """``data`` -> ``tx`` (the line, idle high): start bit, 8 data bits LSB first, stop bit."""
    data: In(stream.Signature(8))
    tx: Out(1, init=1)

    def __init__(self, divisor: int):
        self.divisor = _check(self, divisor)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self.divisor))
        shift = Signal(10, init=0x3FF)   # stop bit, data, start bit; shifted out from bit 0
        left = Signal(range(11))         # bits still to send
        m.d.comb += [self.tx.eq(shift[0]), self.data.ready.eq(left == 0)]
        with m.If(left == 0):
            with m.If(self.data.valid):
                m.d.sync += [shift.eq(Cat(0, self.data.payload, 1)), left.eq(10), timer.eq(self.divisor - 1)]
        with m.Elif(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.Else():
            m.d.sync += [shift.eq(Cat(shift[1:], 1)), left.eq(left - 1), timer.eq(self.divisor - 1)]
        return m
