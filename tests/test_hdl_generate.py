"""`seedlm-fpga generate`: the three files, design.json, format §10 ports, a clean Verilator lint;
with --kernel the two kernels of format §11 and design.json's kernel section."""
import json
import re

import pytest

from seedlm_fpga.cli.main import main
from seedlm_fpga.core.reference import PRESETS, baseline_y_bits, seedlm_y_bits
from seedlm_fpga.hdl.generate import DesignConfig, describe
from seedlm_fpga.hdl.verilator_env import LINT_WAIVERS, lint, verilator_bin, verilator_env

# The three "done when" configurations: (CLI args, preset, W, A)
CONFIGS = {
    "w512": (["--bus-bits", "512"], "seedlm-4", 512, 8),
    "w128-s3": (["--bus-bits", "128", "--preset", "seedlm-3"], "seedlm-3", 128, 8),
    "w64-a16": (["--bus-bits", "64", "--act-bits", "16"], "seedlm-4", 64, 16),
}

FORMAT_PORTS = ["clk", "rst", "cols",
                "s_axis_act_tdata", "s_axis_act_tvalid", "s_axis_act_tready", "s_axis_act_tlast",
                "s_axis_w_tdata", "s_axis_w_tvalid", "s_axis_w_tready", "s_axis_w_tlast",
                "m_axis_y_tdata", "m_axis_y_tvalid", "m_axis_y_tready", "m_axis_y_tlast"]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = {}
    for key, (args, *_) in CONFIGS.items():
        d = tmp_path_factory.mktemp(key)
        assert main(["generate", *args, "-o", str(d)]) == 0
        out[key] = d
    return out


@pytest.mark.parametrize("key", list(CONFIGS))
def test_writes_three_files_and_nothing_else(generated, key):
    assert sorted(p.name for p in generated[key].iterdir()) == ["baseline_gemv.v", "design.json", "seedlm_gemv.v"]


@pytest.mark.parametrize("key", list(CONFIGS))
def test_design_json(generated, key):
    _, preset, W, A = CONFIGS[key]
    p = PRESETS[preset]
    d = json.loads((generated[key] / "design.json").read_text())
    L = W // p.block_bits
    assert d["weight_bits"] == W and d["act_bits"] == A and d["max_cols"] == 28672
    assert d["blocks_per_beat"] == L
    assert d["preset"] == {"name": preset, "K": p.K, "C": p.C, "P": p.P, "taps": list(p.taps)}
    N = d["acts_per_beat"]
    assert (L * p.C) % N == 0 and N * A <= W
    assert d["y_bits"] >= seedlm_y_bits(28672, A, p)
    assert d["latency_cycles"] == d["timing"]["latency_cycles"] == sum(s["cycles"] for s in d["pipeline"])
    assert d["timing"]["formula"] == (f"cycles = ceil(cols / {N}) + rows * ceil(cols / {L * p.C})"
                                      f" + {d['latency_cycles']}")
    b = d["baseline"]
    assert b["weight_bits"] == W and b["weights_per_beat"] == W // 16 and b["act_bits"] == A
    assert b["y_bits"] == baseline_y_bits(28672, A)
    assert b["latency_cycles"] == sum(s["cycles"] for s in b["pipeline"])
    assert b["acts_per_beat"] * A <= W
    assert b["timing"]["formula"] == (f"cycles = ceil(cols / {b['acts_per_beat']}) + rows * ceil(cols / {W // 16})"
                                      f" + {b['latency_cycles']}")


def test_seedlm4_512_meets_the_paper_targets():
    # 2048 x 2048 at W = 512, from the documented exact formula (tests of the engines
    # check that formula cycle for cycle): <= 32,900 cycles and >= 3.99x the baseline.
    d = describe(DesignConfig(bus_bits=512, max_cols=4096))

    def cycles(e, rows, cols):
        return -(-cols // e["acts_per_beat"]) + rows * -(-cols // e["acts_per_weight_beat"]) + e["latency_cycles"]

    s, b = cycles(d, 2048, 2048), cycles(d["baseline"], 2048, 2048)
    assert s <= 32_900 and b / s >= 3.99
    d3 = describe(DesignConfig(preset="seedlm-3", bus_bits=512, max_cols=4096))
    assert cycles(d3["baseline"], 4096, 4096) / cycles(d3, 4096, 4096) >= 5.1


@pytest.mark.parametrize("key", list(CONFIGS))
@pytest.mark.parametrize("top", ["seedlm_gemv", "baseline_gemv"])
def test_verilog_ports(generated, key, top):
    text = (generated[key] / f"{top}.v").read_text()
    header = re.search(rf"^module {top}\(([^)]*)\);", text, re.M)
    assert header, f"no module {top}"
    assert sorted(p.strip() for p in header.group(1).split(",")) == sorted(FORMAT_PORTS)
    W = CONFIGS[key][2]
    assert re.search(rf"^\s*input \[{W - 1}:0\] s_axis_w_tdata;", text, re.M)


@pytest.mark.parametrize("key", list(CONFIGS))
@pytest.mark.parametrize("top", ["seedlm_gemv", "baseline_gemv"])
def test_verilator_lint_clean(generated, key, top):
    rc, messages = lint(generated[key] / f"{top}.v", top)
    assert rc == 0, messages
    assert "%Warning" not in messages and "%Error" not in messages


def test_verilator_env():
    import subprocess
    from pathlib import Path
    env = verilator_env({"PATH": "/usr/bin:/bin"})
    root = Path(env["VERILATOR_ROOT"])
    assert (root / "include" / "verilated.h").is_file()
    assert env["PATH"].split(":")[0] == str(root / "bin") and Path(verilator_bin()).parent == root / "bin"
    proc = subprocess.run([verilator_bin(), "--version"], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert set(LINT_WAIVERS) == {"UNUSEDSIGNAL", "PROCASSINIT", "WIDTHEXPAND", "DECLFILENAME"}


def test_lint_reports_real_warnings(tmp_path):
    # the waivers do not hide everything: a truncating assignment is still reported
    good = tmp_path / "good.v"
    good.write_text("module good(input [7:0] a, output [7:0] y);\n  assign y = a;\nendmodule\n")
    assert lint(good, "good")[0] == 0
    f = tmp_path / "bad.v"
    f.write_text("module bad(input [7:0] a, output [3:0] y);\n  assign y = a;\nendmodule\n")
    rc, messages = lint(f, "bad")
    assert rc != 0 and "%Warning-WIDTHTRUNC" in messages


@pytest.mark.parametrize("args,message", [
    (["--bus-bits", "24"], "a 24-bit bus cannot hold one 32-bit seedlm-4 block (need --bus-bits >= 32)"),
    (["--bus-bits", "32", "--preset", "seedlm-3"],
     "a 32-bit bus cannot hold one 36-bit seedlm-3 block (need --bus-bits >= 40)"),
    (["--bus-bits", "100"], "bus width must be a multiple of 8 bits in 8..4096, got 100"),
    (["--bus-bits", "64", "--preset", "seedlm-3", "--max-cols", "0"], "max cols must lie in 1..1048576, got 0"),
    ([], "give --bus-bits W (or --board NAME)"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    assert main(["generate", *args, "-o", str(out)]) == 2
    assert capsys.readouterr().err == f"seedlm-fpga generate: error: {message}\n"
    assert not out.exists()


def test_output_path_is_a_file(tmp_path, capsys):
    f = tmp_path / "taken"
    f.write_text("x")
    assert main(["generate", "--bus-bits", "64", "--max-cols", "64", "-o", str(f)]) == 2
    assert capsys.readouterr().err == f"seedlm-fpga generate: error: cannot write to {f}: File exists\n"


def test_board_option(tmp_path, capsys):
    from seedlm_fpga.flows.sizing import size_for_board
    sized = size_for_board("ulx3s-85f", "seedlm-4", 8)
    assert main(["generate", "--board", "ulx3s-85f", "--max-cols", "512", "-o", str(tmp_path / "o")]) == 0
    d = json.loads((tmp_path / "o" / "design.json").read_text())
    assert d["weight_bits"] == d["baseline"]["weight_bits"] == sized["bus_bits"]
    assert d["board"]["board"] == "ulx3s-85f" and d["max_cols"] == 512
    assert main(["generate", "--board", "no-such-board", "-o", str(tmp_path / "p")]) == 2
    assert capsys.readouterr().err.startswith("seedlm-fpga generate: error: unknown board 'no-such-board'")
    assert not (tmp_path / "p").exists()


def test_design_config_validates():
    with pytest.raises(ValueError, match=r"^unknown preset 'seedlm-2' \(choose from seedlm-4, seedlm-3\)$"):
        DesignConfig(preset="seedlm-2")
    with pytest.raises(ValueError, match=r"^activation bits must be 8 or 16, got 4$"):
        DesignConfig(act_bits=4)


KERNEL_PORTS = {  # format §11.1, as seen from the kernel
    "s_axi_control": {"awaddr": "in", "awvalid": "in", "awready": "out", "wdata": "in", "wstrb": "in",
                      "wvalid": "in", "wready": "out", "bresp": "out", "bvalid": "out", "bready": "in",
                      "araddr": "in", "arvalid": "in", "arready": "out", "rdata": "out", "rresp": "out",
                      "rvalid": "out", "rready": "in"},
    "read": {"araddr": "out", "arlen": "out", "arsize": "out", "arburst": "out", "arid": "out", "arvalid": "out",
             "arready": "in", "rdata": "in", "rresp": "in", "rlast": "in", "rid": "in", "rvalid": "in",
             "rready": "out"},
    "write": {"awaddr": "out", "awlen": "out", "awsize": "out", "awburst": "out", "awid": "out", "awvalid": "out",
              "awready": "in", "wdata": "out", "wstrb": "out", "wlast": "out", "wvalid": "out", "wready": "in",
              "bresp": "in", "bid": "in", "bvalid": "in", "bready": "out"},
}


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("kernel")
    assert main(["generate", "--bus-bits", "64", "--max-cols", "256", "--kernel", "--mem-latency", "40",
                 "--max-burst", "16", "--max-descriptors", "3", "-o", str(d)]) == 0
    return d


def test_kernel_files_and_design_json(kernel_dir):
    from seedlm_fpga.core.engine_shape import KERNEL_REGISTERS, read_buffer_depth
    assert sorted(p.name for p in kernel_dir.iterdir()) == [
        "baseline_gemv.v", "baseline_kernel.v", "design.json", "seedlm_gemv.v", "seedlm_kernel.v"]
    k = json.loads((kernel_dir / "design.json").read_text())["kernel"]
    assert (k["mem_latency"], k["max_burst"], k["max_descriptors"]) == (40, 16, 3)
    assert k["read_buffer_beats"] == read_buffer_depth(40, 16) == 128
    assert k["registers"] == {name: f"0x{off:02X}" for name, off in KERNEL_REGISTERS.items()}
    expected = {"ap_clk": "in", "ap_rst_n": "in", "interrupt": "out",
                **{f"s_axi_control_{n}": d for n, d in KERNEL_PORTS["s_axi_control"].items()},
                **{f"m_axi_gmem_{n}": d for n, d in KERNEL_PORTS["read"].items()},
                **{f"m_axi_io_{n}": d for n, d in {**KERNEL_PORTS["read"], **KERNEL_PORTS["write"]}.items()}}
    for kind, top in (("seedlm", "seedlm_kernel"), ("baseline", "baseline_kernel")):
        assert k[kind]["top"] == top and k[kind]["verilog"] == f"{top}.v"
        ports = k[kind]["ports"]
        assert {n: p["dir"] for n, p in ports.items()} == expected
        assert ports["m_axi_gmem_rdata"]["bits"] == 64 and ports["m_axi_io_wdata"]["bits"] == 64
        assert ports["m_axi_gmem_araddr"]["bits"] == 64 and ports["s_axi_control_awaddr"]["bits"] == 7
    # seedlm-4 at W = 64: N = 8, E = 16, latency 12 (format §10 table)
    assert k["seedlm"]["timing"]["formula"] == "cycles = 5 + L_r + ceil(cols / 8) + rows * ceil(cols / 16) + 15 + L_w"


@pytest.mark.parametrize("top", ["seedlm_kernel", "baseline_kernel"])
def test_kernel_verilog_lint_clean(kernel_dir, top):
    from seedlm_fpga.hdl.verilator_env import KERNEL_LINT_WAIVERS
    text = (kernel_dir / f"{top}.v").read_text()
    assert re.search(rf"^module {top}\(", text, re.M)
    rc, messages = lint(kernel_dir / f"{top}.v", top, KERNEL_LINT_WAIVERS)
    assert rc == 0, messages
    assert "%Warning" not in messages and "%Error" not in messages


@pytest.mark.parametrize("args,message", [
    (["--bus-bits", "96", "--kernel"],
     "--kernel: the kernel's memory bus must be an AXI4 data width (a power of two, 32..1024 bits), got W = 96"),
    (["--bus-bits", "512", "--kernel", "--max-burst", "65"], "--kernel: max burst must lie in 1..64 beats at W = 512, got 65"),
    (["--bus-bits", "64", "--max-descriptors", "4"], "--max-descriptors needs --kernel"),
    (["--bus-bits", "64", "--act-bits", "16", "--kernel"],
     "--kernel: Y is 66 bits at max-cols 28672 and 16-bit activations, more than the kernel's 64-bit Y words "
     "(format §11.3): lower max-cols or use 8-bit activations"),
])
def test_kernel_bad_input_is_one_line_exit_2(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    assert main(["generate", *args, "-o", str(out)]) == 2
    assert capsys.readouterr().err == f"seedlm-fpga generate: error: {message}\n"
    assert not out.exists()
