"""Decode-time projections: a model's GEMVs on a board's engines, at 16 bits and in SeedLM.

Each format runs on its own engines (`EnginePlan`): the SeedLM engines are sized by
`boards.sizing.size_for_board` (bus width W for the memory's bandwidth, as many instances
as the fabric fits, one per weight-memory channel); the 16-bit baseline (format §7) uses the
same bus width for bandwidth on every channel (W/16 multipliers and no decoders: a
quarter of a SeedLM engine's multipliers, assumed to fit). Rows of a GEMV are split over
the instances, so the busiest runs ceil(rows / instances) rows, and its cycles come from
the `CycleModel` with the channel's beat rate as the memory efficiency:

    e = min(1, channel's usable bytes/s / (W/8 bytes * clock))

Memory-bound: the engines could take more than the memory delivers (e < 1 on every
channel). Compute-bound: the engines the board fits cannot consume the memory's
bandwidth, because the decoders are slower than a channel (narrow bus, slow clock) or
because fewer engines than channels fit (resources).

A token is the layers' seven GEMVs (format §9) plus the lm_head at 16 bits on the baseline
engine. `LEFT_OUT` names what is not modelled: it does not depend on the weight format.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from seedlm_fpga.flows.sizing import SLACK  # bandwidth share a bus may leave unused rather than double
from seedlm_fpga.core.numeric import pow2_at_least
from seedlm_fpga.core.reference import PRESETS
from seedlm_fpga.sim.cycle_model import CycleModel
from seedlm_fpga.sim.llama_shapes import LAYER_KINDS, ModelShape

FORMATS = ("fp16", "seedlm-4", "seedlm-3")

LEFT_OUT = ("attention over the KV cache", "RMSNorm", "RoPE and softmax", "activation transfers between GEMVs",
            "embedding lookup", "sampling")


@dataclass(frozen=True)
class EnginePlan:
    """How one format's engines sit on a board."""

    format: str
    clock_mhz: float
    bus_bits: int
    instances: int  # engines that fit, one channel each
    channels: int  # channels of the weight memory
    channel_gbps: float  # usable GB/s of one channel
    act_bits: int = 8
    too_small: str | None = None  # why no engine of this format fits, if none does
    memory: str = "memory"
    note: str = ""

    @property
    def model(self) -> CycleModel:
        if self.format == "fp16":
            return CycleModel("baseline", self.bus_bits, self.act_bits)
        return CycleModel("seedlm", self.bus_bits, self.act_bits, self.format)

    @property
    def engine_gbps(self) -> float:
        """GB/s one engine takes at one weight beat per clock."""
        return self.bus_bits / 8 * self.clock_mhz * 1e6 / 1e9

    @property
    def beat_rate(self) -> float:
        """e: weight beats a channel delivers per engine clock (at most 1)."""
        return min(1.0, self.channel_gbps / self.engine_gbps)

    @property
    def memory_gbps(self) -> float:
        return self.channels * self.channel_gbps

    @property
    def stream_gbps(self) -> float:
        """What the fitted engines actually stream, all together."""
        return self.instances * min(self.channel_gbps, self.engine_gbps)

    @property
    def peak_gmacs(self) -> float:
        """Compute roof: every engine taking one beat per clock."""
        return self.instances * self.model.weights_per_beat * self.clock_mhz / 1e3

    @property
    def bound(self) -> str:
        """Compute-bound when the fitted engines stream less than the memory delivers (beyond SLACK):
        slower than their channels, or fewer than the channels."""
        return "compute" if self.stream_gbps < (1 - SLACK) * self.memory_gbps else "memory"

    def bound_reason(self) -> str:
        if self.bound == "memory":
            return (f"memory-bound: {self.instances} engine(s) x {self.bus_bits} bits x {self.clock_mhz:g} MHz "
                    f"could take {self.instances * self.engine_gbps:.1f} GB/s, the {self.memory} delivers "
                    f"{self.memory_gbps:.1f} GB/s ({100 * self.beat_rate:.0f}% of beats)")
        if self.instances < self.channels:
            return (f"compute-bound (resources): {self.instances} of {self.channels} {self.format} engines fit, "
                    f"streaming {self.stream_gbps:.1f} of {self.memory_gbps:.1f} GB/s")
        return (f"compute-bound (decoders): {self.bus_bits} bits x {self.clock_mhz:g} MHz = "
                f"{self.engine_gbps:.2f} GB/s per engine, below the channel's {self.channel_gbps:.2f} GB/s")


@dataclass(frozen=True)
class BoardPlan:
    board: str
    name: str
    memory: str
    memory_gb: float
    other_memories: tuple[tuple[str, float], ...]
    engines: dict[str, EnginePlan] = field(default_factory=dict)


# --- one GEMV, one format --------------------------------------------------------------------

def gemv_time(plan: EnginePlan, rows: int, cols: int, instances: int | None = None) -> dict:
    """One GEMV spread over the engines: seconds, bytes streamed, cycles of the busiest engine."""
    model = plan.model
    per_instance = -(-rows // (instances or plan.instances))
    parts = model.breakdown(per_instance, cols, plan.beat_rate)
    cycles = sum(parts.values())
    return {
        "format": plan.format,
        "rows_per_instance": per_instance,
        "cycles": cycles,
        "seconds": cycles / (plan.clock_mhz * 1e6),
        "bytes": model.image_bytes(rows, cols),
        "bits_per_weight": model.bits_per_weight(cols),
        "macs": rows * cols,
        "fixed_cycles": parts["act"] + parts["latency"],
        "bound": plan.bound,
    }


def _gemv_format(gemv, fmt: str) -> str:
    if gemv.kind == "lm_head" or gemv.preset == "fp16" or fmt == "fp16":
        return "fp16"
    return gemv.preset or fmt


def _formats_of(model: ModelShape, fmt: str) -> set[str]:
    return {_gemv_format(g, fmt) for g in model.gemvs}


def model_bytes(board: BoardPlan, model: ModelShape, fmt: str) -> int:
    """Bytes the weights take in memory: streamed images (padding included) + fp16 stored-only tensors."""
    total = 2 * model.stored_params
    for g in model.gemvs:
        plan = board.engines[_gemv_format(g, fmt)]
        if plan.too_small:  # no engine, no bus: count the blocks themselves (format §5.2)
            p = PRESETS[plan.format]
            total += g.rows * -(-g.cols // p.C) * p.block_bits // 8 * g.count
        else:
            total += plan.model.image_bytes(g.rows, g.cols) * g.count
    return total


def project_format(board: BoardPlan, model: ModelShape, fmt: str, instances: dict | None = None) -> dict:
    """Per-GEMV, per-layer and per-token figures of `model` in `fmt` on `board`."""
    need = _formats_of(model, fmt)
    missing = [f for f in need if board.engines[f].too_small]
    mem_bytes = model_bytes(board, model, fmt)
    entry = {
        "format": fmt, "board": board.board, "model": model.name,
        "memory_bytes": mem_bytes,
        "fits_memory": mem_bytes <= board.memory_gb * 1e9,
        "fits_other_memories": [n for n, gb in board.other_memories if mem_bytes <= gb * 1e9],
    }
    if missing:
        plan = board.engines[missing[0]]
        return {**entry, "tokens_per_s": None, "token_seconds": None, "bound": "does not fit",
                "too_small": plan.too_small, "gemvs": []}
    rows = []
    for g in model.gemvs:
        plan = board.engines[_gemv_format(g, fmt)]
        n = (instances or {}).get(plan.format)
        rows.append({"kind": g.kind, "rows": g.rows, "cols": g.cols, "count": g.count,
                     **gemv_time(plan, g.rows, g.cols, n)})
    token_s = sum(r["seconds"] * r["count"] for r in rows)
    layer_rows = [r for r in rows if r["kind"] != "lm_head"]
    weight_bytes = sum(r["bytes"] * r["count"] for r in rows)
    layer_macs = sum(r["macs"] * r["count"] for r in layer_rows)
    main = board.engines[fmt] if fmt in board.engines else board.engines[sorted(need - {"fp16"} or {"fp16"})[0]]
    return {
        **entry,
        "tokens_per_s": 1.0 / token_s,
        "token_seconds": token_s,
        "layer_seconds": sum(r["seconds"] * r["count"] for r in layer_rows) / max(model.layers, 1),
        "bytes_per_token": weight_bytes,
        "layer_bits_per_weight": 8 * sum(r["bytes"] * r["count"] for r in layer_rows) / max(layer_macs, 1),
        "lm_head_byte_share": sum(r["bytes"] * r["count"] for r in rows if r["kind"] == "lm_head") / weight_bytes,
        "fixed_cycle_share": sum(r["fixed_cycles"] * r["count"] for r in rows)
        / sum(r["cycles"] * r["count"] for r in rows),
        "bound": main.bound,
        "engine_format": main.format,
        "engines": {"bus_bits": main.bus_bits, "instances": main.instances, "channels": main.channels,
                    "clock_mhz": main.clock_mhz, "beat_rate": round(main.beat_rate, 4)},
        "gemvs": rows,
    }


def _reasons(entry: dict, board: BoardPlan, all_fit: float | None) -> list[str]:
    if entry.get("too_small"):
        return [entry["too_small"]]
    fmt = entry["format"]
    plan = board.engines[entry["engine_format"]]
    out = []
    if fmt != "fp16":
        bits = entry["layer_bits_per_weight"]
        out.append(f"layer weights stream at {bits:.2f} bits/weight: at most {16 / bits:.2f}x over 16 bits")
        p = PRESETS.get(fmt)
        if p is not None and bits > 1.01 * p.bits_per_weight:
            L = plan.bus_bits // p.block_bits
            out.append(f"beat waste: {L} block(s) of {p.block_bits} bits per {plan.bus_bits}-bit beat "
                       f"({p.bits_per_weight:g} bits/weight unpadded)")
        out.append(f"lm_head at fp16 is {100 * entry['lm_head_byte_share']:.0f}% of bytes")
    out.append(plan.bound_reason())
    if all_fit is not None:
        out.append(f"with all {plan.channels} engines: {all_fit:.2f}x")
    if entry["fixed_cycle_share"] >= 0.001:
        out.append(f"activation load and pipeline latency are {100 * entry['fixed_cycle_share']:.1f}% of cycles")
    if not entry["fits_memory"]:
        where = f" (fits {', '.join(entry['fits_other_memories'])})" if entry["fits_other_memories"] else ""
        out.append(f"does not fit {board.memory_gb:g} GB {board.memory}: needs {entry['memory_bytes'] / 1e9:.1f} GB{where}")
    return out


def project(board: BoardPlan, model: ModelShape, formats=FORMATS) -> list[dict]:
    """One entry per format, each with speedup_vs_fp16 and the reasons behind it."""
    fp16 = project_format(board, model, "fp16")
    entries = []
    for fmt in formats:
        e = fp16 if fmt == "fp16" else project_format(board, model, fmt)
        ok = e["token_seconds"] is not None and fp16["token_seconds"] is not None
        e["speedup_vs_fp16"] = fp16["token_seconds"] / e["token_seconds"] if ok else None
        all_fit = None
        plan = board.engines.get(e.get("engine_format", fmt))
        if ok and fmt != "fp16" and plan.instances < plan.channels:
            full = project_format(board, model, fmt, {plan.format: plan.channels})
            all_fit = fp16["token_seconds"] / full["token_seconds"]
        e["speedup_all_engines_fit"] = all_fit
        e["reasons"] = _reasons(e, board, all_fit)
        e["left_out"] = list(LEFT_OUT)
        entries.append(e)
    return entries


def layer_breakdown(entry: dict, layers: int) -> list[dict]:
    """Per-kind seconds within one layer (the lm_head: once per token)."""
    out = []
    for r in entry["gemvs"]:
        per = r["count"] / max(layers, 1) if r["kind"] in LAYER_KINDS else r["count"]
        out.append({**{k: r[k] for k in ("kind", "rows", "cols", "macs", "bytes", "format")},
                    "seconds": r["seconds"] * per, "gmacs": r["macs"] / r["seconds"] / 1e9})
    return out


# --- boards --------------------------------------------------------------------------------

def plan_board(board, formats=FORMATS, act_bits: int = 8) -> BoardPlan:
    """Engines of every format on `board` (id, path or `Board`), from boards.sizing."""
    from seedlm_fpga.boards.board import load_board
    from seedlm_fpga.flows.sizing import size_for_board

    b = load_board(board)
    mem = b.primary_memory
    others = tuple((m.name, m.capacity_gb) for m in b.memories[1:])
    if mem is None:
        plans = {f: EnginePlan(f, b.clock_mhz, 0, 0, 0, 0.0, act_bits, f"board {b.id} lists no weight memory")
                 for f in formats}
        return BoardPlan(b.id, b.name, "none", 0.0, others, plans)
    usable = mem.usable_gbps_per_channel
    plans = {}
    for f in sorted(set(formats) | {"fp16"}):
        if f == "fp16":
            # same rule as sizing's step 3, with one 16-bit weight as the smallest beat
            need = usable * 1e9 / (b.clock_mhz * 1e6) * 8
            w = pow2_at_least(max(need * (1 - SLACK), 16))
            plans[f] = EnginePlan(f, b.clock_mhz, w, mem.channels, mem.channels, usable, act_bits,
                                  memory=mem.name, note="baseline: W/16 multipliers, assumed to fit on every channel")
            continue
        s = size_for_board(b, f, act_bits, strict=False)
        if s["too_small"]:
            plans[f] = EnginePlan(f, b.clock_mhz, 0, 0, mem.channels, usable, act_bits, s["reason"], mem.name)
            continue
        plans[f] = EnginePlan(f, s["clock_mhz"], s["bus_bits"], s["instances_fit"], s["channels"],
                              s["channel_gbps_usable"], act_bits, memory=mem.name, note="; ".join(s["derivation"]))
    return BoardPlan(b.id, b.name, mem.name, mem.capacity_gb, others, plans)
