"""`seedlm-fpga image` and the format §5.2 / 5.3 encodings it relies on: hypothesis round trips of
block words and memory images, checked against a plain Python-int layout written here."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from seedlm_samples import random_encoded, sample_container

from seedlm_fpga.cli.main import main
from seedlm_fpga.compressor.container import read_container
from seedlm_fpga.core.reference import PRESETS, memory_image, pack_words, parse_memory_image, unpack_words, packed_memory_image


def spec_word(seed: int, x: int, q, preset) -> int:
    """format §5.2 with Python ints: seed in [0, K), x in [K, K+4), q_p (4-bit two's complement) after."""
    word = seed | (x << preset.K)
    for p, v in enumerate(q):
        word |= (int(v) & 15) << (preset.K + 4 + 4 * p)
    return word


def spec_image(seeds, x, q, preset, bus_bits: int) -> bytes:
    """format §5.3 beat by beat: L blocks per beat, each row on R fresh beats, little-endian bytes."""
    rows, nb = seeds.shape
    B = preset.block_bits
    L = bus_bits // B
    R = -(-nb // L)
    beats = [0] * (rows * R)
    for r in range(rows):
        for j in range(nb):
            beats[r * R + j // L] |= spec_word(int(seeds[r, j]), int(x[r, j]), q[r, j], preset) << ((j % L) * B)
    return b"".join(b.to_bytes(bus_bits // 8, "little") for b in beats)


blocks = st.builds(lambda rows, nb, preset, seed: random_encoded(np.random.default_rng(seed), rows,
                                                                 nb * PRESETS[preset].C, preset),
                   st.integers(1, 4), st.integers(1, 9), st.sampled_from(list(PRESETS)), st.integers(0, 2**32 - 1))


@settings(max_examples=40, deadline=None)
@given(enc=blocks)
def test_words_round_trip(enc):
    words = pack_words(enc.seeds, enc.x, enc.q, enc.preset)
    rows, nb = enc.seeds.shape
    for r in range(rows):
        for j in range(nb):
            assert int(words[r, j]) == spec_word(int(enc.seeds[r, j]), int(enc.x[r, j]), enc.q[r, j], enc.preset)
    seeds, x, q = unpack_words(words, enc.preset)
    assert np.array_equal(seeds, enc.seeds) and np.array_equal(x, enc.x) and np.array_equal(q, enc.q)


@settings(max_examples=40, deadline=None)
@given(enc=blocks, extra_bytes=st.integers(0, 40))
def test_memory_image_round_trip(enc, extra_bytes):
    B = enc.preset.block_bits
    bus_bits = -(-B // 8) * 8 + 8 * extra_bytes  # from one block per beat to several
    image = memory_image(enc.seeds, enc.x, enc.q, enc.preset, bus_bits)
    assert image == spec_image(enc.seeds, enc.x, enc.q, enc.preset, bus_bits)
    rows, nb = enc.seeds.shape
    seeds, x, q = parse_memory_image(image, enc.preset, bus_bits, rows, nb)
    assert np.array_equal(seeds, enc.seeds) and np.array_equal(x, enc.x) and np.array_equal(q, enc.q)


def test_image_command_writes_the_spec_layout(tmp_path, capsys):
    path = tmp_path / "m.seedlm"
    sample_container(path)
    enc = read_container(path).compressed["layers.0.w2"]  # 5x30 seedlm-3: 3 blocks of 36 bits per row
    out = tmp_path / "w2.bin"
    assert main(["image", str(path), "--tensor", "layers.0.w2", "--bus-bits", "64", "-o", str(out)]) == 0
    assert out.read_bytes() == spec_image(enc.seeds, enc.x, enc.q, enc.preset, 64)
    # L = 1 block per 64-bit beat, R = 3 beats per row, 15 beats, 120 bytes, 3 * 64 / 30 = 6.4 bits/weight.
    assert capsys.readouterr().out.splitlines() == [
        "layers.0.w2: 5x30, seedlm-3 (36-bit blocks), 3 blocks per row",
        "bus 64 bits: L = 1 blocks/beat, R = 3 beats/row, 15 beats, 120 bytes, 6.400 bits/weight",
        f"wrote {out}"]
    assert main(["image", str(path), "--tensor", "layers.0.wq", "--bus-bits", "512", "-o", str(out)]) == 0
    assert "L = 16 blocks/beat, R = 1 beats/row, 6 beats, 384 bytes, 32.000 bits/weight" in capsys.readouterr().out


def test_image_bad_input(tmp_path, capsys):
    path = tmp_path / "m.seedlm"
    sample_container(path)
    out = tmp_path / "o.bin"
    cases = [
        (["--tensor", "nope", "--bus-bits", "64"],
         f"tensor 'nope' is not in {path}; compressed tensors: layers.0.w2, layers.0.wq"),
        (["--tensor", "norm", "--bus-bits", "64"],
         f"tensor 'norm' is carried uncompressed in {path}; compressed tensors: layers.0.w2, layers.0.wq"),
        (["--tensor", "layers.0.w2", "--bus-bits", "32"], "--bus-bits 32: a 32-bit bus cannot hold one 36-bit block"),
        (["--tensor", "layers.0.w2", "--bus-bits", "60"], "--bus-bits 60: bus width must be a multiple of 8 bits, got 60"),
    ]
    for extra, message in cases:
        assert main(["image", str(path), *extra, "-o", str(out)]) == 2
        assert capsys.readouterr().err == f"seedlm-fpga image: error: {message}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.seedlm"]


def test_image_command_packed(tmp_path, capsys):
    # format §5.4: 3 blocks of 36 bits back to back = 108 bits, R = 2 beats of 64 per row
    path = tmp_path / "m.seedlm"
    sample_container(path)
    enc = read_container(path).compressed["layers.0.w2"]
    out = tmp_path / "w2.bin"
    assert main(["image", str(path), "--tensor", "layers.0.w2", "--bus-bits", "64", "--image", "packed",
                 "-o", str(out)]) == 0
    assert out.read_bytes() == packed_memory_image(enc.seeds, enc.x, enc.q, enc.preset, 64)
    assert ("bus 64 bits: blocks packed across beats, R = 2 beats/row, 10 beats, 80 bytes, 4.267 bits/weight"
            in capsys.readouterr().out)
