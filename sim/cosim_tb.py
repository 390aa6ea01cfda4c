"""The cocotb testbench of a GEMV engine (format §10 ports); runs inside the simulator.

Reads its stimulus from the JSON file named by $SEEDLM_COSIM_STIMULUS::

    {"bus_bits": W, "gap": g, "ready_gap": g, "seed": s, "drain_cycles": n,
     "cases": [{"cols": c, "rows": r, "act_beats": ["hex", ...],
                "weights_file": "w0.bin", "max_cycles": n}, ...]}

and runs the cases one after another without reset (one GEMV per pass): `cols` is set,
the activation beats are streamed, then the weight image, while the output is
collected; after the last expected output it waits `drain_cycles` more with tready
high, so extra (duplicated) outputs are seen. Results, raw and unjudged, go to the JSON
file named by $SEEDLM_COSIM_RESULT; the caller compares them with the reference.

Cycles are numbered from the end of reset; a transfer's cycle is the one in which
tvalid and tready were both high (it completes at that cycle's closing edge).
"""
from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

from seedlm_fpga.sim.axi_stream import StreamSink, StreamSource


def _weight_beats(path: Path, bus_bits: int) -> list[int]:
    data = path.read_bytes()
    n = bus_bits // 8
    return [int.from_bytes(data[i:i + n], "little") for i in range(0, len(data), n)]


class _Bench:
    def __init__(self, dut, stim: dict):
        self.dut = dut
        rng = random.Random(stim.get("seed", 0))
        gap = float(stim.get("gap", 0.0))
        self.act = StreamSource(dut, "s_axis_act", rng, gap)
        self.w = StreamSource(dut, "s_axis_w", rng, gap)
        self.y = StreamSink(dut, "m_axis_y", rng, float(stim.get("ready_gap", 0.0)))
        self.ports = (self.act, self.w, self.y)
        self.cycle = 0
        self.cols: int | None = None  # applied after the next edge (no writes in ReadOnly)

    async def step(self) -> None:
        await RisingEdge(self.dut.clk)
        if self.cols is not None:
            self.dut.cols.value = self.cols
            self.cols = None
        for port in self.ports:
            port.drive()
        await ReadOnly()
        for port in self.ports:
            port.sample(self.cycle)
        self.cycle += 1

    async def run_case(self, case: dict, folder: Path, bus_bits: int, drain: int) -> dict:
        rows = int(case["rows"])
        self.cols = int(case["cols"])
        self.act.load([int(h, 16) for h in case["act_beats"]])
        weights = _weight_beats(folder / case["weights_file"], bus_bits)
        self.y.clear()
        self.y.always_ready = False
        start = self.cycle
        limit = start + int(case["max_cycles"])
        weights_loaded = False
        timeout = False
        while len(self.y.values) < rows or not (self.act.done and self.w.done):
            if self.cycle >= limit:
                timeout = True
                break
            if not weights_loaded and self.act.done:
                self.w.load(weights)  # activations go first (format §10)
                weights_loaded = True
            await self.step()
        last_expected = self.y.cycles[rows - 1] if len(self.y.cycles) >= rows else None
        self.y.always_ready = True
        for _ in range(0 if timeout else drain):
            await self.step()
        errors = list(self.y.errors)
        if timeout:
            errors.append(f"timeout after {int(case['max_cycles'])} cycles: {self.act.accepted} of "
                          f"{len(self.act.beats)} activation beats, {self.w.accepted} of {len(weights)} "
                          f"weight beats accepted, {len(self.y.values)} of {rows} outputs")
        return {
            "y": [str(v) for v in self.y.values],  # strings: Y may exceed 64 bits
            "y_last": self.y.lasts,
            "y_cycles": self.y.cycles,
            "act_accepted": self.act.accepted,
            "act_sent": len(self.act.beats),
            "w_accepted": self.w.accepted,
            "w_sent": len(weights),
            "first_act_cycle": self.act.first_cycle,
            "first_w_cycle": self.w.first_cycle,
            "last_w_cycle": self.w.last_cycle,
            "last_y_cycle": last_expected,
            "timeout": timeout,
            "errors": errors,
        }


@cocotb.test()
async def gemv_cases(dut):
    stim_path = Path(os.environ["SEEDLM_COSIM_STIMULUS"])
    stim = json.loads(stim_path.read_text())
    bench = _Bench(dut, stim)
    Clock(dut.clk, 10, unit="ns").start()
    dut.rst.value = 1
    dut.cols.value = 0
    for _ in range(int(stim.get("reset_cycles", 4))):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    t0 = time.perf_counter()
    results = []
    for case in stim["cases"]:
        results.append(await bench.run_case(case, stim_path.parent, int(stim["bus_bits"]),
                                            int(stim.get("drain_cycles", 32))))
        if results[-1]["timeout"]:
            break
    wall = time.perf_counter() - t0
    out = {"cases": results, "sim_cycles": bench.cycle, "wall_s": wall}
    tmp = Path(os.environ["SEEDLM_COSIM_RESULT"] + ".tmp")
    tmp.write_text(json.dumps(out))
    os.replace(tmp, os.environ["SEEDLM_COSIM_RESULT"])
