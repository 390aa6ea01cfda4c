"""Registered products, generic or as UltraScale+ DSP48E2 primitives with their P register.

`registered_product(m, a, b, name, platform)` is ``a * b`` registered once (no reset). The
generic form is a ``$mul`` and a register, which every tool maps: Vivado packs the register
into the DSP, but yosys (0.70) packs registers into DSP48E1 only (its `xilinx_dsp` pass skips
the pattern matcher for ``xcu``/``xcup``), so its UltraScale+ netlist, the one `synth` counts
and times, keeps every product register in the fabric. Elaborated with a platform whose
``dsp`` is ``"DSP48E2"`` (`DSP48E2_TARGET`; `seedlm-fpga synth` for UltraScale+ boards), each
product whose operands fit the multiplier (27 x 18 signed) is one DSP48E2 with PREG = 1 and
no other register: the same single register, at the same place in the pipeline, inside the
DSP. A/B/M registers would each add a cycle, which the stage budget (format §10) does not
have; A/B -> P without them is the primitive's unregistered multiply (DS923: 410 MHz).

Simulation: Amaranth's simulator and the generic Verilog need nothing; Verilog with the
primitive runs under Verilator with `DSP48E2_MODEL`, a behavioral model of exactly the subset
used here (tests/test_hdl_dsp48e2.py holds it to the generic path).
"""
from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Shape, Signal

#: Multiplier inputs of a DSP48E2 (signed): A (27 of the 30-bit port), B (18).
A_BITS, B_BITS, P_BITS = 27, 18, 48
#: The platform to elaborate with to get DSP48E2 products (`Fragment.get(..., platform)`).
DSP48E2_TARGET = SimpleNamespace(dsp="DSP48E2")


def dsp_primitive(platform) -> str | None:
    """The DSP primitive `platform` asks for ("DSP48E2"), None: generic products."""
    return getattr(platform, "dsp", None)


def _as_signed(v):
    """`v` as a signed value of its exact range (an unsigned n-bit value gets n + 1 bits)."""
    return v if Shape.cast(v.shape()).signed else Cat(v, Const(0, 1)).as_signed()


def _sign_extended(v, bits: int):
    return Cat(v, v[-1].replicate(bits - len(v)))


def _fits(a, b) -> tuple | None:
    """(A operand, B operand) as signed values that fit the multiplier, or None."""
    a, b = _as_signed(a), _as_signed(b)
    wa, wb = len(a), len(b)
    if wa <= A_BITS and wb <= B_BITS:
        return a, b
    if wb <= A_BITS and wa <= B_BITS:
        return b, a
    return None


def registered_product(m, a, b, name: str, platform=None):
    """``a * b`` after one register (no reset), in a signal as wide as the product."""
    reg = Signal((a * b).shape(), name=name, reset_less=True)
    operands = _fits(a, b) if dsp_primitive(platform) == "DSP48E2" else None
    if operands is None:
        m.d.sync += reg.eq(a * b)
        return reg
    opa, opb = operands
    p = Signal(P_BITS, name=f"{name}_p")
    m.submodules[f"{name}_dsp"] = Instance(
        "DSP48E2",
        p_AREG=0, p_ACASCREG=0, p_BREG=0, p_BCASCREG=0, p_MREG=0, p_PREG=1, p_ADREG=0, p_DREG=0,
        p_CREG=0, p_INMODEREG=0, p_OPMODEREG=0, p_ALUMODEREG=0, p_CARRYINREG=0, p_CARRYINSELREG=0,
        p_AMULTSEL="A", p_BMULTSEL="B", p_USE_MULT="MULTIPLY",
        i_CLK=ClockSignal(), i_CEP=1, i_RSTP=0,
        i_A=_sign_extended(opa, 30), i_B=_sign_extended(opb, B_BITS),
        # P = M: OPMODE W = 0, Z = 0, Y:X = M (0b00_000_01_01); ALUMODE 0 (add), INMODE 0 (A2, B2)
        i_OPMODE=Const(0b000000101, 9), i_ALUMODE=Const(0, 4), i_INMODE=Const(0, 5),
        i_CARRYIN=0, i_CARRYINSEL=Const(0, 3),
        o_P=p,
    )
    m.d.comb += reg.eq(p[:len(reg)])
    return reg


#: Verilator's stand-in for the DSP48E2 (the vendor's simulation model is not open): the
#: configuration `registered_product` instantiates and nothing else; any other use stops at
#: elaboration. P <= A[26:0] * B, signed, on every clock with CEP.
DSP48E2_MODEL = """\
module DSP48E2 #(
    parameter integer AREG = 1, ACASCREG = 1, BREG = 1, BCASCREG = 1, MREG = 1, PREG = 1,
    parameter integer ADREG = 1, DREG = 1, CREG = 1, INMODEREG = 1, OPMODEREG = 1,
    parameter integer ALUMODEREG = 1, CARRYINREG = 1, CARRYINSELREG = 1,
    parameter AMULTSEL = "A", BMULTSEL = "B", USE_MULT = "MULTIPLY"
) (
    input CLK, input CEP, input RSTP,
    input [29:0] A, input [17:0] B,
    input [8:0] OPMODE, input [3:0] ALUMODE, input [4:0] INMODE,
    input CARRYIN, input [2:0] CARRYINSEL,
    output reg [47:0] P
);
    initial begin
        if (AREG != 0 || BREG != 0 || MREG != 0 || PREG != 1 || ADREG != 0 || DREG != 0 || CREG != 0)
            $fatal(1, "DSP48E2 model: only AREG=BREG=MREG=ADREG=DREG=CREG=0, PREG=1");
    end
    wire signed [26:0] a = A[26:0];
    wire signed [17:0] b = B;
    wire unused = &{1'b0, A[29:27], OPMODE, ALUMODE, INMODE, CARRYIN, CARRYINSEL};
    always @(posedge CLK)
        if (RSTP) P <= 48'd0;
        else if (CEP) P <= 48'(a * b);
endmodule
"""
