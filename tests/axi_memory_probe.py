"""cocotb bench for tests/test_axi_memory.py: cocotbext-axi's AxiMasterRead against LatencyRamRead.

Stimulus ($SEEDLM_COSIM_STIMULUS): {"latency": n, "gap": p, "bursts": [[addr, beats], ...]}.
All bursts are issued at once; the result lists the edge of every AR and R handshake and the
data each burst returned, plus the memory's protocol errors.
"""
import json
import os
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge
from cocotbext.axi import AxiMasterRead, AxiReadBus

from seedlm_fpga.sim.axi_memory import SharedMemory
from seedlm_fpga.sim.kernel_tb import PERIOD_NS, _cycle


@cocotb.test()
async def probe(dut):
    stim = json.loads(Path(os.environ["SEEDLM_COSIM_STIMULUS"]).read_text())
    Clock(dut.ap_clk, PERIOD_NS, unit="ns").start()
    memory = SharedMemory(1 << 16)
    memory.write(0, bytes(range(256)) * 256)
    from seedlm_fpga.sim.axi_memory import LatencyRamRead, pauses

    ram = LatencyRamRead(AxiReadBus.from_prefix(dut, "m_axi_gmem"), dut.ap_clk, dut.ap_rst_n, mem=memory.mem,
                         latency=stim["latency"], period_ns=PERIOD_NS, regions=memory.regions,
                         reset_active_level=False, max_burst=stim.get("max_burst", 256))
    ram.r_channel.set_pause_generator(pauses(random.Random(1), stim["gap"]))
    master = AxiMasterRead(AxiReadBus.from_prefix(dut, "m_axi_gmem"), dut.ap_clk, dut.ap_rst_n,
                           reset_active_level=False, max_burst_len=256)
    dut.ap_rst_n.value = 0
    await ClockCycles(dut.ap_clk, 3)
    dut.ap_rst_n.value = 1
    await ClockCycles(dut.ap_clk, 2)
    ar_edges, r_edges = [], []

    async def watch():
        while True:
            await RisingEdge(dut.ap_clk)
            await ReadOnly()
            if int(dut.m_axi_gmem_arvalid.value) and int(dut.m_axi_gmem_arready.value):
                ar_edges.append(_cycle() + 1)  # transfers at the next edge
            if int(dut.m_axi_gmem_rvalid.value) and int(dut.m_axi_gmem_rready.value):
                r_edges.append(_cycle() + 1)

    cocotb.start_soon(watch())
    events = [master.init_read(addr, beats * 8) for addr, beats in stim["bursts"]]
    data = []
    for ev in events:
        await ev.wait()
        data.append(ev.data.data.hex())
    out = {"ar": ar_edges, "r": r_edges, "data": data, "errors": memory.regions.errors}
    Path(os.environ["SEEDLM_COSIM_RESULT"]).write_text(json.dumps(out))
