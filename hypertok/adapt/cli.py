"""The model-side commands: ``hypertok adapt``, ``prepare``, ``eval`` and ``merge``.

Each command is a pair ``configure_<name>(parser)`` / ``run_<name>(args) -> int`` that the
command table of ``hypertok.cli`` calls (issue 9's command protocol). Flags of ``adapt`` come
from the fields of :class:`~hypertok.adapt.train.AdaptConfig` and
:class:`~hypertok.adapt.train.TrainConfig` and their ``help`` metadata, so the CLI builds
exactly the config the Python API takes, with one set of defaults.

What it does not do: nothing heavy at import time; torch/transformers/peft are imported by
the ``run_*`` functions only.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing

DTYPES = ("auto", "float32", "bfloat16")
_CHOICES = {"strategy": ("extend", "replace"), "init": ("mean", "random", "hewitt"), "rows": ("tokens", "full"),
            "dtype": DTYPES}
# flags that keep their historical spelling instead of --<field>
_FLAGS = {"grad_ckpt": "--no-grad-ckpt", "progress": "--no-progress"}


def _add_fields(parser: argparse.ArgumentParser, cls, skip=()) -> None:
    """One flag per dataclass field: type, default and help from the field."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        hint, help_ = hints[f.name], f.metadata.get("help", "")
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        default = None if required else (f.default if f.default is not dataclasses.MISSING else f.default_factory())
        flag = "--" + f.name.replace("_", "-")
        if hint is bool:
            if default:
                parser.add_argument(_FLAGS.get(f.name, "--no-" + f.name.replace("_", "-")), dest=f.name,
                                    action="store_false", help=f"turn off: {help_}")
            else:
                parser.add_argument(flag, dest=f.name, action="store_true", help=help_)
            continue
        kw: dict = {"dest": f.name, "help": help_}
        if hint == list[str]:
            kw["nargs"] = "+"
        else:
            base = next((t for t in typing.get_args(hint) if t is not type(None)), hint)
            kw["type"] = base if base in (int, float) else str
        if f.name in _CHOICES:
            kw["choices"] = _CHOICES[f.name]
        if required:
            kw["required"] = True
        else:
            kw["default"] = default
        parser.add_argument(flag, **kw)


def _from_args(cls, args: argparse.Namespace, **extra):
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in vars(args).items() if k in names and k not in extra}, **extra)


# ----------------------------------------------------------------------------------------
# hypertok adapt
# ----------------------------------------------------------------------------------------

ADAPT_HELP = "move a local Mistral-class model onto a HyperTok vocabulary (LoRA + new rows)"


def configure_adapt(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    from .train import AdaptConfig, TrainConfig

    p.description = (
        "Resize the base model to a HyperTok vocabulary (extend: base + new entries; replace: HyperTok alone), "
        "initialise new rows (mean of base pieces, random, or hewitt), train LoRA on all linear layers plus the "
        "new rows, and save adapter + tokenizer + resize recipe into --out. The base is read from a local folder "
        "only; nothing is downloaded. Text given to --train/--eval is first packed into --out/data "
        "(see `hypertok prepare`).")
    p.epilog = ("example: hypertok adapt --base ~/models/Mistral-7B-v0.3 --tokenizer tok32k --train train.txt "
                "--eval dev.txt --out adapters/ru32k --strategy extend --init mean --steps 2000 --batch-size 8 "
                "--seq-len 2048 --dtype bfloat16")
    _add_fields(p, AdaptConfig, skip=("loop",))
    _add_fields(p.add_argument_group("training loop"), TrainConfig, skip=("desc",))


def run_adapt(args: argparse.Namespace) -> int:
    from .train import AdaptConfig, TrainConfig, adapt

    cfg = _from_args(AdaptConfig, args, loop=_from_args(TrainConfig, args))
    res = adapt(cfg)
    last = res["history"][-1] if res["history"] else {}
    print(json.dumps({"out": res["out"], "steps": last.get("step"), "loss": last.get("loss"),
                      "eval_bpc": last.get("eval_bpc"), "model_vocab_size": len(res["tokenizer"])}))
    return 0


# ----------------------------------------------------------------------------------------
# hypertok prepare
# ----------------------------------------------------------------------------------------

PREPARE_HELP = "encode training text once into packed token arrays (.bin + .json) for `hypertok adapt`"


def configure_prepare(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    p.description = (
        "Encode text files with the adapted tokenizer of --base + --tokenizer + --strategy and write the packed "
        "stream <s> doc </s> <s> doc </s> ... as OUT.bin (uint32 ids) and OUT.json (tokenizer hash, documents, "
        "tokens, characters). Documents are blocks separated by a blank line. `hypertok adapt --train OUT.bin` "
        "reads it with a memory map.")
    p.epilog = ("example: hypertok prepare --base ~/models/Mistral-7B-v0.3 --tokenizer tok32k --strategy extend "
                "--text train.txt --out data/ru32k-extend-train")
    p.add_argument("--base", required=True, help="local checkpoint folder (its tokenizer.model)")
    p.add_argument("--tokenizer", required=True, help="HyperTok directory (or a folder with tokenizer.json)")
    p.add_argument("--strategy", choices=_CHOICES["strategy"], default="extend",
                   help="extend: base + new entries; replace: the new vocabulary alone")
    p.add_argument("--text", nargs="+", required=True, help="UTF-8 text files (blank line = document break)")
    p.add_argument("--out", required=True, help="output prefix: writes OUT.bin and OUT.json")
    p.add_argument("--max-chars", type=int, default=0, help="stop after the document that reaches N characters (0: all)")
    p.add_argument("--batch", type=int, default=2048, help="documents encoded per batch")


def run_prepare(args: argparse.Namespace) -> int:
    from .data import prepare
    from .recipe import plan

    tok = plan(args.base, args.tokenizer, args.strategy)
    meta = prepare(tok, args.text, args.out, args.max_chars, what="--text", batch=args.batch)
    print(meta.to_json())
    return 0


# ----------------------------------------------------------------------------------------
# hypertok eval
# ----------------------------------------------------------------------------------------

EVAL_HELP = "bits per character, generation chars/s and new-token share of a model"


def configure_eval(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    p.description = ("Measure a base model (its own tokenizer.model) or base + adapter on held-out text: bits per "
                     "character and per byte (comparable across tokenizers), generation characters per second "
                     "(batch 1, KV cache, median of repeats), and the share of generated tokens that are new "
                     "vocabulary entries.")
    p.epilog = "example: hypertok eval --base ~/models/Mistral-7B-v0.3 --adapter adapters/ru32k --text dev.txt"
    p.add_argument("--base", required=True, help="local checkpoint folder")
    p.add_argument("--adapter", help="adapter folder from `hypertok adapt` (omit to measure the base)")
    p.add_argument("--text", required=True, help="held-out UTF-8 text (blank line = document break)")
    p.add_argument("--max-chars", type=int, default=0, help="use only the first N characters of --text (0: all)")
    p.add_argument("--seq-len", type=int, default=1024, help="tokens per evaluation window")
    p.add_argument("--gen-tokens", type=int, default=256, help="tokens generated after each prompt")
    p.add_argument("--prompts", type=int, default=4, help="prompts (first 200 characters of documents)")
    p.add_argument("--repeats", type=int, default=3, help="timed rounds (the median is reported)")
    p.add_argument("--dtype", choices=DTYPES, default="auto", help="weights dtype")
    p.add_argument("--device", default="auto", help="torch device (auto: cuda if available)")


def run_eval(args: argparse.Namespace) -> int:
    from .evaluate import evaluate

    res = evaluate(args.base, args.adapter, args.text, max_chars=args.max_chars, seq_len=args.seq_len,
                   gen_tokens=args.gen_tokens, prompts=args.prompts, repeats=args.repeats, dtype=args.dtype,
                   device=args.device)
    print(json.dumps(res, indent=1, ensure_ascii=False))
    return 0


# ----------------------------------------------------------------------------------------
# hypertok merge
# ----------------------------------------------------------------------------------------

MERGE_HELP = "write base + adapter as one plain transformers model"


def configure_merge(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    p.description = ("Merge LoRA and the new rows into the resized base and save a full model (for serving "
                     "engines that do not take resized adapters), with the tokenizer files.")
    p.epilog = "example: hypertok merge --base ~/models/Mistral-7B-v0.3 --adapter adapters/ru32k --out merged-ru32k"
    p.add_argument("--base", required=True, help="local checkpoint folder")
    p.add_argument("--adapter", required=True, help="adapter folder from `hypertok adapt`")
    p.add_argument("--out", required=True, help="folder to write (replaced atomically)")
    p.add_argument("--dtype", choices=DTYPES, default="auto", help="weights dtype")


def run_merge(args: argparse.Namespace) -> int:
    from .model import merge

    out = merge(args.base, args.adapter, args.out, args.dtype)
    print(f"wrote {out}")
    return 0


COMMANDS = {"adapt": (configure_adapt, run_adapt, ADAPT_HELP), "prepare": (configure_prepare, run_prepare, PREPARE_HELP),
            "eval": (configure_eval, run_eval, EVAL_HELP), "merge": (configure_merge, run_merge, MERGE_HELP)}
