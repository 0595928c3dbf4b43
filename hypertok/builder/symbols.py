"""Symbol allocation: one Unicode code point per token, the "archiver" view of a text.

Every token id gets exactly one symbol, so ``to_symbols`` / ``from_symbols`` are a plain
id <-> code point bijection and are lossless by construction. A token that stands for a
single character is shown as that character (``","`` stays ``","``). All other tokens
take code points from a pool:

- ``pua``: the Private Use Areas (U+E000-U+F8FF, then planes 15 and 16): 137 468 points;
- ``cjk``: assigned CJK unified ideographs (BMP first, then the supplementary blocks);
- ``all``: every assigned graphic code point of all scripts ("as in the original idea"),
  then the Private Use Areas;
- ``auto`` (the default): ``pua`` when it is large enough, else ``all`` (vocabularies above
  about 137K tokens).

Code points that occur in the corpus, or that a single-character token already shows,
are excluded from the pool. The escape mechanism: a pool code point in the input text is
never a vocabulary piece, so the encoder spells it with byte tokens, whose symbols are
themselves pool code points. The symbol text therefore never contains a raw pool code
point that means "itself", and decoding never has to guess.

Frequent tokens get the cheapest code points (BMP before the supplementary planes), which
keeps the UTF-8 size of a symbol text small.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Iterator

from ..core.lossless import is_surrogate
from ..errors import HyperTokError

POOLS = ("auto", "pua", "cjk", "all")

_PUA = [(0xE000, 0xF8FF), (0xF0000, 0xFFFFD), (0x100000, 0x10FFFD)]
_CJK = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0xF900, 0xFAFF), (0x20000, 0x2A6DF), (0x2A700, 0x2EBEF), (0x30000, 0x323AF)]
_GRAPHIC = ("L", "N", "P", "S")
PUA_SIZE = sum(hi - lo + 1 for lo, hi in _PUA)


def _ranges(ranges: list[tuple[int, int]], assigned_only: bool) -> Iterator[str]:
    for lo, hi in ranges:
        for cp in range(lo, hi + 1):
            ch = chr(cp)
            if not assigned_only or unicodedata.category(ch) != "Cn":
                yield ch


def pool(name: str) -> Iterator[str]:
    """All code points of a pool, in allocation order.

    >>> next(pool("pua")), next(pool("cjk"))
    ('\\ue000', '一')
    """
    if name == "pua":
        yield from _ranges(_PUA, assigned_only=False)
    elif name == "cjk":
        yield from _ranges(_CJK, assigned_only=True)
    elif name == "all":
        for cp in range(0xA1, 0x110000):
            ch = chr(cp)
            cat = unicodedata.category(ch)
            if cat[0] in _GRAPHIC and not is_surrogate(ch):
                yield ch
        yield from _ranges(_PUA, assigned_only=False)
    else:
        raise HyperTokError(f"unknown symbol pool {name!r}; choose one of {', '.join(POOLS)}")


def allocate(surfaces: list[str], order: Iterable[int], pool_name: str, excluded: set[str],
             preferred: dict[int, str] | None = None) -> list[str]:
    """Give each id a symbol: single characters show themselves, the rest come from the pool.

    ``order`` lists ids from the most to the least used; they get the pool in that order.
    ``preferred`` maps ids to user-chosen symbols (from a concept file).

    >>> allocate(["a", "ab", "<0x00>"], [1, 2, 0], "pua", excluded={"a"})
    ['a', '\\ue000', '\\ue001']
    """
    preferred = preferred or {}
    if pool_name == "auto":
        pool_name = "pua" if len(surfaces) <= PUA_SIZE else "all"
    symbols: list[str | None] = [None] * len(surfaces)
    taken: set[str] = set()
    for i, s in enumerate(surfaces):
        if len(s) == 1:
            symbols[i] = s
            taken.add(s)
    for i, sym in sorted(preferred.items()):
        if len(sym) != 1:
            raise HyperTokError(f"preferred symbol {sym!r} for {surfaces[i]!r} must be exactly one code point")
        if sym in taken or sym in excluded:
            raise HyperTokError(
                f"preferred symbol {sym!r} for {surfaces[i]!r} is already used by another token or occurs in the "
                f"corpus; choose another symbol in the concept file"
            )
        symbols[i] = sym
        taken.add(sym)
    source = (c for c in pool(pool_name) if c not in excluded and c not in taken)
    for i in order:
        if symbols[i] is None:
            try:
                symbols[i] = next(source)
            except StopIteration:
                need = sum(1 for s in symbols if s is None)
                raise HyperTokError(
                    f"symbol pool {pool_name!r} ran out with {need} tokens still without a symbol; "
                    f"use --symbols all or a smaller --vocab-size"
                ) from None
    assert all(s is not None for s in symbols), "order must list every id"
    return symbols  # type: ignore[return-value]
