"""The README's quick start and its "Using it" Python snippet work as written."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from hypertok.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def _section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def test_quick_start_commands_are_the_ones_tested():
    quick = _section("Quick start")
    assert "pip install -e '.[dev]' && hypertok demo" in quick
    assert "python -m pytest -q" in quick


def test_demo_runs(tiny_tok, tmp_path, capsys):
    """`hypertok demo` on an existing --out: the display path, in-process and fast."""
    out = tmp_path / "demo"
    shutil.copytree(tiny_tok.path, out)
    assert main(["demo", "--out", str(out)]) == 0
    shown = capsys.readouterr().out
    assert shown.count("lossless: True") == 3
    assert "build with --symbols cjk to see them" in shown  # tiny_tok is built with the default pool


@pytest.mark.slow
def test_demo_builds_from_the_navec_word_list(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--vocab-size", "2000", "--mode", "word", "--out", str(out)]) == 0
    shown = capsys.readouterr().out
    assert shown.count("lossless: True") == 3
    assert (out / "tokenizer.json").is_file()
    # issue 24, item 15: the demo's symbol view is visible (CJK ideographs), not Private Use Area blanks
    symbols = "".join(line[len("symbols : "):] for line in shown.split("\n") if line.startswith("symbols : "))
    assert symbols and not any(0xE000 <= ord(c) <= 0xF8FF or ord(c) >= 0xF0000 for c in symbols)
    assert any(0x4E00 <= ord(c) <= 0x9FFF for c in symbols)


def test_using_it_snippet_runs_on_a_tiny_corpus(tiny_corpus, tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", _section("Using it"), flags=re.S)
    assert len(blocks) == 1
    code = blocks[0]
    assert '["train.txt"]' in code and "vocab_size=64000" in code
    code = code.replace("vocab_size=64000", "vocab_size=900, min_ngram_count=5")
    shutil.copy(tiny_corpus, tmp_path / "train.txt")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(README), "exec"), {})
    assert (tmp_path / "tok64k" / "tokenizer.json").is_file()
