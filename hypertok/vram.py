"""``hypertok vram``: what shorter sequences buy in GPU memory and speed, and what new rows cost.

What it does: for each tokenizer (Mistral's own, or a HyperTok directory used to
``extend`` or ``replace`` the base vocabulary) and each context length in characters, it
cuts the same prefix of one text, tokenizes it, sizes the model's vocabulary for that
tokenizer, and reports the token count, the analytic estimate of :mod:`hypertok.memory`
(weights with the vocabulary part, KV cache, activation peak, logits, FLOPs) and, where
CUDA is present, the figures :mod:`hypertok.bench` measures on a random-init bf16 model.
It then answers the break-even question (how many new vocabulary rows the shorter
sequence pays for at each length) and writes ``results.json``, ``points.csv``,
``summary.md`` and plots into ``--out``.

Tokenizer names: ``mistral-v3`` / ``mistral-v1`` (the SentencePiece files that ship in
``mistral-common``, read with plain ``sentencepiece``; ``$HYPERTOK_MISTRAL_DATA`` may name
a folder with copies), or ``DIR``, ``DIR:extend``, ``DIR:replace`` for a HyperTok
directory (a bare ``DIR`` means ``replace``). ``extend`` uses the exact vocabulary transfer
of :mod:`hypertok.transfer` (base + the entries the base lacks; fallback runs re-spelled
with base pieces).

What it does not do: no training, no trained weights (memory and speed do not depend on
them), no batch > 1. Measured-only fields are absent, not zero, without CUDA.

Follows issue 4 ("VRAM, attention and speed").
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.util
import io
import json
import os
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import HyperTokError
from .memory import GIB, ModelShape, break_even_rows, estimate, inference_estimate, load_shape

MISTRAL_SP_FILES = {
    "mistral-v1": "tokenizer.model.v1",
    "mistral-v3": "mistral_instruct_tokenizer_240323.model.v3",
}


# --------------------------------------------------------------------------- tokenizers
def mistral_model_file(name: str) -> Path:
    """Path of a Mistral SentencePiece file: ``$HYPERTOK_MISTRAL_DATA`` or ``mistral_common/data``."""
    if name not in MISTRAL_SP_FILES:
        raise HyperTokError(f"unknown Mistral tokenizer {name!r}; choose from {', '.join(MISTRAL_SP_FILES)}")
    env = os.environ.get("HYPERTOK_MISTRAL_DATA")
    if env:
        folder = Path(env)
    else:
        spec = importlib.util.find_spec("mistral_common")
        if spec is None or not spec.submodule_search_locations:
            raise HyperTokError(f"{name}: mistral-common is not installed and $HYPERTOK_MISTRAL_DATA is not set; "
                                "pip install mistral-common, or copy its data/*.model.* files to a folder and "
                                "set HYPERTOK_MISTRAL_DATA to it")
        folder = Path(list(spec.submodule_search_locations)[0]) / "data"
    path = folder / MISTRAL_SP_FILES[name]
    if not path.is_file():
        raise HyperTokError(f"{path}: not found; $HYPERTOK_MISTRAL_DATA or mistral-common must provide it")
    return path


@dataclass
class Tok:
    """One tokenizer as the sweep sees it: a label, the model vocabulary it needs, and encode."""

    label: str
    strategy: str  # base | extend | replace
    vocab: int  # model vocabulary (rows of embed_tokens and lm_head)
    tokenizer_size: int
    path: str
    encode: object = field(repr=False)  # str -> list[int] of model ids
    config: dict = field(default_factory=dict, repr=False)  # the HyperTok directory's build record

    def info(self) -> dict:
        return {"label": self.label, "strategy": self.strategy, "vocab": self.vocab,
                "tokenizer_size": self.tokenizer_size, "path": self.path, "build": self.config}


def _sentencepiece(path: Path):
    import sentencepiece as spm

    try:
        return spm.SentencePieceProcessor(model_file=str(path))
    except (OSError, RuntimeError) as e:
        raise HyperTokError(f"{path}: not a readable SentencePiece model ({e})") from None


def load_tokenizer(spec: str, base: str = "mistral-v3", base_rows: int | None = None) -> Tok:
    """``mistral-v3``, ``mistral-v1``, ``DIR``, ``DIR:extend`` or ``DIR:replace`` -> :class:`Tok`."""
    if spec in MISTRAL_SP_FILES:
        path = mistral_model_file(spec)
        sp = _sentencepiece(path)
        n = sp.get_piece_size()
        return Tok(spec, "base", n, n, str(path), lambda text, sp=sp: sp.encode(text))
    directory, strategy = spec, "replace"
    for s in ("extend", "replace"):
        if spec.endswith(":" + s):
            directory, strategy = spec[: -len(s) - 1], s
    d = Path(directory)
    if not d.is_dir():
        raise HyperTokError(f"--tokenizer {spec!r}: not {', '.join(MISTRAL_SP_FILES)} and no such directory; "
                            "give a HyperTok directory, optionally with :extend or :replace")
    from .transfer import AdaptedTokenizer, BaseVocab, NewVocab, plan_transfer

    new = NewVocab(d)
    bv = BaseVocab(mistral_model_file(base)) if strategy == "extend" else None
    if strategy == "extend":
        recipe = plan_transfer(bv, new, "extend", base_rows=base_rows)
        adapted = AdaptedTokenizer(recipe, new, bv)
        vocab = recipe.model_vocab_size
        encode = adapted.encode
    else:
        vocab = len(new)
        encode = new.tok.encode if getattr(new, "tok", None) is not None else new.encode
    label = f"{d.name}:{strategy}"
    tok = Tok(label, strategy, vocab, len(new), str(d), encode)
    tok.config = dict(getattr(getattr(new, "tok", None), "config", None) or {})
    return tok


# --------------------------------------------------------------------------- text and lengths
def parse_chars(s: str) -> list[int]:
    """``"8000,32k,1.5M"`` -> ``[8000, 32000, 1500000]``.

    >>> parse_chars("8000,32k,1.5M")
    [8000, 32000, 1500000]
    """
    out = []
    for part in s.split(","):
        part = part.strip().lower()
        if not part:
            continue
        mult = 1
        if part[-1] in "km":
            mult = 1000 if part[-1] == "k" else 1_000_000
            part = part[:-1]
        try:
            v = int(float(part) * mult)
        except ValueError:
            raise HyperTokError(f"--chars: {part!r} is not a number (e.g. 8000,32k,256k)") from None
        if v <= 0:
            raise HyperTokError(f"--chars: lengths must be positive, got {v}")
        out.append(v)
    if not out:
        raise HyperTokError("--chars: give at least one length, e.g. 8000,32000,128000")
    return sorted(set(out))


def read_text(path: str) -> str:
    from .corpus import read_text as _read

    text = _read(path)
    if not text:
        raise HyperTokError(f"{path}: empty text")
    return text


def check_length(text: str, path: str, chars: list[int]) -> None:
    if max(chars) > len(text):
        raise HyperTokError(f"{path} has {len(text):,} characters, fewer than the requested {max(chars):,}; "
                            "give a longer --text or smaller --chars")


def chars_for_tokens(encode, text: str, target: int) -> int:
    """Shortest prefix length (in characters) that ``encode`` turns into at least ``target`` tokens.

    >>> chars_for_tokens(lambda s: list(s), "abcdef", 4)
    4
    """
    if len(encode(text)) < target:
        raise HyperTokError(f"the whole text gives fewer than {target:,} tokens; give a longer --text "
                            "or a smaller --at-tokens")
    lo, hi = 1, len(text)
    while lo < hi:
        mid = (lo + hi) // 2
        if len(encode(text[:mid])) >= target:
            hi = mid
        else:
            lo = mid + 1
    return lo


# --------------------------------------------------------------------------- config and run
@dataclass
class VramConfig:
    """What ``hypertok vram`` runs; the CLI builds exactly this."""

    model: str = "mistral-7b"
    tokenizers: list[str] = field(default_factory=lambda: ["mistral-v3"])
    text: str = ""
    chars: list[int] = field(default_factory=lambda: [8000, 32000, 128000])
    modes: list[str] = field(default_factory=lambda: ["inference"])
    out: str = "vram-out"
    base_tokenizer: str = "mistral-v3"
    at_tokens: list[int] = field(default_factory=list)  # extra lengths: N tokens of the first tokenizer
    train_chars: list[int] | None = None  # lengths for train mode (default: all)
    decode_tokens: int = 128
    repeats: int = 3
    lora_rank: int = 16
    loss_chunk: int = 4096
    time_budget: float | None = None  # seconds of measurement, then remaining points are skipped
    measure: bool = True  # measure on CUDA when present

    def __post_init__(self) -> None:
        for m in self.modes:
            if m not in ("inference", "train"):
                raise HyperTokError(f"--mode {m!r}: use inference, train, or both (inference,train)")
        if not self.tokenizers:
            raise HyperTokError("--tokenizer: give at least one tokenizer")
        if self.decode_tokens < 1 or self.repeats < 1:
            raise HyperTokError("--decode-tokens and --repeats must be at least 1")


def _sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _atomic_write(path: Path, data: str | bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    if isinstance(data, str):
        tmp.write_text(data, encoding="utf-8")
    else:
        tmp.write_bytes(data)
    os.replace(tmp, path)


def run(cfg: VramConfig, command: str | None = None, progress: bool = True) -> dict:
    """The whole sweep; writes results into ``cfg.out`` after every measured point and at the end."""
    from .bench import cuda_available, environment

    shape = load_shape(cfg.model)
    text = read_text(cfg.text)
    toks = [load_tokenizer(s, cfg.base_tokenizer, base_rows=shape.vocab) for s in cfg.tokenizers]
    labels = [t.label for t in toks]
    if len(set(labels)) != len(labels):
        raise HyperTokError(f"--tokenizer: two tokenizers share a label ({labels}); use distinct directories")
    chars = list(cfg.chars)
    check_length(text, cfg.text, chars)
    at_points = {}
    for n in cfg.at_tokens:
        c = chars_for_tokens(toks[0].encode, text, n)
        at_points[n] = c
        chars = sorted(set(chars + [c]))
    train_chars = sorted(set(cfg.train_chars or chars))
    check_length(text, cfg.text, train_chars)
    measure = cfg.measure and cuda_available()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {
        "format": "hypertok-vram", "version": 1,
        "command": command or "",
        "environment": environment(),
        "measured": measure,
        "measure_note": "" if measure else "measured fields are absent: " + (
            "CUDA is not available" if cfg.measure else "--no-measure"),
        "config": asdict(cfg),
        "model": shape.to_dict(),
        "text": {"path": cfg.text, "chars": len(text), "sha256": _sha256_text(text)},
        "tokenizers": [t.info() for t in toks],
        "at_tokens": {str(k): v for k, v in at_points.items()},
        "points": [],
    }
    # Tokenize every prefix up front (CPU); the model sweep then only needs ids.
    ids: dict[tuple[str, int], list[int]] = {}
    for t in toks:
        for c in sorted(set(chars) | set(train_chars if "train" in cfg.modes else [])):
            ids[(t.label, c)] = t.encode(text[:c])
    gpu_bytes = None
    if measure:
        from .bench import gpu_memory_bytes

        gpu_bytes = gpu_memory_bytes()
    t_start = time.monotonic()
    # All inference points first (every tokenizer), then train: if the time budget runs out,
    # what is lost is the tail of one mode, not whole tokenizers.
    plan = []
    if "inference" in cfg.modes:
        plan += [("inference", t, [(None, c) for c in chars]) for t in toks]
    if "train" in cfg.modes:
        plan += [("train", t, [(loss, c) for c in train_chars for loss in ("full", "chunked")]) for t in toks]
    bar = _bar(progress, total=sum(len(items) for _, _, items in plan))
    for mode, t, items in plan:
        tshape = shape.with_vocab(t.vocab)
        model = None
        for loss, c in items:
            seq = ids[(t.label, c)]
            kw = {} if mode == "inference" else {"loss": loss, "lora_rank": cfg.lora_rank, "chunk": cfg.loss_chunk}
            est = estimate(tshape, len(seq), mode, **kw)
            point = {"tokenizer": t.label, "mode": mode, "chars": c, "tokens": len(seq),
                     "chars_per_token": c / max(len(seq), 1), "vocab": t.vocab, "analytic": est}
            if loss:
                point["loss"] = loss
            if c in at_points.values():
                point["at_tokens"] = [n for n, v in at_points.items() if v == c]
            if measure:
                if cfg.time_budget is not None and time.monotonic() - t_start > cfg.time_budget:
                    point["skipped"] = f"time budget of {cfg.time_budget:.0f} s used up"
                elif est["peak"] > 1.1 * gpu_bytes:
                    point["skipped"] = (f"does not fit: predicted peak {est['peak'] / GIB:.1f} GiB exceeds the "
                                        f"GPU's {gpu_bytes / GIB:.1f} GiB")
                else:
                    model = _measure_point(point, model, tshape, t, seq, c, cfg)
                if "skipped" in point:
                    print(f"{t.label} {mode} {c} chars: skipped: {point['skipped']}", file=sys.stderr)
                elif "oom" in point.get("measurement", {}):
                    print(f"{t.label} {mode}{'/' + loss if loss else ''} {c} chars: out of GPU memory "
                          f"(recorded; sweep goes on)", file=sys.stderr)
            results["points"].append(point)
            bar.update(1)
            if measure:
                _atomic_write(out / "results.json", json.dumps(_clean(results), indent=1, ensure_ascii=False))
        if model is not None:
            from .bench import free

            free(model)
            model = None
    bar.close()
    results["break_even"] = break_even_table(results, shape)
    results["claim"] = claim_table(results)
    write_outputs(results, out)
    return results


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(progress: bool, total: int):
    if not progress:
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, desc="vram points", unit="pt")


def _measure_point(point: dict, model, tshape: ModelShape, t: Tok, seq: list[int], chars: int, cfg: VramConfig):
    """Measure one point in place; returns the (possibly newly built or LoRA-wrapped) model."""
    from . import bench

    mode = point["mode"]
    try:
        warm = seq[: min(len(seq), 512)]
        if model is None:  # one model per (mode, tokenizer); warmed up once
            model = bench.build_model(tshape)
            if mode == "train":
                model = bench.add_lora(model, cfg.lora_rank)
                bench.measure_train(model, warm, loss="full", repeats=1, warmup=False)
                bench.measure_train(model, warm, loss="chunked", repeats=1, warmup=False)
            else:
                bench.measure_inference(model, warm, chars, decode_tokens=4, repeats=1)
        if mode == "inference":
            m = bench.measure_inference(model, seq, chars, decode_tokens=cfg.decode_tokens, repeats=cfg.repeats)
        else:
            m = bench.measure_train(model, seq, loss=point["loss"], repeats=cfg.repeats, chunk=cfg.loss_chunk)
    except Exception as e:  # noqa: BLE001
        if not bench._is_oom(e):
            raise
        m = {"oom": str(e).split("\n")[0][:300]}
        bench.free()
    point["measurement"] = m
    if "peak_allocated" in m:
        a = point["analytic"]["peak"]
        point["analytic_over_measured"] = a / m["peak_allocated"]
    return model


# --------------------------------------------------------------------------- break-even and claim
def _base_label(results: dict) -> str | None:
    for t in results["tokenizers"]:
        if t["strategy"] == "base":
            return t["label"]
    return None


def _index(results: dict) -> dict:
    return {(p["tokenizer"], p["mode"], p.get("loss"), p["chars"]): p for p in results["points"]}


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
            for loss in ("full", "chunked"):
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
    if results.get("claim"):
        lines += ["", "## The claim: the text that is N base-tokenizer tokens, with each tokenizer", "",
                  "| N | chars | tokenizer | tokens | vocab | inference peak GiB (measured) | reserved | analytic | "
                  "train full-loss peak | train chunked-loss peak |", "|---|---|---|---|---|---|---|---|---|---|"]
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
                         f"{tr('full')} | {tr('chunked')} |")
    return "\n".join(lines) + "\n"


def _rows(x: float) -> str:
    if x == float("inf"):
        return "any"
    if abs(x) >= 1e7:
        return f"{x:.1e}"
    return f"{x:,.0f}"


def write_outputs(results: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    _atomic_write(out / "results.json", json.dumps(_clean(results), indent=1, ensure_ascii=False))
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
    _atomic_write(out / "points.csv", buf.getvalue())
    _atomic_write(out / "summary.md", summary_markdown(results))
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
    modes = [(m, loss) for m, loss in (("inference", None), ("train", "full"), ("train", "chunked"))
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
    for ax, panel in zip(axes[0], panels):
        for t in toks:
            if panel == "train":
                sel = [p for p in pts if p["tokenizer"] == t and p["mode"] == "train" and p.get("loss") == "chunked"]
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
                ax.plot(*zip(*xy), "o-", color=colors[t], label=t)
        ax.set_xscale("log")
        if panel != "decode":
            ax.set_yscale("log")
        ax.set_xlabel("characters of context")
        ax.set_ylabel({"prefill": "prefill latency, s" if measured else "prefill TFLOPs (analytic)",
                       "decode": "decode characters / s (greedy, batch 1)",
                       "train": "LoRA fwd+bwd step, s (chunked loss)"}[panel])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{results['model']['name']} on {results['environment'].get('gpu', 'no GPU')}\n{cmd[:160]}",
                 fontsize=8)
    fig.tight_layout()
    p = out / "latency_vs_chars.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    written.append(p)

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


# --------------------------------------------------------------------------- CLI
def _run_cli(args: argparse.Namespace) -> int:
    modes = ["inference", "train"] if args.mode == "both" else [args.mode]
    cfg = VramConfig(
        model=args.model, tokenizers=args.tokenizer, text=args.text, chars=parse_chars(args.chars), modes=modes,
        out=args.out, base_tokenizer=args.base_tokenizer,
        at_tokens=[int(x) for x in parse_chars(args.at_tokens)] if args.at_tokens else [],
        train_chars=parse_chars(args.train_chars) if args.train_chars else None,
        decode_tokens=args.decode_tokens, repeats=args.repeats, lora_rank=args.lora_rank,
        loss_chunk=args.loss_chunk, time_budget=args.time_budget, measure=not args.no_measure,
    )
    command = _command_from_args(args)
    results = run(cfg, command=command, progress=not args.quiet)
    print(summary_markdown(results))
    print(f"wrote {cfg.out}/results.json, points.csv, summary.md and plots")
    return 0


def add_cli(sub) -> None:
    p = sub.add_parser(
        "vram",
        help="GPU memory and speed per tokenizer: analytic model + CUDA measurement, break-even table",
        description="For each tokenizer and context length (characters of the same text), report token count, "
        "an analytic estimate (weights with the vocabulary part, KV cache, activations, logits, FLOPs) and, "
        "where CUDA is present, measured prefill peak memory and latency, KV bytes, decode tokens/s and chars/s, "
        "and LoRA train-step memory with full-vocabulary vs chunked loss. Writes results.json, points.csv, "
        "summary.md and plots to --out.",
        epilog="example: hypertok vram --model mistral-7b --tokenizer mistral-v3 tok32k:extend tok32k:replace "
        "--text dev.txt --chars 8k,32k,128k,256k --at-tokens 60000 --mode both --train-chars 8k,32k --out vram/",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    d = VramConfig()
    p.add_argument("--model", default=d.model, help="built-in shape (mistral-7b), a config.json, or a checkpoint folder")
    p.add_argument("--tokenizer", nargs="+", default=d.tokenizers,
                   help="mistral-v3, mistral-v1, or a HyperTok DIR[:extend|:replace] (bare DIR = replace)")
    p.add_argument("--text", required=True, help="UTF-8 text; the same prefix is cut for every tokenizer")
    p.add_argument("--chars", default="8000,32000,128000", help="context lengths in characters (k/M suffixes)")
    p.add_argument("--at-tokens", default="", help="also measure the prefix that is N tokens of the first tokenizer")
    p.add_argument("--mode", choices=["inference", "train", "both"], default="inference")
    p.add_argument("--train-chars", default="", help="lengths for train mode (default: all --chars)")
    p.add_argument("--base-tokenizer", default=d.base_tokenizer, choices=sorted(MISTRAL_SP_FILES),
                   help="the base model's tokenizer that :extend adds to")
    p.add_argument("--decode-tokens", type=int, default=d.decode_tokens, help="greedy decode steps per point")
    p.add_argument("--repeats", type=int, default=d.repeats, help="timed runs per point (median reported)")
    p.add_argument("--lora-rank", type=int, default=d.lora_rank)
    p.add_argument("--loss-chunk", type=int, default=d.loss_chunk, help="tokens per chunk of the chunked loss")
    p.add_argument("--time-budget", type=float, default=None, help="seconds of GPU measurement; later points skipped")
    p.add_argument("--no-measure", action="store_true", help="analytic only, even where CUDA is present")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(run=_run_cli)


def _command_from_args(args: argparse.Namespace) -> str:
    """The command line that reproduces this run (from the parsed arguments)."""
    parts = ["hypertok", "vram", "--model", args.model, "--tokenizer", *args.tokenizer, "--text", args.text,
             "--chars", args.chars, "--mode", args.mode, "--out", args.out]
    for flag, val, default in [("--at-tokens", args.at_tokens, ""), ("--train-chars", args.train_chars, ""),
                               ("--base-tokenizer", args.base_tokenizer, "mistral-v3"),
                               ("--decode-tokens", args.decode_tokens, 128), ("--repeats", args.repeats, 3),
                               ("--lora-rank", args.lora_rank, 16), ("--loss-chunk", args.loss_chunk, 4096),
                               ("--time-budget", args.time_budget, None)]:
        if val != default:
            parts += [flag, str(val)]
    if args.no_measure:
        parts.append("--no-measure")
    return " ".join(shlex.quote(str(x)) for x in parts)
