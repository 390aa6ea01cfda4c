"""HQQ and NF4, from their libraries (the optional `quality` extra), with exact bit accounting.

Same interface as baselines.Baseline (name, storage_bits, bits_per_weight, quantize -> float64).

- ``HQQ``: optimum-quanto's HqqOptimizer (Badri & Shaji's half-quadratic solver, pure PyTorch):
  asymmetric n-bit codes per group of g consecutive weights of a row, the scale and zero (shift)
  per group optimized data-free, then stored as fp16, and the codes recomputed with the fp16 values.
  quanto packs only 2- and 4-bit codes, so HQQ runs at 4 bits here. Rows are zero-padded to a
  multiple of g (the last, partial group then stores a full scale and shift; the padding itself is
  not counted: the codes pack densely). Storage: n bits per weight + 32 bits per group.
- ``NF4``: torchao's NF4Tensor (QLoRA's 4-bit NormalFloat with double-quantized scales) over the
  row-major flattened matrix, zero-padded to a multiple of the block (64): 4-bit codes for every
  padded weight, an int8 scaler per block, an fp32 factor per scaler block and one fp32 scaler
  mean. torchao needs the scaler count divisible by the scaler block, so that is QLoRA's 256
  where it divides the block count, else its largest divisor below 256.
"""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

import numpy as np

FP16_BITS = 16
FP32_BITS = 32
INT8_BITS = 8
NF4_BLOCK = 64
NF4_SCALER_BLOCK = 256
#: What `pip install seedlm-fpga[quality]` brings; evaluate names it when missing.
QUALITY_EXTRA = "pip install 'seedlm-fpga[quality]' (optimum-quanto 0.2.7, torchao 0.18)"


@contextlib.contextmanager
def _quiet():
    """torchao logs a warning for each optional CUDA kernel it cannot load on a CPU machine."""
    loggers = [logging.getLogger(n) for n in ("torchao", "torch.utils._pytree")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def missing_extra() -> str | None:
    """None when HQQ and NF4 can run, else what is missing and how to install it."""
    missing = []
    for module in ("optimum.quanto", "torchao"):
        try:
            with _quiet():
                __import__(module)
        except ImportError:
            missing.append(module.split(".")[-1] if module == "optimum.quanto" else module)
    if not missing:
        return None
    return f"HQQ and NF4 baselines skipped: {', '.join(missing)} not installed; {QUALITY_EXTRA}"


def _as_2d(w) -> np.ndarray:
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 2:
        raise ValueError(f"baselines quantize matrices, got shape {w.shape}")
    return w


@dataclass(frozen=True)
class HQQ:
    bits: int
    group: int

    @property
    def name(self) -> str:
        return f"HQQ int{self.bits} g{self.group}"

    def storage_bits(self, shape: tuple[int, int]) -> int:
        rows, cols = shape
        return rows * cols * self.bits + rows * -(-cols // self.group) * 2 * FP16_BITS

    def bits_per_weight(self, shape: tuple[int, int]) -> float:
        return self.storage_bits(shape) / (shape[0] * shape[1])

    def quantize(self, w) -> np.ndarray:
        import torch

        with _quiet():
            from optimum.quanto.tensor import qint2, qint4
            from optimum.quanto.tensor.optimizers import HqqOptimizer
            from optimum.quanto.tensor.weights import quantize_weight
        qtype = {2: qint2, 4: qint4}.get(self.bits)
        if qtype is None:
            raise ValueError(f"quanto's HQQ packs 2- or 4-bit codes, not {self.bits}")
        w = _as_2d(w)
        rows, cols = w.shape
        padded = np.zeros((rows, -(-cols // self.group) * self.group), dtype=np.float32)
        padded[:, :cols] = w
        t = torch.from_numpy(padded)
        scale, shift = HqqOptimizer()(t, qtype, axis=0, group_size=self.group)
        scale, shift = scale.half().float(), shift.half().float()  # stored as fp16
        q = quantize_weight(t, qtype=qtype, axis=0, scale=scale, shift=shift, group_size=self.group,
                            optimized=False)
        return q.dequantize().double().numpy()[:, :cols]


def nf4_scaler_block(n_blocks: int) -> int:
    """NF4_SCALER_BLOCK if it divides n_blocks, else n_blocks' largest divisor below it."""
    return next(s for s in range(min(NF4_SCALER_BLOCK, n_blocks), 0, -1) if n_blocks % s == 0)


@dataclass(frozen=True)
class NF4:
    block: int = NF4_BLOCK

    @property
    def name(self) -> str:
        return f"NF4 g{self.block}"

    def storage_bits(self, shape: tuple[int, int]) -> int:
        n_blocks = -(-shape[0] * shape[1] // self.block)
        return (n_blocks * self.block * 4 + n_blocks * INT8_BITS
                + n_blocks // nf4_scaler_block(n_blocks) * FP32_BITS + FP32_BITS)

    def bits_per_weight(self, shape: tuple[int, int]) -> float:
        return self.storage_bits(shape) / (shape[0] * shape[1])

    def quantize(self, w) -> np.ndarray:
        import torch

        with _quiet():
            from torchao.quantization.quantize_.workflows.nf4.nf4_tensor import to_nf4
        w = _as_2d(w)
        n = w.size
        n_blocks = -(-n // self.block)
        flat = np.zeros(n_blocks * self.block, dtype=np.float32)
        flat[:n] = w.ravel()
        t = to_nf4(torch.from_numpy(flat), self.block, nf4_scaler_block(n_blocks))
        return t.get_original_weight().double().numpy()[:n].reshape(w.shape)


LIBRARY_BASELINES = (HQQ(4, 64), HQQ(4, 128), NF4())
