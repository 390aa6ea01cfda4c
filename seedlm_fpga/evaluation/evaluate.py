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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seedlm_fpga.core.files import atomic_write
from seedlm_fpga.errors import UserError

from seedlm_fpga.core.numeric import relative_error
from seedlm_fpga.evaluation.baselines import DEFAULT_BASELINES, Baseline
from seedlm_fpga.core.reference import PAPER_BIAS, PRESETS, Preset, blocks_per_row, decode_tensor
from seedlm_fpga.evaluation.tokenizer import cache_dir


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
    """rows * nb * B: every block word, row padding counted (format §3/5.2)."""
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
    """encode_tensor(w, preset, bias), memoized on disk by the weights' sha256, the settings and the search version."""
    from seedlm_fpga.compressor.encoder import SEARCH_VERSION, encode_tensor
    from seedlm_fpga.core.reference import EncodedTensor

    h = hashlib.sha256(np.ascontiguousarray(w, dtype=np.float32).tobytes())
    h.update(f"{w.shape}|{preset.as_dict()}|{bias}|search v{SEARCH_VERSION}".encode())
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
        with atomic_write(path) as f:
            np.savez(f, seeds=enc.seeds, x=enc.x, q=enc.q, bias=np.int64(enc.bias))
    except OSError:
        pass
    return enc


# --- the evaluation -----------------------------------------------------------------------------------

@dataclass
class LanguageModelData:
    """What perplexity needs: the llama2.c config and the stories' token ids."""

    config: object
    stories: list[np.ndarray]


SWEEP: tuple[tuple[str, str], ...] = (("seedlm-4", "auto"), ("seedlm-4", "paper"),
                                      ("seedlm-3", "auto"), ("seedlm-3", "paper"))


def evaluate(compressed_path, reference_path, lm: LanguageModelData | None = None,
             baselines: tuple[Baseline, ...] = DEFAULT_BASELINES, compare=(), sweep=(),
             device: str = "cpu", progress=None, log=lambda msg: None) -> Evaluation:
    """Build the comparison table.

    `compare`: more .seedlm files of the same reference, each a row (and an FPGA row).
    `sweep`: (preset, bias) pairs re-encoded on the fly with `encode_tensor` (cached).
    `lm` enables perplexity (llama2.c references only); `progress(total=..., desc=...)`
    makes a progress bar (tqdm-like) for each perplexity run.
    """
    from seedlm_fpga.compressor.checkpoints import load_checkpoint
    from seedlm_fpga.compressor.container import read_container

    container = read_container(compressed_path)
    ckpt = load_checkpoint(reference_path)
    originals = ckpt.tensors  # converted one tensor at a time: a 7B model must not double in memory
    sizes = _check_against_reference(container, compressed_path, originals, reference_path)
    w64 = lambda n: originals[n].double().numpy()  # noqa: E731
    ev = Evaluation(str(compressed_path), str(reference_path), sizes, [])
    first = ckpt.tensors[next(iter(sizes))]
    ev.methods.append(Method(f"original ({str(first.dtype).removeprefix('torch.')})",
                             float(first.element_size() * 8), {n: 0.0 for n in sizes}, role="reference"))
    # method name -> dequantized weights (float32), kept only when perplexity will need them
    variants: dict[str, dict[str, np.ndarray]] = {}
    encoded: dict[str, dict] = {}  # method name -> SeedLM blocks (for its FPGA row)

    def add(method: Method, dequantize) -> None:
        for n in sizes:
            w_hat = dequantize(n)
            method.errors[n] = relative_error(w64(n), w_hat)
            if lm is not None:
                variants.setdefault(method.name, {})[n] = w_hat.astype(np.float32)
        ev.methods.append(method)

    def add_seedlm(name: str, encs: dict, role: str):
        bits = sum(seedlm_storage_bits(e.shape, e.preset) for e in encs.values()) / \
            sum(r * c for r, c in sizes.values())
        add(Method(name, bits, role=role), lambda n: decode_encoded(encs[n]))
        errors = ev.methods[-1].errors
        if lm is not None:
            fpga = f"{name}, FPGA integer GEMV"
            encoded[fpga] = encs
            ev.methods.append(Method(fpga, bits, errors, role=role + "-fpga"))

    add_seedlm(f"this file: {_label(container.compressed)}", container.compressed, "compressed")
    for path in compare:
        other = read_container(path)
        if _check_against_reference(other, path, originals, reference_path) != sizes:
            raise UserError(f"{path} compressed other tensors than {compressed_path}; "
                            f"compare files made from the same tensors")
        add_seedlm(f"{_label(other.compressed)} ({Path(path).name})", other.compressed, "seedlm")
    for pname, bias in sweep:
        preset = PRESETS[pname]
        name = f"{pname}, {'paper bias b=-10' if bias == 'paper' else 'our per-tensor bias'} (re-encoded)"
        log(f"encoding {name} ...")
        add_seedlm(name, {n: encode_cached(w64(n), preset, bias, device) for n in sizes}, "seedlm")
    for bl in baselines:
        add(Method(bl.name, _bits_per_weight(sizes, bl.storage_bits)), lambda n: bl.quantize(w64(n)))
    if lm is not None:
        _perplexities(ev, lm, originals, variants, encoded, progress)
    return ev


def _check_against_reference(container, path, originals, reference_path) -> dict[str, tuple[int, int]]:
    """The compressed tensors' shapes, in the reference's order, checked against it."""
    for name, enc in container.compressed.items():
        if name not in originals:
            raise UserError(f"{path}: tensor {name!r} is not in the reference {reference_path}")
        if tuple(originals[name].shape) != tuple(enc.shape):
            raise UserError(f"tensor {name!r}: shape {list(enc.shape)} in {path} but "
                            f"{list(originals[name].shape)} in {reference_path}")
    if not container.compressed:
        raise UserError(f"{path}: holds no compressed tensor")
    return {n: tuple(originals[n].shape) for n in originals if n in container.compressed}


def _label(encs: dict) -> str:
    presets = "/".join(sorted({e.preset.name for e in encs.values()}))
    return f"{presets}, {_bias_label({e.bias for e in encs.values()})}"


def _perplexities(ev: Evaluation, lm: LanguageModelData, originals, variants, encoded, progress) -> None:
    import torch

    from seedlm_fpga.evaluation.llama_model import IntegerSeedLMLinear, Transformer, perplexity

    base = {n: t.float().numpy() for n, t in originals.items()}

    def run(method: Method, weights=None, linears=None):
        model = Transformer.from_state_dict(lm.config, {**base, **(weights or {})}, linears)
        bar = (lambda total: progress(total=total, desc=method.name)) if progress else None
        method.perplexity, ev.predicted_tokens = perplexity(model, lm.stories, progress=bar)

    ev.stories = len(lm.stories)
    with torch.inference_mode():
        for m in ev.methods:
            if m.role == "reference":
                run(m)
            elif m.name in encoded:  # the exact integer GEMV for every compressed linear layer
                encs = encoded[m.name]
                linears = {n: IntegerSeedLMLinear(e.seeds, e.x, e.q, e.bias, e.preset, e.shape[1])
                           for n, e in encs.items() if _is_linear(n)}
                lookups = {n: decode_encoded(e).astype(np.float32) for n, e in encs.items() if n not in linears}
                if lookups and m.role == "compressed-fpga":
                    ev.notes.append(f"FPGA rows: {', '.join(sorted(lookups))} used as float-decoded lookups")
                run(m, lookups, linears)
            else:
                run(m, variants[m.name])


def _is_linear(name: str) -> bool:
    """Tensors that multiply activations (not the embedding lookup)."""
    return name != "tok_embeddings" and name not in ("freq_cos", "freq_sin")


# --- text output ------------------------------------------------------------------------------------

def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def format_report(ev: Evaluation, per_tensor: bool = True) -> str:
    from seedlm_fpga.core.text import format_table

    shown = [m for m in ev.methods if m.role in ("compressed", "seedlm", "baseline")]
    short = _short_names(shown)
    lines = []
    if per_tensor:
        head = ["tensor", "shape"] + [short[m.name] for m in shown]
        rows = [[n, "x".join(map(str, s))] + [f"{m.errors[n]:.4f}" for m in shown] for n, s in ev.tensors.items()]
        lines += ["relative error ||W - W_hat|| / ||W|| per tensor:", "",
                  format_table(head, rows, right=set(range(1, len(head)))), "",
                  "columns: " + "; ".join(f"{short[m.name]} = {m.name}" for m in shown), ""]
    head = ["method", "bits/weight", "mean rel.error", "perplexity"]
    rows = [[m.name, _fmt(m.bits_per_weight, ".3f"), _fmt(m.mean_relative_error, ".4f"),
             _fmt(m.perplexity, ".3f")] for m in ev.methods]
    lines += [format_table(head, rows, right={1, 2, 3}), ""]
    n_w = sum(r * c for r, c in ev.tensors.values())
    lines.append(f"every method quantizes the {len(ev.tensors)} tensors this file compressed ({n_w:,} weights); "
                 f"bits/weight over them, scales/exponents and padding counted")
    if ev.stories:
        lines.append(f"perplexity: first {ev.stories} stories, one pass each (BOS + story, at most "
                     f"seq_len tokens), {ev.predicted_tokens:,} predicted tokens; FPGA rows: int8 activations, "
                     f"one scale per vector, exact integer GEMV (format §6)")
    for s in (m for m in shown if m.role != "baseline"):
        near = [b for b in shown if b.role == "baseline" and abs(b.bits_per_weight - s.bits_per_weight) < 0.5]
        if near:
            wins = ", ".join(f"{short[b.name]} {sum(s.errors[n] < b.errors[n] for n in ev.tensors)}"
                             for b in near)
            lines.append(f"tensors where {short[s.name]} has lower error than (of {len(ev.tensors)}): {wins}")
    lines += ev.notes
    return "\n".join(lines)


def _short_names(methods: list[Method]) -> dict[str, str]:
    """Column names: file, s4o/s4p (seedlm-4 ours/paper), r4g64 (RTN int4 g64), bfp4g128."""
    out: dict[str, str] = {}
    for m in methods:
        if m.role == "compressed":
            s = "file"
        elif m.role == "seedlm":
            s = m.name.split(",")[0].replace("seedlm-", "s") + ("p" if "paper" in m.name else "o")
        else:
            s = (m.name.replace("RTN int", "r").replace("BFP int", "bfp").replace(" per-row", "row")
                 .replace(" g", "g"))
        base, k = s, 2
        while s in out.values():
            s, k = f"{base}.{k}", k + 1
        out[m.name] = s
    return out
