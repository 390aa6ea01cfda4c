"""`seedlm-fpga inspect`: the human tables and --json, figures worked out here from docs/format.md."""
from __future__ import annotations

import json

from seedlm_samples import sample_container

from seedlm_fpga.cli.main import main


def test_inspect_json(tmp_path, capsys):
    path = tmp_path / "m.seedlm"
    sample_container(path)
    assert main(["inspect", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["file"] == str(path) and info["file_bytes"] == path.stat().st_size
    wq, w2 = info["compressed"][1], info["compressed"][0]
    # 6x16 seedlm-4: 2 blocks of 32 bits per row; 5x30 seedlm-3: 3 blocks of 36 bits per row.
    assert wq == {"name": "layers.0.wq", "shape": [6, 16], "preset": "seedlm-4", "K": 16, "C": 8, "P": 3,
                  "bias": -12, "dtype": "float32", "blocks": 12, "outliers": 0, "rank": 0, "bits_per_weight": 4.0,
                  "packed_bytes": 48}
    assert w2 == {"name": "layers.0.w2", "shape": [5, 30], "preset": "seedlm-3", "K": 16, "C": 12, "P": 4,
                  "bias": -9, "dtype": "bfloat16", "blocks": 15, "outliers": 0, "rank": 0, "bits_per_weight": 3 * 36 / 30,
                  "packed_bytes": 15 * 36 // 8 + 1}
    carried = {c["name"]: c for c in info["carried"]}
    assert carried["tok_embeddings"] == {"name": "tok_embeddings", "shape": [10, 16], "dtype": "bfloat16", "bytes": 320}
    assert carried["scale"] == {"name": "scale", "shape": [], "dtype": "float16", "bytes": 2}
    t = info["totals"]
    assert t["compressed_weights"] == 96 + 150 and t["packed_bytes"] == 48 + 68
    assert t["bits_per_weight"] == (48 + 68) * 8 / 246
    assert t["carried_bytes"] == 16 * 4 + 320 + 7 * 8 + 2


def test_inspect_tables(tmp_path, capsys):
    path = tmp_path / "m.seedlm"
    sample_container(path)
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"{path}: .seedlm format 1, {path.stat().st_size:,} bytes"
    assert "compressed tensors (2):" in lines and "carried tensors (4):" in lines
    rows = {line.split()[0]: line.split() for line in lines if line.startswith(("layers.", "tok_", "scale"))}
    assert rows["layers.0.w2"] == ["layers.0.w2", "5x30", "bfloat16", "seedlm-3", "-9", "15", "0", "0", "3.600"]
    assert rows["layers.0.wq"] == ["layers.0.wq", "6x16", "float32", "seedlm-4", "-12", "12", "0", "0", "4.000"]
    assert rows["scale"] == ["scale", "scalar", "float16", "2"]


def test_inspect_bad_file(tmp_path, capsys):
    path = tmp_path / "m.seedlm"
    path.write_bytes(b"\x10" + bytes(7) + b"{not json at all")
    assert main(["inspect", str(path)]) == 2
    assert capsys.readouterr().err == (f"seedlm-fpga inspect: error: {path}: not a valid .seedlm file "
                                       f"(truncated, or not safetensors)\n")


def test_inspect_file_whose_metadata_disagrees(tmp_path, capsys):
    from safetensors import safe_open

    from seedlm_fpga.compressor.container import write_safetensors

    path = tmp_path / "m.seedlm"
    sample_container(path)
    with safe_open(str(path), framework="pt") as f:
        tensors, meta = {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata())
    meta["layers.0.wq"] = meta["layers.0.wq"].replace("[6, 16]", "[7, 16]")
    write_safetensors(path, tensors, meta)
    assert main(["inspect", str(path)]) == 2
    assert capsys.readouterr().err == (f"seedlm-fpga inspect: error: {path}: tensor 'layers.0.wq': .seed has shape "
                                       f"[6, 2], expected [7, 2] for shape [7, 16] with seedlm-4\n")
