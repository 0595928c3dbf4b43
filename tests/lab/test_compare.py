"""hypertok compare and the registry's baselines on tiny tokenizers built from text written here.

Everything is small: a few KB of generated Russian, vocabularies of a few hundred
tokens, one timed run per throughput figure. No timing is asserted.
"""

import json
import re
import random
import sys

import numpy as np
import pytest

from hypertok import BuildConfig, HyperTokError, build
from hypertok import registry as R
from hypertok.lab import compare as C
from hypertok.lab import metrics as M

WORDS = ("он она мы стол стола столу дом дома дому был была было сказал сказала потому что в на и не "
         "его её день ночь город города человек люди время рука руки глаза слово").split()
SIZE = 1000


def make_text(seed: int, n_lines: int) -> str:
    rng = random.Random(seed)
    lines = []
    for _ in range(n_lines):
        words = [rng.choice(WORDS) for _ in range(rng.randint(4, 12))]
        words[0] = words[0].capitalize()
        lines.append(" ".join(words) + rng.choice([".", "!", "?", ", – сказал он."]))
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    d = tmp_path_factory.mktemp("lab")
    train = d / "train.txt"
    train.write_text(make_text(0, 150), encoding="utf-8")
    text = d / "text.txt"
    text.write_text(make_text(1, 40) + "Ёж 🙂 café\n", encoding="utf-8")
    tok_dir = d / "tok"
    tok = build([train], tok_dir, BuildConfig(vocab_size=SIZE, mode="word"))
    # A few KB of text may hold fewer candidates than SIZE: the trained baselines follow len(tok).
    return {"dir": d, "train": train, "text": text, "tok": tok_dir, "cache": d / "cache", "n": len(tok)}


def test_trained_baselines_train_once_and_round_trip(lab):
    for kind in R.TRAINED_KINDS:
        sub = R.load_tokenizer(kind, train=[lab["train"]], size=SIZE, cache_dir=lab["cache"])
        assert sub.vocab_size <= SIZE
        line = "Он сказал, потому что стол был дома."
        assert sub.decode(sub.encode(line)) == line, kind
        meta = sub.info
        assert meta["corpus_sha256"] == R.corpus_sha256([lab["train"]])
    entries = sorted(p.name for p in lab["cache"].iterdir())
    assert len(entries) == len(R.TRAINED_KINDS) == 5
    # Second call: served from the cache (same entry, no new folder, same ids).
    again = R.trained("hf-bpe", [lab["train"]], SIZE, cache_dir=lab["cache"])
    assert sorted(p.name for p in lab["cache"].iterdir()) == entries
    assert again.encode("стол") == R.trained("hf-bpe", [lab["train"]], SIZE, cache_dir=lab["cache"]).encode("стол")


@pytest.mark.parametrize("kind", ["hypertok", "spm-unigram", "hf-bpe", "bytes"])
def test_token_ends_agree_with_decoded_prefixes(lab, kind):
    if kind == "hypertok":
        sub = R.load_tokenizer(lab["tok"])
    elif kind == "bytes":
        sub = R.load_tokenizer("bytes")
    else:
        sub = R.trained(kind, [lab["train"]], SIZE, cache_dir=lab["cache"])
    line = "Она сказала: города и люди, день и ночь."
    ids = sub.encode(line)
    ends, aligned = M.token_ends([ids], M.piece_lengths(sub.piece_bytes), np.array([len(line.encode())]),
                                 sub.dummy_prefix)
    assert aligned.all()
    data = line.encode()
    for k, end in enumerate(ends.tolist()):
        prefix = sub.decode(ids[: k + 1]).encode()
        if "\ufffd" not in prefix.decode():  # a prefix that ends inside a character cannot be compared
            assert prefix == data[:end], (kind, k)


def test_compare_all_rows(lab, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "brotli", None)  # "not installed": must be skipped, not zero
    out = tmp_path / "out"
    r = C.compare([lab["tok"]], [lab["text"]], [lab["train"]], "all", out, cache_dir=lab["cache"],
                  repeats=1, speed_mb=0.01, quiet=True)
    rows = {row["tokenizer"]: row for row in r["rows"]}
    n = lab["n"]
    assert f"hypertok-word-{n}" in rows
    for name in ["hf-bpe", "hf-unigram", "spm-bpe", "spm-unigram"]:
        assert rows[f"{name}-{n}"]["status"] == "ok"
    for name, row in rows.items():
        if row["status"] == "ok":
            assert row["tokens"] > 0 and row["chars_per_token"] > 0, name
            if name.startswith(("hypertok", "spm", "bytes", "hf-bpe", "mistral")):
                assert row["round_trip"], name
    # Numbers come from the run: bytes has exactly one token per UTF-8 byte of the lines.
    text = lab["text"].read_text(encoding="utf-8")
    assert rows["bytes"]["tokens"] == len(text.encode()) - text.count("\n")
    assert rows["bytes"]["fertility"] == pytest.approx(rows["bytes"]["tokens"] / M.count_words(text))
    comp = {c["method"]: c for c in r["compression"]}
    assert comp["brotli"]["status"] == "skipped" and "brotli" in comp["brotli"]["reason"]
    assert "bytes" not in comp["brotli"]
    assert comp["gzip -9"]["lossless"] and comp["gzip -9"]["bytes"] > 0
    assert comp[f"hypertok-word-{n}: symbol text (UTF-8)"]["lossless"]
    for f in ["results.json", "results.csv", "results.md"]:
        assert (out / f).is_file()
    assert json.loads((out / "results.json").read_text(encoding="utf-8"))["word_rule"] == M.WORD_RULE
    md = (out / "results.md").read_text(encoding="utf-8")
    assert "skipped" in md and "\\w+" in md and "each line is encoded separately" in md.lower()
    assert list(out.glob("*.png"))


def test_missing_mistral_files_are_skipped_with_reason(tmp_path, monkeypatch, lab):
    monkeypatch.setenv("HYPERTOK_MISTRAL_DATA", str(tmp_path / "nowhere"))
    r = C.compare([], [lab["text"]], [], "mistral,bytes,trained", None, repeats=1, quiet=True)
    rows = {row["tokenizer"]: row for row in r["rows"]}
    for name in ["mistral-v1", "mistral-v3", "tekken"]:
        assert rows[name]["status"] == "skipped"
        assert "not found" in rows[name]["reason"]
        assert "tokens" not in rows[name]
    assert rows["hf-bpe"]["status"] == "skipped" and "--train" in rows["hf-bpe"]["reason"]
    assert rows["bytes"]["status"] == "ok"


def test_bad_texts_and_bad_dir_give_error_rows(lab, tmp_path):
    bad = tmp_path / "cp1251.txt"
    bad.write_bytes("Привет, мир".encode("cp1251"))
    empty = tmp_path / "empty.txt"
    empty.write_text(" \n", encoding="utf-8")
    broken = tmp_path / "broken_tok"
    broken.mkdir()
    (broken / "config.json").write_text("{}", encoding="utf-8")
    r = C.compare([lab["tok"], broken], [bad, empty, lab["text"]], [], "bytes,gzip", tmp_path / "o",
                  repeats=1, plots=False, quiet=True)
    by_text = {t["path"]: t for t in r["texts"]}
    assert by_text[str(bad)]["status"] == "error" and "utf-8" in by_text[str(bad)]["reason"].lower()
    assert by_text[str(empty)]["status"] == "error" and "empty" in by_text[str(empty)]["reason"]
    good = [row for row in r["rows"] if row["text"] == str(lab["text"])]
    status = {row["tokenizer"]: row["status"] for row in good}
    assert status[f"hypertok-word-{lab['n']}"] == "ok" and status["bytes"] == "ok"
    assert status[f"hypertok:{broken}"] == "error"
    assert "does not load" in next(row["reason"] for row in good if row["status"] == "error")
    md = (tmp_path / "o" / "results.md").read_text(encoding="utf-8")
    assert "**error:**" in md


def test_parse_baselines_rejects_unknown():
    assert C.parse_baselines("compressors") == ["gzip", "xz", "zstd", "brotli"]
    with pytest.raises(HyperTokError, match="unknown name 'bert'"):
        C.parse_baselines("bytes,bert")


def test_cli_registers_compare(lab, tmp_path, capsys):
    from hypertok.cli import main

    rc = main(["compare", "--tokenizer", str(lab["tok"]), "--text", str(lab["text"]), "--baselines", "bytes",
               "--repeats", "1", "--no-plots", "--out", str(tmp_path / "cli")])
    assert rc == 0
    assert "chars/token" in capsys.readouterr().out
    assert (tmp_path / "cli" / "results.csv").is_file()


def test_compare_writes_again_into_its_folder_but_never_over_a_users_results(lab, tmp_path, capsys):
    """Issue 24: an earlier compare's results are replaced, the user's other files stay, and a
    user's results.md is refused (exit 2, one line) and kept byte for byte."""
    from hypertok.cli import main

    argv = ["compare", "--tokenizer", str(lab["tok"]), "--text", str(lab["text"]), "--baselines", "bytes",
            "--repeats", "1", "--no-plots", "--quiet", "--out"]
    out = tmp_path / "cmp"
    out.mkdir()
    (out / "notes.txt").write_bytes(b"mine")
    assert main([*argv, str(out)]) == 0 and main([*argv, str(out)]) == 0
    assert (out / "notes.txt").read_bytes() == b"mine"
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "results.md").write_bytes(b"my table")
    capsys.readouterr()
    assert main([*argv, str(mine)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds results.md, which `hypertok compare` did not write" in err
    assert (mine / "results.md").read_bytes() == b"my table" and sorted(p.name for p in mine.iterdir()) == ["results.md"]


def test_superbpe_merges_across_spaces(lab):
    """SuperBPE (issue 12): stage 2 learns tokens that cross whitespace; exact size; lossless."""
    sub = R.load_tokenizer("superbpe", train=[lab["train"]], size=SIZE, cache_dir=lab["cache"])
    import importlib

    transition = importlib.import_module("hypertok.registry.trained").SUPERBPE_TRANSITION
    # a tiny corpus may stop stage 1 early; stage 2 then fills the rest of the budget
    assert sub.vocab_size == SIZE and sub.info["transition_vocab_size"] <= int(SIZE * transition)
    surfaces = [(b or b"").decode("utf-8", "replace") for b in sub.piece_bytes]
    assert any(" " in s.strip(" ") for s in surfaces)  # a superword: a space inside the token
    for line in lab["text"].read_text(encoding="utf-8").split("\n"):
        assert sub.decode(sub.encode(line)) == line


def test_baselines_train_on_compressed_corpora(lab, tmp_path):
    """--train takes .xz/.gz/.zst directly (issue 12): the same model as from the plain file."""
    import gzip

    packed = tmp_path / "train.txt.gz"
    packed.write_bytes(gzip.compress(lab["train"].read_bytes()))
    line = "Он сказал, потому что стол был дома."
    for kind in ("hf-bpe", "spm-bpe"):
        plain = R.load_tokenizer(kind, train=[lab["train"]], size=SIZE, cache_dir=lab["cache"])
        gz = R.load_tokenizer(kind, train=[packed], size=SIZE, cache_dir=tmp_path / "cache")
        assert gz.encode(line) == plain.encode(line), kind


def test_compare_shows_which_baseline_trains_and_for_how_long(lab, tmp_path, capsys):
    """Issue 11: compare trained baselines for 8 silent minutes. Now stderr names each baseline
    as it starts, shows a ticking bar of the corpus read, and says how long it took; a second run
    says it reads the cache; --quiet keeps stderr empty and still prints the table."""
    from hypertok.cli import main

    argv = ["compare", "--text", str(lab["text"]), "--train", str(lab["train"]), "--baselines", "hf-bpe,spm-bpe",
            "--vocab-size", "500", "--cache", str(tmp_path / "cache"), "--repeats", "1", "--no-plots"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    for name in ("hf-bpe-500", "spm-bpe-500"):
        assert f"{name}: training on {lab['train']}" in err
        assert f"training {name}" in err  # the bar
        assert re.search(rf"{name}: trained in \d+\.\d s", err), err
    assert "B read [" in err  # hf-bpe's bar counts the corpus bytes it has read
    assert main([*argv, "--out", str(tmp_path / "b")]) == 0
    err = capsys.readouterr().err
    assert "hf-bpe-500: from the cache" in err and "trained in" not in err
    assert main([*argv, "--out", str(tmp_path / "c"), "--quiet", "--cache", str(tmp_path / "cache2")]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "chars/token" in out


def test_compare_config_checks_before_work_and_takes_the_default_corpus(tmp_path, monkeypatch):
    """Issue 23 item 4: compare's flags come from CompareConfig; its check refused ``--train default``
    (the default build corpus, which compare() resolves) as "no such text file" before."""
    import argparse

    text = tmp_path / "dev.txt"
    text.write_text("Мама мыла раму.\n", encoding="utf-8")
    p = argparse.ArgumentParser()
    C.configure(p)
    args = p.parse_args(["--text", str(text), "--out", str(tmp_path / "o"), "--train", "default", "--no-plots",
                         "--vocab-size", "100", "200"])
    cfg = C.dataclass_from_args(C.CompareConfig, args)
    assert (cfg.plots, cfg.vocab_sizes, cfg.tokenizers, cfg.repeats) == (False, [100, 200], [], 5)
    monkeypatch.setenv("HYPERTOK_CORPORA", str(tmp_path))
    (tmp_path / "modern").mkdir()
    (tmp_path / "ruslit").mkdir()
    for name in ("modern/ru-modern-train-0001.txt.xz", "ruslit/train.txt"):
        (tmp_path / name).write_bytes(b"")
    cfg.check()
    (tmp_path / "ruslit" / "train.txt").unlink()
    with pytest.raises(HyperTokError, match="default corpus"):
        cfg.check()
    for bad in ({"repeats": 0}, {"speed_mb": 0.0}, {"vocab_sizes": [0]}, {"texts": [str(tmp_path / "nope.txt")]}):
        with pytest.raises(HyperTokError):
            C.CompareConfig(**{**vars(cfg), **bad, "train": []}).check()
