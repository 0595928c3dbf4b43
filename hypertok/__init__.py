"""HyperTok: Russian vocabulary engineering for large language models.

Public API (everything else is an implementation detail)::

    >>> import hypertok
    >>> hypertok.__all__  # doctest: +NORMALIZE_WHITESPACE
    ['HyperTok', 'BuildConfig', 'build', 'load_tokenizer', 'compare', 'AdaptConfig', 'adapt',
     'AdaptedModel', 'merge', 'HyperTokError']

- ``HyperTok``: load a tokenizer directory, encode, decode (:mod:`hypertok.core`);
- ``BuildConfig``, ``build``: make one from a corpus (:mod:`hypertok.builder`);
- ``load_tokenizer``: any tokenizer HyperTok measures or adapts to (:mod:`hypertok.registry`);
- ``compare``: measure tokenizers on your text (:mod:`hypertok.lab.compare`);
- ``AdaptConfig``, ``adapt``, ``AdaptedModel``, ``merge``: move a model onto a vocabulary
  (:mod:`hypertok.adapt`; ``hypertok.adapt`` is that package, and calling it runs
  :func:`hypertok.adapt.train.adapt`);
- ``HyperTokError``: the one error for bad input.

``import hypertok`` is light in fact: it imports only the runtime core (``tokenizers`` and
``sentencepiece``). Every other name is imported on first use, by the module
``__getattr__`` below (PEP 562, as peft's ``tuners/lora/__init__.py`` does), so loading a
directory and encoding import neither the builder nor numpy nor torch (issue 23;
``tests/test_architecture.py`` checks it in a fresh interpreter). ARCHITECTURE.md draws
the layers (issue 9).
"""

import importlib

from .core import HyperTok
from .errors import HyperTokError

__version__ = "0.1.0"
__all__ = ["HyperTok", "BuildConfig", "build", "load_tokenizer", "compare", "AdaptConfig", "adapt",
           "AdaptedModel", "merge", "HyperTokError"]

# name -> the module that defines it, imported the first time the name is asked for
_LAZY = {
    "BuildConfig": "hypertok.builder.config",
    "build": "hypertok.builder",
    "load_tokenizer": "hypertok.registry",
    "compare": "hypertok.lab.compare",
    "AdaptConfig": "hypertok.adapt.train",
    "AdaptedModel": "hypertok.adapt.model",
    "merge": "hypertok.adapt.model",
}


def __getattr__(name: str):
    if name == "adapt":  # the subpackage, callable as the function (see hypertok/adapt/__init__.py)
        return importlib.import_module("hypertok.adapt")
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups skip __getattr__
        return value
    raise AttributeError(f"module 'hypertok' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
