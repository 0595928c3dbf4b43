"""``hypertok vram``: what shorter sequences buy in GPU memory and speed, and what new rows cost.

What it does: for each tokenizer (Mistral's own, or a HyperTok directory used to
``extend`` or ``replace`` the base vocabulary) and each context length in characters, it
cuts the same prefix of one text, tokenizes it, sizes the model's vocabulary for that
tokenizer, and reports the token count, the analytic estimate of :mod:`hypertok.gpu.memory`
(weights with the vocabulary part, KV cache, activation peak, logits, FLOPs) and, where
CUDA is present, the figures :mod:`hypertok.gpu.bench` measures on a random-init bf16 model.
It then answers the break-even question (how many new vocabulary rows the shorter
sequence pays for at each length) and writes ``results.json``, ``points.csv``,
``summary.md`` and plots into ``--out`` (:mod:`hypertok.gpu.report`).

Tokenizer names (all from :func:`hypertok.registry.load_tokenizer`): ``mistral-v3`` /
``mistral-v1`` (the SentencePiece files that ship in ``mistral-common``, read with plain
``sentencepiece``; ``$HYPERTOK_MISTRAL_DATA`` may name a folder with copies), or ``DIR``,
``DIR:extend``, ``DIR:replace`` for a HyperTok (or ``tokenizer.json``) directory (a bare
``DIR`` means ``replace``). ``extend`` uses the exact vocabulary transfer of
:mod:`hypertok.registry.adapted` (base + the entries the base lacks; fallback runs
re-spelled with base pieces).

Train mode measures one LoRA forward+backward with each loss of ``--losses``: ``full``
(Hugging Face's, every logit), ``chunked`` (:func:`hypertok.loss.chunked_cross_entropy`)
and ``liger`` (:func:`hypertok.loss.fused_cross_entropy`, on request: it needs CUDA and
the liger-kernel package). The report then sets each tokenizer's train peak beside the
base tokenizer's (issue 10: does a 128k vocabulary with a fused loss stay at or below
Mistral's 32k?).

What it does not do: no training, no trained weights (memory and speed do not depend on
them), no batch > 1. Measured-only fields are absent, not zero, without CUDA.

Follows issue 4 ("VRAM, attention and speed"). Since issue 9 it is a command module
(:func:`configure`/:func:`run`; the sweep itself is :func:`sweep`) and its tokenizers come
from :mod:`hypertok.registry`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from ..errors import HyperTokError
from ..files import atomic_write, check_results_out
from ..options import HelpFormatter, add_dataclass_arguments, dataclass_from_args, flag_name, option
from ..registry.base import Tokenizer
from ..registry.mistral import MISTRAL_SENTENCEPIECE
from ..text import read_nonempty_text
from .memory import GIB, TRAIN_LOSSES, ModelShape, estimate, load_shape
from .report import (OUTPUT_NAMES, _clean, break_even_table, claim_table, is_own_results, summary_markdown,
                     vs_base_table, write_outputs)

# --------------------------------------------------------------------------- tokenizers
def sweep_tokenizer(spec: str, base: str = "mistral-v3", base_rows: int | None = None) -> Tokenizer:
    """A ``--tokenizer`` of the sweep: ``mistral-v3``, ``mistral-v1``, or ``DIR``, ``DIR:extend``,
    ``DIR:replace`` (a bare ``DIR`` means ``replace``, unlike :func:`hypertok.registry.load_tokenizer`, where it
    is the directory's own vocabulary), from the registry.

    The model vocabulary it needs is its ``vocab_size``; its label is its ``name``.
    """
    from ..registry import STRATEGIES, Unavailable, load_tokenizer

    if spec not in MISTRAL_SENTENCEPIECE and not spec.endswith(tuple(":" + s for s in STRATEGIES)):
        if not Path(spec).is_dir():
            raise HyperTokError(f"--tokenizer {spec!r}: not {', '.join(MISTRAL_SENTENCEPIECE)} and no such directory; "
                                "give a HyperTok directory, optionally with :extend or :replace")
        spec = f"{spec}:replace"
    try:
        return load_tokenizer(spec, base, base_rows=base_rows)
    except Unavailable as e:
        raise HyperTokError(f"--tokenizer {spec}: {e}; pip install mistral-common, or copy its data/*.model.* "
                            "files to a folder and set HYPERTOK_MISTRAL_DATA to it") from None


def tokenizer_info(tok: Tokenizer) -> dict:
    """What ``results.json`` records of one tokenizer (label, strategy, model vocabulary, source)."""
    recipe = getattr(tok, "recipe", None)
    if recipe is None:  # the base model's own tokenizer
        return {"label": tok.name, "strategy": "base", "vocab": tok.vocab_size, "tokenizer_size": tok.vocab_size,
                "path": str(tok.path), "build": {}}
    new = tok.new
    return {"label": tok.name, "strategy": recipe.strategy, "vocab": tok.vocab_size, "tokenizer_size": len(new),
            "path": str(new.path), "build": dict(getattr(new, "config", None) or {})}


# --------------------------------------------------------------------------- text and lengths
def parse_chars(s: str, flag: str = "--chars") -> list[int]:
    """``"8000,32k,1.5M"`` -> ``[8000, 32000, 1500000]``; errors name ``flag``.

    >>> parse_chars("8000,32k,1.5M")
    [8000, 32000, 1500000]
    >>> parse_chars("-5", "--at-tokens")
    Traceback (most recent call last):
    ...
    hypertok.errors.HyperTokError: --at-tokens: values must be positive, got -5
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
        except (ValueError, OverflowError):
            raise HyperTokError(f"{flag}: {part!r} is not a number (e.g. 8000,32k,256k)") from None
        if v <= 0:
            raise HyperTokError(f"{flag}: values must be positive, got {v}")
        out.append(v)
    if not out:
        raise HyperTokError(f"{flag}: give at least one value, e.g. 8000,32000,128000")
    return sorted(set(out))


def parse_losses(s: str) -> list[str]:
    """``"full, liger"`` -> ``["full", "liger"]``; :class:`VramConfig` checks the names.

    >>> parse_losses("full, chunked,liger")
    ['full', 'chunked', 'liger']
    """
    return [x.strip().lower() for x in s.split(",") if x.strip()]


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
def parse_modes(s: str) -> list[str]:
    """``--mode``: ``inference``, ``train`` or ``both``.

    >>> parse_modes("both")
    ['inference', 'train']
    """
    if s not in ("inference", "train", "both"):
        raise HyperTokError(f"--mode {s!r}: use inference, train or both")
    return ["inference", "train"] if s == "both" else [s]


@dataclass
class VramConfig:
    """What ``hypertok vram`` runs: every field is one of its flags (``--tokenizer`` for ``tokenizers``,
    ``--mode`` for ``modes``, comma-separated lengths such as ``8k,32k`` for the lists of numbers)."""

    model: str = option("mistral-7b", "built-in shape (mistral-7b), a config.json, or a checkpoint folder")
    tokenizers: list[str] = option(help="mistral-v3, mistral-v1, or a HyperTok DIR[:extend|:replace] (bare DIR = "
                                        "replace)", default_factory=lambda: ["mistral-v3"], flag="--tokenizer",
                                   show="mistral-v3", metavar="SPEC")
    text: str = option("", "UTF-8 text; the same prefix is cut for every tokenizer", required=True, metavar="FILE")
    chars: list[int] = option(help="context lengths in characters (k/M suffixes)",
                              default_factory=lambda: [8000, 32000, 128000], parse=parse_chars,
                              show="8000,32000,128000", metavar="LIST")
    at_tokens: list[int] = option(help="also measure the prefixes that are N tokens of the first tokenizer "
                                       "(comma-separated, k/M suffixes; default: none)", default_factory=list,
                                  parse=lambda s: parse_chars(s, "--at-tokens"), metavar="LIST")
    modes: list[str] = option(help="inference prefill/decode, LoRA train step, or both",
                              default_factory=lambda: ["inference"], flag="--mode", parse=parse_modes,
                              show="inference", metavar="{inference,train,both}")
    train_chars: list[int] | None = option(None, "context lengths in characters for train mode (default: those "
                                                 "of --chars)", parse=lambda s: parse_chars(s, "--train-chars"),
                                           metavar="LIST")
    base_tokenizer: str = option("mistral-v3", "the base model's tokenizer that :extend adds to",
                                 choices=MISTRAL_SENTENCEPIECE)
    decode_tokens: int = option(128, "greedy decode steps per point")
    repeats: int = option(3, "timed runs per point (median reported)")
    lora_rank: int = option(16, "LoRA rank of the train step")
    loss_chunk: int = option(4096, "tokens per chunk of the chunked loss")
    losses: list[str] = option(help="train-mode losses, comma-separated: full (Hugging Face's, all logits), chunked "
                                    "(hypertok.loss), liger (Liger's fused linear cross-entropy: measuring it needs "
                                    "CUDA and pip install liger-kernel)", default_factory=lambda: ["full", "chunked"],
                               parse=parse_losses, show="full,chunked", metavar="LIST")
    time_budget: float | None = option(None, "seconds of GPU measurement; later points are skipped (default: no "
                                             "limit)")
    measure: bool = option(True, "measure on CUDA where present (--no-measure: analytic only)")
    out: str = option("vram-out", "output folder (an earlier vram's results are replaced; a results.json, "
                                  "summary.md, ... that vram did not write is never overwritten)", required=True,
                     metavar="DIR")

    def __post_init__(self) -> None:
        for m in self.modes:
            if m not in ("inference", "train"):
                raise HyperTokError(f"--mode {m!r}: use inference, train, or both (inference,train)")
        if not self.tokenizers:
            raise HyperTokError("--tokenizer: give at least one tokenizer")
        for name in ("decode_tokens", "repeats", "lora_rank", "loss_chunk"):
            if getattr(self, name) < 1:
                raise HyperTokError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.time_budget is not None and not self.time_budget > 0:
            raise HyperTokError(f"--time-budget must be a positive number of seconds, got {self.time_budget}")
        if not self.losses:
            raise HyperTokError(f"--losses: give at least one of {','.join(TRAIN_LOSSES)}")
        for loss in self.losses:
            if loss not in TRAIN_LOSSES:
                raise HyperTokError(f"--losses {loss!r}: use a comma-separated list of {', '.join(TRAIN_LOSSES)}")
        if len(set(self.losses)) != len(self.losses):
            raise HyperTokError(f"--losses {','.join(self.losses)}: a loss is named twice")


def _sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sweep(cfg: VramConfig, command: str | None = None, progress: bool = True) -> dict:
    """The whole sweep; writes results into ``cfg.out`` after every measured point and at the end."""
    from .bench import cuda_available, environment

    check_results_out(cfg.out, OUTPUT_NAMES, "hypertok vram", own=is_own_results)  # a user's files stay (issue 24)
    measure = cfg.measure and cuda_available()
    if measure and "train" in cfg.modes and "liger" in cfg.losses:  # before any model or tokenizer loads
        from ..loss import check_liger

        check_liger("--losses liger", "leave liger out of --losses, or add --no-measure for its analytic figures")
    shape = load_shape(cfg.model)
    text = read_nonempty_text(cfg.text)
    toks = [sweep_tokenizer(s, cfg.base_tokenizer, base_rows=shape.vocab) for s in cfg.tokenizers]
    labels = [t.name for t in toks]
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
        "tokenizers": [tokenizer_info(t) for t in toks],
        "at_tokens": {str(k): v for k, v in at_points.items()},
        "points": [],
    }
    # Tokenize every prefix up front (CPU); the model sweep then only needs ids.
    ids: dict[tuple[str, int], list[int]] = {}
    for t in toks:
        for c in sorted(set(chars) | set(train_chars if "train" in cfg.modes else [])):
            ids[(t.name, c)] = t.encode(text[:c])
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
        plan += [("train", t, [(loss, c) for c in train_chars for loss in cfg.losses]) for t in toks]
    bar = _bar(progress, total=sum(len(items) for _, _, items in plan))
    for mode, t, items in plan:
        tshape = shape.with_vocab(t.vocab_size)
        model = None
        for loss, c in items:
            seq = ids[(t.name, c)]
            kw = {} if mode == "inference" else {"loss": loss, "lora_rank": cfg.lora_rank, "chunk": cfg.loss_chunk}
            est = estimate(tshape, len(seq), mode, **kw)
            point = {"tokenizer": t.name, "mode": mode, "chars": c, "tokens": len(seq),
                     "chars_per_token": c / max(len(seq), 1), "vocab": t.vocab_size, "analytic": est}
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
                    print(f"{t.name} {mode} {c} chars: skipped: {point['skipped']}", file=sys.stderr)
                elif "oom" in point.get("measurement", {}):
                    print(f"{t.name} {mode}{'/' + loss if loss else ''} {c} chars: out of GPU memory "
                          f"(recorded; sweep goes on)", file=sys.stderr)
            results["points"].append(point)
            bar.update(1)
            if measure:
                atomic_write(out / "results.json", json.dumps(_clean(results), indent=1, ensure_ascii=False))
        if model is not None:
            from .bench import free

            free(model)
            model = None
    bar.close()
    results["break_even"] = break_even_table(results, shape)
    results["claim"] = claim_table(results)
    results["vs_base"] = vs_base_table(results)
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


def _measure_point(point: dict, model, tshape: ModelShape, t: Tokenizer, seq: list[int], chars: int, cfg: VramConfig):
    """Measure one point in place; returns the (possibly newly built or LoRA-wrapped) model."""
    from . import bench

    mode = point["mode"]
    try:
        warm = seq[: min(len(seq), 512)]
        if model is None:  # one model per (mode, tokenizer); warmed up once
            model = bench.build_model(tshape)
            if mode == "train":
                model = bench.add_lora(model, cfg.lora_rank)
                for loss in cfg.losses:
                    bench.measure_train(model, warm, loss=loss, repeats=1, warmup=False)
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


# --------------------------------------------------------------------------- CLI
def run(args: argparse.Namespace) -> int:
    """Run ``hypertok vram``."""
    # before any work (issue 13); a user's results.json, summary.md, ... there is never overwritten (issue 24)
    check_results_out(args.out, OUTPUT_NAMES, "hypertok vram", own=is_own_results)
    cfg = dataclass_from_args(VramConfig, args)
    results = sweep(cfg, command=command_of(cfg), progress=not args.quiet)
    print(summary_markdown(results))
    print(f"wrote {cfg.out}/results.json, points.csv, summary.md and plots")
    return 0


def configure(p: argparse.ArgumentParser) -> None:
    """The options of ``hypertok vram``: the fields of :class:`VramConfig`, and ``--quiet``."""
    p.description = ("For each tokenizer and context length (characters of the same text), report token count, "
        "an analytic estimate (weights with the vocabulary part, KV cache, activations, logits, FLOPs) and, "
        "where CUDA is present, measured prefill peak memory and latency, KV bytes, decode tokens/s and chars/s, "
        "and LoRA train-step memory with each loss of --losses (full-vocabulary, chunked, Liger's fused), set "
        "beside the base tokenizer's. Writes results.json, points.csv, summary.md and plots to --out.")
    p.epilog = ("example: hypertok vram --model mistral-7b --tokenizer mistral-v3 tok32k:extend tok32k:replace "
        "--text dev.txt --chars 8k,32k,128k,256k --at-tokens 60000 --mode both --train-chars 8k,32k "
        "--losses full,chunked,liger --out vram/")
    p.formatter_class = HelpFormatter
    add_dataclass_arguments(p, VramConfig)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def command_of(cfg: VramConfig) -> str:
    """The command line that reproduces ``cfg``: the flags whose values differ from the defaults.

    >>> command_of(VramConfig(text="dev.txt", chars=[8000, 32000], modes=["inference", "train"], out="o"))
    'hypertok vram --text dev.txt --chars 8000,32000 --mode both --out o'
    """
    default = VramConfig()
    parts = ["hypertok", "vram"]
    for f in fields(VramConfig):
        value = getattr(cfg, f.name)
        if value == getattr(default, f.name) and f.name not in ("text", "out"):
            continue
        flag = f.metadata.get("flag", flag_name(f.name))
        if isinstance(value, bool):
            parts.append(flag if value else "--no-" + flag[2:])
        elif f.name == "modes":
            parts += [flag, "both" if len(value) == 2 else value[0]]
        elif f.name == "tokenizers":
            parts += [flag, *value]
        elif isinstance(value, list):
            parts += [flag, ",".join(map(str, value))]
        else:
            parts += [flag, str(value)]
    return " ".join(shlex.quote(x) for x in parts)
