"""Selection: spend the token budget on characters, fallback pieces and the best candidates.

The budget is one number, the total vocabulary size. It is spent in this order:

1. 4 special tokens and 256 byte tokens (so nothing is ever unknown), and the special tokens
   chosen at build time (``special_tokens``, the last ids; no piece may spell one);
2. single characters: printable ASCII, the Russian alphabet, and every character seen at
   least ``min_char_count`` times;
3. everything else is one competition (``backbone="bpe"``, the default since issue 12): the
   pieces of a BPE trained on the whole corpus at ``fallback_share`` of the budget
   (``hypertok.builder.fallback``) and the candidate entries of the build's mode
   (``hypertok.builder.candidates``, ranked by the tokens they save) form one pool that
   ``_prune`` cuts to the room by measured usefulness on the corpus sample. An entry takes
   a slot only where it saves more tokens than the backbone piece it displaces, so the
   vocabulary starts from a full-size subword model and never spends its budget on
   entries that do not pay (issue 12, "never worse than the backbone").
   ``backbone="superbpe"`` takes SuperBPE's pieces (superwords across spaces included)
   instead of the BPE's, so an entry must beat the superword baseline's own pieces.
   With ``backbone="tail"`` (issues 2-11) a Unigram trained on the tail of the corpus takes
   a fixed ``fallback_share`` and only the entries are pruned.

With ``holdout`` (issue 12) the candidates are counted on some lines and their use is
measured on others (``Counts.folds``): a candidate proposed by fold 0's counts is scored only
on fold 1's sample, encoded with a vocabulary from which the candidates proposed by fold 1
alone are left out, so it competes with the backbone and with other out-of-fold entries,
never with what was fitted to the lines it is measured on. With ``crossfit`` the same holds
the other way round, and a candidate proposed by both folds is scored on both. The backbone
(trained on the whole corpus: it is the subword model the entries must beat) and the user's
concepts are on every sample.

Score layout (higher is better; the encoder maximises the sum). While building, every token
costs about 1 (entries a little less than fallback pieces, which cost a little less than
characters), so the encoder finds the fewest tokens. The final scores are
``-1 + ALPHA * log p(token)``, p measured on the corpus sample: still fewest tokens first,
but among equally short spellings the most probable one wins (" план"+"а", not " пл"+"ана").
They are rounded to multiples of ``2**-12`` (``hypertok.core.format.grid_score``), so that
SentencePiece's float32 encoder gives exactly the ids of ``tokenizer.json`` (issue 12).

What it does not do: no corpus reading, no symbols, no files (``hypertok.builder.build``).
"""

from __future__ import annotations

import math
from dataclasses import replace

from ..core.format import (BYTE0, CHAR_SCORE, ENTRY_SCORE, N_BYTES, PIECE_SCORE, RARE_SCORE, SCORE_SPREAD, SPECIALS,
                           Entry, byte_piece, grid_score)
from ..core.lossless import has_surrogate, is_surrogate
from ..core.pipeline import hf_tokenizer
from ..errors import HyperTokError
from .candidates import GENERATORS, Candidate, user_concepts
from .config import BASE_CHARS, MIN_FALLBACK, BuildConfig
from .corpus import Counts
from .pretokenize import unit_kind

ALPHA = 0.002
NO_SUPERBPE = ("backbone=superbpe trains SuperBPE on the corpus files and prunes on a sample of them; a build "
               "from the navec word list (--corpus navec) has neither: give --corpus FILES, or --backbone bpe")
TAIL_SHARE = 0.18  # the tail fallback's share when backbone="bpe" cannot run (no corpus sample)


def effective_config(cfg: BuildConfig, counts: Counts) -> BuildConfig:
    """The config the build really runs: ``backbone="bpe"`` needs a corpus sample to compete on
    measured use, and a word list (navec) has none, so it trains the tail fallback at
    ``TAIL_SHARE``; the config then says so (``backbone="tail"``, ``fallback_share=0.18``), and
    ``config.json`` records what was trained, not what was asked for (issue 24, item 16).

    >>> from types import SimpleNamespace
    >>> c = effective_config(BuildConfig(), SimpleNamespace(sample=[]))
    >>> c.backbone, c.fallback_share
    ('tail', 0.18)
    >>> effective_config(BuildConfig(), SimpleNamespace(sample=["a"])).backbone
    'bpe'
    """
    if cfg.backbone == "bpe" and not counts.sample:
        return replace(cfg, backbone="tail", fallback_share=TAIL_SHARE)
    return cfg


def select_entries(counts: Counts, cfg: BuildConfig, progress: bool = False,
                   paths: list | None = None) -> tuple[list[Entry], dict[str, str]]:
    """Spend the budget: characters, fallback pieces, then entries by saving. Returns entries
    (ids assigned; the build-time special tokens last) and the user's preferred symbols by surface.
    ``paths``: the corpus files, which ``backbone="superbpe"`` trains SuperBPE on."""
    reserved = list(cfg.special_tokens)
    if reserved:  # their slots come off the budget, and no piece may have their surface
        cfg = replace(cfg, vocab_size=cfg.vocab_size - len(reserved), special_tokens=[])
    chars = set(BASE_CHARS) | {ch for ch, c in counts.chars.items() if c >= cfg.min_char_count}
    chars -= {ch for ch in chars if is_surrogate(ch)}
    fixed = len(SPECIALS) + N_BYTES + len(chars)
    use_backbone = cfg.backbone in ("bpe", "superbpe") and bool(counts.sample)
    if cfg.backbone == "superbpe" and not (use_backbone and paths):
        raise HyperTokError(NO_SUPERBPE)
    # The backbone competes on measured use, which needs a corpus sample; a word list (navec)
    # has none, so it gets the tail fallback at its share of issues 2-11.
    share = cfg.fallback_share if cfg.backbone == "tail" else TAIL_SHARE
    n_fallback = max(MIN_FALLBACK, int(cfg.vocab_size * share))
    n_entries = cfg.vocab_size - fixed - n_fallback
    if use_backbone:  # pieces and entries share the room; guess half each
        n_entries = (cfg.vocab_size - fixed - MIN_FALLBACK) // 2
    if n_entries < 0:
        raise HyperTokError(
            f"vocab_size {cfg.vocab_size} is too small for {fixed} specials, bytes and characters plus "
            f"{n_fallback} fallback pieces; use at least {fixed + n_fallback}"
        )

    generator = GENERATORS[cfg.mode]()
    if counts.folds:
        cands = _fold_candidates(generator, counts, cfg, n_entries, progress)
    else:
        cands = generator.candidates(counts, cfg, n_entries, progress)
    top_saving = max((c.saving for c in cands), default=1.0)
    user, preferred_by_surface = user_concepts(cfg.concepts, top_saving)
    cands = user + cands
    ranked: list[Candidate] = []
    seen = set(chars) | set(reserved)
    for c in sorted(cands, key=lambda c: (-c.saving, c.surface)):
        if c.surface not in seen and c.saving > 0:
            seen.add(c.surface)
            ranked.append(c)

    if use_backbone:
        pool, pieces = _with_backbone(ranked, chars, counts, cfg, fixed, progress, set(reserved), paths)
        known = {}
    else:
        pieces = _tail_pieces(ranked, chars, counts, cfg, fixed, n_entries, n_fallback, generator.morphology,
                              progress)
        pieces = [p for p in pieces if p not in reserved]
        room = cfg.vocab_size - fixed - len(pieces)
        piece_set = set(pieces)
        pool = [c for c in ranked if c.surface not in piece_set]
        if counts.sample:
            pool = _prune(pool[: int(room * cfg.overgenerate)], room, pieces, chars, counts, cfg, progress)
        pool = pool[:room]
        # A fallback piece that is also a candidate (a word or stem the fallback found on its own)
        # keeps the candidate's kind, lemma and tags.
        known = {c.surface: c for c in ranked if c.surface in piece_set}
    entries = _assemble(pool, pieces, chars, counts, known)
    _rescore(entries, counts)
    entries += [Entry(len(entries) + k, s, "special", RARE_SCORE) for k, s in enumerate(reserved)]
    return entries, preferred_by_surface


def _fold_candidates(generator, counts: Counts, cfg: BuildConfig, n_entries: int,
                     progress: bool) -> list[Candidate]:
    """``holdout``: the candidates of each proposing fold, one per surface, each marked with the
    folds that proposed it; savings and counts add up over the folds."""
    merged: dict[str, Candidate] = {}
    for f, fold in enumerate(counts.folds):
        if not fold.units:
            continue
        best: dict[str, Candidate] = {}
        for c in generator.candidates(fold, cfg, n_entries, progress):
            if c.surface not in best or c.saving > best[c.surface].saving:
                best[c.surface] = c
        for surface, c in best.items():
            m = merged.get(surface)
            if m is None:
                merged[surface] = replace(c, folds=(f,))
            else:
                m.saving += c.saving
                m.freq += c.freq
                m.folds += (f,)
    return list(merged.values())


def _with_backbone(ranked: list[Candidate], chars: set[str], counts: Counts, cfg: BuildConfig, fixed: int,
                   progress: bool, reserved: frozenset[str] | set[str] = frozenset(),
                   paths: list | None = None) -> tuple[list[Candidate], list[str]]:
    """``backbone=bpe``: a BPE of ``fallback_share`` x the budget, trained on every unit with
    its true count; its pieces join the entry candidates and all compete on measured use.
    ``backbone=superbpe``: the same with SuperBPE trained on the corpus files ``paths``.

    A backbone piece that is also a candidate (a whole word form, a punctuation run) enters as
    that candidate, with its kind; the others enter as ``fallback`` pieces. Returns the pruned
    pool (entries and pieces together, at most the room) and no separate fixed pieces.
    """
    from .fallback import superbpe_pieces, train_backbone

    room = cfg.vocab_size - fixed
    size = max(MIN_FALLBACK, int(cfg.vocab_size * cfg.fallback_share))
    if cfg.backbone == "superbpe":
        # SuperBPE's trainer needs 256 bytes + 4 specials besides its merges
        trained_pieces = superbpe_pieces(paths, max(size, 300 + MIN_FALLBACK), progress)
    else:
        if progress:
            print(f"training the backbone BPE ({size} pieces on {len(counts.units)} units) ...", flush=True)
        trained_pieces = train_backbone(counts.units.items(), size)
    bpe = [p for p in trained_pieces
           if len(p) > 1 and p not in reserved and not has_surrogate(p)]
    by_surface = {c.surface: c for c in ranked}
    backbone = []
    for p in bpe:
        c = by_surface.get(p)  # a backbone piece is on every sample, whichever fold proposed it as an entry
        backbone.append(replace(c, folds=()) if c is not None else Candidate(p, "fallback", 0.0, counts.units.get(p, 0)))
    in_backbone = {c.surface for c in backbone}
    n_extra = max(room, int(room * cfg.overgenerate) - len(backbone))
    extra = [c for c in ranked if c.surface not in in_backbone][:n_extra]
    pool = backbone + extra
    # Endings are few and every stem needs them; measured one by one while whole forms still
    # shadow them, they would go first. Keep them (a few hundred to two thousand tokens).
    pool = [replace(c, forced=True) if c.kind == "ending" else c for c in pool]
    pool = _prune(pool, room, [], chars, counts, cfg, progress)
    return pool[:room], []


def _tail_pieces(ranked: list[Candidate], chars: set[str], counts: Counts, cfg: BuildConfig, fixed: int,
                 n_entries: int, n_fallback: int, morphology: bool, progress: bool) -> list[str]:
    """``backbone=tail``: Unigram pieces trained on the units the top entries will not cover."""
    from .fallback import train_pieces

    covered = {c.surface for c in ranked[:n_entries]}
    stem_cover = set()
    if morphology:
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
    # The Unigram trainer needs a piece for every character it sees (and <unk>): fewer crashed
    # inside it just above the floor (issue 13). Give it that room, or say what size works.
    tail_chars = len({ch for u, _ in tail for ch in u}) + 1
    if n_fallback < tail_chars:
        n_fallback = tail_chars
        if fixed + n_fallback > cfg.vocab_size:
            raise HyperTokError(
                f"vocab_size {cfg.vocab_size} is too small for this corpus: {fixed} specials, bytes and characters "
                f"plus a fallback model holding the {tail_chars - 1} characters of the corpus tail need at least "
                f"{fixed + n_fallback}")
    if progress:
        print(f"training the fallback model ({n_fallback} pieces on {len(tail)} tail units) ...", flush=True)
    return [p for p in train_pieces(tail, n_fallback) if p not in chars and not has_surrogate(p)]


def _usage(hf, sample: list[str], size: int):
    """How often each id is used when encoding the sample (a numpy array of ``size``)."""
    import numpy as np

    encs = hf.encode_batch(sample, add_special_tokens=False)
    ids = np.fromiter((i for e in encs for i in e.ids), dtype=np.int64)
    return np.bincount(ids, minlength=size)


def _rescore(entries: list[Entry], counts: Counts) -> None:
    """Final scores: ``-1 + ALPHA * log p`` on the score grid, with p the token's share of the
    sample's tokens (or of corpus counts when there is no sample, as for the navec word list)."""
    if counts.sample:
        hf = hf_tokenizer(entries)
        weights = _usage(hf, counts.sample, len(entries)).tolist()
    else:
        weights = [e.freq for e in entries]
    total = float(sum(weights)) + 0.5 * len(entries)
    for e, w in zip(entries, weights):
        if e.kind not in ("special", "byte"):
            e.score = grid_score(-1.0 + ALPHA * math.log((w + 0.5) / total))


def _assemble(chosen: list[Candidate], pieces: list[str], chars: set[str], counts: Counts,
              known: dict[str, Candidate] | None = None) -> list[Entry]:
    """Entries with ids and scores: specials, bytes, then the rest by frequency."""
    entries: list[Entry] = [Entry(i, s, "special", RARE_SCORE) for i, s in enumerate(SPECIALS)]
    entries += [Entry(BYTE0 + b, byte_piece(b), "byte", RARE_SCORE) for b in range(N_BYTES)]
    body: list[Entry] = []
    for rank, c in enumerate(chosen):
        base = PIECE_SCORE if c.kind == "fallback" else ENTRY_SCORE  # backbone pieces rank as fallback pieces
        score = base - SCORE_SPREAD * rank / max(len(chosen), 1)
        body.append(Entry(0, c.surface, c.kind, score, c.freq, c.lemma, c.tags))
    by_len = sorted(pieces, key=lambda p: (-len(p), p))
    known = known or {}
    for rank, p in enumerate(by_len):
        score = PIECE_SCORE - SCORE_SPREAD * rank / max(len(by_len), 1)
        c = known.get(p)
        if c is None:
            body.append(Entry(0, p, "fallback", score, counts.units.get(p, 0)))
        else:
            body.append(Entry(0, p, c.kind, score, c.freq, c.lemma, c.tags))
    char_list = sorted(chars, key=lambda ch: (-counts.chars.get(ch, 0), ch))
    for rank, ch in enumerate(char_list):
        body.append(Entry(0, ch, "char", CHAR_SCORE - SCORE_SPREAD * rank / len(char_list), counts.chars.get(ch, 0)))
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

    With ``holdout`` each fold's sample is encoded with the pool less the candidates that
    fold alone proposed, and a candidate's cost is summed over the samples it was not
    counted on, scaled up to the whole sample (a candidate of one fold is measured on half
    of it when cross-fitted).
    """
    if counts.folds:
        samples = [(f, fold.sample) for f, fold in enumerate(counts.folds) if fold.sample]
    else:
        samples = [(None, counts.sample)]
    size = {f: sum(map(len, sample)) for f, sample in samples}
    total = sum(size.values())
    rounds = max(1, cfg.prune_rounds)
    for r in range(rounds):
        excess = len(pool) - room
        if excess <= 0:
            break
        loss = dict.fromkeys((c.surface for c in pool), 0)
        seen_on = dict.fromkeys(loss, 0)  # characters of the samples each candidate was measured on
        n_tokens = 0
        for f, sample in samples:
            here = [c for c in pool if f is None or not c.folds or any(g != f for g in c.folds)]
            entries = _assemble(here, pieces, chars, counts)
            usage = _usage(hf_tokenizer(entries), sample, len(entries))
            n_tokens += int(usage.sum())
            all_pieces = {e.surface for e in entries if e.kind not in ("special", "byte")}
            max_len = max(len(p) for p in all_pieces)
            id_of = {e.surface: e.id for e in entries}
            for c in here:
                u = int(usage[id_of[c.surface]])
                if u:
                    loss[c.surface] += u * (fewest_tokens(c.surface, all_pieces, max_len, forbid_whole=True) - 1)
                seen_on[c.surface] += size[f]
        loss = {s: v * total / seen_on[s] if seen_on[s] else 0 for s, v in loss.items()}
        if progress:
            print(f"pruning round {r + 1}: {len(pool)} candidates, {n_tokens} tokens on the sample", flush=True)
        keep = len(pool) - (excess if r == rounds - 1 else max(excess // (rounds - r), 1))
        pool = sorted(pool, key=lambda c: (not c.forced, -loss[c.surface], -c.saving, c.surface))[:keep]
    return pool


def fewest_tokens(text: str, pieces: set[str], max_len: int, forbid_whole: bool = False) -> int:
    """The fewest pieces that spell ``text`` (unknown characters count one each).

    With ``forbid_whole`` the piece equal to the whole text is not used: this is what the
    builder asks to learn what removing an entry would cost.

    >>> fewest_tokens(" в том", {" в", " том", " в том", " ", "т", "о", "м"}, 6, forbid_whole=True)
    2
    """
    n = len(text)
    inf = n + 1
    best = [0] + [inf] * n
    for start in range(n):
        b = best[start] + 1
        for end in range(start + 1, min(n, start + max_len) + 1):
            if b < best[end] and (end - start == 1 or text[start:end] in pieces):
                if forbid_whole and start == 0 and end == n:
                    continue
                best[end] = b
    return best[n]
