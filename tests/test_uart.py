"""hdl.uart against a bit-level model of an 8N1 line (start bit 0, 8 data bits LSB first, stop bit 1)."""
import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from seedlm_fpga.hdl.uart import UartRx, UartTx


def line_bits(byte: int, stop: int = 1) -> list[int]:
    return [0] + [(byte >> i) & 1 for i in range(8)] + [stop]


def simulate(dut, testbench, watcher):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.add_testbench(watcher, background=True)
    sim.run()


async def ticks(ctx, n: int):
    for _ in range(n):
        await ctx.tick()


@pytest.mark.parametrize("divisor", [4, 7, 25])
def test_tx_sends_each_byte_as_an_8n1_frame(divisor):
    dut = UartTx(divisor)
    data = [0x00, 0xFF, 0xA5, 0x3C]
    levels = []

    async def tb(ctx):
        for byte in data:
            ctx.set(dut.data.payload, byte)
            ctx.set(dut.data.valid, 1)
            while not ctx.get(dut.data.ready):
                await ctx.tick()
            await ctx.tick()
            ctx.set(dut.data.valid, 0)
        await ticks(ctx, 10 * divisor + 10)

    async def watch(ctx):
        while True:
            levels.append(ctx.get(dut.tx))
            await ctx.tick()

    simulate(dut, tb, watch)
    assert levels[0] == 1  # idle high
    # as a receiver reads the line: from each start bit's falling edge, one level per bit period
    frames, i = [], 0
    while 0 in levels[i:]:
        start = levels.index(0, i)
        frames.append([levels[start + divisor // 2 + k * divisor] for k in range(10)])
        # each bit lasts exactly `divisor` cycles (the stop bit at least that)
        assert levels[start:start + 9 * divisor] == [b for b in line_bits(data[len(frames) - 1])[:9]
                                                     for _ in range(divisor)]
        i = start + 10 * divisor
    assert frames == [line_bits(b) for b in data]


@pytest.mark.parametrize("divisor", [4, 9, 25])
def test_rx_receives_bytes_and_drops_a_frame_with_a_low_stop_bit(divisor):
    dut = UartRx(divisor)
    frames = [(0x5A, 1), (0x00, 1), (0x81, 0), (0xFF, 1), (0x42, 1)]
    got = []

    async def drive(ctx):
        ctx.set(dut.rx, 1)
        await ticks(ctx, 3 * divisor)
        for byte, stop in frames:
            for bit in line_bits(byte, stop):
                ctx.set(dut.rx, bit)
                await ticks(ctx, divisor)
            if not stop:  # a break: the line must go idle before the next frame
                ctx.set(dut.rx, 1)
                await ticks(ctx, 2 * divisor)
        await ticks(ctx, 3 * divisor)

    async def watch(ctx):
        while True:
            if ctx.get(dut.data.valid):
                got.append(ctx.get(dut.data.payload))
            await ctx.tick()

    simulate(dut, drive, watch)
    assert got == [b for b, stop in frames if stop]


def test_divisor_below_four_is_refused():
    with pytest.raises(ValueError, match="divisor"):
        UartTx(3)
