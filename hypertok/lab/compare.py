"""``hypertok compare``: HyperTok side by side with every relevant baseline, on your text.

What it does: loads HyperTok directories and the baselines of :mod:`hypertok.registry`
(Mistral v1/v3/Tekken from the files inside ``mistral-common``; BPE and Unigram trained
with HF ``tokenizers`` and with SentencePiece, and the superword baseline SuperBPE, on
``--train`` at each HyperTok directory's vocabulary size, cached; UTF-8 bytes), encodes each ``--text`` with each,
and reports the metrics of :mod:`hypertok.lab.metrics`. For the "HyperTok as an archiver"
view it also compresses the raw text with gzip -9, xz -9, zstd -19 and brotli -q 11,
and reports the UTF-8 size of HyperTok's symbol text, raw and compressed with zstd -19.
It writes ``results.json``, ``results.csv``, ``results.md`` and PNG plots into ``--out``
(:mod:`hypertok.lab.report`), beside the folder's other files, and prints the Markdown
table; a file of those names that an earlier ``compare`` did not write is refused, never
overwritten (issue 24).

How it measures (stated in every report): each line of a text is encoded separately,
so newline tokens are not counted (the convention of REFERENCE.md); characters and
bytes are those of the whole file (newlines included); words are ``\\w+`` matches.
Throughput is UTF-8 megabytes per second of ``encode_batch`` / ``decode_batch`` over
the first ``speed_mb`` MB of lines, median of ``repeats`` runs after one warm-up run
(and after the full encode used for the metrics).

What it does not do: no language-model evaluation (bits per character of a model), no
training beyond the baseline tokenizers. A baseline that cannot be had is reported as
"skipped" with the reason, never as zero; a text that is not UTF-8 or empty, or a
directory that does not load, gets an error row and the other rows are still produced.

Follows issue 3 ("The comparison lab"). Since issue 9 it is a command module
(:func:`configure`/:func:`run`) and every tokenizer comes from :mod:`hypertok.registry`.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import sys
import textwrap
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import files
from ..errors import HyperTokError
from ..options import add_dataclass_arguments, dataclass_from_args, option
from ..registry import MISTRAL_FILES, TRAINED_KINDS, BytesTokenizer, Tokenizer, Unavailable
from ..text import read_nonempty_text, resolve_corpus
from . import metrics as M
from .report import markdown, output_names, write_outputs

COMPRESSORS = ["gzip", "xz", "zstd", "brotli"]
VERSIONED = ("hypertok", "tokenizers", "sentencepiece", "mistral-common", "tiktoken", "numpy", "zstandard", "brotli")
TOKENIZER_BASELINES = [*MISTRAL_FILES, *TRAINED_KINDS, "bytes"]
ALL_BASELINES = TOKENIZER_BASELINES + COMPRESSORS
GROUPS = {
    "all": ALL_BASELINES,
    "none": [],
    "mistral": list(MISTRAL_FILES),
    "trained": list(TRAINED_KINDS),
    "tokenizers": TOKENIZER_BASELINES,
    "compressors": COMPRESSORS,
}
METHOD_NOTE = (
    "Each line is encoded separately (no newline tokens); characters and bytes are those of the whole "
    "text, newlines included; words = matches of the regex \\w+ (Unicode letters, digits, _); continued "
    "words = words split into 2+ tokens (Rust et al. 2021); Rényi efficiency alpha=2.5 over |V| "
    "(Zouhar et al. 2023)."
)
def parse_baselines(spec: str | Sequence[str] | None) -> list[str]:
    """Baseline names from ``"all"``, a group, or a comma/space separated list.

    >>> parse_baselines("mistral,bytes")
    ['mistral-v1', 'mistral-v3', 'tekken', 'bytes']
    >>> parse_baselines("none")
    []
    """
    if spec is None:
        spec = "all"
    items = spec.replace(",", " ").split() if isinstance(spec, str) else [s for x in spec for s in x.replace(",", " ").split()]
    out: list[str] = []
    for item in items:
        names = GROUPS.get(item, [item] if item in ALL_BASELINES else None)
        if names is None:
            raise HyperTokError(f"--baselines: unknown name {item!r}; choose from groups "
                                f"{', '.join(GROUPS)} or names {', '.join(ALL_BASELINES)}")
        out += [n for n in names if n not in out]
    return out


# --------------------------------------------------------------------------- texts
@dataclass
class Text:
    """A text prepared once and measured by every tokenizer."""

    path: str
    text: str
    lines: list[str] = field(init=False)
    line_bytes: np.ndarray = field(init=False)
    n_chars: int = field(init=False)
    n_bytes: int = field(init=False)
    word_starts: np.ndarray = field(init=False)
    word_ends: np.ndarray = field(init=False)
    speed_lines: list[str] = field(init=False)
    speed_bytes: int = field(init=False)
    sha256: str = field(init=False)

    def prepare(self, speed_mb: float) -> "Text":
        data = self.text.encode("utf-8")
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.lines = self.text.split("\n")
        self.line_bytes = np.array([len(x.encode("utf-8")) for x in self.lines], dtype=np.int64)
        self.n_chars, self.n_bytes = len(self.text), len(data)
        self.word_starts, self.word_ends = M.word_byte_spans(self.text)
        limit, total, k = speed_mb * 1e6, 0, 0
        while k < len(self.lines) and total < limit:
            total += int(self.line_bytes[k]) + 1
            k += 1
        self.speed_lines = self.lines[:k]
        self.speed_bytes = int(self.line_bytes[:k].sum())
        return self

    @property
    def n_words(self) -> int:
        return len(self.word_starts)


# --------------------------------------------------------------------------- one measurement
def measure(sub: Tokenizer, t: Text, repeats: int = 5) -> dict:
    """All metrics of one tokenizer on one prepared text (a results row)."""
    t0 = time.perf_counter()
    ids = sub.encode_batch(t.lines)
    full_encode_s = time.perf_counter() - t0
    n_tokens = sum(len(x) for x in ids)
    flat = np.fromiter((i for x in ids for i in x), dtype=np.int64, count=n_tokens)
    counts = np.bincount(flat, minlength=sub.vocab_size)
    decoded = sub.decode_batch(ids)
    bad_lines = sum(1 for a, b in zip(decoded, t.lines) if a != b)
    ends, aligned = M.token_ends(ids, M.piece_lengths(sub.piece_bytes), t.line_bytes, sub.dummy_prefix)
    line_start = np.concatenate([[0], np.cumsum(t.line_bytes + 1)[:-1]])
    word_line = np.searchsorted(line_start, t.word_starts, "right") - 1
    cont, measured = M.continued_words(t.word_starts, t.word_ends, ends, aligned[word_line])

    sample_ids = ids[: len(t.speed_lines)]
    enc_s, enc_runs = M.median_seconds(lambda: sub.encode_batch(t.speed_lines), repeats=repeats)
    dec_s, dec_runs = M.median_seconds(lambda: sub.decode_batch(sample_ids), repeats=repeats)
    mb = t.speed_bytes / 1e6
    return {
        "status": "ok", "reason": "",
        "tokens": n_tokens,
        "chars_per_token": t.n_chars / n_tokens if n_tokens else None,
        "bytes_per_token": t.n_bytes / n_tokens if n_tokens else None,
        "fertility": M.fertility(n_tokens, t.n_words),
        "continued_words": cont / measured if measured else None,
        "continued_words_measured": measured,
        "unaligned_lines": int((~aligned).sum()),
        "renyi_efficiency": M.renyi_efficiency(counts, sub.vocab_size, 2.5),
        "vocab_used": M.vocab_used(counts, sub.vocab_size),
        "fallback_share": M.fallback_share(counts, sub.fallback_ids),
        "fallback_share_wide": M.fallback_share(counts, getattr(sub, "fallback_ids_wide", None)),
        "fallback_rule": sub.fallback_note or "n/a: no separate fallback model",
        "round_trip": bad_lines == 0,
        "round_trip_bad_lines": bad_lines,
        "encode_mb_s": mb / enc_s if enc_s > 0 else None,
        "decode_mb_s": mb / dec_s if dec_s > 0 else None,
        "encode_runs_s": enc_runs, "decode_runs_s": dec_runs,
        "full_encode_s": full_encode_s,
    }


def _compressor(name: str):
    """(label, compress, decompress) for a compressor name; raises Unavailable."""
    if name == "gzip":
        import gzip

        return "gzip -9", lambda d: gzip.compress(d, 9, mtime=0), gzip.decompress
    if name == "xz":
        import lzma

        return "xz -9", lambda d: lzma.compress(d, preset=9), lzma.decompress
    if name == "zstd":
        try:
            import zstandard
        except ImportError:
            raise Unavailable("python package zstandard is not installed (pip install zstandard)") from None
        return ("zstd -19", lambda d: zstandard.ZstdCompressor(level=19).compress(d),
                lambda d: zstandard.ZstdDecompressor().decompress(d))
    if name == "brotli":
        try:
            import brotli
        except ImportError:
            raise Unavailable("python package brotli is not installed (pip install brotli)") from None
        return "brotli -q 11 -w 24", lambda d: brotli.compress(d, quality=11, lgwin=24), brotli.decompress
    raise HyperTokError(f"unknown compressor {name!r}")


def _size_row(text: Text, method: str, size: int, seconds: float | None, lossless: bool, **extra) -> dict:
    return {"text": text.path, "method": method, "status": "ok", "reason": "", "bytes": size,
            "ratio": text.n_bytes / size if size else None, "bits_per_char": 8 * size / text.n_chars,
            "seconds": seconds, "lossless": lossless, **extra}


# --------------------------------------------------------------------------- the whole comparison
def _log(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def _progress(items: list, quiet: bool, desc: str):
    if quiet:
        return items
    try:
        from tqdm import tqdm
    except ImportError:
        return items
    return tqdm(items, desc=desc, unit="tokenizer", file=sys.stderr)


def compare(
    tokenizers: Sequence[str | os.PathLike] = (),
    texts: Sequence[str | os.PathLike] = (),
    train: Sequence[str | os.PathLike] = (),
    baselines: str | Sequence[str] | None = "all",
    out: str | os.PathLike | None = None,
    *,
    vocab_sizes: Sequence[int] = (),
    cache_dir: str | os.PathLike | None = None,
    speed_mb: float = 1.0,
    repeats: int = 5,
    plots: bool = True,
    quiet: bool = False,
) -> dict:
    """Compare HyperTok directories with baselines on texts; write results into ``out``.

    Trained baselines are built at every distinct vocabulary size among the loaded
    ``tokenizers`` plus ``vocab_sizes``. Returns the results dictionary (also written as
    ``results.json``). Rows have ``status`` "ok", "skipped" (with ``reason``) or "error".

    >>> r = compare(texts=[__file__], baselines="bytes", repeats=1, plots=False, quiet=True)
    >>> [(row["tokenizer"], row["status"], row["round_trip"]) for row in r["rows"]]
    [('bytes', 'ok', True)]
    """
    t_start = time.perf_counter()
    names = parse_baselines(baselines)
    if repeats < 1:
        raise HyperTokError(f"repeats must be >= 1, got {repeats}")
    if not texts:
        raise HyperTokError("no --text given; pass one or more UTF-8 text files to measure on")

    subjects: list[tuple[str, Tokenizer | None, str, str]] = []  # (name, subject, status, reason)
    hypertoks = []
    for d in tokenizers:
        from ..registry import HyperTokTokenizer

        try:
            sub = HyperTokTokenizer.from_dir(d)
            if any(sub.name == h.name for h in hypertoks):  # two builds of one mode and size
                sub.name = f"{sub.name}:{Path(d).name}"
            hypertoks.append(sub)
            subjects.append((sub.name, sub, "ok", ""))
            _log(f"loaded {sub.name} from {d}", quiet)
        except (HyperTokError, OSError, ValueError) as e:
            subjects.append((f"hypertok:{d}", None, "error", f"tokenizer directory does not load: {e}"))
    for n in names:
        if n in MISTRAL_FILES:
            from ..registry import load_tokenizer

            try:
                subjects.append((n if n != "tekken" else "mistral-tekken", load_tokenizer(n), "ok", ""))
            except Unavailable as e:
                subjects.append((n, None, "skipped", str(e)))
    sizes = sorted({s.vocab_size for s in hypertoks} | {int(v) for v in vocab_sizes})
    trained_names = [n for n in names if n in TRAINED_KINDS]
    if trained_names:
        from ..registry import corpus_sha256, load_tokenizer

        train = resolve_corpus(train)
        sha = None
        if not train:
            for n in trained_names:
                subjects.append((n, None, "skipped", "no --train corpus given to train it on"))
        elif not sizes:
            for n in trained_names:
                subjects.append((n, None, "skipped", "no vocabulary size: give --tokenizer DIR or --vocab-size N"))
        else:
            try:
                sha = corpus_sha256(train)
            except HyperTokError as e:
                for n in trained_names:
                    subjects.append((n, None, "error", str(e)))
        if sha:
            for size in sizes:
                for n in trained_names:
                    try:
                        subjects.append((f"{n}-{size}", load_tokenizer(n, train=train, size=size, cache_dir=cache_dir,
                                                                     progress=not quiet, sha256=sha),
                                         "ok", ""))
                    except Unavailable as e:
                        subjects.append((f"{n}-{size}", None, "skipped", str(e)))
                    except HyperTokError as e:
                        subjects.append((f"{n}-{size}", None, "error", str(e)))
    if "bytes" in names:
        subjects.append(("bytes", BytesTokenizer(), "ok", ""))

    rows: list[dict] = []
    compression: list[dict] = []
    text_info: list[dict] = []
    comp_names = [n for n in names if n in COMPRESSORS]
    for path in texts:
        path = str(path)
        try:
            t = Text(path, read_nonempty_text(path)).prepare(speed_mb)
        except HyperTokError as e:
            text_info.append({"path": path, "status": "error", "reason": str(e)})
            rows.append({"text": path, "tokenizer": "*", "status": "error", "reason": str(e)})
            compression.append({"text": path, "method": "*", "status": "error", "reason": str(e)})
            continue
        text_info.append({"path": path, "status": "ok", "chars": t.n_chars, "bytes": t.n_bytes, "words": t.n_words,
                          "lines": len(t.lines), "sha256": t.sha256, "speed_sample_bytes": t.speed_bytes})
        for name, sub, status, reason in _progress(subjects, quiet, f"measuring on {Path(path).name}"):
            row = {"text": path, "tokenizer": name, "family": getattr(sub, "family", None),
                   "vocab_size": getattr(sub, "vocab_size", None), "status": status, "reason": reason}
            if sub is not None:
                try:
                    row.update(measure(sub, t, repeats))
                except Exception as e:  # a broken tokenizer must not take the other rows down
                    row.update(status="error", reason=f"{type(e).__name__}: {e}")
                row["info"] = sub.info
            rows.append(row)
        compression += _compress_rows(t, comp_names, hypertoks, quiet)

    result = {
        "what": "hypertok compare",
        "method": METHOD_NOTE,
        "speed": f"encode/decode MB/s: UTF-8 MB of the first {speed_mb:g} MB of lines per second, median of "
                 f"{repeats} runs after a warm-up run",
        "word_rule": M.WORD_RULE,
        "texts": text_info,
        "rows": rows,
        "compression": compression,
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "versions": files.library_versions(VERSIONED, python=False),
        "seconds": None,
    }
    result["seconds"] = round(time.perf_counter() - t_start, 1)
    table = markdown(result)
    if out is not None:
        write_outputs(result, table, Path(out), plots)
    if not quiet:
        print(table)
    return result


def _compress_rows(t: Text, comp_names: list[str], hypertoks: list, quiet: bool) -> list[dict]:
    out: list[dict] = []
    if not comp_names and not hypertoks:
        return out
    data = t.text.encode("utf-8")
    out.append(_size_row(t, "raw UTF-8", len(data), None, True))
    zstd = None
    jobs = []
    for n in comp_names:
        try:
            label, comp, decomp = _compressor(n)
        except Unavailable as e:
            out.append({"text": t.path, "method": n, "status": "skipped", "reason": str(e)})
            continue
        jobs.append((label, comp, decomp))
        if n == "zstd":
            zstd = (comp, decomp)

    def run_job(job):
        label, comp, decomp = job
        t0 = time.perf_counter()
        blob = comp(data)
        secs = time.perf_counter() - t0
        return _size_row(t, label, len(blob), secs, decomp(blob) == data)

    if jobs:
        # The compressors release the GIL: run them side by side (their "seconds" are then wall times
        # measured while sharing the machine, reported but not compared).
        from concurrent.futures import ThreadPoolExecutor

        _log(f"compressing {t.path} with {', '.join(j[0] for j in jobs)}", quiet)
        with ThreadPoolExecutor(max_workers=min(len(jobs), os.cpu_count() or 1)) as pool:
            out += list(pool.map(run_job, jobs))
    for sub in hypertoks:
        _log(f"symbol text of {sub.name} on {t.path}", quiet)
        t0 = time.perf_counter()
        sym = sub.tok.to_symbols(t.text)
        secs = time.perf_counter() - t0
        sym_bytes = sym.encode("utf-8")
        lossless = sub.tok.from_symbols(sym) == t.text
        out.append(_size_row(t, f"{sub.name}: symbol text (UTF-8)", len(sym_bytes), secs, lossless,
                             tokens=len(sym), tokenizer=sub.name))
        if zstd is None:
            try:
                label, comp, decomp = _compressor("zstd")
                zstd = (comp, decomp)
            except Unavailable as e:
                out.append({"text": t.path, "method": f"{sub.name}: symbol text + zstd -19", "status": "skipped",
                            "reason": str(e)})
                continue
        t0 = time.perf_counter()
        blob = zstd[0](sym_bytes)
        secs += time.perf_counter() - t0
        out.append(_size_row(t, f"{sub.name}: symbol text + zstd -19", len(blob), secs,
                             lossless and zstd[1](blob) == sym_bytes, tokenizer=sub.name))
    return out


# --------------------------------------------------------------------------- CLI
@dataclass
class CompareConfig:
    """The settings of ``hypertok compare``: every field is one of its flags, and one keyword of
    :func:`compare` (``compare(**asdict(cfg))``)."""

    texts: list[str] = option(help="UTF-8 text files to measure on (.xz/.gz/.zst read directly)", metavar="FILE",
                              flag="--text")
    out: str = option(help="folder for results.json/.csv/.md and plots (an earlier compare's are replaced; a file of "
                           "those names that compare did not write is never overwritten)", metavar="DIR")
    tokenizers: list[str] = option(help="HyperTok tokenizer directories (default: none: baselines only)",
                                   default_factory=list, nargs="*", metavar="DIR", flag="--tokenizer")
    train: list[str] = option(help="corpus to train the BPE/Unigram baselines on (never the --text you measure on); "
                                   ".xz/.gz/.zst read directly; 'default' = the default build corpus (default: none: "
                                   "the trained baselines are skipped)", default_factory=list, nargs="*", metavar="FILE")
    baselines: str = option("all", "comma-separated names or groups", metavar="LIST")
    vocab_sizes: list[int] = option(help="extra vocabulary sizes for the trained baselines (default: none)",
                                    default_factory=list, nargs="*", metavar="N", flag="--vocab-size")
    cache_dir: str | None = option(None, "cache of trained baselines (default: ~/.cache/hypertok/baselines or "
                                         "$HYPERTOK_CACHE)", metavar="DIR", flag="--cache")
    speed_mb: float = option(1.0, "MB of text for the throughput runs")
    repeats: int = option(5, "timed runs per throughput figure, median")
    plots: bool = option(True, "write the PNG plots (--no-plots: skip them)")
    quiet: bool = option(False, "no progress on stderr (which baseline trains, for how long; measuring bars)")

    def check(self) -> None:
        """Refuse bad values before any work, each in one line."""
        if not self.speed_mb > 0 or self.repeats < 1 or any(v < 1 for v in self.vocab_sizes):
            raise HyperTokError("--speed-mb must be positive, --repeats and --vocab-size at least 1")
        for path in [*self.texts, *resolve_corpus(self.train)]:
            if not Path(path).is_file():
                raise HyperTokError(f"{path}: no such text file")


def configure(p: argparse.ArgumentParser) -> None:
    """The options of ``hypertok compare``."""
    p.description = "\n\n".join(textwrap.fill(x, 88) for x in [
        "Encode each --text with each HyperTok --tokenizer and each baseline, and report characters and bytes "
        "per token, tokens per word (fertility), continued words, Rényi efficiency (alpha 2.5), share of the "
        "vocabulary used, share of fallback tokens, exact round-trip and encode/decode MB/s.",
        "Baselines: Mistral v1/v3/Tekken (the files inside mistral-common, offline); BPE and Unigram trained "
        "on --train with HF tokenizers and with SentencePiece at each HyperTok vocabulary size (cached, so a "
        "second run does not retrain); UTF-8 bytes; and gzip/xz/zstd/brotli against HyperTok's symbol text. "
        "A baseline that cannot be had is reported as skipped, with the reason.",
        METHOD_NOTE])
    p.epilog = ("example: hypertok compare --tokenizer tok64k --text ../shared/corpora/ruslit/dev.txt "
                "--train ../shared/corpora/ruslit/train.txt --out cmp64k\n"
                f"baselines: groups {', '.join(GROUPS)}; names {', '.join(ALL_BASELINES)}")
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    add_dataclass_arguments(p, CompareConfig)


def run(args: argparse.Namespace) -> int:
    """Run ``hypertok compare``; 1 when a row is an error."""
    cfg = dataclass_from_args(CompareConfig, args)
    # before any work (issue 13); a user's results.md or results.json there is never overwritten (issue 24)
    files.check_results_out(cfg.out, output_names(cfg.texts), "hypertok compare",
                            own=lambda record: record.get("what") == "hypertok compare")
    cfg.check()
    result = compare(**asdict(cfg))
    if cfg.quiet:  # compare() prints the table only when it is not quiet
        print(markdown(result))
    else:
        print(f"wrote {cfg.out}/results.json, results.csv, results.md and plots", file=sys.stderr)
    errors = [r for r in result["rows"] if r["status"] == "error"]
    return 1 if errors else 0
