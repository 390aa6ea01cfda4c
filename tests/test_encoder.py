"""The encoder's exact seed search against the exhaustive format §4 search, and its API."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from seedlm_fpga.compressor import encoder
from seedlm_fpga.compressor.encoder import (EncodedTensor, brute_force_search, encode_tensor, resolve_bias,
                                            search_blocks)
from seedlm_fpga.core.lfsr import basis_U
from seedlm_fpga.core.reference import (PAPER_BIAS, blocks_per_row, decode_blocks, decode_tensor,
                                              get_preset)
from seedlm_fpga.compressor.search_tables import search_tables

PRESETS = ["seedlm-4", "seedlm-3"]
KERNELS = ["torch", "numba", "gemm"]
CUDA = torch.cuda.is_available()


def hard_blocks(preset, n_gauss: int, seed: int = 0) -> np.ndarray:
    """Zero, tiny, huge, Gaussian, padded-tail, ill-conditioned and degenerate blocks."""
    C, P = preset.C, preset.P
    rng = np.random.default_rng(seed)
    t = search_tables(preset)
    ill_seeds = t.cycle[np.argsort(t.inv_sigma_min)[-4:]]  # worst-conditioned U(s)
    U = basis_U(ill_seeds, C, P)
    rows = [np.zeros(C)]
    rows += [rng.standard_normal(C) * s for s in (1e-30, 1e30, 2.0 ** -40, 3e-3)]
    for u in U:  # w = U(s) t: the ill-conditioned seed fits exactly, on the grid and off it
        q = rng.integers(-8, 8, P)
        rows.append(u @ (q * 2.0 ** -20))
        rows.append(u @ rng.standard_normal(P) * 0.05 + 1e-9 * rng.standard_normal(C))
    for keep in (1, 2, C // 2, C - 1):  # padded tails
        w = np.zeros(C)
        w[:keep] = rng.standard_normal(keep)
        rows.append(w)
    rows += [np.full(C, 0.5), np.eye(C)[3] * -7.0, np.linspace(-1, 1, C)]
    rows += list(rng.standard_normal((n_gauss, C)) * 0.02)
    return np.array(rows)


@pytest.mark.parametrize("name,n_gauss,bias", [("seedlm-4", 90, -17), ("seedlm-3", 50, -16)])
def test_search_matches_brute_force(name, n_gauss, bias):
    preset = get_preset(name)
    blocks = hard_blocks(preset, n_gauss)
    ref = [brute_force_search(b, preset, bias) for b in blocks]
    ref_err = np.array([r[3] for r in ref])
    ref_seed = np.array([r[0] for r in ref])
    for kernel in KERNELS:
        stats = {}
        seeds, x, q, err = search_blocks(blocks, preset, bias, kernel=kernel, stats=stats)
        assert seeds.dtype == np.uint16 and x.dtype == np.uint8 and q.dtype == np.int8
        np.testing.assert_allclose(err, ref_err, rtol=1e-9, atol=0, err_msg=kernel)
        # same seed unless two seeds tie to rounding
        tie = np.isclose(err, ref_err, rtol=1e-12, atol=0) & (seeds != ref_seed)
        assert np.all((seeds == ref_seed) | tie), kernel
        # the returned (seed, x, q) reproduce the returned error through the reference decoder
        w_hat = decode_blocks(seeds.astype(np.int64), x, q, bias, preset)
        np.testing.assert_allclose(((blocks - w_hat) ** 2).sum(1), err, rtol=1e-12, atol=0)
        assert np.all(q >= -8) and np.all(q <= 7) and np.all(x <= 15)
    assert ref_seed[0] == 1 and ref_err[0] == 0.0  # zero block: seed 1, error 0


def test_brute_force_is_spec4():
    """The reference itself: its error is ||w - decode||^2 and no seed of a sample does better."""
    preset = get_preset("seedlm-4")
    rng = np.random.default_rng(3)
    w = rng.standard_normal(preset.C)
    seed, x, q, err = brute_force_search(w, preset, -17)
    w_hat = decode_blocks(np.array([seed]), np.array([x]), q[None], -17, preset)[0]
    assert err == pytest.approx(((w - w_hat) ** 2).sum(), rel=1e-12)
    seeds = rng.integers(1, 1 << 16, 300)
    U = basis_U(seeds, preset.C, preset.P)
    from seedlm_fpga.core.reference import quantize
    t = np.einsum("spc,c->sp", np.linalg.pinv(U), w)
    xs, qs = quantize(t, -17)
    errs = ((w - decode_blocks(seeds, xs, qs, -17, preset)) ** 2).sum(1)
    assert errs.min() >= err * (1 - 1e-12)


@pytest.mark.parametrize("name", PRESETS)
def test_float32_keys_are_lower_bounds(name):
    """Every pruning key stays below the float64 least-squares residual, for every seed."""
    from seedlm_fpga.compressor import search_cpu as sc

    preset = get_preset(name)
    C, P = preset.C, preset.P
    t = search_tables(preset)
    U = basis_U(t.cycle, C, P)  # position order
    rng = np.random.default_rng(7)
    for w in [rng.standard_normal(C), U[t.ill_pos[0]] @ rng.standard_normal(P), np.eye(C)[0]]:
        w = w / 2.0 ** np.frexp(np.abs(w).max())[1]
        fit = np.einsum("ncp,npk,k->nc", U, t.pinv, w)
        residual = ((w - fit) ** 2).sum(1)
        w32, ww = w.astype(np.float32), np.float32((w * w).sum())
        N = t.n_seeds
        corr = np.empty(N + P + 1, dtype=np.float32)
        sc._correlate(w32, 0, N + P + 1, C, P, t.g32_ext, corr)
        key = np.empty(N, dtype=np.float32)
        sc._keys(ww, np.float32(0), 0, N, P, t.a32, t.margin, corr, np.empty(N, dtype=np.float32), key)
        ok = np.ones(N, bool)
        ok[t.ill_pos] = False
        assert np.all(key[ok] <= residual[ok])
        assert np.all(key[~ok] > 1e20)  # ill seeds are excluded here ...
        ill = np.empty(len(t.ill_pos), dtype=np.float32)
        sc._ill_keys(w32, ww, C, P, t.ill_q32, t.ill_margin, np.empty_like(ill), ill)
        assert np.all(ill <= residual[t.ill_pos])  # ... and bounded through their orthonormal basis
        # the bound is useful: within a small relative slack of the residual for most seeds
        assert np.median((residual[ok] - key[ok]) / ww) < 1e-4
        # the torch path's projector-GEMM bound, every seed (ill-conditioned ones included)
        tkey = encoder._torch_search(preset, "cpu").keys(torch.tensor(w[None]))[0].numpy()
        assert np.all(tkey[:N] <= residual)
        assert np.all(tkey[N:] > 1e20)  # padding to whole segments: never a candidate
        # pass 1 of the numba kernel: the fused keys of P = 3 / P = 4, same bound
        fused = np.empty(N, dtype=np.float32)
        (sc._keys3 if P == 3 else sc._keys4)(ww, 0, N, t.a32, t.margin, corr, fused)
        assert np.all(fused[ok] <= residual[ok]) and np.all(fused[~ok] > 1e20)
        # ... and its segment minima (ww - the largest gain), below every non-ill seed's residual
        f1, buf = np.empty(1, dtype=np.float32), np.empty(N, dtype=np.float32)
        sm = np.empty(-(-N // sc.SEG), dtype=np.int32)
        sc._segment_minima(ww, 0, N, P, t.a32, t.margin, corr, buf.copy(), buf, buf.view(np.int32), f1,
                           f1.view(np.int32), sm)
        sm = np.where(sm < 0, sm ^ 0x7FFFFFFF, sm).astype(np.int32).view(np.float32)
        lowest_ok = np.array([np.where(ok, residual, np.inf)[s:s + sc.SEG].min() for s in range(0, N, sc.SEG)])
        assert np.all(sm <= lowest_ok) and np.all(sm >= lowest_ok - 2e-3 * ww)
        # pass 1 of the gemm kernel: per-segment minima of the projector bound, every seed
        segmin = gemm_segment_keys(w, preset)
        lowest = np.array([residual[s:s + sc.SEG].min() for s in range(0, N, sc.SEG)])
        assert len(segmin) == len(lowest) and np.all(segmin <= lowest)
        from seedlm_fpga.compressor.search_torch import projector_margin
        assert np.all(segmin >= lowest - 2 * projector_margin(C) * ww)  # and tight: the margin only


def gemm_segment_keys(w: np.ndarray, preset) -> np.ndarray:
    """The gemm kernel's segment minima of one normalised block, back from ordered int32 to float."""
    from seedlm_fpga.compressor import search_gemm

    i = search_gemm.segment_minima(w[None], preset)[0]
    return np.where(i < 0, i ^ 0x7FFFFFFF, i).astype(np.int32).view(np.float32).astype(np.float64)


def test_resolve_bias():
    preset = get_preset("seedlm-4")
    w = np.array([[0.75, -0.1], [0.2, 0.0]])
    assert resolve_bias("paper", w, preset) == PAPER_BIAS == -10
    assert resolve_bias(-12, w, preset) == -12
    assert resolve_bias("3", w, preset) == 3
    # the documented rule: b = floor(log2 max|W|) - 17 + AUTO_HEADROOM
    assert resolve_bias("auto", w, preset) == math.floor(math.log2(0.75)) - 17 + encoder.AUTO_HEADROOM
    assert resolve_bias("auto", -w * 2.0 ** 40, preset) == resolve_bias("auto", w, preset) + 40
    assert resolve_bias("auto", np.zeros((2, 8)), preset) == PAPER_BIAS
    with pytest.raises(ValueError) as e:
        resolve_bias("big", w, preset)
    assert str(e.value) == "unknown bias 'big' (use 'auto', 'paper' or an integer)"
    with pytest.raises(ValueError) as e:
        resolve_bias(5000, w, preset)
    assert str(e.value) == "bias 5000 out of range -1000..1000"
    with pytest.raises(ValueError):
        resolve_bias(True, w, preset)


def test_bad_input_messages():
    preset = get_preset("seedlm-4")
    cases = [
        (np.zeros(16), "weights must be a 2-D array (rows, cols), got shape (16,)"),
        (np.zeros((2, 5)), "rows of 5 weights are shorter than one block (C=8 for seedlm-4)"),
        (np.array([[1.0] * 7 + [np.nan]]), "weights contain non-finite values (NaN or inf)"),
        (np.array([[1.0] * 8 + [-np.inf]]), "weights contain non-finite values (NaN or inf)"),
        (np.zeros((2, 8), dtype=complex), "weights must be real numbers, got dtype complex128"),
    ]
    for w, msg in cases:
        with pytest.raises(ValueError) as e:
            encode_tensor(w, preset)
        assert str(e.value) == msg
    with pytest.raises(ValueError) as e:
        encode_tensor(np.zeros((2, 8)), preset, device="tpu")
    assert str(e.value) == "unknown device 'tpu' (use 'cpu' or 'cuda')"
    from seedlm_fpga.errors import UserError
    assert isinstance(e.value, UserError)  # the CLI prints it as one line


@pytest.mark.skipif(CUDA, reason="CUDA is present")
def test_cuda_absent_message():
    with pytest.raises(ValueError) as e:
        encode_tensor(np.zeros((2, 8)), get_preset("seedlm-4"), device="cuda")
    assert str(e.value) == "CUDA requested but torch.cuda.is_available() is False"


@pytest.mark.parametrize("name,lo,hi", [("seedlm-4", 0.11, 0.14), ("seedlm-3", 0.21, 0.25)])
def test_encode_tensor_gaussian(name, lo, hi):
    preset = get_preset(name)
    rng = np.random.default_rng(11)
    cols = 250  # not a multiple of C: rows are padded
    w = (rng.standard_normal((40, cols)) * 0.02).astype(np.float32)
    done = []
    enc = encode_tensor(w, preset, progress=done.append)
    nb = blocks_per_row(cols, preset.C)
    assert isinstance(enc, EncodedTensor) and enc.shape == (40, cols) and enc.preset == preset
    assert enc.seeds.shape == (40, nb) and enc.seeds.dtype == np.uint16
    assert enc.x.shape == (40, nb) and enc.x.dtype == np.uint8
    assert enc.q.shape == (40, nb, preset.P) and enc.q.dtype == np.int8
    assert sum(done) == 40 * nb
    w_hat = enc.decode()
    np.testing.assert_array_equal(w_hat, decode_tensor(enc.seeds, enc.x, enc.q, enc.bias, preset, cols))
    rel = np.linalg.norm(w - w_hat) / np.linalg.norm(w)
    assert lo <= rel <= hi
    # every block is the exact arg-min for its padded content
    padded = np.zeros((40, nb * preset.C))
    padded[:, :cols] = w
    blocks = padded.reshape(-1, preset.C)
    for i in np.random.default_rng(0).choice(len(blocks), 4, replace=False):
        s, x, q, err = brute_force_search(blocks[i], preset, enc.bias)
        got = ((blocks[i] - decode_blocks(enc.seeds.reshape(-1)[i:i + 1].astype(np.int64),
                                          enc.x.reshape(-1)[i:i + 1], enc.q.reshape(-1, preset.P)[i:i + 1],
                                          enc.bias, preset)[0]) ** 2).sum()
        assert got == pytest.approx(err, rel=1e-9)


def test_chunks_bound_memory(monkeypatch):
    assert encoder.chunk_rows(1024) * 1024 <= encoder.CHUNK_BLOCKS
    assert encoder.chunk_rows(10 ** 9) == 1  # one row per chunk at least
    # a 28672 x 8192 seedlm-4 tensor: 64 rows (65,536 blocks, 4 MB of float64) per chunk
    assert encoder.chunk_rows(blocks_per_row(8192, 8)) == 64
    preset = get_preset("seedlm-4")
    w = np.random.default_rng(5).standard_normal((12, 40))
    whole = encode_tensor(w, preset, bias=-15)
    monkeypatch.setattr(encoder, "CHUNK_BLOCKS", 10)  # 2 rows of 5 blocks per chunk
    done = []
    chunked = encode_tensor(w, preset, bias=-15, progress=done.append)
    assert done == [10] * 6
    for a, b in [(whole.seeds, chunked.seeds), (whole.x, chunked.x), (whole.q, chunked.q)]:
        np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(not CUDA, reason="CUDA not available")
@pytest.mark.parametrize("name", PRESETS)
def test_cuda_matches_brute_force(name):
    preset = get_preset(name)
    blocks = hard_blocks(preset, 40, seed=2)
    ref_err = np.array([brute_force_search(b, preset, -16)[3] for b in blocks])
    seeds, x, q, err = search_blocks(blocks, preset, -16, device="cuda")
    np.testing.assert_allclose(err, ref_err, rtol=1e-9, atol=0)
    w = np.random.default_rng(1).standard_normal((16, 64))
    a, b = encode_tensor(w, preset, device="cuda"), encode_tensor(w, preset)
    np.testing.assert_allclose(((w - a.decode()) ** 2).sum(), ((w - b.decode()) ** 2).sum(), rtol=1e-9)


def test_ordered_integers_keep_float_order():
    """The numba kernel compares segment minima as order-preserving int32s of float32 keys."""
    from seedlm_fpga.compressor.search_cpu import _ordered

    rng = np.random.default_rng(7)
    vals = np.concatenate([rng.standard_normal(200) * 10.0 ** rng.integers(-40, 38, 200),
                           [0.0, -0.0, 1e-45, -1e-45, 3.0e38, -3.0e38, 1.0, np.nextafter(1.0, 2.0)]])
    vals = vals.astype(np.float32)
    f1 = np.empty(1, dtype=np.float32)
    ords = np.array([_ordered(v, f1, f1.view(np.int32)) for v in vals])
    for i in range(len(vals)):
        assert np.all((vals < vals[i]) <= (ords < ords[i]))  # a < b  =>  ord(a) < ord(b)


@pytest.mark.parametrize("name", PRESETS)
def test_same_encoding_for_any_input_dtype_and_kernel(name):
    """Seeds, x and q depend only on the weights' values: float32 or float64 input, numba or torch."""
    preset = get_preset(name)
    w32 = (np.random.default_rng(11).standard_normal((4, 10 * preset.C)) * 0.03).astype(np.float32)
    a, b = encode_tensor(w32, preset), encode_tensor(w32.astype(np.float64), preset)
    for u, v in [(a.seeds, b.seeds), (a.x, b.x), (a.q, b.q)]:
        np.testing.assert_array_equal(u, v)
    blocks = w32.reshape(-1, preset.C).astype(np.float64)
    results = [search_blocks(blocks, preset, a.bias, kernel=k) for k in KERNELS]
    for r in results[1:]:
        for u, v in zip(results[0], r):
            np.testing.assert_array_equal(u, v)
    np.testing.assert_array_equal(results[0][0].reshape(a.seeds.shape), a.seeds)
