"""Issue 2 figures: HyperTok core on RusLit (build on train.txt, measure on dev.txt).

For each mode (word, morph, concept) and size (32k, 64k, 128k):
- build time and peak memory (RSS) of ``hypertok build`` on train.txt, in a child process;
- characters per token on dev.txt, each line encoded separately so newlines are not
  counted (the protocol of ../shared/REFERENCE.md), and on the whole text;
- encode throughput (MB/s of UTF-8, ``encode_batch`` over dev lines, 1 warm-up + median of
  5 runs) against an HF Unigram of the same size trained on train.txt, in the same run.

Writes experiments/core/results.json and results.md. Builds are cached under --cache,
keyed by mode, size and the builder stamp (``experiments/stamp.py``: a hash of the builder's
source), so a re-run re-measures only.

    python experiments/core/run_core.py                 # everything (long on 2 cores)
    python experiments/core/run_core.py --sizes 32000 --modes word
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
from experiments.stamp import builder_stamp  # noqa: E402

RUSLIT = ROOT.parent / "shared" / "corpora" / "ruslit"
UNIGRAM_REFERENCE = {32000: 4.24, 64000: 4.58, 128000: 4.87}  # ../shared/REFERENCE.md

CHILD = """
import json, resource, sys, time
t = time.perf_counter()
from hypertok import BuildConfig, build
tok = build([sys.argv[1]], sys.argv[2], BuildConfig(vocab_size=int(sys.argv[3]), mode=sys.argv[4]), overwrite=True)
print(json.dumps({"build_seconds": time.perf_counter() - t,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "kinds": tok.kind_counts()}))
"""


def build_cached(train: Path, mode: str, size: int, cache: Path) -> tuple[Path, dict]:
    out = cache / f"hypertok-{mode}-{size}-{builder_stamp()}"
    stats = out.with_suffix(".build.json")
    if not (out / "config.json").exists() or not stats.exists():
        print(f"building {mode} {size} ...", flush=True)
        res = subprocess.run([sys.executable, "-c", CHILD, str(train), str(out), str(size), mode],
                             capture_output=True, text=True, check=True)
        stats.write_text(res.stdout.strip().splitlines()[-1])
    return out, json.loads(stats.read_text())


def throughput(encode_batch, lines: list[str], n_bytes: int, repeats: int = 5) -> float:
    encode_batch(lines)  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        encode_batch(lines)
        times.append(time.perf_counter() - t)
    return n_bytes / statistics.median(times) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", type=Path, default=RUSLIT / "train.txt")
    ap.add_argument("--dev", type=Path, default=RUSLIT / "dev.txt")
    ap.add_argument("--sizes", default="32000,64000,128000")
    ap.add_argument("--modes", default="word,morph,concept")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "hypertok" / "core")
    ap.add_argument("--out", type=Path, default=HERE / "results.json")
    ap.add_argument("--no-determinism", dest="determinism", action="store_false",
                    help="skip the second build that checks byte-identical output")
    args = ap.parse_args()

    from hypertok import HyperTok
    from hypertok.registry import trained

    args.cache.mkdir(parents=True, exist_ok=True)
    dev = args.dev.read_text(encoding="utf-8")
    lines = dev.split("\n")
    line_chars = sum(len(x) for x in lines)
    n_bytes = sum(len(x.encode("utf-8")) for x in lines)
    results = json.loads(args.out.read_text()) if args.out.exists() else {"runs": {}}
    for size in [int(s) for s in args.sizes.split(",")]:
        unigram = trained("hf-unigram", [args.train], size)
        uni_tokens = sum(len(x) for x in unigram.encode_batch(lines))
        for mode in args.modes.split(","):
            path, stats = build_cached(args.train, mode, size, args.cache)
            tok = HyperTok.load(path)
            ids = tok.encode_batch(lines)
            n_tokens = sum(len(x) for x in ids)
            whole = len(tok.encode(dev))
            lossless = tok.decode(tok.encode(dev)) == dev
            ht_mbs = throughput(tok.encode_batch, lines, n_bytes)
            uni_mbs = throughput(unigram.encode_batch, lines, n_bytes)
            row = {
                "mode": mode, "vocab_size": len(tok), "requested_size": size,
                "chars_per_token_lines": line_chars / n_tokens, "chars_per_token_whole": len(dev) / whole,
                "tokens_per_line_protocol": n_tokens, "tokens_whole_text": whole, "lossless_dev": lossless,
                "hf_unigram_chars_per_token_lines": line_chars / uni_tokens,
                "hf_unigram_reference_figure": UNIGRAM_REFERENCE.get(size),
                "encode_mb_s": ht_mbs, "hf_unigram_encode_mb_s": uni_mbs, "encode_speed_ratio": ht_mbs / uni_mbs,
                **stats,
            }
            results["runs"][f"{mode}-{size}"] = row
            print(json.dumps(row), flush=True)
            results["meta"] = {
                "command": "python experiments/core/run_core.py " + " ".join(sys.argv[1:]),
                "train": str(args.train.name), "dev": str(args.dev.name), "dev_chars": len(dev),
                "dev_line_chars": line_chars, "dev_bytes_lines": n_bytes, "cpu_count": os.cpu_count(),
                "python": platform.python_version(), "builder_stamp": builder_stamp(),
                "protocol": "chars_per_token_lines: each dev line encoded separately, newlines not counted "
                            "(as REFERENCE.md); chars_per_token_whole: the whole text in one call",
            }
            tmp = args.out.with_suffix(".tmp")
            tmp.write_text(json.dumps(results, indent=1, sort_keys=True, ensure_ascii=False))
            os.replace(tmp, args.out)
    if args.determinism:
        results["determinism"] = determinism(args.train, args.modes.split(",")[0], int(args.sizes.split(",")[0]), args.cache)
        print(json.dumps(results["determinism"]), flush=True)
        args.out.write_text(json.dumps(results, indent=1, sort_keys=True, ensure_ascii=False))
    write_table(results, args.out.with_suffix(".md"))


def determinism(train: Path, mode: str, size: int, cache: Path) -> dict:
    """Build the same vocabulary a second time and compare the files byte for byte."""
    first, _ = build_cached(train, mode, size, cache)
    second = cache / f"determinism-{mode}-{size}"
    subprocess.run([sys.executable, "-c", CHILD, str(train), str(second), str(size), mode], check=True,
                   capture_output=True)
    files = {}
    for name in ("vocab.jsonl", "tokenizer.json", "config.json"):
        a, b = (hashlib.sha256((d / name).read_bytes()).hexdigest() for d in (first, second))
        files[name] = {"first": a, "second": b, "identical": a == b}
    return {"mode": mode, "size": size, "files": files, "identical": all(f["identical"] for f in files.values())}


def write_table(results: dict, path: Path) -> None:
    rows = []
    if "determinism" in results:
        d = results["determinism"]
        rows += [f"Second build of {d['mode']} {d['size']} byte-identical: {d['identical']}", ""]
    rows += ["| mode | size | chars/token (lines) | HF Unigram same run | REFERENCE Unigram | chars/token (whole) "
            "| encode MB/s | Unigram MB/s | ratio | build s | peak RSS MB |", "|" + "---|" * 11]
    for key, r in sorted(results["runs"].items(), key=lambda kv: (kv[1]["requested_size"], kv[1]["mode"])):
        rows.append(f"| {r['mode']} | {r['requested_size']} | {r['chars_per_token_lines']:.3f} | "
                    f"{r['hf_unigram_chars_per_token_lines']:.3f} | {r['hf_unigram_reference_figure']} | "
                    f"{r['chars_per_token_whole']:.3f} | {r['encode_mb_s']:.2f} | {r['hf_unigram_encode_mb_s']:.2f} | "
                    f"{r['encode_speed_ratio']:.2f} | {r['build_seconds']:.0f} | {r['peak_rss_mb']:.0f} |")
    path.write_text("\n".join(rows) + "\n\nRegenerate: `" + results["meta"]["command"] + "`\n", encoding="utf-8")


if __name__ == "__main__":
    main()
