"""Checkpoint readers (detected by content) and the default choice of tensors to compress."""
from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors.torch import save_file

from seedlm_fpga.compressor.checkpoints import load_checkpoint, select_tensors
from seedlm_fpga.errors import UserError
from example_data import example_file



def _state_dict():
    g = torch.Generator().manual_seed(0)
    return {"model.embed_tokens.weight": torch.randn(20, 16, generator=g),
            "model.layers.0.self_attn.q_proj.weight": torch.randn(16, 16, generator=g).to(torch.bfloat16),
            "model.layers.0.mlp.down_proj.weight": torch.randn(16, 24, generator=g).to(torch.float16),
            "model.layers.0.input_layernorm.weight": torch.ones(16),
            "model.layers.0.narrow.weight": torch.randn(16, 4, generator=g),
            "model.layers.0.counts": torch.arange(32, dtype=torch.int64).reshape(4, 8),
            "lm_head.weight": torch.randn(20, 16, generator=g)}


def _assert_same(got: dict, want: dict):
    assert set(got) == set(want)
    for name, t in want.items():
        assert got[name].dtype == t.dtype, name
        assert torch.equal(got[name], t), name


def test_safetensors_file_keeps_dtypes(tmp_path):
    sd = _state_dict()
    save_file(sd, tmp_path / "m.safetensors")
    ckpt = load_checkpoint(tmp_path / "m.safetensors")
    assert ckpt.kind == "safetensors"
    _assert_same(ckpt.tensors, sd)


def test_detection_is_by_content_not_extension(tmp_path):
    sd = _state_dict()
    save_file(sd, tmp_path / "weights.bin")
    torch.save(sd, tmp_path / "weights.safetensors")
    assert load_checkpoint(tmp_path / "weights.bin").kind == "safetensors"
    ckpt = load_checkpoint(tmp_path / "weights.safetensors")
    assert ckpt.kind == "torch"
    _assert_same(ckpt.tensors, sd)


def test_torch_training_checkpoint_is_unwrapped(tmp_path):
    sd = _state_dict()
    torch.save({"state_dict": sd, "epoch": 3}, tmp_path / "ckpt.pt")
    _assert_same(load_checkpoint(tmp_path / "ckpt.pt").tensors, sd)
    torch.save({"encoder": {"w": sd["lm_head.weight"]}, "step": 5}, tmp_path / "bad.pt")
    with pytest.raises(UserError) as exc:
        load_checkpoint(tmp_path / "bad.pt")
    assert str(exc.value) == f"{tmp_path / 'bad.pt'}: entry 'step' is a int, not a tensor (expected a state dict)"


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo pwned > pwned.txt",))


def test_torch_load_runs_no_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"w": torch.zeros(2), "evil": _Payload()}, tmp_path / "evil.pt")
    with pytest.raises(UserError) as exc:
        load_checkpoint(tmp_path / "evil.pt")
    assert str(exc.value) == (f"{tmp_path / 'evil.pt'}: not a loadable torch state dict "
                              f"(UnpicklingError under weights_only=True)")
    assert not (tmp_path / "pwned.txt").exists()


def test_hugging_face_folder_with_shards(tmp_path):
    sd = _state_dict()
    names = list(sd)
    shards = {"model-00001-of-00002.safetensors": names[:3], "model-00002-of-00002.safetensors": names[3:]}
    for shard, keys in shards.items():
        save_file({k: sd[k] for k in keys}, tmp_path / shard)
    index = {"metadata": {}, "weight_map": {k: s for s, keys in shards.items() for k in keys}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    (tmp_path / "config.json").write_text('{"model_type": "llama"}')
    ckpt = load_checkpoint(tmp_path)
    assert ckpt.kind == "hf-folder" and list(ckpt.tensors) == names
    assert json.loads(ckpt.info["hf_config"]) == {"model_type": "llama"}
    _assert_same(ckpt.tensors, sd)
    (tmp_path / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(UserError) as exc:
        load_checkpoint(tmp_path)
    assert str(exc.value) == (f"{tmp_path / 'model.safetensors.index.json'}: shard "
                              f"model-00002-of-00002.safetensors is missing")


def test_hugging_face_folder_single_file_and_empty(tmp_path):
    sd = _state_dict()
    save_file(sd, tmp_path / "model.safetensors")
    _assert_same(load_checkpoint(tmp_path).tensors, sd)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError) as exc:
        load_checkpoint(empty)
    assert str(exc.value) == (f"{empty}: not a model folder (no model.safetensors.index.json, "
                              f"model.safetensors or pytorch_model.bin)")


@pytest.mark.parametrize("content", [b"", b"hello world, not weights" * 10, bytes(range(1, 200))])
def test_not_a_checkpoint(tmp_path, content):
    path = tmp_path / "x.bin"
    path.write_bytes(content)
    with pytest.raises(UserError) as exc:
        load_checkpoint(path)
    assert str(exc.value) == (f"{path}: not a checkpoint (expected safetensors, a torch state dict, "
                              f"a llama2.c checkpoint or a Hugging Face model folder)")


def test_missing_and_truncated(tmp_path):
    with pytest.raises(UserError) as exc:
        load_checkpoint(tmp_path / "nope.safetensors")
    assert str(exc.value) == f"{tmp_path / 'nope.safetensors'}: no such file or folder"
    save_file(_state_dict(), tmp_path / "m.safetensors")
    data = (tmp_path / "m.safetensors").read_bytes()
    (tmp_path / "m.safetensors").write_bytes(data[:-10])
    with pytest.raises(UserError) as exc:
        load_checkpoint(tmp_path / "m.safetensors")
    assert str(exc.value) == f"{tmp_path / 'm.safetensors'}: not a valid safetensors file (truncated or corrupt)"


def test_llama2c_checkpoint(tmp_path):
    path = example_file("stories260K.bin")
    ckpt = load_checkpoint(path)
    assert ckpt.kind == "llama2c" and json.loads(ckpt.info["llama2c_config"])["dim"] == 64
    assert ckpt.tensors["layers.4.w2"].shape == (64, 172) and ckpt.tensors["layers.4.w2"].dtype == torch.float32
    chosen = select_tensors(ckpt.tensors, 8)
    assert sorted(chosen) == sorted(f"layers.{i}.{w}" for i in range(5)
                                    for w in ("wq", "wk", "wv", "wo", "w1", "w2", "w3"))


# --- selection ---------------------------------------------------------------------------------------

def test_default_selection():
    sd = _state_dict()
    # 2-D floating, cols >= 8, not the embedding or the head; checkpoint order.
    assert select_tensors(sd, 8) == ["model.layers.0.self_attn.q_proj.weight", "model.layers.0.mlp.down_proj.weight"]
    assert select_tensors(sd, 4) == ["model.layers.0.self_attn.q_proj.weight", "model.layers.0.mlp.down_proj.weight",
                                     "model.layers.0.narrow.weight"]
    assert select_tensors(sd, 8, exclude="down_proj") == ["model.layers.0.self_attn.q_proj.weight"]


@pytest.mark.parametrize("name,picked", [
    ("model.embed_tokens.weight", False), ("transformer.wte.weight", False), ("tok_embeddings", False),
    ("gpt_neox.embed_in.weight", False), ("lm_head.weight", False), ("output", False), ("output.weight", False),
    ("bert.encoder.layer.0.attention.output.dense.weight", True), ("layers.0.wq", True),
    ("transformer.h.0.mlp.c_fc.weight", True)])
def test_embeddings_and_head_are_left_out(name, picked):
    sd = {name: torch.zeros(8, 8), "other.weight": torch.zeros(8, 8)}
    assert (name in select_tensors(sd, 8)) == picked


def test_include_replaces_the_default():
    sd = _state_dict()
    assert select_tensors(sd, 8, include="embed|lm_head") == ["model.embed_tokens.weight", "lm_head.weight"]
    # Matching names that are not 2-D floating tensors are skipped: they cannot be compressed.
    assert select_tensors(sd, 8, include=r"layers\.0\.(self_attn|input|counts)") == [
        "model.layers.0.self_attn.q_proj.weight"]


@pytest.mark.parametrize("include,exclude,message", [
    ("narrow", None, "tensor 'model.layers.0.narrow.weight' has 4 columns, fewer than a block (C=8); "
                     "leave it out of --include"),
    ("nothing_like_this", None, "--include 'nothing_like_this' matches no 2-D floating tensor"),
    ("(", None, "--include '(' is not a valid regular expression (missing ), unterminated subpattern at position 0)"),
    (None, "proj", "no tensor selected for compression (check --include/--exclude)"),
])
def test_selection_errors(include, exclude, message):
    with pytest.raises(UserError) as exc:
        select_tensors(_state_dict(), 8, include, exclude)
    assert str(exc.value) == message
