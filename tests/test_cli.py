"""The command line: the lazy command table, round trips, clear errors, and build flags from BuildConfig."""

from __future__ import annotations

import argparse
import dataclasses
import re
import importlib
import importlib.util

import pytest

from hypertok.builder.config import BuildConfig
from hypertok.cli import COMMANDS, main, make_parser

def test_encode_decode_round_trip_through_cli(tiny_tok, tmp_path, capsys):
    src = tmp_path / "in.txt"
    text = "Мне было тогда лет двадцать пять, – начал он.\n😀\n"
    src.write_text(text, encoding="utf-8")
    for flag in ([], ["--symbols"]):
        assert main(["encode", str(tiny_tok.path), str(src), *flag]) == 0
        encoded = tmp_path / "enc.txt"
        encoded.write_text(capsys.readouterr().out, encoding="utf-8")
        assert main(["decode", str(tiny_tok.path), str(encoded), *flag]) == 0
        assert capsys.readouterr().out == text


def test_inspect_command(tiny_tok, capsys):
    assert main(["inspect", str(tiny_tok.path), "было", "тогда"]) == 0
    assert "kind" in capsys.readouterr().out


def test_cli_errors_are_clear(tiny_tok, tmp_path, capsys):
    bad = tmp_path / "ids.txt"
    bad.write_text("5 7 abc", encoding="utf-8")
    assert main(["decode", str(tiny_tok.path), str(bad)]) == 2
    assert "item 2 is 'abc'" in capsys.readouterr().err
    bad.write_text("5 99999999", encoding="utf-8")
    assert main(["decode", str(tiny_tok.path), str(bad)]) == 2
    assert "out of range" in capsys.readouterr().err
    assert main(["encode", str(tmp_path / "missing"), str(bad)]) == 2
    assert "no such tokenizer directory" in capsys.readouterr().err


def test_build_command(tiny_corpus, tmp_path, capsys):
    out = tmp_path / "tok"
    assert main(["build", "--corpus", str(tiny_corpus), "--vocab-size", "700", "--mode", "word", "--out", str(out)]) == 0
    assert (out / "tokenizer.json").exists()
    assert main(["build", "--corpus", str(tiny_corpus), "--vocab-size", "700", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_help_teaches(capsys):
    """Every command explains itself and shows an example, and each of its example's `hypertok NAME ...`
    calls parses with that command's own parser: an example whose flag was renamed fails here."""
    import shlex

    with pytest.raises(SystemExit):
        main(["--help"])
    top = capsys.readouterr().out
    for name, cmd in COMMANDS.items():
        assert name in top.split() and cmd.help in " ".join(top.split()), name
        parser = make_parser(name)
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
        assert len(sub.description or "") >= 80, name
        assert (sub.epilog or "").startswith("example: "), name
        example = re.sub(r"\s\([^)]*\)", "", sub.epilog[len("example: "):].split("\n")[0])  # asides: "(...)"
        calls = [c.strip() for c in example.split(";")]
        own = [c for c in calls if c.startswith(f"hypertok {name} ")]
        assert own, (name, calls)
        for call in own:
            argv = [a for a in shlex.split(call.split(">")[0])][1:]
            args = parser.parse_args(argv)  # exits (fails the test) on a flag the command does not have
            assert args.command == name, call


def test_every_build_config_field_is_a_documented_build_flag(capsys, monkeypatch):
    """Issue 9: only 6 of BuildConfig's 16 fields were reachable from `hypertok build`."""
    monkeypatch.setenv("COLUMNS", "1000")  # no line wrapping inside the help texts
    with pytest.raises(SystemExit):
        main(["build", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    parser = make_parser("build")
    argv = ["build", "--out", "x"]
    changed = {}
    for f in dataclasses.fields(BuildConfig):
        flag = "--" + f.name.replace("_", "-")
        assert flag in help_text, flag
        assert " ".join(f.metadata["help"].split()) in help_text, f.name
        value = {"vocab_size": 5000, "mode": "word", "symbols": "cjk", "concepts": "c.json", "fallback_share": 0.25,
                 "encoding": "cp1251", "special_tokens": "<|a|>,<|b|>", "normalize": "nfc", "holdout": 0.5}.get(f.name)
        if isinstance(f.default, bool):  # an on/off flag (--crossfit / --no-crossfit): given, it turns on
            assert f.default is False, f.name
            argv.append(flag)
            changed[f.name] = True
            continue
        if value is None:
            value = f.default + 1 if isinstance(f.default, (int, float)) else f.default
        argv += [flag, str(value)]
        changed[f.name] = value.split(",") if f.name == "special_tokens" else value
    from hypertok.options import dataclass_from_args

    cfg = dataclass_from_args(BuildConfig, parser.parse_args(argv))
    assert dataclasses.asdict(cfg) == changed


def test_build_defaults_are_the_dataclass_defaults():
    from hypertok.options import dataclass_from_args

    args = make_parser("build").parse_args(["build", "--out", "x"])
    assert dataclass_from_args(BuildConfig, args) == BuildConfig()


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_table_entry_resolves(name):
    """Every command's module imports and has its configure/run pair, and configuring it
    imports nothing heavy at module level (checked in test_architecture for encode)."""
    cmd = COMMANDS[name]
    module = importlib.import_module(cmd.module)
    suffix = f"_{cmd.prefix}" if cmd.prefix else ""
    assert callable(getattr(module, "configure" + suffix))
    assert callable(getattr(module, "run" + suffix))
    make_parser(name)  # configure runs without error


def _arguments(name: str):
    """(action, its help as ``hypertok NAME --help`` prints it) for every argument of ``name``."""
    import argparse
    import re

    sub = next(a for a in make_parser(name)._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
    formatter = sub._get_formatter()
    for action in sub._actions:
        if action.dest != "help":
            shown = formatter._expand_help(action) if action.help else ""
            yield action, re.sub(r"\s+", " ", shown)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_option_has_help_and_shows_its_default(name, monkeypatch):
    """Issue 11, the newcomer's path: every option is explained, every option that takes a value
    and is not required shows its default, a numeric one its value, and an empty default
    (None, "", []) is said in words, never printed as ``(default: None)``."""
    monkeypatch.setenv("COLUMNS", "1000")
    arguments = list(_arguments(name))
    assert arguments, name
    for action, shown in arguments:
        flag = (action.option_strings or [action.dest])[0]
        assert shown.strip(), f"hypertok {name} {flag}: no help text"
        for bad in ("(default: )", "(default: None)", "(default: [])", "default: None)"):
            assert bad not in shown, f"hypertok {name} {flag}: {shown!r}"
        if action.required or action.nargs == 0 or not action.option_strings:  # required, on/off, positional
            continue
        assert "default: " in shown, f"hypertok {name} {flag}: the help does not show the default: {shown!r}"
        numeric = action.type in (int, float) or (isinstance(action.default, (int, float))
                                                 and not isinstance(action.default, bool))
        if numeric and not isinstance(action.default, list) and action.default is not None:
            assert f"default: {action.default}" in shown, f"hypertok {name} {flag}: {shown!r}"


# ------------------------------------------------------------------ issue 24: Ctrl-C, option order, the command's --help

def test_ctrl_c_is_one_line_and_exit_130(tiny_tok, tmp_path, capsys, monkeypatch):
    import hypertok.core.commands as commands

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(commands, "run_encode", interrupted)
    (tmp_path / "in.txt").write_text("да\n")
    assert main(["encode", str(tiny_tok.path), str(tmp_path / "in.txt")]) == 130
    assert capsys.readouterr().err == "hypertok encode: interrupted\n"


def test_options_may_come_before_positionals_and_errors_name_the_commands_help(tiny_tok, tmp_path, capsys):
    src = tmp_path / "in.txt"
    src.write_text("Мне было тогда лет двадцать пять.\n", encoding="utf-8")
    assert main(["encode", str(tiny_tok.path), str(src), "--symbols"]) == 0
    after = capsys.readouterr().out
    assert main(["encode", str(tiny_tok.path), "--symbols", str(src)]) == 0  # issue 24: was "unrecognized arguments"
    assert capsys.readouterr().out == after
    with pytest.raises(SystemExit) as e:
        main(["encode", str(tiny_tok.path), str(src), "--bogus"])
    assert e.value.code == 2
    assert capsys.readouterr().err == ("hypertok encode: error: unrecognized arguments: --bogus "
                                       "(see hypertok encode --help)\n")


def test_eval_help_says_the_bounds_of_its_windows(monkeypatch):
    """Issue 24 item 9: --seq-len, --gen-tokens and --context-chars say their bound in --help
    (the one the bad-input table sees refused)."""
    from hypertok.adapt.evaluate import MAX_CONTEXT

    monkeypatch.setenv("COLUMNS", "1000")
    shown = {(a.option_strings or [a.dest])[0]: h for a, h in _arguments("eval")}
    for flag in ("--seq-len", "--gen-tokens", "--context-chars"):
        assert f"at most {MAX_CONTEXT}" in shown[flag], (flag, shown[flag])


def test_version_prints_the_package_version(capsys):
    """Issue 24, item 16: ``hypertok --version``."""
    import hypertok

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out == f"hypertok {hypertok.__version__}\n" == "hypertok 0.1.0\n"


def test_build_help_example_copies_into_a_shell(capsys):
    """Issue 24, item 14: the example quoted its glob, so the shell passed ``*`` on and the
    build failed; copied as shown, the shell must expand it."""
    import shlex

    with pytest.raises(SystemExit):
        main(["build", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    example = text[text.index("example: ") + len("example: "):].split(" (")[0]
    assert example.startswith("hypertok build --corpus ")
    words = shlex.split(example)
    assert "'" not in example and '"' not in example  # nothing quoted, the glob least of all
    assert "../shared/corpora/modern/ru-modern-train-*.txt.xz" in words
    args = make_parser("build").parse_args(words[1:])
    assert args.vocab_size == 64000 and args.out == "tok64k" and len(args.corpus) == 2
