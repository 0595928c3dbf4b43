"""Issue 21: evaluation that is fair across tokenizers.

Bits per character with the same characters of context for every model (windows cut by the
text alone, each scored from ``<bos>``), and RuBLiMP-style minimal pairs scored by the total
log-probability of each sentence. The batched, padded, chunked scorer is checked against the
plainest computation there is: one text at a time, full logits, ``log_softmax``. CPU, float32,
a tiny random 2-layer Mistral with a SentencePiece tokenizer trained here; no downloads.
"""

from __future__ import annotations

import importlib
import json
import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
spm = pytest.importorskip("sentencepiece")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from hypertok import HyperTokError  # noqa: E402
from hypertok.adapt.evaluate import (bits_per_char_equal_context, char_windows, minimal_pair_accuracy,  # noqa: E402
                                     read_minimal_pairs, text_logprobs)

from .tiny import cli, make_base, make_text  # noqa: E402

E = importlib.import_module("hypertok.adapt.evaluate")  # the package exports a function of that name

# float32 sums over at most ~60 tokens: batched/padded and one-at-a-time matmuls differ in
# summation order only, a few 1e-6 per token at most
TOL = 1e-4

PAIRS_TSV = ("id\tphenomenon\tgood\tbad\n"
             "1\tagreement\tОн пришёл домой.\tОн пришла домой.\n"
             "2\tagreement\tМать сказала сыну.\tМать сказал сыну.\n"
             "3\tcase\tЯ вижу дом и сад.\tЯ вижу дома и саду.\n"
             # quoted as csv writes it (RuBLiMP's dev.tsv too): "" is one quote inside a quoted field
             '4\tcase\t"""Старый"" город ночью."\t"""Старый"" городом ночью."\n')


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny base (its own SentencePiece tokenizer.model), its tokenizer, dev text and a 4-pair TSV."""
    from hypertok.adapt.model import load_base_model
    from hypertok.registry import BaseTokenizer, LosslessSentencePiece

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("fair")
    train, dev = root / "train.txt", root / "dev.txt"
    train.write_text(make_text(200, 0))
    dev.write_text(make_text(6, 1))
    spm.SentencePieceTrainer.train(
        input=str(train), model_prefix=str(root / "sp"), vocab_size=400, model_type="bpe", byte_fallback=True,
        character_coverage=1.0, unk_id=0, bos_id=1, eos_id=2, pad_id=-1, minloglevel=2)
    base = make_base(root / "base", root / "sp.model", 0)
    pairs = root / "pairs.tsv"
    pairs.write_text(PAIRS_TSV, encoding="utf-8")
    model = load_base_model(base, "float32", "cpu")
    tok = BaseTokenizer(LosslessSentencePiece(root / "sp.model"))
    return {"root": root, "base": base, "dev": dev, "pairs": pairs, "model": model, "tok": tok}


def plain_logprob(model, tok, text: str) -> float:
    """The reference: one text, no padding, full logits, log_softmax, sum of log p of each id after <bos>."""
    ids = tok.encode(text, add_bos=True)
    model.eval()
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].float()  # (T, V)
    lp = torch.log_softmax(logits, dim=-1)
    return sum(float(lp[t, ids[t + 1]]) for t in range(len(ids) - 1))


# ------------------------------------------------------------------ char_windows

def check_windows(doc: str, n: int) -> None:
    ws = char_windows([doc], n)
    assert "".join(ws) == doc
    i = 0
    for k, w in enumerate(ws):
        assert 1 <= len(w) <= n
        if k < len(ws) - 1:  # a cut inside the document
            span = doc[i:i + n]
            if any(c.isspace() for c in span):  # ends after the span's last whitespace
                assert w[-1].isspace() and not any(c.isspace() for c in span[len(w):])
            else:  # no whitespace: hard at the limit
                assert len(w) == n
        else:
            assert len(doc) - i <= n
        i += len(w)


@given(st.lists(st.text(max_size=120)), st.integers(1, 40))
@settings(max_examples=300, deadline=None)
def test_char_windows_rebuild_each_document_and_cut_at_whitespace(docs, n):
    for d in docs:
        check_windows(d, n)
    assert char_windows(docs, n) == [w for d in docs for w in char_windows([d], n)]


@given(st.lists(st.sampled_from(["дом", "сад", "а", " ", "  ", "\n", "\t", "x" * 9, "\r\n"]), max_size=40),
       st.integers(1, 12))
@settings(max_examples=300, deadline=None)
def test_char_windows_on_word_like_text(parts, n):
    check_windows("".join(parts), n)


def test_char_windows_known_cases():
    assert char_windows([], 5) == [] and char_windows([""], 5) == []
    assert char_windows(["abcde"], 5) == ["abcde"]
    assert char_windows(["ab cd ef"], 5) == ["ab ", "cd ef"]
    assert char_windows(["abcdefgh"], 3) == ["abc", "def", "gh"]
    assert char_windows(["ab    cd"], 4) == ["ab  ", "  cd"]
    assert char_windows(["мир\nдом сад"], 8) == ["мир\nдом ", "сад"]
    for bad in (0, -1, 2.5):
        with pytest.raises(HyperTokError, match="--context-chars"):
            char_windows(["x"], bad)


# ------------------------------------------------------------------ text_logprobs

def test_text_logprobs_equal_plain_logits_padded_or_not(tiny):
    model, tok = tiny["model"], tiny["tok"]
    texts = ["Он пришёл.", "", "Старый дом у реки, – сказал он. Ночь, ветер и снег.", "сад",
             "Мать сказала сыну, что утро было тёплым.", "Он пришёл."]
    ref = [plain_logprob(model, tok, t) for t in texts]
    assert ref[1] == 0.0 and ref[0] < 0
    for batch_size in (1, 2, 8):  # 8: one batch, every row but the longest padded
        got = text_logprobs(model, tok, texts, batch_size=batch_size, chunk=7)
        assert got == pytest.approx(ref, abs=TOL)
    assert not model.training


def test_a_wide_head_is_scored_in_smaller_chunks_to_the_same_figures(tiny, monkeypatch):
    """Issue 24 item 16: a chunk's float32 logits stay under LOGITS_BYTES, the figures unchanged."""
    E = importlib.import_module("hypertok.adapt.evaluate")  # the module: hypertok.adapt.evaluate is also a function
    model, tok = tiny["model"], tiny["tok"]
    rows = model.config.vocab_size
    assert E.logits_chunk(model, 8192) * 4 * rows <= E.LOGITS_BYTES and E.logits_chunk(model, 7) == 7
    texts = ["Старый дом у реки, – сказал он.", "Мать сказала сыну, что утро было тёплым."]
    ref = text_logprobs(model, tok, texts, chunk=8192)
    monkeypatch.setattr(E, "LOGITS_BYTES", 4 * rows * 100)  # 100 tokens a chunk
    assert E.logits_chunk(model, 8192) == 100
    assert text_logprobs(model, tok, texts, chunk=8192) == pytest.approx(ref, abs=TOL)


def test_bits_per_char_equal_context_is_the_sum_of_window_logprobs(tiny):
    model, tok = tiny["model"], tiny["tok"]
    docs = tiny["dev"].read_text().split("\n\n")[:3]
    res = bits_per_char_equal_context(model, tok, docs, context_chars=64, batch_size=4)
    windows = char_windows(docs, 64)
    bits = -sum(plain_logprob(model, tok, w) for w in windows) / math.log(2)
    chars = sum(map(len, docs))
    assert res["windows"] == len(windows) > len(docs) and res["context_chars"] == 64
    assert res["chars"] == chars and res["bytes"] == sum(len(d.encode()) for d in docs)
    assert res["tokens"] == sum(len(tok.encode(w)) for w in windows)
    assert res["bpc"] == pytest.approx(bits / chars, abs=TOL / chars)
    assert res["bpb"] == pytest.approx(bits / res["bytes"], abs=TOL / chars)
    assert res["chars_per_token"] == pytest.approx(chars / res["tokens"])
    whole = bits_per_char_equal_context(model, tok, docs, context_chars=10_000)  # one window per document
    assert whole["windows"] == len(docs)
    assert whole["bpc"] == pytest.approx(-sum(text_logprobs(model, tok, docs)) / math.log(2) / chars, rel=1e-6)


# ------------------------------------------------------------------ minimal pairs

def test_minimal_pairs_against_plain_logits(tiny):
    model, tok = tiny["model"], tiny["tok"]
    pairs = read_minimal_pairs(tiny["pairs"])
    assert [p["phenomenon"] for p in pairs] == ["agreement", "agreement", "case", "case"]
    assert pairs[3]["good"] == '"Старый" город ночью.' and pairs[3]["line"] == 5
    right = [plain_logprob(model, tok, p["good"]) > plain_logprob(model, tok, p["bad"]) for p in pairs]
    res = minimal_pair_accuracy(model, tok, pairs, batch_size=3)
    assert res["pairs"] == 4 and res["accuracy"] == sum(right) / 4
    assert res["by_phenomenon"] == {"agreement": sum(right[:2]) / 2, "case": sum(right[2:]) / 2}
    first = minimal_pair_accuracy(model, tok, pairs, limit_per_phenomenon=1)
    assert first["pairs"] == 2 and first["by_phenomenon"] == {"agreement": float(right[0]), "case": float(right[2])}


def test_a_tie_counts_wrong_and_phenomenon_defaults_to_all(tmp_path, monkeypatch):
    f = tmp_path / "plain.tsv"
    f.write_text("good\tbad\nа\tб\nв\tг\n", encoding="utf-8")
    pairs = read_minimal_pairs(f)
    assert {p["phenomenon"] for p in pairs} == {"all"}
    monkeypatch.setattr(E, "text_logprobs", lambda model, tok, texts, *a, **k: [-1.0, -2.0, -2.0, -2.0])
    res = minimal_pair_accuracy(None, None, pairs)  # goods then bads: pair 1 right, pair 2 a tie
    assert res == {"accuracy": 0.5, "pairs": 2, "by_phenomenon": {"all": 0.5}}


@pytest.mark.parametrize("content, match", [
    ("good\tsentence\nа\tб\n".encode(), r":1: no column 'bad'"),
    ("phenomenon\tgood\tbad\nx\tа\tб\ny\t \tб\n".encode(), r":3: the 'good' sentence is empty"),
    ("good\tbad\nа\tб\nа\t".encode(), r":3: the 'bad' sentence is empty"),
    ("good\tbad\nа\tб\n".encode() + b"\xff\xfe\tb\n", r":3: not UTF-8"),
    ("good\tbad\n".encode(), r"no pairs"),
    (b"", r":1: no column 'good' or 'bad'"),
])
def test_bad_pairs_files_name_the_file_and_line(tmp_path, content, match):
    f = tmp_path / "mine.tsv"
    f.write_bytes(content)
    with pytest.raises(HyperTokError, match=match) as e:
        read_minimal_pairs(f)
    assert str(f) in str(e.value)


# ------------------------------------------------------------------ hypertok eval

def test_eval_options_and_pairs_files_are_checked_before_any_load(tiny, tmp_path, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("the model was loaded before the input was checked")

    monkeypatch.setattr(E, "load_base_model", boom)
    args = (str(tiny["base"]), None, str(tiny["dev"]))
    for kw, match in (({"context_chars": -1}, "--context-chars"), ({"pairs_per_phenomenon": -2}, "--pairs-per-phen"),
                      ({"pairs": [str(tmp_path / "none.tsv")]}, "none.tsv"),
                      ({"pairs": [str(tiny["pairs"]), str(tiny["pairs"])]}, "two files")):
        with pytest.raises(HyperTokError, match=match):
            E.evaluate(*args, device="cpu", **kw)


def test_cli_eval_writes_equal_context_and_pairs(tiny, capsys):
    from hypertok.adapt.data import read_documents

    rc = cli(["eval", "--base", str(tiny["base"]), "--text", str(tiny["dev"]), "--max-chars", "600",
              "--gen-tokens", "2", "--prompts", "1", "--repeats", "1", "--device", "cpu", "--dtype", "float32",
              "--context-chars", "64", "--pairs", str(tiny["pairs"]), "--pairs-per-phenomenon", "0"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert res["context_chars"] == 64 and res["bpc"] > 0
    docs = read_documents([str(tiny["dev"])], 600)
    direct = bits_per_char_equal_context(tiny["model"], tiny["tok"], docs, 64)
    assert res["bpc_equal_context"] == pytest.approx(direct["bpc"], rel=1e-5)
    assert res["bpb_equal_context"] == pytest.approx(direct["bpb"], rel=1e-5)
    p = res["pairs"]["pairs"]  # keyed by the file's stem
    assert p["pairs"] == 4 and 0 <= p["accuracy"] <= 1 and set(p["by_phenomenon"]) == {"agreement", "case"}
    assert p == minimal_pair_accuracy(tiny["model"], tiny["tok"], read_minimal_pairs(tiny["pairs"]))
    rc = cli(["eval", "--base", str(tiny["base"]), "--text", str(tiny["dev"]), "--max-chars", "600",
              "--gen-tokens", "2", "--prompts", "1", "--repeats", "1", "--device", "cpu", "--context-chars", "0"])
    assert rc == 0
    off = json.loads(capsys.readouterr().out)
    assert "bpc_equal_context" not in off and "pairs" not in off and off["bpc"] == pytest.approx(res["bpc"])
