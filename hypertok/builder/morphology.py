"""Morphology: split Russian word forms into stem + ending with pymorphy3 (OpenCorpora).

The split comes from the word's inflection paradigm, not from string heuristics: for
``столами`` pymorphy3 finds paradigm suffix ``ами``, so the stem is ``стол``. Every form of
the lemma shares that stem, which is why ``morph`` mode covers whole paradigms with one
stem entry plus a few hundred shared endings.

What it does not do: no derivational morphology (prefixes stay inside the stem), no
disambiguation by context (the most probable parse wins), and words pymorphy3 only
*guesses* (not in its dictionary) are not split: they go to the fallback model.

pymorphy3 is imported on first use, so loading a tokenizer never needs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Analysis:
    """One word form's parse: ``stem + ending == word`` (case kept as in the input)."""

    word: str
    stem: str
    ending: str
    lemma: str
    tags: str


@lru_cache(maxsize=1)
def _analyzer():
    import pymorphy3

    return pymorphy3.MorphAnalyzer()


@lru_cache(maxsize=1 << 20)
def analyse(word: str) -> Analysis | None:
    """Stem/ending split and lemma of a word form, or ``None`` if pymorphy3 does not know it.

    >>> a = analyse("столами"); (a.stem, a.ending, a.lemma)
    ('стол', 'ами', 'стол')
    >>> analyse("xyz") is None
    True
    """
    morph = _analyzer()
    parse = morph.parse(word)[0]
    method = parse.methods_stack[0]
    if type(method[0]).__name__ != "DictionaryAnalyzer" or len(method) < 4 or len(parse.word) != len(word):
        return None
    d = morph.dictionary
    paradigm = d.paradigms[method[2]]
    suffix = d.suffixes[paradigm[method[3]]]
    cut = len(word) - len(suffix)
    if cut <= 0:
        return None
    return Analysis(word, word[:cut], word[cut:], parse.normal_form, str(parse.tag))


def lemma_and_tags(word: str) -> tuple[str, str]:
    """The most probable lemma and tag string of a word form (for the vocabulary dump).

    >>> lemma_and_tags("людьми")[0]
    'человек'
    """
    parse = _analyzer().parse(word)[0]
    return parse.normal_form, str(parse.tag)
