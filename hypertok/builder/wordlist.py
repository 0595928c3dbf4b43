"""The default word source: the navec 250K-word Russian frequency list shipped in natasha.

navec's news vocabulary (``vocab.words``, ``vocab.counts``) was counted on about 1B tokens
of Russian news. It is lower-case and has no punctuation, so a vocabulary built from it
alone covers words well and punctuation only through the fallback characters. Use a real
corpus for anything you measure.

Only ``natasha``'s data file is read (with ``navec``); natasha's models are not loaded.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from functools import lru_cache

from .errors import HyperTokError

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
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    with tarfile.open(path) as tar:
        vocab = Vocab.from_file(tar.extractfile("vocab.bin"))
    counts = {w: int(c) for w, c in zip(vocab.words, vocab.counts) if c > 0 and not w.startswith("<")}
    return counts, digest
