"""Command-line options from config dataclasses: one set of defaults, each option documented once.

Every field of a config dataclass (``BuildConfig``, ``AdaptConfig``/``TrainConfig``,
``CompareConfig``, ``VramConfig``) carries its description, written with :func:`option`. ``add_dataclass_arguments`` turns
the fields into ``--flags`` (``vocab_size`` -> ``--vocab-size``, type and default from the
field, ``choices`` from the metadata); ``dataclass_from_args`` builds the same dataclass
back from the parsed arguments, so the CLI and the Python API cannot drift apart (issue 9;
peft's configs are the model).

:class:`HelpFormatter` is the help layout of every command: each option that takes a value
shows its default, and an option whose default is "nothing" (``None``, ``""``, ``[]``) says
in its own help what that means, never ``(default: None)`` (issue 11, the newcomer's path;
``tests/test_cli.py`` checks every command).

What it does not do: no nested dataclasses (compose them: add each one's arguments), no
config files. ``list[str]`` and ``list[int]`` fields take one or more values (``nargs="*"``: zero or more).

>>> import argparse
>>> from dataclasses import dataclass, field
>>> @dataclass
... class Demo:
...     size: int = field(default=8, metadata={"help": "how many"})
...     name: str | None = field(default=None, metadata={"help": "what"})
>>> p = argparse.ArgumentParser()
>>> add_dataclass_arguments(p, Demo)
>>> dataclass_from_args(Demo, p.parse_args(["--size", "3"]))
Demo(size=3, name=None)
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Iterable

_SCALARS = {int: int, float: float, str: str}


def option(default=dataclasses.MISSING, help: str = "", *, choices=None, **kw):
    """A config field that documents its flag: ``help`` (and ``choices``) in its metadata.

    ``option(8, "rows per step")``; a required field: ``option(help="...")``; a list or a nested
    config: ``option(help="...", default_factory=list)``; ``metavar``, ``nargs``, ``flag``,
    ``parse``, ``show`` and ``required`` go to the flag (:func:`add_dataclass_arguments`).

    >>> option(3, "how many", choices=(1, 3)).metadata["choices"]
    (1, 3)
    """
    meta = {"help": help} if choices is None else {"help": help, "choices": choices}
    meta.update({k: kw.pop(k) for k in ("metavar", "nargs", "flag", "parse", "show", "required") if k in kw})
    return dataclasses.field(default=default, metadata=meta, **kw)


def is_empty_default(value) -> bool:
    """A default that means "nothing": ``None``, ``""`` or an empty list (its help must say what)."""
    return value is None or value == "" or value == []


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``(default: X)`` after each option's help, where it tells the reader something.

    Not after a required option, an on/off flag that is off unless given (``store_true``),
    a help text that already states its default, or an empty default (``None``, ``""``,
    ``[]``): that option's help says what the empty default means, e.g. ``(default: none:
    no evaluation)``.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("(default" in text or "default:" in text or action.required or action.default is argparse.SUPPRESS
                or (action.nargs == 0 and action.default is False) or is_empty_default(action.default)):
            return text
        return text + " (default: %(default)s)"


def _scalar_type(tp) -> type | None:
    """``int`` / ``float`` / ``str`` / ``bool`` for a field type, unwrapping ``X | None``."""
    if tp in _SCALARS or tp is bool:
        return tp
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if len(args) == 1 and (args[0] in _SCALARS or args[0] is bool):
        return args[0]
    return None


def _list_item(tp) -> type | None:
    """``str`` / ``int`` for a field typed ``list[str]`` / ``list[int]`` (or ``... | None``), else ``None``."""
    for t in (tp, *typing.get_args(tp)):
        if typing.get_origin(t) is list and typing.get_args(t) and typing.get_args(t)[0] in (str, int):
            return typing.get_args(t)[0]
    return None


def _one_line_errors(parse, flag: str):
    """``parse`` for argparse: its ValueError (a HyperTokError is one) becomes argparse's error with
    the same message, not "invalid parse value"; argparse names ``flag`` itself, so a message that
    starts with it drops it."""
    def parse_arg(text: str):
        try:
            return parse(text)
        except ValueError as e:
            msg = str(e)
            raise argparse.ArgumentTypeError(msg[len(flag):].lstrip(": ") if msg.startswith(flag) else msg) from None
    return parse_arg


def flag_name(field_name: str) -> str:
    """``vocab_size`` -> ``--vocab-size``."""
    return "--" + field_name.replace("_", "-")


def add_dataclass_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls,
                            skip: Iterable[str] = ()) -> None:
    """Add one ``--flag`` per field of dataclass ``cls`` (except those in ``skip``).

    The help text is the field's ``metadata["help"]`` (required: a field without one raises
    ``TypeError``, so no option goes undocumented) followed by its default. Booleans become
    ``--flag/--no-flag``; ``list[str]`` and ``list[int]`` fields take one or more values
    (``metadata["nargs"]``: ``"*"`` for zero or more). ``metadata["choices"]`` restricts the
    values, ``metadata["metavar"]`` names the value, ``metadata["flag"]`` overrides the flag name,
    ``metadata["parse"]`` turns one command-line string into the field's value (``"8k,32k"`` ->
    ``[8000, 32000]``; ``metadata["show"]`` then writes the default as typed), and
    ``metadata["required"]`` asks for a flag whose field has a default in Python.
    """
    skip = set(skip)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init:
            continue
        help_text = f.metadata.get("help")
        if not help_text:
            raise TypeError(f"{cls.__name__}.{f.name} has no metadata help; every option is documented once")
        tp = _scalar_type(hints[f.name])
        item = _list_item(hints[f.name])
        is_list = item is not None
        if tp is None and not is_list:
            raise TypeError(f"{cls.__name__}.{f.name}: type {hints[f.name]} cannot be a command-line option; skip it")
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        flag = f.metadata.get("flag", flag_name(f.name))
        kwargs: dict = {"dest": f.name, "default": default}
        if not is_empty_default(default) and "default:" not in help_text:
            help_text += f" (default: {f.metadata['show']})" if "show" in f.metadata else " (default: %(default)s)"
        if tp is bool and "parse" not in f.metadata:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            if "parse" in f.metadata:  # one value on the command line, turned into the field's value
                kwargs["type"] = _one_line_errors(f.metadata["parse"], flag)
            else:
                kwargs["type"] = item if is_list else tp
                if is_list:
                    kwargs["nargs"] = f.metadata.get("nargs", "+")
            if "metavar" in f.metadata:
                kwargs["metavar"] = f.metadata["metavar"]
            if "choices" in f.metadata:
                kwargs["choices"] = list(f.metadata["choices"])
            no_default = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            kwargs["required"] = bool(f.metadata.get("required")) or no_default
        parser.add_argument(flag, help=help_text, **kwargs)


def dataclass_from_args(cls, args: argparse.Namespace, **overrides):
    """An instance of ``cls`` from the parsed arguments (fields not on ``args`` keep their
    defaults); ``overrides`` win over both."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if f.init and hasattr(args, f.name)}
    values.update(overrides)
    return cls(**values)
