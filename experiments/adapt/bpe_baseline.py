"""Train the BPE-extended baseline's vocabulary: HF ``tokenizers`` BPE on train.txt.

Same conventions as the Mistral SentencePiece pieces, so the base can spell every piece:
``▁`` for a space (Metaspace, no prefix added, split before each space), byte fallback
``<0x00>``..``<0xFF>``, specials ``<unk> <s> </s> <pad>`` at ids 0-3. Lossless on text
without ``▁`` (the corpus has none).

    python experiments/adapt/bpe_baseline.py --train ../shared/corpora/ruslit/train.txt \
        --vocab-size 32000 --out .data/adapt/bpe32k
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def train_bpe(train: str, vocab_size: int, out: str) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    specials = ["<unk>", "<s>", "</s>", "<pad>"] + [f"<0x{b:02X}>" for b in range(256)]
    tk = Tokenizer(models.BPE(unk_token=None, byte_fallback=True))
    tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="never", split=True)
    tk.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()])
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, limit_alphabet=400,
                                  show_progress=False)
    tk.train([train], trainer)
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / "tokenizer.json.tmp"
    tk.save(str(tmp))
    os.replace(tmp, d / "tokenizer.json")
    return d


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", required=True)
    ap.add_argument("--vocab-size", type=int, default=32000)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    print(train_bpe(a.train, a.vocab_size, a.out))
