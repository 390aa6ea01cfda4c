"""The co-simulation harness on a small fixture engine (tests/fixtures/toy_gemv.v).

toy_gemv has the format §10 ports and computes the 16-bit baseline GEMV, so these tests
check the Verilator build cache, the AXI4-Stream drivers and monitors (valid and ready
gaps), the cycle count and the mismatch report independently of hdl/.
"""
from pathlib import Path

import numpy as np
import pytest

from seedlm_fpga.core import reference as ref
from seedlm_fpga.sim import cosim_build
from seedlm_fpga.sim.cosim_runner import Engine, _judge, run_cases
from seedlm_fpga.sim.stimulus import GemvCase

TOY = Path(__file__).parent / "fixtures" / "toy_gemv.v"
W, A, MAXC, YB = 64, 8, 96, 40


def toy_engine(bug_beat: int = -1, hold_bug: int = 0) -> Engine:
    params = (("W", W), ("A", A), ("MAXC", MAXC), ("YB", YB), ("BUG_BEAT", bug_beat), ("HOLD_BUG", hold_bug))
    return Engine("baseline", (TOY,), "toy_gemv", W, A, W // A, YB, MAXC, parameters=params)


def toy_case(rows, cols, seed=0, label="toy"):
    rng = np.random.default_rng(seed)
    w = rng.integers(-32768, 32768, (rows, cols)).astype(np.int16)
    a = rng.integers(-128, 128, cols)
    return GemvCase(label, "baseline", cols, a, weights=w)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("verilator-cache")


def test_build_is_cached_by_content_and_parameters(cache, capsys):
    params = dict(toy_engine().parameters)
    first = cosim_build.build([TOY], "toy_gemv", params, cache_dir=cache)
    again = cosim_build.build([TOY], "toy_gemv", params, cache_dir=cache)
    assert not first.cached and again.cached
    # progress on stderr (not a terminal here: start and end lines), nothing on stdout
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == "  building toy_gemv in Verilator ..."
    assert lines[1].startswith("  building toy_gemv in Verilator: done in ") and lines[1].endswith(" s")
    assert lines[2] == "  building toy_gemv in Verilator ... cached"
    assert again.build_dir == first.build_dir and (first.build_dir / "toy_gemv").exists()
    other = cosim_build.build_key([TOY], "toy_gemv", {**params, "BUG_BEAT": 2})
    assert other != first.key
    # the design-independent runtime objects were kept for the next design
    assert sorted(p.name for p in cache.glob("runtime-*/*.o")) == sorted(
        f"{n}.o" for n in cosim_build.RUNTIME_OBJECTS)


def test_build_error_names_the_problem(tmp_path, capsys):
    bad = tmp_path / "bad.v"
    bad.write_text("module bad(input clk); wire x = ; endmodule\n")
    with pytest.raises(cosim_build.CosimError, match="Verilator build of bad failed"):
        cosim_build.build([bad], "bad", cache_dir=tmp_path / "cache")
    assert "  building bad in Verilator: failed after " in capsys.readouterr().err
    assert not list((tmp_path / "cache").glob("bad-*/bad"))  # nothing half-built is cached


@pytest.mark.parametrize("gap, ready_gap", [(0.0, 0.0), (0.4, 0.5)])
def test_toy_gemv_bit_exact_with_and_without_stalls(gap, ready_gap):
    cases = [toy_case(5, 37, seed=1), toy_case(3, 64, seed=2), toy_case(1, 1, seed=3)]
    results = run_cases(toy_engine(), cases, gap=gap, ready_gap=ready_gap, seed=7)
    for case, r in zip(cases, results):
        assert r.ok, r.report()
        assert r.y == [int(v) for v in ref.gemv_baseline(case.weights, case.acts)]
        n_act = -(-case.cols // (W // A))
        n_w = case.rows * -(-case.cols // (W // 16))
        assert (r.act_beats, r.weight_beats) == (n_act, n_w)
        if gap == 0 and ready_gap == 0:
            # toy timing: act beats, then weight beats back to back, then one output register
            assert r.cycles == n_act + n_w + 1
        else:
            assert r.cycles > n_act + n_w + 1


def test_mismatch_report_names_row_values_and_first_bad_beat():
    case = toy_case(2, 20, seed=4)
    r = run_cases(toy_engine(bug_beat=2), [case])[0]
    assert not r.ok and r.mismatched_rows == [0, 1]
    w, a = case.weights.astype(np.int64), case.acts
    expected = int(w[0] @ a)
    got = expected - int(w[0, 8] * a[8])  # the bug drops lane 0 of beat 2
    term = int(w[0, 8:12] @ a[8:12])
    assert r.y[0] == got and r.expected[0] == expected
    assert r.diagnosis == (f"row 0, first differing beat 2: weights {case.weights[0, 8:12].tolist()}; "
                           f"its term expected {term}, got {term - int(w[0, 8] * a[8])}")
    report = r.report().splitlines()
    assert report[0] == "baseline toy: rows=2 cols=20 W=64 A=8 gap=0.0 ready_gap=0.0: FAILED"
    assert report[1] == f"  row 0: expected {expected}, got {got}"


def test_hold_rule_break_is_reported():
    """An output whose tdata changes while it waits for tready (the bench's own AXI4-Stream check)."""
    r = run_cases(toy_engine(hold_bug=1), [toy_case(6, 20, seed=5)], ready_gap=0.6, seed=3, diagnose=False)[0]
    assert not r.ok
    assert any(e.startswith("m_axis_y: tdata/tlast changed while tvalid waited for tready (cycle ")
               for e in r.errors), r.errors


def _raw(y, lasts, act=(2, 2), w=(4, 4)):
    return {"y": [str(v) for v in y], "y_last": lasts, "errors": [], "act_sent": act[0],
            "act_accepted": act[1], "w_sent": w[0], "w_accepted": w[1], "first_act_cycle": 0,
            "last_y_cycle": 9 if y else None}


@pytest.mark.parametrize("raw, errors", [
    (_raw([1, 2], [False, True]), []),
    (_raw([1], [True]), ["expected 2 outputs, got 1 (lost or missing outputs)"]),
    (_raw([1, 2, 2], [False, True, False]), ["expected 2 outputs, got 3 (extra or duplicated outputs)"]),
    (_raw([1, 2], [True, True]), ["tlast on outputs [0, 1], expected only on output 1 (the last row)"]),
    (_raw([1, 2], [False, False]), ["tlast on outputs [], expected only on output 1 (the last row)"]),
    (_raw([1, 2], [False, True], act=(2, 1), w=(4, 3)), ["1 of 2 activation beats accepted",
                                                         "3 of 4 weight beats accepted"]),
])
def test_judge_counts_beats_and_tlast(raw, errors):
    case = GemvCase("t", "baseline", 2, np.array([1, 0]), weights=np.array([[1, 0], [2, 0]], np.int16))
    r = _judge(toy_engine(), case, raw, 0.0, 0.0, {"sim_cycles": 10, "wall_s": 1.0})
    assert r.errors == errors
    assert r.ok == (not errors)
    assert r.cycles == 10
