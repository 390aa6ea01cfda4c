"""The cycle model's prediction for the kernel starts of a decode run (`seedlm-fpga run`).

A start (format §11) reads one activation image and runs its GEMVs back to back from a
descriptor list, the engine keeping its activation buffer between them. Its CYCLES come from
`KernelCycleModel` (sim/cycle_model.py, format §11.4: launch, descriptor reads, memory read
latency, activation and weight beats, pipeline latency, Y writes), for the memory the Verilator
run simulates (sim/axi_memory.py: reads answered `mem_latency` + 2 edges after their AR, no
pauses, B 2 edges after the last W beat), and for kernels generated to hide that latency.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from seedlm_fpga.core.engine_shape import StreamTiming
from seedlm_fpga.sim.axi_memory import BASE_WRITE_LATENCY
from seedlm_fpga.sim.cycle_model import KernelCycleModel, kernel_models
from seedlm_fpga.sim.kernel_runner import read_latency

MODEL_NOTE = ("kernel cycle model (format §11.4): per start, launch + descriptor reads + memory read latency + "
              "activation and weight beats + pipeline latency + Y writes")


@dataclass(frozen=True)
class StartModel:
    """Predicted CYCLES of kernel starts on the SeedLM and the 16-bit baseline kernel of one design."""

    preset: str
    bus_bits: int
    mem_latency: int          # the simulated memory's read latency (sim/axi_memory.py's `latency`)
    act_bits: int = 8

    @cached_property
    def _models(self) -> dict[str, KernelCycleModel]:
        return kernel_models(self.preset, self.bus_bits, self.act_bits, "beat", self.mem_latency)

    def cycles(self, kind: str, cols: int, rows: tuple[int, ...],
               streams: list[StreamTiming | None] | None = None) -> int:
        model = self._models["fp16" if kind == "baseline" else self.preset]
        return round(model.cycles(cols, list(rows), True, read_latency(self.mem_latency), BASE_WRITE_LATENCY,
                                  streams=streams))

    def seedlm(self, cols: int, rows: tuple[int, ...], streams: list[StreamTiming | None] | None = None) -> int:
        """`streams`: each GEMV's extension stream (format §11.4; layers with parts) or None."""
        return self.cycles("seedlm", cols, rows, streams)

    def baseline(self, cols: int, rows: tuple[int, ...]) -> int:
        return self.cycles("baseline", cols, rows)
