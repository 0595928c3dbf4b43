"""Reports of ``hypertok vram``: break-even and claim tables, Markdown, CSV and plots.

What it does: from the points of a sweep (:func:`hypertok.gpu.vram.sweep`) it answers the
break-even question (how many new vocabulary rows the shorter sequence pays for, per
length and tokenizer, :func:`break_even_table`), the claim table (the text that is N
base-tokenizer tokens, with each tokenizer, :func:`claim_table`) and issue 10's question
(each tokenizer's train-step peak against the base tokenizer's, per loss,
:func:`vs_base_table`), and writes ``results.json``, ``points.csv``, ``summary.md`` and
the PNG plots atomically (:func:`write_outputs`).

Results files written before a loss existed (no ``liger`` points, no ``config.losses``,
no ``vs_base``) render as they are: a loss that was not run has no column or row.

What it does not do: no measuring and no tokenizing. matplotlib is imported only when
plotting. Split out of ``vram.py`` by issue 9 (issue 4).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from ..files import atomic_write
from .memory import GIB, TRAIN_LOSSES, ModelShape, break_even_rows, estimate, inference_estimate


def _base_label(results: dict) -> str | None:
    for t in results["tokenizers"]:
        if t["strategy"] == "base":
            return t["label"]
    return None


def _index(results: dict) -> dict:
    return {(p["tokenizer"], p["mode"], p.get("loss"), p["chars"]): p for p in results["points"]}


def _config_losses(results: dict) -> list[str]:
    """The train losses the run asked for (files older than ``--losses`` ran full and chunked)."""
    return list(results["config"].get("losses") or ["full", "chunked"])


def _point_losses(results: dict) -> list[str]:
    """The train losses that have points, in the order of :data:`TRAIN_LOSSES`."""
    have = {p.get("loss") for p in results["points"] if p["mode"] == "train"}
    return [loss for loss in TRAIN_LOSSES if loss in have]


def break_even_table(results: dict, shape: ModelShape) -> list[dict]:
    """Per length and tokenizer: rows the shorter sequence pays for, against the base tokenizer.

    ``rows_*``: how many vocabulary rows (beyond the base's) the saving pays for, in
    inference peak memory, train peak memory (full and chunked loss), train FLOPs, and
    bytes read per generated character in decode. ``rows_added``: what the tokenizer
    actually adds. ``net_*``: saving minus the rows' cost (positive = the tokenizer wins).
    """
    base = _base_label(results)
    if base is None:
        return []
    idx = _index(results)
    vb = next(t["vocab"] for t in results["tokenizers"] if t["label"] == base)
    bshape = shape.with_vocab(vb)
    cfg = results["config"]
    rows = []
    chars_all = sorted({p["chars"] for p in results["points"] if p["mode"] == "inference"})
    for t in results["tokenizers"]:
        if t["label"] == base:
            continue
        for c in chars_all:
            pb, pt = idx.get((base, "inference", None, c)), idx.get((t["label"], "inference", None, c))
            if pb is None or pt is None:
                continue
            tb, tt = pb["tokens"], pt["tokens"]
            added = t["vocab"] - vb
            row = {"tokenizer": t["label"], "chars": c, "base_tokens": tb, "tokens": tt,
                   "token_ratio": tt / tb, "rows_added": added}
            row["rows_inference_memory"] = break_even_rows(bshape, tb, tt, "inference", "peak")
            kw = {"lora_rank": cfg["lora_rank"], "chunk": cfg["loss_chunk"]}
            row["rows_train_memory_full"] = break_even_rows(bshape, tb, tt, "train", "peak", loss="full", **kw)
            row["rows_train_memory_chunked"] = break_even_rows(bshape, tb, tt, "train", "peak", loss="chunked", **kw)
            row["rows_train_flops"] = break_even_rows(bshape, tb, tt, "train", "flops", loss="full", **kw)
            row["rows_decode_bytes_per_char"] = _decode_rows(bshape, tb, tt, c)
            eb = inference_estimate(bshape, tb)["peak"]
            et = inference_estimate(shape.with_vocab(t["vocab"]), tt)["peak"]
            row["net_inference_memory_analytic"] = eb - et
            mb, mt = pb.get("measurement", {}), pt.get("measurement", {})
            if "peak_allocated" in mb and "peak_allocated" in mt:
                row["net_inference_memory_measured"] = mb["peak_allocated"] - mt["peak_allocated"]
            if "prefill_s" in mb and "prefill_s" in mt:
                row["prefill_speedup_measured"] = mb["prefill_s"] / mt["prefill_s"]
            if "decode_chars_per_s" in mb and "decode_chars_per_s" in mt:
                row["decode_chars_per_s_ratio_measured"] = mt["decode_chars_per_s"] / mb["decode_chars_per_s"]
            for loss in ("full", "chunked"):
                qb, qt = idx.get((base, "train", loss, c)), idx.get((t["label"], "train", loss, c))
                if qb and qt:
                    row[f"net_train_memory_{loss}_analytic"] = qb["analytic"]["peak"] - qt["analytic"]["peak"]
                    mb2, mt2 = qb.get("measurement", {}), qt.get("measurement", {})
                    if "peak_allocated" in mb2 and "peak_allocated" in mt2:
                        row[f"net_train_memory_{loss}_measured"] = mb2["peak_allocated"] - mt2["peak_allocated"]
            rows.append(row)
    return rows


def _decode_rows(bshape: ModelShape, tb: int, tt: int, chars: int) -> float:
    """Rows a tokenizer can add before a generated character costs more bytes to read.

    A decode step reads every linear weight (lm_head included; the embedding is a
    gather) and the KV cache. Per character that is ``step_bytes / chars_per_token``.
    """
    h = bshape.hidden

    def step_bytes(vocab: int, tokens: int) -> int:
        s = bshape.with_vocab(vocab)
        return inference_estimate(s, tokens)["decode_bytes_per_token"]

    base_per_char = step_bytes(bshape.vocab, tb) * tb / chars
    # (step_bytes(V + n, tt)) * tt / chars == base_per_char, step bytes are linear in n with slope 2h.
    at_zero = step_bytes(bshape.vocab, tt) * tt / chars
    slope = 2 * h * tt / chars
    return (base_per_char - at_zero) / slope


def claim_table(results: dict) -> list[dict]:
    """The original claim's test: the text that is N base tokens, with each tokenizer."""
    rows = []
    idx = _index(results)
    for n, c in results.get("at_tokens", {}).items():
        for t in results["tokenizers"]:
            p = idx.get((t["label"], "inference", None, c))
            if p is None:
                continue
            r = {"at_tokens": int(n), "chars": c, "tokenizer": t["label"], "tokens": p["tokens"], "vocab": t["vocab"],
                 "analytic_peak": p["analytic"]["peak"], "analytic_kv_cache": p["analytic"]["kv_cache"]}
            m = p.get("measurement", {})
            for k in ("peak_allocated", "peak_reserved", "kv_cache_bytes", "prefill_s", "decode_chars_per_s"):
                if k in m:
                    r[k] = m[k]
            if "oom" in m or "skipped" in p:
                r["not_measured"] = m.get("oom") or p.get("skipped")
            for loss in _config_losses(results):
                q = idx.get((t["label"], "train", loss, c))
                if q is None:  # not run at this length: the analytic figure alone
                    cfg = results["config"]
                    shape = ModelShape(**results["model"]).with_vocab(t["vocab"])
                    r[f"train_{loss}_analytic_peak"] = estimate(shape, p["tokens"], "train", loss=loss,
                                                                lora_rank=cfg["lora_rank"],
                                                                chunk=cfg["loss_chunk"])["peak"]
                if q is not None:
                    r[f"train_{loss}_analytic_peak"] = q["analytic"]["peak"]
                    qm = q.get("measurement", {})
                    if "peak_allocated" in qm:
                        r[f"train_{loss}_peak_allocated"] = qm["peak_allocated"]
                    elif "oom" in qm:
                        r[f"train_{loss}_oom"] = True
            rows.append(r)
    return rows


def vs_base_table(results: dict) -> list[dict]:
    """Issue 10's question: each tokenizer's train-step peak against the base tokenizer's.

    One row per tokenizer (not the base), length and loss that has a train point. The
    same text, so the same batch of training data: ``ratio_same_loss`` is the peak over
    the base tokenizer's with the same loss, ``ratio_base_full`` over the base's with
    the full-vocabulary loss (how Mistral's 32k trains by default). Both are measured
    (``max_memory_allocated``) where both points were measured, else analytic
    (``source``). ``ratio_same_tokens`` is analytic: the same loss at the base
    tokenizer's token count, the vocabulary's cost alone at an equal batch of tokens.
    Empty without a base tokenizer or train points.
    """
    base = _base_label(results)
    if base is None:
        return []
    idx = _index(results)
    cfg = results["config"]
    shape = ModelShape(**results["model"])
    vb = next(t["vocab"] for t in results["tokenizers"] if t["label"] == base)
    kw = {"lora_rank": cfg["lora_rank"], "chunk": cfg["loss_chunk"]}

    def peak(p):
        """(measured or None, analytic) of a point; the analytic figure alone where not run."""
        if p is None:
            return None, None
        m = p.get("measurement", {}).get("peak_allocated")
        return m, p["analytic"]["peak"]

    rows = []
    for p in results["points"]:
        if p["mode"] != "train" or p["tokenizer"] == base:
            continue
        loss, c = p["loss"], p["chars"]
        pb = idx.get((base, "train", loss, c))
        if pb is None:
            continue
        pf = idx.get((base, "train", "full", c))
        m, a = peak(p)
        mb, ab = peak(pb)
        mf, af = peak(pf)
        if af is None:  # the base's full loss was not run: its analytic figure
            af = estimate(shape.with_vocab(vb), pb["tokens"], "train", loss="full", **kw)["peak"]
        row = {"tokenizer": p["tokenizer"], "vocab": p["vocab"], "chars": c, "loss": loss, "tokens": p["tokens"],
               "base": base, "base_vocab": vb, "base_tokens": pb["tokens"], "analytic_peak": a,
               "base_analytic_peak": ab, "base_full_analytic_peak": af}
        if m is not None and mb is not None:
            row.update(source="measured", peak=m, base_peak=mb, ratio_same_loss=m / mb)
        else:
            row.update(source="analytic", peak=a, base_peak=ab, ratio_same_loss=a / ab)
        if m is not None and mf is not None:
            row.update(base_full_peak=mf, ratio_base_full=m / mf)
        else:
            row.update(base_full_peak=af, ratio_base_full=a / af)
        if "oom" in p.get("measurement", {}):
            row["oom"] = True
        same = estimate(shape.with_vocab(p["vocab"]), pb["tokens"], "train", loss=loss, **kw)["peak"]
        row["ratio_same_tokens"] = same / estimate(shape.with_vocab(vb), pb["tokens"], "train", loss=loss, **kw)["peak"]
        rows.append(row)
    return rows


def vs_base_verdicts(rows: list[dict]) -> list[str]:
    """One sentence per tokenizer and loss: is its train peak at or below the base's at every length?"""
    out = []
    for key in dict.fromkeys((r["tokenizer"], r["loss"]) for r in rows):
        sel = [r for r in rows if (r["tokenizer"], r["loss"]) == key]
        same, full = max(r["ratio_same_loss"] for r in sel), max(r["ratio_base_full"] for r in sel)
        src = "/".join(sorted({r["source"] for r in sel}))
        r0 = sel[0]

        def said(x):
            return f"{x:.2f}x ({'at or below' if x <= 1 else 'above'})"

        out.append(f"- {key[0]} (vocab {r0['vocab']:,}), {key[1]} loss, {len(sel)} length(s) ({src}): at most "
                   f"{said(same)} {r0['base']}'s ({r0['base_vocab']:,}) peak with the {key[1]} loss"
                   + ("" if key[1] == "full" else f", {said(full)} with the full loss")
                   + f"; {max(r['ratio_same_tokens'] for r in sel):.2f}x at the base's token count (analytic).")
    return out


# --------------------------------------------------------------------------- outputs
def _g(x) -> str:
    return "-" if x is None else f"{x / GIB:.2f}"


def summary_markdown(results: dict) -> str:
    """The tables ``hypertok vram`` prints and writes to ``summary.md``."""
    env = results["environment"]
    lines = [f"# hypertok vram: {results['model']['name']} on {env.get('gpu', 'no GPU (analytic only)')}", ""]
    if results.get("command"):
        lines += [f"Command: `{results['command']}`", ""]
    lines += [f"Text: {results['text']['path']} ({results['text']['chars']:,} chars). "
              f"torch {env.get('torch', '-')}, transformers {env.get('transformers', '-')}. "
              + (results["measure_note"] or "Measured: bf16 random-init weights, SDPA, median of "
                 f"{results['config']['repeats']} runs."), ""]
    has_inference = any(p["mode"] == "inference" for p in results["points"])
    lines += [] if not has_inference else ["## Inference: prefill peak memory (GiB; analytic / measured allocated / reserved), latency, decode",
              "", "| tokenizer | vocab | chars | tokens | chars/tok | KV GiB | analytic | measured | reserved | "
              "analytic/measured | prefill s | decode tok/s | decode chars/s |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in results["points"]:
        if p["mode"] != "inference":
            continue
        m = p.get("measurement", {})
        meas = "OOM" if "oom" in m else ("skipped" if "skipped" in p else _g(m.get("peak_allocated")))
        ratio = f"{p['analytic_over_measured']:.3f}" if "analytic_over_measured" in p else "-"
        speed = (f"{m['prefill_s']:.3f} | {m['decode_tokens_per_s']:.1f} | {m['decode_chars_per_s']:.1f}"
                 if "prefill_s" in m else "- | - | -")
        lines.append(
            f"| {p['tokenizer']} | {p['vocab']:,} | {p['chars']:,} | {p['tokens']:,} | {p['chars_per_token']:.2f} | "
            f"{_g(p['analytic']['kv_cache'])} | {_g(p['analytic']['peak'])} | {meas} | {_g(m.get('peak_reserved'))} | "
            f"{ratio} | {speed} |")
    if any(p["mode"] == "train" for p in results["points"]):
        lines += ["", "## Train: one LoRA forward+backward, peak memory (GiB) and step time", "",
                  "| tokenizer | loss | chars | tokens | analytic | measured | reserved | analytic/measured | step s |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for p in results["points"]:
            if p["mode"] != "train":
                continue
            m = p.get("measurement", {})
            meas = "OOM" if "oom" in m else ("skipped" if "skipped" in p else _g(m.get("peak_allocated")))
            ratio = f"{p['analytic_over_measured']:.3f}" if "analytic_over_measured" in p else "-"
            step = f"{m['step_s']:.3f}" if "step_s" in m else "-"
            lines.append(f"| {p['tokenizer']} | {p['loss']} | {p['chars']:,} | {p['tokens']:,} | "
                         f"{_g(p['analytic']['peak'])} | {meas} | {_g(m.get('peak_reserved'))} | {ratio} | {step} |")
    if results.get("break_even"):
        lines += ["", "## Break-even: new vocabulary rows the shorter sequence pays for (vs the base tokenizer)", "",
                  "Rows added = the tokenizer's model vocabulary minus the base's. A tokenizer wins on a resource "
                  "where rows added < break-even rows.", "",
                  "| tokenizer | chars | tokens / base | rows added | inference memory | train memory (full loss) | "
                  "train memory (chunked) | train FLOPs | decode bytes/char | net inference GiB (analytic / measured) |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in results["break_even"]:
            meas = _g(r.get("net_inference_memory_measured"))
            lines.append(
                f"| {r['tokenizer']} | {r['chars']:,} | {r['token_ratio']:.2f} | {r['rows_added']:,} | "
                f"{_rows(r['rows_inference_memory'])} | {_rows(r['rows_train_memory_full'])} | "
                f"{_rows(r['rows_train_memory_chunked'])} | {_rows(r['rows_train_flops'])} | "
                f"{_rows(r['rows_decode_bytes_per_char'])} | "
                f"{_g(r['net_inference_memory_analytic'])} / {meas} |")
    vs = results["vs_base"] if "vs_base" in results else vs_base_table(results)
    if vs:
        b = vs[0]["base"]
        lines += ["", f"## Train memory against {b} (vocab {vs[0]['base_vocab']:,}), same text, per loss", "",
                  f"Issue 10: does a large vocabulary, with a loss that never holds all logits, train within "
                  f"{b}'s memory at the same batch? Peak of one LoRA forward+backward (GiB; measured where both "
                  "points were, else analytic) and its ratio to the base's with the same loss and with the full "
                  "loss; the last column is analytic, at the base's token count (the vocabulary's cost alone).", "",
                  f"| tokenizer | vocab | chars | tokens | loss | peak | {b} same loss | x same loss | "
                  f"{b} full loss | x full loss | x at equal tokens |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in vs:
            lines.append(f"| {r['tokenizer']} | {r['vocab']:,} | {r['chars']:,} | {r['tokens']:,} | {r['loss']} | "
                         f"{_g(r['peak'])}{' (OOM)' if r.get('oom') else ''}"
                         f"{' (analytic)' if r['source'] == 'analytic' else ''} | {_g(r['base_peak'])} | "
                         f"{r['ratio_same_loss']:.2f} | {_g(r['base_full_peak'])} | {r['ratio_base_full']:.2f} | "
                         f"{r['ratio_same_tokens']:.2f} |")
        lines += [""] + vs_base_verdicts(vs)
    if results.get("claim"):
        closs = [loss for loss in TRAIN_LOSSES
                 if any(f"train_{loss}_analytic_peak" in r for r in results["claim"])]
        lines += ["", "## The claim: the text that is N base-tokenizer tokens, with each tokenizer", "",
                  "| N | chars | tokenizer | tokens | vocab | inference peak GiB (measured) | reserved | analytic | "
                  + " | ".join(f"train {loss}-loss peak" for loss in closs) + " |",
                  "|---|---|---|---|---|---|---|---|" + "---|" * len(closs)]
        for r in results["claim"]:
            def tr(loss):
                if f"train_{loss}_peak_allocated" in r:
                    return _g(r[f"train_{loss}_peak_allocated"])
                if r.get(f"train_{loss}_oom"):
                    return "OOM"
                return (_g(r[f"train_{loss}_analytic_peak"]) + " (analytic)") if f"train_{loss}_analytic_peak" in r \
                    else "-"
            lines.append(f"| {r['at_tokens']:,} | {r['chars']:,} | {r['tokenizer']} | {r['tokens']:,} | {r['vocab']:,} | "
                         f"{_g(r.get('peak_allocated'))} | {_g(r.get('peak_reserved'))} | {_g(r['analytic_peak'])} | "
                         + " | ".join(tr(loss) for loss in closs) + " |")
    return "\n".join(lines) + "\n"


def _rows(x: float) -> str:
    if x == float("inf"):
        return "any"
    if abs(x) >= 1e7:
        return f"{x:.1e}"
    return f"{x:,.0f}"


OUTPUT_NAMES = ("results.json", "points.csv", "summary.md", "memory_vs_chars.png", "latency_vs_chars.png",
                "break_even.png", "train_vs_base.png")
"""Every file :func:`write_outputs` may write; ``vram --out`` is checked against them before any work (issue 24)."""


def is_own_results(record: dict) -> bool:
    """True for a ``results.json`` that ``hypertok vram`` wrote (it may write there again)."""
    return record.get("format") == "hypertok-vram"


def write_outputs(results: dict, out: Path) -> None:
    """``results.json`` (with ``vs_base`` added where an older file lacks it), ``points.csv``,
    ``summary.md`` and the plots, into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    if "vs_base" not in results:
        results = {**results, "vs_base": vs_base_table(results)}
    atomic_write(out / "results.json", json.dumps(_clean(results), indent=1, ensure_ascii=False))
    buf = io.StringIO()
    cols = ["tokenizer", "mode", "loss", "chars", "tokens", "chars_per_token", "vocab", "analytic_peak",
            "analytic_kv_cache", "analytic_activations", "analytic_logits", "analytic_weights_vocab",
            "linear_flops", "attention_flops", "peak_allocated", "peak_reserved", "kv_cache_bytes", "prefill_s",
            "decode_tokens_per_s", "decode_chars_per_s", "step_s", "oom", "skipped"]
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    for p in results["points"]:
        a, m = p["analytic"], p.get("measurement", {})
        row = {k: p.get(k) for k in ("tokenizer", "mode", "loss", "chars", "tokens", "chars_per_token", "vocab",
                                     "skipped")}
        row.update(analytic_peak=a["peak"], analytic_kv_cache=a.get("kv_cache"), analytic_activations=a["activations"],
                   analytic_logits=a["logits"], analytic_weights_vocab=a["weights_vocab"],
                   linear_flops=a["linear_flops"], attention_flops=a["attention_flops"])
        row.update({k: v for k, v in m.items() if k in cols})
        w.writerow(row)
    atomic_write(out / "points.csv", buf.getvalue())
    atomic_write(out / "summary.md", summary_markdown(results))
    plot(results, out)


def _clean(o):
    """JSON has no infinity: write it as the string "inf"."""
    if isinstance(o, float) and (o != o or o in (float("inf"), float("-inf"))):
        return str(o)
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    return o


def plot(results: dict, out: Path) -> list[Path]:
    """``memory_vs_chars.png``, ``latency_vs_chars.png``, ``break_even.png`` (skipped without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written: list[Path] = []
    toks = [t["label"] for t in results["tokenizers"]]
    colors = {t: f"C{i}" for i, t in enumerate(toks)}
    pts = results["points"]
    gpu = results["environment"].get("gpu_memory_bytes")
    cmd = results.get("command") or "hypertok vram"
    modes = [(m, loss) for m, loss in [("inference", None)] + [("train", loss) for loss in TRAIN_LOSSES]
             if any(p["mode"] == m and p.get("loss") == loss for p in pts)]
    if not modes:
        return written
    fig, axes = plt.subplots(1, len(modes), figsize=(6 * len(modes), 4.6), squeeze=False)
    for ax, (mode, loss) in zip(axes[0], modes):
        for t in toks:
            sel = [p for p in pts if p["tokenizer"] == t and p["mode"] == mode and p.get("loss") == loss]
            if not sel:
                continue
            x = [p["chars"] for p in sel]
            ax.plot(x, [p["analytic"]["peak"] / GIB for p in sel], "--", color=colors[t], alpha=0.7)
            mx = [(p["chars"], p["measurement"]["peak_allocated"] / GIB) for p in sel
                  if "peak_allocated" in p.get("measurement", {})]
            if mx:
                ax.plot(*zip(*mx), "o-", color=colors[t], label=t)
            else:
                ax.plot([], [], "--", color=colors[t], label=t + " (analytic)")
            oom = [p["chars"] for p in sel if "oom" in p.get("measurement", {}) or "skipped" in p]
            if oom and gpu:
                ax.plot(oom, [gpu / GIB] * len(oom), "x", color=colors[t], ms=9)
        top = max([p["analytic"]["peak"] for p in pts if p["mode"] == mode and p.get("loss") == loss] or [0])
        if gpu and top > 0.6 * gpu:  # draw the card's limit only where the curves come near it
            ax.axhline(gpu / GIB, color="grey", lw=0.8)
        ax.set_ylim(bottom=0)
        ax.set_xscale("log")
        ax.set_xlabel("characters of context")
        ax.set_ylabel("peak GPU memory, GiB")
        ax.set_title(f"{mode}" + (f" ({loss} loss)" if loss else " prefill") + ": solid measured, dashed analytic")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{results['model']['name']} on {results['environment'].get('gpu', 'no GPU')}  (x: OOM or skipped; "
                 f"GPU memory {gpu / GIB if gpu else 0:.0f} GiB)\n{cmd[:160]}", fontsize=8)
    fig.tight_layout()
    p = out / "memory_vs_chars.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    written.append(p)

    measured = any("prefill_s" in p.get("measurement", {}) for p in pts)
    panels = (["prefill"] if any(p["mode"] == "inference" for p in pts) else []) + \
        (["decode"] if any("decode_chars_per_s" in p.get("measurement", {}) for p in pts) else []) + \
        (["train"] if any("step_s" in p.get("measurement", {}) for p in pts) else [])
    if not panels:
        return written
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.6), squeeze=False)
    styles = {"full": "o:", "chunked": "o-", "liger": "s--"}
    for ax, panel in zip(axes[0], panels):
        for t, loss in [(t, loss) for t in toks for loss in (_point_losses(results) if panel == "train" else [None])]:
            if panel == "train":
                sel = [p for p in pts if p["tokenizer"] == t and p["mode"] == "train" and p.get("loss") == loss]
            else:
                sel = [p for p in pts if p["tokenizer"] == t and p["mode"] == "inference"]
            if panel == "prefill":
                if measured:
                    xy = [(p["chars"], p["measurement"]["prefill_s"]) for p in sel if "prefill_s" in p.get("measurement", {})]
                else:
                    xy = [(p["chars"], (p["analytic"]["linear_flops"] + p["analytic"]["attention_flops"]) / 1e12)
                          for p in sel]
            elif panel == "decode":
                xy = [(p["chars"], p["measurement"]["decode_chars_per_s"]) for p in sel
                      if "decode_chars_per_s" in p.get("measurement", {})]
            else:
                xy = [(p["chars"], p["measurement"]["step_s"]) for p in sel if "step_s" in p.get("measurement", {})]
            if xy:
                ax.plot(*zip(*xy), styles.get(loss, "o-"), color=colors[t], label=t + (f" ({loss})" if loss else ""))
        ax.set_xscale("log")
        if panel != "decode":
            ax.set_yscale("log")
        ax.set_xlabel("characters of context")
        ax.set_ylabel({"prefill": "prefill latency, s" if measured else "prefill TFLOPs (analytic)",
                       "decode": "decode characters / s (greedy, batch 1)",
                       "train": "LoRA fwd+bwd step, s (by loss)"}[panel])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{results['model']['name']} on {results['environment'].get('gpu', 'no GPU')}\n{cmd[:160]}",
                 fontsize=8)
    fig.tight_layout()
    p = out / "latency_vs_chars.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    written.append(p)

    vs = results["vs_base"] if "vs_base" in results else vs_base_table(results)
    if vs:
        written.append(_plot_vs_base(vs, colors, results, out, plt))

    be = results.get("break_even") or []
    if be:
        fig, ax = plt.subplots(figsize=(8, 5))
        styles = {"rows_inference_memory": "-", "rows_train_memory_full": "--", "rows_decode_bytes_per_char": ":"}
        for t in toks:
            sel = [r for r in be if r["tokenizer"] == t]
            if not sel:
                continue
            for key, ls in styles.items():
                xy = [(r["chars"], r[key]) for r in sel if r[key] > 0 and r[key] != float("inf")]
                if xy:
                    ax.plot(*zip(*xy), ls, color=colors[t], label=f"{t}: {key[5:].replace('_', ' ')}")
            if sel[0]["rows_added"] > 0:
                ax.axhline(sel[0]["rows_added"], color=colors[t], lw=0.8, alpha=0.5)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("characters of context")
        ax.set_ylabel("new vocabulary rows the shorter sequence pays for")
        ax.set_title("break-even (thin horizontal: rows each tokenizer adds; above it the tokenizer wins)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
        fig.tight_layout()
        p = out / "break_even.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        written.append(p)
    return written


def _plot_vs_base(vs: list[dict], colors: dict, results: dict, out: Path, plt) -> Path:
    """``train_vs_base.png``: each tokenizer's train peak over the base tokenizer's, by loss
    (left: the base with the same loss; right: the base with the full loss)."""
    markers = {"full": "o:", "chunked": "o-", "liger": "s--"}
    b = vs[0]["base"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), squeeze=False)
    for ax, key, title in zip(axes[0], ("ratio_same_loss", "ratio_base_full"),
                              (f"train peak / {b}'s with the same loss", f"train peak / {b}'s with the full loss")):
        for t, loss in dict.fromkeys((r["tokenizer"], r["loss"]) for r in vs):
            sel = [r for r in vs if (r["tokenizer"], r["loss"]) == (t, loss)]
            src = "/".join(sorted({r["source"] for r in sel}))
            ax.plot([r["chars"] for r in sel], [r[key] for r in sel], markers.get(loss, "o-"),
                    color=colors.get(t, "C0"), label=f"{t}, {loss} ({src})")
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("characters of context (the same text for every tokenizer)")
        ax.set_ylabel("ratio (below 1: less memory than the base)")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{results['model']['name']} on {results['environment'].get('gpu', 'no GPU')}: LoRA train step "
                 f"against {b} (vocab {vs[0]['base_vocab']:,})\n{(results.get('command') or 'hypertok vram')[:160]}",
                 fontsize=8)
    fig.tight_layout()
    p = out / "train_vs_base.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    return p
