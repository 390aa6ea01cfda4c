"""Small pipeline helpers shared by the datapaths: named delay lines and adder trees.

Every register made here is named after the pipeline stage it belongs to, so that the
generated Verilog reads as the block diagram: ``<stage>_<what>``.
"""
from __future__ import annotations

from amaranth.hdl import Shape, Signal, signed

from seedlm_fpga.core.engine_shape import LEVELS_PER_STAGE, tree_stages


def delay(m, value, cycles: int, name: str, reset_less: bool = False):
    """`value` delayed by `cycles` registers named ``{name}_d1`` ... (0 cycles: `value`).

    ``reset_less``: datapath values (no reset: packs into SRLs and DSP registers); control
    (valid, last) keeps the reset.
    """
    for i in range(cycles):
        reg = Signal.like(value, name=f"{name}_d{i + 1}", reset_less=reset_less)
        m.d.sync += reg.eq(value)
        value = reg
    return value


def sum_bits(term_bits: int, n_terms: int) -> int:
    """Signed width that holds the sum of `n_terms` signed `term_bits`-bit values."""
    return term_bits + max(0, (n_terms - 1).bit_length())


def adder_tree(m, terms: list, name: str, levels_per_stage: int = LEVELS_PER_STAGE):
    """Sum of signed `terms`, a register after every `levels_per_stage` levels of 2-input adds.

    Returns the sum (a registered signal, or the single term itself); the latency is
    `tree_stages(len(terms))`. Each level widens by one bit, so nothing can overflow.
    Datapath registers: no reset.
    """
    return staged_sum(m, terms, tree_stages(len(terms), levels_per_stage), name, levels_per_stage)


def staged_sum(m, terms: list, registers: int, name: str, levels_per_stage: int = LEVELS_PER_STAGE,
               first_levels: int | None = None):
    """Sum of signed `terms` after exactly `registers` registers (no reset), at most
    `levels_per_stage` adder levels before each (`first_levels` before the first: the terms
    may already be the output of some logic); once a single value is left the rest are
    plain delay registers. Needs ceil(log2 n) <= first_levels + (registers - 1) * levels_per_stage.
    """
    first = levels_per_stage if first_levels is None else first_levels
    levels = max(0, (len(terms) - 1).bit_length())
    assert levels <= first + (registers - 1) * levels_per_stage, (len(terms), registers)
    width = max(Shape.cast(t.shape()).width for t in terms)
    for stage in range(registers):
        for _ in range(first if stage == 0 else levels_per_stage):
            if len(terms) == 1:
                break
            width += 1
            terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i]
                     for i in range(0, len(terms), 2)]
        regs = []
        for i, value in enumerate(terms):
            reg = Signal(signed(width), name=f"{name}{stage + 1}_{i}", reset_less=True)
            m.d.sync += reg.eq(value)
            regs.append(reg)
        terms = regs
    return terms[0]
