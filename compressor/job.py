"""A whole-checkpoint compression job, cut into work units that any executor may run.

A unit is one row chunk of one selected tensor: the rows `encoder.row_chunks` gives for
`chunk_blocks` blocks (CHUNK_BLOCKS by default, the encoder's own chunking), so the
boundaries depend only on the tensor's shape and that number. Each block's search is
independent of every other block's, and the tensor's exponent bias is resolved once, before
any unit runs (`scan_tensor` + `tensor_bias`, one streaming pass over the rows), so encoding
the units separately gives exactly the blocks `encode_tensor` gives for the whole tensor:
`assemble` stacks them back in row order and the container's bytes do not change.

Each finished unit is saved atomically into a `ChunkStore` folder (one small .seedlm per
unit), so a run that stops -- Ctrl-C, SIGKILL, a dead machine -- loses at most the units in
flight; `run_job` skips the units already saved. Executors:
- `local_executor`: this process, unit after unit;
- `ray_executor.ray_executor`: Ray tasks (imported only when asked for).
An executor is a callable (units, on_done) that calls on_done(unit, EncodedTensor) for every
unit, in any order, from the calling thread.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from seedlm_fpga.core.reference import EncodedTensor, Preset, blocks_per_row
from seedlm_fpga.errors import UserError

from seedlm_fpga.compressor import encoder

#: Blocks per work unit (and per encoder chunk): 65,536 blocks = 524,288 weights at C = 8.
CHUNK_BLOCKS = encoder.CHUNK_BLOCKS
#: Rows of at most this many weights are read at a time by `scan_tensor`.
SCAN_WEIGHTS = 1 << 24


@dataclass(frozen=True)
class Unit:
    """Rows r0..r1-1 of tensor `name` ([rows, cols]), encoded with the tensor's bias."""

    name: str
    r0: int
    r1: int
    cols: int
    blocks: int
    bias: int

    @property
    def key(self) -> str:
        return f"{self.name}\0{self.r0}:{self.r1}"


def tensor_units(name: str, shape: tuple[int, int], preset: Preset, bias: int,
                 chunk_blocks: int | None = None) -> list[Unit]:
    """The tensor's units, in row order (chunk_blocks: default CHUNK_BLOCKS, read at call time)."""
    rows, cols = shape
    nb = blocks_per_row(cols, preset.C)
    chunk_blocks = CHUNK_BLOCKS if chunk_blocks is None else chunk_blocks
    return [Unit(name, r0, r1, cols, (r1 - r0) * nb, bias)
            for r0, r1 in encoder.row_chunks(rows, nb, chunk_blocks)]


def as_weights(t) -> np.ndarray:
    """A torch tensor as the encoder's input: float64 stays float64, all else float32 (exact)."""
    import torch

    return t.to(torch.float64 if t.dtype == torch.float64 else torch.float32).numpy()


def scan_tensor(tensors, name: str) -> tuple[float, int]:
    """(max |w|, number of NaN/Inf weights) of a tensor, reading a bounded row range at a time.
    `tensors` is a checkpoints.TensorStore (or any mapping with .meta and .rows)."""
    rows, cols = tensors.meta(name).shape
    step = max(1, SCAN_WEIGHTS // max(1, cols))
    wmax, bad = 0.0, 0
    for r0 in range(0, rows, step):
        w = np.abs(as_weights(tensors.rows(name, r0, min(rows, r0 + step))))
        finite = np.isfinite(w)
        bad += int(w.size - np.count_nonzero(finite))
        if w.size:
            wmax = max(wmax, float(np.max(w, where=finite, initial=0.0)))
    return wmax, bad


def tensor_bias(bias: str | int, wmax: float, preset: Preset) -> int:
    """The tensor's exponent bias from the --bias choice and its max |w| (encoder.resolve_bias)."""
    if bias == "auto":
        return encoder.auto_bias(wmax)
    return encoder.resolve_bias(bias, np.zeros((1, 1)), preset)


def encode_unit(tensors, unit: Unit, preset: Preset, device: str = "cpu") -> EncodedTensor:
    """Encode one unit: its rows read from `tensors` (rows only, not the tensor)."""
    w = as_weights(tensors.rows(unit.name, unit.r0, unit.r1))
    return encoder.encode_tensor(w, preset, bias=unit.bias, device=device)


class ChunkStore:
    """Finished units in a folder, one small .seedlm (the unit's rows as a tensor) per unit,
    each written atomically (write_container): a file is there whole or not at all."""

    def __init__(self, folder: str | Path):
        self.dir = Path(folder)

    def path(self, unit: Unit) -> Path:
        return self.dir / (hashlib.sha256(unit.key.encode()).hexdigest()[:24] + ".seedlm")

    def load(self, unit: Unit, preset: Preset) -> EncodedTensor | None:
        """The unit's saved blocks, or None if absent, damaged or from other settings."""
        from seedlm_fpga.compressor.container import read_container

        path = self.path(unit)
        if not path.is_file():
            return None
        try:
            enc = read_container(path).compressed.get(unit.name)
        except UserError:
            return None
        if (enc is None or enc.preset != preset or enc.bias != unit.bias
                or tuple(enc.shape) != (unit.r1 - unit.r0, unit.cols)):
            return None
        return enc

    def save(self, unit: Unit, enc: EncodedTensor) -> None:
        from seedlm_fpga.compressor.container import write_container

        write_container(self.path(unit), {unit.name: enc}, {})


def assemble(units: list[Unit], parts: list[EncodedTensor]) -> EncodedTensor:
    """One tensor's encoding from its units' encodings (units in row order)."""
    first = parts[0]
    rows = units[-1].r1
    return EncodedTensor(seeds=np.concatenate([p.seeds for p in parts]), x=np.concatenate([p.x for p in parts]),
                         q=np.concatenate([p.q for p in parts]), bias=first.bias, preset=first.preset,
                         shape=(rows, units[0].cols))


Executor = Callable[[list[Unit], Callable[[Unit, EncodedTensor], None]], None]


def local_executor(tensors, preset: Preset, device: str = "cpu") -> Executor:
    """Run the units here, in order."""
    def execute(units: list[Unit], on_done) -> None:
        for unit in units:
            try:
                enc = encode_unit(tensors, unit, preset, device)
            except ValueError as exc:
                raise UserError(f"tensor {unit.name!r}: {exc}") from None
            on_done(unit, enc)
    return execute


def run_job(units: Iterable[Unit], preset: Preset, store: ChunkStore, execute: Executor,
            progress: Callable[[int], None] | None = None) -> dict[str, EncodedTensor]:
    """Encode every unit not yet in `store`, saving each as it finishes, then assemble the
    tensors (in the order their first unit comes) from the store. progress(n) gets blocks."""
    units = list(units)
    todo = []
    for unit in units:
        if store.path(unit).is_file() and store.load(unit, preset) is not None:
            if progress is not None:
                progress(unit.blocks)
        else:
            todo.append(unit)

    def on_done(unit: Unit, enc: EncodedTensor) -> None:
        store.save(unit, enc)
        if progress is not None:
            progress(unit.blocks)

    if todo:
        execute(todo, on_done)
    by_tensor: dict[str, list[Unit]] = {}
    for unit in units:
        by_tensor.setdefault(unit.name, []).append(unit)
    out = {}
    for name, tensor_units_ in by_tensor.items():
        parts = [store.load(u, preset) for u in tensor_units_]
        if any(p is None for p in parts):  # an executor that skipped a unit, or a store changed under us
            raise RuntimeError(f"tensor {name!r}: a finished chunk is missing from {store.dir}")
        out[name] = assemble(tensor_units_, parts)
    return out
