"""Test helpers: random but valid EncodedTensors and .seedlm files (no encoder run needed)."""
from __future__ import annotations

import numpy as np
import torch

from seedlm_fpga.compressor.container import write_container
from seedlm_fpga.core.reference import EncodedTensor
from seedlm_fpga.core.reference import PRESETS, blocks_per_row


def random_encoded(rng: np.random.Generator, rows: int, cols: int, preset: str = "seedlm-4",
                   bias: int = -12) -> EncodedTensor:
    p = PRESETS[preset]
    nb = blocks_per_row(cols, p.C)
    return EncodedTensor(seeds=rng.integers(1, 1 << p.K, (rows, nb)).astype(np.uint16),
                         x=rng.integers(0, 16, (rows, nb)).astype(np.uint8),
                         q=rng.integers(-8, 8, (rows, nb, p.P)).astype(np.int8),
                         bias=bias, preset=p, shape=(rows, cols))


def sample_container(path, seed: int = 0):
    """A small .seedlm: two compressed tensors (one with row padding, one bfloat16) and
    carried tensors of several dtypes. Returns (compressed, carried, dtypes)."""
    rng = np.random.default_rng(seed)
    compressed = {"layers.0.wq": random_encoded(rng, 6, 16),
                  "layers.0.w2": random_encoded(rng, 5, 30, "seedlm-3", bias=-9)}
    dtypes = {"layers.0.wq": "float32", "layers.0.w2": "bfloat16"}
    carried = {"norm": torch.linspace(-1, 1, 16),
               "tok_embeddings": torch.randn(10, 16, generator=torch.Generator().manual_seed(seed)).to(torch.bfloat16),
               "positions": torch.arange(7, dtype=torch.int64),
               "scale": torch.tensor(0.5, dtype=torch.float16)}
    write_container(path, compressed, carried, dtypes=dtypes)
    return compressed, carried, dtypes
