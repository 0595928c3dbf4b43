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
import json
import os

from ..errors import HyperTokError
from ..options import HelpFormatter, add_dataclass_arguments, dataclass_from_args
from .train import DTYPES, STRATEGIES

# ----------------------------------------------------------------------------------------
# hypertok adapt
# ----------------------------------------------------------------------------------------


def configure_adapt(p: argparse.ArgumentParser) -> None:
    from .train import AdaptConfig, TrainConfig

    p.formatter_class = HelpFormatter
    p.description = (
        "Resize the base model to a HyperTok vocabulary (extend: base + new entries; replace: HyperTok alone), "
        "initialise new rows (mean of base pieces, random, or hewitt), train LoRA on all linear layers plus the "
        "new rows, and save adapter + tokenizer + resize recipe into --out. The base is read from a local folder "
        "only; nothing is downloaded. Text given to --train/--eval is first packed into --out/data "
        "(see `hypertok prepare`).")
    p.epilog = ("example: hypertok adapt --base ~/models/Mistral-7B-v0.3 --tokenizer tok32k --train train.txt "
                "--eval dev.txt --out adapters/ru32k --strategy extend --init mean --steps 2000 --batch-size 8 "
                "--seq-len 2048 --dtype bfloat16")
    add_dataclass_arguments(p, AdaptConfig, skip=("loop",))
    add_dataclass_arguments(p.add_argument_group("training loop"), TrainConfig, skip=("desc",))


def run_adapt(args: argparse.Namespace) -> int:
    from .train import AdaptConfig, TrainConfig, adapt

    cfg = dataclass_from_args(AdaptConfig, args, loop=dataclass_from_args(TrainConfig, args))
    res = adapt(cfg)
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun one summary, from rank 0
        return 0
    last = res.history[-1] if res.history else {}
    print(json.dumps({"out": res.out, "steps": last.get("step"), "loss": last.get("loss"),
                      "eval_bpc": last.get("eval_bpc"), "model_vocab_size": len(res.tokenizer)}))
    return 0


# ----------------------------------------------------------------------------------------
# hypertok prepare
# ----------------------------------------------------------------------------------------


def configure_prepare(p: argparse.ArgumentParser) -> None:
    p.formatter_class = HelpFormatter
    p.description = (
        "Encode text files with the adapted tokenizer of --base + --tokenizer + --strategy and write the packed "
        "stream <s> doc </s> <s> doc </s> ... as OUT.bin (uint32 ids) and OUT.json (tokenizer hash, documents, "
        "tokens, characters). Documents are blocks separated by a blank line. `hypertok adapt --train OUT.bin` "
        "reads it with a memory map.")
    p.epilog = ("example: hypertok prepare --base ~/models/Mistral-7B-v0.3 --tokenizer tok32k --strategy extend "
                "--text train.txt --out data/ru32k-extend-train")
    p.add_argument("--base", required=True, help="local checkpoint folder (its tokenizer.model or tokenizer.json)")
    p.add_argument("--tokenizer", required=True, help="HyperTok directory (or a folder with tokenizer.json)")
    p.add_argument("--strategy", choices=STRATEGIES, default="extend",
                   help="extend: base + new entries; replace: the new vocabulary alone")
    p.add_argument("--text", nargs="+", required=True, help="UTF-8 text files (blank line = document break)")
    p.add_argument("--out", required=True, help="output prefix: writes OUT.bin and OUT.json")
    p.add_argument("--force", action="store_true",
                   help="replace OUT.bin and OUT.json if `hypertok prepare` wrote them (a file of that name it did "
                        "not write is never replaced)")
    p.add_argument("--max-chars", type=int, default=0, help="stop after the document that reaches N characters (0: all)")
    p.add_argument("--batch", type=int, default=2048, help="documents encoded per batch")


def run_prepare(args: argparse.Namespace) -> int:
    from ..files import check_out
    from .data import check_prepare_out, prepare
    from .recipe import plan

    check_out(args.out, kind="file")
    check_prepare_out(args.out, args.force)
    for name, v in (("--max-chars", args.max_chars), ("--batch", args.batch - 1)):
        if v < 0:
            raise HyperTokError(f"{name} must be at least {0 if name == '--max-chars' else 1}")
    tok = plan(args.base, args.tokenizer, args.strategy)
    meta = prepare(tok, args.text, args.out, args.max_chars, what="--text", batch=args.batch, force=args.force)
    print(meta.to_json())
    return 0


# ----------------------------------------------------------------------------------------
# hypertok eval
# ----------------------------------------------------------------------------------------


def configure_eval(p: argparse.ArgumentParser) -> None:
    from .evaluate import MAX_CONTEXT  # the bound of --seq-len, --gen-tokens, --context-chars (issue 24)

    p.formatter_class = HelpFormatter
    p.description = (
        "Measure a base model (its own tokenizer) or base + adapter on held-out text. "
        "bpc/bpb: bits per character and per byte over windows of --seq-len tokens; every model predicts the same "
        "characters, but a tokenizer with longer tokens fits more characters of context in a window. "
        "bpc_equal_context/bpb_equal_context: the same text cut into windows of at most --context-chars "
        "characters at whitespace, by the text alone, each scored from <bos>; every model then predicts the same "
        "characters from the same characters, so this is the figure that compares tokenizers fairly. "
        "pairs: for each --pairs file (RuBLiMP-style minimal pairs), the share of pairs whose grammatical sentence "
        "gets the higher total log-probability; the total log-probability of a string does not depend on how it "
        "is segmented, so this too compares vocabularies. Also generation characters per second (batch 1, KV "
        "cache, median of repeats) and the share of generated tokens that are new vocabulary entries.")
    p.epilog = ("example: hypertok eval --base ~/models/Mistral-7B-v0.3 --adapter adapters/ru32k --text dev.txt "
                "--context-chars 2048 --pairs ../shared/evals/rublimp/dev.tsv --pairs-per-phenomenon 50")
    p.add_argument("--base", required=True,
                   help="local checkpoint folder: a plain base, the base of --adapter, or a `hypertok merge` folder")
    p.add_argument("--adapter", help="adapter folder from `hypertok adapt` (default: none: --base alone is measured)")
    p.add_argument("--text", required=True, help="held-out UTF-8 text (blank line = document break)")
    p.add_argument("--max-chars", type=int, default=0, help="use only the first N characters of --text (0: all)")
    p.add_argument("--seq-len", type=int, default=1024, help=f"tokens per evaluation window (at most {MAX_CONTEXT}, "
                   "the longest context of the bases HyperTok adapts)")
    p.add_argument("--gen-tokens", type=int, default=256, help=f"tokens generated after each prompt (at most {MAX_CONTEXT})")
    p.add_argument("--prompts", type=int, default=4, help="prompts (first 200 characters of documents)")
    p.add_argument("--repeats", type=int, default=3, help="timed rounds (the median is reported)")
    p.add_argument("--context-chars", type=int, default=2048,
                   help="characters per window of bpc_equal_context: the same windows, cut at whitespace, for "
                        f"every tokenizer (0: off; at most {MAX_CONTEXT})")
    p.add_argument("--pairs", nargs="+", action="extend", default=[], metavar="FILE",
                   help="minimal-pair TSV files (header with good, bad, optionally phenomenon; e.g. RuBLiMP's "
                        "dev.tsv): accuracy of logP(good) > logP(bad), reported under pairs[file stem] (repeatable; default: none)")
    p.add_argument("--pairs-per-phenomenon", type=int, default=0,
                   help="score only the first N pairs of each phenomenon, for quick runs (0: all)")
    p.add_argument("--dtype", choices=DTYPES, default="auto", help="weights dtype")
    p.add_argument("--device", default="auto", help="torch device (auto: cuda if available)")


def run_eval(args: argparse.Namespace) -> int:
    from .evaluate import evaluate

    res = evaluate(args.base, args.adapter, args.text, max_chars=args.max_chars, seq_len=args.seq_len,
                   gen_tokens=args.gen_tokens, prompts=args.prompts, repeats=args.repeats, dtype=args.dtype,
                   device=args.device, context_chars=args.context_chars, pairs=args.pairs,
                   pairs_per_phenomenon=args.pairs_per_phenomenon)
    print(json.dumps(res, indent=1, ensure_ascii=False))
    return 0


# ----------------------------------------------------------------------------------------
# hypertok merge
# ----------------------------------------------------------------------------------------


def configure_merge(p: argparse.ArgumentParser) -> None:
    p.formatter_class = HelpFormatter
    p.description = ("Merge LoRA and the new rows into the resized base and save a full model as save_pretrained "
                     "does (safetensors shards with an index, config, generation_config, tokenizer.json and "
                     "tokenizer_config.json whose ids are the model's rows), which plain transformers and vLLM read; "
                     "HyperTok's recipe and vocabulary lie beside them. For llama.cpp, `hypertok export-gguf` writes the "
                     "merged folder as one GGUF file (llama.cpp's own converter cannot read its Unigram tokenizer.json).")
    p.epilog = "example: hypertok merge --base ~/models/Mistral-7B-v0.3 --adapter adapters/ru32k --out merged-ru32k"
    p.add_argument("--base", required=True, help="local checkpoint folder")
    p.add_argument("--adapter", required=True, help="adapter folder from `hypertok adapt`")
    p.add_argument("--out", required=True, help="new or empty folder to write (written atomically)")
    p.add_argument("--force", action="store_true",
                   help="write into --out again if it is a folder `hypertok merge` wrote: its files are replaced, "
                        "other files there stay (no other folder is ever written into)")
    p.add_argument("--dtype", choices=DTYPES, default="auto", help="dtype of the written weights (auto: the one the base is stored in, float32 or bfloat16, "
                        "merged in float32; else the auto rule of loading: float32 under 1B parameters)")
    p.add_argument("--max-shard-size", default="5GB",
                   help="largest safetensors shard (with model.safetensors.index.json when there are several)")


def run_merge(args: argparse.Namespace) -> int:
    from .model import merge

    out = merge(args.base, args.adapter, args.out, args.dtype, force=args.force, max_shard_size=args.max_shard_size)
    print(f"wrote {out}")
    return 0
