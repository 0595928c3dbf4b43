"""The one tokenizer interface of HyperTok's model side: :class:`Tokenizer`.

What it does: states what every tokenizer that is not being built offers to the
comparison lab, the VRAM sweep and adaptation: ``encode``/``decode`` (and their batch
forms) between text and ids with no BOS/EOS, ``vocab_size`` (the number of ids; for an
adapted tokenizer the number of model rows), the specials' ids, the UTF-8 bytes each id
spells (``piece_bytes``, used to place token boundaries in the text) and the ids that
count as fallback. Byte pieces ``<0xAB>`` are read by the one parser,
:func:`hypertok.core.format.parse_byte_piece`.

What it does not do: no loading (see :func:`hypertok.registry.load_tokenizer`), no
metrics, no model. Follows issue 9 ("one tokenizer registry"), which replaced five
wrappers (baselines' subjects, ``vram.Tok``, ``transfer.BaseVocab``/``NewVocab``/
``AdaptedTokenizer``) by this class.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from ..core.format import parse_byte_piece

__all__ = ["SP_SPACE", "Tokenizer", "Unavailable", "parse_byte_piece", "piece_surface"]

SP_SPACE = "\u2581"  # SentencePiece's and Metaspace's visible space


class Unavailable(Exception):
    """A tokenizer that cannot be had here; ``str(e)`` says why (reported as "skipped")."""


def piece_surface(piece: str) -> str:
    """The text of a ``▁``-style piece (``▁`` stands for a space).

    >>> piece_surface("\u2581мир")
    ' мир'
    """
    return piece.replace(SP_SPACE, " ")


class Tokenizer(ABC):
    """One tokenizer behind the interface that compare, vram and adapt all use.

    Subclasses set ``name``, ``family`` and ``vocab_size`` and implement ``encode``,
    ``decode`` and ``_build_piece_bytes``; batch methods default to loops.
    ``piece_bytes[id]`` is the UTF-8 bytes the id stands for (``b""`` for control tokens,
    ``None`` where unknown, e.g. an ``<unk>`` that may stand for any character).
    ``dummy_prefix`` is True when the tokenizer adds one space in front of every text it
    encodes (SentencePiece, Metaspace) so that the pieces of ``encode(t)`` spell ``" " + t``.
    ``fallback_ids`` are the ids counted as "fallback" (``None``: not applicable).

    >>> from hypertok.registry import load_tokenizer
    >>> b = load_tokenizer("bytes")
    >>> b.encode("ёж"), b.decode([209, 145, 208, 182]), b.vocab_size, b.piece_bytes[65]
    ([209, 145, 208, 182], 'ёж', 256, b'A')
    """

    name: str = "?"
    family: str = "?"
    vocab_size: int = 0
    bos_id: int | None = None
    eos_id: int | None = None
    pad_id: int | None = None
    unk_id: int | None = None
    dummy_prefix: bool = False
    fallback_ids: frozenset[int] | None = None
    fallback_note: str = ""
    fallback_ids_wide: frozenset[int] | None = None  # a wider rule, reported beside (HyperTok: every "char")

    def __init__(self) -> None:
        self.info: dict = {}
        self._piece_bytes: list[bytes | None] | None = None

    @abstractmethod
    def encode(self, text: str) -> list[int]:
        """Text -> ids, no BOS/EOS."""

    @abstractmethod
    def decode(self, ids: Sequence[int]) -> str:
        """Ids -> text."""

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def decode_batch(self, batch: Sequence[Sequence[int]]) -> list[str]:
        return [self.decode(ids) for ids in batch]

    @abstractmethod
    def _build_piece_bytes(self) -> list[bytes | None]:
        """The table behind :attr:`piece_bytes`, built on first use."""

    @property
    def piece_bytes(self) -> list[bytes | None]:
        if self._piece_bytes is None:
            self._piece_bytes = self._build_piece_bytes()
        return self._piece_bytes

    def decode_pieces(self, ids: Sequence[int]) -> str:
        """The text the pieces spell, byte by byte (unknown pieces spell nothing).

        Unlike ``decode`` this never strips a leading space, so spans concatenate.
        """
        table = self.piece_bytes
        return b"".join(table[i] or b"" for i in ids).decode("utf-8", errors="replace")

    def is_new_token(self, i: int) -> bool:
        """Whether model id ``i`` is a vocabulary entry the base model did not have (adapted tokenizers)."""
        return False

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, vocab_size={self.vocab_size})"
