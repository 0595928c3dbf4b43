"""Issue 21: the base families of a transfer, one class per kind behind one interface.

For each kind, on a tiny base made here: ``find_base`` picks it, its recipe record saves and
loads back the same class, and it reads every string losslessly. The new kind, a
SentencePiece-style ``tokenizer.json`` (BPE with byte fallback, ``▁`` for spaces), is converted
here from a tiny SentencePiece BPE model the way transformers builds Gemma's and Mistral's HF
files; it must give that model's ids on real Russian lines, and ``extend`` and ``replace`` over it
must work as over the ``tokenizer.model`` itself. No model, no torch.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypertok.errors import HyperTokError
from hypertok.registry import (BASE_FAMILIES, AdaptedTokenizer, BaseFamily, HyperTokTokenizer, LosslessByteLevel,
                               LosslessSentencePiece, LosslessSentencePieceJson, Recipe, find_base, load_base,
                               load_saved_base, plan_transfer)

from ..adapt.tiny import EVERY_SCRIPT, llama3_style_tokenizer, make_text
from ..conftest import TINY_TEXT

# Real Russian lines: punctuation, digits, emoji, ё, quotes and dashes
RUSSIAN = [
    "Съешь же ещё этих мягких французских булок, да выпей чаю!",
    "В 1812 году стояли морозы до −25 °C; «Война и мир», т. 2, гл. XIV.",
    "Привет 🙂 мир… ёж, Ёлка: 3,14 % и №7 — «ёлочки» и „лапки“.",
    "– Что вы говорите? – спросил он. – Я не знаю, что вы говорите.",
    "Он ответил: «Буду ждать у стола в 19:30» — и ушёл 👍🏽.",
]
LINES = RUSSIAN + EVERY_SCRIPT.split("\n") + TINY_TEXT.split("\n")
CONTROLS = ["<start_of_turn>", "<end_of_turn>"]
KINDS = {"sentencepiece": LosslessSentencePiece, "gemma-json": LosslessSentencePieceJson,
         "mistral-json": LosslessSentencePieceJson, "byte-level": LosslessByteLevel}


@pytest.fixture(scope="module")
def sp_model(tmp_path_factory):
    """A tiny SentencePiece BPE with byte fallback, numbered as Gemma's (<pad> <eos> <bos> <unk>, then controls)."""
    spm = pytest.importorskip("sentencepiece")
    d = tmp_path_factory.mktemp("spm")
    ascii_ = "".join(map(chr, range(0x21, 0x7F)))  # every printable ASCII character, as every real base has
    (d / "train.txt").write_text(TINY_TEXT * 20 + make_text(200, 0) + "\n".join(RUSSIAN + [ascii_]), encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(d / "train.txt"), model_prefix=str(d / "sp"), vocab_size=600, model_type="bpe", byte_fallback=True,
        character_coverage=1.0, pad_id=0, eos_id=1, bos_id=2, unk_id=3, pad_piece="<pad>", eos_piece="<eos>",
        bos_piece="<bos>", unk_piece="<unk>", control_symbols=CONTROLS, split_digits=True, minloglevel=2,
        normalization_rule_name="identity", add_dummy_prefix=False, remove_extra_whitespaces=False)  # as Gemma's
    return d / "sp.model"


def sentencepiece_style_json(sp_model, style: str):
    """``sp_model`` as an HF ``tokenizers.Tokenizer``, built as transformers builds the HF files of these models.

    ``gemma``: a ``Replace(" ", "▁")`` normaliser and a ``Split(" ")`` pre-tokenizer (transformers'
    ``GemmaTokenizer``); ``mistral``: a Metaspace pre-tokenizer with a dummy prefix on the first
    word (``LlamaConverter``, non-legacy). Both: BPE with byte fallback, merges of the normal pieces
    ranked by the merged piece's score (``SpmConverter``), controls as special tokens, a
    post-processor that puts bos first.
    """
    import sentencepiece as spm
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    sp = spm.SentencePieceProcessor(model_file=str(sp_model))
    n = sp.get_piece_size()
    vocab = {sp.id_to_piece(i): i for i in range(n)}
    normal = {sp.id_to_piece(i): (sp.get_score(i), i) for i in range(n)
              if not (sp.is_control(i) or sp.is_unknown(i) or sp.is_byte(i) or sp.is_unused(i))}
    ranked = [(-score, i, tok[:k], tok[k:]) for tok, (score, i) in normal.items() for k in range(1, len(tok))
              if tok[:k] in normal and tok[k:] in normal]
    merges = [(left, right) for _, _, left, right in sorted(ranked)]
    tk = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    if style == "gemma":
        tk.normalizer = normalizers.Replace(" ", "▁")
        tk.pre_tokenizer = pre_tokenizers.Split(" ", "merged_with_previous")
        tk.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    else:
        tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
        tk.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                        decoders.Strip(content=" ", left=1)])
    tk.add_special_tokens([AddedToken(sp.id_to_piece(i), special=True, normalized=False)
                           for i in range(n) if sp.is_control(i) or sp.is_unknown(i)])
    tk.post_processor = processors.TemplateProcessing(single="<bos> $A", pair="<bos> $A <bos> $B",
                                                      special_tokens=[("<bos>", vocab["<bos>"])])
    return tk


GEMMA_CONFIG = {"bos_token": "<bos>", "eos_token": "<eos>", "unk_token": "<unk>", "pad_token": "<pad>"}


def write_folder(kind: str, d, sp_model):
    """A model folder's tokenizer files of ``kind``."""
    d.mkdir(parents=True, exist_ok=True)
    if kind == "sentencepiece":
        (d / "tokenizer.model").write_bytes(sp_model.read_bytes())
        return d
    if kind == "byte-level":
        tk, cfg = llama3_style_tokenizer(LINES * 5), {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>"}
    else:
        tk, cfg = sentencepiece_style_json(sp_model, kind.split("-")[0]), GEMMA_CONFIG
    tk.save(str(d / "tokenizer.json"))
    (d / "tokenizer_config.json").write_text(json.dumps(cfg))
    return d


@pytest.fixture(scope="module", params=list(KINDS))
def folder(request, sp_model, tmp_path_factory):
    return request.param, write_folder(request.param, tmp_path_factory.mktemp(request.param), sp_model)


@pytest.fixture(scope="module")
def base(folder):
    return find_base(folder[1])


# ------------------------------------------------------------------ every kind


def test_the_table_lists_every_kind_once():
    assert list(BASE_FAMILIES) == ["sentencepiece", "sentencepiece-json", "byte-level-bpe"]
    assert all(issubclass(cls, BaseFamily) and cls.kind == kind for kind, cls in BASE_FAMILIES.items())


def test_find_base_picks_the_kind(folder, base):
    kind, d = folder
    assert type(base) is KINDS[kind] and BASE_FAMILIES[base.kind] is KINDS[kind]
    assert base.bos_id is not None and base.eos_id is not None and base.default_add_bos()


def test_record_save_and_load_round_trip(base, tmp_path):
    record = base.record()
    assert record["kind"] == base.kind and record["file"] == base.saved_as
    assert base.save(tmp_path) == record["file"] and (tmp_path / record["file"]).is_file()
    again = load_saved_base(tmp_path, json.loads(json.dumps(record)))  # as a recipe reads it back
    assert type(again) is type(base) and again.record() == record
    assert again.pieces == base.pieces and again.surfaces == base.surfaces and again.piece_bytes == base.piece_bytes
    assert (again.bos_id, again.eos_id, again.unk_id, again.pad_id) == (base.bos_id, base.eos_id, base.unk_id,
                                                                        base.pad_id)
    assert again.encode_batch(LINES) == base.encode_batch(LINES)
    assert again.model_rows() == base.model_rows() and again.control_names() == base.control_names()
    assert load_saved_base(tmp_path / "nothing", record) is None


AWKWARD = ["▁", "▁▁ x", "<bos>", "<s>", "<unk>", "<0x41>", "<start_of_turn>", "<|begin_of_text|>", "\ud800", "\udfff",
           "\x00", "\r\n", "🙂", "ё", " ", "  "]


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=40)
       | st.lists(st.sampled_from(AWKWARD + RUSSIAN[0].split())).map("".join))
def test_lossless_on_any_string(base, text):
    ids = base.encode(text)
    assert base.decode(ids) == text
    assert base.encode_batch([text, "", text]) == [ids, [], ids]
    assert all(0 <= i < len(base) for i in ids)


@pytest.mark.parametrize("text", ["", "a", "ё", "🙂", "\ud800", "а\udfffб", "<bos>", "▁", "\x00", "\r\n", "я" * 100_000])
def test_known_cases_are_lossless(base, text):
    assert base.decode(base.encode(text)) == text


# ------------------------------------------------------------------ the SentencePiece-style tokenizer.json


@pytest.fixture(scope="module", params=["gemma", "mistral"])
def json_base(request, sp_model, tmp_path_factory):
    return find_base(write_folder(f"{request.param}-json", tmp_path_factory.mktemp(request.param), sp_model))


@pytest.fixture(scope="module")
def sp_base(sp_model):
    return LosslessSentencePiece(sp_model)


def test_sentencepiece_json_gives_the_models_ids_on_russian_text(json_base, sp_base, sp_model):
    import sentencepiece as spm
    from tokenizers import Tokenizer

    assert isinstance(json_base, LosslessSentencePieceJson)
    sp = spm.SentencePieceProcessor(model_file=str(sp_model))  # as it is: no normalisation, no dummy prefix
    for line in RUSSIAN:
        assert json_base.encode(line) == sp.encode(line) == sp_base.encode(line), line
    assert json_base.encode_batch(LINES) == sp_base.encode_batch(LINES)
    raw = Tokenizer.from_file(str(json_base.path))  # the file as transformers reads it
    if raw.pre_tokenizer.__class__.__name__ != "Metaspace":  # Gemma's style adds no prefix: the file's own ids
        assert [e.ids for e in raw.encode_batch(RUSSIAN, add_special_tokens=False)] == sp.encode(RUSSIAN)
    assert raw.encode(RUSSIAN[0]).ids[0] == json_base.bos_id  # the file puts bos first, and the base says so
    assert json_base.default_add_bos()


def test_sentencepiece_json_has_the_models_piece_view_and_rows(json_base, sp_base):
    for name in ("pieces", "surfaces", "bytes_of", "byte_ids", "single", "piece_bytes"):
        assert getattr(json_base, name) == getattr(sp_base, name), name
    assert (json_base.bos_id, json_base.eos_id, json_base.unk_id, json_base.pad_id) == (2, 1, 3, 0)
    assert json_base.model_rows() == sp_base.model_rows()  # a SentencePiece BPE numbers its pieces best first
    assert json_base.control_names() == ["<pad>", "<eos>", "<bos>", "<unk>", *CONTROLS]
    assert json_base.record() == {"kind": "sentencepiece-json", "file": "base_tokenizer.json",
                                  "special_tokens": {"bos": "<bos>", "eos": "<eos>", "unk": "<unk>", "pad": "<pad>"}}


@pytest.fixture(scope="module")
def new(tiny_tok):
    return HyperTokTokenizer.from_dir(tiny_tok.path)


@pytest.mark.parametrize("strategy", ["extend", "replace"])
def test_transfer_over_sentencepiece_json(json_base, sp_base, new, strategy, tmp_path):
    from tokenizers import Tokenizer

    recipe = plan_transfer(json_base, new, strategy)
    assert recipe.base_tokenizer["kind"] == "sentencepiece-json"
    same = plan_transfer(sp_base, new, strategy)  # over the tokenizer.model: the same plan, the same ids
    assert (recipe.new_to_model, recipe.new_rows, recipe.sources) == (same.new_to_model, same.new_rows, same.sources)
    tok = AdaptedTokenizer(recipe, new, json_base)
    assert tok.encode_batch(LINES) == AdaptedTokenizer(same, new, sp_base).encode_batch(LINES)
    tok.save(tmp_path)
    assert (tmp_path / "base_tokenizer.json").is_file() and not (tmp_path / "base_tokenizer.model").exists()
    again = AdaptedTokenizer.load(tmp_path)
    assert type(again.base) is LosslessSentencePieceJson and again.base.record() == recipe.base_tokenizer
    assert again.encode_batch(LINES) == tok.encode_batch(LINES)
    served = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    served.encode_special_tokens = True
    controls = [t.content for t in served.get_added_tokens_decoder().values() if t.special]
    for line in LINES:
        ids = tok.encode(line)
        if not any(c in line for c in controls):  # "<unk>" in text: spelled with bytes where the base lacks "k"
            assert served.encode(line, add_special_tokens=False).ids == ids, line
        assert tok.decode(ids) == line and all(0 <= i < len(tok) for i in ids)
    ours = sum(len(tok.encode(x)) for x in TINY_TEXT.split("\n"))
    assert ours < 0.8 * sum(len(json_base.encode(x)) for x in TINY_TEXT.split("\n"))
    if strategy == "extend":
        assert tok.recipe.model_vocab_size > len(json_base)
        assert served.id_to_token(json_base.byte_ids[0x41]) == "<0x41>"  # byte fallback, as over a tokenizer.model


@pytest.fixture(scope="module", params=["extend", "replace"])
def adapted(request, json_base, new):
    return AdaptedTokenizer(plan_transfer(json_base, new, request.param), new, json_base)


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=40)
       | st.lists(st.sampled_from(AWKWARD + RUSSIAN[1].split())).map("".join))
def test_adapted_over_sentencepiece_json_is_lossless(adapted, text):
    ids = adapted.encode(text)
    assert adapted.decode(ids) == text and all(0 <= i < len(adapted) for i in ids)


def test_load_base_takes_a_sentencepiece_json_file(json_base):
    again = load_base(json_base.path)  # its tokenizer_config.json is beside it
    assert type(again) is LosslessSentencePieceJson and again.special_tokens == json_base.special_tokens


# ------------------------------------------------------------------ edges


def test_a_folder_with_both_files_is_read_from_the_model(sp_model, tmp_path):
    d = write_folder("gemma-json", tmp_path, sp_model)
    (d / "tokenizer.model").write_bytes(sp_model.read_bytes())
    assert type(find_base(d)) is LosslessSentencePiece


def test_control_text_that_merges_could_rebuild_is_spelled_with_bytes(tmp_path):
    """A file whose merges build ``<bos>`` from its characters: with control strings read as text, the
    BPE would still emit bos for the text ``<bos>``; the base spells that text with bytes instead."""
    from tokenizers import AddedToken, Tokenizer, models, normalizers

    vocab = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, **{f"<0x{b:02X}>": 4 + b for b in range(256)}}
    for p in ["<", "b", "o", "s", ">", "▁", "<b", "<bo", "<bos", "x"]:
        vocab[p] = len(vocab)
    merges = [("<", "b"), ("<b", "o"), ("<bo", "s"), ("<bos", ">")]
    tk = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True))
    tk.normalizer = normalizers.Replace(" ", "▁")
    tk.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ("<pad>", "<eos>", "<bos>", "<unk>")])
    tk.save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(GEMMA_CONFIG))
    base = find_base(tmp_path)
    raw = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    raw.encode_special_tokens = True
    assert vocab["<bos>"] in raw.encode("x<bos>x", add_special_tokens=False).ids  # what the base must not do
    ids = base.encode("x<bos> x")
    assert vocab["<bos>"] not in ids and base.decode(ids) == "x<bos> x"
    assert base.encode_batch(["x<bos>x"]) == [base.encode("x<bos>x")]


def test_bad_json_bases_are_one_clear_line(sp_model, tmp_path):
    d = write_folder("gemma-json", tmp_path / "d", sp_model)
    data = json.loads((d / "tokenizer.json").read_text())
    data["model"]["byte_fallback"] = False  # a Metaspace/Replace BPE without byte fallback: neither kind
    (d / "tokenizer.json").write_text(json.dumps(data))
    with pytest.raises(HyperTokError, match="not a byte-level BPE tokenizer.json .* nor a SentencePiece-style one"):
        find_base(d)
    data["model"]["byte_fallback"], data["normalizer"] = True, None  # spaces would stay spaces
    (d / "tokenizer.json").write_text(json.dumps(data))
    with pytest.raises(HyperTokError, match="spaces are not written as ▁"):
        find_base(d)
    with pytest.raises(HyperTokError, match="not a SentencePiece-style tokenizer.json"):
        LosslessSentencePieceJson(write_folder("byte-level", tmp_path / "b", sp_model) / "tokenizer.json")


def test_recipes_name_their_kind_and_old_ones_still_load(sp_model, tmp_path):
    (tmp_path / "base_tokenizer.model").write_bytes(sp_model.read_bytes())
    assert type(load_saved_base(tmp_path, {})) is LosslessSentencePiece  # a recipe from before issue 11
    with pytest.raises(HyperTokError, match="does not read"):
        load_saved_base(tmp_path, {"kind": "wordpiece", "file": "base_tokenizer.model"})
    recipe = Recipe("extend", 3, 4, [0, 1, 2, 3], [3], [[0]], 1, 2, 0,
                    base_tokenizer={"kind": "sentencepiece-json", "file": "base_tokenizer.json"})
    recipe.validate()
