"""The memory-mapped kernel's host contract (format §11.2, §11.3): registers, descriptors, alignment.

The one home of the register offsets, control bits, descriptor layout and alignment rules that a
host (the cocotb testbench, a pyxrt driver) and the kernel share. numpy/stdlib only.
"""
from __future__ import annotations

import struct

#: Kernel top names (format §11): engine kind -> Verilog module.
KERNEL_TOPS = {"seedlm": "seedlm_kernel", "baseline": "baseline_kernel"}

#: format §11.2: `s_axi_control` byte offsets (32-bit registers; 64-bit ones as low, high words).
CTRL, GIE, IER, ISR = 0x00, 0x04, 0x08, 0x0C
WEIGHTS, ACTS, Y = 0x10, 0x18, 0x20
ROWS, COLS = 0x28, 0x2C
DESCRIPTORS, N_DESCRIPTORS = 0x30, 0x38
CYCLES = 0x40
#: Every register by name (reports, the register tests).
REGISTERS = {"CTRL": CTRL, "GIE": GIE, "IER": IER, "ISR": ISR, "WEIGHTS": WEIGHTS, "ACTS": ACTS, "Y": Y,
             "ROWS": ROWS, "COLS": COLS, "DESCRIPTORS": DESCRIPTORS, "N_DESCRIPTORS": N_DESCRIPTORS,
             "CYCLES": CYCLES}
CONTROL_ADDR_BITS = 7

#: CTRL bits; IER/ISR bits.
AP_START, AP_DONE, AP_IDLE, AP_READY = 1 << 0, 1 << 1, 1 << 2, 1 << 3
IRQ_DONE, IRQ_READY = 1 << 0, 1 << 1

#: format §11.3: Y is rows 64-bit little-endian two's complement; a descriptor is 32 bytes.
Y_WORD_BYTES = 8
DESCRIPTOR_BYTES = 32
DESCRIPTOR_ALIGN = 8
MAX_ROWS = (1 << 24) - 1
#: AXI4 INCR bursts never cross a 4 KB boundary (format §11.1).
BURST_BOUNDARY = 4096
MAX_BURST_BEATS = 256


def pack_descriptor(weights_addr: int, y_addr: int, rows: int) -> bytes:
    """One format §11.3 descriptor: u64 weights, u64 Y, u32 rows, u32 0, u64 0."""
    return struct.pack("<QQIIQ", weights_addr, y_addr, rows, 0, 0)


def image_align(bus_bits: int) -> int:
    """Activation and weight images start on a W/8-byte boundary (format §11.3)."""
    return bus_bits // 8


def alignment_problems(bus_bits: int, acts: int, gemvs: list[tuple[int, int, int]],
                       descriptors: int | None = None) -> list[str]:
    """What breaks format §11.3 in a start: `gemvs` are (weights address, Y address, rows).

    `descriptors`: the list's address (None: a single GEMV from the registers).
    """
    problems = []
    align = image_align(bus_bits)

    def check(what: str, addr: int, unit: int) -> None:
        if not 0 <= addr < 1 << 64:
            problems.append(f"{what} address {addr:#x} is not a 64-bit address")
        elif addr % unit:
            problems.append(f"{what} address {addr:#x} is not aligned to {unit} bytes")

    check("activation image", acts, align)
    for i, (w, y, rows) in enumerate(gemvs):
        check(f"GEMV {i} weight image", w, align)
        check(f"GEMV {i} Y", y, Y_WORD_BYTES)
        if not 1 <= rows <= MAX_ROWS:
            problems.append(f"GEMV {i}: rows {rows} outside 1..{MAX_ROWS}")
    if descriptors is not None:
        check("descriptor list", descriptors, DESCRIPTOR_ALIGN)
    return problems
