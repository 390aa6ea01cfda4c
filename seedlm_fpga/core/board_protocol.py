"""The framed byte protocol of a board that holds a model's weights and computes GEMVs (format §12).

One place for the protocol: the hardware (`hdl.board_top`), the host client below and
`seedlm-fpga board-run` all take their constants, layouts and the image from here.

    image = BoardImage.build(tensors, bus_bits=32)      # tensors: [(name, EncodedTensor)]
    client = BoardClient(port, image)                   # port: .write(bytes), .read(n) -> bytes
    client.check_info()                                 # the board holds this image
    Y = client.gemv(index, acts)                        # exact integers, format §6
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from seedlm_fpga.core.engine_shape import DesignConfig
from seedlm_fpga.core.reference import EncodedTensor, memory_image

#: first byte of every host -> board frame, and of every board -> host reply
HOST_SYNC, BOARD_SYNC = 0xA5, 0x5A
#: commands (frame byte 1)
CMD_INFO, CMD_GEMV = 0x01, 0x02
#: reply status (reply byte 1)
STATUS_OK, STATUS_BAD_COMMAND, STATUS_BAD_TENSOR, STATUS_BAD_LENGTH = 0x00, 0x01, 0x02, 0x03
STATUS_TEXT = {STATUS_OK: "ok", STATUS_BAD_COMMAND: "unknown command", STATUS_BAD_TENSOR: "no such tensor",
               STATUS_BAD_LENGTH: "payload length is not the tensor's cols (INFO: not 0)"}
#: frame header: sync, command, tensor index, payload length (u16 little-endian)
HEADER_BYTES = 5
MAX_TENSORS = 255
MAX_PAYLOAD = 0xFFFF
#: the UART's rate on the ULX3S-85F (8N1: 10 line bits per byte); 25 clocks per bit at 25 MHz
BAUD = 1_000_000
LINE_BITS_PER_BYTE = 10
#: the protocol carries int8 activations, one byte each
ACT_BITS = 8
#: clock cycles without a byte after which the board finishes a frame's payload itself (GEMV:
#: the missing activations are zeros and the reply is still sent; a bad frame: the skip ends);
#: 2^21 cycles = 84 ms at 25 MHz
FRAME_TIMEOUT_CYCLES = 1 << 21
#: INFO reply after sync and status: tensor count, Y bytes, image id (u32 little-endian)
INFO_BYTES = 6


@dataclass(frozen=True)
class BoardTensor:
    """Where one tensor's format §5.3 image lies in the board's weight memory (in W-bit words)."""
    name: str
    rows: int
    cols: int
    base: int       # first word
    beats: int      # rows * R words


@dataclass(frozen=True)
class BoardImage:
    """Every tensor's beat image back to back in one W-bit memory, and the table that finds them."""
    config: DesignConfig
    tensors: tuple[BoardTensor, ...]
    words: tuple[int, ...]      # the memory, one W-bit integer per word

    @classmethod
    def build(cls, tensors: list[tuple[str, EncodedTensor]], bus_bits: int) -> "BoardImage":
        """Tensors in the given order (index i = the i-th); they must share one preset."""
        if not 1 <= len(tensors) <= MAX_TENSORS:
            raise ValueError(f"a board holds 1..{MAX_TENSORS} tensors, got {len(tensors)}")
        presets = {t.preset.name for _, t in tensors}
        if len(presets) != 1:
            raise ValueError(f"the tensors mix presets ({', '.join(sorted(presets))}): one engine runs one")
        max_cols = max(t.shape[1] for _, t in tensors)
        if max_cols > MAX_PAYLOAD:
            raise ValueError(f"rows of {max_cols} columns do not fit a frame's payload ({MAX_PAYLOAD} bytes)")
        cfg = DesignConfig(preset=tensors[0][1].preset.name, bus_bits=bus_bits, act_bits=ACT_BITS,
                           max_cols=max_cols)
        table, words, nbytes = [], [], bus_bits // 8
        for name, t in tensors:
            image = memory_image(t.seeds, t.x, t.q, t.preset, bus_bits)
            beats = len(image) // nbytes
            table.append(BoardTensor(name, t.shape[0], t.shape[1], len(words), beats))
            words += [int.from_bytes(image[i * nbytes:(i + 1) * nbytes], "little") for i in range(beats)]
        return cls(cfg, tuple(table), tuple(words))

    @property
    def y_bits(self) -> int:
        return self.config.seedlm.y_bits

    @property
    def y_bytes(self) -> int:
        return -(-self.y_bits // 8)

    @property
    def image_id(self) -> int:
        """First 4 bytes (little-endian) of the sha256 of the table and the memory: INFO returns it."""
        h = hashlib.sha256()
        h.update(self.config.bus_bits.to_bytes(2, "little"))
        for t in self.tensors:
            h.update(b"".join(v.to_bytes(4, "little") for v in (t.rows, t.cols, t.base, t.beats)))
        nbytes = self.config.bus_bits // 8
        h.update(b"".join(w.to_bytes(nbytes, "little") for w in self.words))
        return int.from_bytes(h.digest()[:4], "little")

    def info_payload(self) -> bytes:
        """The INFO reply's payload (after sync and status)."""
        return bytes([len(self.tensors), self.y_bytes]) + self.image_id.to_bytes(4, "little")

    def index(self, name: str) -> int:
        for i, t in enumerate(self.tensors):
            if t.name == name:
                return i
        raise KeyError(name)


def frame(command: int, index: int, payload: bytes = b"") -> bytes:
    """One host -> board frame."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    return bytes([HOST_SYNC, command, index]) + len(payload).to_bytes(2, "little") + payload


def gemv_frame(index: int, acts) -> bytes:
    """GEMV on tensor `index` with int8 activations (one byte each, two's complement)."""
    a = np.asarray(acts, dtype=np.int64)
    if a.size and (a.min() < -128 or a.max() > 127):
        raise ValueError("activations must be int8 (-128..127)")
    return frame(CMD_GEMV, index, a.astype(np.int8).tobytes())


def decode_y(data: bytes, y_bytes: int) -> list[int]:
    """Y values (little-endian two's complement, `y_bytes` each) from a GEMV reply's payload."""
    return [int.from_bytes(data[i:i + y_bytes], "little", signed=True) for i in range(0, len(data), y_bytes)]


class BoardError(RuntimeError):
    """The board answered with an error status, or not as the protocol says."""


class BoardClient:
    """The host side of format §12 over any byte port with ``write(bytes)`` and ``read(n)``.

    One frame in flight at a time: each call sends a frame and reads its whole reply.
    """

    def __init__(self, port, image: BoardImage):
        self.port, self.image = port, image

    def _read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.port.read(n - len(data))
            if not chunk:
                raise BoardError(f"the board stopped answering ({len(data)} of {n} bytes)")
            data += chunk
        return data

    def _reply(self) -> None:
        sync, status = self._read(2)
        if sync != BOARD_SYNC:
            raise BoardError(f"reply starts with 0x{sync:02X}, not 0x{BOARD_SYNC:02X}")
        if status != STATUS_OK:
            raise BoardError(f"board error 0x{status:02X}: {STATUS_TEXT.get(status, 'unknown status')}")

    def info(self) -> bytes:
        self.port.write(frame(CMD_INFO, 0))
        self._reply()
        return self._read(INFO_BYTES)

    def check_info(self) -> None:
        """Raise BoardError unless the board holds exactly this image (tensor count, Y width, id)."""
        got, want = self.info(), self.image.info_payload()
        if got != want:
            raise BoardError(f"the board holds another image: INFO {got.hex()}, this model {want.hex()} "
                             f"(tensors, Y bytes, image id); deploy this model's bitstream")

    def gemv(self, index: int, acts) -> list[int]:
        """Y = W_index a, exact (format §6), computed by the board."""
        t = self.image.tensors[index]
        self.port.write(gemv_frame(index, acts))
        self._reply()
        return decode_y(self._read(t.rows * self.image.y_bytes), self.image.y_bytes)
