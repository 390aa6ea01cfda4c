"""`seedlm-fpga compress`: the table, determinism, --resume, and bad input (one line, exit 2)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from seedlm_fpga.cli.main import main
from seedlm_fpga.compressor import encoder
from seedlm_fpga.compressor.container import read_container
from seedlm_fpga.core.reference import PRESETS, decode_tensor
from example_data import example_file
from cli_util import run_cli



def _checkpoint(path: Path, **overrides) -> dict[str, torch.Tensor]:
    """Four compressible matrices (one bfloat16, one float16, one with row padding) and
    three tensors the default leaves alone."""
    g = torch.Generator().manual_seed(0)
    sd = {"layers.0.wq.weight": torch.randn(8, 16, generator=g) * 0.02,
          "layers.0.w2.weight": (torch.randn(4, 20, generator=g) * 0.05).to(torch.bfloat16),
          "layers.1.wq.weight": (torch.randn(6, 8, generator=g) * 3).to(torch.float16),
          "layers.1.w2.weight": torch.randn(4, 16, generator=g),
          "layers.0.norm.weight": torch.ones(16),
          "embed_tokens.weight": torch.randn(10, 8, generator=g),
          "step": torch.tensor(7)}
    sd.update(overrides)
    save_file(sd, path)
    return sd



def test_compress_prints_table_and_writes_a_complete_container(tmp_path, capsys):
    sd = _checkpoint(tmp_path / "m.safetensors")
    out_path = tmp_path / "m.seedlm"
    rc, out, err = run_cli(capsys, "compress", str(tmp_path / "m.safetensors"), "-o", str(out_path))
    assert rc == 0, err
    assert err == ""  # tqdm stays quiet when stderr is not a terminal
    c = read_container(out_path)
    chosen = ["layers.0.wq.weight", "layers.0.w2.weight", "layers.1.wq.weight", "layers.1.w2.weight"]
    assert sorted(c.compressed) == sorted(chosen)
    assert sorted(c.carried) == ["embed_tokens.weight", "layers.0.norm.weight", "step"]
    assert c.dtypes == {n: str(sd[n].dtype).removeprefix("torch.") for n in chosen}
    for name, t in c.carried.items():
        assert t.dtype == sd[name].dtype and torch.equal(t, sd[name])
    lines = out.splitlines()
    assert lines[0].split() == ["tensor", "shape", "preset", "bias", "bits/weight", "rel.error"]
    table = {line.split()[0]: line.split() for line in lines[2:6]}
    for name in chosen:
        enc = c.compressed[name]
        rows, cols = sd[name].shape
        nb = -(-cols // 8)
        w = sd[name].double().numpy()
        w_hat = decode_tensor(enc.seeds, enc.x, enc.q, enc.bias, PRESETS["seedlm-4"], cols)
        rel = np.linalg.norm(w - w_hat) / np.linalg.norm(w)
        assert table[name] == [name, f"{rows}x{cols}", "seedlm-4", str(enc.bias), f"{nb * 32 / cols:.3f}",
                               f"{rel:.4f}"]
        assert rel < 0.5  # a 4-bit code of Gaussian weights: far better than zeroing them
    weights = 8 * 16 + 4 * 20 + 6 * 8 + 4 * 16
    packed = (8 * 2 + 4 * 3 + 6 * 1 + 4 * 2) * 4
    assert f"compressed 4 tensors, {weights:,} weights: {packed * 8 / weights:.3f} bits/weight" in out
    assert out.rstrip().endswith(f"wrote {out_path} ({out_path.stat().st_size:,} bytes)")
    assert not (tmp_path / "m.seedlm.partial").exists()

    # Same input and flags: byte-identical output.
    again = tmp_path / "again.seedlm"
    assert main(["compress", str(tmp_path / "m.safetensors"), "-o", str(again)]) == 0
    assert again.read_bytes() == out_path.read_bytes()


def test_flags_reach_the_encoder(tmp_path, capsys):
    _checkpoint(tmp_path / "m.safetensors")
    out_path = tmp_path / "m.seedlm"
    rc, out, err = run_cli(capsys, "compress", str(tmp_path / "m.safetensors"), "-o", str(out_path),
                        "--bias", "paper", "--include", r"layers\.\d\.wq", "--exclude", "layers.1")
    assert rc == 0, err
    c = read_container(out_path)
    assert list(c.compressed) == ["layers.0.wq.weight"] and c.compressed["layers.0.wq.weight"].bias == -10


def test_resume_skips_finished_tensors(tmp_path, capsys, monkeypatch):
    _checkpoint(tmp_path / "m.safetensors")
    reference = tmp_path / "ref.seedlm"
    assert main(["compress", str(tmp_path / "m.safetensors"), "-o", str(reference)]) == 0

    real, calls = encoder.encode_tensor, []

    def interrupted_on_third(w, *args, **kw):
        calls.append(w.shape)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(w, *args, **kw)

    monkeypatch.setattr(encoder, "encode_tensor", interrupted_on_third)
    out_path = tmp_path / "m.seedlm"
    argv = ["compress", str(tmp_path / "m.safetensors"), "-o", str(out_path)]
    capsys.readouterr()
    rc, _, err = run_cli(capsys, *argv)
    assert rc == 130
    assert err.splitlines() == [f"finished tensors are kept in {tmp_path / 'm.seedlm.partial'}; rerun with "
                                f"--resume to continue", "seedlm-fpga compress: interrupted"]
    assert not out_path.exists()
    assert len(list((tmp_path / "m.seedlm.partial").glob("*.seedlm"))) == 2

    monkeypatch.setattr(encoder, "encode_tensor", lambda w, *a, **kw: calls.append(w.shape) or real(w, *a, **kw))
    calls.clear()
    rc, out, err = run_cli(capsys, *argv, "--resume")
    assert rc == 0, err
    assert len(calls) == 2  # the two unfinished tensors only
    assert out_path.read_bytes() == reference.read_bytes()
    assert not (tmp_path / "m.seedlm.partial").exists()


def test_resume_refuses_other_flags_and_fresh_run_discards_partial(tmp_path, capsys, monkeypatch):
    _checkpoint(tmp_path / "m.safetensors")
    real, calls = encoder.encode_tensor, []

    def interrupted_on_second(w, *args, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(w, *args, **kw)

    monkeypatch.setattr(encoder, "encode_tensor", interrupted_on_second)
    argv = ["compress", str(tmp_path / "m.safetensors"), "-o", str(tmp_path / "m.seedlm")]
    assert run_cli(capsys, *argv)[0] == 130
    partial = tmp_path / "m.seedlm.partial"
    rc, _, err = run_cli(capsys, *argv, "--resume", "--bias", "paper")
    assert rc == 2
    assert err == (f"seedlm-fpga compress: error: {partial} holds a run with another input or other flags; "
                   f"delete it or run without --resume\n")
    calls.clear()
    monkeypatch.setattr(encoder, "encode_tensor", lambda w, *a, **kw: calls.append(1) or real(w, *a, **kw))
    assert main(argv) == 0  # no --resume: starts over
    assert len(calls) == 4 and not partial.exists()


def test_stories260k_subset_then_inspect_decompress_image(tmp_path, capsys):
    src = example_file("stories260K.bin")
    s = tmp_path / "s.seedlm"
    rc, out, err = run_cli(capsys, "compress", str(src), "-o", str(s), "--include", r"layers\.0\.w[qk]$")
    assert rc == 0, err
    assert [line.split()[:2] for line in out.splitlines()[2:4]] == [["layers.0.wk", "32x64"], ["layers.0.wq", "64x64"]]
    rc, out, err = run_cli(capsys, "inspect", str(s))
    assert rc == 0 and "carried tensors (47):" in out
    rc, out, err = run_cli(capsys, "decompress", str(s), "-o", str(tmp_path / "s.safetensors"))
    assert rc == 0, err
    from safetensors.torch import load_file
    from seedlm_fpga.compressor.llama2c import read_llama2c

    _, original = read_llama2c(src)
    back = load_file(tmp_path / "s.safetensors")
    assert set(back) == set(original)
    assert torch.equal(back["layers.3.w2"], torch.from_numpy(original["layers.3.w2"]))
    wq = torch.from_numpy(original["layers.0.wq"])
    rel = float((back["layers.0.wq"] - wq).norm() / wq.norm())
    assert 0 < rel < 0.5
    rc, out, err = run_cli(capsys, "image", str(s), "--tensor", "layers.0.wk", "--bus-bits", "512",
                        "-o", str(tmp_path / "wk.bin"))
    assert rc == 0, err
    assert (tmp_path / "wk.bin").stat().st_size == 32 * 64  # 32 rows x 1 beat of 64 bytes (8 blocks/row)


# --- bad input: one line on stderr, exit 2, nothing left behind --------------------------------------

def _expect_error(capsys, tmp_path, argv, message):
    out_path = tmp_path / "out.seedlm"
    rc, _, err = run_cli(capsys, "compress", *argv, "-o", str(out_path))
    assert (rc, err) == (2, f"seedlm-fpga compress: error: {message}\n")
    assert not out_path.exists() and not (tmp_path / "out.seedlm.partial").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.seedlm")]


def test_missing_input(tmp_path, capsys):
    _expect_error(capsys, tmp_path, [str(tmp_path / "nope.bin")], f"{tmp_path / 'nope.bin'}: no such file or folder")


def test_not_a_checkpoint(tmp_path, capsys):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(np.random.default_rng(0).integers(1, 127, 1000, dtype=np.uint8)))
    _expect_error(capsys, tmp_path, [str(junk)], f"{junk}: not a checkpoint (expected safetensors, a torch state "
                                                 f"dict, a llama2.c checkpoint or a Hugging Face model folder)")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_weights(tmp_path, capsys, bad):
    w = torch.randn(4, 16)
    w[1, 3] = bad
    w[2, 5] = bad
    _checkpoint(tmp_path / "m.safetensors", **{"layers.1.w2.weight": w})
    _expect_error(capsys, tmp_path, [str(tmp_path / "m.safetensors")],
                  "tensor 'layers.1.w2.weight' has 2 NaN/Inf weights")


def test_unknown_preset_and_bad_bias(tmp_path, capsys):
    _checkpoint(tmp_path / "m.safetensors")
    _expect_error(capsys, tmp_path, [str(tmp_path / "m.safetensors"), "--preset", "seedlm-5"],
                  "unknown preset 'seedlm-5' (choose from seedlm-4, seedlm-3)")
    _expect_error(capsys, tmp_path, [str(tmp_path / "m.safetensors"), "--bias", "big"],
                  "--bias must be 'auto', 'paper' or an integer, got 'big'")
    _expect_error(capsys, tmp_path, [str(tmp_path / "m.safetensors"), "--bias", "5000"],
                  "bias 5000 out of range -1000..1000")


def test_bad_device(tmp_path, capsys):
    _checkpoint(tmp_path / "m.safetensors")
    _expect_error(capsys, tmp_path, [str(tmp_path / "m.safetensors"), "--device", "tpu"],
                  "--device must be cpu or cuda, got 'tpu'")
    if not torch.cuda.is_available():
        _expect_error(capsys, tmp_path, [str(tmp_path / "m.safetensors"), "--device", "cuda"],
                      "--device cuda: no CUDA device available (torch.cuda.is_available() is False)")


def test_selected_tensor_narrower_than_a_block(tmp_path, capsys):
    _checkpoint(tmp_path / "m.safetensors", **{"layers.2.narrow.weight": torch.randn(8, 5)})
    _expect_error(capsys, tmp_path, [str(tmp_path / "m.safetensors"), "--include", "layers"],
                  "tensor 'layers.2.narrow.weight' has 5 columns, fewer than a block (C=8); leave it out of --include")


def test_error_in_a_later_tensor_leaves_no_partial_state(tmp_path, capsys, monkeypatch):
    _checkpoint(tmp_path / "m.safetensors")
    real = encoder.encode_tensor

    def fails_on_fp16(w, preset, **kw):
        if w.shape == (6, 8):
            raise encoder.EncoderInputError("CUDA requested but torch.cuda.is_available() is False")
        return real(w, preset, **kw)

    monkeypatch.setattr(encoder, "encode_tensor", fails_on_fp16)
    _expect_error(capsys, tmp_path, [str(tmp_path / "m.safetensors")],
                  "tensor 'layers.1.wq.weight': CUDA requested but torch.cuda.is_available() is False")


def test_installed_script_reports_one_line_and_exit_2(tmp_path):
    exe = shutil.which("seedlm-fpga") or pytest.fail("the seedlm-fpga script is not installed")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"definitely not weights\n" * 50)
    for argv, message in [
        (["compress", str(tmp_path / "missing.bin"), "-o", str(tmp_path / "o.seedlm")],
         f"{tmp_path / 'missing.bin'}: no such file or folder"),
        (["inspect", str(junk)], f"{junk}: not a valid .seedlm file (truncated, or not safetensors)"),
    ]:
        proc = subprocess.run([exe, *argv], capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode == 2
        assert proc.stderr == f"seedlm-fpga {argv[0]}: error: {message}\n"
        assert "Traceback" not in proc.stdout + proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.bin"]
