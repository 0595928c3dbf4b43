"""HyperTok: Russian vocabulary engineering for large language models.

Public API (everything else is an implementation detail)::

    >>> import hypertok
    >>> sorted(hypertok.__all__)
    ['BuildConfig', 'HyperTok', 'HyperTokError', 'build']

``import hypertok`` stays light: torch, transformers and peft are imported only by the
commands that need them (``hypertok vram``, ``hypertok adapt``, ``hypertok eval``).
"""

from .errors import HyperTokError
from .tokenizer import HyperTok
from .vocab import BuildConfig, build

__version__ = "0.1.0"
__all__ = ["BuildConfig", "HyperTok", "HyperTokError", "build"]
