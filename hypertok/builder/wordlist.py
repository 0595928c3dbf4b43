"""The default word source: the navec 250K-word Russian frequency list shipped in natasha.

navec's news vocabulary (``vocab.words``, ``vocab.counts``) was counted on about 1B tokens
of Russian news. It is lower-case and has no punctuation, so a vocabulary built from it
alone covers words well and punctuation only through the fallback characters. Use a real
corpus for anything you measure.

Only ``natasha``'s data file is read (with ``navec``); natasha's models are not loaded.
``count_wordlist`` turns the list into the builder's ``Counts``.
"""

from __future__ import annotations

import os
import tarfile
from functools import lru_cache

from ..errors import HyperTokError
from ..files import sha256_file
from .corpus import Counts

NAVEC_FILE = "navec_news_v1_1B_250K_300d_100q.tar"


def navec_path() -> str:
    """Path of the navec archive inside the installed natasha package."""
    try:
        import natasha
    except ImportError:
        raise HyperTokError("the default word list needs natasha: pip install natasha (or pass --corpus)") from None
    path = os.path.join(os.path.dirname(natasha.__file__), "data", "emb", NAVEC_FILE)
    if not os.path.exists(path):
        raise HyperTokError(f"{path}: navec word list missing from the natasha package; reinstall natasha or pass --corpus")
    return path


@lru_cache(maxsize=1)
def navec_counts() -> tuple[dict[str, int], str]:
    """``({word: count}, sha256 of the archive)`` for the navec list, special entries removed.

    >>> counts, _ = navec_counts(); counts["и"] > counts["стол"] > 0
    True
    """
    from navec.vocab import Vocab

    path = navec_path()
    digest = sha256_file(path)
    with tarfile.open(path) as tar:
        vocab = Vocab.from_file(tar.extractfile("vocab.bin"))
    counts = {w: int(c) for w, c in zip(vocab.words, vocab.counts) if c > 0 and not w.startswith("<")}
    return counts, digest


def count_wordlist() -> Counts:
    """Counts from the navec frequency list.

    navec is lower-case and has no context, so each word is counted as a space-prefixed
    unit (`` стол``), and, with assumed shares of 1/10 and 1/20 of its count, as a
    capitalised unit at the start of a line (``Стол``) and after a space (`` Стол``).
    """
    words, digest = navec_counts()
    counts = Counts()
    for w, c in words.items():
        counts.units[" " + w] += c
        cap = w[:1].upper() + w[1:]
        if cap != w:
            counts.units[cap] += c // 10
            counts.units[" " + cap] += c // 20
        for ch in w:
            counts.chars[ch] += c
    counts.source = {"files": [NAVEC_FILE], "sha256": digest, "bytes": 0, "chars": 0, "kind": "navec word list"}
    return counts
