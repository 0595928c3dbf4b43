"""The vocabulary builder: config, corpus counting, candidates per mode, selection, ``build``.

Needs pymorphy3, navec and numpy (imported on first use, so ``import hypertok`` stays
light). It writes tokenizer directories that ``hypertok.core`` loads; it never encodes
text itself (issue 9).
"""

from .build import build
from .config import BuildConfig

__all__ = ["BuildConfig", "build"]
