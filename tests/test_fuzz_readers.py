"""Fuzz every reader (hypothesis): any bytes give a result or one UserError line, fast.

Safetensors headers, .seedlm metadata, board YAML, config.json and llama2.c headers are
generated from valid ones by mutation; the reader functions run in-process. A reader may
accept or refuse, but never raise anything but a one-line UserError, and never take long.
"""
from __future__ import annotations

import json
import struct
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from seedlm_fpga.errors import UserError

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
TIME_BOUND_S = 10.0  # generous: a loaded CI machine; a hang is minutes


def outcome(fn, *args):
    """Run a reader: its result, or the UserError it raised (one line). Anything else fails."""
    t = time.perf_counter()
    try:
        result = fn(*args)
    except UserError as exc:
        result = exc
        assert "\n" not in str(exc) and str(exc), repr(str(exc))
    assert time.perf_counter() - t < TIME_BOUND_S
    return result


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids, max_size=4), max_leaves=12)


# --- safetensors headers -------------------------------------------------------------------------

TENSOR_HEADER = st.fixed_dictionaries({
    "dtype": st.sampled_from(["F32", "F16", "BF16", "I8", "U16", "BOOL", "F64", "X9"]) | JSON_VALUES,
    "shape": st.lists(st.integers(-3, 2**33), max_size=4) | JSON_VALUES,
    "data_offsets": st.lists(st.integers(-3, 2**40), min_size=0, max_size=3) | JSON_VALUES,
})


@FUZZ
@given(header=st.dictionaries(st.text(min_size=1, max_size=8), TENSOR_HEADER | JSON_VALUES, max_size=3),
       data=st.binary(max_size=128), lie=st.sampled_from([None, 0, 2**40, 2**63]))
def test_safetensors_headers(tmp_path_factory, header, data, lie):
    from seedlm_fpga.compressor.checkpoints import load_checkpoint

    raw = json.dumps(header).encode()
    path = tmp_path_factory.mktemp("st") / "x.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw) if lie is None else lie) + raw + data)
    outcome(load_checkpoint, path)


# --- .seedlm metadata ---------------------------------------------------------------------------------

def _good_entry() -> dict:
    return {"shape": [4, 16], "K": 16, "C": 8, "P": 3, "taps": [0, 1, 3, 12], "bias": -12, "dtype": "float32",
            "preset": "seedlm-4"}


ENTRY_VALUES = {
    "shape": st.lists(st.integers(-2, 2**40), max_size=3) | JSON_VALUES,
    "K": st.integers(-1, 40) | JSON_VALUES, "C": st.sampled_from([1, 8, 12, 256, 257, 2**31]) | JSON_VALUES,
    "P": st.integers(-1, 20) | JSON_VALUES, "taps": st.lists(st.integers(-1, 30), max_size=5) | JSON_VALUES,
    "bias": st.integers(-2000, 2000) | JSON_VALUES,
    "dtype": st.sampled_from(["float32", "float16", "bfloat16", "float64", "int8"]) | JSON_VALUES,
    "preset": st.sampled_from(["seedlm-4", "seedlm-3", "custom", "seedlm-5"]) | JSON_VALUES,
}


@FUZZ
@given(changes=st.dictionaries(st.sampled_from(sorted(ENTRY_VALUES)), st.none(), max_size=4).flatmap(
           lambda keys: st.fixed_dictionaries({k: ENTRY_VALUES[k] for k in keys})),
       drop=st.lists(st.sampled_from(sorted(ENTRY_VALUES)), max_size=2),
       version=st.sampled_from(["1", "1", "2", ""]),
       seed_value=st.sampled_from([1, 1, 0, 65535]))
def test_seedlm_metadata(tmp_path_factory, changes, drop, version, seed_value):
    from seedlm_fpga.compressor.container import check_container, read_container, read_header, write_safetensors

    entry = {**_good_entry(), **changes}
    for key in drop:
        entry.pop(key, None)
    parts = {"w.seed": np.full((4, 2), seed_value, np.uint16), "w.exp": np.zeros((4, 2), np.uint8),
             "w.coef": np.zeros((4, 2, 3), np.int8)}
    path = tmp_path_factory.mktemp("seedlm") / "x.seedlm"
    write_safetensors(path, parts, {"format": "seedlm", "format_version": version, "w": json.dumps(entry)})
    header = outcome(read_header, path)
    full = outcome(read_container, path)
    checked = outcome(check_container, path)
    assert isinstance(checked, UserError) == isinstance(full, UserError)  # project sees what decompress sees
    if not isinstance(header, UserError):  # a header that passes bounds every size by the file
        rows, cols = header.entries["w"]["shape"]
        assert rows * cols <= 4 * 2 * header.presets["w"].C


@FUZZ
@given(nnz=st.integers(-1, 5) | JSON_VALUES, shift=st.integers(-1, 70) | JSON_VALUES,
       rank=st.integers(-1, 5) | JSON_VALUES, ptr=st.lists(st.integers(0, 4), min_size=5, max_size=5),
       cols=st.lists(st.integers(0, 17), min_size=3, max_size=3), code=st.integers(-128, 127),
       lr_shift=st.integers(0, 255), version=st.sampled_from(["2", "2", "1"]))
@example(nnz=3, shift=5, rank=1, ptr=[0, 1, 2, 3, 3], cols=[1, 2, 3], code=5, lr_shift=5, version="2")  # valid
def test_seedlm_extension_parts(tmp_path_factory, nnz, shift, rank, ptr, cols, code, lr_shift, version):
    """format §5.5's parts with fuzzed metadata and values: a UserError or a file the integer GEMV runs on."""
    from seedlm_fpga.compressor.container import check_container, read_container, write_safetensors
    from seedlm_fpga.core.extensions import gemv_extended

    entry = {**_good_entry(), "sparse": {"nnz": nnz, "shift": shift}, "rank": rank}
    parts = {"w.seed": np.ones((4, 2), np.uint16), "w.exp": np.zeros((4, 2), np.uint8),
             "w.coef": np.ones((4, 2, 3), np.int8), "w.sp_rowptr": np.array(ptr, np.uint16),
             "w.sp_col": np.array(cols, np.uint16), "w.sp_val": np.full(3, code, np.int16),
             "w.lr_left": np.full((4, 1), code, np.int8), "w.lr_right": np.full((16, 1), code, np.int8),
             "w.lr_shift": np.array([lr_shift], np.uint8)}
    path = tmp_path_factory.mktemp("seedlm") / "x.seedlm"
    write_safetensors(path, parts, {"format": "seedlm", "format_version": version, "w": json.dumps(entry)})
    full = outcome(read_container, path)
    assert isinstance(outcome(check_container, path), UserError) == isinstance(full, UserError)
    if not isinstance(full, UserError):
        y = gemv_extended(full.compressed["w"], full.extensions["w"], np.arange(16) - 8)
        assert len(y) == 4


# --- board YAML -----------------------------------------------------------------------------------------

@FUZZ
@given(path=st.sampled_from([("memories", 0, "channels"), ("memories", 0, "peak_gbps_per_channel"),
                             ("memories", 0, "capacity_gb"), ("memories", 0, "bits_per_channel"),
                             ("clock", "target_mhz"), ("resources", "lut"), ("resources", "dsp"), ("memories",),
                             ("family",), ("name",)]),
       value=st.one_of(st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True), JSON_VALUES))
def test_board_yaml(path, value):
    import yaml

    from seedlm_fpga.boards.board import BOARDS_DIR, parse_board
    from seedlm_fpga.flows.sizing import size_for_board

    data = yaml.safe_load((BOARDS_DIR / "arty-a7-100t.yaml").read_text())
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    board = outcome(parse_board, yaml.safe_dump(data), "fuzz.yaml", "fuzz")
    if not isinstance(board, UserError):
        outcome(size_for_board, board)  # sizing a board that validated must end, quickly


@FUZZ
@given(text=st.text(max_size=200) | st.sampled_from(["[" * 2000, "a: " * 2000, "!!python/object:os.system x"]))
def test_board_yaml_text(text):
    from seedlm_fpga.boards.board import parse_board

    outcome(parse_board, text, "fuzz.yaml", "fuzz")


# --- config.json -----------------------------------------------------------------------------------------

CONFIG = {"hidden_size": 256, "intermediate_size": 688, "num_hidden_layers": 4, "num_attention_heads": 4,
          "num_key_value_heads": 4, "vocab_size": 1000, "max_position_embeddings": 512}


@FUZZ
@given(changes=st.dictionaries(st.sampled_from(sorted(CONFIG) + ["head_dim", "text_config"]),
                               st.integers(-(2**80), 2**80) | JSON_VALUES, max_size=3),
       raw=st.sampled_from([None, None, b"\xff\xfe", b"[" * 5000, b"{}", b'{"hidden_size": ' + b"9" * 5000 + b"}"]))
def test_config_json(tmp_path_factory, changes, raw):
    from seedlm_fpga.sim.llama_shapes import model_from_config
    from seedlm_fpga.sim.projection import project  # noqa: F401  (imported: the model must be usable)

    path = tmp_path_factory.mktemp("cfg") / "config.json"
    path.write_bytes(raw if raw is not None else json.dumps({**CONFIG, **changes}).encode())
    model = outcome(model_from_config, path)
    if not isinstance(model, UserError):
        assert model.params > 0


# --- llama2.c headers ---------------------------------------------------------------------------------

@FUZZ
@given(fields=st.lists(st.integers(-(2**31), 2**31 - 1) | st.integers(-4, 1 << 24), min_size=7, max_size=7),
       v1=st.booleans(), size=st.integers(0, 4096))
def test_llama2c_headers(tmp_path_factory, fields, v1, size):
    from seedlm_fpga.compressor.llama2c import read_llama2c_config

    head = struct.pack("<7i", *fields)
    if v1:
        head = struct.pack("<Ii", 0x616B3432, 1) + head + b"\0" * (256 - 36)
    path = tmp_path_factory.mktemp("l2c") / "x.bin"
    path.write_bytes(head + b"\0" * size)
    outcome(read_llama2c_config, path)


# --- a few through the CLI: exit 2 with one line, in a subprocess -----------------------------------------

@pytest.mark.parametrize("argv", [
    ["inspect", "/dev/zero"],
    ["boards", "--board", "{tmp}/deep.yaml"],
    ["project", "--config", "{tmp}/deep.json", "--no-plots", "-o", "{tmp}/p"],
])
def test_cli_one_line_in_a_subprocess(tmp_path, argv):
    import subprocess
    import sys

    (tmp_path / "deep.yaml").write_text("a: " + "[" * 50000)
    (tmp_path / "deep.json").write_text("[" * 50000)
    argv = [a.format(tmp=tmp_path) for a in argv]
    proc = subprocess.run([sys.executable, "-m", "seedlm_fpga.cli.main", *argv], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
