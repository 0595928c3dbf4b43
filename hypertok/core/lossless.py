"""Lone surrogates and the spans a library cannot take: the one rule for each (issue 23).

What it does: a Python string may hold lone surrogates (U+D800..U+DFFF), which UTF-8 and
the Rust ``tokenizers`` cannot. HyperTok and every lossless base reader spell such a
character with the byte pieces of its ``surrogatepass`` encoding (``"\\ud800"`` -> ED A0 80)
and decode bytes back with the same handler, so ``decode(encode(x)) == x`` for every string.
This module owns that rule: :data:`SURROGATES` (a character-class body, to compose larger
patterns), :func:`is_surrogate`, :data:`SURROGATE` (a compiled pattern),
:func:`encode_escaping` (the text between the escaped spans encoded, the spans spelled with
byte ids; :func:`encode_around` is its loop, which HyperTok's special tokens share) and
:func:`decode_lossless`.

What it does not do: no tokenizer of its own; callers pass the encoder and the id of a
byte. It needs nothing beyond the standard library.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

SURROGATES = "\ud800-\udfff"  # the body of a character class: "[" + SURROGATES + "]"
SURROGATE = re.compile(f"[{SURROGATES}]")


def is_surrogate(ch: str) -> bool:
    """Whether the one character ``ch`` is a lone surrogate (no UTF-8 form).

    >>> is_surrogate("\\ud800"), is_surrogate("я")
    (True, False)
    """
    return 0xD800 <= ord(ch) <= 0xDFFF


def has_surrogate(text: str) -> bool:
    """Whether ``text`` holds a lone surrogate.

    >>> has_surrogate("а\\udfffб"), has_surrogate("аб")
    (True, False)
    """
    return SURROGATE.search(text) is not None


def encode_around(text: str, pattern: re.Pattern, encode: Callable[[str], Iterable[int]],
                  spell: Callable[[str], Iterable[int]]) -> list[int]:
    """Ids of ``text``: each span ``pattern`` matches given to ``spell``, the text between the
    spans (the whole text, where none matches) to ``encode``; ``""`` is ``[]``.

    >>> encode_around("a<s>b", re.compile("<s>"), lambda t: [ord(t)], lambda s: [1])
    [97, 1, 98]
    """
    ids: list[int] = []
    start = 0
    for m in pattern.finditer(text):
        if start < m.start():
            ids.extend(encode(text[start:m.start()]))
        ids.extend(spell(m.group()))
        start = m.end()
    if start < len(text):
        ids.extend(encode(text[start:]))
    return ids


def encode_escaping(text: str, escape: re.Pattern, encode: Callable[[str], Iterable[int]],
                    byte_id: Callable[[int], int]) -> list[int]:
    """Ids of ``text``: each span ``escape`` matches spelled byte by byte (``byte_id`` of each
    byte of its ``surrogatepass`` UTF-8), the text between the spans given to ``encode``.

    >>> encode_escaping("a\\ud800b", SURROGATE, lambda t: [ord(t)], lambda b: b)
    [97, 237, 160, 128, 98]
    """
    return encode_around(text, escape, encode, lambda span: map(byte_id, span.encode("utf-8", "surrogatepass")))


def decode_lossless(data: bytes) -> str:
    """Bytes of pieces as text: lone surrogates via ``surrogatepass``; where the bytes are
    no such text at all (a byte sequence the ids cut), every invalid byte is U+FFFD.

    >>> decode_lossless(b"\\xed\\xa0\\x80"), decode_lossless(b"\\xff")
    ('\\ud800', '\\ufffd')
    """
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace")
