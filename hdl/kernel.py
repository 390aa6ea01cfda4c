"""`GemvKernel`: a §10 engine as a memory-mapped Vitis-style RTL kernel (format §11).

    GemvKernel(cfg, kind="seedlm" | "baseline", mem_latency=128, max_burst=None, max_descriptors=16,
               extensions=False, ext_max_rows=16384)

Ports (Vitis names): ``ap_clk``, ``ap_rst_n`` (active-low synchronous reset; the sync domain is
made from them), ``interrupt``, ``s_axi_control_*`` (`ControlRegisters`), ``m_axi_gmem_*``
(read only, W bits: activation and weight images), ``m_axi_io_*`` (64 bits: descriptors in,
Y out).

The sequencer, per start (cycle 0: ap_start taken, arguments latched):
  cycle 1  nA = ceil(cols / N) and R (format §10 item 3) by constant dividers (shift or
           multiply by a reciprocal; no sequential divider); the descriptor list's read job;
  cycle 2  the activation job (ACTS, nA beats) to the read master and the router;
  then one GEMV per descriptor (or the registers' one): rows x R (registered multiply), then
  its weight job, its router segment and its Y job, in one cycle. Descriptors arrive on
  `m_axi_io` R one 64-bit word per cycle (4 per descriptor), each GEMV pushed as soon as its
  rows are known.
The read master's stream goes through the router to the engine: the first nA beats to
``act`` (tlast on the last), then each GEMV's rows x R beats to ``w`` (tlast on its last,
with ``keep_acts`` high unless it is the start's last GEMV: the engine keeps its activation
buffer). Y (sign-extended to 64 bits) goes to `AxiYWriter`. With `extensions` (SeedLM only)
a GEMV whose descriptor names an extension stream also pushes that stream's job to a second
read master on `m_axi_io` (its R channel is idle once the descriptors are in): `ExtUnit`
takes the stream a word per cycle while the engine takes the weights, sees the activation
beats, and adds its rows into Y on the way to the writer (hdl/ext_unit.py). ap_done is raised
when every GEMV is pushed, the writer is idle (every B received) and every stream is read.
Timing: format §11.4, `core.engine_shape.kernel_cycles`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from amaranth.hdl import ClockDomain, Module, Mux, Signal
from amaranth.lib import data, enum, fifo, wiring
from amaranth.lib.wiring import In, Out

from seedlm_fpga.core.engine_shape import (DEFAULT_MAX_DESCRIPTORS, DEFAULT_MEM_LATENCY, DESCRIPTOR_WORDS, IO_BITS, KERNEL_TIMING, MAX_ROWS, AXI_BOUNDARY,
                                           AXI_MAX_BURST, DEFAULT_EXT_MAX_ROWS, DesignConfig, check_kernel_params,
                                           ext_y_rows, read_buffer_depth)
from seedlm_fpga.hdl.axi_burst import AxiBurstReader, BurstIssuer, job_layout, read_ports, write_ports
from seedlm_fpga.hdl.axi_lite_control import ControlRegisters, lite_ports
from seedlm_fpga.hdl.axi_y_writer import AxiYWriter
from seedlm_fpga.hdl.baseline_engine import BaselineEngine
from seedlm_fpga.hdl.ext_unit import ExtUnit, check_ext_unit
from seedlm_fpga.hdl.gemv_engine import GemvEngine

KINDS = ("seedlm", "baseline")
#: cycle 0 -> first gmem AR handshake: take, divide, act job into the FIFO, issuer load, AR register
LAUNCH_STAGES = (("take", 1), ("divide", 1), ("act_job", 1), ("issuer_load", 1), ("ar", 1))
#: cycle 0 -> first io AR handshake: take (descriptor job register), issuer load, AR register
DESC_LAUNCH_STAGES = (("take", 1), ("issuer_load", 1), ("ar", 1))
#: descriptor word 0 -> its weight AR handshake: words 1..3, multiply, push, issuer load, AR register
DESC_TO_WEIGHTS_STAGES = (("words", 3), ("multiply", 1), ("push", 1), ("issuer_load", 1), ("ar", 1))


def default_max_burst(bus_bits: int) -> int:
    return min(64, AXI_MAX_BURST, AXI_BOUNDARY * 8 // bus_bits)


@dataclass(frozen=True)
class KernelParams:
    """The kernel's parameters beside the engine's (format §11.3, last paragraph)."""

    mem_latency: int = DEFAULT_MEM_LATENCY
    max_burst: int | None = None      # None: default_max_burst(W)
    max_descriptors: int = DEFAULT_MAX_DESCRIPTORS
    extensions: bool = False          # the SeedLM kernel's extension unit (hdl.ext_unit, format §11.3)
    ext_max_rows: int = DEFAULT_EXT_MAX_ROWS

    def as_dict(self) -> dict:
        return asdict(self)


def check_kernel(cfg: DesignConfig, kind: str, params: KernelParams) -> int:
    """Raise ValueError for a kernel format §11 does not allow; return the max burst used."""
    if kind not in KINDS:
        raise ValueError(f"kernel kind must be one of {', '.join(KINDS)}, got {kind!r}")
    max_burst = default_max_burst(cfg.bus_bits) if params.max_burst is None else params.max_burst
    check_kernel_params(cfg.bus_bits, max_burst, params.mem_latency, params.max_descriptors)
    if params.extensions and kind == "seedlm":
        check_ext_unit(cfg.seedlm.acts_per_beat, cfg.max_cols, params.ext_max_rows)
    y_bits = (cfg.seedlm if kind == "seedlm" else cfg.baseline).y_bits
    if y_bits > IO_BITS:
        raise ValueError(f"Y is {y_bits} bits at max-cols {cfg.max_cols} and {cfg.act_bits}-bit activations, "
                         f"more than the kernel's 64-bit Y words (format §11.3): lower max-cols or use 8-bit "
                         f"activations")
    return max_burst


def ceil_div_const(value, divisor: int, value_bits: int):
    """ceil(value / divisor) for 0 <= value < 2**value_bits: a shift for a power of two, else
    floor(x * M / 2^s) with x = value + divisor - 1, M = ceil(2^s / divisor), s = n + bitlen(divisor)
    (n: bits of x): exact, as x * (M*divisor - 2^s) / (divisor * 2^s) < 2^(n-s) <= 1/divisor."""
    x = value + (divisor - 1)
    if divisor & (divisor - 1) == 0:
        return x >> (divisor.bit_length() - 1)
    n = value_bits + 1
    s = n + divisor.bit_length()
    return (x * -(-(1 << s) // divisor)) >> s


def _prefixed(prefix: str, members: dict) -> dict:
    return {f"{prefix}_{name}": member for name, member in members.items()}


def _wire(m, top, prefix: str, sub, members: dict):
    """Connect sub.<name> to top.<prefix>_<name> for every member (direction as seen by `top`)."""
    for name, member in members.items():
        outer, inner = getattr(top, f"{prefix}_{name}"), getattr(sub, name)
        m.d.comb += (inner.eq(outer) if member.flow == In else outer.eq(inner))


class Stage(enum.Enum, shape=3):
    # from 1: yosys writes `x == 0` as a Verilog `!x` on a vector, which Verilator flags
    IDLE = 1
    DIVIDE = 2
    ACT_JOB = 3
    RUN = 4


class GemvKernel(wiring.Component):
    def __init__(self, cfg: DesignConfig, kind: str = "seedlm", mem_latency: int = DEFAULT_MEM_LATENCY,
                 max_burst: int | None = None, max_descriptors: int = DEFAULT_MAX_DESCRIPTORS,
                 extensions: bool = False, ext_max_rows: int = DEFAULT_EXT_MAX_ROWS):
        self._MustUse__silence = True  # a rejected configuration is not an unused design
        max_burst = check_kernel(cfg, kind, KernelParams(mem_latency, max_burst, max_descriptors, extensions,
                                                         ext_max_rows))
        self.cfg, self.kind = cfg, kind
        self.mem_latency, self.max_burst, self.max_descriptors = mem_latency, max_burst, max_descriptors
        # the baseline kernel has no extension parts to add (its weights are int16 already)
        self.extensions, self.ext_max_rows = extensions and kind == "seedlm", ext_max_rows
        if self.extensions:  # a Y FIFO deep enough to run ahead of the stream's right factors (format §11.4)
            self.engine = GemvEngine(cfg, keep_acts=True, min_y_rows=ext_y_rows(cfg.seedlm.acts_per_word))
        else:
            self.engine = (GemvEngine if kind == "seedlm" else BaselineEngine)(cfg, keep_acts=True)
        self.shape = self.engine.shape
        self.read_depth = read_buffer_depth(mem_latency, max_burst)
        self.row_beats_max = self.shape.row_beats(cfg.max_cols)
        self.count_bits = (MAX_ROWS * self.row_beats_max).bit_length()
        for stages, constant in ((LAUNCH_STAGES, KERNEL_TIMING.launch), (DESC_LAUNCH_STAGES, KERNEL_TIMING.desc_launch),
                                 (DESC_TO_WEIGHTS_STAGES, KERNEL_TIMING.desc_to_weights)):
            assert sum(c for _, c in stages) == constant, "hdl.kernel and core.engine_shape disagree"
        assert self.engine.FIFO_LATENCY == KERNEL_TIMING.read_fifo  # the read FIFO is the same kind
        self._MustUse__silence = False
        super().__init__({
            "ap_clk": In(1), "ap_rst_n": In(1), "interrupt": Out(1),
            **_prefixed("s_axi_control", lite_ports()),
            **_prefixed("m_axi_gmem", read_ports(cfg.bus_bits)),
            **_prefixed("m_axi_io", {**read_ports(IO_BITS), **write_ports(IO_BITS)}),
        })

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = cd = ClockDomain("sync")
        m.d.comb += [cd.clk.eq(self.ap_clk), cd.rst.eq(~self.ap_rst_n)]
        cfg, sh = self.cfg, self.shape
        N, A = sh.acts_per_beat, sh.act_bits
        cols_bits = cfg.max_cols.bit_length()

        ctrl = m.submodules.control = ControlRegisters(cfg.max_cols, self.max_descriptors)
        _wire(m, self, "s_axi_control", ctrl, lite_ports())
        m.d.comb += self.interrupt.eq(ctrl.interrupt)
        engine = m.submodules.engine = self.engine
        reader = m.submodules.gmem_reader = AxiBurstReader(cfg.bus_bits, self.max_burst, self.read_depth,
                                                           self.count_bits)
        _wire(m, self, "m_axi_gmem", reader, read_ports(cfg.bus_bits))
        desc_bits = (self.max_descriptors * DESCRIPTOR_WORDS).bit_length()
        desc_reader = m.submodules.desc_issuer = BurstIssuer(IO_BITS // 8, self.max_burst, desc_bits)
        writer = m.submodules.y_writer = AxiYWriter(self.max_burst, MAX_ROWS.bit_length(), self.max_descriptors)
        _wire(m, self, "m_axi_io", writer, write_ports(IO_BITS))
        if self.extensions:
            # the extension streams, read on m_axi_io after the descriptors (format §11.3)
            ext_reader = m.submodules.ext_reader = AxiBurstReader(IO_BITS, self.max_burst, self.read_depth,
                                                                  self.count_bits)

        # --- sequencer ---------------------------------------------------------------------
        word = Signal(range(DESCRIPTOR_WORDS))  # which word of a descriptor the next io R beat is
        stage = Signal(Stage, init=Stage.IDLE)
        busy = Signal()
        take = Signal()
        cycles = Signal(32)
        cols = Signal(cols_bits)
        acts_addr, n_desc = Signal(64), Signal(range(self.max_descriptors + 1))
        act_beats = Signal(range(-(-cfg.max_cols // N) + 1))
        row_beats = Signal(range(self.row_beats_max + 1))
        m.d.comb += [take.eq(ctrl.ap_start & ~busy), ctrl.take.eq(take), ctrl.busy.eq(busy),
                     ctrl.cycles.eq(cycles), engine.cols.eq(cols)]
        with m.If(take | busy):
            m.d.sync += cycles.eq(Mux(take, 1, cycles + 1))

        # the GEMV being prepared: from the registers, or from descriptor words
        gemv_w, gemv_y, gemv_rows = Signal(64), Signal(64), Signal(24)
        gemv_ready = Signal()            # gemv_* complete this cycle: multiply now, push next cycle
        push = Signal()
        # pushed from gemv_* the cycle after gemv_ready: the next descriptor's words overwrite
        # them from the end of that cycle on (word 0, then 1, then 2), never before
        push_beats = Signal(self.count_bits)
        # extensions: descriptor +20 (the stream's 64-bit words) and +24 (its address); none from the registers
        ext_beats, ext_addr = Signal(self.count_bits), Signal(64)
        if self.extensions:
            with m.If(take):
                m.d.sync += ext_beats.eq(0)
        pushed = Signal(range(self.max_descriptors + 1))
        all_pushed = Signal()
        ext_idle = Signal()              # every extension stream read (1 without extensions)

        desc_job = Signal(job_layout(desc_bits))
        desc_job_valid = Signal()
        m.d.comb += [desc_reader.job.valid.eq(desc_job_valid), desc_reader.job.payload.eq(desc_job),
                     desc_reader.allow.eq(1), desc_reader.ready.eq(self.m_axi_io_arready),
                     self.m_axi_io_arsize.eq((IO_BITS // 8).bit_length() - 1), self.m_axi_io_arburst.eq(1),
                     self.m_axi_io_arid.eq(0), self.m_axi_io_rready.eq(1)]
        desc_word = self.m_axi_io_rvalid  # an io R beat is a descriptor word
        if self.extensions:
            # stream bursts wait until every descriptor burst has left: R returns in AR order, so
            # the descriptor words come first, counted by desc_left
            desc_left = Signal(desc_bits)
            ext_ar = ext_reader.arvalid & ~desc_reader.busy
            desc_word = self.m_axi_io_rvalid & desc_left.any()
            with m.If(take):
                m.d.sync += desc_left.eq(ctrl.n_descriptors * DESCRIPTOR_WORDS)
            with m.Elif(desc_word):
                m.d.sync += desc_left.eq(desc_left - 1)
            m.d.comb += [self.m_axi_io_araddr.eq(Mux(ext_ar, ext_reader.araddr, desc_reader.addr)),
                         self.m_axi_io_arlen.eq(Mux(ext_ar, ext_reader.arlen, desc_reader.len)),
                         self.m_axi_io_arvalid.eq(desc_reader.valid | ext_ar),
                         ext_reader.arready.eq(self.m_axi_io_arready & ~desc_reader.busy),
                         ext_reader.rvalid.eq(self.m_axi_io_rvalid & ~desc_left.any()),
                         ext_reader.rdata.eq(self.m_axi_io_rdata), ext_reader.rlast.eq(self.m_axi_io_rlast),
                         ext_reader.rresp.eq(self.m_axi_io_rresp), ext_reader.rid.eq(self.m_axi_io_rid)]
        else:
            m.d.comb += [self.m_axi_io_araddr.eq(desc_reader.addr), self.m_axi_io_arlen.eq(desc_reader.len),
                         self.m_axi_io_arvalid.eq(desc_reader.valid)]
        with m.If(desc_reader.job.ready):
            m.d.sync += desc_job_valid.eq(0)

        with m.If(stage == Stage.IDLE):
            with m.If(take):
                m.d.sync += [
                    busy.eq(1), stage.eq(Stage.DIVIDE), word.eq(0), cols.eq(ctrl.cols), acts_addr.eq(ctrl.acts),
                    n_desc.eq(ctrl.n_descriptors), gemv_w.eq(ctrl.weights), gemv_y.eq(ctrl.y),
                    gemv_rows.eq(ctrl.rows), pushed.eq(0), all_pushed.eq(0),
                    desc_job.addr.eq(ctrl.descriptors),
                    desc_job.beats.eq(ctrl.n_descriptors * DESCRIPTOR_WORDS),
                    desc_job_valid.eq(ctrl.n_descriptors.any()),
                ]
        with m.Elif(stage == Stage.DIVIDE):
            m.d.sync += [act_beats.eq(ceil_div_const(cols, N, cols_bits)),
                         row_beats.eq(self._row_beats(cols, cols_bits)), stage.eq(Stage.ACT_JOB)]
        with m.Elif(stage == Stage.ACT_JOB):
            m.d.comb += gemv_ready.eq(~n_desc.any())
            m.d.sync += stage.eq(Stage.RUN)
        with m.Elif(stage == Stage.RUN):
            with m.If(all_pushed & writer.idle & ext_idle):
                m.d.comb += ctrl.done.eq(1)
                m.d.sync += [busy.eq(0), stage.eq(Stage.IDLE)]

        # descriptor words, one per R beat: weights address, Y address, rows, reserved
        rdata = self.m_axi_io_rdata
        with m.If(desc_word):
            m.d.sync += word.eq(word + 1)
            with m.If(~word.any()):  # word 0 (not `== 0`: see Stage)
                m.d.sync += gemv_w.eq(rdata)
            with m.Elif(word == 1):
                m.d.sync += gemv_y.eq(rdata)
            with m.Elif(word == 2):
                m.d.sync += gemv_rows.eq(rdata[:24])
                if self.extensions:
                    m.d.sync += ext_beats.eq(rdata[32:])
            with m.Else():
                m.d.comb += gemv_ready.eq(1)
                if self.extensions:
                    m.d.sync += ext_addr.eq(rdata)
        m.d.sync += push.eq(gemv_ready)
        with m.If(gemv_ready):
            m.d.sync += push_beats.eq(gemv_rows * row_beats)
        with m.If(push):
            m.d.sync += pushed.eq(pushed + 1)
            with m.If(pushed + 1 >= n_desc):
                m.d.sync += all_pushed.eq(1)

        # --- read jobs and router segments: the activations, then one per GEMV --------------
        # max_descriptors entries suffice: the reader and the router take the activations' entry
        # in cycle 3, before any GEMV is pushed (cycle 3 at the earliest, descriptors from 7)
        n_jobs = self.max_descriptors
        jobs = m.submodules.read_jobs = fifo.SyncFIFO(width=len(reader.job.payload.as_value()), depth=n_jobs)
        seg_layout = data.StructLayout({"beats": self.count_bits, "act": 1, "keep": 1})
        segs = m.submodules.segments = fifo.SyncFIFO(width=seg_layout.size, depth=n_jobs)
        job_in = Signal(job_layout(self.count_bits))
        seg_in = Signal(seg_layout)
        act_job = stage == Stage.ACT_JOB
        m.d.comb += [
            jobs.w_en.eq(act_job | push), jobs.w_data.eq(job_in),
            segs.w_en.eq(act_job | push), segs.w_data.eq(seg_in),
            reader.job.valid.eq(jobs.r_rdy), reader.job.payload.eq(jobs.r_data), jobs.r_en.eq(reader.job.ready),
            writer.job.valid.eq(push), writer.job.payload.addr.eq(gemv_y), writer.job.payload.beats.eq(gemv_rows),
        ]
        with m.If(act_job):
            m.d.comb += [job_in.addr.eq(acts_addr), job_in.beats.eq(act_beats),
                         seg_in.beats.eq(act_beats), seg_in.act.eq(1)]
        with m.Else():
            m.d.comb += [job_in.addr.eq(gemv_w), job_in.beats.eq(push_beats),
                         seg_in.beats.eq(push_beats), seg_in.keep.eq(pushed + 1 < n_desc)]

        # --- router: read beats -> engine act / w ------------------------------------------
        seg_left = Signal(self.count_bits)
        seg_act, seg_keep = Signal(), Signal()
        have = seg_left.any()
        fire = Signal()
        seg_out = seg_layout(segs.r_data)
        m.d.comb += [
            engine.act.payload.data.eq(reader.data.payload[:N * A]), engine.act.payload.last.eq(seg_left == 1),
            engine.w.payload.data.eq(reader.data.payload), engine.w.payload.last.eq(seg_left == 1),
            engine.act.valid.eq(reader.data.valid & have & seg_act),
            engine.w.valid.eq(reader.data.valid & have & ~seg_act),
            engine.keep_acts.eq(seg_keep),
            reader.data.ready.eq(have & Mux(seg_act, engine.act.ready, engine.w.ready)),
            fire.eq(reader.data.valid & reader.data.ready),
        ]
        next_seg = ~have | (fire & (seg_left == 1))
        with m.If(fire):
            m.d.sync += seg_left.eq(seg_left - 1)
        with m.If(next_seg & segs.r_rdy):
            m.d.sync += [seg_left.eq(seg_out.beats), seg_act.eq(seg_out.act), seg_keep.eq(seg_out.keep)]
        m.d.comb += segs.r_en.eq(next_seg)

        if self.extensions:
            acts_end = seg_act & fire & (seg_left == 1)
            m.d.comb += ext_idle.eq(self._extension_unit(m, take, cols, push, gemv_rows, ext_beats, ext_addr, engine,
                                                         ext_reader, acts_end))
        else:
            m.d.comb += ext_idle.eq(1)

        # --- Y: sign-extended to 64 bits (plus the extension unit's rows) --------------------
        if self.extensions:
            ext = m.submodules.ext_unit
            m.d.comb += [writer.y.valid.eq(ext.y_out.valid), writer.y.payload.eq(ext.y_out.payload),
                         ext.y_out.ready.eq(writer.y.ready)]
        else:
            m.d.comb += [writer.y.valid.eq(engine.y.valid), writer.y.payload.eq(engine.y.payload.data),
                         engine.y.ready.eq(writer.y.ready)]
        return m

    def _extension_unit(self, m, take, cols, push, gemv_rows, ext_beats, ext_addr, engine, ext_reader, acts_end):
        """ExtUnit fed by the io read master: a GEMV with a stream (ext_beats 64-bit beats at ext_addr)
        pushes its read job; returns 'every stream read'."""
        cfg, sh = self.cfg, self.shape
        ext = m.submodules.ext_unit = ExtUnit(IO_BITS, sh.act_bits, sh.acts_per_beat, cfg.max_cols, self.ext_max_rows,
                                              self.max_descriptors)
        jobs = m.submodules.ext_jobs = fifo.SyncFIFO(width=len(ext_reader.job.payload.as_value()),
                                                     depth=self.max_descriptors)
        segs = m.submodules.ext_segments = fifo.SyncFIFO(width=self.count_bits, depth=self.max_descriptors)
        job_in = Signal(job_layout(self.count_bits))
        has_stream = push & ext_beats.any()
        m.d.comb += [job_in.addr.eq(ext_addr), job_in.beats.eq(ext_beats),
                     jobs.w_en.eq(has_stream), jobs.w_data.eq(job_in),
                     segs.w_en.eq(has_stream), segs.w_data.eq(ext_beats),
                     ext_reader.job.valid.eq(jobs.r_rdy), ext_reader.job.payload.eq(jobs.r_data),
                     jobs.r_en.eq(ext_reader.job.ready)]
        # the activation copy is complete before a stream's first beat (the streams may come first)
        acts_in = Signal()
        with m.If(take):
            m.d.sync += acts_in.eq(0)
        with m.Elif(acts_end):
            m.d.sync += acts_in.eq(1)
        left, first = Signal(self.count_bits), Signal()
        have = left.any()
        fire = ext_reader.data.valid & ext_reader.data.ready
        m.d.comb += [ext.start.eq(take), ext.cols.eq(cols), ext.acts_ready.eq(acts_in),
                     ext.act_valid.eq(engine.act.valid & engine.act.ready), ext.act_data.eq(engine.act.payload.data),
                     ext.beat.valid.eq(ext_reader.data.valid & have), ext.beat.payload.eq(ext_reader.data.payload),
                     ext.first.eq(first), ext_reader.data.ready.eq(have & ext.beat.ready),
                     ext.gemv.valid.eq(push), ext.gemv.payload.rows.eq(gemv_rows),
                     ext.gemv.payload.ext.eq(ext_beats.any())]
        next_seg = ~have | (fire & (left == 1))
        with m.If(fire):
            m.d.sync += [left.eq(left - 1), first.eq(0)]
        with m.If(next_seg & segs.r_rdy):
            m.d.sync += [left.eq(segs.r_data), first.eq(1)]
        m.d.comb += segs.r_en.eq(next_seg)
        m.d.comb += [ext.y_in.valid.eq(engine.y.valid), ext.y_in.payload.eq(engine.y.payload.data),
                     engine.y.ready.eq(ext.y_in.ready)]
        return ~ext_reader.busy & ~have & ~segs.r_rdy

    def _row_beats(self, cols, cols_bits: int):
        """R from cols (format §10 item 3), following `EngineShape.row_beats_ops`."""
        value, bits = cols, cols_bits
        for op, k in self.shape.row_beats_ops:
            value = ceil_div_const(value, k, bits) if op == "ceil_div" else value * k
            bits += k.bit_length() if op == "mul" else 0
        return value
