"""The example model shipped with the project (see README.md here for origin and licences).

stories260K (llama2.c format), its 512-token tokenizer and the first 1000 TinyStories
validation stories: the Quickstart, `evaluate`'s defaults and the real-data tests use them.
"""
from __future__ import annotations

from pathlib import Path

#: This folder: <clone>/examples, or site-packages/seedlm_fpga/examples when installed.
EXAMPLES_DIR = Path(__file__).resolve().parent
MODEL = EXAMPLES_DIR / "stories260K.bin"
TOKENIZER = EXAMPLES_DIR / "tok512.bin"
STORIES = EXAMPLES_DIR / "tinystories_val.txt"
