"""Decode GEMV shapes: format §9 built-ins, HF config.json, .seedlm checkpoints."""
from __future__ import annotations

import json

import numpy as np
import pytest

from seedlm_fpga.core.reference import PRESETS
from seedlm_fpga.errors import UserError
from seedlm_fpga.sim.llama_shapes import (BUILTIN_MODELS, builtin_model, model_from_checkpoint, model_from_config,
                                          resolve_model)


def shapes(model):
    return {g.kind: (g.rows, g.cols, g.count, g.preset) for g in model.gemvs}


def test_llama3_70b_gqa_shapes_follow_spec9():
    m = builtin_model("llama-3-70b")
    assert shapes(m) == {
        "q": (8192, 8192, 80, None), "k": (1024, 8192, 80, None), "v": (1024, 8192, 80, None),
        "o": (8192, 8192, 80, None), "gate": (28672, 8192, 80, None), "up": (28672, 8192, 80, None),
        "down": (8192, 28672, 80, None), "lm_head": (128256, 8192, 1, "fp16")}
    assert m.layers == 80


@pytest.mark.parametrize("key, params", [
    # parameter counts published with the Hugging Face checkpoints
    ("llama-2-7b", 6_738_415_616),
    ("llama-2-13b", 13_015_864_320),
    ("llama-2-70b", 68_976_648_192),
    ("llama-3-8b", 8_030_261_248),
    ("llama-3-70b", 70_553_706_496),
    ("tinyllama-1.1b", 1_100_048_384),
    ("llama-3.2-1b", 1_235_814_400),
    ("llama-3.2-3b", 3_212_749_824),
    # llama2.c's stories models: dims from its README, the classifier shares the embedding table
    ("stories15m", 15_191_712),
    ("stories110m", 109_529_856),
])
def test_builtin_parameter_counts_match_published_checkpoints(key, params):
    assert builtin_model(key).params == params


def test_builtin_names_are_forgiving_and_unknown_ones_are_named():
    assert builtin_model("Llama 3 8B").name == "Llama 3 8B"
    assert set(BUILTIN_MODELS) == {"llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3-8b", "llama-3-70b",
                                   "stories15m", "stories42m", "stories110m", "tinyllama-1.1b", "llama-3.2-1b",
                                   "llama-3.2-3b"}
    with pytest.raises(UserError) as exc:
        builtin_model("llama-4")
    assert str(exc.value) == ("unknown model 'llama-4' (choose from stories15m, stories42m, stories110m, "
                              "tinyllama-1.1b, llama-3.2-1b, llama-3.2-3b, llama-2-7b, llama-2-13b, llama-2-70b, "
                              "llama-3-8b, llama-3-70b)")


def _config(tmp_path, **fields):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(fields))
    return path


LLAMA3_8B_CONFIG = dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                        num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=False,
                        _name_or_path="meta-llama/Meta-Llama-3-8B")


def test_config_json_gives_the_builtin_shapes(tmp_path):
    m = model_from_config(_config(tmp_path, **LLAMA3_8B_CONFIG))
    assert shapes(m) == shapes(builtin_model("llama-3-8b"))
    assert m.params == 8_030_261_248
    assert m.name == "meta-llama/Meta-Llama-3-8B"


def test_config_json_defaults_and_tied_embeddings(tmp_path):
    # Llama 3.2 1B: explicit head_dim, tied embeddings (the lm_head is the embedding table)
    cfg = dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
               num_key_value_heads=8, head_dim=64, vocab_size=128256, tie_word_embeddings=True)
    m = model_from_config(_config(tmp_path, **cfg))
    assert shapes(m)["k"] == (512, 2048, 16, None)
    assert m.params == 1_235_814_400  # published count of Llama-3.2-1B
    # no num_key_value_heads: multi-head attention
    del cfg["num_key_value_heads"], cfg["head_dim"]
    m = model_from_config(_config(tmp_path, **cfg))
    assert shapes(m)["k"] == (2048, 2048, 16, None)


def test_config_json_nested_text_config(tmp_path):
    m = model_from_config(_config(tmp_path, architectures=["X"], text_config=LLAMA3_8B_CONFIG))
    assert shapes(m) == shapes(builtin_model("llama-3-8b"))


@pytest.mark.parametrize("change, message", [
    ({"hidden_size": None}, "config has no 'hidden_size'"),
    ({"num_hidden_layers": 0}, "'num_hidden_layers' must be a positive integer up to 16,777,216, got 0"),
    ({"vocab_size": "big"}, "'vocab_size' must be a positive integer up to 16,777,216, got 'big'"),
    ({"num_key_value_heads": 5}, "num_attention_heads (32) is not a multiple of num_key_value_heads (5)"),
])
def test_config_json_errors_name_the_field(tmp_path, change, message):
    cfg = {**LLAMA3_8B_CONFIG, **change}
    cfg = {k: v for k, v in cfg.items() if v is not None}
    path = _config(tmp_path, **cfg)
    with pytest.raises(UserError) as exc:
        model_from_config(path)
    assert str(exc.value) == f"{path}: {message}"


def test_config_json_unreadable(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match=r"config.json: not valid JSON"):
        model_from_config(bad)
    with pytest.raises(UserError, match=r"missing.json: no such file"):
        model_from_config(tmp_path / "missing.json")


# --- .seedlm checkpoints ----------------------------------------------------------------------

def _encoded(rows, cols, preset, rng):
    from seedlm_fpga.core.reference import EncodedTensor
    p = PRESETS[preset]
    nb = -(-cols // p.C)
    return EncodedTensor(seeds=rng.integers(1, 1 << 16, (rows, nb)).astype(np.uint16),
                         x=rng.integers(0, 16, (rows, nb)).astype(np.uint8),
                         q=rng.integers(-8, 8, (rows, nb, p.P)).astype(np.int8),
                         bias=-10, preset=p, shape=(rows, cols))


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A 2-layer Llama (hidden 64, GQA kv 32, I 172, vocab 512) as the compressor writes it:
    layer 0 in seedlm-4, layer 1 in seedlm-3, its down_proj kept at 16 bits, tied lm_head."""
    from seedlm_fpga.compressor.container import write_container
    rng = np.random.default_rng(0)
    h, kv, inter = 64, 32, 172
    dims = {"q_proj": (h, h), "k_proj": (kv, h), "v_proj": (kv, h), "o_proj": (h, h),
            "gate_proj": (inter, h), "up_proj": (inter, h), "down_proj": (h, inter)}
    compressed, carried = {}, {}
    for layer, preset in ((0, "seedlm-4"), (1, "seedlm-3")):
        for name, (r, c) in dims.items():
            group = "mlp" if name in ("gate_proj", "up_proj", "down_proj") else "self_attn"
            key = f"model.layers.{layer}.{group}.{name}.weight"
            if layer == 1 and name == "down_proj":
                carried[key] = np.zeros((r, c), np.float32)
            else:
                compressed[key] = _encoded(r, c, preset, rng)
        carried[f"model.layers.{layer}.input_layernorm.weight"] = np.ones(h, np.float32)
    carried["model.embed_tokens.weight"] = np.zeros((512, h), np.float32)
    carried["model.norm.weight"] = np.ones(h, np.float32)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.seedlm"
    write_container(path, compressed, carried)
    return path


def test_checkpoint_shapes_and_presets(tiny_checkpoint):
    m = model_from_checkpoint(tiny_checkpoint)
    got = sorted((g.kind, g.rows, g.cols, g.count, g.preset) for g in m.gemvs)
    expected = []
    for preset in ("seedlm-4", "seedlm-3"):
        expected += [("q", 64, 64, 1, preset), ("k", 32, 64, 1, preset), ("v", 32, 64, 1, preset),
                     ("o", 64, 64, 1, preset), ("gate", 172, 64, 1, preset), ("up", 172, 64, 1, preset)]
    expected += [("down", 64, 172, 1, "seedlm-4"), ("down", 64, 172, 1, "fp16"), ("lm_head", 512, 64, 1, "fp16")]
    assert got == sorted(expected)
    assert m.layers == 2
    # stored only: two layer norms + final norm (the tied embedding is the lm_head)
    assert m.stored_params == 3 * 64
    assert m.name == "tiny"
    assert resolve_model(str(tiny_checkpoint)).gemvs == m.gemvs


def test_checkpoint_errors(tmp_path):
    from safetensors.numpy import save_file
    with pytest.raises(UserError) as exc:
        model_from_checkpoint(tmp_path / "none.seedlm")
    assert str(exc.value) == f"{tmp_path / 'none.seedlm'}: no such file"
    plain = tmp_path / "plain.seedlm"
    save_file({"w": np.zeros((2, 2), np.float32)}, str(plain))
    with pytest.raises(UserError) as exc:
        model_from_checkpoint(plain)
    assert str(exc.value) == f"{plain}: not a .seedlm file (metadata format is None, expected 'seedlm')"
    junk = tmp_path / "junk.seedlm"
    junk.write_bytes(b"\x00" * 5)
    with pytest.raises(UserError, match="not a valid .seedlm file"):
        model_from_checkpoint(junk)
    # the header is validated like any .seedlm read (it once skipped the version check)
    future = tmp_path / "future.seedlm"
    save_file({"w": np.zeros((2, 2), np.float32)}, str(future), metadata={"format": "seedlm", "format_version": "3"})
    with pytest.raises(UserError, match="unsupported .seedlm format_version '3'"):
        model_from_checkpoint(future)


def test_kv_width_and_context_are_gqa_aware():
    m = builtin_model("llama-3-70b")
    assert (m.kv_dim, m.q_dim, m.hidden, m.max_context) == (8 * 128, 64 * 128, 8192, 8192)
    assert builtin_model("tinyllama-1.1b").kv_dim == 4 * 64
    assert builtin_model("llama-2-7b").kv_dim == 32 * 128
