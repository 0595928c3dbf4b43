"""hypertok.files: atomic writes and directories, read_text errors, hashes, versions."""

from __future__ import annotations

import hashlib
import os

import pytest

from hypertok.errors import HyperTokError
from hypertok.files import atomic_dir, atomic_write, library_versions, sha256_file
from hypertok.text import read_text


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
        read_text(bad, flag="--encoding")
    with pytest.raises(HyperTokError, match=r"byte offset 20.*convert the file to UTF-8 first") as e:
        read_text(bad)  # issue 24: a command without --encoding is not told to pass it
    assert "--encoding" not in str(e.value)
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


# ------------------------------------------------------------------ issue 13: leftovers, files, checks

def _dead_pid() -> int:
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(p.stdout)


def test_leftovers_of_a_killed_write_are_cleaned_up_on_the_next(tmp_path):
    from hypertok.files import atomic_dir, atomic_write

    pid = _dead_pid()
    (tmp_path / f".a.txt.tmp-{pid}").write_text("half")
    (tmp_path / f".tok.tmp-{pid}-0a1b2c3d").mkdir()
    (tmp_path / f".tok.saving-{pid}-0a1b2c3d").mkdir()
    (tmp_path / f".tok.old-{pid}").mkdir()
    (tmp_path / ".tok.notes").write_text("not ours")  # not a name HyperTok writes: kept
    atomic_write(tmp_path / "a.txt", "x")
    (tmp_path / "tok").mkdir()
    with atomic_dir(tmp_path / "tok") as tmp:
        (tmp / "f").write_text("1")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".tok.notes", "a.txt", "tok"]


def test_an_old_folder_is_put_back_when_the_kill_came_before_the_rename(tmp_path):
    from hypertok.files import clean_leftovers

    old = tmp_path / f".tok.old-{_dead_pid()}"
    old.mkdir()
    (old / "vocab.jsonl").write_text("v")
    clean_leftovers(tmp_path / "tok")
    assert (tmp_path / "tok" / "vocab.jsonl").read_text() == "v" and not old.exists()


def test_atomic_dir_never_replaces_a_file(tmp_path):
    f = tmp_path / "out"
    f.write_text("user data")
    with pytest.raises(HyperTokError, match="is a file"):
        with atomic_dir(f):
            pass
    assert f.read_text() == "user data" and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_check_out_finds_bad_outputs_first(tmp_path):
    from hypertok.files import check_out

    (tmp_path / "f").write_text("x")
    for bad, match in (("", "empty"), (tmp_path / "f", "is a file"), (tmp_path / "f" / "sub", "is a file"),
                       ("/proc/hypertok-out", "cannot write")):
        with pytest.raises(HyperTokError, match=match):
            check_out(bad)
    assert check_out(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


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


# ------------------------------------------------------------------ issue 24: never through a link, never a user's results

def test_outputs_never_follow_a_link_out_of_their_folder(tmp_path):
    from hypertok.files import check_no_links, link_on_the_way

    out, outside = tmp_path / "out", tmp_path / "outside"
    out.mkdir(), outside.mkdir()
    (outside / "precious.txt").write_bytes(b"kept")
    (out / "data").symlink_to(outside)
    (out / "log.jsonl").symlink_to(outside / "precious.txt")
    (out / "real").mkdir()
    assert link_on_the_way(out, "data/train.bin") == out / "data" and link_on_the_way(out, "real/x") is None
    for name in ("data", "data/train.bin", "log.jsonl"):
        with pytest.raises(HyperTokError, match=r"is a symbolic link; HyperTok writes only inside --out .*never "
                                                r"through a link"):
            check_no_links(out, [name])
    check_no_links(out, ["real/x", "new.txt"])
    assert (outside / "precious.txt").read_bytes() == b"kept" and sorted(p.name for p in outside.iterdir()) == [
        "precious.txt"]


def test_a_results_folder_keeps_a_users_files(tmp_path):
    from hypertok.files import check_results_out

    def own(r):
        return r.get("what") == "hypertok compare"

    names = ["results.json", "results.md"]
    out = tmp_path / "res"
    assert check_results_out(out, names, "hypertok compare", own) == out  # new: fine
    out.mkdir()
    (out / "notes.txt").write_bytes(b"mine")
    check_results_out(out, names, "hypertok compare", own)  # other files of the user: written beside
    (out / "results.md").write_bytes(b"my table")
    with pytest.raises(HyperTokError, match=r"holds results.md, which `hypertok compare` did not write and would "
                                            r"replace; move it away, or choose another --out"):
        check_results_out(out, names, "hypertok compare", own)
    (out / "results.json").write_text('{"what": "something else"}')
    with pytest.raises(HyperTokError, match="holds results.json, results.md, which"):
        check_results_out(out, names, "hypertok compare", own)
    (out / "results.json").write_text('{"what": "hypertok compare"}')  # an earlier run's: written again
    check_results_out(out, names, "hypertok compare", own)
    assert (out / "results.md").read_bytes() == b"my table" and (out / "notes.txt").read_bytes() == b"mine"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux's /dev/full (every write fails with ENOSPC)")
def test_native_writers_on_a_full_disk_fail_in_one_line():
    """Issue 24, item 10: tokenizers and torch.save report a full disk as Exception / RuntimeError, not
    OSError; native_write makes each one HyperTokError naming the file. Real writes to /dev/full."""
    from tokenizers import Tokenizer, models

    from hypertok.files import native_write

    with pytest.raises(HyperTokError, match=r"tok.json: cannot write the tokenizer \(No space left on device"):
        with native_write("tok.json", "the tokenizer"):
            Tokenizer(models.BPE()).save("/dev/full")
    torch = pytest.importorskip("torch")
    with pytest.raises(HyperTokError, match=r"ck.pt: cannot write the checkpoint .*disk full"):
        with native_write("ck.pt", "the checkpoint"):
            torch.save({"w": torch.zeros(1000)}, "/dev/full")
    with pytest.raises(TypeError):  # a bug is not a full disk
        with native_write("x", "x"):
            raise TypeError("unsupported operand")
