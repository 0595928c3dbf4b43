"""Vocabulary transfer: map a base model's vocabulary onto a new one and initialise new rows.

What it does (issue 5):

- ``BaseVocab`` reads the base model's SentencePiece ``tokenizer.model`` with
  ``sentencepiece`` alone. The model file is patched in memory (dummy prefix, whitespace
  collapsing and NFKC normalisation switched off), so encoding any span of text is
  lossless and spans concatenate: ``decode(encode(a)) + decode(encode(b)) == a + b``.
- ``NewVocab`` reads the target vocabulary: a HyperTok directory (``vocab.jsonl``), or any
  directory with an HF ``tokenizer.json`` whose pieces use ``▁`` for spaces and
  ``<0xAB>`` byte fallback (the BPE-extended baseline of the experiment).
- ``plan_transfer`` makes a ``Recipe``: which model row each new-vocabulary id uses, which
  rows are new, and the base pieces each new row is initialised from.
  ``extend`` keeps every base row and appends the entries the base lacks (fallback,
  character and byte pieces are spelled with the base's own pieces); ``replace`` uses the
  new vocabulary alone, every row re-initialised.
- ``AdaptedTokenizer`` is text <-> model ids for a recipe; ``init_rows`` fills the new
  rows of ``embed_tokens`` and ``lm_head``: ``mean`` of the base pieces of the entry's
  surface (FVT, Gee et al. 2022; ruadapt arXiv 2412.21140; Vikhr arXiv 2405.13929),
  ``random`` (normal with the base matrix's std), or ``hewitt`` (the distribution
  transformers' ``mean_resizing`` samples from: mean and 1e-9 x covariance of old rows).

What it does not do: no training (``hypertok.adapt``), no tokenizer building
(``hypertok.vocab``), no WECHSEL/FOCUS-style similarity init.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import HyperTokError

RECIPE_FILE = "hypertok_adapt.json"
RECIPE_FORMAT = "hypertok-adapt-recipe"
RECIPE_VERSION = 1
TOKENIZER_SUBDIR = "tokenizer"
BASE_TOKENIZER_FILE = "base_tokenizer.model"
NON_ENTRY_KINDS = frozenset({"fallback", "char", "byte", "special"})
STRATEGIES = ("extend", "replace")
SP_SPACE = "\u2581"


# ----------------------------------------------------------------------------------------
# SentencePiece model file patching (no protobuf needed)
# ----------------------------------------------------------------------------------------

def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _fields(buf: bytes):
    """Yield (field_number, wire_type, raw_bytes_of_whole_field, payload) of a protobuf message."""
    pos = 0
    while pos < len(buf):
        start = pos
        key, pos = _read_varint(buf, pos)
        num, wt = key >> 3, key & 7
        if wt == 0:
            val, pos = _read_varint(buf, pos)
            payload = val
        elif wt == 1:
            payload = buf[pos:pos + 8]
            pos += 8
        elif wt == 2:
            n, pos = _read_varint(buf, pos)
            payload = buf[pos:pos + n]
            pos += n
        elif wt == 5:
            payload = buf[pos:pos + 4]
            pos += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wt}")
        yield num, wt, buf[start:pos], payload


def lossless_sentencepiece_proto(data: bytes) -> bytes:
    """The SentencePiece ModelProto with identity normalisation, no dummy prefix and no
    whitespace collapsing (NormalizerSpec fields 1-4 rewritten; everything else kept).

    >>> lossless_sentencepiece_proto(b"")
    b'\\x1a\\x0e\\n\\x08identity\\x18\\x00 \\x00'
    """
    out = bytearray()
    norm = b""
    for num, wt, raw, payload in _fields(data):
        if num == 3 and wt == 2:
            norm = payload
        else:
            out += raw
    spec = bytearray()
    spec += b"\x0a" + _varint(8) + b"identity"          # name = "identity", no charsmap
    spec += b"\x18\x00" + b"\x20\x00"                   # add_dummy_prefix=0, remove_extra_whitespaces=0
    for num, wt, raw, payload in _fields(norm):
        if num not in (1, 2, 3, 4):
            spec += raw
    out += b"\x1a" + _varint(len(spec)) + bytes(spec)
    return bytes(out)


def _piece_surface(piece: str) -> str:
    return piece.replace(SP_SPACE, " ")


def _byte_of_piece(piece: str) -> int | None:
    if len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
        try:
            return int(piece[3:5], 16)
        except ValueError:
            return None
    return None


class BaseVocab:
    """The base model's SentencePiece vocabulary, encoding losslessly.

    ``surfaces[i]`` is the text of piece i (``""`` for control/unknown pieces), ``bytes_of[i]``
    the byte of a ``<0xAB>`` piece or None.
    """

    def __init__(self, model_file: str | os.PathLike):
        import sentencepiece as spm

        self.path = Path(model_file)
        try:
            proto = lossless_sentencepiece_proto(self.path.read_bytes())
            sp = spm.SentencePieceProcessor(model_proto=proto)
        except (OSError, RuntimeError, ValueError, IndexError) as e:
            raise HyperTokError(f"{self.path}: not a readable SentencePiece model ({e})") from None
        self.sp = sp
        n = sp.get_piece_size()
        self.pieces = [sp.id_to_piece(i) for i in range(n)]
        self.bytes_of: list[int | None] = [
            _byte_of_piece(p) if sp.is_byte(i) else None for i, p in enumerate(self.pieces)]
        self.surfaces = [
            "" if (sp.is_control(i) or sp.is_unknown(i) or self.bytes_of[i] is not None) else _piece_surface(p)
            for i, p in enumerate(self.pieces)]
        self.byte_ids = {b: i for i, b in enumerate(self.bytes_of) if b is not None}
        self.single = {s: i for i, s in enumerate(self.surfaces) if s and not sp.is_unused(i)}
        self.bos, self.eos, self.unk = sp.bos_id(), sp.eos_id(), sp.unk_id()
        self.pad = sp.pad_id() if sp.pad_id() >= 0 else self.unk

    @classmethod
    def find(cls, base_dir: str | os.PathLike) -> "BaseVocab":
        """The SentencePiece model in a base model folder (``tokenizer.model`` or one ``*.model*``)."""
        d = Path(base_dir)
        cands = [d / "tokenizer.model"] if (d / "tokenizer.model").is_file() else sorted(d.glob("*.model*"))
        cands = [c for c in cands if c.is_file()]
        if len(cands) != 1:
            raise HyperTokError(
                f"{d}: expected one SentencePiece tokenizer.model next to the weights (found "
                f"{[c.name for c in cands] or 'none'}); copy the base model's tokenizer.model there")
        return cls(cands[0])

    def __len__(self) -> int:
        return len(self.pieces)

    def encode(self, text: str) -> list[int]:
        return self.sp.encode(text) if text else []

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return self.sp.encode(texts)

    def piece_bytes(self, i: int) -> bytes:
        b = self.bytes_of[i]
        return bytes([b]) if b is not None else self.surfaces[i].encode("utf-8")

    def decode(self, ids) -> str:
        return b"".join(self.piece_bytes(i) for i in ids).decode("utf-8", errors="replace")

    def pieces_for(self, surface: str, byte: int | None = None) -> list[int]:
        """Base ids that spell ``surface`` (or the single ``byte``)."""
        if byte is not None:
            return [self.byte_ids[byte]] if byte in self.byte_ids else [self.unk]
        return self.encode(surface)


# ----------------------------------------------------------------------------------------
# The target vocabulary
# ----------------------------------------------------------------------------------------

class NewVocab:
    """A HyperTok directory or a plain ``tokenizer.json`` directory, seen uniformly.

    ``kinds[i]``: HyperTok kinds, or for plain tokenizers ``special``/``byte``/``char``/``subword``.
    An id is an *entry* (a token worth a row of its own) when its kind is not in
    ``NON_ENTRY_KINDS``.
    """

    def __init__(self, directory: str | os.PathLike):
        d = Path(directory)
        self.path = d
        if (d / "vocab.jsonl").is_file():
            from .tokenizer import HyperTok

            self.kind = "hypertok"
            self.tok = HyperTok.load(d)
            self.surfaces = list(self.tok.surfaces)
            self.kinds = list(self.tok.kinds)
            self.specials = dict(self.tok.specials)
            self.bytes_of = [_byte_of_piece(s) if k == "byte" else None for s, k in zip(self.surfaces, self.kinds)]
            self._files = [p for p in d.iterdir() if p.is_file()]
        elif (d / "tokenizer.json").is_file():
            from tokenizers import Tokenizer

            self.kind = "tokenizers"
            try:
                self.tok = Tokenizer.from_file(str(d / "tokenizer.json"))
            except Exception as e:  # tokenizers raises plain Exception
                raise HyperTokError(f"{d / 'tokenizer.json'}: cannot be loaded by tokenizers ({e})") from None
            n = self.tok.get_vocab_size(with_added_tokens=True)
            special = {t.content for t in self.tok.get_added_tokens_decoder().values() if t.special}
            self.surfaces, self.kinds, self.bytes_of = [], [], []
            for i in range(n):
                p = self.tok.id_to_token(i) or ""
                b = _byte_of_piece(p)
                self.bytes_of.append(b)
                if b is not None:
                    self.surfaces.append(p), self.kinds.append("byte")
                elif p in special:
                    self.surfaces.append(""), self.kinds.append("special")
                else:
                    s = _piece_surface(p)
                    self.surfaces.append(s)
                    self.kinds.append("char" if len(s) <= 1 else "subword")
            vocab = self.tok.get_vocab()
            self.specials = {k: vocab[v] for k, v in
                             [("unk", "<unk>"), ("bos", "<s>"), ("eos", "</s>"), ("pad", "<pad>")] if v in vocab}
            self._files = [d / "tokenizer.json"]
        else:
            raise HyperTokError(
                f"{d}: not a tokenizer directory (no vocab.jsonl, no tokenizer.json); "
                f"build one with `hypertok build --out {d}`")

    def __len__(self) -> int:
        return len(self.surfaces)

    def is_entry(self, i: int) -> bool:
        return self.kinds[i] not in NON_ENTRY_KINDS

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        if self.kind == "hypertok":
            return self.tok.encode_batch(texts)
        return [e.ids for e in self.tok.encode_batch(texts, add_special_tokens=False)]

    def encode(self, text: str) -> list[int]:
        return self.encode_batch([text])[0] if text else []

    def piece_bytes(self, i: int) -> bytes:
        b = self.bytes_of[i]
        if b is not None:
            return bytes([b])
        return b"" if self.kinds[i] == "special" else self.surfaces[i].encode("utf-8")

    def decode(self, ids) -> str:
        if self.kind == "hypertok":
            return self.tok.decode(list(ids))
        return b"".join(self.piece_bytes(i) for i in ids).decode("utf-8", errors="replace")

    def copy_to(self, dest: Path) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        for f in self._files:
            shutil.copy2(f, dest / f.name)


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


def plan_transfer(base: BaseVocab, new: NewVocab, strategy: str, base_rows: int | None = None) -> Recipe:
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
    if base.bos < 0 or base.eos < 0:
        raise HyperTokError(f"{base.path}: the base tokenizer has no bos/eos pieces")
    special_src = {new.specials["bos"]: base.bos, new.specials["eos"]: base.eos}
    if "unk" in new.specials:
        special_src[new.specials["unk"]] = base.unk
    if "pad" in new.specials:
        special_src[new.specials["pad"]] = base.pad
    surfaces = new.surfaces
    needs = [i for i in range(len(new)) if i not in special_src and new.bytes_of[i] is None]
    enc = dict(zip(needs, base.encode_batch([surfaces[i] for i in needs])))
    unk_share = sum(1 for i in needs if base.unk in enc[i]) / max(1, len(needs))
    if needs and unk_share > 0.5:
        raise HyperTokError(f"{base.path} cannot spell {unk_share:.0%} of the entries of {new.path} "
                            f"(base tokenizer gives <unk>); this tokenizer and base cannot be reconciled")

    def src(i: int) -> list[int]:
        if i in special_src:
            return [special_src[i]]
        if new.bytes_of[i] is not None:
            return base.pieces_for("", new.bytes_of[i])
        return enc[i] or [base.unk]

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
                  bos=base.bos, eos=base.eos, pad=base.pad)


class AdaptedTokenizer:
    """Text <-> model ids for a recipe (the tokenizer an adapted model reads and writes).

    ``replace``: the new vocabulary's ids. ``extend``: new-vocabulary segmentation, with each
    run of fallback/char/byte pieces re-spelled by the base tokenizer.
    """

    def __init__(self, recipe: Recipe, new: NewVocab, base: BaseVocab | None):
        self.recipe, self.new, self.base = recipe, new, base
        self.extend = recipe.strategy == "extend"
        if self.extend and base is None:
            raise HyperTokError("an `extend` adapter needs the base tokenizer (base_tokenizer.model)")
        self.model_to_new = {m: i for i, m in enumerate(recipe.new_to_model) if m >= recipe.base_vocab_size}
        self.bos, self.eos = recipe.bos, recipe.eos

    @classmethod
    def load(cls, adapter_dir: str | os.PathLike) -> "AdaptedTokenizer":
        d = Path(adapter_dir)
        recipe = Recipe.load(d)
        base = BaseVocab(d / BASE_TOKENIZER_FILE) if (d / BASE_TOKENIZER_FILE).is_file() else None
        return cls(recipe, NewVocab(d / TOKENIZER_SUBDIR), base)

    def save(self, adapter_dir: str | os.PathLike) -> None:
        d = Path(adapter_dir)
        self.new.copy_to(d / TOKENIZER_SUBDIR)
        if self.base is not None:
            shutil.copy2(self.base.path, d / BASE_TOKENIZER_FILE)
        self.recipe.save(d)

    def __len__(self) -> int:
        return self.recipe.model_vocab_size

    def _map(self, ids: list[int]) -> list[int]:
        if not self.extend:
            return list(ids)
        n2m, out, run = self.recipe.new_to_model, [], []
        for i in ids:
            m = n2m[i]
            if m >= 0:
                if run:
                    out.extend(self.base.encode(self.new.decode(run)))
                    run = []
                out.append(m)
            else:
                run.append(i)
        if run:
            out.extend(self.base.encode(self.new.decode(run)))
        return out

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        return self.encode_batch([text], add_bos, add_eos)[0]

    def encode_batch(self, texts: list[str], add_bos: bool = False, add_eos: bool = False) -> list[list[int]]:
        out = []
        for ids in self.new.encode_batch(texts):
            m = self._map(ids)
            out.append(([self.bos] if add_bos else []) + m + ([self.eos] if add_eos else []))
        return out

    def is_new_token(self, m: int) -> bool:
        """Whether model id m is a vocabulary entry the base did not have (the speed-up tokens)."""
        if self.extend:
            return m >= self.recipe.base_vocab_size
        return 0 <= m < len(self.new) and self.new.is_entry(m)

    def decode(self, ids) -> str:
        ids = [int(i) for i in ids if int(i) not in (self.bos, self.eos, self.recipe.pad)]
        if not self.extend:
            return self.new.decode(ids)
        V, out, run = self.recipe.base_vocab_size, [], []
        for m in ids:
            if m < V:
                run.append(m)
            else:
                if run:
                    out.append(self.base.decode(run))
                    run = []
                out.append(self.new.decode([self.model_to_new[m]]))
        if run:
            out.append(self.base.decode(run))
        return "".join(out)


class BaseTokenizer(AdaptedTokenizer):
    """The untouched base model's own tokenizer behind the same interface (for `hypertok eval`)."""

    def __init__(self, base: BaseVocab):
        self.base, self.new, self.extend = base, None, False
        self.recipe = Recipe("base", len(base), len(base), [], [], [], base.bos, base.eos, base.pad)
        self.bos, self.eos = base.bos, base.eos

    def encode_batch(self, texts, add_bos=False, add_eos=False):
        return [([self.bos] if add_bos else []) + ids + ([self.eos] if add_eos else [])
                for ids in self.base.encode_batch(texts)]

    def is_new_token(self, m: int) -> bool:
        return False

    def decode(self, ids) -> str:
        return self.base.decode([int(i) for i in ids if int(i) not in (self.bos, self.eos)])
