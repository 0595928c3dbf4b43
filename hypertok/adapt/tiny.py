"""A tiny random base model for trying ``hypertok adapt`` on a CPU: ``python -m hypertok.adapt.tiny --out DIR``.

What it does (issue 11, the newcomer's path): writes a local checkpoint folder that
``hypertok adapt/eval/merge`` take as ``--base``: a randomly initialised 2-layer
``MistralForCausalLM`` (hidden size 64 by default, a few MB) with a real tokenizer, Mistral
v3's ``tokenizer.model`` from mistral-common (or any SentencePiece ``--tokenizer-model``),
and a ``tokenizer_config.json`` that adds ``<s>`` as Mistral's does. Then, in about a minute
on two cores::

    python -m hypertok.adapt.tiny --out tiny-base
    hypertok adapt --base tiny-base --tokenizer tok32k --train train.txt --out tiny-adapter \\
        --steps 20 --batch-size 2 --seq-len 128 --device cpu
    hypertok merge --base tiny-base --adapter tiny-adapter --out tiny-merged

What it does not do: the model is untrained (its text is noise); it only shows the path.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

from ..errors import HyperTokError
from ..files import atomic_dir, check_out, is_empty_dir
from ..options import HelpFormatter


def make_tiny_base(out: str | os.PathLike, tokenizer_model: str | os.PathLike | None = None, hidden_size: int = 64,
                   layers: int = 2, seed: int = 0) -> Path:
    """Write the tiny base into ``out`` (a new or empty folder) and return its path."""
    import sentencepiece as spm
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    from ..registry import mistral_file

    out = check_out(out)
    if out.exists() and not is_empty_dir(out):
        raise HyperTokError(f"{out} exists and is not empty; choose a new --out")
    if hidden_size < 8 or hidden_size % 4 or layers < 1:
        raise HyperTokError("--hidden-size must be a multiple of 4 (at least 8) and --layers at least 1")
    sp_path = Path(tokenizer_model) if tokenizer_model else mistral_file("mistral-v3")
    try:
        sp = spm.SentencePieceProcessor(model_file=str(sp_path))
    except (OSError, RuntimeError) as e:
        raise HyperTokError(f"{sp_path}: not a SentencePiece model ({e})") from None
    torch.manual_seed(seed)
    cfg = MistralConfig(vocab_size=sp.get_piece_size(), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                        max_position_embeddings=4096, sliding_window=None, tie_word_embeddings=False,
                        bos_token_id=sp.bos_id(), eos_token_id=sp.eos_id())
    with atomic_dir(out) as tmp:
        MistralForCausalLM(cfg).save_pretrained(tmp)
        shutil.copyfile(sp_path, tmp / "tokenizer.model")
        (tmp / "tokenizer_config.json").write_text(json.dumps(
            {"add_bos_token": True, "add_eos_token": False, "bos_token": sp.id_to_piece(sp.bos_id()),
             "eos_token": sp.id_to_piece(sp.eos_id()), "unk_token": sp.id_to_piece(sp.unk_id()),
             "model_max_length": 4096}, indent=2))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hypertok.adapt.tiny", description=__doc__.split("\n\n")[1],
                                formatter_class=HelpFormatter)
    p.add_argument("--out", required=True, help="new or empty folder to write the base into")
    p.add_argument("--tokenizer-model", default=None,
                   help="SentencePiece tokenizer.model (default: Mistral v3's, from mistral-common)")
    p.add_argument("--hidden-size", type=int, default=64, help="model width")
    p.add_argument("--layers", type=int, default=2, help="transformer layers")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    args = p.parse_args(argv)
    try:
        print(f"wrote {make_tiny_base(args.out, args.tokenizer_model, args.hidden_size, args.layers, args.seed)}")
    except HyperTokError as e:
        raise SystemExit(f"error: {e}") from None
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
