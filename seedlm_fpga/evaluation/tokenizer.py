"""The llama2.c tokenizer (``tok512.bin`` and friends): reader, BPE encode/decode, token cache.

File format: int32 max_token_length, then for each id a float32 merge score, an int32
byte length and the raw bytes. Ids 0/1/2 are <unk>/BOS/EOS; byte-fallback pieces are
spelled ``<0xXX>``.

Encoding is llama2.c's ``encode``: a dummy-prefix " " token for non-empty text, one token
per UTF-8 character (each byte as ``<0xXX>`` when the character is not in the vocabulary),
then repeatedly merge the adjacent pair whose concatenated piece has the highest score,
the leftmost such pair on ties. llama2.c rescans the whole sequence per merge (O(n^2));
here a heap of candidate pairs over a linked list gives the same merges in O(n log n).

Perplexity evaluation reads the same stories many times, so `encode_stories` caches the
ids on disk, keyed by the text file's sha256, the tokenizer's sha256 and the story count.
"""
from __future__ import annotations

import hashlib
import heapq
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seedlm_fpga.core.files import atomic_write
from seedlm_fpga.errors import UserError

UNK, BOS, EOS = 0, 1, 2
STORY_SEPARATOR = "<|endoftext|>"
_BYTE_PIECE = re.compile(rb"^<0x([0-9A-Fa-f]{2})>$")


@dataclass
class Tokenizer:
    pieces: list[bytes]
    scores: list[float]
    max_token_length: int
    sha256: str = ""
    _ids: dict[bytes, int] = field(default_factory=dict, repr=False)

    def __post_init__(self):
        # First id wins for duplicated pieces, as a binary search over a stable sort would.
        for i, p in enumerate(self.pieces):
            self._ids.setdefault(p, i)

    @property
    def vocab_size(self) -> int:
        return len(self.pieces)

    @classmethod
    def load(cls, path: str | Path, vocab_size: int | None = None) -> "Tokenizer":
        """Read a llama2.c tokenizer file; `vocab_size` (from the model header) when known."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UserError(f"cannot read tokenizer {path}: {exc.strerror}") from None
        pieces, scores, pos = [], [], 4
        try:
            (max_len,) = struct.unpack_from("<i", data, 0)
            while pos < len(data) and (vocab_size is None or len(pieces) < vocab_size):
                score, n = struct.unpack_from("<fi", data, pos)
                if n < 0 or pos + 8 + n > len(data):
                    raise struct.error
                pieces.append(data[pos + 8:pos + 8 + n])
                scores.append(score)
                pos += 8 + n
        except struct.error:
            raise UserError(f"{path}: not a llama2.c tokenizer (truncated at byte {pos})") from None
        if vocab_size is not None and len(pieces) != vocab_size:
            raise UserError(f"{path}: tokenizer has {len(pieces)} pieces, the model expects {vocab_size}")
        if len(pieces) < 259:
            raise UserError(f"{path}: not a llama2.c tokenizer ({len(pieces)} pieces, need at least 259)")
        return cls(pieces, scores, max_len, hashlib.sha256(data).hexdigest())

    # --- encode -------------------------------------------------------------------------

    def encode(self, text: str, bos: bool = False, eos: bool = False) -> list[int]:
        ids = [BOS] if bos else []
        if text:
            ids += self._merge(self._initial_ids(text))
        if eos:
            ids.append(EOS)
        return ids

    def _initial_ids(self, text: str) -> list[int]:
        ids = []
        prefix = self._ids.get(b" ")
        if prefix is not None:  # llama2.c adds the dummy prefix by id; absent means no token
            ids.append(prefix)
        lookup = self._ids
        for ch in text:
            b = ch.encode("utf-8")
            i = lookup.get(b)
            if i is not None:
                ids.append(i)
            else:
                ids.extend(byte + 3 for byte in b)
        return ids

    def _merge(self, ids: list[int]) -> list[int]:
        """Highest-score adjacent merges until none applies (leftmost pair on ties)."""
        n = len(ids)
        if n < 2:
            return ids
        pieces, scores, lookup = self.pieces, self.scores, self._ids
        tok = list(ids)
        nxt = list(range(1, n + 1))
        prv = list(range(-1, n - 1))
        version = [0] * n  # bumped whenever the token at a position changes or dies
        heap: list[tuple[float, int, int, int, int]] = []

        def push(i: int) -> None:
            j = nxt[i]
            if j < n:
                m = lookup.get(pieces[tok[i]] + pieces[tok[j]])
                if m is not None:
                    heapq.heappush(heap, (-scores[m], i, version[i], version[j], m))

        for i in range(n - 1):
            push(i)
        while heap:
            _, i, vi, vj, m = heapq.heappop(heap)
            j = nxt[i] if version[i] == vi else n
            if j >= n or version[j] != vj:
                continue  # stale: one side merged since this pair was pushed
            tok[i] = m
            version[i] += 1
            version[j] += 1
            nxt[i] = nxt[j]
            if nxt[j] < n:
                prv[nxt[j]] = i
            if prv[i] >= 0:
                push(prv[i])
            push(i)
        out, i = [], 0
        while i < n:
            out.append(tok[i])
            i = nxt[i]
        return out

    # --- decode -------------------------------------------------------------------------

    def piece_bytes(self, token: int, prev: int | None = None) -> bytes:
        """llama2.c's ``decode``: strip the leading space after BOS; <0xXX> becomes the byte."""
        piece = self.pieces[token]
        if prev == BOS and piece.startswith(b" "):
            piece = piece[1:]
        m = _BYTE_PIECE.match(piece)
        return bytes([int(m.group(1), 16)]) if m else piece

    def decode(self, ids) -> str:
        """Text of a token sequence; BOS/EOS are dropped, bytes joined before UTF-8 decoding."""
        out, prev = bytearray(), None
        for t in (int(t) for t in ids):
            if t not in (BOS, EOS):
                out += self.piece_bytes(t, prev)
            prev = t
        return out.decode("utf-8", errors="replace")


# --- stories and the token cache ----------------------------------------------------------

def read_stories(path: str | Path, n: int | None = None) -> list[str]:
    """The stories of a text file whose stories each end with a line ``<|endoftext|>``.

    Each story is stripped of surrounding whitespace; empty ones are skipped. A file
    without separators is one story.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read text {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    stories = [s.strip() for s in text.split(STORY_SEPARATOR)]
    stories = [s for s in stories if s]
    return stories if n is None else stories[:n]


def cache_dir() -> Path:
    """$SEEDLM_FPGA_CACHE, else $XDG_CACHE_HOME/seedlm-fpga, else ~/.cache/seedlm-fpga."""
    if os.environ.get("SEEDLM_FPGA_CACHE"):
        return Path(os.environ["SEEDLM_FPGA_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "seedlm-fpga"


def _file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def encode_stories(text_path: str | Path, tokenizer: Tokenizer, n: int | None,
                   use_cache: bool = True, progress=None) -> list[np.ndarray]:
    """Token ids (no BOS) of the first `n` stories, from the cache when present.

    Cache file: ``tokens-<sha256(text)[:16]>-<sha256(tokenizer)[:16]>-<n>.npz`` holding the
    concatenated ids and the story offsets (no pickles).
    """
    key = f"tokens-{_file_sha256(text_path)[:16]}-{tokenizer.sha256[:16]}-{'all' if n is None else n}.npz"
    path = cache_dir() / key
    if use_cache and path.exists():
        try:
            with np.load(path, allow_pickle=False) as z:
                ids, offsets = z["ids"], z["offsets"]
            return [ids[offsets[i]:offsets[i + 1]] for i in range(len(offsets) - 1)]
        except (OSError, KeyError, ValueError):
            pass  # a damaged cache entry is rebuilt below
    stories = read_stories(text_path, n)
    it = stories if progress is None else progress(stories)
    encoded = [np.asarray(tokenizer.encode(s), dtype=np.int32) for s in it]
    if use_cache:
        _write_cache(path, encoded)
    return encoded


def _write_cache(path: Path, encoded: list[np.ndarray]) -> None:
    offsets = np.cumsum([0] + [len(e) for e in encoded]).astype(np.int64)
    ids = np.concatenate(encoded) if encoded else np.zeros(0, dtype=np.int32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as f:
            np.savez(f, ids=ids, offsets=offsets)
    except OSError:
        pass  # a read-only cache dir only costs speed
