"""A Hugging Face ``tokenizers`` tokenizer (a ``tokenizer.json``) behind the one interface.

What it does: wraps any ``tokenizers.Tokenizer`` -- a byte-level BPE or Metaspace
Unigram trained by :mod:`hypertok.registry.trained`, or a plain directory holding a
``tokenizer.json`` (e.g. the BPE-extended baseline of the adaptation experiment). For
vocabulary transfer it also gives the piece view of a ``▁``-style vocabulary:
``surfaces``, ``kinds`` (``special``/``byte``/``char``/``subword``), ``bytes_of`` and
``specials``.

What it does not do: no pipeline building or training (see
:mod:`hypertok.registry.trained`). Issues 3 and 5; one home since issue 9.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from ..errors import HyperTokError
from .base import Tokenizer, parse_byte_piece, piece_surface
from .bytelevel import CHAR_TO_BYTE

NON_ENTRY_KINDS = frozenset({"fallback", "char", "byte", "special"})


class HFTokenizer(Tokenizer):
    """A ``tokenizers.Tokenizer`` (byte-level BPE, Metaspace Unigram, or any ``tokenizer.json``)."""

    family = "hf-tokenizers"

    def __init__(self, tokenizer, name: str, info: dict | None = None, path: str | os.PathLike | None = None) -> None:
        super().__init__()
        self.tk = tokenizer
        self.name = name
        self.path = Path(path) if path is not None else None
        self.vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
        self.info = dict(info or {})
        pre = json.loads(tokenizer.to_str()).get("pre_tokenizer") or {}
        self._pre_type = pre.get("type")
        self.dummy_prefix = self._pre_type == "Metaspace" and pre.get("prepend_scheme", "always") != "never"
        unk = tokenizer.token_to_id("<unk>")
        if self._pre_type == "Metaspace" and unk is not None:
            self.fallback_ids = frozenset([unk])
            self.fallback_note = "<unk> (no byte fallback)"
        vocab = tokenizer.get_vocab()
        self.specials = {k: vocab[v] for k, v in
                         [("unk", "<unk>"), ("bos", "<s>"), ("eos", "</s>"), ("pad", "<pad>")] if v in vocab}
        self.unk_id, self.bos_id = self.specials.get("unk"), self.specials.get("bos")
        self.eos_id, self.pad_id = self.specials.get("eos"), self.specials.get("pad")
        self._view: tuple[list[str], list[str], list[int | None]] | None = None

    @classmethod
    def from_dir(cls, directory: str | os.PathLike, name: str | None = None) -> "HFTokenizer":
        """The ``tokenizer.json`` of a directory; :class:`HyperTokError` if it does not load."""
        from tokenizers import Tokenizer as HFTk

        d = Path(directory)
        try:
            tk = HFTk.from_file(str(d / "tokenizer.json"))
        except Exception as e:  # tokenizers raises plain Exception
            raise HyperTokError(f"{d / 'tokenizer.json'}: cannot be loaded by tokenizers ({e})") from None
        return cls(tk, name or d.name, {"dir": str(d)}, path=d)

    # ------------------------------------------------------------------ text <-> ids
    def encode(self, text: str) -> list[int]:
        return self.tk.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self.tk.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Sequence[int]) -> str:
        return self.tk.decode(list(ids), skip_special_tokens=True)

    def decode_batch(self, batch: Sequence[Sequence[int]]) -> list[str]:
        return self.tk.decode_batch([list(x) for x in batch], skip_special_tokens=True)

    def _build_piece_bytes(self) -> list[bytes | None]:
        vocab = self.tk.get_vocab(with_added_tokens=True)
        out: list[bytes | None] = [None] * self.vocab_size
        table = CHAR_TO_BYTE if self._pre_type == "ByteLevel" else None
        specials = {t.content for t in self.tk.get_added_tokens_decoder().values() if t.special}
        for tok, i in vocab.items():
            if i >= len(out):
                continue
            if tok in specials:
                out[i] = None if tok == "<unk>" else b""
            elif table is not None:
                try:
                    out[i] = bytes(table[c] for c in tok)
                except KeyError:
                    out[i] = None
            elif (b := parse_byte_piece(tok)) is not None:
                out[i] = bytes([b])
            else:
                out[i] = piece_surface(tok).encode("utf-8")
        return out

    # ------------------------------------------------------------------ the piece view (vocabulary transfer)
    def _piece_view(self) -> tuple[list[str], list[str], list[int | None]]:
        if self._view is None:
            special = {t.content for t in self.tk.get_added_tokens_decoder().values() if t.special}
            surfaces, kinds, bytes_of = [], [], []
            for i in range(self.vocab_size):
                p = self.tk.id_to_token(i) or ""
                b = parse_byte_piece(p)
                bytes_of.append(b)
                if b is not None:
                    surfaces.append(p), kinds.append("byte")
                elif p in special:
                    surfaces.append(""), kinds.append("special")
                else:
                    s = piece_surface(p)
                    surfaces.append(s)
                    kinds.append("char" if len(s) <= 1 else "subword")
            self._view = (surfaces, kinds, bytes_of)
        return self._view

    @property
    def surfaces(self) -> list[str]:
        """Text of each piece (``▁`` read as a space; byte pieces keep ``<0xAB>``; specials ``""``)."""
        return self._piece_view()[0]

    @property
    def kinds(self) -> list[str]:
        return self._piece_view()[1]

    @property
    def bytes_of(self) -> list[int | None]:
        return self._piece_view()[2]

    def is_entry(self, i: int) -> bool:
        """Whether id i is a token worth a model row of its own (not special, byte or single character)."""
        return self.kinds[i] not in NON_ENTRY_KINDS

    def copy_to(self, dest: Path) -> None:
        """Copy the files this tokenizer loads from into ``dest``."""
        if self.path is None:
            raise HyperTokError(f"{self.name}: not loaded from a directory; nothing to copy")
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(self.path / "tokenizer.json", dest / "tokenizer.json")
