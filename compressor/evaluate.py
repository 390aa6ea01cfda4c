"""How much a compressed model loses: per-tensor error and perplexity, beside data-free baselines.

`evaluate` compares a .seedlm file with its original checkpoint. Every method quantizes the
same tensors, the ones the .seedlm file compressed, so rows are comparable; bits per weight
are over those tensors, with scales, exponents and padding counted. For llama2.c checkpoints
it also runs the model (`llama_model`) over the first N stories of a text file and reports
perplexity: of the original, of the file decoded to floats, of the file run through the
FPGA's exact integer GEMV (int8 activations), of every baseline and, with ``sweep``, of
SeedLM re-encoded at seedlm-4/seedlm-3 with the paper's bias and ours.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from seedlm_fpga.errors import UserError

from .baselines import DEFAULT_BASELINES, Baseline, relative_error
from .reference import PAPER_BIAS, PRESETS, Preset, blocks_per_row, decode_tensor
from .tokenizer import cache_dir


@dataclass
class Method:
    """One row of the table: a way of storing the quantized tensors, and what it costs."""

    name: str
    bits_per_weight: float | None  # over the quantized tensors; None for the reference
    errors: dict[str, float] = field(default_factory=dict)  # tensor -> relative error
    perplexity: float | None = None
    role: str = "baseline"  # "reference", "compressed", "compressed-fpga", "seedlm", "baseline"

    @property
    def mean_relative_error(self) -> float | None:
        return float(np.mean(list(self.errors.values()))) if self.errors else None


@dataclass
class Evaluation:
    compressed_path: str
    reference_path: str
    tensors: dict[str, tuple[int, int]]  # the quantized set, name -> shape
    methods: list[Method]
    stories: int = 0
    predicted_tokens: int = 0
    notes: list[str] = field(default_factory=list)

    def method(self, role: str) -> Method | None:
        return next((m for m in self.methods if m.role == role), None)

    def to_json(self) -> dict:
        ppl = {key: m.perplexity for key, role in (("reference_fp32", "reference"),
                                                   ("compressed_float_decoded", "compressed"),
                                                   ("compressed_fpga_integer", "compressed-fpga"))
               if (m := self.method(role)) is not None}
        return {
            "compressed": self.compressed_path, "reference": self.reference_path,
            "quantized_tensors": {n: list(s) for n, s in self.tensors.items()},
            "stories": self.stories, "predicted_tokens": self.predicted_tokens,
            "perplexity": ppl,
            "methods": [{"method": m.name, "role": m.role, "bits_per_weight": m.bits_per_weight,
                         "mean_relative_error": m.mean_relative_error, "perplexity": m.perplexity,
                         "relative_error": m.errors} for m in self.methods],
            "notes": self.notes,
        }


# --- SeedLM sizes and decoding ---------------------------------------------------------------------

def seedlm_storage_bits(shape: tuple[int, int], preset: Preset) -> int:
    """rows * nb * B: every block word, row padding counted (SPEC 3/5.2)."""
    rows, cols = shape
    return rows * blocks_per_row(cols, preset.C) * preset.block_bits


def _bits_per_weight(sizes: dict[str, tuple[int, int]], storage_bits) -> float:
    return sum(storage_bits(s) for s in sizes.values()) / sum(r * c for r, c in sizes.values())


def decode_encoded(enc) -> np.ndarray:
    return decode_tensor(enc.seeds, enc.x, enc.q, enc.bias, enc.preset, enc.shape[1])


def _bias_label(biases: set[int]) -> str:
    return "paper bias b=-10" if biases == {PAPER_BIAS} else "our per-tensor bias"


# --- on-the-fly SeedLM encodes, cached --------------------------------------------------------------

def encode_cached(w: np.ndarray, preset: Preset, bias, device: str = "cpu"):
    """encode_tensor(w, preset, bias), memoized on disk by the weights' sha256 and the settings."""
    from .encoder import EncodedTensor, encode_tensor

    h = hashlib.sha256(np.ascontiguousarray(w, dtype=np.float32).tobytes())
    h.update(f"{w.shape}|{preset.as_dict()}|{bias}".encode())
    path = cache_dir() / "encoded" / f"{h.hexdigest()[:32]}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                return EncodedTensor(seeds=z["seeds"], x=z["x"], q=z["q"], bias=int(z["bias"]),
                                     preset=preset, shape=tuple(w.shape))
        except (OSError, KeyError, ValueError):
            pass
    enc = encode_tensor(np.asarray(w, dtype=np.float32), preset, bias=bias, device=device)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, seeds=enc.seeds, x=enc.x, q=enc.q, bias=np.int64(enc.bias))
        os.replace(tmp, path)
    except OSError:
        pass
    return enc


# --- the evaluation -----------------------------------------------------------------------------------

@dataclass
class LanguageModelData:
    """What perplexity needs: the llama2.c config and the stories' token ids."""

    config: object
    stories: list[np.ndarray]


def evaluate(compressed_path, reference_path, lm: LanguageModelData | None = None,
             baselines: tuple[Baseline, ...] = DEFAULT_BASELINES, sweep: bool = False,
             device: str = "cpu", progress=None, log=lambda msg: None) -> Evaluation:
    """Build the comparison table. `lm` enables perplexity (llama2.c references only);
    `progress(total=..., desc=...)` makes a progress bar (tqdm-like) for each perplexity run."""
    from .checkpoints import load_checkpoint
    from .container import read_container

    container = read_container(compressed_path)
    ckpt = load_checkpoint(reference_path)
    originals = {n: t.double().numpy() for n, t in ckpt.tensors.items()}
    sizes: dict[str, tuple[int, int]] = {}
    for name, enc in container.compressed.items():
        if name not in originals:
            raise UserError(f"{compressed_path}: tensor {name!r} is not in the reference {reference_path}")
        if tuple(originals[name].shape) != tuple(enc.shape):
            raise UserError(f"tensor {name!r}: shape {list(enc.shape)} in {compressed_path} but "
                            f"{list(originals[name].shape)} in {reference_path}")
        sizes[name] = tuple(enc.shape)
    if not sizes:
        raise UserError(f"{compressed_path}: holds no compressed tensor")

    ev = Evaluation(str(compressed_path), str(reference_path), sizes, [])
    ref_bits = {originals[n].dtype.itemsize * 8 for n in sizes}
    ev.methods.append(Method(f"original ({ckpt.tensors[next(iter(sizes))].dtype})".replace("torch.", ""),
                             float(max(ref_bits)) if len(ref_bits) == 1 else None,
                             {n: 0.0 for n in sizes}, role="reference"))
    decoded = {n: decode_encoded(e) for n, e in container.compressed.items()}
    presets = sorted({e.preset.name for e in container.compressed.values()})
    label = f"{'/'.join(presets)}, {_bias_label({e.bias for e in container.compressed.values()})}"
    file_bits = sum(seedlm_storage_bits(e.shape, e.preset) for e in container.compressed.values()) / \
        sum(r * c for r, c in sizes.values())
    file_errors = {n: relative_error(originals[n], decoded[n]) for n in sizes}
    ev.methods.append(Method(f"this file: {label}", file_bits, file_errors, role="compressed"))
    if lm is not None:
        ev.methods.append(Method(f"this file on the FPGA datapath (int8 activations)", file_bits,
                                 file_errors, role="compressed-fpga"))

    variants: dict[str, dict[str, np.ndarray]] = {}  # method name -> quantized weights
    if sweep:
        for pname in ("seedlm-4", "seedlm-3"):
            preset = PRESETS[pname]
            for bias, blabel in (("auto", "our per-tensor bias"), ("paper", "paper bias b=-10")):
                name = f"{pname}, {blabel} (re-encoded)"
                log(f"encoding {name} ...")
                encs = {n: encode_cached(originals[n], preset, bias, device) for n in sizes}
                variants[name] = {n: decode_encoded(e) for n, e in encs.items()}
                ev.methods.append(Method(name, _bits_per_weight(sizes, lambda s: seedlm_storage_bits(s, preset)),
                                         {n: relative_error(originals[n], variants[name][n]) for n in sizes},
                                         role="seedlm"))
    for bl in baselines:
        variants[bl.name] = {n: bl.quantize(originals[n]) for n in sizes}
        ev.methods.append(Method(bl.name, _bits_per_weight(sizes, bl.storage_bits),
                                 {n: relative_error(originals[n], variants[bl.name][n]) for n in sizes}))

    if lm is not None:
        _perplexities(ev, lm, ckpt, originals, container, decoded, variants, progress)
    return ev


def _perplexities(ev: Evaluation, lm: LanguageModelData, ckpt, originals, container, decoded, variants,
                  progress) -> None:
    import torch

    from .llama_model import IntegerSeedLMLinear, Transformer, perplexity

    base = {n: originals[n].astype(np.float32) for n in originals}

    def run(method: Method, weights=None, linears=None):
        model = Transformer.from_state_dict(lm.config, {**base, **(weights or {})}, linears)
        bar = (lambda total: progress(total=total, desc=method.name[:40])) if progress else None
        method.perplexity, ev.predicted_tokens = perplexity(model, lm.stories, progress=bar)

    ev.stories = len(lm.stories)
    with torch.inference_mode():
        for m in ev.methods:
            if m.role == "reference":
                run(m)
            elif m.role == "compressed":
                run(m, {n: w.astype(np.float32) for n, w in decoded.items()})
            elif m.role == "compressed-fpga":
                linears = {n: IntegerSeedLMLinear(e.seeds, e.x, e.q, e.bias, e.preset, e.shape[1])
                           for n, e in container.compressed.items() if _is_linear(n)}
                others = {n: w.astype(np.float32) for n, w in decoded.items() if n not in linears}
                if others:
                    ev.notes.append(f"FPGA row: {', '.join(sorted(others))} used as float-decoded lookups")
                run(m, others, linears)
            else:
                run(m, {n: w.astype(np.float32) for n, w in variants[m.name].items()})


def _is_linear(name: str) -> bool:
    """Tensors that multiply activations (not the embedding lookup)."""
    return name != "tok_embeddings" and name not in ("freq_cos", "freq_sin")


# --- text output ------------------------------------------------------------------------------------

def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def format_report(ev: Evaluation, per_tensor: bool = True) -> str:
    from .cli_compress import format_table

    lines = []
    if per_tensor:
        shown = [m for m in ev.methods if m.role in ("compressed", "seedlm", "baseline")]
        head = ["tensor", "shape"] + [_short(m.name) for m in shown]
        rows = [[n, "x".join(map(str, s))] + [f"{m.errors[n]:.4f}" for m in shown] for n, s in ev.tensors.items()]
        lines += ["relative error ||W - W_hat|| / ||W|| per tensor:", "",
                  format_table(head, rows, right=set(range(1, len(head)))), ""]
        lines += ["columns: " + "; ".join(f"{_short(m.name)} = {m.name}" for m in shown), ""]
    head = ["method", "bits/weight", "mean rel.error", "perplexity"]
    rows = [[m.name, _fmt(m.bits_per_weight, ".3f"), _fmt(m.mean_relative_error, ".4f"),
             _fmt(m.perplexity, ".3f")] for m in ev.methods]
    lines += [format_table(head, rows, right={1, 2, 3}), ""]
    n_w = sum(r * c for r, c in ev.tensors.values())
    lines.append(f"quantized by every method: the {len(ev.tensors)} tensors this file compressed "
                 f"({n_w:,} weights); bits/weight over them, scales/exponents and padding counted")
    if ev.stories:
        lines.append(f"perplexity: first {ev.stories} stories, one pass each (BOS + story, at most "
                     f"seq_len tokens), {ev.predicted_tokens:,} predicted tokens")
    comp = ev.method("compressed")
    for m in ev.methods:
        if m.role == "baseline" and abs(m.bits_per_weight - comp.bits_per_weight) < 0.5:
            wins = sum(comp.errors[n] < m.errors[n] for n in ev.tensors)
            lines.append(f"this file has lower error than {m.name} on {wins}/{len(ev.tensors)} tensors")
    lines += ev.notes
    return "\n".join(lines)


def _short(name: str) -> str:
    if name.startswith("this file"):
        return "file"
    if name.startswith("seedlm"):
        return name.split(",")[0].replace("seedlm-", "s") + ("p" if "paper" in name else "o")
    return name.replace("RTN int", "r").replace("BFP int", "bfp").replace(" per-row", "row").replace(" g", "g")


def write_json(ev: Evaluation, path=None) -> str:
    return json.dumps(ev.to_json(), indent=2)
