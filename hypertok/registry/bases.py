"""The base families of a vocabulary transfer: the table of kinds, and finding a model folder's base.

What it does (issue 21): :data:`BASE_FAMILIES` lists every kind of base tokenizer, one
:class:`~hypertok.registry.family.BaseFamily` class each, in the order :func:`find_base`
tries them on a model folder:

=======================  =========================================================  ==========================
kind                     the folder holds                                           class
=======================  =========================================================  ==========================
``sentencepiece``        a SentencePiece ``tokenizer.model`` (Mistral v1/v3,        :class:`.LosslessSentencePiece`
                         Llama 2), even beside a ``tokenizer.json``
``sentencepiece-json``   a SentencePiece-style ``tokenizer.json``: BPE with         :class:`.LosslessSentencePieceJson`
                         byte fallback, ``▁`` for spaces (Gemma, Mistral's HF)
``byte-level-bpe``       a byte-level BPE ``tokenizer.json`` (Llama 3,              :class:`.LosslessByteLevel`
                         Mistral-Nemo's Tekken)
=======================  =========================================================  ==========================

A recipe records the kind (:meth:`~hypertok.registry.family.BaseFamily.record`), so
:func:`load_saved_base` brings back the same class from an adapter folder (a recipe from
before issue 11 records nothing: its base is a SentencePiece ``base_tokenizer.model``). A
new kind is one class and one row of the table.

What it does not do: no reading of any file format (the classes' own modules), no planning.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from ..errors import HyperTokError
from .bytelevel import LosslessByteLevel
from .family import BaseFamily, TokenizerJsonFamily, read_tokenizer_json
from .recipe import BASE_TOKENIZER_FILE
from .sentencepiece_json import LosslessSentencePieceJson
from .spm import LosslessSentencePiece

__all__ = ["BASE_FAMILIES", "BaseVocabulary", "find_base", "base_record", "load_saved_base", "base_from_file"]

# kind -> class, in the order find_base tries them
BASE_FAMILIES: dict[str, type[BaseFamily]] = {
    cls.kind: cls for cls in (LosslessSentencePiece, LosslessSentencePieceJson, LosslessByteLevel)}

BaseVocabulary = BaseFamily  # the base of a transfer (the name before issue 21)


def find_base(base_dir: str | os.PathLike) -> BaseFamily:
    """The base tokenizer of a model folder: the first kind of :data:`BASE_FAMILIES` that claims it
    (a ``tokenizer.model``; else a ``tokenizer.json`` that is SentencePiece-style, else byte-level;
    bos/eos of a ``tokenizer.json`` named by the ``tokenizer_config.json`` beside it).

    A folder with both files (Mistral 7B, Llama 2) is read from the ``.model``, the file the
    checkpoint was trained with.
    """
    d = Path(base_dir)
    tokenizer_json = functools.cache(lambda: read_tokenizer_json(d / "tokenizer.json"))  # parsed once, if asked
    for family in BASE_FAMILIES.values():
        if family.claims(d, tokenizer_json):
            return family.find(d, tokenizer_json)
    if (d / "tokenizer.json").is_file():
        raise HyperTokError(_unknown_json(d / "tokenizer.json", tokenizer_json()))
    tekken = "; a Mistral tekken.json is not read, give the folder the checkpoint's HF tokenizer.json" \
        if (d / "tekken.json").is_file() else ""
    raise HyperTokError(f"{d}: no tokenizer next to the weights (neither a SentencePiece tokenizer.model nor a "
                        f"byte-level BPE or SentencePiece-style tokenizer.json{tekken}); copy the base model's "
                        f"tokenizer files there")


def base_from_file(path: str | os.PathLike) -> BaseFamily:
    """The base in one file: a ``.json`` of a ``tokenizer.json`` kind (specials from the
    ``tokenizer_config.json`` beside it), anything else a SentencePiece model."""
    p = Path(path)
    if p.suffix != ".json":
        return LosslessSentencePiece(p)
    data = read_tokenizer_json(p)
    for family in BASE_FAMILIES.values():
        if issubclass(family, TokenizerJsonFamily) and family.accepts(data):
            return family.from_file(p, data=data)
    raise HyperTokError(_unknown_json(p, data))


def _unknown_json(path: Path, data: dict) -> str:
    model = data.get("model") if isinstance(data.get("model"), dict) else {}
    pre = (data.get("pre_tokenizer") or {}).get("type") if isinstance(data.get("pre_tokenizer"), dict) else None
    return (f"{path}: not a byte-level BPE tokenizer.json (pre-tokenizer {pre!r}) nor a SentencePiece-style one "
            f"(a BPE with byte_fallback; this model: {model.get('type')!r}, byte_fallback "
            f"{model.get('byte_fallback')!r}); HyperTok takes one of those or a SentencePiece tokenizer.model as a "
            f"base")


def base_record(base: BaseFamily) -> dict:
    """What a recipe keeps about its base tokenizer (:meth:`~hypertok.registry.family.BaseFamily.record`)."""
    return base.record()


def load_saved_base(directory: str | os.PathLike, record: dict) -> BaseFamily | None:
    """The base tokenizer an adapter folder holds (``record``: the recipe's ``base_tokenizer``), or None
    where it holds none. The record's kind picks the class; a record without one is read by its
    file: ``base_tokenizer.json`` is byte-level BPE, anything else (an empty record: a recipe from
    before issue 11) a SentencePiece ``base_tokenizer.model``."""
    d = Path(directory)
    name = record.get("file", BASE_TOKENIZER_FILE)
    if not (d / name).is_file():
        return None
    kind = record.get("kind") or (LosslessByteLevel.kind if name == LosslessByteLevel.saved_as
                                  else LosslessSentencePiece.kind)
    if kind not in BASE_FAMILIES:
        raise HyperTokError(f"{d}: the recipe's base tokenizer is of kind {kind!r}, which this hypertok does not read "
                            f"(it reads {', '.join(BASE_FAMILIES)}); upgrade hypertok or re-run `hypertok adapt`")
    return BASE_FAMILIES[kind].load_saved(d / name, record)
