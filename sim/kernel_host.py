"""The host side of the memory-mapped kernel (format §11): lay out memory, program, start, read Y.

The driver talks to the kernel through `KernelPort`, a small "registers + memory" interface,
so the same host logic drives the Verilated kernel (sim/kernel_tb.py's cocotb port) and,
later, an Alveo card through pyxrt (a port whose registers are `xrt.kernel` register
reads/writes and whose memory is `xrt.bo` buffers). Nothing here imports cocotb.

    job = KernelJob(cols, act_image, (KernelGemv(weights_image, rows),), descriptors=False)
    layout = plan_layout(job, bus_bits, base=1 << 32)
    run = await KernelHost(port, bus_bits, max_cols, max_descriptors).run(job, layout)
    run.y[0]  # Y of GEMV 0, rows signed integers; run.cycles: the CYCLES register

The port's memory holds the buffers at the layout's addresses (a pyxrt port maps them to
buffer objects' device addresses). Buffer names (`layout.buffers`): "acts", "descriptors",
"weights.<i>" (`weights_buffer(i)`), "y.<i>" (`y_buffer(i)`).
"""
from __future__ import annotations

import abc
import struct
from dataclasses import dataclass

from seedlm_fpga.core.reference import activation_beats
from seedlm_fpga.core.engine_shape import AP_DONE, AP_START, DESCRIPTOR_WORDS, IO_BITS, KERNEL_REGISTERS, MAX_ROWS

REG = KERNEL_REGISTERS
#: IER/ISR bit 0: the done interrupt (format §11.2).
IRQ_DONE = 1
#: format §11.3: Y words and descriptors are 8-byte aligned; a descriptor is DESCRIPTOR_WORDS words.
WORD_BYTES = IO_BITS // 8
DESCRIPTOR_BYTES = DESCRIPTOR_WORDS * WORD_BYTES
#: Bytes a Y buffer is filled with before a start, so a row the kernel never wrote shows.
Y_POISON = 0xA5


def pack_descriptor(weights_addr: int, y_addr: int, rows: int, ext_io_beats: int = 0, ext_addr: int = 0) -> bytes:
    """One format §11.3 descriptor: u64 weights, u64 Y, u32 rows, u32 extension-stream length in
    64-bit words (0: none), u64 extension-stream address (format §5.6)."""
    return struct.pack("<QQIIQ", weights_addr, y_addr, rows, ext_io_beats, ext_addr)


def image_align(bus_bits: int) -> int:
    """Activation and weight images start on a W/8-byte boundary (format §11.3)."""
    return bus_bits // 8


def alignment_problems(bus_bits: int, acts: int, gemvs: list[tuple[int, int, int]],
                       descriptors: int | None = None) -> list[str]:
    """What breaks format §11.3 in a start: `gemvs` are (weights address, Y address, rows);
    `descriptors` the list's address (None: a single GEMV from the registers)."""
    problems = []

    def check(what: str, addr: int, unit: int) -> None:
        if not 0 <= addr < 1 << 64:
            problems.append(f"{what} address {addr:#x} is not a 64-bit address")
        elif addr % unit:
            problems.append(f"{what} address {addr:#x} is not aligned to {unit} bytes")

    check("activation image", acts, image_align(bus_bits))
    for i, (w, y, rows) in enumerate(gemvs):
        check(f"GEMV {i} weight image", w, image_align(bus_bits))
        check(f"GEMV {i} Y", y, WORD_BYTES)
        if not 1 <= rows <= MAX_ROWS:
            problems.append(f"GEMV {i}: rows {rows} outside 1..{MAX_ROWS}")
    if descriptors is not None:
        check("descriptor list", descriptors, WORD_BYTES)
    return problems


class KernelHostError(ValueError):
    """The host refuses a start: the message names every rule broken (format §11.3)."""


class KernelPort(abc.ABC):
    """Registers (32-bit, `s_axi_control` offsets) and byte memory of one kernel instance."""

    @abc.abstractmethod
    async def write_reg(self, offset: int, value: int) -> None: ...

    @abc.abstractmethod
    async def read_reg(self, offset: int) -> int: ...

    @abc.abstractmethod
    def write_mem(self, addr: int, data: bytes) -> None: ...

    @abc.abstractmethod
    def read_mem(self, addr: int, n: int) -> bytes: ...

    async def wait_interrupt(self) -> None:
        """Return once the kernel's interrupt is high (ports without one poll instead)."""
        raise NotImplementedError


@dataclass(frozen=True)
class KernelGemv:
    """One GEMV of a start: its weight image (format §5.3/§5.4/§7), its rows and its extension
    stream (format §5.6; empty: none)."""

    weights: bytes
    rows: int
    ext: bytes = b""


@dataclass(frozen=True)
class KernelJob:
    """One start: GEMVs sharing one activation image of `cols` activations.

    `descriptors` False runs the single GEMV from the WEIGHTS/Y/ROWS registers
    (N_DESCRIPTORS = 0); True lays out a descriptor list (any number of GEMVs).
    """

    cols: int
    acts: bytes
    gemvs: tuple[KernelGemv, ...]
    descriptors: bool = True


@dataclass(frozen=True)
class Buffer:
    name: str
    addr: int
    size: int


@dataclass(frozen=True)
class KernelLayout:
    buffers: dict[str, Buffer]

    def addr(self, name: str) -> int:
        return self.buffers[name].addr

    @property
    def end(self) -> int:
        return max(b.addr + b.size for b in self.buffers.values())

    def readable(self) -> list[Buffer]:
        """What the kernel may read: the images and the descriptor list."""
        return [b for n, b in self.buffers.items() if not n.startswith("y.")]

    def writable(self) -> list[Buffer]:
        return [b for n, b in self.buffers.items() if n.startswith("y.")]


def weights_buffer(i: int) -> str:
    return f"weights.{i}"


def y_buffer(i: int) -> str:
    return f"y.{i}"


def ext_buffer(i: int) -> str:
    return f"ext.{i}"


def plan_layout(job: KernelJob, bus_bits: int, base: int = 0, skew: int = 0) -> KernelLayout:
    """Buffers back to back from `base`, each aligned by format §11.3's rule.

    `skew` bytes (a multiple of W/8) go before each image as well, so that images do not
    start on 4 KB boundaries and the kernel's bursts must split there.
    """
    align = image_align(bus_bits)
    if skew % align:
        raise KernelHostError(f"skew {skew} is not a multiple of the image alignment {align}")
    buffers: dict[str, Buffer] = {}
    at = base

    def put(name: str, size: int, unit: int, extra: int = 0) -> None:
        nonlocal at
        at = -(-at // unit) * unit + extra
        buffers[name] = Buffer(name, at, size)
        at += size

    put("acts", len(job.acts), align, skew)
    if job.descriptors:
        put("descriptors", DESCRIPTOR_BYTES * len(job.gemvs), WORD_BYTES)
    for i, g in enumerate(job.gemvs):
        if g.ext:
            put(ext_buffer(i), len(g.ext), WORD_BYTES, skew - skew % WORD_BYTES)  # read on m_axi_io
        put(weights_buffer(i), len(g.weights), align, skew)
        put(y_buffer(i), WORD_BYTES * g.rows, WORD_BYTES)
    return KernelLayout(buffers)


def check_job(job: KernelJob, layout: KernelLayout, bus_bits: int, max_cols: int,
              max_descriptors: int) -> None:
    """Refuse a start that breaks format §11.2/§11.3 (raises KernelHostError naming every problem)."""
    problems = []
    if not 1 <= job.cols <= max_cols:
        problems.append(f"cols {job.cols} outside 1..{max_cols}")
    if not job.gemvs:
        problems.append("no GEMV to run")
    if not job.descriptors and len(job.gemvs) != 1:
        problems.append(f"{len(job.gemvs)} GEMVs need a descriptor list")
    if not job.descriptors and job.gemvs and job.gemvs[0].ext:
        problems.append("a GEMV with an extension stream needs a descriptor list")
    for i, g in enumerate(job.gemvs):
        if g.ext and len(g.ext) % WORD_BYTES:
            problems.append(f"GEMV {i}: extension stream of {len(g.ext)} bytes is not whole 64-bit words")
        elif g.ext and ext_buffer(i) in layout.buffers and layout.addr(ext_buffer(i)) % WORD_BYTES:
            problems.append(f"GEMV {i} extension stream is not aligned to {WORD_BYTES} bytes")
    if job.descriptors and len(job.gemvs) > max_descriptors:
        problems.append(f"{len(job.gemvs)} descriptors, the kernel takes at most {max_descriptors}")
    gemvs = [(layout.addr(weights_buffer(i)), layout.addr(y_buffer(i)), g.rows) for i, g in enumerate(job.gemvs)]
    problems += alignment_problems(bus_bits, layout.addr("acts"), gemvs,
                                      layout.addr("descriptors") if job.descriptors else None)
    furthest = None  # (end, name) of the buffer reaching furthest so far, in address order
    for start, end, name in sorted((b.addr, b.addr + b.size, b.name) for b in layout.buffers.values()):
        if furthest and start < furthest[0]:
            problems.append(f"buffers {furthest[1]} and {name} overlap")
        if not furthest or end > furthest[0]:
            furthest = (end, name)
    if problems:
        raise KernelHostError("; ".join(problems))


@dataclass
class KernelRun:
    """What one start gave: Y per GEMV (signed), the CYCLES register, CTRL read after done."""

    y: list[list[int]]
    cycles: int
    ctrl_after_done: int


class KernelHost:
    """Drives one kernel through a `KernelPort` (see the module text)."""

    def __init__(self, port: KernelPort, bus_bits: int, max_cols: int, max_descriptors: int):
        self.port = port
        self.bus_bits = bus_bits
        self.max_cols = max_cols
        self.max_descriptors = max_descriptors

    def load(self, job: KernelJob, layout: KernelLayout) -> None:
        """Write the images and descriptors; poison the Y buffers."""
        check_job(job, layout, self.bus_bits, self.max_cols, self.max_descriptors)
        self.port.write_mem(layout.addr("acts"), job.acts)
        descriptors = b""
        for i, g in enumerate(job.gemvs):
            self.port.write_mem(layout.addr(weights_buffer(i)), g.weights)
            self.port.write_mem(layout.addr(y_buffer(i)), bytes([Y_POISON]) * (WORD_BYTES * g.rows))
            ext = (len(g.ext) // 8, layout.addr(ext_buffer(i))) if g.ext else (0, 0)
            if g.ext:
                self.port.write_mem(layout.addr(ext_buffer(i)), g.ext)
            descriptors += pack_descriptor(layout.addr(weights_buffer(i)), layout.addr(y_buffer(i)), g.rows, *ext)
        if job.descriptors:
            self.port.write_mem(layout.addr("descriptors"), descriptors)

    async def write_reg64(self, offset: int, value: int) -> None:
        await self.port.write_reg(offset, value & 0xFFFFFFFF)
        await self.port.write_reg(offset + 4, value >> 32)

    async def program(self, job: KernelJob, layout: KernelLayout, interrupt: bool) -> None:
        """Set the argument registers and the interrupt enables (format §11.2)."""
        await self.write_reg64(REG["ACTS"], layout.addr("acts"))
        await self.port.write_reg(REG["COLS"], job.cols)
        if job.descriptors:
            await self.write_reg64(REG["DESCRIPTORS"], layout.addr("descriptors"))
            await self.port.write_reg(REG["N_DESCRIPTORS"], len(job.gemvs))
        else:
            await self.write_reg64(REG["WEIGHTS"], layout.addr(weights_buffer(0)))
            await self.write_reg64(REG["Y"], layout.addr(y_buffer(0)))
            await self.port.write_reg(REG["ROWS"], job.gemvs[0].rows)
            await self.port.write_reg(REG["N_DESCRIPTORS"], 0)
        await self.port.write_reg(REG["GIE"], int(interrupt))
        await self.port.write_reg(REG["IER"], IRQ_DONE if interrupt else 0)

    async def start(self) -> None:
        await self.port.write_reg(REG["CTRL"], AP_START)

    async def wait_done(self, interrupt: bool) -> int:
        """Wait for ap_done (interrupt, or polling CTRL); returns the CTRL value that showed it.

        With the interrupt, CTRL is read once after it (ap_done must be set) and the ISR's
        done bit is cleared (toggle on write).
        """
        if interrupt:
            await self.port.wait_interrupt()
            ctrl = await self.port.read_reg(REG["CTRL"])
            await self.port.write_reg(REG["ISR"], IRQ_DONE)
            return ctrl
        while True:
            ctrl = await self.port.read_reg(REG["CTRL"])
            if ctrl & AP_DONE:
                return ctrl

    def read_y(self, job: KernelJob, layout: KernelLayout) -> list[list[int]]:
        out = []
        for i, g in enumerate(job.gemvs):
            raw = self.port.read_mem(layout.addr(y_buffer(i)), WORD_BYTES * g.rows)
            out.append(list(struct.unpack(f"<{g.rows}q", raw)))
        return out

    async def run(self, job: KernelJob, layout: KernelLayout, interrupt: bool = True) -> KernelRun:
        """Load, program, start, wait for ap_done, read Y and CYCLES."""
        self.load(job, layout)
        await self.program(job, layout, interrupt)
        await self.start()
        ctrl = await self.wait_done(interrupt)
        return KernelRun(self.read_y(job, layout), await self.port.read_reg(REG["CYCLES"]), ctrl)


def activation_image(acts, act_bits: int, acts_per_beat: int, bus_bits: int) -> bytes:
    """format §11.3: ceil(cols / N) words of W bits, word k holding activation beat k (§10) in its low N·A bits."""
    return b"".join(b.to_bytes(bus_bits // 8, "little") for b in activation_beats(acts, act_bits, acts_per_beat))
