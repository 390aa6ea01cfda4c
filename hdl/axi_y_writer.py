"""`AxiYWriter`: the kernel's AXI4 write master for Y (format §11.3, bundle `m_axi_io`).

Jobs are (Y address, rows); each row's Y arrives on stream ``y`` as one 64-bit word (already
sign-extended) and goes to address + 8r. AW is issued ahead of the data, as soon as a job is
known (bursts split by `BurstIssuer`: <= max_burst beats, no 4 KB crossing); each burst's length
waits in a small FIFO after its AW handshake, and W beats flow from ``y`` only for bursts whose
AW has been accepted, so W never precedes its AW. WVALID is a function of registers; a Y word
goes out in the cycle it is offered when WREADY is high, so writing keeps pace with the engine
(and the last Y's W beat is in the cycle that Y leaves the engine, format §11.4).
``idle``: no job, burst or B response outstanding (ap_done waits for it).
"""
from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from seedlm_fpga.core.engine_shape import IO_BITS
from seedlm_fpga.hdl.axi_burst import INCR, BurstIssuer, job_layout, write_ports

#: bursts whose AW is accepted and whose W beats are not all sent yet, at most
AW_AHEAD = 4


class AxiYWriter(wiring.Component):
    def __init__(self, max_burst: int, count_bits: int, max_jobs: int):
        self.max_burst, self.count_bits, self.max_jobs = max_burst, count_bits, max_jobs
        super().__init__({
            "job": In(stream.Signature(job_layout(count_bits))),
            "y": In(stream.Signature(IO_BITS)),
            "idle": Out(1),
            **write_ports(IO_BITS),
        })

    def elaborate(self, platform):
        m = Module()
        jobs = m.submodules.jobs = fifo.SyncFIFO(width=len(self.job.payload.as_value()), depth=self.max_jobs)
        issuer = m.submodules.issuer = BurstIssuer(IO_BITS // 8, self.max_burst, self.count_bits)
        lengths = m.submodules.lengths = fifo.SyncFIFO(width=len(issuer.issue_beats), depth=AW_AHEAD)
        aw_fire = Signal()
        w_fire = Signal()
        b_fire = Signal()
        w_left = Signal(range(self.max_burst + 1))      # beats left in the burst being written
        outstanding = Signal(range(1 << 16))           # AW accepted, B not yet received
        m.d.comb += [
            jobs.w_en.eq(self.job.valid), jobs.w_data.eq(self.job.payload.as_value()),
            self.job.ready.eq(jobs.w_rdy),
            issuer.job.valid.eq(jobs.r_rdy), issuer.job.payload.eq(jobs.r_data), jobs.r_en.eq(issuer.job.ready),
            # a burst in the AW register counts: its length enters the FIFO at the handshake
            issuer.allow.eq(lengths.level + issuer.valid < AW_AHEAD),
            issuer.ready.eq(self.awready),
            self.awaddr.eq(issuer.addr), self.awlen.eq(issuer.len), self.awvalid.eq(issuer.valid),
            self.awsize.eq((IO_BITS // 8).bit_length() - 1), self.awburst.eq(INCR), self.awid.eq(0),
            aw_fire.eq(self.awvalid & self.awready),
            lengths.w_en.eq(aw_fire), lengths.w_data.eq(issuer.len + 1),
            self.wvalid.eq(self.y.valid & w_left.any()),
            self.wdata.eq(self.y.payload), self.wstrb.eq((1 << (IO_BITS // 8)) - 1),
            self.wlast.eq(w_left == 1),
            self.y.ready.eq(self.wready & w_left.any()),
            w_fire.eq(self.wvalid & self.wready),
            self.bready.eq(1),
            b_fire.eq(self.bvalid),
            self.idle.eq(~jobs.r_rdy & ~issuer.busy & ~lengths.r_rdy & ~w_left.any() & ~outstanding.any()),
        ]
        # the next burst's length is taken with the current one's last beat (no gap between bursts)
        take = ~w_left.any() | (w_fire & (w_left == 1))
        with m.If(w_fire):
            m.d.sync += w_left.eq(w_left - 1)
        with m.If(take & lengths.r_rdy):
            m.d.sync += w_left.eq(lengths.r_data)
        m.d.comb += lengths.r_en.eq(take)
        m.d.sync += outstanding.eq(outstanding + aw_fire - b_fire)
        return m
