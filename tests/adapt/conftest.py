"""Fixtures of the adaptation tests: a tiny base model, tokenizers and text (no corpus, no downloads)."""

from __future__ import annotations

import pytest

from .tiny import adapt_config, make_base, make_text


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    spm = pytest.importorskip("sentencepiece")
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from hypertok import BuildConfig, build

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("adapt")
    train, dev = root / "train.txt", root / "dev.txt"
    train.write_text(make_text(300, 0))
    dev.write_text(make_text(40, 1))
    spm.SentencePieceTrainer.train(
        input=str(train), model_prefix=str(root / "sp"), vocab_size=400, model_type="bpe", byte_fallback=True,
        character_coverage=1.0, unk_id=0, bos_id=1, eos_id=2, pad_id=-1, minloglevel=2)
    sp = root / "sp.model"
    base = make_base(root / "base", sp, 0)
    other = make_base(root / "other", sp, 1)
    tok = root / "tok"
    build([str(train)], tok, BuildConfig(vocab_size=640, mode="word"))
    return {"root": root, "train": train, "dev": dev, "sp": sp, "base": base, "other": other, "tok": tok}


@pytest.fixture(scope="module")
def trained(env):
    from hypertok.adapt.train import adapt

    out = env["root"] / "ad_extend"
    return adapt(adapt_config(env, out, steps=10)), out


@pytest.fixture
def no_model_load(monkeypatch):
    """Fail if a base model is loaded (errors on bad input must come first)."""
    import hypertok.adapt.model as M
    import hypertok.adapt.train as T

    def boom(*a, **k):
        raise AssertionError("the model was loaded before the input was checked")

    monkeypatch.setattr(M, "load_base_model", boom)
    monkeypatch.setattr(T, "load_base_model", boom)
