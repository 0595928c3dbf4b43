"""Mistral's real tokenizers, read offline: v1 and v3 SentencePiece, and Tekken.

What it does: the ONE lookup of Mistral's tokenizer files (:data:`MISTRAL_FILES`,
:func:`mistral_file`), which ship inside the ``mistral-common`` package
(``mistral_common/data/``): v1 SentencePiece (32 000, ``tokenizer.model.v1``), v3
SentencePiece (32 768, ``mistral_instruct_tokenizer_240323.model.v3``) and Tekken
(131 072, ``tekken_240911.json``). The SentencePiece files load with plain
``sentencepiece``, so a machine without ``mistral-common`` can use a copy of them
(``HYPERTOK_MISTRAL_DATA=/folder``). Tekken goes through ``mistral_common``'s
``Tekkenizer`` (:class:`TekkenTokenizer`); :func:`tekken_tokenizer_json` lays a Tekken file
out as the byte-level BPE ``tokenizer.json`` of an HF Mistral-Nemo checkpoint (issue 11:
the kind of base vocabulary transfer takes, at full size or cut to its first ranks).

What it does not do: no download; a file that cannot be had raises
:class:`~hypertok.registry.base.Unavailable` with the reason. Issues 3 and 4; one
lookup since issue 9 (it was written twice, in baselines and vram).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import HyperTokError
from .base import Tokenizer, Unavailable

MISTRAL_FILES = {
    "mistral-v1": "tokenizer.model.v1",
    "mistral-v3": "mistral_instruct_tokenizer_240323.model.v3",
    "tekken": "tekken_240911.json",
}
MISTRAL_SENTENCEPIECE = ["mistral-v1", "mistral-v3"]


def mistral_data_dir() -> Path:
    """The folder holding Mistral's tokenizer files.

    ``$HYPERTOK_MISTRAL_DATA`` wins (a copy of the files, e.g. on a machine without
    mistral-common); otherwise ``mistral_common/data`` is located without importing
    the package.
    """
    env = os.environ.get("HYPERTOK_MISTRAL_DATA")
    if env:
        return Path(env)
    spec = importlib.util.find_spec("mistral_common")
    if spec is None or not spec.submodule_search_locations:
        raise Unavailable("mistral-common is not installed (pip install mistral-common), "
                          "and $HYPERTOK_MISTRAL_DATA does not name a folder with its tokenizer files")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def mistral_file(which: str) -> Path:
    """Path of ``mistral-v1``, ``mistral-v3`` or ``tekken``'s file; raises :class:`Unavailable`."""
    if which not in MISTRAL_FILES:
        raise HyperTokError(f"unknown Mistral tokenizer {which!r}; choose from {', '.join(MISTRAL_FILES)}")
    path = mistral_data_dir() / MISTRAL_FILES[which]
    if not path.is_file():
        where = ("the folder named by $HYPERTOK_MISTRAL_DATA" if os.environ.get("HYPERTOK_MISTRAL_DATA")
                 else "this mistral-common version")
        raise Unavailable(f"{path} not found ({where} does not hold it)")
    return path


class TekkenTokenizer(Tokenizer):
    """Mistral's Tekken (tiktoken-based) via ``mistral_common``'s ``Tekkenizer``."""

    family = "tekken"

    def __init__(self, path: str | os.PathLike, name: str = "tekken") -> None:
        super().__init__()
        try:
            from mistral_common.tokens.tokenizers.tekken import Tekkenizer
        except ImportError as e:
            raise Unavailable(f"mistral-common is not installed ({e}); pip install mistral-common") from None
        self.tk = Tekkenizer.from_file(path)
        self.name = name
        self.vocab_size = self.tk.n_words
        self._off = self.tk.num_special_tokens
        self._model = getattr(self.tk, "_model", None)  # a tiktoken Encoding: gives a threaded batch path
        self.info = {"file": str(path), "special_tokens": self._off}
        self.bos_id, self.eos_id = self.tk.bos_id, self.tk.eos_id

    def encode(self, text: str) -> list[int]:
        return self.tk.encode(text, bos=False, eos=False)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        if self._model is None or not hasattr(self._model, "encode_ordinary_batch"):
            return super().encode_batch(texts)
        off = self._off
        return [[t + off for t in ids] for ids in self._model.encode_ordinary_batch(list(texts))]

    def decode(self, ids: Sequence[int]) -> str:
        return self.tk.decode(list(ids))

    def decode_batch(self, batch: Sequence[Sequence[int]]) -> list[str]:
        if self._model is None or not hasattr(self._model, "decode_batch"):
            return super().decode_batch(batch)
        off = self._off
        return self._model.decode_batch([[t - off for t in ids if t >= off] for ids in batch])

    def _build_piece_bytes(self) -> list[bytes | None]:
        out: list[bytes | None] = [b""] * self._off
        out += [self.tk.id_to_byte_piece(i) for i in range(self._off, self.vocab_size)]
        return out


def tekken_tokenizer_json(path: str | os.PathLike, n_ranks: int | None = None):
    """A Tekken file as an HF ``tokenizers.Tokenizer``: Mistral-Nemo's ``tokenizer.json``.

    Laid out as transformers' ``MistralConverter`` lays it out: the control slots first
    (``<unk> <s> </s> [INST] ...``, ``<SPECIAL_n>`` fillers up to the file's
    ``default_num_special_tokens``), then the BPE ranks in byte-level characters with the
    merges recovered from the ranks, Tekken's split regex before a ByteLevel pre-tokenizer
    without prefix space, ``ignore_merges``, a ByteLevel decoder. ``n_ranks``: keep only the
    first ranks (ranks 0..255 are the bytes; default: all the file's default vocabulary
    holds), for a small base of the same kind. Encodes as ``Tekkenizer`` does on the same ranks.
    """
    import base64
    import json

    from tokenizers import AddedToken, Regex, Tokenizer as HFTk, decoders, models, pre_tokenizers, processors

    from .bytelevel import to_byte_level

    p = Path(path)
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
        cfg = raw["config"]
        n_special = int(cfg.get("default_num_special_tokens") or 0)
        entries = raw["vocab"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise HyperTokError(f"{p}: not a readable Tekken file ({type(e).__name__}: {e})") from None
    specials = raw.get("special_tokens")
    if specials is None:  # files before mistral-common 1.5 name their controls in the library
        try:
            from mistral_common.tokens.tokenizers.tekken import Tekkenizer
        except ImportError as e:
            raise Unavailable(f"{p} names no special tokens and mistral-common is not installed ({e})") from None
        specials = list(Tekkenizer.DEPRECATED_SPECIAL_TOKENS)
    named = [str(getattr(t["token_str"], "value", t["token_str"])) for t in sorted(specials, key=lambda t: t["rank"])]
    controls = named + [f"<SPECIAL_{i}>" for i in range(len(named), max(n_special, len(named)))]
    if n_ranks is None:
        n_ranks = (cfg.get("default_vocab_size") or len(entries) + len(controls)) - len(controls)
    ranks = {base64.b64decode(t["token_bytes"]): t["rank"] for t in entries[:n_ranks]}
    vocab = {to_byte_level(b): r + len(controls) for b, r in ranks.items()}
    vocab.update({c: i for i, c in enumerate(controls)})
    merges = []
    for b, r in ranks.items():  # every split of a token into two tokens of the vocabulary, by their ranks
        found = sorted(((b[:k], b[k:]) for k in range(1, len(b)) if b[:k] in ranks and b[k:] in ranks),
                       key=lambda lr: (ranks[lr[0]], ranks[lr[1]]))
        merges += [(r, to_byte_level(left), to_byte_level(right)) for left, right in found]
    merges.sort(key=lambda m: m[0])
    tk = HFTk(models.BPE(vocab, [(left, right) for _, left, right in merges], fuse_unk=False, ignore_merges=True))
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(cfg["pattern"]), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tk.decoder = decoders.ByteLevel()
    tk.add_special_tokens([AddedToken(c, special=True) for c in controls])
    tk.post_processor = processors.ByteLevel(trim_offsets=False)
    return tk


def load_mistral(which: str) -> Tokenizer:
    """``which`` in ``mistral-v1``, ``mistral-v3``, ``tekken``; raises :class:`Unavailable`."""
    path = mistral_file(which)
    if which == "tekken":
        return TekkenTokenizer(path, "mistral-tekken")
    from .spm import SentencePieceTokenizer

    return SentencePieceTokenizer(path, which)
