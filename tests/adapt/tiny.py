"""Tiny inputs for the adaptation tests: synthetic Russian text, a 2-layer random MistralConfig
saved with a tokenizer of one of three kinds, and configs.

The base kinds (:data:`BASE_KINDS`) are the tokenizers real checkpoints ship:

- ``sentencepiece``: a SentencePiece ``tokenizer.model`` with byte fallback (Mistral v3's own, or
  one trained here);
- ``tekken``: Mistral-Nemo's kind, a byte-level BPE ``tokenizer.json`` cut from Mistral's real
  Tekken file (its first ranks and its 1000 control slots ``<unk> <s> </s> [INST] ...``),
  converted as transformers converts Tekken;
- ``llama3``: Llama 3's kind, a byte-level BPE ``tokenizer.json`` trained here with Llama 3's
  split regex and its controls after the vocabulary (``<|begin_of_text|>`` bos,
  ``<|end_of_text|>`` eos, no unk, no pad).
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

BASE_KINDS = ("sentencepiece", "tekken", "llama3")
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_CONTROLS = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
                   "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>",
                   "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"]

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


def make_base(d, sp_model, seed: int, vocab_size: int | None = None, bos_id: int = 1, eos_id: int = 2):
    """The tiny random model in folder ``d``, with ``sp_model`` as its ``tokenizer.model`` (``None``: the
    tokenizer files are already in ``d``, and ``vocab_size`` must be given)."""
    from hypertok.adapt.tiny import tiny_model

    if sp_model is not None:
        import sentencepiece as spm

        vocab_size = vocab_size or spm.SentencePieceProcessor(model_file=str(sp_model)).get_piece_size()
    tiny_model(vocab_size, bos_id, eos_id, hidden_size=32, seed=seed, max_positions=256).save_pretrained(d)
    if sp_model is not None:
        (d / "tokenizer.model").write_bytes(sp_model.read_bytes())
    return d


def tekken_style_tokenizer(tekken_file, n_ranks: int = 2000):
    """A tiny Mistral-Nemo-style ``tokenizers.Tokenizer``: Mistral's real Tekken file cut to its first ``n_ranks``
    BPE ranks after its 1000 control slots (:func:`hypertok.registry.mistral.tekken_tokenizer_json`)."""
    from hypertok.registry.mistral import tekken_tokenizer_json

    return tekken_tokenizer_json(tekken_file, n_ranks)


def llama3_style_tokenizer(texts: list[str], vocab_size: int = 1200):
    """A tiny Llama-3-style ``tokenizers.Tokenizer``: byte-level BPE trained on ``texts`` with Llama 3's split
    regex, all 256 bytes, ``ignore_merges``, its control tokens after the vocabulary, and a post-processor
    that puts ``<|begin_of_text|>`` first (Llama 3's tokenizer_config.json has no ``add_bos_token``)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tk = Tokenizer(models.BPE(ignore_merges=True))
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    tk.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    tk.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tk.add_special_tokens([AddedToken(c, special=True) for c in LLAMA3_CONTROLS])
    bos = LLAMA3_CONTROLS[0]
    tk.post_processor = processors.Sequence([
        processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True),
        processors.TemplateProcessing(single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 {bos}:1 $B:1",
                                      special_tokens=[(bos, tk.token_to_id(bos))])])
    return tk


def write_base_tokenizer(kind: str, d: Path, sp_model=None, tekken_file=None, texts: list[str] = ()) -> dict:
    """Write the tokenizer files of a base of ``kind`` into folder ``d``; its rows, bos and eos ids.

    ``sentencepiece``: ``sp_model`` as ``tokenizer.model``; ``tekken``: cut from ``tekken_file``;
    ``llama3``: trained on ``texts``. Each gets the ``tokenizer_config.json`` its kind ships.
    """
    d.mkdir(parents=True, exist_ok=True)
    if kind == "sentencepiece":
        import sentencepiece as spm

        sp = spm.SentencePieceProcessor(model_file=str(sp_model))
        (d / "tokenizer.model").write_bytes(Path(sp_model).read_bytes())
        cfg = {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
               "unk_token": "<unk>"}
        return {"rows": sp.get_piece_size(), "bos": sp.bos_id(), "eos": sp.eos_id(), "config": cfg}
    if kind == "tekken":  # Mistral-Nemo's tokenizer_config.json
        tk = tekken_style_tokenizer(tekken_file)
        cfg = {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
               "unk_token": "<unk>", "tokenizer_class": "PreTrainedTokenizerFast", "clean_up_tokenization_spaces": False}
    elif kind == "llama3":  # Llama 3's: no add_bos_token, no unk, no pad
        tk = llama3_style_tokenizer(list(texts))
        cfg = {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>", "tokenizer_class": "PreTrainedTokenizerFast",
               "clean_up_tokenization_spaces": True}
    else:
        raise ValueError(f"unknown base kind {kind!r}; choose one of {', '.join(BASE_KINDS)}")
    tk.save(str(d / "tokenizer.json"))
    return {"rows": tk.get_vocab_size(with_added_tokens=True), "bos": tk.token_to_id(cfg["bos_token"]),
            "eos": tk.token_to_id(cfg["eos_token"]), "config": cfg}


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
