"""``hypertok export-gguf``: a merged HyperTok model and a plain base, written as GGUF and read back.

Without llama.cpp: the file read back by ``hypertok import`` gives the weights that were written
(Llama's q/k permutation undone exactly, Gemma's norm shift to a float32 ulp), and the UGM vocabulary holds the
model tokenizer's pieces, scores and types. With llama.cpp (``llama-cpp-python``, the
``llamacpp`` extra, which CI installs): the exported tiny HyperTok model loads, ``tokenize`` gives
HyperTok's ids on Russian lines with awkward Unicode, ``detokenize`` gives the text back, and the
logits of every position agree with transformers.
"""

from __future__ import annotations

import json
import shutil

import pytest

pytest.importorskip("gguf")
torch = pytest.importorskip("torch")
pytest.importorskip("sentencepiece")

from hypertok.adapt.gguf_export import SPACE, export_gguf, unigram_vocab  # noqa: E402
from hypertok.adapt.gguf_import import import_gguf  # noqa: E402
from hypertok.errors import HyperTokError  # noqa: E402

from .tiny import adapt_config, make_text  # noqa: E402

# Russian text and what trips tokenizers: runs of spaces, tabs, digits, Latin, quotes, dashes, ё, empty lines
LINES = ["Давно минувших дней, преданья старины глубокой!", "В 1837 году — «Современник», т. 5, с. 12–14.",
         "Версия 2.0 поддерживает API и JSON-файлы.", "  два  пробела\tи табуляция ", "Ёлка и ёж, ещё раз: «ё»!",
         "print('привет')  # comment", "ЗАГЛАВНЫЕ буквы и цифры 0123456789", "строка\n\nи пустая строка\n",
         " пробел в начале", "конец с пробелом ", "   ", "\n", "a", "ъ", "—", "Он сказал: «Нет…»"]
# characters no piece of the tiny vocabulary spells: llama.cpp's UGM reads them as <unk> (HyperTok: byte pieces)
OOV = ["эмодзи 🌲 в строке", "汉字 и кириллица"]


@pytest.fixture(scope="module")
def merged(env):
    """A tiny Mistral moved onto the tiny HyperTok vocabulary (replace), trained two steps, merged."""
    from hypertok.adapt.model import merge
    from hypertok.adapt.train import adapt

    out = env["root"] / "gguf_ad"
    adapt(adapt_config(env, out, strategy="replace", steps=2, eval=None, save_every=0))
    return merge(env["base"], out, env["root"] / "gguf_merged", "float32")


def _gemma_folder(d, vocab: int):
    """A tiny Gemma 3 folder with norms away from their init, so a missed shift shows."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    cfg = Gemma3TextConfig(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=2, num_key_value_heads=1, head_dim=256, query_pre_attn_scalar=256,
                           sliding_window=16, max_position_embeddings=256, rms_norm_eps=1e-6, pad_token_id=0,
                           eos_token_id=2, bos_token_id=1, tie_word_embeddings=True)
    model = Gemma3ForCausalLM(cfg)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "norm" in n:
                p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(d)
    return model


def _state(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


@pytest.mark.parametrize("arch", ["gemma3", "llama"])
def test_export_then_import_gives_back_the_weights(arch, env, tmp_path):
    base = tmp_path / "base"
    if arch == "gemma3":
        import sentencepiece as spm

        _gemma_folder(base, spm.SentencePieceProcessor(model_file=str(env["sp"])).get_piece_size())
        shutil.copy(env["sp"], base / "tokenizer.model")
    else:
        shutil.copytree(env["base"], base)
    summary = export_gguf(base, tmp_path / "m.gguf", quant="f32")
    assert summary["architecture"] == arch and summary["tokenizer"] == "llama"
    back = tmp_path / "back"
    import_gguf(tmp_path / "m.gguf", back, dtype="float32")
    a, b = _state(base), _state(back)
    assert set(b) <= set(a)
    for name in b:  # (w + 1) - 1 rounds in float32: Gemma's norms agree to a float32 ulp of 1, the rest exactly
        tol = 1e-6 if arch == "gemma3" and "norm" in name else 0.0
        assert torch.allclose(a[name], b[name], rtol=0, atol=tol), name


def test_the_ugm_vocabulary_is_the_model_tokenizer(merged):
    data = json.loads((merged / "tokenizer.json").read_text(encoding="utf-8"))
    v = unigram_vocab(merged)
    assert v.model == "t5" and not v.add_space_prefix
    pieces = data["model"]["vocab"]
    assert v.tokens[:len(pieces)] == [p.replace(" ", SPACE) for p, _ in pieces]
    assert v.scores[:len(pieces)] == [float(s) for _, s in pieces]
    assert v.types[4:260] == [6] * 256 and v.types[0] == 2 and v.types[1:4] == [3, 3, 3]  # bytes; unk; specials
    assert set(v.types[260:len(pieces)]) == {1}


def test_export_refuses_what_llama_cpp_cannot_read(merged, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(merged, bad)
    data = json.loads((bad / "tokenizer.json").read_text(encoding="utf-8"))
    data["normalizer"] = {"type": "NFC"}
    (bad / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(HyperTokError, match="precompiled charsmap"):
        export_gguf(bad, tmp_path / "x.gguf")
    data["normalizer"] = None
    data["model"] = {"type": "BPE", "vocab": {}, "merges": []}
    (bad / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(HyperTokError, match="half a character"):
        export_gguf(bad, tmp_path / "x.gguf")
    with pytest.raises(HyperTokError, match="--quant"):
        export_gguf(merged, tmp_path / "x.gguf", quant="q3")
    export_gguf(merged, tmp_path / "ok.gguf", quant="q8_0")
    with pytest.raises(HyperTokError, match="--force"):
        export_gguf(merged, tmp_path / "ok.gguf")
    before = (tmp_path / "ok.gguf").stat().st_size
    assert export_gguf(merged, tmp_path / "ok.gguf", quant="f32", force=True)["bytes"] > before  # a GGUF is replaced
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no leftovers


# ----------------------------------------------------------------------------------------
# Real llama.cpp
# ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def llama(merged, tmp_path_factory):
    llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (pip install "
                                                        "'hypertok[llamacpp]'; CI installs it)")
    path = tmp_path_factory.mktemp("gguf") / "merged-f32.gguf"
    export_gguf(merged, path, quant="f32")
    return llama_cpp.Llama(model_path=str(path), n_ctx=256, logits_all=True, verbose=False, n_threads=1, seed=0)


def _lines(env) -> list[str]:
    text = make_text(250, 7)
    return LINES + [t for t in text.split("\n") if t][:200] + [text[:500]]


def test_llama_cpp_gives_hypertok_ids_and_text_back(llama, merged, env):
    from hypertok.registry import AdaptedTokenizer

    tok = AdaptedTokenizer.load(merged)
    lines = _lines(env)
    assert len(lines) > 200
    for line in lines:
        ours = tok.encode(line)
        theirs = llama.tokenize(line.encode("utf-8"), add_bos=False, special=False)
        assert theirs == ours, line
        assert llama.detokenize(theirs).decode("utf-8") == line
    with_bos = llama.tokenize(LINES[0].encode("utf-8"), add_bos=True, special=False)
    assert with_bos == tok.encode(LINES[0], add_bos=True)


def test_llama_cpp_reads_unknown_characters_as_unk(llama, merged):
    """The documented differences: no byte fallback in llama.cpp's UGM, and ``▁`` read as a space."""
    from hypertok.registry import AdaptedTokenizer

    tok = AdaptedTokenizer.load(merged)
    for line in OOV:
        ours = tok.encode(line)
        theirs = llama.tokenize(line.encode("utf-8"), add_bos=False, special=False)
        assert tok.decode(ours) == line and theirs != ours
        assert theirs.count(0) == 1  # one <unk> for the run of unknown characters
    line = f"знак {SPACE} блока"
    assert llama.tokenize(line.encode("utf-8"), add_bos=False, special=False) == tok.encode(line.replace(SPACE, " "))


def test_llama_cpp_logits_equal_transformers(llama, merged):
    import numpy as np
    from transformers import AutoModelForCausalLM

    from hypertok.registry import AdaptedTokenizer

    ids = AdaptedTokenizer.load(merged).encode(LINES[0] + " " + LINES[1], add_bos=True)
    model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32)
    with torch.no_grad():
        want = model(input_ids=torch.tensor([ids])).logits[0].numpy()
    llama.reset()
    llama.eval(ids)
    got = np.asarray(llama.scores[:len(ids)])[:, :want.shape[1]]
    diff = np.abs(got - want).max(axis=1)
    assert diff.max() < 1e-3, diff


def test_llama_cpp_runs_the_gemma_layout(env, tmp_path):
    """Gemma 3's layout (norms as 1 + w, tied head, sliding window) gives transformers' logits in llama.cpp."""
    llama_cpp = pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed")
    import numpy as np
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(env["sp"]))
    base = tmp_path / "gemma"
    model = _gemma_folder(base, sp.get_piece_size())
    shutil.copy(env["sp"], base / "tokenizer.model")
    export_gguf(base, tmp_path / "g.gguf", quant="f32")
    llm = llama_cpp.Llama(model_path=str(tmp_path / "g.gguf"), n_ctx=64, logits_all=True, verbose=False, n_threads=1)
    ids = [1] + sp.encode(LINES[0] + " " + LINES[4])[:30]  # past the sliding window of 16
    with torch.no_grad():
        want = model.eval()(input_ids=torch.tensor([ids])).logits[0].numpy()
    llm.eval(ids)
    got = np.asarray(llm.scores[:len(ids)])
    assert np.abs(got - want).max() < 1e-3


def test_readme_and_every_help_say_the_same_of_gguf():
    """One story of GGUF: llama.cpp's converter cannot read a merged folder, export-gguf writes it, with
    the quantisations it lists; import and export point at each other."""
    import argparse
    import re
    from pathlib import Path

    from hypertok.adapt.gguf_export import QUANTS
    from hypertok.cli import make_parser

    def help_of(name):
        sub = next(a for a in make_parser(name)._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
        return " ".join(sub.format_help().split())

    readme = " ".join((Path(__file__).resolve().parents[2] / "docs" / "adapting.md").read_text(encoding="utf-8").split())
    merge, export, imp = help_of("merge"), help_of("export-gguf"), help_of("import")
    assert "llama.cpp's own converter cannot read" in merge and "export-gguf" in merge
    assert "**llama.cpp** cannot convert a merged folder itself" in readme
    assert not re.search(r"llama\.cpp's converter reads?\b", merge + export + imp + readme)
    section = readme[readme.index("GGUF out: HyperTok models in llama.cpp"):readme.index("On N GPUs")]
    for q in QUANTS:
        assert q in export and f"`{q}`" in section, q
    for claim in ("no byte fallback", "<unk>", "U+2581"):
        assert claim in section and claim in export.replace("▁ (U+2581)", "U+2581"), claim
    assert "export-gguf" in imp and "hypertok import" in export
