"""One test per class of the hardening issue: no input overwritten, readers validate before
they allocate, user numbers range-checked, OS/decoding errors as one line, nonsense refused."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from seedlm_fpga.cli.main import main
from seedlm_fpga.compressor.container import write_safetensors
from seedlm_fpga.errors import UserError
from seedlm_samples import sample_container
from cli_util import run_cli



def _one_line_error(capsys, *argv) -> str:
    rc, _, err = run_cli(capsys, *argv)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err.strip()


@pytest.fixture
def st_file(tmp_path):
    path = tmp_path / "m.safetensors"
    write_safetensors(path, {"layers.0.wq": torch.randn(8, 16, generator=torch.Generator().manual_seed(0))})
    return path


# --- 1. outputs never overwrite inputs; partial state is ours and locked -------------------------------

def test_output_is_never_an_input(tmp_path, st_file, capsys):
    seedlm = tmp_path / "a.seedlm"
    sample_container(seedlm)
    (tmp_path / "link.safetensors").symlink_to(st_file)
    os.link(seedlm, tmp_path / "hard.seedlm")
    before = st_file.read_bytes(), seedlm.read_bytes()
    for argv in (["compress", st_file, "-o", st_file], ["compress", st_file, "-o", tmp_path / "link.safetensors"],
                 ["decompress", seedlm, "-o", seedlm], ["decompress", seedlm, "-o", tmp_path / "hard.seedlm"],
                 ["image", seedlm, "--tensor", "layers.0.wq", "--bus-bits", 64, "-o", seedlm]):
        assert "refusing to overwrite an input" in _one_line_error(capsys, *argv)
    assert (st_file.read_bytes(), seedlm.read_bytes()) == before


def test_hf_shard_is_not_an_output_and_index_cannot_escape(tmp_path, st_file, capsys):
    hf = tmp_path / "hf"
    hf.mkdir()
    write_safetensors(hf / "s1.safetensors", {"layers.0.wq": torch.randn(8, 16)})
    (hf / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"layers.0.wq": "s1.safetensors"}}))
    before = (hf / "s1.safetensors").read_bytes()
    assert "refusing to overwrite" in _one_line_error(capsys, "compress", hf, "-o", hf / "s1.safetensors")
    assert (hf / "s1.safetensors").read_bytes() == before
    for shard in ("../m.safetensors", str(st_file), 3, {"a": 1}):
        (hf / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"layers.0.wq": shard}}))
        err = _one_line_error(capsys, "compress", hf, "-o", tmp_path / "o.seedlm")
        assert "outside the model folder" in err or "must be shard file names" in err


@pytest.mark.parametrize("kind", ["folder", "file", "symlink"])
def test_a_users_partial_is_never_touched(tmp_path, st_file, capsys, kind):
    out = tmp_path / "o.seedlm"
    partial = tmp_path / "o.seedlm.partial"
    precious = tmp_path / "precious"
    if kind == "folder":
        partial.mkdir()
        precious = partial / "thesis.txt"
    elif kind == "symlink":
        (tmp_path / "elsewhere").mkdir()
        partial.symlink_to(tmp_path / "elsewhere")
        precious = tmp_path / "elsewhere" / "thesis.txt"
    else:
        precious = partial
    precious.write_text("years of work")
    assert "move it away" in _one_line_error(capsys, "compress", st_file, "-o", out)
    assert precious.read_text() == "years of work" and not out.exists()


def test_a_second_run_on_the_same_output_is_refused(tmp_path):
    from seedlm_fpga.cli.compress import PartialState

    first = PartialState(tmp_path / "o.seedlm", {"input": 1})
    first.start(resume=False)
    second = PartialState(tmp_path / "o.seedlm", {"input": 1})
    with pytest.raises(UserError, match="another seedlm-fpga compress is writing"):
        second.start(resume=False)
    assert (first.dir / "state.json").is_file()  # the first run's state survives
    first.remove()
    assert not first.dir.exists()


# --- 2. readers validate before they allocate ---------------------------------------------------------

def _seedlm(tmp_path, **entry_changes):
    entry = {"shape": [4, 16], "K": 16, "C": 8, "P": 3, "taps": [0, 1, 3, 12], "bias": -12, "dtype": "float32",
             "preset": "seedlm-4", **entry_changes}
    parts = {"w.seed": np.ones((4, 2), np.uint16), "w.exp": np.zeros((4, 2), np.uint8),
             "w.coef": np.zeros((4, 2, 3), np.int8)}
    path = tmp_path / "x.seedlm"
    write_safetensors(path, parts, {"format": "seedlm", "format_version": "1", "w": json.dumps(entry)})
    return path


@pytest.mark.parametrize("change, message", [
    (dict(C=2**31, preset="custom"), "unsupported parameters"),
    (dict(shape=[10**12, 10**12]), "has shape [4, 2], expected"),
    (dict(taps=[0, 1]), "not the maximal-length taps"),
])
def test_container_sizes_are_bounded_before_any_data(tmp_path, capsys, change, message):
    path = _seedlm(tmp_path, **change)
    for cmd in (["decompress", path, "-o", tmp_path / "o.safetensors"], ["inspect", path],
                ["project", "--checkpoint", path, "--no-plots", "-o", tmp_path / "p"]):
        assert message in _one_line_error(capsys, *cmd)


def test_flags_that_would_allocate_terabytes_are_refused(tmp_path, capsys):
    path = tmp_path / "a.seedlm"
    sample_container(path)
    err = _one_line_error(capsys, "image", path, "--tensor", "layers.0.wq", "--bus-bits", 10**9, "-o", tmp_path / "i")
    assert "--bus-bits must lie in [8, 4,096]" in err
    assert "--rows must lie in" in _one_line_error(capsys, "cosim", "--rows", 10**8)


def test_fifo_input_does_not_block(tmp_path, capsys):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert "not a regular file" in _one_line_error(capsys, "inspect", fifo)
    assert "not a regular file" in _one_line_error(capsys, "compress", fifo, "-o", tmp_path / "o.seedlm")
    assert "not a regular file" in _one_line_error(capsys, "boards", "--board", fifo)


# --- 3. every user number is range-checked ----------------------------------------------------------

def test_check_number():
    from seedlm_fpga.core.numeric import check_number

    assert check_number("x", 5, 1, 10, integer=True) == 5
    for bad in (float("nan"), float("inf"), 11, 0, True, "5"):
        with pytest.raises(UserError):
            check_number("x", bad, 1, 10)
    with pytest.raises(UserError, match=r"x must lie in \(0, 1\]"):
        check_number("x", 0.0, 0, 1, lo_open=True)


@pytest.mark.parametrize("field, value", [("channels", 10**12), ("peak_gbps_per_channel", float("inf")),
                                          ("target_mhz", 1e-300), ("capacity_gb", float("nan"))])
def test_board_numbers_are_bounded(field, value):
    import yaml

    from seedlm_fpga.boards.board import BOARDS_DIR, parse_board

    data = yaml.safe_load((BOARDS_DIR / "arty-a7-100t.yaml").read_text())
    (data["clock"] if field == "target_mhz" else data["memories"][0])[field] = value
    with pytest.raises(UserError):
        parse_board(yaml.safe_dump(data), "b.yaml")


@pytest.mark.parametrize("flag, value", [("--launch-us", "nan"), ("--memory-latency-ns", "inf"),
                                         ("--context", str(10**20)), ("--batch", "0")])
def test_project_flags_are_bounded(tmp_path, capsys, flag, value):
    rc = None
    try:
        rc = main(["project", "--model", "stories15m", "--no-plots", "-o", str(tmp_path / "p"), flag, value])
    except SystemExit as exc:  # argparse's own check: usage + one error line, exit 2
        rc = exc.code
    assert rc == 2 and not (tmp_path / "p").exists()


# --- 4. OS and decoding errors become one line -------------------------------------------------------

def test_non_utf8_and_deep_inputs(tmp_path, capsys):
    (tmp_path / "b.yaml").write_bytes(b"name: \xff\xfe\n")
    assert "not UTF-8" in _one_line_error(capsys, "boards", "--board", tmp_path / "b.yaml")
    (tmp_path / "c.json").write_text("[" * 50000)
    assert "nested too deeply" in _one_line_error(capsys, "project", "--config", tmp_path / "c.json", "--no-plots")
    assert "is a folder" in _one_line_error(capsys, "inspect", tmp_path)


def test_file_size_limit_leaves_no_half_written_output(tmp_path):
    path = tmp_path / "a.seedlm"
    sample_container(path)
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024)); "
            "from seedlm_fpga.cli.main import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.run([sys.executable, "-c", code, "decompress", str(path), "-o", str(tmp_path / "o.st")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "File too large" in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.seedlm"]


def test_output_that_is_a_folder_or_empty(tmp_path, capsys):
    path = tmp_path / "a.seedlm"
    sample_container(path)
    assert "is a folder" in _one_line_error(capsys, "decompress", path, "-o", tmp_path)
    assert "expected a file name" in _one_line_error(capsys, "decompress", path, "-o", "")


# --- 5. values that parse but make no sense are refused ------------------------------------------------

@pytest.mark.parametrize("change, message", [
    (dict(bias=1000), "bias 1000 is out of range -166..110 for float32"),
    (dict(preset="seedlm-5"), "unknown preset 'seedlm-5'"),
    (dict(dtype=["float32"]), "dtype ['float32'] is not one of"),
])
def test_nonsense_metadata_is_refused(tmp_path, capsys, change, message):
    assert message in _one_line_error(capsys, "inspect", _seedlm(tmp_path, **change))


def test_project_checkpoint_validates_block_values(tmp_path, capsys):
    path = tmp_path / "z.seedlm"
    entry = {"shape": [4, 16], "K": 16, "C": 8, "P": 3, "taps": [0, 1, 3, 12], "bias": -12, "dtype": "float32",
             "preset": "seedlm-4"}
    parts = {"w.seed": np.zeros((4, 2), np.uint16), "w.exp": np.zeros((4, 2), np.uint8),
             "w.coef": np.zeros((4, 2, 3), np.int8)}
    write_safetensors(path, parts, {"format": "seedlm", "format_version": "1", "w": json.dumps(entry)})
    assert "seeds out of range" in _one_line_error(capsys, "project", "--checkpoint", path, "--no-plots",
                                                   "-o", tmp_path / "p")


def test_bias_out_of_the_dtype_range_is_refused_before_encoding(tmp_path, st_file, capsys):
    err = _one_line_error(capsys, "compress", st_file, "-o", tmp_path / "o.seedlm", "--bias", 200)
    assert "out of range -166..110" in err and not (tmp_path / "o.seedlm.partial").exists()
