"""Issue 11, conventions users expect: special tokens chosen at build time, and the opt-in NFC
normaliser.

One vocabulary is built here with both (``special_tokens`` and ``normalize="nfc"``) and one
with special tokens only; each test says which behaviour it pins. HyperTok's own encode reads
special tokens only with ``allow_special=True``, and then gives exactly the ids of plain
``tokenizer.json`` (``tokenizers`` and ``transformers``).
"""

from __future__ import annotations

import json
import shutil
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hypertok import BuildConfig, HyperTok, HyperTokError, build
from hypertok.core.format import HASHED_FILES
from hypertok.files import sha256_file

from .reference import encode as reference_encode

CHAT = ["<|im_start|>", "<|im_end|>", "<|endoftext|>"]
DIALOG = "<|im_start|>user\nКак дела?<|im_end|>\n<|im_start|>assistant\nХорошо.<|im_end|><|endoftext|>"
# Characters Unicode 3.2 already had: there `tokenizers`' NFC tables (older than Python 3.11's
# Unicode 14) and unicodedata's agree, by Unicode's normalisation stability policy.
UNICODE_3_2 = st.characters(max_codepoint=0x2FFFF, exclude_categories=("Cs",)).filter(
    lambda c: unicodedata.ucd_3_2_0.category(c) != "Cn")
COMBINING = "\u0300\u0301\u0306\u0308\u0327\u0316\u0334"
RUSSIAN = "абвгдеёжзийклмнопрстуфхцчшщъыьэюя ЁЙ.,\n"


def _property(n):
    return settings(max_examples=n, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                           HealthCheck.too_slow])


@pytest.fixture(scope="module")
def chat_tok(tiny_corpus, tmp_path_factory):
    """Special tokens, no normaliser."""
    return build([tiny_corpus], tmp_path_factory.mktemp("chat") / "tok",
                 BuildConfig(vocab_size=700, mode="word", special_tokens=",".join(CHAT)))


@pytest.fixture(scope="module")
def nfc_tok(tiny_corpus, tmp_path_factory):
    """Special tokens and the NFC normaliser."""
    return build([tiny_corpus], tmp_path_factory.mktemp("nfc") / "tok",
                 BuildConfig(vocab_size=700, mode="word", special_tokens=CHAT, normalize="nfc"))


@pytest.fixture(scope="module")
def chat_file(chat_tok):
    return _file(chat_tok)


def _file(tok):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(tok.path / "tokenizer.json"))


# ------------------------------------------------------------------ special tokens

def test_special_tokens_get_the_last_ids_and_are_listed_everywhere(chat_tok):
    n = len(chat_tok)
    assert n <= 700 and [chat_tok.special_tokens[t] for t in CHAT] == [n - 3, n - 2, n - 1]
    assert [chat_tok.kinds[i] for i in range(n - 3, n)] == ["special"] * 3
    hf = _file(chat_tok)
    added = {t.content: i for i, t in hf.get_added_tokens_decoder().items() if t.special}
    assert added == chat_tok.special_tokens == {"<unk>": 0, "<s>": 1, "</s>": 2, "<pad>": 3,
                                                **{t: n - 3 + k for k, t in enumerate(CHAT)}}
    cfg = json.loads((chat_tok.path / "config.json").read_text())
    assert cfg["special_tokens"] == chat_tok.special_tokens and cfg["build"]["special_tokens"] == CHAT
    tcfg = json.loads((chat_tok.path / "tokenizer_config.json").read_text())
    assert tcfg["additional_special_tokens"] == CHAT
    again = HyperTok.load(chat_tok.path)
    assert again.special_tokens == chat_tok.special_tokens and again.encode(DIALOG, allow_special=True) == \
        chat_tok.encode(DIALOG, allow_special=True)


def test_special_tokens_in_text_are_text_unless_asked(chat_tok):
    ids = chat_tok.encode(DIALOG)
    assert not set(ids) & set(chat_tok.special_tokens.values())
    assert chat_tok.decode(ids) == DIALOG and chat_tok.from_symbols(chat_tok.to_symbols(DIALOG)) == DIALOG
    asked = chat_tok.encode(DIALOG, allow_special=True)
    start, end = chat_tok.special_tokens["<|im_start|>"], chat_tok.special_tokens["<|im_end|>"]
    assert asked[0] == start and asked.count(start) == 2 and asked.count(end) == 2
    assert len(asked) < len(ids)
    assert chat_tok.decode(asked, skip_special_tokens=False) == DIALOG
    assert chat_tok.decode(asked) == DIALOG.replace("<|im_start|>", "").replace("<|im_end|>", "").replace(
        "<|endoftext|>", "")
    assert chat_tok.encode_batch([DIALOG, "да"], allow_special=True) == [asked, chat_tok.encode("да")]


def test_allow_special_gives_the_ids_of_tokenizer_json_and_transformers(chat_tok):
    transformers = pytest.importorskip("transformers")
    hf = _file(chat_tok)
    at = transformers.AutoTokenizer.from_pretrained(str(chat_tok.path))
    for text in (DIALOG, "<s>текст</s><|im_end|>", "стол" * 3):
        want = chat_tok.encode(text, allow_special=True)
        assert hf.encode(text, add_special_tokens=False).ids == want
        assert at.encode(text, add_special_tokens=False) == want
    assert at.decode(chat_tok.encode(DIALOG, allow_special=True), skip_special_tokens=True) == \
        chat_tok.decode(chat_tok.encode(DIALOG, allow_special=True))
    assert set(CHAT) <= set(at.all_special_tokens)


@_property(300)
@given(st.lists(st.sampled_from(CHAT + ["<s>", "</s>", "<|im", "_end|>", "да", " нет", "\n", "🙂", "ё́", "\x00"]),
                max_size=20).map("".join) | st.text(max_size=40))
def test_special_tokens_round_trip_and_agree_with_the_file(chat_tok, chat_file, text):
    hf = chat_file
    assert chat_tok.decode(chat_tok.encode(text)) == text
    asked = chat_tok.encode(text, allow_special=True)
    assert chat_tok.decode(asked, skip_special_tokens=False) == text
    if not any(0xD800 <= ord(c) <= 0xDFFF for c in text):  # the Rust file cannot take lone surrogates
        assert hf.encode(text, add_special_tokens=False).ids == asked


def test_special_tokens_survive_save_and_a_copy(chat_tok, tmp_path):
    out = HyperTok.load(chat_tok.path).save_pretrained(tmp_path / "copy")
    again = HyperTok.from_pretrained(out)
    assert again.special_tokens == chat_tok.special_tokens and again.surfaces == chat_tok.surfaces


@pytest.mark.parametrize("given, match", [("<s>", "always a special"), ("x", "at least two"),
                                          ("<0x41>", "at least two"), ("<a>,<a>", "twice"),
                                          (["a\nb"], "newline")])
def test_bad_special_tokens_are_refused(given, match):
    with pytest.raises(HyperTokError, match=match):
        BuildConfig(special_tokens=given)


def test_special_tokens_flag(tmp_path, tiny_corpus):
    import argparse

    from hypertok.builder.commands import configure_build
    from hypertok.options import dataclass_from_args

    p = argparse.ArgumentParser()
    configure_build(p)
    for argv in (["--special-tokens", "<|a|>,<|b|>"], ["--special-tokens", "<|a|>", "<|b|>"]):
        args = p.parse_args(["--out", "x", *argv])
        assert dataclass_from_args(BuildConfig, args).special_tokens == ["<|a|>", "<|b|>"]
    assert dataclass_from_args(BuildConfig, p.parse_args(["--out", "x"])).special_tokens == []


def test_a_piece_never_takes_a_special_tokens_surface(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("стол ### стул ### дом ###\n" * 200, encoding="utf-8")
    tok = build([corpus], tmp_path / "t", BuildConfig(vocab_size=700, mode="word", special_tokens=["###"]))
    assert tok.surfaces.count("###") == 1 and tok.kinds[tok.special_tokens["###"]] == "special"
    assert tok.decode(tok.encode("стол ###")) == "стол ###"


# ------------------------------------------------------------------ the NFC normaliser

def test_nfc_is_in_tokenizer_json_and_the_config(nfc_tok, chat_tok):
    assert nfc_tok.normalizer == "nfc" and chat_tok.normalizer == "none"
    assert json.loads((nfc_tok.path / "tokenizer.json").read_text())["normalizer"]["type"] == "NFC"
    assert json.loads((chat_tok.path / "tokenizer.json").read_text())["normalizer"] is None
    assert HyperTok.load(nfc_tok.path).normalizer == "nfc"


def test_decomposed_text_costs_what_composed_text_costs(nfc_tok, chat_tok, tiny_corpus):
    text = tiny_corpus.read_text(encoding="utf-8")[:3000]
    nfd = unicodedata.normalize("NFD", text)
    assert nfd != text
    assert nfc_tok.encode(nfd) == nfc_tok.encode(text) and nfc_tok.decode(nfc_tok.encode(nfd)) == text
    assert _file(nfc_tok).encode(nfd, add_special_tokens=False).ids == nfc_tok.encode(nfd)
    # without the normaliser the decomposed text costs more tokens, and comes back exactly as written
    assert len(chat_tok.encode(nfd)) > len(chat_tok.encode(text)) and chat_tok.decode(chat_tok.encode(nfd)) == nfd


@_property(1000)
@given(st.text(UNICODE_3_2, max_size=30) | st.text(st.sampled_from(RUSSIAN + COMBINING), max_size=40))
def test_nfc_round_trip_is_unicodedata_nfc(nfc_tok, text):
    """Exact for NFC-stable text, its NFC form otherwise (on the characters both libraries' tables share)."""
    out = nfc_tok.decode(nfc_tok.encode(text))
    assert out == unicodedata.normalize("NFC", text) == nfc_tok.normalize(text)
    if unicodedata.is_normalized("NFC", text):
        assert out == text
    assert nfc_tok.from_symbols(nfc_tok.to_symbols(text)) == out


@_property(1000)
@given(st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=40)
       | st.text(st.sampled_from(RUSSIAN + COMBINING + "\ud800\udfff"), max_size=40))
def test_nfc_round_trip_is_normalize_for_every_string(nfc_tok, text):
    """Every string, lone surrogates included: decode(encode(x)) == normalize(x), and the ids are
    those of the pure-Python reference on the normalised text."""
    ids = nfc_tok.encode(text)
    assert nfc_tok.decode(ids) == nfc_tok.normalize(text)
    assert nfc_tok.encode(nfc_tok.normalize(text)) == ids
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        return  # the reference, like the Rust pipeline, takes UTF-8 text only; encode spells these with bytes
    pieces = len(nfc_tok) - len(CHAT)  # the build-time specials are added tokens, not pieces
    assert reference_encode(nfc_tok.normalize(text), nfc_tok.surfaces[:pieces],
                            [e.score for e in nfc_tok.entries[:pieces]], 4) == ids


def test_load_refuses_a_normaliser_the_config_does_not_record(nfc_tok, tmp_path):
    d = tmp_path / "t"
    shutil.copytree(nfc_tok.path, d)
    data = json.loads((d / "tokenizer.json").read_text(encoding="utf-8"))
    data["normalizer"] = None
    (d / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    cfg = json.loads((d / "config.json").read_text())
    cfg["files"] = {n: sha256_file(d / n) for n in HASHED_FILES}  # hashes recomputed: only the check catches it
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(HyperTokError, match="normaliser 'nfc'.*'none'"):
        HyperTok.load(d)


def test_unknown_normaliser_is_refused():
    with pytest.raises(HyperTokError, match="normalize"):
        BuildConfig(normalize="nfkc")


@_property(300)
@given(st.text(st.sampled_from(RUSSIAN + COMBINING + " \n"), max_size=60)
       | st.lists(st.sampled_from(CHAT + ["й", "и\u0306", "ё", "е\u0308", " да", "\n"]), max_size=12).map("".join))
def test_the_fast_encoder_gives_tokenizer_json_ids_with_nfc_and_specials(nfc_tok, text):
    """Issue 12's SentencePiece engine sits in front of both conventions: it reads the text
    as tokenizer.json's normaliser leaves it, and special tokens in text stay text."""
    assert nfc_tok._engine() is not None  # a new build is on the score grid, so the engine encodes
    hf = _file(nfc_tok)
    hf.encode_special_tokens = True  # as HyperTok reads text: a literal special is text
    assert nfc_tok.encode(text) == hf.encode(text, add_special_tokens=False).ids
    assert nfc_tok.encode_batch([text, text + "\n" + text]) == [nfc_tok.encode(text), nfc_tok.encode(text + "\n" + text)]


def test_encode_command_reads_special_tokens_only_when_asked(chat_tok, tmp_path, capsys):
    from hypertok.cli import main

    text = "да<|im_start|>нет\n<|im_end|>"
    (tmp_path / "chat.txt").write_text(text, encoding="utf-8")
    for flag, want in (([], chat_tok.encode(text)), (["--allow-special"], chat_tok.encode(text, allow_special=True))):
        assert main(["encode", str(chat_tok.path), str(tmp_path / "chat.txt"), *flag]) == 0
        assert [int(i) for i in capsys.readouterr().out.split()] == want
        assert main(["encode", str(chat_tok.path), str(tmp_path / "chat.txt"), "--symbols", *flag]) == 0
        assert capsys.readouterr().out == "".join(chat_tok.symbols[i] for i in want)
    assert chat_tok.special_tokens["<|im_start|>"] in chat_tok.encode(text, allow_special=True)
    assert chat_tok.special_tokens["<|im_start|>"] not in chat_tok.encode(text)
