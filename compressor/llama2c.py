"""Reader for llama2.c checkpoints: the legacy "v0" header and the v1 "ak42" header.

Tensors come out under clear names (``tok_embeddings``, ``layers.0.wq``, ...), each
matrix as (out_features, in_features) like torch Linear. See examples/README.md
and llama2.c's export.py for the byte layouts.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seedlm_fpga.core.files import check_input_file
from seedlm_fpga.errors import UserError

MAGIC_V1 = 0x616B3432  # "ak42" as a little-endian uint32
V1_HEADER_BYTES = 256


@dataclass(frozen=True)
class Llama2cConfig:
    dim: int
    hidden_dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    vocab_size: int
    seq_len: int
    shared_classifier: bool
    version: int  # 0 = legacy, 1 = "ak42"

    @property
    def head_size(self) -> int:
        return self.dim // self.n_heads

    @property
    def kv_dim(self) -> int:
        return self.n_kv_heads * self.head_size


def _layer_shapes(cfg: Llama2cConfig) -> dict[str, tuple[int, ...]]:
    d, h, kv = cfg.dim, cfg.hidden_dim, cfg.kv_dim
    return {"attention_norm": (d,), "ffn_norm": (d,), "wq": (d, d), "wk": (kv, d), "wv": (kv, d),
            "wo": (d, d), "w1": (h, d), "w2": (d, h), "w3": (h, d)}


def _tensor_order(cfg: Llama2cConfig) -> list[tuple[str, tuple[int, ...]]]:
    """Names and shapes in file order."""
    L, shapes = cfg.n_layers, _layer_shapes(cfg)
    per_layer = lambda key: [(f"layers.{i}.{key}", shapes[key]) for i in range(L)]  # noqa: E731
    emb = [("tok_embeddings", (cfg.vocab_size, cfg.dim))]
    if cfg.version == 0:
        order = (emb + per_layer("attention_norm") + per_layer("wq") + per_layer("wk") + per_layer("wv")
                 + per_layer("wo") + per_layer("ffn_norm") + per_layer("w1") + per_layer("w2")
                 + per_layer("w3") + [("norm", (cfg.dim,))]
                 + [("freq_cos", (cfg.seq_len, cfg.head_size // 2)),
                    ("freq_sin", (cfg.seq_len, cfg.head_size // 2))])
    else:
        order = (per_layer("attention_norm") + per_layer("ffn_norm") + [("norm", (cfg.dim,))] + emb
                 + per_layer("wq") + per_layer("wk") + per_layer("wv") + per_layer("wo")
                 + per_layer("w1") + per_layer("w2") + per_layer("w3"))
    if not cfg.shared_classifier:
        order.append(("output", (cfg.vocab_size, cfg.dim)))
    return order


def _float_count(cfg: Llama2cConfig) -> int:
    """Floats the tensors of `_tensor_order` hold, in closed form (no list of 2^24 layers built)."""
    d, h, kv, L = cfg.dim, cfg.hidden_dim, cfg.kv_dim, cfg.n_layers
    n = L * (2 * d + 2 * d * d + 2 * kv * d + 3 * h * d) + cfg.vocab_size * d + d
    if cfg.version == 0:
        n += 2 * cfg.seq_len * (cfg.head_size // 2)
    if not cfg.shared_classifier:
        n += cfg.vocab_size * d
    return n


def is_llama2c(path: str | Path) -> bool:
    """True if the file starts like a llama2.c checkpoint whose size matches its header."""
    try:
        read_llama2c_config(path)
    except (UserError, OSError):
        return False
    return True


def read_llama2c_config(path: str | Path) -> Llama2cConfig:
    path = Path(path)
    size = check_input_file(path, "llama2.c checkpoint").st_size
    with open(path, "rb") as f:
        head = f.read(V1_HEADER_BYTES)
    if len(head) >= 8 and struct.unpack_from("<I", head)[0] == MAGIC_V1:
        version = struct.unpack_from("<i", head, 4)[0]
        if version != 1:
            raise UserError(f"{path}: llama2.c checkpoint version {version} is not supported (only v0 and v1 fp32)")
        if len(head) < V1_HEADER_BYTES:
            raise UserError(f"{path}: truncated llama2.c v1 header")
        dim, hidden, layers, heads, kv_heads, vocab, seq = struct.unpack_from("<7i", head, 8)
        shared = bool(head[36])
    else:
        if len(head) < 28:
            raise UserError(f"{path}: not a llama2.c checkpoint (file too small for a header)")
        dim, hidden, layers, heads, kv_heads, vocab, seq = struct.unpack_from("<7i", head, 0)
        shared, version = vocab > 0, 0
        vocab = abs(vocab)
    fields = dict(dim=dim, hidden_dim=hidden, n_layers=layers, n_heads=heads, n_kv_heads=kv_heads,
                  vocab_size=vocab, seq_len=seq)
    bad = [k for k, v in fields.items() if not 0 < v < 1 << 24]
    if bad or dim % heads or heads % kv_heads:
        raise UserError(f"{path}: not a llama2.c checkpoint (implausible header {fields})")
    cfg = Llama2cConfig(**fields, shared_classifier=shared, version=version)
    offset = V1_HEADER_BYTES if version == 1 else 28
    expected = offset + 4 * _float_count(cfg)
    if size != expected:
        raise UserError(f"{path}: llama2.c v{version} header implies {expected} bytes, file has {size}")
    return cfg


def read_llama2c(path: str | Path) -> tuple[Llama2cConfig, dict[str, np.ndarray]]:
    """Read a llama2.c fp32 checkpoint: (config, {name: float32 array}) in file order."""
    cfg = read_llama2c_config(path)
    offset = V1_HEADER_BYTES if cfg.version == 1 else 28
    data = np.fromfile(path, dtype="<f4", offset=offset)
    tensors: dict[str, np.ndarray] = {}
    pos = 0
    for name, shape in _tensor_order(cfg):
        n = int(np.prod(shape))
        tensors[name] = data[pos:pos + n].reshape(shape).astype(np.float32, copy=True)
        pos += n
    return cfg, tensors
