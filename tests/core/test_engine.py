"""The SentencePiece engine gives exactly the ids of the tokenizers pipeline (issue 12).

``hypertok.core.engine`` claims identity wherever it encodes: whole lines, lines cut next to
characters in no piece, and long lines cut before a space no piece spans. The properties
below check each claim against ``engine="tokenizers"`` (the ``tokenizer.json`` pipeline)
on text made of the vocabulary's own pieces, where pieces span spaces and lines.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypertok import HyperTok
from hypertok.core.engine import SentencePieceEngine
from hypertok.core.format import BYTE0, N_BYTES, SCORE_BITS, SPECIALS, Entry, byte_piece, grid_score

from .reference import encode as reference_encode

EXTRA = [" ", "  ", "\n", "\n\n", ", ", ". ", "😀", "漢", "\ue000", "\t", "\x00", "\r\n", "x", "ё́"]


def twins(tok: HyperTok, max_line: int | None = None) -> tuple[HyperTok, HyperTok]:
    """(tok with the SentencePiece engine, optionally with a short ``max_line``; tok on tokenizers only)."""
    fast = HyperTok(tok.entries, tok.config, hf=tok.hf)
    engine = fast._engine()
    assert engine is not None
    if max_line is not None:
        fast._fast = SentencePieceEngine(engine.sp, tok.entries, max_line)
    return fast, HyperTok(tok.entries, tok.config, hf=tok.hf, engine="tokenizers")


def hand_made(pieces: list[tuple[str, float]]) -> HyperTok:
    """Specials, bytes, then ``(surface, score)`` pieces; scores are put on the grid."""
    entries = [Entry(i, s, "special", -50.0, symbol=chr(0xE000 + i)) for i, s in enumerate(SPECIALS)]
    entries += [Entry(BYTE0 + b, byte_piece(b), "byte", -50.0, symbol=chr(0xE100 + b)) for b in range(N_BYTES)]
    for k, (s, score) in enumerate(pieces):
        entries.append(Entry(len(entries), s, "char" if len(s) == 1 else "word", grid_score(score),
                             symbol=chr(0xF000 + k)))
    return HyperTok(entries, {})


def text_of_pieces(tok: HyperTok):
    """Texts glued from the vocabulary's pieces and a few awkward characters."""
    pieces = [s for s, k in zip(tok.surfaces, tok.kinds) if k not in ("special", "byte")]
    return st.lists(st.sampled_from(pieces + EXTRA), max_size=80).map("".join)


def test_builds_put_scores_on_the_grid_and_get_the_engine(tiny_tokenizers):
    for tok in tiny_tokenizers.values():
        assert all((e.score * (1 << SCORE_BITS)).is_integer() for e in tok.entries)
        engine = tok._engine()
        assert engine is not None
        worst = max(abs(e.score) for e in tok.entries if e.kind not in ("special", "byte"))
        assert (engine.max_line + 1) * worst <= 2 ** (24 - SCORE_BITS)  # float32 sums stay exact


def test_sentencepiece_model_keeps_every_id(tiny_tok):
    sp = tiny_tok._engine().sp
    assert sp.get_piece_size() == len(tiny_tok)
    assert [sp.id_to_piece(i) for i in range(len(tiny_tok))] == tiny_tok.surfaces
    assert (sp.unk_id(), sp.bos_id(), sp.eos_id(), sp.pad_id()) == (0, 1, 2, 3)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_engine_equals_tokenizers_on_pieces(tiny_tokenizers, data):
    for tok in tiny_tokenizers.values():
        fast, slow = twins(tok)
        text = data.draw(text_of_pieces(tok))
        assert fast.encode(text) == slow.encode(text)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), max_line=st.integers(2, 40))
def test_long_lines_cut_where_no_piece_spans_equal_uncut(tiny_tokenizers, data, max_line):
    """The cut claim: with a short ``max_line`` nearly every line is cut, and the ids stay
    those of the whole line."""
    for tok in tiny_tokenizers.values():
        fast, slow = twins(tok, max_line)
        text = data.draw(text_of_pieces(tok))
        assert fast.encode(text) == slow.encode(text)


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=120))
def test_engine_equals_tokenizers_on_any_unicode(tiny_tok, text):
    fast, slow = twins(tiny_tok)
    assert fast.encode(text) == slow.encode(text)
    assert fast.decode(fast.encode(text)) == text


def test_off_grid_scores_keep_tokenizers():
    tok = hand_made([("a", -1.0), ("b", -1.0)])
    tok.entries[-1].score = -1.0123456789
    assert SentencePieceEngine.for_entries(tok.entries) is None
    tok = hand_made([("a", -1.0), ("b", -1.0)])
    assert SentencePieceEngine.for_entries(tok.entries) is not None


@pytest.mark.parametrize("text", ["abb a", "ab\nbb\n", "b", "a😀b a", "😀😀", "a😀\n😀a"])
def test_characters_the_lattices_treat_differently(text):
    """"b" is inside the piece "ab" but no piece itself: its line goes to tokenizers. "😀" is
    in no piece: the line is cut around it and it is spelled with bytes, as tokenizers does."""
    tok = hand_made([("a", -1.05), (" ", -1.05), ("\n", -1.05), ("ab", -1.0), ("a a", -1.0)])
    fast = HyperTok(tok.entries, {})
    slow = HyperTok(tok.entries, {}, engine="tokenizers")
    assert fast._engine() is not None
    assert fast.encode(text) == slow.encode(text)
    assert fast.encode(text) == reference_encode(text, tok.surfaces, [e.score for e in tok.entries], BYTE0)
    assert fast.decode(fast.encode(text)) == text


def test_a_long_line_without_a_safe_space_goes_to_tokenizers():
    tok = hand_made([("a", -1.05), (" ", -1.05), ("a a", -1.0)])
    fast, slow = twins(tok, max_line=8)
    text = "a a a a a a a a a a a a a a"  # "a a" spans every space
    assert fast._fast._parts(text) is None
    assert fast.encode(text) == slow.encode(text)


def test_batches_agree_whatever_the_thread_count(tiny_tok):
    texts = ["Мне было тогда лет двадцать пять.", "", "\ud800стол", "Столы\nи стулья 😀\n" * 300, "я" * 5000]
    one = tiny_tok.encode_batch(texts, num_threads=1)
    assert one == tiny_tok.encode_batch(texts, num_threads=2) == [tiny_tok.encode(t) for t in texts]
    slow = HyperTok(tiny_tok.entries, tiny_tok.config, hf=tiny_tok.hf, engine="tokenizers")
    assert one == slow.encode_batch(texts)


def test_unknown_engine_is_refused(tiny_tok):
    from hypertok import HyperTokError

    with pytest.raises(HyperTokError, match="engine"):
        HyperTok(tiny_tok.entries, tiny_tok.config, engine="rust")
