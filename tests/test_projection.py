"""Board- and model-level projections, and `seedlm-fpga project`."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from seedlm_fpga.cli.main import main
from seedlm_fpga.sim.llama_shapes import builtin_model
from seedlm_fpga.sim.projection import BoardPlan, EnginePlan, gemv_time, plan_board, project


def board(channels=4, channel_gbps=10.0, clock=300.0, bus=512, seedlm_instances=None, memory_gb=80.0):
    """A synthetic board: every format on `bus` bits, one engine per channel unless told."""
    engines = {f: EnginePlan(f, clock, bus, channels if f == "fp16" else (seedlm_instances or channels),
                             channels, channel_gbps, memory="hbm")
               for f in ("fp16", "seedlm-4", "seedlm-3")}
    return BoardPlan("test", "Test board", "hbm", memory_gb, (("ddr", 200.0),), engines)


def test_large_gemv_runs_at_the_memory_bandwidth():
    # 4 channels x 10 GB/s, engines could take 19.2 GB/s each: memory-bound
    b = board()
    for fmt, bits in (("fp16", 16), ("seedlm-4", 4)):
        t = gemv_time(b.engines[fmt], 8192, 8192)
        by_bandwidth = 8192 * 8192 * bits / 8 / 40e9
        assert t["seconds"] == pytest.approx(by_bandwidth, rel=0.003)
        assert t["rows_per_instance"] == 2048
    assert b.engines["seedlm-4"].bound == "memory"


def test_rows_split_over_instances_leave_the_busiest_with_ceil():
    b = board(channels=3)
    t = gemv_time(b.engines["fp16"], 100, 512)
    assert t["rows_per_instance"] == 34
    assert t["cycles"] == pytest.approx(b.engines["fp16"].model.cycles(34, 512, b.engines["fp16"].beat_rate))


def test_slow_decoders_are_compute_bound():
    # 128 bits x 100 MHz = 1.6 GB/s per engine against 10 GB/s channels
    b = board(clock=100.0, bus=128)
    plan = b.engines["seedlm-4"]
    assert plan.bound == "compute" and plan.beat_rate == 1.0
    t = gemv_time(plan, 4096, 4096)
    assert t["seconds"] == pytest.approx(4096 * 4096 * 4 / 8 / (4 * 1.6e9), rel=0.003)
    assert plan.bound_reason() == ("compute-bound (decoders): 128 bits x 100 MHz = 1.60 GB/s per engine, "
                                   "below the channel's 10.00 GB/s")


def test_too_few_engines_are_compute_bound_and_say_what_all_would_give():
    b = board(channels=8, seedlm_instances=3)
    e4 = project(b, builtin_model("llama-2-70b"))[1]
    assert e4["format"] == "seedlm-4" and e4["bound"] == "compute"
    assert "compute-bound (resources): 3 of 8 seedlm-4 engines fit, streaming 30.0 of 80.0 GB/s" in e4["reasons"]
    # 3 of 8 channels: about 3/8 of the 4x
    assert e4["speedup_vs_fp16"] == pytest.approx(4 * 3 / 8, rel=0.03)
    assert e4["speedup_all_engines_fit"] == pytest.approx(4, rel=0.03)


def test_speedup_approaches_4x_as_models_grow_and_lm_head_pulls_it_down():
    b = board()
    s = {k: {e["format"]: e for e in project(b, builtin_model(k))} for k in ("llama-2-7b", "llama-2-70b", "llama-3-8b")}
    sp = {k: v["seedlm-4"]["speedup_vs_fp16"] for k, v in s.items()}
    assert sp["llama-2-7b"] < sp["llama-2-70b"] < 4.0
    assert sp["llama-3-8b"] < sp["llama-2-7b"]  # 128K-vocab lm_head at 16 bits
    # the lm_head's share of Llama 3 8B's streamed bytes, from the shapes: 2 bytes vs 0.5 per weight
    head, layers = 128256 * 4096 * 2, 6_979_321_856 // 2
    share = round(100 * head / (head + layers))
    assert f"lm_head at fp16 is {share}% of bytes" in s["llama-3-8b"]["seedlm-4"]["reasons"]
    # 16-bit tokens/s of a memory-bound board: bandwidth / bytes per token
    fp16 = s["llama-2-7b"]["fp16"]
    assert fp16["tokens_per_s"] == pytest.approx(40e9 / (2 * 6_476_005_376 + 2 * 32000 * 4096), rel=0.01)


def test_seedlm3_gains_more_than_seedlm4_on_a_wide_bus():
    b = board()
    e = {x["format"]: x for x in project(b, builtin_model("llama-2-70b"))}
    assert e["seedlm-4"]["speedup_vs_fp16"] < e["seedlm-3"]["speedup_vs_fp16"] < 16 / 3
    assert e["seedlm-3"]["layer_bits_per_weight"] == pytest.approx(512 / 168, rel=0.01)


def test_fits_memory_counts_embeddings_and_the_16_bit_lm_head():
    b = board(memory_gb=8.0)
    e = {x["format"]: x for x in project(b, builtin_model("llama-3-70b"))}
    assert e["fp16"]["memory_bytes"] == 2 * 70_553_706_496
    assert not e["fp16"]["fits_memory"]
    assert "does not fit 8 GB hbm: needs 141.11 GB (fits ddr)" in e["fp16"]["reasons"]
    small = {x["format"]: x for x in project(b, builtin_model("llama-2-7b"))}
    assert not small["fp16"]["fits_memory"] and small["seedlm-4"]["fits_memory"]


def test_alveo_u280_uses_the_board_sizing():
    from seedlm_fpga.flows.sizing import size_for_board
    plan = plan_board("alveo-u280")
    for fmt in ("seedlm-4", "seedlm-3"):
        s = size_for_board("alveo-u280", fmt)
        eng = plan.engines[fmt]
        assert (eng.bus_bits, eng.instances, eng.channels) == (s["bus_bits"], s["instances_fit"], s["channels"])
    # 0.66 x 14.375 GB/s at the 264.6 MHz estimate: 286.8 bits per cycle -> 512
    assert (plan.engines["fp16"].instances, plan.engines["fp16"].bus_bits) == (32, 512)
    assert plan.memory_gb == 8


def test_a_board_too_small_for_seedlm_says_why():
    from seedlm_fpga.flows.sizing import size_for_board
    e = {x["format"]: x for x in project(plan_board("icebreaker"), builtin_model("llama-2-7b"))}
    reason = size_for_board("icebreaker", "seedlm-4", strict=False)["reason"]
    assert e["seedlm-4"]["tokens_per_s"] is None and e["seedlm-4"]["reasons"] == [reason]
    assert e["fp16"]["tokens_per_s"] > 0


# --- the command ---------------------------------------------------------------------------------

REQUIRED = {"format", "tokens_per_s", "speedup_vs_fp16", "fits_memory", "model_vs_rtl", "reasons"}


def test_project_without_arguments_writes_table_json_and_plots(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["project"]) == 0
    out = capsys.readouterr().out
    report = tmp_path / "seedlm-report"
    for name in ("projection.json", "speedup_vs_model_size.png", "roofline.png", "model_vs_rtl.png"):
        assert (report / name).stat().st_size > 1000, name
    data = json.loads((report / "projection.json").read_text())
    assert {e["board"] for e in data["entries"]} == {"alveo-u280", "vcu118", "kria-kv260", "ulx3s-85f"}
    assert len(data["entries"]) == 4 * 11 * 3
    for e in data["entries"]:
        assert REQUIRED <= set(e), e["format"]
        for c in e["model_vs_rtl"]:
            assert set(c) >= {"shape", "bus_bits", "model_cycles", "rtl_cycles", "error_pct"}
    u280 = {e["format"]: e for e in data["entries"] if e["board"] == "alveo-u280" and e["model"] == "Llama 3 70B"}
    assert not u280["fp16"]["fits_memory"]
    assert all(u280[f]["speedup_vs_fp16"] > 1 and u280[f]["reasons"] for f in ("seedlm-4", "seedlm-3"))
    # context 4096: 141.11 GB of weights + 1.34 GB of KV cache
    assert "Llama 3 70B seedlm-4" in out and "does not fit 8 GB hbm: needs 142.45 GB" in json.dumps(u280["fp16"])
    assert "paper       34,331   136,559   3.980x" in out
    assert "model       32,813   131,144   3.997x" in out
    assert "RTL         32,813   131,144   3.997x" in out  # the stored Verilator figures (sim/rtl_cycles.json)
    assert data["model_vs_rtl"] and data["provenance"]["command"] == ["seedlm-fpga", "project"]


def test_project_json_to_stdout_for_a_config(tmp_path, capsys):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                                   num_attention_heads=32, num_key_value_heads=8, vocab_size=128256)))
    assert main(["project", "--config", str(cfg), "--board", "vcu118", "-o", str(tmp_path / "r"), "--json",
                 "--no-plots"]) == 0
    out = capsys.readouterr().out
    data = json.loads(out)
    assert [e["format"] for e in data["entries"]] == ["fp16", "seedlm-4", "seedlm-3"]
    assert data["provenance"]["inputs"] == {str(cfg): hashlib.sha256(cfg.read_bytes()).hexdigest()}
    assert (tmp_path / "r" / "projection.json").read_text() == out
    assert not (tmp_path / "r" / "roofline.png").exists()


@pytest.mark.parametrize("argv, message", [
    (["--board", "nosuch"], "seedlm-fpga project: error: unknown board 'nosuch'"),
    (["--model", "llama-9"], "seedlm-fpga project: error: unknown model 'llama-9'"),
])
def test_project_bad_input_is_one_line(tmp_path, capsys, argv, message):
    assert main(["project", "-o", str(tmp_path / "r"), "--no-plots", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_project_output_that_is_a_file(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["project", "-o", str(f), "--model", "llama-2-7b", "--board", "vcu118"]) == 2
    assert capsys.readouterr().err == f"seedlm-fpga project: error: output {f} exists and is not a folder\n"


def test_project_a_checkpoint_uses_its_shapes_and_presets(tmp_path, capsys):
    from test_llama_shapes import _encoded

    from seedlm_fpga.compressor.container import write_container
    rng = np.random.default_rng(0)
    mixed = {f"model.layers.{i}.mlp.up_proj.weight": _encoded(256, 128, p, rng)
             for i, p in enumerate(("seedlm-4", "seedlm-3"))}
    carried = {"model.embed_tokens.weight": np.zeros((300, 128), np.float32)}
    for name, comp in (("mixed", mixed), ("single", {k: v for k, v in mixed.items() if "layers.0" in k})):
        path = tmp_path / f"{name}.seedlm"
        write_container(path, comp, carried)
        assert main(["project", "--checkpoint", str(path), "--board", "vcu118", "-o", str(tmp_path / name),
                     "--json", "--no-plots"]) == 0
        data = json.loads(capsys.readouterr().out)
        entries = {e["format"]: e for e in data["entries"]}
        assert list(entries) == (["fp16", "checkpoint"] if name == "mixed" else ["fp16", "seedlm-4"])
        compressed = entries["checkpoint" if name == "mixed" else "seedlm-4"]
        kinds = sorted((g["kind"], g["format"]) for g in compressed["gemvs"])
        expected = [("lm_head", "fp16")] + [("up", p) for p in ("seedlm-4", "seedlm-3")[:len(comp)]]
        assert kinds == sorted(expected)
        assert compressed["speedup_vs_fp16"] > 1
