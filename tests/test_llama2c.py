"""llama2.c checkpoint reader: synthetic v0 / v1 files written here from the documented layout,
and the real stories260K."""
from __future__ import annotations

import struct

import numpy as np
import pytest

from seedlm_fpga.compressor.llama2c import is_llama2c, read_llama2c, read_llama2c_config
from seedlm_fpga.errors import UserError
from example_data import example_file

DIM, HIDDEN, LAYERS, HEADS, KV_HEADS, VOCAB, SEQ = 16, 24, 2, 4, 2, 11, 6
KV = KV_HEADS * (DIM // HEADS)


def _weights(rng, shared: bool, freqs: bool) -> dict[str, np.ndarray]:
    """Named arrays; the per-layer stacks are what llama2.c stores (e.g. wq [L, d, d])."""
    shapes = {"tok_embeddings": (VOCAB, DIM), "attention_norm": (LAYERS, DIM), "wq": (LAYERS, DIM, DIM),
              "wk": (LAYERS, KV, DIM), "wv": (LAYERS, KV, DIM), "wo": (LAYERS, DIM, DIM),
              "ffn_norm": (LAYERS, DIM), "w1": (LAYERS, HIDDEN, DIM), "w2": (LAYERS, DIM, HIDDEN),
              "w3": (LAYERS, HIDDEN, DIM), "norm": (DIM,)}
    if freqs:
        shapes |= {"freq_cos": (SEQ, DIM // HEADS // 2), "freq_sin": (SEQ, DIM // HEADS // 2)}
    if not shared:
        shapes["output"] = (VOCAB, DIM)
    return {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}


def _write_v0(path, w, shared: bool):
    order = ["tok_embeddings", "attention_norm", "wq", "wk", "wv", "wo", "ffn_norm", "w1", "w2", "w3", "norm",
             "freq_cos", "freq_sin"] + ([] if shared else ["output"])
    vocab = VOCAB if shared else -VOCAB
    with open(path, "wb") as f:
        f.write(struct.pack("<7i", DIM, HIDDEN, LAYERS, HEADS, KV_HEADS, vocab, SEQ))
        for k in order:
            f.write(w[k].astype("<f4").tobytes())


def _write_v1(path, w, shared: bool):
    order = ["attention_norm", "ffn_norm", "norm", "tok_embeddings", "wq", "wk", "wv", "wo", "w1", "w2", "w3"] + (
        [] if shared else ["output"])
    header = struct.pack("<Ii", 0x616B3432, 1) + struct.pack("<7i", DIM, HIDDEN, LAYERS, HEADS, KV_HEADS, VOCAB, SEQ)
    header += struct.pack("B", int(shared))
    with open(path, "wb") as f:
        f.write(header + bytes(256 - len(header)))
        for k in order:
            f.write(w[k].astype("<f4").tobytes())


def _expected(w) -> dict[str, np.ndarray]:
    out = {}
    for k, a in w.items():
        if a.shape[:1] == (LAYERS,) and k not in ("tok_embeddings", "output", "norm", "freq_cos", "freq_sin"):
            out |= {f"layers.{i}.{k}": a[i] for i in range(LAYERS)}
        else:
            out[k] = a
    return out


@pytest.mark.parametrize("version", [0, 1])
@pytest.mark.parametrize("shared", [True, False])
def test_synthetic_round_trip(tmp_path, version, shared):
    w = _weights(np.random.default_rng(version * 2 + shared), shared, freqs=version == 0)
    path = tmp_path / "model.bin"
    (_write_v0 if version == 0 else _write_v1)(path, w, shared)
    cfg, tensors = read_llama2c(path)
    assert (cfg.dim, cfg.hidden_dim, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, cfg.vocab_size, cfg.seq_len) == (
        DIM, HIDDEN, LAYERS, HEADS, KV_HEADS, VOCAB, SEQ)
    assert cfg.version == version and cfg.shared_classifier == shared
    want = _expected(w)
    assert set(tensors) == set(want)
    for name, a in want.items():
        assert tensors[name].dtype == np.float32
        np.testing.assert_array_equal(tensors[name], a, err_msg=name)
    assert is_llama2c(path)


def test_size_mismatch_and_garbage(tmp_path):
    w = _weights(np.random.default_rng(0), True, freqs=True)
    path = tmp_path / "model.bin"
    _write_v0(path, w, True)
    expected = path.stat().st_size
    with open(path, "ab") as f:
        f.write(b"\0\0\0\0")
    with pytest.raises(UserError) as exc:
        read_llama2c_config(path)
    assert str(exc.value) == f"{path}: llama2.c v0 header implies {expected} bytes, file has {expected + 4}"
    assert not is_llama2c(path)
    path.write_bytes(b"\xff" * 64)
    assert not is_llama2c(path)
    path.write_bytes(struct.pack("<Ii", 0x616B3432, 2) + bytes(248))
    with pytest.raises(UserError) as exc:
        read_llama2c_config(path)
    assert str(exc.value) == f"{path}: llama2.c checkpoint version 2 is not supported (only v0 and v1 fp32)"


def test_stories260k():
    path = example_file("stories260K.bin")
    cfg, tensors = read_llama2c(path)
    # Header and parameter count from examples/README.md.
    assert (cfg.dim, cfg.hidden_dim, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, cfg.vocab_size, cfg.seq_len) == (
        64, 172, 5, 8, 4, 512, 512)
    assert cfg.shared_classifier and cfg.version == 0 and "output" not in tensors
    params = sum(a.size for k, a in tensors.items() if not k.startswith("freq_"))
    assert params == 260_032
    assert tensors["layers.0.wk"].shape == (32, 64) and tensors["layers.4.w2"].shape == (64, 172)
    # RoPE tables: freq_cos[pos, i] = cos(pos * 10000^(-2i / head_size)).
    pos, i = np.meshgrid(np.arange(512), np.arange(4), indexing="ij")
    np.testing.assert_allclose(tensors["freq_cos"], np.cos(pos * 10000.0 ** (-2 * i / 8)), atol=1e-5)
