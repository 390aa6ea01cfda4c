"""AXI4 burst masters of the kernel (format §11.1): the burst rule, the read master.

`BurstIssuer` turns (address, beats) jobs, in order, into INCR bursts of at most `max_burst`
beats that never cross a 4 KB boundary, one burst per cycle: a burst takes
min(beats left, max_burst, beats to the next 4 KB edge) and the next job is loaded in the cycle
the current one's last burst leaves, so jobs follow each other without a gap. Its address
register (addr, len, valid) is the AR or AW channel itself; ``allow`` (from registers) gates
new bursts (credits).

`AxiBurstReader` is the read master: a `BurstIssuer` on AR, a FIFO for R. Issuing a burst
reserves its beats in the FIFO (credits), so every R beat has a place: RREADY stays high.
With depth >= mem_latency + max_burst + credit_loop bursts leave early enough that a memory
answering within mem_latency cycles delivers one beat per clock (format §11.4).

Port names are the AXI channel signal names (``araddr`` ...); the kernel prefixes them.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from seedlm_fpga.core.engine_shape import AXI_BOUNDARY, AXI_MAX_BURST

ADDR_BITS = 64
PAGE_BITS = AXI_BOUNDARY.bit_length() - 1
INCR = 1


def job_layout(count_bits: int) -> data.StructLayout:
    return data.StructLayout({"addr": ADDR_BITS, "beats": count_bits})


def read_ports(data_bits: int) -> dict:
    """AR and R channel members (format §11.1), as seen from the master."""
    return {
        "araddr": Out(ADDR_BITS), "arlen": Out(8), "arsize": Out(3), "arburst": Out(2), "arid": Out(1),
        "arvalid": Out(1), "arready": In(1),
        "rdata": In(data_bits), "rresp": In(2), "rlast": In(1), "rid": In(1), "rvalid": In(1), "rready": Out(1),
    }


def write_ports(data_bits: int) -> dict:
    """AW, W and B channel members (format §11.1), as seen from the master."""
    return {
        "awaddr": Out(ADDR_BITS), "awlen": Out(8), "awsize": Out(3), "awburst": Out(2), "awid": Out(1),
        "awvalid": Out(1), "awready": In(1),
        "wdata": Out(data_bits), "wstrb": Out(data_bits // 8), "wlast": Out(1), "wvalid": Out(1), "wready": In(1),
        "bresp": In(2), "bid": In(1), "bvalid": In(1), "bready": Out(1),
    }


class BurstIssuer(wiring.Component):
    """Jobs -> bursts on one address channel (see the module docstring).

    ``issue`` is high (with ``issue_beats``) in the cycle a burst enters the address register.
    """

    def __init__(self, bytes_per_beat: int, max_burst: int, count_bits: int):
        assert bytes_per_beat & (bytes_per_beat - 1) == 0 and 1 <= max_burst <= AXI_MAX_BURST
        assert max_burst * bytes_per_beat <= AXI_BOUNDARY
        self.bytes_per_beat, self.max_burst = bytes_per_beat, max_burst
        super().__init__({
            "job": In(stream.Signature(job_layout(count_bits))),
            "allow": In(1),
            "addr": Out(ADDR_BITS), "len": Out(8), "valid": Out(1), "ready": In(1),
            "issue": Out(1), "issue_beats": Out(range(max_burst + 1)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        lb = self.bytes_per_beat.bit_length() - 1
        edge_beats = AXI_BOUNDARY // self.bytes_per_beat
        mb = self.max_burst
        count_bits = len(self.job.payload.beats)
        # The job's state: address, beats left, and `limit` = min(beats to the 4 KB edge,
        # max_burst), a register: the next limit follows from `to_edge` alone (a full burst
        # either ends at the edge or leaves to_edge - max_burst), so the path from one burst
        # to the next is one compare (beats left vs limit) and independent adds.
        # The address as (job page, offset in the page, pages crossed): the page is loaded with
        # the job and never counted, so only the narrow crossings counter and the offset carry
        # a load mux behind an adder; the AR address adds page and crossings, no mux (issue #13,
        # the kernel's area: a 64-bit loadable counter costs a LUT per bit).
        max_bytes = ((1 << count_bits) - 1) * self.bytes_per_beat
        cur_page = Signal(ADDR_BITS - PAGE_BITS)
        cur_offset = Signal(PAGE_BITS)
        crossed = Signal(range(max_bytes // AXI_BOUNDARY + 2))
        cur_left = Signal(count_bits)
        to_edge = Signal(range(edge_beats + 1))
        limit = Signal(range(mb + 1))
        have = Signal()
        last = Signal()                   # this burst ends the job: beats left <= limit
        beats = Signal(range(mb + 1))
        m.d.comb += [
            have.eq(cur_left.any()),
            last.eq(cur_left <= limit),
            beats.eq(Mux(last, cur_left, limit)),
            self.issue.eq(have & self.allow & (~self.valid | self.ready)),
            self.issue_beats.eq(beats),
            # load the next job when idle, or with the current job's last burst (no gap)
            self.job.ready.eq(~have | (self.issue & last)),
            self.busy.eq(have | self.valid),
        ]
        with m.If(self.issue):
            after = Signal.like(to_edge)
            m.d.comb += after.eq(Mux(to_edge <= mb, edge_beats, to_edge - mb))
            m.d.sync += [self.valid.eq(1), self.addr.eq(Cat(cur_offset, cur_page + crossed)),
                         self.len.eq(beats - 1),
                         # a burst with to_edge <= max_burst that is not the job's last ends at the
                         # edge: the offset wraps to 0 (and after the last burst neither matters)
                         cur_offset.eq(cur_offset + (limit << lb)), crossed.eq(crossed + (to_edge <= mb)),
                         cur_left.eq(Mux(last, 0, cur_left - limit)),
                         to_edge.eq(after), limit.eq(Mux(after < mb, after, mb))]
        with m.Elif(self.ready):
            m.d.sync += self.valid.eq(0)
        with m.If(self.job.valid & self.job.ready):
            first = Signal.like(to_edge)
            m.d.comb += first.eq(edge_beats - self.job.payload.addr[lb:PAGE_BITS])
            m.d.sync += [cur_page.eq(self.job.payload.addr[PAGE_BITS:]),
                         cur_offset.eq(self.job.payload.addr[:PAGE_BITS]), crossed.eq(0),
                         cur_left.eq(self.job.payload.beats),
                         to_edge.eq(first), limit.eq(Mux(first < mb, first, mb))]
        return m


class AxiBurstReader(wiring.Component):
    """Read master: jobs in, AR/R out, the data beats in order on stream ``data``."""

    def __init__(self, data_bits: int, max_burst: int, depth: int, count_bits: int):
        assert depth >= max_burst
        self.data_bits, self.max_burst, self.depth, self.count_bits = data_bits, max_burst, depth, count_bits
        super().__init__({
            "job": In(stream.Signature(job_layout(count_bits))),
            "data": Out(stream.Signature(data_bits)),
            "busy": Out(1),
            **read_ports(data_bits),
        })

    def elaborate(self, platform):
        m = Module()
        issuer = m.submodules.issuer = BurstIssuer(self.data_bits // 8, self.max_burst, self.count_bits)
        buf = m.submodules.read_fifo = fifo.SyncFIFOBuffered(width=self.data_bits, depth=self.depth)
        wiring.connect(m, wiring.flipped(self.job), issuer.job)
        free = Signal(range(self.depth + 1), init=self.depth)  # FIFO places not yet reserved
        pop = Signal()
        m.d.comb += [
            issuer.allow.eq(free >= self.max_burst),
            issuer.ready.eq(self.arready),
            self.araddr.eq(issuer.addr), self.arlen.eq(issuer.len), self.arvalid.eq(issuer.valid),
            self.arsize.eq((self.data_bits // 8).bit_length() - 1), self.arburst.eq(INCR), self.arid.eq(0),
            self.rready.eq(1),
            buf.w_en.eq(self.rvalid), buf.w_data.eq(self.rdata),
            self.data.valid.eq(buf.r_rdy), self.data.payload.eq(buf.r_data), buf.r_en.eq(self.data.ready),
            pop.eq(self.data.valid & self.data.ready),
            self.busy.eq(issuer.busy | (free != self.depth)),
        ]
        m.d.sync += free.eq(free - Mux(issuer.issue, issuer.issue_beats, 0) + pop)
        return m
