"""Issue 12: encode speed, HyperTok against SentencePiece and HF tokenizers, in one run.

Each tokenizer encodes the same lines (the first ``--mb`` MB of lines of each dev text),
with 1 thread and with all threads; median of ``--repeats`` runs after a warm-up. Every
thread count runs in a fresh child process, because the Rust thread pool of ``tokenizers``
reads ``RAYON_NUM_THREADS`` once. Measured:

- ``hypertok``: ``HyperTok.encode_batch`` (the Python API);
- ``hypertok tokenizer.json``: the exported file through ``tokenizers.Tokenizer.encode_batch``;
- ``spm-bpe``, ``spm-unigram``: SentencePiece ``encode`` (``num_threads``);
- ``hf-bpe``, ``superbpe``: ``tokenizers`` ``encode_batch``;

all at the same vocabulary size, trained on the same corpus (``run_generalise.py``). Then
``HyperTok.encode_stream`` on one whole modern train shard read from .xz: MB/s and the peak
RSS of its process, against the shard's size, to show that memory does not grow with the file.

    python experiments/compression/run_speed.py       # writes speed.json, speed.md, speed.png
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
CORPORA = ROOT.parent / "shared" / "corpora"
TEXTS = [CORPORA / "modern" / "ru-modern-dev.txt.xz", CORPORA / "ruslit" / "dev.txt"]
MIX = json.loads((HERE / "mix.json").read_text(encoding="utf-8"))
WORK = Path.home() / ".cache" / "hypertok" / "i12"
SHARD = CORPORA / "modern" / "ru-modern-train-0001.txt.xz"


def lines_of(mb: float) -> list[str]:
    from hypertok.files import read_text

    out = []
    for path in TEXTS:
        total = 0
        for line in read_text(path).split("\n"):
            if total > mb * 1e6:
                break
            out.append(line)
            total += len(line.encode("utf-8")) + 1
    return out


def subjects(size: int, threads: int):
    from tokenizers import Tokenizer

    from hypertok import HyperTok
    from hypertok.registry import trained

    d = WORK / f"bpe-{size}"
    tok = HyperTok.load(d)
    hf = Tokenizer.from_file(str(d / "tokenizer.json"))
    yield "hypertok", lambda xs: tok.encode_batch(xs)
    yield "hypertok tokenizer.json", lambda xs: hf.encode_batch_fast(xs, add_special_tokens=False)
    for kind in ("spm-bpe", "spm-unigram"):
        sp = trained(kind, [MIX["path"]], size).sp
        yield kind, lambda xs, sp=sp: sp.encode(xs, num_threads=threads)
    for kind in ("hf-bpe", "superbpe"):
        tk = trained(kind, [MIX["path"]], size).tk
        yield kind, lambda xs, tk=tk: tk.encode_batch_fast(xs, add_special_tokens=False)


def child(size: int, threads: int, mb: float, repeats: int) -> None:
    lines = lines_of(mb)
    nbytes = sum(len(x.encode("utf-8")) for x in lines)
    rows = []
    for name, fn in subjects(size, threads):
        fn(lines)  # warm-up
        runs = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn(lines)
            runs.append(time.perf_counter() - t0)
        rows.append({"tokenizer": name, "size": size, "threads": threads, "mb": nbytes / 1e6,
                     "encode_mb_s": nbytes / 1e6 / statistics.median(runs), "runs_s": runs})
    print(json.dumps(rows))


def stream_child(size: int) -> None:
    from hypertok import HyperTok

    tok = HyperTok.load(WORK / f"bpe-{size}")
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    n_tokens = 0
    n_chars = 0
    for ids in tok.encode_stream(SHARD):
        n_tokens += len(ids)
    secs = time.perf_counter() - t0
    from hypertok.files import open_bytes

    with open_bytes(SHARD) as f:
        nbytes = sum(len(b) for b in iter(lambda: f.read(1 << 20), b""))
    print(json.dumps({"file": SHARD.name, "decompressed_mb": nbytes / 1e6, "tokens": n_tokens, "seconds": secs,
                      "encode_mb_s": nbytes / 1e6 / secs, "peak_rss_mb_before": rss0 / 1024,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "threads": os.cpu_count()}))


def run_child(args: list[str], threads: int | None) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if threads:
        env["RAYON_NUM_THREADS"] = str(threads)
    p = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env, cwd=ROOT)
    if p.returncode:
        raise SystemExit(p.stderr[-3000:])
    return p.stdout.strip().splitlines()[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64000, 128000])
    ap.add_argument("--mb", type=float, default=1.0, help="MB of lines from each dev text")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--child", nargs=3, type=float, help=argparse.SUPPRESS)
    ap.add_argument("--stream-child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        size, threads, _ = args.child
        return child(int(size), int(threads), args.mb, args.repeats)
    if args.stream_child:
        return stream_child(args.stream_child)
    rows = []
    for size in args.sizes:
        for threads in (1, os.cpu_count() or 1):
            rows += json.loads(run_child(["--child", str(size), str(threads), "0", "--mb", str(args.mb),
                                          "--repeats", str(args.repeats)], threads))
            print(f"measured {size} with {threads} thread(s)", flush=True)
    stream = json.loads(run_child(["--stream-child", str(args.sizes[0])], None))
    from hypertok.files import atomic_write, library_versions

    result = {"what": "encode MB/s, median of runs after a warm-up; UTF-8 MB of the lines",
              "texts": [p.name for p in TEXTS], "rows": rows, "stream": stream, "cpus": os.cpu_count(),
              "versions": library_versions(["tokenizers", "sentencepiece"])}
    atomic_write(HERE / "speed.json", json.dumps(result, indent=1) + "\n")
    md = ["| tokenizer | size | 1 thread MB/s | all threads MB/s | vs spm-bpe, 1 thread |", "|---|---|---|---|---|"]
    for size in args.sizes:
        one = {r["tokenizer"]: r for r in rows if r["size"] == size and r["threads"] == 1}
        many = {r["tokenizer"]: r for r in rows if r["size"] == size and r["threads"] > 1}
        for name, r in one.items():
            md.append(f"| {name} | {size // 1000}k | {r['encode_mb_s']:.1f} | {many[name]['encode_mb_s']:.1f} "
                      f"| {r['encode_mb_s'] / one['spm-bpe']['encode_mb_s']:.2f}x |")
    md.append(f"\nencode_stream of {stream['file']} ({stream['decompressed_mb']:.0f} MB decompressed): "
              f"{stream['encode_mb_s']:.1f} MB/s, peak RSS {stream['peak_rss_mb']:.0f} MB "
              f"({stream['peak_rss_mb_before']:.0f} MB after loading the tokenizer)")
    atomic_write(HERE / "speed.md", "\n".join(md) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    names = list(dict.fromkeys(r["tokenizer"] for r in rows))
    width = 0.8 / (2 * len(args.sizes))
    k = 0
    for size in args.sizes:
        for threads in sorted({r["threads"] for r in rows}):
            vals = [next(r["encode_mb_s"] for r in rows if r["tokenizer"] == n and r["size"] == size
                         and r["threads"] == threads) for n in names]
            ax.bar([i + k * width for i in range(len(names))], vals, width, label=f"{size // 1000}k, {threads} thr")
            k += 1
    ax.set_xticks([i + width * (k - 1) / 2 for i in range(len(names))])
    ax.set_xticklabels(names, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("encode MB/s")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(HERE / "speed.png", dpi=110)
    print("\n".join(md))


if __name__ == "__main__":
    main()
