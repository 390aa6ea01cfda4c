"""The cycle model's prediction for the kernel starts of a decode run (`seedlm-fpga run`).

A start (format §11) loads one activation vector and runs its GEMVs back to back, the engine
keeping its activation buffer between them; the prediction is built from `CycleModel`'s parts
(seedlm_fpga.core.engine_shape's rules): the activation beats once, every GEMV's weight beats,
one pipeline latency at the end.

    cycles(start) = ceil(cols / N) + sum_g rows_g * R(cols) + latency

It leaves out what the memory-mapped wrapper adds around the engine (descriptor reads, memory
read latency, Y writes): `ENGINE_ONLY` says so in every report that prints these figures.
"""
from __future__ import annotations

from dataclasses import dataclass

from seedlm_fpga.sim.cycle_model import CycleModel

ENGINE_ONLY = ("engine cycle model: activation beats + weight beats + pipeline latency per start; "
               "the kernel's descriptor reads, memory latency and Y writes are not modelled")


@dataclass(frozen=True)
class StartModel:
    """Predicted cycles of kernel starts on the SeedLM and the 16-bit baseline kernel of one design."""

    preset: str
    bus_bits: int
    act_bits: int = 8

    def engine(self, which: str) -> CycleModel:
        return CycleModel(which, self.bus_bits, self.act_bits, self.preset)

    def cycles(self, which: str, cols: int, rows: tuple[int, ...]) -> int:
        m = self.engine(which)
        return m.act_beats(cols) + sum(m.weight_beats(r, cols) for r in rows) + m.latency

    def seedlm(self, cols: int, rows: tuple[int, ...]) -> int:
        return self.cycles("seedlm", cols, rows)

    def baseline(self, cols: int, rows: tuple[int, ...]) -> int:
        return self.cycles("baseline", cols, rows)
