"""`ControlRegisters`: the kernel's AXI4-Lite slave, the `ap_ctrl_hs` register file of format §11.2.

Write: AW and W are taken independently (each ready while none of its kind is held); once
both are held and no B is pending, the register is written and B (OKAY) is raised. Read: one
address at a time, R raised the cycle after the AR handshake. All ready/valid outputs are
registers or depend on registers only.

Semantics: writing 1 to CTRL bit 0 sets ap_start; the kernel takes it (``take``), which clears
ap_start and sets ap_ready (the arguments are latched: the host may write the next ones);
``done`` sets ap_done; a read of CTRL clears ap_done and ap_ready (an event in the same cycle
wins). ISR bits are set by their event when the IER bit is set and toggled by writes of 1.
``interrupt`` = GIE and (ISR != 0). Argument registers keep the bits the kernel uses
(addresses 64, ROWS 24, COLS and N_DESCRIPTORS as many as their ranges need); the rest
read as 0, as do unused offsets.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from seedlm_fpga.core.engine_shape import (AP_DONE, AP_IDLE, AP_READY, AP_START, KERNEL_ADDRESS_BITS,
                                           KERNEL_REGISTERS)

def argument_bits(max_cols: int, max_descriptors: int) -> dict[str, int]:
    """Argument registers: name -> bits kept (64-bit ones span two words)."""
    return {"WEIGHTS": 64, "ACTS": 64, "Y": 64, "DESCRIPTORS": 64, "ROWS": 24,
            "COLS": max_cols.bit_length(), "N_DESCRIPTORS": max_descriptors.bit_length()}


def lite_ports() -> dict:
    """`s_axi_control` members (format §11.1), as seen from the slave."""
    a = KERNEL_ADDRESS_BITS
    return {
        "awaddr": In(a), "awvalid": In(1), "awready": Out(1),
        "wdata": In(32), "wstrb": In(4), "wvalid": In(1), "wready": Out(1),
        "bresp": Out(2), "bvalid": Out(1), "bready": In(1),
        "araddr": In(a), "arvalid": In(1), "arready": Out(1),
        "rdata": Out(32), "rresp": Out(2), "rvalid": Out(1), "rready": In(1),
    }


def _at(offset, value: int):
    """offset == value (for 0 as ~any: yosys writes `x == 0` as `!x`, which Verilator flags)."""
    return ~offset.any() if value == 0 else offset == value


def _read_mux(values: dict, index, lo: int = 0):
    """values[index] (word index -> value; absent words read 0) as a binary tree of 2:1 muxes on
    the index bits, which ECP5 packs into LUT4s and its wide-mux cells: there the registers take
    532 LUT4s instead of 843 with a case statement's one-hot AND-OR (xcup: the same either way;
    issue #13, the kernel's area)."""
    if not any(lo <= k < lo + (1 << len(index)) for k in values):
        return Const(0, 32)
    if len(index) == 0:
        return values[lo]
    half = 1 << (len(index) - 1)
    top = index[-1]
    return Mux(top, _read_mux(values, index[:-1], lo + half), _read_mux(values, index[:-1], lo))


class ControlRegisters(wiring.Component):
    def __init__(self, max_cols: int, max_descriptors: int):
        self.arg_bits = argument_bits(max_cols, max_descriptors)
        super().__init__({
            **lite_ports(),
            "ap_start": Out(1), "take": In(1), "done": In(1), "busy": In(1), "cycles": In(32),
            "interrupt": Out(1),
            **{name.lower(): Out(bits) for name, bits in self.arg_bits.items()},
        })

    def _words(self) -> dict[int, tuple[Signal, int]]:
        """Byte offset -> (argument register, bit offset of this 32-bit word in it)."""
        words = {}
        for name, bits in self.arg_bits.items():
            for k in range(0, bits, 32):
                words[KERNEL_REGISTERS[name] + k // 8] = (getattr(self, name.lower()), k)
        return words

    def elaborate(self, platform):
        m = Module()
        regs = KERNEL_REGISTERS
        ap_done, ap_ready, gie = Signal(), Signal(), Signal()
        ier, isr = Signal(2), Signal(2)
        words = self._words()

        # --- write channel ---------------------------------------------------------------
        aw_held, w_held = Signal(), Signal()
        aw_addr = Signal(KERNEL_ADDRESS_BITS)
        w_data, w_strb = Signal(32), Signal(4)
        m.d.comb += [self.awready.eq(~aw_held), self.wready.eq(~w_held), self.bresp.eq(0)]
        with m.If(self.awvalid & self.awready):
            m.d.sync += [aw_held.eq(1), aw_addr.eq(self.awaddr)]
        with m.If(self.wvalid & self.wready):
            m.d.sync += [w_held.eq(1), w_data.eq(self.wdata), w_strb.eq(self.wstrb)]
        with m.If(self.bvalid & self.bready):
            m.d.sync += self.bvalid.eq(0)
        write = Signal()
        m.d.comb += write.eq(aw_held & w_held & ~self.bvalid)
        isr_toggle = Signal(2)
        with m.If(write):
            m.d.sync += [aw_held.eq(0), w_held.eq(0), self.bvalid.eq(1)]
            offset = Cat(0, 0, aw_addr[2:])
            with m.If(_at(offset, regs["CTRL"]) & w_strb[0] & w_data[AP_START.bit_length() - 1]):
                m.d.sync += self.ap_start.eq(1)
            with m.If(_at(offset, regs["GIE"]) & w_strb[0]):
                m.d.sync += gie.eq(w_data[0])
            with m.If(_at(offset, regs["IER"]) & w_strb[0]):
                m.d.sync += ier.eq(w_data[:2])
            with m.If(_at(offset, regs["ISR"]) & w_strb[0]):
                m.d.comb += isr_toggle.eq(w_data[:2])
            for off, (reg, bit) in words.items():
                for byte in range(4):
                    lo = bit + 8 * byte
                    if lo < len(reg):
                        hi = min(lo + 8, len(reg))
                        with m.If(_at(offset, off) & w_strb[byte]):
                            m.d.sync += reg[lo:hi].eq(w_data[8 * byte:8 * byte + hi - lo])

        # --- read channel ----------------------------------------------------------------
        read_ctrl = Signal()
        m.d.comb += [self.arready.eq(~self.rvalid), self.rresp.eq(0)]
        with m.If(self.rvalid & self.rready):
            m.d.sync += self.rvalid.eq(0)
        m.d.comb += read_ctrl.eq(self.arvalid & self.arready & _at(Cat(0, 0, self.araddr[2:]), regs["CTRL"]))
        with m.If(self.arvalid & self.arready):
            bits = {AP_START: self.ap_start, AP_DONE: ap_done, AP_IDLE: ~self.busy, AP_READY: ap_ready}
            readable = {regs["CTRL"]: Cat(*(bits[1 << i] for i in range(len(bits)))), regs["GIE"]: gie,
                        regs["IER"]: ier, regs["ISR"]: isr, regs["CYCLES"]: self.cycles,
                        **{o: reg[bit:bit + 32] for o, (reg, bit) in words.items()}}
            m.d.sync += [self.rvalid.eq(1),
                         self.rdata.eq(_read_mux({off // 4: v for off, v in readable.items()}, self.araddr[2:]))]

        # --- events (after the host's accesses: an event in the same cycle wins) ----------
        with m.If(read_ctrl):
            m.d.sync += [ap_done.eq(0), ap_ready.eq(0)]
        with m.If(self.take):
            m.d.sync += [self.ap_start.eq(0), ap_ready.eq(1)]
        with m.If(self.done):
            m.d.sync += ap_done.eq(1)
        m.d.sync += isr.eq((isr ^ isr_toggle) | (Cat(self.done, self.take) & ier))
        m.d.comb += self.interrupt.eq(gie & isr.any())
        return m
