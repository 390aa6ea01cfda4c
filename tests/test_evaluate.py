"""`seedlm-fpga evaluate`: the table's rows, bit accounting, perplexities, JSON and errors."""
import json

import numpy as np
import pytest

from seedlm_fpga.cli import main as cli
from seedlm_fpga.core import reference as ref
from seedlm_fpga.core.numeric import relative_error
from seedlm_fpga.evaluation.baselines import Baseline
from seedlm_fpga.compressor.container import write_container
from seedlm_fpga.core.reference import EncodedTensor
from seedlm_fpga.evaluation.evaluate import LanguageModelData, evaluate
from seedlm_fpga.compressor.llama2c import read_llama2c
from seedlm_fpga.evaluation.llama_model import Transformer, perplexity
from seedlm_fpga.evaluation.tokenizer import Tokenizer, encode_stories

from example_data import example_file

P4 = ref.PRESETS["seedlm-4"]


def fixed_seed_encode(w, preset, bias, seed=1) -> EncodedTensor:
    """A valid but poor SeedLM encoding: one seed for every block, least-squares coefficients."""
    rows, cols = w.shape
    nb = ref.blocks_per_row(cols, preset.C)
    padded = np.zeros((rows, nb * preset.C))
    padded[:, :cols] = w
    seeds = np.full((rows, nb), seed, dtype=np.uint16)
    U = ref.basis_S(seeds[:1, :1], preset.C, preset.P, preset.K, preset.taps)[0, 0] / preset.s_scale
    x, q = ref.quantize(padded.reshape(rows, nb, preset.C) @ np.linalg.pinv(U).T, bias)
    return EncodedTensor(seeds=seeds, x=x, q=q, bias=bias, preset=preset, shape=(rows, cols))


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """stories260K, a fixed-seed .seedlm of its 35 layer matrices, and 5 stories' token ids."""
    ckpt = example_file("stories260K.bin")
    cfg, tensors = read_llama2c(ckpt)
    names = [n for n, t in tensors.items() if n.startswith("layers.") and t.ndim == 2]
    path = tmp_path_factory.mktemp("ev") / "fixed.seedlm"
    write_container(path, {n: fixed_seed_encode(tensors[n], P4, -10) for n in names},
                    {n: t for n, t in tensors.items() if n not in names})
    tok = Tokenizer.load(example_file("tok512.bin"), cfg.vocab_size)
    stories = encode_stories(example_file("tinystories_val.txt"), tok, 5, use_cache=False)
    return ckpt, cfg, tensors, names, path, stories


def test_table_rows_and_accounting(real):
    ckpt, cfg, tensors, names, path, stories = real
    ev = evaluate(path, ckpt, LanguageModelData(cfg, stories), baselines=(Baseline("rtn", 4, 64),))
    assert [m.role for m in ev.methods] == ["reference", "compressed", "compressed-fpga", "baseline"]
    assert list(ev.tensors) == names and len(names) == 35
    ref_row, file_row, fpga_row, rtn_row = ev.methods
    # seedlm-4: 32 bits per block of 8; w2 (64 x 172) pads its rows to 22 blocks = 176 weights
    blocks = 5 * (64 * 64 * 2 + 32 * 64 * 2 + 172 * 64 * 2) // 8 + 5 * 64 * 22
    weights = 5 * (64 * 64 * 2 + 32 * 64 * 2 + 172 * 64 * 3)
    assert file_row.bits_per_weight == pytest.approx(32 * blocks / weights, rel=1e-12)
    assert rtn_row.bits_per_weight == pytest.approx(4 + 16 * (5 * (64 * 2 + 32 * 2 + 172 * 2) + 5 * 64 * 3)
                                                    / weights, rel=1e-12)
    assert ref_row.bits_per_weight == 32.0
    w = tensors["layers.2.w2"]
    w_hat = ref.decode_tensor(*(fixed_seed_encode(w, P4, -10).__dict__[k] for k in ("seeds", "x", "q")),
                              -10, P4, 172)
    assert file_row.errors["layers.2.w2"] == pytest.approx(relative_error(w, w_hat), rel=1e-12)
    assert fpga_row.errors == file_row.errors
    # perplexity: the original model, then the degraded ones, FPGA numerics close to float-decoded
    expected, count = perplexity(Transformer.from_state_dict(cfg, tensors), stories)
    assert ref_row.perplexity == pytest.approx(expected, rel=1e-9) and ev.predicted_tokens == count
    assert file_row.perplexity > 1.2 * ref_row.perplexity  # one fixed seed: a poor encoding
    assert fpga_row.perplexity == pytest.approx(file_row.perplexity, rel=0.03)
    assert fpga_row.perplexity != file_row.perplexity
    assert ref_row.perplexity < rtn_row.perplexity
    doc = ev.to_json()
    assert doc["perplexity"] == {"reference_fp32": ref_row.perplexity,
                                 "compressed_float_decoded": file_row.perplexity,
                                 "compressed_fpga_integer": fpga_row.perplexity}
    assert doc["methods"][3]["method"] == "RTN int4 g64"


def test_rtn_sensitivity_figure_from_the_data_readme(real):
    """The data README: RTN int4 g64 (symmetric absmax per group, every matrix including the
    embedding) gives perplexity 4.41 on the first 100 stories."""
    ckpt, cfg, tensors, *_ = real
    tok = Tokenizer.load(example_file("tok512.bin"), cfg.vocab_size)
    stories = encode_stories(example_file("tinystories_val.txt"), tok, 100, use_cache=False)
    rtn = Baseline("rtn", 4, 64)
    quantized = {n: rtn.quantize(t).astype(np.float32) if t.ndim == 2 and not n.startswith("freq") else t
                 for n, t in tensors.items()}
    ppl, _ = perplexity(Transformer.from_state_dict(cfg, quantized), stories)
    assert ppl == pytest.approx(4.41, abs=0.006)


def test_cli_json_and_text(real, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SEEDLM_FPGA_CACHE", str(tmp_path))
    ckpt, _, _, _, path, _ = real
    assert cli.main(["evaluate", str(path), "--reference", str(ckpt), "--stories", "2", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["perplexity"]) == {"reference_fp32", "compressed_float_decoded", "compressed_fpga_integer"}
    from seedlm_fpga.evaluation.library_baselines import missing_extra

    library = 0 if missing_extra() else 3  # HQQ int4 g64/g128 and NF4 (the quality extra, in dev)
    assert doc["stories"] == 2 and len(doc["methods"]) == 13 + library
    assert cli.main(["evaluate", str(path), "--reference", str(ckpt), "--no-perplexity"]) == 0
    out = capsys.readouterr().out
    assert "BFP int4 g128" in out and "layers.4.w3" in out and "perplexity: first" not in out


def test_sweep_re_encodes_and_caches(tmp_path, monkeypatch):
    """A small safetensors reference (no perplexity): the searched encoding beats one fixed seed."""
    from safetensors.numpy import save_file

    monkeypatch.setenv("SEEDLM_FPGA_CACHE", str(tmp_path / "cache"))
    w = {"a.weight": np.random.default_rng(3).standard_normal((4, 20)).astype(np.float32)}
    save_file(w, str(tmp_path / "ref.safetensors"))
    write_container(tmp_path / "f.seedlm", {"a.weight": fixed_seed_encode(w["a.weight"], P4, -10)}, {})
    ev = evaluate(tmp_path / "f.seedlm", tmp_path / "ref.safetensors", sweep=(("seedlm-4", "paper"),),
                  baselines=())
    fixed, searched = ev.methods[1], ev.methods[2]
    assert searched.name == "seedlm-4, paper bias b=-10 (re-encoded)"
    assert searched.errors["a.weight"] < fixed.errors["a.weight"]
    assert searched.bits_per_weight == 32 * 4 * 3 / 80  # 20 columns pad to 3 blocks of 8
    assert len(list((tmp_path / "cache" / "encoded").glob("*.npz"))) == 1


def test_bad_input(real, tmp_path, capsys):
    ckpt, cfg, tensors, names, path, _ = real
    other = tmp_path / "other.seedlm"
    write_container(other, {"layers.9.wq": fixed_seed_encode(tensors["layers.0.wq"], P4, -10)}, {})
    assert cli.main(["evaluate", str(other), "--reference", str(ckpt)]) == 2
    assert capsys.readouterr().err == (f"seedlm-fpga evaluate: error: {other}: tensor 'layers.9.wq' is not in "
                                       f"the reference {ckpt}\n")
    assert cli.main(["evaluate", str(path), "--reference", str(ckpt), "--stories", "0"]) == 2
    assert capsys.readouterr().err == "seedlm-fpga evaluate: error: --stories must be at least 1, got 0\n"
    missing = tmp_path / "none.txt"
    assert cli.main(["evaluate", str(path), "--reference", str(ckpt), "--text", str(missing)]) == 2
    assert capsys.readouterr().err == f"seedlm-fpga evaluate: error: {missing}: no such file\n"
