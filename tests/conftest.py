"""Shared fixtures: a tiny corpus written here, and tokenizers built from it once per session.

Markers (registered in pyproject.toml): ``slow``, ``gpu``, ``corpus``. ``needs_ruslit`` and
``needs_modern`` skip a test when the shared corpus is absent, and fail it under
``HYPERTOK_REQUIRE_CORPORA=1`` (``.ci/run`` sets it: CI has the corpora).
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
    """Whether the long property runs (20,000 examples, marker ``long``) should run: ``-m slow``,
    ``-m long`` or ``HYPERTOK_LONG=1``. Plain ``pytest`` (CI) runs the 2,000-example versions and
    deselects these (deselected, not skipped: nothing that was collected to run is passed over)."""
    expr = config.getoption("markexpr") or ""
    wanted = any(m in expr and f"not {m}" not in expr for m in ("slow", "long"))
    return os.environ.get("HYPERTOK_LONG") == "1" or wanted


def pytest_collection_modifyitems(config, items):
    if long_run_wanted(config):
        return
    long = [item for item in items if item.get_closest_marker("long")]
    if long:
        config.hook.pytest_deselected(items=long)
        items[:] = [item for item in items if not item.get_closest_marker("long")]


def mistral_test_file(name: str = "mistral-v3"):
    """Path of a Mistral tokenizer file, from mistral-common (in the ``dev`` extra, which the
    README's test command installs) or ``$HYPERTOK_MISTRAL_DATA``. Neither there is a failure
    with the fix in its message, never a skip: these tests are what checks the Mistral bases."""
    import importlib.util

    from hypertok.registry import mistral_file

    if importlib.util.find_spec("mistral_common") is None and not os.environ.get("HYPERTOK_MISTRAL_DATA"):
        pytest.fail("mistral-common is not installed: pip install -e '.[dev]' (or point $HYPERTOK_MISTRAL_DATA "
                    "at a folder with the Mistral tokenizer files)")
    return mistral_file(name)


def _corpus_missing(what: str, where: Path) -> None:
    """Skip, with the reason, where the shared corpus is absent (the brief: corpus tests skip
    outside the team's machines). Under ``HYPERTOK_REQUIRE_CORPORA=1``, which ``.ci/run`` sets,
    fail instead: in CI a missing corpus is a broken setup, never a pass."""
    msg = f"the {what} corpus is not at {where}"
    if os.environ.get("HYPERTOK_REQUIRE_CORPORA") == "1":
        pytest.fail(f"{msg}, and HYPERTOK_REQUIRE_CORPORA=1 asks for it (CI has it at ../shared/corpora)")
    pytest.skip(f"{msg}: this test reads the team's shared data, absent on this machine (CI has it, and there "
                f"HYPERTOK_REQUIRE_CORPORA=1 turns this skip into a failure)")


def needs_ruslit():
    """The shared ruslit folder (see :func:`_corpus_missing` for where it is absent)."""
    if not (RUSLIT / "train.txt").exists() or not (RUSLIT / "dev.txt").exists():
        _corpus_missing("ruslit", RUSLIT)
    return RUSLIT


def needs_modern(name: str = "ru-modern-dev.txt.xz"):
    """A file of the shared modern corpus (see :func:`_corpus_missing` for where it is absent)."""
    path = RUSLIT.parent / "modern" / name
    if not path.exists():
        _corpus_missing("modern", path.parent)
    return path


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


@pytest.fixture
def fake_liger(monkeypatch):
    """A stand-in for liger-kernel (Triton, CUDA only) with its interface and plain torch math,
    so the plumbing around it (the head weight through peft's wrappers, the step) is tested on CPU.
    Shared by tests/adapt (``--loss liger``) and tests/gpu (``hypertok vram --losses liger``)."""
    import importlib.machinery
    import sys
    import types

    import torch
    import torch.nn.functional as F

    class LigerFusedLinearCrossEntropyLoss(torch.nn.Module):
        calls = 0

        def __init__(self, ignore_index=-100, reduction="mean"):
            super().__init__()
            self.ignore_index, self.reduction = ignore_index, reduction

        def forward(self, lin_weight, _input, target, bias=None):
            type(self).calls += 1
            return F.cross_entropy(F.linear(_input, lin_weight).float(), target, ignore_index=self.ignore_index,
                                   reduction=self.reduction)

    pkg, sub = types.ModuleType("liger_kernel"), types.ModuleType("liger_kernel.transformers")
    sub.LigerFusedLinearCrossEntropyLoss = LigerFusedLinearCrossEntropyLoss
    pkg.__spec__ = importlib.machinery.ModuleSpec("liger_kernel", None)
    pkg.transformers = sub
    monkeypatch.setitem(sys.modules, "liger_kernel", pkg)
    monkeypatch.setitem(sys.modules, "liger_kernel.transformers", sub)
    return LigerFusedLinearCrossEntropyLoss
