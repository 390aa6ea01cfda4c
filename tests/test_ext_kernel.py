"""The kernel's extension unit (format §5.6, §11.3, §11.4): outliers and low-rank parts added into Y.

The stream layout is checked against the format's hand-written example; under cocotb + Verilator
(W = 64, a memory with latency and pauses) every Y is compared bit for bit with
core.extensions' integer reference (GemvCase.expected adds `gemv_extensions`), and with an
unpaused memory CYCLES is format §11.4's count with the streams read beside the weights, as is
the cycle model's (within 1% under pauses).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from seedlm_fpga.cli.main import main
from seedlm_fpga.compressor.container import read_container
from seedlm_fpga.core.engine_shape import DesignConfig, StreamTiming, kernel_cycles, kernel_cycles_for
from seedlm_fpga.core.ext_stream import ext_words, extension_stream, stream_timing
from seedlm_fpga.core.extensions import Extensions, SparsePart, gemv_extended
from seedlm_fpga.sim import stimulus as stim
from seedlm_fpga.sim.axi_memory import BASE_WRITE_LATENCY
from seedlm_fpga.sim.cycle_model import kernel_models
from seedlm_fpga.sim.kernel_host import KernelGemv, KernelHostError, KernelJob, check_job, plan_layout
from seedlm_fpga.sim.kernel_runner import generated_kernel, kernel_case, read_latency, run_kernel_cases

W, MAX_COLS, MEM_LATENCY, EXT_ROWS = 64, 256, 16, 64


def test_stream_matches_the_format_example():
    # format §5.6: W = 64, rows 1, cols 3, outliers -2 at col 1 and 5 at col 2, e = 3
    sp = SparsePart(np.array([0, 2], np.uint16), np.array([1, 2], np.uint16), np.array([-2, 5], np.int16), 3)
    raw = extension_stream(Extensions(sp, None), (1, 3))
    assert raw.hex() == "38000100" "00000000" "feff0100" "05000280"
    # the row's sum is complete with word 3; two 64-bit beats on m_axi_io
    assert stream_timing(Extensions(sp, None), (1, 3)) == StreamTiming((3,), 2)
    # 5 words (3 rows, an outlier each) pad to a whole 64-bit word
    three = Extensions(SparsePart(np.arange(4, dtype=np.uint16), np.arange(3, dtype=np.uint16),
                                  np.ones(3, np.int16), 0), None)
    assert len(extension_stream(three, (3, 3))) == 24 and stream_timing(three, (3, 3)).io_beats == 3


def test_streams_in_the_cycle_formula_by_hand():
    # format §11.4's example: 12 rows of 3 outliers each -> 2 + 36 words; row k ends at word 4 + 3k
    ptr = np.arange(0, 37, 3, dtype=np.uint16)
    ext = Extensions(SparsePart(ptr, np.zeros(36, np.uint16), np.ones(36, np.int16), 0), None)
    timing = stream_timing(ext, (12, 100))
    assert ext_words(ext, (12, 100)) == 38 and timing == StreamTiming(tuple(4 + 3 * k for k in range(12)), 19)
    # nA 13, R 1, latency 10, L_r = L_w = 2: the last act beat is taken in 5 + 2 + 13 - 1 + 2 = 21, so
    # the unit takes the stream's first beat in 22 (its arrival, 3 + 2 + 7 + 2 + 2 = 16, is earlier);
    # row k may leave from 22 + 4 + 4 + 3k = 30 + 3k, the engine's Y is ready in 32 + k: the unit
    # binds from row 2 on, the last Y leaves in 63, and ap_done reads 1 in 63 + 2 + 2
    assert kernel_cycles(13, 1, 10, [12], True, 2, 2) == 20 + 12 - 1 + 2 + 10 + 2 + 2 == 47
    assert kernel_cycles(13, 1, 10, [12], True, 2, 2, streams=[timing]) == 67
    # with R = 7 the engine's Y (38 + 7k) is later than every row's sum: the plain count
    assert kernel_cycles(13, 7, 10, [12], True, 2, 2, streams=[timing]) == kernel_cycles(13, 7, 10, [12], True, 2, 2)


def test_host_refuses_a_stream_without_descriptors():
    job = KernelJob(16, bytes(16), (KernelGemv(bytes(8), 1, bytes(8)),), descriptors=False)
    with pytest.raises(KernelHostError, match="needs a descriptor list"):
        check_job(job, plan_layout(job, 64), 64, 256, 4)


def _kernel():
    return generated_kernel("seedlm-4", W, 8, MAX_COLS, mem_latency=MEM_LATENCY, max_descriptors=4,
                            extensions=True, ext_max_rows=EXT_ROWS)


def _gemv(rows, cols, nnz, rank, seed, acts_from=None):
    g = stim.random_case("seedlm-4", rows, cols, 8, seed=seed)
    if acts_from is not None:
        g = dataclasses.replace(g, acts=acts_from.acts)
    ext = stim.random_extensions(np.random.default_rng(seed), rows, cols, nnz, rank) if nnz or rank else None
    return dataclasses.replace(g, ext=ext, label=f"{rows}x{cols} nnz {nnz} rank {rank}")


def _cases():
    first = _gemv(12, 100, 9, 0, 1)
    return [
        kernel_case([first]),                                        # outliers only
        kernel_case([_gemv(10, 203, 0, 1, 2)]),                      # rank 1
        kernel_case([_gemv(7, 64, 0, 2, 3)]),                        # rank 2
        kernel_case([_gemv(9, 256, 20, 2, 4)]),                      # both, a full row of columns
        kernel_case([_gemv(12, 100, 30, 1, 5, first), _gemv(5, 100, 0, 0, 6, first),
                     _gemv(12, 100, 3, 2, 7, first)]),               # mixed with a plain GEMV
        kernel_case([dense := _gemv(3, 256, 200, 0, 8), _gemv(2, 256, 0, 4, 9, dense),
                     _gemv(3, 256, 30, 3, 10, dense)]),              # the unit binds: Ys wait for it
    ]


def _streams(case):
    return [stream_timing(g.ext, (g.rows, g.cols)) if g.ext else None for g in case.gemvs]


@pytest.mark.parametrize("latency", [0, 14])
def test_extensions_bit_exact_with_exact_cycles(latency):
    kernel, cases = _kernel(), _cases()
    cfg = DesignConfig(preset="seedlm-4", bus_bits=W, act_bits=8, max_cols=MAX_COLS)
    model = kernel_models("seedlm-4", W, 8, mem_latency=MEM_LATENCY)["seedlm-4"]
    for case, r in zip(cases, run_kernel_cases(kernel, cases, latency=latency, seed=latency)):
        assert r.ok, r.report()
        assert r.y == [g.expected() for g in case.gemvs]
        want = kernel_cycles_for(cfg, "seedlm", case.cols, [g.rows for g in case.gemvs], True,
                                 read_latency(latency), BASE_WRITE_LATENCY, streams=_streams(case))
        assert r.cycles == want, case.label
        assert model.cycles(case.cols, [g.rows for g in case.gemvs], True, read_latency(latency),
                            BASE_WRITE_LATENCY, streams=_streams(case)) == want


def test_extensions_bit_exact_under_pauses():
    kernel, cases = _kernel(), _cases()
    for r in run_kernel_cases(kernel, cases, latency=40, gap=0.3, write_gap=0.3, seed=3):
        assert r.ok, r.report()


#: (memory latency N, R pause probability, W/B pause probability)
PAUSED_POINTS = [(14, 0.1, 0.0), (14, 0.3, 0.0), (0, 0.2, 0.2)]


def test_cycle_model_with_parts_under_pauses():
    """Under pauses the model walks the read path at mean delays (sim/read_path_model.py) and
    feeds that schedule to §11.4's extension recurrence: within 1% of Verilator."""
    kernel = _kernel()
    first = _gemv(64, 256, 80, 2, 11)
    case = kernel_case([first, _gemv(64, 256, 40, 0, 12, first), _gemv(64, 256, 0, 1, 13, first),
                        _gemv(64, 256, 0, 0, 14, first)])
    model = kernel_models("seedlm-4", W, 8, mem_latency=MEM_LATENCY, max_burst=kernel.max_burst)["seedlm-4"]
    for n, (latency, gap, write_gap) in enumerate(PAUSED_POINTS):
        r = run_kernel_cases(kernel, [case], latency, gap, write_gap, seed=n)[0]
        assert r.ok, r.report()
        predicted = model.cycles(case.cols, r.rows, True, read_latency(latency), BASE_WRITE_LATENCY, gap,
                                 write_gap, streams=_streams(case))
        assert predicted == pytest.approx(r.cycles, rel=0.01), (latency, gap, write_gap)


def test_compressed_tensor_runs_on_the_kernel(tmp_path, capsys):
    """compress --outliers --rank -> .seedlm -> the kernel: Y is the container's §6.2 Y."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(0)
    w = torch.randn(8, 48, generator=g) * 0.02
    w[3, 4] = 0.5
    save_file({"layers.0.wq.weight": w}, tmp_path / "m.safetensors")
    for rank in (1, 2):
        out = tmp_path / f"m{rank}.seedlm"
        assert main(["compress", str(tmp_path / "m.safetensors"), "-o", str(out), "--outliers", "0.02",
                     "--rank", str(rank)]) == 0
        capsys.readouterr()
        c = read_container(out)
        enc, ext = c.compressed["layers.0.wq.weight"], c.extensions["layers.0.wq.weight"]
        acts = np.random.default_rng(rank).integers(-127, 128, 48)
        case = stim.GemvCase("wq", "seedlm-4", 48, acts, enc.seeds, enc.x, enc.q, ext=ext)
        r = run_kernel_cases(_kernel(), [kernel_case([case])], latency=10)[0]
        assert r.ok, r.report()
        assert r.y[0] == [int(v) for v in gemv_extended(enc, ext, acts)]


def test_generate_kernel_with_extensions(tmp_path, capsys):
    out = tmp_path / "k"
    assert main(["generate", "--bus-bits", "64", "--max-cols", "256", "--kernel", "--extensions",
                 "--ext-max-rows", "64", "--max-descriptors", "2", "-o", str(out)]) == 0
    import json

    design = json.loads((out / "design.json").read_text())
    assert design["kernel"]["extensions"] is True and design["kernel"]["ext_max_rows"] == 64
    assert "beside its weights" in design["kernel"]["extension_streams"]
    assert "ext_unit" in (out / "seedlm_kernel.v").read_text()
    assert "ext_unit" not in (out / "baseline_kernel.v").read_text()
    capsys.readouterr()
    assert main(["generate", "--bus-bits", "64", "--kernel", "--ext-max-rows", "64", "-o", str(tmp_path / "j")]) == 2
    assert main(["generate", "--bus-bits", "64", "--kernel", "--extensions", "--ext-max-rows", "48",
                 "-o", str(tmp_path / "j")]) == 2
    err = capsys.readouterr().err
    assert "--ext-max-rows needs --extensions" in err and "power of two" in err


def test_projection_counts_the_extension_stream():
    """gemv_time adds each instance's §5.6 stream as bytes (padded to 64-bit words) and the cycles
    format §11.4's exact recurrence gives for the same stream with its row words spread evenly."""
    from seedlm_fpga.sim.projection import EnginePlan, gemv_time, plan_board

    plan = plan_board("alveo-u280").engines["seedlm-4"]
    plain = gemv_time(plan, 4096, 4096)
    ext = gemv_time(plan, 4096, 4096, None, 1, 800, 2)
    rows_pi = plain["rows_per_instance"]
    instances = -(-4096 // rows_pi)
    # per instance: 2 header words, 2 * 1024 right-factor words, its rows' left words, and at most
    # (800 + 4096) outlier words shared out by rows; 4 bytes each, padded to 8
    words = 2 + 2 * 1024 + -(-(4096 + 800 + 4096) * rows_pi // 4096)
    assert ext["extension_bytes"] == instances * -(-words // 2) * 8
    assert ext["bytes"] == plain["bytes"] + ext["extension_bytes"] and ext["cycles"] > plain["cycles"]
    assert gemv_time(plan, 4096, 4096, None, 1, 0, 0) == plain

    fast = EnginePlan("seedlm-4", 300, 512, 1, 1, 1000.0)  # a memory that never stalls the engine
    for rows, cols, nnz, rank in [(256, 4096, 0, 4), (256, 512, 6000, 0), (1024, 4096, 20000, 1),
                                  (900, 8192, 0, 4), (900, 28672, 128000, 0)]:
        head = 2 + rank * cols // 4
        per_row = ((rows if rank else 0) + (nnz + rows if nnz else 0)) / rows
        ends = tuple(int(head - 1 + np.ceil((k + 1) * per_row)) for k in range(rows))
        cfg = DesignConfig(preset="seedlm-4", bus_bits=512, act_bits=8, max_cols=cols)
        plain_cycles = kernel_cycles_for(cfg, "seedlm", cols, [rows], True, 2, 0)
        exact = kernel_cycles_for(cfg, "seedlm", cols, [rows], True, 2, 0,
                                  streams=[StreamTiming(ends, 0)]) - plain_cycles
        added = gemv_time(fast, rows, cols, None, 1, nnz, rank)["cycles"] - gemv_time(fast, rows, cols)["cycles"]
        assert added == pytest.approx(exact, abs=0.01 * plain_cycles), (rows, cols, nnz, rank)


def test_checkpoint_projection_includes_the_parts(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    from seedlm_fpga.sim.llama_shapes import model_from_checkpoint

    g = torch.Generator().manual_seed(0)
    save_file({"layers.0.attention.wq.weight": torch.randn(8, 16, generator=g) * 0.02,
               "layers.0.attention.wk.weight": torch.randn(8, 16, generator=g) * 0.02},
              tmp_path / "m.safetensors")
    assert main(["compress", str(tmp_path / "m.safetensors"), "-o", str(tmp_path / "m.seedlm"),
                 "--outliers", "0.05", "--rank", "1"]) == 0
    m = model_from_checkpoint(tmp_path / "m.seedlm")
    # round(0.05 * 128) = 6 outliers each, rank 1
    assert sorted((gm.kind, gm.ext_nnz, gm.ext_rank) for gm in m.gemvs) == [("k", 6, 1), ("q", 6, 1)]


def test_cosim_kernel_with_outliers_and_rank(capsys):
    import json

    rc = main(["cosim", "--kernel", "--rows", "16", "--cols", "128", "--bus-bits", "64", "--max-cols", "256",
               "--outliers", "0.01", "--rank", "1", "--mem-latency", "10", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["ok"] and out["settings"]["outliers"] == 0.01 and out["settings"]["rank"] == 1
    # no pauses: the model is format §11.4's count with the stream's slots, as the kernel measured
    assert out["seedlm"]["cycles"] == out["seedlm"]["model_cycles"]
    assert main(["cosim", "--rank", "1"]) == 2
    assert "--rank needs --kernel" in capsys.readouterr().err


def test_run_on_a_model_with_parts(tmp_path, capsys):
    """run --engine verilator on stories260K with outliers and a rank-1 part: every Y bit-exact
    with the §6.2 reference, CYCLES as format §11.4 counts them with the streams' slots."""
    import json

    from example_data import example_file

    model = tmp_path / "s.seedlm"
    assert main(["compress", str(example_file("stories260K.bin")), "-o", str(model), "--outliers", "0.005",
                 "--rank", "1"]) == 0
    capsys.readouterr()
    assert main(["run", str(model), "--json", "--tokens", "1", "--engine", "verilator"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["bit_exact"] is True and r["cycles_source"] == "verilator"
    assert r["cycles"] == r["model_cycles"] and r["baseline_cycles"] == r["baseline_model_cycles"]
