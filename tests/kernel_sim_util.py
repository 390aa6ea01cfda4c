"""A `GemvKernel` in Amaranth's simulator: a Python AXI memory and an AXI4-Lite host.

`AxiMemory` answers `m_axi_gmem` (reads) and `m_axi_io` (reads and writes) of the kernel:
every AR is answered `read_latency` cycles after its handshake (R in order, one beat per cycle,
paused at random with probability `r_pause`); AR/AW/W ready are low at random with probability
`ready_stall`; B comes `write_latency` cycles after a burst's last W beat (plus random pauses
with `b_pause`). It checks each burst against format §11.1 (INCR, full width, <= max_burst,
no 4 KB crossing) and records them. All decisions for a cycle are taken at its start from the
kernel's registered outputs (the kernel's valid signals depend on registers only).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from amaranth.sim import Simulator

from seedlm_fpga.core.engine_shape import AP_DONE, AXI_BOUNDARY, KERNEL_REGISTERS


@dataclass
class AxiMemory:
    size: int
    read_latency: int = 0
    write_latency: int = 0
    r_pause: float = 0.0
    ready_stall: float = 0.0
    b_pause: float = 0.0
    max_burst: int = 256
    seed: int = 0
    data: bytearray = field(init=False)
    bursts: dict = field(init=False)
    cycle: int = 0

    def __post_init__(self):
        self.data = bytearray(self.size)
        self.bursts = {"gmem_ar": [], "io_ar": [], "io_aw": []}
        self.rng = random.Random(self.seed)

    def put(self, addr: int, blob: bytes):
        self.data[addr:addr + len(blob)] = blob

    def _check(self, kind: str, addr: int, beats: int, size: int, burst: int, bytes_per_beat: int):
        assert burst == 1 and 1 << size == bytes_per_beat, (kind, burst, size)
        assert addr % bytes_per_beat == 0 and beats <= self.max_burst, (kind, addr, beats)
        assert addr // AXI_BOUNDARY == (addr + beats * bytes_per_beat - 1) // AXI_BOUNDARY, (kind, addr, beats)
        self.bursts[kind].append((addr, beats))

    def _stall(self, p):
        return p > 0 and self.rng.random() < p

    async def process(self, ctx, k, gmem_bytes: int):
        read_q = {"gmem": [], "io": []}
        aw_q, b_q = [], []
        w_beat = 0
        while True:
            c = self.cycle
            for bundle, nbytes in (("gmem", gmem_bytes), ("io", 8)):
                p = f"m_axi_{bundle}_"
                ready = not self._stall(self.ready_stall)
                ctx.set(getattr(k, p + "arready"), ready)
                if ready and ctx.get(getattr(k, p + "arvalid")):
                    addr, beats = ctx.get(getattr(k, p + "araddr")), ctx.get(getattr(k, p + "arlen")) + 1
                    self._check(f"{bundle}_ar", addr, beats, ctx.get(getattr(k, p + "arsize")),
                                ctx.get(getattr(k, p + "arburst")), nbytes)
                    read_q[bundle].append([addr, beats, c + self.read_latency])
                q = read_q[bundle]
                if q and q[0][2] <= c and not self._stall(self.r_pause):
                    addr = q[0][0]
                    ctx.set(getattr(k, p + "rdata"), int.from_bytes(self.data[addr:addr + nbytes], "little"))
                    ctx.set(getattr(k, p + "rlast"), q[0][1] == 1)
                    ctx.set(getattr(k, p + "rvalid"), 1)
                    assert ctx.get(getattr(k, p + "rready"))
                    q[0][0] += nbytes
                    q[0][1] -= 1
                    if q[0][1] == 0:
                        q.pop(0)
                else:
                    ctx.set(getattr(k, p + "rvalid"), 0)
            ready = not self._stall(self.ready_stall)
            ctx.set(k.m_axi_io_awready, ready)
            if ready and ctx.get(k.m_axi_io_awvalid):
                addr, beats = ctx.get(k.m_axi_io_awaddr), ctx.get(k.m_axi_io_awlen) + 1
                self._check("io_aw", addr, beats, ctx.get(k.m_axi_io_awsize), ctx.get(k.m_axi_io_awburst), 8)
                aw_q.append([addr, beats])
            ready = not self._stall(self.ready_stall)
            ctx.set(k.m_axi_io_wready, ready)
            if ready and ctx.get(k.m_axi_io_wvalid):
                assert aw_q, "W beat before its AW"
                addr, beats = aw_q[0]
                assert ctx.get(k.m_axi_io_wstrb) == 0xFF
                self.put(addr + 8 * w_beat, ctx.get(k.m_axi_io_wdata).to_bytes(8, "little"))
                w_beat += 1
                assert ctx.get(k.m_axi_io_wlast) == (w_beat == beats), "WLAST"
                if w_beat == beats:
                    aw_q.pop(0)
                    w_beat = 0
                    b_q.append(c + self.write_latency)
            if b_q and b_q[0] <= c and not self._stall(self.b_pause):
                ctx.set(k.m_axi_io_bvalid, 1)
                assert ctx.get(k.m_axi_io_bready)
                b_q.pop(0)
            else:
                ctx.set(k.m_axi_io_bvalid, 0)
            await ctx.tick()
            self.cycle += 1


class LiteHost:
    """AXI4-Lite master on `s_axi_control` (``prefix=""``: a bare `ControlRegisters`)."""

    def __init__(self, kernel, prefix: str = "s_axi_control_"):
        self.k = _Prefixed(kernel, prefix)

    async def write(self, ctx, offset: int, value: int, strb: int = 0xF):
        k = self.k
        ctx.set(k.s_axi_control_awaddr, offset)
        ctx.set(k.s_axi_control_wdata, value & 0xFFFFFFFF)
        ctx.set(k.s_axi_control_wstrb, strb)
        ctx.set(k.s_axi_control_awvalid, 1)
        ctx.set(k.s_axi_control_wvalid, 1)
        ctx.set(k.s_axi_control_bready, 1)
        aw = w = False
        while not (aw and w):
            _, _, awr, wr = await ctx.tick().sample(k.s_axi_control_awready, k.s_axi_control_wready)
            aw, w = aw or awr, w or wr
            if aw:
                ctx.set(k.s_axi_control_awvalid, 0)
            if w:
                ctx.set(k.s_axi_control_wvalid, 0)
        while True:
            _, _, bvalid = await ctx.tick().sample(k.s_axi_control_bvalid)
            if bvalid:
                break
        ctx.set(k.s_axi_control_bready, 0)

    async def write64(self, ctx, offset: int, value: int):
        await self.write(ctx, offset, value & 0xFFFFFFFF)
        await self.write(ctx, offset + 4, value >> 32)

    async def read(self, ctx, offset: int) -> int:
        k = self.k
        ctx.set(k.s_axi_control_araddr, offset)
        ctx.set(k.s_axi_control_arvalid, 1)
        ctx.set(k.s_axi_control_rready, 1)
        while True:
            _, _, arready = await ctx.tick().sample(k.s_axi_control_arready)
            if arready:
                break
        ctx.set(k.s_axi_control_arvalid, 0)
        while True:
            _, _, rvalid, rdata = await ctx.tick().sample(k.s_axi_control_rvalid, k.s_axi_control_rdata)
            if rvalid:
                break
        ctx.set(k.s_axi_control_rready, 0)
        return rdata

    async def start_and_wait(self, ctx, max_polls: int = 100_000) -> int:
        """Write ap_start, poll CTRL until ap_done; return CYCLES."""
        regs = KERNEL_REGISTERS
        await self.write(ctx, regs["CTRL"], 1)
        for _ in range(max_polls):
            if await self.read(ctx, regs["CTRL"]) & AP_DONE:
                return await self.read(ctx, regs["CYCLES"])
        raise AssertionError("ap_done never came")


class _Prefixed:
    def __init__(self, dut, prefix: str):
        self.dut, self.prefix = dut, prefix

    def __getattr__(self, name: str):
        return getattr(self.dut, name.replace("s_axi_control_", self.prefix))


def simulate(kernel, memory: AxiMemory, host_program, vcd: str | None = None):
    """Run `host_program(ctx, host)` against `kernel` with `memory` on its AXI masters."""
    sim = Simulator(kernel)
    gmem_bytes = len(kernel.m_axi_gmem_rdata) // 8

    async def clock(ctx):
        while True:
            ctx.set(kernel.ap_clk, 0)
            await ctx.delay(5e-9)
            ctx.set(kernel.ap_clk, 1)
            await ctx.delay(5e-9)

    async def main(ctx):
        ctx.set(kernel.ap_rst_n, 0)
        await ctx.tick()
        ctx.set(kernel.ap_rst_n, 1)
        await host_program(ctx, LiteHost(kernel))

    async def mem(ctx):
        await memory.process(ctx, kernel, gmem_bytes)

    sim.add_process(clock)
    sim.add_testbench(mem, background=True)
    sim.add_testbench(main)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
