"""ControlRegisters: the ap_ctrl_hs register file of format §11.2 over AXI4-Lite."""
from amaranth.sim import Simulator

from seedlm_fpga.core.engine_shape import AP_DONE, AP_IDLE, AP_READY, AP_START, KERNEL_REGISTERS as REG
from seedlm_fpga.hdl.axi_lite_control import ControlRegisters

from kernel_sim_util import LiteHost


def run(dut, program):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(program)
    sim.run()


async def pulse(ctx, signal):
    ctx.set(signal, 1)
    await ctx.tick()
    ctx.set(signal, 0)


def test_arguments_read_back_with_their_widths_and_strobes():
    dut = ControlRegisters(max_cols=1000, max_descriptors=16)
    host = LiteHost(dut, prefix="")
    seen = {}

    async def program(ctx):
        await host.write64(ctx, REG["WEIGHTS"], 0x1234_5678_9ABC_DEF0)
        await host.write64(ctx, REG["ACTS"], 0xFFFF_0000_0000_1000)
        await host.write64(ctx, REG["Y"], 0x40)
        await host.write64(ctx, REG["DESCRIPTORS"], 0x8000_0000_0000_0020)
        await host.write(ctx, REG["ROWS"], 0xFFFF_FFFF)        # 24 bits kept
        await host.write(ctx, REG["COLS"], 0x1234)             # bitlen(1000) = 10 bits kept
        await host.write(ctx, REG["COLS"], 0xAB00, strb=0b10)  # byte 1 only
        await host.write(ctx, REG["N_DESCRIPTORS"], 17)        # bitlen(16) = 5 bits kept
        await host.write(ctx, 0x3C, 0xFFFF_FFFF)               # unused offset: ignored
        for off in range(0, 0x80, 4):
            seen[off] = await host.read(ctx, off)
        seen["ports"] = (ctx.get(dut.weights), ctx.get(dut.acts), ctx.get(dut.y), ctx.get(dut.descriptors),
                         ctx.get(dut.rows), ctx.get(dut.cols), ctx.get(dut.n_descriptors))

    run(dut, program)
    assert seen[REG["WEIGHTS"]] == 0x9ABC_DEF0 and seen[REG["WEIGHTS"] + 4] == 0x1234_5678
    assert seen[REG["ACTS"]] == 0x1000 and seen[REG["ACTS"] + 4] == 0xFFFF_0000
    assert seen[REG["ROWS"]] == 0xFF_FFFF
    assert seen[REG["COLS"]] == 0x334                        # 0x1234 then byte 1 = 0xAB, 10 bits
    assert seen[REG["N_DESCRIPTORS"]] == 17
    assert seen["ports"] == (0x1234_5678_9ABC_DEF0, 0xFFFF_0000_0000_1000, 0x40, 0x8000_0000_0000_0020,
                             0xFF_FFFF, 0x334, 17)
    assert seen[REG["CTRL"]] == AP_IDLE
    assert all(seen[off] == 0 for off in (0x3C, 0x44, 0x48, 0x7C))


def test_ap_ctrl_hs_handshake_and_interrupts():
    dut = ControlRegisters(max_cols=64, max_descriptors=4)
    host = LiteHost(dut, prefix="")
    log = []

    async def program(ctx):
        ctrl = REG["CTRL"]
        await host.write(ctx, REG["IER"], 0b01)               # done only
        await host.write(ctx, ctrl, 1)
        log.append(("started", await host.read(ctx, ctrl), ctx.get(dut.ap_start)))
        ctx.set(dut.busy, 1)
        await pulse(ctx, dut.take)
        log.append(("taken", await host.read(ctx, ctrl), await host.read(ctx, ctrl)))  # ap_ready clears on read
        ctx.set(dut.cycles, 1234)
        ctx.set(dut.busy, 0)
        await pulse(ctx, dut.done)
        log.append(("irq off", ctx.get(dut.interrupt), await host.read(ctx, REG["ISR"])))
        await host.write(ctx, REG["GIE"], 1)
        log.append(("irq on", ctx.get(dut.interrupt)))
        log.append(("done", await host.read(ctx, ctrl), await host.read(ctx, ctrl), await host.read(ctx, REG["CYCLES"])))
        await host.write(ctx, REG["ISR"], 0b01)              # toggle: clears the done bit
        log.append(("cleared", ctx.get(dut.interrupt), await host.read(ctx, REG["ISR"])))
        await host.write(ctx, REG["IER"], 0b10)
        ctx.set(dut.busy, 1)
        await pulse(ctx, dut.take)                           # a start without ap_start: the ready event
        log.append(("ready irq", ctx.get(dut.interrupt), await host.read(ctx, REG["ISR"])))
        await host.write(ctx, REG["ISR"], 0b11)              # toggles both: bit 0 sets again, bit 1 clears
        log.append(("toggled", await host.read(ctx, REG["ISR"])))

    run(dut, program)
    assert log == [
        ("started", AP_START | AP_IDLE, 1),
        ("taken", AP_READY, 0),
        ("irq off", 0, 0b01),
        ("irq on", 1),
        ("done", AP_DONE | AP_IDLE, AP_IDLE, 1234),
        ("cleared", 0, 0),
        ("ready irq", 1, 0b10),
        ("toggled", 0b01),
    ]


def test_write_data_before_address():
    dut = ControlRegisters(max_cols=64, max_descriptors=4)
    got = []

    async def program(ctx):
        ctx.set(dut.wdata, 42)
        ctx.set(dut.wstrb, 0xF)
        ctx.set(dut.wvalid, 1)
        await ctx.tick()
        ctx.set(dut.wvalid, 0)
        for _ in range(3):
            await ctx.tick()
        got.append(ctx.get(dut.bvalid))
        ctx.set(dut.awaddr, REG["ROWS"])
        ctx.set(dut.awvalid, 1)
        ctx.set(dut.bready, 1)
        await ctx.tick()
        ctx.set(dut.awvalid, 0)
        while not ctx.get(dut.bvalid):
            await ctx.tick()
        await ctx.tick()
        got.append(ctx.get(dut.rows))

    run(dut, program)
    assert got == [0, 42]
