"""hypertok.files: atomic writes and directories, read_text errors, hashes, versions."""

from __future__ import annotations

import hashlib

import pytest

from hypertok.errors import HyperTokError
from hypertok.files import atomic_dir, atomic_write, library_versions, read_text, sha256_file


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path):
    p = tmp_path / "a.txt"
    atomic_write(p, "old")
    atomic_write(p, b"new\r\n")
    assert p.read_bytes() == b"new\r\n"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.txt"]


def test_atomic_dir_keeps_the_old_folder_on_failure(tmp_path):
    out = tmp_path / "tok"
    with atomic_dir(out) as tmp:
        (tmp / "x").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_dir(out) as tmp:
            (tmp / "x").write_text("2")
            raise RuntimeError("interrupted")
    assert (out / "x").read_text() == "1"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["tok"]
    with atomic_dir(out) as tmp:
        (tmp / "y").write_text("3")
    assert sorted(x.name for x in out.iterdir()) == ["y"]


def test_read_text_names_file_line_and_offset(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes("строка\nещё\n".encode("utf-8") + "плохо".encode("cp1251"))
    with pytest.raises(HyperTokError, match=r"bad.txt: not valid utf-8 at line 3, byte offset 20.*--encoding"):
        read_text(bad)
    assert read_text(bad, encoding="cp1251").endswith("плохо")
    with pytest.raises(HyperTokError, match="unknown --encoding"):
        read_text(bad, encoding="no-such-codec")
    with pytest.raises(HyperTokError, match="is a folder"):
        read_text(tmp_path)
    crlf = tmp_path / "crlf.txt"
    crlf.write_bytes(b"a\r\nb")
    assert read_text(crlf) == "a\r\nb"


def test_sha256_and_versions(tmp_path):
    p = tmp_path / "x.bin"
    p.write_bytes(b"x" * 3_000_000)
    assert sha256_file(p) == hashlib.sha256(b"x" * 3_000_000).hexdigest()
    v = library_versions(["tokenizers"])
    assert v["python"] and v["tokenizers"]


@pytest.mark.parametrize("suffix", [".xz", ".gz", ".zst"])
def test_read_text_streams_compressed_files(tmp_path, suffix):
    import gzip
    import lzma

    import zstandard

    text = "строка\r\nещё 🙂\n" * 1000
    pack = {".xz": lzma.compress, ".gz": gzip.compress, ".zst": zstandard.ZstdCompressor().compress}[suffix]
    p = tmp_path / f"a.txt{suffix}"
    p.write_bytes(pack(text.encode("utf-8")))
    assert read_text(p) == text
    bad = tmp_path / f"bad.txt{suffix}"
    bad.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])
    with pytest.raises(HyperTokError, match=r"bad.txt\.(xz|gz|zst): damaged or truncated"):
        read_text(bad)
