"""Board files: the shipped twelve, validation errors, lookup, `seedlm-fpga boards`."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from seedlm_fpga.boards.board import Board, list_boards, load_board, parse_board
from seedlm_fpga.cli.main import main
from seedlm_fpga.errors import UserError

#: The issue's table (independent of the YAML files): part prefix, LUT, DSP, BRAM36, URAM.
TABLE = {
    "alveo-u280": ("xcu280-fsvh2892-2L-e", 1_303_680, 9_024, 2_016, 960),
    "alveo-u55c": ("xcu55c-fsvh2892-2L-e", 1_303_680, 9_024, 2_016, 960),
    "alveo-u250": ("xcu250-figd2104-2L-e", 1_728_000, 12_288, 2_688, 1_280),
    "vcu118": ("xcvu9p", 1_182_240, 6_840, 2_160, 960),
    "vck190": ("xcvc1902", 899_840, 1_968, 967, 463),
    "zcu102": ("xczu9eg-ffvb1156-2-e", 274_080, 2_520, 912, 0),
    "zcu104": ("xczu7ev-ffvc1156-2-e", 230_400, 1_728, 312, 96),
    "kria-kv260": ("xck26-sfvc784-2LV-c", 117_120, 1_248, 144, 64),
    "arty-a7-100t": ("xc7a100t", 63_400, 240, 135, 0),
}
#: Lattice boards: part prefix, LUT4 (about 84K / 5,280), DSP, EBR Kb.
LATTICE = {
    "ulx3s-85f": ("LFE5U-85F", 83_640, 156, 3_744),
    "orangecrab-85f": ("LFE5U-85F", 83_640, 156, 3_744),
    "icebreaker": ("iCE40UP5K", 5_280, 8, 120),
}

VALID = """\
name: My Board
vendor: Me
part: LFE5U-25F-6BG256C
family: ecp5
memories:
  - {name: sdram, kind: SDR SDRAM, channels: 1, bits_per_channel: 16,
     peak_gbps_per_channel: 0.2, capacity_gb: 0.032, efficiency: 0.6}
resources: {lut: 24288, lut_inputs: 4, ff: 24288, dsp: 28, ebr_kbits: 1008}
clock: {target_mhz: 50}
sources:
  - {document: my notes, figures: [resources], verified: false}
"""


def test_twelve_shipped_boards_match_the_issue_table():
    boards = {b.id: b for b in list_boards()}
    assert set(boards) == set(TABLE) | set(LATTICE)
    for board_id, (part, lut, dsp, bram36, uram) in TABLE.items():
        b = boards[board_id]
        assert b.part.startswith(part), board_id
        assert (b.resources.lut, b.resources.dsp, b.resources.bram36, b.resources.uram) == (lut, dsp, bram36, uram)
        assert b.resources.lut_inputs == 6
    for board_id, (part, lut, dsp, ebr) in LATTICE.items():
        b = boards[board_id]
        assert b.part.startswith(part) and b.resources.lut_inputs == 4
        assert (b.resources.lut, b.resources.dsp, b.resources.ebr_kbits) == (lut, dsp, ebr)


def test_hbm_boards_stream_from_32_pseudo_channels_of_460_gbps():
    for board_id, capacity in (("alveo-u280", 8), ("alveo-u55c", 16)):
        mem = load_board(board_id).primary_memory
        assert (mem.kind, mem.channels, mem.capacity_gb) == ("HBM2", 32, capacity)
        assert mem.peak_gbps == pytest.approx(460.0)
    assert load_board("alveo-u250").primary_memory.peak_gbps == pytest.approx(77.0)
    assert load_board("arty-a7-100t").primary_memory.peak_gbps == pytest.approx(1.333e9 * 2 / 1e9, rel=1e-3)


def test_every_board_documents_its_sources_and_clock():
    for b in list_boards():
        assert b.sources and all(s.figures for s in b.sources)
        assert b.clock_mhz > 0 and b.primary_memory is not None
        assert b.family in ("7series", "ultrascale+", "versal", "ecp5", "ice40")


def test_lookup_by_id_or_name_case_insensitive():
    assert load_board("ALVEO-U280").id == "alveo-u280"
    assert load_board("Alveo U280").id == "alveo-u280"
    assert load_board("kria kv260").id == "kria-kv260"
    b = load_board("alveo-u280")
    assert load_board(b) is b


def test_user_board_file_loads_with_id_from_file_name(tmp_path):
    path = tmp_path / "My_Board.yaml"
    path.write_text(VALID)
    b = load_board(str(path))
    assert isinstance(b, Board)
    assert (b.id, b.name, b.family, b.clock_mhz) == ("my_board", "My Board", "ecp5", 50.0)
    assert b.primary_memory.usable_gbps == pytest.approx(0.12)
    assert load_board(path).id == "my_board"


def _error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "b.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as info:
        load_board(str(path))
    msg = str(info.value)
    assert "\n" not in msg
    return msg.removeprefix(f"{path}: ")


@pytest.mark.parametrize("old, new, expected", [
    ("part: LFE5U-25F-6BG256C\n", "", "part: Field required"),
    ("channels: 1,", "channels: two,",
     "memories[0].channels: Input should be a valid integer, unable to parse string as an integer"),
    ("peak_gbps_per_channel: 0.2", "peak_gbps_per_channel: -0.2",
     "memories[0].peak_gbps_per_channel: Input should be greater than 0"),
    ("efficiency: 0.6", "efficiency: 1.5", "memories[0].efficiency: Input should be less than or equal to 1"),
    ("clock: {target_mhz: 50}", "clock: {target_mhz: 50, turbo: true}", "clock.turbo: unknown key"),
    ("vendor: Me\n", "vendor: Me\ncolour: red\n", "colour: unknown key"),
    ("family: ecp5", "family: stratix",
     "family: Input should be '7series', 'ultrascale', 'ultrascale+', 'versal', 'ecp5' or 'ice40'"),
    ("clock: {target_mhz: 50}\n", "clock: {target_mhz: 50}\nplatform: ulx3s\n",
     "platform: unknown key"),
    ("ebr_kbits: 1008}", "bram36: 10}", "(top level): family ecp5 counts block RAM as resources.ebr_kbits"),
    ("clock: {target_mhz: 50}", "clock: {target_mhz: 50, range_mhz: [60, 100]}",
     "clock: range_mhz [60.0, 100.0] must hold target_mhz 50"),
    ("efficiency: 0.6", "efficiency: 0.6, efficiency_low: 0.7",
     "memories[0]: efficiency 0.6 must lie in [efficiency_low, efficiency_high] = [0.7, 0.6]"),
    ("clock: {target_mhz: 50}\n", "clock: {target_mhz: 50}\nlink: {kind: usb, gbps: 0, source: me}\n",
     "link.gbps: Input should be greater than 0"),
])
def test_bad_board_file_names_field_and_problem(tmp_path, old, new, expected):
    assert old in VALID
    assert _error(tmp_path, VALID.replace(old, new)) == expected


def test_several_problems_report_the_first_and_count_the_rest(tmp_path):
    text = VALID.replace("part: LFE5U-25F-6BG256C\n", "").replace("vendor: Me\n", "")
    assert _error(tmp_path, text) == "vendor: Field required (and 1 more problem)"


def test_not_yaml_or_not_a_mapping(tmp_path):
    assert _error(tmp_path, "name: [unclosed\n") == \
        "not valid YAML at line 2: expected ',' or ']', but got '<stream end>'"
    assert _error(tmp_path, "- a\n- b\n") == "expected a mapping of board fields, got list"


def test_yaml_is_parsed_safely():
    with pytest.raises(UserError, match="could not determine a constructor"):
        parse_board("name: !!python/object/apply:os.system ['true']\n", "evil.yaml")


def test_unknown_board_and_missing_file(tmp_path):
    with pytest.raises(UserError) as info:
        load_board("alveo-u999")
    assert str(info.value).startswith("unknown board 'alveo-u999' (shipped: alveo-u250, alveo-u280, ")
    missing = tmp_path / "nope.yaml"
    with pytest.raises(UserError) as info:
        load_board(str(missing))
    assert str(info.value) == f"{missing}: board file not found"


def test_cli_lists_the_twelve_boards(capsys):
    assert main(["boards"]) == 0
    out = capsys.readouterr().out
    for board_id in list(TABLE) + list(LATTICE):
        assert board_id in out
    assert main(["boards", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 12
    u280 = next(r for r in rows if r["id"] == "alveo-u280")
    assert u280["memory"]["peak_gbps"] == pytest.approx(460.0)
    assert u280["memory"]["capacity_gb"] == 8


def test_cli_rejects_a_broken_user_file_in_one_line(tmp_path, capsys):
    path = tmp_path / "mine.yaml"
    path.write_text(VALID.replace("peak_gbps_per_channel: 0.2", "peak_gbps_per_channel: -1"))
    assert main(["boards", "--board", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (f"seedlm-fpga boards: error: {path}: memories[0].peak_gbps_per_channel: "
                            f"Input should be greater than 0\n")


def test_efficiency_bands_and_links_carry_sources():
    from seedlm_fpga.boards.board import list_boards
    for b in list_boards():
        for m in b.memories:
            lo, hi = m.efficiency_band
            assert lo <= m.efficiency <= hi and m.efficiency_source
        assert b.link is None or (b.link.gbps > 0 and b.link.source)
    u280 = load_board("alveo-u280")
    assert u280.primary_memory.efficiency_band == (0.66, 0.9)
    assert "2401.03868" in u280.primary_memory.efficiency_source
    assert u280.link.gbps == 12.5
