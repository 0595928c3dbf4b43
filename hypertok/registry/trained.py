"""Baselines trained on the user's corpus: BPE and Unigram, with HF ``tokenizers`` and SentencePiece.

What it does: :func:`trained` trains (or loads from the cache) byte-level BPE and
Unigram (Metaspace pre-tokenizer) with HF ``tokenizers``, SuperBPE (Liu et al. 2025,
arXiv 2503.13423; :func:`_train_superbpe`), and BPE and Unigram with SentencePiece (Llama-style settings: byte fallback, identity normalisation, whitespace
kept), each at a given total vocabulary size, specials included. Trained models are
cached under ``~/.cache/hypertok/baselines`` (or ``cache_dir`` / ``$HYPERTOK_CACHE``),
keyed by the corpus SHA-256, the size, the kind and a settings version, so a second run
does not retrain.

With ``progress=True`` a training shows where it is on stderr (issue 11: compare trained
for 8 silent minutes): a line naming the baseline, a bar of the corpus bytes read that
keeps its clock ticking while the trainer works (the Rust and C++ trainers release the
GIL), and the seconds it took; a cache hit says so in one line.

What it does not do: no measuring (see :mod:`hypertok.lab.compare`). A baseline that
cannot be trained raises :class:`~hypertok.registry.base.Unavailable` with the reason.
Issue 3; moved into the registry by issue 9.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from ..core.format import SPECIALS  # ids 0..3 in every trained baseline, as in HyperTok
from ..errors import HyperTokError
from ..files import atomic_dir, library_versions, native_write
from .base import Tokenizer, Unavailable
from .hf import HFTokenizer
from .spm import SentencePieceTokenizer

SETTINGS_VERSION = 1  # bump when the training settings below change: old cache entries are then ignored
TRAINED_KINDS = ["hf-bpe", "hf-unigram", "spm-bpe", "spm-unigram", "superbpe"]
SUPERBPE_TRANSITION = 0.9  # stage 1 stops at 90% of the vocabulary (the paper's best: t = 180k of 200k)
_STAGE2_BASE = 0xF0000  # stage-1 token i is the character U+F0000 + i while stage 2 trains
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
    from ..text import iter_text

    for p in paths:
        for _ in iter_text(p):  # strict decoding, errors name file and line
            pass


class _Status:
    """What a training shows on stderr: a bar of the corpus bytes read whose clock ticks every
    second, also while the trainer works on what it has read; silent when ``show`` is false.
    ``reads=False``: the trainer reads the files itself, so only the clock is shown."""

    def __init__(self, name: str, paths: Sequence[Path], show: bool, reads: bool = True):
        from ..text import compression_of

        self.name, self.bar, self.stage, self._stop = name, None, "", threading.Event()
        if not show:
            return
        from tqdm import tqdm

        print(f"{name}: training on {', '.join(map(str, paths))}", file=sys.stderr, flush=True)
        if reads:
            # the total is known for plain files only (a compressed file's size is not its text's)
            total = None if any(compression_of(p) for p in paths) else sum(p.stat().st_size for p in paths)
            self.bar = tqdm(total=total, desc=f"training {name}", unit="B", unit_scale=True, file=sys.stderr,
                            mininterval=1.0, bar_format="{desc}: {n_fmt}B of {total_fmt}B read [{elapsed}{postfix}]")
        else:
            self.bar = tqdm(desc=f"training {name}", bar_format="{desc} [{elapsed}{postfix}]", file=sys.stderr,
                            mininterval=1.0)
        self._ticker = threading.Thread(target=self._tick, daemon=True)
        self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            self.bar.refresh()

    def phase(self, text: str, restart: bool = False) -> None:
        """Name the stage the trainer is in; ``restart``: a new pass over the corpus begins."""
        self.stage = text
        if self.bar is not None:
            if restart:
                self.bar.reset(self.bar.total)
            self.bar.set_postfix_str(text, refresh=True)

    def all_read(self) -> None:
        """The trainer has the whole corpus and works on it (the clock goes on)."""
        if self.bar is not None:
            self.bar.set_postfix_str(f"{self.stage + ': ' if self.stage else ''}corpus read, training", refresh=True)

    def read(self, n_bytes: int) -> None:
        if self.bar is not None:
            self.bar.update(n_bytes)

    def close(self, seconds: float, ok: bool) -> None:
        if self.bar is not None:
            self._stop.set()
            self._ticker.join()
            self.bar.close()
            print(f"{self.name}: {'trained in' if ok else 'training failed after'} {seconds:.1f} s",
                  file=sys.stderr, flush=True)


@contextlib.contextmanager
def _training(name: str, paths: Sequence[Path], show: bool, reads: bool) -> Iterator[_Status]:
    t0 = time.perf_counter()
    status = _Status(name, paths, show, reads)
    try:
        yield status
    except BaseException:
        status.close(time.perf_counter() - t0, ok=False)
        raise
    status.close(time.perf_counter() - t0, ok=True)


def _lines(paths: Sequence[Path], status: _Status | None = None) -> Iterable[str]:
    """Non-empty lines without their newline; ``.xz``/``.gz``/``.zst`` files are streamed decompressed.
    ``status`` counts the bytes read and names the training phase once they are all read."""
    from ..text import iter_lines

    counting = status is not None and status.bar is not None
    for line in iter_lines(paths):
        if counting:
            status.read(len(line.encode("utf-8", "surrogatepass")))
        line = line.rstrip("\n")
        if line:
            yield line
    if status is not None:
        status.all_read()


def _train_hf(kind: str, paths: Sequence[Path], size: int, out: Path, status: _Status) -> None:
    from tokenizers import pre_tokenizers, trainers

    from ..core.pipeline import untrained

    if kind == "hf-bpe":
        tk = untrained("byte-level-bpe")
        trainer = trainers.BpeTrainer(vocab_size=size, special_tokens=list(SPECIALS), show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    else:
        tk = untrained("metaspace-unigram")
        trainer = trainers.UnigramTrainer(vocab_size=size, special_tokens=list(SPECIALS), unk_token="<unk>",
                                          show_progress=False)
    tk.train_from_iterator(_lines(paths, status), trainer=trainer)
    with native_write(out, "tokenizer.json"):
        tk.save(str(out / "tokenizer.json"))


def _train_superbpe(paths: Sequence[Path], size: int, out: Path, status: _Status) -> dict:
    """SuperBPE: BPE that learns subwords, then superwords across whitespace (Liu et al. 2025).

    Stage 1 is the ``hf-bpe`` recipe (byte-level, GPT-2 whitespace pre-tokenization) up to
    the transition size ``t = SUPERBPE_TRANSITION x size``. Stage 2 resumes merging without
    whitespace pre-tokenization (each line is one sequence), for ``size - t`` more merges.
    Stock ``tokenizers`` cannot resume a BPE trainer, so stage 2 trains on the corpus
    written in stage-1 tokens, one private-use character per token: each pair it merges
    is a pair of stage-1 tokens (or of earlier superwords), exactly the merge a resumed
    trainer would make. The result is one byte-level BPE whose merges are stage 1's then
    stage 2's, with no regex pre-tokenization, so a line is encoded as one sequence.
    Unlike the paper, digits are not kept apart in stage 2 (the GPT-2 rules of stage 1 still
    keep them out of words there).
    """
    from tokenizers import Tokenizer as HFTk
    from tokenizers import models, pre_tokenizers, trainers

    from ..core.pipeline import untrained

    t = int(size * SUPERBPE_TRANSITION)
    stage1 = untrained("byte-level-bpe")
    trainer = trainers.BpeTrainer(vocab_size=t, special_tokens=list(SPECIALS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    status.phase("stage 1: subwords")
    stage1.train_from_iterator(_lines(paths, status), trainer=trainer)
    model1 = json.loads(stage1.to_str())["model"]
    vocab1: dict[str, int] = model1["vocab"]
    merges1 = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model1["merges"]]
    piece_of = {i: p for p, i in vocab1.items()}

    def as_chars(batch: list[str]):
        for enc in stage1.encode_batch(batch, add_special_tokens=False):
            yield "".join(chr(_STAGE2_BASE + i) for i in enc.ids)

    def stage2_lines():
        batch: list[str] = []
        for line in _lines(paths, status):
            batch.append(line)
            if len(batch) == 4096:
                yield from as_chars(batch)
                batch = []
        yield from as_chars(batch)

    def piece(s: str) -> str:
        return "".join(piece_of[ord(c) - _STAGE2_BASE] for c in s)

    stage2 = HFTk(models.BPE())  # no pre-tokenizer: a line is one sequence, merges cross spaces
    n_merges = size - len(vocab1)
    # the alphabet counts against vocab_size: ask for every stage-1 token plus the new merges
    trainer2 = trainers.BpeTrainer(vocab_size=len(vocab1) + n_merges, show_progress=False,
                                   initial_alphabet=[chr(_STAGE2_BASE + i) for i in range(len(vocab1))],
                                   max_token_length=None)
    status.phase("stage 2: superwords", restart=True)
    stage2.train_from_iterator(stage2_lines(), trainer=trainer2)
    model2 = json.loads(stage2.to_str())["model"]
    vocab = dict(vocab1)
    merges = list(merges1)
    for m in model2["merges"]:
        a, b = m.split(" ", 1) if isinstance(m, str) else m
        a, b = piece(a), piece(b)
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
            merges.append((a, b))
    tk = HFTk(models.BPE(vocab=vocab, merges=merges))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    from tokenizers import decoders

    tk.decoder = decoders.ByteLevel()
    tk.add_special_tokens(list(SPECIALS))
    with native_write(out, "tokenizer.json"):
        tk.save(str(out / "tokenizer.json"))
    return {"transition_vocab_size": len(vocab1), "stage2_merges": len(merges) - len(merges1)}


def _train_spm(kind: str, paths: Sequence[Path], size: int, out: Path, status: _Status) -> None:
    import sentencepiece as spm

    from ..text import compression_of

    # SentencePiece reads plain files itself; compressed ones are streamed to it line by line.
    if any(compression_of(p) for p in paths):
        source = {"sentence_iterator": iter(_lines(paths, status))}
    else:
        source = {"input": ",".join(str(p) for p in paths)}
        status.phase("SentencePiece reads the files and trains")
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

    ``kind`` is one of ``hf-bpe``, ``hf-unigram``, ``spm-bpe``, ``spm-unigram``, ``superbpe``. The cache
    key is the corpus SHA-256 (pass ``sha256`` to skip re-hashing), the size, the kind
    and :data:`SETTINGS_VERSION`. Raises :class:`Unavailable` if training fails. ``progress``:
    status lines and a ticking bar on stderr while it trains, one line for a cache hit.
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
    name = f"{kind}-{size}"
    if not (entry / "meta.json").is_file():
        _check_utf8(paths)
        t0 = time.perf_counter()
        from ..text import compression_of

        reads = not kind.startswith("spm-") or any(compression_of(p) for p in paths)  # else spm reads the files
        with atomic_dir(entry) as tmp, _training(name, paths, progress, reads) as status:  # whole or not at all
            try:
                extra = {}
                if kind == "superbpe":
                    extra = _train_superbpe(paths, size, tmp, status)
                elif kind.startswith("hf-"):
                    _train_hf(kind, paths, size, tmp, status)
                else:
                    _train_spm(kind, paths, size, tmp, status)
            except Exception as e:  # training libraries raise RuntimeError/OSError with their own message
                raise Unavailable(f"training {kind} at {size} failed: {e}") from None
            meta = {"kind": kind, "requested_vocab_size": size, "corpus_sha256": sha,
                    "corpus_files": [str(p) for p in paths], "settings_version": SETTINGS_VERSION,
                    "train_seconds": round(time.perf_counter() - t0, 1),
                    "versions": library_versions(VERSIONED, python=False), **extra}
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True), encoding="utf-8")
    elif progress:
        print(f"{name}: from the cache {entry}", file=sys.stderr, flush=True)
    meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
    if kind.startswith("hf-") or kind == "superbpe":
        from tokenizers import Tokenizer as HFTk

        return HFTokenizer(HFTk.from_file(str(entry / "tokenizer.json")), name, {"cache": str(entry), **meta})
    return SentencePieceTokenizer(entry / "spm.model", name, {"cache": str(entry), **meta})

