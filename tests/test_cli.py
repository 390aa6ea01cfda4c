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


def test_project_does_not_import_torch_or_amaranth():
    # `project` promises < 2 s: the dispatcher must import only the command's module.
    code = ("import sys; from seedlm_fpga.cli.main import build_parser; build_parser('project'); "
            "print(sorted(m for m in ('torch', 'amaranth') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_broken_pipe_is_quiet():
    # `seedlm-fpga boards | head -1`: the reader goes away; exit quietly, no traceback.
    code = ("import os, sys; r, w = os.pipe(); os.close(r); sys.stdout = os.fdopen(w, 'w', buffering=1); "
            "from seedlm_fpga.cli.main import main; rc = main(['boards']); print('rc', rc, file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stderr.splitlines()[-1] == "rc 0" and "Traceback" not in proc.stderr
