"""The tokenizer an adapted model reads: :class:`AdaptedTokenizer`, and the untouched base as :class:`BaseTokenizer`.

What it does (issue 5; moved out of ``transfer.py`` into the registry by issue 9, split by
role by issue 21): :class:`AdaptedTokenizer` is text <-> model ids for a
:class:`~hypertok.registry.recipe.Recipe`. It encodes with the model's one ``tokenizer.json``
(:func:`~hypertok.registry.model_tokenizer.model_tokenizer`), the file it saves and serving
loads, and it is lossless for every Python string: lone surrogates and, where the base lacks
their characters, literal control strings are spelled with byte pieces (issue 13).
:meth:`AdaptedTokenizer.save` writes an adapter folder's tokenizer files and recipe;
:meth:`AdaptedTokenizer.load` reads them back, checked against the recipe's sha256s.
:class:`BaseTokenizer` is the base behind the same interface (for ``hypertok eval``).

Where the rest of vocabulary transfer lives (all re-exported here and by
:mod:`hypertok.registry`): the recipe and the adapter folder's file names (:mod:`.recipe`),
the base kinds (the interface :mod:`.family`, the table and ``find_base`` :mod:`.bases`; the
classes in :mod:`.spm`, :mod:`.sentencepiece_json`, :mod:`.bytelevel`), the target vocabulary
and ``plan_transfer`` (:mod:`.plan`), and the model's ``tokenizer.json`` (:mod:`.model_tokenizer`).

What it does not do: no torch, no row initialisation and no training (those are the
model side: ``hypertok.adapt``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

from ..core.lossless import SURROGATES, decode_lossless, encode_escaping
from ..errors import HyperTokError
from ..files import atomic_write, sha256_file
from .base import Tokenizer, parse_byte_piece
from .bases import BASE_FAMILIES, BaseVocabulary, base_record, find_base, load_saved_base
from .family import BASE_PIECE_SCORE, BASE_PIECE_SPREAD, CHAR_SCORE, RARE_SCORE, BaseFamily
from .model_tokenizer import SCORE_DECIMALS, model_pieces, model_tokenizer
from .plan import Vocabulary, load_vocabulary, plan_transfer
from .recipe import (
    BASE_TOKENIZER_FILE,
    BASE_TOKENIZER_FILES,
    BASE_TOKENIZER_JSON,
    CHAT_TEMPLATE_FILE,
    MAX_MODEL_ROWS,
    MODEL_TOKENIZER_CONFIG,
    MODEL_TOKENIZER_FILE,
    RECIPE_FILE,
    RECIPE_FORMAT,
    RECIPE_VERSION,
    STRATEGIES,
    TOKENIZER_SUBDIR,
    Recipe,
)

__all__ = [
    "AdaptedTokenizer", "BaseTokenizer",
    # re-exported: the names this module held before issue 21
    "BASE_FAMILIES", "BaseFamily", "BaseVocabulary", "base_record", "find_base", "load_saved_base",
    "BASE_PIECE_SCORE", "BASE_PIECE_SPREAD", "CHAR_SCORE", "RARE_SCORE", "SCORE_DECIMALS", "model_pieces",
    "model_tokenizer", "Vocabulary", "load_vocabulary", "plan_transfer", "BASE_TOKENIZER_FILE",
    "BASE_TOKENIZER_FILES", "BASE_TOKENIZER_JSON", "CHAT_TEMPLATE_FILE", "MAX_MODEL_ROWS", "MODEL_TOKENIZER_CONFIG",
    "MODEL_TOKENIZER_FILE", "RECIPE_FILE", "RECIPE_FORMAT", "RECIPE_VERSION", "STRATEGIES", "TOKENIZER_SUBDIR",
    "Recipe",
]


class AdaptedTokenizer(Tokenizer):
    """Text <-> model ids for a recipe (the tokenizer an adapted model reads and writes).

    Encoding reads the model's one ``tokenizer.json`` (:func:`model_tokenizer`, the file
    that ``hypertok adapt`` saves and that serving loads), so the tokens that trained the model
    are the tokens that serve it. ``vocab_size`` is the number of model rows. Lossless for
    every Python string: lone surrogates (which the Rust file cannot take) and, where the base
    lacks their characters, literal control strings (``<s>``) are spelled with byte pieces.
    ``base``: a base of any kind (:func:`~hypertok.registry.bases.find_base`).
    """

    family = "adapted"

    def __init__(self, recipe: Recipe, new: Vocabulary | None, base: BaseFamily | None,
                 name: str | None = None, hf=None):
        from tokenizers import Tokenizer as HFTk

        super().__init__()
        self.recipe, self.new, self.base = recipe, new, base
        self.extend = recipe.strategy == "extend"
        if self.extend and base is None:
            raise HyperTokError("an `extend` adapter needs the base tokenizer (base_tokenizer.model or .json)")
        # extend over a byte-level base: the model file's pieces are byte-level characters
        self.byte_level = self.extend and base.byte_level
        recipe.validate()
        self.model_to_new = {m: i for i, m in enumerate(recipe.new_to_model) if m >= recipe.base_vocab_size}
        self.bos = self.bos_id = recipe.bos
        self.eos = self.eos_id = recipe.eos
        self.pad_id = recipe.pad
        self.vocab_size = recipe.model_vocab_size
        self.name = name or (f"{new.path.name if new is not None and new.path else 'base'}:{recipe.strategy}")
        if new is not None:
            # the trainer reads its file as serving will: parsed from the JSON it saves
            self.hf = hf if hf is not None else HFTk.from_str(model_tokenizer(recipe, new, base).to_str())
            if self.hf.get_vocab_size(with_added_tokens=True) != self.vocab_size:
                raise HyperTokError(f"{self.name}: the model tokenizer has {self.hf.get_vocab_size(True)} ids for "
                                    f"{self.vocab_size} model rows; the folder mixes two saves, re-run `hypertok adapt`")
            self.hf.encode_special_tokens = True  # a literal "<s>" in text is text, as in HyperTok.encode
            if self.byte_level:
                self._byte_ids = dict(base.byte_ids)
            else:
                self._byte_ids = {parse_byte_piece(t): i for t, i in self.hf.get_vocab().items()
                                  if parse_byte_piece(t) is not None}
            self._escape = self._escape_pattern()

    def _escape_pattern(self):
        """Lone surrogates, and control strings the model could read as their own token
        (only when the base lacks one of their characters): spelled with byte pieces.
        A byte-level model lacks none: it spells every byte."""
        vocab = self.hf.get_vocab()
        risky = [t.content for t in self.hf.get_added_tokens_decoder().values()
                 if not self.byte_level and any(ch not in vocab for ch in t.content)]
        alts = [re.escape(t) for t in sorted(risky, key=len, reverse=True)] + [f"[{SURROGATES}]"]
        return re.compile("|".join(alts))

    def model_json(self) -> str:
        """The model's ``tokenizer.json`` (what :meth:`save` writes)."""
        tk = self.hf
        flag = tk.encode_special_tokens
        tk.encode_special_tokens = False  # serving reads control strings, as every HF tokenizer does
        try:
            return tk.to_str(pretty=True)
        finally:
            tk.encode_special_tokens = flag

    def hf_config(self) -> dict:
        """``tokenizer_config.json`` for transformers: specials, BOS behaviour, chat template."""
        cfg = self.recipe.tokenizer_config
        name = self.hf.id_to_token
        out = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": name(self.bos), "eos_token": name(self.eos),
               "unk_token": name(self.unk_id) if self.unk_id is not None else None, "pad_token": name(self.pad_id),
               "add_bos_token": cfg.get("add_bos_token", True), "add_eos_token": cfg.get("add_eos_token", False),
               "clean_up_tokenization_spaces": False, "legacy": False,
               "model_max_length": cfg.get("model_max_length", 1 << 30)}
        extra = list(getattr(self.new, "added_specials", {}))
        if extra:
            out["additional_special_tokens"] = extra
        if cfg.get("chat_template"):
            out["chat_template"] = cfg["chat_template"]
        return out

    @property
    def unk_id(self) -> int | None:  # type: ignore[override]
        if self.new is None or self.extend:
            return self.base.unk_id if self.base is not None else None
        return self.new.specials.get("unk")

    @classmethod
    def load(cls, adapter_dir: str | os.PathLike) -> "AdaptedTokenizer":
        """The tokenizer of an adapter (or merged) folder; refuses a recipe that does not validate
        and tokenizer files that are not the ones the recipe was saved with."""
        from tokenizers import Tokenizer as HFTk

        d = Path(adapter_dir)
        recipe = Recipe.load(d)
        recipe.check_files(d, [n for n in recipe.files if n in (*BASE_TOKENIZER_FILES, MODEL_TOKENIZER_FILE)
                               or n.startswith(TOKENIZER_SUBDIR + "/")])
        base = load_saved_base(d, recipe.base_tokenizer)
        hf = None
        if MODEL_TOKENIZER_FILE in recipe.files:
            try:
                hf = HFTk.from_file(str(d / MODEL_TOKENIZER_FILE))
            except Exception as e:  # tokenizers raises plain Exception
                raise HyperTokError(f"{d / MODEL_TOKENIZER_FILE}: cannot be loaded by tokenizers ({e})") from None
        new = load_vocabulary(d / TOKENIZER_SUBDIR)
        if len(new) != len(recipe.new_to_model):
            raise HyperTokError(f"{d}: the recipe maps {len(recipe.new_to_model)} tokens but {d / TOKENIZER_SUBDIR} "
                                f"has {len(new)}; the folder mixes two saves, re-run `hypertok adapt`")
        if base is not None and len(base) > recipe.base_vocab_size:
            raise HyperTokError(f"{base.path} has {len(base)} pieces, more than the recipe's "
                                f"{recipe.base_vocab_size} base rows; the folder mixes two saves")
        return cls(recipe, new, base, hf=hf)

    def save(self, adapter_dir: str | os.PathLike, also_hash: Sequence[str] = ()) -> None:
        """Write the model's ``tokenizer.json`` and ``tokenizer_config.json`` (and the chat
        template), HyperTok's vocabulary, the base tokenizer (``base_tokenizer.model`` or, for a
        ``tokenizer.json`` base, ``base_tokenizer.json``) and the recipe into ``adapter_dir`` (the
        recipe last, with the sha256 of the others and of the files named in ``also_hash``)."""
        d = Path(adapter_dir)
        self.new.copy_to(d / TOKENIZER_SUBDIR)
        names = [f"{TOKENIZER_SUBDIR}/{f.name}" for f in sorted((d / TOKENIZER_SUBDIR).iterdir())]
        if self.base is not None:
            names.append(self.base.save(d))
            self.recipe.base_tokenizer = self.base.record()
        atomic_write(d / MODEL_TOKENIZER_FILE, self.model_json())
        cfg = self.hf_config()
        atomic_write(d / MODEL_TOKENIZER_CONFIG, json.dumps(cfg, ensure_ascii=False, indent=2, sort_keys=True))
        names += [MODEL_TOKENIZER_FILE, MODEL_TOKENIZER_CONFIG]
        if cfg.get("chat_template"):
            atomic_write(d / CHAT_TEMPLATE_FILE, cfg["chat_template"])
            names.append(CHAT_TEMPLATE_FILE)
        self.recipe.files = {n: sha256_file(d / n) for n in [*names, *also_hash]}
        self.recipe.save(d)

    def _encode_one(self, text: str) -> list[int]:
        return encode_escaping(text, self._escape, lambda t: self.hf.encode(t, add_special_tokens=False).ids,
                               lambda b: self._byte_ids.get(b, self.unk_id))

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        return self.encode_batch([text], add_bos, add_eos)[0]

    def encode_batch(self, texts: Sequence[str], add_bos: bool = False, add_eos: bool = False) -> list[list[int]]:
        texts = list(texts)
        out: list[list[int]] = [[] for _ in texts]
        plain = [i for i, t in enumerate(texts) if t and not self._escape.search(t)]
        batch = getattr(self.hf, "encode_batch_fast", self.hf.encode_batch)
        for i, enc in zip(plain, batch([texts[i] for i in plain], add_special_tokens=False)):
            out[i] = enc.ids
        for i, t in enumerate(texts):
            if t and self._escape.search(t):
                out[i] = self._encode_one(t)
        if add_bos or add_eos:
            out = [([self.bos] if add_bos else []) + ids + ([self.eos] if add_eos else []) for ids in out]
        return out

    def is_new_token(self, m: int) -> bool:
        """Whether model id m is a vocabulary entry the base did not have (the speed-up tokens)."""
        if self.extend:
            return m >= self.recipe.base_vocab_size
        return 0 <= m < len(self.new) and self.new.is_entry(m)

    def decode(self, ids: Sequence[int]) -> str:
        table = self.piece_bytes
        skip = (self.bos, self.eos, self.recipe.pad)
        return decode_lossless(b"".join(table[i] or b"" for i in (int(x) for x in ids) if i not in skip))

    def decode_pieces(self, ids: Sequence[int]) -> str:
        table = self.piece_bytes
        return decode_lossless(b"".join(table[int(i)] or b"" for i in ids))

    def _build_piece_bytes(self) -> list[bytes | None]:
        if not self.extend:
            return list(self.new.piece_bytes)
        out = list(self.base.piece_bytes) + [b""] * (self.vocab_size - len(self.base))
        for m, i in self.model_to_new.items():
            out[m] = self.new.surfaces[i].encode("utf-8", errors="surrogatepass")
        return out


class BaseTokenizer(AdaptedTokenizer):
    """The untouched base model's own tokenizer behind the same interface (for `hypertok eval`)."""

    def __init__(self, base: BaseFamily):
        Tokenizer.__init__(self)
        self.base, self.new, self.extend, self.byte_level = base, None, False, False
        self.recipe = Recipe("base", len(base), len(base), [], [], [], base.bos_id, base.eos_id, base.pad_id)
        self.model_to_new = {}
        self.bos = self.bos_id = base.bos_id
        self.eos = self.eos_id = base.eos_id
        self.pad_id = base.pad_id
        self.vocab_size = len(base)
        self.name = base.name

    def encode_batch(self, texts, add_bos=False, add_eos=False):
        return [([self.bos] if add_bos else []) + ids + ([self.eos] if add_eos else [])
                for ids in self.base.encode_batch(list(texts))]

    def is_new_token(self, m: int) -> bool:
        return False

    def decode(self, ids) -> str:
        return self.base.decode([int(i) for i in ids if int(i) not in (self.bos, self.eos)])

    def _build_piece_bytes(self) -> list[bytes | None]:
        return list(self.base.piece_bytes)
