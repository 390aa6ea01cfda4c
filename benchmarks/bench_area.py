"""Area of the SeedLM datapath ("core": the L block decoders and the dot unit of one weight beat,
`hdl.gemv_engine.SeedLMBeat`), measured with yosys, printed next to the issue's targets.

    .venv/bin/python benchmarks/bench_area.py [--bus-bits 128] [--presets seedlm-4,seedlm-3]
                                              [--family xcup[,xcup-generic,xc7,ecp5]] [--engine]

Core only, before place-and-route: no activation buffer, no control, no FIFO, no memory
interface (``--engine`` synthesizes the whole `seedlm_gemv` instead). Figures are per weight
per cycle (L*C weights enter the datapath every clock). DSPs are classified by their internal
registers (AREG/BREG, MREG, PREG) from the netlist's cell parameters.

``xcup`` is what `seedlm-fpga synth` builds for UltraScale+: the products as DSP48E2 primitives
with their P register (`hdl.dsp48e2`), since yosys (0.70) packs registers into DSP48E1 only
(``xc7``) and never into a DSP48E2. ``xcup-generic`` is the generic RTL on the same flow, as
before: every DSP48E2 without a register, the product registers in the fabric (FFs).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Elaboratable, Module, Signal

from seedlm_fpga.core.engine_shape import DesignConfig
from seedlm_fpga.flows.synth import FLOWS, yosys_synth
from seedlm_fpga.hdl.dsp48e2 import DSP48E2_TARGET

TARGET_LUT, TARGET_FF = 125, 120

#: family -> (yosys command, the platform the RTL is elaborated for)
SYNTH = {
    "xcup": (FLOWS["ultrascale+"].synth, DSP48E2_TARGET),
    "xcup-generic": (FLOWS["ultrascale+"].synth, None),
    "xc7": (FLOWS["7series"].synth, None),
    "ecp5": (FLOWS["ecp5"].synth, None),
}
assert FLOWS["ultrascale+"].dsp_primitive == "DSP48E2" and FLOWS["7series"].dsp_primitive is None


def _dsp_registers(netlist: Path) -> dict:
    mods = json.loads(netlist.read_text())["modules"]
    out = {"dsp": 0, "with_M_or_P": 0, "with_AB": 0, "none": 0}
    for mod in mods.values():
        for cell in mod["cells"].values():
            t = cell["type"]
            if t.startswith("DSP48"):
                p = {k: int(str(v), 2) if set(str(v)) <= {"0", "1"} else v for k, v in cell["parameters"].items()}
                m_or_p = bool(p.get("MREG", 0) or p.get("PREG", 0))
                ab = bool(p.get("AREG", 0) or p.get("BREG", 0))
            elif t == "MULT18X18D":
                p = cell["parameters"]
                reg = lambda k: str(p.get(k, "NONE")).strip('"') != "NONE"
                m_or_p = reg("REG_PIPELINE_CLK") or reg("REG_OUTPUT_CLK")
                ab = reg("REG_INPUTA_CLK") or reg("REG_INPUTB_CLK")
            else:
                continue
            out["dsp"] += 1
            out["with_M_or_P"] += m_or_p
            out["with_AB"] += ab
            out["none"] += not (m_or_p or ab)
    return out


class _CoreWrapper(Elaboratable):
    """`SeedLMBeat` with plain-signal ports (its streams are always ready)."""

    def __init__(self, cfg):
        from seedlm_fpga.hdl.gemv_engine import SeedLMBeat
        self.beat = SeedLMBeat(cfg)
        self.valid_in = Signal()
        self.data_in = Signal(len(self.beat.beat.payload.as_value()))
        self.valid_out = Signal()
        self.data_out = Signal(len(self.beat.sum.payload))

    def elaborate(self, platform):
        m = Module()
        m.submodules.beat = b = self.beat
        m.d.comb += [b.beat.valid.eq(self.valid_in), b.beat.payload.eq(self.data_in),
                     self.valid_out.eq(b.sum.valid), self.data_out.eq(b.sum.payload)]
        return m

    def ports(self):
        return [self.valid_in, self.data_in, self.valid_out, self.data_out]


def measure(preset: str, bus_bits: int, family: str, engine: bool, act_bits: int = 8) -> dict:
    cfg = DesignConfig(preset=preset, bus_bits=bus_bits, act_bits=act_bits)
    if engine:
        from seedlm_fpga.hdl.gemv_engine import GemvEngine
        top = GemvEngine(cfg)
    else:
        top = _CoreWrapper(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        src = work / "core.v"
        cmd, platform = SYNTH[family]
        src.write_text(verilog.convert(top, name="core", ports=top.ports() if hasattr(top, "ports") else None,
                                       platform=platform))
        res = yosys_synth(src, cmd, work)
        cells = res["cells"]
        dsp = _dsp_registers(res["netlist"])
    if family.startswith("xc"):
        lut = sum(v for k, v in cells.items() if k.startswith("LUT"))
        ff = sum(v for k, v in cells.items() if k.startswith("FD"))
    else:
        lut = cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0)
        ff = cells.get("TRELLIS_FF", 0)
    wpc = cfg.blocks_per_beat * cfg.preset_obj.C
    return {"preset": preset, "bus_bits": bus_bits, "family": family, "weights_per_cycle": wpc,
            "lut": lut, "ff": ff, "lut_per_w": lut / wpc, "ff_per_w": ff / wpc, **dsp,
            "seconds": round(res["seconds"], 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bus-bits", type=int, default=128)
    ap.add_argument("--presets", default="seedlm-4,seedlm-3")
    ap.add_argument("--family", default="xcup", help=f"one or more of {', '.join(SYNTH)}, comma-separated "
                                                     "(xcup,xcup-generic: after and before the DSP48E2 primitives)")
    ap.add_argument("--engine", action="store_true", help="the whole seedlm_gemv, not the datapath")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    families = args.family.split(",")
    for family in families:
        if family not in SYNTH:
            ap.error(f"--family {family!r}: one of {', '.join(SYNTH)}")
    rows = [measure(p, args.bus_bits, f, args.engine) for f in families for p in args.presets.split(",")]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    what = "engine" if args.engine else "core (datapath)"
    print(f"{what}, W = {args.bus_bits}, A = 8; targets: <= {TARGET_LUT} LUT and <= {TARGET_FF} FF per weight "
          f"per cycle (xcup), most DSPs with an internal M or P register")
    print(f"{'family':12} {'preset':9} {'w/cyc':>5} {'LUT':>7} {'FF':>7} {'LUT/w':>6} {'target':>6} {'FF/w':>6} "
          f"{'target':>6} {'DSP':>4} {'M|P reg':>7} {'A|B reg':>7}")
    for r in rows:
        print(f"{r['family']:12} {r['preset']:9} {r['weights_per_cycle']:5} {r['lut']:7} {r['ff']:7} "
              f"{r['lut_per_w']:6.1f} {'<=' + str(TARGET_LUT):>6} {r['ff_per_w']:6.1f} {'<=' + str(TARGET_FF):>6} "
              f"{r['dsp']:4} {r['with_M_or_P']:3}/{r['dsp']:<3} {r['with_AB']:7}")
    for family in families:
        cmd, platform = SYNTH[family]
        print(f"  {family}: yosys {cmd}" + (" (products as DSP48E2 primitives, hdl.dsp48e2)" if platform else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
