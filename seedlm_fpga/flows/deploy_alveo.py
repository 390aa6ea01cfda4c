"""The Vitis package of the memory-mapped kernel (format §11) for an Alveo card (U280, U55C, ...).

Written, not built (Vivado and XRT are not here): the kernel's Verilog sized for the board,
``kernel.xml`` (Vitis RTL-kernel description: the ``s_axi_control`` argument registers and the
two m_axi bundles), ``package_xo.tcl`` (Vivado: IP-package the Verilog, then ``package_xo``),
``connectivity.cfg`` (``nk=`` one compute unit per memory channel that fits, ``sp=`` each CU's
bundles to its own HBM pseudo-channel or DDR bank), ``host.py`` (pyxrt: loads a .seedlm, places
each CU's rows in its bank, runs GEMVs and checks them against the numpy reference; the same host
code runs against the Verilated kernel, `seedlm_fpga.sim.alveo_host`) and a README with the
Vitis commands.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from seedlm_fpga.boards.board import Board
from seedlm_fpga.core.engine_shape import IO_BITS, KERNEL_REGISTERS, DesignConfig
from seedlm_fpga.core.files import write_text_atomic

KERNEL = "seedlm_kernel"
VLNV = f"seedlm-fpga:kernel:{KERNEL}:1.0"
#: Vitis kernel arguments in argument order (format §11.2 registers; the pointers' bundle, §11.1)
ARGS = (("WEIGHTS", "m_axi_gmem"), ("ACTS", "m_axi_gmem"), ("Y", "m_axi_io"), ("ROWS", None),
        ("COLS", None), ("DESCRIPTORS", "m_axi_io"), ("N_DESCRIPTORS", None))
#: the ap_ctrl_hs registers below the arguments, and the read-only cycle counter (not an argument)
CONTROL_REGISTERS = ("CTRL", "GIE", "IER", "ISR", "CYCLES")
CONTROL_RANGE = 0x1000
#: Vitis target platforms (the shell on the card); `--platform` overrides (see `platforminfo -l`)
PLATFORMS = {"alveo-u280": "xilinx_u280_gen3x16_xdma_1_202211_1",
             "alveo-u55c": "xilinx_u55c_gen3x16_xdma_3_202210_1",
             "alveo-u250": "xilinx_u250_gen3x16_xdma_4_1_202210_1"}


def kernel_xml(bus_bits: int) -> str:
    """kernel.xml for the §11 kernel with a `bus_bits` m_axi_gmem."""
    root = ET.Element("root", versionMajor="1", versionMinor="6")
    k = ET.SubElement(root, "kernel", name=KERNEL, language="ip_c", vlnv=VLNV, attributes="",
                      preferredWorkGroupSizeMultiple="0", workGroupSize="1", interrupt="true",
                      hwControlProtocol="ap_ctrl_hs")
    ports = ET.SubElement(k, "ports")
    ET.SubElement(ports, "port", name="s_axi_control", mode="slave", range=hex(CONTROL_RANGE),
                  dataWidth="32", portType="addressable", base="0x0")
    for bundle, width in (("m_axi_gmem", bus_bits), ("m_axi_io", IO_BITS)):
        ET.SubElement(ports, "port", name=bundle, mode="master", range="0xFFFFFFFFFFFFFFFF",
                      dataWidth=str(width), portType="addressable", base="0x0")
    args = ET.SubElement(k, "args")
    for i, (name, bundle) in enumerate(ARGS):
        size = 8 if bundle else 4
        ET.SubElement(args, "arg", name=name.lower(), addressQualifier="1" if bundle else "0", id=str(i),
                      port=bundle or "s_axi_control", size=hex(size), offset=hex(KERNEL_REGISTERS[name]),
                      type="void*" if bundle else "uint", hostOffset="0x0", hostSize=hex(size))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def read_kernel_xml(text: str) -> dict[str, dict]:
    """Argument name (upper case, as format §11.2) -> {"offset", "size", "port"} from kernel.xml text."""
    root = ET.fromstring(text)
    return {a.get("name").upper(): {"offset": int(a.get("offset"), 16), "size": int(a.get("size"), 16),
                                    "port": a.get("port")}
            for a in root.iter("arg")}


def package_xo_tcl(verilog: str) -> str:
    """Vivado batch script: package the RTL as an IP with AXI interfaces inferred, then an .xo."""
    return f"""# vivado -mode batch -source package_xo.tcl -tclargs {KERNEL}.xo
set xo_path [lindex $argv 0]
set here [file dirname [file normalize [info script]]]
create_project -force kernel_pack ./kernel_pack
add_files -norecurse [file join $here rtl {verilog}]
set_property top {KERNEL} [current_fileset]
update_compile_order -fileset sources_1
ipx::package_project -root_dir ./kernel_ip -vendor seedlm-fpga -library kernel -taxonomy /KernelIP \\
    -import_files -set_current false
ipx::unload_core ./kernel_ip/component.xml
ipx::edit_ip_in_project -upgrade true -name tmp_edit -directory ./kernel_ip ./kernel_ip/component.xml
set core [ipx::current_core]
set_property core_revision 1 $core
foreach bundle {{m_axi_gmem m_axi_io s_axi_control}} {{
    ipx::associate_bus_interfaces -busif $bundle -clock ap_clk $core
}}
ipx::associate_bus_interfaces -clock ap_clk -reset ap_rst_n $core
set_property sdx_kernel true $core
set_property sdx_kernel_type rtl $core
ipx::create_xgui_files $core
ipx::update_checksums $core
ipx::check_integrity -kernel $core
ipx::save_core $core
close_project -delete
package_xo -force -xo_path $xo_path -kernel_name {KERNEL} -ip_directory ./kernel_ip \\
    -kernel_xml [file join $here kernel.xml]
"""


def bank(board: Board, i: int) -> str:
    """The memory bank CU `i` streams from: its own HBM pseudo-channel (or DDR bank)."""
    mem = board.primary_memory
    kind = "HBM" if "hbm" in (mem.kind + mem.name).lower() else "DDR"
    return f"{kind}[{i % mem.channels}]"


def connectivity(board: Board, instances: int) -> str:
    cus = [f"{KERNEL}_{i + 1}" for i in range(instances)]
    lines = ["[connectivity]", f"nk={KERNEL}:{instances}:{'.'.join(cus)}"]
    for i, cu in enumerate(cus):
        lines += [f"sp={cu}.m_axi_gmem:{bank(board, i)}", f"sp={cu}.m_axi_io:{bank(board, i)}"]
    return "\n".join(lines) + "\n"


HOST_PY = """#!/usr/bin/env python3
# pyxrt host of the SeedLM kernel: see README.md. The logic lives in seedlm_fpga.sim.alveo_host,
# so the same code also drives the Verilated kernel (its --verilator mode).
import sys

from seedlm_fpga.sim.alveo_host import main

sys.exit(main())
"""


def write_package(board: Board, cfg: DesignConfig, instances: int, clock_mhz: float, out: Path,
                  verilog_name: str, platform: str | None = None) -> dict:
    """Write kernel.xml, package_xo.tcl, connectivity.cfg, host.py and README.md into `out`."""
    platform = platform or PLATFORMS.get(board.id, "<your platform: platforminfo -l>")
    files = {"kernel.xml": kernel_xml(cfg.bus_bits), "package_xo.tcl": package_xo_tcl(verilog_name),
             "connectivity.cfg": connectivity(board, instances), "host.py": HOST_PY}
    files["README.md"] = readme(board, cfg, instances, clock_mhz, platform)
    for name, text in files.items():
        write_text_atomic(out / name, text)
    return {"platform": platform, "instances": instances, "kernel_frequency_mhz": clock_mhz,
            "files": sorted(files) + [f"rtl/{verilog_name}"],
            "banks": [bank(board, i) for i in range(instances)]}


def readme(board: Board, cfg: DesignConfig, instances: int, clock_mhz: float, platform: str) -> str:
    return f"""# SeedLM kernel for the {board.name}

The memory-mapped GEMV kernel of seedlm-fpga's format §11 (`rtl/`, W = {cfg.bus_bits}, {cfg.preset},
int{cfg.act_bits}, max cols {cfg.max_cols}), as {instances} compute unit(s), each streaming from its own
memory bank (`connectivity.cfg`). Not built here: these are the Vitis commands (Vitis 2022.2 or later,
XRT with pyxrt on the host).

```sh
vivado -mode batch -source package_xo.tcl -tclargs {KERNEL}.xo
v++ -l -t hw --platform {platform} --config connectivity.cfg \\
    --kernel_frequency {clock_mhz:g} -o seedlm.xclbin {KERNEL}.xo
python3 host.py --xclbin seedlm.xclbin --kernel-xml kernel.xml --model model.seedlm
```

`host.py` loads the model, splits each tensor's rows over the compute units, places every CU's
weight image (format §5.3) and activation image in that CU's bank, starts the CUs through the
`kernel.xml` register offsets, reads Y back and checks every value against the numpy reference.
`python3 host.py --verilator --kernel-xml kernel.xml --model model.seedlm` runs the same host code
against the Verilated kernel (cocotb), with each CU's bank a region of one simulated memory.

`--kernel_frequency {clock_mhz:g}`: min(the board's target, the netlist's Fmax estimate) as
`seedlm-fpga synth --board {board.id}` reports it; Vivado's timing report is the real figure.
"""
