"""seedlm_fpga.core.files: atomic writes with the user's umask, nothing left behind on failure."""
import os
import stat
import subprocess
import sys

import pytest

from seedlm_fpga.core.files import atomic_write, current_umask, write_bytes_atomic, write_text_atomic

WRITE_UNDER_UMASK = """
import os, stat, sys
os.umask(int(sys.argv[1], 8))
from seedlm_fpga.core.files import current_umask, write_bytes_atomic, write_text_atomic
assert current_umask() == int(sys.argv[1], 8)
write_bytes_atomic(sys.argv[2] + ".bin", b"x")
write_text_atomic(sys.argv[2] + ".txt", "x")
print(oct(stat.S_IMODE(os.stat(sys.argv[2] + ".bin").st_mode)), oct(stat.S_IMODE(os.stat(sys.argv[2] + ".txt").st_mode)))
"""


@pytest.mark.parametrize("umask, mode", [("022", 0o644), ("077", 0o600), ("002", 0o664)])
def test_final_file_gets_the_umask_permissions(tmp_path, umask, mode):
    out = subprocess.run([sys.executable, "-c", WRITE_UNDER_UMASK, umask, str(tmp_path / "f")],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == [oct(mode), oct(mode)]


def test_umask_read_leaves_it_unchanged():
    old = os.umask(0o027)
    try:
        assert current_umask() == 0o027
        assert current_umask() == 0o027
    finally:
        os.umask(old)


def test_writes_and_replaces(tmp_path):
    p = tmp_path / "a.json"
    write_text_atomic(p, "one\n")
    write_text_atomic(p, "two\n")
    assert p.read_text() == "two\n"
    write_bytes_atomic(p, b"\x00\xff")
    assert p.read_bytes() == b"\x00\xff"
    assert os.listdir(tmp_path) == ["a.json"]


def test_exception_leaves_target_unchanged_and_no_temp(tmp_path):
    p = tmp_path / "keep.bin"
    p.write_bytes(b"old")
    before = stat.S_IMODE(os.stat(p).st_mode)
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_write(p) as f:
            f.write(b"half of the new cont")
            raise RuntimeError("boom")
    assert p.read_bytes() == b"old"
    assert stat.S_IMODE(os.stat(p).st_mode) == before
    assert os.listdir(tmp_path) == ["keep.bin"]


def test_failed_write_creates_nothing(tmp_path):
    p = tmp_path / "new.txt"
    with pytest.raises(TypeError):
        write_text_atomic(p, b"bytes are not text")
    assert os.listdir(tmp_path) == []


def test_missing_folder_raises_and_creates_nothing(tmp_path):
    with pytest.raises(OSError, match="cannot write .No such file or directory"):  # UserOSError: one line
        write_bytes_atomic(tmp_path / "no" / "such" / "f", b"x")
    assert os.listdir(tmp_path) == []


def test_only_write_modes():
    with pytest.raises(ValueError, match="'r'"):
        with atomic_write("x", "r"):
            pass
