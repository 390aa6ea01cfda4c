"""Data-free baselines: exact bit accounting and the quantizers' defining properties."""
import numpy as np
import pytest

from seedlm_fpga.evaluation.baselines import DEFAULT_BASELINES, Baseline


@pytest.mark.parametrize("baseline, shape, bits", [
    (Baseline("rtn", 4, 64), (10, 64), 4 + 16 / 64),
    (Baseline("rtn", 4, 64), (3, 128), 4 + 16 / 64),
    (Baseline("rtn", 4, 64), (3, 172), 4 + 3 * 16 / 172),  # 172 = 64 + 64 + 44: a partial group
    (Baseline("rtn", 3, 32), (2, 172), 3 + 6 * 16 / 172),
    (Baseline("rtn", 4, 128), (7, 64), 4 + 16 / 64),  # a row shorter than the group: one scale
    (Baseline("rtn", 4, None), (5, 4096), 4 + 16 / 4096),
    (Baseline("bfp", 4, 128), (4, 128), 4 + 8 / 128),
    (Baseline("bfp", 3, 128), (4, 172), 3 + 2 * 8 / 172),
])
def test_bits_per_weight(baseline, shape, bits):
    assert baseline.bits_per_weight(shape) == pytest.approx(bits, rel=1e-12)
    assert baseline.storage_bits(shape) == round(bits * shape[0] * shape[1])


def test_default_set_and_names():
    names = [b.name for b in DEFAULT_BASELINES]
    assert names == ["RTN int4 per-row", "RTN int4 g128", "RTN int4 g64", "RTN int4 g32",
                     "RTN int3 per-row", "RTN int3 g128", "RTN int3 g64", "RTN int3 g32",
                     "BFP int4 g128", "BFP int3 g128"]


def test_rtn_worked_example():
    s = float(np.float16(1.0 / 7))  # the fp16 scale of absmax 1.0 at int4
    w = np.array([[1.0, -0.5, 0.3, 0.0]])
    # 1/s = 7.0017 -> 7, -0.5/s = -3.5008 -> -4, 0.3/s = 2.1005 -> 2
    np.testing.assert_array_equal(Baseline("rtn", 4, None).quantize(w), [[7 * s, -4 * s, 2 * s, 0.0]])


def test_bfp_worked_example():
    w = np.array([[1.0, -0.5, 0.3, 0.0], [0.875, 0.1, -0.0625, 0.0], [1.95, -1.9, 0.97, 0.0]])
    # row 0: E = 0, step 2^(0-4+2) = 1/4; codes 4, -2, round(1.2) = 1, 0
    # row 1: E = -1, step 1/8; codes 7, round(0.8) = 1, round(-0.5) = -0 (half to even)
    # row 2: E = 0, step 1/4; 7.8 -> 8 clips to 7, -7.6 -> -8 fits (two's complement), 3.88 -> 4
    np.testing.assert_array_equal(Baseline("bfp", 4, 128).quantize(w),
                                  [[1.0, -0.5, 0.25, 0.0], [0.875, 0.125, 0.0, 0.0], [1.75, -2.0, 1.0, 0.0]])


@pytest.mark.parametrize("baseline", DEFAULT_BASELINES, ids=lambda b: b.name)
def test_quantizer_properties(baseline):
    rng = np.random.default_rng(1)
    w = rng.standard_normal((6, 172)) * np.exp(rng.standard_normal((6, 1)))
    w[2, :50] = 0.0  # an all-zero group for the small group sizes
    w_hat = baseline.quantize(w)
    g = baseline.group or 172
    for r in range(6):
        for start in range(0, 172, g):
            grp, hat = w[r, start:start + g], w_hat[r, start:start + g]
            levels = np.unique(hat)
            assert len(levels) <= 2 * baseline.qmax + 2
            if not grp.any():
                assert not hat.any()
                continue
            amax = np.abs(grp).max()
            if baseline.kind == "rtn":
                step = float(np.float16(amax / baseline.qmax))
                lo, clip_err = -baseline.qmax, amax * 2e-3  # fp16 rounding of the scale
            else:
                step = 2.0 ** (np.floor(np.log2(amax)) - baseline.bits + 2)
                lo, clip_err = -baseline.qmax - 1, step / 2  # values rounding up to 2^(n-1) clip
                assert 2 ** (baseline.bits - 2) <= amax / step < 2 ** (baseline.bits - 1)
            codes = hat / step
            np.testing.assert_array_equal(codes, np.round(codes))
            assert lo <= codes.min() and codes.max() <= baseline.qmax
            assert np.all(np.abs(grp - hat) <= step / 2 * (1 + 1e-9) + clip_err)
