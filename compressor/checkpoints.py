"""Checkpoint readers and the choice of tensors to compress.

Inputs, recognised by their content (not their extension):
- a ``.safetensors`` file;
- a Hugging Face model folder: ``model.safetensors.index.json`` with its shards, a single
  ``model.safetensors``, or ``pytorch_model.bin`` (config.json is not needed to read weights);
- a torch state dict (``.pt``/``.bin``), loaded with ``weights_only=True`` (no code runs);
- a llama2.c checkpoint (legacy v0 or v1 "ak42" header), tensors named ``layers.0.wq`` etc.

Tensors come back as CPU torch tensors in their original dtype (bfloat16 included), in the
checkpoint's order. Safetensors inputs (single files and Hugging Face shards) are read lazily:
loading a checkpoint reads headers only, `Checkpoint.tensors[name]` reads that one tensor
(mmap, closed again) and `tensors.rows(name, r0, r1)` just a row range, so memory stays
bounded by the tensors in use, never by the checkpoint. Torch state dicts and llama2.c files
are read whole, as before.
"""
from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from seedlm_fpga.core.files import check_input_file, load_json_file, read_input_text
from seedlm_fpga.errors import UserError

from seedlm_fpga.compressor.llama2c import is_llama2c, read_llama2c

#: Default exclusions: embeddings and the output head stay uncompressed (they are lookups or
#: the most sensitive matrix, and the paper keeps them at 16 bits).
EMBEDDING_RE = re.compile(r"(^|\.)(\w*embed\w*|wte|wpe)(\.|$)", re.IGNORECASE)
HEAD_RE = re.compile(r"(^|\.)(lm_head|output|embed_out|classifier)(\.weight)?$", re.IGNORECASE)
#: Checkpoint.info key of a llama2.c checkpoint's configuration (JSON); `compress` stores it in the
#: container as "seedlm." + this, and `run` rebuilds the model from it.
LLAMA2C_CONFIG_INFO = "llama2c_config"
#: Checkpoint.info key of a Hugging Face folder's config.json (kept verbatim), stored the same way.
HF_CONFIG_INFO = "hf_config"
FLOATING = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


#: safetensors dtype tags -> torch dtypes.
_ST_TORCH = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
             "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
             "U8": torch.uint8, "BOOL": torch.bool}


class TensorStore(Mapping):
    """name -> torch.Tensor, in checkpoint order, loading lazily where the format allows.

    Values are either tensors already in memory or (file, key) of a safetensors entry, read
    on each access (no cache: what a caller drops is freed). `meta(name)` is a meta tensor
    (shape, dtype, numel, element_size; no data); `rows(name, r0, r1)` reads rows r0..r1-1.
    """

    def __init__(self, entries: dict, metas: dict[str, torch.Tensor]):
        self._entries = entries  # name -> torch.Tensor | (Path, key)
        self._metas = metas

    @classmethod
    def in_memory(cls, tensors: dict[str, torch.Tensor]) -> TensorStore:
        return cls(dict(tensors), {n: t.to("meta") for n, t in tensors.items()})

    def __getitem__(self, name: str) -> torch.Tensor:
        entry = self._entries[name]
        if isinstance(entry, torch.Tensor):
            return entry
        path, key = entry
        with _safe_open(path) as f:
            return _get(path, lambda: f.get_tensor(key))

    def __iter__(self):
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def meta(self, name: str) -> torch.Tensor:
        return self._metas[name]

    def rows(self, name: str, r0: int, r1: int) -> torch.Tensor:
        entry = self._entries[name]
        if isinstance(entry, torch.Tensor):
            return entry[r0:r1]
        path, key = entry
        with _safe_open(path) as f:
            return _get(path, lambda: f.get_slice(key)[r0:r1])


@dataclass
class Checkpoint:
    """An ordered state dict read from `path`; `kind` says which reader read it."""

    path: Path
    kind: str  # "safetensors", "hf-folder", "torch", "llama2c"
    tensors: TensorStore
    info: dict[str, str] = field(default_factory=dict)  # e.g. the llama2.c config, as JSON
    files: list[Path] = field(default_factory=list)  # every file read: an output must be none of them


def load_checkpoint(path: str | Path) -> Checkpoint:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    if path.is_dir():
        return _load_hf_folder(path)
    check_input_file(path, "checkpoint")
    if _looks_like_safetensors(path):
        return Checkpoint(path, "safetensors", TensorStore(*_index_safetensors(path)), files=[path])
    if is_llama2c(path):
        cfg, arrays = read_llama2c(path)
        info = {LLAMA2C_CONFIG_INFO: json.dumps(cfg.__dict__, sort_keys=True)}
        tensors = TensorStore.in_memory({k: torch.from_numpy(v) for k, v in arrays.items()})
        return Checkpoint(path, "llama2c", tensors, info, [path])
    if _looks_like_torch(path):
        return Checkpoint(path, "torch", TensorStore.in_memory(_read_torch(path)), files=[path])
    raise UserError(f"{path}: not a checkpoint (expected safetensors, a torch state dict, a llama2.c "
                    f"checkpoint or a Hugging Face model folder)")


# --- safetensors ----------------------------------------------------------------------------------

def _looks_like_safetensors(path: Path) -> bool:
    """8-byte little-endian header length, then a JSON object that fits in the file."""
    check_input_file(path, "checkpoint")
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) < 9:
        return False
    n = int.from_bytes(head[:8], "little")
    return head[8:9] == b"{" and 8 + n <= path.stat().st_size


def _bad_safetensors(path: Path) -> UserError:
    return UserError(f"{path}: not a valid safetensors file (truncated or corrupt)")


def _safe_open(path: Path):
    from safetensors import SafetensorError, safe_open

    try:
        return safe_open(str(path), framework="pt")
    except (SafetensorError, OSError, ValueError, TypeError):
        raise _bad_safetensors(path) from None


def _get(path: Path, read):
    from safetensors import SafetensorError

    try:
        return read()
    except (SafetensorError, OSError, ValueError, TypeError, RuntimeError):
        raise _bad_safetensors(path) from None


def _index_safetensors(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """(name -> (path, name), name -> meta tensor) from the header alone (the library checks
    that every entry lies inside the file); the file order of names is kept."""
    check_input_file(path, "safetensors file")
    entries, metas = {}, {}
    with _safe_open(path) as f:
        for name in _get(path, f.keys):
            sl = _get(path, lambda: f.get_slice(name))
            dtype = _ST_TORCH.get(sl.get_dtype())
            if dtype is None:  # e.g. float8: read it for real (torch knows the dtype, we do not)
                t = _get(path, lambda: f.get_tensor(name))
                entries[name], metas[name] = t, t.to("meta")
                continue
            entries[name] = (path, name)
            metas[name] = torch.empty(sl.get_shape(), dtype=dtype, device="meta")
    return entries, metas


# --- torch state dicts -----------------------------------------------------------------------------

def _looks_like_torch(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(4)
    return head == b"PK\x03\x04" or head[:1] == b"\x80"  # zip archive / legacy pickle


#: Deepest nesting of dicts a state dict may have (training checkpoints nest two or three levels).
MAX_NESTING = 32


def _flatten(prefix: str, obj, out: dict[str, torch.Tensor], path: Path, depth: int = 0) -> None:
    if depth > MAX_NESTING:
        raise UserError(f"{path}: entry {prefix!r} is nested more than {MAX_NESTING} levels deep "
                        f"(or refers to itself)")
    if isinstance(obj, torch.Tensor):
        if obj.layout != torch.strided or obj.is_quantized or obj.is_meta or obj.is_complex():
            what = "complex" if obj.is_complex() else "quantized" if obj.is_quantized else \
                "meta" if obj.is_meta else f"{obj.layout}".removeprefix("torch.")
            raise UserError(f"{path}: tensor {prefix!r} is a {what} tensor; only dense real tensors "
                            f"can be compressed or carried")
        out[prefix] = obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), value, out, path, depth + 1)
    else:
        raise UserError(f"{path}: entry {prefix!r} is a {type(obj).__name__}, not a tensor "
                        f"(expected a state dict)")


def _read_torch(path: Path) -> dict[str, torch.Tensor]:
    check_input_file(path, "torch state dict")
    try:
        with open(path, "rb") as f, warnings.catch_warnings():  # a file object: torch.load dispatches
            warnings.simplefilter("ignore")  # on the extension otherwise; its warnings are not ours to print
            obj = torch.load(f, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not a state dict"
        raise UserError(f"{path}: not a loadable torch state dict ({type(exc).__name__} under "
                        f"weights_only=True)") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path}: holds a {type(obj).__name__}, not a state dict")
    # Training checkpoints wrap the weights: {"state_dict": {...}, "epoch": 3} -> take the weights.
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    out: dict[str, torch.Tensor] = {}
    _flatten("", obj, out, path)
    if not out:
        raise UserError(f"{path}: the state dict holds no tensors")
    try:
        return {k: v.contiguous() for k, v in out.items()}
    except RuntimeError as exc:  # storage smaller than the shape claims, and the like
        raise UserError(f"{path}: a tensor cannot be read ({str(exc).splitlines()[0]})") from None


# --- Hugging Face folders --------------------------------------------------------------------------

def _shard_path(folder: Path, index: Path, shard) -> Path:
    """A shard named in the index: a relative path inside the model folder, never one that leads
    out of it (``../x``, ``/etc/x``). Symlinks the folder itself holds are followed (the Hugging
    Face cache links snapshot files to ../../blobs/)."""
    if not isinstance(shard, str) or not shard:
        raise UserError(f"{index}: weight_map values must be shard file names, got {shard!r}")
    parts = Path(shard).parts
    if Path(shard).is_absolute() or ".." in parts or "\0" in shard:
        raise UserError(f"{index}: shard {shard!r} lies outside the model folder {folder}")
    return folder / shard


def _load_hf_folder(folder: Path) -> Checkpoint:
    index = folder / "model.safetensors.index.json"
    if os.path.lexists(index):
        doc = load_json_file(index, "safetensors index")
        weight_map = doc.get("weight_map") if isinstance(doc, dict) else None
        if not isinstance(weight_map, dict):
            raise UserError(f"{index}: not a valid safetensors index (no weight_map)")
        for shard in weight_map.values():  # every value a file name inside the folder, before any use
            _shard_path(folder, index, shard)
        shards = [folder / s for s in dict.fromkeys(weight_map.values())]
        entries, metas = {}, {}
        for shard_path in shards:  # headers only: each tensor is read when it is used
            if not shard_path.exists():
                raise UserError(f"{index}: shard {shard_path.relative_to(folder)} is missing")
            e, m = _index_safetensors(shard_path)
            entries.update(e)
            metas.update(m)
        missing = [n for n in weight_map if n not in entries]
        if missing:
            raise UserError(f"{index}: tensor {missing[0]!r} is not in shard {weight_map[missing[0]]}")
        order = list(weight_map) + [n for n in entries if n not in weight_map]
        info, config = _hf_info(folder)
        return Checkpoint(folder, "hf-folder", TensorStore({n: entries[n] for n in order},
                                                           {n: metas[n] for n in order}),
                          info, [index, *shards, *config])
    single = folder / "model.safetensors"
    if os.path.lexists(single):
        info, config = _hf_info(folder)
        return Checkpoint(folder, "hf-folder", TensorStore(*_index_safetensors(single)), info, [single, *config])
    bin_ = folder / "pytorch_model.bin"
    if os.path.lexists(bin_):
        info, config = _hf_info(folder)
        return Checkpoint(folder, "hf-folder", TensorStore.in_memory(_read_torch(bin_)), info, [bin_, *config])
    raise UserError(f"{folder}: not a model folder (no model.safetensors.index.json, model.safetensors "
                    f"or pytorch_model.bin)")


def _hf_info(folder: Path) -> tuple[dict[str, str], list[Path]]:
    """The folder's config.json, kept verbatim as metadata (it must be UTF-8 text), and the files read."""
    config = folder / "config.json"
    if not os.path.lexists(config):
        return {}, []
    return {HF_CONFIG_INFO: read_input_text(config, "config.json")}, [config]


# --- which tensors to compress ---------------------------------------------------------------------

def is_compressible(t: torch.Tensor) -> bool:
    """A 2-D floating tensor: the only kind the SeedLM format holds."""
    return t.ndim == 2 and t.dtype in FLOATING


def is_embedding_or_head(name: str) -> bool:
    return bool(EMBEDDING_RE.search(name) or HEAD_RE.search(name))


def select_tensors(tensors: Mapping[str, torch.Tensor], C: int, include: str | None = None,
                   exclude: str | None = None) -> list[str]:
    """Names to compress, in checkpoint order.

    Default: 2-D floating tensors with cols >= C, except embeddings and the output head.
    `include` (a regex, searched in the name) replaces that default: every 2-D floating tensor
    it matches is selected, and one with cols < C is an error. `exclude` then removes names.
    """
    inc = _compile("--include", include)
    exc = _compile("--exclude", exclude)
    if isinstance(tensors, TensorStore):  # shapes and dtypes only: no data is read
        tensors = {n: tensors.meta(n) for n in tensors}
    if inc is None:
        chosen = [n for n, t in tensors.items()
                  if is_compressible(t) and t.shape[1] >= C and not is_embedding_or_head(n)]
    else:
        chosen = [n for n, t in tensors.items() if is_compressible(t) and inc.search(n)]
        if not chosen:
            raise UserError(f"--include {include!r} matches no 2-D floating tensor")
    if exc is not None:
        chosen = [n for n in chosen if not exc.search(n)]
    for n in chosen:
        cols = tensors[n].shape[1]
        if cols < C:
            raise UserError(f"tensor {n!r} has {cols} columns, fewer than a block (C={C}); "
                            f"leave it out of --include")
    if not chosen:
        raise UserError("no tensor selected for compression (check --include/--exclude)")
    return chosen


def _compile(flag: str, pattern: str | None):
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise UserError(f"{flag} {pattern!r} is not a valid regular expression ({exc})") from None
