"""The cocotb testbench of a memory-mapped kernel (format §11); runs inside the simulator.

Reads its stimulus from the JSON file named by $SEEDLM_COSIM_STIMULUS::

    {"bus_bits": W, "latency": n, "gap": p, "write_gap": p, "seed": s, "interrupt": true,
     "mem_bytes": 2^k, "base": b, "skew": s, "max_cols": c, "max_descriptors": d, "max_burst": m,
     "cases": [{"cols": c, "acts_file": "a0.bin", "descriptors": true, "max_cycles": n,
                "gemvs": [{"weights_file": "w0.0.bin", "rows": r}, ...]}, ...]}

One shared memory (sim/axi_memory.py) serves both AXI4 bundles with `latency` cycles of read
latency, R pauses with probability `gap`, W/B pauses with probability `write_gap` (output
back-pressure). The host driver (sim/kernel_host.py) runs the cases one start after another
without reset, through AxiLiteMaster. Besides the CYCLES register, the bench counts each start
itself: from the clock edge of the CTRL write that sets ap_start (W handshake) to the edge at
which `interrupt` rises (the interrupt is enabled for this in both modes; `interrupt` false
makes the host poll CTRL instead of waiting on it). Results, raw and unjudged, go to the JSON
file named by $SEEDLM_COSIM_RESULT.
"""
from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, First, RisingEdge
from cocotb.utils import get_sim_time
from cocotbext.axi import AxiLiteBus, AxiLiteMaster

from seedlm_fpga.core.engine_shape import AP_DONE, AP_START, AXI_MAX_BURST
from seedlm_fpga.sim.axi_memory import SharedMemory
from seedlm_fpga.sim.kernel_host import IRQ_DONE, REG, KernelGemv, KernelHost, KernelJob, KernelPort, plan_layout

PERIOD_NS = 10


def _cycle() -> int:
    return round(get_sim_time("ns") / PERIOD_NS)


class KernelTimeout(Exception):
    pass


class CocotbKernelPort(KernelPort):
    """KernelPort on the Verilated kernel: AxiLiteMaster registers, the shared memory.

    It stamps the edge of the CTRL write that sets ap_start (`start_edge`) and waits on the
    `interrupt` pin with a cycle budget (`budget`, set per start).
    """

    def __init__(self, dut, memory: SharedMemory):
        self.dut = dut
        self.memory = memory
        self.ctrl = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axi_control"), dut.ap_clk, dut.ap_rst_n,
                                  reset_active_level=False)
        self.start_edge: int | None = None
        self.irq_edge: int | None = None
        self.budget = 0

    async def _stamp_write(self) -> None:
        clk, wvalid, wready = self.dut.ap_clk, self.dut.s_axi_control_wvalid, self.dut.s_axi_control_wready
        while True:
            await RisingEdge(clk)
            if int(wvalid.value) and int(wready.value):
                self.start_edge = _cycle()
                return

    async def _stamp_irq(self) -> None:
        await RisingEdge(self.dut.interrupt)
        self.irq_edge = _cycle()

    async def write_reg(self, offset: int, value: int) -> None:
        if offset == REG["CTRL"] and value & AP_START:
            self.start_edge = self.irq_edge = None
            cocotb.start_soon(self._stamp_write())
            cocotb.start_soon(self._stamp_irq())
        await self.ctrl.write_dword(offset, value)

    async def read_reg(self, offset: int) -> int:
        return await self.ctrl.read_dword(offset)

    def write_mem(self, addr: int, data: bytes) -> None:
        self.memory.write(addr, data)

    def read_mem(self, addr: int, n: int) -> bytes:
        return self.memory.read(addr, n)

    async def wait_interrupt(self) -> None:
        if int(self.dut.interrupt.value):
            return
        timer = ClockCycles(self.dut.ap_clk, self.budget)
        if await First(RisingEdge(self.dut.interrupt), timer) is timer:
            raise KernelTimeout


class PollingHost(KernelHost):
    """Polls CTRL within the port's cycle budget (the plain host polls forever)."""

    async def wait_done(self, interrupt: bool) -> int:
        if interrupt:
            return await super().wait_done(True)
        deadline = _cycle() + self.port.budget
        while _cycle() < deadline:
            ctrl = await self.port.read_reg(REG["CTRL"])
            if ctrl & AP_DONE:
                return ctrl
        raise KernelTimeout


def _job(case: dict, folder: Path) -> KernelJob:
    gemvs = tuple(KernelGemv((folder / g["weights_file"]).read_bytes(), int(g["rows"]),
                             (folder / g["ext_file"]).read_bytes() if g.get("ext_file") else b"")
                  for g in case["gemvs"])
    return KernelJob(int(case["cols"]), (folder / case["acts_file"]).read_bytes(), gemvs,
                     bool(case["descriptors"]))


async def run_case(host: PollingHost, port: CocotbKernelPort, memory: SharedMemory, case: dict,
                    stim: dict, folder: Path) -> dict:
    job = _job(case, folder)
    layout = plan_layout(job, int(stim["bus_bits"]), int(stim.get("base", 0)), int(stim.get("skew", 0)))
    memory.regions.read = [(b.addr, b.addr + b.size, b.name) for b in layout.readable()]
    memory.regions.write = [(b.addr, b.addr + b.size, b.name) for b in layout.writable()]
    port.budget = int(case["max_cycles"])
    interrupt = bool(stim.get("interrupt", True))
    errors: list[str] = []
    try:
        host.load(job, layout)
        await host.program(job, layout, interrupt=True)  # the pin times the start in both modes
        await host.start()
        ctrl = await host.wait_done(interrupt)
        if not interrupt:  # the pin rises with ap_done (IER done set); clear it for the next start
            await port.write_reg(REG["ISR"], IRQ_DONE)
        y = host.read_y(job, layout)
        cycles = await port.read_reg(REG["CYCLES"])
        ctrl_again = await port.read_reg(REG["CTRL"])  # ap_done clears on read
        timeout = False
    except KernelTimeout:
        y, cycles, ctrl, ctrl_again, timeout = [], None, None, None, True
        errors.append(f"timeout: no ap_done within {case['max_cycles']} cycles")
    irq_low = int(port.dut.interrupt.value) == 0
    tb_cycles = (port.irq_edge - port.start_edge
                 if port.irq_edge is not None and port.start_edge is not None else None)
    return {"y": [[str(v) for v in rows] for rows in y], "cycles_register": cycles, "tb_cycles": tb_cycles,
            "ctrl_after_done": ctrl, "ctrl_read_again": ctrl_again, "irq_cleared": irq_low,
            "start_edge": port.start_edge, "irq_edge": port.irq_edge, "timeout": timeout, "errors": errors,
            "memory_errors": list(memory.regions.errors)}


async def start_bench(dut, stim: dict, reset_cycles: int = 4) -> tuple[SharedMemory, CocotbKernelPort, PollingHost]:
    """Clock, the shared AXI memory of `stim` (latency, pauses), the register port and host; reset."""
    rng = random.Random(int(stim.get("seed", 0)))
    Clock(dut.ap_clk, PERIOD_NS, unit="ns").start()
    memory = SharedMemory(int(stim["mem_bytes"]))
    memory.attach(dut, dut.ap_clk, dut.ap_rst_n, latency=int(stim.get("latency", 0)), period_ns=PERIOD_NS,
                  gap=float(stim.get("gap", 0.0)), write_gap=float(stim.get("write_gap", 0.0)), rng=rng,
                  max_burst=int(stim.get("max_burst", AXI_MAX_BURST)))
    port = CocotbKernelPort(dut, memory)
    host = PollingHost(port, int(stim["bus_bits"]), int(stim["max_cols"]), int(stim["max_descriptors"]))
    dut.ap_rst_n.value = 0
    await ClockCycles(dut.ap_clk, reset_cycles)
    dut.ap_rst_n.value = 1
    await ClockCycles(dut.ap_clk, 2)
    return memory, port, host


@cocotb.test()
async def kernel_cases(dut):
    stim_path = Path(os.environ["SEEDLM_COSIM_STIMULUS"])
    stim = json.loads(stim_path.read_text())
    memory, port, host = await start_bench(dut, stim, int(stim.get("reset_cycles", 4)))
    t0 = time.perf_counter()
    results = []
    for case in stim["cases"]:
        memory.regions.errors.clear()
        results.append(await run_case(host, port, memory, case, stim, stim_path.parent))
        if results[-1]["timeout"]:
            break
    wall = time.perf_counter() - t0
    out = {"cases": results, "sim_cycles": _cycle(), "wall_s": wall}
    tmp = Path(os.environ["SEEDLM_COSIM_RESULT"] + ".tmp")
    tmp.write_text(json.dumps(out))
    os.replace(tmp, os.environ["SEEDLM_COSIM_RESULT"])
