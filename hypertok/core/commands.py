"""The runtime commands: ``hypertok encode``, ``decode`` and ``inspect``.

Each command is a pair ``configure_<name>(parser)`` / ``run_<name>(args) -> int``, named
in the table of ``hypertok.cli``. They load a tokenizer directory and need nothing but
``tokenizers``: no numpy, no torch (a test checks this in a fresh interpreter).
"""

from __future__ import annotations

import argparse
import sys

from ..errors import HyperTokError
from ..files import read_text
from .tokenizer import HyperTok


def _read_input(path: str | None) -> str:
    if path is None or path == "-":
        return sys.stdin.read()
    return read_text(path)


def _configure_io(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="tokenizer directory")
    parser.add_argument("file", nargs="?", help="input file (default: standard input)")
    parser.add_argument("--symbols", action="store_true", help="use the one-symbol-per-token view")


def configure_encode(parser: argparse.ArgumentParser) -> None:
    parser.description = "Text -> ids (or --symbols). Reads FILE or standard input."
    _configure_io(parser)


def run_encode(args: argparse.Namespace) -> int:
    tok = HyperTok.load(args.dir)
    text = _read_input(args.file)
    if args.symbols:
        sys.stdout.write(tok.to_symbols(text))
    else:
        sys.stdout.write(" ".join(map(str, tok.encode(text))) + "\n")
    return 0


def configure_decode(parser: argparse.ArgumentParser) -> None:
    parser.description = "Ids (or --symbols) -> text. Reads FILE or standard input."
    _configure_io(parser)


def run_decode(args: argparse.Namespace) -> int:
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


def configure_inspect(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="tokenizer directory")
    parser.add_argument("text", nargs="+", help="text to segment")


def run_inspect(args: argparse.Namespace) -> int:
    tok = HyperTok.load(args.dir)
    print(tok.inspect(" ".join(args.text)))
    return 0
