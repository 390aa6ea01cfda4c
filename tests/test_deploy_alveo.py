"""`seedlm-fpga deploy --board alveo-*`: kernel.xml, connectivity, and the host program on the Verilated kernel."""
import json

import numpy as np
import pytest

from seedlm_fpga.boards.board import load_board
from seedlm_fpga.cli.main import main
from seedlm_fpga.compressor.container import write_container
from seedlm_fpga.flows.deploy_alveo import connectivity, kernel_xml, read_kernel_xml
from seedlm_fpga.sim import alveo_host

from seedlm_samples import random_encoded

#: format §11.2's argument registers, as the table there gives them: offset, bytes
SECTION_11_2 = {"WEIGHTS": (0x10, 8), "ACTS": (0x18, 8), "Y": (0x20, 8), "ROWS": (0x28, 4), "COLS": (0x2C, 4),
                "DESCRIPTORS": (0x30, 8), "N_DESCRIPTORS": (0x38, 4)}


def test_kernel_xml_has_the_section_11_registers_and_bundles():
    text = kernel_xml(512)
    args = read_kernel_xml(text)
    assert {k: (a["offset"], a["size"]) for k, a in args.items()} == SECTION_11_2
    assert {k: a["port"] for k, a in args.items() if a["size"] == 8} == {
        "WEIGHTS": "m_axi_gmem", "ACTS": "m_axi_gmem", "Y": "m_axi_io", "DESCRIPTORS": "m_axi_io"}
    assert 'name="m_axi_gmem" mode="master" range="0xFFFFFFFFFFFFFFFF" dataWidth="512"' in text
    assert 'name="m_axi_io" mode="master" range="0xFFFFFFFFFFFFFFFF" dataWidth="64"' in text
    assert 'hwControlProtocol="ap_ctrl_hs"' in text


def test_connectivity_gives_each_compute_unit_its_own_bank():
    u280 = connectivity(load_board("alveo-u280"), 32).splitlines()
    assert u280[1] == "nk=seedlm_kernel:32:" + ".".join(f"seedlm_kernel_{i}" for i in range(1, 33))
    sp = [line for line in u280 if line.startswith("sp=")]
    assert len(sp) == 64 and sp[0] == "sp=seedlm_kernel_1.m_axi_gmem:HBM[0]"
    assert sp[-1] == "sp=seedlm_kernel_32.m_axi_io:HBM[31]"
    u250 = connectivity(load_board("alveo-u250"), 4)
    assert "sp=seedlm_kernel_4.m_axi_gmem:DDR[3]" in u250


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    rng = np.random.default_rng(11)
    path = tmp_path_factory.mktemp("alveo") / "small.seedlm"
    write_container(path, {"a": random_encoded(rng, 10, 40), "b": random_encoded(rng, 7, 24)}, {})
    return path


def test_host_program_drives_the_verilated_kernel_with_the_kernel_xml_offsets(tmp_path, small_model, capsys):
    xml = tmp_path / "kernel.xml"
    xml.write_text(kernel_xml(64))
    args = ["--verilator", "--kernel-xml", str(xml), "--model", str(small_model), "--bus-bits", "64",
            "--instances", "2"]
    assert alveo_host.main(args) == 0  # rows split over 2 CUs in 2 banks, Y checked against gemv_seedlm
    assert capsys.readouterr().out.splitlines() == ["a: 10 x 40: bit-exact", "b: 7 x 24: bit-exact"]
    # the same host with ACTS and WEIGHTS swapped in kernel.xml: the kernel reads the wrong images
    xml.write_text(kernel_xml(64).replace('offset="0x10"', 'offset="0xTMP"').replace('offset="0x18"', 'offset="0x10"')
                   .replace('offset="0xTMP"', 'offset="0x18"'))
    assert alveo_host.main(args) == 1


def test_cli_deploy_writes_the_vitis_package(tmp_path, small_model):
    out = tmp_path / "u55c"
    assert main(["deploy", "--board", "alveo-u55c", "--checkpoint", str(small_model), "-o", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["instances"] == 32 and report["bus_bits"] == 512 and report["built"] is False
    design = json.loads((out / "rtl" / "design.json").read_text())
    assert design["weight_bits"] == 512 and "seedlm" in design["kernel"]
    assert read_kernel_xml((out / "kernel.xml").read_text()) == read_kernel_xml(kernel_xml(512))
    readme = (out / "README.md").read_text()
    assert "v++ -l -t hw --platform xilinx_u55c" in readme and "--config connectivity.cfg" in readme
    tcl = (out / "package_xo.tcl").read_text()
    assert "package_xo" in tcl and "rtl seedlm_kernel.v" in tcl and (out / "rtl" / "seedlm_kernel.v").is_file()
    assert (out / "model.seedlm").read_bytes() == small_model.read_bytes()
