"""The ``hypertok`` command line: a table of commands, each built only when it is run.

Each command lives next to the code it drives, in a module with two functions,
``configure(parser)`` and ``run(args) -> int``, or ``configure_<name>`` / ``run_<name>`` when
one module serves several commands. ``COMMANDS`` names that module and the one-line help,
so ``hypertok --help`` lists every command without importing any of them, and
``hypertok encode`` imports only the runtime core: nothing of lab/, gpu/ or adapt/, no
numpy, no torch (issue 9).

Bad input ends the same way for every command (issue 13): one line ``hypertok CMD: error:
...`` on stderr and exit code 2, whether argparse rejects an option or the command raises
``HyperTokError``; an ``OSError`` the command did not foresee (a full disk, a permission
denied) is reported the same way, naming the file. An error names the command's own
``--help`` (``see hypertok encode --help``), and options may come before or after the
positional arguments (``hypertok encode DIR --symbols FILE``). Ctrl-C ends any command with one
line, ``hypertok CMD: interrupted``, and exit code 130, the shell's code for SIGINT (issue 24).

What it does not do: no command logic; no heavy imports (torch, transformers, peft are
imported inside the ``run`` functions that need them).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass

from . import __version__
from .errors import HyperTokError


@dataclass(frozen=True)
class Command:
    """A table row: the module that holds the command, and the prefix of its function names.

    With ``prefix=None`` the module defines ``configure`` and ``run``; with a prefix, say
    ``"adapt"``, it defines ``configure_adapt`` and ``run_adapt``.
    """

    module: str
    help: str
    prefix: str | None = None

    def _function(self, kind: str) -> Callable:
        name = f"{kind}_{self.prefix}" if self.prefix else kind
        return getattr(importlib.import_module(self.module), name)

    def configure(self, parser: argparse.ArgumentParser) -> None:
        self._function("configure")(parser)

    def run(self, args: argparse.Namespace) -> int:
        return self._function("run")(args)


COMMANDS: dict[str, Command] = {
    "build": Command("hypertok.builder.commands", "build a HyperTok tokenizer directory from a corpus", "build"),
    "encode": Command("hypertok.core.commands", "text -> ids (or --symbols)", "encode"),
    "decode": Command("hypertok.core.commands", "ids (or --symbols) -> text", "decode"),
    "inspect": Command("hypertok.core.commands", "show the segmentation of TEXT with each token's kind", "inspect"),
    "demo": Command("hypertok.builder.commands",
                    "build from the embedded navec word list and show encode/decode", "demo"),
    "compare": Command("hypertok.lab.compare",
                       "compare HyperTok directories with Mistral, BPE, Unigram, bytes and compressors on your text"),
    "vram": Command("hypertok.gpu.vram", "GPU memory and speed per tokenizer: analytic model + CUDA measurement, break-even table"),
    "import": Command("hypertok.adapt.gguf_import",
                      "a GGUF model file -> a transformers folder to adapt (dequantised weights, the file's own tokenizer)"),
    "export-gguf": Command("hypertok.adapt.gguf_export",
                           "a transformers model folder -> one GGUF file for llama.cpp (HyperTok's ids, f16/q8_0/q4_0/q4_k_m)"),
    "prepare": Command("hypertok.adapt.cli", "encode documents into packed token arrays for training", "prepare"),
    "adapt": Command("hypertok.adapt.cli", "move a local Mistral-class model onto a HyperTok vocabulary (LoRA + new rows)", "adapt"),
    "eval": Command("hypertok.adapt.cli", "bits per character, generation chars/s and new-token share of a model",
                    "eval"),
    "merge": Command("hypertok.adapt.cli", "write base + adapter as one plain transformers model", "merge"),
}


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``hypertok CMD: error: ...`` and exit code 2 (no usage block)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _CommandParser(_Parser):
    """A command's parser: options and positionals in any order (argparse's intermixed parsing:
    ``encode DIR --symbols FILE``), and an unknown argument is this command's error, pointing
    to its ``--help`` (plain argparse hands it up to ``hypertok``'s)."""

    _inner = False

    def parse_known_args(self, args=None, namespace=None):
        if self._inner:  # parse_known_intermixed_args calls back here
            return super().parse_known_args(args, namespace)
        self._inner = True
        try:
            ns, extras = self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inner = False
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return ns, extras


def make_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser with every command listed; only ``command``'s options are configured."""
    parser = _Parser(
        prog="hypertok",
        description="HyperTok: Russian vocabulary engineering for LLMs. One token, shown as one "
        "Unicode symbol, per frequent word form, morpheme or multi-word concept.",
        epilog="quick start: hypertok demo   |   hypertok build --corpus train.txt --vocab-size 64000 --out tok && "
        "echo 'Привет, мир' | hypertok encode tok --symbols",
    )
    parser.add_argument("--version", action="version", version=f"hypertok {__version__}",
                        help="print the package version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_CommandParser)
    for name, cmd in COMMANDS.items():
        p = sub.add_parser(name, help=cmd.help, description=cmd.help[:1].upper() + cmd.help[1:] + ".")
        if name == command:
            cmd.configure(p)
    return parser


def _command_of(argv: list[str]) -> str | None:
    """The first word of ``argv`` that is not an option (the top level has only -h and --version)."""
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = _command_of(argv)
    try:
        return _run(argv, command if command in COMMANDS else None)
    except KeyboardInterrupt:  # Ctrl-C: one line, never a traceback, and the shell's code for SIGINT
        print(f"hypertok{' ' + command if command in COMMANDS else ''}: interrupted", file=sys.stderr)
        return 130


def _run(argv: list[str], command: str | None) -> int:
    parser = make_parser(command)
    args = parser.parse_args(argv)
    try:
        return int(COMMANDS[args.command].run(args) or 0)
    except HyperTokError as e:
        print(f"hypertok {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except OSError as e:  # the environment, not the input: a full disk, a permission denied
        where = f"{e.filename}: " if e.filename else ""
        print(f"hypertok {args.command}: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
