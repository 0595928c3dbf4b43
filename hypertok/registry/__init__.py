"""Every tokenizer HyperTok measures or adapts to, behind one interface (issue 9).

What it does: :func:`load_tokenizer` turns a name or a path into a
:class:`~hypertok.registry.base.Tokenizer`, in the spirit of tiktoken's ``registry.py``:
a table of names (:data:`TOKENIZERS`, name -> constructor) plus paths.

============================  ==============================================================
spec                          tokenizer
============================  ==============================================================
``mistral-v1``/``mistral-v3``  Mistral's SentencePiece files (:mod:`.mistral`)
``tekken``                    Mistral's Tekken, via mistral-common
``bytes``                     UTF-8 bytes
``hf-bpe`` ``hf-unigram``     baselines trained on ``train=[files]`` at ``size=N`` (cached,
``spm-bpe`` ``spm-unigram``   :mod:`.trained`); ``superbpe``: SuperBPE (Liu et al. 2025),
``superbpe``                  whose second stage merges across whitespace
``DIR``                       a HyperTok directory, or a directory with a ``tokenizer.json``
``DIR:extend``                the base (``base=``, default ``mistral-v3``; or a SentencePiece
                              ``.model``, a byte-level BPE or SentencePiece-style
                              ``tokenizer.json``, a model folder: :mod:`.bases`) plus the
                              entries of DIR it lacks (:class:`.adapted.AdaptedTokenizer`)
``DIR:replace``               DIR's vocabulary alone, rows mapped from the base
``x.model`` / ``x.json``      any SentencePiece model / HF ``tokenizer.json`` file
============================  ==============================================================

>>> load_tokenizer("bytes").encode("hi")
[104, 105]

The interface is ``__all__``: :func:`load_tokenizer` and the :class:`~.base.Tokenizer` it returns,
and the transfer (:class:`~.recipe.Recipe`, :func:`load_base`, :func:`~.bases.find_base`,
:func:`~.plan.load_vocabulary`, :func:`~.plan.plan_transfer`, :class:`~.adapted.AdaptedTokenizer`).
Every other class and constant is imported from its home module.

What it does not do: no building (``hypertok build``), no metrics (:mod:`hypertok.lab`),
no model and no torch (``hypertok.adapt``). It imports nothing from lab, gpu or adapt.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ..errors import HyperTokError
from .adapted import AdaptedTokenizer, BaseTokenizer
from .base import Tokenizer, Unavailable
from .bases import BaseVocabulary, base_from_file, find_base
from .hf import HFTokenizer
from .mistral import MISTRAL_FILES, MISTRAL_SENTENCEPIECE, load_mistral, mistral_file
from .plan import load_vocabulary, plan_transfer
from .recipe import STRATEGIES, Recipe
from .spm import LosslessSentencePiece, SentencePieceTokenizer
from .trained import TRAINED_KINDS, trained
from .utf8 import BytesTokenizer

# Importable here for the callers that have always taken them from the package; not the
# interface: each has its home module, named on the right, where new code imports it from.
from .base import parse_byte_piece  # noqa: F401  (.base)
from .bases import BASE_FAMILIES, base_record, load_saved_base  # noqa: F401  (.bases)
from .bytelevel import LosslessByteLevel  # noqa: F401  (.bytelevel)
from .family import BaseFamily  # noqa: F401  (.family)
from .hypertok_dir import HyperTokTokenizer  # noqa: F401  (.hypertok_dir)
from .model_tokenizer import model_pieces, model_tokenizer  # noqa: F401  (.model_tokenizer)
from .recipe import (BASE_TOKENIZER_FILE, BASE_TOKENIZER_FILES, BASE_TOKENIZER_JSON,  # noqa: F401
                     RECIPE_FILE, TOKENIZER_SUBDIR)  # (.recipe: an adapter folder's file names)
from .sentencepiece_json import LosslessSentencePieceJson  # noqa: F401  (.sentencepiece_json)
from .spm import lossless_sentencepiece_proto  # noqa: F401  (.spm)
from .trained import corpus_sha256  # noqa: F401  (.trained)

# The interface (issue 23): a tokenizer by its spec, and a vocabulary transfer.
__all__ = [
    "Tokenizer", "Unavailable", "load_tokenizer", "TOKENIZERS",
    "STRATEGIES", "Recipe", "load_base", "find_base", "load_vocabulary", "plan_transfer",
    "AdaptedTokenizer", "BaseTokenizer",
]


def _trained(kind: str) -> Callable[..., Tokenizer]:
    def make(**kw) -> Tokenizer:
        return trained(kind, **kw)
    return make


# name -> constructor (keyword arguments of load_tokenizer are passed on)
TOKENIZERS: dict[str, Callable[..., Tokenizer]] = {
    "bytes": lambda **kw: BytesTokenizer(),
    **{name: (lambda name=name, **kw: load_mistral(name)) for name in MISTRAL_FILES},
    **{kind: _trained(kind) for kind in TRAINED_KINDS},
}


def load_base(base: str | os.PathLike) -> BaseVocabulary:
    """The base vocabulary of a transfer, encoding losslessly.

    ``base``: ``mistral-v1``/``mistral-v3``, a SentencePiece ``.model`` file, a byte-level BPE or
    SentencePiece-style ``tokenizer.json`` (bos/eos from the ``tokenizer_config.json`` beside it),
    or a base model folder holding one (:func:`find_base`).
    """
    if str(base) in MISTRAL_SENTENCEPIECE:
        try:
            return LosslessSentencePiece(mistral_file(str(base)), str(base))
        except Unavailable as e:
            raise HyperTokError(f"base tokenizer {base}: {e}") from None
    p = Path(base)
    if p.is_dir():
        return find_base(p)
    if p.is_file():
        return base_from_file(p)
    raise HyperTokError(f"base tokenizer {base!r}: not {', '.join(MISTRAL_SENTENCEPIECE)}, no such file or folder")


def _split_strategy(spec: str) -> tuple[str, str | None]:
    for s in STRATEGIES:
        if spec.endswith(":" + s):
            return spec[: -len(s) - 1], s
    return spec, None


def load_tokenizer(spec: str | os.PathLike, base: str | os.PathLike = "mistral-v3", *,
                   base_rows: int | None = None, **kw) -> Tokenizer:
    """The tokenizer named by ``spec`` (see the module docstring for the forms).

    ``base`` and ``base_rows`` (rows of the base model's embedding matrix) only matter for
    ``DIR:extend``/``DIR:replace``; other keywords go to the table's constructor (the trained
    baselines take ``train``, ``size``, ``cache_dir``, ``progress``, ``sha256``).
    Raises :class:`Unavailable` when a named tokenizer cannot be had here, and
    :class:`HyperTokError` for a spec that names nothing.
    """
    spec = str(spec)
    if spec in TOKENIZERS:
        return TOKENIZERS[spec](**kw)
    directory, strategy = _split_strategy(spec)
    d = Path(directory)
    if strategy is not None:
        if not d.is_dir():
            raise HyperTokError(f"tokenizer {spec!r}: no such directory {directory}; give a HyperTok or "
                                "tokenizer.json directory before :extend or :replace")
        new = load_vocabulary(d)
        bv = load_base(base)
        recipe = plan_transfer(bv, new, strategy, base_rows=base_rows)
        return AdaptedTokenizer(recipe, new, bv, name=f"{d.name}:{strategy}")
    if d.is_dir():
        return load_vocabulary(d)
    if d.is_file():
        if d.suffix == ".json":
            return HFTokenizer.from_dir(d.parent, d.parent.name) if d.name == "tokenizer.json" else _hf_file(d)
        return SentencePieceTokenizer(d)
    raise HyperTokError(f"tokenizer {spec!r}: not one of {', '.join(TOKENIZERS)}, and no such file or directory; "
                        "give a HyperTok directory (optionally DIR:extend or DIR:replace), a SentencePiece .model "
                        "or a tokenizer.json")


def _hf_file(path: Path) -> HFTokenizer:
    from tokenizers import Tokenizer as HFTk

    try:
        return HFTokenizer(HFTk.from_file(str(path)), path.stem, {"file": str(path)})
    except Exception as e:  # tokenizers raises plain Exception
        raise HyperTokError(f"{path}: cannot be loaded by tokenizers ({e})") from None
