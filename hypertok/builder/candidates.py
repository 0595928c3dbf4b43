"""Candidate entries: one generator class per build mode, in a small registry.

A candidate is a piece of text that could become a vocabulary entry, with the tokens it
would save on the corpus: ``count x (estimated fallback tokens - 1)`` for a unit,
``count x (n - 1)`` for an n-gram of n units. The modes differ only in which candidates
they offer:

- ``word``: word forms with their leading space (`` стол``), numbers, punctuation runs,
  and punctuation merges (``", что"``, ``".\\n"``, ``"?» –"``). Case is handled by giving
  frequent cased forms their own entries (``" Он"``, ``"Я"``), which keeps
  ``tokenizer.json`` an exact twin of ``encode``: a capitalisation marker would need a
  text transform that HF's pipeline cannot express.
- ``morph``: as ``word``, but word forms also compete with their pymorphy3 stems
  (`` стол``) plus endings (``ами``), so a whole paradigm costs one stem entry.
- ``concept``: as ``morph``, plus multi-word units found in the corpus (frequent n-grams
  with positive PMI, ``" потому что"``, ``" в том числе"``).

A new mode is a new subclass with ``@register`` (issue 9). User concepts from a JSON file
(``{"phrase": "preferred symbol" or null}``) are offered in every mode, each in the forms
text writes it (:func:`concept_forms`): after a space as written, and in its
sentence-initial form, first letter capitalised, after a space (``". В том числе"``) and
with none (a line's start, ``«В том числе``). Each form is an entry with a symbol of its
own; the preferred symbol goes to the form as written (issue 11).

What it does not do: no ranking against the budget and no pruning (``hypertok.builder.select``).

>>> MODES
('word', 'morph', 'concept')
>>> GENERATORS["concept"].word_ngrams, GENERATORS["word"].morphology
(True, False)
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from ..errors import HyperTokError
from .corpus import Counts, with_progress
from .pretokenize import UNIT_RE, unit_kind

if TYPE_CHECKING:
    from .config import BuildConfig


@dataclass
class Candidate:
    surface: str
    kind: str
    saving: float
    freq: int
    lemma: str = ""
    tags: str = ""
    forced: bool = False  # a user concept: kept whatever its measured use
    folds: tuple[int, ...] = ()  # holdout: the folds whose counts proposed it (): scored on every sample


def fallback_cost(unit: str) -> int:
    """Tokens the fallback model is expected to spend on a unit (a deliberate rough guess).

    >>> fallback_cost(" стол"), fallback_cost(" электрификация"), fallback_cost("?»")
    (2, 5, 2)
    """
    kind = unit_kind(unit)
    if kind in ("punct", "number", "space"):
        return len(unit)
    if len(unit) == 1:
        return 1
    return max(2, math.ceil(len(unit) / 3.5))


GENERATORS: dict[str, type[CandidateGenerator]] = {}


def register(cls: type[CandidateGenerator]) -> type[CandidateGenerator]:
    """Class decorator: make ``cls`` the generator of ``cls.mode``."""
    GENERATORS[cls.mode] = cls
    return cls


class CandidateGenerator:
    """Offers the candidates of one mode. Subclasses set ``mode`` and extend ``candidates``."""

    mode: ClassVar[str]
    word_ngrams: ClassVar[bool] = False  # count n-grams of words alone, not only punctuation merges
    morphology: ClassVar[bool] = False  # stems + endings; the fallback then skips what stems cover

    def candidates(self, counts: Counts, cfg: BuildConfig, n_entries: int, progress: bool) -> list[Candidate]:
        """Every candidate of this mode (unsorted, possibly repeating a surface)."""
        return self.unit_candidates(counts) + self.ngram_candidates(counts, cfg)

    @staticmethod
    def unit_candidates(counts: Counts) -> list[Candidate]:
        out = []
        for u, c in counts.units.items():
            if len(u) < 2:
                continue
            kind = "punct" if unit_kind(u) in ("punct", "space") else "word"
            out.append(Candidate(u, kind, c * (fallback_cost(u) - 1), c))
        return out

    def ngram_candidates(self, counts: Counts, cfg: BuildConfig) -> list[Candidate]:
        total = sum(counts.units.values())
        out = []
        for g, c in counts.ngrams.items():
            parts = UNIT_RE.findall(g)
            n = len(parts)
            if n < 2:
                continue
            is_words = all(unit_kind(p) in ("word", "number") for p in parts)
            if is_words:
                if not self.word_ngrams:
                    continue
                pmi = math.log(c / total) - sum(math.log(counts.units[p] / total) for p in parts)
                if pmi < cfg.min_pmi:
                    continue
            out.append(Candidate(g, "concept" if is_words else "punct", c * (n - 1), c))
        return out


@register
class WordCandidates(CandidateGenerator):
    mode = "word"


@register
class MorphCandidates(CandidateGenerator):
    mode = "morph"
    morphology = True

    def candidates(self, counts: Counts, cfg: BuildConfig, n_entries: int, progress: bool) -> list[Candidate]:
        cands = super().candidates(counts, cfg, n_entries, progress)
        n_word_entries = sum(1 for c in sorted(cands, key=lambda c: -c.saving)[:n_entries] if c.kind == "word")
        words = [c for c in cands if c.kind == "word"]
        return cands + self.morph_candidates(words, n_word_entries, cfg.max_morph_words, progress)

    @staticmethod
    def morph_candidates(words: list[Candidate], n_words: int, limit: int, progress: bool) -> list[Candidate]:
        """Stems and endings of the (at most ``limit`` most useful) word forms that will not
        get an entry of their own."""
        from .morphology import analyse

        words_sorted = sorted(words, key=lambda c: (-c.saving, c.surface))
        kept = {c.surface for c in words_sorted[:n_words]}
        stems: dict[str, Candidate] = {}
        endings: Counter = Counter()
        tail = [c for c in words_sorted[n_words:n_words + limit] if c.freq >= 2]
        for cand in with_progress(tail, progress, "morphology"):
            space = cand.surface.startswith(" ")
            word = cand.surface[1:] if space else cand.surface
            a = analyse(word)
            if a is None or not a.ending:
                continue
            stem = (" " if space else "") + a.stem
            if stem in kept:
                continue
            gain = cand.freq * (fallback_cost(cand.surface) - 2)
            s = stems.get(stem)
            if s is None:
                stems[stem] = Candidate(stem, "stem", gain, cand.freq, a.lemma, a.tags.split(" ")[0])
            else:
                s.saving += gain
                s.freq += cand.freq
            endings[a.ending] += cand.freq
        out = [s for s in stems.values() if s.saving > 0]
        # Endings are few and every stem needs them: rank them above everything they enable.
        top = max((s.saving for s in out), default=1.0)
        out += [Candidate(e, "ending", top + c, c) for e, c in endings.items() if c >= 2]
        return out


@register
class ConceptCandidates(MorphCandidates):
    mode = "concept"
    word_ngrams = True


MODES = tuple(GENERATORS)


def concept_forms(phrase: str) -> list[str]:
    """The surfaces a user concept gets: `` phrase`` as written, then its sentence-initial form
    (first character in title case, the rest as written) after a space and at a line's start.

    A capitalisation marker cannot express this in ``tokenizer.json`` (see the ``word`` mode
    above), so the capitalised forms are entries of their own, as frequent cased words are.

    >>> concept_forms("в том числе")
    [' в том числе', ' В том числе', 'В том числе']
    >>> concept_forms(" Москва ")
    [' Москва', 'Москва']
    """
    phrase = phrase.strip(" ")
    initial = phrase[:1].title() + phrase[1:]
    return list(dict.fromkeys([" " + phrase, " " + initial, initial]))


def user_concepts(path: str | None, top_saving: float) -> tuple[list[Candidate], dict[str, str]]:
    """Forced candidates from a concept file (every form of :func:`concept_forms`), and the
    preferred symbols by surface. A form the file also lists itself keeps that entry's symbol."""
    if not path:
        return [], {}
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HyperTokError(f"{p}: concept file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise HyperTokError(f"{p}: not valid UTF-8 JSON ({e})") from None
    if not isinstance(data, dict):
        raise HyperTokError(f'{p}: must be a JSON object {{"phrase": "symbol" or null}}')
    preferred: dict[str, str] = {}
    forms: list[str] = []
    for phrase, sym in sorted(data.items()):
        if not phrase or not isinstance(phrase, str) or "\n" in phrase or not phrase.strip(" "):
            raise HyperTokError(f"{p}: phrase {phrase!r} must be a non-empty one-line string")
        if sym is not None and not isinstance(sym, str):
            raise HyperTokError(f"{p}: symbol for {phrase!r} must be a string or null")
        these = concept_forms(phrase)
        forms += these
        if sym:
            preferred[these[0]] = sym
    out = [Candidate(surface, "concept", top_saving * 2, 0, forced=True) for surface in dict.fromkeys(forms)]
    return out, preferred
