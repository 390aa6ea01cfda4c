"""A .seedlm of a Hugging Face Llama folder as the llama2.c model the decoder runs.

`compress` keeps a folder's config.json verbatim in the container. A Llama of that config is
the llama2.c architecture with other names, its own RMSNorm epsilon and RoPE theta, and q/k rows
in the "rotate half" order: Hugging Face's conversion permutes each head's rows so that rotating
the halves (x_i, x_{i+hs/2}) equals llama2.c's rotation of interleaved pairs (x_2i, x_2i+1). The
permutation is undone here on the rows of the stored tensors, compressed ones included (a row's
blocks are its own, so moving rows moves their seeds, exponents and coefficients exactly).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np

from seedlm_fpga.compressor.llama2c import Llama2cConfig
from seedlm_fpga.core.extensions import Extensions
from seedlm_fpga.core.reference import EncodedTensor
from seedlm_fpga.errors import UserError

#: Hugging Face name -> llama2.c name (format of `compressor.llama2c`).
_GLOBAL = {"model.embed_tokens.weight": "tok_embeddings", "model.norm.weight": "norm", "lm_head.weight": "output"}
_LAYER = {"input_layernorm": "attention_norm", "post_attention_layernorm": "ffn_norm",
          "self_attn.q_proj": "wq", "self_attn.k_proj": "wk", "self_attn.v_proj": "wv", "self_attn.o_proj": "wo",
          "mlp.gate_proj": "w1", "mlp.up_proj": "w3", "mlp.down_proj": "w2"}
_LAYER_RE = re.compile(r"^model\.layers\.(\d+)\.(.+)\.weight$")


@dataclass(frozen=True)
class HfLlama:
    cfg: Llama2cConfig
    rms_eps: float
    rope_theta: float


def parse_config(text: str, where: str) -> HfLlama:
    """The llama2.c configuration of a Llama config.json, or a UserError naming what is not supported."""
    try:
        c = json.loads(text)
        if not isinstance(c, dict):
            raise ValueError("not a JSON object")
        h, heads = int(c["hidden_size"]), int(c["num_attention_heads"])
        cfg = Llama2cConfig(dim=h, hidden_dim=int(c["intermediate_size"]), n_layers=int(c["num_hidden_layers"]),
                            n_heads=heads, n_kv_heads=int(c.get("num_key_value_heads") or heads),
                            vocab_size=int(c["vocab_size"]), seq_len=int(c.get("max_position_embeddings", 2048)),
                            shared_classifier=bool(c.get("tie_word_embeddings", False)), version=1)
        eps, theta = float(c.get("rms_norm_eps", 1e-6)), float(c.get("rope_theta", 10000.0))
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{where}: config.json is not a Llama config ({exc})") from None
    problems = []
    if c.get("model_type", "llama") != "llama":
        problems.append(f"model_type {c.get('model_type')!r}")
    if c.get("rope_scaling"):
        problems.append("rope_scaling")
    if c.get("hidden_act", "silu") != "silu":
        problems.append(f"hidden_act {c.get('hidden_act')!r}")
    if c.get("head_dim") not in (None, h // heads) or h % heads or heads % cfg.n_kv_heads:
        problems.append("head_dim other than hidden_size / num_attention_heads, or heads not a multiple of kv heads")
    if problems:
        raise UserError(f"{where}: config.json uses what run does not implement: {', '.join(problems)}")
    return HfLlama(cfg, eps, theta)


def interleaved_rows(n_heads: int, head_size: int) -> np.ndarray:
    """Rows of a Hugging Face q/k matrix in llama2.c order: row h*hs + 2i + a is HF row h*hs + a*hs/2 + i."""
    return np.arange(n_heads * head_size).reshape(n_heads, 2, head_size // 2).transpose(0, 2, 1).reshape(-1)


def llama2c_name(name: str) -> str | None:
    if name in _GLOBAL:
        return _GLOBAL[name]
    m = _LAYER_RE.match(name)
    if m and m.group(2) in _LAYER:
        return f"layers.{m.group(1)}.{_LAYER[m.group(2)]}"
    return None


def to_llama2c(hf: HfLlama, compressed: dict[str, EncodedTensor], carried: dict,
               extensions: dict[str, Extensions] | None = None) -> tuple[dict, dict, dict]:
    """(compressed, carried, extensions) under llama2.c names, q/k rows interleaved (the blocks', the
    carried tensors' and the format §5.5 parts' alike); unknown tensors are dropped."""
    cfg = hf.cfg
    rows = {"wq": interleaved_rows(cfg.n_heads, cfg.head_size), "wk": interleaved_rows(cfg.n_kv_heads, cfg.head_size)}

    def order(name: str):
        return rows.get(name.rsplit(".", 1)[-1])

    out_c, out_t, out_e = {}, {}, {}
    for name, enc in compressed.items():
        if (new := llama2c_name(name)) is not None:
            idx = order(new)
            out_c[new] = enc if idx is None else EncodedTensor(enc.seeds[idx], enc.x[idx], enc.q[idx], enc.bias,
                                                               enc.preset, enc.shape)
    for name, t in carried.items():
        if (new := llama2c_name(name)) is not None:
            idx = order(new)
            out_t[new] = t if idx is None else t[idx]
    for name, ext in (extensions or {}).items():
        if (new := llama2c_name(name)) is not None:
            idx = order(new)
            out_e[new] = ext if idx is None else ext.take_rows(idx)
    return out_c, out_t, out_e
