"""Known-answer and property tests for hypertok.lab.metrics (issue 3).

The known answers are worked out by hand in the comments, so a reader can check them
without running anything.
"""

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypertok.lab import metrics as M


class ToyTokenizer:
    """Greedy longest-match over a fixed piece list: a tokenizer whose output we know."""

    def __init__(self, pieces, dummy_prefix=False):
        self.pieces = list(pieces)
        self.index = {p: i for i, p in enumerate(self.pieces)}
        self.dummy_prefix = dummy_prefix
        self.longest = max(map(len, self.pieces))

    def encode(self, text):
        if self.dummy_prefix and text:
            text = " " + text
        ids, i = [], 0
        while i < len(text):
            for n in range(min(self.longest, len(text) - i), 0, -1):
                if text[i:i + n] in self.index:
                    ids.append(self.index[text[i:i + n]])
                    i += n
                    break
            else:
                raise ValueError(f"no piece for {text[i]!r}")
        return ids

    @property
    def piece_bytes(self):
        return [p.encode("utf-8") for p in self.pieces]


PIECES = ["Ма", "ма", " мы", "ла", " раму", ".", " ", "М", "а", "м", "ы", "л", "р", "у"]


def test_word_count_and_fertility_by_hand():
    text = "Мама мыла раму."
    # \w+ matches: "Мама", "мыла", "раму" -> 3 words; "." is not a word.
    assert M.count_words(text) == 3
    ids = ToyTokenizer(PIECES).encode(text)
    # Greedy longest match: "Ма" "ма" " мы" "ла" " раму" "." -> 6 tokens.
    assert [PIECES[i] for i in ids] == ["Ма", "ма", " мы", "ла", " раму", "."]
    assert M.fertility(len(ids), 3) == 2.0
    assert M.fertility(5, 0) is None


def test_continued_words_by_hand():
    text = "Мама мыла раму."
    tok = ToyTokenizer(PIECES)
    ids = tok.encode(text)
    line_bytes = np.array([len(text.encode())])
    ends, aligned = M.token_ends([ids], M.piece_lengths(tok.piece_bytes), line_bytes)
    # Byte ends: Ма=4, ма=8, " мы"=13, ла=17, " раму"=26, "."=27 (Cyrillic letters are 2 bytes).
    assert ends.tolist() == [4, 8, 13, 17, 26, 27]
    assert aligned.tolist() == [True]
    ws, we = M.word_byte_spans(text)
    # Words in bytes: Мама [0,8), мыла [9,17), раму [18,26).
    assert ws.tolist() == [0, 9, 18] and we.tolist() == [8, 17, 26]
    # Мама has an end at 4 inside (0,8): continued; мыла has 13 inside (9,17): continued;
    # раму has no end strictly inside (18,26): not continued -> 2 of 3.
    assert M.continued_words(ws, we, ends) == (2, 3)


def test_dummy_prefix_is_taken_off_the_first_token():
    text = "Мама мыла раму."
    tok = ToyTokenizer(PIECES, dummy_prefix=True)
    ids = tok.encode(text)  # " " "Ма" "ма" " мы" "ла" " раму" "." : the leading space is not in the text
    ends, aligned = M.token_ends([ids], M.piece_lengths(tok.piece_bytes), np.array([27]), dummy_prefix=True)
    assert aligned.tolist() == [True]
    assert ends.tolist() == [0, 4, 8, 13, 17, 26, 27]
    # Without the dummy-prefix flag the line does not add up and is left out, not guessed.
    _, aligned = M.token_ends([ids], M.piece_lengths(tok.piece_bytes), np.array([27]), dummy_prefix=False)
    assert aligned.tolist() == [False]


def test_unknown_piece_leaves_the_line_out():
    lengths = np.array([2, -1, 1])  # id 1 is an <unk> of unknown length
    ends, aligned = M.token_ends([[0, 2], [0, 1], []], lengths, np.array([3, 5, 0]))
    assert aligned.tolist() == [True, False, True]
    assert ends.tolist() == [2, 3]


def test_renyi_efficiency_by_hand():
    # counts 2,1,1 over a vocabulary of 4: p = (1/2, 1/4, 1/4).
    # sum p^2.5 = 0.5^2.5 + 2 * 0.25^2.5 = 0.1767767 + 0.0625 = 0.2392767
    # H_2.5 = ln(0.2392767) / (1 - 2.5) = -1.4301349 / -1.5 = 0.9534233 nats
    # efficiency = 0.9534233 / ln 4 = 0.9534233 / 1.3862944 = 0.6877494
    assert M.renyi_entropy([2, 1, 1, 0], 2.5) == pytest.approx(0.9534233, abs=1e-6)
    assert M.renyi_efficiency([2, 1, 1, 0], 4, 2.5) == pytest.approx(0.6877494, abs=1e-6)
    # Uniform use of the whole vocabulary is perfectly efficient at any alpha.
    assert M.renyi_efficiency([5, 5, 5, 5], 4, 2.5) == pytest.approx(1.0)
    # alpha = 1 is Shannon entropy: -(0.5 ln 0.5 + 2 * 0.25 ln 0.25) = 1.0397208
    assert M.renyi_entropy([2, 1, 1], 1) == pytest.approx(1.0397208, abs=1e-6)
    assert M.renyi_efficiency([0, 0], 2) is None


def test_vocab_used_and_fallback_share():
    counts = np.array([0, 3, 1, 0, 4])
    assert M.vocab_used(counts, 5) == pytest.approx(3 / 5)
    assert M.fallback_share(counts, {2, 4}) == pytest.approx(5 / 8)
    assert M.fallback_share(counts, None) is None


def test_median_seconds_counts_runs():
    calls = []
    med, runs = M.median_seconds(lambda: calls.append(1), repeats=5, warmup=2)
    assert len(calls) == 7 and len(runs) == 5 and med >= 0


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=40))
def test_char_to_byte_matches_python(text):
    c2b = M.char_to_byte(text)
    assert c2b.tolist() == [len(text[:i].encode("utf-8")) for i in range(len(text) + 1)]


@settings(max_examples=80, deadline=None)
@given(st.text(alphabet="аб в.c\u00e9😀", max_size=30), st.data())
def test_continued_words_matches_brute_force(text, data):
    # Cut the text at random character positions; each cut is a token boundary.
    cuts = sorted(set(data.draw(st.lists(st.integers(0, len(text)), max_size=10))) | {len(text)})
    pieces, start = [], 0
    for c in cuts:
        if c > start:
            pieces.append(text[start:c])
            start = c
    vocab = sorted(set(pieces))
    ids = [vocab.index(p) for p in pieces]
    ends, aligned = M.token_ends([ids], M.piece_lengths([p.encode() for p in vocab]),
                                 np.array([len(text.encode())]))
    assert aligned.all()
    ws, we = M.word_byte_spans(text)
    got = M.continued_words(ws, we, ends)
    cut_chars = {c for c in cuts if 0 < c < len(text)}
    expected = sum(1 for m in re.finditer(r"\w+", text) if any(m.start() < c < m.end() for c in cut_chars))
    assert got == (expected, len(ws))


def test_empty_inputs():
    ends, aligned = M.token_ends([], np.array([1]), np.array([], dtype=np.int64))
    assert ends.size == 0 and aligned.size == 0
    ws, we = M.word_byte_spans("")
    assert M.continued_words(ws, we, ends) == (0, 0)
    assert math.isclose(M.renyi_entropy([]), 0.0)
