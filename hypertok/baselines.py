"""Every tokenizer ``hypertok compare`` can measure, behind one small interface.

What it does: wraps each tokenizer in a :class:`Subject` with ``name``, ``vocab_size``,
``encode``, ``encode_batch``, ``decode``, ``decode_batch``, a table of the UTF-8 bytes
each id stands for (``piece_bytes``, used to place token boundaries in the text) and the
set of ids that count as fallback (``fallback_ids``). The subjects are:

- **HyperTok** directories (:func:`load_hypertok`).
- **Mistral's real tokenizers**, read offline from the files that ship inside the
  ``mistral-common`` package (``mistral_common/data/``): v1 SentencePiece (32 000,
  ``tokenizer.model.v1``), v3 SentencePiece (32 768,
  ``mistral_instruct_tokenizer_240323.model.v3``) and Tekken (131 072,
  ``tekken_240911.json``). The SentencePiece files load with plain ``sentencepiece``,
  so a machine without ``mistral-common`` can use a copy of them
  (``HYPERTOK_MISTRAL_DATA=/folder``). Tekken goes through ``mistral_common``'s
  ``Tekkenizer``.
- **Trained baselines** (:func:`trained`): BPE and Unigram trained on the user's
  corpus with HF ``tokenizers`` (byte-level BPE; Unigram with the Metaspace
  pre-tokenizer) and with SentencePiece (Llama-style settings: byte fallback, identity
  normalisation, whitespace kept), each at a given total vocabulary size, specials
  included. Trained models are cached under ``~/.cache/hypertok/baselines`` (or
  ``cache_dir`` / ``$HYPERTOK_CACHE``), keyed by the corpus SHA-256, the size, the kind
  and a settings version, so a second run does not retrain.
- **Bytes**: UTF-8 bytes, the trivial 256-token tokenizer.

What it does not do: no metrics (see :mod:`hypertok.metrics`) and no reporting (see
:mod:`hypertok.compare`). A baseline that cannot be had (package missing, file
missing, training failed) raises :class:`Unavailable` with the reason, so the report can
say "skipped: <reason>" instead of printing a zero.

Follows issue 3 ("The comparison lab").
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path

from .errors import HyperTokError

SETTINGS_VERSION = 1  # bump when the training settings below change: old cache entries are then ignored
SPECIALS = ["<unk>", "<s>", "</s>", "<pad>"]  # ids 0..3 in every trained baseline, as in HyperTok

MISTRAL_FILES = {
    "mistral-v1": "tokenizer.model.v1",
    "mistral-v3": "mistral_instruct_tokenizer_240323.model.v3",
    "tekken": "tekken_240911.json",
}
TRAINED_KINDS = ["hf-bpe", "hf-unigram", "spm-bpe", "spm-unigram"]
_BYTE_PIECE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


class Unavailable(Exception):
    """A baseline that cannot be measured here; ``str(e)`` says why (shown as "skipped")."""


class Subject(ABC):
    """One tokenizer under comparison.

    Subclasses set ``name``, ``family`` and ``vocab_size`` and implement ``encode`` and
    ``decode``; batch methods default to loops. ``piece_bytes[id]`` is the UTF-8 bytes
    the id stands for (``b""`` for control tokens, ``None`` where unknown, e.g. an
    ``<unk>`` that may stand for any character). ``dummy_prefix`` is True when the
    tokenizer adds one space in front of every text it encodes (SentencePiece,
    Metaspace) so that the pieces of ``encode(t)`` spell ``" " + t``.
    ``fallback_ids`` are the ids counted as "fallback" (``None``: not applicable).

    >>> b = BytesSubject()
    >>> b.encode("ёж"), b.decode([209, 145, 208, 182]), b.vocab_size
    ([209, 145, 208, 182], 'ёж', 256)
    """

    name: str = "?"
    family: str = "?"
    vocab_size: int = 0
    dummy_prefix: bool = False
    fallback_ids: frozenset[int] | None = None
    fallback_note: str = ""

    def __init__(self) -> None:
        self.info: dict = {}
        self._piece_bytes: list[bytes | None] | None = None

    @abstractmethod
    def encode(self, text: str) -> list[int]:
        """Implemented by every concrete subject."""

    @abstractmethod
    def decode(self, ids: Sequence[int]) -> str:
        """Implemented by every concrete subject."""

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def decode_batch(self, batch: Sequence[Sequence[int]]) -> list[str]:
        return [self.decode(ids) for ids in batch]

    @abstractmethod
    def _build_piece_bytes(self) -> list[bytes | None]:
        """Implemented by every concrete subject."""

    @property
    def piece_bytes(self) -> list[bytes | None]:
        if self._piece_bytes is None:
            self._piece_bytes = self._build_piece_bytes()
        return self._piece_bytes

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, vocab_size={self.vocab_size})"


# --------------------------------------------------------------------------- bytes
class BytesSubject(Subject):
    """UTF-8 bytes: id = byte value. The floor every tokenizer should beat."""

    name = "bytes"
    family = "bytes"
    vocab_size = 256

    def __init__(self) -> None:
        super().__init__()
        self.info = {"what": "UTF-8 bytes, one token per byte"}

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: Sequence[int]) -> str:
        return bytes(ids).decode("utf-8", errors="replace")

    def _build_piece_bytes(self) -> list[bytes | None]:
        return [bytes([i]) for i in range(256)]


# --------------------------------------------------------------------------- SentencePiece
class SentencePieceSubject(Subject):
    """A SentencePiece ``.model`` file (Mistral v1/v3 or one trained here)."""

    family = "sentencepiece"
    dummy_prefix = True

    def __init__(self, path: str | os.PathLike, name: str, info: dict | None = None) -> None:
        super().__init__()
        try:
            import sentencepiece as spm
        except ImportError as e:  # pragma: no cover - a declared dependency
            raise Unavailable(f"sentencepiece is not installed ({e})") from None
        self.sp = spm.SentencePieceProcessor(model_file=str(path))
        self.name = name
        self.vocab_size = self.sp.get_piece_size()
        self.info = {"file": str(path), **(info or {})}
        self.fallback_ids = frozenset(i for i in range(self.vocab_size) if self.sp.is_byte(i))
        self.fallback_note = "byte-fallback pieces <0xXX>"

    def encode(self, text: str) -> list[int]:
        return self.sp.encode(text)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return self.sp.encode(list(texts), num_threads=os.cpu_count() or 1)

    def decode(self, ids: Sequence[int]) -> str:
        return self.sp.decode(list(ids))

    def decode_batch(self, batch: Sequence[Sequence[int]]) -> list[str]:
        return self.sp.decode([list(x) for x in batch], num_threads=os.cpu_count() or 1)

    def _build_piece_bytes(self) -> list[bytes | None]:
        out: list[bytes | None] = []
        sp = self.sp
        for i in range(self.vocab_size):
            if sp.is_control(i):
                out.append(b"")
            elif sp.is_unknown(i):
                out.append(None)
            elif sp.is_byte(i):
                out.append(bytes([int(_BYTE_PIECE.match(sp.id_to_piece(i)).group(1), 16)]))
            else:
                out.append(sp.id_to_piece(i).replace("\u2581", " ").encode("utf-8"))
        return out


# --------------------------------------------------------------------------- HF tokenizers
def _byte_level_decoder_table() -> dict[str, int]:
    """GPT-2's byte <-> printable-character map, inverted (character -> byte)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


class HFSubject(Subject):
    """A ``tokenizers.Tokenizer`` (byte-level BPE or Metaspace Unigram, or any file)."""

    family = "hf-tokenizers"

    def __init__(self, tokenizer, name: str, info: dict | None = None) -> None:
        super().__init__()
        self.tk = tokenizer
        self.name = name
        self.vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)
        self.info = dict(info or {})
        pre = json.loads(tokenizer.to_str()).get("pre_tokenizer") or {}
        self._pre_type = pre.get("type")
        self.dummy_prefix = self._pre_type == "Metaspace" and pre.get("prepend_scheme", "always") != "never"
        unk = tokenizer.token_to_id("<unk>")
        if self._pre_type == "Metaspace" and unk is not None:
            self.fallback_ids = frozenset([unk])
            self.fallback_note = "<unk> (no byte fallback)"

    def encode(self, text: str) -> list[int]:
        return self.tk.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self.tk.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Sequence[int]) -> str:
        return self.tk.decode(list(ids), skip_special_tokens=True)

    def decode_batch(self, batch: Sequence[Sequence[int]]) -> list[str]:
        return self.tk.decode_batch([list(x) for x in batch], skip_special_tokens=True)

    def _build_piece_bytes(self) -> list[bytes | None]:
        vocab = self.tk.get_vocab(with_added_tokens=True)
        out: list[bytes | None] = [None] * self.vocab_size
        table = _byte_level_decoder_table() if self._pre_type == "ByteLevel" else None
        specials = {t.content for t in self.tk.get_added_tokens_decoder().values() if t.special}
        for tok, i in vocab.items():
            if i >= len(out):
                continue
            if tok in specials:
                out[i] = None if tok == "<unk>" else b""
            elif table is not None:
                try:
                    out[i] = bytes(table[c] for c in tok)
                except KeyError:
                    out[i] = None
            else:
                out[i] = tok.replace("\u2581", " ").encode("utf-8")
        return out


# --------------------------------------------------------------------------- Tekken
class TekkenSubject(Subject):
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


# --------------------------------------------------------------------------- HyperTok
class HyperTokSubject(Subject):
    """A HyperTok tokenizer directory, measured through its public API."""

    family = "hypertok"

    def __init__(self, tok, name: str | None = None) -> None:
        super().__init__()
        self.tok = tok
        cfg = getattr(tok, "config", {}) or {}
        mode = cfg.get("mode") or (cfg.get("build") or {}).get("mode")
        self.name = name or f"hypertok-{mode or 'dir'}-{len(tok)}"
        self.vocab_size = len(tok)
        self.info = {"dir": str(tok.path), "mode": mode}
        kinds = tok.kinds
        self.fallback_ids = frozenset(i for i, k in enumerate(kinds) if k in ("fallback", "char", "byte"))
        self.fallback_note = 'kinds "fallback", "char", "byte"'

    def encode(self, text: str) -> list[int]:
        return self.tok.encode(text)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return self.tok.encode_batch(list(texts))

    def decode(self, ids: Sequence[int]) -> str:
        return self.tok.decode(list(ids))

    def decode_batch(self, batch: Sequence[Sequence[int]]) -> list[str]:
        fn = getattr(self.tok, "decode_batch", None)
        return fn([list(x) for x in batch]) if fn else [self.tok.decode(list(x)) for x in batch]

    def _build_piece_bytes(self) -> list[bytes | None]:
        out: list[bytes | None] = []
        for kind, surface in zip(self.tok.kinds, self.tok.surfaces):
            if kind == "special":
                out.append(b"")
            elif kind == "byte" and (m := _BYTE_PIECE.match(surface)):
                out.append(bytes([int(m.group(1), 16)]))
            else:
                out.append(surface.encode("utf-8", errors="surrogatepass"))
        return out


def load_hypertok(path: str | os.PathLike) -> HyperTokSubject:
    """Load a HyperTok directory; raises :class:`HyperTokError` if it does not load."""
    from .tokenizer import HyperTok

    return HyperTokSubject(HyperTok.load(path))


# --------------------------------------------------------------------------- Mistral files
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


def load_mistral(which: str) -> Subject:
    """``which`` in ``mistral-v1``, ``mistral-v3``, ``tekken``; raises :class:`Unavailable`."""
    if which not in MISTRAL_FILES:
        raise HyperTokError(f"unknown Mistral tokenizer {which!r}; choose from {', '.join(MISTRAL_FILES)}")
    path = mistral_data_dir() / MISTRAL_FILES[which]
    if not path.is_file():
        where = ("the folder named by $HYPERTOK_MISTRAL_DATA" if os.environ.get("HYPERTOK_MISTRAL_DATA")
                 else "this mistral-common version")
        raise Unavailable(f"{path} not found ({where} does not hold it)")
    if which == "tekken":
        return TekkenSubject(path, "mistral-tekken")
    return SentencePieceSubject(path, which)


# --------------------------------------------------------------------------- trained baselines
def default_cache_dir() -> Path:
    env = os.environ.get("HYPERTOK_CACHE")
    return Path(env) / "baselines" if env else Path.home() / ".cache" / "hypertok" / "baselines"


def corpus_sha256(paths: Sequence[str | os.PathLike]) -> str:
    """SHA-256 over the files' bytes in the given order (names not included).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"; _ = p.write_bytes(b"abc")
    >>> corpus_sha256([p])[:12]
    'ba7816bf8f01'
    """
    h = hashlib.sha256()
    for p in paths:
        p = Path(p)
        if not p.is_file():
            raise HyperTokError(f"{p}: training file not found; pass existing files to --train")
        with open(p, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
    return h.hexdigest()


def _check_utf8(paths: Sequence[Path]) -> None:
    from .corpus import Corpus

    for _ in Corpus(paths):  # strict decoding, errors name file and line
        pass


def _lines(paths: Sequence[Path]) -> Iterable[str]:
    for p in paths:
        with open(p, encoding="utf-8") as f:
            for line in f:
                line = line.rstrip("\n")
                if line:
                    yield line


def _train_hf(kind: str, paths: Sequence[Path], size: int, out: Path, progress: bool) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if kind == "hf-bpe":
        tk = Tokenizer(models.BPE())
        tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tk.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=size, special_tokens=SPECIALS, show_progress=progress,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    else:
        tk = Tokenizer(models.Unigram())
        tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
        tk.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
        trainer = trainers.UnigramTrainer(vocab_size=size, special_tokens=SPECIALS, unk_token="<unk>",
                                          show_progress=progress)
    tk.train_from_iterator(_lines(paths), trainer=trainer)
    tk.save(str(out / "tokenizer.json"))


def _train_spm(kind: str, paths: Sequence[Path], size: int, out: Path) -> None:
    import sentencepiece as spm

    spm.SentencePieceTrainer.train(
        input=",".join(str(p) for p in paths), model_prefix=str(out / "spm"), model_type=kind.split("-")[1],
        vocab_size=size, character_coverage=0.9999, byte_fallback=True, normalization_rule_name="identity",
        remove_extra_whitespaces=False, split_digits=True, max_sentence_length=1 << 16,
        hard_vocab_limit=False, unk_id=0, bos_id=1, eos_id=2, pad_id=3, num_threads=os.cpu_count() or 1,
        minloglevel=2,
    )


def trained(kind: str, train: Sequence[str | os.PathLike], size: int, cache_dir: str | os.PathLike | None = None,
            progress: bool = False, sha256: str | None = None) -> Subject:
    """A BPE/Unigram baseline of ``size`` total tokens trained on ``train``, cached.

    ``kind`` is one of ``hf-bpe``, ``hf-unigram``, ``spm-bpe``, ``spm-unigram``. The cache
    key is the corpus SHA-256 (pass ``sha256`` to skip re-hashing), the size, the kind
    and :data:`SETTINGS_VERSION`. Raises :class:`Unavailable` if training fails.
    """
    if kind not in TRAINED_KINDS:
        raise HyperTokError(f"unknown trained baseline {kind!r}; choose from {', '.join(TRAINED_KINDS)}")
    if size < 300:
        raise HyperTokError(f"vocabulary size {size} is too small for a trained baseline (need >= 300: "
                            "256 bytes + specials)")
    paths = [Path(p) for p in train]
    if not paths:
        raise Unavailable("no --train corpus given")
    sha = sha256 or corpus_sha256(paths)
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    entry = root / f"{kind}-{size}-{sha[:16]}-v{SETTINGS_VERSION}"
    if not (entry / "meta.json").is_file():
        _check_utf8(paths)
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=root))
        t0 = time.perf_counter()
        try:
            if kind.startswith("hf-"):
                _train_hf(kind, paths, size, tmp, progress)
            else:
                _train_spm(kind, paths, size, tmp)
        except Exception as e:  # training libraries raise RuntimeError/OSError with their own message
            shutil.rmtree(tmp, ignore_errors=True)
            raise Unavailable(f"training {kind} at {size} failed: {e}") from None
        meta = {"kind": kind, "requested_vocab_size": size, "corpus_sha256": sha,
                "corpus_files": [str(p) for p in paths], "settings_version": SETTINGS_VERSION,
                "train_seconds": round(time.perf_counter() - t0, 1), "versions": _versions()}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True), encoding="utf-8")
        try:
            os.replace(tmp, entry)
        except OSError:  # another process finished the same entry first
            shutil.rmtree(tmp, ignore_errors=True)
    meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
    name = f"{kind}-{size}"
    if kind.startswith("hf-"):
        from tokenizers import Tokenizer

        return HFSubject(Tokenizer.from_file(str(entry / "tokenizer.json")), name, {"cache": str(entry), **meta})
    sub = SentencePieceSubject(entry / "spm.model", name, {"cache": str(entry), **meta})
    return sub


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("tokenizers", "sentencepiece", "mistral-common"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out
