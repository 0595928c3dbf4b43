"""Byte-level BPE ``tokenizer.json`` files (Llama 3, Mistral-Nemo's Tekken) as the base of vocabulary transfer.

What it does (issue 11, "bases beyond SentencePiece"):

- the GPT-2 byte <-> character table that byte-level BPE files write their pieces in
  (:data:`BYTE_TO_CHAR`, :data:`CHAR_TO_BYTE`, :func:`to_byte_level`): byte 0x20 is ``Ġ``,
  0x0A is ``Ċ``, printable ASCII is itself, so the Cyrillic ``" мир"`` is ``"ĠÐ¼Ð¸ÑĢ"``;
- :func:`is_byte_level` tells a byte-level BPE ``tokenizer.json`` from others;
- :class:`LosslessByteLevel` reads such a file as a base of vocabulary transfer (the
  ``byte-level-bpe`` kind of :class:`~hypertok.registry.family.BaseFamily`), the twin of
  :class:`~hypertok.registry.spm.LosslessSentencePiece`: the file's own segmentation with
  the normaliser dropped and no prefix space added (in memory), control strings in text
  read as text, and lone surrogates (which the Rust library cannot take) spelled with the
  byte tokens of their ``surrogatepass`` bytes, so ``decode(encode(x)) == x`` for every
  Python string and spans concatenate. It gives the same piece view (``pieces``,
  ``surfaces``, ``bytes_of``, ``byte_ids``, ``single``, ``pieces_for``). The file names no
  bos or eos, so they come from the ``tokenizer_config.json`` beside it (``bos_token``,
  ``eos_token``, ``unk_token``, ``pad_token``), as transformers reads them. In the ``extend``
  model tokenizer its rows, and HyperTok's entries too, are written in byte-level characters
  behind a ByteLevel pre-tokenizer and decoder (:meth:`LosslessByteLevel.extend_parts`).

What it does not do: no training, and no other kind of ``tokenizer.json`` (a SentencePiece-style
BPE with byte fallback, as Gemma's and Mistral's HF folders ship, is
:mod:`hypertok.registry.sentencepiece_json`). Mistral's native ``tekken.json`` is not read: the HF
checkpoint's ``tokenizer.json`` is the same vocabulary.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..core.lossless import SURROGATE
from ..errors import HyperTokError
from .base import Tokenizer
from .family import (BASE_PIECE_SCORE, BASE_PIECE_SPREAD, CHAR_SCORE, RARE_SCORE, LosslessTokenizerJson,
                     read_tokenizer_json, special_name, template_bos)

__all__ = ["BYTE_TO_CHAR", "CHAR_TO_BYTE", "to_byte_level", "is_byte_level", "LosslessByteLevel", "special_name"]


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's map: printable Latin-1 bytes stand for themselves, the other 68 bytes for U+0100 onwards."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


BYTE_TO_CHAR: dict[int, str] = _bytes_to_unicode()
CHAR_TO_BYTE: dict[str, int] = {c: b for b, c in BYTE_TO_CHAR.items()}


def to_byte_level(data: bytes) -> str:
    """Bytes as a byte-level BPE file writes them.

    >>> to_byte_level(" мир".encode())
    'ĠÐ¼Ð¸ÑĢ'
    """
    return "".join(BYTE_TO_CHAR[b] for b in data)


def _has_byte_level(node) -> bool:
    if not isinstance(node, dict):
        return False
    if node.get("type") == "ByteLevel":
        return True
    return any(_has_byte_level(p) for p in node.get("pretokenizers") or [])


def is_byte_level(data: dict) -> bool:
    """Whether a parsed ``tokenizer.json`` is a byte-level BPE (a ByteLevel pre-tokenizer, alone or in a Sequence).

    >>> is_byte_level({"model": {"type": "BPE"}, "pre_tokenizer": {"type": "ByteLevel"}})
    True
    >>> is_byte_level({"model": {"type": "BPE"}, "pre_tokenizer": {"type": "Metaspace"}})
    False
    """
    return (data.get("model") or {}).get("type") == "BPE" and _has_byte_level(data.get("pre_tokenizer"))


def _no_prefix_space(node):
    """The pre-tokenizer with every ByteLevel's ``add_prefix_space`` off (a copy)."""
    if isinstance(node, dict):
        node = {k: _no_prefix_space(v) for k, v in node.items()}
        if node.get("type") == "ByteLevel":
            node["add_prefix_space"] = False
    elif isinstance(node, list):
        node = [_no_prefix_space(x) for x in node]
    return node


class LosslessByteLevel(LosslessTokenizerJson, Tokenizer):
    """A byte-level BPE ``tokenizer.json`` read losslessly (a base of vocabulary transfer).

    ``special_tokens``: names of ``bos``, ``eos``, ``unk`` and ``pad`` (``None``: the base has
    none). ``pieces[i]``: the file's token (byte-level characters; control tokens by name);
    ``surfaces[i]``: its text (``""`` for control tokens and for bytes that are no UTF-8 text);
    ``bytes_of[i]``: the byte of a one-byte token. ``controls``: ids of the special tokens.
    """

    family = kind = "byte-level-bpe"
    byte_level = True
    dummy_prefix = False
    _slow = SURROGATE  # what the Rust library cannot take: lone surrogates, spelled with byte tokens in ``encode``

    def __init__(self, path: str | os.PathLike, special_tokens: dict | None = None, name: str | None = None,
                 data: dict | None = None) -> None:
        from tokenizers import Tokenizer as HFTk

        super().__init__()
        self.path = Path(path)
        self.name = name or self.path.name
        data = read_tokenizer_json(self.path) if data is None else data
        if not is_byte_level(data):
            pre = (data.get("pre_tokenizer") or {}).get("type")
            raise HyperTokError(
                f"{self.path}: not a byte-level BPE tokenizer.json (pre-tokenizer {pre!r}); HyperTok takes a "
                f"SentencePiece tokenizer.model, a byte-level BPE tokenizer.json (Llama 3, Mistral-Nemo) or a "
                f"SentencePiece-style one (BPE with byte_fallback: Gemma, Mistral) as a base")
        self.adds_bos = template_bos(data)  # the name of the token the file's post-processor puts first, if any
        data = {**data, "normalizer": None, "post_processor": None, "pre_tokenizer": _no_prefix_space(data["pre_tokenizer"])}
        try:
            self.tk = HFTk.from_str(json.dumps(data))
        except Exception as e:  # tokenizers raises plain Exception
            raise HyperTokError(f"{self.path}: cannot be loaded by tokenizers ({e})") from None
        self.tk.encode_special_tokens = True  # "<s>" in text is text, as in HyperTok.encode
        vocab = self.tk.get_vocab(with_added_tokens=True)
        self.vocab_size = max(vocab.values()) + 1
        added = self.tk.get_added_tokens_decoder()
        self.controls = frozenset(i for i, t in added.items() if t.special)
        self.pieces = [""] * self.vocab_size
        for tok, i in vocab.items():
            self.pieces[i] = tok
        table: list[bytes | None] = []
        for i, p in enumerate(self.pieces):
            if i in self.controls:
                table.append(b"")
            elif i in added:  # a non-special added token is matched as raw text
                table.append(added[i].content.encode("utf-8"))
            elif p and all(c in CHAR_TO_BYTE for c in p):
                table.append(bytes(CHAR_TO_BYTE[c] for c in p))
            else:  # a hole in the ids, or a piece no text can reach
                table.append(None)
        self._piece_bytes = table
        self.unused = frozenset(i for i, b in enumerate(table) if b is None)
        self.bytes_of: list[int | None] = [b[0] if b is not None and len(b) == 1 and i not in self.controls else None
                                           for i, b in enumerate(table)]
        self.byte_ids: dict[int, int] = {}
        for i, b in enumerate(self.bytes_of):
            if b is not None:
                self.byte_ids.setdefault(b, i)
        if len(self.byte_ids) < 256:
            missing = sorted(set(range(256)) - set(self.byte_ids))
            raise HyperTokError(f"{self.path}: no token for {len(missing)} of the 256 bytes (e.g. 0x{missing[0]:02X}); "
                                f"a byte-level BPE base must spell every byte")
        self.surfaces = [_text(b) if i not in self.controls else "" for i, b in enumerate(table)]
        self.single: dict[str, int] = {}
        for i, s in enumerate(self.surfaces):
            if s:
                self.single.setdefault(s, i)
        self._set_specials(special_tokens if special_tokens is not None else self._guess_specials(), vocab)
        self.info = {"file": str(self.path), "special_tokens": dict(self.special_tokens)}

    # ------------------------------------------------------------------ as a base of transfer
    accepts = staticmethod(is_byte_level)

    def model_rows(self) -> tuple[list[tuple[str, float]], list[str]]:
        """(content, score) of every token, and the control tokens.

        A token reads as its bytes in byte-level characters (as in the base's own file); control
        tokens keep their names. One-byte and one-character tokens score as characters, longer
        ones by the base's merge order (its ids). Ids that spell nothing (holes) and added tokens
        that spell what another token spells become unused fillers.
        """
        table = self.piece_bytes
        ranked = [i for i, b in enumerate(table) if b and len(b) > 1 and i not in self.controls]
        rank = {i: r / max(1, len(ranked) - 1) for r, i in enumerate(ranked)}
        pieces: list[tuple[str, float]] = []
        seen: set[str] = set()
        for i, b in enumerate(table):
            if i in self.controls:
                content, score = self.pieces[i], RARE_SCORE
            elif not b:
                content, score = f"<hypertok_unused_{i}>", RARE_SCORE
            else:
                content = to_byte_level(b)
                score = CHAR_SCORE if len(b) == 1 or len(self.surfaces[i]) == 1 else \
                    BASE_PIECE_SCORE - BASE_PIECE_SPREAD * rank[i]
                if content in seen:
                    content, score = f"<hypertok_unused_{i}>", RARE_SCORE
            seen.add(content)
            pieces.append((content, score))
        return pieces, [self.pieces[i] for i in sorted(self.controls)]

    def model_content(self, surface: str) -> str:
        """In byte-level characters: ``" мир"`` is ``"ĠÐ¼Ð¸ÑĢ"``."""
        return to_byte_level(surface.encode("utf-8", "surrogatepass"))

    def extend_parts(self, pieces: list[tuple[str, float]]):
        """No byte fallback (the 256 byte tokens spell every byte), a ByteLevel pre-tokenizer without
        regex or prefix space (entries may span words) and a ByteLevel decoder."""
        from tokenizers import decoders, models, pre_tokenizers

        return (models.Unigram(pieces, unk_id=self.unk_id, byte_fallback=False),
                pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
                decoders.ByteLevel())


def _text(b: bytes | None) -> str:
    if not b:
        return ""
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return ""
