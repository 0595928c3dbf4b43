"""The fallback subword model: what covers the text that HyperTok entries do not.

Three designs (``BuildConfig.backbone``):

- ``bpe`` (default since issue 12): the *backbone*, a BPE model trained on every unit of
  the corpus with its true count (:func:`train_backbone`), as strong as a BPE baseline of
  its size. Its pieces then compete with the HyperTok entries for the budget on measured
  usefulness (``hypertok.builder.select``), so entries replace backbone pieces only where
  they save more tokens on the corpus sample.
- ``superbpe`` (issue 12): the same competition, but the backbone is SuperBPE (Liu et al.
  2025) trained on the corpus files by the lab's own trainer
  (:func:`hypertok.registry.trained.trained`, cached like ``hypertok compare``'s baselines;
  :func:`superbpe_pieces`): its second stage merges across spaces, so the backbone already
  holds superwords (``, что``, `` в том числе``) and the entries must beat those.
- ``tail`` (issues 2-11): a Unigram model trained on the *tail* of the corpus, the units
  that no entry covers, each counted at most twice (:func:`train_pieces`), with a fixed
  share of the budget. On text unlike the corpus it is weaker than a plain BPE of the
  same total size (issue 12 measured it).

Below the pieces sit single characters and, for anything never seen, the 256 byte tokens:
there is never an unknown token.

Only the trained piece *set* is kept: the Unigram trainer is multi-threaded and its
scores vary in the last digits from run to run, while its piece set does not. Scores are
assigned by the vocabulary builder, so a build is byte-for-byte deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..core.format import SPECIALS
from ..core.pipeline import untrained


def train_pieces(units: Iterable[tuple[str, int]], size: int, max_piece_length: int = 16) -> list[str]:
    """Train a Unigram model of ``size`` pieces on ``(unit, count)`` pairs; return its pieces.

    Counts are capped at 2 repeats per unit: the tail is made of rare units, and the cap
    keeps training time proportional to the number of distinct units.

    >>> pieces = train_pieces([(" стол", 3), (" столы", 2), (" стул", 1)], 20)
    >>> " " in pieces and "с" in pieces
    True
    """
    from tokenizers import trainers

    items = sorted(units)

    def stream():
        for unit, count in items:
            for _ in range(min(count, 2)):
                yield unit

    tok = untrained("unigram")
    trainer = trainers.UnigramTrainer(
        vocab_size=max(size, 2), show_progress=False, max_piece_length=max_piece_length,
        unk_token="<unk>", special_tokens=["<unk>"], shrinking_factor=0.5, n_sub_iterations=1,
    )
    tok.train_from_iterator(stream(), trainer, length=sum(min(c, 2) for _, c in items))
    return sorted(p for p in tok.get_vocab() if p != "<unk>")


def train_backbone(units: Iterable[tuple[str, int]], size: int, max_piece_length: int = 24) -> list[str]:
    """Train a BPE model of about ``size`` pieces on ``(unit, count)`` pairs, true counts; return its pieces.

    Each unit is one pre-tokenized word (units carry their leading space, `` стол``), so
    pieces never cross a unit boundary, as in a BPE baseline with whitespace
    pre-tokenization. Single characters are included in the returned pieces.

    >>> pieces = train_backbone([(" стол", 30), (" столы", 20), (" стул", 10)], 20)
    >>> " стол" in pieces
    True
    """
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers

    items = sorted(units)

    def stream():  # "u\nu\nu": the trainer counts the unit as many times as it occurs
        for unit, count in items:
            if "\n" not in unit:
                yield "\n".join([unit] * count)

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("\n"), behavior="removed")
    trainer = trainers.BpeTrainer(vocab_size=max(size, 2), show_progress=False, min_frequency=2,
                                  max_token_length=max_piece_length)
    tok.train_from_iterator(stream(), trainer, length=len(items))
    return sorted(tok.get_vocab())


def superbpe_pieces(paths, size: int, progress: bool = False, cache_dir=None) -> list[str]:
    """The pieces of SuperBPE at ``size`` tokens trained on the corpus files ``paths``, as text.

    Trained (or taken from the cache) by :func:`hypertok.registry.trained.trained`, the
    ``superbpe`` baseline of ``hypertok compare``, so a build and a comparison on the same
    files share one model. Its byte-level pieces are turned back into text; a piece that is
    not whole UTF-8 (part of a character) or holds a newline is left out: HyperTok spells
    those with characters and byte tokens. Specials and single characters are left out too
    (the builder has its own). ``cache_dir``: the baselines' cache (default: ``trained``'s).

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a.txt").write_text("и в том числе, что и в том числе\\n" * 50)
    >>> pieces = superbpe_pieces([d / "a.txt"], 320, cache_dir=d / "cache")
    >>> " в том" in pieces or " в том числе" in pieces
    True
    """
    from ..registry.bytelevel import CHAR_TO_BYTE
    from ..registry.trained import trained

    tok = trained("superbpe", paths, size, cache_dir=cache_dir, progress=progress)
    out = []
    for p in tok.tk.get_vocab():
        if p in SPECIALS:
            continue
        try:
            text = bytes(CHAR_TO_BYTE[c] for c in p).decode("utf-8")
        except (KeyError, UnicodeDecodeError):
            continue
        if len(text) > 1 and "\n" not in text:
            out.append(text)
    return sorted(out)
