"""Compression as a job of row-chunk units (compressor/job.py): chunk-level resume after an
interrupt or a SIGKILL of the driver, and `--ray` (a local 2-CPU Ray) giving the same bytes as
one process, also when a worker is SIGKILLed mid-run."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from seedlm_fpga.cli.main import main
from seedlm_fpga.compressor import encoder, job
from seedlm_fpga.compressor.checkpoints import load_checkpoint
from seedlm_fpga.core.reference import PRESETS
from example_data import example_file

STORIES = example_file("stories260K.bin")
#: stories260K: wq is 64x64 = 512 blocks at C = 8; 128 blocks a unit cuts it into 4 chunks.
SMALL_CHUNKS = 128


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _hf_checkpoint(folder: Path) -> Path:
    """A Hugging Face folder: three shards, an index, a config; bf16, fp16 and fp32 matrices."""
    folder.mkdir()
    g = torch.Generator().manual_seed(1)
    shards = {
        "model-00001-of-00003.safetensors": {
            "model.embed_tokens.weight": torch.randn(32, 16, generator=g),
            "model.layers.0.self_attn.q_proj.weight": (torch.randn(40, 16, generator=g) * 0.02).to(torch.bfloat16)},
        "model-00002-of-00003.safetensors": {
            "model.layers.0.mlp.down_proj.weight": (torch.randn(24, 44, generator=g) * 0.05).to(torch.float16),
            "model.layers.0.input_layernorm.weight": torch.ones(16)},
        "model-00003-of-00003.safetensors": {
            "model.layers.1.self_attn.o_proj.weight": torch.randn(50, 24, generator=g),
            "lm_head.weight": torch.randn(32, 16, generator=g)},
    }
    weight_map = {}
    for shard, sd in shards.items():
        save_file(sd, folder / shard)
        weight_map.update(dict.fromkeys(sd, shard))
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    (folder / "config.json").write_text('{"model_type": "llama"}')
    return folder


def _count_units(monkeypatch) -> list:
    calls = []
    real = job.encode_unit
    monkeypatch.setattr(job, "encode_unit", lambda t, unit, *a, **kw: calls.append(unit.key) or real(t, unit, *a, **kw))
    return calls


def test_units_reassemble_to_the_whole_tensor_encoding():
    """Units with the tensor's bias encode exactly the rows encode_tensor gives the whole tensor."""
    preset = PRESETS["seedlm-4"]
    tensors = load_checkpoint(STORIES).tensors
    w = job.as_weights(tensors["layers.0.wq"])
    wmax, bad = job.scan_tensor(tensors, "layers.0.wq")
    assert bad == 0 and wmax == float(abs(w).max())
    bias = job.tensor_bias("auto", wmax, preset)
    units = job.tensor_units("layers.0.wq", w.shape, preset, bias, chunk_blocks=SMALL_CHUNKS)
    assert [(u.r0, u.r1) for u in units] == [(0, 16), (16, 32), (32, 48), (48, 64)]
    whole = encoder.encode_tensor(w, preset)
    got = job.assemble(units, [job.encode_unit(tensors, u, preset) for u in units])
    assert got.bias == whole.bias and got.shape == whole.shape
    for part in ("seeds", "x", "q"):
        assert (getattr(got, part) == getattr(whole, part)).all()


def test_interrupted_run_resumes_only_the_missing_chunks(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(job, "CHUNK_BLOCKS", SMALL_CHUNKS)
    argv = ["compress", str(STORIES), "-o", str(tmp_path / "s.seedlm"), "--include", r"layers\.[01]\.w[qk]$"]
    assert main(argv[:3] + [str(tmp_path / "ref.seedlm")] + argv[4:]) == 0
    # layers.{0,1}.wq: 4 chunks each, wk (32x64): 2 chunks each = 12 units
    real, started = job.encode_unit, []

    def interrupted_at_the_sixth(t, unit, *a, **kw):
        started.append(unit)
        if len(started) == 6:
            raise KeyboardInterrupt
        return real(t, unit, *a, **kw)

    monkeypatch.setattr(job, "encode_unit", interrupted_at_the_sixth)
    assert main(argv) == 130
    assert len(list((tmp_path / "s.seedlm.partial").glob("*.seedlm"))) == 5
    calls = _count_units(monkeypatch)
    assert main(argv + ["--resume"]) == 0
    assert len(calls) == 12 - 5
    assert _sha(tmp_path / "s.seedlm") == _sha(tmp_path / "ref.seedlm")
    assert not (tmp_path / "s.seedlm.partial").exists()


#: Runs `compress` in a child process that SIGKILLs itself right after its K-th saved chunk.
KILLER = """
import os, signal, sys
from seedlm_fpga.cli.main import main
from seedlm_fpga.compressor import job
job.CHUNK_BLOCKS = int(sys.argv[1])
k, real, saved = int(sys.argv[2]), job.ChunkStore.save, []
def save(self, unit, enc):
    real(self, unit, enc)
    saved.append(unit)
    if len(saved) == k:
        os.kill(os.getpid(), signal.SIGKILL)
job.ChunkStore.save = save
sys.exit(main(sys.argv[3:]))
"""


def _killed_run(argv: list[str], k: int) -> None:
    proc = subprocess.run([sys.executable, "-c", KILLER, str(SMALL_CHUNKS), str(k), *argv],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]


def test_sigkilled_driver_then_resume_gives_the_same_bytes(tmp_path, monkeypatch):
    monkeypatch.setattr(job, "CHUNK_BLOCKS", SMALL_CHUNKS)
    out = tmp_path / "s.seedlm"
    argv = ["compress", str(STORIES), "-o", str(out), "--include", r"layers\.0\.w"]
    assert main(argv[:3] + [str(tmp_path / "ref.seedlm")] + argv[4:]) == 0
    _killed_run(argv, k=3)
    assert not out.exists() and len(list((tmp_path / "s.seedlm.partial").glob("*.seedlm"))) == 3
    calls = _count_units(monkeypatch)
    assert main(argv + ["--resume"]) == 0
    tensors = load_checkpoint(STORIES).tensors
    names = [n for n in tensors if n.startswith("layers.0.w") and tensors.meta(n).ndim == 2]
    total = sum(len(job.tensor_units(n, tuple(tensors.meta(n).shape), PRESETS["seedlm-4"], 0)) for n in names)
    assert len(calls) == total - 3
    assert _sha(out) == _sha(tmp_path / "ref.seedlm")


# --- Ray --------------------------------------------------------------------------------------------

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    """A local Ray with 2 CPUs; its workers SIGKILL themselves once when `marker` is missing."""
    marker = tmp_path_factory.mktemp("ray") / "killed-once"
    marker.touch()  # present: nobody is killed
    from seedlm_fpga.compressor.ray_executor import KILL_ONCE_ENV

    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False,
             runtime_env={"env_vars": {KILL_ONCE_ENV: str(marker)}})
    yield marker
    ray.shutdown()


@pytest.mark.parametrize("source", ["stories260K", "hf-shards"])
def test_ray_output_equals_single_process(tmp_path, monkeypatch, local_ray, source, capsys):
    monkeypatch.setattr(job, "CHUNK_BLOCKS", SMALL_CHUNKS // 4)  # many units for 2 workers
    src = STORIES if source == "stories260K" else _hf_checkpoint(tmp_path / "hf")
    extra = ["--include", r"layers\.[01]\."] if source == "stories260K" else []
    assert main(["compress", str(src), "-o", str(tmp_path / "one.seedlm"), *extra]) == 0
    assert main(["compress", str(src), "-o", str(tmp_path / "ray.seedlm"), *extra, "--ray"]) == 0
    assert _sha(tmp_path / "ray.seedlm") == _sha(tmp_path / "one.seedlm")
    out = capsys.readouterr().out
    assert "compressed" in out and not (tmp_path / "ray.seedlm.partial").exists()


def test_ray_worker_sigkill_is_retried(tmp_path, monkeypatch, local_ray):
    monkeypatch.setattr(job, "CHUNK_BLOCKS", SMALL_CHUNKS)
    argv = ["compress", str(STORIES), "--include", r"layers\.0\.w[qko]$"]
    assert main(argv + ["-o", str(tmp_path / "one.seedlm")]) == 0
    local_ray.unlink()  # the next task to start kills its worker process (once)
    assert main(argv + ["-o", str(tmp_path / "ray.seedlm"), "--ray"]) == 0
    assert local_ray.exists()  # a worker did die, and Ray ran its unit again
    assert _sha(tmp_path / "ray.seedlm") == _sha(tmp_path / "one.seedlm")


def test_ray_sigkilled_driver_then_resume(tmp_path, monkeypatch, local_ray):
    monkeypatch.setattr(job, "CHUNK_BLOCKS", SMALL_CHUNKS)
    out = tmp_path / "s.seedlm"
    argv = ["compress", str(STORIES), "-o", str(out), "--include", r"layers\.1\.w"]
    assert main(argv[:3] + [str(tmp_path / "ref.seedlm")] + argv[4:]) == 0
    env_argv = argv + ["--ray"]
    _killed_run(env_argv, k=4)  # the child's own embedded Ray
    assert not out.exists() and len(list((tmp_path / "s.seedlm.partial").glob("*.seedlm"))) >= 4
    assert main(argv + ["--ray", "--resume"]) == 0
    assert _sha(out) == _sha(tmp_path / "ref.seedlm")
