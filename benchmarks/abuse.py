"""Abuse run: hundreds of bad inputs and abuse cases across every command, each in a subprocess.

    python benchmarks/abuse.py [--jobs 2] [--timeout 60] [--only SUBSTRING] [-v]

Builds its fixtures in a temporary folder (valid and broken safetensors, .seedlm, .pt,
llama2.c and Hugging Face folders, board YAML, config.json, FIFOs, symlinks, hard links),
runs `seedlm-fpga CMD ...` for each case with a timeout and classifies the outcome:

    clean error   exit 2, one stderr line, no "Traceback"
    success       exit 0 (or 1 where the command means "ran, result negative")
    traceback     anything else: a "Traceback", another exit code, or an error of several lines
    hang          killed at the timeout
    data loss     an input's bytes changed, or an input was removed
    nonsense      a case that must be refused exited 0

Prints one line per bad case and a summary table; exits 1 if any traceback, hang, data loss
or nonsense was seen. Needs no network and no GPU; cosim cases stop before Verilator.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "seedlm_fpga.cli.main"]
#: Unusual but valid inputs: these must succeed (a shared view and a transposed tensor are
#: ordinary state dicts; a board without external memory is documented, project says it holds no weights).
VALID_VARIANTS = {"shared_view", "non_contiguous", "memories_empty"}
CLASSES = ("clean error", "success", "traceback", "hang", "data loss", "nonsense")


@dataclass
class Case:
    name: str
    argv: list[str]
    must_fail: bool = True  # a run that exits 0 is nonsense accepted
    protect: list[Path] = field(default_factory=list)  # inputs whose bytes must survive
    fsize: int | None = None  # RLIMIT_FSIZE for the run (file-size limit)
    cwd: Path | None = None


# --- fixtures -----------------------------------------------------------------------------------------

def sha(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def st_file(path: Path, header: bytes, data: bytes = b"") -> Path:
    """A safetensors-like file from a raw header (8-byte length, then the header, then data)."""
    path.write_bytes(struct.pack("<Q", len(header)) + header + data)
    return path


def st_json(path: Path, header: dict, data: bytes = b"") -> Path:
    return st_file(path, json.dumps(header).encode(), data)


def write_st(path: Path, tensors: dict, metadata: dict | None = None) -> Path:
    from seedlm_fpga.compressor.container import write_safetensors

    write_safetensors(path, tensors, metadata)
    return path


def build(d: Path) -> dict:
    import numpy as np
    import torch

    from seedlm_fpga.compressor.container import tensor_entry, write_container
    from seedlm_fpga.core.reference import PRESETS, EncodedTensor, blocks_per_row

    f: dict = {}
    g = torch.Generator().manual_seed(0)
    tensors = {"layers.0.wq": torch.randn(16, 32, generator=g), "layers.0.w2": torch.randn(8, 24, generator=g),
               "norm": torch.ones(32)}
    f["st"] = write_st(d / "model.safetensors", tensors)
    # a valid .seedlm, hand-made (no encoder run: fast)
    rng = np.random.default_rng(0)
    p = PRESETS["seedlm-4"]

    def enc(rows, cols, preset=p, bias=-12):
        nb = blocks_per_row(cols, preset.C)
        return EncodedTensor(seeds=rng.integers(1, 1 << preset.K, (rows, nb)).astype(np.uint16),
                             x=rng.integers(0, 16, (rows, nb)).astype(np.uint8),
                             q=rng.integers(-8, 8, (rows, nb, preset.P)).astype(np.int8),
                             bias=bias, preset=preset, shape=(rows, cols))

    good = {"layers.0.wq": enc(16, 32), "layers.0.wk": enc(8, 32)}
    f["seedlm"] = d / "good.seedlm"
    write_container(f["seedlm"], good, {"norm": torch.ones(32)}, dtypes={"layers.0.wq": "float32"})
    f["good_enc"] = good
    f["entry"] = tensor_entry(good["layers.0.wq"], "float32")
    f["parts"] = {f"layers.0.wq.{k}": v for k, v in zip(("seed", "exp", "coef"),
                                                          (good["layers.0.wq"].seeds, good["layers.0.wq"].x,
                                                           good["layers.0.wq"].q))}
    # llama2.c: the shipped example
    f["l2c"] = d / "stories.bin"
    shutil.copy(ROOT / "examples" / "stories260K.bin", f["l2c"])
    # torch state dict
    f["pt"] = d / "model.pt"
    torch.save(tensors, f["pt"])
    # HF folder
    hf = d / "hf"
    hf.mkdir()
    write_st(hf / "model-00001.safetensors", {"layers.0.wq": tensors["layers.0.wq"]})
    write_st(hf / "model-00002.safetensors", {"norm": tensors["norm"]})
    (hf / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"layers.0.wq": "model-00001.safetensors", "norm": "model-00002.safetensors"}}))
    (hf / "config.json").write_text(json.dumps({"model_type": "llama"}))
    f["hf"] = hf
    # board and config
    f["board_text"] = (ROOT / "boards" / "arty-a7-100t.yaml").read_text()
    f["config"] = {"hidden_size": 256, "intermediate_size": 688, "num_hidden_layers": 4, "num_attention_heads": 4,
                   "num_key_value_heads": 4, "vocab_size": 1000, "max_position_embeddings": 512}
    (d / "fifo").mkdir()
    f["fifo"] = d / "fifo" / "pipe"
    os.mkfifo(f["fifo"])
    f["secret"] = d / "secret.safetensors"  # outside every model folder: must never be read via an index
    write_st(f["secret"], {"layers.0.wq": tensors["layers.0.wq"]})
    return f


# --- cases ----------------------------------------------------------------------------------------------

def seedlm_variants(d: Path, f: dict) -> list[tuple[str, Path]]:
    """Broken .seedlm files: metadata, parts and values."""
    import numpy as np

    from seedlm_fpga.compressor.container import write_safetensors

    out = []
    base_meta = {"format": "seedlm", "format_version": "1"}

    def mk(name, entry=None, parts=None, meta=None, raw_entry=None):
        e = dict(f["entry"]) if entry is None else entry
        m = dict(base_meta) if meta is None else meta
        m["layers.0.wq"] = raw_entry if raw_entry is not None else json.dumps(e)
        ps = dict(f["parts"]) if parts is None else parts
        path = d / f"bad_{name}.seedlm"
        write_safetensors(path, ps, m)
        out.append((name, path))

    def with_(**kw):
        e = dict(f["entry"])
        e.update(kw)
        return e

    mk("format_version_2", meta={"format": "seedlm", "format_version": "2"})
    mk("format_missing", meta={})
    mk("dtype_list", with_(dtype=["float32"]))
    mk("dtype_dict", with_(dtype={"a": 1}))
    mk("dtype_int8", with_(dtype="int8"))
    mk("taps_non_maximal", with_(taps=[0, 1]))
    mk("taps_empty", with_(taps=[]))
    mk("taps_string", with_(taps="0,1,3,12"))
    mk("taps_out_of_range", with_(taps=[0, 99]))
    mk("C_2_31", with_(C=2**31, preset="custom"))
    mk("C_0", with_(C=0, preset="custom"))
    mk("C_negative", with_(C=-8, preset="custom"))
    mk("K_40", with_(K=40, preset="custom"))
    mk("K_1", with_(K=1, preset="custom"))
    mk("P_huge", with_(P=100, preset="custom"))
    mk("P_zero", with_(P=0, preset="custom"))
    mk("K_float", with_(K=16.0))
    mk("K_bool", with_(K=True))
    mk("bias_1000", with_(bias=1000))
    mk("bias_-1000", with_(bias=-1000))
    mk("bias_huge", with_(bias=10**40))
    mk("bias_string", with_(bias="auto"))
    mk("preset_unknown", with_(preset="seedlm-5"))
    mk("preset_typo", with_(preset="seedlm4"))
    mk("preset_not_string", with_(preset=4))
    mk("preset_mismatch", with_(C=12))
    mk("shape_negative", with_(shape=[-16, 32]))
    mk("shape_zero", with_(shape=[0, 32]))
    mk("shape_huge", with_(shape=[10**12, 10**12]))
    mk("shape_three", with_(shape=[16, 32, 1]))
    mk("shape_bigint", with_(shape=[16, 10**400 if False else 2**200]))
    mk("shape_mismatch", with_(shape=[17, 32]))
    mk("entry_not_json", raw_entry="{shape")
    mk("entry_list", raw_entry="[1, 2]")
    mk("entry_deep", raw_entry="[" * 50000 + "]" * 50000)
    mk("entry_bigint", raw_entry='{"K": ' + "9" * 5000 + "}")
    mk("entry_missing_keys", raw_entry="{}")
    parts = dict(f["parts"])
    parts["layers.0.wq.seed"] = np.zeros_like(parts["layers.0.wq.seed"])
    mk("seed_zero", parts=parts)
    parts = dict(f["parts"])
    parts["layers.0.wq.exp"] = np.full_like(parts["layers.0.wq.exp"], 200)
    mk("exp_out_of_range", parts=parts)
    parts = dict(f["parts"])
    parts["layers.0.wq.coef"] = parts["layers.0.wq.coef"].astype(np.int32)
    mk("coef_dtype", parts=parts)
    parts = dict(f["parts"])
    del parts["layers.0.wq.coef"]
    mk("coef_missing", parts=parts)
    parts = dict(f["parts"])
    parts["layers.0.wq.seed"] = parts["layers.0.wq.seed"][:, :1].copy()
    mk("seed_shape", parts=parts)
    # raw corruptions of the good file
    data = f["seedlm"].read_bytes()
    for name, blob in (("truncated_half", data[:len(data) // 2]), ("truncated_8", data[:8]), ("empty", b""),
                       ("header_len_huge", struct.pack("<Q", 2**63) + data[8:]),
                       ("header_garbage", data[:8] + b"\xff" * (len(data) - 8)),
                       ("zeros", b"\0" * 4096)):
        path = d / f"raw_{name}.seedlm"
        path.write_bytes(blob)
        out.append((name, path))
    return out


def board_variants(d: Path, f: dict) -> list[tuple[str, Path]]:
    import yaml

    base = yaml.safe_load(f["board_text"])
    out = []

    def mk(name, mutate=None, text=None, raw=None):
        path = d / f"board_{name}.yaml"
        if raw is not None:
            path.write_bytes(raw)
        elif text is not None:
            path.write_text(text)
        else:
            b = json.loads(json.dumps(base))
            mutate(b)
            path.write_text(yaml.safe_dump(b))
        out.append((name, path))

    def mem(key, value):
        return lambda b: b["memories"][0].__setitem__(key, value)

    mk("channels_1e12", mem("channels", 10**12))
    mk("channels_0", mem("channels", 0))
    mk("channels_neg", mem("channels", -1))
    mk("channels_float", mem("channels", 2.5))
    mk("bits_huge", mem("bits_per_channel", 10**9))
    mk("peak_inf", text=f["board_text"].replace("peak_gbps_per_channel:", "peak_gbps_per_channel: .inf #", 1))
    mk("peak_nan", text=f["board_text"].replace("peak_gbps_per_channel:", "peak_gbps_per_channel: .nan #", 1))
    mk("peak_1e300", mem("peak_gbps_per_channel", 1e300))
    mk("capacity_inf", text=f["board_text"].replace("capacity_gb:", "capacity_gb: .inf #", 1))
    mk("efficiency_2", mem("efficiency", 2))
    mk("target_tiny", lambda b: b["clock"].__setitem__("target_mhz", 1e-300))
    mk("target_inf", text=f["board_text"].replace("target_mhz:", "target_mhz: .inf #", 1))
    mk("target_zero", lambda b: b["clock"].__setitem__("target_mhz", 0))
    mk("target_huge", lambda b: b["clock"].__setitem__("target_mhz", 1e12))
    mk("lut_huge", lambda b: b["resources"].__setitem__("lut", 10**15))
    mk("lut_neg", lambda b: b["resources"].__setitem__("lut", -5))
    mk("memories_empty", lambda b: b.__setitem__("memories", []))
    mk("memories_missing", lambda b: b.pop("memories"))
    mk("memories_string", lambda b: b.__setitem__("memories", "ddr"))
    mk("unknown_key", lambda b: b.__setitem__("colour", "red"))
    mk("family_bad", lambda b: b.__setitem__("family", "stratix"))
    mk("deep", text="a: " + "[" * 50000 + "]" * 50000)
    mk("deep_block", text="".join("  " * i + "a:\n" for i in range(3000)))
    mk("not_utf8", raw=b"name: \xff\xfe\x00board\n")
    mk("not_mapping", text="- 1\n- 2\n")
    mk("empty", text="")
    mk("python_tag", text="!!python/object/apply:os.system ['echo pwned > /tmp/seedlm-abuse-pwned']\n")
    mk("bigint", text=f["board_text"].replace("channels:", "channels: " + "9" * 5000 + " #", 1))
    mk("invalid_yaml", text="name: [unclosed\n")
    mk("anchors_bomb", text="a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                            "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
                            "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n")
    return out


def config_variants(d: Path, f: dict) -> list[tuple[str, Path]]:
    out = []

    def mk(name, change=None, text=None, raw=None):
        path = d / f"config_{name}.json"
        if raw is not None:
            path.write_bytes(raw)
        elif text is not None:
            path.write_text(text)
        else:
            c = dict(f["config"])
            c.update(change)
            path.write_text(json.dumps(c))
        out.append((name, path))

    mk("hidden_huge", {"hidden_size": 10**30})
    mk("layers_huge", {"num_hidden_layers": 2**62})
    mk("vocab_bigint", text=json.dumps(f["config"]).replace('"vocab_size": 1000', '"vocab_size": ' + "9" * 5000))
    mk("hidden_zero", {"hidden_size": 0})
    mk("hidden_neg", {"hidden_size": -256})
    mk("hidden_float", {"hidden_size": 256.5})
    mk("hidden_string", {"hidden_size": "256"})
    mk("hidden_bool", {"hidden_size": True})
    mk("heads_not_divisor", {"num_key_value_heads": 3})
    mk("head_dim_huge", {"head_dim": 10**9})
    mk("deep", text="[" * 50000 + "]" * 50000)
    mk("not_utf8", raw=b'{"hidden_size": "\xff\xfe"}')
    mk("not_object", text="[1, 2, 3]")
    mk("empty", text="")
    mk("nan", text=json.dumps(f["config"]).replace('"hidden_size": 256', '"hidden_size": NaN'))
    mk("ctx_huge", {"max_position_embeddings": 10**40})
    return out


def safetensors_variants(d: Path, f: dict) -> list[tuple[str, Path]]:
    out = []
    blob = b"\0" * 64

    def mk(name, header, data=blob, raw=False):
        path = d / f"st_{name}.safetensors"
        (st_file(path, header, data) if raw else st_json(path, header, data))
        out.append((name, path))

    t = {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 64]}
    mk("offsets_past_end", {"a": {**t, "data_offsets": [0, 10**12]}})
    mk("offsets_reversed", {"a": {**t, "data_offsets": [64, 0]}})
    mk("shape_negative", {"a": {**t, "shape": [-4, -4]}})
    mk("shape_huge", {"a": {**t, "shape": [2**40, 2**40]}})
    mk("shape_mismatch", {"a": {**t, "shape": [5, 5]}})
    mk("dtype_unknown", {"a": {**t, "dtype": "F128"}})
    mk("dtype_list", {"a": {**t, "dtype": ["F32"]}})
    mk("overlap", {"a": t, "b": t})
    mk("metadata_not_str", {"__metadata__": {"x": 1}, "a": t})
    mk("header_not_json", b"{not json", raw=True)
    mk("header_deep", b"{" + b'"a":' * 1 + b"[" * 50000 + b"]" * 50000 + b"}", raw=True)
    mk("header_bigint", b'{"a": {"dtype": "F32", "shape": [' + b"9" * 5000 + b'], "data_offsets": [0, 64]}}', raw=True)
    mk("header_not_utf8", b'{"\xff\xfe": 1}', raw=True)
    mk("header_len_huge", b"{}", raw=True)
    path = d / "st_len_lies.safetensors"
    path.write_bytes(struct.pack("<Q", 2**40) + b"{" + b"\0" * 100)
    out.append(("len_lies", path))
    mk("empty_header", {})
    mk("f16_nan", {"a": {"dtype": "F16", "shape": [4, 8], "data_offsets": [0, 64]}}, b"\xff\x7f" * 32)
    mk("bool_2d", {"a": {"dtype": "BOOL", "shape": [8, 8], "data_offsets": [0, 64]}})
    return out


def llama2c_variants(d: Path, f: dict) -> list[tuple[str, Path]]:
    out = []
    good = f["l2c"].read_bytes()

    def mk(name, head: tuple, size: int | None = None, magic=False):
        body = struct.pack("<7i", *head)
        if magic:
            body = struct.pack("<Ii", 0x616B3432, 1) + body + b"\0" * (256 - 8 - 28)
        data = body + b"\0" * ((size or 64) - len(body) if (size or 64) > len(body) else 0)
        path = d / f"l2c_{name}.bin"
        path.write_bytes(data)
        out.append((name, path))

    mk("layers_2_24", (64, 172, (1 << 24) - 1, 8, 4, 512, 512))
    mk("dim_huge", ((1 << 24) - 1, 1, 1, 1, 1, 1, 1))
    mk("negative", (-64, 172, 5, 8, 4, 512, 512))
    mk("zero_heads", (64, 172, 5, 0, 4, 512, 512))
    mk("kv_not_divisor", (64, 172, 5, 8, 3, 512, 512))
    mk("v1_huge", (64, 172, (1 << 24) - 1, 8, 4, 512, 512), magic=True)
    mk("v1_short", (64, 172, 5, 8, 4, 512, 512), size=100, magic=True)
    path = d / "l2c_truncated.bin"
    path.write_bytes(good[:len(good) // 2])
    out.append(("truncated", path))
    path = d / "l2c_extra.bin"
    path.write_bytes(good + b"\0" * 4)
    out.append(("extra", path))
    path = d / "l2c_nan.bin"
    path.write_bytes(good[:28] + b"\xff\xff\xff\x7f" * ((len(good) - 28) // 4))
    out.append(("nan_weights", path))
    return out


def pt_variants(d: Path, f: dict) -> list[tuple[str, Path]]:
    import torch

    out = []

    def mk(name, obj=None, raw=None):
        path = d / f"pt_{name}.pt"
        if raw is not None:
            path.write_bytes(raw)
        else:
            torch.save(obj, path)
        out.append((name, path))

    mk("sparse", {"w": torch.eye(16).to_sparse()})
    mk("sparse_csr", {"w": torch.eye(16).to_sparse_csr()})
    selfref: dict = {"w": torch.randn(16, 16)}
    selfref["me"] = selfref
    try:
        mk("self_referential", selfref)
    except (RecursionError, ValueError, RuntimeError):
        pass
    deep: dict = {"w": torch.randn(16, 16)}
    for _ in range(200):
        deep = {"x": deep}
    mk("deep", deep)
    mk("list", [torch.randn(16, 16)])
    mk("tensor_only", torch.randn(16, 16))
    mk("complex", {"w": torch.randn(16, 16, dtype=torch.complex64)})
    mk("empty", {})
    mk("int_only", {"w": torch.arange(256).reshape(16, 16)})
    mk("quantized", {"w": torch.quantize_per_tensor(torch.randn(16, 16), 0.1, 0, torch.qint8)})
    mk("pickle_code", raw=b"\x80\x04cos\nsystem\n(S'echo pwned > /tmp/seedlm-abuse-pwned'\ntR.")
    mk("zip_garbage", raw=b"PK\x03\x04" + b"\0" * 200)
    w = torch.randn(16, 16)
    mk("shared_view", {"w": w, "v": w[:8]})
    mk("non_contiguous", {"w": torch.randn(32, 16).t()})
    mk("meta", {"w": torch.empty(16, 16, device="meta")})
    return out


def hf_variants(d: Path, f: dict) -> list[tuple[str, Path]]:
    out = []

    def mk(name, index=None, raw_index=None, config=None, files=True):
        folder = d / f"hf_{name}"
        shutil.copytree(f["hf"], folder)
        if raw_index is not None:
            (folder / "model.safetensors.index.json").write_bytes(raw_index)
        elif index is not None:
            (folder / "model.safetensors.index.json").write_text(json.dumps(index))
        if config is not None:
            (folder / "config.json").write_bytes(config)
        out.append((name, folder))

    mk("escape_dotdot", {"weight_map": {"layers.0.wq": "../secret.safetensors"}})
    mk("escape_absolute", {"weight_map": {"layers.0.wq": str(f["secret"])}})
    mk("weight_map_int", {"weight_map": {"layers.0.wq": 1}})
    mk("weight_map_list", {"weight_map": ["a"]})
    mk("weight_map_none", {"weight_map": None})
    mk("weight_map_nested", {"weight_map": {"layers.0.wq": {"a": "b"}}})
    mk("index_deep", raw_index=b"[" * 50000 + b"]" * 50000)
    mk("index_not_utf8", raw_index=b'{"weight_map": {"\xff": "x"}}')
    mk("index_empty", raw_index=b"")
    mk("missing_shard", {"weight_map": {"layers.0.wq": "model-00009.safetensors"}})
    mk("config_not_utf8", config=b'{"model_type": "\xff\xfe"}')
    mk("shard_is_fifo", {"weight_map": {"layers.0.wq": "pipe"}})
    os.mkfifo(d / "hf_shard_is_fifo" / "pipe")
    mk("shard_is_dir", {"weight_map": {"layers.0.wq": "sub"}})
    (d / "hf_shard_is_dir" / "sub").mkdir()
    return out


def cases(d: Path, f: dict) -> list[Case]:
    out: list[Case] = []
    o = d / "out"
    o.mkdir()
    n = iter(range(10**6))

    def fresh(ext=".seedlm"):
        return str(o / f"o{next(n)}{ext}")

    # .seedlm readers, through every command that reads one
    for name, path in seedlm_variants(d, f):
        out.append(Case(f"inspect seedlm/{name}", ["inspect", str(path)], protect=[path]))
        out.append(Case(f"decompress seedlm/{name}", ["decompress", str(path), "-o", fresh(".safetensors")],
                        protect=[path]))
        out.append(Case(f"image seedlm/{name}", ["image", str(path), "--tensor", "layers.0.wq", "--bus-bits", "64",
                                                 "-o", fresh(".bin")], protect=[path]))
        out.append(Case(f"project --checkpoint seedlm/{name}",
                        ["project", "--checkpoint", str(path), "--no-plots", "--board", "arty-a7-100t",
                         "-o", str(o / f"proj{next(n)}")], protect=[path]))
    # checkpoint readers, through compress
    for group, variants in (("safetensors", safetensors_variants(d, f)), ("llama2c", llama2c_variants(d, f)),
                            ("pt", pt_variants(d, f)), ("hf", hf_variants(d, f))):
        for name, path in variants:
            out.append(Case(f"compress {group}/{name}", ["compress", str(path), "-o", fresh()],
                            protect=[path, f["secret"]], must_fail=name not in VALID_VARIANTS))
    # boards, through boards / project / generate
    for name, path in board_variants(d, f):
        valid = name in VALID_VARIANTS
        out.append(Case(f"boards board/{name}", ["boards", "--board", str(path)], protect=[path], must_fail=not valid))
        out.append(Case(f"project board/{name}", ["project", "--board", str(path), "--model", "stories15m",
                                                  "--no-plots", "-o", str(o / f"proj{next(n)}")], protect=[path],
                        must_fail=not valid))
        out.append(Case(f"generate board/{name}", ["generate", "--board", str(path), "-o", str(o / f"gen{next(n)}")],
                        protect=[path]))
    # config.json, through project
    for name, path in config_variants(d, f):
        out.append(Case(f"project config/{name}", ["project", "--config", str(path), "--no-plots", "--board",
                                                   "arty-a7-100t", "-o", str(o / f"proj{next(n)}")], protect=[path]))
    # numbers on the command line
    s = str(f["seedlm"])
    for w in ("0", "-64", "7", "12", "1000000000", "99999999999999999999", "4104"):
        out.append(Case(f"image --bus-bits {w}", ["image", s, "--tensor", "layers.0.wq", "--bus-bits", w,
                                                  "-o", fresh(".bin")], protect=[f["seedlm"]]))
    for w in ("0", "-8", "12", "1000000000", "99999999999999999999"):
        out.append(Case(f"generate --bus-bits {w}", ["generate", "--bus-bits", w, "-o", str(o / f"gen{next(n)}")]))
    for m in ("0", "-1", "1000000000"):
        out.append(Case(f"generate --max-cols {m}", ["generate", "--bus-bits", "64", "--max-cols", m,
                                                     "-o", str(o / f"gen{next(n)}")]))
    for flag, value in (("--rows", "100000000"), ("--rows", "0"), ("--rows", "-5"), ("--cols", "100000000"),
                        ("--cols", "0"), ("--bus-bits", "7"), ("--bus-bits", "1000000000"), ("--gap", "nan"),
                        ("--gap", "inf"), ("--gap", "1"), ("--gap", "-0.5"), ("--ready-gap", "nan"),
                        ("--seed", "-1"), ("--seed", "99999999999999999999999"), ("--max-cols", "3")):
        out.append(Case(f"cosim {flag} {value}", ["cosim", flag, value]))
    proj = ["project", "--model", "stories15m", "--board", "arty-a7-100t", "--no-plots"]
    for flag, value in (("--context", "-1"), ("--context", "10" * 20), ("--batch", "0"), ("--batch", "10" * 20),
                        ("--launch-us", "nan"), ("--launch-us", "inf"), ("--launch-us", "-1"),
                        ("--launch-us", "1e300"), ("--memory-latency-ns", "nan"), ("--memory-latency-ns", "-inf"),
                        ("--memory-latency-ns", "1e300"), ("--act-bits", "12"), ("--kv-bits", "3")):
        out.append(Case(f"project {flag} {value}", [*proj, flag, value, "-o", str(o / f"proj{next(n)}")]))
    for b in ("1000", "-1001", "nan", "1e3", "x", "99999999999999999999999"):
        out.append(Case(f"compress --bias {b}", ["compress", str(f["st"]), "-o", fresh(), "--bias", b],
                        protect=[f["st"]]))
    out.append(Case("compress --bias 200 (float32: out of dtype range)", ["compress", str(f["st"]), "-o", fresh(),
                                                                        "--bias", "200"], protect=[f["st"]]))
    for p in ("seedlm-5", "custom", "", "SEEDLM-4"):
        out.append(Case(f"compress --preset {p!r}", ["compress", str(f["st"]), "-o", fresh(), "--preset", p],
                        protect=[f["st"]]))
    for args in (["--include", "("], ["--exclude", "["], ["--include", "nomatch"], ["--device", "tpu"],
                 ["--device", "cuda:99"], ["--exclude", ".*"]):
        out.append(Case(f"compress {' '.join(args)}", ["compress", str(f["st"]), "-o", fresh(), *args],
                        protect=[f["st"]]))
    for args in (["--stories", "0"], ["--stories", "-3"], ["--reference", str(f["fifo"])], ["--text", str(f["fifo"])],
                 ["--compare", str(f["fifo"])], ["--device", "cuda"], ["--tokenizer", str(d)],
                 ["--reference", str(d / "nope.bin")]):
        out.append(Case(f"evaluate {' '.join(args)[:40]}", ["evaluate", s, *args, "--no-perplexity"]
                        if args[0] not in ("--stories", "--text", "--tokenizer") else ["evaluate", s, *args],
                        protect=[f["seedlm"]]))
    out.append(Case("decompress --dtype int8", ["decompress", s, "-o", fresh(".safetensors"), "--dtype", "int8"]))
    out.append(Case("project --model nope", ["project", "--model", "nope", "--no-plots", "-o", str(o / "p")]))
    out.append(Case("project --board nope", ["project", "--board", "nope", "--no-plots", "-o", str(o / "p")]))
    out.append(Case("synth --board nope", ["synth", "--board", "nope", "-o", str(o / "s")]))
    out.append(Case("boards --board nope", ["boards", "--board", "nope"]))
    out.append(Case("unknown command", ["frobnicate"]))

    # outputs that are inputs: through symlinks and hard links too
    def victim(name, src):
        path = d / "victims" / name
        path.parent.mkdir(exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, path)
        else:
            shutil.copy(src, path)
        return path

    for name, key in (("st", "st"), ("l2c", "l2c"), ("pt", "pt")):
        v = victim(f"self_{name}", f[key])
        out.append(Case(f"compress {name} -o itself", ["compress", str(v), "-o", str(v)], protect=[v]))
        v = victim(f"link_{name}", f[key])
        link = d / "victims" / f"symlink_to_{name}"
        link.symlink_to(v)
        out.append(Case(f"compress {name} -o symlink to it", ["compress", str(v), "-o", str(link)], protect=[v]))
        v = victim(f"hard_{name}", f[key])
        hard = d / "victims" / f"hardlink_to_{name}"
        os.link(v, hard)
        out.append(Case(f"compress {name} -o hard link to it", ["compress", str(v), "-o", str(hard)], protect=[v]))
    hf = victim("hf_victim", f["hf"])
    for shard in ("model-00001.safetensors", "model.safetensors.index.json", "config.json"):
        out.append(Case(f"compress hf -o its {shard}", ["compress", str(hf), "-o", str(hf / shard)],
                        protect=[hf / "model-00001.safetensors", hf / "model.safetensors.index.json",
                                 hf / "config.json"]))
    for cmd in ("decompress", "image", "inspect"):
        v = victim(f"self_{cmd}.seedlm", f["seedlm"])
        extra = {"decompress": ["-o", str(v)], "image": ["--tensor", "layers.0.wq", "--bus-bits", "64", "-o", str(v)],
                 "inspect": []}[cmd]
        out.append(Case(f"{cmd} -o its input", [cmd, str(v), *extra], protect=[v], must_fail=cmd != "inspect"))
        link = d / "victims" / f"symlink_{cmd}.seedlm"
        link.symlink_to(v)
        if cmd != "inspect":
            extra = {"decompress": ["-o", str(link)],
                     "image": ["--tensor", "layers.0.wq", "--bus-bits", "64", "-o", str(link)]}[cmd]
            out.append(Case(f"{cmd} -o symlink to its input", [cmd, str(v), *extra], protect=[v]))
    cfg = d / "victims" / "config.json"
    cfg.write_text(json.dumps(f["config"]))
    out.append(Case("project -o folder holding its config.json", ["project", "--config", str(cfg), "--no-plots",
                                                                  "--board", "arty-a7-100t", "-o", str(cfg.parent)],
                    protect=[cfg], must_fail=False))
    pj = d / "victims" / "pj"
    pj.mkdir()
    (pj / "projection.json").write_text(json.dumps(f["config"]))
    out.append(Case("project --config DIR/projection.json -o DIR", ["project", "--config", str(pj / "projection.json"),
                                                                   "--no-plots", "--board", "arty-a7-100t",
                                                                   "-o", str(pj)], protect=[pj / "projection.json"]))
    # odd outputs
    for label, target in (("a folder", str(o)), ("empty", ""), ("in a missing folder", str(d / "no" / "x.seedlm")),
                          ("trailing slash", str(o) + "/"), ("a FIFO", str(f["fifo"])), ("/dev/null", "/dev/null")):
        out.append(Case(f"compress -o {label}", ["compress", str(f["st"]), "-o", target], protect=[f["st"]]))
        out.append(Case(f"decompress -o {label}", ["decompress", s, "-o", target], protect=[f["seedlm"]]))
        out.append(Case(f"image -o {label}", ["image", s, "--tensor", "layers.0.wq", "--bus-bits", "64", "-o", target],
                        protect=[f["seedlm"]]))
    gen_file = d / "victims" / "gen_is_file"
    gen_file.write_text("keep me")
    out.append(Case("generate -o an existing file", ["generate", "--bus-bits", "64", "-o", str(gen_file)],
                    protect=[gen_file]))
    proj_file = d / "victims" / "proj_is_file"
    proj_file.write_text("keep me")
    out.append(Case("project -o an existing file", [*proj, "-o", str(proj_file)], protect=[proj_file]))
    # OUT.partial that is not ours
    for kind in ("user folder", "file", "symlink to a folder", "dangling symlink"):
        target = d / "partials" / f"{kind.replace(' ', '_')}.seedlm"
        target.parent.mkdir(exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        keep = d / "partials" / f"keep_{kind.replace(' ', '_')}"
        if kind == "user folder":
            partial.mkdir()
            keep = partial / "thesis.txt"
            keep.write_text("years of work")
        elif kind == "file":
            partial.write_text("years of work")
            keep = partial
        elif kind == "symlink to a folder":
            keep.mkdir()
            (keep / "thesis.txt").write_text("years of work")
            partial.symlink_to(keep)
            keep = keep / "thesis.txt"
        else:
            partial.symlink_to(d / "partials" / "nowhere")
            keep = None
        for resume in ([], ["--resume"]):
            out.append(Case(f"compress with OUT.partial a {kind} {' '.join(resume)}",
                            ["compress", str(f["st"]), "-o", str(target), *resume],
                            protect=[f["st"]] + ([keep] if keep else [])))
    # unreadable and special inputs
    for cmd, extra in (("compress", ["-o", fresh()]), ("decompress", ["-o", fresh(".safetensors")]), ("inspect", []),
                       ("image", ["--tensor", "a", "--bus-bits", "64", "-o", fresh(".bin")]),
                       ("evaluate", ["--no-perplexity"])):
        for label, path in (("a FIFO", f["fifo"]), ("a folder", o), ("missing", d / "missing.seedlm"),
                            ("/dev/zero", Path("/dev/zero")), ("/dev/null", Path("/dev/null"))):
            out.append(Case(f"{cmd} input {label}", [cmd, str(path), *extra]))
    for label, path in (("a FIFO", f["fifo"]), ("/dev/zero", Path("/dev/zero")), ("a folder", o)):
        out.append(Case(f"project --config {label}", ["project", "--config", str(path), "--no-plots", "-o", str(o / "p")]))
        out.append(Case(f"project --checkpoint {label}", ["project", "--checkpoint", str(path), "--no-plots",
                                                          "-o", str(o / "p")]))
        out.append(Case(f"boards --board {label}", ["boards", "--board", str(path)]))
    out.append(Case("boards --board FIFO.yaml", ["boards", "--board", str(d / "fifo" / "b.yaml")]))
    os.mkfifo(d / "fifo" / "b.yaml")
    # file-size limit: every write fails part-way (EFBIG); nothing half-written may remain
    for cmd, args, limit in (("compress", ["compress", str(f["st"]), "-o", str(o / "fsize.seedlm")], 1024),
                             ("decompress", ["decompress", s, "-o", str(o / "fsize.safetensors")], 1024),
                             ("image", ["image", s, "--tensor", "layers.0.wq", "--bus-bits", "64",
                                        "-o", str(o / "fsize.bin")], 100),
                             ("generate", ["generate", "--bus-bits", "64", "-o", str(o / "fsize_gen")], 1024)):
        out.append(Case(f"{cmd} under a {limit}-byte file-size limit", args, fsize=limit,
                        protect=[f["st"], f["seedlm"]]))
    # valid runs: these must succeed (and leave their inputs alone)
    out.append(Case("valid: compress safetensors", ["compress", str(f["st"]), "-o", fresh()], must_fail=False,
                    protect=[f["st"]]))
    out.append(Case("valid: compress hf folder", ["compress", str(f["hf"]), "-o", fresh()], must_fail=False,
                    protect=[f["hf"] / "model-00001.safetensors"]))
    out.append(Case("valid: compress .pt", ["compress", str(f["pt"]), "-o", fresh()], must_fail=False,
                    protect=[f["pt"]]))
    out.append(Case("valid: inspect", ["inspect", s], must_fail=False, protect=[f["seedlm"]]))
    out.append(Case("valid: decompress", ["decompress", s, "-o", fresh(".safetensors")], must_fail=False,
                    protect=[f["seedlm"]]))
    out.append(Case("valid: image", ["image", s, "--tensor", "layers.0.wq", "--bus-bits", "64", "-o", fresh(".bin")],
                    must_fail=False, protect=[f["seedlm"]]))
    out.append(Case("valid: project --checkpoint", ["project", "--checkpoint", s, "--no-plots", "--board",
                                                    "arty-a7-100t", "-o", str(o / "pv")], must_fail=False))
    out.append(Case("valid: boards", ["boards"], must_fail=False))
    out.append(Case("valid: generate", ["generate", "--bus-bits", "64", "-o", str(o / "gv")], must_fail=False))
    return out


# --- running --------------------------------------------------------------------------------------------

@dataclass
class Result:
    case: Case
    verdict: str
    rc: int | None
    stderr: str
    seconds: float


def run_case(case: Case, timeout: float) -> Result:
    before = {p: sha(p) for p in case.protect}

    def limits():
        if case.fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (case.fsize, case.fsize))

    env = {**os.environ, "PYTHONPATH": str(ROOT), "TQDM_DISABLE": "1", "MPLBACKEND": "Agg"}
    t = time.perf_counter()
    try:
        proc = subprocess.run([*CLI, *case.argv], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, preexec_fn=limits, env=env, cwd=case.cwd, errors="replace")
        rc, err = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired as exc:
        rc = None
        err = (exc.stderr or b"").decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
    dt = time.perf_counter() - t
    lost = [p for p, h in before.items() if h is not None and sha(p) != h]
    lines = [ln for ln in err.splitlines() if ln.strip()]
    if lost:
        verdict = "data loss"
    elif rc is None:
        verdict = "hang"
    elif "Traceback" in err:
        verdict = "traceback"
    elif rc == 2 and len(lines) == 1 and lines[0].startswith("seedlm-fpga") and "error" in lines[0]:
        verdict = "clean error"
    elif rc == 2 and lines and lines[-1].startswith("seedlm-fpga") and "error:" in lines[-1] and \
            lines[0].startswith("usage:"):
        verdict = "clean error"  # argparse: usage line + one error line
    elif rc in (0, 1) and not case.must_fail:
        verdict = "success"
    elif rc in (0, 1):
        verdict = "nonsense"
    else:
        verdict = "traceback"
    return Result(case, verdict, rc, err, dt)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2)))
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--only", help="run only cases whose name contains this")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every case")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    pwned = Path("/tmp/seedlm-abuse-pwned")
    pwned.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="seedlm-abuse-") as tmp:
        d = Path(tmp)
        f = build(d)
        all_cases = cases(d, f)
        if args.only:
            all_cases = [c for c in all_cases if args.only in c.name]
        fixtures = {p: sha(p) for p in (f["st"], f["seedlm"], f["l2c"], f["pt"], f["secret"],
                                        *(f["hf"].iterdir()))}
        t0 = time.perf_counter()
        print(f"{len(all_cases)} cases, {args.jobs} at a time, timeout {args.timeout:g} s", file=sys.stderr)
        with ThreadPoolExecutor(args.jobs) as pool:
            results = list(pool.map(lambda c: run_case(c, args.timeout), all_cases))
        # concurrency: two compress runs on one output at once (state must not be corrupted)
        target = d / "out" / "race.seedlm"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TQDM_DISABLE": "1"}
        procs = [subprocess.Popen([*CLI, "compress", str(f["hf"]), "-o", str(target)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
        errs = [p.communicate(timeout=args.timeout)[1] for p in procs]
        rcs = [p.returncode for p in procs]
        race_ok = (0 in rcs and all(r in (0, 2) for r in rcs) and not any("Traceback" in e for e in errs)
                   and target.is_file())
        if race_ok:
            from seedlm_fpga.compressor.container import read_container
            try:
                read_container(target)
            except Exception:  # noqa: BLE001
                race_ok = False
        race = Result(Case("two compress runs on one output at once", []), "success" if race_ok else "traceback",
                      None, " | ".join(errs), 0.0)
        results.append(race)
        lost = [str(p) for p, h in fixtures.items() if sha(p) != h]
        wall = time.perf_counter() - t0
    counts = Counter(r.verdict for r in results)
    if lost:
        counts["data loss"] += len(lost)
    if pwned.exists():
        counts["nonsense"] += 1
        print("UNTRUSTED INPUT EXECUTED CODE: /tmp/seedlm-abuse-pwned exists", file=sys.stderr)
    for r in results:
        if args.verbose or r.verdict not in ("clean error", "success"):
            msg = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
            print(f"{r.verdict:<12} rc={r.rc!s:<4} {r.seconds:5.1f}s  {r.case.name}  | {msg[:150]}")
    for p in lost:
        print(f"data loss    fixture changed: {p}")
    by_cmd: dict[str, Counter] = {}
    for r in results:
        cmd = r.case.argv[0] if r.case.argv else "compress"
        by_cmd.setdefault(cmd, Counter())[r.verdict] += 1
    print()
    head = f"{'command':<12}" + "".join(f"{c:>13}" for c in CLASSES) + f"{'total':>8}"
    print(head)
    print("-" * len(head))
    for cmd in sorted(by_cmd):
        c = by_cmd[cmd]
        print(f"{cmd:<12}" + "".join(f"{c[k]:>13}" for k in CLASSES) + f"{sum(c.values()):>8}")
    print("-" * len(head))
    print(f"{'all':<12}" + "".join(f"{counts[k]:>13}" for k in CLASSES) + f"{len(results):>8}")
    print(f"\n{len(results)} cases in {wall:.0f} s; slowest {max(r.seconds for r in results):.1f} s")
    bad = sum(counts[k] for k in ("traceback", "hang", "data loss", "nonsense"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
