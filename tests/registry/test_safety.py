"""Issue 13 on the tokenizer registry: both adapted tokenizers are lossless for every
Python string (item 8), and a recipe read from disk is validated before anything is
allocated (item 4), with the sha256 of the files it was saved with (item 6). Over a
SentencePiece base and (issue 11) a Llama-3-style byte-level BPE base alike.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hypertok.errors import HyperTokError
from hypertok.registry import AdaptedTokenizer, LosslessByteLevel, LosslessSentencePiece, Recipe, load_tokenizer, trained

from ..adapt.tiny import write_base_tokenizer

ANY = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=40)
HARD = st.lists(st.sampled_from(list("аб ,.\n\t") + ["\u2581", "\u2581\u2581", "\ud800", "\udfff", "😀", "\x00",
                                                   "\ue000", " стол", "Столы", "<s>", "<|begin_of_text|>", "Ġ",
                                                   "Ð"]), max_size=30).map("".join)
CI_EXAMPLES, SLOW_EXAMPLES = 2000, 20000


@pytest.fixture(scope="module")
def adapted(tiny_tok, tiny_corpus, tmp_path_factory):
    """extend and replace over a SentencePiece base, and over a byte-level BPE one (``/byte-level``)."""
    sp = trained("spm-bpe", [tiny_corpus], 400, cache_dir=tmp_path_factory.mktemp("cache"))
    bl = tmp_path_factory.mktemp("llama3")
    info = write_base_tokenizer("llama3", bl, texts=tiny_corpus.read_text().split("\n"))
    (bl / "tokenizer_config.json").write_text(json.dumps(info["config"]))
    out = {s: load_tokenizer(f"{tiny_tok.path}:{s}", base=str(sp.path)) for s in ("extend", "replace")}
    out.update({f"{s}/byte-level": load_tokenizer(f"{tiny_tok.path}:{s}", base=str(bl)) for s in ("extend", "replace")})
    return out


@pytest.mark.parametrize("text", ["\u2581", "a\u2581b", " \u2581 ", "\ud800", "x\udfffy\u2581", "\u2581стол"])
def test_extend_keeps_u2581_and_lone_surrogates(adapted, text):
    for tok in adapted.values():
        assert tok.decode(tok.encode(text)) == text


def test_lossless_base_spans_concatenate_for_any_string(adapted):
    base = adapted["extend"].base
    assert isinstance(base, LosslessSentencePiece)
    a, b = "x\u2581\ud800", "\udc00 y"
    assert base.decode(base.encode(a)) + base.decode(base.encode(b)) == a + b
    assert base.encode_batch([a, "", "стол"]) == [base.encode(a), [], base.encode("стол")]


def _property(n):
    return settings(max_examples=n, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                           HealthCheck.too_slow])


@_property(CI_EXAMPLES)
@given(text=ANY | HARD)
def test_adapted_tokenizers_round_trip(adapted, text):
    for tok in adapted.values():
        assert tok.decode(tok.encode(text)) == text


@pytest.mark.slow
@pytest.mark.long
@_property(SLOW_EXAMPLES)
@given(text=st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=300)
       | HARD)
def test_adapted_tokenizers_round_trip_long(adapted, text):
    for tok in adapted.values():
        assert tok.decode(tok.encode(text)) == text


# ------------------------------------------------------------------ item 4: crafted recipes

@pytest.mark.parametrize("edit, match", [
    ({"model_vocab_size": 1e11}, "integers in"),
    ({"model_vocab_size": 10**11}, "integers in"),
    ({"new_to_model": [-5]}, "new_to_model"),
    ({"sources": [[-1]]}, "sources"),
    ({"bos": 10**9}, "bos/eos/pad"),
    ({"strategy": "evil"}, "strategy"),
    ({"unknown_key": 1}, "not a recipe"),
    ({"base_tokenizer": {"file": "../../etc/passwd"}}, "base_tokenizer names the file"),
    ({"base_tokenizer": {"file": "base_tokenizer.json", "special_tokens": {"bos": 1}}}, "special_tokens"),
])
def test_crafted_recipes_are_refused_before_anything_is_allocated(adapted, tmp_path, edit, match):
    tok = adapted["extend"]
    tok.save(tmp_path)
    path = tmp_path / "hypertok_adapt.json"
    d = json.loads(path.read_text())
    if "sources" in edit:
        d["sources"] = [[-1]] + d["sources"][1:]
    else:
        d.update(edit)
    path.write_text(json.dumps(d))
    with pytest.raises(HyperTokError, match=match):
        Recipe.load(tmp_path)


def test_tokenizer_files_must_be_those_of_the_recipe(adapted, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    adapted["extend"].save(a)
    adapted["replace"].save(b)
    assert AdaptedTokenizer.load(a).recipe == adapted["extend"].recipe
    (a / "base_tokenizer.model").write_bytes((a / "base_tokenizer.model").read_bytes() + b"\0")
    with pytest.raises(HyperTokError, match="mixes two saves|sha256"):
        AdaptedTokenizer.load(a)
    c = tmp_path / "c"
    adapted["extend/byte-level"].save(c)
    again = AdaptedTokenizer.load(c)
    assert isinstance(again.base, LosslessByteLevel) and again.recipe == adapted["extend/byte-level"].recipe
    assert again.base.special_tokens == adapted["extend/byte-level"].base.special_tokens  # kept in the recipe
    (c / "base_tokenizer.json").write_text((c / "base_tokenizer.json").read_text() + " ")
    with pytest.raises(HyperTokError, match="mixes two saves|sha256"):
        AdaptedTokenizer.load(c)
