"""Bit-exact numpy reference of the SeedLM format (format §3, 5.2, 5.3, 6, 7).

Every other implementation (torch encoder, Amaranth hardware, cocotb testbenches)
is checked against these functions. Names follow the format document (docs/format.md): seed, x (exponent code),
q (coefficients), b (per-tensor bias), S, acc, d, Y.

Arrays of blocks use the container's layout: ``seeds[rows, nb]``, ``x[rows, nb]``,
``q[rows, nb, P]``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seedlm_fpga.core.lfsr import basis_S, default_taps


@dataclass(frozen=True)
class Preset:
    """A SeedLM configuration: K-bit LFSR seeds, blocks of C weights, P coefficients."""

    name: str
    K: int
    C: int
    P: int
    taps: tuple[int, ...]

    @property
    def block_bits(self) -> int:
        """B = K + 4 + 4P: bits of one block word (format §5.2)."""
        return self.K + 4 + 4 * self.P

    @property
    def bits_per_weight(self) -> float:
        return self.block_bits / self.C

    @property
    def s_scale(self) -> int:
        """2^(K-1) - 1: U = S / s_scale."""
        return (1 << (self.K - 1)) - 1

    def as_dict(self) -> dict:
        return {"name": self.name, "K": self.K, "C": self.C, "P": self.P, "taps": list(self.taps)}


PRESETS: dict[str, Preset] = {
    "seedlm-4": Preset("seedlm-4", K=16, C=8, P=3, taps=default_taps(16)),
    "seedlm-3": Preset("seedlm-3", K=16, C=12, P=4, taps=default_taps(16)),
}

#: The paper's absolute exponent: w = q * 2^(e - 2) with e in [-8, 7] is x + b with b = -10.
PAPER_BIAS = -10
#: Any explicit bias lies here (2^(x+b) stays a normal float64 for every x; format §3.2).
BIAS_RANGE = (-1000, 1000)
#: The auto bias is b = floor(log2 max|W|) - AUTO_BIAS_OFFSET (format §3.2): x = 15 then holds max|W|.
AUTO_BIAS_OFFSET = 17
#: floor(log2 |w|) over a dtype's nonzero finite values: (smallest subnormal, largest).
DTYPE_EXPONENTS = {"float16": (-24, 15), "bfloat16": (-133, 127), "float32": (-149, 127), "float64": (-1074, 1023)}
#: Largest block length C the container and reference accept (format §3.4); the presets use 8 and 12.
MAX_C = 256
#: Name of a container entry whose parameters are not a named preset's (format §3.4).
CUSTOM_PRESET = "custom"


def bias_range(dtype: str) -> tuple[int, int]:
    """Biases that make sense for a tensor of `dtype` (format §3.2): those the auto rule gives for
    some nonzero finite value of that dtype, within BIAS_RANGE. Beyond it the block steps
    2^(x+b) underflow to 0 or overflow to inf in that dtype (bias 1000: all-inf weights)."""
    lo, hi = DTYPE_EXPONENTS[dtype]
    return max(BIAS_RANGE[0], lo - AUTO_BIAS_OFFSET), min(BIAS_RANGE[1], hi - AUTO_BIAS_OFFSET)


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r} (choose from {', '.join(PRESETS)})") from None


def blocks_per_row(cols: int, C: int) -> int:
    """nb = ceil(cols / C): rows are zero-padded to a multiple of C (format §3)."""
    return -(-cols // C)


# --- format §3: quantizer and block decode ------------------------------------------------

def quantize(t, bias: int) -> tuple[np.ndarray, np.ndarray]:
    """Quantize real coefficients t[..., P] to (x[...], q[..., P]) per format §3.

    E = floor(log2(max_p |t_p|)) exactly (frexp); x = clip(E - 2 - b, 0, 15);
    q = clip(round_half_even(t / 2^(x + b)), -8, 7). All-zero t gives x = 0, q = 0.
    """
    t = np.asarray(t, dtype=np.float64)
    m = np.max(np.abs(t), axis=-1)
    _, e = np.frexp(m)  # m = mant * 2^e, mant in [0.5, 1): floor(log2 m) = e - 1
    E = e.astype(np.int64) - 1
    x = np.clip(E - 2 - bias, 0, 15)
    x = np.where(m > 0, x, 0)
    scale = np.ldexp(1.0, (x + bias).astype(np.int64))
    q = np.clip(np.rint(t / scale[..., None]), -8, 7)  # np.rint rounds half to even
    q = np.where((m > 0)[..., None], q, 0)
    return x.astype(np.uint8), q.astype(np.int8)


def block_acc(seeds, q, preset: Preset) -> np.ndarray:
    """acc[..., c] = sum_p S[c][p] * q_p: the exact integers of format §6 (int64)."""
    S = basis_S(seeds, preset.C, preset.P, preset.K, preset.taps)
    return np.einsum("...cp,...p->...c", S, np.asarray(q, dtype=np.int64))


def decode_blocks(seeds, x, q, bias: int, preset: Preset) -> np.ndarray:
    """w_hat[..., c] = 2^(x + b) / (2^(K-1) - 1) * acc[..., c] (float64)."""
    acc = block_acc(seeds, q, preset).astype(np.float64)
    scale = np.ldexp(1.0, np.asarray(x, dtype=np.int64) + bias) / preset.s_scale
    return acc * scale[..., None]


def decode_tensor(seeds, x, q, bias: int, preset: Preset, cols: int) -> np.ndarray:
    """Rebuild W_hat[rows, cols] (float64) from its blocks; drops the row padding."""
    w = decode_blocks(seeds, x, q, bias, preset)
    rows, nb = np.shape(seeds)
    return w.reshape(rows, nb * preset.C)[:, :cols]


@dataclass
class EncodedTensor:
    """One compressed tensor: its blocks (container layout), bias, preset and original shape."""

    seeds: np.ndarray  # uint16 [rows, nb]
    x: np.ndarray  # uint8 [rows, nb]
    q: np.ndarray  # int8 [rows, nb, P]
    bias: int
    preset: Preset
    shape: tuple[int, int]  # (rows, cols) of the original tensor

    def decode(self) -> np.ndarray:
        """W_hat [rows, cols] (float64), via decode_tensor."""
        return decode_tensor(self.seeds, self.x, self.q, self.bias, self.preset, self.shape[1])


def decode_memory(rows: int, nb: int, preset: Preset) -> int:
    """Peak bytes `decode_tensor` needs: about five int64 arrays of rows * nb * C * P values
    (basis states, their signed form, the einsum) plus the float64 result."""
    return rows * nb * preset.C * (5 * preset.P + 2) * 8


# --- format §5.2: block words ----------------------------------------------------------------

def pack_words(seeds, x, q, preset: Preset) -> np.ndarray:
    """Block words (uint64; B <= 64): seed in [0, K), x in [K, K+4), q_p after, 4 bits each."""
    K, P = preset.K, preset.P
    word = np.asarray(seeds, dtype=np.uint64) & np.uint64((1 << K) - 1)
    word |= (np.asarray(x, dtype=np.uint64) & np.uint64(15)) << np.uint64(K)
    qn = np.asarray(q, dtype=np.int64) & 15
    for p in range(P):
        word |= qn[..., p].astype(np.uint64) << np.uint64(K + 4 + 4 * p)
    return word


def unpack_words(words, preset: Preset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of `pack_words`: (seeds uint16/uint32, x uint8, q int8[..., P])."""
    K, P = preset.K, preset.P
    words = np.asarray(words, dtype=np.uint64)
    seeds = (words & np.uint64((1 << K) - 1)).astype(np.uint16 if K <= 16 else np.uint32)
    x = ((words >> np.uint64(K)) & np.uint64(15)).astype(np.uint8)
    q = np.empty(words.shape + (P,), dtype=np.int8)
    for p in range(P):
        n = ((words >> np.uint64(K + 4 + 4 * p)) & np.uint64(15)).astype(np.int16)
        q[..., p] = np.where(n >= 8, n - 16, n)
    return seeds, x, q


# --- format §5.3: memory images ----------------------------------------------------------------

@dataclass(frozen=True)
class ImageLayout:
    """Where blocks sit in a W-bit memory image: L blocks per beat, R beats per row."""

    bus_bits: int
    block_bits: int
    nb: int

    def __post_init__(self):
        if self.bus_bits % 8:
            raise ValueError(f"bus width must be a multiple of 8 bits, got {self.bus_bits}")
        if self.bus_bits < self.block_bits:
            raise ValueError(f"a {self.bus_bits}-bit bus cannot hold one {self.block_bits}-bit block")

    @property
    def blocks_per_beat(self) -> int:  # L
        return self.bus_bits // self.block_bits

    @property
    def beats_per_row(self) -> int:  # R
        return -(-self.nb // self.blocks_per_beat)

    def bits_per_weight(self, cols: int) -> float:
        """Effective bits per weight, unused bits and row padding counted: R * W / cols."""
        return self.beats_per_row * self.bus_bits / cols


def image_memory(rows: int, nb: int, bus_bits: int, block_bits: int, packed: bool = False) -> int:
    """Peak bytes `memory_image` (or `packed_memory_image`) needs: a byte per image bit, plus
    int64 positions per block."""
    lay = (PackedImageLayout if packed else ImageLayout)(bus_bits, block_bits, nb)
    return rows * lay.beats_per_row * bus_bits + 3 * rows * nb * 8


def _pack_fields(values: np.ndarray, width: int, bus_bits: int, per_beat: int, beats_per_row: int) -> bytes:
    """Lay values[rows, n] (each `width` bits, unsigned) into beats; row r starts at beat r*R."""
    rows, n = values.shape
    total = rows * beats_per_row * bus_bits
    bits = np.zeros(total, dtype=np.uint8)
    j = np.arange(n)
    start = (np.arange(rows)[:, None] * beats_per_row + j // per_beat) * bus_bits + (j % per_beat) * width
    v = values.astype(np.uint64)
    for k in range(width):
        bits[(start + k).ravel()] = ((v >> np.uint64(k)) & np.uint64(1)).ravel().astype(np.uint8)
    return np.packbits(bits, bitorder="little").tobytes()


def _unpack_fields(image: bytes, rows: int, n: int, width: int, bus_bits: int, per_beat: int,
                   beats_per_row: int) -> np.ndarray:
    expected = rows * beats_per_row * bus_bits // 8
    if len(image) != expected:
        raise ValueError(f"memory image has {len(image)} bytes, expected {expected}")
    bits = np.unpackbits(np.frombuffer(image, dtype=np.uint8), bitorder="little")
    j = np.arange(n)
    start = (np.arange(rows)[:, None] * beats_per_row + j // per_beat) * bus_bits + (j % per_beat) * width
    out = np.zeros((rows, n), dtype=np.uint64)
    for k in range(width):
        out |= bits[start + k].astype(np.uint64) << np.uint64(k)
    return out


def memory_image(seeds, x, q, preset: Preset, bus_bits: int) -> bytes:
    """The W-bit beat stream of format §5.3 for blocks [rows, nb], as little-endian bytes."""
    seeds = np.asarray(seeds)
    rows, nb = seeds.shape
    lay = ImageLayout(bus_bits, preset.block_bits, nb)
    words = pack_words(seeds, x, q, preset)
    return _pack_fields(words, preset.block_bits, bus_bits, lay.blocks_per_beat, lay.beats_per_row)


def parse_memory_image(image: bytes, preset: Preset, bus_bits: int, rows: int, nb: int):
    """Inverse of `memory_image`: (seeds, x, q) with shapes [rows, nb] and [rows, nb, P]."""
    lay = ImageLayout(bus_bits, preset.block_bits, nb)
    words = _unpack_fields(image, rows, nb, preset.block_bits, bus_bits, lay.blocks_per_beat,
                           lay.beats_per_row)
    return unpack_words(words, preset)


# --- format §5.4: the packed image -------------------------------------------------------------

@dataclass(frozen=True)
class PackedImageLayout:
    """format §5.4 ``packed``: a row's blocks back to back, R = ceil(nb * B / W) beats per row."""

    bus_bits: int
    block_bits: int
    nb: int

    def __post_init__(self):
        if self.bus_bits % 8 or self.bus_bits <= 0:
            raise ValueError(f"bus width must be a positive multiple of 8 bits, got {self.bus_bits}")

    @property
    def beats_per_row(self) -> int:  # R
        return -(-self.nb * self.block_bits // self.bus_bits)

    def bits_per_weight(self, cols: int) -> float:
        """R * W / cols: only the tail of each row's last beat is unused."""
        return self.beats_per_row * self.bus_bits / cols


def _packed_starts(rows: int, nb: int, lay: PackedImageLayout) -> np.ndarray:
    """Bit offset of block (r, j) in the image: r * R * W + j * B."""
    return (np.arange(rows, dtype=np.int64)[:, None] * (lay.beats_per_row * lay.bus_bits)
            + np.arange(nb, dtype=np.int64)[None, :] * lay.block_bits)


def packed_memory_image(seeds, x, q, preset: Preset, bus_bits: int) -> bytes:
    """The format §5.4 packed image of blocks [rows, nb], as little-endian bytes."""
    seeds = np.asarray(seeds)
    rows, nb = seeds.shape
    lay = PackedImageLayout(bus_bits, preset.block_bits, nb)
    words = pack_words(seeds, x, q, preset).astype(np.uint64)
    bits = np.zeros(rows * lay.beats_per_row * bus_bits, dtype=np.uint8)
    start = _packed_starts(rows, nb, lay)
    for k in range(preset.block_bits):
        bits[(start + k).ravel()] = ((words >> np.uint64(k)) & np.uint64(1)).ravel().astype(np.uint8)
    return np.packbits(bits, bitorder="little").tobytes()


def parse_packed_memory_image(image: bytes, preset: Preset, bus_bits: int, rows: int, nb: int):
    """Inverse of `packed_memory_image`: (seeds, x, q)."""
    lay = PackedImageLayout(bus_bits, preset.block_bits, nb)
    expected = rows * lay.beats_per_row * bus_bits // 8
    if len(image) != expected:
        raise ValueError(f"packed memory image has {len(image)} bytes, expected {expected}")
    bits = np.unpackbits(np.frombuffer(image, dtype=np.uint8), bitorder="little")
    start = _packed_starts(rows, nb, lay)
    words = np.zeros((rows, nb), dtype=np.uint64)
    for k in range(preset.block_bits):
        words |= bits[start + k].astype(np.uint64) << np.uint64(k)
    return unpack_words(words, preset)


def baseline_image(weights, bus_bits: int) -> bytes:
    """The 16-bit baseline's stream (format §7/10): W/16 int16 weights per beat, rows on fresh beats."""
    w = np.asarray(weights, dtype=np.int16)
    rows, cols = w.shape
    per_beat = bus_bits // 16
    if per_beat < 1:
        raise ValueError(f"a {bus_bits}-bit bus cannot hold one 16-bit weight")
    R = -(-cols // per_beat)
    return _pack_fields(w.view(np.uint16), 16, bus_bits, per_beat, R)


#: The int16 the project's tools give the baseline (format §7): each matrix scaled to max|w| = 32767.
INT16_MAX = 32767


def to_int16(weights) -> np.ndarray:
    """Real weights as the baseline's int16 (format §7): scaled so max|w| = 32767, rounded half to even."""
    w = np.asarray(weights, dtype=np.float64)
    m = np.max(np.abs(w)) if w.size else 0.0
    return np.rint(w / m * INT16_MAX).astype(np.int16) if m > 0 else np.zeros(w.shape, np.int16)


def activation_beats(acts, act_bits: int, acts_per_beat: int) -> list[int]:
    """Pack an activation vector into beats of N elements (format §10), as Python ints."""
    a = [int(v) for v in np.asarray(acts).ravel()]
    mask = (1 << act_bits) - 1
    beats = []
    for i in range(0, len(a), acts_per_beat):
        beat = 0
        for k, v in enumerate(a[i:i + acts_per_beat]):
            beat |= (v & mask) << (k * act_bits)
        beats.append(beat)
    return beats


# --- format §6 / 7: exact integer GEMV ---------------------------------------------------------

def _int_matvec_exact(terms_bound: int, fn_int64, fn_object):
    return fn_int64() if terms_bound < (1 << 62) else fn_object()


def gemv_seedlm(seeds, x, q, acts, preset: Preset) -> np.ndarray:
    """Y[r] = sum_j (d_j << x_j), d_j = sum_c acc[c] * a[j*C + c] (format §6), exactly.

    `acts` holds integer activations of length <= nb*C (zero-padded here). Returns int64
    when the bound fits, else an object array of Python ints.
    """
    seeds = np.asarray(seeds)
    rows, nb = seeds.shape
    C = preset.C
    a = np.zeros(nb * C, dtype=np.int64)
    acts = np.asarray(acts, dtype=np.int64).ravel()
    if len(acts) > nb * C:
        raise ValueError(f"{len(acts)} activations for rows of {nb * C} padded weights")
    a[:len(acts)] = acts
    acc = block_acc(seeds, q, preset)  # [rows, nb, C], |acc| < 2^20
    d = np.einsum("rjc,jc->rj", acc, a.reshape(nb, C))  # |d| < C * 2^20 * max|a|
    x = np.asarray(x, dtype=np.int64)
    amax = int(np.max(np.abs(a))) if len(a) else 0
    bound = nb * C * (1 << 20) * amax << 15

    def small():
        return np.sum(d << x, axis=1)

    def big():
        return np.array([sum(int(dj) << int(xj) for dj, xj in zip(dr, xr)) for dr, xr in zip(d, x)],
                        dtype=object)

    return _int_matvec_exact(bound, small, big)


def gemv_baseline(weights, acts) -> np.ndarray:
    """Y[r] = sum_c W[r, c] * a[c] for int16 weights (format §7), exactly."""
    w = np.asarray(weights, dtype=np.int64)
    a = np.asarray(acts, dtype=np.int64).ravel()
    a = np.concatenate([a, np.zeros(max(0, w.shape[1] - len(a)), dtype=np.int64)])[: w.shape[1]]
    amax = int(np.max(np.abs(a))) if len(a) else 0
    bound = w.shape[1] * (1 << 15) * amax

    def big():
        return np.array([sum(int(wi) * int(ai) for wi, ai in zip(row, a)) for row in w], dtype=object)

    return _int_matvec_exact(bound, lambda: w @ a, big)


def y_scale(act_scale: float, bias: int, preset: Preset) -> float:
    """y[r] = Y[r] * s_a * 2^b / (2^(K-1) - 1): the one real multiply per output."""
    return act_scale * 2.0 ** bias / preset.s_scale


def seedlm_y_bits(max_cols: int, act_bits: int, preset: Preset) -> int:
    """Two's-complement width that holds any Y of format §6 for rows up to max_cols.

    |acc| <= P * (2^(K-1) - 1) * 8 (S = -2^(K-1) needs state 0, never on the orbit);
    |a| <= 2^(A-1); x <= 15; nb = ceil(max_cols / C) blocks.
    """
    nb = blocks_per_row(max_cols, preset.C)
    bound = nb * preset.C * (preset.P * preset.s_scale * 8) * (1 << (act_bits - 1)) << 15
    return bound.bit_length() + 1


def baseline_y_bits(max_cols: int, act_bits: int) -> int:
    """Width for the 16-bit baseline: |W a| <= cols * 2^15 * 2^(A-1)."""
    bound = max_cols * (1 << 15) * (1 << (act_bits - 1))
    return bound.bit_length() + 1
