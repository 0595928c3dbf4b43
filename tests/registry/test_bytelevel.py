"""Issue 11, bases beyond SentencePiece: a byte-level BPE tokenizer.json as the base of a transfer.

:class:`LosslessByteLevel` must read text as the base model does (the file's own ids) and
give back every string; :func:`find_base` must pick the file a checkpoint was trained with;
bad files must be one clear line. The test bases (tests/adapt/tiny.py) must be what they
claim: the Tekken-style one encodes as mistral-common's own Tekkenizer on the same ranks.
Tiny inputs; no model, no torch.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hypertok.errors import HyperTokError
from hypertok.registry import LosslessByteLevel, LosslessSentencePiece, find_base, load_tokenizer
from hypertok.registry.bytelevel import BYTE_TO_CHAR, CHAR_TO_BYTE

from ..adapt.tiny import EVERY_SCRIPT, llama3_style_tokenizer, write_base_tokenizer
from ..conftest import mistral_test_file

LINES = EVERY_SCRIPT.split("\n")
ANY = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=40)
HARD = st.lists(st.sampled_from(list("аб ,.\n\t") + ["\ud800", "\udfff", "😀", "\x00", " стол", "Ёлка", "<s>",
                                                   "<|begin_of_text|>", "[INST]", "Ġ", "Ċ", "Ð"]),
                max_size=30).map("".join)


@pytest.fixture(scope="module")
def llama3(tiny_corpus, tmp_path_factory):
    d = tmp_path_factory.mktemp("llama3")
    info = write_base_tokenizer("llama3", d, texts=tiny_corpus.read_text().split("\n") + LINES)
    (d / "tokenizer_config.json").write_text(json.dumps(info["config"]))
    return d


@pytest.fixture(scope="module")
def tekken(tmp_path_factory):
    d = tmp_path_factory.mktemp("tekken")
    info = write_base_tokenizer("tekken", d, tekken_file=mistral_test_file("tekken"))
    (d / "tokenizer_config.json").write_text(json.dumps(info["config"]))
    return d


def test_byte_table_is_gpt2s():
    assert len(BYTE_TO_CHAR) == len(CHAR_TO_BYTE) == 256
    assert BYTE_TO_CHAR[0x20] == "Ġ" and BYTE_TO_CHAR[0x0A] == "Ċ" and BYTE_TO_CHAR[ord("A")] == "A"


def test_llama3_base_reads_as_its_own_file(llama3):
    from tokenizers import Tokenizer

    base = find_base(llama3)
    assert isinstance(base, LosslessByteLevel)
    assert (base.bos_id, base.eos_id, base.unk_id) == (base.tk.token_to_id("<|begin_of_text|>"),
                                                     base.tk.token_to_id("<|end_of_text|>"), None)
    assert base.pad_id == base.eos_id  # no pad, no unk: eos pads, as Llama 3 users do
    assert base.adds_bos == "<|begin_of_text|>"  # its post-processor puts bos first
    own = Tokenizer.from_file(str(llama3 / "tokenizer.json"))
    own.encode_special_tokens = True
    for line in LINES:
        assert base.encode(line) == own.encode(line, add_special_tokens=False).ids, line
        assert base.decode(base.encode(line)) == line
    assert len(base.byte_ids) == 256 and len(base.controls) == 11


def test_tekken_style_base_is_tekken(tekken, tmp_path):
    """The test base cut from Mistral's Tekken file encodes as mistral-common's Tekkenizer on the same ranks."""
    from mistral_common.tokens.tokenizers.tekken import Tekkenizer

    raw = json.loads(mistral_test_file("tekken").read_text(encoding="utf-8"))
    base = find_base(tekken)
    n_special = raw["config"]["default_num_special_tokens"]
    raw["vocab"] = raw["vocab"][:len(base) - n_special]
    raw["config"]["default_vocab_size"] = len(base)
    (tmp_path / "cut.json").write_text(json.dumps(raw))
    ref = Tekkenizer.from_file(tmp_path / "cut.json")
    assert ref.n_words == len(base) and (base.bos_id, base.eos_id, base.unk_id) == (ref.bos_id, ref.eos_id, ref.unk_id)
    for line in LINES:
        assert base.encode(line) == ref.encode(line, bos=False, eos=False), line
        assert base.decode(base.encode(line)) == line


@pytest.fixture(scope="module")
def llama3_base(llama3):
    return find_base(llama3)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(a=ANY | HARD, b=ANY | HARD)
def test_byte_level_base_is_lossless_and_spans_concatenate(llama3_base, a, b):
    base = llama3_base
    assert base.decode(base.encode(a)) + base.decode(base.encode(b)) == a + b
    assert base.encode_batch([a, "", b]) == [base.encode(a), [], base.encode(b)]


def test_normaliser_and_prefix_space_of_the_file_are_dropped(tmp_path, tiny_corpus):
    """A GPT-2-style file that adds a prefix space and an NFC normaliser would change the text; the base reads
    it as it is (the model still sees its own pieces, only never text that was not there)."""
    from tokenizers import normalizers, pre_tokenizers

    tk = llama3_style_tokenizer(tiny_corpus.read_text().split("\n"))
    tk.normalizer = normalizers.NFC()
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tk.save(str(tmp_path / "tokenizer.json"))
    base = LosslessByteLevel.from_file(tmp_path / "tokenizer.json")  # no tokenizer_config.json: Llama 3's names
    nfd = "е\u0308ж"  # ё in NFD
    assert base.decode(base.encode(nfd)) == nfd and base.decode(base.encode("стол")) == "стол"
    assert base.encode("стол")[0] != base.encode(" стол")[0]


def test_find_base_prefers_the_sentencepiece_file(tmp_path, llama3):
    (tmp_path / "tokenizer.json").write_bytes((llama3 / "tokenizer.json").read_bytes())
    assert isinstance(find_base(tmp_path), LosslessByteLevel)
    (tmp_path / "tokenizer.model").write_bytes(mistral_test_file("mistral-v3").read_bytes())
    assert isinstance(find_base(tmp_path), LosslessSentencePiece)  # Mistral 7B and Llama 2 ship both


def test_byte_level_base_for_dir_extend(tiny_tok, llama3):
    tok = load_tokenizer(f"{tiny_tok.path}:extend", base=str(llama3 / "tokenizer.json"))
    assert tok.recipe.base_vocab_size == len(find_base(llama3))
    for line in LINES:
        assert tok.decode(tok.encode(line)) == line


def _edit_json(src, dest, **changes):
    data = json.loads(src.read_text())
    data.update(changes)
    dest.write_text(json.dumps(data))


def test_bad_base_files_are_one_clear_line(tmp_path, llama3):
    d = tmp_path / "d"
    d.mkdir()
    with pytest.raises(HyperTokError, match="no tokenizer next to the weights"):
        find_base(d)
    (d / "tekken.json").write_text("{}")
    with pytest.raises(HyperTokError, match="tekken.json is not read"):
        find_base(d)
    src = llama3 / "tokenizer.json"
    _edit_json(src, d / "tokenizer.json", pre_tokenizer={"type": "Metaspace", "replacement": "▁",
                                                         "prepend_scheme": "always", "split": True})
    with pytest.raises(HyperTokError, match="not a byte-level BPE tokenizer.json"):
        find_base(d)
    (d / "tokenizer.json").write_text("{ not json")
    with pytest.raises(HyperTokError, match="not a readable tokenizer.json"):
        find_base(d)
    data = json.loads(src.read_text())
    vocab = data["model"]["vocab"]
    gone = next(t for t in vocab if t == "Ā")  # byte 0x00
    data["model"]["vocab"] = {t: i for t, i in vocab.items() if t != gone}
    data["model"]["merges"] = [m for m in data["model"]["merges"] if gone not in (m if isinstance(m, list) else m.split())]
    (d / "tokenizer.json").write_text(json.dumps(data))
    with pytest.raises(HyperTokError, match="256 bytes"):
        LosslessByteLevel(d / "tokenizer.json", {"bos": "<|begin_of_text|>", "eos": "<|end_of_text|>"})
    (d / "tokenizer.json").write_bytes(src.read_bytes())
    (d / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<s>", "eos_token": "</s>"}))
    with pytest.raises(HyperTokError, match="do not belong together"):
        find_base(d)
    (d / "tokenizer_config.json").write_text(json.dumps({"bos_token": None, "eos_token": "<|end_of_text|>"}))
    with pytest.raises(HyperTokError, match="no bos token"):
        find_base(d)
