"""Checkpoint readers and the choice of tensors to compress.

Inputs, recognised by their content (not their extension):
- a ``.safetensors`` file;
- a Hugging Face model folder: ``model.safetensors.index.json`` with its shards, a single
  ``model.safetensors``, or ``pytorch_model.bin`` (config.json is not needed to read weights);
- a torch state dict (``.pt``/``.bin``), loaded with ``weights_only=True`` (no code runs);
- a llama2.c checkpoint (legacy v0 or v1 "ak42" header), tensors named ``layers.0.wq`` etc.

Tensors come back as CPU torch tensors in their original dtype (bfloat16 included), in the
checkpoint's order.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from seedlm_fpga.errors import UserError

from seedlm_fpga.compressor.llama2c import is_llama2c, read_llama2c

#: Default exclusions: embeddings and the output head stay uncompressed (they are lookups or
#: the most sensitive matrix, and the paper keeps them at 16 bits).
EMBEDDING_RE = re.compile(r"(^|\.)(\w*embed\w*|wte|wpe)(\.|$)", re.IGNORECASE)
HEAD_RE = re.compile(r"(^|\.)(lm_head|output|embed_out|classifier)(\.weight)?$", re.IGNORECASE)
FLOATING = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


@dataclass
class Checkpoint:
    """An ordered state dict read from `path`; `kind` says which reader read it."""

    path: Path
    kind: str  # "safetensors", "hf-folder", "torch", "llama2c"
    tensors: dict[str, torch.Tensor]
    info: dict[str, str] = field(default_factory=dict)  # e.g. the llama2.c config, as JSON


def load_checkpoint(path: str | Path) -> Checkpoint:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    if path.is_dir():
        return _load_hf_folder(path)
    if _looks_like_safetensors(path):
        return Checkpoint(path, "safetensors", _read_safetensors(path))
    if is_llama2c(path):
        cfg, arrays = read_llama2c(path)
        info = {"llama2c_config": json.dumps(cfg.__dict__, sort_keys=True)}
        return Checkpoint(path, "llama2c", {k: torch.from_numpy(v) for k, v in arrays.items()}, info)
    if _looks_like_torch(path):
        return Checkpoint(path, "torch", _read_torch(path))
    raise UserError(f"{path}: not a checkpoint (expected safetensors, a torch state dict, a llama2.c "
                    f"checkpoint or a Hugging Face model folder)")


# --- safetensors ----------------------------------------------------------------------------------

def _looks_like_safetensors(path: Path) -> bool:
    """8-byte little-endian header length, then a JSON object that fits in the file."""
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) < 9:
        return False
    n = int.from_bytes(head[:8], "little")
    return head[8:9] == b"{" and 8 + n <= path.stat().st_size


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {name: f.get_tensor(name) for name in f.keys()}
    except (SafetensorError, OSError, ValueError, TypeError):
        raise UserError(f"{path}: not a valid safetensors file (truncated or corrupt)") from None


# --- torch state dicts -----------------------------------------------------------------------------

def _looks_like_torch(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(4)
    return head == b"PK\x03\x04" or head[:1] == b"\x80"  # zip archive / legacy pickle


def _flatten(prefix: str, obj, out: dict[str, torch.Tensor], path: Path) -> None:
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), value, out, path)
    else:
        raise UserError(f"{path}: entry {prefix!r} is a {type(obj).__name__}, not a tensor "
                        f"(expected a state dict)")


def _read_torch(path: Path) -> dict[str, torch.Tensor]:
    try:
        with open(path, "rb") as f:  # a file object: torch.load dispatches on the extension otherwise
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
    return {k: v.contiguous() for k, v in out.items()}


# --- Hugging Face folders --------------------------------------------------------------------------

def _load_hf_folder(folder: Path) -> Checkpoint:
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
            shards = list(dict.fromkeys(weight_map.values()))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise UserError(f"{index}: not a valid safetensors index (no weight_map)") from None
        tensors: dict[str, torch.Tensor] = {}
        for shard in shards:
            shard_path = folder / shard
            if not shard_path.is_file():
                raise UserError(f"{index}: shard {shard} is missing")
            tensors.update(_read_safetensors(shard_path))
        missing = [n for n in weight_map if n not in tensors]
        if missing:
            raise UserError(f"{index}: tensor {missing[0]!r} is not in shard {weight_map[missing[0]]}")
        return Checkpoint(folder, "hf-folder", {n: tensors[n] for n in weight_map} |
                          {n: t for n, t in tensors.items() if n not in weight_map}, _hf_info(folder))
    single = folder / "model.safetensors"
    if single.is_file():
        return Checkpoint(folder, "hf-folder", _read_safetensors(single), _hf_info(folder))
    bin_ = folder / "pytorch_model.bin"
    if bin_.is_file():
        return Checkpoint(folder, "hf-folder", _read_torch(bin_), _hf_info(folder))
    raise UserError(f"{folder}: not a model folder (no model.safetensors.index.json, model.safetensors "
                    f"or pytorch_model.bin)")


def _hf_info(folder: Path) -> dict[str, str]:
    config = folder / "config.json"
    return {"hf_config": config.read_text()} if config.is_file() else {}


# --- which tensors to compress ---------------------------------------------------------------------

def is_compressible(t: torch.Tensor) -> bool:
    """A 2-D floating tensor: the only kind the SeedLM format holds."""
    return t.ndim == 2 and t.dtype in FLOATING


def is_embedding_or_head(name: str) -> bool:
    return bool(EMBEDDING_RE.search(name) or HEAD_RE.search(name))


def select_tensors(tensors: dict[str, torch.Tensor], C: int, include: str | None = None,
                   exclude: str | None = None) -> list[str]:
    """Names to compress, in checkpoint order.

    Default: 2-D floating tensors with cols >= C, except embeddings and the output head.
    `include` (a regex, searched in the name) replaces that default: every 2-D floating tensor
    it matches is selected, and one with cols < C is an error. `exclude` then removes names.
    """
    inc = _compile("--include", include)
    exc = _compile("--exclude", exclude)
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
