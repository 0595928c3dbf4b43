"""``BuildConfig``: the parameters of a vocabulary build, each documented once.

The CLI makes its ``hypertok build`` flags from these fields and their ``help`` metadata
(``hypertok.options``), so the Python API and the command line share one set of defaults
and one description of each option. ``__post_init__`` rejects impossible values with a
message that says what to pass instead.

``special_tokens`` takes a list, or comma-separated names (``"<|im_start|>,<|im_end|>"``, as
the ``--special-tokens`` flag does); ``normalize`` is ``none`` (lossless, the default) or
``nfc`` (``decode(encode(x))`` is then the NFC form of ``x``; see ``hypertok.core.tokenizer``).

What it does not do: it reads no files (``concepts`` is opened by the builder).
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass

from ..core.format import N_BYTES, NORMALIZERS, SPECIALS, parse_byte_piece
from ..core.lossless import SURROGATE
from ..errors import HyperTokError
from ..options import option
from ..text import check_encoding
from .candidates import MODES
from .symbols import POOLS

RUSSIAN = "абвгдеёжзийклмнопрстуфхцчшщъыьэюя"
BASE_CHARS = sorted(set(string.printable[:95]) | set(RUSSIAN) | set(RUSSIAN.upper()) | set("«»—–…„“”‘’№\n\t"))
MIN_FALLBACK = 64
BACKBONES = ("bpe", "superbpe", "tail")
MAX_VOCAB_SIZE = 1 << 18  # every token needs its own symbol; the largest pool ("all") holds about 290k


@dataclass
class BuildConfig:
    """Parameters of ``hypertok build``; the CLI builds this same dataclass.

    >>> BuildConfig(vocab_size=8000, mode="word").mode
    'word'
    """

    vocab_size: int = option(32000, "total vocabulary size, specials and fallback included")
    mode: str = option("concept", "word: frequent word forms; morph: stems+endings via pymorphy3; "
                     "concept: morph + multi-word units", choices=MODES)
    symbols: str = option("auto", "Unicode pool for the symbol view: Private Use Areas, CJK ideographs, all scripts; "
                        "auto = pua, or all when the vocabulary is larger than the PUA (137 468)", choices=POOLS)
    concepts: str | None = option(None, 'JSON file {"phrase": "preferred symbol or null"} of concepts that always get '
                                "an entry (default: none: only the concepts found in the corpus)")
    backbone: str = option("bpe", "the subword model under the entries: bpe = a BPE trained on the whole corpus "
                         "whose pieces compete with the entries on measured use; tail = a Unigram on the units "
                         "entries do not cover, with a fixed share (the builder of issues 2-11); superbpe = "
                         "like bpe, but the backbone is SuperBPE (superwords across spaces) trained on the "
                         "corpus files and cached like hypertok compare's baselines (needs --corpus)",
                         choices=BACKBONES)
    fallback_share: float = option(1.0, "backbone=bpe/superbpe: the backbone is trained at this share of the budget, "
                                 "then pruned with the entries; backbone=tail: the fixed share of the tail model (0.18 before)")
    min_char_count: int = option(3, "a character seen at least this often gets a token of its own (rarer ones are "
                               "spelled with byte tokens)")
    max_ngram: int = option(4, "longest multi-unit entry, in counting units (1: no n-grams)")
    ngram_units: int = option(20000, "n-grams are counted over runs of the units among this many most frequent ones")
    min_ngram_count: int = option(10, "an n-gram seen fewer times is not a candidate")
    min_pmi: float = option(0.0, "concept mode: least PMI of a multi-word unit, log p(n-gram) - sum log p(unit)")
    overgenerate: float = option(2.5, "candidates kept for pruning, as a multiple of the room for entries")
    prune_rounds: int = option(4, "rounds of usage-based pruning on the corpus sample")
    sample_mb: float = option(20.0, "megabytes of evenly spaced corpus lines kept to prune and score on (4 before "
                            "issue 12: too few to tell rare candidates apart)")
    holdout: float = option(0.0, "share of the corpus, in evenly spaced blocks of 100 lines, held out from counting: "
                          "candidates are counted on the other lines and the pruning scores them only on held-out "
                          "lines (at most --sample-mb of them), so an entry that pays only on the lines it was found "
                          "in is cut; the backbone still trains on the whole corpus (0: off, prune on a sample of "
                          "the whole corpus)")
    crossfit: bool = option(False, "with --holdout 0.5: the held-out half is counted too and its candidates are scored "
                          "on the other half, so every line serves both for counting and for out-of-sample scoring "
                          "(--sample-mb is split between the halves)")
    max_morph_words: int = option(200_000, "morph/concept: most word forms (beyond those with entries) split into "
                                "stem + ending")
    max_tail_units: int = option(300_000, "most tail units (the most frequent ones) the fallback model trains on")
    encoding: str = option("utf-8", "corpus encoding (e.g. cp1251)")
    special_tokens: list[str] = option(default_factory=list, help=(
        'extra special tokens (chat and control tokens), comma-separated: "<|im_start|>,<|im_end|>". They get '
        "the last ids and are special tokens of tokenizer.json (plain transformers reads them in text as one id); "
        "HyperTok's encode reads them only with allow_special=True, otherwise they are text "
        "(default: none: only <unk> <s> </s> <pad>)"))
    normalize: str = option("none", "text normalisation before encoding: none keeps decode(encode(x)) == x exactly; "
                          "nfc composes first (decomposed Cyrillic costs far fewer tokens), so decode(encode(x)) is "
                          "the NFC form of x. Also in tokenizer.json", choices=NORMALIZERS)

    def __post_init__(self) -> None:
        self.special_tokens = _special_token_list(self.special_tokens)
        if self.normalize not in NORMALIZERS:
            raise HyperTokError(f"unknown normalize {self.normalize!r}; choose one of {', '.join(NORMALIZERS)}")
        if self.mode not in MODES:
            raise HyperTokError(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.symbols not in POOLS:
            raise HyperTokError(f"unknown symbol pool {self.symbols!r}; choose one of {', '.join(POOLS)}")
        if not 0.0 < self.fallback_share <= 1.0:
            raise HyperTokError(f"fallback_share must be in (0, 1], got {self.fallback_share}")
        if self.backbone not in BACKBONES:
            raise HyperTokError(f"unknown backbone {self.backbone!r}; choose one of {', '.join(BACKBONES)}")
        if self.max_ngram < 1:
            raise HyperTokError("max_ngram must be at least 1")
        if not isinstance(self.vocab_size, int) or self.vocab_size > MAX_VOCAB_SIZE:
            raise HyperTokError(f"vocab_size {self.vocab_size} is too large: at most {MAX_VOCAB_SIZE} tokens "
                                f"(every token needs a symbol of its own)")
        for name in ("min_char_count", "ngram_units", "min_ngram_count", "prune_rounds", "max_morph_words",
                     "max_tail_units"):
            if getattr(self, name) < 0:
                raise HyperTokError(f"{name} must be at least 0, got {getattr(self, name)}")
        if not math.isfinite(self.min_pmi):  # issue 24: nan compared false everywhere and kept every n-gram
            raise HyperTokError(f"min_pmi must be a finite number (nats), got {self.min_pmi}")
        if not self.overgenerate >= 1.0 or not 0.0 < self.sample_mb < 1e6:
            raise HyperTokError("overgenerate must be at least 1 and sample_mb a positive number of megabytes")
        if not 0.0 <= self.holdout <= 0.9:
            raise HyperTokError(f"holdout must be between 0 (off) and 0.9 (a share of the corpus held out from "
                                f"counting; lines must be left to count on), got {self.holdout}")
        if self.crossfit and self.holdout != 0.5:
            raise HyperTokError(f"crossfit swaps the counted and the held-out half, so it needs holdout 0.5, got "
                                f"{self.holdout}: pass --holdout 0.5 --crossfit, or leave out --crossfit")
        check_encoding(self.encoding)
        n_specials = len(SPECIALS) + len(self.special_tokens)
        floor = n_specials + N_BYTES + len(BASE_CHARS) + MIN_FALLBACK
        if self.vocab_size < floor:
            raise HyperTokError(
                f"vocab_size {self.vocab_size} is too small: {n_specials} specials + {N_BYTES} bytes + "
                f"{len(BASE_CHARS)} base characters + {MIN_FALLBACK} fallback pieces need at least {floor}"
            )


def _special_token_list(value) -> list[str]:
    """``special_tokens`` as a checked list: a str or list items are split at commas, stripped.

    >>> _special_token_list("<|im_start|>, <|im_end|>")
    ['<|im_start|>', '<|im_end|>']
    >>> _special_token_list(["<s>"])
    Traceback (most recent call last):
    ...
    hypertok.errors.HyperTokError: --special-tokens: '<s>' is always a special token (ids 0-3: <unk>, <s>, </s>, <pad>); leave it out
    """
    items = [value] if isinstance(value, str) else list(value or [])
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise HyperTokError(f"--special-tokens: {item!r} is not a string")
        for tok in item.split(","):
            tok = tok.strip()
            if not tok:
                continue
            if tok in SPECIALS:
                raise HyperTokError(f"--special-tokens: {tok!r} is always a special token (ids 0-3: "
                                    f"{', '.join(SPECIALS)}); leave it out")
            if len(tok) < 2 or parse_byte_piece(tok) is not None:
                raise HyperTokError(f"--special-tokens: {tok!r} would take over a character or byte of ordinary "
                                    f"text; give a name of at least two characters, e.g. <|{tok}|>")
            if "\n" in tok or SURROGATE.search(tok):
                raise HyperTokError(f"--special-tokens: {tok!r} holds a newline or a lone surrogate; give one-line text")
            if tok in out:
                raise HyperTokError(f"--special-tokens: {tok!r} is given twice")
            out.append(tok)
    return out
