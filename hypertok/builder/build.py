"""Vocabulary building: choose HyperTok entries for a token budget, then write a directory.

The budget is one number, the total vocabulary size. It is spent in this order:

1. 4 special tokens and 256 byte tokens (so nothing is ever unknown);
2. single characters: printable ASCII, the Russian alphabet, and every character seen at
   least ``min_char_count`` times;
3. the fallback subword model (``fallback_share`` of the budget), trained on the tail of the
   corpus that entries will not cover (see ``hypertok.fallback``);
4. HyperTok entries, ranked by the tokens they save on the corpus:
   ``count x (estimated fallback tokens - 1)`` for a unit, ``count x (n - 1)`` for an
   n-gram of n units. The modes differ only in which candidates enter the ranking:

   - ``word``: word forms with their leading space (`` стол``), numbers, punctuation runs,
     and punctuation merges (``", что"``, ``".\\n"``, ``"?» –"``). Case is handled by giving
     frequent cased forms their own entries (``" Он"``, ``"Я"``), which keeps
     ``tokenizer.json`` an exact twin of ``encode``: a capitalisation marker would need a
     text transform that HF's pipeline cannot express.
   - ``morph``: as ``word``, but word forms also compete with their pymorphy3 stems
     (`` стол``) plus endings (``ами``), so a whole paradigm costs one stem entry.
   - ``concept``: as ``morph``, plus multi-word units found in the corpus (frequent n-grams
     with positive PMI, ``" потому что"``, ``" в том числе"``) and user concepts from a JSON
     file ``{"phrase": "preferred symbol" or null}``.

Counting streams the corpus twice (units, then n-grams of frequent units); memory grows
with the number of distinct units, not with corpus size. With no corpus, the navec
frequency list (``hypertok.wordlist``) is the source.

This module does not encode text; ``hypertok.tokenizer`` does.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import string
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .corpus import Corpus
from .errors import HyperTokError
from .pretokenize import UNIT_RE, unit_kind
from .symbols import POOLS, allocate
from .tokenizer import BYTE0, N_BYTES, SPECIALS, Entry, HyperTok, byte_surface

MODES = ("word", "morph", "concept")
RUSSIAN = "абвгдеёжзийклмнопрстуфхцчшщъыьэюя"
BASE_CHARS = sorted(set(string.printable[:95]) | set(RUSSIAN) | set(RUSSIAN.upper()) | set("«»—–…„“”‘’№\n\t"))
MIN_FALLBACK = 64

# Score layout (higher is better; the encoder maximises the sum). While building, every token
# costs about 1 (entries a little less than fallback pieces, which cost a little less than
# characters), so the encoder finds the fewest tokens. The final scores are
# -1 + ALPHA * log p(token), p measured on the corpus sample: still fewest tokens first, but
# among equally short spellings the most probable one wins (" план"+"а", not " пл"+"ана").
_ENTRY, _FALLBACK, _CHAR, _RARE = -1.01, -1.05, -1.10, -50.0
ALPHA = 0.002


@dataclass
class BuildConfig:
    """Parameters of ``hypertok build``; the CLI builds this same dataclass."""

    vocab_size: int = 32000
    mode: str = "concept"
    symbols: str = "auto"
    concepts: str | None = None
    fallback_share: float = 0.18
    min_char_count: int = 3
    max_ngram: int = 4
    ngram_units: int = 20000
    min_ngram_count: int = 10
    min_pmi: float = 0.0
    overgenerate: float = 2.5
    prune_rounds: int = 4
    sample_mb: float = 4.0
    max_morph_words: int = 200_000
    max_tail_units: int = 300_000
    encoding: str = "utf-8"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise HyperTokError(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.symbols not in POOLS:
            raise HyperTokError(f"unknown symbol pool {self.symbols!r}; choose one of {', '.join(POOLS)}")
        if not 0.0 < self.fallback_share < 1.0:
            raise HyperTokError(f"fallback_share must be between 0 and 1, got {self.fallback_share}")
        if self.max_ngram < 1:
            raise HyperTokError("max_ngram must be at least 1")
        floor = len(SPECIALS) + N_BYTES + len(BASE_CHARS) + MIN_FALLBACK
        if self.vocab_size < floor:
            raise HyperTokError(
                f"vocab_size {self.vocab_size} is too small: {len(SPECIALS)} specials + {N_BYTES} bytes + "
                f"{len(BASE_CHARS)} base characters + {MIN_FALLBACK} fallback pieces need at least {floor}"
            )


@dataclass
class Counts:
    """What the builder knows about a corpus: unit, character and n-gram counts."""

    units: Counter = field(default_factory=Counter)
    chars: Counter = field(default_factory=Counter)
    ngrams: Counter = field(default_factory=Counter)
    source: dict = field(default_factory=dict)
    sample: list = field(default_factory=list)


# -- counting --------------------------------------------------------------------------------
def _progress(iterable, progress: bool, desc: str):
    if not progress:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, unit=" lines", mininterval=0.5)


def count_corpus(paths, cfg: BuildConfig, progress: bool = False) -> Counts:
    """Stream the corpus: count units and characters, then n-grams of frequent units."""
    corpus = Corpus(paths, encoding=cfg.encoding)
    counts = Counts()
    units = counts.units
    findall = UNIT_RE.findall
    total = sum(p.stat().st_size for p in corpus.files)
    stride = max(1, int(total / (cfg.sample_mb * 1e6)))
    sample = counts.sample
    for i, line in enumerate(_progress(corpus, progress, "counting units")):
        units.update(findall(line))
        if i % stride == 0:
            sample.append(line)
    if not units:
        raise HyperTokError(f"empty corpus: {', '.join(map(str, corpus.files))} holds no text")
    for u, c in units.items():
        for ch in u:
            counts.chars[ch] += c
    counts.source = {"files": [p.name for p in corpus.files], "sha256": corpus.sha256, "bytes": corpus.n_bytes,
                     "chars": corpus.n_chars}
    if cfg.max_ngram >= 2:
        top = {u for u, _ in units.most_common(cfg.ngram_units)}
        counts.ngrams = _count_ngrams(corpus, top, cfg, progress)
    return counts


def _count_ngrams(corpus: Corpus, top: set[str], cfg: BuildConfig, progress: bool) -> Counter:
    words_only = cfg.mode == "concept"
    ngrams: Counter = Counter()
    findall = UNIT_RE.findall
    max_n = cfg.max_ngram
    limit = 4_000_000

    def flush(run: list[str], punct: list[bool]) -> None:
        m = len(run)
        for n in range(2, min(max_n, m) + 1):
            for i in range(m - n + 1):
                if words_only or any(punct[i:i + n]):
                    ngrams["".join(run[i:i + n])] += 1

    for line in _progress(corpus, progress, "counting n-grams"):
        run: list[str] = []
        punct: list[bool] = []
        for u in findall(line):
            if u in top:
                run.append(u)
                c = u[-1]
                punct.append(not (c.isalnum()))
            else:
                if len(run) > 1:
                    flush(run, punct)
                run, punct = [], []
        if len(run) > 1:
            flush(run, punct)
        if len(ngrams) > limit:  # keep memory bounded: rare n-grams cannot win a budget slot
            for k in [k for k, v in ngrams.items() if v <= 2]:
                del ngrams[k]
    return Counter({k: v for k, v in ngrams.items() if v >= cfg.min_ngram_count})


def count_wordlist() -> Counts:
    """Counts from the navec frequency list.

    navec is lower-case and has no context, so each word is counted as a space-prefixed
    unit (`` стол``), and, with assumed shares of 1/10 and 1/20 of its count, as a
    capitalised unit at the start of a line (``Стол``) and after a space (`` Стол``).
    """
    from .wordlist import NAVEC_FILE, navec_counts

    words, digest = navec_counts()
    counts = Counts()
    for w, c in words.items():
        counts.units[" " + w] += c
        cap = w[:1].upper() + w[1:]
        if cap != w:
            counts.units[cap] += c // 10
            counts.units[" " + cap] += c // 20
        for ch in w:
            counts.chars[ch] += c
    counts.source = {"files": [NAVEC_FILE], "sha256": digest, "bytes": 0, "chars": 0, "kind": "navec word list"}
    return counts


# -- candidate entries -----------------------------------------------------------------------
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


@dataclass
class Candidate:
    surface: str
    kind: str
    saving: float
    freq: int
    lemma: str = ""
    tags: str = ""
    forced: bool = False  # a user concept: kept whatever its measured use


def _unit_candidates(counts: Counts) -> list[Candidate]:
    out = []
    for u, c in counts.units.items():
        if len(u) < 2:
            continue
        kind = "punct" if unit_kind(u) in ("punct", "space") else "word"
        out.append(Candidate(u, kind, c * (fallback_cost(u) - 1), c))
    return out


def _ngram_candidates(counts: Counts, cfg: BuildConfig) -> list[Candidate]:
    total = sum(counts.units.values())
    out = []
    for g, c in counts.ngrams.items():
        parts = UNIT_RE.findall(g)
        n = len(parts)
        if n < 2:
            continue
        is_words = all(unit_kind(p) in ("word", "number") for p in parts)
        if is_words:
            if cfg.mode != "concept":
                continue
            pmi = math.log(c / total) - sum(math.log(counts.units[p] / total) for p in parts)
            if pmi < cfg.min_pmi:
                continue
        out.append(Candidate(g, "concept" if is_words else "punct", c * (n - 1), c))
    return out


def _morph_candidates(counts: Counts, words: list[Candidate], n_words: int, limit: int,
                      progress: bool) -> list[Candidate]:
    """Stems and endings of the (at most ``limit`` most useful) word forms that will not get
    an entry of their own."""
    from .morphology import analyse

    words_sorted = sorted(words, key=lambda c: (-c.saving, c.surface))
    kept = {c.surface for c in words_sorted[:n_words]}
    stems: dict[str, Candidate] = {}
    endings: Counter = Counter()
    tail = [c for c in words_sorted[n_words:n_words + limit] if c.freq >= 2]
    for cand in _progress(tail, progress, "morphology"):
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


def _user_concepts(path: str | None, top_saving: float) -> tuple[list[Candidate], dict[str, str]]:
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
    out, preferred = [], {}
    for phrase, sym in sorted(data.items()):
        if not phrase or not isinstance(phrase, str) or "\n" in phrase:
            raise HyperTokError(f"{p}: phrase {phrase!r} must be a non-empty one-line string")
        if sym is not None and not isinstance(sym, str):
            raise HyperTokError(f"{p}: symbol for {phrase!r} must be a string or null")
        surface = " " + phrase.strip(" ")
        out.append(Candidate(surface, "concept", top_saving * 2, 0, forced=True))
        if sym:
            preferred[surface] = sym
    return out, preferred


# -- assembling --------------------------------------------------------------------------------
def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("hypertok", "tokenizers", "pymorphy3", "pymorphy3-dicts-ru", "natasha"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def select_entries(counts: Counts, cfg: BuildConfig, progress: bool = False) -> tuple[list[Entry], dict[str, str]]:
    """Spend the budget: characters, fallback pieces, then entries by saving. Returns entries
    (ids assigned) and the user's preferred symbols by surface."""
    from .fallback import train_pieces

    chars = set(BASE_CHARS) | {ch for ch, c in counts.chars.items() if c >= cfg.min_char_count}
    chars -= {ch for ch in chars if 0xD800 <= ord(ch) <= 0xDFFF}
    fixed = len(SPECIALS) + N_BYTES + len(chars)
    n_fallback = max(MIN_FALLBACK, int(cfg.vocab_size * cfg.fallback_share))
    n_entries = cfg.vocab_size - fixed - n_fallback
    if n_entries < 0:
        raise HyperTokError(
            f"vocab_size {cfg.vocab_size} is too small for {fixed} specials, bytes and characters plus "
            f"{n_fallback} fallback pieces; use at least {fixed + n_fallback}"
        )

    words = _unit_candidates(counts)
    cands = words + _ngram_candidates(counts, cfg)
    if cfg.mode in ("morph", "concept"):
        n_word_entries = sum(1 for c in sorted(cands, key=lambda c: -c.saving)[:n_entries] if c.kind == "word")
        cands += _morph_candidates(counts, [w for w in words if w.kind == "word"], n_word_entries,
                                   cfg.max_morph_words, progress)
    top_saving = max((c.saving for c in cands), default=1.0)
    user, preferred_by_surface = _user_concepts(cfg.concepts, top_saving)
    cands = user + cands
    ranked: list[Candidate] = []
    seen = set(chars)
    for c in sorted(cands, key=lambda c: (-c.saving, c.surface)):
        if c.surface not in seen and c.saving > 0:
            seen.add(c.surface)
            ranked.append(c)

    # The fallback learns the tail: units the entries will not cover.
    covered = {c.surface for c in ranked[:n_entries]}
    stem_cover = set()
    if cfg.mode in ("morph", "concept"):
        stem_cover = {c.surface for c in ranked[:n_entries] if c.kind == "stem"}
    tail = []
    for u, c in sorted(counts.units.items()):
        if u in covered or len(u) < 2:
            continue
        if stem_cover:
            from .morphology import analyse

            a = analyse(u.lstrip(" ")) if c >= 2 and unit_kind(u) == "word" else None
            if a is not None and ((" " if u.startswith(" ") else "") + a.stem) in stem_cover:
                continue
        tail.append((u, c))
    if len(tail) > cfg.max_tail_units:  # the fallback needs a good sample of the tail, not all of it
        tail = sorted(sorted(tail, key=lambda uc: -uc[1])[: cfg.max_tail_units])
    if progress:
        print(f"training the fallback model ({n_fallback} pieces on {len(tail)} tail units) ...", flush=True)
    pieces = [p for p in train_pieces(tail, n_fallback) if p not in chars and not any(0xD800 <= ord(x) <= 0xDFFF for x in p)]

    room = cfg.vocab_size - fixed - len(pieces)
    piece_set = set(pieces)
    pool = [c for c in ranked if c.surface not in piece_set]
    if counts.sample:
        pool = _prune(pool[: int(room * cfg.overgenerate)], room, pieces, chars, counts, cfg, progress)
    # A fallback piece that is also a candidate (a word or stem the fallback found on its own)
    # keeps the candidate's kind, lemma and tags.
    known = {c.surface: c for c in ranked if c.surface in piece_set}
    entries = _assemble(pool[:room], pieces, chars, counts, known)
    _rescore(entries, counts)
    return entries, preferred_by_surface


def _usage(hf, sample: list[str], size: int):
    """How often each id is used when encoding the sample (a numpy array of ``size``)."""
    import numpy as np

    encs = hf.encode_batch(sample, add_special_tokens=False)
    ids = np.fromiter((i for e in encs for i in e.ids), dtype=np.int64)
    return np.bincount(ids, minlength=size)


def _rescore(entries: list[Entry], counts: Counts) -> None:
    """Final scores: ``-1 + ALPHA * log p``, with p the token's share of the sample's tokens
    (or of corpus counts when there is no sample, as for the navec word list)."""
    from .tokenizer import hf_tokenizer

    if counts.sample:
        hf = hf_tokenizer(entries)
        weights = _usage(hf, counts.sample, len(entries)).tolist()
    else:
        weights = [e.freq for e in entries]
    total = float(sum(weights)) + 0.5 * len(entries)
    for e, w in zip(entries, weights):
        if e.kind not in ("special", "byte"):
            e.score = -1.0 + ALPHA * math.log((w + 0.5) / total)


def _assemble(chosen: list[Candidate], pieces: list[str], chars: set[str], counts: Counts,
              known: dict[str, Candidate] | None = None) -> list[Entry]:
    """Entries with ids and scores: specials, bytes, then the rest by frequency."""
    entries: list[Entry] = [Entry(i, s, "special", _RARE) for i, s in enumerate(SPECIALS)]
    entries += [Entry(BYTE0 + b, byte_surface(b), "byte", _RARE) for b in range(N_BYTES)]
    body: list[Entry] = []
    for rank, c in enumerate(chosen):
        body.append(Entry(0, c.surface, c.kind, _ENTRY - 0.04 * rank / max(len(chosen), 1), c.freq, c.lemma, c.tags))
    by_len = sorted(pieces, key=lambda p: (-len(p), p))
    known = known or {}
    for rank, p in enumerate(by_len):
        score = _FALLBACK - 0.04 * rank / max(len(by_len), 1)
        c = known.get(p)
        if c is None:
            body.append(Entry(0, p, "fallback", score, counts.units.get(p, 0)))
        else:
            body.append(Entry(0, p, c.kind, score, c.freq, c.lemma, c.tags))
    char_list = sorted(chars, key=lambda ch: (-counts.chars.get(ch, 0), ch))
    for rank, ch in enumerate(char_list):
        body.append(Entry(0, ch, "char", _CHAR - 0.04 * rank / len(char_list), counts.chars.get(ch, 0)))
    body.sort(key=lambda e: (-e.freq, e.surface))
    for e in body:
        e.id = len(entries)
        entries.append(e)
    return entries


def _prune(pool: list[Candidate], room: int, pieces: list[str], chars: set[str], counts: Counts,
           cfg: BuildConfig, progress: bool) -> list[Candidate]:
    """Cut an over-complete candidate list down to ``room`` by measured usefulness.

    Each round encodes the corpus sample with the current vocabulary, counts how often
    each entry is used, and asks what removing it would cost: ``uses x (tokens of its best
    spelling without it - 1)``. The least useful entries go, as in Unigram LM pruning
    (Kudo 2018) but with token count, not likelihood, as the objective.
    """
    from .reference import fewest_tokens
    from .tokenizer import hf_tokenizer

    rounds = max(1, cfg.prune_rounds)
    for r in range(rounds):
        excess = len(pool) - room
        if excess <= 0:
            break
        entries = _assemble(pool, pieces, chars, counts)
        usage = _usage(hf_tokenizer(entries), counts.sample, len(entries))
        all_pieces = {e.surface for e in entries if e.kind not in ("special", "byte")}
        max_len = max(len(p) for p in all_pieces)
        id_of = {e.surface: e.id for e in entries}
        loss = {}
        for c in pool:
            u = int(usage[id_of[c.surface]])
            loss[c.surface] = u * (fewest_tokens(c.surface, all_pieces, max_len, forbid_whole=True) - 1) if u else 0
        if progress:
            print(f"pruning round {r + 1}: {len(pool)} candidates, {int(usage.sum())} tokens on the sample", flush=True)
        keep = len(pool) - (excess if r == rounds - 1 else max(excess // (rounds - r), 1))
        pool = sorted(pool, key=lambda c: (not c.forced, -loss[c.surface], -c.saving, c.surface))[:keep]
    return pool


def _add_lemmas(entries: list[Entry], progress: bool) -> None:
    from .morphology import lemma_and_tags

    words = [e for e in entries if e.kind == "word" and not e.lemma and unit_kind(e.surface) == "word"]
    for e in _progress(words, progress, "lemmas"):
        e.lemma, tags = lemma_and_tags(e.surface.lstrip(" "))
        e.tags = tags.split(" ")[0]


def build(corpus, out, cfg: BuildConfig | None = None, overwrite: bool = False, progress: bool = False) -> HyperTok:
    """Build a tokenizer directory from corpus files/folders (or the navec list if empty).

    >>> tok = build(["train.txt"], "tok32k", BuildConfig(vocab_size=32000, mode="word"))  # doctest: +SKIP
    """
    cfg = cfg or BuildConfig()
    out = Path(out)
    if out.exists() and not overwrite:
        raise HyperTokError(f"{out} already exists; pass --force (overwrite=True) or choose another --out")
    paths = [corpus] if isinstance(corpus, (str, os.PathLike)) else list(corpus)
    counts = count_corpus(paths, cfg, progress) if paths else count_wordlist()
    entries, preferred_by_surface = select_entries(counts, cfg, progress)
    _add_lemmas(entries, progress)

    corpus_chars = set(counts.chars)
    by_surface = {e.surface: e.id for e in entries}
    preferred = {by_surface[s]: sym for s, sym in preferred_by_surface.items() if s in by_surface}
    order = [e.id for e in sorted(entries, key=lambda e: (e.kind == "byte", -e.freq, e.id))]
    symbols = allocate([e.surface for e in entries], order, cfg.symbols, corpus_chars, preferred)
    for e, s in zip(entries, symbols):
        e.symbol = s

    concept_sha = hashlib.sha256(Path(cfg.concepts).read_bytes()).hexdigest() if cfg.concepts else None
    config = {
        "build": asdict(cfg),
        "corpus": counts.source,
        "concepts_sha256": concept_sha,
        "versions": _versions(),
        "kinds": dict(sorted(Counter(e.kind for e in entries).items())),
        "size": len(entries),
    }
    tok = HyperTok(entries, config)
    tok.save(out, overwrite=overwrite)
    return tok
