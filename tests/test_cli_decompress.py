"""`seedlm-fpga decompress`: a complete state dict, original or chosen dtypes, bad input."""
from __future__ import annotations

import pytest
import torch
from safetensors import safe_open
from seedlm_samples import sample_container

from seedlm_fpga.cli.main import main
from seedlm_fpga.core.reference import decode_tensor


def _load(path):
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


@pytest.mark.parametrize("dtype", [None, "float32", "float16", "bfloat16"])
def test_decompress_gives_the_full_state_dict(tmp_path, capsys, dtype):
    compressed, carried, dtypes = sample_container(tmp_path / "m.seedlm")
    out_path = tmp_path / "m.safetensors"
    argv = ["decompress", str(tmp_path / "m.seedlm"), "-o", str(out_path)] + (["--dtype", dtype] if dtype else [])
    assert main(argv) == 0
    assert capsys.readouterr().out == (f"wrote {out_path}: 2 decoded and 4 carried tensors "
                                       f"({out_path.stat().st_size:,} bytes)\n")
    got = _load(out_path)
    assert set(got) == set(compressed) | set(carried)
    for name, enc in compressed.items():
        want = decode_tensor(enc.seeds, enc.x, enc.q, enc.bias, enc.preset, enc.shape[1])
        target = getattr(torch, dtype or dtypes[name])
        assert got[name].dtype == target and got[name].shape == enc.shape
        assert torch.equal(got[name], torch.from_numpy(want).to(target))
    for name, t in carried.items():  # carried tensors come back exactly, whatever --dtype says
        assert got[name].dtype == t.dtype and torch.equal(got[name], t)


def test_decompress_is_deterministic(tmp_path):
    sample_container(tmp_path / "m.seedlm")
    for out in ("a", "b"):
        assert main(["decompress", str(tmp_path / "m.seedlm"), "-o", str(tmp_path / f"{out}.safetensors")]) == 0
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()


def test_bad_input(tmp_path, capsys):
    sample_container(tmp_path / "m.seedlm")
    data = (tmp_path / "m.seedlm").read_bytes()
    (tmp_path / "cut.seedlm").write_bytes(data[: len(data) - 100])
    out = tmp_path / "o.safetensors"
    cases = [
        (["--dtype", "int8"], tmp_path / "m.seedlm", "--dtype must be float32, float16 or bfloat16, got 'int8'"),
        ([], tmp_path / "cut.seedlm", f"{tmp_path / 'cut.seedlm'}: not a valid .seedlm file (truncated, or not safetensors)"),
        ([], tmp_path / "none.seedlm", f"{tmp_path / 'none.seedlm'}: no such file"),
    ]
    for extra, src, message in cases:
        assert main(["decompress", str(src), "-o", str(out), *extra]) == 2
        assert capsys.readouterr().err == f"seedlm-fpga decompress: error: {message}\n"
        assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.seedlm", "m.seedlm"]
