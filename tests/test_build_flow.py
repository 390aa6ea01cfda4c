"""flows.build: named steps, manifest, skipping unchanged steps, failures and restarts; `seedlm-fpga build`."""
import json
import re

import pytest

from seedlm_fpga.cli.main import main
from seedlm_fpga.errors import UserError
from seedlm_fpga.flows.build import BuildContext, BuildStep, run_build


def make_steps(calls, fail=()):
    """a writes a.txt from the source file; b copies it upper-cased; c counts its characters."""
    def a(ctx):
        calls.append("a")
        (ctx.out / "a" / "a.txt").write_text(ctx.params["src"].read_text())
        return {"bytes": len(ctx.params["src"].read_text())}

    def b(ctx):
        calls.append("b")
        if "b" in fail:
            raise RuntimeError("b broke")
        (ctx.out / "b" / "b.txt").write_text((ctx.out / "a" / "a.txt").read_text().upper())
        return {"upper": True}

    def c(ctx):
        calls.append("c")
        return {"chars": len((ctx.out / "b" / "b.txt").read_text()), "n": ctx.params["n"]}

    return [BuildStep("a", a, lambda ctx: [ctx.params["src"]]),
            BuildStep("b", b, lambda ctx: [ctx.out / "a" / "a.txt"]),
            BuildStep("c", c, lambda ctx: [ctx.out / "b" / "b.txt"], lambda ctx: {"n": ctx.params["n"]})]


@pytest.fixture
def src(tmp_path):
    path = tmp_path / "src.txt"
    path.write_text("hello")
    return path


def test_steps_run_write_reports_and_a_manifest(tmp_path, src):
    calls, out = [], tmp_path / "out"
    manifest = run_build(make_steps(calls), BuildContext(out, {"src": src, "n": 1}))
    assert calls == ["a", "b", "c"]
    assert (out / "b" / "b.txt").read_text() == "HELLO"
    report = json.loads((out / "c" / "report.json").read_text())
    assert report["chars"] == 5 and "provenance" in report
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == manifest and [on_disk["steps"][s]["status"] for s in "abc"] == ["done"] * 3
    assert set(on_disk["steps"]["b"]["inputs"]) == {"OUT/a/a.txt"}
    assert all(len(h) == 64 for h in on_disk["steps"]["a"]["inputs"].values())


def test_unchanged_steps_are_skipped_and_changes_rerun_what_depends_on_them(tmp_path, src):
    calls, out = [], tmp_path / "out"
    ctx = BuildContext(out, {"src": src, "n": 1})
    run_build(make_steps(calls), ctx)
    calls.clear()
    manifest = run_build(make_steps(calls), ctx)
    assert calls == [] and {e["status"] for e in manifest["steps"].values()} == {"skipped"}
    run_build(make_steps(calls), BuildContext(out, {"src": src, "n": 2}))  # a parameter of c only
    assert calls == ["c"]
    calls.clear()
    src.write_text("bye")                                                   # the first input
    run_build(make_steps(calls), BuildContext(out, {"src": src, "n": 2}))
    assert calls == ["a", "b", "c"] and (out / "b" / "b.txt").read_text() == "BYE"


def test_a_failed_step_names_itself_and_the_restart(tmp_path, src):
    calls, out = [], tmp_path / "out"
    ctx = BuildContext(out, {"src": src, "n": 1}, "`build --from {step}`")
    with pytest.raises(UserError, match=r"step b failed: b broke; .* `build --from b`"):
        run_build(make_steps(calls, fail="b"), ctx)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["steps"]["b"]["status"] == "failed" and "c" not in manifest["steps"]
    calls.clear()
    run_build(make_steps(calls), ctx, first="b")  # fixed: restart from b, a is not rerun
    assert calls == ["b", "c"]


def test_from_reruns_that_step_and_to_stops(tmp_path, src):
    calls, out = [], tmp_path / "out"
    ctx = BuildContext(out, {"src": src, "n": 1})
    with pytest.raises(UserError, match="earlier step.* a, b not done"):
        run_build(make_steps(calls), ctx, first="c")
    run_build(make_steps(calls), ctx, last="b")
    assert calls == ["a", "b"]
    calls.clear()
    run_build(make_steps(calls), ctx, first="b")
    assert calls == ["b", "c"]  # b forced; c ran because it had never run
    with pytest.raises(UserError, match="no such step"):
        run_build(make_steps(calls), ctx, first="z")


def test_cli_build_restarts_from_a_named_step(tmp_path, capsys):
    out = tmp_path / "b"
    assert main(["build", "--board", "ulx3s-85f", "-o", str(out), "--to", "lint"]) == 0
    design = json.loads((out / "generate" / "design.json").read_text())
    assert design["weight_bits"] == json.loads((out / "size" / "report.json").read_text())["bus_bits"]
    assert json.loads((out / "lint" / "report.json").read_text())["modules"]["seedlm_gemv"]["exit_code"] == 0
    capsys.readouterr()
    assert main(["build", "--board", "ulx3s-85f", "-o", str(out), "--from", "lint", "--to", "lint"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert [manifest["steps"][s]["status"] for s in ("size", "generate", "lint")] == ["done", "done", "done"]
    printed = capsys.readouterr()
    assert re.search(r"^lint\s+done", printed.out, re.M) and "step generate" not in printed.err
    assert main(["build", "--board", "ulx3s-85f", "-o", str(out), "--to", "lint"]) == 0
    assert {e["status"] for e in json.loads((out / "manifest.json").read_text())["steps"].values()} == {"skipped"}


def test_cli_build_bad_input_is_one_line(tmp_path, capsys):
    assert main(["build", "--board", "no-such-board", "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown board" in err[0]
