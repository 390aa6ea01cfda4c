"""A shared AXI4 memory for the kernel benches: cocotbext-axi's AXI RAM with a read latency.

cocotbext-axi's `AxiRamRead` answers an AR with its first R beat after the channel's own
fixed delay and serves one burst at a time. `LatencyRamRead` subclasses it: it takes every
AR as soon as the master offers it (unbounded bursts in flight; outstanding-read limits are
the kernel's business) and holds each burst until `latency` cycles after its AR handshake,
so bursts overlap and the data still flows one beat per cycle.

**What the latency is**: with latency N, a burst's first R beat transfers no earlier than
N + `BASE_READ_LATENCY` (2) clock edges after the edge of its AR handshake: rvalid rises
after edge AR + N + 1 (N = 0: the library's own minimum; tests/test_axi_memory.py measures
it); later beats follow back to back unless R is paused or the master holds rready low. It applies to every read,
on both bundles (descriptor reads on `m_axi_io` too). Writes are not delayed: B follows the
last W beat as in the library.

Random pauses (`gap` P: each cycle, with probability P, the channel holds still) use the
library's pause generators: on R for reads; `write_gap` on W (wready) and B (bvalid), the
kernel's output back-pressure.

Every burst is checked against format §11.1 (INCR, full width, id 0, at most `max_burst`
beats, no 4 KB crossing) and against the regions the host laid out (reads only inside
readable buffers, writes only inside Y buffers); problems are collected in `errors` rather
than raised, so a run reports them all beside its Y.
"""
from __future__ import annotations

import collections
import itertools
import mmap
import random

import cocotb
from cocotb.triggers import ClockCycles, Event, RisingEdge
from cocotb.utils import get_sim_time
from cocotbext.axi import AxiBurstType, AxiRamRead, AxiRamWrite, AxiResp

from seedlm_fpga.core.engine_shape import AXI_BOUNDARY, AXI_MAX_BURST

#: format §11.4's L_r and L_w of this memory with no pauses: L_r = latency + BASE_READ_LATENCY
#: (edges from an AR handshake to its first R transfer), L_w = BASE_WRITE_LATENCY (edges from a
#: burst's last W transfer to its B transfer). tests/test_axi_memory.py and the kernel tests
#: (CYCLES = kernel_cycles exactly) check both.
BASE_READ_LATENCY = 2
BASE_WRITE_LATENCY = 2


def pauses(rng: random.Random, probability: float):
    """A pause generator: True (hold still) with `probability` in each cycle; None for 0.

    None clears the channel's generator (`set_pause_generator(None)`): no coroutine per cycle.
    """
    if probability <= 0:
        return None
    return (rng.random() < probability for _ in itertools.count())


class Regions:
    """Address ranges a master may touch ([start, end) byte ranges), and the errors seen."""

    def __init__(self):
        self.read: list[tuple[int, int, str]] = []
        self.write: list[tuple[int, int, str]] = []
        self.errors: list[str] = []

    def check(self, kind: str, addr: int, n: int, bundle: str) -> None:
        ranges = self.read if kind == "read" else self.write
        if ranges and not any(lo <= addr and addr + n <= hi for lo, hi, _ in ranges):
            self.error(f"{bundle}: {kind} of {n} bytes at {addr:#x} outside every buffer the host laid out")

    def error(self, text: str) -> None:
        if len(self.errors) < 20:  # the first ones say enough
            self.errors.append(text)


def check_burst(regions: Regions, bundle: str, byte_lanes: int, max_burst: int, addr: int, length: int,
                size: int, burst: int, ident: int, kind: str) -> None:
    """format §11.1's burst rules for one AR/AW (`length` beats)."""
    what = f"{bundle} {kind} burst at {addr:#x}"
    if burst != AxiBurstType.INCR:
        regions.error(f"{what}: burst type {burst}, expected INCR")
    if 1 << size != byte_lanes:
        regions.error(f"{what}: size {size}, expected full width {byte_lanes.bit_length() - 1}")
    if ident:
        regions.error(f"{what}: id {ident}, expected 0")
    if length > max_burst:
        regions.error(f"{what}: {length} beats, more than {max_burst}")
    if addr % byte_lanes:
        regions.error(f"{what}: not aligned to the bus width")
    if addr // AXI_BOUNDARY != (addr + length * byte_lanes - 1) // AXI_BOUNDARY:
        regions.error(f"{what}: {length} beats cross a 4 KB boundary")
    regions.check(kind, addr, length * byte_lanes, bundle)


class LatencyRamRead(AxiRamRead):
    """AxiRamRead with a fixed, pipelined read latency (see the module text) and burst checks."""

    def __init__(self, bus, clock, reset, *, mem, latency: int, period_ns: float, regions: Regions,
                 max_burst: int = AXI_MAX_BURST, **kwargs):
        self.latency = latency
        self.period_ns = period_ns
        self.regions = regions
        self.max_burst = max_burst
        self._bursts: collections.deque = collections.deque()
        self._burst_event = Event()
        self._accept_cr = None
        super().__init__(bus, clock, reset, mem=mem, **kwargs)
        self.name = bus.ar._name or "read"

    def cycle(self) -> int:
        return round(get_sim_time("ns") / self.period_ns)

    def _handle_reset(self, state):
        super()._handle_reset(state)
        if state:
            if self._accept_cr is not None:
                self._accept_cr.kill()
                self._accept_cr = None
            self._bursts.clear()
        elif self._accept_cr is None:
            self._accept_cr = cocotb.start_soon(self._accept_reads())

    async def _accept_reads(self):
        """Take every AR at once (the sink's arready stays high), stamped with its cycle."""
        while True:
            ar = await self.ar_channel.recv()
            self._bursts.append((self.cycle(), ar))
            self._burst_event.set()

    async def _process_read(self):
        while True:
            while not self._bursts:
                self._burst_event.clear()
                await self._burst_event.wait()
            stamp, ar = self._bursts.popleft()
            addr, length = int(ar.araddr), int(getattr(ar, "arlen", 0)) + 1
            size = int(getattr(ar, "arsize", self.max_burst_size))
            arid = int(getattr(ar, "arid", 0))
            check_burst(self.regions, self.name, self.byte_lanes, self.max_burst, addr, length, size,
                        int(getattr(ar, "arburst", AxiBurstType.INCR)), arid, "read")
            # The R source drives a queued beat after the next edge: send at edge stamp + latency.
            wait = stamp + self.latency - self.cycle()
            if wait > 0:
                await ClockCycles(self.clock, wait)
            base = addr - addr % self.byte_lanes
            for n in range(length):
                r = self.r_channel._transaction_obj()
                r.rid = arid
                r.rlast = n == length - 1
                r.rresp = AxiResp.OKAY
                r.rdata = int.from_bytes(self.read((base + n * self.byte_lanes) % self.size,
                                                   self.byte_lanes), "little")
                await self.r_channel.send(r)


class CheckedRamWrite(AxiRamWrite):
    """AxiRamWrite that checks every AW burst (format §11.1) and that writes hit a Y buffer."""

    def __init__(self, bus, clock, reset, *, mem, regions: Regions, max_burst: int = AXI_MAX_BURST, **kwargs):
        self.regions = regions
        self.max_burst = max_burst
        super().__init__(bus, clock, reset, mem=mem, **kwargs)
        self.name = bus.aw._name or "write"
        original = self.aw_channel.recv

        async def recv_checked():  # the library's write loop takes each AW here
            aw = await original()
            length = int(getattr(aw, "awlen", 0)) + 1
            check_burst(self.regions, self.name, self.byte_lanes, self.max_burst, int(aw.awaddr), length,
                        int(getattr(aw, "awsize", self.max_burst_size)),
                        int(getattr(aw, "awburst", AxiBurstType.INCR)), int(getattr(aw, "awid", 0)), "write")
            return aw

        self.aw_channel.recv = recv_checked


class SharedMemory:
    """One byte array behind the kernel's two bundles, addressed modulo its size.

    `size` is a power of two; a host that places its buffers at base + offset with base a
    multiple of `size` (e.g. 2^32, to exercise the high address words) sees them at offset.
    """

    def __init__(self, size: int):
        if size & (size - 1):
            raise ValueError(f"memory size must be a power of two, got {size}")
        self.size = size
        self.mem = mmap.mmap(-1, size)
        self.regions = Regions()

    def write(self, addr: int, data: bytes) -> None:
        a = addr % self.size
        self.mem[a:a + len(data)] = data

    def read(self, addr: int, n: int) -> bytes:
        a = addr % self.size
        return bytes(self.mem[a:a + n])

    def attach(self, dut, clock, reset, *, latency: int, period_ns: float, gap: float, write_gap: float,
               rng: random.Random, max_burst: int = AXI_MAX_BURST):
        """Serve `m_axi_gmem` (read only) and `m_axi_io` (read and write) of `dut` from this memory."""
        from cocotbext.axi import AxiReadBus, AxiWriteBus

        common = dict(mem=self.mem, latency=latency, period_ns=period_ns, regions=self.regions,
                      reset_active_level=False, max_burst=max_burst)
        gmem = LatencyRamRead(AxiReadBus.from_prefix(dut, "m_axi_gmem"), clock, reset, **common)
        io_read = LatencyRamRead(AxiReadBus.from_prefix(dut, "m_axi_io"), clock, reset, **common)
        io_write = CheckedRamWrite(AxiWriteBus.from_prefix(dut, "m_axi_io"), clock, reset, mem=self.mem,
                                   regions=self.regions, reset_active_level=False, max_burst=max_burst)
        for port in (gmem, io_read):
            port.r_channel.set_pause_generator(pauses(rng, gap))
        io_write.w_channel.set_pause_generator(pauses(rng, write_gap))
        io_write.b_channel.set_pause_generator(pauses(rng, write_gap))
        return gmem, io_read, io_write
