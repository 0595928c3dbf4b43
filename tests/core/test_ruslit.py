"""Checks on the real corpus: lossless on the whole of dev.txt, and the HF tokenizer.json
and the pure-Python reference give exactly the ids HyperTok.encode gives (which runs the
SentencePiece engine of issue 12 wherever it may), on dev.txt and the modern dev shard.

The tokenizer is built on a 3 MB slice of train.txt to keep the suite fast; the builds on
the whole of train.txt are measured in experiments/.
"""

from __future__ import annotations

import pytest

from hypertok import BuildConfig, build

from ..conftest import needs_modern, needs_ruslit
from .reference import encode as reference_encode

pytestmark = [pytest.mark.corpus, pytest.mark.slow]


@pytest.fixture(scope="module")
def ruslit_tok(tmp_path_factory):
    root = needs_ruslit()
    part = tmp_path_factory.mktemp("ruslit") / "train_part.txt"
    with open(root / "train.txt", encoding="utf-8") as f:
        part.write_text(f.read(3_000_000), encoding="utf-8")
    return build([part], tmp_path_factory.mktemp("tok") / "concept", BuildConfig(vocab_size=12000, mode="concept"))


@pytest.fixture(scope="module")
def dev_text():
    return (needs_ruslit() / "dev.txt").read_text(encoding="utf-8")


def test_dev_round_trip(ruslit_tok, dev_text):
    assert ruslit_tok.decode(ruslit_tok.encode(dev_text)) == dev_text
    assert ruslit_tok.from_symbols(ruslit_tok.to_symbols(dev_text)) == dev_text


def test_tokenizer_json_equals_encode_on_dev(ruslit_tok, dev_text):
    from tokenizers import Tokenizer

    assert ruslit_tok._engine() is not None  # the SentencePiece engine is what is checked
    hf = Tokenizer.from_file(str(ruslit_tok.path / "tokenizer.json"))
    lines = dev_text.splitlines(keepends=True)
    hf_ids = [i for enc in hf.encode_batch(lines, add_special_tokens=False) for i in enc.ids]
    assert hf_ids == ruslit_tok.encode(dev_text)


def test_reference_twin_equals_fast_path_on_dev(ruslit_tok, dev_text):
    part = dev_text[:150_000]
    assert reference_encode(part, ruslit_tok.surfaces, [e.score for e in ruslit_tok.entries], 4) == ruslit_tok.encode(part)


def test_tokenizer_json_equals_encode_on_modern_dev(ruslit_tok):
    from tokenizers import Tokenizer

    from hypertok.text import read_text

    text = read_text(needs_modern())
    lines = text.splitlines(keepends=True)
    hf = Tokenizer.from_file(str(ruslit_tok.path / "tokenizer.json"))
    hf_ids = [e.ids for e in hf.encode_batch(lines, add_special_tokens=False)]
    assert ruslit_tok.encode_batch(lines) == hf_ids
    assert ruslit_tok.decode([i for ids in hf_ids for i in ids]) == text
