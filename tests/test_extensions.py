"""Dense-and-sparse outliers and the low-rank residual (format §5.5, §6.2): splitting, the exact
integer GEMV, the float reconstruction, bit counts and the container's version-2 parts."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from seedlm_samples import random_encoded

from seedlm_fpga.compressor.container import (bits_per_weight, read_container, read_header, write_container,
                                              write_safetensors)
from seedlm_fpga.compressor.encoder import auto_bias
from seedlm_fpga.core.extensions import (Extensions, LowRankPart, SparsePart, decode_extended, extension_bits,
                                         extension_int_matrix, gemv_extended, lowrank_bits, seedlm_unit, sparse_bits,
                                         split_tensor)
from seedlm_fpga.core.reference import PRESETS
from seedlm_fpga.errors import UserError


def _bias_of(w):
    return auto_bias(float(np.max(np.abs(w))))


def _random_ext(rng, rows, cols, nnz=5, rank=2, shifts=(18, 40)) -> Extensions:
    """Random valid parts; a shift of 40 takes Y past int64 (Python integers in the reference)."""
    flat = np.sort(rng.choice(rows * cols, nnz, replace=False))
    r, c = np.divmod(flat, cols)
    ptr = np.concatenate([[0], np.cumsum(np.bincount(r, minlength=rows))]).astype(np.uint16)
    return Extensions(
        sparse=SparsePart(ptr, c.astype(np.uint16), rng.integers(-32767, 32768, nnz).astype(np.int16), 21),
        lowrank=LowRankPart(rng.integers(-127, 128, (rows, rank)).astype(np.int8),
                            rng.integers(-127, 128, (cols, rank)).astype(np.int8),
                            np.array(shifts[:rank], dtype=np.uint8)))


def test_split_keeps_the_largest_weights_and_reconstructs_w():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((12, 40)) * 0.02
    w[2, 5], w[7, 33], w[0, 0] = 0.9, -1.3, 0.5  # the three largest
    dense, bias, ext = split_tensor(w, 16, 3 / w.size, 0, _bias_of)
    assert ext.lowrank is None and ext.sparse.nnz == 3
    assert list(ext.sparse.row_ptr[:9]) == [0, 1, 1, 2, 2, 2, 2, 2, 3]
    assert list(ext.sparse.col) == [0, 5, 33]
    # the bias follows what SeedLM sees: the tensor without its outliers
    assert bias == _bias_of(np.where(np.abs(w) >= 0.5, 0, w))
    total = dense + decode_extended(_plain(w.shape, bias), ext)
    np.testing.assert_allclose(total, w, rtol=0, atol=1e-15)
    # the outliers' int16 codes keep them within half a step of 2^shift units
    step = np.ldexp(1.0, ext.sparse.shift) * seedlm_unit(bias, 16)
    assert np.max(np.abs(dense.ravel()[[0, 85, 313]])) <= step / 2


def _plain(shape, bias):
    """An all-zero-blocks EncodedTensor (decodes to exactly 0)."""
    p = PRESETS["seedlm-4"]
    nb = -(-shape[1] // p.C)
    from seedlm_fpga.core.reference import EncodedTensor

    return EncodedTensor(np.ones((shape[0], nb), np.uint16), np.zeros((shape[0], nb), np.uint8),
                         np.zeros((shape[0], nb, p.P), np.int8), bias, p, shape)


def test_low_rank_split_removes_a_low_rank_signal():
    rng = np.random.default_rng(2)
    signal = np.outer(rng.standard_normal(30), rng.standard_normal(48))
    w = signal + 0.01 * rng.standard_normal((30, 48))
    dense, bias, ext = split_tensor(w, 16, 0, 1, _bias_of)
    assert ext.sparse is None and ext.lowrank.rank == 1
    assert np.linalg.norm(dense) < 0.05 * np.linalg.norm(w)


def _straight_integer_y(enc, ext, a):
    """Y by the definition, one weight at a time in Python ints: sum_c M[r, c] * a[c] with
    M = (acc << x) + (sparse << s) + sum_k (l * r) << f_k."""
    from seedlm_fpga.core.reference import block_acc

    acc = block_acc(enc.seeds, enc.q, enc.preset)
    rows, cols = enc.shape
    C = enc.preset.C
    lr, sp = ext.lowrank, ext.sparse
    sparse = {}
    for r in range(rows):
        for k in range(int(sp.row_ptr[r]), int(sp.row_ptr[r + 1])):
            sparse[(r, int(sp.col[k]))] = int(sp.val[k]) << sp.shift
    y = []
    for r in range(rows):
        total = 0
        for c in range(cols):
            m = int(acc[r, c // C, c % C]) << int(enc.x[r, c // C])
            m += sparse.get((r, c), 0)
            m += sum((int(lr.left[r, k]) * int(lr.right[c, k])) << int(lr.shift[k]) for k in range(lr.rank))
            total += m * int(a[c])
        y.append(total)
    return y


def test_integer_gemv_is_exact_and_matches_the_float_reconstruction():
    rng = np.random.default_rng(3)
    enc = random_encoded(rng, 7, 21, bias=-14)
    ext = _random_ext(rng, 7, 21)
    a = rng.integers(-127, 128, 21)
    y = gemv_extended(enc, ext, a)
    assert list(y) == _straight_integer_y(enc, ext, a)
    # float64: Y * u equals W_hat @ a to within the rounding of the sums (format §6.2's bound)
    w_hat = decode_extended(enc, ext)
    u = seedlm_unit(enc.bias, enc.preset.K)
    got = np.array([float(v) for v in y]) * u
    bound = 1e-13 * (np.abs(w_hat) @ np.abs(a))
    assert np.all(np.abs(got - w_hat @ a) <= bound)


def test_taking_rows_reorders_both_parts_as_the_matrix():
    rng = np.random.default_rng(5)
    ext = _random_ext(rng, 9, 13, nnz=6, rank=2)
    codes = extension_int_matrix(ext, (9, 13))
    for idx in (np.array([8, 0, 3, 3, 1]), np.arange(9)[::-1], np.zeros(0, dtype=np.int64)):
        taken = ext.take_rows(idx)
        assert np.array_equal(extension_int_matrix(taken, (len(idx), 13)), codes[idx])
        assert taken.sparse.row_ptr.dtype == ext.sparse.row_ptr.dtype and taken.sparse.shift == ext.sparse.shift


def test_bits_counted_by_hand():
    # CSR of 4 values in a 10 x 40 matrix: 4 * (16-bit value + 16-bit column) + 11 16-bit row pointers + shift byte
    assert sparse_bits(10, 40, 4) == 4 * 32 + 11 * 16 + 8 == 312
    assert sparse_bits(2, 70000, 1) == 48 + 3 * 16 + 8  # columns past 65,536 take 32-bit indices
    assert sparse_bits(2, 70000, 70000) == 70000 * 48 + 3 * 32 + 8  # and 65,536 values 32-bit row pointers
    # rank 2: int8 codes for 10 + 40 entries per component, one shift byte each
    assert lowrank_bits(10, 40, 2) == 2 * 50 * 8 + 16 == 816
    enc = random_encoded(np.random.default_rng(0), 10, 40)  # seedlm-4: 5 blocks of 32 bits per row
    ext = _random_ext(np.random.default_rng(0), 10, 40, nnz=4, rank=2)
    assert extension_bits((10, 40), ext) == 312 + 816
    assert bits_per_weight(enc, ext) == (10 * 5 * 32 + 312 + 816) / 400


def test_container_round_trip_with_extensions(tmp_path):
    rng = np.random.default_rng(4)
    encs = {"a": random_encoded(rng, 6, 16), "b": random_encoded(rng, 5, 30, "seedlm-3", bias=-9)}
    ext = _random_ext(rng, 6, 16)
    path = tmp_path / "m.seedlm"
    write_container(path, encs, {"n": torch.ones(3)}, extensions={"a": ext})
    with safe_open(str(path), framework="np") as f:
        meta = f.metadata()
        assert meta["format_version"] == "2"
        assert json.loads(meta["a"])["sparse"] == {"nnz": 5, "shift": 21} and json.loads(meta["a"])["rank"] == 2
        assert "sparse" not in json.loads(meta["b"])
        assert f.get_tensor("a.sp_col").dtype == np.uint16 and f.get_tensor("a.sp_rowptr").shape == (7,)
    c = read_container(path)
    assert set(c.extensions) == {"a"} and list(c.carried) == ["n"]
    got = c.extensions["a"]
    for part in ("row_ptr", "col", "val"):
        np.testing.assert_array_equal(getattr(got.sparse, part), getattr(ext.sparse, part))
    for part in ("left", "right", "shift"):
        np.testing.assert_array_equal(getattr(got.lowrank, part), getattr(ext.lowrank, part))
    assert read_header(path).carried == ["n"]
    # a file without extensions stays format_version 1, what every earlier reader reads
    write_container(path, encs, {})
    with safe_open(str(path), framework="np") as f:
        assert f.metadata()["format_version"] == "1"


def _rewrite(path, tensors=None, meta=None):
    with safe_open(str(path), framework="pt") as f:
        t, m = {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata())
    t.update(tensors or {})
    m.update(meta or {})
    write_safetensors(path, t, m)


BAD = {
    "v1 with parts": (dict(meta={"format_version": "1"}), "tensor 'a': sparse, rank need format_version 2 (the file says 1)"),
    "row pointers": (dict(tensors={"a.sp_rowptr": torch.tensor([0, 1, 1, 2, 5, 4, 5], dtype=torch.uint16)}),
                     "tensor 'a': sp_rowptr must rise from 0 to nnz = 5"),
    "column": (dict(tensors={"a.sp_col": torch.tensor([0, 1, 2, 3, 16], dtype=torch.uint16)}),
               "tensor 'a': sp_col holds a column index >= cols = 16"),
    "low-rank code": (dict(tensors={"a.lr_left": torch.full((6, 2), -128, dtype=torch.int8)}),
                      "tensor 'a': lr_left holds -128 (codes are -127..127)"),
    "rank": (dict(meta={"a": None}), "tensor 'a': rank must be an integer in 1..min(rows, cols) = 6, got 7"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_reader_refuses_bad_extension_parts(tmp_path, case):
    rng = np.random.default_rng(5)
    path = tmp_path / "m.seedlm"
    write_container(path, {"a": random_encoded(rng, 6, 16)}, {}, extensions={"a": _random_ext(rng, 6, 16)})
    how, message = BAD[case]
    if case == "rank":
        with safe_open(str(path), framework="np") as f:
            entry = json.loads(f.metadata()["a"])
        how = dict(meta={"a": json.dumps(entry | {"rank": 7})})
    _rewrite(path, **how)
    with pytest.raises(UserError) as exc:
        read_container(path)
    assert str(exc.value) == f"{path}: {message}"


def test_model_integer_linear_with_extensions_equals_the_reference():
    from seedlm_fpga.evaluation.llama_model import IntegerSeedLMLinear

    rng = np.random.default_rng(6)
    enc = random_encoded(rng, 5, 24, bias=-14)
    ext = _random_ext(rng, 5, 24, nnz=7, rank=2, shifts=(18, 19))
    a = rng.integers(-127, 128, (3, 24))
    lin = IntegerSeedLMLinear(enc.seeds, enc.x, enc.q, enc.bias, enc.preset, 24, ext)
    got = lin.integer_gemv(torch.from_numpy(a)).numpy()
    for n in range(3):
        assert [int(v) for v in got[n]] == list(gemv_extended(enc, ext, a[n]))
