"""`seedlm-fpga run`: KV-cache decoding against the full-sequence forward, the numpy backend
against the reference bit for bit, the JSON report, cycles by format §10's table, bad input."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from seedlm_fpga.cli.main import main
from seedlm_fpga.compressor.llama2c import read_llama2c
from seedlm_fpga.core import reference as ref
from seedlm_fpga.evaluation.decode import (DecodeModel, Decoder, NumpyBackend, greedy_decode,
                                           load_decode_model)
from seedlm_fpga.evaluation.llama_model import Transformer
from seedlm_fpga.evaluation.tokenizer import Tokenizer

from example_data import example_file

PRESETS = ("seedlm-4", "seedlm-3")


@pytest.fixture(scope="module")
def seedlm_files(tmp_path_factory):
    """stories260K compressed with `seedlm-fpga compress` at each preset, once per module."""
    folder = tmp_path_factory.mktemp("run")
    out = {}
    for preset in PRESETS:
        out[preset] = folder / f"{preset}.seedlm"
        assert main(["compress", str(example_file("stories260K.bin")), "-o", str(out[preset]),
                     "--preset", preset]) == 0
    return out


@pytest.fixture(scope="module")
def tokenizer():
    return Tokenizer.load(example_file("tok512.bin"), 512)


def full_sequence_model(model: DecodeModel) -> Transformer:
    """The evaluate path: the whole sequence per step, IntegerSeedLMLinear for every compressed layer."""
    lin = {n: model.integer_linear(n) for n in model.compressed}
    return Transformer.from_state_dict(model.cfg, {k: v.numpy() for k, v in model.tensors.items()}, lin)


class Recording:
    """A backend that keeps every start and result of the backend it wraps."""

    name = "recording"

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def run(self, start):
        result = self.inner.run(start)
        self.calls.append((start, result))
        return result

    def close(self):
        pass


def test_kv_cache_decode_equals_full_sequence_forward(seedlm_files, tokenizer):
    model = load_decode_model(seedlm_files["seedlm-4"])
    ids = greedy_decode(model, NumpyBackend(model), [1], 32)
    torch.set_num_threads(1)
    assert ids == full_sequence_model(model).generate([1], 32)[1:]
    assert len(ids) == 32
    assert tokenizer.decode([1] + ids).startswith("Once upon a time")


def test_kv_cache_logits_of_the_float_model(tokenizer):
    """No compressed layer: everything on the host; logits at every position as the full forward's."""
    cfg, tensors = read_llama2c(example_file("stories260K.bin"))
    model = DecodeModel(cfg, {k: torch.from_numpy(v) for k, v in tensors.items()}, {})
    ids = [1] + tokenizer.encode("Once upon a time, there was a little girl named Lily.")
    full = Transformer.from_state_dict(cfg, tensors)(torch.tensor([ids]))[0]
    backend = Recording(NumpyBackend(model))
    decoder = Decoder(model, backend)
    for pos, t in enumerate(ids):
        torch.testing.assert_close(decoder.step(t), full[pos], atol=1e-4, rtol=0)
    assert backend.calls == []


def test_numpy_backend_is_the_reference_bit_for_bit(seedlm_files):
    model = load_decode_model(seedlm_files["seedlm-3"])
    backend = Recording(NumpyBackend(model))
    decoder = Decoder(model, backend)
    for t in (1, 403, 407):
        decoder.step(t)
    # per layer: q/k/v, o, gate/up, down share activation vectors as format §11 starts
    groups = [s.names for s, _ in backend.calls[:4]]
    assert groups == [("layers.0.wq", "layers.0.wk", "layers.0.wv"), ("layers.0.wo",),
                      ("layers.0.w1", "layers.0.w3"), ("layers.0.w2",)]
    assert len(backend.calls) == 3 * 4 * model.cfg.n_layers
    for start, result in backend.calls:
        assert np.abs(start.acts).max() == 127  # int8, one scale per vector: the largest is +-127
        for name, Y, Yb in zip(start.names, result.Y, result.baseline_Y):
            e = model.compressed[name]
            np.testing.assert_array_equal(Y, ref.gemv_seedlm(e.seeds, e.x, e.q, start.acts, e.preset))
            w16 = ref.to_int16(ref.decode_tensor(e.seeds, e.x, e.q, e.bias, e.preset, e.shape[1]))
            np.testing.assert_array_equal(Yb, ref.gemv_baseline(w16, start.acts))


#: Kernel CYCLES per token of stories260K on one W = 512 kernel pair, by hand from format §11's
#: timing at the default memory latency 32 (reads answered 32 + 2 edges after the AR, B 2 after
#: the last W): the first weight beat of a start arrives at cycle 3 + 34 + 7 + 34 = 78 (the
#: descriptor path is longer than the activations' 5 + 34 + ceil(cols / N)); then rows * R beats;
#: then read FIFO 2 - 1, the engine's latency, B 2 and ap_done 2. R and latency from format §10's
#: table: seedlm-4 and seedlm-3 R = 1 (64 cols) or 2 (172), latency 13; baseline R = 2 or 6,
#: latency 8. Per layer the starts q/k/v (64 cols, 64 + 32 + 32 rows), o (64), gate/up (172 + 172
#: rows), down (172 cols, 64 rows).
def _per_token(r64: int, r172: int, latency: int) -> int:
    beats = (128 * r64, 64 * r64, 344 * r64, 64 * r172)
    return 5 * sum(78 + b - 1 + 2 + latency + 2 + 2 for b in beats)


CYCLES_PER_TOKEN = {"seedlm-4": _per_token(1, 2, 13), "seedlm-3": _per_token(1, 2, 13)}
BASELINE_PER_TOKEN = _per_token(2, 6, 8)


@pytest.mark.parametrize("preset", PRESETS)
def test_json_report(seedlm_files, preset, capsys):
    assert main(["run", str(seedlm_files[preset]), "--json", "--tokens", "32", "--board", "alveo-u280"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["text"].startswith("Once upon a time")
    model = load_decode_model(seedlm_files[preset])
    assert r["tokens"] == greedy_decode(model, NumpyBackend(model), [1], 32)
    assert r["bit_exact"] is None and r["cycles_source"] == "cycle model"
    assert r["cycles"] == r["model_cycles"] == [CYCLES_PER_TOKEN[preset]] * len(r["tokens"])
    assert r["baseline_cycles"] == [BASELINE_PER_TOKEN] * len(r["tokens"])
    assert r["gemvs_per_token"] == [35] * len(r["tokens"])
    assert (r["board"], r["bus_bits"], r["clock_mhz"]) == ("alveo-u280", 512, 264.6)
    assert r["provenance"]["command"][:2] == ["seedlm-fpga", "run"]


def test_text_output_and_prompt(seedlm_files, capsys):
    assert main(["run", str(seedlm_files["seedlm-4"]), "--prompt", "Once upon a time", "--tokens", "4"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "cycle model's prediction" in lines[1]
    token_lines = [ln for ln in lines if "GEMVs in 20 starts" in ln]
    assert len(token_lines) == 4 and f"seedlm {CYCLES_PER_TOKEN['seedlm-4']:,} cycles" in token_lines[0]
    assert "Once upon a time," in out  # the text, prompt included


def _fails(capsys, *argv) -> str:
    assert main(["run", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("seedlm-fpga run: error: "), err
    return err[0]


def test_bad_input(seedlm_files, tmp_path, capsys):
    good = str(seedlm_files["seedlm-4"])
    assert "no such file" in _fails(capsys, str(tmp_path / "missing.seedlm")).lower()
    (tmp_path / "junk.seedlm").write_bytes(b"not a container")
    assert "junk.seedlm" in _fails(capsys, str(tmp_path / "junk.seedlm"))
    assert "--tokens must lie in 1..512" in _fails(capsys, good, "--tokens", "0")
    assert "nope" in _fails(capsys, good, "--board", "nope")
    assert "too small for one seedlm-4 lane" in _fails(capsys, good, "--board", "icebreaker")
    assert "--mem-latency must lie in 0..4096" in _fails(capsys, good, "--mem-latency", "-1")
    assert "tok.bin" in _fails(capsys, good, "--tokenizer", str(tmp_path / "tok.bin"))
    # a .seedlm of a plain safetensors state dict carries no model configuration
    from safetensors.numpy import save_file
    save_file({"w": np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32)},
              str(tmp_path / "plain.safetensors"))
    assert main(["compress", str(tmp_path / "plain.safetensors"), "-o", str(tmp_path / "plain.seedlm")]) == 0
    capsys.readouterr()
    assert "no model configuration" in _fails(capsys, str(tmp_path / "plain.seedlm"))


def test_project_shows_a_run_as_a_measured_point(seedlm_files, tmp_path, capsys):
    assert main(["run", str(seedlm_files["seedlm-4"]), "--json", "--tokens", "3"]) == 0
    (tmp_path / "run.json").write_text(capsys.readouterr().out)
    argv = ["project", "--checkpoint", str(seedlm_files["seedlm-4"]), "--board", "alveo-u280", "--no-plots",
            "-o", str(tmp_path / "rep"), "--measured", str(tmp_path / "run.json")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    seed, base = CYCLES_PER_TOKEN["seedlm-4"], BASELINE_PER_TOKEN
    assert f"seedlm-4 {seed:,} cycles (cycle model; cycle model {seed:,}, +0.00%), fp16 {base:,}: " \
           f"{base / seed:.2f}x" in out
    (m,) = json.loads((tmp_path / "rep" / "projection.json").read_text())["measured"]
    assert (m["tokens"], m["cycles_per_token"], m["baseline_cycles_per_token"]) == (3, seed, base)
    assert m["kernel_us_per_token"] == pytest.approx(seed / 264.6)
    (tmp_path / "bad.json").write_text('{"tokens": []}')
    assert main(argv[:-1] + [str(tmp_path / "bad.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"seedlm-fpga project: error: {tmp_path / 'bad.json'}: not a `seedlm-fpga run --json` report "
                   f"(lacks model, engine, preset, cycles, baseline_cycles, model_cycles, bit_exact, cycles_source, "
                   f"board, board_name, bus_bits, clock_mhz)"]


def test_verilator_kernels_bit_exact_with_the_modelled_cycles(seedlm_files, capsys):
    argv = ["run", str(seedlm_files["seedlm-3"]), "--json", "--tokens", "3"]
    assert main(argv + ["--engine", "verilator"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert main(argv) == 0
    numpy_run = json.loads(capsys.readouterr().out)
    assert r["tokens"] == numpy_run["tokens"] and r["text"] == numpy_run["text"]
    assert r["bit_exact"] is True and r["cycles_source"] == "verilator"
    # the kernels' CYCLES registers, beside the cycle model and the hand count above
    assert r["cycles"] == r["model_cycles"] == [CYCLES_PER_TOKEN["seedlm-3"]] * 3
    assert r["baseline_cycles"] == r["baseline_model_cycles"] == [BASELINE_PER_TOKEN] * 3


def test_verilator_mismatch_stops_with_a_diagnosis(seedlm_files):
    """A reference that expects Y + 1 in one row: the kernels' true Y must be reported as different."""
    from seedlm_fpga.sim.kernel_backend import KernelDesign, KernelMismatch, checked_kernel_backend

    model = load_decode_model(seedlm_files["seedlm-4"])

    class OffByOne(NumpyBackend):
        def run(self, start):
            result = super().run(start)
            if "layers.0.wk" in start.names:
                result.Y[start.names.index("layers.0.wk")][5] += 1
            return result

    backend = checked_kernel_backend(model, OffByOne(model), KernelDesign("seedlm-4", 512, 172, 32))
    try:
        with pytest.raises(KernelMismatch) as info:
            Decoder(model, backend).step(1)
    finally:
        backend.close()
    e = model.compressed["layers.0.wk"]
    msg = str(info.value)
    assert msg.startswith("seedlm kernel, start 0 (layers.0.wq, layers.0.wk, layers.0.wv; cols 64): "
                          "layer layers.0.wk row 5: expected Y ")
    expected, actual = (int(v) for v in msg.split("expected Y ")[1].split(";")[0].split(", kernel Y "))
    assert expected == actual + 1
    assert f"block 0: seed {int(e.seeds[5, 0]):#06x} x {int(e.x[5, 0])} q {[int(v) for v in e.q[5, 0]]}" in msg


def _hf_folder(tmp_path) -> Path:
    """stories260K written as a Hugging Face Llama folder (HF names, q/k rows in rotate-half order,
    config.json)."""
    from safetensors.numpy import save_file

    cfg, t = read_llama2c(example_file("stories260K.bin"))
    hs = cfg.head_size
    names = {"attention_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
             "wq": "self_attn.q_proj", "wk": "self_attn.k_proj", "wv": "self_attn.v_proj", "wo": "self_attn.o_proj",
             "w1": "mlp.gate_proj", "w3": "mlp.up_proj", "w2": "mlp.down_proj"}
    hf = {"model.embed_tokens.weight": t["tok_embeddings"], "model.norm.weight": t["norm"]}
    for i in range(cfg.n_layers):
        for ours, theirs in names.items():
            w = t[f"layers.{i}.{ours}"]
            if ours in ("wq", "wk"):  # HF's permute: per head, even rows first, then odd rows
                heads = w.shape[0] // hs
                w = w.reshape(heads, hs // 2, 2, -1).transpose(0, 2, 1, 3).reshape(w.shape)
            hf[f"model.layers.{i}.{theirs}.weight"] = np.ascontiguousarray(w)
    folder = tmp_path / "hf"
    folder.mkdir()
    save_file(hf, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({
        "model_type": "llama", "hidden_size": cfg.dim, "intermediate_size": cfg.hidden_dim,
        "num_hidden_layers": cfg.n_layers, "num_attention_heads": cfg.n_heads, "num_key_value_heads": cfg.n_kv_heads,
        "vocab_size": cfg.vocab_size, "max_position_embeddings": cfg.seq_len, "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0, "tie_word_embeddings": True, "hidden_act": "silu"}))
    return folder


def test_a_hugging_face_llama_folder_decodes_as_its_llama2c_original(seedlm_files, tmp_path, capsys):
    """Compressed and run, the Hugging Face folder gives the llama2.c file's tokens (rows encode alone)."""
    folder = _hf_folder(tmp_path)
    assert main(["compress", str(folder), "-o", str(tmp_path / "hf.seedlm")]) == 0
    capsys.readouterr()
    argv = ["--json", "--tokens", "12", "--tokenizer", str(example_file("tok512.bin"))]
    assert main(["run", str(tmp_path / "hf.seedlm"), *argv]) == 0
    hf_run = json.loads(capsys.readouterr().out)
    assert main(["run", str(seedlm_files["seedlm-4"]), *argv]) == 0
    assert hf_run["tokens"] == json.loads(capsys.readouterr().out)["tokens"]
    assert hf_run["text"].startswith("Once upon a time")
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 64}))
    assert main(["compress", str(folder), "-o", str(tmp_path / "bad.seedlm")]) == 0
    capsys.readouterr()
    assert "config.json is not a Llama config" in _fails(capsys, str(tmp_path / "bad.seedlm"))


def test_a_hugging_face_folder_with_parts_decodes_as_its_llama2c_original(tmp_path, capsys):
    """Outliers and a rank-1 part follow the q/k rows' reordering: the same parts and the same tokens
    as the llama2.c file compressed alike (outliers and factors do not depend on row order)."""
    from seedlm_fpga.evaluation.decode import load_decode_model

    parts = ["--outliers", "0.005", "--rank", "1"]
    assert main(["compress", str(_hf_folder(tmp_path)), "-o", str(tmp_path / "hf.seedlm"), *parts]) == 0
    assert main(["compress", str(example_file("stories260K.bin")), "-o", str(tmp_path / "l2c.seedlm"), *parts]) == 0
    hf, l2c = load_decode_model(tmp_path / "hf.seedlm"), load_decode_model(tmp_path / "l2c.seedlm")
    assert sorted(hf.extensions) == sorted(l2c.extensions) and len(l2c.extensions) == 35
    for name, want in l2c.extensions.items():
        got, shape = hf.extensions[name], l2c.compressed[name].shape
        assert np.array_equal(got.sparse.dense_codes(shape), want.sparse.dense_codes(shape)), name
        assert np.array_equal(got.lowrank.left, want.lowrank.left)
        assert np.array_equal(got.lowrank.right, want.lowrank.right)
    capsys.readouterr()
    argv = ["--json", "--tokens", "8", "--tokenizer", str(example_file("tok512.bin"))]
    assert main(["run", str(tmp_path / "hf.seedlm"), *argv]) == 0
    hf_run = json.loads(capsys.readouterr().out)
    assert main(["run", str(tmp_path / "l2c.seedlm"), *argv]) == 0
    assert hf_run["tokens"] == json.loads(capsys.readouterr().out)["tokens"]
