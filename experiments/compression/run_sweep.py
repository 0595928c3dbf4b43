"""Vocabulary-size sweep: characters per token against vocabulary size on RusLit dev.

Builds HyperTok (word, morph, concept) and the four trained baselines (HF byte-level
BPE, HF Unigram/Metaspace, SentencePiece BPE, SentencePiece Unigram) at each size on
``../shared/corpora/ruslit/train.txt``, and measures them, Mistral v1/v3/Tekken and the
general compressors on ``dev.txt`` with the same code as ``hypertok compare``
(:func:`hypertok.lab.compare.measure`; each line encoded separately, words = ``\\w+``).

Resumable: every measured point is written to ``points/<name>.json`` as soon as it is
done, and a point whose file exists is not measured again (``--redo NAME`` forces it).
Built HyperTok directories go to ``--work`` (default ``~/.cache/hypertok/sweep``) and
trained baselines to the baseline cache; neither is committed. After every point,
``results.json``, ``results.md`` and ``chars_per_token.png`` are rewritten from all
point files, with the missing points listed as such.

Run (from the repository root)::

    python experiments/compression/run_sweep.py                  # everything, 32k 64k 128k 16k 256k
    python experiments/compression/run_sweep.py --sizes 32000 --only hypertok-word   # one point
    python experiments/compression/run_sweep.py --report          # only redraw table and plot

Follows issue 3 ("The comparison lab").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from hypertok import BuildConfig, build  # noqa: E402
from hypertok import registry as B  # noqa: E402
from hypertok.lab import compare as C  # noqa: E402
from hypertok.lab import report as REP  # noqa: E402
from hypertok.registry.trained import SETTINGS_VERSION  # noqa: E402
from hypertok.errors import HyperTokError  # noqa: E402
from experiments.stamp import builder_stamp  # noqa: E402

CORPUS = HERE.parents[1].parent / "shared" / "corpora" / "ruslit"
SIZES = [32000, 64000, 128000, 16000, 256000]  # run order: the most useful sizes first
MODES = ["word", "morph", "concept"]
METHODS = [f"hypertok-{m}" for m in MODES] + list(B.TRAINED_KINDS)
MISTRAL = ["mistral-v1", "mistral-v3", "tekken"]
POINTS = HERE / "points"
REPEATS = 5
SPEED_MB = 1.0


def _atomic_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _rel(p: Path | str) -> str:
    """Paths in committed JSON are relative to the repository's parent (no home folders)."""
    try:
        return str(Path(p).resolve().relative_to(HERE.parents[2]))
    except ValueError:
        return Path(p).name


def point_name(method: str, size: int | None) -> str:
    return method if size is None else f"{method}-{size}"


# the builder's code as this process imported it (experiments/stamp.py); a HyperTok point made by
# another stamp is stale and is rebuilt
BUILDER_AT_START = builder_stamp()


def point_version(method: str) -> str:
    if method.startswith("hypertok-"):
        return f"builder {BUILDER_AT_START}"
    if method in B.TRAINED_KINDS:
        return f"baseline settings v{SETTINGS_VERSION}"
    return "fixed"


def symbol_pool(size: int) -> str:
    """The Private Use Areas hold about 137k code points; larger vocabularies use all scripts.

    The pool changes only the symbol view (its UTF-8 size), never the token ids.
    """
    from hypertok.builder.symbols import POOLS

    if "auto" in POOLS:  # the builder's own choice (PUA while it suffices, then all scripts)
        return "auto"
    return "pua" if size <= 128000 else "all"


def measure_point(method: str, size: int | None, train: Path, dev: C.Text, work: Path, cache: Path | None,
                  rebuild: bool = False) -> dict:
    """Build or load one tokenizer and measure it on dev; returns the point record."""
    rec: dict = {"method": method, "requested_size": size, "version": point_version(method)}
    t0 = time.perf_counter()
    if method.startswith("hypertok-"):
        mode = method.split("-", 1)[1]
        d = work / f"{method}-{size}-{BUILDER_AT_START}"
        rec["dir"] = str(d)
        if rebuild or not (d / "config.json").is_file():
            print(f"  building {d} ...", flush=True)
            build([train], d, BuildConfig(vocab_size=size, mode=mode, symbols=symbol_pool(size)), overwrite=True,
                  progress=True)
            rec["build_seconds"] = round(time.perf_counter() - t0, 1)
        sub = B.HyperTokTokenizer.from_dir(d)
        rec["kinds"] = sub.tok.kind_counts()
        rec["symbols"] = sub.tok.config.get("build", {}).get("symbols")
    elif method in B.TRAINED_KINDS:
        sub = B.trained(method, [train], size, cache, progress=True)
        rec["build_seconds"] = sub.info.get("train_seconds")
    else:
        sub = B.load_tokenizer(method)
    rec["tokenizer"] = sub.name
    rec["vocab_size"] = sub.vocab_size
    print(f"  measuring {sub.name} on dev ...", flush=True)
    rec.update(C.measure(sub, dev, REPEATS))
    if method.startswith("hypertok-"):
        rows = C._compress_rows(dev, [], [sub], quiet=True)
        rec["symbol_text"] = [r for r in rows if r["method"] != "raw UTF-8"]
    return rec


def measure_compressors(dev: C.Text) -> dict:
    rows = C._compress_rows(dev, C.COMPRESSORS, [], quiet=True)
    return {"method": "compressors", "rows": rows}


def report() -> dict:
    """Rewrite results.json, results.md and chars_per_token.png from the point files."""
    points = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(POINTS.glob("*.json"))}
    expected = [point_name(m, s) for s in sorted(SIZES) for m in METHODS] + MISTRAL + ["compressors"]
    missing = [n for n in expected if n not in points]
    meta = points.pop("_dev", None)
    current = {m: point_version(m) for m in METHODS}
    stale = sorted(n for n, p in points.items() if p.get("method") in current and p.get("version") != current[p["method"]])
    result = {
        "what": "vocabulary-size sweep on RusLit (train.txt -> dev.txt)",
        "command": "python experiments/compression/run_sweep.py",
        "method": C.METHOD_NOTE,
        "speed": f"encode/decode MB/s over the first {SPEED_MB:g} MB of dev lines, median of {REPEATS} runs after a "
                 "warm-up run, on the 2-core development machine shared with other jobs",
        "dev": meta,
        "points": points,
        "missing": missing,
        "current_versions": current,
        "stale": stale,
    }
    _atomic_json(HERE / "results.json", result)
    (HERE / "results.md").write_text(markdown(result), encoding="utf-8")
    plot(result)
    return result


def _cell(p: dict | None, key: str, fmt: str) -> str:
    if p is None:
        return "not run"
    if p.get("status") != "ok":
        return p.get("status", "?")
    v = p.get(key)
    cell = "n/a" if v is None else format(v, fmt)
    if p.get("requested_size") and p.get("vocab_size") != p["requested_size"]:
        cell += f" (only {p['vocab_size']:,} tokens)".replace(",", " ")
    return cell


def markdown(result: dict) -> str:
    pts = result["points"]
    out = ["# Vocabulary-size sweep: RusLit train.txt -> dev.txt", "",
           f"Regenerate: `{result['command']}` (resumable; `--report` only redraws). {result['method']}", ""]
    if result["dev"]:
        d = result["dev"]
        out += [f"dev.txt: {d['chars']:,} characters, {d['bytes']:,} bytes, {d['words']:,} words.".replace(",", " "), ""]
    out += ["## Characters per token (higher = fewer tokens)", "",
            "Vocabulary sizes are totals, specials included. A trainer that could not reach the requested size on "
            "this corpus is marked with the size it reached (the plot places it there).", "",
            "| method | " + " | ".join(f"{s // 1000}k" for s in sorted(SIZES)) + " |",
            "|---|" + "---|" * len(SIZES)]
    for m in METHODS:
        out.append(f"| {m} | " + " | ".join(_cell(pts.get(point_name(m, s)), "chars_per_token", ".2f")
                                           for s in sorted(SIZES)) + " |")
    out += ["", "| Mistral | vocab | chars/token | tokens/word |", "|---|---|---|---|"]
    for m in MISTRAL:
        p = pts.get(m)
        out.append(f"| {m} | {p['vocab_size'] if p else '?'} | {_cell(p, 'chars_per_token', '.2f')} | "
                   f"{_cell(p, 'fertility', '.2f')} |")
    for s in [64000, 128000]:
        out += ["", f"## All metrics at {s // 1000}k", "",
                "| tokenizer | vocab | chars/token | bytes/token | tokens/word | continued words | Rényi eff. α=2.5 | "
                "vocab used | fallback | round-trip | encode MB/s | decode MB/s |",
                "|---|" * 1 + "---|" * 11]
        for name in [point_name(m, s) for m in METHODS] + MISTRAL:
            p = pts.get(name)
            if p is None:
                out.append(f"| {name} | not run yet |" + " |" * 10)
                continue
            if p.get("status") != "ok":
                out.append(f"| {name} | {p.get('status')}: {p.get('reason', '')} |" + " |" * 10)
                continue
            out.append("| " + " | ".join([p["tokenizer"], str(p["vocab_size"])] + [
                REP._fmt(k, p.get(k)) for k in ["chars_per_token", "bytes_per_token", "fertility", "continued_words",
                                              "renyi_efficiency", "vocab_used", "fallback_share", "round_trip",
                                              "encode_mb_s", "decode_mb_s"]]) + " |")
    comp = pts.get("compressors")
    out += ["", "## HyperTok as an archiver: dev.txt size", "", "| method | bytes | bits per char | lossless |",
            "|---|---|---|---|"]
    if comp:
        for r in comp["rows"]:
            out.append(f"| {r['method']} | {r['bytes']:,} | {r['bits_per_char']:.3f} | {'yes' if r['lossless'] else 'NO'} |"
                       .replace(",", " "))
    for s in sorted(SIZES):
        for m in MODES:
            p = pts.get(point_name(f"hypertok-{m}", s))
            for r in (p or {}).get("symbol_text", []):
                out.append(f"| {r['method']} | {r['bytes']:,} | {r['bits_per_char']:.3f} | "
                           f"{'yes' if r['lossless'] else 'NO'} |".replace(",", " "))
    if result["missing"]:
        out += ["", "**Missing points (not run yet):** " + ", ".join(result["missing"])]
    out += ["", f"HyperTok builder version of this table: {result['current_versions']['hypertok-word']} "
            "(experiments/stamp.py: a hash of the builder's source files)."]
    if result["stale"]:
        out += ["**Made by an older builder or baseline settings (rerun the command to refresh):** " + ", ".join(
            f"{n} ({pts[n].get('version')})" for n in result["stale"])]
    out += ["", "Plot: `chars_per_token.png`. Timings: " + result["speed"] + "."]
    return "\n".join(out) + "\n"


def plot(result: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = result["points"]
    fig, ax = plt.subplots(figsize=(8, 5.5))
    styles = {"hypertok-word": ("tab:red", "o", "-"), "hypertok-morph": ("tab:orange", "s", "-"),
              "hypertok-concept": ("darkred", "D", "-"), "hf-bpe": ("tab:blue", "o", "--"),
              "hf-unigram": ("tab:green", "s", "--"), "spm-bpe": ("tab:cyan", "^", ":"),
              "spm-unigram": ("tab:olive", "v", ":")}
    for m in METHODS:
        xs, ys = [], []
        for s in sorted(SIZES):
            p = pts.get(point_name(m, s))
            if p and p.get("status") == "ok":
                xs.append(p["vocab_size"])
                ys.append(p["chars_per_token"])
        if xs:
            c, mk, ls = styles[m]
            ax.plot(xs, ys, marker=mk, linestyle=ls, color=c, label=m)
    for m, mk, offset in zip(MISTRAL, ["P", "X", "*"], [(-70, 8), (8, -14), (8, -14)]):
        p = pts.get(m)
        if p and p.get("status") == "ok":
            ax.scatter([p["vocab_size"]], [p["chars_per_token"]], marker=mk, s=120, color="black", zorder=5)
            ax.annotate(f"{p['tokenizer']} ({p['chars_per_token']:.2f})", (p["vocab_size"], p["chars_per_token"]),
                        textcoords="offset points", xytext=offset, fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(SIZES))
    ax.set_xticklabels([f"{s // 1000}k" for s in sorted(SIZES)])
    ax.set_xlabel("vocabulary size (total, specials included)")
    ax.set_ylabel("characters per token on dev.txt (higher = fewer tokens)")
    ax.set_title("RusLit dev (Turgenev): each line encoded separately", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    if result["missing"]:
        fig.text(0.01, 0.01, f"missing points: {len(result['missing'])} (see results.md)", fontsize=7)
    fig.tight_layout()
    tmp = HERE / ".chars_per_token.tmp.png"
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, HERE / "chars_per_token.png")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="*", type=int, default=SIZES, help="sizes to run, in this order")
    ap.add_argument("--only", nargs="*", default=None, help="methods to run (e.g. hypertok-word spm-bpe mistral)")
    ap.add_argument("--train", default=str(CORPUS / "train.txt"))
    ap.add_argument("--dev", default=str(CORPUS / "dev.txt"))
    ap.add_argument("--work", default=str(Path.home() / ".cache" / "hypertok" / "sweep"),
                    help="where built HyperTok directories go (not committed)")
    ap.add_argument("--cache", default=None, help="trained-baseline cache (default ~/.cache/hypertok/baselines)")
    ap.add_argument("--redo", nargs="*", default=[],
                    help="point names to measure again, e.g. hypertok-concept-32000, or 'all' (e.g. to take every "
                    "timing in one quiet window)")
    ap.add_argument("--rebuild", action="store_true",
                    help="rebuild the HyperTok directories of the redone points even if present (builds are "
                    "deterministic, and directories are keyed by builder version, so this is rarely needed)")
    ap.add_argument("--keep-stale", action="store_true",
                    help="keep points made by an older builder / baseline settings instead of redoing them")
    ap.add_argument("--report", action="store_true", help="only rewrite results.json/.md and the plot")
    args = ap.parse_args(argv)
    if args.report:
        report()
        return 0
    train, dev_path = Path(args.train), Path(args.dev)
    for p in (train, dev_path):
        if not p.is_file():
            raise SystemExit(f"{p}: not found; the sweep needs the RusLit corpus (../shared/corpora/ruslit)")
    dev = C.Text(str(dev_path), C.read_text(dev_path)).prepare(SPEED_MB)
    _atomic_json(POINTS / "_dev.json", {"path": _rel(dev_path), "chars": dev.n_chars, "bytes": dev.n_bytes,
                                        "words": dev.n_words, "lines": len(dev.lines), "sha256": dev.sha256,
                                        "train": _rel(train)})
    work = Path(args.work)
    todo: list[tuple[str, int | None]] = []
    only = set(args.only) if args.only is not None else None
    if only is None or "mistral" in only or only & set(MISTRAL):
        todo += [(m, None) for m in MISTRAL if only is None or "mistral" in only or m in only]
    if only is None or "compressors" in only:
        todo.append(("compressors", None))
    for s in args.sizes:
        todo += [(m, s) for m in METHODS if only is None or m in only]
    # Missing points first (in the order above), then points made by an older builder / settings.
    missing, stale = [], []
    for method, size in todo:
        name = point_name(method, size)
        path = POINTS / f"{name}.json"
        if not path.exists() or name in args.redo or "all" in args.redo:
            missing.append((method, size))
            continue
        old = json.loads(path.read_text(encoding="utf-8")).get("version")
        if not args.keep_stale and old != point_version(method) and method not in ("compressors", *MISTRAL):
            print(f"{name}: made by {old!r}, now {point_version(method)!r}: will measure again", flush=True)
            stale.append((method, size))
    for method, size in missing + stale:
        name = point_name(method, size)
        path = POINTS / f"{name}.json"
        print(f"[{time.strftime('%H:%M:%S')}] {name}", flush=True)
        t0 = time.perf_counter()
        try:
            rec = measure_compressors(dev) if method == "compressors" else measure_point(
                method, size, train, dev, work, Path(args.cache) if args.cache else None, rebuild=args.rebuild)
        except B.Unavailable as e:
            rec = {"method": method, "requested_size": size, "status": "skipped", "reason": str(e)}
        except HyperTokError as e:
            rec = {"method": method, "requested_size": size, "status": "error", "reason": str(e)}
        rec["point_seconds"] = round(time.perf_counter() - t0, 1)
        if isinstance(rec.get("info"), dict):
            rec.pop("info")
        _atomic_json(path, rec)
        print(f"[{time.strftime('%H:%M:%S')}] {name} done in {rec['point_seconds']} s: "
              f"{rec.get('chars_per_token', rec.get('status', ''))}", flush=True)
        report()
    report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
