"""The runtime commands: ``hypertok encode``, ``decode`` and ``inspect``.

Each command is a pair ``configure_<name>(parser)`` / ``run_<name>(args) -> int``, named
in the table of ``hypertok.cli``. They load a tokenizer directory and need nothing but
``tokenizers``: no numpy, no torch (a test checks this in a fresh interpreter).

``encode`` and ``decode`` stream (issue 13): the input is read in blocks of about 1 MB cut
after a newline, and each block's ids (or text) are written before the next is read, so
memory does not grow with the input (only with its longest line). Encoding is
line-independent, so the ids are those of the whole text. Standard input is decoded as
strictly as a file.
"""

from __future__ import annotations

import argparse
import codecs
import sys

from ..errors import HyperTokError
from ..text import iter_text
from .lossless import is_surrogate
from .tokenizer import HyperTok


def _configure_io(parser: argparse.ArgumentParser, what: str, example: str) -> None:
    parser.description = (f"{what}. Reads FILE or standard input, streamed (memory does not grow with the input); "
                          f"lossless: decode(encode(text)) is the text, for every string.")
    parser.epilog = f"example: {example}"
    parser.add_argument("dir", help="tokenizer directory")
    parser.add_argument("file", nargs="?", help="input file (default: standard input)")
    parser.add_argument("--symbols", action="store_true", help="use the one-symbol-per-token view")


def _source(args: argparse.Namespace) -> str:
    return "standard input" if args.file in (None, "-") else args.file


def _write_text(text: str, source: str) -> None:
    """Write decoded text to stdout; a lone surrogate (no UTF-8 form) is one clear error."""
    try:
        sys.stdout.write(text)
    except UnicodeEncodeError as e:
        if not is_surrogate(text[e.start]):
            raise HyperTokError(f"{source}: the text has {text[e.start]!r} at character {e.start}, which the "
                                f"terminal's encoding {e.encoding} cannot show; set PYTHONIOENCODING=utf-8") from None
        raise HyperTokError(f"{source}: the ids spell a lone surrogate U+{ord(text[e.start]):04X} (character "
                            f"{e.start} of the output), which UTF-8 output cannot hold; decode it with the "
                            f"Python API (HyperTok.decode) instead") from None


def configure_encode(parser: argparse.ArgumentParser) -> None:
    _configure_io(parser, "Text -> ids (space-separated, on one line) or, with --symbols, one symbol per token",
                  "hypertok encode tok64k dev.txt > dev.ids; hypertok encode tok64k dev.txt --symbols > dev.sym")
    parser.add_argument("--allow-special", action="store_true",
                        help="read special tokens written in the text (<s>, the build's --special-tokens such as "
                             "<|im_start|>) as their ids, as plain tokenizer.json does: for text you wrote, such as "
                             "a chat template, never for user input (without it they are text)")


def run_encode(args: argparse.Namespace) -> int:
    tok = HyperTok.load(args.dir)
    sep = ""
    for block in iter_text(args.file):  # blocks end after a newline, which no special token spans
        if args.symbols:
            sys.stdout.write("".join(tok.symbols[i] for i in tok.encode(block, allow_special=True))
                             if args.allow_special else tok.to_symbols(block))
            continue
        ids = tok.encode(block, allow_special=args.allow_special)
        if ids:
            sys.stdout.write(sep + " ".join(map(str, ids)))
            sep = " "
    if not args.symbols:
        sys.stdout.write("\n")
    return 0


def configure_decode(parser: argparse.ArgumentParser) -> None:
    _configure_io(parser, "Ids (whitespace-separated) or, with --symbols, symbol text -> the original text",
                  "hypertok decode tok64k dev.ids > back.txt; hypertok decode tok64k dev.sym --symbols > back.txt")


def run_decode(args: argparse.Namespace) -> int:
    tok = HyperTok.load(args.dir)
    source = _source(args)
    if args.symbols:
        for block in iter_text(args.file):
            _write_text(tok.from_symbols(block), source)
        return 0
    table = tok._bytes
    n = len(table)
    out = codecs.getincrementaldecoder("utf-8")(_ERRORS)
    pos = 0
    carry = ""
    for block in _with_end(iter_text(args.file)):
        words = (carry + (block or "")).split()
        carry = ""
        if block is not None and words and not block[-1:].isspace():
            carry = words.pop()  # may continue in the next block
        data = bytearray()
        for word in words:
            try:
                i = int(word)
            except ValueError:
                raise HyperTokError(f"{source}: item {pos} is {word!r}, not an integer id") from None
            if not 0 <= i < n:
                raise HyperTokError(f"{source}: id {i} at position {pos} is out of range 0..{n - 1}")
            if i >= 4:  # specials spell nothing
                data += table[i]
            pos += 1
        _write_text(out.decode(bytes(data), final=block is None), source)
    return 0


def _surrogatepass_else_replace(exc: UnicodeDecodeError):
    """Lone surrogates (spelled by ``encode`` with their surrogatepass bytes) come back; any
    other invalid byte (ids ``encode`` never gives) becomes U+FFFD."""
    try:
        return codecs.lookup_error("surrogatepass")(exc)
    except UnicodeDecodeError:
        return codecs.lookup_error("replace")(exc)


_ERRORS = "hypertok-surrogatepass-else-replace"
codecs.register_error(_ERRORS, _surrogatepass_else_replace)


def _with_end(blocks):
    yield from blocks
    yield None


def configure_inspect(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Show how the vocabulary cuts TEXT: one line per token with its id, kind (word, stem, "
                          "ending, concept, punct, fallback, char, byte), symbol and surface.")
    parser.epilog = "example: hypertok inspect tok64k Мама мыла раму"
    parser.add_argument("dir", help="tokenizer directory")
    parser.add_argument("text", nargs="+", help="text to segment")


def run_inspect(args: argparse.Namespace) -> int:
    tok = HyperTok.load(args.dir)
    print(tok.inspect(" ".join(args.text)))
    return 0
