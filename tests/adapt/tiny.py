"""Tiny inputs for the adaptation tests: synthetic Russian text, a 2-layer random MistralConfig
saved with a SentencePiece tokenizer.model (byte fallback, like Mistral's), and configs."""

from __future__ import annotations

import dataclasses
import random

WORDS = ("он она было тогда дело давно минувших дней старый дом сад река лес поле город человек "
         "говорил сказал пришёл ушёл думал знал видел любил жизнь время глаза рука день ночь "
         "утро вечер солнце небо земля вода огонь ветер снег дождь мать отец сын дочь брат").split()


def make_text(n_docs: int, seed: int) -> str:
    r = random.Random(seed)
    docs = []
    for _ in range(n_docs):
        sents = []
        for _ in range(r.randint(2, 5)):
            s = " ".join(r.choice(WORDS) for _ in range(r.randint(4, 10)))
            sents.append(s[0].upper() + s[1:] + r.choice([".", "!", "?", ", – сказал он."]))
        docs.append(" ".join(sents))
    return "\n\n".join(docs) + "\n"


def make_base(d, sp_model, seed: int, vocab_size: int | None = None):
    import sentencepiece as spm
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    torch.manual_seed(seed)
    n = spm.SentencePieceProcessor(model_file=str(sp_model)).get_piece_size()
    cfg = MistralConfig(vocab_size=vocab_size or n, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                        sliding_window=None, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
    MistralForCausalLM(cfg).save_pretrained(d)
    (d / "tokenizer.model").write_bytes(sp_model.read_bytes())
    return d


def adapt_config(env, out, **kw):
    """An AdaptConfig for the tiny env; loop settings (TrainConfig fields) may be given flat."""
    from hypertok.adapt.train import AdaptConfig, TrainConfig

    d = dict(base=str(env["base"]), tokenizer=str(env["tok"]), train=[str(env["train"])], out=str(out),
             eval=str(env["dev"]), steps=6, batch_size=4, seq_len=64, lr=1e-2, rows_lr=3e-2, warmup=1,
             eval_every=3, eval_chars=3000, save_every=3, grad_ckpt=True, loss_chunk=50, device="cpu",
             dtype="float32", lora_r=4, lora_alpha=8, progress=False)
    d.update(kw)
    loop_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    loop = TrainConfig(**{k: v for k, v in d.items() if k in loop_fields})
    return AdaptConfig(**{k: v for k, v in d.items() if k not in loop_fields}, loop=loop)


def logits(model, ids):
    import torch

    model.eval()
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0].float()


def cli(argv: list[str]) -> int:
    """Run a command as ``hypertok`` would."""
    from hypertok.cli import main

    return main(argv)


# One line per script (and the awkward characters): the texts the exported tokenizer must agree on.
EVERY_SCRIPT = "\n".join([
    "Мне было тогда лет двадцать пять, – начал он. Ёлка, ёж, «кавычки».",
    "The quick brown fox jumps over the lazy dog; café naïve Æsir façade.",
    "Ελληνικά γράμματα και τόνοι", "العربية لغة جميلة", "עברית מימין לשמאל", "हिन्दी देवनागरी लिपि",
    "中文字符和标点。日本語のひらがなとカタカナ", "한국어 한글", "ภาษาไทย", "ქართული", "Հայերեն", "ᚠᛇᚻ runes",
    "emoji 🙂👍🏽🇷🇺 👨‍👩‍👧 and math ∑∫√∞ ≠ ≤ 𝔘𝔫𝔦",
    "  two  spaces\tand tab\r\nCRLF, NUL \x00 and ▁ and <0x41> and [INST] and <unk>",
    "combining é (e + U+0301), Z̤̈ zalgo, 12345 67.89 -0.5e3",
    "",
])
