"""The README's Quickstart runs verbatim, top to bottom, from the clone's root."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quickstart_lines() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Quickstart\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the Quickstart is one sh block"
    return [line for line in blocks[0].splitlines() if line.strip()]


def test_quickstart_lines_are_plain_commands():
    # what a reader pastes: no placeholders or optional flags in brackets, no comments to trip on
    for line in quickstart_lines():
        assert line.startswith("seedlm-fpga "), line
        assert not re.search(r"\[|\]|<|>|#", line), line


def test_quickstart_outputs_are_ignored_by_git():
    outputs = {"s4.seedlm", "s4.safetensors", "wq.bin", "build/x", "synth-ulx3s-85f/x", "seedlm-report/x"}
    proc = subprocess.run(["git", "check-ignore", "--no-index", *sorted(outputs)], cwd=ROOT,
                          capture_output=True, text=True)
    assert set(proc.stdout.split()) == outputs


def test_quickstart_runs_verbatim(tmp_path):
    # a copy of what a clone has at its root that the block reads: the shipped example model
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    script = "set -euo pipefail\n" + "\n".join(quickstart_lines()) + "\n"
    proc = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"}, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for made in ("s4.seedlm", "s4.safetensors", "wq.bin", "build/seedlm_gemv.v",
                 "synth-ulx3s-85f/report.json", "seedlm-report/projection.json"):
        assert (tmp_path / made).is_file(), made
    assert "bit-exact" in proc.stdout


def test_the_board_example_is_a_valid_board_file():
    from seedlm_fpga.boards.board import parse_board

    text = (ROOT / "README.md").read_text()
    example = re.search(r"```yaml\n(# my-board\.yaml.*?)```", text, flags=re.S).group(1)
    board = parse_board(example, "README.md", default_id="my-board")
    assert board.memories[0].efficiency_low <= board.memories[0].efficiency <= board.memories[0].efficiency_high
