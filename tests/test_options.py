"""hypertok.options: dataclass fields -> argparse flags -> the same dataclass."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import pytest

from hypertok.options import add_dataclass_arguments, dataclass_from_args


@dataclass
class Sample:
    steps: int = field(default=10, metadata={"help": "how many steps"})
    rate: float = field(default=0.5, metadata={"help": "learning rate"})
    kind: str = field(default="a", metadata={"help": "which kind", "choices": ("a", "b")})
    path: str | None = field(default=None, metadata={"help": "optional file"})
    fast: bool = field(default=False, metadata={"help": "go fast"})
    tags: list = field(default_factory=list, metadata={"help": "not an option"})


def _parser(**kw):
    p = argparse.ArgumentParser()
    add_dataclass_arguments(p, Sample, skip=("tags",), **kw)
    return p


def test_round_trip_and_defaults():
    assert dataclass_from_args(Sample, _parser().parse_args([])) == Sample()
    args = _parser().parse_args(["--steps", "3", "--rate", "0.1", "--kind", "b", "--path", "x", "--fast"])
    assert dataclass_from_args(Sample, args) == Sample(3, 0.1, "b", "x", True)
    assert dataclass_from_args(Sample, args, steps=7).steps == 7


def test_choices_are_enforced():
    with pytest.raises(SystemExit):
        _parser().parse_args(["--kind", "c"])


def test_help_shows_numeric_defaults():
    text = " ".join(_parser().format_help().split())
    assert "how many steps (default: 10)" in text and "learning rate (default: 0.5)" in text
    assert "--no-fast" in text


def test_undocumented_or_unsupported_fields_are_refused():
    @dataclass
    class Bad:
        n: int = 1

    with pytest.raises(TypeError, match="no metadata help"):
        add_dataclass_arguments(argparse.ArgumentParser(), Bad)
    with pytest.raises(TypeError, match="cannot be a command-line option"):
        add_dataclass_arguments(argparse.ArgumentParser(), Sample)


def test_help_formatter_shows_defaults_that_say_something():
    from hypertok.options import HelpFormatter

    p = argparse.ArgumentParser(formatter_class=HelpFormatter)
    p.add_argument("--n", type=int, default=3, help="how many")
    p.add_argument("--limit", type=float, default=None, help="seconds (default: no limit)")
    p.add_argument("--out", required=True, help="where")
    p.add_argument("--quiet", action="store_true", help="say less")
    text = " ".join(p.format_help().split())
    assert "how many (default: 3)" in text and "seconds (default: no limit)" in text
    assert "where (default" not in text and "say less (default" not in text and "None" not in text


def test_parse_show_required_metavar_nargs():
    """``option(parse=...)`` reads one string into the field's value, ``show`` writes its default as
    typed, ``required`` asks for a flag with a Python default; list[int] and nargs="*" fields."""
    from hypertok.options import option

    @dataclass
    class Lengths:
        chars: list[int] = option(help="lengths", default_factory=lambda: [8, 16], metavar="LIST", show="8,16",
                                  parse=lambda s: [int(x) for x in s.split(",")])
        text: str = option("", "a file", required=True, metavar="FILE")
        sizes: list[int] = option(help="sizes (default: none)", default_factory=list, nargs="*", metavar="N")

    p = argparse.ArgumentParser()
    add_dataclass_arguments(p, Lengths)
    assert dataclass_from_args(Lengths, p.parse_args(["--text", "t", "--chars", "1,2", "--sizes", "3", "4"])) == \
        Lengths([1, 2], "t", [3, 4])
    assert dataclass_from_args(Lengths, p.parse_args(["--text", "t", "--sizes"])) == Lengths([8, 16], "t", [])
    assert "(default: 8,16)" in " ".join(p.format_help().split()) and "--chars LIST" in p.format_help()
    with pytest.raises(SystemExit):
        p.parse_args(["--chars", "1"])  # --text is required
    with pytest.raises(SystemExit):
        p.parse_args(["--text", "t", "--chars", "x"])
