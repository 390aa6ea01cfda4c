"""`seedlm-fpga cosim`: argument errors, and one small run of both engines (JSON output).

The run uses seedlm-3 and the baseline at W = 128, A = 8, max-cols 256: the same builds
as tests/test_cosim_runner.py, so it adds no Verilator build to the suite.
"""
import json

import pytest

from seedlm_fpga.cli.main import main
from seedlm_fpga.core import reference as ref
from seedlm_fpga.sim.cosim_runner import forget_generated


@pytest.mark.parametrize("argv, message", [
    (["--mem-latency", "5"], "--mem-latency needs --kernel"),
    (["--descriptors", "2"], "--descriptors needs --kernel"),
    (["--kernel", "--gap", "0.1"], "--gap throttles the engine streams; with --kernel use --mem-gap"),
    (["--kernel", "--mem-gap", "1"], "--mem-gap must lie in [0, 1), got 1.0"),
    (["--kernel", "--mem-latency", "-1"], "--mem-latency must lie in [0, 4,000], got -1"),
    (["--kernel", "--bus-bits", "96", "--cols", "64", "--max-cols", "256"],
     "the kernel's memory bus must be an AXI4 data width (a power of two, 32..1024 bits), got W = 96"),
])
def test_bad_kernel_arguments(capsys, argv, message):
    assert main(["cosim", *argv]) == 2
    assert capsys.readouterr().err == f"seedlm-fpga cosim: error: {message}\n"


def test_kernel_run_json(capsys):
    """`cosim --kernel`: both kernels, three GEMVs per start through the descriptor list, the
    same keys as the engine run; cycles (ap_start to ap_done) are format §11.4's count."""
    from seedlm_fpga.core.engine_shape import DesignConfig, kernel_cycles_for
    from seedlm_fpga.sim.axi_memory import BASE_WRITE_LATENCY
    from seedlm_fpga.sim.kernel_runner import read_latency

    rows, cols, W, lat = 6, 100, 128, 30
    assert main(["cosim", "--kernel", "--rows", str(rows), "--cols", str(cols), "--bus-bits", str(W), "--max-cols",
                 "256", "--mem-latency", str(lat), "--descriptors", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    s, b = out["seedlm"], out["baseline"]
    assert out["ok"] and s["ok"] and b["ok"] and s["mismatched_rows"] == b["mismatched_rows"] == 0
    cfg = DesignConfig(preset="seedlm-4", bus_bits=W, act_bits=8, max_cols=256)
    for kind, r in (("seedlm", s), ("baseline", b)):
        assert r["rows"] == [rows] * 3
        assert r["cycles"] == r["model_cycles"] == kernel_cycles_for(cfg, kind, cols, [rows] * 3, True,
                                                                     read_latency(lat), BASE_WRITE_LATENCY)
        assert r["tb_cycles"] == r["cycles"] + 1
    assert out["speedup"] == round(b["cycles"] / s["cycles"], 4)
    assert out["settings"]["mem_latency"] == lat and out["settings"]["kernel"]


@pytest.mark.parametrize("argv, message", [
    (["--paper", "--rows", "5"], "--paper fixes the shape, bus and stalls; do not combine it with --rows"),
    (["--paper", "--bus-bits", "64", "--gap", "0.1"],
     "--paper fixes the shape, bus and stalls; do not combine it with --bus-bits, --gap"),
    (["--gap", "1.5"], "--gap must lie in [0, 1), got 1.5"),
    (["--ready-gap", "-0.1"], "--ready-gap must lie in [0, 1), got -0.1"),
    (["--rows", "0"], "rows and cols must be at least 1, got 0 x 1024"),
    (["--cols", "300", "--max-cols", "256"], "--max-cols 256 is less than --cols 300"),
    (["--bus-bits", "16", "--cols", "64", "--max-cols", "256"],
     "a 16-bit bus cannot hold one 32-bit seedlm-4 block (need --bus-bits >= 32)"),
])
def test_bad_arguments(capsys, argv, message):
    assert main(["cosim", *argv]) == 2
    err = capsys.readouterr().err
    assert err == f"seedlm-fpga cosim: error: {message}\n"


def test_small_run_json(capsys):
    rows, cols, W = 5, 40, 128
    forget_generated()  # generated once per process: make this run announce it
    assert main(["cosim", "--rows", str(rows), "--cols", str(cols), "--bus-bits", str(W), "--preset",
                 "seedlm-3", "--max-cols", "256", "--gap", "0.2", "--json"]) == 0
    stdout, stderr = capsys.readouterr()
    out = json.loads(stdout)  # stdout is the JSON and nothing else; progress went to stderr
    s, b = out["seedlm"], out["baseline"]
    assert out["ok"] and s["ok"] and b["ok"]
    p = ref.get_preset("seedlm-3")
    R = ref.ImageLayout(W, p.block_bits, ref.blocks_per_row(cols, p.C)).beats_per_row
    assert s["weight_beats"] == rows * R == 5 * 2  # 4 blocks of 36 bits: 3 per 128-bit beat
    assert b["weight_beats"] == rows * -(-cols // 8)
    assert s["mismatched_rows"] == b["mismatched_rows"] == 0
    assert out["speedup"] == round(b["cycles"] / s["cycles"], 4)
    assert out["settings"]["gap"] == 0.2
    # every step announced on stderr (not a terminal here: a start line, then an end line)
    steps = [line for line in stderr.splitlines() if not line.endswith(" ...")]
    assert [line.split(":")[0] for line in steps] == [
        "  generating the seedlm-3 and baseline Verilog (W=128, A=8, max cols 256)",
        "  compressing 5 x 40 Gaussian weights with seedlm-3",
        "  building seedlm_gemv in Verilator" + (" ... cached" if "seedlm_gemv in Verilator ... cached"
                                                 in stderr else ""),
        "  simulating seedlm-3 on gaussian 5x40",
        "  building baseline_gemv in Verilator" + (" ... cached" if "baseline_gemv in Verilator ... cached"
                                                   in stderr else ""),
        "  simulating baseline on gaussian 5x40",
    ]
    assert f"{s['sim_cycles']:,} cycles" in stderr and f"{b['sim_cycles']:,} cycles" in stderr


def test_generate_packed_image_option(tmp_path, capsys):
    """`generate --image packed`: design.json names the layout and states the packed timing."""
    import json
    from seedlm_fpga.cli.main import main
    assert main(["generate", "--bus-bits", "64", "--preset", "seedlm-3", "--image", "packed", "--max-cols", "256",
                 "-o", str(tmp_path)]) == 0
    assert "seedlm-3, packed image, W=64, L=2" in capsys.readouterr().out
    d = json.loads((tmp_path / "design.json").read_text())
    assert d["image"] == "packed" and d["generator"]["config"]["image"] == "packed"
    assert d["timing"]["formula"] == "cycles = ceil(cols / 8) + rows * ceil(ceil(cols / 12) * 36 / 64) + 13"
