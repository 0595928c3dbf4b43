"""SentencePiece ``.model`` files behind the :class:`~hypertok.registry.base.Tokenizer` interface.

What it does:

- :class:`SentencePieceTokenizer` reads a model as it is (Mistral v1/v3, a baseline
  trained here): dummy prefix, the file's own normalisation.
- :class:`LosslessSentencePiece` reads the same file patched in memory by
  :func:`lossless_sentencepiece_proto` (dummy prefix, whitespace collapsing and NFKC
  switched off), so encoding any span is lossless and spans concatenate:
  ``decode(encode(a)) + decode(encode(b)) == a + b``, for every Python string: SentencePiece
  itself turns ``▁`` (U+2581) into a space and cannot take a lone surrogate, so those two
  are spelled with the base's byte pieces (a surrogate with the bytes of its
  ``surrogatepass`` encoding, as HyperTok does) and decoded back (issue 13). This is a base of
  vocabulary transfer (the ``sentencepiece`` kind of :class:`~hypertok.registry.family.BaseFamily`,
  issue 21): the piece view transfer needs (``surfaces``, ``bytes_of``, ``pieces_for``), its
  copy ``base_tokenizer.model`` in an adapter folder, and its rows of the ``extend`` model
  tokenizer (text pieces, ``<0xAB>`` byte fallback, ranked by the file's scores).

What it does not do: no training (see :mod:`hypertok.registry.trained`), no protobuf
dependency (the patch edits the wire format directly). Issues 3 and 5; one home since
issue 9.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from ..core.lossless import SURROGATES
from ..core.protobuf import fields, varint
from ..errors import HyperTokError
from .base import Tokenizer, Unavailable, parse_byte_piece, piece_surface
from .family import BaseFamily, LosslessPieces, TokenizerJson, text_rows
from .recipe import BASE_TOKENIZER_FILE


# ----------------------------------------------------------------------------------------
# SentencePiece model file patching (no protobuf needed)
# ----------------------------------------------------------------------------------------

def lossless_sentencepiece_proto(data: bytes) -> bytes:
    """The SentencePiece ModelProto with identity normalisation, no dummy prefix and no
    whitespace collapsing (NormalizerSpec fields 1-4 rewritten; everything else kept).

    >>> lossless_sentencepiece_proto(b"")
    b'\\x1a\\x0e\\n\\x08identity\\x18\\x00 \\x00'
    """
    out = bytearray()
    norm = b""
    for num, wt, raw, payload in fields(data):
        if num == 3 and wt == 2:
            norm = payload
        else:
            out += raw
    spec = bytearray()
    spec += b"\x0a" + varint(8) + b"identity"          # name = "identity", no charsmap
    spec += b"\x18\x00" + b"\x20\x00"                   # add_dummy_prefix=0, remove_extra_whitespaces=0
    for num, wt, raw, payload in fields(norm):
        if num not in (1, 2, 3, 4):
            spec += raw
    out += b"\x1a" + varint(len(spec)) + bytes(spec)
    return bytes(out)


# ----------------------------------------------------------------------------------------
# Tokenizers
# ----------------------------------------------------------------------------------------

def _processor(path: Path, lossless: bool):
    try:
        import sentencepiece as spm
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise Unavailable(f"sentencepiece is not installed ({e})") from None
    try:
        if lossless:
            return spm.SentencePieceProcessor(model_proto=lossless_sentencepiece_proto(path.read_bytes()))
        return spm.SentencePieceProcessor(model_file=str(path))
    except (OSError, RuntimeError, ValueError, IndexError) as e:
        raise HyperTokError(f"{path}: not a readable SentencePiece model ({e})") from None


class SentencePieceTokenizer(Tokenizer):
    """A SentencePiece ``.model`` file (Mistral v1/v3 or one trained here), read as it is."""

    family = "sentencepiece"
    dummy_prefix = True
    _lossless = False

    def __init__(self, path: str | os.PathLike, name: str | None = None, info: dict | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.sp = sp = _processor(self.path, self._lossless)
        self.name = name or self.path.name
        self.vocab_size = sp.get_piece_size()
        self.info = {"file": str(path), **(info or {})}
        self.fallback_ids = frozenset(i for i in range(self.vocab_size) if sp.is_byte(i))
        self.fallback_note = "byte-fallback pieces <0xXX>"
        self.bos_id, self.eos_id, self.unk_id = sp.bos_id(), sp.eos_id(), sp.unk_id()
        self.pad_id = sp.pad_id() if sp.pad_id() >= 0 else self.unk_id

    def encode(self, text: str) -> list[int]:
        return self.sp.encode(text)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return self.sp.encode(list(texts), num_threads=os.cpu_count() or 1)

    def decode(self, ids: Sequence[int]) -> str:
        return self.sp.decode(list(ids))

    def decode_batch(self, batch: Sequence[Sequence[int]]) -> list[str]:
        return self.sp.decode([list(x) for x in batch], num_threads=os.cpu_count() or 1)

    def _build_piece_bytes(self) -> list[bytes | None]:
        out: list[bytes | None] = []
        sp = self.sp
        for i in range(self.vocab_size):
            if sp.is_control(i):
                out.append(b"")
            elif sp.is_unknown(i):
                out.append(None)
            elif sp.is_byte(i):
                out.append(bytes([parse_byte_piece(sp.id_to_piece(i))]))
            else:
                out.append(piece_surface(sp.id_to_piece(i)).encode("utf-8"))
        return out


# Characters SentencePiece cannot give back: its own space mark, and lone surrogates.
UNSPELLABLE = f"\u2581{SURROGATES}"


class LosslessSentencePiece(LosslessPieces, BaseFamily, SentencePieceTokenizer):
    """A SentencePiece model patched to encode losslessly (a base of vocabulary transfer).

    ``surfaces[i]`` is the text of piece i (``""`` for control, unknown and byte pieces),
    ``bytes_of[i]`` the byte of a ``<0xAB>`` piece or None. ``decode`` spells the pieces
    byte by byte, so ``decode(encode(a)) + decode(encode(b)) == a + b``.
    """

    kind = "sentencepiece"
    saved_as = BASE_TOKENIZER_FILE
    dummy_prefix = False
    _lossless = True
    _slow = re.compile(f"[{UNSPELLABLE}]")  # U+2581 and lone surrogates: spelled with byte pieces in ``encode``

    def __init__(self, path: str | os.PathLike, name: str | None = None, info: dict | None = None) -> None:
        super().__init__(path, name, info)
        sp = self.sp
        self.pieces = [sp.id_to_piece(i) for i in range(self.vocab_size)]
        self.bytes_of: list[int | None] = [
            parse_byte_piece(p) if sp.is_byte(i) else None for i, p in enumerate(self.pieces)]
        self.surfaces = [
            "" if (sp.is_control(i) or sp.is_unknown(i) or self.bytes_of[i] is not None) else piece_surface(p)
            for i, p in enumerate(self.pieces)]
        self.byte_ids = {b: i for i, b in enumerate(self.bytes_of) if b is not None}
        self.single = {s: i for i, s in enumerate(self.surfaces) if s and not sp.is_unused(i)}

    @classmethod
    def claims(cls, folder: Path, tokenizer_json: TokenizerJson) -> bool:
        """A folder with a ``tokenizer.model`` (or one ``*.model*``), even beside a ``tokenizer.json``
        (Mistral 7B, Llama 2): the file the checkpoint was trained with."""
        d = Path(folder)
        return (d / "tokenizer.model").is_file() or any(c.is_file() for c in d.glob("*.model*"))

    @classmethod
    def find(cls, base_dir: str | os.PathLike, tokenizer_json: TokenizerJson | None = None) -> "LosslessSentencePiece":
        """The SentencePiece model in a base model folder (``tokenizer.model`` or one ``*.model*``)."""
        d = Path(base_dir)
        cands = [d / "tokenizer.model"] if (d / "tokenizer.model").is_file() else sorted(d.glob("*.model*"))
        cands = [c for c in cands if c.is_file()]
        if len(cands) != 1:
            raise HyperTokError(
                f"{d}: expected one SentencePiece tokenizer.model next to the weights (found "
                f"{[c.name for c in cands] or 'none'}); copy the base model's tokenizer.model there")
        return cls(cands[0])

    def _fast(self, text: str) -> list[int]:
        return self.sp.encode(text)

    def _fast_batch(self, texts: list[str]) -> list[list[int]]:
        return self.sp.encode(texts, num_threads=os.cpu_count() or 1)

    # ------------------------------------------------------------------ as a base of transfer
    @classmethod
    def load_saved(cls, path: Path, record: dict) -> "LosslessSentencePiece":
        return cls(path)

    def control_names(self) -> list[str]:
        return [p for i, p in enumerate(self.pieces) if self.sp.is_control(i)]

    def model_rows(self) -> tuple[list[tuple[str, float]], list[str]]:
        """Every piece as its text (:func:`~hypertok.registry.family.text_rows`), ranked by the file's
        scores; unused pieces are rare; control and unknown pieces are the file's special tokens."""
        sp = self.sp
        ranked = sorted((i for i in range(len(self)) if self.surfaces[i]), key=lambda i: -sp.get_score(i))
        unused = frozenset(i for i in range(len(self)) if sp.is_unused(i))
        controls = [p for i, p in enumerate(self.pieces) if sp.is_control(i) or sp.is_unknown(i)]
        return text_rows(self.pieces, self.surfaces, ranked, unused), controls
