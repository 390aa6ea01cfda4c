"""Validation: published FPGA LLM decoders' parameters plugged into the projection's byte model.

For a memory-bound decoder the projection reduces to

    tokens/s = peak GB/s x efficiency / (layer weights x bits/8 + lm_head x head bits/8 + KV cache)

with the KV cache of `kv_cache_bytes` (fp16). Each row takes the board's peak from its board
file, the efficiency and weight bits the paper reports (or the assumption stated in `assumed`),
and compares the prediction with the measured decode tokens/s. Figures are from the project's
design notes, not re-read from the papers.
"""
from __future__ import annotations

from dataclasses import dataclass

from seedlm_fpga.sim.llama_shapes import builtin_model
from seedlm_fpga.sim.projection import kv_cache_bytes


@dataclass(frozen=True)
class Published:
    system: str
    source: str
    board: str  # shipped board id: its weight memory's peak
    model: str  # built-in model key
    weight_bits: float  # layer weights
    head_bits: float  # lm_head
    efficiency: float  # share of peak bandwidth the paper reports
    measured_tokens_per_s: float
    context: int = 0
    clock_mhz: float | None = None
    assumed: str = ""


PUBLISHED = (
    Published("FlightLLM", "arXiv 2401.03868", "alveo-u280", "llama-2-7b", 4.0, 4.0, 0.66, 55.0, clock_mhz=225,
              assumed="mixed low-bit weights taken as 4 bits on average (lm_head too); context 0; "
                      "efficiency: the paper's ~66% of HBM bandwidth"),
    Published("W4 decoder", "arXiv 2502.10659", "kria-kv260", "llama-2-7b", 4.0, 4.0, 0.85, 5.0,
              assumed="all linear layers at 4 bits, group scales left out; context 0"),
    Published("Hummingbird", "arXiv 2507.03308", "kria-kv260", "llama-3-8b", 4.0, 4.0, 0.935, 4.8,
              assumed="all linear layers at 4 bits, group scales left out; context 0; efficiency 93-94%"),
    Published("Hummingbird", "arXiv 2507.03308", "zcu104", "llama-3-8b", 4.0, 4.0, 0.935, 8.6,
              assumed="as on the KV260; the board file lists only the 19.2 GB/s PS DDR4"),
)


def predict(p: Published) -> dict:
    from seedlm_fpga.boards.board import load_board

    board = load_board(p.board)
    model = builtin_model(p.model)
    mem = board.primary_memory
    head = sum(g.params for g in model.gemvs if g.kind == "lm_head")
    layers = model.gemv_params - head
    weights = layers * p.weight_bits / 8 + head * p.head_bits / 8
    kv = kv_cache_bytes(model, p.context)
    gbps = mem.peak_gbps * p.efficiency
    predicted = gbps * 1e9 / (weights + kv)
    return {"system": p.system, "source": p.source, "board": board.name, "model": model.name,
            "peak_gbps": round(mem.peak_gbps, 2), "efficiency": p.efficiency, "weight_bits": p.weight_bits,
            "bytes_per_token": weights + kv, "predicted_tokens_per_s": predicted,
            "measured_tokens_per_s": p.measured_tokens_per_s,
            "error_pct": 100 * (predicted - p.measured_tokens_per_s) / p.measured_tokens_per_s,
            "implied_efficiency": p.measured_tokens_per_s * (weights + kv) / (mem.peak_gbps * 1e9),
            "clock_mhz": p.clock_mhz, "assumed": p.assumed}


def validation_table() -> list[dict]:
    return [predict(p) for p in PUBLISHED]
