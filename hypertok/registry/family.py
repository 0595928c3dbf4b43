"""The base of a vocabulary transfer: one interface, :class:`BaseFamily`, for every kind of base tokenizer.

What it does (issue 21, "base families as classes"): states what vocabulary transfer needs
from a base model's tokenizer, so that planning (:mod:`.plan`), the model tokenizer
(:mod:`.model_tokenizer`) and the adapted tokenizer (:mod:`.adapted`) never ask which kind
of base they hold:

- the piece view, set by each reader: ``pieces``, ``surfaces`` (the text of each piece,
  ``""`` for control, unknown and byte pieces), ``bytes_of``, ``byte_ids``, ``single``
  (text -> id), the specials' ids, and lossless ``encode``/``encode_batch``/``decode`` and
  ``pieces_for`` (``decode(encode(x)) == x`` for every Python string);
- how a model folder is recognised and read (:meth:`~BaseFamily.claims`,
  :meth:`~BaseFamily.find`), what a recipe records of it (:meth:`~BaseFamily.record`), how it
  is saved into an adapter folder and read back (:meth:`~BaseFamily.save`,
  :meth:`~BaseFamily.load_saved`);
- its rows of the ``extend`` model tokenizer (:meth:`~BaseFamily.model_rows`), an entry's
  text as a model piece (:meth:`~BaseFamily.model_content`), and that tokenizer's model,
  pre-tokenizer and decoder (:meth:`~BaseFamily.extend_parts`);
- its control tokens by name (:meth:`~BaseFamily.control_names`) and whether it puts bos
  first when its ``tokenizer_config.json`` does not say (:meth:`~BaseFamily.default_add_bos`).

The kinds, one class each, in the table :data:`hypertok.registry.bases.BASE_FAMILIES`:
a SentencePiece ``tokenizer.model`` (:class:`~hypertok.registry.spm.LosslessSentencePiece`),
a SentencePiece-style ``tokenizer.json`` (BPE with byte fallback, ``▁`` for spaces: Gemma's
and Mistral's HF folders; :class:`~hypertok.registry.sentencepiece_json.LosslessSentencePieceJson`)
and a byte-level BPE ``tokenizer.json`` (Llama 3, Tekken;
:class:`~hypertok.registry.bytelevel.LosslessByteLevel`). :class:`TokenizerJsonFamily` is what
the two ``tokenizer.json`` kinds share: bos/eos/unk/pad named by the ``tokenizer_config.json``
beside the file, and kept in the recipe. :class:`LosslessPieces` is the lossless ``encode``,
``encode_batch``, ``decode`` and ``pieces_for`` every kind shares (what its library cannot take
spelled with byte pieces, :func:`hypertok.core.lossless.encode_escaping`), and
:class:`LosslessTokenizerJson` that over a ``tokenizer.json``.

What it does not do: no file format is read here (each kind's own module does), and the
table and :func:`~hypertok.registry.bases.find_base` live in :mod:`.bases`. The shape follows
tokenkit's ``model_kinds.py`` and peft's tuner classes: a new base kind is one subclass and
one row of the table.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

from ..core.format import CHAR_SCORE, PIECE_SCORE, RARE_SCORE, SCORE_SPREAD
from ..core.lossless import decode_lossless, encode_escaping
from ..errors import HyperTokError
from .recipe import BASE_TOKENIZER_JSON

__all__ = ["BaseFamily", "LosslessPieces", "TokenizerJsonFamily", "LosslessTokenizerJson", "BASE_PIECE_SCORE",
           "BASE_PIECE_SPREAD", "CHAR_SCORE", "RARE_SCORE", "text_rows", "read_tokenizer_json", "special_name",
           "template_bos"]

# Unigram scores of the model tokenizer (the builder's table, hypertok.core.format): HyperTok
# entries keep theirs (-1 + 0.002 log p, about -1.01..-1.04); multi-character base pieces
# follow at -1.05..-1.09 by the base's own ranking, single characters at -1.10, and control,
# byte, unused and filler pieces at -50, so they are never chosen over text.
BASE_PIECE_SCORE, BASE_PIECE_SPREAD = PIECE_SCORE, SCORE_SPREAD

# The reader of a folder's tokenizer.json, parsed on its first call (find_base reads it once for every kind)
TokenizerJson = Callable[[], dict]


class BaseFamily(ABC):
    """One kind of base tokenizer: what vocabulary transfer needs of it (see the module docstring).

    Subclasses also derive from :class:`~hypertok.registry.base.Tokenizer` and set the piece view.
    ``kind`` is what a recipe records (and :func:`~hypertok.registry.bases.load_saved_base` reads
    back); ``saved_as`` the name of the base's file in an adapter folder; ``byte_level``: the
    ``extend`` model tokenizer writes its pieces in GPT-2's byte-level characters, so it spells
    every byte itself (no byte fallback, no control string to escape).
    """

    kind: ClassVar[str]
    saved_as: ClassVar[str]
    byte_level: ClassVar[bool] = False

    path: Path
    name: str
    pieces: list[str]
    surfaces: list[str]
    bytes_of: list[int | None]
    byte_ids: dict[int, int]
    single: dict[str, int]
    bos_id: int | None
    eos_id: int | None
    unk_id: int | None
    pad_id: int | None

    # ------------------------------------------------------------------ finding, saving, loading
    @classmethod
    @abstractmethod
    def claims(cls, folder: Path, tokenizer_json: TokenizerJson) -> bool:
        """Whether the tokenizer of a model folder is of this kind (``tokenizer_json()``: the folder's
        ``tokenizer.json``, parsed; call it only where the folder has one)."""

    @classmethod
    @abstractmethod
    def find(cls, folder: str | os.PathLike, tokenizer_json: TokenizerJson | None = None) -> "BaseFamily":
        """The base tokenizer of a model folder of this kind."""

    @classmethod
    @abstractmethod
    def load_saved(cls, path: Path, record: dict) -> "BaseFamily":
        """The base saved as ``path`` in an adapter folder, with the recipe's ``record`` of it."""

    def record(self) -> dict:
        """What a recipe keeps about this base: its kind and the file it is saved as."""
        return {"kind": self.kind, "file": self.saved_as}

    def save(self, directory: str | os.PathLike) -> str:
        """Copy the base's file into an adapter folder; its name there."""
        shutil.copyfile(self.path, Path(directory) / self.saved_as)
        return self.saved_as

    # ------------------------------------------------------------------ what serving needs
    @abstractmethod
    def control_names(self) -> list[str]:
        """The base's control tokens by name (``<s>``, ``[INST]``, ``<|start_header_id|>``)."""

    def default_add_bos(self) -> bool:
        """Whether the base puts bos first where its ``tokenizer_config.json`` has no ``add_bos_token``."""
        return True

    # ------------------------------------------------------------------ the extend model tokenizer
    @abstractmethod
    def model_rows(self) -> tuple[list[tuple[str, float]], list[str]]:
        """(content, Unigram score) of every base row in the ``extend`` model tokenizer, and the
        names of the pieces that file reads as special tokens."""

    def model_content(self, surface: str) -> str:
        """An entry's text as a piece of the ``extend`` model tokenizer over this base."""
        return surface

    def extend_parts(self, pieces: list[tuple[str, float]]):
        """The ``extend`` model tokenizer's Unigram model over ``pieces``, the pre-tokenizer that
        follows the line split (None: none) and the decoder. SentencePiece-style: pieces are text,
        ``<0xAB>`` byte fallback, a byte-fusing decoder (HyperTok's own pipeline)."""
        from tokenizers import decoders, models

        return (models.Unigram(pieces, unk_id=self.unk_id, byte_fallback=True), None,
                decoders.Sequence([decoders.ByteFallback(), decoders.Fuse()]))


class LosslessPieces(ABC):
    """What the lossless base readers (:class:`~hypertok.registry.spm.LosslessSentencePiece`,
    :class:`~hypertok.registry.bytelevel.LosslessByteLevel`,
    :class:`~hypertok.registry.sentencepiece_json.LosslessSentencePieceJson`) share: ``encode``
    spells the spans ``_slow`` matches with byte pieces (``byte_ids``; ``unk_id`` for a byte
    the base lacks) and gives the text between them to the library (``_fast``);
    ``encode_batch`` gives the lines ``_slow`` does not match to it in one batch
    (``_fast_batch``) and the others to ``encode`` one by one; decoding joins ``piece_bytes``."""

    _slow: re.Pattern
    piece_bytes: list
    byte_ids: dict[int, int]
    unk_id: int | None

    @abstractmethod
    def _fast(self, text: str) -> list[int]:
        """The ids of ``text``, which ``_slow`` does not match, from the library."""

    @abstractmethod
    def _fast_batch(self, texts: list[str]) -> list[list[int]]:
        """The ids of ``texts``, none of which ``_slow`` matches, from the library in one batch."""

    def encode(self, text: str) -> list[int]:
        return encode_escaping(text, self._slow, self._fast, lambda b: self.byte_ids.get(b, self.unk_id))

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        texts = list(texts)
        plain = [i for i, t in enumerate(texts) if t and not self._slow.search(t)]
        out: list[list[int]] = [[] for _ in texts]
        for i, ids in zip(plain, self._fast_batch([texts[i] for i in plain])):
            out[i] = ids
        for i, t in enumerate(texts):
            if t and self._slow.search(t):
                out[i] = self.encode(t)
        return out

    def pieces_for(self, surface: str, byte: int | None = None) -> list[int]:
        """Base ids that spell ``surface`` (or the single ``byte``)."""
        if byte is not None:
            return [self.byte_ids.get(byte, self.unk_id)]
        return self.encode(surface)

    def decode(self, ids: Sequence[int]) -> str:
        return self.decode_pieces(ids)

    def decode_pieces(self, ids: Sequence[int]) -> str:
        table = self.piece_bytes
        return decode_lossless(b"".join(table[i] or b"" for i in ids))

    def decode_batch(self, batch: Sequence[Sequence[int]]) -> list[str]:
        return [self.decode_pieces(ids) for ids in batch]


def text_rows(pieces: list[str], surfaces: list[str], ranked: list[int],
              rare: frozenset[int] = frozenset()) -> list[tuple[str, float]]:
    """(content, score) of every piece of a SentencePiece-style base (pieces are text, bytes ``<0xAB>``).

    A piece reads as its text (``▁`` written as a space); pieces without text and those in
    ``rare`` keep their names at :data:`RARE_SCORE` (so ``<0xAB>`` is HF byte fallback); single
    characters score :data:`CHAR_SCORE`, longer pieces by their place in ``ranked`` (the ids
    with text, the base's best first).

    >>> text_rows(["<s>", "▁мир", "м"], ["", " мир", "м"], [1, 2])
    [('<s>', -50.0), (' мир', -1.05), ('м', -1.1)]
    """
    rank = {i: r / max(1, len(ranked) - 1) for r, i in enumerate(ranked)}
    rows: list[tuple[str, float]] = []
    for i, p in enumerate(pieces):
        surface = surfaces[i]
        if not surface or i in rare:
            rows.append((p, RARE_SCORE))
        elif len(surface) == 1:
            rows.append((surface, CHAR_SCORE))
        else:
            rows.append((surface, BASE_PIECE_SCORE - BASE_PIECE_SPREAD * rank[i]))
    return rows


# ----------------------------------------------------------------------------------------
# What the tokenizer.json kinds share
# ----------------------------------------------------------------------------------------

def read_tokenizer_json(path: str | os.PathLike) -> dict:
    """A parsed ``tokenizer.json``; :class:`HyperTokError` naming the file when it is not one."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise HyperTokError(f"{p}: not a readable tokenizer.json ({e})") from None
    if not isinstance(data, dict):
        raise HyperTokError(f"{p}: not a readable tokenizer.json (not a JSON object)")
    return data


def special_name(value) -> str | None:
    """A special token as ``tokenizer_config.json`` writes it: a string, ``{"content": ...}`` or null.

    >>> special_name({"content": "<s>", "lstrip": False}), special_name("</s>"), special_name(None)
    ('<s>', '</s>', None)
    """
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) and value else None


def template_bos(data: dict) -> str | None:
    """The special token a TemplateProcessing post-processor puts first (Llama 3's ``<|begin_of_text|>``)."""
    def find(node):
        if not isinstance(node, dict):
            return None
        if node.get("type") == "TemplateProcessing":
            first = (node.get("single") or [None])[0]
            return (first or {}).get("SpecialToken", {}).get("id") if isinstance(first, dict) else None
        for p in node.get("processors") or []:
            if (found := find(p)) is not None:
                return found
        return None

    return find(data.get("post_processor"))


class TokenizerJsonFamily(BaseFamily):
    """A base read from a ``tokenizer.json``: the file names no bos or eos, so they come from the
    ``tokenizer_config.json`` beside it (``bos_token``, ``eos_token``, ``unk_token``,
    ``pad_token``, as transformers reads them) and the recipe keeps their names.

    Subclasses set ``tk`` (the file's ``tokenizers.Tokenizer``), ``pieces``, ``controls`` (ids of
    the special tokens) and ``adds_bos`` (the token the file's post-processor puts first, if any),
    and take ``(path, special_tokens, name, data)``.
    """

    saved_as = BASE_TOKENIZER_JSON
    # bos/eos where no tokenizer_config.json names them: Llama/Mistral's, Llama 3's, Gemma's
    GUESSED_SPECIALS: ClassVar[tuple[tuple[str, str], ...]] = (
        ("<s>", "</s>"), ("<|begin_of_text|>", "<|end_of_text|>"), ("<bos>", "<eos>"))

    special_tokens: dict[str, str | None]
    controls: frozenset[int]
    adds_bos: str | None

    @staticmethod
    @abstractmethod
    def accepts(data: dict) -> bool:
        """Whether a parsed ``tokenizer.json`` is of this kind."""

    @classmethod
    def claims(cls, folder: Path, tokenizer_json: TokenizerJson) -> bool:
        return (Path(folder) / "tokenizer.json").is_file() and cls.accepts(tokenizer_json())

    @classmethod
    def from_file(cls, path: str | os.PathLike, name: str | None = None, data: dict | None = None):
        """A ``tokenizer.json`` file (``data``: already parsed), its specials from the
        ``tokenizer_config.json`` beside it (if any)."""
        from ..files import read_json

        p = Path(path)
        cfg_path = p.parent / "tokenizer_config.json"
        names = None
        if cfg_path.is_file():
            cfg = read_json(cfg_path)
            if special_name(cfg.get("bos_token")) or special_name(cfg.get("eos_token")):
                names = {k: cfg.get(f"{k}_token") for k in ("bos", "eos", "unk", "pad")}
        return cls(p, names, name, data=data)

    @classmethod
    def find(cls, folder: str | os.PathLike, tokenizer_json: TokenizerJson | None = None):
        """The ``tokenizer.json`` of a base model folder (bos/eos from its ``tokenizer_config.json``)."""
        d = Path(folder)
        if not (d / "tokenizer.json").is_file():
            raise HyperTokError(f"{d}: no tokenizer.json")
        return cls.from_file(d / "tokenizer.json", data=tokenizer_json() if tokenizer_json is not None else None)

    @classmethod
    def load_saved(cls, path: Path, record: dict):
        return cls(path, record.get("special_tokens") or {}, path.name)

    def record(self) -> dict:
        """Kind, file, and the names of bos, eos, unk and pad (a ``tokenizer.json`` names none)."""
        return {**super().record(), "special_tokens": dict(self.special_tokens)}

    def control_names(self) -> list[str]:
        return [self.pieces[i] for i in sorted(self.controls)]

    def default_add_bos(self) -> bool:
        """Whether the file's post-processor puts the bos token first (Llama 3's ``tokenizer_config.json``
        has no ``add_bos_token``)."""
        return self.adds_bos is not None and self.adds_bos == self.special_tokens["bos"]

    def _guess_specials(self) -> dict:
        """bos/eos when no ``tokenizer_config.json`` names them (:data:`GUESSED_SPECIALS`)."""
        for bos, eos in self.GUESSED_SPECIALS:
            if self.tk.token_to_id(bos) is not None and self.tk.token_to_id(eos) is not None:
                unk = "<unk>" if self.tk.token_to_id("<unk>") is not None else None
                pad = "<pad>" if self.tk.token_to_id("<pad>") is not None else None
                return {"bos": bos, "eos": eos, "unk": unk, "pad": pad}
        raise HyperTokError(f"{self.path}: cannot tell its bos and eos tokens; put a tokenizer_config.json with "
                            f"bos_token and eos_token beside it")

    def _set_specials(self, names: dict, vocab: dict[str, int]) -> None:
        self.special_tokens = {k: special_name(names.get(k)) for k in ("bos", "eos", "unk", "pad")}
        ids = {}
        for k, name in self.special_tokens.items():
            if name is not None and name not in vocab:
                raise HyperTokError(f"{self.path}: the {k} token {name!r} of its tokenizer_config.json is not in "
                                    f"the tokenizer; the two files do not belong together")
            ids[k] = vocab.get(name) if name is not None else None
        if ids["bos"] is None or ids["eos"] is None:
            raise HyperTokError(f"{self.path}: the base names no {'bos' if ids['bos'] is None else 'eos'} token "
                                f"(tokenizer_config.json bos_token/eos_token); HyperTok needs both")
        self.bos_id, self.eos_id, self.unk_id = ids["bos"], ids["eos"], ids["unk"]
        self.pad_id = next(i for i in (ids["pad"], ids["unk"], ids["eos"]) if i is not None)


class LosslessTokenizerJson(LosslessPieces, TokenizerJsonFamily):
    """:class:`LosslessPieces` over a ``tokenizer.json`` read by ``tokenizers`` (``tk``), as the
    two ``tokenizer.json`` kinds read it; the reader builds ``_piece_bytes`` in ``__init__``."""

    def _fast(self, text: str) -> list[int]:
        return self.tk.encode(text, add_special_tokens=False).ids

    def _fast_batch(self, texts: list[str]) -> list[list[int]]:
        batch = getattr(self.tk, "encode_batch_fast", self.tk.encode_batch)
        return [enc.ids for enc in batch(texts, add_special_tokens=False)]

    def _build_piece_bytes(self) -> list[bytes | None]:
        return self._piece_bytes  # built in __init__: the piece view needs it
