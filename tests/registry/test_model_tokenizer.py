"""Issue 11: the model's one tokenizer.json (every model row a piece) for `extend` and `replace`.

The adapted tokenizer encodes with the very file it saves, so HF ``tokenizers`` and
``transformers.AutoTokenizer`` on that file give the trainer's ids. Bases, one of each kind
(tests/adapt/tiny.py): Mistral v3's ``tokenizer.model`` (from mistral-common), a
Mistral-Nemo-style byte-level BPE ``tokenizer.json`` cut from Mistral's real Tekken file, and a
Llama-3-style one trained here; vocabulary: the tiny HyperTok build of tests/conftest.py. No
model, no torch.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hypertok.errors import HyperTokError
from hypertok.registry import (AdaptedTokenizer, HyperTokTokenizer, LosslessByteLevel, Recipe, find_base,
                               plan_transfer)
from hypertok.registry.bytelevel import to_byte_level

from ..adapt.tiny import BASE_KINDS, EVERY_SCRIPT, write_base_tokenizer
from ..conftest import mistral_test_file

LINES = EVERY_SCRIPT.split("\n")


@pytest.fixture(scope="module", params=BASE_KINDS)
def base(request, tiny_corpus, tmp_path_factory):
    """The base tokenizer of a model folder of each kind."""
    kind = request.param
    d = tmp_path_factory.mktemp(kind)
    info = write_base_tokenizer(
        kind, d, sp_model=mistral_test_file("mistral-v3") if kind == "sentencepiece" else None,
        tekken_file=mistral_test_file("tekken") if kind == "tekken" else None,
        texts=tiny_corpus.read_text().split("\n") + LINES)
    (d / "tokenizer_config.json").write_text(json.dumps(info["config"]))
    return find_base(d)


@pytest.fixture(scope="module", params=["extend", "replace"])
def saved(request, base, tiny_tok, tmp_path_factory):
    """An adapted tokenizer and the folder it saved itself into."""
    new = HyperTokTokenizer.from_dir(tiny_tok.path)
    recipe = plan_transfer(base, new, request.param)
    recipe.tokenizer_config = {"add_bos_token": True, "add_eos_token": False,
                               "chat_template": "{{ bos_token }}{% for m in messages %}[INST] {{ m['content'] }} [/INST]"
                                                "{% endfor %}"}
    tok = AdaptedTokenizer(recipe, new, base)
    d = tmp_path_factory.mktemp(request.param)
    tok.save(d)
    return tok, d


@pytest.fixture(scope="module")
def fresh(saved):
    """The saved tokenizer.json read back by HF tokenizers alone (as the trainer reads text: controls as text)."""
    from tokenizers import Tokenizer

    hf = Tokenizer.from_str(saved[0].model_json())
    hf.encode_special_tokens = True
    return hf


def controls_in(tok, line: str) -> bool:
    """Whether a line holds a control string of the model file (HF reads those as their tokens, by design)."""
    return any(t.content in line for t in tok.hf.get_added_tokens_decoder().values() if t.special)


def test_file_has_exactly_the_model_rows_and_loads_back(saved):
    from tokenizers import Tokenizer

    tok, d = saved
    hf = Tokenizer.from_file(str(d / "tokenizer.json"))
    assert hf.get_vocab_size(with_added_tokens=True) == tok.recipe.model_vocab_size == len(tok)
    again = AdaptedTokenizer.load(d)
    assert again.encode_batch(LINES) == tok.encode_batch(LINES)
    if tok.extend:  # new rows read as the entries' surfaces, base rows as the base's pieces
        V = tok.recipe.base_vocab_size
        surface = tok.new.surfaces[tok.model_to_new[V]]
        if isinstance(tok.base, LosslessByteLevel):  # pieces in byte-level characters, bytes as themselves
            assert hf.id_to_token(V) == to_byte_level(surface.encode())
            assert hf.id_to_token(tok.base.byte_ids[0x41]) == "A" and hf.id_to_token(tok.base.byte_ids[0x20]) == "Ġ"
        else:  # pieces as text, <0xAB> byte fallback
            assert hf.id_to_token(V) == surface
            assert hf.id_to_token(tok.base.byte_ids[0x41]) == "<0x41>"
        assert any(t >= V for t in tok.encode(LINES[0]))
        if isinstance(tok.base, LosslessByteLevel):  # every base row reads as in the base's own file
            assert [hf.id_to_token(i) for i in range(V)] == [tok.base.tk.id_to_token(i) for i in range(V)]


def test_the_file_reads_back_exactly(saved):
    """tokenizers' JSON reader is one unit in the last place off for some doubles, which flips ties between
    the tokenizer that trained and the file that serves; the file's scores are ones it reads back exactly."""
    from tokenizers import Tokenizer

    tok, d = saved
    text = (d / "tokenizer.json").read_text()
    assert json.loads(Tokenizer.from_str(text).to_str())["model"] == json.loads(text)["model"]


def test_hf_tokenizers_on_the_file_gives_the_trainers_ids_on_every_script(saved):
    from tokenizers import Tokenizer

    tok, d = saved
    hf = Tokenizer.from_file(str(d / "tokenizer.json"))
    hf.encode_special_tokens = True  # the trainer reads "<unk>" and "[INST]" in text as text
    for line in LINES:
        assert hf.encode(line, add_special_tokens=False).ids == tok.encode(line), line
        assert tok.decode(tok.encode(line)) == line
    assert hf.encode("да", add_special_tokens=True).ids[0] == tok.bos  # the base adds <s>


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)
       | st.lists(st.sampled_from(LINES[0].split() + LINES[1].split() + [" ", "\n", "ё", "🙂"])).map("".join))
def test_file_and_adapted_tokenizer_agree_and_are_lossless(saved, fresh, text):
    tok, _ = saved
    hf = tok.hf  # the same object AdaptedTokenizer encodes with; `fresh` is its JSON read back
    ids = tok.encode(text)
    assert fresh.encode(text, add_special_tokens=False).ids == ids == hf.encode(text, add_special_tokens=False).ids
    assert tok.decode(ids) == text
    assert all(0 <= i < len(tok) for i in ids)


@pytest.mark.parametrize("text", ["\ud800", "а\udfffб", "x\ud83d"])
def test_lone_surrogates_are_spelled_with_bytes(saved, text):
    tok, _ = saved
    assert tok.decode(tok.encode(text)) == text


def test_autotokenizer_at_the_folder_root(saved):
    transformers = pytest.importorskip("transformers")
    tok, d = saved
    at = transformers.AutoTokenizer.from_pretrained(d, local_files_only=True)
    assert len(at) <= tok.recipe.model_vocab_size and at.bos_token_id == tok.bos and at.eos_token_id == tok.eos
    assert at.pad_token_id is not None and (at.unk_token_id is None) == (tok.unk_id is None)
    for line in LINES:
        if controls_in(tok, line):  # HF reads control strings as their tokens, by design
            continue
        ids = at(line)["input_ids"]
        assert ids == [tok.bos] + tok.encode(line), line
        assert at.decode(ids, skip_special_tokens=True) == line
    batch = at(LINES[:3], padding=True)
    assert len({len(x) for x in batch["input_ids"]}) == 1
    chat = at.apply_chat_template([{"role": "user", "content": "Привет"}], tokenize=False)
    assert chat.startswith(at.bos_token) and "[INST]" in chat
    cfg = json.loads((d / "tokenizer_config.json").read_text())
    assert cfg["add_bos_token"] is True and cfg["clean_up_tokenization_spaces"] is False


def test_extend_prefers_entries_and_compresses_more_than_the_base(saved, tiny_corpus):
    tok, _ = saved
    lines = tiny_corpus.read_text().split("\n")[:6]
    ours = sum(len(tok.encode(x)) for x in lines)
    base = sum(len(tok.base.encode(x)) for x in lines)
    assert ours < 0.8 * base
    if tok.extend:
        assert sum(tok.is_new_token(t) for x in lines for t in tok.encode(x)) > 0.3 * ours


def test_old_extend_recipe_is_refused(saved, tmp_path):
    tok, d = saved
    data = json.loads((d / "hypertok_adapt.json").read_text())
    data["version"] = 1
    (tmp_path / "hypertok_adapt.json").write_text(json.dumps(data))
    if tok.extend:
        with pytest.raises(HyperTokError, match="before issue 11"):
            Recipe.load(tmp_path)
    else:
        assert Recipe.load(tmp_path).strategy == "replace"


# ------------------------------------------------------------------ issue 11: build-time special tokens, NFC

CHAT = ["<|im_start|>", "<|im_end|>", "[INST]"]  # "[INST]" is a control piece of Mistral v3 itself


@pytest.fixture(scope="module")
def v3():
    """Mistral v3's own tokenizer.model: it has a control piece ("[INST]") named like a chat special."""
    from hypertok.registry import LosslessSentencePiece

    return LosslessSentencePiece(mistral_test_file("mistral-v3"))


@pytest.fixture(scope="module", params=["extend", "replace"])
def conv_saved(request, v3, tiny_corpus, tmp_path_factory):
    """An adapted tokenizer whose vocabulary has chat special tokens and the NFC normaliser."""
    from hypertok import BuildConfig, build

    root = tmp_path_factory.mktemp(f"conv_{request.param}")
    build([tiny_corpus], root / "tok", BuildConfig(vocab_size=700, mode="word", special_tokens=CHAT, normalize="nfc"))
    new = HyperTokTokenizer.from_dir(root / "tok")
    tok = AdaptedTokenizer(plan_transfer(v3, new, request.param), new, v3)
    tok.save(root / "ad")
    return tok, root / "ad"


def test_special_tokens_are_model_rows_and_specials_of_the_file(conv_saved, v3):
    from tokenizers import Tokenizer

    tok, d = conv_saved
    rows = {s: tok.recipe.new_to_model[i] for s, i in tok.new.added_specials.items()}
    M = tok.recipe.model_vocab_size
    if tok.extend:  # new rows last; a special the base already has keeps the base's row
        assert rows == {"<|im_start|>": M - 2, "<|im_end|>": M - 1, "[INST]": v3.sp.piece_to_id("[INST]")}
    else:
        assert rows == {s: tok.new.tok.special_tokens[s] for s in CHAT}
    hf = Tokenizer.from_file(str(d / "tokenizer.json"))
    assert hf.get_vocab_size(with_added_tokens=True) == M
    specials = {t.content: i for i, t in hf.get_added_tokens_decoder().items() if t.special}
    assert all(specials[s] == r for s, r in rows.items())
    assert json.loads((d / "tokenizer_config.json").read_text())["additional_special_tokens"] == CHAT
    again = AdaptedTokenizer.load(d)
    assert again.encode_batch(LINES) == tok.encode_batch(LINES)


def test_autotokenizer_reads_special_tokens_and_normalises_like_the_trainer(conv_saved):
    import unicodedata

    transformers = pytest.importorskip("transformers")
    tok, d = conv_saved
    at = transformers.AutoTokenizer.from_pretrained(d, local_files_only=True)
    rows = {s: tok.recipe.new_to_model[i] for s, i in tok.new.added_specials.items()}
    text = "<|im_start|>user\nКак дела?<|im_end|>"
    want = [rows["<|im_start|>"]] + tok.encode("user\nКак дела?") + [rows["<|im_end|>"]]
    assert at(text, add_special_tokens=False)["input_ids"] == want
    assert at.decode(want, skip_special_tokens=True) == "user\nКак дела?"
    assert tok.decode(tok.encode(text)) == text  # the trainer reads them as text: lossless
    for line in LINES[:3]:
        nfd = unicodedata.normalize("NFD", line)
        assert tok.encode(nfd) == tok.encode(unicodedata.normalize("NFC", line))
        assert at(nfd, add_special_tokens=False)["input_ids"] == tok.encode(nfd)
        assert tok.decode(tok.encode(nfd)) == unicodedata.normalize("NFC", line)


def test_replace_keeps_hypertok_scores_exactly(base, tiny_tok, tmp_path):
    """Issue 22: a replace model's file holds HyperTok's own grid scores, not rounded ones, so two equally
    good cuts tie as in HyperTok (and in llama.cpp's search) and the model reads HyperTok's ids."""
    from hypertok.registry.model_tokenizer import json_score

    new = HyperTokTokenizer.from_dir(tiny_tok.path)
    tok = AdaptedTokenizer(plan_transfer(base, new, "replace"), new, base)
    tok.save(tmp_path)
    mine = json.loads((tmp_path / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    own = json.loads(tiny_tok.hf.to_str())["model"]["vocab"]
    assert mine == own
    assert json_score(-1.01806640625) == -1.01806640625 and json_score(-1.0180664063) == -1.018066406
    for line in LINES:
        assert tok.encode(line) == tiny_tok.encode(line), line
