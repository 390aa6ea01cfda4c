"""List the shipped FPGA boards: part, weight memory bandwidth and capacity, resources.

With --board NAME_OR_PATH, check one board file (a shipped name or your own YAML) and
show it; a bad file is rejected with one line naming the file, the field and the problem.
Figures marked '*' are not yet checked against their source document (see the YAML).
"""
from __future__ import annotations

import argparse
import json

from seedlm_fpga.boards.board import Board, list_boards, load_board


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--board", metavar="NAME_OR_PATH",
                        help="show (and validate) only this board: a shipped name or a .yaml path")


def _row(board: Board) -> list[str]:
    mem = board.primary_memory
    res = board.resources
    unverified = any(not s.verified for s in board.sources)
    bram = (f"{res.bram36} BRAM36" + (f" + {res.uram} URAM" if res.uram else "")
            if res.bram36 is not None else f"{res.ebr_kbits} Kb EBR"
            + (f" + {res.spram_kbits} Kb SPRAM" if res.spram_kbits else ""))
    return [
        board.id + ("*" if unverified else ""),
        board.part,
        "-" if mem is None else f"{mem.kind} {mem.channels}x{mem.peak_gbps_per_channel:g}",
        "-" if mem is None else f"{mem.peak_gbps:.4g}",
        "-" if mem is None else f"{mem.capacity_gb:g}",
        f"{res.lut:,}" + (" LUT4" if res.lut_inputs == 4 else ""),
        f"{res.ff:,}", f"{res.dsp:,}", bram, f"{board.clock_mhz:g}",
    ]


def _table(boards: list[Board]) -> str:
    head = ["board", "part", "weight memory", "GB/s", "GB", "LUT", "FF", "DSP", "block RAM", "MHz"]
    rows = [head] + [_row(b) for b in boards]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    right = {3, 4, 5, 6, 7, 9}
    lines = ["  ".join(c.rjust(w) if i in right else c.ljust(w)
                       for i, (c, w) in enumerate(zip(r, widths))).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    boards = [load_board(args.board)] if args.board else list_boards()
    if args.json:
        print(json.dumps([b.summary() for b in boards], indent=2))
        return 0
    print(_table(boards))
    if any(not s.verified for b in boards for s in b.sources):
        print("\n* some figures not yet checked against their source document (sources: in the YAML)")
    return 0
