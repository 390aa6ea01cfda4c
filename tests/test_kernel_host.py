"""The kernel host driver (sim/kernel_host.py) without a simulator: layout, refusals, register
programming, Y read-back, through a recording KernelPort; and the runner's judging of a start."""
from __future__ import annotations

import asyncio
import struct

import pytest

from seedlm_fpga.core.engine_shape import AP_DONE, AP_IDLE, AP_START, KERNEL_REGISTERS
from seedlm_fpga.sim.kernel_host import (Buffer, KernelGemv, KernelHost, KernelHostError, KernelJob, KernelLayout,
                                         KernelPort, check_job, plan_layout)
from seedlm_fpga.sim.kernel_runner import KernelResult, _judge, kernel_case
from seedlm_fpga.sim.stimulus import random_case

W = 128  # images aligned to 16 bytes


def job(n_gemvs=2, descriptors=True, rows=(3, 5)):
    gemvs = tuple(KernelGemv(bytes([i + 1]) * (16 * r), r) for i, r in zip(range(n_gemvs), rows))
    return KernelJob(40, b"\x07" * 48, gemvs, descriptors)


def test_layout_aligns_every_buffer_and_skews_images():
    j = job()
    layout = plan_layout(j, W, base=1 << 32, skew=16)
    b = layout.buffers
    assert list(b) == ["acts", "descriptors", "weights.0", "y.0", "weights.1", "y.1"]
    assert b["acts"].addr == (1 << 32) + 16
    for name in ("acts", "weights.0", "weights.1"):
        assert b[name].addr % 16 == 0
    for name in ("descriptors", "y.0", "y.1"):
        assert b[name].addr % 8 == 0
    assert (b["descriptors"].size, b["y.0"].size, b["y.1"].size) == (64, 24, 40)
    spans = sorted((x.addr, x.addr + x.size) for x in b.values())
    assert all(end <= start for (_, end), (start, _) in zip(spans, spans[1:]))  # no overlap
    check_job(j, layout, W, max_cols=64, max_descriptors=2)  # accepted


@pytest.mark.parametrize("change, message", [
    (lambda b: {**b, "acts": Buffer("acts", b["acts"].addr + 8, 48)}, "activation image address 0x"),
    (lambda b: {**b, "weights.1": Buffer("weights.1", b["weights.1"].addr + 4, 80)}, "GEMV 1 weight image address"),
    (lambda b: {**b, "y.0": Buffer("y.0", b["y.0"].addr + 4, 24)}, "not aligned to 8 bytes"),
    (lambda b: {**b, "descriptors": Buffer("descriptors", b["descriptors"].addr + 2, 64)}, "descriptor list address"),
    (lambda b: {**b, "y.1": Buffer("y.1", b["weights.1"].addr, 40)}, "buffers y.1 and weights.1 overlap"),
    (lambda b: {**b, "acts": Buffer("acts", b["acts"].addr, 1000)}, "buffers acts and descriptors overlap; "
                                                                    "buffers acts and weights.0 overlap"),
])
def test_host_refuses_bad_layouts(change, message):
    j = job()
    layout = KernelLayout(change(plan_layout(j, W).buffers))
    with pytest.raises(KernelHostError, match=message):
        check_job(j, layout, W, max_cols=64, max_descriptors=2)


@pytest.mark.parametrize("j, message", [
    (job(), "2 descriptors, the kernel takes at most 1"),
    (job(descriptors=False), "2 GEMVs need a descriptor list"),
    (KernelJob(65, b"\0" * 16, (KernelGemv(b"\0" * 16, 1),), False), "cols 65 outside 1..64"),
    (job(1, rows=(0,)), "GEMV 0: rows 0 outside"),
])
def test_host_refuses_bad_jobs(j, message):
    with pytest.raises(KernelHostError, match=message):
        check_job(j, plan_layout(j, W), W, max_cols=64, max_descriptors=1)


class FakeKernel(KernelPort):
    """Records register writes; 'runs' at ap_start by writing Y = -(r + 1) * (GEMV + 1)."""

    def __init__(self):
        self.mem = {}
        self.regs = {}
        self.writes = []
        self.polls = 0

    async def write_reg(self, offset, value):
        self.writes.append((offset, value))
        self.regs[offset] = value
        if offset == KERNEL_REGISTERS["CTRL"] and value & AP_START:
            self._run()

    async def read_reg(self, offset):
        if offset == KERNEL_REGISTERS["CTRL"]:
            self.polls += 1
            return AP_DONE | AP_IDLE if self.polls >= 3 else 0
        return {KERNEL_REGISTERS["CYCLES"]: 1234}.get(offset, 0)

    def write_mem(self, addr, data):
        for i, byte in enumerate(data):
            self.mem[addr + i] = byte

    def read_mem(self, addr, n):
        return bytes(self.mem.get(addr + i, 0) for i in range(n))

    def reg64(self, name):
        off = KERNEL_REGISTERS[name]
        return self.regs[off] | self.regs[off + 4] << 32

    def _run(self):
        n = self.regs[KERNEL_REGISTERS["N_DESCRIPTORS"]]
        if not n:
            return  # the register GEMV: not modelled
        base = self.reg64("DESCRIPTORS")
        for d in range(n):
            _, y, rows, _, _ = struct.unpack("<QQIIQ", self.read_mem(base + 32 * d, 32))
            self.write_mem(y, struct.pack(f"<{rows}q", *[-(r + 1) * (d + 1) for r in range(rows)]))


def test_host_programs_registers_and_reads_signed_y():
    port, j = FakeKernel(), job()
    layout = plan_layout(j, W, base=3 << 32)
    run = asyncio.run(KernelHost(port, W, 64, 16).run(j, layout, interrupt=False))
    assert run.y == [[-1, -2, -3], [-2, -4, -6, -8, -10]]
    assert run.cycles == 1234 and run.ctrl_after_done == AP_DONE | AP_IDLE and port.polls == 3
    assert port.reg64("ACTS") == layout.addr("acts") and port.reg64("DESCRIPTORS") == layout.addr("descriptors")
    assert port.regs[KERNEL_REGISTERS["COLS"]] == 40 and port.regs[KERNEL_REGISTERS["N_DESCRIPTORS"]] == 2
    assert port.writes[-1] == (KERNEL_REGISTERS["CTRL"], AP_START)  # started last, after every argument
    assert port.read_mem(layout.addr("weights.1"), 80) == j.gemvs[1].weights


def test_unwritten_y_shows_as_poison():
    port, j = FakeKernel(), job(1, descriptors=False, rows=(2,))
    run = asyncio.run(KernelHost(port, W, 64, 16).run(j, plan_layout(j, W), interrupt=False))
    assert run.y == [[-0x5A5A5A5A5A5A5A5B] * 2]  # 0xA5.. as int64: the fake does not run register GEMVs


def _raw(**changes):
    raw = {"errors": [], "memory_errors": [], "timeout": False, "ctrl_after_done": AP_DONE | AP_IDLE,
           "ctrl_read_again": AP_IDLE, "irq_cleared": True}
    return {**raw, **changes}


@pytest.mark.parametrize("raw, tb_cycles, errors", [
    (_raw(), 101, []),
    (_raw(), 103, ["CYCLES register 100, the bench counted 103 edges from the start write to the interrupt "
                   "(expected CYCLES + 1)"]),
    (_raw(ctrl_after_done=AP_IDLE), 101, ["CTRL after the interrupt is 0x4: ap_done and ap_idle must be set"]),
    (_raw(ctrl_read_again=AP_DONE), 101, ["CTRL read again is 0x2: ap_done must clear on read"]),
    (_raw(irq_cleared=False), 101, ["interrupt still high after writing ISR done"]),
    (_raw(memory_errors=["m_axi_io: write of 8 bytes at 0x0 outside every buffer the host laid out"]), 101,
     ["m_axi_io: write of 8 bytes at 0x0 outside every buffer the host laid out"]),
])
def test_judge_checks_cycles_and_control(raw, tb_cycles, errors):
    g = random_case("seedlm-4", 2, 16, 8, seed=0)
    case = kernel_case([g], descriptors=False)
    res = KernelResult("t", "seedlm-4", 16, [2], 0, 0.0, 0.0, [g.expected()], [g.expected()], 100, tb_cycles)
    _judge(case, raw, res)
    assert res.errors == errors and res.ok == (not errors)
