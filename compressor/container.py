"""The `.seedlm` container (format §5.1): a safetensors file, written deterministically and atomically.

Each compressed tensor NAME is stored as three parts, ``NAME.seed`` (uint16 [rows, nb]),
``NAME.exp`` (uint8 [rows, nb]) and ``NAME.coef`` (int8 [rows, nb, P]), plus a metadata
entry NAME -> JSON {"shape", "K", "C", "P", "taps", "bias", "dtype", "preset"}. Tensors
kept uncompressed are stored under their own name. `read_container` validates everything
(parts present, shapes, dtypes, value ranges, metadata) and names the first problem it finds.

Files are written by our own safetensors serializer, not by ``safetensors.save``: the latter
emits the metadata map in a per-process random order, so the same input would not give
byte-identical files. Reading goes through the safetensors library.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seedlm_fpga.compressor import container_ext
from seedlm_fpga.core.extensions import Extensions, extension_bits
from seedlm_fpga.core.files import atomic_write, check_input_file, parse_json
from seedlm_fpga.core.lfsr import TAPS
from seedlm_fpga.core.reference import (CUSTOM_PRESET, MAX_C, PRESETS, EncodedTensor, Preset, bias_range,
                                        blocks_per_row)
from seedlm_fpga.errors import UserError

FORMAT = "seedlm"
#: The version a file gets: "1" unless a tensor has extension parts (format §5.5), then "2", so
#: readers from before the extensions refuse such files instead of ignoring their parts.
FORMAT_VERSION = "1"
EXTENDED_VERSION = "2"
READ_VERSIONS = (FORMAT_VERSION, EXTENDED_VERSION)
#: Metadata keys that are not tensor entries: the format tag and our own keys ("seedlm.*").
EXTRA_PREFIX = "seedlm."
PARTS = ("seed", "exp", "coef")
#: Original dtypes a compressed tensor may record (decompress restores them).
FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
#: safetensors dtype tags, by torch dtype name (torch itself is imported only to read or write data).
_ST_DTYPE = {
    "float64": "F64", "float32": "F32", "float16": "F16", "bfloat16": "BF16",
    "int64": "I64", "int32": "I32", "int16": "I16", "int8": "I8",
    "uint64": "U64", "uint32": "U32", "uint16": "U16", "uint8": "U8",
    "bool": "BOOL", "float8_e4m3fn": "F8_E4M3", "float8_e5m2": "F8_E5M2",
}


def torch_dtype(name: str):
    """The torch dtype of a FLOAT_DTYPES name."""
    import torch

    return getattr(torch, name)


# --- deterministic safetensors writing (atomic: core.files) ---------------------------------------

def _as_torch(t):
    import torch

    if isinstance(t, np.ndarray):  # read-only arrays (e.g. from Ray's object store) are copied
        t = torch.from_numpy(np.array(t, order="C", copy=not t.flags.writeable or None))
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"expected a numpy array or torch tensor, got {type(t).__name__}")
    return t.detach().cpu().contiguous()


def _tensor_bytes(t) -> bytes:
    import torch

    return t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""


class Deferred:
    """A tensor that write_safetensors writes without holding it all along: `meta` (anything
    with .shape and .dtype, e.g. a torch meta tensor) fills the header, `load()` gives the data
    when its turn comes. Lets a large checkpoint's carried tensors stream into the output."""

    def __init__(self, meta, load):
        self.meta = meta
        self.load = load


def write_safetensors(path: str | Path, tensors: dict, metadata: dict[str, str] | None = None) -> None:
    """Write a safetensors file atomically; tensors and metadata in sorted order (byte-reproducible).
    Values are numpy arrays, torch tensors or `Deferred` (loaded one at a time while writing)."""
    header: dict = {}
    if metadata:
        header["__metadata__"] = {k: str(metadata[k]) for k in sorted(metadata)}
    blobs, offset = [], 0
    for name in sorted(tensors):
        value = tensors[name]
        t = value.meta if isinstance(value, Deferred) else _as_torch(value)
        dtype = str(t.dtype).removeprefix("torch.")
        if dtype not in _ST_DTYPE:
            raise UserError(f"tensor {name!r} has dtype {t.dtype}, which safetensors cannot store")
        if isinstance(value, Deferred):
            blob, size = value, int(np.prod(t.shape, dtype=np.int64)) * t.element_size()
        else:
            blob = _tensor_bytes(t)
            size = len(blob)
        header[name] = {"dtype": _ST_DTYPE[dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + size]}
        blobs.append((name, blob, size))
        offset += size
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)  # the data starts 8-byte aligned, as safetensors does it
    import torch

    with atomic_write(path) as f:
        f.write(len(head).to_bytes(8, "little"))
        f.write(head)
        for name, blob, size in blobs:
            if isinstance(blob, Deferred):
                t = _as_torch(blob.load())
                if tuple(t.shape) != tuple(blob.meta.shape) or t.dtype != blob.meta.dtype:
                    raise UserError(f"tensor {name!r} changed while being written (shape or dtype)")
                blob = t.reshape(-1).view(torch.uint8).numpy() if t.numel() else b""  # no bytes copy
            f.write(blob)


# --- metadata entries ----------------------------------------------------------------------------

def tensor_entry(enc: EncodedTensor, dtype: str) -> dict:
    p = enc.preset
    return {"shape": [int(enc.shape[0]), int(enc.shape[1])], "K": p.K, "C": p.C, "P": p.P,
            "taps": list(p.taps), "bias": int(enc.bias), "dtype": dtype, "preset": p.name}


def _preset_from_entry(where: str, e: dict) -> Preset:
    """The entry's preset, within format §3.4: 2 <= K <= 24 with the maximal-length taps of
    format §1, 1 <= C <= MAX_C, 1 <= P <= (60 - K) / 4, a known name with exactly its
    parameters or CUSTOM_PRESET; and a bias that makes sense for the dtype (§3.2)."""
    for key in ("K", "C", "P", "bias"):
        if not isinstance(e[key], int) or isinstance(e[key], bool):
            raise UserError(f"{where}: {key} must be an integer, got {e[key]!r}")
    K, C, P = e["K"], e["C"], e["P"]
    taps = e["taps"]
    if not (2 <= K <= 24 and 1 <= C <= MAX_C and 1 <= P <= (64 - K - 4) // 4):
        raise UserError(f"{where}: unsupported parameters K={K}, C={C}, P={P} (format §3.4: K 2..24, "
                        f"C 1..{MAX_C}, P 1..(60-K)/4)")
    if not isinstance(taps, list) or taps != list(TAPS[K]):
        raise UserError(f"{where}: taps {taps!r} are not the maximal-length taps {list(TAPS[K])} of a "
                        f"{K}-bit LFSR (format §1)")
    name = e["preset"]
    if not isinstance(name, str):
        raise UserError(f"{where}: preset must be a string")
    preset = Preset(name, K=K, C=C, P=P, taps=tuple(taps))
    known = PRESETS.get(name)
    if known is None and name != CUSTOM_PRESET:
        raise UserError(f"{where}: unknown preset {name!r} (known: {', '.join(PRESETS)}; other "
                        f"parameters are named {CUSTOM_PRESET!r})")
    if known is not None and known != preset:
        raise UserError(f"{where}: parameters K={K}, C={C}, P={P}, taps={taps} do not match preset "
                        f"{preset.name!r}")
    lo, hi = bias_range(e["dtype"])
    if not lo <= e["bias"] <= hi:
        raise UserError(f"{where}: bias {e['bias']} is out of range {lo}..{hi} for {e['dtype']} "
                        f"(format §3.2)")
    return preset


def _parse_entry(where: str, text: str, version: str = EXTENDED_VERSION) -> tuple[dict, Preset]:
    if not isinstance(text, str):
        raise UserError(f"{where}: metadata entry is not a string")
    e = parse_json(text, where, "metadata entry")
    if not isinstance(e, dict):
        raise UserError(f"{where}: metadata entry is not a JSON object")
    missing = [k for k in ("shape", "K", "C", "P", "taps", "bias", "dtype", "preset") if k not in e]
    if missing:
        raise UserError(f"{where}: metadata entry lacks {', '.join(missing)}")
    shape = e["shape"]
    if (not isinstance(shape, list) or len(shape) != 2
            or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)):
        raise UserError(f"{where}: shape {shape!r} is not [rows, cols] of positive integers")
    if not isinstance(e["dtype"], str) or e["dtype"] not in FLOAT_DTYPES:
        raise UserError(f"{where}: dtype {e['dtype']!r} is not one of {', '.join(FLOAT_DTYPES)}")
    preset = _preset_from_entry(where, e)
    container_ext.check_entry(where, e, version)
    return e, preset


def _part_specs(preset: Preset, shape) -> tuple[tuple[str, type, tuple[int, ...]], ...]:
    """(part, numpy dtype, shape) of a tensor's three stored parts (format §5.1)."""
    rows, cols = shape
    nb = blocks_per_row(cols, preset.C)
    seed_dtype = np.uint16 if preset.K <= 16 else np.uint32
    return (("seed", seed_dtype, (rows, nb)), ("exp", np.uint8, (rows, nb)), ("coef", np.int8, (rows, nb, preset.P)))


def _check_parts(where: str, preset: Preset, shape, seeds: np.ndarray, x: np.ndarray, q: np.ndarray):
    """Shapes, dtypes and value ranges of one tensor's blocks against its metadata."""
    for (part, dtype, want), arr in zip(_part_specs(preset, shape), (seeds, x, q)):
        _check_part(where, preset, shape, part, arr.dtype, arr.shape, dtype, want)
    if seeds.size and (seeds.min() < 1 or seeds.max() > (1 << preset.K) - 1):
        raise UserError(f"{where}: seeds out of range 1..{(1 << preset.K) - 1}")
    if x.size and x.max() > 15:
        raise UserError(f"{where}: exponent codes out of range 0..15")
    if q.size and (q.min() < -8 or q.max() > 7):
        raise UserError(f"{where}: coefficients out of range -8..7")


def _check_part(where: str, preset: Preset, shape, part: str, got_dtype, got_shape, dtype, want) -> None:
    if isinstance(got_dtype, str):  # a safetensors tag from the header
        got = {tag: name for name, tag in _ST_DTYPE.items()}.get(got_dtype, got_dtype)
    else:
        got = np.dtype(got_dtype)
    if str(got) != str(np.dtype(dtype)):
        raise UserError(f"{where}: .{part} has dtype {got}, expected {np.dtype(dtype)}")
    if tuple(got_shape) != want:
        raise UserError(f"{where}: .{part} has shape {list(got_shape)}, expected {list(want)} "
                        f"for shape {list(shape)} with {preset.name}")


# --- the container ---------------------------------------------------------------------------------

@dataclass
class Container:
    """What a .seedlm file holds: compressed tensors, their original dtypes, carried tensors."""

    compressed: dict[str, EncodedTensor]
    carried: dict  # name -> torch.Tensor
    dtypes: dict[str, str] = field(default_factory=dict)  # original dtype of each compressed tensor
    metadata: dict[str, str] = field(default_factory=dict)  # the raw safetensors metadata
    extensions: dict[str, Extensions] = field(default_factory=dict)  # NAME -> outliers/low-rank (§5.5)

    @property
    def extra(self) -> dict[str, str]:
        """Our own metadata ("seedlm.*" keys: source file, its format, ...)."""
        return {k: v for k, v in self.metadata.items() if k.startswith(EXTRA_PREFIX)}


def _encoded_parts(enc: EncodedTensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    seed_dtype = np.uint16 if enc.preset.K <= 16 else np.uint32
    return (np.ascontiguousarray(enc.seeds, dtype=seed_dtype), np.ascontiguousarray(enc.x, dtype=np.uint8),
            np.ascontiguousarray(enc.q, dtype=np.int8))


def write_container(path: str | Path, compressed: dict[str, EncodedTensor], carried: dict,
                    extra_metadata: dict[str, str] | None = None, dtypes: dict[str, str] | None = None,
                    extensions: dict[str, Extensions] | None = None) -> None:
    """Write a .seedlm file atomically. `dtypes` gives each compressed tensor's original dtype
    (default float32); `extra_metadata` keys must start with "seedlm."; `extensions` a tensor's
    outliers/low-rank parts (format §5.5; any present makes the file format_version 2)."""
    dtypes = dtypes or {}
    extensions = {n: e for n, e in (extensions or {}).items() if e}
    if set(extensions) - set(compressed):
        raise ValueError(f"extensions for tensors not compressed: {sorted(set(extensions) - set(compressed))}")
    version = EXTENDED_VERSION if extensions else FORMAT_VERSION
    metadata = {"format": FORMAT, "format_version": version}
    tensors: dict = {}
    for key, value in (extra_metadata or {}).items():
        if not key.startswith(EXTRA_PREFIX):
            raise ValueError(f"extra metadata key {key!r} must start with {EXTRA_PREFIX!r}")
        metadata[key] = str(value)
    for name, enc in compressed.items():
        if name in metadata or name.startswith(EXTRA_PREFIX):
            raise UserError(f"tensor name {name!r} collides with a reserved metadata key")
        dtype = dtypes.get(name, "float32")
        entry = tensor_entry(enc, dtype) | container_ext.entry_fields(extensions.get(name))
        where = f"tensor {name!r}"
        _, preset = _parse_entry(where, json.dumps(entry), version)
        seeds, x, q = _encoded_parts(enc)
        _check_parts(where, preset, enc.shape, seeds, x, q)
        metadata[name] = json.dumps(entry, sort_keys=True)
        tensors.update({f"{name}.seed": seeds, f"{name}.exp": x, f"{name}.coef": q})
        ext_parts = container_ext.stored_parts(extensions.get(name))
        for part, dtype, shape in container_ext.part_specs(entry):
            arr = ext_parts[part]
            _check_part(where, preset, enc.shape, part, arr.dtype, arr.shape, dtype, shape)
        container_ext.build(where, entry, ext_parts)  # the value checks a reader makes
        tensors.update({f"{name}.{part}": arr for part, arr in ext_parts.items()})
    for name, t in carried.items():
        if name in tensors or name in compressed:
            raise UserError(f"carried tensor {name!r} collides with a compressed tensor's name or part")
        tensors[name] = t
    write_safetensors(path, tensors, metadata)


def _open(path: Path, framework: str = "pt"):
    from safetensors import SafetensorError, safe_open

    check_input_file(path, ".seedlm file")
    try:
        return safe_open(str(path), framework=framework)
    except (SafetensorError, OSError, ValueError, TypeError):
        raise UserError(f"{path}: not a valid .seedlm file (truncated, or not safetensors)") from None


@dataclass
class ContainerHeader:
    """A .seedlm file's header, validated, without reading tensor data (numpy only, no torch)."""

    path: Path
    metadata: dict[str, str]
    entries: dict[str, dict]  # compressed NAME -> its metadata entry (shape, K, C, P, taps, bias, dtype, preset)
    presets: dict[str, Preset]  # compressed NAME -> its preset
    shapes: dict[str, tuple[int, ...]]  # every stored safetensors tensor -> its shape

    @property
    def carried(self) -> list[str]:
        """Names of the tensors stored uncompressed, in natural order."""
        parts = {f"{name}.{p}" for name in self.entries for p in PARTS}
        parts |= {f"{name}.{p}" for name, e in self.entries.items() for p, _, _ in container_ext.part_specs(e)}
        return sorted(set(self.shapes) - parts, key=natural_key)


def _header(path: Path, f) -> ContainerHeader:
    metadata = dict(f.metadata() or {})
    if metadata.get("format") != FORMAT:
        raise UserError(f"{path}: not a .seedlm file (metadata format is {metadata.get('format')!r}, "
                        f"expected {FORMAT!r})")
    version = metadata.get("format_version")
    if version not in READ_VERSIONS:
        raise UserError(f"{path}: unsupported .seedlm format_version {version!r} "
                        f"(this reader knows {', '.join(READ_VERSIONS)})")
    slices = {k: f.get_slice(k) for k in f.keys()}
    shapes = {k: tuple(s.get_shape()) for k, s in slices.items()}
    names = set(shapes)
    entries, presets = {}, {}
    for name in sorted((k for k in metadata if k not in ("format", "format_version")
                        and not k.startswith(EXTRA_PREFIX)), key=natural_key):
        where = f"{path}: tensor {name!r}"
        entries[name], presets[name] = _parse_entry(where, metadata[name], version)
        ext_specs = container_ext.part_specs(entries[name])
        missing = [f"{name}.{p}" for p in (*PARTS, *(s[0] for s in ext_specs)) if f"{name}.{p}" not in names]
        if missing:
            raise UserError(f"{where}: missing {', '.join(missing)}")
        # Shapes and dtypes from the header, before any data is read: the metadata's shape is
        # then bounded by the stored blocks, so no size in it can ask for more than the file holds.
        for part, dtype, want in (*_part_specs(presets[name], entries[name]["shape"]), *ext_specs):
            key = f"{name}.{part}"
            got = slices[key].get_dtype()
            _check_part(where, presets[name], entries[name]["shape"], part, got, shapes[key], dtype, want)
    header = ContainerHeader(path, metadata, entries, presets, shapes)
    for n in header.carried:
        base = n[:-len(".seed")] if n.endswith(".seed") else None
        if base is not None and {f"{base}.exp", f"{base}.coef"} <= names:
            raise UserError(f"{path}: tensor {base!r}: blocks present but no metadata entry")
    return header


def read_header(path: str | Path) -> ContainerHeader:
    """Read and validate a .seedlm file's header (names, shapes, metadata); no tensor data, no torch."""
    path = Path(path)
    with _open(path, framework="numpy") as f:
        return _header(path, f)


def check_container(path: str | Path) -> ContainerHeader:
    """read_header plus the block values (seeds, x, q in range), one tensor at a time with
    numpy, never the whole file at once: what a header-only reader (project) validates."""
    path = Path(path)
    with _open(path, framework="numpy") as f:
        header = _header(path, f)
        for name, e in header.entries.items():
            seeds, x, q = (f.get_tensor(f"{name}.{p}") for p in PARTS)
            _check_parts(f"{path}: tensor {name!r}", header.presets[name], e["shape"], seeds, x, q)
            container_ext.build(f"{path}: tensor {name!r}", e,
                                {p: f.get_tensor(f"{name}.{p}") for p, _, _ in container_ext.part_specs(e)})
    return header


def read_container(path: str | Path) -> Container:
    """Read and validate a .seedlm file; raises UserError naming the first problem found."""
    path = Path(path)
    with _open(path) as f:
        header = _header(path, f)
        compressed, dtypes, extensions = {}, {}, {}
        for name, e in header.entries.items():
            preset = header.presets[name]
            seeds, x, q = (_read_numpy(f, f"{name}.{p}") for p in PARTS)
            _check_parts(f"{path}: tensor {name!r}", preset, e["shape"], seeds, x, q)
            compressed[name] = EncodedTensor(seeds=seeds, x=x, q=q, bias=e["bias"], preset=preset,
                                             shape=tuple(e["shape"]))
            dtypes[name] = e["dtype"]
            ext = container_ext.build(f"{path}: tensor {name!r}", e, {
                p: _read_numpy(f, f"{name}.{p}") for p, _, _ in container_ext.part_specs(e)})
            if ext:
                extensions[name] = ext
        carried = {n: f.get_tensor(n) for n in header.carried}
    return Container(compressed=compressed, carried=carried, dtypes=dtypes, metadata=header.metadata,
                     extensions=extensions)


def _read_numpy(f, key: str) -> np.ndarray:
    import torch

    t = f.get_tensor(key)
    return (t.float() if t.dtype == torch.bfloat16 else t).numpy()  # numpy has no bfloat16


def natural_key(name: str) -> list:
    """Sort key that puts layers.2 before layers.10."""
    return [(0, int(tok), "") if tok.isdigit() else (1, 0, tok) for tok in re.split(r"(\d+)", name)]


# --- sizes -------------------------------------------------------------------------------------------

def bits_per_weight(enc: EncodedTensor, ext: Extensions | None = None) -> float:
    """Effective bits per weight of one tensor, row padding and extension parts counted:
    (nb * B * rows + extension bits) / (rows * cols)."""
    rows, cols = enc.shape
    return packed_bits(enc, ext) / (rows * cols)


def packed_bits(enc: EncodedTensor, ext: Extensions | None = None) -> int:
    """Bits of the tensor's block words, B bits each, packed back to back, plus its extension parts."""
    rows, cols = enc.shape
    return rows * blocks_per_row(cols, enc.preset.C) * enc.preset.block_bits + extension_bits(enc.shape, ext)


def packed_bytes(enc: EncodedTensor, ext: Extensions | None = None) -> int:
    return -(-packed_bits(enc, ext) // 8)
