"""The vocabulary builder: modes, determinism, concepts, and clear errors."""

from __future__ import annotations

import json
import shutil

import pytest

from hypertok import BuildConfig, HyperTok, HyperTokError, build
from hypertok.builder.morphology import analyse
from hypertok.builder.pretokenize import units


def test_units_cover_every_string():
    for s in ["", "  a\t b\r\n__x 12,3 —«ёлка»…\u0301 😀", "Я был здоров, молод.\n"]:
        assert "".join(units(s)) == s


def test_morphology_splits_stem_and_ending():
    a = analyse("столами")
    assert (a.stem, a.ending, a.lemma) == ("стол", "ами", "стол")
    assert analyse("Столами").stem == "Стол"


def test_modes_produce_their_kinds(tiny_tokenizers):
    assert "concept" in tiny_tokenizers["concept"].kinds
    assert "concept" not in tiny_tokenizers["word"].kinds
    for tok in tiny_tokenizers.values():
        assert len(tok) <= 900  # a tiny corpus cannot fill the budget
        assert tok.kinds[:4] == ["special"] * 4 and tok.kinds[4:260] == ["byte"] * 256


def test_morph_mode_covers_paradigms_with_stems(tmp_path):
    import pymorphy3

    morph = pymorphy3.MorphAnalyzer()
    forms = []
    for lemma in ["стол", "книга", "окно", "рука", "читать", "красивый", "город", "работа", "думать", "вопрос"]:
        forms += sorted({f.word for f in morph.parse(lemma)[0].lexeme})
    corpus = tmp_path / "forms.txt"
    corpus.write_text(" ".join(f for f in forms for _ in range(3)) + "\n", encoding="utf-8")
    tok = build([corpus], tmp_path / "m", BuildConfig(vocab_size=600, mode="morph", max_ngram=1))
    assert "stem" in tok.kinds and tok.kinds.count("ending") >= 5
    # Forms without an entry of their own are spelled stem + ending (since issue 12 the budget
    # decides by measured use which forms get whole entries, so which forms split may vary).
    split = [tok.encode(" " + f) for f in forms]
    assert sum(1 for ids in split if len(ids) == 2 and tok.kinds[ids[1]] == "ending"
               and tok.kinds[ids[0]] in ("stem", "word")) >= 10
    tail = build([corpus], tmp_path / "t", BuildConfig(vocab_size=600, mode="morph", max_ngram=1, backbone="tail",
                                                        fallback_share=0.18))
    pieces = [tail.surfaces[i] for i in tail.encode(" столами")]
    assert pieces == [" стол", "ами"], pieces
    stem = tail.entries[tail.encode(" стол")[0]]
    assert stem.kind in ("stem", "word") and stem.lemma == "стол"


def test_known_segmentations(tiny_tokenizers):
    word = tiny_tokenizers["word"]
    assert [word.surfaces[i] for i in word.encode(" было тогда")] == [" было", " тогда"]
    concept = tiny_tokenizers["concept"]
    assert [concept.surfaces[i] for i in concept.encode(" потому что")] == [" потому что"]


def test_build_is_deterministic(tiny_corpus, tiny_tok, tmp_path):
    again = build([tiny_corpus], tmp_path / "again", BuildConfig(vocab_size=900, mode="word", min_ngram_count=5))
    for name in ("vocab.jsonl", "tokenizer.json", "config.json"):
        assert (again.path / name).read_bytes() == (tiny_tok.path / name).read_bytes(), name


def test_config_records_parameters_versions_and_corpus_hash(tiny_tok):
    cfg = json.loads((tiny_tok.path / "config.json").read_text())
    assert cfg["build"]["vocab_size"] == 900 and cfg["build"]["mode"] == "word"
    assert len(cfg["corpus"]["sha256"]) == 64 and cfg["versions"]["tokenizers"]


def test_user_concepts_get_their_symbols(tiny_corpus, tmp_path):
    concepts = tmp_path / "c.json"
    concepts.write_text(json.dumps({"цикл Кребса": "Ⓚ", "любовь": "❤", "в том числе": None}), encoding="utf-8")
    # 600 tokens: the budget is tight, so pruning runs and must keep the user's concepts.
    tok = build([tiny_corpus], tmp_path / "c", BuildConfig(vocab_size=600, mode="concept", concepts=str(concepts)))
    assert len(tok) == 600
    assert tok.to_symbols(" цикл Кребса") == "Ⓚ"
    assert tok.to_symbols(" любовь") == "❤"
    assert tok.decode(tok.encode(" любовь")) == " любовь"
    # Issue 11: each concept is also one token in its sentence-initial form, after a space and at a
    # line's start, each with a symbol of its own (the preferred one stays on the form as written).
    for text in (" в том числе", " В том числе", "В том числе", "Любовь", " Цикл Кребса"):
        assert len(tok.encode(text)) == 1, text
    assert len({tok.to_symbols(t) for t in (" любовь", " Любовь", "Любовь")}) == 3
    assert tok.decode(tok.encode("Любовь\nВ том числе")) == "Любовь\nВ том числе"


def test_concept_forms():
    from hypertok.builder.candidates import concept_forms

    assert concept_forms("в том числе") == [" в том числе", " В том числе", "В том числе"]
    assert concept_forms("ёлка") == [" ёлка", " Ёлка", "Ёлка"]
    assert concept_forms("Москва") == [" Москва", "Москва"]
    assert concept_forms("«цикл»") == [" «цикл»", "«цикл»"]


@pytest.mark.parametrize("content, match", [("[1, 2]", "JSON object"), ("{bad", "not valid"),
                                            ('{"а": 5}', "string or null"), ('{"а": "ab"}', "one code point")])
def test_bad_concept_file(tiny_corpus, tmp_path, content, match):
    concepts = tmp_path / "c.json"
    concepts.write_text(content, encoding="utf-8")
    with pytest.raises(HyperTokError, match=match):
        build([tiny_corpus], tmp_path / "x", BuildConfig(vocab_size=900, mode="concept", concepts=str(concepts)))
    assert not (tmp_path / "x").exists()


def test_non_utf8_corpus_names_file_and_position(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes("строка\nещё\n".encode("utf-8") + "плохо".encode("cp1251"))
    with pytest.raises(HyperTokError, match=r"bad.txt: not valid utf-8 at line 3, byte offset 20.*--encoding"):
        build([bad], tmp_path / "out", BuildConfig(vocab_size=900))
    assert not (tmp_path / "out").exists()
    tok = build([bad], tmp_path / "out", BuildConfig(vocab_size=900, encoding="cp1251", max_ngram=1))
    assert tok.decode(tok.encode("плохо")) == "плохо"


def test_empty_corpus(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(HyperTokError, match="empty corpus"):
        build([empty], tmp_path / "out", BuildConfig(vocab_size=900))
    assert not (tmp_path / "out").exists()


def test_vocab_size_too_small():
    with pytest.raises(HyperTokError, match="too small"):
        BuildConfig(vocab_size=300)


def test_unknown_mode_and_pool():
    with pytest.raises(HyperTokError, match="mode"):
        BuildConfig(mode="bpe")
    with pytest.raises(HyperTokError, match="pool"):
        BuildConfig(symbols="emoji")


def test_existing_output_is_not_overwritten_by_default(tiny_corpus, tiny_tok):
    with pytest.raises(HyperTokError, match="already exists"):
        build([tiny_corpus], tiny_tok.path, BuildConfig(vocab_size=900))


@pytest.fixture
def tok_copy(tiny_tok, tmp_path):
    d = tmp_path / "copy"
    shutil.copytree(tiny_tok.path, d)
    return d


def test_load_rejects_other_format_version(tok_copy):
    cfg = json.loads((tok_copy / "config.json").read_text())
    cfg["version"] = 99
    (tok_copy / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(HyperTokError, match="format version 99"):
        HyperTok.load(tok_copy)


@pytest.mark.parametrize("name", ["vocab.jsonl", "tokenizer.json", "config.json"])
def test_load_rejects_missing_file(tok_copy, name):
    (tok_copy / name).unlink()
    with pytest.raises(HyperTokError, match=f"{name}: missing"):
        HyperTok.load(tok_copy)


@pytest.mark.parametrize("name", ["vocab.jsonl", "tokenizer.json"])
def test_load_rejects_corrupt_file(tok_copy, name):
    with open(tok_copy / name, "ab") as f:
        f.write(b"garbage")
    with pytest.raises(HyperTokError, match="corrupt"):
        HyperTok.load(tok_copy)


def test_load_rejects_missing_directory(tmp_path):
    with pytest.raises(HyperTokError, match="no such tokenizer directory"):
        HyperTok.load(tmp_path / "nope")


def test_symbol_pools():
    from hypertok.builder.symbols import PUA_SIZE, allocate

    surfaces = ["a", "bc"] + [f"w{i}" for i in range(PUA_SIZE)]
    symbols = allocate(surfaces, list(range(len(surfaces))), "auto", excluded={"a"})
    assert len(set(symbols)) == len(surfaces) and symbols[0] == "a"
    with pytest.raises(HyperTokError, match="ran out"):
        allocate(surfaces, list(range(len(surfaces))), "pua", excluded={"a"})
    cjk = allocate(["x", "yz"], [1, 0], "cjk", excluded=set())
    assert cjk == ["x", "一"]


def test_compressed_corpus_builds_the_same_vocabulary(tiny_corpus, tmp_path):
    """A corpus read from .xz/.gz/.zst gives the tokenizer the plain file gives (issue 12)."""
    import gzip
    import lzma

    import zstandard

    from hypertok.builder.corpus import Corpus

    data = tiny_corpus.read_bytes()
    packed = {"xz": lzma.compress(data), "gz": gzip.compress(data), "zst": zstandard.ZstdCompressor().compress(data)}
    plain = Corpus([tiny_corpus])
    lines = list(plain)
    for kind, blob in packed.items():
        p = tmp_path / f"tiny.txt.{kind}"
        p.write_bytes(blob)
        c = Corpus([p])
        assert list(c) == lines and c.n_bytes == plain.n_bytes
    cfg = BuildConfig(vocab_size=900, mode="word", min_ngram_count=5)
    a = build([tiny_corpus], tmp_path / "a", cfg)
    b = build([tmp_path / "tiny.txt.xz"], tmp_path / "b", cfg)
    assert a.surfaces == b.surfaces
    assert (tmp_path / "a" / "tokenizer.json").read_bytes() == (tmp_path / "b" / "tokenizer.json").read_bytes()


def test_folders_take_compressed_text_files(tmp_path):
    from hypertok.text import expand_paths

    for name in ("a.txt.xz", "b.txt", "c.md.gz", "index.tsv.xz", "d.zst"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in expand_paths([tmp_path])] == ["a.txt.xz", "b.txt", "c.md.gz", "d.zst"]


def test_default_corpus_names(tmp_path, monkeypatch):
    from hypertok.text import DEFAULT_CORPUS, resolve_corpus

    monkeypatch.setenv("HYPERTOK_CORPORA", str(tmp_path))
    with pytest.raises(HyperTokError, match="default corpus .* is not in .*--corpus navec"):
        resolve_corpus(["default"])
    (tmp_path / "modern").mkdir()
    (tmp_path / "ruslit").mkdir()
    for name in ("modern/ru-modern-train-0002.txt.xz", "modern/ru-modern-train-0001.txt.xz",
                 "modern/ru-modern-dev.txt.xz", "ruslit/train.txt", "ruslit/dev.txt"):
        (tmp_path / name).write_bytes(b"")
    got = [str(p.relative_to(tmp_path)) for p in resolve_corpus(["default"])]
    assert got == ["modern/ru-modern-train-0001.txt.xz", "modern/ru-modern-train-0002.txt.xz", "ruslit/train.txt"]
    assert len(DEFAULT_CORPUS) == 2  # never the dev shards
    assert resolve_corpus(["navec"]) == []
    with pytest.raises(HyperTokError, match="cannot be combined"):
        resolve_corpus(["navec", "x.txt"])


# -- issue 24, item 6: one writer at a time ------------------------------------------------------

def _snapshot(d):
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def _build_args(tiny_corpus, out, *extra):
    return ["build", "--corpus", str(tiny_corpus), "--vocab-size", "700", "--mode", "word", "--out", str(out), *extra]


def test_a_second_build_fails_on_the_lock_held_by_another_process(tiny_tok, tiny_corpus, tmp_path, capsys):
    """Two `build --force` on one folder: the one that finds the lock held writes nothing and
    says so in one line naming the lock; the folder stays byte-identical."""
    import subprocess
    import sys

    from hypertok.cli import main

    out = tmp_path / "tok"
    shutil.copytree(tiny_tok.path, out)
    (out / "notes.txt").write_text("mine")
    before = _snapshot(out)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from hypertok.files import output_lock\n"
         f"with output_lock({str(out)!r}):\n    print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        assert main(_build_args(tiny_corpus, out, "--force")) == 2
    finally:
        holder.communicate("")
    err = capsys.readouterr().err  # progress bars, then the one error line
    assert "Traceback" not in err and err.count("error") == 1
    assert err.splitlines()[-1] + "\n" == (f"hypertok build: error: {tmp_path / 'tok.lock'}: another hypertok is writing {out} now "
                   "(it holds this lock); wait for it to finish, or choose another output folder\n")
    assert _snapshot(out) == before
    assert holder.returncode == 0 and not (tmp_path / "tok.lock").exists()  # the holder removed it


def test_a_build_takes_and_removes_the_lock(tiny_corpus, tmp_path, monkeypatch):
    import hypertok.core.tokenizer as tokenizer_module
    from hypertok.files import output_lock

    seen = []

    def watching(out):
        seen.append(out)
        return output_lock(out)

    monkeypatch.setattr(tokenizer_module, "output_lock", watching)
    out = tmp_path / "tok"
    build([tiny_corpus], out, BuildConfig(vocab_size=700, mode="word"))
    assert seen == [out] and sorted(p.name for p in tmp_path.iterdir()) == ["tok"]
    with output_lock(out):  # a held lock: a plain save fails too, naming it
        with pytest.raises(HyperTokError, match=r"tok\.lock: another hypertok is writing"):
            HyperTok.load(out).save(out, overwrite=True)


def test_a_build_without_force_never_replaces_a_folder_made_meanwhile(tiny_tok, tmp_path, monkeypatch):
    """Another build finished while this one counted: under the lock the check is made again."""
    import contextlib

    import hypertok.core.tokenizer as tokenizer_module
    from hypertok.files import output_lock

    out = tmp_path / "tok"

    @contextlib.contextmanager
    def other_build_finished_first(o):
        shutil.copytree(tiny_tok.path, out)
        with output_lock(o) as lock:
            yield lock

    monkeypatch.setattr(tokenizer_module, "output_lock", other_build_finished_first)
    with pytest.raises(HyperTokError, match=r"tok already exists; pass --force"):
        HyperTok.load(tiny_tok.path).save(out)
    assert _snapshot(out) == _snapshot(tiny_tok.path)


def test_a_folder_that_appears_right_before_the_rename_is_not_replaced(tiny_tok, tmp_path, monkeypatch):
    """The last check is at the rename itself: a folder made by anyone while the files were
    written stays as it is, and nothing is left beside it."""
    import hypertok.core.tokenizer as tokenizer_module

    out = tmp_path / "tok"
    real = tokenizer_module.write_directory

    def made_meanwhile(o, *args):
        import hypertok.files as files

        real_atomic = files.atomic_dir

        def late(path, replace=True):
            cm = real_atomic(path, replace)
            tmp = cm.__enter__()

            class _Late:
                def __enter__(self):
                    return tmp

                def __exit__(self, *exc):
                    out.mkdir()
                    (out / "theirs.txt").write_text("theirs")
                    return cm.__exit__(*exc)
            return _Late()

        monkeypatch.setattr(files, "atomic_dir", late)
        return real(o, *args)

    monkeypatch.setattr(tokenizer_module, "write_directory", made_meanwhile)
    with pytest.raises(HyperTokError, match=r"tok: appeared while this was being written .* nothing was replaced"):
        HyperTok.load(tiny_tok.path).save(out)
    assert _snapshot(out) == {"theirs.txt": b"theirs"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tok"]
