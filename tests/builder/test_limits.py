"""Issue 13 on the builder: bounded cost of long runs (item 9), clear vocabulary-size limits
(item 10), no tokenizer from whitespace (item 11), and ``--force`` that replaces only a
tokenizer directory (item 5)."""

from __future__ import annotations

import os
import warnings

import pytest

from hypertok import BuildConfig, HyperTokError, build
from hypertok.builder.corpus import count_corpus
from hypertok.builder.pretokenize import MAX_UNIT_CHARS, MAX_WORD_CHARS

from ..conftest import TINY_TEXT

CFG = dict(vocab_size=900, mode="word", min_ngram_count=5)


@pytest.mark.parametrize("ch", ["=", "\x00", "7", "_", "ж"])
def test_long_runs_are_counted_in_bounded_pieces(tmp_path, ch):
    """A scale property, counted, not timed (timings belong in experiments/). Before issue 13 a
    run of 20,000 '=' was one 20,000-character candidate that pruning walked from every
    position: cost grew with the square of the run. Now a run is cut into units of at most
    MAX_UNIT_CHARS (MAX_WORD_CHARS for letters), so the number of units grows linearly with
    the run and the longest candidate (unit or n-gram) does not grow at all."""
    longest, n_units = {}, {}
    for n in (0, 2_000, 20_000):
        corpus = tmp_path / f"{n}.txt"
        corpus.write_text(TINY_TEXT * 3 + ch * n + "\n", encoding="utf-8")
        counts = count_corpus([corpus], BuildConfig(**CFG))
        longest[n] = max(map(len, [*counts.units, *counts.ngrams]))
        n_units[n] = sum(counts.units.values())
    bound = MAX_WORD_CHARS if ch.isalpha() else MAX_UNIT_CHARS
    for n in (2_000, 20_000):
        assert n_units[n] - n_units[0] == -(-n // bound), (n, n_units)
    assert longest[2_000] == longest[20_000] <= 4 * MAX_WORD_CHARS, longest


def test_a_build_over_long_runs_keeps_its_entries_short_and_is_lossless(tmp_path):
    corpus = tmp_path / "runs.txt"
    text = TINY_TEXT * 30 + "=" * 20_000 + "\n" + "\x00" * 20_000 + "\n"
    corpus.write_text(text, encoding="utf-8")
    with pytest.warns(UserWarning):
        tok = build([corpus], tmp_path / "o", BuildConfig(**CFG))
    assert max(len(e.surface) for e in tok.entries) <= 4 * MAX_WORD_CHARS
    assert tok.decode(tok.encode(text)) == text


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
