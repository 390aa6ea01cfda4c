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
from pathlib import Path

import cocotb

from seedlm_fpga.sim.kernel_tb import run_case, start_bench


@cocotb.test()
async def serve_starts(dut):
    stim_path = Path(os.environ["SEEDLM_COSIM_STIMULUS"])
    stim = json.loads(stim_path.read_text())
    memory, port, host = await start_bench(dut, stim)  # the serving memory never pauses
    served = 0
    with open(stim["requests"]) as requests, open(stim["responses"], "w") as responses:
        for line in requests:
            if not line.strip():
                break
            memory.regions.errors.clear()
            result = await run_case(host, port, memory, json.loads(line), stim, stim_path.parent)
            responses.write(json.dumps(result) + "\n")
            responses.flush()
            served += 1
            if result["timeout"]:
                break
    tmp = Path(os.environ["SEEDLM_COSIM_RESULT"] + ".tmp")
    tmp.write_text(json.dumps({"served": served}))
    os.replace(tmp, os.environ["SEEDLM_COSIM_RESULT"])
