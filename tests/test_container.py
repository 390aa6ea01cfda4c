"""The .seedlm container (format §5.1): layout, round trips, determinism, atomicity, validation."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from seedlm_samples import random_encoded, sample_container

from seedlm_fpga.compressor.container import (bits_per_weight, packed_bytes, read_container,
                                              write_container, write_safetensors)
from seedlm_fpga.errors import UserError
from seedlm_fpga.core.files import atomic_write


def _raw(path):
    """(tensors, metadata) of a safetensors file, as the safetensors library reads them."""
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata())


def _assert_same_encoded(a, b):
    assert a.shape == b.shape and a.bias == b.bias and a.preset == b.preset
    for part in ("seeds", "x", "q"):
        assert getattr(a, part).dtype == getattr(b, part).dtype
        np.testing.assert_array_equal(getattr(a, part), getattr(b, part))


def test_layout_follows_spec_5_1(tmp_path):
    path = tmp_path / "m.seedlm"
    compressed, carried, _ = sample_container(path)
    tensors, meta = _raw(path)
    assert meta["format"] == "seedlm" and meta["format_version"] == "1"
    assert json.loads(meta["layers.0.wq"]) == {"shape": [6, 16], "K": 16, "C": 8, "P": 3, "taps": [0, 1, 3, 12],
                                               "bias": -12, "dtype": "float32", "preset": "seedlm-4"}
    assert json.loads(meta["layers.0.w2"]) == {"shape": [5, 30], "K": 16, "C": 12, "P": 4,
                                               "taps": [0, 1, 3, 12], "bias": -9, "dtype": "bfloat16",
                                               "preset": "seedlm-3"}
    # seedlm-3 on 30 columns: 3 blocks of 12 per row (6 zero-padded weights).
    assert tensors["layers.0.w2.seed"].dtype == torch.uint16 and tensors["layers.0.w2.seed"].shape == (5, 3)
    assert tensors["layers.0.w2.exp"].dtype == torch.uint8 and tensors["layers.0.w2.exp"].shape == (5, 3)
    assert tensors["layers.0.w2.coef"].dtype == torch.int8 and tensors["layers.0.w2.coef"].shape == (5, 3, 4)
    np.testing.assert_array_equal(tensors["layers.0.wq.coef"].numpy(), compressed["layers.0.wq"].q)
    assert set(tensors) == {f"{n}.{p}" for n in compressed for p in ("seed", "exp", "coef")} | set(carried)
    for name, t in carried.items():
        assert tensors[name].dtype == t.dtype and torch.equal(tensors[name], t)


def test_read_gives_back_what_was_written(tmp_path):
    path = tmp_path / "m.seedlm"
    compressed, carried, dtypes = sample_container(path)
    c = read_container(path)
    assert list(c.compressed) == ["layers.0.w2", "layers.0.wq"] and c.dtypes == dtypes
    for name in compressed:
        _assert_same_encoded(c.compressed[name], compressed[name])
    assert set(c.carried) == set(carried)
    for name, t in carried.items():
        assert c.carried[name].dtype == t.dtype and torch.equal(c.carried[name], t)


def test_sizes():
    rng = np.random.default_rng(1)
    enc = random_encoded(rng, 3, 30, "seedlm-3")  # nb = 3 blocks of 36 bits for 30 weights
    assert bits_per_weight(enc) == 3 * 36 / 30
    assert packed_bytes(enc) == (3 * 3 * 36 + 7) // 8


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 5), cols=st.integers(1, 40), preset=st.sampled_from(["seedlm-4", "seedlm-3"]),
       bias=st.integers(-1000, 1000), seed=st.integers(0, 2**32 - 1),
       dtype=st.sampled_from(["float32", "float16", "bfloat16", "float64"]),
       carried_shape=st.lists(st.integers(0, 4), max_size=3))
def test_round_trip_property(tmp_path_factory, rows, cols, preset, bias, seed, dtype, carried_shape):
    from seedlm_fpga.core.reference import PRESETS, bias_range

    cols = max(cols, PRESETS[preset].C)
    lo, hi = bias_range(dtype)  # format §3.2: the biases that make sense for the dtype
    bias = min(max(bias, lo), hi)
    rng = np.random.default_rng(seed)
    enc = random_encoded(rng, rows, cols, preset, bias)
    extra = torch.from_numpy(rng.standard_normal(carried_shape).astype(np.float32))
    path = tmp_path_factory.mktemp("rt") / "p.seedlm"
    write_container(path, {"w": enc}, {"extra": extra}, dtypes={"w": dtype})
    c = read_container(path)
    _assert_same_encoded(c.compressed["w"], enc)
    assert c.dtypes == {"w": dtype}
    assert torch.equal(c.carried["extra"], extra)


def test_same_input_gives_identical_bytes_across_processes(tmp_path):
    # safetensors' own writer orders metadata differently in every process; ours must not.
    script = ("import sys; sys.path.insert(0, sys.argv[2]); from seedlm_samples import sample_container; "
              "sample_container(sys.argv[1])")
    here = str(Path(__file__).parent)
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "a.seedlm"), here], check=True)
    sample_container(tmp_path / "b.seedlm")
    assert (tmp_path / "a.seedlm").read_bytes() == (tmp_path / "b.seedlm").read_bytes()


def test_failed_write_leaves_nothing(tmp_path):
    path = tmp_path / "m.seedlm"
    with pytest.raises(UserError, match="^tensor 'c' has dtype torch.complex64, which safetensors cannot store$"):
        write_safetensors(path, {"a": torch.zeros(3), "c": torch.zeros(2, dtype=torch.complex64)})
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(path) as f:
            f.write(b"half")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_replaces_old_file(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"old")
    with atomic_write(path) as f:
        f.write(b"new")
    assert path.read_bytes() == b"new" and list(tmp_path.iterdir()) == [path]


def test_writer_refuses_name_collisions(tmp_path):
    enc = random_encoded(np.random.default_rng(0), 2, 8)
    with pytest.raises(UserError, match=r"^carried tensor 'w.seed' collides with a compressed tensor's name or part$"):
        write_container(tmp_path / "m.seedlm", {"w": enc}, {"w.seed": torch.zeros(1)})
    with pytest.raises(UserError, match="^tensor name 'format' collides with a reserved metadata key$"):
        write_container(tmp_path / "m.seedlm", {"format": enc}, {})
    assert list(tmp_path.iterdir()) == []


# --- validation: every way a file can disagree with itself ----------------------------------------

def _corrupt(path, *, tensors=None, drop=(), meta=None):
    """Rewrite `path` with some tensors replaced or dropped and some metadata entries replaced."""
    t, m = _raw(path)
    t.update(tensors or {})
    for name in drop:
        t.pop(name, None)
        m.pop(name, None)
    m.update(meta or {})
    write_safetensors(path, t, m)


def _entry(**changes):
    e = {"shape": [6, 16], "K": 16, "C": 8, "P": 3, "taps": [0, 1, 3, 12], "bias": -12, "dtype": "float32",
         "preset": "seedlm-4"}
    e.update(changes)
    return json.dumps({k: v for k, v in e.items() if v is not None})


W = "tensor 'layers.0.wq'"
CORRUPTIONS = {
    "seed shape": (dict(tensors={"layers.0.wq.seed": torch.ones(6, 3, dtype=torch.uint16)}),
                   f"{W}: .seed has shape [6, 3], expected [6, 2] for shape [6, 16] with seedlm-4"),
    "metadata shape": (dict(meta={"layers.0.wq": _entry(shape=[6, 17])}),
                       f"{W}: .seed has shape [6, 2], expected [6, 3] for shape [6, 17] with seedlm-4"),
    "coef P": (dict(tensors={"layers.0.wq.coef": torch.zeros(6, 2, 4, dtype=torch.int8)}),
               f"{W}: .coef has shape [6, 2, 4], expected [6, 2, 3] for shape [6, 16] with seedlm-4"),
    "seed dtype": (dict(tensors={"layers.0.wq.seed": torch.ones(6, 2, dtype=torch.int32)}),
                   f"{W}: .seed has dtype int32, expected uint16"),
    "seed zero": (dict(tensors={"layers.0.wq.seed": torch.zeros(6, 2, dtype=torch.uint16)}),
                  f"{W}: seeds out of range 1..65535"),
    "exp range": (dict(tensors={"layers.0.wq.exp": torch.full((6, 2), 16, dtype=torch.uint8)}),
                  f"{W}: exponent codes out of range 0..15"),
    "coef range": (dict(tensors={"layers.0.wq.coef": torch.full((6, 2, 3), -9, dtype=torch.int8)}),
                   f"{W}: coefficients out of range -8..7"),
    "missing part": (dict(drop=["layers.0.wq.coef"]), f"{W}: missing layers.0.wq.coef"),
    "no metadata": (dict(drop=["layers.0.wq"]), "tensor 'layers.0.wq': blocks present but no metadata entry"),
    "bad json": (dict(meta={"layers.0.wq": "{shape"}), f"{W}: metadata entry is not valid JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
    "missing key": (dict(meta={"layers.0.wq": _entry(bias=None, taps=None)}), f"{W}: metadata entry lacks taps, bias"),
    "bad dtype": (dict(meta={"layers.0.wq": _entry(dtype="int8")}),
                  f"{W}: dtype 'int8' is not one of float16, bfloat16, float32, float64"),
    "preset mismatch": (dict(meta={"layers.0.wq": _entry(C=4)}),
                        f"{W}: parameters K=16, C=4, P=3, taps=[0, 1, 3, 12] do not match preset 'seedlm-4'"),
    "bad taps": (dict(meta={"layers.0.wq": _entry(taps=[0, 16])}),
                 f"{W}: taps [0, 16] are not the maximal-length taps [0, 1, 3, 12] of a 16-bit LFSR (format §1)"),
    "bias type": (dict(meta={"layers.0.wq": _entry(bias=1.5)}), f"{W}: bias must be an integer, got 1.5"),
    "bad shape": (dict(meta={"layers.0.wq": _entry(shape=[6])}), f"{W}: shape [6] is not [rows, cols] of positive integers"),
    "format": (dict(meta={"format": "other"}), "not a .seedlm file (metadata format is 'other', expected 'seedlm')"),
    "version": (dict(meta={"format_version": "3"}), "unsupported .seedlm format_version '3' (this reader knows 1, 2)"),
    "orphan entry": (dict(meta={"ghost": _entry()}), "tensor 'ghost': missing ghost.seed, ghost.exp, ghost.coef"),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_reader_rejects_inconsistent_files(tmp_path, case):
    path = tmp_path / "m.seedlm"
    sample_container(path)
    how, message = CORRUPTIONS[case]
    _corrupt(path, **how)
    with pytest.raises(UserError) as exc:
        read_container(path)
    assert str(exc.value) == f"{path}: {message}"


def test_reader_rejects_truncated_and_foreign_files(tmp_path):
    path = tmp_path / "m.seedlm"
    sample_container(path)
    data = path.read_bytes()
    for cut in (len(data) - 1, len(data) // 2, 12, 3, 0):
        path.write_bytes(data[:cut])
        with pytest.raises(UserError) as exc:
            read_container(path)
        assert str(exc.value) == f"{path}: not a valid .seedlm file (truncated, or not safetensors)"
    with pytest.raises(UserError) as exc:
        read_container(tmp_path / "missing.seedlm")
    assert str(exc.value) == f"{tmp_path / 'missing.seedlm'}: no such file"
    write_safetensors(path, {"a": torch.zeros(2)})  # a safetensors file, but no .seedlm metadata
    with pytest.raises(UserError) as exc:
        read_container(path)
    assert str(exc.value) == f"{path}: not a .seedlm file (metadata format is None, expected 'seedlm')"
