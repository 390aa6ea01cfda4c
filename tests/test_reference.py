"""The numpy reference of format §3, 6 and 7, against independent exact arithmetic."""
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seedlm_fpga.core import reference as ref
from seedlm_fpga.core.lfsr import basis_S

P4, P3 = ref.PRESETS["seedlm-4"], ref.PRESETS["seedlm-3"]


def quantize_exact(t, bias):
    """format §3 with Python integers and Fractions: floor(log2), half-even rounding, clips."""
    m = max(abs(Fraction(v)) for v in t)
    if m == 0:
        return 0, [0] * len(t)
    E = math.floor(math.log2(m))
    while Fraction(2) ** E > m:  # make floor(log2) exact whatever float log2 says
        E -= 1
    while Fraction(2) ** (E + 1) <= m:
        E += 1
    x = min(max(E - 2 - bias, 0), 15)
    step = Fraction(2) ** (x + bias)
    q = [min(max(round(Fraction(v) / step), -8), 7) for v in t]  # round(): half to even
    return x, q


def test_presets():
    assert (P4.block_bits, P4.bits_per_weight) == (32, 4.0)
    assert (P3.block_bits, P3.bits_per_weight) == (36, 3.0)
    with pytest.raises(ValueError, match="unknown preset 'seedlm-2'"):
        ref.get_preset("seedlm-2")


floats = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(st.lists(floats, min_size=3, max_size=3), st.integers(-30, 10))
def test_quantize_matches_exact_arithmetic(t, bias):
    x, q = ref.quantize(np.array(t), bias)
    ex, eq = quantize_exact(t, bias)
    assert int(x) == ex and q.tolist() == eq


def test_quantize_edges():
    # max |t| exactly a power of two: E = 3, x = 3 - 2 + 10 = 11, t / 2 = 4 -> q = 4.
    x, q = ref.quantize(np.array([8.0, -1.0, 0.0]), -10)
    assert (int(x), q.tolist()) == (11, [4, 0, 0])
    # Just below a power of two: E = 2, t / 2^(0) ... rounds to 8, clipped to 7.
    x, q = ref.quantize(np.array([np.nextafter(8.0, 0), 0.5, -2.5]), -10)
    assert (int(x), q.tolist()) == (10, [7, 0, -2])  # 0.5 and -2.5 round half to even
    # Exponent clipped at 15 and at 0.
    assert int(ref.quantize(np.array([1e9, 0, 0]), -10)[0]) == 15
    assert int(ref.quantize(np.array([1e-9, 0, 0]), -10)[0]) == 0
    # All zero: x = 0, q = 0.
    x, q = ref.quantize(np.zeros((2, 4)), 0)
    assert x.tolist() == [0, 0] and not q.any()


def test_decode_is_the_spec_formula():
    rng = np.random.default_rng(1)
    seeds = rng.integers(1, 65536, 20)
    x = rng.integers(0, 16, 20)
    q = rng.integers(-8, 8, (20, 3))
    w = ref.decode_blocks(seeds, x, q, -12, P4)
    for i in range(20):
        S = basis_S(int(seeds[i]), 8, 3)
        for c in range(8):
            acc = sum(int(S[c, p]) * int(q[i, p]) for p in range(3))
            exact = Fraction(2) ** (int(x[i]) - 12) / 32767 * acc
            assert w[i, c] == pytest.approx(float(exact), rel=1e-15, abs=0)


def test_decode_tensor_drops_padding():
    seeds = np.ones((3, 2), dtype=np.uint16)
    x = np.full((3, 2), 5, dtype=np.uint8)
    q = np.ones((3, 2, 3), dtype=np.int8)
    assert ref.decode_tensor(seeds, x, q, 0, P4, cols=13).shape == (3, 13)


def exact_Y(seeds, x, q, a, preset):
    """Y[r] = sum over weights of (acc << x) * a, with Python integers."""
    rows, nb = seeds.shape
    out = []
    for r in range(rows):
        total = 0
        for j in range(nb):
            S = basis_S(int(seeds[r, j]), preset.C, preset.P)
            for c in range(preset.C):
                acc = sum(int(S[c, p]) * int(q[r, j, p]) for p in range(preset.P))
                k = j * preset.C + c
                total += (acc << int(x[r, j])) * (int(a[k]) if k < len(a) else 0)
        out.append(total)
    return out


@pytest.mark.parametrize("preset", [P4, P3], ids=lambda p: p.name)
@pytest.mark.parametrize("act_bits", [8, 16])
def test_gemv_seedlm_is_exact(preset, act_bits):
    rng = np.random.default_rng(act_bits)
    rows, cols = 5, 61  # cols not a multiple of C: a padded tail
    nb = ref.blocks_per_row(cols, preset.C)
    seeds = rng.integers(1, 65536, (rows, nb))
    x = rng.integers(0, 16, (rows, nb))
    q = rng.integers(-8, 8, (rows, nb, preset.P))
    lo, hi = -(1 << (act_bits - 1)), (1 << (act_bits - 1))
    a = rng.integers(lo, hi, cols)
    assert [int(v) for v in ref.gemv_seedlm(seeds, x, q, a, preset)] == exact_Y(seeds, x, q, a, preset)


def test_gemv_seedlm_extremes_fit_y_bits():
    preset, act_bits, cols = P3, 16, 28672
    nb = ref.blocks_per_row(cols, preset.C)
    cycle_S = basis_S(np.arange(1, 65536), preset.C, preset.P)
    # The seed whose rows give the largest |acc| with q = -8 everywhere.
    acc = (cycle_S * -8).sum(axis=2)
    best = int(np.argmax(acc.max(axis=1))) + 1
    seeds = np.full((1, nb), best)
    x = np.full((1, nb), 15)
    q = np.full((1, nb, preset.P), -8)
    a = np.where(basis_S(best, preset.C, preset.P).sum(axis=1) * -8 > 0, (1 << 15) - 1, -(1 << 15))
    a = np.tile(a, nb)[:cols]
    Y = ref.gemv_seedlm(seeds, x, q, a, preset)
    assert Y.dtype == object  # beyond int64: Python integers
    assert int(Y[0]) == exact_Y(seeds, x, q, a, preset)[0]
    bits = ref.seedlm_y_bits(cols, act_bits, preset)
    assert -(1 << (bits - 1)) <= int(Y[0]) < (1 << (bits - 1))
    assert abs(int(Y[0])) >= 1 << (bits - 3)  # the bound is not loose by more than 2 bits


def test_gemv_times_scales_equals_float_math():
    rng = np.random.default_rng(7)
    preset, bias, rows, cols = P4, -14, 16, 100
    nb = ref.blocks_per_row(cols, preset.C)
    seeds = rng.integers(1, 65536, (rows, nb))
    x = rng.integers(0, 16, (rows, nb))
    q = rng.integers(-8, 8, (rows, nb, preset.P))
    real_a = rng.standard_normal(cols)
    s_a = np.max(np.abs(real_a)) / 127
    a = np.round(real_a / s_a).astype(np.int64)
    y = ref.gemv_seedlm(seeds, x, q, a, preset).astype(np.float64) * ref.y_scale(s_a, bias, preset)
    W_hat = ref.decode_tensor(seeds, x, q, bias, preset, cols)
    np.testing.assert_allclose(y, W_hat @ (a * s_a), rtol=1e-12, atol=1e-12 * np.abs(y).max())


def test_gemv_baseline_is_exact():
    rng = np.random.default_rng(3)
    w = rng.integers(-32768, 32768, (4, 37))
    a = rng.integers(-128, 128, 37)
    assert ref.gemv_baseline(w, a).tolist() == [sum(int(u) * int(v) for u, v in zip(row, a)) for row in w]
    bits = ref.baseline_y_bits(37, 8)
    worst = 37 * (-32768) * (-128)
    assert worst < (1 << (bits - 1))


def test_baseline_image_layout_by_hand():
    # W = 32: two int16 weights per beat, little-endian; each row starts on a fresh beat (R = 2)
    image = ref.baseline_image([[1, -1, 2], [-32768, 32767, 0x0102]], 32)
    assert image == bytes([0x01, 0x00, 0xFF, 0xFF, 0x02, 0x00, 0x00, 0x00,
                           0x00, 0x80, 0xFF, 0x7F, 0x02, 0x01, 0x00, 0x00])
    with pytest.raises(ValueError, match="cannot hold one 16-bit weight"):
        ref.baseline_image([[1]], 8)


# --- format §5.4: the packed image -------------------------------------------------------------

def test_packed_image_round_trip_and_layout():
    from seedlm_fpga.core.reference import (PackedImageLayout, get_preset, pack_words,
                                            packed_memory_image, parse_packed_memory_image)
    rng = np.random.default_rng(5)
    for name, W, rows, nb in [("seedlm-3", 64, 3, 11), ("seedlm-4", 64, 2, 5), ("seedlm-3", 24, 2, 3),
                              ("seedlm-4", 512, 2, 40)]:
        p = get_preset(name)
        seeds = rng.integers(1, 1 << 16, (rows, nb))
        x = rng.integers(0, 16, (rows, nb))
        q = rng.integers(-8, 8, (rows, nb, p.P))
        image = packed_memory_image(seeds, x, q, p, W)
        lay = PackedImageLayout(W, p.block_bits, nb)
        assert len(image) == rows * lay.beats_per_row * W // 8
        s2, x2, q2 = parse_packed_memory_image(image, p, W, rows, nb)
        assert (s2 == seeds).all() and (x2 == x).all() and (q2 == q).all()
        # block (r, j) is bits [r*R*W + j*B, +B) of the image, little-endian
        words = pack_words(seeds, x, q, p)
        as_int = int.from_bytes(image, "little")
        for r in range(rows):
            for j in range(nb):
                at = r * lay.beats_per_row * W + j * p.block_bits
                assert (as_int >> at) & ((1 << p.block_bits) - 1) == int(words[r, j])
            tail = r * lay.beats_per_row * W + nb * p.block_bits
            assert (as_int >> tail) & ((1 << ((r + 1) * lay.beats_per_row * W - tail)) - 1) == 0


def test_packed_image_bits_per_weight_format_example():
    from seedlm_fpga.core.reference import ImageLayout, PackedImageLayout
    assert PackedImageLayout(64, 36, 342).beats_per_row == 193
    assert round(PackedImageLayout(64, 36, 342).bits_per_weight(4096), 3) == 3.016
    assert round(ImageLayout(64, 36, 342).bits_per_weight(4096), 3) == 5.344
