"""Small pipeline helpers shared by the datapaths: named delay lines and adder trees.

Every register made here is named after the pipeline stage it belongs to, so that the
generated Verilog reads as the block diagram: ``<stage>_<what>``.
"""
from __future__ import annotations

from amaranth.hdl import Shape, Signal, signed

from seedlm_fpga.core.engine_shape import LEVELS_PER_STAGE


def delay(m, value, cycles: int, name: str):
    """`value` delayed by `cycles` registers named ``{name}_d1`` ... (0 cycles: `value`)."""
    for i in range(cycles):
        reg = Signal.like(value, name=f"{name}_d{i + 1}")
        m.d.sync += reg.eq(value)
        value = reg
    return value


def sum_bits(term_bits: int, n_terms: int) -> int:
    """Signed width that holds the sum of `n_terms` signed `term_bits`-bit values."""
    return term_bits + max(0, (n_terms - 1).bit_length())


def balanced_sum(terms: list):
    """Combinational sum of `terms` as a balanced tree: ceil(log2 n) adder levels, not n - 1."""
    terms = list(terms)
    while len(terms) > 1:
        terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i] for i in range(0, len(terms), 2)]
    return terms[0]


def adder_tree(m, terms: list, name: str, levels_per_stage: int = LEVELS_PER_STAGE):
    """Sum of signed `terms`, a register after every `levels_per_stage` levels of 2-input adds.

    Returns the sum (a registered signal, or the single term itself); the latency is
    `tree_stages(len(terms))`. Each level widens by one bit, so nothing can overflow.
    """
    level = 0
    stage = 0
    while len(terms) > 1:
        width = Shape.cast(terms[0].shape()).width + 1
        pairs = []
        for i in range(0, len(terms), 2):
            if i + 1 < len(terms):
                pairs.append(terms[i] + terms[i + 1])
            else:
                pairs.append(terms[i])
        level += 1
        if level % levels_per_stage == 0 or len(pairs) == 1:
            stage += 1
            regs = []
            for i, value in enumerate(pairs):
                reg = Signal(signed(width), name=f"{name}{stage}_{i}")
                m.d.sync += reg.eq(value)
                regs.append(reg)
            terms = regs
        else:
            terms = [_as_width(m, v, width, f"{name}{stage + 1}_l{level}_{i}") for i, v in enumerate(pairs)]
    return terms[0]


def _as_width(m, value, width: int, name: str):
    """A combinational signal of `width` signed bits (keeps every term of a level equal)."""
    sig = Signal(signed(width), name=name)
    m.d.comb += sig.eq(value)
    return sig
