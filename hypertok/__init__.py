"""HyperTok: Russian vocabulary engineering for large language models.

Public API (everything else is an implementation detail)::

    >>> import hypertok
    >>> sorted(hypertok.__all__)
    ['BuildConfig', 'HyperTok', 'HyperTokError', 'build']

``import hypertok`` stays light: loading a tokenizer directory and encoding import neither
numpy nor torch; torch, transformers and peft are imported only by the commands that need
them (``hypertok vram``, ``hypertok adapt``, ``hypertok eval``). ARCHITECTURE.md draws the
layers (issue 9).
"""

from .builder import BuildConfig, build
from .core import HyperTok
from .errors import HyperTokError

__version__ = "0.1.0"
__all__ = ["BuildConfig", "HyperTok", "HyperTokError", "build"]
