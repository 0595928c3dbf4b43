"""The runtime commands: ``hypertok encode``, ``decode`` and ``inspect``.

Each command is a pair ``configure_<name>(parser)`` / ``run_<name>(args) -> int``, named
in the table of ``hypertok.cli``. They load a tokenizer directory and need nothing but
``tokenizers``: no numpy, no torch (a test checks this in a fresh interpreter).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import HyperTokError
from ..files import read_text
from .tokenizer import HyperTok


def _configure_io(parser: argparse.ArgumentParser, what: str) -> None:
    parser.description = f"{what}. Reads FILE or standard input."
    parser.add_argument("dir", help="tokenizer directory")
    parser.add_argument("file", nargs="?", help="input file (default: standard input)")
    parser.add_argument("--symbols", action="store_true", help="use the one-symbol-per-token view")


def _load_io(args: argparse.Namespace) -> tuple[HyperTok, str]:
    """The tokenizer of ``args.dir`` and the text of ``args.file`` (or standard input)."""
    tok = HyperTok.load(args.dir)
    data = sys.stdin.read() if args.file in (None, "-") else read_text(args.file)
    return tok, data


def configure_encode(parser: argparse.ArgumentParser) -> None:
    _configure_io(parser, "Text -> ids (or --symbols)")


def run_encode(args: argparse.Namespace) -> int:
    if args.file not in (None, "-") and not args.symbols:  # a file: streamed, so it may exceed memory
        tok = HyperTok.load(args.dir)
        if not Path(args.file).is_file():
            raise HyperTokError(f"{args.file}: no such file or folder")
        sep = ""
        for ids in tok.encode_stream(args.file):
            if ids:
                sys.stdout.write(sep + " ".join(map(str, ids)))
                sep = " "
        sys.stdout.write("\n")
        return 0
    tok, text = _load_io(args)
    out = tok.to_symbols(text) if args.symbols else " ".join(map(str, tok.encode(text))) + "\n"
    sys.stdout.write(out)
    return 0


def configure_decode(parser: argparse.ArgumentParser) -> None:
    _configure_io(parser, "Ids (or --symbols) -> text")


def run_decode(args: argparse.Namespace) -> int:
    tok, data = _load_io(args)
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


def configure_inspect(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="tokenizer directory")
    parser.add_argument("text", nargs="+", help="text to segment")


def run_inspect(args: argparse.Namespace) -> int:
    tok = HyperTok.load(args.dir)
    print(tok.inspect(" ".join(args.text)))
    return 0
