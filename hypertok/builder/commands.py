"""The builder commands: ``hypertok build`` and ``hypertok demo``.

``build`` takes one flag per ``BuildConfig`` field, made by ``hypertok.options`` from the
field's help metadata, so every build parameter is reachable and documented once
(issue 9). ``demo`` builds a small vocabulary from the navec word list and shows
encode/decode on a few sentences.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from ..core.tokenizer import HyperTok
from ..options import add_dataclass_arguments, dataclass_from_args
from .build import build
from .candidates import MODES
from .config import BuildConfig
from ..text import DEFAULT_CORPUS

DEMO_SENTENCES = [
    "Мне было тогда лет двадцать пять, – начал Н.Н., – дела давно минувших дней.",
    "Он изучал цикл Кребса, в том числе потому что любовь к науке была сильнее его.",
    "Столами и стульями никто не пользовался. Emoji 🙂, English and 12345 stay lossless.",
]
DEMO_CONCEPTS = {"цикл Кребса": "Ⓚ", "любовь": "❤", "в том числе": None}


def configure_build(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Build a HyperTok vocabulary and tokenizer directory. With no --corpus, the default "
                          f"corpus: {' + '.join(DEFAULT_CORPUS)} under ../shared/corpora (or $HYPERTOK_CORPORA); "
                          "--corpus navec uses the navec 250K-word list that ships in natasha (offline).")
    parser.epilog = ("example: hypertok build --corpus ../shared/corpora/ruslit/train.txt "
                     "../shared/corpora/modern/ru-modern-train-*.txt.xz --vocab-size 64000 --mode concept --out tok64k "
                     "(the shell expands the glob; --corpus also takes a folder)")
    parser.add_argument("--corpus", nargs="*", default=["default"],
                        help="UTF-8 text files or folders, .xz/.gz/.zst read directly (streamed); 'default' = the "
                             "shared modern + ruslit corpus; 'navec' = the offline word list (default: default)")
    parser.add_argument("--out", required=True, help="tokenizer directory to write (atomically)")
    parser.add_argument("--force", action="store_true",
                        help="rewrite --out if it is a HyperTok directory: its four files are replaced, other files "
                             "there stay (no other folder is ever written into)")
    add_dataclass_arguments(parser.add_argument_group("build parameters (BuildConfig)"), BuildConfig)


def run_build(args: argparse.Namespace) -> int:
    import sys
    import warnings

    cfg = dataclass_from_args(BuildConfig, args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tok = build(args.corpus, args.out, cfg, overwrite=args.force, progress=True)
    for w in caught:
        print(f"hypertok build: warning: {w.message}", file=sys.stderr)
    print(f"wrote {args.out}: {len(tok)} tokens ({tok.kind_counts()})")
    return 0


def configure_demo(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Build a vocabulary from the navec word list that ships inside natasha (offline, no "
                          "corpus needed) and show encode, decode, the symbol view and the segmentation of a few "
                          "sentences. The first run builds (about a minute); --out keeps the build for the next.")
    parser.epilog = "example: hypertok demo --vocab-size 8000 --mode word --out demo-tok"
    parser.add_argument("--vocab-size", type=int, default=32000, help="vocabulary size (default: %(default)s)")
    parser.add_argument("--mode", choices=list(MODES), default="concept", help="build mode (default: %(default)s)")
    parser.add_argument("--out", help="keep the built directory here (reused if present; default: a new temporary folder)")


def run_demo(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="hypertok-demo-"))
    out = Path(args.out) if args.out else work / "tok"
    if (out / "config.json").exists():
        tok = HyperTok.load(out)
    else:
        concepts = work / "concepts.json"
        concepts.write_text(json.dumps(DEMO_CONCEPTS, ensure_ascii=False), encoding="utf-8")
        # CJK symbols (issue 24, item 15): the default pool, Private Use Area code points, shows blank in terminals
        cfg = BuildConfig(vocab_size=args.vocab_size, mode=args.mode, concepts=str(concepts), symbols="cjk")
        print(f"building a {cfg.mode} vocabulary of {cfg.vocab_size} tokens from the navec word list, "
              f"with the concepts {DEMO_CONCEPTS} ...")
        tok = build([], out, cfg, progress=True)
    print(f"tokenizer directory: {out}  ({len(tok)} tokens: {tok.kind_counts()})\n")
    for s in DEMO_SENTENCES:
        ids = tok.encode(s)
        sym = tok.to_symbols(s)
        back = tok.decode(ids)
        print(f"text    : {s}")
        print(f"tokens  : {len(ids)} ({len(s) / max(len(ids), 1):.2f} chars/token)")
        print(f"symbols : {sym}" + ("  (Private Use Area code points: blank in most terminals; build with "
                                    "--symbols cjk to see them)" if any(0xE000 <= ord(c) <= 0xF8FF or ord(c) >= 0xF0000
                                                                         for c in sym) else ""))
        print(tok.inspect(s))
        print(f"lossless: {back == s and tok.from_symbols(sym) == s}\n")
        if back != s:
            return 1
    return 0
