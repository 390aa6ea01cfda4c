"""The llama2.c forward pass (against a transcription of run.c and the data README's figures)
and the FPGA integer path (against reference.gemv_seedlm, bit for bit)."""
import numpy as np
import pytest
import torch

from seedlm_fpga.core import reference as ref
from seedlm_fpga.compressor.llama2c import read_llama2c
from seedlm_fpga.evaluation.llama_model import (IntegerSeedLMLinear, Transformer, perplexity,
                                                quantize_activations)
from seedlm_fpga.evaluation.tokenizer import Tokenizer, encode_stories

from example_data import example_file


@pytest.fixture(scope="module")
def model():
    cfg, tensors = read_llama2c(example_file("stories260K.bin"))
    return cfg, tensors, Transformer.from_state_dict(cfg, tensors)


@pytest.fixture(scope="module")
def tokenizer():
    return Tokenizer.load(example_file("tok512.bin"), 512)


def run_c_logits(cfg, w, tokens):
    """llama2.c run.c's forward, one position at a time with a KV cache, float64 numpy."""
    w = {k: v.astype(np.float64) for k, v in w.items()}
    hs, H, KV = cfg.head_size, cfg.n_heads, cfg.n_kv_heads
    rms = lambda x, g: g * x / np.sqrt(np.mean(x * x) + 1e-5)  # noqa: E731
    kc = np.zeros((cfg.n_layers, len(tokens), cfg.kv_dim))
    vc = np.zeros_like(kc)
    out = []
    for pos, token in enumerate(tokens):
        x = w["tok_embeddings"][token].copy()
        for i in range(cfg.n_layers):
            L = lambda n: w[f"layers.{i}.{n}"]  # noqa: E731
            xb = rms(x, L("attention_norm"))
            q, k, v = L("wq") @ xb, L("wk") @ xb, L("wv") @ xb
            for j in range(0, cfg.dim, 2):  # run.c: rotate pairs, frequency by j % head_size
                f = 1.0 / 10000.0 ** ((j % hs) / hs)
                c, s = np.cos(pos * f), np.sin(pos * f)
                for vec in (q, k) if j < cfg.kv_dim else (q,):
                    vec[j], vec[j + 1] = vec[j] * c - vec[j + 1] * s, vec[j] * s + vec[j + 1] * c
            kc[i, pos], vc[i, pos] = k, v
            att_out = np.zeros(cfg.dim)
            for h in range(H):
                kvh = h // (H // KV)
                qh = q[h * hs:(h + 1) * hs]
                scores = kc[i, :pos + 1, kvh * hs:(kvh + 1) * hs] @ qh / np.sqrt(hs)
                p = np.exp(scores - scores.max())
                p /= p.sum()
                att_out[h * hs:(h + 1) * hs] = p @ vc[i, :pos + 1, kvh * hs:(kvh + 1) * hs]
            x = x + L("wo") @ att_out
            xb = rms(x, L("ffn_norm"))
            h1 = L("w1") @ xb
            x = x + L("w2") @ (h1 / (1 + np.exp(-h1)) * (L("w3") @ xb))
        out.append(w["tok_embeddings"] @ rms(x, w["norm"]))
    return np.array(out)


def test_forward_matches_run_c_transcription(model, tokenizer):
    cfg, tensors, m = model
    tokens = [1] + tokenizer.encode("Once upon a time, a cat sat on a big red mat. The dog ran.")
    expected = run_c_logits(cfg, tensors, tokens)
    got = m(torch.tensor([tokens]))[0].double().numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-4 * np.abs(expected).max())


def test_padded_batches_equal_single_passes(model):
    cfg, tensors, m = model
    rng = np.random.default_rng(0)
    a, b = rng.integers(3, 512, 30), rng.integers(3, 512, 11)
    batch = torch.zeros((2, 30), dtype=torch.long)
    batch[0], batch[1, :11] = torch.from_numpy(a), torch.from_numpy(b)
    out = m(batch)
    torch.testing.assert_close(out[0], m(torch.from_numpy(a)[None])[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out[1, :11], m(torch.from_numpy(b)[None])[0], rtol=1e-5, atol=1e-5)


def test_greedy_generation_from_bos(model, tokenizer):
    """The data README: greedy decoding from BOS begins with this sentence."""
    _, _, m = model
    text = tokenizer.decode(m.generate([1], 16))
    assert text.startswith("Once upon a time, there was a little girl named Lily.")


def test_reference_perplexity_first_100_stories(model, tokenizer, tmp_path, monkeypatch):
    """The data README: 3.579 over 32,997 predicted tokens (fp32, one pass per story)."""
    monkeypatch.setenv("SEEDLM_FPGA_CACHE", str(tmp_path))
    _, _, m = model
    stories = encode_stories(example_file("tinystories_val.txt"), tokenizer, 100)
    ppl, count = perplexity(m, stories, batch=4)
    assert count == 32997
    assert ppl == pytest.approx(3.579, abs=0.005)


# --- the FPGA integer path ------------------------------------------------------------------------

def random_blocks(rng, rows, cols, preset):
    nb = ref.blocks_per_row(cols, preset.C)
    seeds = rng.integers(1, 1 << preset.K, (rows, nb)).astype(np.uint16)
    x = rng.integers(0, 16, (rows, nb)).astype(np.uint8)
    q = rng.integers(-8, 8, (rows, nb, preset.P)).astype(np.int8)
    return seeds, x, q


@pytest.mark.parametrize("preset_name, rows, cols", [("seedlm-4", 7, 64), ("seedlm-4", 5, 172),
                                                     ("seedlm-3", 6, 172), ("seedlm-3", 3, 12)])
def test_integer_gemv_equals_reference_bit_for_bit(preset_name, rows, cols):
    preset = ref.PRESETS[preset_name]
    rng = np.random.default_rng(cols + rows)
    seeds, x, q = random_blocks(rng, rows, cols, preset)
    layer = IntegerSeedLMLinear(seeds, x, q, -12, preset, cols)
    acts = rng.integers(-127, 128, (9, cols))
    acts[0] = 127  # extremes of the int8 range
    acts[1] = -127
    Y = layer.integer_gemv(torch.from_numpy(acts)).numpy()
    for a, y in zip(acts, Y):
        assert np.array_equal(y, ref.gemv_seedlm(seeds, x, q, a, preset).astype(np.int64))
    # int16 activations: partial sums pass 2^53 unless the product is split into column chunks
    x[:] = 15
    layer = IntegerSeedLMLinear(seeds, x, q, -12, preset, cols)
    acts = rng.integers(-32768, 32768, (3, cols))
    Y = layer.integer_gemv(torch.from_numpy(acts)).numpy()
    for a, y in zip(acts, Y):
        assert np.array_equal(y, ref.gemv_seedlm(seeds, x, q, a, preset).astype(np.int64))


def test_integer_layer_on_real_activations(model):
    """A real layer (w1 of layer 0, 172 x 64) with real activations: Y bit-exact against the
    reference, and y = Y * s_a * 2^b / (2^15 - 1) close to the float product W_hat x."""
    cfg, tensors, _ = model
    preset = ref.PRESETS["seedlm-4"]
    w = tensors["layers.0.w1"].astype(np.float64)
    seeds = np.full((w.shape[0], w.shape[1] // preset.C), 1, dtype=np.uint16)
    U = ref.basis_S(seeds[:1, :1], preset.C, preset.P, preset.K, preset.taps)[0, 0] / preset.s_scale
    t = w.reshape(w.shape[0], -1, preset.C) @ np.linalg.pinv(U).T  # least squares, one fixed seed
    x, q = ref.quantize(t, -12)
    layer = IntegerSeedLMLinear(seeds, x, q, -12, preset, w.shape[1])
    emb = torch.from_numpy(tensors["tok_embeddings"][[1, 40, 300, 411]])
    a, s_a = quantize_activations(emb)
    Y = layer.integer_gemv(a)
    for ai, yi in zip(a.numpy(), Y.numpy()):
        assert np.array_equal(yi, ref.gemv_seedlm(seeds, x, q, ai, preset))
    y = layer(emb).double()
    w_hat = torch.from_numpy(ref.decode_tensor(seeds, x, q, -12, preset, w.shape[1]))
    expected = emb.double() @ w_hat.T
    torch.testing.assert_close(y, Y.double() * s_a * 2.0 ** -12 / preset.s_scale, rtol=1e-6, atol=0)
    assert float((y - expected).norm() / expected.norm()) < 0.02  # int8 activation rounding only


def test_activation_quantization():
    x = torch.tensor([[0.5, -1.0, 0.25, 0.0], [0.0, 0.0, 0.0, 0.0], [3.0, -2.9, 1.5, 0.0118]])
    a, s = quantize_activations(x)
    assert a.dtype == torch.int64
    assert a.tolist() == [[64, -127, 32, 0], [0, 0, 0, 0], [127, -123, 64, 0]]  # 63.5 -> 64 (half even)
    assert s[:, 0].tolist() == pytest.approx([1 / 127, 1.0, 3 / 127])
