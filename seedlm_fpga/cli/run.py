"""Decode a compressed model token by token, every compressed layer's GEMV on the kernels.

Greedy decoding of a .seedlm file made from a llama2.c checkpoint (`seedlm-fpga compress
model.bin`) or a Hugging Face Llama folder with its config.json: embedding, RMSNorm, RoPE, attention over a KV cache, SwiGLU and the classifier
run on the host; every compressed linear layer's GEMV runs as the kernel of format §11 would
run it: int8 activations with one scale per vector, the exact integer Y of format §6, the GEMVs
that share an activation vector (q/k/v, gate/up) as one start. The same activations also go to
the 16-bit baseline kernel (format §7: each layer's decoded weights as int16), for its cycles.

--engine numpy runs the integer reference; its cycles are the cycle model's prediction (format
§11.4) for one kernel pair of the design sized for --board (bus width and clock from the boards'
sizing). --engine verilator generates both kernels (`generate --kernel`), runs them in two
long-lived Verilator simulators that serve every start, and checks every Y against the reference;
the first difference stops the run (exit 1) naming the layer, the row, both Y and the row's blocks.
Layers kept uncompressed (the classifier when it is the embedding) run on the host and are
not counted.

Per generated token it prints the token, the GEMVs, the SeedLM and 16-bit cycles, the cycle
model's prediction and the time at the board's clock; then the text (prompt included). --json
prints one JSON report instead: tokens (ids, prompt excluded), text, bit_exact (null unless a
hardware engine checked every Y), cycles and baseline_cycles per token, model_cycles, board and
clock; `seedlm-fpga project --measured FILE` shows such a report beside its projections.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from seedlm_fpga.core.report import dumps, report_dict
from seedlm_fpga.errors import UserError
from seedlm_fpga.examples import MODEL, TOKENIZER

DEFAULT_BOARD = "alveo-u280"
DEFAULT_TOKENS = 32
ENGINES = ("numpy", "verilator")
DEFAULT_MEM_LATENCY = 32
MAX_MEM_LATENCY = 4096


def add_arguments(parser) -> None:
    parser.add_argument("model", metavar="MODEL.seedlm",
                        help="a .seedlm file compressed from a llama2.c checkpoint or a Hugging Face Llama folder")
    parser.add_argument("--prompt", default="", metavar="TEXT", help="text to continue (default: none, start from BOS)")
    parser.add_argument("--tokens", type=int, default=DEFAULT_TOKENS, metavar="N",
                        help=f"new tokens at most (default {DEFAULT_TOKENS}); decoding stops early at BOS "
                             f"or the model's seq_len")
    parser.add_argument("--engine", choices=ENGINES, default="numpy",
                        help="numpy: the integer reference, cycles from the cycle model (default); verilator: "
                             "the generated kernels in Verilator, every Y checked against numpy bit for bit")
    parser.add_argument("--board", default=DEFAULT_BOARD, metavar="B",
                        help=f"board id, name or .yaml: the kernel's bus width and clock (default {DEFAULT_BOARD})")
    parser.add_argument("--mem-latency", type=int, default=DEFAULT_MEM_LATENCY, metavar="CYCLES",
                        help=f"read latency of the kernels' memory in cycles, simulated (verilator) and in the "
                             f"cycle model; the kernels are generated to hide it (default {DEFAULT_MEM_LATENCY}, "
                             f"an assumption, not a board measurement)")
    parser.add_argument("--tokenizer", metavar="TOK.bin",
                        help=f"llama2.c tokenizer (default: tok<vocab>.bin or tokenizer.bin next to the model; "
                             f"for a .seedlm of the shipped {MODEL.name}, the shipped {TOKENIZER.name})")
    parser.add_argument("--json", action="store_true", help="print a JSON report instead of the text")


def _tokenizer(args, model_path: Path, cfg, source: str | None):
    from seedlm_fpga.evaluation.tokenizer import Tokenizer

    if args.tokenizer:
        path = Path(args.tokenizer)
    else:
        candidates = [model_path.parent / f"tok{cfg.vocab_size}.bin", model_path.parent / "tokenizer.bin"]
        if source == MODEL.name and cfg.vocab_size == 512:
            candidates.append(TOKENIZER)
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            raise UserError(f"{model_path}: no tokenizer found (looked for {', '.join(p.name for p in candidates)} "
                            f"next to it); pass --tokenizer")
    return path, Tokenizer.load(path, cfg.vocab_size)


def _backend(args, model, preset: str, bus_bits: int):
    from seedlm_fpga.evaluation.decode import NumpyBackend

    reference = NumpyBackend(model)
    if args.engine == "numpy":
        return reference
    from seedlm_fpga.sim.kernel_backend import KernelDesign, checked_kernel_backend

    max_cols = max(e.shape[1] for e in model.compressed.values())
    # layers with outliers / low-rank parts (format §5.5) run on the extension unit (§11.3)
    ext_rows = max((model.compressed[n].shape[0] for n in model.extensions), default=0)
    ext_max_rows = 1 << max(0, ext_rows - 1).bit_length() if ext_rows else 0
    try:
        return checked_kernel_backend(model, reference, KernelDesign(preset, bus_bits, max_cols, args.mem_latency,
                                                                     ext_max_rows=ext_max_rows))
    except ValueError as exc:  # a design the kernel generator refuses (format §10/§11 limits)
        raise UserError(f"no kernel for this model on --board {args.board}: {exc}") from None


def run(args) -> int:
    from seedlm_fpga.evaluation.decode import greedy_decode, load_decode_model
    from seedlm_fpga.flows.sizing import size_for_board
    from seedlm_fpga.sim.kernel_backend import KernelMismatch
    from seedlm_fpga.core.ext_stream import stream_timing
    from seedlm_fpga.sim.run_cycles import MODEL_NOTE, StartModel

    model_path = Path(args.model)
    model = load_decode_model(model_path)
    cfg = model.cfg
    if not model.compressed:
        raise UserError(f"{model_path}: holds no compressed linear layer; nothing would run on the kernel")
    if len(model.presets) > 1:
        raise UserError(f"{model_path}: mixes presets {', '.join(model.presets)}; one kernel design runs one preset")
    preset = model.presets[0]
    if not 1 <= args.tokens <= cfg.seq_len:
        raise UserError(f"--tokens must lie in 1..{cfg.seq_len} (the model's seq_len), got {args.tokens}")
    from seedlm_fpga.compressor.container import read_header
    tok_path, tok = _tokenizer(args, model_path, cfg, read_header(model_path).metadata.get("seedlm.source"))
    prompt = tok.encode(args.prompt, bos=True)
    if len(prompt) >= cfg.seq_len:
        raise UserError(f"the prompt is {len(prompt)} tokens; the model's context is {cfg.seq_len}")
    design = size_for_board(args.board, preset)
    clock = design["clock_mhz"]
    if not 0 <= args.mem_latency <= MAX_MEM_LATENCY:
        raise UserError(f"--mem-latency must lie in 0..{MAX_MEM_LATENCY}, got {args.mem_latency}")
    starts = StartModel(preset, design["bus_bits"], args.mem_latency)

    def streams_of(names) -> list:
        """Each GEMV's extension stream (format §11.4; None for layers without parts)."""
        return [stream_timing(model.extensions[n], model.compressed[n].shape)
                if n in model.extensions else None for n in names]

    per_token: list[dict] = []
    prefill: list[dict] = []
    prev = [prompt[-1]]

    def on_step(record, new_id):
        row = {"gemvs": record.gemvs, "starts": len(record.starts),
               "cycles": _sum(r.cycles for _, r in record.starts),
               "baseline_cycles": _sum(r.baseline_cycles for _, r in record.starts),
               "model_cycles": sum(starts.seedlm(s.cols, s.rows, streams_of(s.names)) for s, _ in record.starts),
               "baseline_model_cycles": sum(starts.baseline(s.cols, s.rows) for s, _ in record.starts)}
        if new_id is None:
            prefill.append(row)
            return
        row["id"] = new_id
        per_token.append(row)
        if not args.json:
            piece = tok.piece_bytes(new_id, prev[0]).decode("utf-8", errors="replace")
            print(_token_line(len(per_token), piece, row, clock), flush=True)
        prev[0] = new_id

    backend = _backend(args, model, preset, design["bus_bits"])
    if not args.json:
        print(f"{model_path.name}: {cfg.n_layers} layers, dim {cfg.dim}, {preset}; engine {args.engine}; "
              f"{design['board_name']}: one {design['bus_bits']}-bit kernel at {clock:g} MHz; tokenizer {tok_path}")
        if args.engine == "numpy":
            print(f"cycles: the cycle model's prediction (--engine numpy runs no hardware); {MODEL_NOTE}")
    t0 = time.perf_counter()
    try:
        ids = greedy_decode(model, backend, prompt, args.tokens, on_step)
    except KernelMismatch as exc:
        print(f"seedlm-fpga run: kernel differs from the reference: {exc}", file=sys.stderr)
        return 1
    finally:
        backend.close()
    seconds = time.perf_counter() - t0
    measured = args.engine != "numpy"
    report = {
        "model": str(model_path), "tokenizer": str(tok_path), "preset": preset, "engine": args.engine,
        "prompt": args.prompt, "prompt_tokens": prompt,
        "tokens": ids, "text": tok.decode(prompt + ids),
        "bit_exact": True if measured else None,
        "cycles_source": "verilator" if measured else "cycle model",
        "cycles": [t["cycles"] if measured else t["model_cycles"] for t in per_token],
        "baseline_cycles": [t["baseline_cycles"] if measured else t["baseline_model_cycles"] for t in per_token],
        "model_cycles": [t["model_cycles"] for t in per_token],
        "baseline_model_cycles": [t["baseline_model_cycles"] for t in per_token],
        "gemvs_per_token": [t["gemvs"] for t in per_token],
        "starts_per_token": [t["starts"] for t in per_token],
        "prefill_cycles": [p["cycles"] if measured else p["model_cycles"] for p in prefill],
        "board": design["board"], "board_name": design["board_name"], "bus_bits": design["bus_bits"],
        "clock_mhz": clock, "clock_source": design["clock_source"], "mem_latency": args.mem_latency,
        "model_notes": MODEL_NOTE, "wall_seconds_per_token": seconds / max(1, len(per_token) + len(prefill)),
    }
    if args.json:
        print(dumps(report_dict(report, inputs=[args.model, tok_path])), end="")
    else:
        print(_summary(report))
    return 0


def _sum(values) -> int | None:
    values = list(values)
    return None if not values or any(v is None for v in values) else sum(values)


def _token_line(n: int, piece: str, row: dict, clock_mhz: float) -> str:
    seed = row["cycles"] if row["cycles"] is not None else row["model_cycles"]
    base = row["baseline_cycles"] if row["baseline_cycles"] is not None else row["baseline_model_cycles"]
    return (f"{n:>4} {json.dumps(piece):<14} {row['gemvs']} GEMVs in {row['starts']} starts  "
            f"seedlm {seed:,} cycles (model {row['model_cycles']:,})  "
            f"16-bit {base:,} (model {row['baseline_model_cycles']:,})  "
            f"{seed / clock_mhz:.2f} us vs {base / clock_mhz:.2f} us at {clock_mhz:g} MHz  {base / seed:.2f}x")


def _summary(r: dict) -> str:
    n = len(r["tokens"])
    seed, base = sum(r["cycles"]), sum(r["baseline_cycles"])
    lines = ["", r["text"], ""]
    if n:
        us = seed / r["clock_mhz"] / n
        lines.append(f"{n} tokens: seedlm {seed:,} cycles, 16-bit {base:,} ({r['cycles_source']}); "
                     f"{base / seed:.2f}x; {us:.2f} us per token of kernel time at {r['clock_mhz']:g} MHz "
                     f"({r['board_name']}: {r['clock_source']})")
    exact = {True: "every Y bit-exact against the numpy reference", None: "no hardware ran: bit_exact null"}
    lines.append(f"{exact[r['bit_exact']]}; {r['wall_seconds_per_token']:.3f} s per step on this machine")
    return "\n".join(lines)
