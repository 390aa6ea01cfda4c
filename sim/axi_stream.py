"""Small AXI4-Stream drivers and monitors for cocotb 2, stepped once per clock cycle.

cocotbext-axi is not used: the testbench needs per-cycle control of valid and ready
gaps and exact cycle stamps, and one loop stepping every port per cycle (one RisingEdge
and one ReadOnly per cycle in all) is several times faster than a coroutine per port.

Each cycle the testbench calls ``drive()`` on every port right after the rising edge,
then ``sample(cycle)`` in the ReadOnly phase: the handshake seen there (tvalid and
tready both high) is the transfer that happens at the next rising edge.
"""
from __future__ import annotations

import random


def _bind(port, dut, prefix: str):
    """Attach the DUT's `prefix`_tdata/_tvalid/_tready/_tlast signals to `port`."""
    for name in ("tdata", "tvalid", "tready", "tlast"):
        setattr(port, name, getattr(dut, f"{prefix}_{name}"))
    port.name = prefix


class StreamSource:
    """Master of a stream (memory side): presents beats in order, tlast on the final one.

    With probability `gap` per cycle it inserts an idle cycle (tvalid low) before a
    beat, a bandwidth throttle; once tvalid is high, tdata and tlast hold until the
    transfer (AXI4-Stream rule).
    """

    def __init__(self, dut, prefix: str, rng: random.Random, gap: float = 0.0):
        _bind(self, dut, prefix)
        self.rng = rng
        self.gap = gap
        self.load([])
        self.tvalid.value = 0
        self.tlast.value = 0

    def load(self, beats: list[int]) -> None:
        """Queue `beats` (the previous ones must be done); they go out from the next drive()."""
        self.beats = list(beats)
        self.index = 0  # next beat to present
        self.presenting = False
        self.fired = False
        self.accepted = 0
        self.first_cycle: int | None = None
        self.last_cycle: int | None = None

    @property
    def done(self) -> bool:
        return self.accepted == len(self.beats)

    def drive(self) -> None:
        if self.fired:
            self.fired = False
            self.presenting = False
            self.index += 1
        if self.presenting:
            return
        if self.index < len(self.beats) and not (self.gap and self.rng.random() < self.gap):
            self.tdata.value = self.beats[self.index]
            self.tlast.value = int(self.index == len(self.beats) - 1)
            self.tvalid.value = 1
            self.presenting = True
        else:
            self.tvalid.value = 0

    def sample(self, cycle: int) -> None:
        if self.presenting and int(self.tready.value):
            self.fired = True
            self.accepted += 1
            if self.first_cycle is None:
                self.first_cycle = cycle
            self.last_cycle = cycle


class StreamSink:
    """Slave of a stream (result side): records (value, tlast, cycle) per transfer.

    tready drops with probability `ready_gap` per cycle. It checks the AXI4-Stream rule
    on the DUT: once tvalid is high, tvalid, tdata and tlast hold until the transfer.
    """

    def __init__(self, dut, prefix: str, rng: random.Random, ready_gap: float = 0.0,
                 signed: bool = True):
        _bind(self, dut, prefix)
        self.rng = rng
        self.ready_gap = ready_gap
        self.signed = signed
        self.always_ready = False
        self.clear()
        self.tready.value = 0

    def clear(self) -> None:
        self.values: list[int] = []
        self.lasts: list[bool] = []
        self.cycles: list[int] = []
        self.errors: list[str] = []
        self._pending: tuple[int, int] | None = None  # (data, last) offered but not taken

    def drive(self) -> None:
        ready = self.always_ready or not (self.ready_gap and self.rng.random() < self.ready_gap)
        self.tready.value = int(ready)
        self._ready = ready

    def sample(self, cycle: int) -> None:
        if not int(self.tvalid.value):
            if self._pending is not None:
                self.errors.append(f"{self.name}: tvalid dropped before the transfer (cycle {cycle})")
                self._pending = None
            return
        raw = self.tdata.value
        data = raw.to_signed() if self.signed else raw.to_unsigned()
        last = int(self.tlast.value)
        if self._pending is not None and self._pending != (data, last):
            self.errors.append(f"{self.name}: tdata/tlast changed while tvalid waited for tready "
                               f"(cycle {cycle})")
        if self._ready:
            self.values.append(data)
            self.lasts.append(bool(last))
            self.cycles.append(cycle)
            self._pending = None
        else:
            self._pending = (data, last)
