"""Issue 12: does HyperTok win on text it was not fitted to? One `hypertok compare` run.

Every tokenizer is trained on the same corpus, the fixed mixed sample of ``make_mix.py``
(half ruslit/train.txt, half the modern train shards, 23 M characters, small enough for the
many variants below; ``--corpus full`` runs a few of them on the whole corpus), at 64k and 128k:

- HyperTok ``concept``, new builder (``backbone=bpe``: a BPE backbone trained on the whole
  corpus whose pieces compete with the entries on measured use) and the builder of issues
  2-11 (``backbone=tail``: a Unigram fallback on the uncovered tail, 18% of the budget);
  ``backbone=superbpe``: the lab's SuperBPE at the full budget as the backbone, pruned on the
  default 20 MB sample (``superbpe``) and on the whole corpus (``superbpe-s40``, 40 MB), with
  the BPE backbone on the whole corpus beside it (``bpe-s40``) to tell backbone from sample;
- HyperTok scored on held-out lines (``--holdout 0.5``): ``superbpe-heldout`` counts the
  candidates on half the lines and prunes on the other half; ``superbpe-s40-crossfit`` and
  ``bpe-crossfit`` (``--crossfit``) count both halves and score each half's candidates on the
  other half (beside ``superbpe-s40`` and the default ``bpe``, their in-sample twins);
- HF byte-level BPE, HF Unigram, SentencePiece BPE and Unigram, and SuperBPE (the
  registry's ``trained`` baselines, cached).

Measured with :func:`hypertok.lab.compare.compare` (the code of ``hypertok compare``) on
both dev texts, the modern dev shard (read from .xz) and ruslit/dev.txt, in one run.
Writes ``generalise/`` (compare's results.json/.csv/.md and plots) and, from it,
``generalise/summary.json``, ``summary.md`` and ``generalise.png``: HyperTok against the
best baseline per text and size, as chars/token ratio and as fewer tokens, with the
fallback share, the round trip and the identity of ``tokenizer.json`` ids.

    python experiments/compression/make_mix.py           # once: the training sample
    python experiments/compression/run_generalise.py     # builds (cached), baselines (cached), compare
    python experiments/compression/run_generalise.py --report   # summary and plot only

``--corpus full`` does the same on the whole default corpus (the five modern train shards,
read from .xz, and ruslit/train.txt: 175 M characters), the corpus ``hypertok build`` reads
without ``--corpus``: the builds pass no ``--corpus``, the baselines train on
``hypertok compare --train default``'s files, and it writes ``generalise-full/`` and
``generalise-full.png``. It takes about 2 hours on 2 cores (the trained baselines take
under 5 minutes each, the builds 4-11), and runs the variants ``bpe``, ``bpe-crossfit``,
``superbpe-s40-crossfit`` and ``superbpe-s160-crossfit`` (pruned on 160 MB, half the whole
corpus) unless ``--variants`` says otherwise:

    python experiments/compression/run_generalise.py --corpus full
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))

CORPORA = ROOT.parent / "shared" / "corpora"
MIX = json.loads((HERE / "mix.json").read_text(encoding="utf-8"))
TEXTS = [CORPORA / "modern" / "ru-modern-dev.txt.xz", CORPORA / "ruslit" / "dev.txt"]
VARIANTS = {  # name -> build flags
    "bpe": ["--mode", "concept"],  # the defaults since issue 12: backbone bpe, share 1.0, 20 MB sample
    "superbpe": ["--mode", "concept", "--backbone", "superbpe"],  # SuperBPE's pieces as the backbone
    "superbpe-s40": ["--mode", "concept", "--backbone", "superbpe", "--sample-mb", "40"],  # pruned on the whole corpus
    "bpe-s40": ["--mode", "concept", "--sample-mb", "40"],  # the same sample with the BPE backbone
    "tail": ["--mode", "concept", "--backbone", "tail", "--fallback-share", "0.18", "--sample-mb", "4"],  # as before
    # held-out scoring: candidates counted on half the lines, pruned on the other half (20 MB of it)
    "superbpe-heldout": ["--mode", "concept", "--backbone", "superbpe", "--holdout", "0.5"],
    # cross-fitted: each half counted, each half's candidates pruned on the other half (20 MB each)
    "superbpe-s40-crossfit": ["--mode", "concept", "--backbone", "superbpe", "--sample-mb", "40", "--holdout", "0.5",
                              "--crossfit"],
    "bpe-crossfit": ["--mode", "concept", "--holdout", "0.5", "--crossfit"],  # the default, cross-fitted (10 MB + 10 MB)
    # the whole default corpus only: the pruning sample grown to half of its 308 MB (80 MB + 80 MB)
    "superbpe-s160-crossfit": ["--mode", "concept", "--backbone", "superbpe", "--sample-mb", "160", "--holdout", "0.5",
                               "--crossfit"],
}
BASELINES = "hf-bpe,hf-unigram,spm-bpe,spm-unigram,superbpe"
BARS = {"ru-modern-dev.txt.xz": 1.10, "dev.txt": 1.20}  # issue 12: chars/token over the best baseline
FULL_VARIANTS = "bpe,bpe-crossfit,superbpe-s40-crossfit,superbpe-s160-crossfit"
MIX_VARIANTS = ",".join(v for v in VARIANTS if v != "superbpe-s160-crossfit")  # the mix is 40 MB in all


class Setup:
    """Where one comparison reads its corpus and writes its results: ``mix`` or ``full``."""

    def __init__(self, corpus: str):
        cache = Path.home() / ".cache" / "hypertok" / "i12"
        if corpus == "mix":
            self.work, self.out, self.png = cache, HERE / "generalise", HERE / "generalise.png"
            self.train = [MIX["path"]]
            self.build_args = ["--corpus", MIX["path"]]
            self.record = MIX
            self.title = "All trained on the same 23 M-character ruslit + modern sample"
        else:
            from hypertok.text import default_corpus

            self.work, self.out, self.png = cache / "full", HERE / "generalise-full", HERE / "generalise-full.png"
            self.train = [str(p) for p in default_corpus()]
            self.build_args = []  # hypertok build's default corpus
            self.record = {"files": [Path(p).name for p in self.train], "path": "the default corpus"}
            self.title = "All trained on the whole default corpus (5 modern shards + ruslit/train.txt)"


def build(setup: Setup, variant: str, size: int) -> dict:
    """Build one HyperTok directory in a child process (cached); return its time and peak RSS."""
    out = setup.work / f"{variant}-{size}"
    log = setup.work / f"{variant}-{size}.build.json"
    if (out / "config.json").exists() and log.exists():
        return json.loads(log.read_text())
    setup.work.mkdir(parents=True, exist_ok=True)
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "hypertok.cli", "build", *setup.build_args,
           "--vocab-size", str(size), "--out", str(out), "--force", *VARIANTS[variant]]
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    if p.returncode:
        raise SystemExit(f"build {variant}-{size} failed:\n{p.stderr[-3000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1))
    rec = {"dir": str(out), "seconds": round(time.time() - t0, 1), "peak_rss_mb": round(rss / 1024),
           "command": " ".join(cmd[2:])}
    log.write_text(json.dumps(rec, indent=1))
    return rec


def json_ids_identical(directory: str, texts: list[Path]) -> bool:
    """Whether tokenizer.json through `tokenizers` gives HyperTok.encode's ids on every line."""
    from tokenizers import Tokenizer

    from hypertok import HyperTok
    from hypertok.text import read_text

    tok = HyperTok.load(directory)
    hf = Tokenizer.from_file(str(Path(directory) / "tokenizer.json"))
    for path in texts:
        lines = read_text(path).split("\n")
        ours = tok.encode_batch(lines)
        theirs = [e.ids for e in hf.encode_batch(lines, add_special_tokens=False)]
        if ours != theirs:
            return False
    return True


def sizes_of(result: dict) -> list[int]:
    """The vocabulary sizes of the HyperTok rows of a compare result."""
    return sorted({r["vocab_size"] for r in result["rows"] if r.get("status") == "ok" and r["family"] == "hypertok"})


def summarise(setup: Setup, result: dict, builds: dict) -> dict:
    rows = [r for r in result["rows"] if r.get("status") == "ok"]
    out = {"corpus": setup.record, "builds": builds, "points": []}
    for text in [str(t) for t in TEXTS]:
        for size in sizes_of(result):
            here = [r for r in rows if r["text"] == text and r["vocab_size"] == size]
            base = [r for r in here if r["family"] != "hypertok"]
            if not base:
                continue
            best = max(base, key=lambda r: r["chars_per_token"])
            best_classic = max((r for r in base if not r["tokenizer"].startswith("superbpe")),
                               key=lambda r: r["chars_per_token"])
            for r in here:
                if r["family"] != "hypertok":
                    continue
                variant = Path(r["info"]["dir"]).name.rsplit("-", 1)[0]
                out["points"].append({
                    "text": Path(text).name, "size": size, "variant": variant, "tokenizer": r["tokenizer"],
                    "chars_per_token": r["chars_per_token"], "tokens": r["tokens"],
                    "best_baseline": best["tokenizer"], "best_chars_per_token": best["chars_per_token"],
                    "ratio_vs_best": r["chars_per_token"] / best["chars_per_token"],
                    "fewer_tokens_vs_best": 1 - r["tokens"] / best["tokens"],
                    "best_bpe_unigram": best_classic["tokenizer"],
                    "ratio_vs_best_bpe_unigram": r["chars_per_token"] / best_classic["chars_per_token"],
                    "fewer_tokens_vs_best_bpe_unigram": 1 - r["tokens"] / best_classic["tokens"],
                    "fallback_share": r["fallback_share"], "round_trip": r["round_trip"],
                    "encode_mb_s": r["encode_mb_s"],
                    "json_ids_identical": builds.get(f"{variant}-{size}", {}).get("json_ids_identical"),
                })
    return out


def markdown(summary: dict, result: dict) -> str:
    lines = ["| text | size | HyperTok | chars/token | best baseline | its chars/token | ratio | fewer tokens "
             "| vs best BPE/Unigram | fallback share | round trip | tokenizer.json ids |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in summary["points"]:
        lines.append(
            f"| {p['text']} | {p['size'] // 1000}k | {p['variant']} | {p['chars_per_token']:.2f} | {p['best_baseline']} "
            f"| {p['best_chars_per_token']:.2f} | {p['ratio_vs_best']:.3f}x | {100 * p['fewer_tokens_vs_best']:.1f}% "
            f"| {p['ratio_vs_best_bpe_unigram']:.3f}x ({p['best_bpe_unigram']}) | {100 * p['fallback_share']:.1f}% "
            f"| {'yes' if p['round_trip'] else 'NO'} | {'identical' if p['json_ids_identical'] else 'DIFFER'} |")
    lines += ["", "All rows, chars/token:", "",
              "| tokenizer | " + " | ".join(Path(t).name for t in TEXTS) + " |", "|---|" + "---|" * len(TEXTS)]
    names = []
    for r in result["rows"]:
        if r.get("status") == "ok" and r["tokenizer"] not in names:
            names.append(r["tokenizer"])
    for n in names:
        vals = []
        for t in TEXTS:
            r = next((r for r in result["rows"] if r["tokenizer"] == n and r["text"] == str(t)), None)
            vals.append(f"{r['chars_per_token']:.2f}" if r and r.get("status") == "ok" else "-")
        lines.append(f"| {n} | " + " | ".join(vals) + " |")
    return "\n".join(lines) + "\n"


def plot(setup: Setup, result: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(TEXTS), figsize=(8 * len(TEXTS), 4.6), sharey=False)
    for ax, text in zip(axes, TEXTS):
        rows = [r for r in result["rows"] if r.get("status") == "ok" and r["text"] == str(text)]
        methods = []
        for r in rows:
            m = re.sub(r"-\d+(:.*)?$", "", r["tokenizer"]) + (":" + r["tokenizer"].split(":")[1] if ":" in r["tokenizer"] else "")
            if r["family"] == "hypertok":
                m = "hypertok-" + Path(r["info"]["dir"]).name.rsplit("-", 1)[0]
            if m not in methods:
                methods.append(m)
        sizes = sizes_of(result)
        width = 0.8 / max(len(sizes), 1)
        for k, size in enumerate(sizes):
            vals = []
            for m in methods:
                v = next((r["chars_per_token"] for r in rows if r["vocab_size"] == size and (
                    ("hypertok-" + Path(r["info"]["dir"]).name.rsplit("-", 1)[0]) == m if r["family"] == "hypertok"
                    else re.sub(r"-\d+$", "", r["tokenizer"]) == m)), 0)
                vals.append(v)
            bars = ax.bar([i + k * width for i in range(len(methods))], vals, width, label=f"{size // 1000}k")
            best = max(r["chars_per_token"] for r in rows if r["vocab_size"] == size and r["family"] != "hypertok")
            ax.axhline(BARS[text.name] * best, color=bars.patches[0].get_facecolor(), ls="--", lw=1,
                       label=f"issue bar at {size // 1000}k: {BARS[text.name]:.2f}x best baseline")
        ax.set_xticks([i + width * (len(sizes) - 1) / 2 for i in range(len(methods))])
        ax.set_xticklabels(methods, rotation=35, ha="right", fontsize=8)
        ax.set_title(text.name)
        ax.set_ylabel("characters per token (higher = fewer tokens)")
        top = max(max(r["chars_per_token"] for r in rows), *(line.get_ydata()[0] for line in ax.get_lines()))
        ax.set_ylim(0, 1.25 * top)  # room for the legend above the bars and the bar lines
        ax.legend(ncol=len(sizes), loc="upper right", fontsize=7)
    fig.suptitle(setup.title)
    fig.tight_layout()
    fig.savefig(setup.png, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--report", action="store_true", help="only rewrite the summary and plot from the results")
    ap.add_argument("--corpus", choices=["mix", "full"], default="mix",
                    help="mix: the 23 M-character sample of make_mix.py; full: the whole default corpus")
    ap.add_argument("--variants", help=f"comma-separated, of {', '.join(VARIANTS)} (default: {MIX_VARIANTS} "
                                       f"for mix; {FULL_VARIANTS} for full)")
    ap.add_argument("--sizes", help="comma-separated vocabulary sizes (default: 64000,128000)")
    ap.add_argument("--baselines", default=BASELINES, help=f"hypertok compare's --baselines (default: {BASELINES})")
    args = ap.parse_args()
    from hypertok.files import atomic_write
    from hypertok.lab.compare import compare

    setup = Setup(args.corpus)
    full = args.corpus == "full"
    variants = (args.variants or (FULL_VARIANTS if full else MIX_VARIANTS)).split(",")
    sizes = [int(x) for x in (args.sizes or "64000,128000").split(",")]
    if args.report:
        result = json.loads((setup.out / "results.json").read_text(encoding="utf-8"))
        builds = json.loads((setup.out / "summary.json").read_text(encoding="utf-8"))["builds"]
    else:
        builds = {}
        for size in sizes:
            for v in variants:
                builds[f"{v}-{size}"] = build(setup, v, size)
                print(f"built {v}-{size}: {builds[f'{v}-{size}']}", flush=True)
        for key, b in builds.items():
            b["json_ids_identical"] = json_ids_identical(b["dir"], TEXTS)
        result = compare([b["dir"] for b in builds.values()], TEXTS, setup.train, args.baselines, setup.out,
                         quiet=not full)  # whole corpus: minutes per baseline, so show them
    summary = summarise(setup, result, builds)
    atomic_write(setup.out / "summary.json", json.dumps(summary, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
    table = markdown(summary, result)
    atomic_write(setup.out / "summary.md", table)
    plot(setup, result)
    print(table)


if __name__ == "__main__":
    main()
