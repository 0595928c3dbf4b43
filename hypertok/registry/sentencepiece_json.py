"""SentencePiece-style ``tokenizer.json`` files (Gemma's, Mistral's HF folders) as the base of vocabulary transfer.

What it does (issue 21): :class:`LosslessSentencePieceJson` reads a ``tokenizer.json`` whose
model is a BPE with ``byte_fallback`` and whose pieces write a space as ``▁`` (a ``Replace``
normaliser, as Gemma's file has, or a ``Metaspace`` pre-tokenizer, as Mistral's and Llama 2's
converted files have; a ``Split`` pre-tokenizer on spaces is kept as it is). It is the twin of
:class:`~hypertok.registry.spm.LosslessSentencePiece` for a folder that ships no
``tokenizer.model``: the file's own segmentation, in memory with the dummy prefix off and
every other normalisation dropped (only ``" "`` -> ``▁`` is kept), so encoding is lossless
and spans concatenate. Three things the file cannot give back are spelled with the base's
``<0xAB>`` byte pieces: ``▁`` in the text (the file reads it as a space), lone surrogates
(which the Rust library cannot take), and the text of a control token that the file's merges
could rebuild from plain text (so a literal ``<bos>`` never becomes bos). It offers the piece
view and the :class:`~hypertok.registry.family.BaseFamily` interface: it is saved as
``base_tokenizer.json`` with its bos/eos/unk/pad names (from the ``tokenizer_config.json``
beside it), and its rows of the ``extend`` model tokenizer are text pieces with byte fallback,
as over a ``tokenizer.model``, ranked by id (a SentencePiece BPE numbers its pieces best first).

What it does not do: no Unigram ``tokenizer.json`` and no BPE without byte fallback (neither is
a SentencePiece BPE); no file that spells spaces as themselves. Where a folder also has the
``tokenizer.model``, :func:`~hypertok.registry.bases.find_base` reads that instead.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ..errors import HyperTokError
from .base import SP_SPACE, Tokenizer, parse_byte_piece, piece_surface
from .family import LosslessTokenizerJson, read_tokenizer_json, special_name, template_bos, text_rows
from .spm import UNSPELLABLE

__all__ = ["LosslessSentencePieceJson", "is_sentencepiece_style"]

def is_sentencepiece_style(data: dict) -> bool:
    """Whether a parsed ``tokenizer.json`` is a SentencePiece-style BPE: a BPE model with byte fallback.

    >>> is_sentencepiece_style({"model": {"type": "BPE", "byte_fallback": True}})
    True
    >>> is_sentencepiece_style({"model": {"type": "BPE", "byte_fallback": False}})
    False
    """
    model = data.get("model") or {}
    return isinstance(model, dict) and model.get("type") == "BPE" and model.get("byte_fallback") is True


def _leaves(node, key: str) -> list[dict]:
    """The normalisers (``key="normalizers"``) or pre-tokenizers of a node, Sequences flattened."""
    if not isinstance(node, dict):
        return []
    if node.get("type") == "Sequence":
        return [leaf for child in node.get(key) or [] for leaf in _leaves(child, key)]
    return [node]


def _is_space_mark(node: dict) -> bool:
    """A ``Replace`` normaliser that writes a space as ``▁``."""
    return node.get("type") == "Replace" and node.get("pattern") == {"String": " "} and node.get("content") == SP_SPACE


def _no_dummy_prefix(node):
    """The pre-tokenizer with every Metaspace's prefix off (a copy)."""
    if isinstance(node, dict):
        node = {k: _no_dummy_prefix(v) for k, v in node.items()}
        if node.get("type") == "Metaspace":
            node["prepend_scheme"] = "never"
            if "add_prefix_space" in node:  # the format before tokenizers 0.14
                node["add_prefix_space"] = False
    elif isinstance(node, list):
        node = [_no_dummy_prefix(x) for x in node]
    return node


def _merged(merges) -> set[str]:
    """The pieces a BPE's merges build (``[left, right]`` pairs, or ``"left right"`` in older files)."""
    out = set()
    for m in merges or []:
        pair = m if isinstance(m, list) else str(m).split(" ", 1)
        if len(pair) == 2:
            out.add(pair[0] + pair[1])
    return out


class LosslessSentencePieceJson(LosslessTokenizerJson, Tokenizer):
    """A SentencePiece-style BPE ``tokenizer.json`` read losslessly (a base of vocabulary transfer).

    ``pieces[i]``: the file's token (``▁`` for spaces, ``<0xAB>`` bytes, control tokens by name);
    ``surfaces[i]``: its text (``""`` for control, unknown and byte pieces); ``bytes_of[i]``: the
    byte of a ``<0xAB>`` piece; ``controls``: ids of the special tokens; ``special_tokens``: names
    of ``bos``, ``eos``, ``unk`` and ``pad``.
    """

    family = kind = "sentencepiece-json"
    dummy_prefix = False

    def __init__(self, path: str | os.PathLike, special_tokens: dict | None = None, name: str | None = None,
                 data: dict | None = None) -> None:
        from tokenizers import Tokenizer as HFTk

        super().__init__()
        self.path = Path(path)
        self.name = name or self.path.name
        data = read_tokenizer_json(self.path) if data is None else data
        if not is_sentencepiece_style(data):
            model = data.get("model") if isinstance(data.get("model"), dict) else {}
            raise HyperTokError(
                f"{self.path}: not a SentencePiece-style tokenizer.json (model {model.get('type')!r}, byte_fallback "
                f"{model.get('byte_fallback')!r}; a BPE with byte_fallback true is one)")
        spaces = [n for n in _leaves(data.get("normalizer"), "normalizers") if _is_space_mark(n)]
        metaspace = any(n.get("type") == "Metaspace" for n in _leaves(data.get("pre_tokenizer"), "pretokenizers"))
        if not spaces and not metaspace:
            raise HyperTokError(f"{self.path}: a BPE with byte fallback whose spaces are not written as ▁ (no Replace "
                                f"normaliser, no Metaspace pre-tokenizer); not a SentencePiece-style tokenizer.json")
        self.adds_bos = template_bos(data)  # the name of the token the file's post-processor puts first, if any
        lossless = {**data, "normalizer": spaces[0] if spaces else None, "post_processor": None,
                    "pre_tokenizer": _no_dummy_prefix(data.get("pre_tokenizer"))}
        try:
            self.tk = HFTk.from_str(json.dumps(lossless))
        except Exception as e:  # tokenizers raises plain Exception
            raise HyperTokError(f"{self.path}: cannot be loaded by tokenizers ({e})") from None
        self.tk.encode_special_tokens = True  # "<bos>" in text is text, as in HyperTok.encode
        self._read_pieces(data)
        names = dict(special_tokens if special_tokens is not None else self._guess_specials())
        unk = data["model"].get("unk_token")
        if not special_name(names.get("unk")) and isinstance(unk, str) and self.tk.token_to_id(unk) is not None:
            names["unk"] = unk  # the model's own unknown piece, where tokenizer_config.json names none
        self._set_specials(names, self.tk.get_vocab(with_added_tokens=True))
        self.info = {"file": str(self.path), "special_tokens": dict(self.special_tokens)}

    def _read_pieces(self, data: dict) -> None:
        """The piece view, the byte table, and what ``encode`` must spell with bytes (``_slow``)."""
        vocab = self.tk.get_vocab(with_added_tokens=True)
        model_vocab = data["model"].get("vocab") or {}
        unk_name = data["model"].get("unk_token")
        self.vocab_size = max(vocab.values()) + 1
        added = self.tk.get_added_tokens_decoder()
        self.controls = frozenset(i for i, t in added.items() if t.special)
        unk = vocab.get(unk_name) if unk_name is not None else None
        self.pieces = [""] * self.vocab_size
        for tok, i in vocab.items():
            self.pieces[i] = tok
        self.bytes_of: list[int | None] = [None] * self.vocab_size
        self.surfaces = [""] * self.vocab_size
        table: list[bytes | None] = []
        for i, p in enumerate(self.pieces):
            if i == unk or not p:  # the unknown piece may stand for anything; a hole in the ids spells nothing
                table.append(None)
            elif i in self.controls:
                table.append(b"")
            elif i in added:  # a non-special added token: matched in the raw text, or after " " -> "▁"
                t = added[i]
                self.surfaces[i] = piece_surface(t.content) if t.normalized else t.content
                table.append(self.surfaces[i].encode("utf-8"))
            elif (b := parse_byte_piece(p)) is not None:
                self.bytes_of[i] = b
                table.append(bytes([b]))
            else:
                self.surfaces[i] = piece_surface(p)
                table.append(self.surfaces[i].encode("utf-8"))
        self._piece_bytes = table
        self.fallback_ids = frozenset(i for i, b in enumerate(self.bytes_of) if b is not None)
        self.fallback_note = "byte-fallback pieces <0xXX>"
        self.byte_ids = {b: i for i, b in enumerate(self.bytes_of) if b is not None}
        self.single: dict[str, int] = {}
        for i, s in enumerate(self.surfaces):
            if s:
                self.single.setdefault(s, i)
        for b in set(range(0x80)) - set(self.byte_ids):  # Gemma's file reads <0x09> as "\t": spell 0x09 with it
            if chr(b) in self.single:
                self.byte_ids[b] = self.single[chr(b)]
        # control tokens the BPE could rebuild from their text (a one-character piece, or a merge's result)
        built = _merged(data["model"].get("merges"))
        reachable = [piece_surface(self.pieces[i]) for i in self.controls
                     if self.pieces[i] in model_vocab and (self.pieces[i] in built or len(self.pieces[i]) == 1)]
        alts = [re.escape(t) for t in sorted(reachable, key=len, reverse=True)] + [f"[{UNSPELLABLE}]"]
        self._slow = re.compile("|".join(alts))

    # ------------------------------------------------------------------ as a base of transfer
    accepts = staticmethod(is_sentencepiece_style)

    def model_rows(self) -> tuple[list[tuple[str, float]], list[str]]:
        """Every piece as its text (:func:`~hypertok.registry.family.text_rows`), as over a
        ``tokenizer.model``, ranked by id; control tokens and the unknown piece are special tokens."""
        ranked = [i for i in range(len(self)) if self.surfaces[i]]
        controls = sorted(self.controls | ({self.unk_id} if self.unk_id is not None else set()))
        return text_rows(self.pieces, self.surfaces, ranked), [self.pieces[i] for i in controls]
