"""Running the CLI in-process from a test: exit code, stdout and stderr."""
from __future__ import annotations

from seedlm_fpga.cli.main import main


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """`seedlm-fpga ARGV...` (each argument through str), with what it printed."""
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err
