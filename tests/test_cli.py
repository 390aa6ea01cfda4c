"""The `seedlm-fpga` dispatcher: top-level help, unknown commands, lazy imports."""
import subprocess
import sys

import pytest

from seedlm_fpga import __version__
from seedlm_fpga.cli.main import COMMANDS, main


def test_top_help_lists_every_command(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: seedlm-fpga [--version] COMMAND [ARGS]")
    for name, (_, help_) in COMMANDS.items():
        assert f"  {name}" in out and help_ in out


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"seedlm-fpga {__version__}\n"


def test_unknown_command(capsys):
    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err
    assert err == f"seedlm-fpga: error: unknown command 'frobnicate' (choose from {', '.join(COMMANDS)})\n"


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: seedlm-fpga {command}")


def _heavy_imports(args: list[str], cwd) -> set[str]:
    """torch/amaranth modules that `python -X importtime -m seedlm_fpga.cli.main ARGS` imported."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "seedlm_fpga.cli.main", *args],
                          capture_output=True, text=True, cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    return {n for n in names if n.split(".")[0] in ("torch", "amaranth")}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_help_loads_neither_torch_nor_amaranth(command, tmp_path):
    assert _heavy_imports([command, "--help"], tmp_path) == set()


def test_project_loads_neither_torch_nor_amaranth(tmp_path):
    # `project` promises about 2 s: the cycle model and sizing are numpy-only (the import contract).
    assert _heavy_imports(["project", "--no-plots", "-o", str(tmp_path / "r")], tmp_path) == set()


def test_the_importtime_probe_sees_a_heavy_import(tmp_path):
    # The probe itself must be able to fail: `generate` does load Amaranth.
    found = _heavy_imports(["generate", "--bus-bits", "64", "-o", str(tmp_path / "g")], tmp_path)
    assert "amaranth" in found


def test_broken_pipe_is_quiet():
    # `seedlm-fpga boards | head -1`: the reader goes away; exit quietly, no traceback.
    code = ("import os, sys; r, w = os.pipe(); os.close(r); sys.stdout = os.fdopen(w, 'w', buffering=1); "
            "from seedlm_fpga.cli.main import main; rc = main(['boards']); print('rc', rc, file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stderr.splitlines()[-1] == "rc 0" and "Traceback" not in proc.stderr
