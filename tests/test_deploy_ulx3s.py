"""`seedlm-fpga deploy --board ulx3s-85f`: the plan (pins, clock) and, marked slow, the whole bitstream build."""
import json

import numpy as np
import pytest

from seedlm_fpga.cli.main import main
from seedlm_fpga.compressor.container import write_container
from seedlm_fpga.core.board_protocol import BoardImage
from seedlm_fpga.flows.deploy_ulx3s import BAUD, CLOCK_HZ, NAME, Ulx3sGemv, platform

from seedlm_samples import random_encoded


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    rng = np.random.default_rng(5)
    compressed = {"layers.0.wq": random_encoded(rng, 16, 64), "layers.0.w2": random_encoded(rng, 8, 172)}
    path = tmp_path_factory.mktemp("dep") / "small.seedlm"
    write_container(path, compressed, {})
    return path, compressed


def test_plan_uses_the_boards_clock_and_uart_pins(tmp_path, small_model):
    _, compressed = small_model
    image = BoardImage.build(sorted(compressed.items()), 32)
    plan = platform().build(Ulx3sGemv(image, CLOCK_HZ // BAUD), name=NAME, build_dir=str(tmp_path),
                            do_build=False)
    lpf = plan.files[f"{NAME}.lpf"]
    # ULX3S schematic: 25 MHz oscillator on G2; FT231X TXD -> FPGA M1, FPGA L4 -> FT231X RXD
    for line in ('LOCATE COMP "clk25_0__io" SITE "G2"', 'LOCATE COMP "uart_0__rx__io" SITE "M1"',
                 'LOCATE COMP "uart_0__tx__io" SITE "L4"', 'FREQUENCY PORT "clk25_0__io" 25000000.0 HZ'):
        assert line in lpf


def test_deploy_refuses_a_board_without_a_flow(tmp_path, capsys):
    assert main(["deploy", "--board", "zcu104", "-o", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no deploy flow for board zcu104" in err[0]


@pytest.mark.slow  # yosys + nextpnr-ecp5 + ecppack of the whole top: about 1.5 minutes on 2 cores
def test_deploy_builds_a_bitstream_that_meets_timing(tmp_path, small_model):
    path, compressed = small_model
    out = tmp_path / "d"
    assert main(["deploy", "--board", "ulx3s-85f", "--checkpoint", str(path), "-o", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["target_mhz"] == CLOCK_HZ / 1e6 and report["fmax_mhz"] >= report["target_mhz"]
    assert report["timing_met"] is True
    assert [(t["name"], t["rows"], t["cols"]) for t in report["tensors"]] == \
        [("layers.0.w2", 8, 172), ("layers.0.wq", 16, 64)]
    assert report["resources"]["dsp"] > 0 and report["resources"]["ebr_kbits"] > 0
    bit = (out / f"{NAME}.bit").read_bytes()
    assert len(bit) > 100_000 and report["provenance"]["inputs"] == {str(path): report["provenance"]["inputs"][str(path)]}
    readme = (out / "README.md").read_text()
    assert f"openFPGALoader --board ulx3s {NAME}.bit" in readme and "board-run model.seedlm" in readme
    assert (out / "model.seedlm").read_bytes() == path.read_bytes()  # the model the README runs
