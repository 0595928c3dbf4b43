"""The fallback subword model: what covers the text that HyperTok entries do not.

It is an HF ``tokenizers`` Unigram model trained on the *tail* of the corpus, the units
that no entry covers, so its budget is spent where entries do not reach. Below it sit
single characters and, for anything never seen, the 256 byte tokens: there is never an
unknown token.

Only the trained piece *set* is kept: the Unigram trainer is multi-threaded and its
scores vary in the last digits from run to run, while its piece set does not. Scores are
assigned by the vocabulary builder, so a build is byte-for-byte deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable

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
