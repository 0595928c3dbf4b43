"""A HyperTok tokenizer directory behind the one interface.

What it does: wraps :class:`hypertok.core.tokenizer.HyperTok` (measured through its public
API) and gives the piece view vocabulary transfer needs: ``surfaces``, ``kinds`` (the
HyperTok kinds), ``bytes_of``, ``specials``, ``is_entry`` and ``copy_to``.

What it does not do: no building (see ``hypertok build``). Issue 3; one home since issue 9.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from .base import Tokenizer, parse_byte_piece
from .hf import NON_ENTRY_KINDS


class HyperTokTokenizer(Tokenizer):
    """A HyperTok tokenizer (``HyperTok`` object or directory)."""

    family = "hypertok"

    def __init__(self, tok, name: str | None = None) -> None:
        super().__init__()
        self.tok = tok
        self.path = Path(tok.path) if tok.path is not None else None
        cfg = getattr(tok, "config", {}) or {}
        mode = cfg.get("mode") or (cfg.get("build") or {}).get("mode")
        self.name = name or f"hypertok-{mode or 'dir'}-{len(tok)}"
        self.vocab_size = len(tok)
        self.info = {"dir": str(tok.path), "mode": mode}
        self.kinds = list(tok.kinds)
        self.surfaces = list(tok.surfaces)
        self.specials = dict(tok.specials)
        # the special tokens chosen at build time (chat and control tokens): surface -> id, the last ids
        self.added_specials = {s: i for s, i in getattr(tok, "special_tokens", {}).items() if i not in
                               self.specials.values()}
        self.normalizer = getattr(tok, "normalizer", "none")
        self.bytes_of = [parse_byte_piece(s) if k == "byte" else None for s, k in zip(self.surfaces, self.kinds)]
        # A single punctuation, symbol or space character ("," "." " ") is a whole punctuation
        # unit, as in every tokenizer; a single letter or digit spells part of a word or number.
        self.fallback_ids = frozenset(i for i, (k, s) in enumerate(zip(self.kinds, self.surfaces))
                                      if k in ("fallback", "byte") or (k == "char" and s.isalnum()))
        self.fallback_note = 'kinds "fallback", "byte", and "char" tokens that are a letter or digit'
        self.fallback_ids_wide = frozenset(i for i, k in enumerate(self.kinds) if k in ("fallback", "char", "byte"))
        self.bos_id, self.eos_id = self.specials.get("bos"), self.specials.get("eos")
        self.pad_id, self.unk_id = self.specials.get("pad"), self.specials.get("unk")

    @classmethod
    def from_dir(cls, directory: str | os.PathLike, name: str | None = None) -> "HyperTokTokenizer":
        """Load a HyperTok directory; raises :class:`HyperTokError` if it does not load."""
        from ..core.tokenizer import HyperTok

        return cls(HyperTok.load(directory), name)

    @property
    def config(self) -> dict:
        """The directory's build record (``config.json``)."""
        return dict(getattr(self.tok, "config", None) or {})

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return self.tok.encode_batch(list(texts))

    def decode(self, ids: Sequence[int]) -> str:
        return self.tok.decode(list(ids))

    def decode_batch(self, batch: Sequence[Sequence[int]]) -> list[str]:
        fn = getattr(self.tok, "decode_batch", None)
        return fn([list(x) for x in batch]) if fn else [self.tok.decode(list(x)) for x in batch]

    def decode_pieces(self, ids: Sequence[int]) -> str:
        return self.tok.decode(list(ids))  # HyperTok has no dummy prefix: spans concatenate

    def _build_piece_bytes(self) -> list[bytes | None]:
        out: list[bytes | None] = []
        for kind, surface, b in zip(self.kinds, self.surfaces, self.bytes_of):
            if kind == "special":
                out.append(b"")
            elif b is not None:
                out.append(bytes([b]))
            else:
                out.append(surface.encode("utf-8", errors="surrogatepass"))
        return out

    def is_entry(self, i: int) -> bool:
        """Whether id i is a token worth a model row of its own (not fallback, char, byte or special)."""
        return self.kinds[i] not in NON_ENTRY_KINDS

    def copy_to(self, dest: Path) -> None:
        """Copy the directory's own files (those of the format, never a symlink) into ``dest``."""
        from ..core.format import FILES, OPTIONAL_FILES
        from ..errors import HyperTokError

        dest.mkdir(parents=True, exist_ok=True)
        for name in FILES + OPTIONAL_FILES:
            f = self.path / name
            if f.is_symlink():
                raise HyperTokError(f"{f}: is a symbolic link; a tokenizer directory holds its own files")
            if f.is_file():
                shutil.copyfile(f, dest / name)
