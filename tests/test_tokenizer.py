"""The llama2.c tokenizer: BPE against a literal transcription of llama2.c's encode, counts from
the data README, round trips, the token cache."""
import struct

import numpy as np
import pytest

from seedlm_fpga.evaluation import tokenizer as tk
from seedlm_fpga.errors import UserError

from example_data import example_file


def llama2c_encode(tok: tk.Tokenizer, text: str) -> list[int]:
    """llama2.c's run.c encode, O(n^2): rescan for the best pair after every merge."""
    lookup = {p: i for i, p in reversed(list(enumerate(tok.pieces)))}
    ids = [lookup[b" "]]
    for ch in text:
        b = ch.encode()
        ids += [lookup[b]] if b in lookup else [x + 3 for x in b]
    while True:
        best, at, merged = -1e10, -1, -1
        for i in range(len(ids) - 1):
            m = lookup.get(tok.pieces[ids[i]] + tok.pieces[ids[i + 1]])
            if m is not None and tok.scores[m] > best:
                best, at, merged = tok.scores[m], i, m
        if at < 0:
            return ids
        ids[at:at + 2] = [merged]


def write_tokenizer(path, pieces: list[bytes], scores: list[float]) -> None:
    data = struct.pack("<i", max(map(len, pieces)))
    for p, s in zip(pieces, scores):
        data += struct.pack("<fi", s, len(p)) + p
    path.write_bytes(data)


def toy_tokenizer(tmp_path) -> tk.Tokenizer:
    """Specials, 256 byte fallbacks, then single characters and merges with chosen scores."""
    pieces = [b"<unk>", b"\n<s>\n", b"\n</s>\n"] + [b"<0x%02X>" % i for i in range(256)]
    extra = {b" ": 0.0, b"a": 0.0, b"b": 0.0, b"ab": -1.0, b"ba": -1.0, b" a": -2.0, b"aba": -0.5,
             b"\xc3\xa9": 0.0}
    path = tmp_path / "tok.bin"
    write_tokenizer(path, pieces + list(extra), [0.0] * len(pieces) + list(extra.values()))
    return tk.Tokenizer.load(path)


def test_merges_follow_llama2c_on_a_toy_vocabulary(tmp_path):
    tok = toy_tokenizer(tmp_path)
    ids = {p: i for i, p in enumerate(tok.pieces)}
    # "abab": " a" (-2), ab, ba, ab (-1): the leftmost of the tie wins -> [" ", ab, a, b];
    # then ab + a = "aba" (-0.5) -> [" ", aba, b]
    assert tok.encode("abab") == [ids[b" "], ids[b"aba"], ids[b"b"]]
    # "aba": ab merges first (leftmost of the tie), then "ab"+"a" = "aba" (-0.5).
    assert tok.encode("aba") == [ids[b" "], ids[b"aba"]]
    # characters outside the vocabulary fall back to their UTF-8 bytes (id = byte + 3)
    # (the dummy prefix merges too: " " + "a" = " a")
    assert tok.encode("a\u00e9z\u20ac") == [ids[b" a"], ids[b"\xc3\xa9"], ord("z") + 3,
                                            0xE2 + 3, 0x82 + 3, 0xAC + 3]
    assert tok.encode("") == []
    assert tok.encode("", bos=True, eos=True) == [tk.BOS, tk.EOS]
    for text in ["abab", "bbaab aba", "ab\u00e9ba", "a" * 17]:
        assert tok.encode(text) == llama2c_encode(tok, text)


def test_real_tokenizer_matches_llama2c_and_round_trips():
    tok = tk.Tokenizer.load(example_file("tok512.bin"), 512)
    stories = tk.read_stories(example_file("tinystories_val.txt"), 5)
    for story in stories[:2]:
        assert tok.encode(story) == llama2c_encode(tok, story)
    for story in stories:
        assert tok.decode([tk.BOS] + tok.encode(story)) == story  # BOS drops the dummy-prefix space
    assert tok.decode([tk.BOS] + tok.encode("Caf\u00e9 \u2603!")) == "Caf\u00e9 \u2603!"


def test_first_100_stories_predict_32997_tokens(tmp_path, monkeypatch):
    """The data README's count: BOS + story (at most 512 tokens), every position after BOS."""
    monkeypatch.setenv("SEEDLM_FPGA_CACHE", str(tmp_path))
    tok = tk.Tokenizer.load(example_file("tok512.bin"), 512)
    text = example_file("tinystories_val.txt")
    encoded = tk.encode_stories(text, tok, 100)
    assert len(encoded) == 100
    assert sum(min(len(s) + 1, 512) - 1 for s in encoded) == 32997
    cached = list(tmp_path.glob("tokens-*-100.npz"))
    assert len(cached) == 1
    again = tk.encode_stories(text, tok, 100)
    assert all(np.array_equal(a, b) for a, b in zip(encoded, again))


def test_cache_is_keyed_by_text(tmp_path, monkeypatch):
    monkeypatch.setenv("SEEDLM_FPGA_CACHE", str(tmp_path / "cache"))
    tok = toy_tokenizer(tmp_path)
    text = tmp_path / "t.txt"
    text.write_text("ab\n<|endoftext|>\n\nba ab\n<|endoftext|>\n")
    assert [list(s) for s in tk.encode_stories(text, tok, None)] == [tok.encode("ab"), tok.encode("ba ab")]
    text.write_text("aa\n<|endoftext|>\n")
    assert [list(s) for s in tk.encode_stories(text, tok, None)] == [tok.encode("aa")]


def test_bad_tokenizer_files(tmp_path):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(struct.pack("<i", 4) + struct.pack("<fi", 0.0, 99) + b"ab")
    with pytest.raises(UserError, match=r"^.*bad.bin: not a llama2.c tokenizer \(truncated at byte 4\)$"):
        tk.Tokenizer.load(bad)
    tok = tmp_path / "tok.bin"
    toy_tokenizer(tmp_path)
    with pytest.raises(UserError, match=r"tok.bin: tokenizer has 267 pieces, the model expects 512$"):
        tk.Tokenizer.load(tok, 512)
