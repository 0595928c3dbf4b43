"""Corpus reading and counting: stream text from files and folders, count units and n-grams.

What it does: expands paths (folders recursively, in sorted order, so a build is
deterministic), decodes each file strictly (``.xz``, ``.gz`` and ``.zst`` files are
decompressed on the fly, streamed), and yields lines with their newline kept. Memory does
not grow with corpus size. It also hashes the exact (decompressed) bytes read, so every
artifact can record which corpus made it, whichever way the corpus was stored.

``count_corpus`` streams the corpus twice (units, then n-grams of frequent units); memory
grows with the number of distinct units, not with corpus size. With ``holdout`` (issue 12)
it splits the lines into two folds, evenly spaced blocks of :data:`HOLDOUT_BLOCK_LINES`
lines: candidates are counted on fold 0, the pruning sample is drawn from fold 1 (the
held-out lines), and with ``crossfit`` each fold is counted and sampled, so that every
candidate can be scored on the fold it was not counted on (``hypertok.builder.select``).

What it does not do: no normalisation of case or whitespace. The corpus is counted
exactly as written, because the tokenizer must reproduce it exactly; only a build with
``normalize="nfc"`` counts each line's NFC form, as its tokenizer will see it (the corpus
hash stays that of the bytes read). It does not know about modes: the caller says whether
word n-grams are wanted.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import HyperTokError
from ..text import check_encoding, expand_paths, iter_text, lines_of
from .pretokenize import UNIT_RE

if TYPE_CHECKING:
    from .config import BuildConfig

_CHUNK = 1 << 20
# ``holdout`` splits the corpus in blocks of this many lines, so a paragraph (mostly) stays on
# one side; make_mix.py's sample is made of 100-line blocks from far-apart places, so there a
# held-out block is a stretch of text no counted line comes from.
HOLDOUT_BLOCK_LINES = 100


@dataclass
class Corpus:
    """A streamed text corpus: ``for line in Corpus([...])`` yields lines with ``\\n`` kept.

    ``sha256`` and ``n_bytes`` are filled in as the corpus is read (after a full pass).

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "a.txt").write_text("да\\nнет")
    >>> list(Corpus([d / "a.txt"]))
    ['да\\n', 'нет']
    """

    paths: list[str | os.PathLike]
    encoding: str = "utf-8"
    normalize: str = "none"  # "nfc": lines come out NFC-composed (the tokenizer's view)
    flag: str | None = None  # the option that sets `encoding`, offered by a decoding error ("--encoding" in build)
    files: list[Path] = field(init=False)
    sha256: str | None = field(init=False, default=None)
    n_bytes: int = field(init=False, default=0)
    n_chars: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        check_encoding(self.encoding)
        self.files = expand_paths(self.paths)
        if not self.files:
            raise HyperTokError("no corpus files given")

    def __iter__(self) -> Iterator[str]:
        if self.normalize == "nfc":  # the tokenizer's own normaliser (tokenizers' NFC), so the views agree
            from tokenizers import normalizers

            nfc = normalizers.NFC().normalize_str
            return (nfc(line) for line in self._lines())
        return self._lines()

    def _lines(self) -> Iterator[str]:
        digest = hashlib.sha256()
        n_bytes = n_chars = 0

        def read(block: bytes) -> None:  # every byte as read (decompressed): the corpus's hash and size
            nonlocal n_bytes
            digest.update(block)
            n_bytes += len(block)

        for path in self.files:
            digest.update(str(path.name).encode("utf-8") + b"\0")
            for line in lines_of(iter_text(path, self.encoding, _CHUNK, self.flag, raw=read)):
                n_chars += len(line)
                yield line
        self.sha256 = digest.hexdigest()
        self.n_bytes = n_bytes
        self.n_chars = n_chars


@dataclass
class Counts:
    """What the builder knows about a corpus: unit, character and n-gram counts."""

    units: Counter = field(default_factory=Counter)
    chars: Counter = field(default_factory=Counter)
    ngrams: Counter = field(default_factory=Counter)
    source: dict = field(default_factory=dict)
    sample: list = field(default_factory=list)
    # ``holdout`` only: the counts of fold 0 (counted lines) and fold 1 (held-out lines), each
    # with the sample of its own lines. A fold that proposes no candidates (fold 1 without
    # ``crossfit``) has empty ``units`` and ``ngrams``. Then ``units``/``chars`` above are
    # the whole corpus's (the backbone trains on them), ``ngrams`` is empty (candidates come
    # from the folds) and ``sample`` is the folds' samples together.
    folds: list = field(default_factory=list)


def held_out(block: int, fraction: float) -> bool:
    """Whether block number ``block`` is held out: ``fraction`` of all blocks, evenly spaced.

    >>> [held_out(k, 0.5) for k in range(4)], sum(held_out(k, 0.2) for k in range(100))
    ([False, True, False, True], 20)
    """
    return math.floor((block + 1) * fraction) > math.floor(block * fraction)


def with_progress(iterable, progress: bool, desc: str):
    """``iterable``, with a tqdm progress bar when ``progress`` is true."""
    if not progress:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, unit=" lines", mininterval=0.5)


class EvenSample:
    """Evenly spaced lines of a stream of unknown length, about ``target`` UTF-8 bytes in all.

    Keeps every ``stride``-th line; when the kept lines pass twice the target, the stride
    doubles and every other kept line goes. At the end the kept lines are thinned evenly
    to the target. Deterministic, one pass, memory at most twice the target, and it needs
    no file sizes (compressed files do not state theirs).

    >>> s = EvenSample(10)
    >>> for i in range(100): s.add(f"{i:02d}\\n")
    >>> s.lines()
    ['00\\n', '64\\n', '96\\n']
    """

    def __init__(self, target: int) -> None:
        self.target = max(1, target)
        self.stride = 1
        self.i = 0
        self.kept: list[tuple[int, str, int]] = []  # (line index, line, bytes)
        self.size = 0

    def add(self, line: str) -> None:
        if self.i % self.stride == 0:
            n = len(line.encode("utf-8", "surrogatepass"))
            self.kept.append((self.i, line, n))
            self.size += n
            if self.size > 2 * self.target:
                self.stride *= 2
                self.kept = [k for k in self.kept if k[0] % self.stride == 0]
                self.size = sum(k[2] for k in self.kept)
        self.i += 1

    def lines(self) -> list[str]:
        kept = self.kept
        if self.size > self.target:
            step = self.size / self.target
            kept = [k for j, k in enumerate(kept) if int(j / step) != int((j - 1) / step) or j == 0]
        return [k[1] for k in kept]


def count_corpus(paths, cfg: BuildConfig, progress: bool = False, word_ngrams: bool = False) -> Counts:
    """Stream the corpus: count units and characters, then n-grams of frequent units.

    N-grams always include punctuation merges (``", что"``); with ``word_ngrams`` also
    runs of words alone (``" потому что"``). With ``cfg.holdout`` the counts of each fold
    go to ``Counts.folds`` (see :class:`Counts`).
    """
    corpus = Corpus(paths, encoding=cfg.encoding, normalize=cfg.normalize, flag="--encoding")
    counts = Counts()
    findall = UNIT_RE.findall
    target = int(cfg.sample_mb * 1e6)
    if not cfg.holdout:
        fold_of = None
        samplers: list[EvenSample | None] = [EvenSample(target)]
    elif cfg.crossfit:  # both folds are counted and sampled, the sample split between them
        fold_of = _fold_of(cfg.holdout)
        samplers = [EvenSample(target // 2), EvenSample(target // 2)]
    else:  # count on fold 0, sample only the held-out fold 1
        fold_of = _fold_of(cfg.holdout)
        samplers = [None, EvenSample(target)]
    fold_units = [Counter() for _ in samplers]
    n_lines = [0] * len(samplers)
    for i, line in enumerate(with_progress(corpus, progress, "counting units")):
        f = fold_of(i) if fold_of else 0
        fold_units[f].update(findall(line))
        n_lines[f] += 1
        if samplers[f] is not None:
            samplers[f].add(line)
    units = fold_units[0]
    for more in fold_units[1:]:
        units = units + more
    counts.units = units
    if not units or all(u.isspace() for u in units):  # issue 13: whitespace alone built a tokenizer
        raise HyperTokError(f"empty corpus: {', '.join(map(str, corpus.files))} holds no text"
                            f"{' (only whitespace)' if units else ''}; give UTF-8 text files")
    if fold_of and not n_lines[1]:
        raise HyperTokError(
            f"--holdout {cfg.holdout} held out no lines: {', '.join(map(str, corpus.files))} has {n_lines[0]} lines, "
            f"and lines are held out in blocks of {HOLDOUT_BLOCK_LINES}; give more text or --holdout 0")
    for u, c in units.items():
        for ch in u:
            counts.chars[ch] += c
    counts.source = {"files": [p.name for p in corpus.files], "sha256": corpus.sha256, "bytes": corpus.n_bytes,
                     "chars": corpus.n_chars}
    samples = [s.lines() if s is not None else [] for s in samplers]
    counts.sample = [line for s in samples for line in s]
    # which folds propose candidates: the only one without holdout, fold 0 with it, both when cross-fitted
    proposing = [True] if not fold_of else [True, cfg.crossfit]
    ngrams = [Counter() for _ in samplers]
    if cfg.max_ngram >= 2:
        top = {u for u, _ in units.most_common(cfg.ngram_units)}
        ngrams = _count_ngrams(corpus, top, cfg, progress, word_ngrams, fold_of, proposing)
    if not fold_of:
        counts.ngrams = ngrams[0]
    else:
        counts.folds = [Counts(units=fold_units[f] if proposing[f] else Counter(), ngrams=ngrams[f], sample=samples[f])
                        for f in range(2)]
    return counts


def _fold_of(fraction: float):
    """Line index -> fold (1: held out), by blocks of :data:`HOLDOUT_BLOCK_LINES` lines."""
    return lambda i: int(held_out(i // HOLDOUT_BLOCK_LINES, fraction))


def _count_ngrams(corpus: Corpus, top: set[str], cfg: BuildConfig, progress: bool, words_only: bool,
                  fold_of=None, proposing: list[bool] | None = None) -> list[Counter]:
    """N-gram counts per fold (one Counter without folds); a fold not ``proposing`` is skipped."""
    proposing = proposing or [True]
    counters: list[Counter] = [Counter() for _ in proposing]
    findall = UNIT_RE.findall
    max_n = cfg.max_ngram
    limit = 4_000_000

    def flush(ngrams: Counter, run: list[str], punct: list[bool]) -> None:
        m = len(run)
        for n in range(2, min(max_n, m) + 1):
            for i in range(m - n + 1):
                if words_only or any(punct[i:i + n]):
                    ngrams["".join(run[i:i + n])] += 1

    for i, line in enumerate(with_progress(corpus, progress, "counting n-grams")):
        f = fold_of(i) if fold_of else 0
        if not proposing[f]:
            continue
        ngrams = counters[f]
        run: list[str] = []
        punct: list[bool] = []
        for u in findall(line):
            if u in top:
                run.append(u)
                c = u[-1]
                punct.append(not (c.isalnum()))
            else:
                if len(run) > 1:
                    flush(ngrams, run, punct)
                run, punct = [], []
        if len(run) > 1:
            flush(ngrams, run, punct)
        if len(ngrams) > limit:  # keep memory bounded: rare n-grams cannot win a budget slot
            for k in [k for k, v in ngrams.items() if v <= 2]:
                del ngrams[k]
    return [Counter({k: v for k, v in ng.items() if v >= cfg.min_ngram_count}) for ng in counters]
