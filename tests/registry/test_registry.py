"""hypertok.registry: one interface for every tokenizer that is not being built (issue 9).

Tiny inputs only: the shared tiny corpus and HyperTok directory (tests/conftest.py), a
SentencePiece model trained here on that corpus, and a hand-written tokenizer.json.
Mistral's files are used when mistral-common (or $HYPERTOK_MISTRAL_DATA) provides them.
"""

from __future__ import annotations

import json

import pytest

from hypertok.errors import HyperTokError
from hypertok.registry import (
    AdaptedTokenizer,
    HFTokenizer,
    HyperTokTokenizer,
    LosslessSentencePiece,
    Recipe,
    SentencePieceTokenizer,
    Tokenizer,
    load_tokenizer,
    load_vocabulary,
    lossless_sentencepiece_proto,
    parse_byte_piece,
    plan_transfer,
    trained,
)
from ..conftest import mistral_test_file

TEXTS = ["Столы и стулья стояли у стены.", "  два  пробела\tи таб", "Ёж 🙂 café 12345", ""]


@pytest.fixture(scope="module")
def spm_model(tiny_corpus, tmp_path_factory):
    tok = trained("spm-bpe", [tiny_corpus], 400, cache_dir=tmp_path_factory.mktemp("cache"))
    return tok.path


@pytest.fixture(scope="module")
def plain_dir(tmp_path_factory):
    """A directory holding only a ▁-style tokenizer.json with byte pieces and <s>/</s>."""
    from tokenizers import Tokenizer as HFTk
    from tokenizers import decoders, models, pre_tokenizers

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "<pad>": 3, "<0xD0>": 4, "▁": 5, "▁стол": 6, "ы": 7, "и": 8, "▁и": 9}
    tk = HFTk(models.WordPiece(vocab, unk_token="<unk>", continuing_subword_prefix=""))
    tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tk.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tk.add_special_tokens(["<unk>", "<s>", "</s>", "<pad>"])
    d = tmp_path_factory.mktemp("plain")
    tk.save(str(d / "tokenizer.json"))
    return d


def test_parse_byte_piece():
    assert parse_byte_piece("<0x00>") == 0 and parse_byte_piece("<0xff>") == 255 and parse_byte_piece("<0xAB>") == 171
    for not_byte in ("<0x1>", "<0x100>", "0xAB", "<0xG0>", "<s>", "▁<0xAB>", ""):
        assert parse_byte_piece(not_byte) is None, not_byte


def test_every_form_is_a_tokenizer(tiny_tok, spm_model, plain_dir):
    forms = {"bytes": 256, str(tiny_tok.path): len(tiny_tok), str(spm_model): None,
             str(plain_dir): 10, str(plain_dir / "tokenizer.json"): 10}
    for spec, size in forms.items():
        tok = load_tokenizer(spec)
        assert isinstance(tok, Tokenizer), spec
        assert size is None or tok.vocab_size == size == len(tok), spec
        assert len(tok.piece_bytes) == tok.vocab_size
        assert all(type(i) is int for i in tok.encode("стол и стол")), spec
    assert isinstance(load_tokenizer(tiny_tok.path), HyperTokTokenizer)
    assert isinstance(load_tokenizer(str(plain_dir)), HFTokenizer)
    assert type(load_tokenizer(spm_model)) is SentencePieceTokenizer


def test_piece_bytes_spell_the_text(tiny_tok, spm_model):
    for spec in ("bytes", str(tiny_tok.path), str(spm_model)):
        tok = load_tokenizer(spec)
        for text in TEXTS[:3]:
            ids = tok.encode(text)
            spelled = b"".join(tok.piece_bytes[i] for i in ids)
            assert spelled == ((" " if tok.dummy_prefix else "") + text).encode(), (spec, text)
            assert tok.decode(ids) == text and tok.decode_batch([ids]) == [text]


def test_mistral_tokenizers():
    mistral_test_file("mistral-v1")
    sizes = {"mistral-v1": 32000, "mistral-v3": 32768}
    for name, size in sizes.items():
        tok = load_tokenizer(name)
        assert tok.name == name and tok.vocab_size == size and tok.dummy_prefix
        assert tok.decode(tok.encode(TEXTS[0])) == TEXTS[0]
        assert len(tok.fallback_ids) == 256
    mistral_test_file("tekken")
    tekken = load_tokenizer("tekken")
    assert tekken.vocab_size == 131072 and tekken.decode(tekken.encode(TEXTS[2])) == TEXTS[2]


def test_unknown_spec_says_what_to_give(tmp_path):
    with pytest.raises(HyperTokError, match="no such file or directory"):
        load_tokenizer(str(tmp_path / "nothing"))
    with pytest.raises(HyperTokError, match="no such directory"):
        load_tokenizer(str(tmp_path / "nothing:extend"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(HyperTokError, match="not a tokenizer directory"):
        load_tokenizer(str(empty))


def test_lossless_sentencepiece_spans_concatenate(spm_model):
    import sentencepiece as spm

    bv = LosslessSentencePiece(spm_model)
    a, b = "  Столы\tи", " стулья  стояли\n"
    assert bv.decode(bv.encode(a)) == a
    assert bv.decode(bv.encode(a)) + bv.decode(bv.encode(b)) == a + b
    patched = spm.SentencePieceProcessor(model_proto=lossless_sentencepiece_proto(spm_model.read_bytes()))
    assert patched.get_piece_size() == bv.vocab_size
    assert [bv.pieces_for("", 0xD0)] == [[bv.byte_ids[0xD0]]]
    assert LosslessSentencePiece.find(spm_model.parent).path == spm_model


@pytest.mark.parametrize("strategy", ["extend", "replace"])
def test_adapted_tokenizers_round_trip(tiny_tok, spm_model, plain_dir, strategy, tmp_path):
    for d in (tiny_tok.path, plain_dir):
        tok = load_tokenizer(f"{d}:{strategy}", base=str(spm_model))
        assert isinstance(tok, AdaptedTokenizer) and tok.name == f"{d.name}:{strategy}"
        new = load_vocabulary(d)
        if strategy == "extend":
            assert tok.vocab_size == tok.recipe.model_vocab_size > len(tok.base)
            assert all(tok.is_new_token(m) for m in tok.recipe.new_rows)
        else:
            assert tok.vocab_size == len(new)
            assert tok.encode(TEXTS[0]) == new.encode(TEXTS[0])
        for text in TEXTS:
            ids = tok.encode(text, add_bos=True, add_eos=True)
            assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
            assert all(0 <= i < tok.vocab_size for i in ids)
            if d == tiny_tok.path:  # the toy tokenizer.json has <unk> for most words: lossy by design
                assert tok.decode(ids) == text, (d, text)
        if d == plain_dir:
            assert "стол" in tok.decode(tok.encode("стол и стол"))
        tok.save(tmp_path / strategy / d.name)
        again = AdaptedTokenizer.load(tmp_path / strategy / d.name)
        assert again.recipe == tok.recipe and again.encode(TEXTS[0]) == tok.encode(TEXTS[0])


def test_recipe_refuses_other_versions(tmp_path, tiny_tok, spm_model):
    recipe = plan_transfer(LosslessSentencePiece(spm_model), load_vocabulary(tiny_tok.path), "extend")
    recipe.save(tmp_path)
    assert Recipe.load(tmp_path) == recipe
    path = tmp_path / "hypertok_adapt.json"
    data = json.loads(path.read_text())
    data["version"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(HyperTokError, match="version 99"):
        Recipe.load(tmp_path)
    with pytest.raises(HyperTokError, match="--strategy"):
        plan_transfer(LosslessSentencePiece(spm_model), load_vocabulary(tiny_tok.path), "merge")


def test_hypertok_fallback_counts_letters_not_lone_punctuation(tiny_tok):
    """Issue 12: a lone "," or " " token is a punctuation unit; a lone letter spells part of a word."""
    from hypertok.registry import HyperTokTokenizer

    sub = HyperTokTokenizer(tiny_tok)
    by_surface = {s: i for i, s in enumerate(sub.surfaces)}
    assert by_surface[","] not in sub.fallback_ids and by_surface[" "] not in sub.fallback_ids
    assert by_surface["ж"] in sub.fallback_ids and by_surface["7"] in sub.fallback_ids
    assert by_surface[","] in sub.fallback_ids_wide  # the wider rule of issues 3-11, reported beside
    assert all(k in ("fallback", "char", "byte") for i, k in enumerate(sub.kinds) if i in sub.fallback_ids)


def test_the_package_exports_its_interface_only():
    """Issue 23: ``__all__`` held 37 names; the interface is a tokenizer by its spec and a transfer.
    The other names stay importable from the package for its old callers (and from their modules)."""
    import hypertok.registry as R
    from hypertok.registry.hypertok_dir import HyperTokTokenizer as home

    assert sorted(R.__all__) == sorted([
        "Tokenizer", "Unavailable", "load_tokenizer", "TOKENIZERS", "STRATEGIES", "Recipe", "load_base", "find_base",
        "load_vocabulary", "plan_transfer", "AdaptedTokenizer", "BaseTokenizer"])
    assert all(hasattr(R, name) for name in R.__all__)
    assert R.HyperTokTokenizer is home
