"""Sizing a design for a board: bus width, clock, instances, resource check."""
from __future__ import annotations

import pytest

from seedlm_fpga.boards.board import list_boards, load_board, parse_board
from seedlm_fpga.flows.sizing import size_for_board, split_rows
from seedlm_fpga.errors import UserError


def _board(lut=24288, dsp=28, channels=1, peak=0.2, clock=50, memories=True):
    mem = (f"memories:\n  - {{name: m, kind: SDR, channels: {channels}, bits_per_channel: 16, "
           f"peak_gbps_per_channel: {peak}, capacity_gb: 1, efficiency: 0.5}}\n") if memories else "memories: []\n"
    return parse_board(
        "name: T\nvendor: V\npart: LFE5U-25F-6BG256C\nfamily: ecp5\n" + mem +
        f"resources: {{lut: {lut}, lut_inputs: 4, ff: {lut}, dsp: {dsp}, ebr_kbits: 1008}}\n"
        f"clock: {{target_mhz: {clock}}}\nsources: [{{document: d, figures: [all], verified: false}}]\n",
        "t.yaml", default_id="t")


def test_u280_hbm_channel_needs_a_256_bit_bus_per_instance():
    s = size_for_board("alveo-u280")
    # 14.375 GB/s x 0.66 (FlightLLM's sustained share) = 9.4875 GB/s; the clock is min(300 MHz target,
    # 264.6 MHz Fmax estimate of the xcup netlist); / 264.6 MHz = 35.86 B = 286.8 bits per cycle;
    # x 0.95 = 272 -> 512 (at the 300 MHz target it was 253 bits -> 256)
    assert s["channel_gbps_usable"] == pytest.approx(9.4875)
    assert s["clock_mhz"] == 264.6 and "estimate 264.6 MHz from yosys xcup netlist" in s["clock_source"]
    assert s["bytes_per_cycle_needed"] == pytest.approx(9.4875e3 / 264.6)
    assert (s["bus_bits"], s["instances"]) == (512, 32)
    assert s["lanes_per_instance"] == 16 and s["weights_per_cycle_per_instance"] == 128
    assert s["balanced_clock_mhz"] == pytest.approx(9.4875e9 / 64 / 1e6)
    assert all(isinstance(step, str) and step for step in s["derivation"])
    assert 1 <= s["instances_fit"] <= 32


@pytest.mark.parametrize("board, bus_bits", [
    ("ulx3s-85f", 32),      # 0.333 x 0.6 GB/s / 50 MHz = 4.0 B = 32 bits
    ("arty-a7-100t", 256),  # 2.667 x 0.7 GB/s / 100 MHz = 18.7 B = 149 bits -> 256
    ("vcu118", 512),        # 19.2 x 0.85 / 250 MHz = 65.3 B = 522 bits; x 0.95 = 496 -> 512 (slack rule)
    ("alveo-u250", 512),    # 19.25 x 0.85 / 300 MHz = 54.5 B = 436 bits -> 512
])
def test_bus_width_consumes_the_channel_at_the_fabric_clock(board, bus_bits):
    s = size_for_board(board)
    assert s["bus_bits_for_bandwidth"] == bus_bits
    assert s["bus_bits"] <= bus_bits


def test_every_shipped_board_sizes_to_a_power_of_two_bus():
    for b in list_boards():
        for preset, block in (("seedlm-4", 32), ("seedlm-3", 36)):
            s = size_for_board(b, preset=preset, strict=False)
            if s["too_small"]:
                continue
            w = s["bus_bits"]
            assert w >= block and w & (w - 1) == 0 and w % 8 == 0
            assert s["lanes_per_instance"] == w // block
            assert s["stream_gbps_per_instance"] <= s["channel_gbps_usable"] + 1e-12


def test_seedlm3_block_of_36_bits_needs_at_least_64():
    assert size_for_board("ulx3s-85f", preset="seedlm-3")["bus_bits"] == 64


def test_icebreaker_is_too_small_for_one_lane():
    with pytest.raises(UserError, match=r"^board icebreaker is too small for one seedlm-4 lane: it needs about"):
        size_for_board("icebreaker")
    s = size_for_board("icebreaker", strict=False)
    assert s["too_small"] is True and s["reason"].startswith("board icebreaker is too small")


def test_board_without_memory_says_so():
    with pytest.raises(UserError) as info:
        size_for_board(_board(memories=False))
    assert str(info.value) == "board t lists no memory to stream weights from"


def test_fewer_instances_fit_than_channels_on_a_small_fabric():
    wide = _board(lut=20_000, dsp=1000, channels=8, peak=1.0, clock=100)
    s = size_for_board(wide)
    assert s["instances"] == 8
    assert 1 <= s["instances_fit"] < 8
    assert s["bound"] == "resources"
    assert s["resource_estimate"]["used"]["lut"] <= 0.8 * 20_000


def test_bus_halves_until_one_instance_fits():
    # 1 GB/s at 25 MHz wants 320 bits -> 512 (16 lanes): far more than 12K LUT4
    s = size_for_board(_board(lut=12_000, dsp=200, channels=1, peak=2.0, clock=25))
    assert s["bus_bits_for_bandwidth"] == 512
    assert s["bus_bits"] < 512 and s["instances_fit"] == 1
    assert any("halved" in step for step in s["derivation"])


def test_bad_preset_and_act_bits():
    with pytest.raises(UserError, match="unknown preset 'seedlm-9'"):
        size_for_board("ulx3s-85f", preset="seedlm-9")
    with pytest.raises(UserError, match="act_bits must be 8 or 16, got 4"):
        size_for_board("ulx3s-85f", act_bits=4)


@pytest.mark.parametrize("rows, n", [(4096, 32), (11008, 32), (5, 8), (7, 1)])
def test_split_rows_covers_every_row_evenly(rows, n):
    parts = split_rows(rows, n)
    assert len(parts) == n and sum(parts) == rows
    assert max(parts) - min(parts) <= 1


def test_sizing_accepts_a_board_object_or_path(tmp_path):
    b = load_board("zcu104")
    assert size_for_board(b) == size_for_board("zcu104")
