"""``BuildConfig``: the parameters of a vocabulary build, each documented once.

The CLI makes its ``hypertok build`` flags from these fields and their ``help`` metadata
(``hypertok.options``), so the Python API and the command line share one set of defaults
and one description of each option. ``__post_init__`` rejects impossible values with a
message that says what to pass instead.

What it does not do: it reads no files (``concepts`` is opened by the builder).
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field

from ..core.format import N_BYTES, SPECIALS
from ..errors import HyperTokError
from ..files import check_encoding
from .candidates import MODES
from .symbols import POOLS

RUSSIAN = "абвгдеёжзийклмнопрстуфхцчшщъыьэюя"
BASE_CHARS = sorted(set(string.printable[:95]) | set(RUSSIAN) | set(RUSSIAN.upper()) | set("«»—–…„“”‘’№\n\t"))
MIN_FALLBACK = 64
MAX_VOCAB_SIZE = 1 << 18  # every token needs its own symbol; the largest pool ("all") holds about 290k


def _opt(default, help: str, **meta):
    return field(default=default, metadata={"help": help, **meta})


@dataclass
class BuildConfig:
    """Parameters of ``hypertok build``; the CLI builds this same dataclass.

    >>> BuildConfig(vocab_size=8000, mode="word").mode
    'word'
    """

    vocab_size: int = _opt(32000, "total vocabulary size, specials and fallback included")
    mode: str = _opt("concept", "word: frequent word forms; morph: stems+endings via pymorphy3; "
                     "concept: morph + multi-word units", choices=MODES)
    symbols: str = _opt("auto", "Unicode pool for the symbol view: Private Use Areas, CJK ideographs, all scripts; "
                        "auto = pua, or all when the vocabulary is larger than the PUA (137 468)", choices=POOLS)
    concepts: str | None = _opt(None, 'JSON file {"phrase": "preferred symbol or null"} of concepts that always get '
                                "an entry (default: none: only the concepts found in the corpus)")
    backbone: str = _opt("bpe", "the subword model under the entries: bpe = a BPE trained on the whole corpus "
                         "whose pieces compete with the entries on measured use; tail = a Unigram on the units "
                         "entries do not cover, with a fixed share (the builder of issues 2-11)",
                         choices=("bpe", "tail"))
    fallback_share: float = _opt(1.0, "backbone=bpe: the BPE is trained at this share of the budget, then pruned "
                                 "with the entries; backbone=tail: the fixed share of the tail model (0.18 before)")
    min_char_count: int = _opt(3, "a character seen at least this often gets a token of its own (rarer ones are "
                               "spelled with byte tokens)")
    max_ngram: int = _opt(4, "longest multi-unit entry, in counting units (1: no n-grams)")
    ngram_units: int = _opt(20000, "n-grams are counted over runs of the units among this many most frequent ones")
    min_ngram_count: int = _opt(10, "an n-gram seen fewer times is not a candidate")
    min_pmi: float = _opt(0.0, "concept mode: least PMI of a multi-word unit, log p(n-gram) - sum log p(unit)")
    overgenerate: float = _opt(2.5, "candidates kept for pruning, as a multiple of the room for entries")
    prune_rounds: int = _opt(4, "rounds of usage-based pruning on the corpus sample")
    sample_mb: float = _opt(20.0, "megabytes of evenly spaced corpus lines kept to prune and score on (4 before "
                            "issue 12: too few to tell rare candidates apart)")
    max_morph_words: int = _opt(200_000, "morph/concept: most word forms (beyond those with entries) split into "
                                "stem + ending")
    max_tail_units: int = _opt(300_000, "most tail units (the most frequent ones) the fallback model trains on")
    encoding: str = _opt("utf-8", "corpus encoding (e.g. cp1251)")

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise HyperTokError(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.symbols not in POOLS:
            raise HyperTokError(f"unknown symbol pool {self.symbols!r}; choose one of {', '.join(POOLS)}")
        if not 0.0 < self.fallback_share <= 1.0:
            raise HyperTokError(f"fallback_share must be in (0, 1], got {self.fallback_share}")
        if self.backbone not in ("bpe", "tail"):
            raise HyperTokError(f"unknown backbone {self.backbone!r}; choose bpe or tail")
        if self.max_ngram < 1:
            raise HyperTokError("max_ngram must be at least 1")
        if not isinstance(self.vocab_size, int) or self.vocab_size > MAX_VOCAB_SIZE:
            raise HyperTokError(f"vocab_size {self.vocab_size} is too large: at most {MAX_VOCAB_SIZE} tokens "
                                f"(every token needs a symbol of its own)")
        for name in ("min_char_count", "ngram_units", "min_ngram_count", "prune_rounds", "max_morph_words",
                     "max_tail_units"):
            if getattr(self, name) < 0:
                raise HyperTokError(f"{name} must be at least 0, got {getattr(self, name)}")
        if not self.overgenerate >= 1.0 or not 0.0 < self.sample_mb < 1e6:
            raise HyperTokError("overgenerate must be at least 1 and sample_mb a positive number of megabytes")
        check_encoding(self.encoding)
        floor = len(SPECIALS) + N_BYTES + len(BASE_CHARS) + MIN_FALLBACK
        if self.vocab_size < floor:
            raise HyperTokError(
                f"vocab_size {self.vocab_size} is too small: {len(SPECIALS)} specials + {N_BYTES} bytes + "
                f"{len(BASE_CHARS)} base characters + {MIN_FALLBACK} fallback pieces need at least {floor}"
            )
