"""The decode GEMVs of a Llama-style model: built-in shapes, HF config.json, or a .seedlm file.

A model is a list of `Gemv` groups (one per distinct (kind, rows, cols, preset), with how
many times it runs per token) plus the parameters it stores but does not stream per token
(the embedding table, norms). Shapes follow format §9: q h x h; k, v (kv_heads*head_dim) x h;
o h x h; gate, up I x h; down h x I; lm_head vocab x h, kept at 16 bits.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from seedlm_fpga.core.files import load_json_file
from seedlm_fpga.errors import UserError

#: The seven decode GEMVs of a layer, in execution order.
LAYER_KINDS = ("q", "k", "v", "o", "gate", "up", "down")


@dataclass(frozen=True)
class Gemv:
    """One decode GEMV shape, (rows, cols) = (out, in) as in torch Linear, run `count` times a token.

    `preset` is the format a checkpoint stores it in ("seedlm-4", "seedlm-3", or "fp16" for a
    tensor kept uncompressed); None means "whatever format is being projected" (built-ins,
    config.json). The lm_head is always "fp16" (format §9).
    """

    kind: str
    rows: int
    cols: int
    count: int = 1
    preset: str | None = None
    ext_nnz: int = 0   # outliers of all `count` tensors together (format §5.5)
    ext_rank: int = 0  # the low-rank part's rank (tensors of different ranks are separate groups)

    @property
    def params(self) -> int:
        return self.rows * self.cols * self.count


@dataclass(frozen=True)
class ModelShape:
    """What a model streams per decoded token, and what it stores besides."""

    name: str
    gemvs: tuple[Gemv, ...]
    layers: int
    #: Stored fp16 parameters that are not streamed per token: embedding table (if untied), norms.
    stored_params: int
    source: str = "built-in"
    config: dict = field(default_factory=dict, compare=False)
    #: Longest context the model was trained for (None: unknown, e.g. a .seedlm file).
    max_context: int | None = None

    @property
    def gemv_params(self) -> int:
        return sum(g.params for g in self.gemvs)

    @property
    def kv_dim(self) -> int:
        """kv_heads x head_dim: K (and V) values a layer caches per position (GQA-aware).

        From the config when known, else the rows of the k GEMV (a .seedlm file).
        """
        if "kv_heads" in self.config:
            return self.config["kv_heads"] * self.config["head_dim"]
        return next((g.rows for g in self.gemvs if g.kind == "k"), 0)

    @property
    def q_dim(self) -> int:
        """heads x head_dim: the query width that attention multiplies against the cache."""
        if "heads" in self.config:
            return self.config["heads"] * self.config["head_dim"]
        return next((g.rows for g in self.gemvs if g.kind == "q"), 0)

    @property
    def hidden(self) -> int:
        """Width of the activation handed from layer to layer."""
        return self.config.get("hidden") or next((g.cols for g in self.gemvs if g.kind == "q"), 0)

    @property
    def params(self) -> int:
        """All parameters: streamed GEMV weights plus stored-only ones (embeddings, norms)."""
        return self.gemv_params + self.stored_params


def llama_model(name: str, hidden: int, intermediate: int, layers: int, heads: int, kv_heads: int,
                head_dim: int, vocab: int, tied: bool = False, source: str = "built-in",
                max_context: int | None = None) -> ModelShape:
    """The per-token GEMVs of a Llama decoder (format §9), grouped per kind."""
    kv = kv_heads * head_dim
    q = heads * head_dim
    shapes = {"q": (q, hidden), "k": (kv, hidden), "v": (kv, hidden), "o": (hidden, q),
              "gate": (intermediate, hidden), "up": (intermediate, hidden), "down": (hidden, intermediate)}
    gemvs = [Gemv(kind, r, c, layers) for kind, (r, c) in shapes.items()]
    gemvs.append(Gemv("lm_head", vocab, hidden, 1, "fp16"))
    norms = (2 * layers + 1) * hidden
    stored = norms + (0 if tied else vocab * hidden)
    config = dict(hidden=hidden, intermediate=intermediate, layers=layers, heads=heads,
                  kv_heads=kv_heads, head_dim=head_dim, vocab=vocab, tied_embeddings=tied)
    return ModelShape(name, tuple(gemvs), layers, stored, source, config, max_context)


#: (name, hidden, intermediate, layers, heads, kv heads, head_dim, vocab, tied embeddings, max context).
#: Llama 2 / 3: format §9 (the models' config.json files). Small models, so that every shipped board
#: has rows it can hold: stories15M/42M/110M from the llama2.c README (github.com/karpathy/llama2.c:
#: dim, n_layers, n_heads, n_kv_heads, max context 256/1024/1024; hidden = llama2.c's FFN rule, and
#: the classifier shares the embedding table); TinyLlama 1.1B from its model card / config.json
#: (TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T); Llama 3.2 1B / 3B from their model cards /
#: config.json (meta-llama/Llama-3.2-1B, -3B: tie_word_embeddings true, 131072 context).
_BUILTIN = {
    "stories15m": ("stories15M", 288, 768, 6, 6, 6, 48, 32000, True, 256),
    "stories42m": ("stories42M", 512, 1376, 8, 8, 8, 64, 32000, True, 1024),
    "stories110m": ("stories110M", 768, 2048, 12, 12, 12, 64, 32000, True, 1024),
    "tinyllama-1.1b": ("TinyLlama 1.1B", 2048, 5632, 22, 32, 4, 64, 32000, False, 2048),
    "llama-3.2-1b": ("Llama 3.2 1B", 2048, 8192, 16, 32, 8, 64, 128256, True, 131072),
    "llama-3.2-3b": ("Llama 3.2 3B", 3072, 8192, 28, 24, 8, 128, 128256, True, 131072),
    "llama-2-7b": ("Llama 2 7B", 4096, 11008, 32, 32, 32, 128, 32000, False, 4096),
    "llama-2-13b": ("Llama 2 13B", 5120, 13824, 40, 40, 40, 128, 32000, False, 4096),
    "llama-2-70b": ("Llama 2 70B", 8192, 28672, 80, 64, 8, 128, 32000, False, 4096),
    "llama-3-8b": ("Llama 3 8B", 4096, 14336, 32, 32, 8, 128, 128256, False, 8192),
    "llama-3-70b": ("Llama 3 70B", 8192, 28672, 80, 64, 8, 128, 128256, False, 8192),
}
#: format §9's Llama 2 / 3 models (the five of the format document).
LLAMA_MODELS = ("llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3-8b", "llama-3-70b")

BUILTIN_MODELS = tuple(_BUILTIN)


def builtin_model(key: str) -> ModelShape:
    """One of format §9's models by key (`BUILTIN_MODELS`); case and spaces are forgiven."""
    norm = re.sub(r"[\s_]+", "-", key.strip().lower())
    if norm not in _BUILTIN:
        raise UserError(f"unknown model {key!r} (choose from {', '.join(BUILTIN_MODELS)})")
    name, *dims, tied, max_context = _BUILTIN[norm]
    return llama_model(name, *dims, tied=tied, max_context=max_context)


# --- Hugging Face config.json ------------------------------------------------------------------

#: Largest dimension, layer or vocabulary count a config.json may give (the largest real ones
#: are about 2^18); beyond it the figures overflow or mean nothing.
MAX_DIM = 1 << 24


def _int_field(cfg: dict, key: str, path: str, default=None) -> int:
    value = cfg.get(key, default)
    if value is None:
        raise UserError(f"{path}: config has no {key!r}")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_DIM:
        shown = repr(value) if not isinstance(value, int) or value.bit_length() < 64 else "a huge integer"
        raise UserError(f"{path}: {key!r} must be a positive integer up to {MAX_DIM:,}, got {shown}")
    return value


def model_from_config(path: str | Path) -> ModelShape:
    """Shapes from a Hugging Face Llama-style config.json (GQA via num_key_value_heads)."""
    path = Path(path)
    cfg = load_json_file(path, "config.json")
    if not isinstance(cfg, dict):
        raise UserError(f"{path}: a config.json must hold a JSON object")
    if isinstance(cfg.get("text_config"), dict) and "hidden_size" not in cfg:
        cfg = cfg["text_config"]  # multimodal wrappers keep the language model here
    p = str(path)
    hidden = _int_field(cfg, "hidden_size", p)
    heads = _int_field(cfg, "num_attention_heads", p)
    kv_heads = _int_field(cfg, "num_key_value_heads", p, default=heads)
    head_dim = _int_field(cfg, "head_dim", p, default=hidden // heads if hidden % heads == 0 else None)
    if heads % kv_heads:
        raise UserError(f"{p}: num_attention_heads ({heads}) is not a multiple of num_key_value_heads ({kv_heads})")
    dims = dict(hidden=hidden, intermediate=_int_field(cfg, "intermediate_size", p),
                layers=_int_field(cfg, "num_hidden_layers", p), heads=heads, kv_heads=kv_heads,
                head_dim=head_dim, vocab=_int_field(cfg, "vocab_size", p))
    tied = bool(cfg.get("tie_word_embeddings", False))
    name = cfg.get("_name_or_path") or path.parent.name or path.stem
    ctx = _int_field(cfg, "max_position_embeddings", p) if cfg.get("max_position_embeddings") is not None else None
    return llama_model(str(name), **dims, tied=tied, source=str(path), max_context=ctx)


# --- .seedlm checkpoints --------------------------------------------------------------------------

#: Last name component (before ".weight") -> GEMV kind: HF names and llama2.c names.
_KIND_OF = {"q_proj": "q", "wq": "q", "k_proj": "k", "wk": "k", "v_proj": "v", "wv": "v",
            "o_proj": "o", "wo": "o", "gate_proj": "gate", "w1": "gate", "up_proj": "up", "w3": "up",
            "down_proj": "down", "w2": "down", "lm_head": "lm_head", "output": "lm_head"}
_GEMV_KINDS = set(_KIND_OF.values())
_EMBEDDING = {"embed_tokens", "tok_embeddings", "wte", "word_embeddings"}
_LAYER = re.compile(r"(?:^|\.)(?:layers|h|blocks)\.(\d+)\.")


def _kind(name: str) -> str:
    parts = name.split(".")
    if parts[-1] in ("weight", "bias") and len(parts) > 1:
        parts = parts[:-1]
    last = parts[-1]
    if last in _EMBEDDING:
        return "embedding"
    return _KIND_OF.get(last, last)


def model_from_checkpoint(path: str | Path) -> ModelShape:
    """Real shapes and per-tensor presets of a .seedlm file, from its header only (fast).

    Compressed tensors run as GEMVs in their stored preset; an uncompressed 2-D tensor named
    like a decoder Linear (q_proj ... down_proj, wq ... w3, lm_head, output) runs at 16 bits;
    the embedding table is stored only, unless no head exists (tied classifier), in which
    case it is also the lm_head GEMV. Everything else (norms, rotary tables) is stored only.
    """
    from seedlm_fpga.compressor.container import read_header

    path = Path(path)
    header = read_header(path)
    shapes = header.shapes
    groups: dict[tuple, int] = {}
    nnz_of: dict[tuple, int] = {}
    compressed_parts = set(shapes) - set(header.carried)
    layers: set[int] = set()
    for key, entry in header.entries.items():
        rows, cols = entry["shape"]
        group = (_kind(key), rows, cols, header.presets[key].name, int(entry.get("rank", 0)))
        groups[group] = groups.get(group, 0) + 1
        nnz_of[group] = nnz_of.get(group, 0) + int(entry.get("sparse", {}).get("nnz", 0))
        if m := _LAYER.search(key):
            layers.add(int(m.group(1)))

    stored = 0
    embedding = None
    has_head = any(k[0] == "lm_head" for k in groups)
    for key, shape in shapes.items():
        if key in compressed_parts:
            continue
        n = 1
        for d in shape:
            n *= d
        kind = _kind(key)
        if len(shape) == 2 and kind in _GEMV_KINDS:  # a Linear kept uncompressed: runs at 16 bits
            k = (kind, shape[0], shape[1], "fp16", 0)
            groups[k] = groups.get(k, 0) + 1
            has_head |= kind == "lm_head"
            if m := _LAYER.search(key):
                layers.add(int(m.group(1)))
            continue
        if len(shape) == 2 and kind == "embedding":
            embedding = shape
        if m := _LAYER.search(key):
            layers.add(int(m.group(1)))
        stored += n
    if not has_head and embedding is not None:
        groups[("lm_head", embedding[0], embedding[1], "fp16", 0)] = 1
        stored -= embedding[0] * embedding[1]  # tied: streamed as the head, counted once
    if not groups:
        raise UserError(f"{path}: holds no compressed tensors")
    order = {k: i for i, k in enumerate(LAYER_KINDS + ("lm_head",))}
    gemvs = sorted((Gemv(kind, r, c, n, preset, nnz_of.get((kind, r, c, preset, rank), 0), rank)
                    for (kind, r, c, preset, rank), n in groups.items()),
                   key=lambda g: (order.get(g.kind, len(order)), g.kind, g.rows, g.cols, g.preset))
    return ModelShape(path.stem, tuple(gemvs), len(layers), stored, str(path))


def resolve_model(spec: str) -> ModelShape:
    """A model from a CLI word: a built-in key, a config.json path, or a .seedlm path."""
    if spec.endswith(".seedlm"):
        return model_from_checkpoint(spec)
    if spec.endswith(".json"):
        return model_from_config(spec)
    return builtin_model(spec)
