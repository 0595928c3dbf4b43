"""Issue 12: encode speed, HyperTok against SentencePiece and HF tokenizers, in one run.

Each tokenizer encodes the same lines (the first ``--mb`` MB of lines of each dev text)
with 1 thread and with every core. The tokenizers of one child process take turns (one
timed run each, ``--repeats`` rounds after a warm-up round), so a change of load on the
shared machine hits them alike; the figure is the median. Every thread count runs in a
fresh child process, because the Rust thread pool of ``tokenizers`` reads
``RAYON_NUM_THREADS`` once. Measured, all at the same vocabulary size and trained on the
same corpus (``run_generalise.py``):

- ``hypertok``: ``HyperTok.encode_batch`` (the Python API: SentencePiece's Viterbi where it
  gives tokenizer.json's ids, ``hypertok.core.engine``);
- ``hypertok, tokenizers engine``: the same with ``engine="tokenizers"``, the API before
  issue 12's speed work;
- ``hypertok tokenizer.json``: the exported file through ``tokenizers.Tokenizer.encode_batch_fast``;
- ``spm-bpe``, ``spm-unigram``: SentencePiece ``encode`` (``num_threads``);
- ``hf-bpe``, ``superbpe``: ``tokenizers`` ``encode_batch_fast``;
- two diagnostics, *not* HyperTok's ids: the tokenizer.json model behind a word
  pre-tokenizer (`` ?[^ \\n]+``), with tokenizers' default cache of 10,000 words and with
  an unbounded one (every word of the timed lines cached by the warm-up). They bound what
  any pre-tokenizer could give the ``tokenizer.json`` path.

Then, per size, on the whole of both dev texts: characters per token of the HyperTok
directory (and of ``--before``, a build of the same vocabulary by the builder before the
score grid), the round trip, and whether ``HyperTok.encode`` and ``tokenizer.json`` give
the same ids on every line. Last, ``HyperTok.encode_stream`` on one whole modern train shard
read from .xz: MB/s and the peak RSS of its process, to show that memory does not grow
with the file. The machine (CPU model, cores, load before and after) and the command are
recorded in ``speed.json``.

    python experiments/compression/run_speed.py            # writes speed.json, speed.md, speed.png
    python experiments/compression/run_speed.py --report   # table and plot again from speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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
WORD_SPLIT = r" ?[^ \n]+| +|\n"
DIAGNOSTIC = ("tokenizer.json, word pre-tokens (not exact)", "tokenizer.json, word pre-tokens, all cached (not exact)")


def lines_of(mb: float) -> list[str]:
    from hypertok.text import read_text

    out = []
    for path in TEXTS:
        total = 0
        for line in read_text(path).split("\n"):
            if total > mb * 1e6:
                break
            out.append(line)
            total += len(line.encode("utf-8")) + 1
    return out


def subjects(directory: Path, size: int, threads: int):
    from tokenizers import Regex, Tokenizer, pre_tokenizers

    from hypertok import HyperTok
    from hypertok.registry import trained

    tok = HyperTok.load(directory)
    old = HyperTok.load(directory, engine="tokenizers")
    hf = Tokenizer.from_file(str(directory / "tokenizer.json"))
    yield "hypertok", lambda xs: tok.encode_batch(xs, num_threads=threads)
    yield "hypertok, tokenizers engine", lambda xs: old.encode_batch(xs, num_threads=threads)
    yield "hypertok tokenizer.json", lambda xs: hf.encode_batch_fast(xs, add_special_tokens=False)
    for kind in ("spm-bpe", "spm-unigram"):
        sp = trained(kind, [MIX["path"]], size).sp
        yield kind, lambda xs, sp=sp: sp.encode(xs, num_threads=threads)
    for kind in ("hf-bpe", "superbpe"):
        tk = trained(kind, [MIX["path"]], size).tk
        yield kind, lambda xs, tk=tk: tk.encode_batch_fast(xs, add_special_tokens=False)
    for name, cache in zip(DIAGNOSTIC, (None, 1 << 24)):
        words = Tokenizer.from_file(str(directory / "tokenizer.json"))
        words.pre_tokenizer = pre_tokenizers.Split(Regex(WORD_SPLIT), behavior="isolated")
        if cache:
            words.model._resize_cache(cache)
        yield name, lambda xs, w=words: w.encode_batch_fast(xs, add_special_tokens=False)


def child(directory: Path, size: int, threads: int, mb: float, repeats: int) -> None:
    lines = lines_of(mb)
    nbytes = sum(len(x.encode("utf-8")) for x in lines)
    subs = list(subjects(directory, size, threads))
    for _, fn in subs:
        fn(lines)  # warm-up
    wall: dict[str, list[float]] = {name: [] for name, _ in subs}
    cpu: dict[str, list[float]] = {name: [] for name, _ in subs}
    for _ in range(repeats):
        for name, fn in subs:
            c0, t0 = time.process_time(), time.perf_counter()
            fn(lines)
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    rows = [{"tokenizer": name, "size": size, "threads": threads, "mb": nbytes / 1e6,
             "encode_mb_s": nbytes / 1e6 / statistics.median(wall[name]),
             "encode_mb_per_cpu_s": nbytes / 1e6 / statistics.median(cpu[name]),
             "runs_s": wall[name], "cpu_s": cpu[name]} for name, _ in subs]
    print(json.dumps(rows))


def compression_child(directory: Path, before: Path | None) -> None:
    """chars/token on the whole of both dev texts, round trip, tokenizer.json ids = HyperTok ids;
    with ``before``, the same for that build and how many lines its ids differ on."""
    from tokenizers import Tokenizer

    from hypertok import HyperTok
    from hypertok.text import read_text

    builds = {"new": directory, "before": before} if before else {"new": directory}
    toks = {k: HyperTok.load(d) for k, d in builds.items()}
    out: dict = {k: {"dir": str(d), "engine": "sentencepiece" if toks[k]._engine() else "tokenizers", "texts": {}}
                 for k, d in builds.items()}
    for path in TEXTS:
        text = read_text(path)
        lines = text.splitlines(keepends=True)
        ids = {}
        for k, d in builds.items():
            ids[k] = toks[k].encode_batch(lines)
            hf = Tokenizer.from_file(str(d / "tokenizer.json"))
            hf_ids = [e.ids for e in hf.encode_batch_fast(lines, add_special_tokens=False)]
            n = sum(map(len, ids[k]))
            out[k]["texts"][path.name] = {
                "chars": len(text), "lines": len(lines), "tokens": n, "chars_per_token": len(text) / n,
                "round_trip": toks[k].decode([i for x in ids[k] for i in x]) == text,
                "tokenizer_json_ids_identical": ids[k] == hf_ids}
        if before:
            out["new"]["texts"][path.name]["lines_with_other_ids_than_before"] = sum(
                a != b for a, b in zip(ids["new"], ids["before"]))
    print(json.dumps(out))


def stream_child(directory: Path) -> None:
    from hypertok import HyperTok

    tok = HyperTok.load(directory)
    tok.encode("прогрев")  # builds the engine before the clock starts
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    n_tokens = 0
    for ids in tok.encode_stream(SHARD):
        n_tokens += len(ids)
    secs = time.perf_counter() - t0
    from hypertok.text import open_bytes

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


def machine() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpu": model or platform.processor(), "cores": os.cpu_count(), "memory_gib": round(mem, 1),
            "platform": platform.platform(), "python": platform.python_version(),
            "load_before": os.getloadavg()}


def report(result: dict, sizes: list[int]) -> list[str]:
    rows = result["rows"]
    threads = sorted({r["threads"] for r in rows})
    head = " | ".join(f"{t} thread{'s' if t > 1 else ''} MB/s" for t in threads)
    md = [f"| tokenizer | size | {head} | 1 thread, MB per CPU second | vs spm-bpe, 1 thread (wall / CPU) |",
          "|---|---|" + "---|" * (len(threads) + 2)]
    for size in sizes:
        by = {(r["tokenizer"], r["threads"]): r for r in rows if r["size"] == size}
        names = list(dict.fromkeys(r["tokenizer"] for r in rows if r["size"] == size))
        spm = by["spm-bpe", 1]
        for name in names:
            speeds = " | ".join(f"{by[name, t]['encode_mb_s']:.1f}" for t in threads)
            one = by[name, 1]
            md.append(f"| {name} | {size // 1000}k | {speeds} | {one['encode_mb_per_cpu_s']:.1f} | "
                      f"{one['encode_mb_s'] / spm['encode_mb_s']:.2f}x / "
                      f"{one['encode_mb_per_cpu_s'] / spm['encode_mb_per_cpu_s']:.2f}x |")
    md += ["", "| HyperTok build | size | text | tokens | chars/token | round trip | tokenizer.json ids identical "
               "| engine | lines with other ids than before |", "|---|---|---|---|---|---|---|---|---|"]
    for c in result["compression"]:
        for name, t in c["texts"].items():
            other = t.get("lines_with_other_ids_than_before")
            other = "" if other is None else f"{other} of {t['lines']}"
            md.append(f"| {c['which']} | {c['size'] // 1000}k | {name} | {t['tokens']} | {t['chars_per_token']:.4f} | "
                      f"{'yes' if t['round_trip'] else 'NO'} | {'yes' if t['tokenizer_json_ids_identical'] else 'NO'} "
                      f"| {c['engine']} | {other} |")
    s = result["stream"]
    md.append(f"\nencode_stream of {s['file']} ({s['decompressed_mb']:.0f} MB decompressed, {s['threads']} threads): "
              f"{s['encode_mb_s']:.1f} MB/s, peak RSS {s['peak_rss_mb']:.0f} MB "
              f"({s['peak_rss_mb_before']:.0f} MB after loading the tokenizer)")
    m = result["machine"]
    md.append(f"\n{m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; load average "
              f"{m['load_before'][0]:.1f} before, {m['load_after'][0]:.1f} after (the machine is shared). "
              f"Command: `{result['command']}`")
    return md


def plot(result: dict, sizes: list[int]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    names = list(dict.fromkeys(r["tokenizer"] for r in rows))
    groups = [(size, t) for size in sizes for t in sorted({r["threads"] for r in rows})]
    width = 0.8 / len(groups)
    for k, (size, threads) in enumerate(groups):
        vals = [next(r["encode_mb_s"] for r in rows if r["tokenizer"] == n and r["size"] == size
                     and r["threads"] == threads) for n in names]
        ax.bar([i + k * width for i in range(len(names))], vals, width, label=f"{size // 1000}k, {threads} thr")
    spm = [r["encode_mb_s"] for r in rows if r["tokenizer"] == "spm-bpe" and r["threads"] == 1]
    ax.axhline(min(spm), color="grey", lw=0.8, ls="--", label="spm-bpe, 1 thread (the lower of its sizes)")
    ax.set_xticks([i + width * (len(groups) - 1) / 2 for i in range(len(names))])
    ax.set_xticklabels([n.replace(", ", ",\n", 1) for n in names], rotation=25, ha="right", fontsize=7)
    ax.set_ylabel("encode MB/s (median)")
    ax.set_title("Encode speed, one run: python experiments/compression/run_speed.py", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(HERE / "speed.png", dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64000, 128000])
    ap.add_argument("--hypertok", default=str(WORK / "bpe-{size}"),
                    help="HyperTok directory per size, {size} filled in (default: run_generalise.py's bpe builds)")
    ap.add_argument("--before", help="optional: the same builds by the builder before the score grid, {size} "
                                     "filled in; their chars/token are recorded beside the new ones")
    ap.add_argument("--threads", type=int, nargs="+", default=sorted({1, os.cpu_count() or 1}))
    ap.add_argument("--mb", type=float, default=1.0, help="MB of lines from each dev text")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--report", action="store_true", help="only redraw speed.md and speed.png from speed.json")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--compression-child", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--stream-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        directory, size, threads = args.child
        return child(Path(directory), int(size), int(threads), args.mb, args.repeats)
    if args.compression_child:
        dirs = [Path(d) for d in args.compression_child]
        return compression_child(dirs[0], dirs[1] if len(dirs) > 1 else None)
    if args.stream_child:
        return stream_child(Path(args.stream_child))
    from hypertok.files import atomic_write, library_versions

    if args.report:
        result = json.loads((HERE / "speed.json").read_text(encoding="utf-8"))
        sizes = list(dict.fromkeys(r["size"] for r in result["rows"]))
        md = report(result, sizes)
        atomic_write(HERE / "speed.md", "\n".join(md) + "\n")
        plot(result, sizes)
        return print("\n".join(md))
    command = " ".join(["python", str(Path(__file__).relative_to(ROOT)), *sys.argv[1:]])
    result: dict = {"what": "encode MB/s, median of rounds after a warm-up round; UTF-8 MB of the lines",
                    "command": command, "machine": machine(), "texts": [p.name for p in TEXTS]}
    rows, compression = [], []
    for size in args.sizes:
        directory = args.hypertok.format(size=size)
        for threads in args.threads:
            rows += json.loads(run_child(["--child", directory, str(size), str(threads), "--mb", str(args.mb),
                                          "--repeats", str(args.repeats)], threads))
            print(f"measured {size} with {threads} thread(s)", flush=True)
        dirs = [directory] + ([args.before.format(size=size)] if args.before else [])
        c = json.loads(run_child(["--compression-child", *dirs], None))
        compression += [{"which": which, "size": size, **c[which]} for which in c]
    result["rows"], result["compression"] = rows, compression
    result["stream"] = json.loads(run_child(["--stream-child", args.hypertok.format(size=args.sizes[0])], None))
    result["machine"]["load_after"] = os.getloadavg()
    result["versions"] = library_versions(["tokenizers", "sentencepiece"])
    atomic_write(HERE / "speed.json", json.dumps(result, indent=1) + "\n")
    md = report(result, args.sizes)
    atomic_write(HERE / "speed.md", "\n".join(md) + "\n")
    plot(result, args.sizes)
    print("\n".join(md))


if __name__ == "__main__":
    main()
