"""Shared fixtures: a tiny corpus written here, and tokenizers built from it once per session.

Markers (registered in pyproject.toml): ``slow``, ``gpu``, ``corpus``. ``needs_ruslit``
skips a test when the ruslit corpus is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hypertok import BuildConfig, build

RUSLIT = Path(__file__).resolve().parents[1].parent / "shared" / "corpora" / "ruslit"

TINY_TEXT = """Мне было тогда лет двадцать пять, – начал он, – дела давно минувших дней.
Я путешествовал без всякой цели, без плана; останавливался везде, где мне нравилось.
Столы и стулья стояли у стены. За столами сидели люди, и на столе лежал хлеб.
Потому что он не знал, что делать, он молчал. В том числе и потому что было поздно.
– Что вы говорите? – спросил он. – Я не знаю, что вы говорите.
Она сказала, что придёт завтра. Он ответил, что будет ждать её у стола.
"""


def long_run_wanted(config) -> bool:
    """Whether the long property runs (20,000 examples) should run: ``-m slow`` or
    ``HYPERTOK_LONG=1``. Plain ``pytest`` (CI) runs the 2,000-example versions only."""
    expr = config.getoption("markexpr") or ""
    return os.environ.get("HYPERTOK_LONG") == "1" or ("slow" in expr and "not slow" not in expr)


@pytest.fixture
def long_run(request):
    if not long_run_wanted(request.config):
        pytest.skip("long property run: select it with -m slow or HYPERTOK_LONG=1")


def needs_ruslit():
    if not (RUSLIT / "train.txt").exists() or not (RUSLIT / "dev.txt").exists():
        pytest.skip(f"the ruslit corpus is not at {RUSLIT} (CI has it)")
    return RUSLIT


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "tiny.txt"
    path.write_text(TINY_TEXT * 30, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_tok(tiny_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("tok") / "word"
    return build([tiny_corpus], out, BuildConfig(vocab_size=900, mode="word", min_ngram_count=5))


@pytest.fixture(scope="session")
def tiny_tokenizers(tiny_corpus, tmp_path_factory, tiny_tok):
    """One tokenizer per mode."""
    toks = {"word": tiny_tok}
    for mode in ("morph", "concept"):
        out = tmp_path_factory.mktemp("tok") / mode
        toks[mode] = build([tiny_corpus], out, BuildConfig(vocab_size=900, mode=mode, min_ngram_count=5))
    return toks
