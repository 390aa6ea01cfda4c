"""seedlm_fpga.core.report: the provenance envelope, byte-reproducible, on every JSON report."""
import hashlib
import json
import re
from pathlib import Path

import pytest
from seedlm_samples import sample_container

import seedlm_fpga.boards as boards_pkg
from seedlm_fpga import __version__
from seedlm_fpga.cli.main import main
from seedlm_fpga.core import report as rep

TIME_LIKE = re.compile(r"time|date|second|duration|wall|clock|stamp|when|_s$", re.I)


def _keys(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield from _keys(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _keys(v)


def test_envelope_fields_and_input_sha256(tmp_path):
    f = tmp_path / "in.bin"
    data = bytes(range(256)) * 5000  # over one read chunk
    f.write_bytes(data)
    r = rep.report_dict({"b": 1, "a": 2}, inputs=[f, "no-such-board-id", None, tmp_path], argv=["inspect", "x"])
    assert list(r) == ["b", "a", "provenance"]  # body keys stay where they were
    p = r["provenance"]
    assert p["tool"] == "seedlm-fpga" and p["version"] == __version__
    assert p["command"] == ["seedlm-fpga", "inspect", "x"]
    assert p["inputs"] == {str(f): hashlib.sha256(data).hexdigest()}  # only regular files are hashed
    assert p["git"] is None or isinstance(p["git"], str) and p["git"]
    assert not [k for k in _keys(p) if TIME_LIKE.search(k)]


def test_same_inputs_give_identical_bytes(tmp_path):
    f = tmp_path / "board.yaml"
    f.write_text("x: 1\n")
    one = rep.dumps(rep.report_dict({"x": [1, 2]}, inputs=[f], argv=["synth"]))
    two = rep.dumps(rep.report_dict({"x": [1, 2]}, inputs=[f], argv=["synth"]))
    assert one == two and one.endswith("}\n") and one.startswith('{\n  "x"')
    rep.write_report(tmp_path / "a.json", {"x": [1, 2]}, inputs=[f], argv=["synth"])
    rep.write_report(tmp_path / "b.json", {"x": [1, 2]}, inputs=[f], argv=["synth"])
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes() == one.encode()


def test_body_may_not_bring_its_own_provenance():
    with pytest.raises(ValueError, match="provenance"):
        rep.report_dict({"provenance": {}})


def test_cli_records_its_argv():
    main(["boards"])
    assert rep.command() == ["seedlm-fpga", "boards"]
    assert rep.command(["x", 3]) == ["seedlm-fpga", "x", "3"]


def test_git_describe_never_fails(monkeypatch):
    rep.git_describe.cache_clear()
    monkeypatch.setenv("PATH", "/nonexistent")
    try:
        assert rep.git_describe() is None
    finally:
        rep.git_describe.cache_clear()


def _run_twice(tmp_path, capsys, argv):
    outs = []
    for _ in range(2):
        assert main(argv) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1]
    return json.loads(outs[0])


def test_generate_design_json_is_reproducible(tmp_path, capsys):
    argv = ["generate", "--bus-bits", "64", "--max-cols", "64", "-o", str(tmp_path / "o")]
    texts = []
    for _ in range(2):
        assert main(argv) == 0
        texts.append((tmp_path / "o" / "design.json").read_bytes())
    assert texts[0] == texts[1]
    d = json.loads(texts[0])
    assert d["provenance"]["command"] == ["seedlm-fpga", *argv]
    assert d["provenance"]["inputs"] == {}
    assert list(d)[-1] == "provenance" and "generator" in d


def test_generate_with_a_board_file_hashes_it(tmp_path, capsys):
    src = Path(boards_pkg.__file__).parent / "ulx3s-85f.yaml"
    board = tmp_path / "my-board.yaml"
    board.write_bytes(src.read_bytes())
    assert main(["generate", "--board", str(board), "--max-cols", "64", "-o", str(tmp_path / "o")]) == 0
    d = json.loads((tmp_path / "o" / "design.json").read_text())
    assert d["provenance"]["inputs"] == {str(board): hashlib.sha256(board.read_bytes()).hexdigest()}


def test_inspect_json_is_reproducible(tmp_path, capsys):
    f = tmp_path / "m.seedlm"
    sample_container(f)
    data = _run_twice(tmp_path, capsys, ["inspect", str(f), "--json"])
    assert data["provenance"]["inputs"] == {str(f): hashlib.sha256(f.read_bytes()).hexdigest()}
    assert data["provenance"]["command"] == ["seedlm-fpga", "inspect", str(f), "--json"]
    assert data["file"] == str(f)
