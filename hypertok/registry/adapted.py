"""Vocabulary transfer on the tokenizer side: the recipe, and the tokenizer an adapted model reads.

What it does (issue 5; moved out of ``transfer.py`` into the registry by issue 9, since
none of it needs torch):

- :func:`load_vocabulary` reads the target vocabulary: a HyperTok directory, or any
  directory with an HF ``tokenizer.json`` whose pieces use ``▁`` for spaces and
  ``<0xAB>`` byte fallback (the BPE-extended baseline of the experiment). Both come back
  as registry tokenizers with a piece view (``surfaces``, ``kinds``, ``bytes_of``,
  ``specials``, ``is_entry``).
- :func:`plan_transfer` makes a :class:`Recipe`: which model row each new-vocabulary id
  uses, which rows are new, and the base pieces each new row is initialised from.
  ``extend`` keeps every base row and appends the entries the base lacks (fallback,
  character and byte pieces are spelled with the base's own pieces); ``replace`` uses
  the new vocabulary alone, every row re-initialised.
- :class:`AdaptedTokenizer` is text <-> model ids for a recipe;
  :class:`BaseTokenizer` is the untouched base behind the same interface.

The base vocabulary is :class:`~hypertok.registry.spm.LosslessSentencePiece`.

What it does not do: no torch, no row initialisation and no training (those are the
model side: ``hypertok.adapt``).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import HyperTokError
from .base import Tokenizer
from .hf import HFTokenizer
from .hypertok_dir import HyperTokTokenizer
from .spm import LosslessSentencePiece

RECIPE_FILE = "hypertok_adapt.json"
RECIPE_FORMAT = "hypertok-adapt-recipe"
RECIPE_VERSION = 1
TOKENIZER_SUBDIR = "tokenizer"
BASE_TOKENIZER_FILE = "base_tokenizer.model"
STRATEGIES = ("extend", "replace")

Vocabulary = HyperTokTokenizer | HFTokenizer  # a tokenizer with the piece view


def load_vocabulary(directory: str | os.PathLike) -> Vocabulary:
    """A HyperTok directory (``vocab.jsonl``) or a plain ``tokenizer.json`` directory."""
    d = Path(directory)
    if (d / "vocab.jsonl").is_file():
        return HyperTokTokenizer.from_dir(d)
    if (d / "tokenizer.json").is_file():
        return HFTokenizer.from_dir(d)
    raise HyperTokError(
        f"{d}: not a tokenizer directory (no vocab.jsonl, no tokenizer.json); "
        f"build one with `hypertok build --out {d}`")


# ----------------------------------------------------------------------------------------
# The recipe: exact resize plan, saved with every adapter
# ----------------------------------------------------------------------------------------

@dataclass
class Recipe:
    """How the base vocabulary becomes the model vocabulary. Saved as ``hypertok_adapt.json``.

    ``new_to_model[i]``: model row of new-vocabulary id i, or -1 (extend: spelled with base
    pieces). ``new_rows``: model rows initialised by ``init_rows`` (and trained);
    ``sources[k]``: the base ids whose rows ``new_rows[k]`` starts from.
    """

    strategy: str
    base_vocab_size: int
    model_vocab_size: int
    new_to_model: list[int]
    new_rows: list[int]
    sources: list[list[int]]
    bos: int
    eos: int
    pad: int
    init: str = "mean"
    seed: int = 0
    base_fingerprint: str = ""
    base_config: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        d = asdict(self)
        d = {"format": RECIPE_FORMAT, "version": RECIPE_VERSION, **d}
        return d

    def save(self, directory: str | os.PathLike) -> Path:
        path = Path(directory) / RECIPE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), ensure_ascii=False, sort_keys=True))
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "Recipe":
        path = Path(directory) / RECIPE_FILE
        if not path.is_file():
            raise HyperTokError(f"{directory}: no {RECIPE_FILE}; not an adapter written by `hypertok adapt`")
        try:
            d = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise HyperTokError(f"{path}: unreadable ({e}); re-run `hypertok adapt`") from None
        if d.get("format") != RECIPE_FORMAT or d.get("version") != RECIPE_VERSION:
            raise HyperTokError(f"{path}: format {d.get('format')!r} version {d.get('version')!r}; "
                                f"this hypertok reads {RECIPE_FORMAT!r} version {RECIPE_VERSION}")
        d.pop("format"), d.pop("version")
        return cls(**d)


def plan_transfer(base: LosslessSentencePiece, new: Vocabulary, strategy: str, base_rows: int | None = None) -> Recipe:
    """Decide every new-vocabulary id's model row and the sources of each new row.

    ``base_rows``: rows of the base embedding matrix (``config.vocab_size``), which may exceed
    the tokenizer's size when the checkpoint padded its vocabulary; new rows go after them.

    Raises HyperTokError when the two vocabularies cannot be reconciled (no shared specials,
    or the base cannot spell the entries).
    """
    if strategy not in STRATEGIES:
        raise HyperTokError(f"--strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}")
    V = len(base) if base_rows is None else base_rows
    if V < len(base):
        raise HyperTokError(f"{base.path}: the tokenizer has {len(base)} pieces but the model only {V} embedding "
                            f"rows; this tokenizer.model does not belong to that base model")
    for name in ("bos", "eos"):
        if name not in new.specials:
            raise HyperTokError(f"{new.path}: the tokenizer has no {name} token (<s>/</s>); cannot map it to the base")
    if base.bos_id < 0 or base.eos_id < 0:
        raise HyperTokError(f"{base.path}: the base tokenizer has no bos/eos pieces")
    special_src = {new.specials["bos"]: base.bos_id, new.specials["eos"]: base.eos_id}
    if "unk" in new.specials:
        special_src[new.specials["unk"]] = base.unk_id
    if "pad" in new.specials:
        special_src[new.specials["pad"]] = base.pad_id
    surfaces = new.surfaces
    bytes_of = new.bytes_of
    needs = [i for i in range(len(new)) if i not in special_src and bytes_of[i] is None]
    enc = dict(zip(needs, base.encode_batch([surfaces[i] for i in needs])))
    unk_share = sum(1 for i in needs if base.unk_id in enc[i]) / max(1, len(needs))
    if needs and unk_share > 0.5:
        raise HyperTokError(f"{base.path} cannot spell {unk_share:.0%} of the entries of {new.path} "
                            f"(base tokenizer gives <unk>); this tokenizer and base cannot be reconciled")

    def src(i: int) -> list[int]:
        if i in special_src:
            return [special_src[i]]
        if bytes_of[i] is not None:
            return base.pieces_for("", bytes_of[i])
        return enc[i] or [base.unk_id]

    if strategy == "replace":
        n = len(new)
        return Recipe("replace", V, n, list(range(n)), list(range(n)), [src(i) for i in range(n)],
                      bos=new.specials["bos"], eos=new.specials["eos"], pad=new.specials.get("pad", new.specials["eos"]))
    new_to_model, new_rows, sources = [], [], []
    for i in range(len(new)):
        if i in special_src:
            new_to_model.append(special_src[i])
        elif not new.is_entry(i):
            new_to_model.append(-1)
        elif len(enc[i]) == 1:
            new_to_model.append(enc[i][0])
        else:
            new_to_model.append(V + len(new_rows))
            new_rows.append(V + len(new_rows))
            sources.append(enc[i])
    if not new_rows:
        raise HyperTokError(f"{new.path}: every entry is already one base piece; `extend` adds nothing")
    return Recipe("extend", V, V + len(new_rows), new_to_model, new_rows, sources,
                  bos=base.bos_id, eos=base.eos_id, pad=base.pad_id)


# ----------------------------------------------------------------------------------------
# The tokenizers an adapted (or untouched) model reads and writes
# ----------------------------------------------------------------------------------------

class AdaptedTokenizer(Tokenizer):
    """Text <-> model ids for a recipe (the tokenizer an adapted model reads and writes).

    ``replace``: the new vocabulary's ids. ``extend``: new-vocabulary segmentation, with each
    run of fallback/char/byte pieces re-spelled by the base tokenizer. ``vocab_size`` is the
    number of model rows.
    """

    family = "adapted"

    def __init__(self, recipe: Recipe, new: Vocabulary | None, base: LosslessSentencePiece | None,
                 name: str | None = None):
        super().__init__()
        self.recipe, self.new, self.base = recipe, new, base
        self.extend = recipe.strategy == "extend"
        if self.extend and base is None:
            raise HyperTokError("an `extend` adapter needs the base tokenizer (base_tokenizer.model)")
        self.model_to_new = {m: i for i, m in enumerate(recipe.new_to_model) if m >= recipe.base_vocab_size}
        self.bos = self.bos_id = recipe.bos
        self.eos = self.eos_id = recipe.eos
        self.pad_id = recipe.pad
        self.vocab_size = recipe.model_vocab_size
        self.name = name or (f"{new.path.name if new is not None and new.path else 'base'}:{recipe.strategy}")

    @classmethod
    def load(cls, adapter_dir: str | os.PathLike) -> "AdaptedTokenizer":
        d = Path(adapter_dir)
        recipe = Recipe.load(d)
        base = LosslessSentencePiece(d / BASE_TOKENIZER_FILE) if (d / BASE_TOKENIZER_FILE).is_file() else None
        return cls(recipe, load_vocabulary(d / TOKENIZER_SUBDIR), base)

    def save(self, adapter_dir: str | os.PathLike) -> None:
        d = Path(adapter_dir)
        self.new.copy_to(d / TOKENIZER_SUBDIR)
        if self.base is not None:
            shutil.copy2(self.base.path, d / BASE_TOKENIZER_FILE)
        self.recipe.save(d)

    def _map(self, ids: list[int]) -> list[int]:
        if not self.extend:
            return list(ids)
        n2m, out, run = self.recipe.new_to_model, [], []
        for i in ids:
            m = n2m[i]
            if m >= 0:
                if run:
                    out.extend(self.base.encode(self.new.decode_pieces(run)))
                    run = []
                out.append(m)
            else:
                run.append(i)
        if run:
            out.extend(self.base.encode(self.new.decode_pieces(run)))
        return out

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        return self.encode_batch([text], add_bos, add_eos)[0]

    def encode_batch(self, texts: Sequence[str], add_bos: bool = False, add_eos: bool = False) -> list[list[int]]:
        out = []
        for ids in self.new.encode_batch(list(texts)):
            m = self._map(ids)
            out.append(([self.bos] if add_bos else []) + m + ([self.eos] if add_eos else []))
        return out

    def is_new_token(self, m: int) -> bool:
        """Whether model id m is a vocabulary entry the base did not have (the speed-up tokens)."""
        if self.extend:
            return m >= self.recipe.base_vocab_size
        return 0 <= m < len(self.new) and self.new.is_entry(m)

    def decode(self, ids: Sequence[int]) -> str:
        ids = [int(i) for i in ids if int(i) not in (self.bos, self.eos, self.recipe.pad)]
        if not self.extend:
            return self.new.decode_pieces(ids)
        V, out, run = self.recipe.base_vocab_size, [], []
        for m in ids:
            if m < V:
                run.append(m)
            else:
                if run:
                    out.append(self.base.decode(run))
                    run = []
                out.append(self.new.decode_pieces([self.model_to_new[m]]))
        if run:
            out.append(self.base.decode(run))
        return "".join(out)

    def _build_piece_bytes(self) -> list[bytes | None]:
        if not self.extend:
            return list(self.new.piece_bytes)
        out = list(self.base.piece_bytes) + [None] * (self.vocab_size - len(self.base))
        for m, i in self.model_to_new.items():
            out[m] = self.new.decode_pieces([i]).encode("utf-8", errors="surrogatepass")
        return out


class BaseTokenizer(AdaptedTokenizer):
    """The untouched base model's own tokenizer behind the same interface (for `hypertok eval`)."""

    def __init__(self, base: LosslessSentencePiece):
        Tokenizer.__init__(self)
        self.base, self.new, self.extend = base, None, False
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
