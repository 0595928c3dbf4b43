"""The HyperTok directory format: entries, special and byte tokens, writing and reading.

A tokenizer directory holds three files, and ``vocab.jsonl`` is the one source of truth:

- ``vocab.jsonl``: a header line (format, version, size), then one JSON object per token
  with id, symbol, surface, kind, score, frequency, lemma and tags. People read it;
  ``read_directory`` reads it for symbols and kinds.
- ``tokenizer.json``: derived from the entries (``hypertok.core.pipeline``), so that
  ``tokenizers.Tokenizer.from_file`` and ``transformers.AutoTokenizer`` give the same ids.
- ``config.json``: build parameters, library versions, the corpus hash, and the sha256 of
  the two other files, so a truncated or edited directory is detected on load.

``tokenizer_config.json`` is written too, for transformers, and never read back.

Special tokens: ``<unk> <s> </s> <pad>`` are always ids 0-3. Tokens chosen at build time
(``hypertok build --special-tokens``, chat and control tokens such as ``<|im_start|>``)
are ``special`` entries at the very end of the vocabulary (:func:`added_specials`): in
``tokenizer.json`` they are added special tokens, not pieces of the Unigram model, so the
model never spells text with them, and ``config.json`` lists every special with its id.

Normalisation (``hypertok build --normalize nfc``, default none): ``tokenizer.json``
carries the normaliser (``tokenizers.normalizers.NFC``), so every reader of the file
normalises as ``HyperTok.encode`` does; :func:`read_directory` checks that the file's
normaliser is the one ``config.json`` records.

``read_directory`` trusts nothing in the folder (issue 13): ``config.json``'s ``files`` may
name only the two hashed files, a symlink or anything but a regular file is refused (no
``../../etc/hostname``, no ``/dev/zero``), and ``tokenizer.json`` must give every piece of
``vocab.jsonl`` its id, so an edited directory whose hashes were recomputed is still
caught. ``check_out_dir`` lets a build rewrite a tokenizer directory, never another folder, and
``write_directory`` writes the files beside anything else kept there (issue 11): a file the
user put into a tokenizer directory survives ``save(overwrite=True)`` and ``build --force``.

Byte tokens are spelled ``<0xAB>``; ``byte_piece`` writes that spelling and
``parse_byte_piece`` is the one parser of it in the package (issue 9).

What it does not do: no encoding (``hypertok.core.tokenizer``), no building.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import HyperTokError
from ..files import beside, check_out, is_empty_dir, native_write, sha256_file

FORMAT = "hypertok"
FORMAT_VERSION = 1
SPECIALS = ("<unk>", "<s>", "</s>", "<pad>")
SPECIAL_NAMES = {"unk": 0, "bos": 1, "eos": 2, "pad": 3}
N_BYTES = 256
BYTE0 = len(SPECIALS)
ENTRY_KINDS = ("word", "stem", "ending", "concept", "punct")
FALLBACK_KINDS = ("fallback", "char", "byte")
KINDS = ("special", *ENTRY_KINDS, *FALLBACK_KINDS)  # every kind an entry of vocab.jsonl may have
FILES = ("vocab.jsonl", "tokenizer.json", "config.json")
OPTIONAL_FILES = ("tokenizer_config.json",)
HASHED_FILES = ("vocab.jsonl", "tokenizer.json")
NORMALIZERS = ("none", "nfc")

_BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")

# Scores are multiples of 2**-SCORE_BITS (issue 12): then every sum along a line is exact in
# float32 as in float64, and SentencePiece's encoder gives tokenizers' ids
# (``hypertok.core.engine``). 2**-12 is about 0.0002, a tenth of a nat of ``0.002 * log p``.
SCORE_BITS = 12

# The score table of every Unigram HyperTok writes (a built vocabulary, and the model tokenizer
# of a vocabulary transfer): every token costs about 1. Entries start at ENTRY_SCORE,
# multi-character fallback (or base) pieces at PIECE_SCORE, single characters at CHAR_SCORE,
# each lowered by at most SCORE_SPREAD in its rank order; specials, bytes and fillers score
# RARE_SCORE, so they are never chosen over text.
ENTRY_SCORE, PIECE_SCORE, CHAR_SCORE, RARE_SCORE, SCORE_SPREAD = -1.01, -1.05, -1.10, -50.0, 0.04

# transformers reads these to set the special tokens when loading the directory.
TRANSFORMERS_CONFIG = {
    "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>",
    "unk_token": "<unk>", "pad_token": "<pad>", "add_bos_token": False, "add_eos_token": False,
    "clean_up_tokenization_spaces": False, "model_max_length": 1 << 30,
}


@dataclass
class Entry:
    """One vocabulary token. ``surface`` is the text it stands for (byte tokens: ``<0xAB>``)."""

    id: int
    surface: str
    kind: str
    score: float
    freq: int = 0
    lemma: str = ""
    tags: str = ""
    symbol: str = ""


def grid_score(score: float) -> float:
    """``score`` rounded to the nearest multiple of ``2**-SCORE_BITS``.

    >>> grid_score(-1.0123456789), grid_score(-50.0)
    (-1.012451171875, -50.0)
    """
    return round(score * (1 << SCORE_BITS)) / (1 << SCORE_BITS)


def on_score_grid(score: float, limit: float = 64.0) -> bool:
    """Whether ``score`` is a multiple of ``2**-SCORE_BITS`` of magnitude at most ``limit``.

    >>> on_score_grid(-1.012451171875), on_score_grid(-1.0123456789)
    (True, False)
    """
    return abs(score) <= limit and float(score * (1 << SCORE_BITS)).is_integer()


def byte_piece(b: int) -> str:
    """The surface of the byte token for byte ``b``.

    >>> byte_piece(0), byte_piece(171)
    ('<0x00>', '<0xAB>')
    """
    return f"<0x{b:02X}>"


def parse_byte_piece(piece: str) -> int | None:
    """The byte a ``<0xAB>`` piece stands for, or ``None`` for any other piece.

    >>> parse_byte_piece("<0xAB>"), parse_byte_piece("<0xab>"), parse_byte_piece("<0x1>"), parse_byte_piece("ab")
    (171, 171, None, None)
    """
    m = _BYTE_PIECE.fullmatch(piece)
    return int(m.group(1), 16) if m else None


def entry_bytes(entry: Entry) -> bytes:
    """The UTF-8 bytes a token spells (one byte for byte tokens).

    >>> entry_bytes(Entry(4, "<0x00>", "byte", 0.0)), entry_bytes(Entry(9, "ё", "char", 0.0))
    (b'\\x00', b'\\xd1\\x91')
    """
    if entry.kind == "byte":
        return bytes([parse_byte_piece(entry.surface)])
    return entry.surface.encode("utf-8")


def added_specials(entries: list[Entry]) -> list[Entry]:
    """The special tokens chosen at build time: every ``special`` entry after ``<unk> <s> </s> <pad>``.

    They are the last ids of the vocabulary, in one run; anything else raises ``HyperTokError``
    (``tokenizer.json`` numbers added tokens after the pieces of its model).

    >>> entries = [Entry(i, s, "special", -50.0) for i, s in enumerate(SPECIALS)]
    >>> entries += [Entry(4, "a", "char", -1.1), Entry(5, "<|im_end|>", "special", -50.0)]
    >>> [e.surface for e in added_specials(entries)]
    ['<|im_end|>']
    """
    extra = [e for e in entries[len(SPECIALS):] if e.kind == "special"]
    if extra and [e.id for e in extra] != list(range(len(entries) - len(extra), len(entries))):
        raise HyperTokError(f"the special tokens {[e.surface for e in extra]} must be the last ids of the "
                            f"vocabulary, in one run; the vocabulary is corrupt")
    return extra


def special_tokens(entries: list[Entry]) -> dict[str, int]:
    """Every special token and its id: the four fixed ones, then those chosen at build time."""
    return {**{e.surface: e.id for e in entries[:len(SPECIALS)]}, **{e.surface: e.id for e in added_specials(entries)}}


def transformers_config(entries: list[Entry]) -> dict:
    """``tokenizer_config.json``: :data:`TRANSFORMERS_CONFIG` plus the build-time special tokens."""
    extra = [e.surface for e in added_specials(entries)]
    return {**TRANSFORMERS_CONFIG, **({"additional_special_tokens": extra} if extra else {})}


def normalizer_of(config: dict) -> str:
    """The normaliser a directory's ``config.json`` records: ``"none"`` or ``"nfc"``.

    >>> normalizer_of({"build": {"normalize": "nfc"}}), normalizer_of({})
    ('nfc', 'none')
    """
    build = config.get("build") if isinstance(config.get("build"), dict) else {}
    return build.get("normalize") or "none"


def _dumps_config(config: dict) -> str:
    return json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_directory(out: str | os.PathLike, entries: list[Entry], hf, config: dict) -> dict:
    """Write the directory; return the config as written (with format, specials and hashes).

    ``hf`` is the ``tokenizers.Tokenizer`` built from ``entries``. A new ``out`` appears
    whole. Into an existing one (the caller decides whether that is allowed) the four files
    are written to a hidden sibling and moved in, and every other file of ``out`` stays. The
    files ``AutoTokenizer`` starts from are removed first and moved in last
    (``tokenizer_config.json``, then ``tokenizer.json``), before ``config.json``, HyperTok's
    record: a save killed midway leaves a directory that ``read_directory`` refuses (a file
    missing, or hashes that disagree) and that ``--force`` may write again, and that
    ``AutoTokenizer`` either cannot load or loads whole from the new files, never a mix
    (issue 24, item 5; ``tests/core/test_fault_injection.py``).
    """
    with beside(out, last=["tokenizer_config.json", "tokenizer.json", "config.json"],
                remove_first=["tokenizer.json", "tokenizer_config.json"]) as tmp:
        with open(tmp / "vocab.jsonl", "w", encoding="utf-8", newline="\n") as f:
            f.write(json.dumps({"format": f"{FORMAT}-vocab", "version": FORMAT_VERSION, "size": len(entries)}) + "\n")
            for e in entries:
                f.write(json.dumps(asdict(e), ensure_ascii=False) + "\n")
        with native_write(out, "tokenizer.json"):
            hf.save(str(tmp / "tokenizer.json"))
        config = dict(config)
        config["format"], config["version"] = FORMAT, FORMAT_VERSION
        config["special_tokens"] = special_tokens(entries)
        config["files"] = {name: sha256_file(tmp / name) for name in HASHED_FILES}
        (tmp / "config.json").write_text(_dumps_config(config), encoding="utf-8")
        (tmp / "tokenizer_config.json").write_text(
            json.dumps(transformers_config(entries), indent=2, sort_keys=True, ensure_ascii=False) + "\n",
            encoding="utf-8")
    return json.loads(_dumps_config(config))


def is_tokenizer_dir(path: str | os.PathLike) -> bool:
    """True for a folder whose ``config.json`` says it is a HyperTok directory."""
    cfg = Path(path) / "config.json"
    if not cfg.is_file() or cfg.is_symlink() or cfg.stat().st_size > 1 << 24:
        return False
    try:
        return json.loads(cfg.read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def check_out_dir(out: str | os.PathLike, overwrite: bool, flag: str = "--out") -> Path:
    """Check, before any work, that a tokenizer directory may be written at ``out``.

    An existing ``out`` may be written only with ``overwrite`` (CLI: ``--force``) and only
    when it is a HyperTok directory or an empty folder; its other files stay (``write_directory``).
    """
    p = check_out(out, flag)
    if p.exists():
        if not overwrite:
            raise HyperTokError(f"{p} already exists; pass --force (overwrite=True) or choose another {flag}")
        if not (is_empty_dir(p) or is_tokenizer_dir(p)):
            raise HyperTokError(f"{p} is not a HyperTok directory; --force rewrites only a tokenizer directory "
                                f"(its own four files; it never writes into other folders); choose another {flag}")
    return p


def _regular_file(d: Path, name: str) -> Path:
    """``d / name`` if it is a regular file in ``d`` itself (no symlink, no device, no ``..``)."""
    if name not in FILES + OPTIONAL_FILES:
        raise HyperTokError(f"{d / 'config.json'}: names the file {name!r}, which is not part of a HyperTok "
                            f"directory; the directory is corrupt or crafted, rebuild it")
    p = d / name
    if p.is_symlink():
        raise HyperTokError(f"{p}: is a symbolic link; a tokenizer directory holds its own files, copy them in")
    if not p.is_file():
        raise HyperTokError(f"{p}: missing or not a regular file; the tokenizer directory is incomplete, rebuild it")
    return p


def _entry(obj) -> Entry:
    """One line of ``vocab.jsonl`` as an :class:`Entry`, every field of its type (TypeError or
    ValueError saying which is not): a string score or an unknown kind is refused on load,
    never met later as a wrong segmentation (issue 24).

    >>> _entry({"id": 7, "surface": "да", "kind": "bogus", "score": -1.0})
    Traceback (most recent call last):
    ...
    ValueError: kind 'bogus' is not one of special, word, stem, ending, concept, punct, fallback, char, byte
    """
    if type(obj) is not dict:
        raise TypeError(f"a {type(obj).__name__}, not an object")
    e = Entry(**obj)
    if (type(e.id), type(e.surface), type(e.kind), type(e.score), type(e.freq), type(e.lemma), type(e.tags),
            type(e.symbol)) not in _GOOD_TYPES:
        for name, want in _FIELD_TYPES:  # say which field is wrong
            v = getattr(e, name)
            if type(v) not in want:  # exact types: a bool is not an int here
                raise TypeError(f"{name} {v!r} is a {type(v).__name__}")
    if e.kind not in KINDS:
        raise ValueError(f"kind {e.kind!r} is not one of {', '.join(KINDS)}")
    if not math.isfinite(e.score):
        raise ValueError(f"score {e.score!r} is not a finite number")
    return e


_FIELD_TYPES = (("id", (int,)), ("surface", (str,)), ("kind", (str,)), ("score", (int, float)), ("freq", (int,)),
                ("lemma", (str,)), ("tags", (str,)), ("symbol", (str,)))
_GOOD_TYPES = set(itertools.product(*(types for _, types in _FIELD_TYPES)))  # every field of a right type


def _read_vocab(path: Path, data: bytes) -> list[Entry]:
    """The entries of ``vocab.jsonl`` (``data``, the bytes read from ``path``): its header line checked,
    then every line at once (:func:`_vocab_objects`), or line by line where that fails, so an error
    names its line."""
    lines = data.split(b"\n")
    if len(lines) > 1 and lines[-1] == b"":
        lines.pop()

    def corrupt(lineno: int, e: Exception) -> HyperTokError:
        return HyperTokError(f"{path}: line {lineno} is corrupt ({e}); rebuild the directory")

    try:
        header = json.loads(lines[0].decode("utf-8"))
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise corrupt(1, e) from None
    if not (isinstance(header, dict) and header.get("version") == FORMAT_VERSION):
        version = header.get("version") if isinstance(header, dict) else None
        raise HyperTokError(f"{path}: vocabulary version {version!r} is not {FORMAT_VERSION} "
                            f"(line 1 must be the header object); rebuild the directory")
    objs = _vocab_objects(lines[1:])
    if objs is not None:
        try:
            return [_entry(obj) for obj in objs]
        except (TypeError, ValueError):
            pass  # found again below, with its line
    entries = []
    for lineno, line in enumerate(lines[1:], start=2):
        try:
            entries.append(_entry(json.loads(line.decode("utf-8"))))
        except (TypeError, ValueError) as e:
            raise corrupt(lineno, e) from None
    return entries


def _vocab_objects(body: list[bytes]) -> list | None:
    """The lines of ``vocab.jsonl`` after the header, parsed in one call of the JSON reader
    (a 128k vocabulary loads in a fraction of the time of 128k calls, issue 24), or ``None``
    where that cannot be trusted to equal parsing each line alone: the file does not decode,
    a line is not one ``{...}``, or the parse fails or counts another number of objects.
    The caller then parses line by line, and an error names its line."""
    if not all(x[:1] == b"{" and x[-1:] == b"}" for x in body):
        return None
    try:
        objs = json.loads(b"[" + b",".join(body) + b"]")
    except ValueError:
        return None
    # a value spanning lines would be a list or object inside an entry: refused by _entry's types
    return objs if len(objs) == len(body) else None


def read_directory(directory: str | os.PathLike) -> tuple[list[Entry], dict, object]:
    """``(entries, config, hf tokenizer)`` of a directory, checking format version and hashes.

    Every problem raises ``HyperTokError`` naming the file and what to do.
    """
    d = Path(directory)
    if not d.is_dir():
        raise HyperTokError(f"{d}: no such tokenizer directory (build one with `hypertok build`)")
    for name in FILES:
        _regular_file(d, name)
    try:
        config = json.loads((d / "config.json").read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise HyperTokError(f"{d / 'config.json'}: corrupt ({e}); rebuild the directory") from None
    if not isinstance(config, dict):
        raise HyperTokError(f"{d / 'config.json'}: corrupt (not a JSON object); rebuild the directory")
    if config.get("format") != FORMAT:
        raise HyperTokError(f"{d / 'config.json'}: not a HyperTok directory (format {config.get('format')!r})")
    if config.get("version") != FORMAT_VERSION:
        raise HyperTokError(
            f"{d}: format version {config.get('version')!r}, but this hypertok reads version {FORMAT_VERSION}; "
            f"rebuild the directory with this version or install the hypertok that wrote it"
        )
    hashes = config.get("files")
    if not isinstance(hashes, dict) or sorted(hashes) != sorted(HASHED_FILES):
        raise HyperTokError(f"{d / 'config.json'}: 'files' must give the sha256 of exactly "
                            f"{', '.join(HASHED_FILES)}; the directory is corrupt or crafted, rebuild it")
    data = {}  # each file read once: the bytes hashed are the bytes parsed
    for name, digest in hashes.items():
        data[name] = _regular_file(d, name).read_bytes()
        if hashlib.sha256(data[name]).hexdigest() != digest:
            raise HyperTokError(f"{d / name}: corrupt (sha256 differs from config.json); rebuild the directory")
    entries = _read_vocab(d / "vocab.jsonl", data["vocab.jsonl"])
    from tokenizers import Tokenizer

    try:
        hf = Tokenizer.from_str(data["tokenizer.json"].decode("utf-8"))
    except Exception as e:  # tokenizers raises plain Exception subclasses
        raise HyperTokError(f"{d / 'tokenizer.json'}: does not load ({e}); rebuild the directory") from None
    if hf.get_vocab_size(with_added_tokens=True) != len(entries):
        raise HyperTokError(f"{d}: tokenizer.json has {hf.get_vocab_size()} tokens, vocab.jsonl {len(entries)}")
    pieces = hf.get_vocab(with_added_tokens=True)
    for lineno, e in enumerate(entries, start=2):
        if pieces.get(e.surface) != e.id:
            raise HyperTokError(
                f"{d}: tokenizer.json gives the piece {e.surface!r} id {pieces.get(e.surface)}, but vocab.jsonl "
                f"(line {lineno}) gives it id {e.id}; the two files disagree, rebuild the directory")
    added = {t.content for t in hf.get_added_tokens_decoder().values() if t.special}
    if added != set(special_tokens(entries)):
        raise HyperTokError(f"{d}: tokenizer.json's special tokens {sorted(added)} are not vocab.jsonl's "
                            f"{sorted(special_tokens(entries))}; the two files disagree, rebuild the directory")
    norm, found = normalizer_of(config), normalizer_name(hf)
    if norm not in NORMALIZERS or found != norm:
        raise HyperTokError(f"{d}: config.json records the normaliser {norm!r}, tokenizer.json has {found!r}; "
                            f"the two files disagree, rebuild the directory")
    return entries, config, hf


def normalizer_name(hf) -> str:
    """``"none"``, ``"nfc"``, or the type name of another normaliser of a ``tokenizers.Tokenizer``."""
    if hf.normalizer is None:
        return "none"
    name = type(hf.normalizer).__name__
    return "nfc" if name == "NFC" else name
