"""The Xilinx netlist path walker (flows/timing.py) on hand-made yosys JSON netlists."""
from __future__ import annotations

import json

import pytest

from seedlm_fpga.flows.timing import ASSUMED, DSP_COMB_NS, DSP_FMAX_NO_MREG, dsp_fmax_cap, fmax_estimate, longest_path


def _ff(d, q):
    return {"type": "FDRE", "port_directions": {"C": "input", "CE": "input", "R": "input", "D": "input", "Q": "output"},
            "connections": {"C": [1], "CE": ["1"], "R": ["0"], "D": [d], "Q": [q]}}


def _lut(ins, out, n=None):
    n = n or len(ins)
    dirs = {f"I{i}": "input" for i in range(n)} | {"O": "output"}
    return {"type": f"LUT{n}", "port_directions": dirs,
            "connections": {f"I{i}": [b] for i, b in enumerate(ins)} | {"O": [out]}}


def _carry4(ci, s, di, o, co):
    return {"type": "CARRY4", "port_directions": {"CI": "input", "CYINIT": "input", "S": "input", "DI": "input",
                                                  "O": "output", "CO": "output"},
            "connections": {"CI": [ci], "CYINIT": ["0"], "S": s, "DI": di, "O": o, "CO": co}}


def _netlist(cells, ports=None):
    return {"modules": {"top": {"attributes": {"top": "00000000000000000000000000000001"},
                                "ports": ports or {}, "cells": cells}}}


def ns(key):
    return ASSUMED[key][0]


def test_two_luts_and_a_six_bit_carry_between_registers():
    # r0 -> LUT2 -> LUT3 -> CARRY4 (S[0] .. CO[3]: 4 bits) -> CARRY4 (CI .. O[1]: 2 bits) -> r1
    # beside it a one-LUT path r2 -> LUT1 -> r3 that must lose
    cells = {
        "r0": _ff(90, 10), "r_other": _ff(91, 11),
        "a": _lut([10, 11], 12),
        "b": _lut([12, 11, 10], 13),
        "c0": _carry4("0", [13, "0", "0", "0"], ["0"] * 4, [20, 21, 22, 23], [24, 25, 26, 27]),
        "c1": _carry4(27, ["0"] * 4, ["0"] * 4, [30, 31, 32, 33], [34, 35, 36, 37]),
        "r1": _ff(31, 40),
        "r2": _ff(92, 50), "short": _lut([50], 51), "r3": _ff(51, 52),
    }
    p = longest_path(_netlist(cells))
    assert (p["lut_levels"], p["carry_cells"], p["carry_bits"]) == (2, 2, 6)
    assert p["start"] == {"cell": "r0", "type": "FDRE", "pin": "Q"}
    assert p["end"] == {"cell": "r1", "type": "FDRE", "pin": "D"}
    assert [c for c, _ in p["cells"]] == ["a", "b", "c0", "c1"]
    want = (ns("ff_clk_to_q_ns") + 2 * (ns("net_ns") + ns("lut_ns"))
            + ns("net_ns") + ns("carry_entry_ns") + 3 * ns("carry_bit_ns")   # S[0] -> CO[3]
            + 2 * ns("carry_bit_ns")                                           # CI -> O[1], dedicated route
            + ns("net_ns") + ns("ff_setup_ns"))
    assert p["delay_ns"] == pytest.approx(want, abs=1e-3)
    assert p["fmax_mhz"] == pytest.approx(1000 / want, abs=0.1)


def test_paths_from_ports_and_constants_are_not_register_to_register():
    # a port feeds five LUTs into r1 (not counted); r0 -> one LUT -> r1 is the only timed path
    cells = {"l0": _lut([100], 101), "l1": _lut([101], 102), "l2": _lut([102], 103), "l3": _lut([103], 104),
             "r0": _ff(90, 10), "join": _lut([104, 10], 105), "r1": _ff(105, 106)}
    p = longest_path(_netlist(cells, {"x": {"direction": "input", "bits": [100]}}))
    assert p["lut_levels"] == 1 and p["start"]["cell"] == "r0"
    assert longest_path(_netlist({"l": _lut([100], 101), "r": _ff(101, 102)}))["delay_ns"] is None


def test_an_unregistered_dsp_is_timed_as_logic_and_a_registered_one_caps_fmax(tmp_path):
    dsp = {"type": "DSP48E2", "parameters": {k: "0" for k in ("AREG", "BREG", "MREG", "PREG", "ADREG", "CREG", "DREG")},
           "port_directions": {"A": "input", "B": "input", "CLK": "input", "P": "output"},
           "connections": {"A": [10], "B": [11], "CLK": [1], "P": [20]}}
    cells = {"ra": _ff(90, 10), "rb": _ff(91, 11), "m": dsp, "rp": _ff(20, 30)}
    p = longest_path(_netlist(cells))
    assert p["dsp_comb"] == 1 and p["lut_levels"] == 0
    assert p["delay_ns"] == pytest.approx(ns("ff_clk_to_q_ns") + 2 * ns("net_ns") + DSP_COMB_NS + ns("ff_setup_ns"),
                                          abs=1e-3)
    registered = json.loads(json.dumps(cells))
    registered["m"]["parameters"].update(AREG="1", BREG="1", PREG="1")
    net = _netlist(registered)
    assert dsp_fmax_cap(net, "top")[0] == DSP_FMAX_NO_MREG
    f = tmp_path / "n.json"
    f.write_text(json.dumps(net))
    est = fmax_estimate(f, "top")
    assert est["fmax_estimate_mhz"] == DSP_FMAX_NO_MREG and "DS923" in est["limited_by"]
    assert all(set(v) == {"value", "why"} for v in est["assumed"].values())
