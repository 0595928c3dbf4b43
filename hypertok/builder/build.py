"""``build``: count a corpus, select entries, allocate symbols, write a tokenizer directory.

The steps, each in its own module of ``hypertok.builder``:

1. count units, characters and n-grams (``corpus``; with no corpus, the navec frequency
   list, ``wordlist``);
2. spend the budget on characters, fallback pieces and candidates of the mode
   (``select``, ``candidates``, ``fallback``, ``morphology``);
3. add lemmas, give every token a symbol (``symbols``), and write the directory with
   ``HyperTok.save`` (``hypertok.core.format``), recording the config, library versions
   and the corpus hash.

What it does not do: it does not encode text; ``hypertok.core.tokenizer`` does.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from dataclasses import asdict

from ..core.format import Entry, check_out_dir
from ..core.tokenizer import HyperTok
from ..errors import HyperTokError
from ..files import library_versions, sha256_file
from .candidates import GENERATORS
from .config import BuildConfig
from ..text import resolve_corpus
from .corpus import count_corpus, with_progress
from .pretokenize import unit_kind
from .select import NO_SUPERBPE, effective_config, select_entries
from .symbols import allocate
from .wordlist import count_wordlist

# The libraries whose versions every tokenizer directory records.
RECORDED_LIBRARIES = ("hypertok", "tokenizers", "pymorphy3", "pymorphy3-dicts-ru", "natasha")


def _add_lemmas(entries: list[Entry], progress: bool) -> None:
    from .morphology import lemma_and_tags

    words = [e for e in entries if e.kind == "word" and not e.lemma and unit_kind(e.surface) == "word"]
    for e in with_progress(words, progress, "lemmas"):
        e.lemma, tags = lemma_and_tags(e.surface.lstrip(" "))
        e.tags = tags.split(" ")[0]


def build(corpus, out, cfg: BuildConfig | None = None, overwrite: bool = False, progress: bool = False) -> HyperTok:
    """Build a tokenizer directory from corpus files/folders (``.xz``/``.gz``/``.zst`` too).

    ``corpus`` may name ``"default"`` (the shared modern + ruslit corpus, ``DEFAULT_CORPUS``);
    an empty list or ``"navec"`` builds from the navec word list that ships in natasha.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "train.txt").write_text("Мне было тогда лет двадцать пять, и я был весел.\\n" * 300)
    >>> tok = build([d / "train.txt"], d / "tok", BuildConfig(vocab_size=700, mode="word"))
    >>> tok.decode(tok.encode("Мне было двадцать лет.")), (d / "tok" / "vocab.jsonl").is_file()
    ('Мне было двадцать лет.', True)
    """
    cfg = cfg or BuildConfig()
    out = check_out_dir(out, overwrite)  # before any work: an --out that cannot be written is found now
    paths = resolve_corpus([corpus] if isinstance(corpus, (str, os.PathLike)) else list(corpus))
    if cfg.backbone == "superbpe" and not paths:  # before any counting
        raise HyperTokError(NO_SUPERBPE)
    if cfg.holdout and not paths:
        raise HyperTokError(f"holdout {cfg.holdout} holds out corpus lines, and the navec word list (--corpus navec) has "
                            "none: give --corpus FILES, or leave out --holdout")
    word_ngrams = GENERATORS[cfg.mode].word_ngrams
    counts = count_corpus(paths, cfg, progress, word_ngrams) if paths else count_wordlist()
    cfg = effective_config(cfg, counts)  # what is trained is what config.json records
    entries, preferred_by_surface = select_entries(counts, cfg, progress, paths)
    _add_lemmas(entries, progress)

    corpus_chars = set(counts.chars)
    by_surface = {e.surface: e.id for e in entries}
    preferred = {by_surface[s]: sym for s, sym in preferred_by_surface.items() if s in by_surface}
    order = [e.id for e in sorted(entries, key=lambda e: (e.kind == "byte", -e.freq, e.id))]
    symbols = allocate([e.surface for e in entries], order, cfg.symbols, corpus_chars, preferred)
    for e, s in zip(entries, symbols):
        e.symbol = s

    concept_sha = sha256_file(cfg.concepts) if cfg.concepts else None
    config = {
        "build": asdict(cfg),
        "corpus": counts.source,
        "concepts_sha256": concept_sha,
        "versions": library_versions(RECORDED_LIBRARIES),
        "kinds": dict(sorted(Counter(e.kind for e in entries).items())),
        "size": len(entries),
    }
    tok = HyperTok(entries, config)
    tok.save(out, overwrite=overwrite)
    if len(entries) < cfg.vocab_size:  # issue 13: say so, never silently
        warnings.warn(f"{out}: {len(entries)} tokens, not {cfg.vocab_size}: the corpus supports no more with "
                      f"these settings (give more text, or a smaller --vocab-size)", stacklevel=2)
    return tok
