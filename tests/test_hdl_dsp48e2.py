"""DSP48E2 products (hdl.dsp48e2) under Verilator with the behavioral model, bit for bit.

The primitive path cannot run in Amaranth's simulator (an Instance), so these tests build the
Verilog that `synth` builds for UltraScale+ (`DSP48E2_TARGET`), add `DSP48E2_MODEL`, and run it
with a Verilog testbench (`verilator --binary`): products against Python integers, and a whole
`DotUnit` against the numpy reference, as tests/test_hdl_dot_unit.py holds the generic one.
"""
import random
import re
import subprocess

import pytest
from amaranth.back import verilog
from amaranth.hdl import Cat, Elaboratable, Module, Shape, Signal, signed

from seedlm_fpga.core.reference import PRESETS
from seedlm_fpga.hdl.block_decoder import BlockDecoder
from seedlm_fpga.hdl.dot_unit import DotUnit, dot_input_layout
from seedlm_fpga.hdl.dsp48e2 import DSP48E2_MODEL, DSP48E2_TARGET, registered_product
from seedlm_fpga.hdl.verilator_env import verilator_bin, verilator_env

from test_hdl_dot_unit import expected

#: (a, b) operand shapes: the engine's I_c x a_c (unsigned x signed), Q x X, and the extremes
#: of what one DSP48E2 takes (27 x 18 signed, either order); 30 x 8 does not fit: generic.
SHAPES = [(13, signed(8)), (signed(8), signed(25)), (signed(27), signed(18)), (signed(18), signed(27)),
          (signed(4), signed(12)), (signed(30), signed(8))]


class _Flat(Elaboratable):
    """`inner` behind plain ports ``inp`` / ``out`` (and ``valid_in`` / ``valid_out``)."""

    def __init__(self, in_bits, out_bits, build):
        self.inp, self.out = Signal(in_bits, name="inp"), Signal(out_bits, name="out")
        self.valid_in, self.valid_out = Signal(name="valid_in"), Signal(name="valid_out")
        self.build = build

    def elaborate(self, platform):
        m = Module()
        self.build(m, self, platform)
        return m

    def ports(self):
        return [self.inp, self.out, self.valid_in, self.valid_out]


def _simulate(tmp_path, top: _Flat, stimuli: list[int], extra_cycles: int) -> list[tuple[int, int]]:
    """Run `top` (elaborated for DSP48E2) one stimulus per clock; returns (valid_out, out) per cycle."""
    text = verilog.convert(top, name="dut", ports=top.ports(), platform=DSP48E2_TARGET, emit_src=False)
    assert "DSP48E2" in text  # the primitive path is what runs here
    n_in = len(top.inp)
    (tmp_path / "dut.v").write_text(text)
    (tmp_path / "dsp48e2.v").write_text(DSP48E2_MODEL)
    (tmp_path / "stim.hex").write_text("".join(f"{s:x}\n" for s in stimuli))
    (tmp_path / "tb.v").write_text(f"""
module tb;
  reg clk = 0;
  reg [{n_in - 1}:0] stim [0:{len(stimuli) - 1}];
  reg [{n_in - 1}:0] inp = 0;
  reg valid_in = 0;
  wire [{len(top.out) - 1}:0] out;
  wire valid_out;
  dut u(.clk(clk), .rst(1'b0), .inp(inp), .out(out), .valid_in(valid_in), .valid_out(valid_out));
  integer i;
  initial begin
    $readmemh("stim.hex", stim);
    for (i = 0; i < {len(stimuli) + extra_cycles}; i = i + 1) begin
      inp = (i < {len(stimuli)}) ? stim[i] : 0;
      valid_in = i < {len(stimuli)};
      #1 clk = 1;
      #1 clk = 0;
      $display("%0d %h", valid_out, out);
    end
    $finish;
  end
endmodule
""")
    build = subprocess.run([verilator_bin(), "--binary", "-Wno-fatal", "-CFLAGS", "-std=c++20", "--top-module", "tb", "-Mdir", "obj",
                            "dsp48e2.v", "dut.v", "tb.v"], cwd=tmp_path, env=verilator_env(),
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stdout + build.stderr
    run = subprocess.run(["obj/Vtb"], cwd=tmp_path, capture_output=True, text=True, check=True)
    rows = [line.split() for line in run.stdout.splitlines() if re.fullmatch(r"[01] [0-9a-f]+", line)]
    return [(int(v), int(x, 16)) for v, x in rows]


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value >> (bits - 1) & 1 else value


def test_products_match_python_integers(tmp_path):
    widths = [(Shape.cast(a).width, Shape.cast(b).width) for a, b in SHAPES]
    prod_bits = [len(Signal(a) * Signal(b)) for a, b in SHAPES]  # Amaranth's exact product width

    def build(m, top, platform):
        pos, out = 0, []
        for i, (sa, sb) in enumerate(SHAPES):
            a = top.inp[pos:pos + widths[i][0]]
            b = top.inp[pos + widths[i][0]:pos + sum(widths[i])]
            pos += sum(widths[i])
            a = a.as_signed() if Shape.cast(sa).signed else a
            out.append(registered_product(m, a, b.as_signed(), f"p{i}", platform))
        m.d.comb += top.out.eq(Cat(*out))

    top = _Flat(sum(wa + wb for wa, wb in widths), sum(prod_bits), build)
    rng = random.Random(7)
    cases = []
    for k in range(200):
        case = []
        for (sa, _), (wa, wb) in zip(SHAPES, widths):
            a_signed = Shape.cast(sa).signed
            lo_a, hi_a = (-(1 << (wa - 1)), (1 << (wa - 1)) - 1) if a_signed else (0, (1 << wa) - 1)
            lo_b, hi_b = -(1 << (wb - 1)), (1 << (wb - 1)) - 1
            pick = [(lo_a, lo_b), (lo_a, hi_b), (hi_a, lo_b), (hi_a, hi_b)]
            case.append(pick[k] if k < 4 else (rng.randint(lo_a, hi_a), rng.randint(lo_b, hi_b)))
        cases.append(case)
    stimuli = []
    for case in cases:
        word, pos = 0, 0
        for (a, b), (wa, wb) in zip(case, widths):
            word |= (a % (1 << wa)) << pos | (b % (1 << wb)) << (pos + wa)
            pos += wa + wb
        stimuli.append(word)
    rows = _simulate(tmp_path, top, stimuli, 1)
    got = [rows[k][1] for k in range(len(cases))]  # registered once: cycle k holds case k
    for k, case in enumerate(cases):
        pos = 0
        for i, (a, b) in enumerate(case):
            assert _signed(got[k] >> pos & ((1 << prod_bits[i]) - 1), prod_bits[i]) == a * b, (k, i, a, b)
            pos += prod_bits[i]


@pytest.mark.parametrize("name,L", [("seedlm-3", 2), ("seedlm-4", 1)])
def test_dot_unit_with_dsp48e2_matches_the_reference(tmp_path, name, L):
    p = PRESETS[name]
    dut = DotUnit(p, L, 8)
    layout = dot_input_layout(p, L, 8)

    def build(m, top, platform):
        m.submodules.dot = dut
        m.d.comb += [dut.beat.payload.eq(top.inp), dut.beat.valid.eq(top.valid_in),
                     top.out.eq(dut.sum.payload), top.valid_out.eq(dut.sum.valid)]

    top = _Flat(layout.size, len(dut.sum.payload), build)
    rng = random.Random(L)
    beats = [([rng.randint(0, (1 << p.K) - 1) for _ in range(L)],
              [[rng.randint(-8, 7) for _ in range(p.P)] for _ in range(L)],
              [rng.randint(0, 15) for _ in range(L)],
              [rng.randint(-128, 127) for _ in range(L * p.C)]) for _ in range(60)]
    for seed in (0, (1 << p.K) - 1):
        for qv, av in ((-8, -128), (7, 127), (-8, 127)):
            beats.append(([seed] * L, [[qv] * p.P] * L, [15] * L, [av] * (L * p.C)))
    stimuli = []
    for seeds, q, x, acts in beats:
        blocks = []
        for lane in range(L):
            z, qq, xx = BlockDecoder.reference(seeds[lane], x[lane], q[lane], p)
            blocks.append({"z": z, "q": qq, "x": xx})
        stimuli.append(layout.const({"blocks": blocks, "acts": acts}).as_value().value)
    rows = _simulate(tmp_path, top, stimuli, dut.latency + 1)
    bits = len(dut.sum.payload)
    got = [_signed(out, bits) for valid, out in rows if valid]
    assert got == [expected(b, p) for b in beats]
