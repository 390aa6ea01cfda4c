"""FPGA boards as data: a YAML file per board, validated by pydantic.

A board file names the FPGA part and family, the memories the weights can stream
from, the fabric's resources, the target fabric clock and the documents the figures
come from. Shipped boards lie next to this module (``<id>.yaml``); a user's own file
is loaded by path. Every figure is a peak or a count from a document; figures not
checked against that document are marked ``verified: false`` in ``sources``.

The first memory in ``memories`` is the weight memory (``Board.primary_memory``):
the one the GEMV engines stream from, one engine instance per channel.
"""
from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from seedlm_fpga.core.files import read_input_text
from seedlm_fpga.errors import UserError

#: Longest board file read (shipped ones are about 3 KB).
MAX_BOARD_CHARS = 1 << 20

#: Folder of the shipped board files.
BOARDS_DIR = Path(__file__).resolve().parent

#: FPGA families the synthesis flow knows (boards.synth maps each to a yosys script).
Family = Literal["7series", "ultrascale", "ultrascale+", "versal", "ecp5", "ice40"]

#: Families whose block RAM is counted in 36 Kb blocks (Xilinx); the others count Kb of EBR.
XILINX_FAMILIES = ("7series", "ultrascale", "ultrascale+", "versal")


class _Strict(BaseModel):
    # Unknown keys are typos in a user's file: reject them instead of ignoring them.
    # inf/nan are never a figure; every number below also has an upper bound far above any real
    # board, so a typo (channels: 1000000000000, target_mhz: 1e-300) is refused, not looped over.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Memory(_Strict):
    """One memory system: ``channels`` independent channels of ``bits_per_channel`` each."""

    name: str = Field(min_length=1, description="short label, e.g. 'hbm' or 'ddr4'")
    kind: str = Field(min_length=1, description="technology, e.g. 'HBM2', 'DDR4', 'QSPI flash'")
    channels: int = Field(ge=1, le=1024)
    bits_per_channel: int = Field(ge=1, le=8192, description="data width of one channel's interface")
    peak_gbps_per_channel: float = Field(gt=0, le=10_000, description="peak GB/s (1e9 bytes/s) per channel")
    capacity_gb: float = Field(gt=0, le=1e6, description="total capacity over all channels, GB (1e9 bytes)")
    efficiency: float = Field(gt=0, le=1, description="sustained/peak for long sequential reads")
    efficiency_low: float | None = Field(default=None, gt=0, le=1,
                                         description="low end where sources differ (default: efficiency)")
    efficiency_high: float | None = Field(default=None, gt=0, le=1,
                                          description="high end where sources differ (default: efficiency)")
    efficiency_source: str = Field(default="estimate, no published measurement",
                                   description="where efficiency (and its band) comes from")
    note: str = ""

    @model_validator(mode="after")
    def _band_holds_efficiency(self) -> "Memory":
        lo, hi = self.efficiency_band
        if not lo <= self.efficiency <= hi:
            raise ValueError(f"efficiency {self.efficiency:g} must lie in [efficiency_low, efficiency_high] = "
                             f"[{lo:g}, {hi:g}]")
        return self

    @property
    def efficiency_band(self) -> tuple[float, float]:
        lo = self.efficiency if self.efficiency_low is None else self.efficiency_low
        hi = self.efficiency if self.efficiency_high is None else self.efficiency_high
        return lo, hi

    @property
    def peak_gbps(self) -> float:
        return self.channels * self.peak_gbps_per_channel

    @property
    def usable_gbps_per_channel(self) -> float:
        return self.peak_gbps_per_channel * self.efficiency

    @property
    def usable_gbps(self) -> float:
        return self.channels * self.usable_gbps_per_channel


class Resources(_Strict):
    """Fabric resources. Xilinx parts count 36 Kb block RAMs and URAMs; Lattice parts Kb of EBR."""

    lut: int = Field(ge=0, le=100_000_000)
    lut_inputs: Literal[4, 6] = 6
    ff: int = Field(ge=0, le=100_000_000)
    dsp: int = Field(ge=0, le=1_000_000, description="DSP slices / hard multipliers")
    bram36: int | None = Field(default=None, ge=0, le=1_000_000, description="36 Kb block RAMs (Xilinx)")
    uram: int | None = Field(default=None, ge=0, le=1_000_000, description="288 Kb UltraRAMs (Xilinx)")
    ebr_kbits: int | None = Field(default=None, ge=0, le=100_000_000, description="embedded block RAM, Kb (Lattice)")
    spram_kbits: int | None = Field(default=None, ge=0, le=100_000_000, description="single-port RAM, Kb (iCE40 UP)")

    @property
    def bram_kbits(self) -> int:
        """All block memory in Kb, comparable across vendors."""
        return (self.bram36 or 0) * 36 + (self.uram or 0) * 288 + (self.ebr_kbits or 0) + (self.spram_kbits or 0)


class Clock(_Strict):
    """The fabric clock the engine is sized for, and the range people run the part at."""

    target_mhz: float = Field(ge=1, le=5000, description="fabric clock, MHz")
    range_mhz: tuple[float, float] | None = None
    note: str = ""

    @model_validator(mode="after")
    def _range_holds_target(self) -> "Clock":
        if self.range_mhz is not None:
            lo, hi = self.range_mhz
            if not 0 < lo <= self.target_mhz <= hi:
                raise ValueError(f"range_mhz {list(self.range_mhz)} must hold target_mhz {self.target_mhz:g}")
        return self


class Link(_Strict):
    """The board-to-board link that hands activations on when a model's layers span boards."""

    kind: str = Field(min_length=1, description="e.g. 'QSFP28 100GbE'")
    gbps: float = Field(gt=0, le=10_000, description="GB/s (1e9 bytes/s) one way")
    source: str = Field(min_length=1)
    verified: bool = False


class Source(_Strict):
    """A document the board's figures come from, and which figures it supports."""

    document: str = Field(min_length=1)
    figures: list[str] = Field(min_length=1, description="field names, e.g. 'resources', 'memories.hbm'")
    verified: bool = Field(description="false: figure not yet checked against the document")
    note: str = ""


class Board(_Strict):
    """A board file's contents. ``id`` defaults to the file name without ``.yaml``."""

    id: str = Field(default="", pattern=r"^[a-z0-9][a-z0-9._-]*$|^$")
    name: str = Field(min_length=1)
    vendor: str = Field(min_length=1)
    part: str = Field(min_length=1)
    family: Family
    memories: list[Memory]
    resources: Resources
    clock: Clock
    link: Link | None = Field(default=None, description="board-to-board link for multi-board models")
    sources: list[Source] = Field(min_length=1)

    @model_validator(mode="after")
    def _vendor_resources(self) -> "Board":
        xilinx = self.family in XILINX_FAMILIES
        if xilinx and self.resources.bram36 is None:
            raise ValueError(f"family {self.family} counts block RAM as resources.bram36")
        if not xilinx and self.resources.ebr_kbits is None:
            raise ValueError(f"family {self.family} counts block RAM as resources.ebr_kbits")
        names = [m.name for m in self.memories]
        if len(set(names)) != len(names):
            raise ValueError(f"memory names repeat: {names}")
        return self

    @property
    def clock_mhz(self) -> float:
        return self.clock.target_mhz

    @property
    def primary_memory(self) -> Memory | None:
        """The weight memory (the first listed), or None for a board without external memory."""
        return self.memories[0] if self.memories else None

    def summary(self) -> dict:
        """One JSON-able row for `seedlm-fpga boards --json`."""
        mem = self.primary_memory
        return {
            "id": self.id, "name": self.name, "vendor": self.vendor, "part": self.part,
            "family": self.family, "clock_mhz": self.clock_mhz,
            "memory": None if mem is None else {
                "kind": mem.kind, "channels": mem.channels, "peak_gbps": round(mem.peak_gbps, 3),
                "usable_gbps": round(mem.usable_gbps, 3), "capacity_gb": mem.capacity_gb},
            "other_memories": [m.name for m in self.memories[1:]],
            "resources": self.resources.model_dump(exclude_none=True),
            "unverified": [f for s in self.sources if not s.verified for f in s.figures],
        }


def _format_loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _first_error(exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    more = len(exc.errors()) - 1
    return f"{_format_loc(err['loc'])}: {msg}" + (f" (and {more} more problem{'s' * (more > 1)})" if more else "")


def parse_board(text: str, origin: str, default_id: str = "") -> Board:
    """Validate a board file's text; ``origin`` names the file in error messages."""
    if len(text) > MAX_BOARD_CHARS:
        raise UserError(f"{origin}: board file of {len(text):,} characters is larger than the "
                        f"{MAX_BOARD_CHARS:,} allowed")
    try:
        data = yaml.safe_load(text)  # safe_load: plain data only, no object construction
    except RecursionError:
        raise UserError(f"{origin}: YAML nested too deeply") from None
    except ValueError as exc:  # e.g. an integer longer than Python converts
        raise UserError(f"{origin}: not valid YAML: {str(exc).splitlines()[0]}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "cannot parse"
        raise UserError(f"{origin}: not valid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise UserError(f"{origin}: expected a mapping of board fields, got {type(data).__name__}")
    try:
        board = Board.model_validate(data)
    except ValidationError as exc:
        raise UserError(f"{origin}: {_first_error(exc)}") from None
    if not board.id:
        board = board.model_copy(update={"id": default_id})
    return board


def _load_path(path: Path) -> Board:
    text = read_input_text(path, "board file", MAX_BOARD_CHARS * 4)
    return parse_board(text, str(path), default_id=path.stem.lower())


@cache
def _shipped(board_id: str) -> Board:
    return _load_path(BOARDS_DIR / f"{board_id}.yaml")


def shipped_ids() -> list[str]:
    return sorted(p.stem for p in BOARDS_DIR.glob("*.yaml"))


def _normalize(name: str) -> str:
    return "-".join(name.lower().replace("_", " ").split())


def load_board(name_or_path: "str | Path | Board") -> Board:
    """A shipped board by id or display name (case-insensitive), or a board file by path."""
    if isinstance(name_or_path, Board):
        return name_or_path
    text = str(name_or_path)
    path = Path(text)
    if isinstance(name_or_path, Path) or path.suffix.lower() in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise UserError(f"{path}: board file not found")
        return _load_path(path)
    key = _normalize(text)
    for board_id in shipped_ids():
        board = _shipped(board_id)
        if key in (board_id, _normalize(board.name)):
            return board
    raise UserError(f"unknown board {text!r} (shipped: {', '.join(shipped_ids())}; "
                    f"or give the path of a .yaml board file)")


def list_boards() -> list[Board]:
    """Every shipped board, in id order."""
    return [_shipped(board_id) for board_id in shipped_ids()]


def board_file(name_or_path: "str | Path") -> Path:
    """The YAML file behind a board name or path (what a build hashes to see that it changed)."""
    board = load_board(name_or_path)
    path = Path(str(name_or_path))
    return path if path.is_file() else BOARDS_DIR / f"{board.id}.yaml"
