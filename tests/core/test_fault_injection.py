"""A rebuild killed at every rename of its move phase (issue 24, item 5): plain ``AutoTokenizer``
loads the old tokenizer whole, the new one whole, or nothing; ``HyperTok.load`` refuses the folder or
loads one of the two whole. Never a mix (a 900-token tokenizer.json beside a 700-token config)."""

from __future__ import annotations

import shutil

import pytest

from hypertok import BuildConfig, HyperTok, build
from hypertok.core.format import check_out_dir, read_directory, write_directory
from hypertok.errors import HyperTokError

from ..fault import Killed, killed_at, renames

transformers = pytest.importorskip("transformers")

TEXT = "Мама мыла раму, а папа читал газету.\nОн сказал: «Нет»."


def _auto(folder):
    try:
        tok = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception:  # noqa: BLE001 - any refusal counts as "does not load"
        return None
    return len(tok), tok.encode(TEXT, add_special_tokens=False)


def _ours(folder):
    try:
        tok = HyperTok.load(folder)
    except HyperTokError:
        return None
    return len(tok), tok.encode(TEXT)


def test_a_killed_rebuild_never_leaves_a_mixed_folder(tiny_tok, tiny_corpus, tmp_path, monkeypatch):
    new_dir = tmp_path / "new"
    build([tiny_corpus], new_dir, BuildConfig(vocab_size=700, mode="word", min_ngram_count=5))
    entries, config, hf = read_directory(new_dir)
    old, new = _auto(tiny_tok.path), _auto(new_dir)
    assert old is not None and new is not None and old != new
    mine_old, mine_new = _ours(tiny_tok.path), _ours(new_dir)

    def fresh(name):
        d = tmp_path / name
        shutil.copytree(tiny_tok.path, d)
        (d / "notes.txt").write_text("mine", encoding="utf-8")
        return d

    n = renames(monkeypatch, lambda: write_directory(fresh("count"), entries, hf, config))
    assert n == 4
    seen = set()
    for k in range(n):
        d = fresh(f"k{k}")
        with monkeypatch.context() as m:
            killed_at(m, k)
            with pytest.raises(Killed):
                write_directory(d, entries, hf, config)
        auto, ours = _auto(d), _ours(d)
        assert auto in (None, old, new), k
        assert ours in (None, mine_old, mine_new), k
        assert (d / "notes.txt").read_text(encoding="utf-8") == "mine"
        check_out_dir(d, overwrite=True)  # build --force may write it again
        seen.add((auto is None, ours is None))
    assert (True, True) in seen  # the kill points in the middle leave a folder nobody loads
