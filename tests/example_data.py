"""The example model and data shipped in examples/ (seedlm_fpga.examples)."""
from pathlib import Path

from seedlm_fpga.examples import EXAMPLES_DIR


def example_file(name: str) -> Path:
    path = EXAMPLES_DIR / name
    assert path.is_file(), f"{path} is missing: the repository ships it (examples/README.md)"
    return path
