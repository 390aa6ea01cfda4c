"""Greedy token-by-token decoding with a KV cache; every compressed layer's GEMV goes to a backend.

The host side is `llama_model`'s (RMSNorm, interleaved RoPE, grouped-query attention, SwiGLU, the
classifier), run one position at a time: each step embeds one token, appends its keys and values to
the cache and attends over the cache, so the prefix is never recomputed. The compressed linear
layers do not run here: their activation vector is quantized as `evaluate`'s integer path does
(`quantize_activations`, int8 with one scale per vector) and handed to a `GemvBackend` as one
`GemvStart` per group of GEMVs that share it (a layer's q/k/v, its gate/up: `LAYER_STARTS`), the
unit a kernel of format §11 runs as one start with a descriptor list. The backend returns the
SeedLM kernel's integer Y (format §6) and the 16-bit baseline kernel's Y on the same activations
(format §7: the decoded SeedLM weights through `reference.to_int16`); the host scales the SeedLM Y
to real outputs (`IntegerSeedLMLinear.real_outputs`), so the text depends on the SeedLM Y only.

`NumpyBackend` is the integer reference (`IntegerSeedLMLinear.integer_gemv`, held bit-exact to
`reference.gemv_seedlm` by the tests, and `reference.gemv_baseline`); a hardware backend
(seedlm_fpga.sim.kernel_backend) has the same `run`/`close`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from seedlm_fpga.compressor.checkpoints import HF_CONFIG_INFO, LLAMA2C_CONFIG_INFO
from seedlm_fpga.compressor.container import EXTRA_PREFIX
from seedlm_fpga.compressor.llama2c import Llama2cConfig
from seedlm_fpga.core.extensions import Extensions, decode_extended, gemv_extensions
from seedlm_fpga.core.reference import EncodedTensor, gemv_baseline, to_int16
from seedlm_fpga.errors import UserError
from seedlm_fpga.evaluation.llama_model import (RMS_EPS, ROPE_THETA, SINGLE_THREAD_DIM, IntegerSeedLMLinear,
                                                quantize_activations, rms_norm, rope, rope_tables)
from seedlm_fpga.evaluation.tokenizer import BOS

#: The GEMVs of one layer that share an activation vector, in the order the layer runs them:
#: one kernel start each (format §11: q/k/v and gate/up are one start with a descriptor list).
LAYER_STARTS = (("wq", "wk", "wv"), ("wo",), ("w1", "w3"), ("w2",))
#: The container metadata a llama2.c checkpoint's .seedlm carries its configuration in.
LLAMA2C_CONFIG_KEY = EXTRA_PREFIX + LLAMA2C_CONFIG_INFO
HF_CONFIG_KEY = EXTRA_PREFIX + HF_CONFIG_INFO


@dataclass
class GemvStart:
    """GEMVs that share one int8 activation vector: one kernel start (format §11)."""

    names: tuple[str, ...]   # tensor names, in descriptor order
    rows: tuple[int, ...]    # rows of each GEMV
    cols: int
    acts: np.ndarray         # int64 [cols], |a| <= 127


@dataclass
class StartResult:
    """What the two kernels returned for one start; cycles are None where nothing was measured."""

    Y: list[np.ndarray]             # SeedLM kernel, int64 [rows] per GEMV
    baseline_Y: list[np.ndarray]    # 16-bit baseline kernel on the same activations
    cycles: int | None = None
    baseline_cycles: int | None = None


class GemvBackend(Protocol):
    name: str

    def run(self, start: GemvStart) -> StartResult: ...

    def close(self) -> None: ...


@dataclass
class DecodeModel:
    """A compressed Llama-architecture model: config, host tensors (float32) and compressed layers."""

    cfg: Llama2cConfig
    tensors: dict[str, torch.Tensor]       # embedding, norms, RoPE tables, uncompressed layers
    compressed: dict[str, EncodedTensor]   # the layers the kernels run (their GEMVs)
    rms_eps: float = RMS_EPS
    extensions: dict[str, Extensions] = field(default_factory=dict)  # format §5.5 parts of kernel layers
    _integer: dict[str, IntegerSeedLMLinear] = field(default_factory=dict, repr=False)
    _int16: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def integer_linear(self, name: str) -> IntegerSeedLMLinear:
        if name not in self._integer:
            e = self.compressed[name]
            self._integer[name] = IntegerSeedLMLinear(e.seeds, e.x, e.q, e.bias, e.preset, e.shape[1])
        return self._integer[name]

    def baseline_weights(self, name: str) -> np.ndarray:
        """The 16-bit baseline's weights of a layer: its decoded SeedLM weights as int16 (format §7)."""
        if name not in self._int16:
            self._int16[name] = to_int16(decode_extended(self.compressed[name], self.extensions.get(name)))
        return self._int16[name]

    @property
    def presets(self) -> list[str]:
        return sorted({e.preset.name for e in self.compressed.values()})


def load_decode_model(path: str | Path) -> DecodeModel:
    """A .seedlm file ready to decode: compressed from a llama2.c checkpoint (`seedlm-fpga compress
    model.bin`) or from a Hugging Face Llama folder with its config.json (seedlm_fpga.evaluation.hf_llama)."""
    from seedlm_fpga.compressor.container import read_container

    container = read_container(path)
    raw, hf_raw = container.extra.get(LLAMA2C_CONFIG_KEY), container.extra.get(HF_CONFIG_KEY)
    compressed, carried, extensions = container.compressed, container.carried, container.extensions
    eps, theta = RMS_EPS, ROPE_THETA
    if raw is not None:
        try:
            cfg = Llama2cConfig(**json.loads(raw))
        except (ValueError, TypeError) as exc:
            raise UserError(f"{path}: bad {LLAMA2C_CONFIG_KEY} metadata: {exc}") from None
    elif hf_raw is not None:
        from seedlm_fpga.evaluation.hf_llama import parse_config, to_llama2c
        hf = parse_config(hf_raw, str(path))
        cfg, eps, theta = hf.cfg, hf.rms_eps, hf.rope_theta
        compressed, carried, extensions = to_llama2c(hf, compressed, carried, extensions)
    else:
        raise UserError(f"{path}: no model configuration (metadata {LLAMA2C_CONFIG_KEY!r} or {HF_CONFIG_KEY!r}); "
                        f"run needs a .seedlm compressed from a llama2.c checkpoint or a Hugging Face Llama folder")
    linear = {f"layers.{i}.{k}" for i in range(cfg.n_layers) for g in LAYER_STARTS for k in g} | {"output"}
    tensors = {n: t.float() for n, t in carried.items()}
    on_kernel = {}
    for name, enc in compressed.items():
        if name in linear:
            on_kernel[name] = enc
        else:  # a compressed lookup table (the embedding): decoded once, used on the host
            tensors[name] = torch.from_numpy(decode_extended(enc, extensions.get(name)).astype(np.float32))
    missing = [n for n in ["tok_embeddings", "norm"] + [f"layers.{i}.{k}" for i in range(cfg.n_layers)
                                                        for k in ("attention_norm", "ffn_norm")]
               + sorted(linear - {"output"}) if n not in tensors and n not in on_kernel]
    if missing:
        raise UserError(f"{path}: lacks {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
    if "freq_cos" not in tensors:
        tensors["freq_cos"], tensors["freq_sin"] = rope_tables(cfg, theta)
    parts = {n: e for n, e in extensions.items() if n in on_kernel and e}
    return DecodeModel(cfg, tensors, on_kernel, rms_eps=eps, extensions=parts)


def extended_y(model: DecodeModel, name: str, y: np.ndarray, acts) -> np.ndarray:
    """Y of format §6.2: the blocks' Y plus the layer's parts (int64; the kernels' Y are 64-bit words)."""
    ext = model.extensions.get(name)
    if not ext:
        return y
    total = [int(a) + int(b) for a, b in zip(y, gemv_extensions(ext, model.compressed[name].shape, acts))]
    if any(not -(1 << 63) <= v < 1 << 63 for v in total):
        raise ValueError(f"{name}: Y with its outliers / low-rank part leaves 64 bits")
    return np.array(total, dtype=np.int64)


class NumpyBackend:
    """The integer reference: SeedLM Y by format §6 and the baseline's Y by format §7, no cycles."""

    name = "numpy"

    def __init__(self, model: DecodeModel):
        self.model = model

    def run(self, start: GemvStart) -> StartResult:
        a = torch.from_numpy(np.asarray(start.acts, dtype=np.int64))[None]
        Y = [extended_y(self.model, n, self.model.integer_linear(n).integer_gemv(a)[0].numpy(), start.acts)
             for n in start.names]
        base = [np.asarray(gemv_baseline(self.model.baseline_weights(n), start.acts), dtype=np.int64)
                for n in start.names]
        return StartResult(Y, base)

    def close(self) -> None:
        pass


@dataclass
class StepRecord:
    """One decode step: the token fed, and every kernel start it made, with the kernels' results."""

    token: int
    starts: list[tuple[GemvStart, StartResult]] = field(default_factory=list)

    @property
    def gemvs(self) -> int:
        return sum(len(s.names) for s, _ in self.starts)


class Decoder:
    """One sequence, one position per `step`, keys and values cached per layer."""

    def __init__(self, model: DecodeModel, backend: GemvBackend):
        self.model, self.backend, self.pos = model, backend, 0
        cfg = model.cfg
        self.k_cache = torch.zeros((cfg.n_layers, cfg.seq_len, cfg.n_kv_heads, cfg.head_size))
        self.v_cache = torch.zeros_like(self.k_cache)
        self.record: StepRecord | None = None

    def _linears(self, names: tuple[str, ...], x: torch.Tensor) -> list[torch.Tensor]:
        """Outputs of the layers `names` for x[dim]: compressed ones as one backend start, the rest here."""
        model = self.model
        out: dict[str, torch.Tensor] = {}
        on_kernel = tuple(n for n in names if n in model.compressed)
        if on_kernel:
            a, s_a = quantize_activations(x[None])
            start = GemvStart(on_kernel, tuple(model.compressed[n].shape[0] for n in on_kernel),
                              x.shape[-1], a[0].numpy())
            result = self.backend.run(start)
            self.record.starts.append((start, result))
            for n, Y in zip(on_kernel, result.Y):
                y = model.integer_linear(n).real_outputs(torch.from_numpy(np.asarray(Y, dtype=np.int64))[None], s_a)
                out[n] = y[0].to(x.dtype)
        for n in names:  # layers kept in float run on the host; the classifier may be the embedding
            if n not in out:
                out[n] = x @ model.tensors[n if n in model.tensors or n != "output" else "tok_embeddings"].T
        return [out[n] for n in names]

    @torch.no_grad()
    def step(self, token: int) -> torch.Tensor:
        """Logits[vocab] after feeding `token` at the next position."""
        cfg, t = self.model.cfg, self.model.tensors
        if self.pos >= cfg.seq_len:
            raise ValueError(f"the sequence is full: seq_len {cfg.seq_len}")
        H, KV, hs, pos, eps = cfg.n_heads, cfg.n_kv_heads, cfg.head_size, self.pos, self.model.rms_eps
        cos, sin = t["freq_cos"][pos:pos + 1], t["freq_sin"][pos:pos + 1]
        self.record = StepRecord(int(token))
        h = t["tok_embeddings"][int(token)]
        for i in range(cfg.n_layers):
            p = f"layers.{i}."
            q, k, v = self._linears((p + "wq", p + "wk", p + "wv"), rms_norm(h, t[p + "attention_norm"], eps))
            self.k_cache[i, pos] = rope(k.view(1, 1, KV, hs), cos, sin)[0, 0]
            self.v_cache[i, pos] = v.view(KV, hs)
            q = rope(q.view(1, 1, H, hs), cos, sin)[0].transpose(0, 1)          # [H, 1, hs]
            keys = self.k_cache[i, :pos + 1].repeat_interleave(H // KV, dim=1)  # head j reads kv head j // (H/KV)
            vals = self.v_cache[i, :pos + 1].repeat_interleave(H // KV, dim=1)
            att = F.scaled_dot_product_attention(q, keys.transpose(0, 1), vals.transpose(0, 1))
            (o,) = self._linears((p + "wo",), att.reshape(H * hs))
            h = h + o
            gate, up = self._linears((p + "w1", p + "w3"), rms_norm(h, t[p + "ffn_norm"], eps))
            (down,) = self._linears((p + "w2",), F.silu(gate) * up)
            h = h + down
        (logits,) = self._linears(("output",), rms_norm(h, t["norm"], eps))
        self.pos += 1
        return logits


def greedy_decode(model: DecodeModel, backend: GemvBackend, prompt: list[int], steps: int,
                  on_step: Callable[[StepRecord, int | None], None] | None = None,
                  stop: int | None = BOS) -> list[int]:
    """Greedy continuation of `prompt` (which starts with BOS): at most `steps` new ids, stopping at
    `stop` or a full context, like `Transformer.generate`. `on_step(record, new_id)` follows every
    step; new_id is None for the prompt's steps that only fill the cache (and for a step whose
    argmax is `stop`)."""
    if not prompt:
        raise ValueError("the prompt needs at least one token (BOS)")
    ids = list(prompt)
    decoder = Decoder(model, backend)
    threads = torch.get_num_threads()
    if model.cfg.dim < SINGLE_THREAD_DIM:
        torch.set_num_threads(1)
    try:
        for i in range(len(prompt) - 1):
            decoder.step(prompt[i])
            if on_step:
                on_step(decoder.record, None)
        for _ in range(steps):
            if len(ids) >= model.cfg.seq_len:
                break
            nxt = int(decoder.step(ids[-1]).argmax())
            done = nxt == stop
            if on_step:
                on_step(decoder.record, None if done else nxt)
            if done:
                break
            ids.append(nxt)
    finally:
        torch.set_num_threads(threads)
    return ids[len(prompt):]
