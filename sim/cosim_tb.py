"""The cocotb testbench of a GEMV engine (format §10 ports); runs inside the simulator.

Reads its stimulus from the JSON file named by $SEEDLM_COSIM_STIMULUS::

    {"bus_bits": W, "gap": g, "ready_gap": g, "seed": s, "drain_cycles": n,
     "cases": [{"cols": c, "rows": r, "act_beats": ["hex", ...],
                "weights_file": "w0.bin", "max_cycles": n}, ...]}

and runs the cases one after another without reset (one GEMV per pass): `cols` is set,
the activation beats and the weight image are queued on cocotbext-axi AxiStreamSources
(the engine takes weights only after the activation tlast), while an AxiStreamSink takes the
output. `gap` pauses each source in a cycle with that probability (memory throttle),
`ready_gap` drops the sink's tready likewise (the library's pause generators). After the last
expected output it waits `drain_cycles` more with tready high, so extra (duplicated) outputs
are seen. Results, raw and unjudged, go to the JSON file named by $SEEDLM_COSIM_RESULT; the
caller compares them with the reference.

`StreamWatch`, one coroutine per clock, stamps every transfer on the three streams with its
cycle and checks the AXI4-Stream hold rule on `m_axis_y` (cocotbext-axi has no such check):
once tvalid is high, tvalid, tdata and tlast hold until the transfer. Cycles are clock edges
counted from time 0; a transfer's cycle is the edge at which tvalid and tready are both high.
"""
from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Event, First, RisingEdge
from cocotb.utils import get_sim_time
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from seedlm_fpga.sim.axi_memory import pauses

PERIOD_NS = 10


def _weight_beats(path: Path, bus_bits: int) -> list[int]:
    data = path.read_bytes()
    n = bus_bits // 8
    return [int.from_bytes(data[i:i + n], "little") for i in range(0, len(data), n)]


class StreamWatch:
    """Per-transfer cycle stamps of the three streams and the hold-rule check on the output."""

    def __init__(self, dut):
        self.clk = dut.clk
        self.ports = {name: tuple(getattr(dut, f"{name}_{s}") for s in ("tvalid", "tready", "tdata", "tlast"))
                      for name in ("s_axis_act", "s_axis_w", "m_axis_y")}
        self.reached = Event()  # set once every stream has its `goal` transfers
        self.clear()

    def clear(self, goal: dict[str, int] | None = None) -> None:
        self.goal = goal or {}
        self.reached.clear()
        self.cycles: dict[str, list[int]] = {name: [] for name in self.ports}
        self.values: list[int] = []
        self.lasts: list[bool] = []
        self.errors: list[str] = []
        self._pending: tuple[int, int] | None = None  # the output offered but not taken

    async def run(self) -> None:
        edge = RisingEdge(self.clk)
        y_valid, y_ready, y_data, y_last = self.ports["m_axis_y"]
        inputs = [(name, self.ports[name][0], self.ports[name][1]) for name in ("s_axis_act", "s_axis_w")]
        while True:
            await edge  # values before the edge: what this edge transfers
            cycle = round(get_sim_time("ns") / PERIOD_NS)
            for name, valid, ready in inputs:
                if int(valid.value) and int(ready.value):
                    self.cycles[name].append(cycle)
            if not int(y_valid.value):
                if self._pending is not None:
                    self.errors.append(f"m_axis_y: tvalid dropped before the transfer (cycle {cycle})")
                    self._pending = None
                continue
            now = (y_data.value.to_signed(), int(y_last.value))
            if self._pending is not None and self._pending != now:
                self.errors.append(f"m_axis_y: tdata/tlast changed while tvalid waited for tready (cycle {cycle})")
            if int(y_ready.value):
                self.values.append(now[0])
                self.lasts.append(bool(now[1]))
                self.cycles["m_axis_y"].append(cycle)
                self._pending = None
                if all(len(self.cycles[n]) >= k for n, k in self.goal.items()):
                    self.reached.set()
            else:
                self._pending = now


class _Bench:
    def __init__(self, dut, stim: dict):
        self.dut = dut
        rng = random.Random(stim.get("seed", 0))
        gap = float(stim.get("gap", 0.0))
        self.ready_gap = float(stim.get("ready_gap", 0.0))
        self.rng = rng
        # byte_lanes=1: one "byte" is a whole beat, so frames are lists of beat integers
        self.act = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis_act"), dut.clk, dut.rst, byte_lanes=1)
        self.w = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis_w"), dut.clk, dut.rst, byte_lanes=1)
        self.y = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis_y"), dut.clk, dut.rst, byte_lanes=1)
        for source in (self.act, self.w):
            source.set_pause_generator(pauses(rng, gap))
        self.watch = StreamWatch(dut)
        cocotb.start_soon(self.watch.run())

    async def run_case(self, case: dict, folder: Path, bus_bits: int, drain: int) -> dict:
        rows = int(case["rows"])
        acts = [int(h, 16) for h in case["act_beats"]]
        weights = _weight_beats(folder / case["weights_file"], bus_bits)
        self.dut.cols.value = int(case["cols"])
        self.watch.clear({"s_axis_act": len(acts), "s_axis_w": len(weights), "m_axis_y": rows})
        self.y.set_pause_generator(pauses(self.rng, self.ready_gap))
        self.act.send_nowait(AxiStreamFrame(acts))
        self.w.send_nowait(AxiStreamFrame(weights))  # taken after the activation tlast (format §10)
        seen = self.watch.cycles
        timer = ClockCycles(self.dut.clk, int(case["max_cycles"]))
        # the last output comes after the last input beat (each row's Y follows its beats)
        timeout = await First(self.watch.reached.wait(), timer) is timer
        last_expected = seen["m_axis_y"][rows - 1] if len(seen["m_axis_y"]) >= rows else None
        self.y.clear_pause_generator()
        self.y.pause = False
        if timeout:
            self.act.clear()
            self.w.clear()
        else:
            await ClockCycles(self.dut.clk, drain)
        self.y.clear()  # the frames it assembled: the watch has every transfer
        errors = list(self.watch.errors)
        n_act, n_w = len(seen["s_axis_act"]), len(seen["s_axis_w"])
        if timeout:
            errors.append(f"timeout after {int(case['max_cycles'])} cycles: {n_act} of {len(acts)} activation "
                          f"beats, {n_w} of {len(weights)} weight beats accepted, {len(self.watch.values)} of "
                          f"{rows} outputs")
        return {
            "y": [str(v) for v in self.watch.values],  # strings: Y may exceed 64 bits
            "y_last": self.watch.lasts,
            "y_cycles": seen["m_axis_y"],
            "act_accepted": n_act,
            "act_sent": len(acts),
            "w_accepted": n_w,
            "w_sent": len(weights),
            "first_act_cycle": seen["s_axis_act"][0] if n_act else None,
            "first_w_cycle": seen["s_axis_w"][0] if n_w else None,
            "last_w_cycle": seen["s_axis_w"][-1] if n_w else None,
            "last_y_cycle": last_expected,
            "timeout": timeout,
            "errors": errors,
        }


@cocotb.test()
async def gemv_cases(dut):
    stim_path = Path(os.environ["SEEDLM_COSIM_STIMULUS"])
    stim = json.loads(stim_path.read_text())
    Clock(dut.clk, PERIOD_NS, unit="ns").start()
    dut.rst.value = 1
    dut.cols.value = 0
    bench = _Bench(dut, stim)
    await ClockCycles(dut.clk, int(stim.get("reset_cycles", 4)))
    dut.rst.value = 0
    start = round(get_sim_time("ns") / PERIOD_NS)
    t0 = time.perf_counter()
    results = []
    for case in stim["cases"]:
        results.append(await bench.run_case(case, stim_path.parent, int(stim["bus_bits"]),
                                            int(stim.get("drain_cycles", 32))))
        if results[-1]["timeout"]:
            break
    wall = time.perf_counter() - t0
    out = {"cases": results, "sim_cycles": round(get_sim_time("ns") / PERIOD_NS) - start, "wall_s": wall}
    tmp = Path(os.environ["SEEDLM_COSIM_RESULT"] + ".tmp")
    tmp.write_text(json.dumps(out))
    os.replace(tmp, os.environ["SEEDLM_COSIM_RESULT"])
