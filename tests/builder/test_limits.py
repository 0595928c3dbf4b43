"""Issue 13 on the builder: bounded cost of long runs (item 9), clear vocabulary-size limits
(item 10), no tokenizer from whitespace (item 11), and ``--force`` that replaces only a
tokenizer directory (item 5)."""

from __future__ import annotations

import os
import time

import warnings

import pytest

from hypertok import BuildConfig, HyperTokError, build

from ..conftest import TINY_TEXT

CFG = dict(vocab_size=900, mode="word", min_ngram_count=5)


def _build_time(tmp_path, name, line):
    corpus = tmp_path / f"{name}.txt"
    corpus.write_text(TINY_TEXT * 30 + line + "\n", encoding="utf-8")
    t0 = time.perf_counter()
    with pytest.warns(UserWarning):
        build([corpus], tmp_path / name, BuildConfig(**CFG))
    return time.perf_counter() - t0


def test_long_runs_of_punctuation_cost_what_ordinary_text_costs(tmp_path):
    """A ratio, not an absolute: 20,000 '=' (or NUL bytes) against a line of words as long.
    Before issue 13 the '=' line took 20x as long, growing with the square of the run."""
    words = ("стол и стул " * 2000)[:20000]
    base = min(_build_time(tmp_path, f"w{i}", words) for i in range(2))
    for name, ch in (("eq", "="), ("nul", "\x00")):
        slow = min(_build_time(tmp_path, f"{name}{i}", ch * 20000) for i in range(2))
        assert slow < 3 * base + 0.5, (name, slow, base)


def test_vocab_size_just_above_the_floor_is_a_clear_error(tmp_path):
    corpus = tmp_path / "many_chars.txt"
    # 300 rare characters (seen once: no token of their own) that the fallback model must hold
    corpus.write_text(TINY_TEXT * 20 + " ".join(chr(c) + chr(c + 1) for c in range(0x4E00, 0x4E00 + 300, 2)) + "\n")
    # the tail fallback (a Unigram over the corpus tail) needs a piece for each of them
    with pytest.raises(HyperTokError, match="too small.*(need|use) at least"):
        build([corpus], tmp_path / "o", BuildConfig(vocab_size=600, mode="word", backbone="tail"))
    assert not (tmp_path / "o").exists()
    # the default BPE backbone spells them with byte tokens instead: the same size builds, losslessly
    text = corpus.read_text()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        tok = build([corpus], tmp_path / "b", BuildConfig(vocab_size=600, mode="word"))
    assert tok.decode(tok.encode(text)) == text


def test_vocab_size_above_what_the_corpus_supports_says_so(tiny_corpus, tmp_path):
    with pytest.raises(HyperTokError, match="too large"):
        BuildConfig(vocab_size=10**12)
    with pytest.warns(UserWarning, match="not 5000: the corpus supports no more"):
        build([tiny_corpus], tmp_path / "o", BuildConfig(vocab_size=5000, mode="word"))


def test_whitespace_only_corpus_is_refused(tmp_path):
    ws = tmp_path / "ws.txt"
    ws.write_text(" \n\t\n   \n" * 100)
    with pytest.raises(HyperTokError, match="only whitespace"):
        build([ws], tmp_path / "o", BuildConfig(vocab_size=900))


@pytest.mark.parametrize("encoding", ["rot13", "base64", "utf-16"])
def test_encodings_that_cannot_read_lines_are_refused(encoding):
    with pytest.raises(HyperTokError, match="encoding"):
        BuildConfig(encoding=encoding)


def test_force_replaces_only_a_tokenizer_directory(tiny_corpus, tiny_tok, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    afile = tmp_path / "afile"
    afile.write_text("keep me too")
    for out in (mine, afile):
        with pytest.raises(HyperTokError, match="not a HyperTok directory|is a file"):
            build([tiny_corpus], out, BuildConfig(**CFG), overwrite=True)
    assert (mine / "notes.txt").read_text() == "keep me" and afile.read_text() == "keep me too"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "mine"]


def test_tokenizer_directories_get_the_umask_not_0700(tiny_tok):
    umask = os.umask(0)
    os.umask(umask)
    assert tiny_tok.path.stat().st_mode & 0o777 == 0o777 & ~umask
