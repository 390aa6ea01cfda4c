"""compress --outliers/--rank/--budget end to end, the budget allocation, and the HQQ/NF4
baselines (format §5.5; evaluation/library_baselines.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from seedlm_fpga.compressor.container import bits_per_weight, read_container
from seedlm_fpga.compressor.extend import allocate
from seedlm_fpga.core.extensions import decode_extended
from seedlm_fpga.core.numeric import relative_error
from seedlm_fpga.evaluation import library_baselines
from seedlm_fpga.evaluation.library_baselines import HQQ, NF4
from cli_util import run_cli


def _checkpoint(path):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(8, 16, generator=g) * 0.02
    w[3, 4] = 0.5  # an outlier
    sd = {"layers.0.wq.weight": w, "layers.0.w2.weight": torch.randn(12, 24, generator=g) * 0.05,
          "norm.weight": torch.ones(16)}
    save_file(sd, path)
    return sd



def test_compress_with_outliers_and_rank_then_decompress(tmp_path, capsys):
    sd = _checkpoint(tmp_path / "m.safetensors")
    out = tmp_path / "m.seedlm"
    rc, text, err = run_cli(capsys, "compress", str(tmp_path / "m.safetensors"), "-o", str(out),
                         "--outliers", "0.05", "--rank", "1")
    assert rc == 0, err
    c = read_container(out)
    assert c.metadata["format_version"] == "2" and set(c.extensions) == set(c.compressed)
    wq, ext = c.compressed["layers.0.wq.weight"], c.extensions["layers.0.wq.weight"]
    # round(0.05 * 128) = 6 outliers, the planted one among them
    assert ext.sparse.nnz == 6 and 4 in ext.sparse.col[ext.sparse.row_ptr[3]:ext.sparse.row_ptr[4]]
    # 8 x 16 seedlm-4: 16 blocks of 32 bits; CSR 6 * (16 + 16) + 9 * 16 + 8; rank 1: (8 + 16) * 8 + 8
    assert bits_per_weight(wq, ext) == (16 * 32 + 6 * 32 + 9 * 16 + 8 + 24 * 8 + 8) / 128
    row = next(line.split() for line in text.splitlines() if line.startswith("layers.0.wq.weight"))
    assert row[-2] == f"{(512 + 344 + 200) / 128:.3f}"
    # the chunked job encoded the residual the in-memory split gives (compressor/extend.py)
    from seedlm_fpga.compressor.extend import Variant, encode_variant

    enc2, ext2 = encode_variant(sd["layers.0.wq.weight"].numpy(), Variant("seedlm-4", 0.05, 1), "auto")
    for part in ("seeds", "x", "q"):
        np.testing.assert_array_equal(getattr(enc2, part), getattr(wq, part))
    assert enc2.bias == wq.bias and np.array_equal(ext2.lowrank.left, ext.lowrank.left)
    w = sd["layers.0.wq.weight"].double().numpy()
    assert relative_error(w, decode_extended(wq, ext)) < 0.7 * relative_error(w, _plain(tmp_path, capsys, "wq"))
    rc, _, err = run_cli(capsys, "decompress", str(out), "-o", str(tmp_path / "d.safetensors"))
    assert rc == 0, err
    d = load_file(tmp_path / "d.safetensors")["layers.0.wq.weight"]
    np.testing.assert_array_equal(d.numpy(), decode_extended(wq, ext).astype(np.float32))
    rc, text, err = run_cli(capsys, "image", str(out), "--tensor", "layers.0.wq.weight", "--bus-bits", "64",
                         "-o", str(tmp_path / "i.bin"))
    assert rc == 0, err
    # the extension stream beside the image (format §5.6): header rank 1, sparse, e, 8 rows; the
    # f_0 word; 16 / 4 right-factor words; per row a left word and max(1, nnz_r) outliers
    raw = (tmp_path / "i.ext.bin").read_bytes()
    words = np.frombuffer(raw, "<u4")
    assert words[0] == 1 | 1 << 3 | ext.sparse.shift << 4 | 8 << 16 and words[1] == ext.lowrank.shift[0]
    n = 2 + 4 + 8 + sum(max(1, int(ext.sparse.row_ptr[r + 1]) - int(ext.sparse.row_ptr[r])) for r in range(8))
    assert len(raw) == -(-n // 2) * 8 and "extension stream" in text
    # the stream is read on the kernel's 64-bit m_axi_io whatever the weight bus: the same bytes
    rc, _, err = run_cli(capsys, "image", str(out), "--tensor", "layers.0.wq.weight", "--bus-bits", "48",
                      "-o", str(tmp_path / "j.bin"))
    assert rc == 0, err
    assert (tmp_path / "j.ext.bin").read_bytes() == raw


def _plain(tmp_path, capsys, which):
    out = tmp_path / "plain.seedlm"
    assert run_cli(capsys, "compress", str(tmp_path / "m.safetensors"), "-o", str(out))[0] == 0
    return read_container(out).compressed[f"layers.0.{which}.weight"].decode()


def test_budget_picks_per_tensor_within_the_budget(tmp_path, capsys):
    _checkpoint(tmp_path / "m.safetensors")
    out = tmp_path / "b.seedlm"
    rc, text, err = run_cli(capsys, "compress", str(tmp_path / "m.safetensors"), "-o", str(out), "--budget", "4.5")
    assert rc == 0, err
    c = read_container(out)
    stored = sum(bits_per_weight(e, c.extensions.get(n)) * e.shape[0] * e.shape[1] for n, e in c.compressed.items())
    assert stored <= 4.5 * (8 * 16 + 12 * 24)
    assert c.metadata["seedlm.budget"] == "4.5"
    assert "encoding layers.0.wq.weight as seedlm-3 + 0.5% outliers + rank 1 ..." in err


@pytest.mark.parametrize("argv, message", [
    (["--outliers", "0"], "--outliers must be a fraction in (0, 0.5], got 0.0"),
    (["--outliers", "0.9"], "--outliers must be a fraction in (0, 0.5], got 0.9"),
    (["--rank", "0"], "--rank must be at least 1, got 0"),
    (["--rank", "9"], "tensor 'layers.0.wq.weight': tensor 'layers.0.wq.weight' (8x16): rank 9 exceeds min(rows, cols)"),
    # cheapest: wq 8 x 16 as seedlm-4 (8 rows x 2 blocks x 32 bits), w2 12 x 24 as seedlm-3 (12 x 2 x 36)
    (["--budget", "1"], f"--budget 1.0: the cheapest variants already take {8 * 2 * 32 + 12 * 2 * 36:,} bits, "
                        f"over the budget of {8 * 16 + 12 * 24}"),
    (["--budget", "4", "--ray"], "--outliers, --rank and --budget need whole tensors in this process; drop --ray"),
    (["--budget", "4", "--resume"], "--budget encodes in memory and cannot --resume"),
])
def test_bad_extension_flags_exit_2_with_one_line(tmp_path, capsys, argv, message):
    _checkpoint(tmp_path / "m.safetensors")
    out = tmp_path / "out.seedlm"
    rc, _, err = run_cli(capsys, "compress", str(tmp_path / "m.safetensors"), "-o", str(out), *argv)
    assert (rc, err) == (2, f"seedlm-fpga compress: error: {message}\n")
    assert not out.exists() and not (tmp_path / "out.seedlm.partial").exists()


def test_allocate_buys_the_most_error_per_bit():
    costs = {"a": [(100, 10.0), (150, 4.0), (200, 3.5)],  # upgrade to 150 buys 0.12 per bit
             "b": [(100, 10.0), (120, 9.0), (300, 1.0)]}  # 120: 0.05 per bit; 300: 0.045 per bit
    assert allocate(costs, 200) == {"a": 0, "b": 0}
    assert allocate(costs, 250) == {"a": 1, "b": 0}
    assert allocate(costs, 270) == {"a": 1, "b": 1}
    assert allocate(costs, 450) == {"a": 1, "b": 2}
    with pytest.raises(ValueError, match="cheapest variants already take 200 bits"):
        allocate(costs, 199)


def test_hqq_and_nf4_bits_and_codes():
    w = np.random.default_rng(0).standard_normal((3, 100))
    # HQQ int4 g64: 4 bits per weight, an fp16 scale and shift per group (two groups per row)
    assert HQQ(4, 64).storage_bits((3, 100)) == 300 * 4 + 3 * 2 * 32
    # NF4: 300 weights pad to 5 blocks of 64: 320 codes, 5 int8 scalers, one fp32 factor (a scaler
    # block of 5), one fp32 mean
    assert NF4().storage_bits((3, 100)) == 320 * 4 + 5 * 8 + 32 + 32
    hqq = HQQ(4, 64).quantize(w)
    for r in range(3):
        for g0 in (0, 64):
            assert len(np.unique(hqq[r, g0:g0 + 64])) <= 16  # 4-bit codes per group
    nf4 = NF4().quantize(w).ravel()
    for b0 in range(0, 300, 64):
        assert len(np.unique(nf4[b0:b0 + 64])) <= 16
    for w_hat in (hqq, nf4.reshape(3, 100)):
        assert relative_error(w, w_hat) < 0.12


def test_evaluate_names_the_missing_extra(tmp_path, capsys, monkeypatch):
    sd = _checkpoint(tmp_path / "m.safetensors")
    assert run_cli(capsys, "compress", str(tmp_path / "m.safetensors"), "-o", str(tmp_path / "m.seedlm"))[0] == 0
    args = ["evaluate", str(tmp_path / "m.seedlm"), "--reference", str(tmp_path / "m.safetensors"), "--json"]
    rc, out, err = run_cli(capsys, *args)
    import json

    methods = [m["method"] for m in json.loads(out)["methods"]]
    assert rc == 0 and {"HQQ int4 g64", "HQQ int4 g128", "NF4 g64"} <= set(methods)
    monkeypatch.setattr(library_baselines, "missing_extra", lambda: "HQQ and NF4 baselines skipped: torchao not installed")
    rc, out, err = run_cli(capsys, *args)
    report = json.loads(out)
    assert not any(m["method"].startswith(("HQQ", "NF4")) for m in report["methods"])
    assert "HQQ and NF4 baselines skipped: torchao not installed" in report["notes"]
    assert len(sd) == 3


@pytest.mark.parametrize("argv, message", [
    (["--budget", "0"], "--budget must be bits/weight figures in (0, 64), got 0"),
    (["--plot", "p.png"], "--plot needs perplexity: a llama2.c reference with its text and tokenizer"),
])
def test_evaluate_bad_flags_exit_2_with_one_line(tmp_path, capsys, argv, message):
    _checkpoint(tmp_path / "m.safetensors")
    assert run_cli(capsys, "compress", str(tmp_path / "m.safetensors"), "-o", str(tmp_path / "m.seedlm"))[0] == 0
    argv = [a.replace("p.png", str(tmp_path / "p.png")) for a in argv]
    rc, _, err = run_cli(capsys, "evaluate", str(tmp_path / "m.seedlm"), "--reference", str(tmp_path / "m.safetensors"),
                      *argv)
    assert (rc, err) == (2, f"seedlm-fpga evaluate: error: {message}\n")
    assert not (tmp_path / "p.png").exists()
