"""A torch forward pass of llama2.c models, with an option to run layers as the FPGA does.

The architecture is llama2.c's (``run.c`` / ``model.py``): RMSNorm (eps 1e-5), RoPE on
interleaved pairs of each head (theta 10000), grouped-query attention, SwiGLU FFN
``w2(silu(w1 x) * w3 x)``, classifier shared with the embedding unless an ``output``
tensor is given. Weights come as a state dict with `compressor.llama2c` names.

Each linear layer is a `Linear`: float (``x @ W.T``, W possibly decoded from SeedLM) or
`IntegerSeedLMLinear`, the exact integer GEMV of format §6 that the FPGA engine computes:

- the activation vector of each token is quantized to int8 with one scale per vector,
  ``s_a = max|x| / 127``, ``a = clip(round_half_even(x / s_a), -127, 127)`` (symmetric, so
  -128 is never used; an all-zero vector gets ``s_a = 1``);
- ``Y[r] = sum_j (d_j << x_j)``, ``d_j = sum_c acc[r, j, c] * a[j*C + c]``, exact integers:
  the shifts are folded into an integer matrix ``acc << x`` once per layer, and the product
  runs in float64 over column chunks short enough that every partial sum is an integer
  below 2^53 (exact whatever the order), the chunks summed in int64;
- ``y = Y * s_a * 2^b / (2^(K-1) - 1)``, the one real multiply per output, in float64.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from seedlm_fpga.compressor.llama2c import Llama2cConfig
from seedlm_fpga.core.reference import Preset, blocks_per_row, block_acc
from seedlm_fpga.core.extensions import extension_int_matrix

RMS_EPS = 1e-5
ROPE_THETA = 10000.0
ACT_QMAX = 127  # int8 activations, symmetric


class Linear:
    """y = x @ W.T with a float weight W[out, in]."""

    def __init__(self, weight, dtype=torch.float32):
        self.weight = torch.as_tensor(np.asarray(weight), dtype=dtype)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.weight.shape)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight.T


def quantize_activations(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """int8 codes (as int64) and one scale per vector (last axis): s_a = max|x| / 127."""
    xd = x.to(torch.float64)
    amax = xd.abs().amax(dim=-1, keepdim=True)
    scale = torch.where(amax > 0, amax / ACT_QMAX, torch.ones_like(amax))
    a = torch.clamp(torch.round(xd / scale), -ACT_QMAX, ACT_QMAX)  # torch.round: half to even
    return a.to(torch.int64), scale


class IntegerSeedLMLinear:
    """The exact integer GEMV of format §6 for every activation vector (the FPGA's numerics)."""

    def __init__(self, seeds, x, q, bias: int, preset: Preset, cols: int, ext=None):
        """`ext`: the tensor's outliers/low-rank parts (core.extensions, format §6.2), or None."""
        seeds = np.asarray(seeds)
        self.rows, self.nb = seeds.shape
        self.cols, self.preset, self.bias = cols, preset, int(bias)
        if self.nb != blocks_per_row(cols, preset.C):
            raise ValueError(f"{self.nb} blocks per row do not cover {cols} columns at C={preset.C}")
        # |acc| < 2^20, |a| <= 127, x <= 15: |Y| < nb*C * 2^20 * 2^7 * 2^15 must fit int64.
        if self.nb * preset.C >= 1 << 20:
            raise ValueError(f"rows of {cols} columns overflow the int64 accumulator")
        # Y = sum_j (d_j << x_j) = sum_j sum_c (acc[r, j, c] << x_j) * a[j*C + c]: fold the
        # shifts into one integer matrix, once per layer, and the GEMV is a single product.
        acc = block_acc(seeds, q, preset)  # [rows, nb, C] int64, |acc| < 2^20
        w_int = (acc << np.asarray(x, dtype=np.int64)[..., None]).reshape(self.rows, -1)[:, :cols]
        if ext:
            w_int = w_int + extension_int_matrix(ext, (self.rows, cols))
        self.max_w = int(np.abs(w_int).max()) if w_int.size else 0
        if self.max_w >= 1 << 45:  # each product with |a| < 2^8 must stay exact in float64
            raise ValueError(f"integer weights up to {self.max_w} are too wide for the float64 GEMV")
        self.w_int = torch.from_numpy(np.ascontiguousarray(w_int.T)).to(torch.float64)  # [cols, rows]

    @property
    def shape(self) -> tuple[int, int]:
        return self.rows, self.cols

    def integer_gemv(self, a: torch.Tensor) -> torch.Tensor:
        """Y[n, rows] (int64) for integer activations a[n, cols]: exactly format §6.

        Products and partial sums are integers; over a chunk of k columns they stay below
        k * max|acc << x| * max|a|, and while that is under 2^53 float64 (BLAS) holds every
        one of them exactly, whatever the summation order. Chunks are summed in int64.
        """
        a = a.to(torch.int64)
        amax = int(a.abs().max()) if a.numel() else 0
        k = max(1, ((1 << 53) - 1) // max(1, self.max_w * amax))
        af = a.to(torch.float64)
        Y = torch.zeros((a.shape[0], self.rows), dtype=torch.int64)
        for start in range(0, a.shape[1], k):
            Y += (af[:, start:start + k] @ self.w_int[start:start + k]).to(torch.int64)
        return Y

    def real_outputs(self, Y: torch.Tensor, s_a: torch.Tensor) -> torch.Tensor:
        """y = Y * s_a * 2^b / (2^(K-1) - 1) in float64, Y[n, rows] with s_a[n, 1]."""
        return Y.to(torch.float64) * s_a * (2.0 ** self.bias / self.preset.s_scale)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        a, s_a = quantize_activations(x.reshape(-1, x.shape[-1]))
        y = self.real_outputs(self.integer_gemv(a), s_a)
        return y.to(x.dtype).reshape(*lead, self.rows)


def rope_tables(cfg: Llama2cConfig, theta: float = ROPE_THETA) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin[seq_len, head_size/2] of llama2.c's RoPE (theta 10000 unless given)."""
    hs = cfg.head_size
    freqs = 1.0 / theta ** (torch.arange(0, hs, 2, dtype=torch.float64) / hs)
    angles = torch.outer(torch.arange(cfg.seq_len, dtype=torch.float64), freqs)
    return torch.cos(angles).float(), torch.sin(angles).float()


def rms_norm(x: torch.Tensor, w: torch.Tensor, eps: float = RMS_EPS) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate interleaved pairs (x[2i], x[2i+1]) of each head; x[B, T, H, hs]."""
    xr, xi = x[..., 0::2], x[..., 1::2]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    return torch.stack((xr * c - xi * s, xr * s + xi * c), dim=-1).flatten(-2)


LINEAR_NAMES = ("wq", "wk", "wv", "wo", "w1", "w2", "w3")


class Transformer:
    """llama2.c forward pass over a batch of token sequences (no KV cache: whole sequences)."""

    def __init__(self, cfg: Llama2cConfig, tensors: dict[str, torch.Tensor], linears: dict[str, object]):
        self.cfg, self.t, self.linears = cfg, tensors, linears

    @classmethod
    def from_state_dict(cls, cfg: Llama2cConfig, tensors: dict[str, np.ndarray],
                        linears: dict[str, object] | None = None) -> "Transformer":
        """Build from float32 arrays named as `read_llama2c` names them.

        `linears` overrides layers by name (e.g. ``{"layers.0.wq": IntegerSeedLMLinear(...)}``);
        ``"output"`` there (or in `tensors`) replaces the shared classifier.
        """
        t = {k: torch.as_tensor(np.asarray(v, dtype=np.float32)) for k, v in tensors.items()}
        if "freq_cos" not in t:
            t["freq_cos"], t["freq_sin"] = rope_tables(cfg)
        missing = [n for n in ["tok_embeddings", "norm"] + [f"layers.{i}.{k}" for i in range(cfg.n_layers)
                               for k in ("attention_norm", "ffn_norm") + LINEAR_NAMES]
                   if n not in t and n not in (linears or {})]
        if missing:
            raise ValueError(f"state dict lacks {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}")
        lin: dict[str, object] = {}
        for name in [f"layers.{i}.{k}" for i in range(cfg.n_layers) for k in LINEAR_NAMES] + ["output"]:
            if linears and name in linears:
                lin[name] = linears[name]
            elif name in t:
                lin[name] = Linear(t[name])
        if "output" not in lin:
            lin["output"] = Linear(t["tok_embeddings"])
        return cls(cfg, t, lin)

    @torch.no_grad()
    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits[B, T, vocab] for tokens[B, T] (causal; padding at the end never leaks back)."""
        cfg, t, lin = self.cfg, self.t, self.linears
        B, T = tokens.shape
        if T > cfg.seq_len:
            raise ValueError(f"{T} tokens exceed the model's seq_len {cfg.seq_len}")
        H, KV, hs = cfg.n_heads, cfg.n_kv_heads, cfg.head_size
        cos, sin = t["freq_cos"][:T], t["freq_sin"][:T]
        h = t["tok_embeddings"][tokens]
        for i in range(cfg.n_layers):
            p = f"layers.{i}."
            xb = rms_norm(h, t[p + "attention_norm"])
            q = rope(lin[p + "wq"](xb).view(B, T, H, hs), cos, sin)
            k = rope(lin[p + "wk"](xb).view(B, T, KV, hs), cos, sin)
            v = lin[p + "wv"](xb).view(B, T, KV, hs)
            k = k.repeat_interleave(H // KV, dim=2)  # query head j reads kv head j // (H/KV)
            v = v.repeat_interleave(H // KV, dim=2)
            att = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                                 is_causal=True)
            h = h + lin[p + "wo"](att.transpose(1, 2).reshape(B, T, H * hs))
            xb = rms_norm(h, t[p + "ffn_norm"])
            h = h + lin[p + "w2"](F.silu(lin[p + "w1"](xb)) * lin[p + "w3"](xb))
        return lin["output"](rms_norm(h, t["norm"]))

    def generate(self, prompt: list[int], steps: int, stop: int | None = 1) -> list[int]:
        """Greedy continuation (argmax) of `prompt`; stops early at token `stop` (BOS, like run.c)."""
        ids = list(prompt)
        for _ in range(steps):
            if len(ids) >= self.cfg.seq_len:
                break
            nxt = int(self(torch.tensor([ids]))[0, -1].argmax())
            if nxt == stop:
                break
            ids.append(nxt)
        return ids


def story_batches(stories: list[np.ndarray], max_tokens: int, bos: int, batch: int):
    """Yield (tokens[B, T], mask[B, T-1]) per batch: BOS + story, cut at `max_tokens`,
    zero-padded at the end; mask marks the predicted positions that are real."""
    for start in range(0, len(stories), batch):
        seqs = [np.concatenate([[bos], s])[:max_tokens] for s in stories[start:start + batch]]
        T = max(len(s) for s in seqs)
        tokens = torch.zeros((len(seqs), T), dtype=torch.long)
        mask = torch.zeros((len(seqs), T - 1), dtype=torch.bool)
        for b, s in enumerate(seqs):
            tokens[b, :len(s)] = torch.from_numpy(s.astype(np.int64))
            mask[b, :len(s) - 1] = True
        yield tokens, mask


#: Below this width one torch thread is faster (measured 4-10x on a loaded 2-core machine
#: for stories260K): the matrices are too small to split.
SINGLE_THREAD_DIM = 512


@torch.no_grad()
def perplexity(model: Transformer, stories: list[np.ndarray], bos: int = 1, batch: int = 4,
               progress=None) -> tuple[float, int]:
    """(perplexity, predicted tokens): one pass per story, BOS + story (at most seq_len tokens),
    every position after BOS predicted; exp of the mean negative log-likelihood."""
    nll, count = 0.0, 0
    bar = progress(total=len(stories)) if progress else None
    threads = torch.get_num_threads()
    if model.cfg.dim < SINGLE_THREAD_DIM:
        torch.set_num_threads(1)
    try:
        for tokens, mask in story_batches(stories, model.cfg.seq_len, bos, batch):
            logp = torch.log_softmax(model(tokens).double(), dim=-1)[:, :-1]
            target = logp.gather(-1, tokens[:, 1:, None])[..., 0]
            nll -= float(target[mask].sum())
            count += int(mask.sum())
            if bar is not None:
                bar.update(len(tokens))
    finally:
        torch.set_num_threads(threads)
        if bar is not None:
            bar.close()
    return math.exp(nll / count) if count else float("nan"), count
