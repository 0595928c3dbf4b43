"""``backbone="superbpe"``: SuperBPE's pieces (superwords across spaces) under the entries (issue 12).

Built once from the tiny corpus, with SuperBPE trained into a temporary cache (never the
user's ``~/.cache``): the round trip holds for any string, ``tokenizer.json`` gives
``HyperTok.encode``'s ids, the backbone really is SuperBPE's, and a build that cannot train
it says why before any work.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypertok import BuildConfig, HyperTokError, build
from hypertok.builder.fallback import superbpe_pieces

from ..conftest import TINY_TEXT


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("baselines")


@pytest.fixture(scope="module")
def superbpe_tok(tiny_corpus, tmp_path_factory, cache):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HYPERTOK_CACHE", str(cache))
        return build([tiny_corpus], tmp_path_factory.mktemp("tok") / "superbpe",
                     BuildConfig(vocab_size=900, mode="concept", min_ngram_count=5, backbone="superbpe"))


@pytest.fixture(scope="module")
def hf(superbpe_tok):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(superbpe_tok.path / "tokenizer.json"))


def test_superbpe_is_trained_into_the_cache_and_its_pieces_are_text(superbpe_tok, tiny_corpus, cache):
    assert len(list(cache.glob("baselines/superbpe-900-*"))) == 1
    pieces = superbpe_pieces([tiny_corpus], 900, cache_dir=cache / "baselines")  # from the cache
    assert all(len(p) > 1 and "\n" not in p and not p.startswith("<") for p in pieces)
    # stage 2 merged across spaces: some pieces hold a word boundary inside
    assert any(" " in p.strip() for p in pieces)


def test_the_backbone_brings_superwords_the_bpe_backbone_cannot(superbpe_tok):
    """A BPE backbone piece never crosses a unit boundary (a unit carries its leading space);
    SuperBPE's do. Some of them must survive pruning as backbone (``fallback``) pieces."""
    cross = [s for s, k in zip(superbpe_tok.surfaces, superbpe_tok.kinds)
             if k == "fallback" and " " in s.strip()]
    assert cross, "no SuperBPE superword kept"
    assert len(superbpe_tok) <= 900


@pytest.mark.parametrize("line", TINY_TEXT.splitlines() + ["", " ", "😀 и 中文\r\n\x00", "a" * 3000])
def test_round_trip_and_tokenizer_json_ids_on_known_lines(superbpe_tok, hf, line):
    ids = superbpe_tok.encode(line)
    assert superbpe_tok.decode(ids) == line
    assert hf.encode(line, add_special_tokens=False).ids == ids


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=80)
       | st.lists(st.sampled_from(TINY_TEXT.replace("\n", " ").split(" ") + ["", ",", "\n"]), max_size=30)
       .map(" ".join))
def test_round_trip_and_tokenizer_json_ids(superbpe_tok, hf, text):
    ids = superbpe_tok.encode(text)
    assert superbpe_tok.decode(ids) == text
    if not any(0xD800 <= ord(c) <= 0xDFFF for c in text):  # tokenizers takes only valid UTF-8 strings
        # plain tokenizer.json reads "<s>" in text as the special token, as encode(allow_special=True) does
        assert hf.encode(text, add_special_tokens=False).ids == superbpe_tok.encode(text, allow_special=True)


def test_superbpe_backbone_needs_corpus_files(tmp_path):
    """The navec word list has no files to train SuperBPE on and no sample to prune on:
    a clear error, before any counting, that says what to pass."""
    with pytest.raises(HyperTokError, match="--corpus FILES, or --backbone bpe"):
        build([], tmp_path / "out", BuildConfig(vocab_size=2000, backbone="superbpe"))
    assert not any((tmp_path / "out").glob("*.json"))


def test_unknown_backbone_names_the_choices():
    with pytest.raises(HyperTokError, match="bpe, superbpe, tail"):
        BuildConfig(backbone="super")


def test_a_build_without_a_corpus_sample_records_the_tail_fallback_it_trains():
    """Issue 24, item 16: the demo (navec, no sample) trained the tail fallback while its
    config.json said ``backbone: bpe``; the config a build records is the one it ran."""
    from types import SimpleNamespace

    from hypertok.builder.select import TAIL_SHARE, effective_config

    cfg = effective_config(BuildConfig(vocab_size=2000), SimpleNamespace(sample=[]))
    assert (cfg.backbone, cfg.fallback_share) == ("tail", TAIL_SHARE)
    asked = BuildConfig(vocab_size=2000, backbone="tail", fallback_share=0.3)
    assert effective_config(asked, SimpleNamespace(sample=[])) == asked  # what was asked and ran
    assert effective_config(BuildConfig(), SimpleNamespace(sample=["x"])).backbone == "bpe"


@pytest.mark.slow
def test_the_navec_build_records_backbone_tail(tmp_path):
    import json

    build([], tmp_path / "tok", BuildConfig(vocab_size=2000, mode="word"))
    recorded = json.loads((tmp_path / "tok" / "config.json").read_text(encoding="utf-8"))["build"]
    assert (recorded["backbone"], recorded["fallback_share"]) == ("tail", 0.18)


def test_a_corpus_build_records_backbone_bpe(tiny_tok):
    import json

    recorded = json.loads((tiny_tok.path / "config.json").read_text(encoding="utf-8"))["build"]
    assert recorded["backbone"] == "bpe"
