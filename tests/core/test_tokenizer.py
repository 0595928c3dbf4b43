"""Lossless encode/decode, the symbol view, specials, and the HF tokenizer.json twin."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypertok import HyperTok, HyperTokError

from .reference import encode as reference_encode

any_text = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=200)
russian_like = st.text(st.sampled_from(list("абвгдеёжзийклмнопрстуфхцчшщъыьэюя АБВГ,.–«»\n\r\t!?стол") + ["\ue000", "😀"]),
                       max_size=300)

KNOWN = [
    "", "а", "😀", "漢字", "\ue000\ue001\U000f0000", "\ud800", "a\udfffb\ud800", "\x00", "a\r\nb\r\n",
    "ё́", "<s></s><pad><unk>", "<0x41>", " ", "\n\n\n", "  стол  ", "x" * 10,
]


@pytest.mark.parametrize("text", KNOWN)
def test_known_cases_round_trip(tiny_tokenizers, text):
    for tok in tiny_tokenizers.values():
        assert tok.decode(tok.encode(text)) == text
        assert tok.from_symbols(tok.to_symbols(text)) == text


def test_one_megabyte_of_one_character(tiny_tok):
    for ch in ("я", "\ue000"):
        text = ch * (1 << 20)
        assert tok_round_trip(tiny_tok, text)


def tok_round_trip(tok, text):
    return tok.decode(tok.encode(text)) == text and tok.from_symbols(tok.to_symbols(text)) == text


@settings(max_examples=300, deadline=None)
@given(any_text)
def test_round_trip_arbitrary_unicode(tiny_tokenizers, text):
    for tok in tiny_tokenizers.values():
        assert tok_round_trip(tok, text)


@settings(max_examples=200, deadline=None)
@given(russian_like)
def test_fast_path_equals_reference(tiny_tokenizers, text):
    for tok in tiny_tokenizers.values():
        assert tok.encode(text) == reference_encode(text, tok.surfaces, [e.score for e in tok.entries], 4)


def test_lone_surrogates_use_surrogatepass_bytes(tiny_tok):
    ids = tiny_tok.encode("\ud800")
    assert [tiny_tok.surfaces[i] for i in ids] == ["<0xED>", "<0xA0>", "<0x80>"]


def test_symbols_are_a_bijection(tiny_tokenizers):
    for tok in tiny_tokenizers.values():
        assert len(set(tok.symbols)) == len(tok) == len(tok.symbols)
        assert all(len(s) == 1 for s in tok.symbols)
        pool_chars = [s for s, e in zip(tok.symbols, tok.entries) if len(e.surface) != 1]
        corpus_chars = {e.surface for e in tok.entries if e.kind == "char"}
        assert not corpus_chars & set(pool_chars)


def test_pool_code_points_in_text_are_escaped_through_bytes(tiny_tok):
    sym = next(s for s, e in zip(tiny_tok.symbols, tiny_tok.entries) if e.kind == "word")
    ids = tiny_tok.encode(sym)
    assert all(tiny_tok.kinds[i] == "byte" for i in ids)
    assert tiny_tok.to_symbols(sym) != sym
    assert tiny_tok.from_symbols(tiny_tok.to_symbols(sym)) == sym


def test_specials_only_when_asked(tiny_tok):
    assert tiny_tok.specials == {"unk": 0, "bos": 1, "eos": 2, "pad": 3}
    ids = tiny_tok.encode("<s>стол</s>")
    assert not set(ids) & {0, 1, 2, 3}
    ids = tiny_tok.encode("стол", add_bos=True, add_eos=True)
    assert ids[0] == 1 and ids[-1] == 2
    assert tiny_tok.decode(ids) == "стол"
    assert tiny_tok.decode(ids, skip_special_tokens=False) == "<s>стол</s>"


def test_encode_batch_matches_encode(tiny_tok):
    texts = ["стол", "", "\ud800x", "Мне было тогда\n" * 5000]
    assert tiny_tok.encode_batch(texts) == [tiny_tok.encode(t) for t in texts]


@pytest.mark.parametrize("ids", [[10**6], [-1], [5, 900]])
def test_decode_rejects_out_of_range_ids(tiny_tok, ids):
    with pytest.raises(HyperTokError, match="out of range"):
        tiny_tok.decode(ids)


def test_from_symbols_rejects_unknown_character(tiny_tok):
    with pytest.raises(HyperTokError, match="position 1"):
        tiny_tok.from_symbols(tiny_tok.to_symbols("а") + "\U0010fffd")


def test_encode_rejects_bytes(tiny_tok):
    with pytest.raises(HyperTokError, match="str"):
        tiny_tok.encode(b"abc")


def test_hf_tokenizer_json_gives_the_same_ids(tiny_tok, tiny_corpus):
    from tokenizers import Tokenizer

    hf = Tokenizer.from_file(str(tiny_tok.path / "tokenizer.json"))
    text = tiny_corpus.read_text(encoding="utf-8")
    assert hf.encode(text, add_special_tokens=False).ids == tiny_tok.encode(text)
    assert hf.decode(tiny_tok.encode(text)) == text


def test_transformers_loads_the_directory(tiny_tok, tiny_corpus):
    transformers = pytest.importorskip("transformers")
    text = tiny_corpus.read_text(encoding="utf-8")[:2000]
    auto = transformers.AutoTokenizer.from_pretrained(str(tiny_tok.path))
    fast = transformers.PreTrainedTokenizerFast(tokenizer_file=str(tiny_tok.path / "tokenizer.json"))
    for t in (auto, fast):
        assert t.encode(text, add_special_tokens=False) == tiny_tok.encode(text)
    assert auto.bos_token_id == 1 and auto.pad_token_id == 3


def test_inspect_shows_kinds(tiny_tok):
    out = tiny_tok.inspect("Столы и стулья")
    assert "word" in out or "fallback" in out
    assert out.count("\n") == len(tiny_tok.encode("Столы и стулья"))


def test_vocab_file_is_human_readable_and_complete(tiny_tok):
    lines = (tiny_tok.path / "vocab.jsonl").read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])
    assert header["version"] == 1 and header["size"] == len(tiny_tok) == len(lines) - 1
    row = json.loads(lines[1 + tiny_tok.encode(" было")[0]])
    assert set(row) == {"id", "surface", "kind", "score", "freq", "lemma", "tags", "symbol"}


def test_load_round_trips_the_directory(tiny_tok):
    again = HyperTok.load(tiny_tok.path)
    assert again.surfaces == tiny_tok.surfaces and again.symbols == tiny_tok.symbols


def _hand_made(surfaces_scores):
    """A HyperTok from hand-written pieces: specials, bytes, then ``(surface, score)`` pairs."""
    from hypertok.core.format import BYTE0, N_BYTES, SPECIALS, Entry, byte_piece

    entries = [Entry(i, s, "special", -50.0, symbol=chr(0xE000 + i)) for i, s in enumerate(SPECIALS)]
    entries += [Entry(BYTE0 + b, byte_piece(b), "byte", -50.0, symbol=chr(0xE100 + b)) for b in range(N_BYTES)]
    for k, (s, score) in enumerate(surfaces_scores):
        entries.append(Entry(len(entries), s, "char" if len(s) == 1 else "word", score,
                             symbol=s if len(s) == 1 else chr(0xF000 + k)))
    return HyperTok(entries, {})


@pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c"])
def test_reference_splits_lines_at_newline_only(sep):
    """Issue 9: the reference cut lines with str.splitlines, so at U+2028 and friends too,
    and missed a piece spanning one; the fast path cuts at "\\n" only."""
    tok = _hand_made([("a", -1.1), ("b", -1.1), (sep, -1.1), (f"a{sep}b", -1.0), ("\n", -1.1)])
    for text in [f"a{sep}b", f"a{sep}b\na{sep}b", f"x{sep}"]:
        fast = tok.encode(text)
        assert fast == reference_encode(text, tok.surfaces, [e.score for e in tok.entries], 4), text
        assert tok.decode(fast) == text
    assert [tok.surfaces[i] for i in tok.encode(f"a{sep}b")] == [f"a{sep}b"]


def test_encode_stream_equals_encode(tiny_tok, tmp_path):
    """Streaming a (compressed) file gives exactly encode()'s ids, whatever the block size (issue 12)."""
    import lzma

    text = ("Мне было тогда лет двадцать пять.\nОн молчал, – и всё. 🙂\n\n" * 300) + "без конца"
    want = tiny_tok.encode(text)
    p = tmp_path / "t.txt.xz"
    p.write_bytes(lzma.compress(text.encode("utf-8")))
    for block in (1, 7, 100, 1 << 22):
        got = [i for ids in tiny_tok.encode_stream(p, block_chars=block) for i in ids]
        assert got == want
    pieces = [text[i:i + 13] for i in range(0, len(text), 13)]
    assert [i for ids in tiny_tok.encode_stream(pieces, block_chars=50) for i in ids] == want


def test_cli_encode_streams_a_compressed_file(tiny_tok, tmp_path, capsys):
    import gzip

    from hypertok.cli import main

    text = "Мне было тогда лет двадцать пять.\nОн молчал.\n" * 50
    p = tmp_path / "t.txt.gz"
    p.write_bytes(gzip.compress(text.encode("utf-8")))
    assert main(["encode", str(tiny_tok.path), str(p)]) == 0
    assert capsys.readouterr().out == " ".join(map(str, tiny_tok.encode(text))) + "\n"


def test_transformers_names_save_pretrained_from_pretrained_decode_batch(tiny_tok, tmp_path):
    """Issue 11: the names transformers users reach for first."""
    from hypertok import HyperTok

    out = HyperTok.load(tiny_tok.path).save_pretrained(tmp_path / "t")  # a copy: the session fixture keeps its path
    again = HyperTok.from_pretrained(out)
    texts = ["Столы и стулья.", "", "🙂 <s>"]
    assert again.decode_batch(again.encode_batch(texts)) == texts
