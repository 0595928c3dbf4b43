"""Reports of ``hypertok compare``: the Markdown table, the CSV and the PNG plots.

What it does: turns the results dictionary of :func:`hypertok.lab.compare.compare` into
``results.json``, ``results.csv``, ``results.md`` and one PNG per text (chars/token and
tokens/word bars, and the compressor bars). Files are written atomically.

What it does not do: no measuring. matplotlib is imported only when plotting, and a
machine without it gets no plots rather than an error. Split out of ``compare.py`` by
issue 9.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from ..files import atomic_write

COLUMNS = [
    ("tokenizer", "tokenizer"), ("vocab_size", "vocab"), ("tokens", "tokens"), ("chars_per_token", "chars/token"),
    ("bytes_per_token", "bytes/token"), ("fertility", "tokens/word"), ("continued_words", "continued words"),
    ("renyi_efficiency", "Rényi eff. α=2.5"), ("vocab_used", "vocab used"), ("fallback_share", "fallback"),
    ("round_trip", "round-trip"), ("encode_mb_s", "encode MB/s"), ("decode_mb_s", "decode MB/s"),
]


def _fmt(key: str, v) -> str:
    if v is None:
        return "n/a"
    if key == "round_trip":
        return "yes" if v else "NO"
    if key in ("continued_words", "vocab_used", "fallback_share"):
        return f"{100 * v:.1f}%"
    if isinstance(v, float):
        return f"{v:.3f}" if key in ("renyi_efficiency",) else f"{v:.2f}"
    if isinstance(v, int) and key in ("tokens", "vocab_size", "bytes"):
        return f"{v:,}".replace(",", " ")
    return str(v)


def markdown(result: dict) -> str:
    """The Markdown report: one tokenizer table and one compressor table per text."""
    buf = io.StringIO()
    w = buf.write
    for info in result["texts"]:
        path = info["path"]
        w(f"### {path}\n\n")
        if info["status"] != "ok":
            w(f"**error:** {info['reason']}\n\n")
            continue
        w(f"{info['chars']:,} characters, {info['bytes']:,} UTF-8 bytes, {info['words']:,} words, "
          f"{info['lines']:,} lines.\n\n".replace(",", " "))
        w("| " + " | ".join(h for _, h in COLUMNS) + " |\n")
        w("|" + "---|" * len(COLUMNS) + "\n")
        for r in result["rows"]:
            if r["text"] != path:
                continue
            if r["status"] != "ok":
                w(f"| {r['tokenizer']} | {_fmt('vocab_size', r.get('vocab_size'))} | **{r['status']}**: "
                  f"{r['reason'].replace('|', '/')} |" + " |" * (len(COLUMNS) - 3) + "\n")
                continue
            w("| " + " | ".join(_fmt(k, r.get(k)) for k, _ in COLUMNS) + " |\n")
        comp = [c for c in result["compression"] if c["text"] == path]
        if comp:
            w("\n| compressor / view | bytes | ratio (raw/size) | bits per char | lossless |\n|---|---|---|---|---|\n")
            for c in comp:
                if c["status"] != "ok":
                    w(f"| {c['method']} | **{c['status']}**: {c['reason']} | | | |\n")
                else:
                    w(f"| {c['method']} | {_fmt('bytes', c['bytes'])} | {c['ratio']:.2f} | {c['bits_per_char']:.3f} | "
                      f"{'yes' if c['lossless'] else 'NO'} |\n")
        w("\n")
    errors = [r for r in result["rows"] if r["text"] == "*"]
    for r in errors:
        w(f"- error: {r['reason']}\n")
    w(f"_Method: {result['method']} Speed: {result['speed']}. "
      f"Fallback: HyperTok = tokens of kinds fallback/char/byte; SentencePiece = byte pieces; HF Unigram = <unk>; "
      f"byte-level BPE, Tekken and bytes have none (n/a). Compare run took {result['seconds']} s._\n")
    return buf.getvalue()


CSV_FIELDS = ["text", "tokenizer", "family", "vocab_size", "status", "reason"] + [k for k, _ in COLUMNS[2:]] + [
    "continued_words_measured", "unaligned_lines", "round_trip_bad_lines", "fallback_rule"]


RESULT_FILES = ("results.json", "results.csv", "results.md")


def _plot_stem(k: int, path) -> str:
    return f"{k}-{Path(path).stem}"


def output_names(texts) -> list[str]:
    """Every file :func:`write_outputs` may write for ``texts`` (in order): the results and each
    text's plots. ``compare --out`` is checked against them before any work (issue 24).

    >>> output_names(["dev.txt"])
    ['results.json', 'results.csv', 'results.md', '0-dev-tokenizers.png', '0-dev-compressors.png']
    """
    names = list(RESULT_FILES)
    for k, path in enumerate(texts):
        names += [f"{_plot_stem(k, path)}-tokenizers.png", f"{_plot_stem(k, path)}-compressors.png"]
    return names


def write_outputs(result: dict, table: str, out: Path, plots: bool = True) -> list[Path]:
    """Write results.json, results.csv, results.md and the plots into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    atomic_write(out / "results.json", json.dumps(result, indent=1, ensure_ascii=False, default=str) + "\n")
    buf = io.StringIO()
    wr = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore")
    wr.writeheader()
    for r in result["rows"]:
        wr.writerow(r)
    buf.write("\n")
    cw = csv.DictWriter(buf, fieldnames=["text", "method", "status", "reason", "bytes", "ratio", "bits_per_char",
                                         "lossless", "seconds"], extrasaction="ignore")
    cw.writeheader()
    for c in result["compression"]:
        cw.writerow(c)
    atomic_write(out / "results.csv", buf.getvalue())
    atomic_write(out / "results.md", table)
    written += [out / "results.json", out / "results.csv", out / "results.md"]
    if plots:
        written += plot(result, out)
    return written


def plot(result: dict, out: Path) -> list[Path]:
    """One PNG per text: chars/token and tokens/word bars; one for the compressors."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    paths = []
    for k, info in enumerate(result["texts"]):
        if info["status"] != "ok":
            continue
        stem = _plot_stem(k, info["path"])
        rows = [r for r in result["rows"] if r["text"] == info["path"] and r["status"] == "ok"]
        if rows:
            fig, axes = plt.subplots(1, 2, figsize=(12, 0.35 * len(rows) + 1.5))
            names = [r["tokenizer"] for r in rows]
            colors = ["tab:red" if r["family"] == "hypertok" else "tab:gray" for r in rows]
            for ax, key, label in [(axes[0], "chars_per_token", "characters per token (higher = fewer tokens)"),
                                   (axes[1], "fertility", "tokens per word (lower is better)")]:
                vals = [r[key] or 0 for r in rows]
                ax.barh(names, vals, color=colors)
                ax.invert_yaxis()
                ax.set_xlabel(label)
                for y, v in enumerate(vals):
                    ax.text(v, y, f" {v:.2f}", va="center", fontsize=8)
            axes[1].set_yticklabels([])
            fig.suptitle(f"{Path(info['path']).name}: each line encoded separately; words = \\w+", fontsize=10)
            fig.tight_layout()
            p = out / f"{stem}-tokenizers.png"
            fig.savefig(p, dpi=110)
            plt.close(fig)
            paths.append(p)
        comp = [c for c in result["compression"] if c["text"] == info["path"] and c["status"] == "ok"]
        if comp:
            fig, ax = plt.subplots(figsize=(8, 0.35 * len(comp) + 1.2))
            vals = [c["bits_per_char"] for c in comp]
            ax.barh([c["method"] for c in comp], vals,
                    color=["tab:red" if "symbol" in c["method"] else "tab:gray" for c in comp])
            ax.invert_yaxis()
            for y, v in enumerate(vals):
                ax.text(v, y, f" {v:.2f}", va="center", fontsize=8)
            ax.set_xlabel("bits per character (lower is smaller)")
            ax.set_title(f"{Path(info['path']).name}: general compressors vs HyperTok symbol text", fontsize=10)
            fig.tight_layout()
            p = out / f"{stem}-compressors.png"
            fig.savefig(p, dpi=110)
            plt.close(fig)
            paths.append(p)
    return paths
