"""The kernel's read path under random memory pauses: expected cycles, beat by beat.

`KernelCycleModel` (sim/cycle_model.py) counts an unpaused start exactly by format §11.4. With
R pauses, read credits that bind, or a consumer slower than one beat per clock (output
back-pressure), it walks the `m_axi_gmem` read path of format §11.3 once, with every random delay
at its mean, and hands the per-beat times to §11.4's extension recurrence where a start has
extension streams:

- burst j (at most `max_burst` beats, in stream order) leaves once the previous one has (one AR a
  cycle), the FIFO has `max_burst` places not yet reserved (a place comes back `credit_loop`
  cycles after its beat's arrival-equivalent acceptance), and no earlier than its segment allows
  (a descriptor's jobs wait for the descriptor);
- beat k arrives at max(AR_j + L_r, arrival_{k-1} + 1) + p / (1 - p): a channel paused with
  probability p in each cycle waits 1 / (1 - p) - 1 cycles on average before a transfer;
- the consumer takes beat k at max(arrival_k + read_fifo, take_{k-1} + interval_{k-1}), where
  the interval is the consumer's cycles per beat (1: the engine at full speed; more when its Y
  words cannot leave faster), so the FIFO fills ahead of a slow consumer and a fast one drains it.

With p = 0 and the latency hidden this is §11.4's count (tests check it); with pauses it is a
mean-value estimate: Jensen's inequality makes the max of means a little short of the mean of
maxes where memory and consumer race (tests/test_kernel_cosim.py and tests/test_ext_kernel.py
hold the model to Verilator within 1%). Cost: a few microseconds per beat.
"""
from __future__ import annotations

from dataclasses import dataclass

from seedlm_fpga.core.engine_shape import KERNEL_TIMING, KernelTiming


@dataclass(frozen=True)
class Segment:
    """A job of the read stream: `beats` beats the consumer takes every `interval` cycles (the
    last one lets the next segment follow a cycle later); its first burst leaves no earlier
    than `earliest_ar` (cycle of the start)."""

    beats: int
    interval: float = 1.0
    earliest_ar: float = 0.0


def accept_times(segments: list[Segment], *, depth: int, max_burst: int, read_latency: int, pause: float,
                 first_ar: int, timing: KernelTiming = KERNEL_TIMING) -> list[float]:
    """The expected cycle in which the consumer takes each beat of the stream, in order."""
    if not 0 <= pause < 1:
        raise ValueError(f"pause must lie in [0, 1), got {pause}")
    wait = pause / (1 - pause)
    arrive, take = [], []       # per beat: expected arrival and acceptance cycles
    ar = first_ar - 1           # the previous burst's AR
    next_interval = 0.0         # the consumer's interval after the previous beat
    for seg in segments:
        left = seg.beats
        earliest = seg.earliest_ar
        while left:
            n = min(max_burst, left)
            ar = max(ar + 1, first_ar, earliest)
            need = len(take) + max_burst - depth  # acceptances that must have freed their places
            if need > 0:
                ar = max(ar, take[need - 1] - timing.read_fifo + timing.credit_loop)
            for i in range(n):
                a = max(ar + read_latency, arrive[-1] + 1 if arrive else ar + read_latency) + wait
                t = a + timing.read_fifo if not take else max(a + timing.read_fifo, take[-1] + next_interval)
                arrive.append(a)
                take.append(t)
                next_interval = seg.interval if (left - i > 1) else 1.0
            left -= n
            earliest = 0.0
    return take
