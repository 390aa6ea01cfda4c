"""Size a SeedLM GEMV design for a board: bus width, clock, engine instances.

The derivation, in the order of ``size_for_board``'s ``derivation`` list:

1. The weight memory is the board's first memory; it has ``channels`` independent
   channels. One engine instance streams one channel, so rows of each GEMV are split
   across ``instances = channels`` engines (``split_rows``).
2. A channel's usable bandwidth is ``peak * efficiency`` (sustained long reads).
3. At the fabric clock f, an engine consumes the channel when its weight bus carries
   ``usable / f`` bytes per cycle. The bus width W is that many bits rounded UP to a
   power of two, and at least one block word (B bits): AXI4 data widths and memory
   controllers' user ports are powers of two, and a power-of-two W holds
   ``L = floor(W / B)`` whole blocks per beat (SPEC 5.3). Within ``SLACK`` (5%) the
   width rounds down instead (a 512-bit bus for 522 bits per cycle takes 98% of the
   channel at half the lanes of 1024). The clock at which W exactly matches the
   channel is reported as ``balanced_clock_mhz``.
4. Resources are estimated per lane (one block decoder: C weights per cycle) from
   ``LANE_COST`` and compared with the board's at a ``FILL`` ceiling (routing headroom).
   If all instances do not fit, fewer instances are kept (``instances_fit``); if not
   even one instance fits, W is halved until one does; if not even one lane (W = B
   rounded up to a power of two) fits, the board is too small: ``UserError``, or
   ``too_small: True`` with ``strict=False``.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

from seedlm_fpga.compressor.reference import Preset, get_preset
from seedlm_fpga.errors import UserError

from .board import Board, load_board

#: Share of a channel's usable bandwidth a bus width may leave unused rather than double.
SLACK = 0.05

#: Largest share of a resource a design may use: place-and-route needs headroom.
FILL = 0.8


@dataclass(frozen=True)
class LaneCost:
    """Estimated resources of one lane (one block word per cycle), in the family's LUTs."""

    lut: float
    ff: float
    dsp: float
    source: str


#: Per-lane estimates for seedlm-4 with int8 activations. Xilinx LUT6 figures divide the
#: paper's whole design (67K LUT, 45.4K FF, 128 DSP for 16 lanes; SPEC 8) by its lanes,
#: so they include the shell's share. LUT4 families (ECP5, iCE40) need about twice the
#: LUTs for the same logic. DSP: one hard multiplier per weight of the block (acc * a).
LANE_COST_LUT6 = LaneCost(lut=67_000 / 16, ff=45_400 / 16, dsp=8,
                          source="paper's design (SPEC 8) divided by its 16 lanes")
LANE_COST_LUT4 = LaneCost(lut=2 * 67_000 / 16, ff=45_400 / 16, dsp=8,
                          source="paper's design divided by its 16 lanes, x2 LUTs for LUT4 fabrics")
#: LUTs for one acc * a product built in fabric when the DSPs run out (per LUT6).
LUTS_PER_SOFT_MULT_LUT6 = 100


def lane_cost(board: Board, preset: Preset, act_bits: int) -> LaneCost:
    """Scale the seedlm-4 / int8 estimate to the preset's C and the activation width."""
    base = LANE_COST_LUT6 if board.resources.lut_inputs == 6 else LANE_COST_LUT4
    scale = preset.C / 8 * (preset.P / 3 + 1) / 2 * (act_bits + 8) / 16
    return LaneCost(lut=base.lut * scale, ff=base.ff * scale, dsp=float(preset.C), source=base.source)


def _power_of_two_at_least(bits: float) -> int:
    return 1 << max(0, math.ceil(math.log2(bits)))


def split_rows(rows: int, instances: int) -> list[int]:
    """Rows per engine instance: as even as possible, the first ones take the remainder."""
    base, extra = divmod(rows, instances)
    return [base + (i < extra) for i in range(instances)]


def _instance_cost(lanes: int, cost: LaneCost, board: Board) -> dict:
    dsp = lanes * cost.dsp
    soft = LUTS_PER_SOFT_MULT_LUT6 * (6 / board.resources.lut_inputs) ** 2
    return {"lut": lanes * cost.lut, "ff": lanes * cost.ff, "dsp": dsp, "soft_mult_lut": soft}


def _instances_that_fit(per: dict, board: Board) -> int:
    """How many instances fit at FILL; multipliers beyond the DSPs cost LUTs."""
    res = board.resources
    n = 0
    while True:
        k = n + 1
        dsp_over = max(0.0, k * per["dsp"] - res.dsp)
        lut = k * per["lut"] + dsp_over * per["soft_mult_lut"]
        if lut > FILL * res.lut or k * per["ff"] > FILL * res.ff:
            return n
        n = k
        if n >= 4096:
            return n


def size_for_board(board: "str | Path | Board", preset: str = "seedlm-4", act_bits: int = 8,
                   strict: bool = True) -> dict:
    """Bus width, clock and instance count of a design for ``board`` (see module docstring)."""
    b = load_board(board)
    try:
        p = get_preset(preset)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if act_bits not in (8, 16):
        raise UserError(f"act_bits must be 8 or 16, got {act_bits}")
    mem = b.primary_memory
    result: dict = {"board": b.id, "board_name": b.name, "part": b.part, "family": b.family,
                    "preset": p.name, "act_bits": act_bits, "block_bits": p.block_bits,
                    "too_small": False}
    if mem is None:
        return _too_small(result, strict, f"board {b.id} lists no memory to stream weights from")
    steps: list[str] = []
    usable = mem.usable_gbps_per_channel
    clock = b.clock_mhz
    steps.append(f"weight memory: {mem.name} ({mem.kind}), {mem.channels} channel(s) of "
                 f"{mem.peak_gbps_per_channel:g} GB/s peak -> one engine instance per channel")
    steps.append(f"usable per channel = {mem.peak_gbps_per_channel:g} GB/s x efficiency "
                 f"{mem.efficiency:g} = {usable:.4g} GB/s")
    bytes_needed = usable * 1e9 / (clock * 1e6)
    bits_needed = bytes_needed * 8
    w_bw = _power_of_two_at_least(max(bits_needed * (1 - SLACK), p.block_bits))
    steps.append(f"at {clock:g} MHz one engine must take {usable:.4g} GB/s / {clock:g} MHz = "
                 f"{bytes_needed:.4g} bytes = {bits_needed:.4g} bits per cycle")
    steps.append(f"W = smallest power of two >= max({1 - SLACK:g} x {bits_needed:.4g}, block {p.block_bits} bits) = {w_bw} "
                 f"({w_bw // p.block_bits} blocks, {w_bw // p.block_bits * p.C} weights per beat)")

    cost = lane_cost(b, p, act_bits)
    w = w_bw
    while True:
        lanes = w // p.block_bits
        per = _instance_cost(lanes, cost, b)
        fit = min(mem.channels, _instances_that_fit(per, b))
        if fit >= 1 or w <= _power_of_two_at_least(p.block_bits):
            break
        w //= 2
    steps.append(f"resource estimate per lane: {cost.lut:.0f} LUT{b.resources.lut_inputs}, {cost.ff:.0f} FF, "
                 f"{cost.dsp:.0f} DSP ({cost.source}); design may fill {FILL:.0%} of the fabric")
    if fit < 1:
        return _too_small(result, strict,
                          f"board {b.id} is too small for one {p.name} lane: it needs about "
                          f"{per['lut']:.0f} LUT and {per['ff']:.0f} FF, the {b.part} has "
                          f"{b.resources.lut} LUT and {b.resources.ff} FF ({FILL:.0%} usable)",
                          steps)
    if w < w_bw:
        steps.append(f"one {w_bw}-bit instance does not fit: W halved to {w} (the memory is underused)")
    if fit < mem.channels:
        steps.append(f"{mem.channels} instances do not fit: {fit} fit, "
                     f"{mem.channels - fit} channel(s) stay idle")
    else:
        steps.append(f"all {mem.channels} instance(s) fit")
    engine_gbps = w / 8 * clock * 1e6 / 1e9
    stream = min(engine_gbps, usable)
    balanced = usable * 1e9 / (w / 8) / 1e6
    steps.append(f"per instance: {w / 8:g} bytes/cycle x {clock:g} MHz = {engine_gbps:.4g} GB/s engine, "
                 f"streams min(engine, channel) = {stream:.4g} GB/s; W matches the channel at "
                 f"{balanced:.4g} MHz")
    used = {k: fit * per[k] for k in ("lut", "ff", "dsp")}
    dsp_over = max(0.0, used["dsp"] - b.resources.dsp)
    used["lut"] += dsp_over * per["soft_mult_lut"]
    used["dsp"] = min(used["dsp"], b.resources.dsp)
    avail = {"lut": b.resources.lut, "ff": b.resources.ff, "dsp": b.resources.dsp}
    result.update({
        "memory": mem.name, "channels": mem.channels,
        "channel_gbps_peak": mem.peak_gbps_per_channel, "efficiency": mem.efficiency,
        "channel_gbps_usable": usable, "clock_mhz": clock,
        "bytes_per_cycle_needed": bytes_needed, "bus_bits_for_bandwidth": w_bw,
        "bus_bits": w, "lanes_per_instance": w // p.block_bits,
        "weights_per_cycle_per_instance": w // p.block_bits * p.C,
        "balanced_clock_mhz": balanced, "engine_gbps_per_instance": engine_gbps,
        "stream_gbps_per_instance": stream,
        "instances": mem.channels, "instances_fit": fit, "total_stream_gbps": fit * stream,
        # memory-bound: the fitted engines take (within SLACK) all the memory can deliver
        "bound": "memory" if fit * stream >= (1 - SLACK) * mem.usable_gbps else "resources",
        "resource_estimate": {
            "per_lane": {**asdict(cost)}, "used": {k: round(v) for k, v in used.items()},
            "available": avail,
            "utilization": {k: round(used[k] / avail[k], 4) if avail[k] else None for k in used},
        },
        "derivation": steps,
    })
    return result


def _too_small(result: dict, strict: bool, reason: str, steps: list[str] | None = None) -> dict:
    if strict:
        raise UserError(reason)
    result.update({"too_small": True, "reason": reason, "derivation": (steps or []) + [reason]})
    return result
