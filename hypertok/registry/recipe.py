"""The recipe of a vocabulary transfer: how the base vocabulary becomes the model's, saved with every adapter.

What it does (issue 5; its own module since issue 21): :class:`Recipe` records which model
row each new-vocabulary id uses, which rows are new and the base pieces each new row starts
from, the base's tokenizer settings and the record of its tokenizer file
(:meth:`~hypertok.registry.family.BaseFamily.record`). A recipe is user input when it is
loaded: :meth:`Recipe.validate` checks every size, id and row against the others before
anything is allocated, and ``files`` records the sha256 of every other file of the adapter
(weights, tokenizer, base tokenizer), so a folder mixing two saves is refused
(:meth:`Recipe.check_files`). The names of an adapter folder's files are here too.

What it does not do: no planning (:mod:`.plan`), no tokenizer (:mod:`.adapted`), no torch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import HyperTokError
from ..files import atomic_write, sha256_file

RECIPE_FILE = "hypertok_adapt.json"
RECIPE_FORMAT = "hypertok-adapt-recipe"
RECIPE_VERSION = 2  # 2: issue 11, extend reads one tokenizer.json over all model rows
TOKENIZER_SUBDIR = "tokenizer"
BASE_TOKENIZER_FILE = "base_tokenizer.model"     # the base's SentencePiece tokenizer.model, copied
BASE_TOKENIZER_JSON = "base_tokenizer.json"      # or its tokenizer.json (byte-level BPE or SentencePiece-style)
BASE_TOKENIZER_FILES = (BASE_TOKENIZER_FILE, BASE_TOKENIZER_JSON)
MODEL_TOKENIZER_FILE = "tokenizer.json"           # the model's own tokenizer: ids are the model's rows
MODEL_TOKENIZER_CONFIG = "tokenizer_config.json"  # its special tokens, BOS behaviour and chat template
CHAT_TEMPLATE_FILE = "chat_template.jinja"
STRATEGIES = ("extend", "replace")
MAX_MODEL_ROWS = 1 << 24  # 16.7M embedding rows: far above any real vocabulary, far below a crafted 1e11


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
    # the base tokenizer's kind, its file in the adapter folder and its special tokens (``BaseFamily.record``);
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
            d = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise HyperTokError(f"{path}: unreadable ({e}); re-run `hypertok adapt`") from None
        if not isinstance(d, dict):
            raise HyperTokError(f"{path}: a JSON {type(d).__name__}, not a recipe object; re-run `hypertok adapt`")
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
