"""The ``hypertok`` command line.

Core commands (build, encode, decode, inspect, demo) live here. Commands that belong
to a concept of their own (compare, vram, adapt, eval, merge) are registered by that
module's ``add_cli(subparsers)``, so each stays next to the code it drives.

Heavy libraries (torch, transformers, peft) are never imported here: the modules that
need them import them inside the function that runs the command.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from .errors import HyperTokError

# Modules that add their own sub-commands; each must import nothing heavy at top level.
PLUGIN_MODULES = ["hypertok.compare", "hypertok.vram", "hypertok.adapt"]

DEMO_SENTENCES = [
    "Мне было тогда лет двадцать пять, – начал Н.Н., – дела давно минувших дней.",
    "Он изучал цикл Кребса, в том числе потому что любовь к науке была сильнее его.",
    "Столами и стульями никто не пользовался. Emoji 🙂, English and 12345 stay lossless.",
]
DEMO_CONCEPTS = {"цикл Кребса": "Ⓚ", "любовь": "❤", "в том числе": None}


def _add_build(sub: argparse._SubParsersAction) -> None:
    from .vocab import BuildConfig

    p = sub.add_parser(
        "build",
        help="build a HyperTok tokenizer directory from a corpus",
        description="Build a HyperTok vocabulary and tokenizer directory. With no --corpus, "
        "the navec 250K-word Russian frequency list that ships in natasha is used.",
        epilog="example: hypertok build --corpus ../shared/corpora/ruslit/train.txt "
        "--vocab-size 64000 --mode concept --out tok64k",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    d = BuildConfig()
    p.add_argument("--corpus", nargs="*", default=[], help="UTF-8 text files or folders (streamed)")
    p.add_argument("--out", required=True, help="tokenizer directory to write (atomically)")
    p.add_argument("--vocab-size", type=int, default=d.vocab_size, help="total vocabulary size, specials and fallback included")
    p.add_argument("--mode", choices=["word", "morph", "concept"], default=d.mode,
                   help="word: frequent word forms; morph: stems+endings via pymorphy3; concept: morph + multi-word units (the default)")
    p.add_argument("--concepts", help='JSON file {"phrase": "preferred symbol or null"}')
    p.add_argument("--symbols", choices=["auto", "pua", "cjk", "all"], default=d.symbols,
                   help="Unicode pool for the symbol view: Private Use Areas, CJK ideographs, all scripts; "
                   "auto = pua, or all when the vocabulary is larger than the PUA (137 468)")
    p.add_argument("--fallback-share", type=float, default=d.fallback_share, help="share of the budget given to the fallback subword model")
    p.add_argument("--encoding", default=d.encoding, help="corpus encoding (e.g. cp1251)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")


def _run_build(args: argparse.Namespace) -> int:
    from .vocab import BuildConfig, build

    cfg = BuildConfig(
        vocab_size=args.vocab_size, mode=args.mode, concepts=args.concepts, symbols=args.symbols,
        fallback_share=args.fallback_share, encoding=args.encoding,
    )
    tok = build(args.corpus, args.out, cfg, overwrite=args.force, progress=True)
    print(f"wrote {args.out}: {len(tok)} tokens ({tok.kind_counts()})")
    return 0


def _read_input(path: str | None) -> str:
    if path is None or path == "-":
        return sys.stdin.read()
    from .corpus import read_text

    return read_text(path)


def _run_encode(args: argparse.Namespace) -> int:
    from .tokenizer import HyperTok

    tok = HyperTok.load(args.dir)
    text = _read_input(args.file)
    if args.symbols:
        sys.stdout.write(tok.to_symbols(text))
    else:
        sys.stdout.write(" ".join(map(str, tok.encode(text))) + "\n")
    return 0


def _run_decode(args: argparse.Namespace) -> int:
    from .tokenizer import HyperTok

    tok = HyperTok.load(args.dir)
    data = _read_input(args.file)
    if args.symbols:
        sys.stdout.write(tok.from_symbols(data))
        return 0
    ids = []
    for pos, word in enumerate(data.split()):
        try:
            ids.append(int(word))
        except ValueError:
            raise HyperTokError(f"{args.file or 'stdin'}: item {pos} is {word!r}, not an integer id") from None
    sys.stdout.write(tok.decode(ids))
    return 0


def _run_inspect(args: argparse.Namespace) -> int:
    from .tokenizer import HyperTok

    tok = HyperTok.load(args.dir)
    print(tok.inspect(" ".join(args.text)))
    return 0


def _run_demo(args: argparse.Namespace) -> int:
    import tempfile

    from .tokenizer import HyperTok
    from .vocab import BuildConfig, build

    work = Path(tempfile.mkdtemp(prefix="hypertok-demo-"))
    out = Path(args.out) if args.out else work / "tok"
    if (out / "config.json").exists():
        tok = HyperTok.load(out)
    else:
        concepts = work / "concepts.json"
        concepts.write_text(json.dumps(DEMO_CONCEPTS, ensure_ascii=False), encoding="utf-8")
        cfg = BuildConfig(vocab_size=args.vocab_size, mode=args.mode, concepts=str(concepts))
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
        print(f"symbols : {sym}")
        print(tok.inspect(s))
        print(f"lossless: {back == s and tok.from_symbols(sym) == s}\n")
        if back != s:
            return 1
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hypertok",
        description="HyperTok: Russian vocabulary engineering for LLMs. One token, shown as one "
        "Unicode symbol, per frequent word form, morpheme or multi-word concept.",
        epilog="quick start: hypertok demo   |   hypertok build --corpus train.txt --vocab-size 64000 --out tok && "
        "echo 'Привет, мир' | hypertok encode tok --symbols",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    _add_build(sub)
    for name, helptext in [("encode", "text -> ids (or --symbols)"), ("decode", "ids (or --symbols) -> text")]:
        p = sub.add_parser(name, help=helptext, description=f"{helptext}. Reads FILE or standard input.")
        p.add_argument("dir", help="tokenizer directory")
        p.add_argument("file", nargs="?", help="input file (default: standard input)")
        p.add_argument("--symbols", action="store_true", help="use the one-symbol-per-token view")
    p = sub.add_parser("inspect", help="show the segmentation of TEXT with each token's kind")
    p.add_argument("dir", help="tokenizer directory")
    p.add_argument("text", nargs="+", help="text to segment")
    p = sub.add_parser("demo", help="build from the embedded navec word list and show encode/decode",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--vocab-size", type=int, default=32000)
    p.add_argument("--mode", choices=["word", "morph", "concept"], default="concept")
    p.add_argument("--out", help="keep the built directory here (reused if present)")

    for mod in PLUGIN_MODULES:
        try:
            module = importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name == mod:
                continue
            raise
        module.add_cli(sub)
    return parser


RUNNERS = {"build": _run_build, "encode": _run_encode, "decode": _run_decode, "inspect": _run_inspect, "demo": _run_demo}


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    run = RUNNERS.get(args.command) or args.run
    try:
        return int(run(args) or 0)
    except HyperTokError as e:
        print(f"hypertok {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
