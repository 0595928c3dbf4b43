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
  character and byte pieces are spelled with the base's own pieces), then the special
  tokens chosen at build time (``<|im_start|>``; a base control piece of that name keeps
  its row); ``replace`` uses the new vocabulary alone, every row re-initialised.
- :class:`AdaptedTokenizer` is text <-> model ids for a recipe;
  :class:`BaseTokenizer` is the untouched base behind the same interface.

The base vocabulary (:func:`find_base`) is a SentencePiece ``tokenizer.model``
(:class:`~hypertok.registry.spm.LosslessSentencePiece`, Mistral v1/v3, Llama 2) or a byte-level
BPE ``tokenizer.json`` (:class:`~hypertok.registry.bytelevel.LosslessByteLevel`, Llama 3,
Mistral-Nemo's Tekken; issue 11). Both read text losslessly (``▁``, lone surrogates and
control strings in text are spelled with byte pieces where the file cannot take them), so
both strategies give ``decode(encode(x)) == x`` for every Python string (issue 13).

The model's one ``tokenizer.json`` (:func:`model_tokenizer`) for ``extend`` is one Unigram
model over every model row. Over a SentencePiece base its pieces are text (``▁`` written as a
space) with ``<0xAB>`` byte fallback; over a byte-level base they are written in GPT-2's
byte-level characters, HyperTok's entries too (``" мир"`` is ``"ĠÐ¼Ð¸ÑĢ"``), behind a
ByteLevel pre-tokenizer (no regex: entries may span words) and a ByteLevel decoder, so the
256 byte pieces of the base spell whatever the pieces do not, and no unknown token is needed.

A recipe is user input when it is loaded: :meth:`Recipe.validate` checks every size, id and
row against the others before anything is allocated, and ``files`` records the sha256 of
every other file of the adapter (weights, tokenizer, base tokenizer), so a folder mixing
two saves is refused (:meth:`Recipe.check_files`).

What it does not do: no torch, no row initialisation and no training (those are the
model side: ``hypertok.adapt``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import HyperTokError
from ..files import atomic_write, sha256_file
from .base import Tokenizer, parse_byte_piece
from .bytelevel import LosslessByteLevel, to_byte_level
from .hf import HFTokenizer
from .hypertok_dir import HyperTokTokenizer
from .spm import LosslessSentencePiece, _utf8_lossless

RECIPE_FILE = "hypertok_adapt.json"
RECIPE_FORMAT = "hypertok-adapt-recipe"
RECIPE_VERSION = 2  # 2: issue 11, extend reads one tokenizer.json over all model rows
TOKENIZER_SUBDIR = "tokenizer"
BASE_TOKENIZER_FILE = "base_tokenizer.model"     # the base's SentencePiece tokenizer.model, copied
BASE_TOKENIZER_JSON = "base_tokenizer.json"      # or its byte-level BPE tokenizer.json (issue 11)
BASE_TOKENIZER_FILES = (BASE_TOKENIZER_FILE, BASE_TOKENIZER_JSON)
MODEL_TOKENIZER_FILE = "tokenizer.json"           # the model's own tokenizer: ids are the model's rows
MODEL_TOKENIZER_CONFIG = "tokenizer_config.json"  # its special tokens, BOS behaviour and chat template
CHAT_TEMPLATE_FILE = "chat_template.jinja"
# Unigram scores of the model tokenizer (every token costs about 1, as in hypertok.builder.select):
# HyperTok entries keep theirs (-1 + 0.002 log p, about -1.01..-1.04); multi-character base
# pieces follow at -1.05..-1.09 by the base's own ranking, single characters at -1.10, and
# control, byte, unused and filler pieces at -50, so they are never chosen over text.
BASE_PIECE_SCORE, BASE_PIECE_SPREAD, CHAR_SCORE, RARE_SCORE = -1.05, 0.04, -1.10, -50.0
# Every score of the model tokenizer is rounded to 9 decimals, so that it survives tokenizers'
# JSON writer and reader exactly: its reader (serde_json) gives some doubles back one unit in the
# last place off, which flips the cut of two equally good segmentations between the tokenizer
# that trained and the file that serves (seen on ruslit dev over a full-size Tekken extend). A
# decimal of at most 15 significant digits is read back exactly. The trainer also reads the
# file's JSON back (``AdaptedTokenizer``), so both parse the same text.
SCORE_DECIMALS = 9
STRATEGIES = ("extend", "replace")
MAX_MODEL_ROWS = 1 << 24  # 16.7M embedding rows: far above any real vocabulary, far below a crafted 1e11

Vocabulary = HyperTokTokenizer | HFTokenizer  # a tokenizer with the piece view
BaseVocabulary = LosslessSentencePiece | LosslessByteLevel  # the base of a transfer


def find_base(base_dir: str | os.PathLike) -> BaseVocabulary:
    """The base tokenizer of a model folder: its SentencePiece ``tokenizer.model`` (or one
    ``*.model*``) when it has one, else its byte-level BPE ``tokenizer.json`` (bos/eos named by
    its ``tokenizer_config.json``), as Llama 3 and Mistral-Nemo ship.

    A folder with both (Mistral 7B, Llama 2) is read from the ``.model``, the file the
    checkpoint was trained with.
    """
    d = Path(base_dir)
    if (d / "tokenizer.model").is_file() or any(c.is_file() for c in d.glob("*.model*")):
        return LosslessSentencePiece.find(d)
    if (d / "tokenizer.json").is_file():
        return LosslessByteLevel.find(d)
    tekken = "; a Mistral tekken.json is not read, give the folder the checkpoint's HF tokenizer.json" \
        if (d / "tekken.json").is_file() else ""
    raise HyperTokError(f"{d}: no tokenizer next to the weights (neither a SentencePiece tokenizer.model nor a "
                        f"byte-level BPE tokenizer.json{tekken}); copy the base model's tokenizer files there")


def base_record(base: BaseVocabulary) -> dict:
    """What a recipe keeps about its base tokenizer: the file it is saved as, and (a byte-level
    file names none) the names of its bos, eos, unk and pad tokens."""
    if isinstance(base, LosslessByteLevel):
        return {"kind": "byte-level-bpe", "file": BASE_TOKENIZER_JSON, "special_tokens": dict(base.special_tokens)}
    return {"kind": "sentencepiece", "file": BASE_TOKENIZER_FILE}


def load_saved_base(directory: str | os.PathLike, record: dict) -> BaseVocabulary | None:
    """The base tokenizer an adapter folder holds (``base_record``), or None where it holds none."""
    d = Path(directory)
    name = record.get("file", BASE_TOKENIZER_FILE)
    if not (d / name).is_file():
        return None
    if name == BASE_TOKENIZER_JSON:
        return LosslessByteLevel(d / name, record.get("special_tokens") or {}, name)
    return LosslessSentencePiece(d / name)


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
    files: dict = field(default_factory=dict)  # sha256 of every other file of the adapter folder
    # the base's tokenizer settings that serving needs (add_bos_token, add_eos_token, chat_template,
    # model_max_length), read from its tokenizer_config.json by ``hypertok.adapt.recipe.plan``
    tokenizer_config: dict = field(default_factory=dict)
    # the base tokenizer's file in the adapter folder and its special tokens (``base_record``);
    # empty in recipes from before issue 11: a SentencePiece base_tokenizer.model
    base_tokenizer: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        d = asdict(self)
        d = {"format": RECIPE_FORMAT, "version": RECIPE_VERSION, **d}
        return d

    def save(self, directory: str | os.PathLike) -> Path:
        path = Path(directory) / RECIPE_FILE
        atomic_write(path, json.dumps(self.to_json(), ensure_ascii=False, sort_keys=True))
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
        if d.get("format") != RECIPE_FORMAT or d.get("version") not in (1, RECIPE_VERSION):
            raise HyperTokError(f"{path}: format {d.get('format')!r} version {d.get('version')!r}; "
                                f"this hypertok reads {RECIPE_FORMAT!r} version {RECIPE_VERSION}")
        if d.get("version") == 1 and d.get("strategy") == "extend":
            raise HyperTokError(f"{path}: an `extend` adapter from before issue 11, trained on another segmentation "
                                f"(HyperTok runs re-spelled by the base); today's extend tokenizer would feed it "
                                f"other ids. Re-run `hypertok adapt`")
        d.pop("format"), d.pop("version")
        try:
            recipe = cls(**d)
        except TypeError as e:
            raise HyperTokError(f"{path}: not a recipe this hypertok can read ({e}); re-run `hypertok adapt`") from None
        recipe.validate(path)
        return recipe

    def validate(self, where: str | os.PathLike = RECIPE_FILE) -> None:
        """Check every size, id and row against the others (a recipe read from disk is user
        input: a crafted one must fail here, before anything is allocated)."""
        def bad(what: str):
            return HyperTokError(f"{where}: {what}; the recipe is corrupt or crafted, re-run `hypertok adapt`")

        def is_int(x) -> bool:
            return isinstance(x, int) and not isinstance(x, bool)

        def ids(name: str, xs, lo: int, hi: int) -> None:
            if not isinstance(xs, list) or not all(is_int(x) and lo <= x < hi for x in xs):
                raise bad(f"{name} must be a list of integers in {lo}..{hi - 1}")

        if self.strategy not in STRATEGIES + ("base",):
            raise bad(f"strategy {self.strategy!r} is not one of {', '.join(STRATEGIES)}")
        V, M = self.base_vocab_size, self.model_vocab_size
        if not is_int(V) or not is_int(M) or not 1 <= V <= MAX_MODEL_ROWS or not 1 <= M <= MAX_MODEL_ROWS:
            raise bad(f"base_vocab_size {V!r} and model_vocab_size {M!r} must be integers in 1..{MAX_MODEL_ROWS}")
        ids("new_to_model", self.new_to_model, -1, M)
        ids("new_rows", self.new_rows, V if self.strategy == "extend" else 0, M)
        if len(set(self.new_rows)) != len(self.new_rows):
            raise bad("new_rows repeats a row")
        if not isinstance(self.sources, list) or len(self.sources) != len(self.new_rows):
            raise bad(f"sources has {len(self.sources) if isinstance(self.sources, list) else '?'} lists for "
                      f"{len(self.new_rows)} new rows")
        for src in self.sources:
            if not src:
                raise bad("a new row has no source pieces")
            ids("sources", src, 0, V)
        ids("bos/eos/pad", [self.bos, self.eos, self.pad], 0, M)
        if self.strategy == "extend":
            if M != V + len(self.new_rows) or self.new_rows != list(range(V, M)):
                raise bad(f"extend: model_vocab_size {M} must be base_vocab_size {V} plus the {len(self.new_rows)} "
                          f"new rows, in order")
            if any(m >= V and m not in self.new_rows for m in self.new_to_model):
                raise bad("new_to_model names a row beyond the base that is not a new row")
        elif self.strategy == "replace" and (self.new_to_model != list(range(M)) or self.new_rows != list(range(M))):
            raise bad(f"replace: new_to_model and new_rows must be 0..{M - 1}")
        if not isinstance(self.files, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                       for k, v in self.files.items()):
            raise bad("files must map file names to sha256 digests")
        if not all(isinstance(x, dict) for x in (self.base_config, self.extra, self.tokenizer_config,
                                                 self.base_tokenizer)):
            raise bad("base_config, extra, tokenizer_config and base_tokenizer must be objects")
        if self.base_tokenizer.get("file", BASE_TOKENIZER_FILE) not in BASE_TOKENIZER_FILES:
            raise bad(f"base_tokenizer names the file {self.base_tokenizer.get('file')!r}, not one of "
                      f"{', '.join(BASE_TOKENIZER_FILES)}")
        names = self.base_tokenizer.get("special_tokens", {})
        if not isinstance(names, dict) or not all(isinstance(v, str) or v is None for v in names.values()):
            raise bad("base_tokenizer's special_tokens must map names to strings")

    def check_files(self, directory: str | os.PathLike, names: Sequence[str] | None = None) -> None:
        """Check that the files of an adapter folder are the ones this recipe was saved with.

        ``names``: only these (default: every file the recipe lists). A missing file, a
        symlink, a path out of the folder or another sha256 is refused: weights, tokenizer
        and recipe from two different saves (a save that was killed midway) never load.
        """
        d = Path(directory)
        for name in self.files if names is None else names:
            if name not in self.files:
                continue
            rel = Path(name)
            if rel.is_absolute() or ".." in rel.parts:
                raise HyperTokError(f"{d / RECIPE_FILE}: names the file {name!r} outside the adapter folder; "
                                    f"the recipe is corrupt or crafted")
            f = d / rel
            if f.is_symlink() or not f.is_file():
                raise HyperTokError(f"{f}: missing or not a regular file; the adapter folder is incomplete "
                                    f"(an interrupted save?), re-run `hypertok adapt`")
            if sha256_file(f) != self.files[name]:
                raise HyperTokError(f"{f}: does not belong to the recipe {d / RECIPE_FILE} (sha256 differs); the "
                                    f"folder mixes two saves (an interrupted save?), re-run `hypertok adapt`")


def plan_transfer(base: BaseVocabulary, new: Vocabulary, strategy: str, base_rows: int | None = None) -> Recipe:
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
                            f"rows; this tokenizer does not belong to that base model")
    for name in ("bos", "eos"):
        if name not in new.specials:
            raise HyperTokError(f"{new.path}: the tokenizer has no {name} token (<s>/</s>); cannot map it to the base")
    if base.bos_id is None or base.eos_id is None or base.bos_id < 0 or base.eos_id < 0:
        raise HyperTokError(f"{base.path}: the base tokenizer has no bos/eos pieces")
    filler = base.unk_id if base.unk_id is not None else base.pad_id  # a base without <unk> (Llama 3): its pad/eos
    special_src = {new.specials["bos"]: base.bos_id, new.specials["eos"]: base.eos_id}
    if "unk" in new.specials:
        special_src[new.specials["unk"]] = filler
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
        return enc[i] or [filler]

    if strategy == "replace":
        n = len(new)
        return Recipe("replace", V, n, list(range(n)), list(range(n)), [src(i) for i in range(n)],
                      bos=new.specials["bos"], eos=new.specials["eos"], pad=new.specials.get("pad", new.specials["eos"]),
                      base_tokenizer=base_record(base))
    new_to_model, new_rows, sources = [], [], []
    added = set(getattr(new, "added_specials", {}).values())
    base_named = {p: i for i, p in enumerate(base.pieces) if not base.surfaces[i] and base.bytes_of[i] is None}
    for i in range(len(new)):
        if i in special_src:
            new_to_model.append(special_src[i])
        elif i in added:  # a chat/control token: the base's piece of that name, else a new row (the last ones)
            m = base_named.get(surfaces[i], base.single.get(surfaces[i]))
            if m is None:
                m = V + len(new_rows)
                new_rows.append(m)
                sources.append(enc[i])
            new_to_model.append(m)
        elif not new.is_entry(i):
            new_to_model.append(-1)
        elif len(enc[i]) == 1 or surfaces[i] in base.single:  # a base piece already (BPE may not pick it)
            new_to_model.append(base.single.get(surfaces[i], enc[i][0]))
        else:
            new_to_model.append(V + len(new_rows))
            new_rows.append(V + len(new_rows))
            sources.append(enc[i])
    if not new_rows:
        raise HyperTokError(f"{new.path}: every entry is already one base piece; `extend` adds nothing")
    return Recipe("extend", V, V + len(new_rows), new_to_model, new_rows, sources,
                  bos=base.bos_id, eos=base.eos_id, pad=base.pad_id, base_tokenizer=base_record(base))


# ----------------------------------------------------------------------------------------
# The model's one tokenizer.json: every model row a piece, one Unigram model
# ----------------------------------------------------------------------------------------

def _hf_pipeline_of(new: Vocabulary):
    """The HF ``tokenizers`` pipeline a vocabulary encodes with (HyperTok or tokenizer.json),
    a copy (the post-processor set on it stays ours) with Unigram scores of ``SCORE_DECIMALS``."""
    from tokenizers import Tokenizer as HFTk

    hf = new.tok.hf if isinstance(new, HyperTokTokenizer) else new.tk
    data = json.loads(hf.to_str())
    if (data.get("model") or {}).get("type") == "Unigram":
        data["model"]["vocab"] = [[p, round(score, SCORE_DECIMALS)] for p, score in data["model"]["vocab"]]
    return HFTk.from_str(json.dumps(data, ensure_ascii=False))


def _entry_score(new: Vocabulary, i: int) -> float:
    """The Unigram score of entry i: HyperTok's own (-1 + 0.002 log p), else that of an average entry."""
    if isinstance(new, HyperTokTokenizer):
        return min(float(new.tok.entries[i].score), BASE_PIECE_SCORE + 0.001)
    return -1.02


def _sentencepiece_rows(base: LosslessSentencePiece) -> tuple[list[tuple[str, float]], list[str]]:
    """(content, score) of every piece of a SentencePiece base, and its control pieces.

    A piece reads as its text with ``▁`` written as a space; control, unknown and byte
    pieces keep their names (so ``<0xAB>`` is HF byte fallback).
    """
    sp = base.sp
    ranked = sorted((i for i in range(len(base)) if base.surfaces[i]), key=lambda i: -sp.get_score(i))
    rank = {i: r / max(1, len(ranked) - 1) for r, i in enumerate(ranked)}
    pieces: list[tuple[str, float]] = []
    for i, p in enumerate(base.pieces):
        surface = base.surfaces[i]
        if not surface or sp.is_unused(i):
            pieces.append((p, RARE_SCORE))
        elif len(surface) == 1:
            pieces.append((surface, CHAR_SCORE))
        else:
            pieces.append((surface, BASE_PIECE_SCORE - BASE_PIECE_SPREAD * rank[i]))
    controls = [p for i, p in enumerate(base.pieces) if sp.is_control(i) or sp.is_unknown(i)]
    return pieces, controls


def _byte_level_rows(base: LosslessByteLevel) -> tuple[list[tuple[str, float]], list[str]]:
    """(content, score) of every token of a byte-level BPE base, and its control tokens.

    A token reads as its bytes in byte-level characters (as in the base's own file); control
    tokens keep their names. One-byte and one-character tokens score as characters, longer
    ones by the base's merge order (its ids). Ids that spell nothing (holes) and added tokens
    that spell what another token spells become unused fillers.
    """
    table = base.piece_bytes
    ranked = [i for i, b in enumerate(table) if b and len(b) > 1 and i not in base.controls]
    rank = {i: r / max(1, len(ranked) - 1) for r, i in enumerate(ranked)}
    pieces: list[tuple[str, float]] = []
    seen: set[str] = set()
    for i, b in enumerate(table):
        if i in base.controls:
            content, score = base.pieces[i], RARE_SCORE
        elif not b:
            content, score = f"<hypertok_unused_{i}>", RARE_SCORE
        else:
            content = to_byte_level(b)
            score = CHAR_SCORE if len(b) == 1 or len(base.surfaces[i]) == 1 else \
                BASE_PIECE_SCORE - BASE_PIECE_SPREAD * rank[i]
            if content in seen:
                content, score = f"<hypertok_unused_{i}>", RARE_SCORE
        seen.add(content)
        pieces.append((content, score))
    return pieces, [base.pieces[i] for i in sorted(base.controls)]


def _model_content(base: BaseVocabulary, surface: str) -> str:
    """An entry's text as a piece of the model tokenizer over ``base``."""
    if isinstance(base, LosslessByteLevel):
        return to_byte_level(surface.encode("utf-8", "surrogatepass"))
    return surface


def model_pieces(recipe: Recipe, new: Vocabulary, base: BaseVocabulary) -> list[tuple[str, float]]:
    """``extend``: (content, Unigram score) of every model row, in row order.

    Rows below the base size are the base's pieces (:func:`_sentencepiece_rows`,
    :func:`_byte_level_rows`), rows the checkpoint padded are unused fillers, and the new
    rows are the entries' surfaces (in byte-level characters over a byte-level base). An
    entry that is one base piece lends that row its score. So the segmentation is the fewest
    model tokens, entries first among equally short ones.
    """
    V, M = recipe.base_vocab_size, recipe.model_vocab_size
    pieces = (_byte_level_rows(base) if isinstance(base, LosslessByteLevel) else _sentencepiece_rows(base))[0]
    pieces += [(f"<hypertok_unused_{r}>", RARE_SCORE) for r in range(len(base), V)]
    special_rows = _added_special_rows(recipe, new)
    pieces += [("", 0.0)] * (M - V - len(special_rows))  # the special tokens' rows are added tokens
    added = set(getattr(new, "added_specials", {}).values())
    for i, m in enumerate(recipe.new_to_model):
        if m < 0 or i in added or i in (new.specials.get("bos"), new.specials.get("eos"), new.specials.get("unk"),
                                        new.specials.get("pad")):
            continue
        score = _entry_score(new, i)
        if m >= V:
            pieces[m] = (_model_content(base, new.surfaces[i]), score)
        elif base.surfaces[m]:
            pieces[m] = (pieces[m][0], max(pieces[m][1], score))
    seen: dict[str, int] = {}
    for m, (content, _) in enumerate(pieces):
        if not content or content in seen:
            raise HyperTokError(f"model row {m} would read {content!r}"
                                f"{f', as row {seen[content]} does' if content in seen else ''}; the recipe and "
                                f"the vocabularies disagree, re-run `hypertok adapt`")
        seen[content] = m
    return [(content, round(score, SCORE_DECIMALS)) for content, score in pieces]


def _added_special_rows(recipe: Recipe, new: Vocabulary) -> list[int]:
    """``extend``: the new rows of the build-time special tokens, which must be the last rows."""
    rows = sorted(recipe.new_to_model[i] for i in getattr(new, "added_specials", {}).values()
                  if recipe.new_to_model[i] >= recipe.base_vocab_size)
    M = recipe.model_vocab_size
    if rows != list(range(M - len(rows), M)):
        raise HyperTokError("the special tokens' rows are not the last model rows; the recipe and the vocabularies "
                            "disagree, re-run `hypertok adapt`")
    return rows


def model_tokenizer(recipe: Recipe, new: Vocabulary, base: BaseVocabulary | None):
    """The model's ``tokenizer.json`` as an HF ``tokenizers.Tokenizer``: ids are model rows.

    ``extend``: one Unigram model over :func:`model_pieces`, lines split after each newline
    (entries may span words, never lines), and the base's control pieces as special tokens.
    Over a SentencePiece base: byte fallback and a byte-fusing decoder (HyperTok's pipeline);
    over a byte-level BPE base: a ByteLevel pre-tokenizer without regex or prefix space and a
    ByteLevel decoder, so every piece, the base's 256 byte tokens included, is written in
    byte-level characters and no text is unknown. ``replace``: the new vocabulary's own
    pipeline. Both get a post-processor that adds the bos token when the base adds it
    (``add_bos_token``), as a Llama/Mistral tokenizer does.

    >>> # see tests/registry/test_model_tokenizer.py for a worked example
    """
    from tokenizers import (AddedToken, Regex, Tokenizer as HFTk, decoders, models, normalizers, pre_tokenizers,
                            processors)

    if recipe.strategy == "extend":
        pieces = model_pieces(recipe, new, base)
        lines = pre_tokenizers.Split(Regex("\n"), behavior="merged_with_previous")
        nfc = normalizers.NFC() if getattr(new, "normalizer", "none") == "nfc" else None
        if isinstance(base, LosslessByteLevel):
            controls = _byte_level_rows(base)[1]
            tk = HFTk(models.Unigram(pieces, unk_id=base.unk_id, byte_fallback=False))
            tk.pre_tokenizer = pre_tokenizers.Sequence([
                lines, pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
            tk.decoder = decoders.ByteLevel()
            if nfc:
                tk.normalizer = nfc
        else:
            controls = _sentencepiece_rows(base)[1]
            tk = HFTk(models.Unigram(pieces, unk_id=base.unk_id, byte_fallback=True))
            tk.pre_tokenizer = lines
            tk.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Fuse()])
            if nfc:
                tk.normalizer = nfc
        tk.add_special_tokens([AddedToken(p, special=True, normalized=False) for p in controls])
        added = sorted(getattr(new, "added_specials", {}).items(), key=lambda kv: recipe.new_to_model[kv[1]])
        tk.add_special_tokens([AddedToken(s, special=True, normalized=False) for s, _ in added])
        for s, i in added:
            if tk.token_to_id(s) != recipe.new_to_model[i]:
                raise HyperTokError(f"the special token {s!r} would read as id {tk.token_to_id(s)}, not its row "
                                    f"{recipe.new_to_model[i]}; the recipe and the vocabularies disagree")
    else:
        tk = _hf_pipeline_of(new)
    bos, eos = tk.id_to_token(recipe.bos), tk.id_to_token(recipe.eos)
    cfg = recipe.tokenizer_config
    add_bos, add_eos = cfg.get("add_bos_token", True), cfg.get("add_eos_token", False)
    single = " ".join([f"{bos}:0"] * add_bos + ["$A:0"] + [f"{eos}:0"] * add_eos)
    pair = single + " " + " ".join([f"{bos}:1"] * add_bos + ["$B:1"] + [f"{eos}:1"] * add_eos)
    tk.post_processor = processors.TemplateProcessing(
        single=single, pair=pair, special_tokens=[(t, i) for t, i in ((bos, recipe.bos), (eos, recipe.eos))])
    return tk


class AdaptedTokenizer(Tokenizer):
    """Text <-> model ids for a recipe (the tokenizer an adapted model reads and writes).

    Encoding reads the model's one ``tokenizer.json`` (:func:`model_tokenizer`, the file
    that ``hypertok adapt`` saves and that serving loads), so the tokens that trained the model
    are the tokens that serve it. ``vocab_size`` is the number of model rows. Lossless for
    every Python string: lone surrogates (which the Rust file cannot take) and, where the base
    lacks their characters, literal control strings (``<s>``) are spelled with byte pieces.
    ``base``: a SentencePiece or byte-level BPE base (:func:`find_base`).
    """

    family = "adapted"

    def __init__(self, recipe: Recipe, new: Vocabulary | None, base: BaseVocabulary | None,
                 name: str | None = None, hf=None):
        from tokenizers import Tokenizer as HFTk

        super().__init__()
        self.recipe, self.new, self.base = recipe, new, base
        self.extend = recipe.strategy == "extend"
        if self.extend and base is None:
            raise HyperTokError("an `extend` adapter needs the base tokenizer (base_tokenizer.model or .json)")
        # extend over a byte-level base: the model file's pieces are byte-level characters
        self.byte_level = self.extend and isinstance(base, LosslessByteLevel)
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
        alts = [re.escape(t) for t in sorted(risky, key=len, reverse=True)] + ["[\ud800-\udfff]"]
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
        byte-level base, ``base_tokenizer.json``) and the recipe into ``adapter_dir`` (the recipe
        last, with the sha256 of the others and of the files named in ``also_hash``)."""
        from ..files import atomic_write

        d = Path(adapter_dir)
        self.new.copy_to(d / TOKENIZER_SUBDIR)
        names = [f"{TOKENIZER_SUBDIR}/{f.name}" for f in sorted((d / TOKENIZER_SUBDIR).iterdir())]
        if self.base is not None:
            record = base_record(self.base)
            shutil.copyfile(self.base.path, d / record["file"])
            names.append(record["file"])
            self.recipe.base_tokenizer = record
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
        if not self._escape.search(text):
            return self.hf.encode(text, add_special_tokens=False).ids
        ids: list[int] = []
        start = 0
        for m in self._escape.finditer(text):
            if start < m.start():
                ids.extend(self.hf.encode(text[start:m.start()], add_special_tokens=False).ids)
            ids.extend(self._byte_ids.get(b, self.unk_id) for b in m.group().encode("utf-8", "surrogatepass"))
            start = m.end()
        if start < len(text):
            ids.extend(self.hf.encode(text[start:], add_special_tokens=False).ids)
        return ids

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
        return _utf8_lossless(b"".join(table[i] or b"" for i in (int(x) for x in ids) if i not in skip))

    def decode_pieces(self, ids: Sequence[int]) -> str:
        table = self.piece_bytes
        return _utf8_lossless(b"".join(table[int(i)] or b"" for i in ids))

    def _build_piece_bytes(self) -> list[bytes | None]:
        if not self.extend:
            return list(self.new.piece_bytes)
        out = list(self.base.piece_bytes) + [b""] * (self.vocab_size - len(self.base))
        for m, i in self.model_to_new.items():
            out[m] = self.new.surfaces[i].encode("utf-8", errors="surrogatepass")
        return out


class BaseTokenizer(AdaptedTokenizer):
    """The untouched base model's own tokenizer behind the same interface (for `hypertok eval`)."""

    def __init__(self, base: BaseVocabulary):
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
