"""The kernel benches' memory model (sim/axi_memory.py): latency, pipelining, pauses, burst checks.

cocotbext-axi's own AXI master reads from `LatencyRamRead` over bare wires
(tests/fixtures/axi_wires.v, bench tests/axi_memory_probe.py); handshake edges are watched.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from seedlm_fpga.core.engine_shape import AXI_BOUNDARY
from seedlm_fpga.sim import cosim_build
from seedlm_fpga.sim.axi_memory import BASE_READ_LATENCY, Regions, check_burst

WIRES = Path(__file__).parent / "fixtures" / "axi_wires.v"
PATTERN = bytes(range(256)) * 256  # what the probe bench writes at address 0
BEAT = 8


def _probe(latency: int, gap: float, bursts: list[tuple[int, int]]) -> dict:
    built = cosim_build.build([WIRES], "axi_wires")
    return cosim_build.simulate(built, {"latency": latency, "gap": gap, "bursts": bursts},
                                test_module="axi_memory_probe")


@pytest.mark.parametrize("latency", [0, 9, 120])
def test_read_latency_is_pipelined_and_exact(latency):
    bursts = [(0, 8), (512, 8), (1024, 8), (2048, 8)]
    r = _probe(latency, 0.0, bursts)
    assert r["data"] == [PATTERN[a:a + n * BEAT].hex() for a, n in bursts]
    assert len(r["ar"]) == 4 and len(r["r"]) == 32
    # the first beat arrives latency + BASE edges after its AR ...
    assert r["r"][0] - r["ar"][0] == latency + BASE_READ_LATENCY
    # ... and the bursts overlap: the data stream never pauses (one beat per edge)
    assert r["r"] == list(range(r["r"][0], r["r"][0] + 32))


def test_pauses_throttle_without_losing_data():
    bursts = [(0, 64), (4096, 64)]
    r = _probe(3, 0.5, bursts)
    assert r["data"] == [PATTERN[a:a + n * BEAT].hex() for a, n in bursts]
    span = r["r"][-1] - r["r"][0] + 1
    assert len(r["r"]) == 128 and span > 128 * 1.5  # about half the cycles paused


def test_burst_rules_are_checked():
    regions = Regions()
    regions.read = [(0, 1 << 16, "image")]
    ok = dict(byte_lanes=BEAT, max_burst=16, size=3, burst=1, ident=0, kind="read")
    check_burst(regions, "gmem", addr=AXI_BOUNDARY - 8 * BEAT, length=8, **ok)
    assert regions.errors == []
    check_burst(regions, "gmem", addr=AXI_BOUNDARY - 4 * BEAT, length=8, **ok)
    check_burst(regions, "gmem", addr=0, length=17, **ok)
    check_burst(regions, "gmem", addr=1 << 16, length=1, **ok)
    check_burst(regions, "gmem", addr=0, length=1, **{**ok, "size": 2})
    check_burst(regions, "gmem", addr=0, length=1, **{**ok, "burst": 0})
    check_burst(regions, "gmem", addr=4, length=1, **ok)
    assert [e.split(": ", 1)[1] for e in regions.errors] == [
        "8 beats cross a 4 KB boundary", "17 beats, more than 16",
        "read of 8 bytes at 0x10000 outside every buffer the host laid out",
        "size 2, expected full width 3", "burst type 0, expected INCR", "not aligned to the bus width"]
