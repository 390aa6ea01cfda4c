"""A cocotb testbench that serves kernel starts on request; runs inside the simulator.

sim/kernel_tb.py runs a fixed list of starts; a decode run does not know its next start before
the previous one's Y is back. This bench sets up the kernel once (clock, reset, the shared AXI
memory of sim/axi_memory.py, the host driver of sim/kernel_host.py) and then reads one JSON
request per line from the FIFO named in the stimulus ("requests"), runs it as kernel_tb runs a
case (same fields: cols, acts_file, descriptors, max_cycles, gemvs) and writes one JSON result
per line to the "responses" FIFO (kernel_tb's result fields). Blocking on the FIFO stops the
simulator's clock too, so waiting costs no simulated cycles. An empty line or end of file ends
the run; the result file then records how many starts were served.
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles

from seedlm_fpga.core.engine_shape import AXI_MAX_BURST
from seedlm_fpga.sim.axi_memory import SharedMemory
from seedlm_fpga.sim.kernel_tb import PERIOD_NS, CocotbKernelPort, _PollingHost, _run_case


@cocotb.test()
async def serve_starts(dut):
    stim_path = Path(os.environ["SEEDLM_COSIM_STIMULUS"])
    stim = json.loads(stim_path.read_text())
    rng = random.Random(int(stim.get("seed", 0)))
    Clock(dut.ap_clk, PERIOD_NS, unit="ns").start()
    memory = SharedMemory(int(stim["mem_bytes"]))
    memory.attach(dut, dut.ap_clk, dut.ap_rst_n, latency=int(stim.get("latency", 0)), period_ns=PERIOD_NS,
                  gap=0.0, write_gap=0.0, rng=rng, max_burst=int(stim.get("max_burst", AXI_MAX_BURST)))
    port = CocotbKernelPort(dut, memory)
    host = _PollingHost(port, int(stim["bus_bits"]), int(stim["max_cols"]), int(stim["max_descriptors"]))
    dut.ap_rst_n.value = 0
    await ClockCycles(dut.ap_clk, 4)
    dut.ap_rst_n.value = 1
    await ClockCycles(dut.ap_clk, 2)
    served = 0
    with open(stim["requests"]) as requests, open(stim["responses"], "w") as responses:
        for line in requests:
            if not line.strip():
                break
            memory.regions.errors.clear()
            result = await _run_case(host, port, memory, json.loads(line), stim, stim_path.parent)
            responses.write(json.dumps(result) + "\n")
            responses.flush()
            served += 1
            if result["timeout"]:
                break
    tmp = Path(os.environ["SEEDLM_COSIM_RESULT"] + ".tmp")
    tmp.write_text(json.dumps({"served": served}))
    os.replace(tmp, os.environ["SEEDLM_COSIM_RESULT"])
