"""The command line, and the promise that tokenizing never imports torch/transformers/peft."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hypertok.cli import main

HEAVY = ("torch", "transformers", "peft")


def _imported_after(code: str) -> set[str]:
    probe = code + f"\nimport sys; print('HEAVY:', *[m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return set(out.rsplit("HEAVY:", 1)[1].split())


def test_import_hypertok_is_light():
    assert _imported_after("import hypertok") == set()


def test_encode_command_is_light(tiny_tok, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("Мне было тогда", encoding="utf-8")
    code = (f"import sys; sys.argv=['hypertok','encode',{str(tiny_tok.path)!r},{str(src)!r}]\n"
            "from hypertok.cli import main\nmain(sys.argv[1:])")
    assert _imported_after(code) == set()


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


def test_help_teaches():
    with pytest.raises(SystemExit):
        main(["--help"])
