"""Baselines trained on the user's corpus: BPE and Unigram, with HF ``tokenizers`` and SentencePiece.

What it does: :func:`trained` trains (or loads from the cache) byte-level BPE and
Unigram (Metaspace pre-tokenizer) with HF ``tokenizers``, and BPE and Unigram with
SentencePiece (Llama-style settings: byte fallback, identity normalisation, whitespace
kept), each at a given total vocabulary size, specials included. Trained models are
cached under ``~/.cache/hypertok/baselines`` (or ``cache_dir`` / ``$HYPERTOK_CACHE``),
keyed by the corpus SHA-256, the size, the kind and a settings version, so a second run
does not retrain.

What it does not do: no measuring (see :mod:`hypertok.lab.compare`). A baseline that
cannot be trained raises :class:`~hypertok.registry.base.Unavailable` with the reason.
Issue 3; moved into the registry by issue 9.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..errors import HyperTokError
from ..files import atomic_dir, library_versions
from .base import Tokenizer, Unavailable
from .hf import HFTokenizer
from .spm import SentencePieceTokenizer

SETTINGS_VERSION = 1  # bump when the training settings below change: old cache entries are then ignored
SPECIALS = ["<unk>", "<s>", "</s>", "<pad>"]  # ids 0..3 in every trained baseline, as in HyperTok
TRAINED_KINDS = ["hf-bpe", "hf-unigram", "spm-bpe", "spm-unigram"]
VERSIONED = ("tokenizers", "sentencepiece", "mistral-common")  # recorded in every cache entry


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
    from ..builder.corpus import Corpus

    for _ in Corpus(paths):  # strict decoding, errors name file and line
        pass


def _lines(paths: Sequence[Path]) -> Iterable[str]:
    """Non-empty lines without their newline; ``.xz``/``.gz``/``.zst`` files are streamed decompressed."""
    from ..builder.corpus import Corpus

    for line in Corpus(paths):
        line = line.rstrip("\n")
        if line:
            yield line


def _train_hf(kind: str, paths: Sequence[Path], size: int, out: Path, progress: bool) -> None:
    from tokenizers import pre_tokenizers, trainers

    from ..core.pipeline import untrained

    if kind == "hf-bpe":
        tk = untrained("byte-level-bpe")
        trainer = trainers.BpeTrainer(vocab_size=size, special_tokens=SPECIALS, show_progress=progress,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    else:
        tk = untrained("metaspace-unigram")
        trainer = trainers.UnigramTrainer(vocab_size=size, special_tokens=SPECIALS, unk_token="<unk>",
                                          show_progress=progress)
    tk.train_from_iterator(_lines(paths), trainer=trainer)
    tk.save(str(out / "tokenizer.json"))


def _train_spm(kind: str, paths: Sequence[Path], size: int, out: Path) -> None:
    import sentencepiece as spm

    from ..files import compression_of

    # SentencePiece reads plain files itself; compressed ones are streamed to it line by line.
    source = ({"sentence_iterator": iter(_lines(paths))} if any(compression_of(p) for p in paths)
              else {"input": ",".join(str(p) for p in paths)})
    spm.SentencePieceTrainer.train(
        **source, model_prefix=str(out / "spm"), model_type=kind.split("-")[1],
        vocab_size=size, character_coverage=0.9999, byte_fallback=True, normalization_rule_name="identity",
        remove_extra_whitespaces=False, split_digits=True, max_sentence_length=1 << 16,
        hard_vocab_limit=False, unk_id=0, bos_id=1, eos_id=2, pad_id=3, num_threads=os.cpu_count() or 1,
        minloglevel=2,
    )


def trained(kind: str, train: Sequence[str | os.PathLike], size: int, cache_dir: str | os.PathLike | None = None,
            progress: bool = False, sha256: str | None = None) -> Tokenizer:
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
        t0 = time.perf_counter()
        with atomic_dir(entry) as tmp:  # a cache entry appears whole or not at all
            try:
                if kind.startswith("hf-"):
                    _train_hf(kind, paths, size, tmp, progress)
                else:
                    _train_spm(kind, paths, size, tmp)
            except Exception as e:  # training libraries raise RuntimeError/OSError with their own message
                raise Unavailable(f"training {kind} at {size} failed: {e}") from None
            meta = {"kind": kind, "requested_vocab_size": size, "corpus_sha256": sha,
                    "corpus_files": [str(p) for p in paths], "settings_version": SETTINGS_VERSION,
                    "train_seconds": round(time.perf_counter() - t0, 1),
                    "versions": library_versions(VERSIONED, python=False)}
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True), encoding="utf-8")
    meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
    name = f"{kind}-{size}"
    if kind.startswith("hf-"):
        from tokenizers import Tokenizer as HFTk

        return HFTokenizer(HFTk.from_file(str(entry / "tokenizer.json")), name, {"cache": str(entry), **meta})
    return SentencePieceTokenizer(entry / "spm.model", name, {"cache": str(entry), **meta})

