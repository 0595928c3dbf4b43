"""UTF-8 bytes as a tokenizer: id = byte value, the floor every tokenizer should beat.

What it does not do: no specials, no fallback (every id is a byte). Issue 3, moved here
by issue 9.
"""

from __future__ import annotations

from collections.abc import Sequence

from .base import Tokenizer


class BytesTokenizer(Tokenizer):
    """UTF-8 bytes, one token per byte.

    >>> BytesTokenizer().encode("ё")
    [209, 145]
    """

    name = "bytes"
    family = "bytes"
    vocab_size = 256

    def __init__(self) -> None:
        super().__init__()
        self.info = {"what": "UTF-8 bytes, one token per byte"}

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: Sequence[int]) -> str:
        return bytes(ids).decode("utf-8", errors="replace")

    def _build_piece_bytes(self) -> list[bytes | None]:
        return [bytes([i]) for i in range(256)]
