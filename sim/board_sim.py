"""The board of format §12 in Amaranth's simulator, behind a serial-port-like object.

    port = SimulatedBoardPort(image)                 # byte streams: one byte per clock
    port = SimulatedBoardPort(image, divisor=4)      # through the UART: 4 clocks per bit
    BoardClient(port, image).gemv(0, acts)

``write(data)`` queues bytes for the board; ``read(n)`` runs the simulation until n bytes came
back (or `read_timeout_cycles` pass without one: then it returns what it has, like a serial port
with a timeout). `seedlm-fpga board-run` runs unchanged against it, so the host code and the
top are tested together; with `divisor` the host's bytes go over the simulated RX line bit by
bit and the board's come back from its TX line through a UART receiver model.
"""
from __future__ import annotations

from collections import deque

from amaranth.sim import Simulator

from seedlm_fpga.core.board_protocol import FRAME_TIMEOUT_CYCLES, BoardImage
from seedlm_fpga.hdl.board_top import ByteGemvTop, UartGemvTop

CLOCK_PERIOD = 1e-6
#: cycles run per step of `read` (the simulator's call overhead against responsiveness)
CHUNK_CYCLES = 256


class SimulatedBoardPort:
    """A serial port whose far end is the simulated board top (see the module docstring)."""

    def __init__(self, image: BoardImage, divisor: int | None = None, read_timeout_cycles: int = 200_000,
                 frame_timeout_cycles: int = FRAME_TIMEOUT_CYCLES):
        self.image, self.divisor, self.read_timeout_cycles = image, divisor, read_timeout_cycles
        self.dut = (ByteGemvTop(image, frame_timeout_cycles) if divisor is None
                    else UartGemvTop(image, divisor, frame_timeout_cycles))
        self.to_board: deque[int] = deque()
        self.from_board: deque[int] = deque()
        self.cycles = 0
        self.sim = Simulator(self.dut)
        self.sim.add_clock(CLOCK_PERIOD)
        if divisor is None:
            self.sim.add_testbench(self._feed_bytes, background=True)
            self.sim.add_testbench(self._collect_bytes, background=True)
        else:
            self.sim.add_testbench(self._drive_line, background=True)
            self.sim.add_testbench(self._watch_line, background=True)

    # --- byte streams ------------------------------------------------------------------------
    async def _feed_bytes(self, ctx):
        rx = self.dut.rx
        while True:
            if self.to_board:
                ctx.set(rx.valid, 1)
                ctx.set(rx.payload, self.to_board[0])
                ready = ctx.get(rx.ready)
                await ctx.tick()
                if ready:
                    self.to_board.popleft()
            else:
                ctx.set(rx.valid, 0)
                await ctx.tick()

    async def _collect_bytes(self, ctx):
        tx = self.dut.tx
        ctx.set(tx.ready, 1)
        while True:
            valid, byte = ctx.get(tx.valid), ctx.get(tx.payload)
            await ctx.tick()
            if valid:
                self.from_board.append(byte)

    # --- serial lines (8N1, `divisor` clocks per bit) -------------------------------------------
    async def _drive_line(self, ctx):
        ctx.set(self.dut.rx, 1)
        while True:
            if not self.to_board:
                await ctx.tick()
                continue
            byte = self.to_board.popleft()
            for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
                ctx.set(self.dut.rx, bit)
                await ctx.tick().repeat(self.divisor)

    async def _watch_line(self, ctx):
        while True:
            while ctx.get(self.dut.tx):                         # wait for a start bit
                await ctx.tick()
            await ctx.tick().repeat(self.divisor // 2)         # to the middle of it
            byte = 0
            for i in range(8):
                await ctx.tick().repeat(self.divisor)
                byte |= ctx.get(self.dut.tx) << i
            await ctx.tick().repeat(self.divisor)
            if ctx.get(self.dut.tx) != 1:
                raise AssertionError("the board sent a frame with a low stop bit")
            self.from_board.append(byte)

    # --- the port ----------------------------------------------------------------------------
    def write(self, data: bytes) -> int:
        self.to_board.extend(data)
        return len(data)

    def flush(self) -> None:
        pass

    def wait(self, cycles: int) -> None:
        """Let the board run `cycles` clock cycles (the host being silent)."""
        self.cycles += cycles
        self.sim.run_until(self.cycles * CLOCK_PERIOD)

    def read(self, n: int) -> bytes:
        idle = 0
        while len(self.from_board) < n and idle < self.read_timeout_cycles:
            before = len(self.from_board)
            self.sim.run_until((self.cycles + CHUNK_CYCLES) * CLOCK_PERIOD)
            self.cycles += CHUNK_CYCLES
            idle = 0 if len(self.from_board) > before else idle + CHUNK_CYCLES
        take = min(n, len(self.from_board))
        return bytes(self.from_board.popleft() for _ in range(take))
