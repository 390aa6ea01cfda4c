"""The board top of format §12 (hdl.board_top) in Amaranth's simulator, against the numpy reference.

Frames are written here byte by byte from format §12's layout, and Y is compared with
`gemv_seedlm` bit for bit; the client (core.board_protocol) is checked against the same bytes.
"""
import numpy as np
import pytest

from seedlm_fpga.core import board_protocol as proto
from seedlm_fpga.core.reference import gemv_seedlm
from seedlm_fpga.sim.board_sim import SimulatedBoardPort

from seedlm_samples import random_encoded

#: (rows, cols): cols below C, not a multiple of N (4 at W = 32) nor of C, one block
SHAPES = [(3, 5), (7, 20), (4, 8), (5, 61)]


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(7)
    tensors = [(f"t{i}", random_encoded(rng, r, c)) for i, (r, c) in enumerate(SHAPES)]
    return tensors, proto.BoardImage.build(tensors, bus_bits=32)


def raw_gemv(port, index: int, acts, y_bytes: int, rows: int) -> list[int]:
    payload = bytes(int(a) & 0xFF for a in acts)
    port.write(bytes([0xA5, 0x02, index]) + len(payload).to_bytes(2, "little") + payload)
    reply = port.read(2 + rows * y_bytes)
    assert reply[:2] == bytes([0x5A, 0x00])
    return [int.from_bytes(reply[2 + r * y_bytes:2 + (r + 1) * y_bytes], "little", signed=True)
            for r in range(rows)]


def test_every_tensor_bit_exact_back_to_back(image):
    tensors, img = image
    port = SimulatedBoardPort(img)
    rng = np.random.default_rng(1)
    for rep in range(2):
        for i, (_, t) in enumerate(tensors):
            # the extremes of int8 on the first pass, random after
            acts = np.where(np.arange(t.shape[1]) % 2, 127, -128) if rep == 0 else \
                rng.integers(-128, 128, t.shape[1])
            y = raw_gemv(port, i, acts, img.y_bytes, t.shape[0])
            assert y == [int(v) for v in gemv_seedlm(t.seeds, t.x, t.q, acts, t.preset)]


def test_info_returns_count_y_bytes_and_image_id(image):
    tensors, img = image
    port = SimulatedBoardPort(img)
    port.write(bytes([0xA5, 0x01, 0, 0, 0]))
    reply = port.read(8)
    assert reply[:4] == bytes([0x5A, 0x00, len(tensors), img.y_bytes])
    assert int.from_bytes(reply[4:], "little") == img.image_id
    proto.BoardClient(port, img).check_info()


def test_bad_frames_get_their_status_and_the_next_frame_still_works(image):
    tensors, img = image
    port = SimulatedBoardPort(img)
    t = tensors[1][1]
    acts = np.arange(t.shape[1]) - 10
    want = [int(v) for v in gemv_seedlm(t.seeds, t.x, t.q, acts, t.preset)]
    cases = [
        (bytes([0xA5, 0x07, 0, 2, 0, 0xA5, 0xA5]), 0x01),             # unknown command, payload skipped
        (bytes([0xA5, 0x02, len(tensors), 1, 0, 0x11]), 0x02),        # no such tensor
        (bytes([0xA5, 0x02, 1, 3, 0, 1, 2, 3]), 0x03),                # length is not the tensor's cols
        (bytes([0xA5, 0x01, 0, 1, 0, 0x00]), 0x03),                   # INFO with a payload
    ]
    for frame, status in cases:
        port.write(b"\x00\x13" + frame)  # bytes before a sync byte are ignored
        assert port.read(2) == bytes([0x5A, status])
        assert raw_gemv(port, 1, acts, img.y_bytes, t.shape[0]) == want
    client = proto.BoardClient(port, img)
    port.write(bytes([0xA5, 0x02, 0x7F, 0, 0]))
    with pytest.raises(proto.BoardError, match="no such tensor"):
        client._reply()


def test_a_payload_that_stops_is_finished_with_zeros_after_the_timeout(image):
    tensors, img = image
    port = SimulatedBoardPort(img, frame_timeout_cycles=300)
    t = tensors[3][1]
    acts = np.arange(t.shape[1]) % 50 - 25
    port.write(bytes([0xA5, 0x02, 3]) + t.shape[1].to_bytes(2, "little") + bytes(int(a) & 0xFF for a in acts[:30]))
    reply = port.read(2 + t.shape[0] * img.y_bytes)
    padded = np.concatenate([acts[:30], np.zeros(t.shape[1] - 30, dtype=np.int64)])
    assert proto.decode_y(reply[2:], img.y_bytes) == [int(v) for v in gemv_seedlm(t.seeds, t.x, t.q, padded, t.preset)]
    port.write(bytes([0xA5, 0x09, 0, 200, 0, 1, 2]))      # a bad frame whose payload stops: skip ends too
    assert port.read(2) == bytes([0x5A, 0x01])
    port.wait(300 + 200)  # the host waits out the timeout (meanwhile its bytes would be skipped)
    assert raw_gemv(port, 3, acts, img.y_bytes, t.shape[0]) == \
        [int(v) for v in gemv_seedlm(t.seeds, t.x, t.q, acts, t.preset)]


def test_through_the_uart_lines(image):
    tensors, img = image
    port = SimulatedBoardPort(img, divisor=4)
    client = proto.BoardClient(port, img)
    client.check_info()
    rng = np.random.default_rng(3)
    for i in (3, 0):
        t = tensors[i][1]
        acts = rng.integers(-128, 128, t.shape[1])
        assert client.gemv(i, acts) == [int(v) for v in gemv_seedlm(t.seeds, t.x, t.q, acts, t.preset)]


def test_image_lays_tensors_back_to_back_and_refuses_mixed_presets(image):
    tensors, img = image
    # W = 32, seedlm-4: one block per word, rows * ceil(cols / 8) words each
    assert [(t.base, t.beats) for t in img.tensors] == [(0, 3), (3, 21), (24, 4), (28, 40)]
    assert len(img.words) == 68 and img.config.max_cols == 61
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="mix presets"):
        proto.BoardImage.build([("a", random_encoded(rng, 2, 24)), ("b", random_encoded(rng, 2, 24, "seedlm-3"))], 64)
