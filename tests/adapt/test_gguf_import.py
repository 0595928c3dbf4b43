"""``hypertok import``: a tiny GGUF written here with the ``gguf`` package comes back as the model it was.

Each test writes a GGUF the way llama.cpp's converter does (Gemma's norms as ``1 + w``, Llama's
q/k rows permuted, tied embedding without ``output.weight``, the embedding quantised to Q8_0),
with a SentencePiece vocabulary trained here on Russian text, then checks the imported folder
three ways: its weights against the model written, its logits against transformers' own GGUF
loader (an independent reading of the same file), and its tokenizer's ids against the
SentencePiece model the vocabulary came from.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("gguf")
torch = pytest.importorskip("torch")
spm = pytest.importorskip("sentencepiece")

from hypertok.adapt.gguf_import import IMPORT_FILE, import_gguf, unpermute  # noqa: E402
from hypertok.errors import HyperTokError  # noqa: E402
from hypertok.registry import find_base  # noqa: E402

from .tiny import make_text  # noqa: E402

# real text with what trips tokenizers: punctuation, digits, Latin, emoji, several spaces, tabs
LINES = ["Давно минувших дней, преданья старины глубокой!", "В 1837 году — «Современник», т. 5, с. 12–14.",
         "Версия 2.0 поддерживает API и JSON-файлы.", "  два  пробела\tи табуляция ", "Ёлка 🌲 и ёж 🦔.",
         "print('привет')  # comment", "ЗАГЛАВНЫЕ буквы и цифры 0123456789"]


USER_DEFINED = ["▁▁", "▁▁▁", "\n\n"]  # Gemma's kind: runs of spaces and newlines as atomic pieces


@pytest.fixture(scope="module")
def sp_model(tmp_path_factory):
    """A Gemma-like SentencePiece BPE model: byte fallback, no dummy prefix, spaces kept, pad 0 eos 1 bos 2 unk 3,
    named as Gemma names them (<bos>, <eos>: SentencePiece finds its specials by name)."""
    d = tmp_path_factory.mktemp("spm")
    text = make_text(400, 0) + "\n".join(LINES * 3)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(text.split("\n")), model_prefix=str(d / "m"), vocab_size=700, model_type="bpe",
        byte_fallback=True, split_digits=True, add_dummy_prefix=False, remove_extra_whitespaces=False,
        normalization_rule_name="identity", allow_whitespace_only_pieces=True, pad_id=0, eos_id=1, bos_id=2,
        unk_id=3, bos_piece="<bos>", eos_piece="<eos>", character_coverage=1.0, hard_vocab_limit=False, user_defined_symbols=USER_DEFINED, minloglevel=2)
    return spm.SentencePieceProcessor(model_file=str(d / "m.model"))


def _vocab(sp):
    """Pieces, scores and types as llama.cpp's converter writes Gemma's: user-defined pieces with real spaces,
    <unk> typed as a control token."""
    types, pieces = [], []
    for i in range(sp.get_piece_size()):
        piece = sp.id_to_piece(i)
        types.append(3 if sp.is_unknown(i) else 3 if sp.is_control(i) else 6 if sp.is_byte(i) else
                     5 if sp.is_unused(i) else 4 if piece in USER_DEFINED else 1)
        pieces.append(piece.replace("▁", " ") if types[-1] == 4 else piece)
    return pieces, [sp.get_score(i) for i in range(len(types))], types


def _tiny_model(arch: str, vocab: int):
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    if arch == "gemma3":
        cfg = Gemma3TextConfig(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                               num_attention_heads=2, num_key_value_heads=1, head_dim=256, query_pre_attn_scalar=256,
                               sliding_window=16, max_position_embeddings=256, rms_norm_eps=1e-6,
                               pad_token_id=0, eos_token_id=1, bos_token_id=2, tie_word_embeddings=True)
        model = Gemma3ForCausalLM(cfg)
    else:
        cfg = LlamaConfig(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                          rms_norm_eps=1e-5, pad_token_id=0, eos_token_id=1, bos_token_id=2, tie_word_embeddings=False)
        model = LlamaForCausalLM(cfg)
    with torch.no_grad():  # norms away from their init of 0 / 1, so a missed shift shows
        for n, p in model.named_parameters():
            if "norm" in n:
                p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


def _permute(w, heads):  # llama.cpp's convert_hf_to_gguf.py LlamaModel.permute
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_gguf(path, model, sp, arch: str, quantise_embedding: bool = True):
    """The tiny model as llama.cpp's converter writes it."""
    import gguf
    import numpy as np

    cfg = model.config
    w = gguf.GGUFWriter(str(path), arch)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    if arch == "gemma3":
        w.add_key_length(cfg.head_dim)
        w.add_value_length(cfg.head_dim)
        w.add_sliding_window(cfg.sliding_window)
        w.add_rope_freq_base(1e6)
    else:
        w.add_rope_freq_base(10000.0)
        w.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    tokens, scores, types = _vocab(sp)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(2)
    w.add_eos_token_id(1)
    w.add_unk_token_id(3)
    w.add_pad_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_space_prefix(False)
    names = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"}
    layer = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
             "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm",
             "self_attn.k_norm": "attn_k_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down"}
    layer |= ({"post_attention_layernorm": "post_attention_norm", "pre_feedforward_layernorm": "ffn_norm",
               "post_feedforward_layernorm": "post_ffw_norm"} if arch == "gemma3" else
              {"post_attention_layernorm": "ffn_norm"})
    for n, p in model.state_dict().items():
        if n == "lm_head.weight" and cfg.tie_word_embeddings:
            continue
        x = p.detach().float().numpy().copy()
        stem = n[:-len(".weight")]
        if stem.startswith("model.layers."):
            i, rest = stem[len("model.layers."):].split(".", 1)
            name = f"blk.{i}.{layer[rest]}.weight"
        else:
            name = names[stem] + ".weight"
        if arch == "gemma3" and name.endswith("norm.weight"):
            x = x + 1.0
        if arch == "llama" and name.endswith(("attn_q.weight", "attn_k.weight")):
            x = _permute(x, cfg.num_attention_heads if "attn_q" in name else cfg.num_key_value_heads)
        if name == "token_embd.weight" and quantise_embedding:
            q = gguf.quants.quantize(x, gguf.GGMLQuantizationType.Q8_0)
            w.add_tensor(name, q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            w.add_tensor(name, np.ascontiguousarray(x, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@pytest.mark.parametrize("arch", ["gemma3", "llama"])
def test_import_gives_back_the_model_and_its_tokenizer(arch, sp_model, tmp_path):
    from transformers import AutoModelForCausalLM

    model = _tiny_model(arch, sp_model.get_piece_size())
    path = tmp_path / "tiny.gguf"
    write_gguf(path, model, sp_model, arch)
    out = tmp_path / "imported"
    record = import_gguf(path, out, dtype="float32")
    assert record["architecture"] == arch and record["tensor_types"]["Q8_0"] == 1
    assert json.loads((out / IMPORT_FILE).read_text())["source_sha256"] == record["source_sha256"]
    got = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    assert got.config.tie_word_embeddings == (arch == "gemma3")
    want_sd, got_sd = model.state_dict(), got.state_dict()
    for n, p in want_sd.items():
        # Q8_0 keeps 8 bits per weight with one scale per 32: the embedding comes back within 1% of its range;
        # Gemma's norms were stored as float32 1 + w, which rounds w to float32's step at 1 (6e-8)
        tol = 0.01 * float(p.abs().max()) if "embed_tokens" in n or (n == "lm_head.weight" and arch == "gemma3") \
            else 1.2e-7 if arch == "gemma3" and "norm" in n else 0.0
        assert torch.allclose(got_sd[n], p, atol=tol, rtol=0), n
    # the same file read by transformers' own GGUF loader (independent of this module's tables)
    ref = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file="tiny.gguf", dtype=torch.float32).eval()
    x = torch.tensor([[2] + sp_model.encode(LINES[0])[:40]])
    with torch.no_grad():
        a, b = got(x).logits, ref(x).logits
    assert torch.allclose(a, b, atol=1e-4), float((a - b).abs().max())
    # the tokenizer: the ids of the SentencePiece model the vocabulary came from, on every line
    rebuilt = spm.SentencePieceProcessor(model_file=str(out / "tokenizer.model"))
    text_lines = LINES + make_text(30, 7).split("\n")
    assert rebuilt.encode(text_lines) == sp_model.encode(text_lines)
    assert [rebuilt.id_to_piece(i) for i in rebuilt.encode("а   б")] == ["а", "▁▁▁", "б"]  # the user-defined run
    base = find_base(out)  # what hypertok adapt/eval read: the same ids, and lossless
    assert (base.bos_id, base.eos_id, base.unk_id, base.pad_id) == (2, 1, 3, 0)
    assert base.encode_batch(LINES) == sp_model.encode(LINES)
    assert all(base.decode(ids) == line for ids, line in zip(base.encode_batch(LINES), LINES))


def test_import_refuses_what_it_cannot_read(sp_model, tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf at all" * 10)
    with pytest.raises(HyperTokError, match="bad.gguf: not a readable GGUF file"):
        import_gguf(bad, tmp_path / "out")
    with pytest.raises(HyperTokError, match="no such file"):
        import_gguf(tmp_path / "missing.gguf", tmp_path / "out")
    model = _tiny_model("gemma3", sp_model.get_piece_size())
    write_gguf(tmp_path / "ok.gguf", model, sp_model, "gemma3", quantise_embedding=False)
    other = tmp_path / "theirs"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(HyperTokError, match="a folder with other files"):
        import_gguf(tmp_path / "ok.gguf", other)
    assert (other / "notes.txt").read_text() == "mine"
    out = tmp_path / "imported"
    import_gguf(tmp_path / "ok.gguf", out, dtype="float32", verify=False)
    with pytest.raises(HyperTokError, match="an earlier import; pass --force"):
        import_gguf(tmp_path / "ok.gguf", out)
    import_gguf(tmp_path / "ok.gguf", out, dtype="bfloat16", force=True, verify=False)
    assert json.loads((out / IMPORT_FILE).read_text())["dtype"] == "bfloat16"


def test_unpermute_inverts_llama_cpp_permute():
    import numpy as np

    w = np.random.default_rng(0).standard_normal((24, 5))
    for heads in (1, 2, 3, 6):
        assert np.array_equal(unpermute(_permute(w, heads), heads), w)
