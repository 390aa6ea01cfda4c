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
engine, plus attention over the KV cache: K and V of every past position,

    kv_cache bytes = 2 x layers x kv_heads x head_dim x context x kv_bits / 8   (GQA-aware)

streamed at the memory's usable bandwidth, overlapped with its 2 x layers x heads x head_dim x
context MACs on the fp16 engines' multipliers (the same attention hardware beside either
format): attention takes the longer of the two. Per GEMV a launch overhead and a memory
latency are added (`Overheads`, 0 until the memory-mapped kernel measures them). A model
bigger than the board's weight memory is split by whole layers over `boards_needed` boards
(greedy, in order: embedding table on the first, lm_head on the last, each layer with its
KV cache); each board boundary hands `hidden` fp16 activations over the board's `link`.
With a batch of B sequences the weights decode once per step: a beat holds the engine B
cycles (one multiply per weight and sequence), so an engine stays memory-bound up to
B = 1/e and is compute-bound beyond. `LEFT_OUT` names what is not modelled: it does not
depend on the weight format.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from seedlm_fpga.flows.sizing import SLACK  # bandwidth share a bus may leave unused rather than double
from seedlm_fpga.core.ext_stream import EXT_WORD_BITS, ext_words_bound
from seedlm_fpga.core.extension_cost import extension_cycles, instance_stream, stream_beat_share
from seedlm_fpga.core.numeric import pow2_at_least
from seedlm_fpga.core.reference import PRESETS
from seedlm_fpga.sim.cycle_model import CycleModel
from seedlm_fpga.sim.llama_shapes import LAYER_KINDS, ModelShape

FORMATS = ("fp16", "seedlm-4", "seedlm-3")

LEFT_OUT = ("RMSNorm", "RoPE and softmax", "activation transfers between GEMVs on one board",
            "embedding lookup", "sampling")

#: Context when none is given: 4096 tokens, or the model's maximum if shorter.
DEFAULT_CONTEXT = 4096
NO_KERNEL = "no kernel measurement yet"


@dataclass(frozen=True)
class Overheads:
    """Per-GEMV costs outside the cycle model: launch/control and memory latency to the first beat."""

    launch_us: float = 0.0
    memory_latency_ns: float = 0.0
    source: str = NO_KERNEL

    @property
    def per_gemv_s(self) -> float:
        return self.launch_us * 1e-6 + self.memory_latency_ns * 1e-9


def kv_cache_bytes(model: ModelShape, context: int, kv_bits: int = 16) -> int:
    """K and V of every past position, every layer: 2 x layers x kv_heads x head_dim x context x kv_bytes."""
    return 2 * model.layers * model.kv_dim * context * kv_bits // 8


def default_context(model: ModelShape) -> int:
    return min(DEFAULT_CONTEXT, model.max_context or DEFAULT_CONTEXT)


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
    def channel_rate(self) -> float:
        """W-bit beats a channel could deliver per engine clock (above 1: bandwidth to spare)."""
        return self.channel_gbps / self.engine_gbps

    @property
    def beat_rate(self) -> float:
        """e: weight beats a channel delivers per engine clock (at most 1)."""
        return min(1.0, self.channel_rate)

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
    clock_source: str = "board target, no timing evidence"
    efficiency: float | None = None
    efficiency_band: tuple[float, float] | None = None
    efficiency_source: str = ""
    link_gbps: float | None = None  # board-to-board link, GB/s; None: none listed
    link_source: str = "no link listed: hand-off time left out"

    @property
    def usable_gbps(self) -> float:
        """The weight memory's usable GB/s over all channels (what KV reads stream at)."""
        p = self.engines["fp16"]
        return p.memory_gbps


# --- one GEMV, one format --------------------------------------------------------------------

def gemv_time(plan: EnginePlan, rows: int, cols: int, instances: int | None = None, batch: int = 1,
              ext_nnz: int = 0, ext_rank: int = 0) -> dict:
    """One GEMV spread over the engines: seconds, bytes streamed, cycles of the busiest engine.

    With batch B > 1 every weight beat is used B times: B activation loads, and each beat holds
    the engine max(1/e, B) cycles (memory stall or one multiply per sequence).
    `ext_nnz`, `ext_rank`: the tensor's outliers and low-rank part (format §5.5): each engine's
    extension unit reads its share of the §5.6 stream beside the weights (format §11.3): its bytes
    share the channel with the weights', and `core.extension_cost` gives the cycles it adds; once
    per sequence of the batch (the unit holds one activation vector).
    """
    model = plan.model
    per_instance = -(-rows // (instances or plan.instances))
    parts = model.breakdown(per_instance, cols, plan.beat_rate)
    beats = parts["weights"]
    stream = instance_stream(rows, cols, ext_nnz, ext_rank, per_instance) if ext_nnz or ext_rank else None
    # W-bit beats the channel must deliver per sequence: the image, and the stream's bytes beside it
    fetched = beats + (stream_beat_share(stream, model.bus_bits) * batch if stream else 0.0)
    parts["stalls"] = max(0.0, fetched / plan.channel_rate - beats * batch)
    if batch > 1:
        parts.update(act=parts["act"] * batch, weights=beats * batch)
    n_inst = -(-rows // per_instance)
    if stream:
        weight_cycles = (parts["weights"] + parts["stalls"]) / batch
        parts["extensions"] = extension_cycles(stream, weight_cycles, model.latency, model.weights_per_beat) * batch
        ext_bytes = n_inst * stream.io_bytes
    else:
        ext_bytes = 0
    cycles = sum(parts.values())
    return {
        "format": plan.format,
        "rows_per_instance": per_instance,
        "cycles": cycles,
        "seconds": cycles / (plan.clock_mhz * 1e6),
        "bytes": model.image_bytes(rows, cols) + ext_bytes,
        "bits_per_weight": model.bits_per_weight(cols) + 8 * ext_bytes / (rows * cols),
        "extension_bytes": ext_bytes,
        "macs": rows * cols,
        "fixed_cycles": parts["act"] + parts["latency"],
        "bound": plan.bound,
    }


def _gemv_format(gemv, fmt: str) -> str:
    if gemv.kind == "lm_head" or gemv.preset == "fp16" or fmt == "fp16":
        return "fp16"
    return gemv.preset or fmt


def _ext_of(g, engine_format: str) -> tuple[int, int]:
    """(outliers per tensor, rank) of a group run on a SeedLM engine; none at 16 bits (the
    decoded weights already hold them)."""
    if engine_format not in PRESETS:
        return 0, 0
    return -(-g.ext_nnz // g.count), g.ext_rank


def _formats_of(model: ModelShape, fmt: str) -> set[str]:
    return {_gemv_format(g, fmt) for g in model.gemvs}


def model_bytes(board: BoardPlan, model: ModelShape, fmt: str) -> int:
    """Bytes the weights take in memory: streamed images (padding included) + fp16 stored-only tensors."""
    return 2 * model.stored_params + sum(model_bytes_of(board, g, fmt) for g in model.gemvs)


def boards_needed(board: BoardPlan, model: ModelShape, fmt: str, context: int = 0, kv_bits: int = 16,
                  batch: int = 1) -> tuple[int | None, list[int]]:
    """Boards of this kind the model needs, and layers per board: whole layers packed greedily in
    order (embedding table and norms on the first board, lm_head on the last; a layer carries its
    KV cache for `batch` sequences of `context`). (None, []) if one layer alone does not fit."""
    cap = board.memory_gb * 1e9
    layer_bytes = 0.0
    head = 0
    for g in model.gemvs:
        b = model_bytes_of(board, g, fmt)
        if g.kind == "lm_head":
            head += b
        else:
            layer_bytes += b
    layers = max(model.layers, 1)
    per_layer = layer_bytes / layers + kv_cache_bytes(model, context, kv_bits) * batch / layers
    first = 2 * model.stored_params
    if cap <= 0 or max(per_layer, first, head) > cap:
        return None, []
    split, used, n = [], first, 0
    for _ in range(layers):
        if used + per_layer > cap:
            split.append(n)
            used, n = 0.0, 0
        used += per_layer
        n += 1
    split.append(n)
    if used + head > cap:
        split.append(0)  # the lm_head alone on a last board
    return len(split), split


def model_bytes_of(board: BoardPlan, g, fmt: str) -> int:
    """Bytes one GEMV group's weights take in memory (format §5.3 image, or the bare blocks)."""
    plan = board.engines[_gemv_format(g, fmt)]
    if plan.too_small and plan.format not in PRESETS:  # no 16-bit engine: the bare fp16 weights
        return g.rows * g.cols * 2 * g.count
    if plan.too_small:  # no engine, no bus: count the blocks themselves (format §5.2)
        p = PRESETS[plan.format]
        return g.rows * -(-g.cols // p.C) * p.block_bits // 8 * g.count
    ext = 0
    nnz, rank = _ext_of(g, plan.format)
    if nnz or rank:  # the §5.6 streams, one per tensor
        ext = ext_words_bound(g.rows, g.cols, nnz, rank) * EXT_WORD_BITS // 8
    return (plan.model.image_bytes(g.rows, g.cols) + ext) * g.count


def attention_time(board: BoardPlan, model: ModelShape, context: int, kv_bits: int = 16, batch: int = 1) -> dict:
    """KV-cache reads at the memory's usable bandwidth, overlapped with the attention MACs on the fp16
    engines' multipliers: the longer of the two."""
    kv = kv_cache_bytes(model, context, kv_bits) * batch
    macs = 2 * model.layers * model.q_dim * context * batch
    base = board.engines["fp16"]
    read_s = kv / (board.usable_gbps * 1e9) if kv else 0.0
    mac_s = macs / (base.peak_gmacs * 1e9) if macs and base.peak_gmacs else 0.0
    return {"kv_bytes": kv, "macs": macs, "read_seconds": read_s, "compute_seconds": mac_s,
            "seconds": max(read_s, mac_s), "bound": "compute" if mac_s > read_s else "memory"}


def project_format(board: BoardPlan, model: ModelShape, fmt: str, instances: dict | None = None,
                   context: int = 0, kv_bits: int = 16, batch: int = 1,
                   overheads: Overheads = Overheads()) -> dict:
    """Per-GEMV, per-layer and per-token figures of `model` in `fmt` on `board`."""
    need = _formats_of(model, fmt)
    missing = [f for f in need if board.engines[f].too_small]
    mem_bytes = model_bytes(board, model, fmt)
    kv_total = kv_cache_bytes(model, context, kv_bits) * batch
    n_boards, split = boards_needed(board, model, fmt, context, kv_bits, batch)
    entry = {
        "format": fmt, "board": board.board, "model": model.name,
        "context": context, "kv_bits": kv_bits, "batch": batch,
        "memory_bytes": mem_bytes,
        "fits_memory": mem_bytes + kv_total <= board.memory_gb * 1e9,
        "fits_other_memories": [n for n, gb in board.other_memories if mem_bytes + kv_total <= gb * 1e9],
        "boards_needed": n_boards, "layers_per_board": split,
        "efficiency": board.efficiency, "efficiency_band": board.efficiency_band,
        "efficiency_source": board.efficiency_source,
        "link_gbps": board.link_gbps, "link_source": board.link_source,
        "overheads": {"launch_us": overheads.launch_us, "memory_latency_ns": overheads.memory_latency_ns,
                      "source": overheads.source},
    }
    if missing:
        plan = board.engines[missing[0]]
        return {**entry, "tokens_per_s": None, "token_seconds": None, "bound": "does not fit",
                "clock_mhz": plan.clock_mhz, "clock_source": board.clock_source,
                "too_small": plan.too_small, "gemvs": []}
    rows = []
    for g in model.gemvs:
        plan = board.engines[_gemv_format(g, fmt)]
        n = (instances or {}).get(plan.format)
        rows.append({"kind": g.kind, "rows": g.rows, "cols": g.cols, "count": g.count,
                     **gemv_time(plan, g.rows, g.cols, n, batch, *_ext_of(g, plan.format))})
    weights_s = sum(r["seconds"] * r["count"] for r in rows)
    attn = attention_time(board, model, context, kv_bits, batch)
    gemvs_per_step = sum(r["count"] for r in rows) + (2 * model.layers if context else 0)
    overhead_s = gemvs_per_step * overheads.per_gemv_s
    handoff_s = 0.0
    if n_boards and n_boards > 1 and board.link_gbps:
        handoff_s = (n_boards - 1) * model.hidden * 2 * batch / (board.link_gbps * 1e9)
    token_s = weights_s + attn["seconds"] + overhead_s + handoff_s
    layer_rows = [r for r in rows if r["kind"] != "lm_head"]
    head_bytes = sum(r["bytes"] * r["count"] for r in rows if r["kind"] == "lm_head")
    weight_bytes = sum(r["bytes"] * r["count"] for r in rows)
    layer_macs = sum(r["macs"] * r["count"] for r in layer_rows)
    main = board.engines[fmt] if fmt in board.engines else board.engines[sorted(need - {"fp16"} or {"fp16"})[0]]
    per_token = (lambda b: b) if batch == 1 else (lambda b: b / batch)
    return {
        **entry,
        "tokens_per_s": batch / token_s,
        "token_seconds": token_s,
        "seconds": {"weights": weights_s, "attention": attn["seconds"], "overheads": overhead_s,
                    "handoff": handoff_s},
        "attention": {k: attn[k] for k in ("macs", "read_seconds", "compute_seconds", "bound")},
        "layer_seconds": sum(r["seconds"] * r["count"] for r in layer_rows) / max(model.layers, 1),
        "bytes_per_token": {"weights": per_token(weight_bytes - head_bytes), "lm_head": per_token(head_bytes),
                            "kv_cache": per_token(kv_total)},
        "layer_bits_per_weight": 8 * sum(r["bytes"] * r["count"] for r in layer_rows) / max(layer_macs, 1),
        "lm_head_byte_share": head_bytes / weight_bytes,
        "fixed_cycle_share": sum(r["fixed_cycles"] * r["count"] for r in rows)
        / sum(r["cycles"] * r["count"] for r in rows),
        "bound": main.bound if batch <= 1 / main.beat_rate else "compute",
        "batch_crossover": 1 / main.beat_rate,
        "clock_mhz": main.clock_mhz, "clock_source": board.clock_source,
        "engine_format": main.format,
        "engines": {"bus_bits": main.bus_bits, "instances": main.instances, "channels": main.channels,
                    "clock_mhz": main.clock_mhz, "beat_rate": round(main.beat_rate, 4)},
        "gemvs": rows,
    }


def _gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


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
    kv = entry["bytes_per_token"]["kv_cache"]
    if kv:
        sec = entry["seconds"]
        out.append(f"KV cache at context {entry['context']} ({entry['kv_bits']}-bit): {_gb(kv)} per token, "
                   f"attention {100 * sec['attention'] / entry['token_seconds']:.0f}% of the time "
                   f"({entry['attention']['bound']}-bound)")
    if not entry["fits_memory"]:
        where = f" (fits {', '.join(entry['fits_other_memories'])})" if entry["fits_other_memories"] else ""
        need = (entry["memory_bytes"] + entry["bytes_per_token"]["kv_cache"] * entry["batch"]) / 1e9
        out.append(f"does not fit {board.memory_gb:g} GB {board.memory}: needs {_gb(need * 1e9)}{where}")
    if entry["boards_needed"] is None:
        out.append(f"one layer or the lm_head alone exceeds {board.memory_gb:g} GB: no split by layers fits")
    elif entry["boards_needed"] > 1:
        link = (f"{board.link_gbps:g} GB/s link" if board.link_gbps else board.link_source)
        out.append(f"{entry['boards_needed']} boards, layers split {'/'.join(map(str, entry['layers_per_board']))} "
                   f"({link})")
    return out


def project(board: BoardPlan, model: ModelShape, formats=FORMATS, context: int = 0, kv_bits: int = 16,
            batch: int = 1, overheads: Overheads = Overheads(), band: tuple | None = None) -> list[dict]:
    """One entry per format, each with speedup_vs_fp16 and the reasons behind it.

    `band`: (low, high) BoardPlans at the ends of the memory's efficiency band; their tokens/s
    come as `tokens_per_s_band`.
    """
    kw = dict(context=context, kv_bits=kv_bits, batch=batch, overheads=overheads)
    fp16 = project_format(board, model, "fp16", **kw)
    entries = []
    for fmt in formats:
        e = fp16 if fmt == "fp16" else project_format(board, model, fmt, **kw)
        if band is not None and e["tokens_per_s"] is not None:
            ends = [project_format(b, model, fmt, **kw)["tokens_per_s"] for b in band]
            e["tokens_per_s_band"] = sorted(ends) if None not in ends else None
        ok = e["token_seconds"] is not None and fp16["token_seconds"] is not None
        e["speedup_vs_fp16"] = fp16["token_seconds"] / e["token_seconds"] if ok else None
        all_fit = None
        plan = board.engines.get(e.get("engine_format", fmt))
        if ok and fmt != "fp16" and plan.instances < plan.channels:
            full = project_format(board, model, fmt, {plan.format: plan.channels}, **kw)
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

def plan_board(board, formats=FORMATS, act_bits: int = 8, efficiency: float | None = None) -> BoardPlan:
    """Engines of every format on `board` (id, path or `Board`), from boards.sizing.

    The clock is min(board target, the engine's Fmax estimate) (`sizing.engine_clock`);
    `efficiency` replaces the weight memory's (an end of its band).
    """
    from seedlm_fpga.boards.board import load_board
    from seedlm_fpga.flows.sizing import engine_clock, size_for_board

    b = load_board(board)
    clock, clock_source = engine_clock(b)
    if clock != b.clock_mhz:
        b = b.model_copy(update={"clock": b.clock.model_copy(update={"target_mhz": clock, "range_mhz": None})})
    mem = b.primary_memory
    if mem is not None and efficiency is not None:
        mem = mem.model_copy(update={"efficiency": efficiency, "efficiency_low": None, "efficiency_high": None})
        b = b.model_copy(update={"memories": [mem, *b.memories[1:]]})
    others = tuple((m.name, m.capacity_gb) for m in b.memories[1:])
    extra = dict(clock_source=clock_source,
                 link_gbps=b.link.gbps if b.link else None,
                 link_source=f"{b.link.kind}: {b.link.source}" if b.link else "no link listed: hand-off time left out")
    if mem is not None:
        extra.update(efficiency=mem.efficiency, efficiency_band=mem.efficiency_band,
                     efficiency_source=mem.efficiency_source)
    if mem is None:
        plans = {f: EnginePlan(f, b.clock_mhz, 0, 0, 0, 0.0, act_bits, f"board {b.id} lists no weight memory")
                 for f in sorted(set(formats) | {"fp16"})}
        return BoardPlan(b.id, b.name, "none", 0.0, others, plans, **extra)
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
    return BoardPlan(b.id, b.name, mem.name, mem.capacity_gb, others, plans, **extra)
