"""Tokenizer metrics as small pure functions over token ids, counts and byte offsets.

What it measures (issue 3, "The comparison lab"):

- compression: characters per token, UTF-8 bytes per token;
- **fertility** = tokens per word, and the **proportion of continued words** = share of
  words split into two or more tokens (both from Rust et al. 2021, "How good is your
  tokenizer?"). Words are counted as the matches of the regular expression ``\\w+``
  (Python ``re``, Unicode-aware): :data:`WORD_RULE`;
- **Rényi efficiency** at alpha = 2.5 (Zouhar et al. 2023, "Tokenization and the
  noiseless channel"): ``H_a(p) / log |V|`` with ``H_a(p) = log(sum p_i^a) / (1 - a)``
  over the unigram distribution of the token ids produced, and ``|V|`` the full
  vocabulary size;
- share of the vocabulary used, share of fallback tokens, and median throughput.

Word-level metrics need to know where each token starts and ends in the text. Every
tokenizer gives that the same way here: the UTF-8 bytes each id stands for
(``piece_bytes``), summed along the sequence (:func:`token_ends`). A line whose pieces
do not spell it (an ``<unk>``, a normaliser) is left out of the word-level metrics and
counted in ``unaligned_lines``; it is never guessed.

What it does not do: no tokenizer loading (see :mod:`hypertok.registry`), no file
reading or reporting (see :mod:`hypertok.lab.compare` and :mod:`hypertok.lab.report`).
Moved from ``hypertok/metrics.py`` by issue 9.
"""

from __future__ import annotations

import math
import re
import statistics
import time
from collections.abc import Callable, Sequence
from itertools import chain

import numpy as np

WORD_RE = re.compile(r"\w+")
WORD_RULE = "words = matches of the regex \\w+ (Unicode letters, digits and _)"


def count_words(text: str) -> int:
    """Number of ``\\w+`` matches.

    >>> count_words("Мне было лет двадцать пять, – начал Н.Н.")
    8
    """
    return sum(1 for _ in WORD_RE.finditer(text))


def char_to_byte(text: str) -> np.ndarray:
    """``out[i]`` = UTF-8 byte offset of character ``i``; ``out[len(text)]`` = total bytes.

    >>> char_to_byte("aё€😀").tolist()
    [0, 1, 3, 6, 10]
    """
    cps = np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype="<u4")
    widths = 1 + (cps >= 0x80).astype(np.int64) + (cps >= 0x800) + (cps >= 0x10000)
    out = np.zeros(len(cps) + 1, dtype=np.int64)
    np.cumsum(widths, out=out[1:])
    return out


def word_byte_spans(text: str, c2b: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """UTF-8 byte spans ``[start, end)`` of the words of ``text``.

    >>> s, e = word_byte_spans("ёж, ok")
    >>> s.tolist(), e.tolist()
    ([0, 6], [4, 8])
    """
    c2b = char_to_byte(text) if c2b is None else c2b
    spans = np.array([m.span() for m in WORD_RE.finditer(text)], dtype=np.int64).reshape(-1, 2)
    return c2b[spans[:, 0]], c2b[spans[:, 1]]


def piece_lengths(piece_bytes: Sequence[bytes | None]) -> np.ndarray:
    """Byte length of each id's piece, ``-1`` where unknown (e.g. ``<unk>``)."""
    return np.array([-1 if b is None else len(b) for b in piece_bytes], dtype=np.int64)


def token_ends(
    ids_per_line: Sequence[Sequence[int]], lengths: np.ndarray, line_bytes: np.ndarray, dummy_prefix: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Where each token ends, as a UTF-8 byte offset into the lines joined by ``\\n``.

    ``lengths[id]`` is the byte length of id's piece (``-1``: unknown). A line is
    *aligned* when its pieces add up to its byte length, or to one more when the
    tokenizer adds a dummy prefix space (SentencePiece, Metaspace), which is then taken
    off the first token. Returns ``(ends, aligned)``: the sorted end offsets of the
    tokens of aligned lines, and a bool per line.

    >>> ends, ok = token_ends([[0, 1], [2]], np.array([2, 1, 3]), np.array([3, 3]))
    >>> ends.tolist(), ok.tolist()
    ([2, 3, 7], [True, True])
    """
    n_lines = len(ids_per_line)
    per_line = np.fromiter((len(x) for x in ids_per_line), dtype=np.int64, count=n_lines)
    total = int(per_line.sum())
    flat = np.fromiter(chain.from_iterable(ids_per_line), dtype=np.int64, count=total)
    lens = lengths[flat] if total else np.zeros(0, dtype=np.int64)
    line_of = np.repeat(np.arange(n_lines), per_line)
    unknown = np.bincount(line_of, weights=(lens < 0), minlength=n_lines) > 0
    lens = np.where(lens < 0, 0, lens)
    sums = np.bincount(line_of, weights=lens, minlength=n_lines).astype(np.int64)
    line_bytes = np.asarray(line_bytes, dtype=np.int64)
    shift = sums - line_bytes
    aligned = ~unknown & ((shift == 0) | (dummy_prefix & (shift == 1)))
    line_start = np.zeros(n_lines, dtype=np.int64)
    if n_lines > 1:
        np.cumsum(line_bytes[:-1] + 1, out=line_start[1:])
    cs = np.cumsum(lens)
    before = np.zeros(n_lines, dtype=np.int64)  # sum of all lens in earlier lines
    if n_lines > 1:
        np.cumsum(sums[:-1], out=before[1:])
    ends = line_start[line_of] + cs - before[line_of] - shift[line_of]
    return np.sort(ends[aligned[line_of]]), aligned


def continued_words(
    word_starts: np.ndarray, word_ends: np.ndarray, ends: np.ndarray, measured: np.ndarray | None = None
) -> tuple[int, int]:
    """``(continued, measured)``: words with a token boundary strictly inside them.

    A word ``[s, e)`` is continued (split into two or more tokens) when some token ends
    at a byte offset ``b`` with ``s < b < e``. ``measured`` masks the words whose line
    was aligned.

    >>> continued_words(np.array([0, 5]), np.array([4, 9]), np.array([2, 4, 9]))
    (1, 2)
    """
    ends = np.sort(np.asarray(ends))
    inside = np.searchsorted(ends, word_ends, "left") - np.searchsorted(ends, word_starts, "right")
    mask = np.ones(len(word_starts), dtype=bool) if measured is None else np.asarray(measured, dtype=bool)
    return int(((inside > 0) & mask).sum()), int(mask.sum())


def fertility(n_tokens: int, n_words: int) -> float | None:
    """Tokens per word (Rust et al. 2021); ``None`` for a text without words.

    >>> fertility(6, 4)
    1.5
    """
    return n_tokens / n_words if n_words else None


def renyi_entropy(counts: Sequence[int] | np.ndarray, alpha: float = 2.5) -> float:
    """Rényi entropy (nats) of the distribution given by ``counts``; Shannon at alpha 1.

    >>> round(renyi_entropy([1, 1, 1, 1]), 6) == round(math.log(4), 6)
    True
    """
    c = np.asarray(counts, dtype=np.float64)
    c = c[c > 0]
    if c.size == 0:
        return 0.0
    p = c / c.sum()
    if alpha == 1:
        return float(-(p * np.log(p)).sum())
    return float(np.log((p**alpha).sum()) / (1 - alpha))


def renyi_efficiency(counts: Sequence[int] | np.ndarray, vocab_size: int, alpha: float = 2.5) -> float | None:
    """``H_alpha(p) / log |V|`` (Zouhar et al. 2023): 1 = all ids equally used.

    >>> round(renyi_efficiency([2, 1, 1, 0], 4), 4)
    0.6877
    """
    if vocab_size < 2 or not np.asarray(counts).sum():
        return None
    return renyi_entropy(counts, alpha) / math.log(vocab_size)


def vocab_used(counts: np.ndarray, vocab_size: int) -> float:
    """Share of the vocabulary's ids that occur at least once.

    >>> vocab_used(np.array([3, 0, 1, 0]), 4)
    0.5
    """
    return int((np.asarray(counts) > 0).sum()) / vocab_size if vocab_size else 0.0


def fallback_share(counts: np.ndarray, fallback_ids) -> float | None:
    """Share of tokens whose id is in ``fallback_ids``; ``None`` when not applicable.

    >>> fallback_share(np.array([3, 0, 1, 0]), {2, 3})
    0.25
    """
    if fallback_ids is None:
        return None
    counts = np.asarray(counts)
    total = counts.sum()
    if not total:
        return None
    idx = np.fromiter((i for i in fallback_ids if i < len(counts)), dtype=np.int64)
    return float(counts[idx].sum() / total)


def median_seconds(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> tuple[float, list[float]]:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times; median and all times.

    >>> med, runs = median_seconds(lambda: sum(range(100)), repeats=5)
    >>> len(runs), med >= 0
    (5, True)
    """
    for _ in range(warmup):
        fn()
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs), runs
