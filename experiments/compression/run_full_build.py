"""Issue 12: one full build on the whole default corpus, its time and peak memory.

Runs ``hypertok build --vocab-size 128000`` with no ``--corpus`` (the default corpus: the
five modern train shards, read from .xz, plus ruslit/train.txt) in a child process under
``/usr/bin/time -v``, then measures the result on both dev texts beside an HF byte-level
BPE of the same size trained on the same default corpus (the registry's cached
``hf-bpe``; its training time is recorded too). Writes ``full_build.json``.

    python experiments/compression/run_full_build.py          # build, measure, write, plot
    python experiments/compression/run_full_build.py --plot   # only redraw build_cost.png

``build_cost.png`` plots build time and peak RSS against corpus size: this full build, the
23 M-character builds of ``run_generalise.py`` (``generalise/summary.json``) and its builds on
the whole corpus (``generalise-full/summary.json``, where present).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
SIZE = 128000
OUT = Path.home() / ".cache" / "hypertok" / "i12" / f"default-{SIZE}"
CORPORA = ROOT.parent / "shared" / "corpora"
TEXTS = [CORPORA / "modern" / "ru-modern-dev.txt.xz", CORPORA / "ruslit" / "dev.txt"]


def plot() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    full = json.loads((HERE / "full_build.json").read_text(encoding="utf-8"))["build"]
    summary = json.loads((HERE / "generalise" / "summary.json").read_text(encoding="utf-8"))
    mix_chars = summary["corpus"]["chars"]
    pts = [(name, mix_chars / 1e6, b["seconds"], b["peak_rss_mb"]) for name, b in sorted(summary["builds"].items())]
    pts.append((f"default-{SIZE} (whole corpus)", full["corpus"]["chars"] / 1e6, full["wall_seconds"],
                full["peak_rss_mb"]))
    whole = HERE / "generalise-full" / "summary.json"  # run_generalise.py --corpus full: the same corpus
    if whole.exists():
        for name, b in sorted(json.loads(whole.read_text(encoding="utf-8"))["builds"].items()):
            pts.append((f"{name} (whole corpus)", full["corpus"]["chars"] / 1e6, b["seconds"], b["peak_rss_mb"]))
    pts.sort(key=lambda p: (p[1], p[2]))  # by corpus, then by time
    whole_chars = full["corpus"]["chars"] / 1e6
    colors = ["tab:orange" if chars == whole_chars else "tab:blue" for _, chars, _, _ in pts]
    names = [name.replace(" (whole corpus)", "") for name, _, _, _ in pts]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 0.28 * len(pts) + 1.6), sharey=True)
    for ax, values, label in ((a, [p[2] / 60 for p in pts], "build wall time, min (2 shared cores)"),
                              (b, [p[3] / 1024 for p in pts], "peak RSS, GB")):
        ax.barh(range(len(pts)), values, color=colors)
        for y, v in enumerate(values):
            ax.text(v, y, f" {v:.1f}", va="center", fontsize=7)
        ax.set_xlabel(label)
        ax.set_xlim(0, 1.15 * max(values))
    a.set_yticks(range(len(pts)))
    a.set_yticklabels(names, fontsize=7)
    a.invert_yaxis()
    from matplotlib.patches import Patch

    b.legend(handles=[Patch(color="tab:blue", label=f"{mix_chars / 1e6:.1f} M-character mix"),
                      Patch(color="tab:orange", label=f"whole default corpus, {whole_chars:.1f} M characters")],
             loc="lower right", fontsize=7)
    fig.suptitle("hypertok build: time and peak memory against corpus size")
    fig.tight_layout()
    fig.savefig(HERE / "build_cost.png", dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plot", action="store_true", help="only redraw build_cost.png from full_build.json")
    if ap.parse_args().plot:
        return plot()
    from hypertok.text import default_corpus
    from hypertok.files import atomic_write, library_versions
    from hypertok.text import read_text
    from hypertok.lab.compare import Text, measure
    from hypertok.registry import HyperTokTokenizer, trained

    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "hypertok.cli", "build", "--vocab-size", str(SIZE),
           "--out", str(OUT), "--force"]
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    if p.returncode:
        raise SystemExit(p.stderr[-3000:])
    wall = time.time() - t0
    field = lambda name: re.search(rf"{name}: ([\d.:]+)", p.stderr).group(1)  # noqa: E731
    cfg = json.loads((OUT / "config.json").read_text(encoding="utf-8"))
    build = {"command": "hypertok build --vocab-size 128000 --out DIR  (no --corpus: the default corpus)",
             "wall_seconds": round(wall, 1), "user_seconds": float(field("User time \\(seconds\\)")),
             "system_seconds": float(field("System time \\(seconds\\)")),
             "peak_rss_mb": round(int(field("Maximum resident set size \\(kbytes\\)")) / 1024),
             "corpus": cfg["corpus"], "kinds": cfg["kinds"], "build": cfg["build"], "cpus": os.cpu_count()}
    print(json.dumps(build, indent=1), flush=True)
    t0 = time.time()
    bpe = trained("hf-bpe", default_corpus(), SIZE)
    bpe_seconds = bpe.info.get("train_seconds", round(time.time() - t0, 1))
    rows = []
    for path in TEXTS:
        t = Text(str(path), read_text(path)).prepare(1.0)
        for sub in (HyperTokTokenizer.from_dir(OUT, f"hypertok-default-{SIZE}"), bpe):
            m = measure(sub, t, repeats=3)
            rows.append({"text": path.name, "tokenizer": sub.name, **{k: m[k] for k in (
                "tokens", "chars_per_token", "fallback_share", "fallback_share_wide", "continued_words",
                "round_trip", "encode_mb_s")}})
    for path in TEXTS:
        a, b = [r for r in rows if r["text"] == path.name]
        a["fewer_tokens_than_hf_bpe"] = 1 - a["tokens"] / b["tokens"]
    result = {"what": "a full build on the whole default corpus, measured on both dev texts beside HF BPE "
                      "trained on the same corpus", "build": build, "hf_bpe_train_seconds": bpe_seconds,
              "rows": rows, "versions": library_versions(["tokenizers"])}
    atomic_write(HERE / "full_build.json", json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    for r in rows:
        print(r)
    plot()


if __name__ == "__main__":
    main()
