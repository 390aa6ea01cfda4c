"""cocotb test: the Alveo host program (`alveo_host.check_model`) on the Verilated kernel.

Stimulus ($SEEDLM_COSIM_STIMULUS, written by `alveo_host.run_verilated`): the kernel's
parameters, the model path, the kernel.xml text whose register offsets the host uses, the
number of compute units and the bytes of each CU's bank. The CUs take turns on the one
Verilated kernel; CU i's bank is the memory from base + i * bank_bytes.
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles

from seedlm_fpga.flows.deploy_alveo import read_kernel_xml
from seedlm_fpga.sim.alveo_host import ComputeUnit, RemappedPort, check_model, model_tensors
from seedlm_fpga.sim.axi_memory import SharedMemory
from seedlm_fpga.sim.kernel_host import KernelHost
from seedlm_fpga.sim.kernel_tb import PERIOD_NS, CocotbKernelPort


@cocotb.test()
async def alveo_host(dut):
    stim = json.loads(Path(os.environ["SEEDLM_COSIM_STIMULUS"]).read_text())
    Clock(dut.ap_clk, PERIOD_NS, unit="ns").start()
    instances, bank = int(stim["instances"]), int(stim["bank_bytes"])
    memory = SharedMemory(1 << (instances * bank - 1).bit_length())
    rng = random.Random(int(stim["seed"]))
    memory.attach(dut, dut.ap_clk, dut.ap_rst_n, latency=int(stim["latency"]), period_ns=PERIOD_NS,
                  gap=0.0, write_gap=0.0, rng=rng, max_burst=int(stim["max_burst"]))
    port = CocotbKernelPort(dut, memory)
    port.budget = 10_000_000
    remapped = RemappedPort(port, read_kernel_xml(stim["kernel_xml"]))
    host = KernelHost(remapped, int(stim["bus_bits"]), int(stim["max_cols"]), int(stim["max_descriptors"]))
    cus = [ComputeUnit(host, int(stim["base"]) + i * bank) for i in range(instances)]
    dut.ap_rst_n.value = 0
    await ClockCycles(dut.ap_clk, 4)
    dut.ap_rst_n.value = 1
    await ClockCycles(dut.ap_clk, 2)
    results = await check_model(cus, model_tensors(stim["model"], stim.get("limit")), int(stim["bus_bits"]),
                                int(stim["act_bits"]), int(stim["acts_per_beat"]), int(stim["seed"]))
    tmp = Path(os.environ["SEEDLM_COSIM_RESULT"] + ".tmp")
    tmp.write_text(json.dumps({"results": results, "memory_errors": list(memory.regions.errors)}))
    os.replace(tmp, os.environ["SEEDLM_COSIM_RESULT"])
