"""How much a compressed model loses: per-tensor error and perplexity, beside data-free baselines.

`evaluate` compares a .seedlm file with its original checkpoint. Every method quantizes the
same tensors, the ones the .seedlm file compressed, so rows are comparable; bits per weight
are over those tensors, with scales, exponents and padding counted. For llama2.c checkpoints
it also runs the model (`llama_model`) over the first N stories of a text file and reports
perplexity: of the original, of the file decoded to floats, of the file run through the
FPGA's exact integer GEMV (int8 activations), of every baseline (RTN, BFP and, with the
`quality` extra, HQQ and NF4), with ``sweep`` of SeedLM re-encoded at seedlm-4/seedlm-3 with the
paper's bias and ours, with ``variants`` of SeedLM with outliers and low-rank parts (format §5.5),
and with ``budgets`` of a per-tensor choice among them under a bits/weight budget.
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
from seedlm_fpga.core.extensions import decode_extended, extension_bits
from seedlm_fpga.core.reference import PAPER_BIAS, PRESETS, Preset, blocks_per_row
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
    allocations: dict[str, dict[str, str]] = field(default_factory=dict)  # budget row -> tensor -> variant

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
            "allocations": self.allocations,
            "notes": self.notes,
        }


# --- SeedLM sizes and decoding ---------------------------------------------------------------------

def seedlm_storage_bits(shape: tuple[int, int], preset: Preset) -> int:
    """rows * nb * B: every block word, row padding counted (format §3/5.2)."""
    rows, cols = shape
    return rows * blocks_per_row(cols, preset.C) * preset.block_bits


def _bits_per_weight(sizes: dict[str, tuple[int, int]], storage_bits) -> float:
    return sum(storage_bits(s) for s in sizes.values()) / sum(r * c for r, c in sizes.values())


def decode_encoded(enc, ext=None) -> np.ndarray:
    """W_hat float64: the blocks (format §3.2) plus any extension parts (§5.5)."""
    return decode_extended(enc, ext)


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
             baselines: tuple | None = None, compare=(), sweep=(), variants=(), budgets=(),
             device: str = "cpu", progress=None, log=lambda msg: None) -> Evaluation:
    """Build the comparison table.

    `compare`: more .seedlm files of the same reference, each a row (and an FPGA row).
    `sweep`: (preset, bias) pairs re-encoded on the fly with `encode_tensor` (cached).
    `variants`: compressor.extend.Variant (preset + outliers/rank), re-encoded (cached).
    `budgets`: bits/weight budgets, each a per-tensor choice among `variants` (extend.allocate).
    `baselines`: default RTN/BFP plus HQQ/NF4 when the `quality` extra is installed (else a note).
    `lm` enables perplexity (llama2.c references only); `progress(total=..., desc=...)`
    makes a progress bar (tqdm-like) for each perplexity run.
    """
    from seedlm_fpga.evaluation.library_baselines import LIBRARY_BASELINES, missing_extra
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
    dequantized: dict[str, dict[str, np.ndarray]] = {}
    encoded: dict[str, tuple[dict, dict]] = {}  # method name -> (SeedLM blocks, extensions) for its FPGA row
    if baselines is None:
        missing = missing_extra()
        baselines = DEFAULT_BASELINES + (LIBRARY_BASELINES if missing is None else ())
        if missing:
            ev.notes.append(missing)

    def add(method: Method, dequantize) -> None:
        for n in sizes:
            w_hat = dequantize(n)
            method.errors[n] = relative_error(w64(n), w_hat)
            if lm is not None:
                dequantized.setdefault(method.name, {})[n] = w_hat.astype(np.float32)
        ev.methods.append(method)

    def add_seedlm(name: str, encs: dict, role: str, exts: dict | None = None):
        exts = exts or {}
        bits = sum(seedlm_storage_bits(e.shape, e.preset) + extension_bits(e.shape, exts.get(n))
                   for n, e in encs.items()) / sum(r * c for r, c in sizes.values())
        add(Method(name, bits, role=role), lambda n: decode_encoded(encs[n], exts.get(n)))
        errors = ev.methods[-1].errors
        if lm is not None:
            fpga = f"{name}, FPGA integer GEMV"
            encoded[fpga] = (encs, exts)
            ev.methods.append(Method(fpga, bits, errors, role=role + "-fpga"))

    add_seedlm(f"this file: {_label(container.compressed, container.extensions)}", container.compressed,
               "compressed", container.extensions)
    for path in compare:
        other = read_container(path)
        if _check_against_reference(other, path, originals, reference_path) != sizes:
            raise UserError(f"{path} compressed other tensors than {compressed_path}; "
                            f"compare files made from the same tensors")
        add_seedlm(f"{_label(other.compressed, other.extensions)} ({Path(path).name})", other.compressed, "seedlm",
                   other.extensions)
    for pname, bias in sweep:
        preset = PRESETS[pname]
        name = f"{pname}, {'paper bias b=-10' if bias == 'paper' else 'our per-tensor bias'} (re-encoded)"
        log(f"encoding {name} ...")
        add_seedlm(name, {n: encode_cached(w64(n), preset, bias, device) for n in sizes}, "seedlm")
    _add_variants(ev, sizes, w64, variants, budgets, add_seedlm, device, log)
    for bl in baselines:
        add(Method(bl.name, _bits_per_weight(sizes, bl.storage_bits)), lambda n: bl.quantize(w64(n)))
    if lm is not None:
        _perplexities(ev, lm, originals, dequantized, encoded, progress)
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


def _label(encs: dict, exts: dict | None = None) -> str:
    presets = "/".join(sorted({e.preset.name for e in encs.values()}))
    extended = " + outliers/low-rank (format §5.5)" if exts else ""
    return f"{presets}{extended}, {_bias_label({e.bias for e in encs.values()})}"


def _add_variants(ev, sizes, w64, variants, budgets, add_seedlm, device, log) -> None:
    """Rows for SeedLM with extensions (each variant on every tensor) and for budgets (a
    per-tensor choice among the variants); every encode cached (encode_cached)."""
    from seedlm_fpga.compressor.extend import allocate, allocation_error, encode_variant

    def encode(w, preset, bias):
        return encode_cached(w, preset, bias, device)

    tried: dict[str, list] = {n: [] for n in sizes}  # tensor -> [(variant, enc, ext)]
    for v in variants:
        log(f"encoding {v.label} ...")
        encs, exts = {}, {}
        for n, shape in sizes.items():
            if v.rank > min(shape):
                continue
            encs[n], exts[n] = encode_variant(w64(n), v, "auto", encode)
            tried[n].append((v, encs[n], exts[n]))
        if len(encs) == len(sizes):
            add_seedlm(f"{v.label} (re-encoded)", encs, "seedlm", {n: e for n, e in exts.items() if e})
    for budget in budgets:
        costs = {}
        for n, options in tried.items():
            w = w64(n)
            costs[n] = [(v.storage_bits(w.shape), allocation_error(w.size, relative_error(w, decode_encoded(e, x))))
                        for v, e, x in options]
        try:
            pick = allocate(costs, budget * sum(r * c for r, c in sizes.values()))
        except ValueError as exc:
            ev.notes.append(f"budget {budget}: {exc}")
            continue
        chosen = {n: tried[n][i] for n, i in pick.items()}
        name = f"budget {budget:g} bits: per-tensor choice"
        add_seedlm(name, {n: c[1] for n, c in chosen.items()}, "seedlm", {n: c[2] for n, c in chosen.items() if c[2]})
        ev.allocations[name] = {n: c[0].label for n, c in chosen.items()}


def _perplexities(ev: Evaluation, lm: LanguageModelData, originals, dequantized, encoded, progress) -> None:
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
                encs, exts = encoded[m.name]
                linears = {n: IntegerSeedLMLinear(e.seeds, e.x, e.q, e.bias, e.preset, e.shape[1], exts.get(n))
                           for n, e in encs.items() if _is_linear(n)}
                lookups = {n: decode_encoded(e, exts.get(n)).astype(np.float32) for n, e in encs.items()
                           if n not in linears}
                if lookups and m.role == "compressed-fpga":
                    ev.notes.append(f"FPGA rows: {', '.join(sorted(lookups))} used as float-decoded lookups")
                run(m, lookups, linears)
            else:
                run(m, dequantized[m.name])


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
    """Column names: file, s4o/s4p (seedlm-4 ours/paper), s4+0.5%o+r1 (with outliers, rank 1),
    b3.5 (a 3.5-bit budget), r4g64 (RTN int4 g64), bfp4g128, HQQ int4 g64 -> hqq4g64, NF4 g64 -> nf4g64."""
    out: dict[str, str] = {}
    for m in methods:
        if m.role == "compressed":
            s = "file"
        elif m.name.startswith("budget "):
            s = "b" + m.name.split()[1]
        elif m.role == "seedlm" and "," not in m.name:  # an extension variant
            s = (m.name.removesuffix(" (re-encoded)").replace("seedlm-", "s").replace("% outliers", "%o")
                 .replace("rank ", "r").replace(" + ", "+"))
        elif m.role == "seedlm":
            s = m.name.split(",")[0].replace("seedlm-", "s") + ("p" if "paper" in m.name else "o")
        else:
            s = (m.name.replace("RTN int", "r").replace("BFP int", "bfp").replace("HQQ int", "hqq")
                 .replace("NF4", "nf4").replace(" per-row", "row").replace(" g", "g"))
        base, k = s, 2
        while s in out.values():
            s, k = f"{base}.{k}", k + 1
        out[m.name] = s
    return out
