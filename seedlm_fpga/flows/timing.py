"""Static timing estimate of a yosys Xilinx netlist (no open place and route for Xilinx).

`longest_path` walks the netlist ``write_json`` leaves after ``synth_xilinx``: register, DSP,
block RAM and LUT-RAM/SRL outputs start paths, their data inputs end them, and every
combinational cell in between (LUT1..LUT6, INV, MUXF7/8/9, CARRY4/CARRY8, an unregistered
DSP48E2) adds its delay and, on its input, one routed net. The worst register-to-register
path gives the estimated Fmax; ``fmax_estimate`` also caps it by the data-sheet Fmax of any
registered DSP48E2 configuration in the design. Paths from or to the top's ports are not
counted (out of context: the ports meet registers of the surrounding design).

Figures (UltraScale+, speed grade -2 at VCCINT 0.85 V, the U280's xcu280-2L run at 0.85 V):

- cited, AMD DS923 v1.20 (2024-08-09), "DSP48 Slice Switching Characteristics", -2 column:
  FMAX with all registers used 775 MHz; two-register multiply without MREG 544 MHz; without
  pipeline registers (MREG, ADREG) 410 MHz.
- assumed (labelled, not cited: DS923 as found lists no CLB, carry or block-RAM timing), see
  `ASSUMED`: LUT delay, routed-net delay per level, flip-flop clock-to-out and setup, carry
  entry and per-bit delay, wide-mux delay, block-RAM / LUT-RAM clock-to-out and setup, and the
  combinational A/B -> P delay of a DSP48E2 with no registers, taken as the period of DS923's
  410 MHz (its internal register overheads are then counted as logic: pessimistic by them).

Counts are exact for the netlist; the delay is a model: real routing varies per net and a
placer
may do better or worse. Treat the result as a pre-layout estimate, not a timing sign-off.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

#: Cited figures: DS923 v1.20, DSP48 Slice Switching Characteristics, -2 at 0.85 V (MHz).
DS923 = "AMD DS923 v1.20 (Virtex UltraScale+ data sheet), DSP48 Slice Switching Characteristics, -2, 0.85 V"
DSP_FMAX_ALL_REGS = 775.0
DSP_FMAX_NO_MREG = 544.0
DSP_FMAX_NO_PIPELINE_REGS = 410.0

#: Assumed figures (ns), each with its reasoning: none of these was found in DS923.
ASSUMED = {
    "lut_ns": (0.10, "LUT input to output (T_ILO-like); order of magnitude of UltraScale+ LUT cell delays"),
    "net_ns": (0.30, "average routed net per logic level; short local routes are ~0.1 ns, "
                     "longer ones 0.5 ns and more"),
    "ff_clk_to_q_ns": (0.10, "FDRE/FDSE clock to Q"),
    "ff_setup_ns": (0.05, "FDRE/FDSE D or CE setup"),
    "carry_entry_ns": (0.15, "S/DI input into a CARRY4/CARRY8 through its first bit and out"),
    "carry_bit_ns": (0.015, "each further carry bit along the chain (dedicated carry routing)"),
    "muxf_ns": (0.10, "MUXF7/F8/F9 wide multiplexer"),
    "bram_clk_to_out_ns": (0.90, "RAMB36E2/RAMB18E2 clock to DOUT without output register (by analogy "
                                 "with Versal DS958 -2: 0.90 ns, not an UltraScale+ figure)"),
    "bram_clk_to_out_reg_ns": (0.30, "the same with the output register (DS958 analogy: 0.26 ns)"),
    "bram_setup_ns": (0.40, "block RAM address/data/enable setup"),
    "lutram_clk_to_out_ns": (0.90, "LUT-RAM / SRL clock to output (write-clock path)"),
    "dsp_clk_to_out_ns": (0.35, "DSP48E2 P register clock to out"),
    "dsp_setup_ns": (0.35, "DSP48E2 A/B/C input register setup"),
}


def _ns(key: str) -> float:
    return ASSUMED[key][0]


#: A/B -> P through a DSP48E2 without registers: the period of DS923's no-pipeline Fmax.
DSP_COMB_NS = round(1000.0 / DSP_FMAX_NO_PIPELINE_REGS, 3)

#: Input pins fed by dedicated (not general) routing: no net delay.
_DEDICATED = {"CI", "CI_TOP", "CYINIT", "PCIN", "ACIN", "BCIN", "CARRYCASCIN", "MULTSIGNIN"}
_CLOCKS = {"C", "CLK", "WCLK", "CLKARDCLK", "CLKBWRCLK", "CLKA", "CLKB"}


def _int(param) -> int:
    """A yosys JSON parameter as an integer (binary string, or int)."""
    if isinstance(param, int):
        return param
    s = str(param)
    return int(s, 2) if s and set(s) <= {"0", "1"} else 0


class _Cell:
    """How one cell type times: combinational arcs, path starts and path ends."""

    def __init__(self, name: str, cell: dict):
        self.name, self.type = name, cell["type"]
        self.dirs = cell.get("port_directions", {})
        self.conn = cell.get("connections", {})
        self.params = cell.get("parameters", {})

    def ins(self):
        return [p for p, d in self.dirs.items() if d == "input" and p not in _CLOCKS]

    def outs(self):
        return [p for p, d in self.dirs.items() if d == "output"]


def _arcs(c: _Cell):
    """(combinational arcs, starts, ends) of a cell.

    arcs: {(out_pin, out_idx): [(in_pin, in_idx, delay_ns, kind, carry_bits)]}; kind is
    "lut", "carry", "muxf" or "dsp". starts: {(out_pin, out_idx): clock-to-out ns};
    ends: {(in_pin, in_idx): setup ns}.
    """
    t = c.type
    arcs, starts, ends = {}, {}, {}

    def width(pin):
        return len(c.conn.get(pin, []))

    def all_in(delay, kind, pins=None):
        return [(p, i, delay, kind, 0) for p in (pins or c.ins()) for i in range(width(p))]

    if re.fullmatch(r"LUT[1-6]|INV|BUF", t):
        arcs[("O", 0)] = all_in(_ns("lut_ns") if t != "BUF" else 0.0, "lut" if t != "BUF" else "buf")
    elif re.fullmatch(r"MUXF[789]", t):
        arcs[("O", 0)] = all_in(_ns("muxf_ns"), "muxf")
    elif t in ("CARRY4", "CARRY8"):
        n = 4 if t == "CARRY4" else 8
        for out in ("O", "CO"):
            for j in range(min(n, width(out))):
                lst = []
                for p in ("CI", "CYINIT"):
                    for i in range(width(p)):
                        lst.append((p, i, _ns("carry_bit_ns") * (j + 1), "carry", j + 1))
                if t == "CARRY8" and width("CI_TOP") and j >= 4:
                    lst.append(("CI_TOP", 0, _ns("carry_bit_ns") * (j - 3), "carry", j - 3))
                for p in ("S", "DI"):
                    for i in range(min(j + 1, width(p))):
                        lst.append((p, i, _ns("carry_entry_ns") + _ns("carry_bit_ns") * (j - i), "carry", j - i + 1))
                arcs[(out, j)] = lst
    elif t.startswith("DSP48"):
        preg = _int(c.params.get("PREG", 1))
        reg_of = {"A": "AREG", "B": "BREG", "C": "CREG", "D": "DREG"}
        comb_ins, reg_ins = [], []
        for p in c.ins():
            key = reg_of.get(p)
            registered = _int(c.params.get(key, 1)) > 0 if key else _int(c.params.get(p + "REG", 0)) > 0
            (reg_ins if registered else comb_ins).append(p)
        for p in reg_ins:
            for i in range(width(p)):
                ends[(p, i)] = _ns("dsp_setup_ns")
        for p in c.outs():
            for j in range(width(p)):
                if preg:
                    starts[(p, j)] = _ns("dsp_clk_to_out_ns")
                else:
                    if reg_ins:
                        starts[(p, j)] = DSP_COMB_NS
                    arcs[(p, j)] = all_in(DSP_COMB_NS, "dsp", comb_ins)
        if preg:
            for p in comb_ins:
                for i in range(width(p)):
                    ends[(p, i)] = DSP_COMB_NS
    elif t.startswith(("RAMB", "FIFO", "URAM")):
        out_reg = _int(c.params.get("DOA_REG", 0)) or _int(c.params.get("DOB_REG", 0)) \
            or _int(c.params.get("OREG_A", 0))
        cko = _ns("bram_clk_to_out_reg_ns") if out_reg else _ns("bram_clk_to_out_ns")
        starts = {(p, j): cko for p in c.outs() for j in range(width(p))}
        ends = {(p, i): _ns("bram_setup_ns") for p in c.ins() for i in range(width(p))}
    elif t.startswith(("RAM", "SRL")):
        # LUT-RAM / shift register: the address reads the LUT like a logic input; the
        # contents change at the (write) clock; data and write enable are captured
        addr = [p for p in c.ins() if p.startswith(("ADDR", "A", "DPRA", "RADR")) and not p.startswith("AD_")]
        for p in c.outs():
            for j in range(width(p)):
                starts[(p, j)] = _ns("lutram_clk_to_out_ns")
                arcs[(p, j)] = all_in(_ns("lut_ns"), "lut", addr)
        ends = {(p, i): _ns("ff_setup_ns") for p in c.ins() if p not in addr for i in range(width(p))}
    elif re.fullmatch(r"FD[RSCP]E(_1)?|FDCPE|LD[CP]E", t):
        starts = {(p, j): _ns("ff_clk_to_q_ns") for p in c.outs() for j in range(width(p))}
        ends = {(p, i): _ns("ff_setup_ns") for p in c.ins() for i in range(width(p))}
    elif t in ("GND", "VCC") or t.startswith("$scopeinfo"):
        pass
    else:
        return None
    return arcs, starts, ends


def _bit(x):
    return x if isinstance(x, int) else None   # "0", "1", "x", "z": constants, never timed


def longest_path(netlist: dict | str | Path, top: str | None = None) -> dict:
    """The worst register-to-register path of a yosys JSON netlist (see module docstring).

    Returns {"delay_ns", "fmax_mhz", "lut_levels", "carry_cells", "carry_bits", "muxf",
    "dsp_comb", "start": {cell, type, pin}, "end": {...}, "cells": [(name, type) along the
    path], "unknown_cells": {type: count}} (delay None when no path exists).
    """
    if not isinstance(netlist, dict):
        netlist = json.loads(Path(netlist).read_text())
    modules = netlist["modules"]
    if top is None:
        tops = [n for n, m in modules.items() if _int(m.get("attributes", {}).get("top", 0))]
        top = tops[0] if tops else next(iter(modules))
    cells = modules[top]["cells"]

    driver = {}            # bit -> (cell, out_pin, out_idx)
    start_t = {}           # bit -> clock-to-out
    ends = []              # (bit, cell, pin, setup)
    info = {}
    unknown: dict[str, int] = {}
    for name, raw in cells.items():
        c = _Cell(name, raw)
        timing = _arcs(c)
        if timing is None:
            # unknown cell: its outputs start at 0, its inputs end with no setup (not timed through)
            unknown[c.type] = unknown.get(c.type, 0) + 1
            timing = ({}, {(p, j): 0.0 for p in c.outs() for j in range(len(c.conn.get(p, [])))},
                      {(p, i): 0.0 for p in c.ins() for i in range(len(c.conn.get(p, [])))})
        arcs, starts, cell_ends = timing
        info[name] = (c, arcs)
        for (p, j), cko in starts.items():
            b = _bit(c.conn[p][j])
            if b is not None:
                start_t[b] = max(cko, start_t.get(b, 0.0))
                driver.setdefault(b, (name, p, j))
        for (p, j) in arcs:
            b = _bit(c.conn[p][j])
            if b is not None:
                driver[b] = (name, p, j)
        for (p, i), setup in cell_ends.items():
            b = _bit(c.conn[p][i])
            if b is not None:
                ends.append((b, name, p, setup))

    memo: dict[int, tuple | None] = {}

    def arrival(bit0: int):
        """(time, predecessor record) of a bit; iterative DFS (deep carry chains)."""
        stack = [bit0]
        on_stack = set()
        while stack:
            b = stack[-1]
            if b in memo:
                stack.pop()
                continue
            drv = driver.get(b)
            arcs = info[drv[0]][1].get((drv[1], drv[2]), []) if drv else []
            c = info[drv[0]][0] if drv else None
            pending = [ib for (p, i, *_r) in arcs if (ib := _bit(c.conn[p][i])) is not None and ib not in memo]
            if pending:
                if b in on_stack:          # a combinational loop: cut it here
                    memo[b] = (start_t[b], None) if b in start_t else None
                    stack.pop()
                    continue
                on_stack.add(b)
                stack.extend(pending)
                continue
            best = (start_t[b], None) if b in start_t else None
            for p, i, delay, kind, bits in arcs:
                ib = _bit(c.conn[p][i])
                if ib is None or memo.get(ib) is None:
                    continue
                t = memo[ib][0] + (0.0 if p in _DEDICATED else _ns("net_ns")) + delay
                if best is None or t > best[0]:
                    best = (t, (ib, drv[0], kind, bits))
            memo[b] = best
            stack.pop()
        return memo[bit0]

    worst = None
    for b, name, pin, setup in ends:
        a = arrival(b)
        if a is None:
            continue
        t = a[0] + (0.0 if pin in _DEDICATED else _ns("net_ns")) + setup
        if worst is None or t > worst[0]:
            worst = (t, b, name, pin)
    result = {"delay_ns": None, "fmax_mhz": None, "lut_levels": 0, "carry_cells": 0, "carry_bits": 0,
              "muxf": 0, "dsp_comb": 0, "start": None, "end": None, "cells": [],
              "unknown_cells": unknown}
    if worst is None:
        return result
    t, b, end_cell, end_pin = worst
    chain = []
    while True:
        rec = memo[b][1]
        if rec is None:
            break
        b, cell, kind, bits = rec
        chain.append((cell, kind, bits))
    chain.reverse()
    start_cell, start_pin, _ = driver[b]
    carry_cells = [c for c, k, _ in chain if k == "carry"]
    result.update({
        "delay_ns": round(t, 3), "fmax_mhz": round(1000.0 / t, 1),
        "lut_levels": sum(k == "lut" for _, k, _ in chain),
        "carry_cells": len(carry_cells), "carry_bits": sum(bits for _, k, bits in chain if k == "carry"),
        "muxf": sum(k == "muxf" for _, k, _ in chain), "dsp_comb": sum(k == "dsp" for _, k, _ in chain),
        "start": {"cell": start_cell, "type": cells[start_cell]["type"], "pin": start_pin},
        "end": {"cell": end_cell, "type": cells[end_cell]["type"], "pin": end_pin},
        "cells": [(c, cells[c]["type"]) for c, _, _ in chain],
    })
    return result


def dsp_fmax_cap(netlist: dict, top: str) -> tuple[float, str] | None:
    """The lowest DS923 Fmax of the registered DSP48E2 configurations in the design (None: none).

    A DSP48E2 with no register at all is timed as logic by `longest_path` instead.
    """
    caps = []
    for cell in netlist["modules"][top]["cells"].values():
        if not cell["type"].startswith("DSP48E2"):
            continue
        p = cell.get("parameters", {})
        regs = {k: _int(p.get(k, 1)) for k in ("AREG", "BREG", "MREG", "PREG", "ADREG")}
        if not any(regs.values()):
            continue
        if regs["MREG"]:
            caps.append((DSP_FMAX_ALL_REGS, "DSP48E2 with MREG: FMAX with all registers used"))
        elif regs["AREG"] or regs["BREG"]:
            caps.append((DSP_FMAX_NO_MREG, "DSP48E2 without MREG: two-register multiply"))
        else:
            caps.append((DSP_FMAX_NO_PIPELINE_REGS, "DSP48E2 without pipeline registers"))
    return min(caps) if caps else None


def fmax_estimate(netlist_path: str | Path, top: str) -> dict:
    """Estimated Fmax of a synth_xilinx netlist: the worst path, capped by DS923's DSP48E2 Fmax."""
    netlist = json.loads(Path(netlist_path).read_text())
    path = longest_path(netlist, top)
    cap = dsp_fmax_cap(netlist, top)
    est, limited_by = path["fmax_mhz"], "longest register-to-register path"
    if cap and (est is None or cap[0] < est):
        est, limited_by = cap[0], f"{cap[1]} ({DS923})"
    return {"fmax_estimate_mhz": est, "limited_by": limited_by, "path": path,
            "model": "clock-to-out + per level (net + cell delay) + carry entry and bits + net + setup",
            "cited": {"source": DS923, "dsp48e2_fmax_all_regs_mhz": DSP_FMAX_ALL_REGS,
                      "dsp48e2_fmax_no_mreg_mhz": DSP_FMAX_NO_MREG,
                      "dsp48e2_fmax_no_pipeline_regs_mhz": DSP_FMAX_NO_PIPELINE_REGS,
                      "dsp48e2_unregistered_a_b_to_p_ns": DSP_COMB_NS},
            "assumed": {k: {"value": v, "why": why} for k, (v, why) in ASSUMED.items()}}
