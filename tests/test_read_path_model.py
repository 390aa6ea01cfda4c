"""sim.read_path_model: the kernel's read path walked at mean delays, against hand counts."""
from __future__ import annotations

import pytest

from seedlm_fpga.core.engine_shape import KERNEL_TIMING, kernel_cycles
from seedlm_fpga.sim.read_path_model import Segment, accept_times

BIG = 1 << 12  # a read FIFO no credit ever waits for


def last_accept(segments, **kw) -> float:
    return accept_times(segments, **kw)[-1]


def test_unpaused_stream_is_format_11_4():
    # 13 act beats, 12 rows of 7 beats: §11.4's last weight acceptance is
    # launch + L_r + acts + rows * R - 1 + read_fifo, every beat one cycle after the one before
    taken = accept_times([Segment(13), Segment(84)], depth=BIG, max_burst=16, read_latency=20, pause=0,
                         first_ar=KERNEL_TIMING.launch)
    assert taken == list(range(5 + 20 + 2, 5 + 20 + 2 + 97))
    whole = kernel_cycles(13, 7, 10, [12], False, 20, 2)
    assert taken[-1] + 10 + 2 + KERNEL_TIMING.done == whole == 5 + 20 + 13 + 84 - 1 + 2 + 10 + 2 + 2


def test_paused_stream_takes_a_mean_wait_per_beat():
    # p = 0.2: each beat waits 0.25 cycles on average before its transfer, 1.25 cycles apart
    last = last_accept([Segment(100)], depth=BIG, max_burst=16, read_latency=30, pause=0.2, first_ar=5)
    assert last == pytest.approx(5 + 30 + 0.25 + 99 * 1.25 + KERNEL_TIMING.read_fifo)


def test_weights_drain_what_the_memory_stored_during_a_slow_segment():
    # p = 0.5: beats arrive 2 cycles apart from a0 = first_ar + L_r + 1. Ten beats taken every 4
    # cycles end at a0 + 2 + 36, when 20 beats have arrived; the weights follow a cycle later at one
    # per clock (a0 + 39 + j) until the arrivals (a0 + 22 + 2j, FIFO included) bind from j = 17: the
    # 20th weight beat is taken at a0 + 60, not at a0 + 2 + 2 * 29 + ... as a rate would say.
    a0 = 5 + 8 + 1
    last = last_accept([Segment(10, 4), Segment(20)], depth=BIG, max_burst=64, read_latency=8, pause=0.5,
                       first_ar=5)
    assert last == a0 + 60


def test_credits_hold_bursts_back():
    # 4 places, bursts of 4: burst j + 1 leaves credit_loop cycles after burst j's last beat
    # arrived (each taken on arrival + read_fifo): every 4 beats pay L_r + 3 + credit_loop cycles
    L = 10
    last = last_accept([Segment(8)], depth=4, max_burst=4, read_latency=L, pause=0, first_ar=0)
    second_ar = L + 3 + KERNEL_TIMING.credit_loop
    assert last == second_ar + L + 3 + KERNEL_TIMING.read_fifo


def test_rejects_a_certain_pause():
    with pytest.raises(ValueError, match="pause"):
        last_accept([Segment(1)], depth=4, max_burst=4, read_latency=0, pause=1.0, first_ar=0)
