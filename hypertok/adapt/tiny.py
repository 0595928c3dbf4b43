"""A tiny random base model for trying ``hypertok adapt`` on a CPU: ``python -m hypertok.adapt.tiny --out DIR``.

What it does (issue 11, the newcomer's path): writes a local checkpoint folder that
``hypertok adapt/eval/merge`` take as ``--base``: a randomly initialised 2-layer
``MistralForCausalLM`` (hidden size 64 by default, a few MB) with a real tokenizer, Mistral
v3's ``tokenizer.model`` from mistral-common (or any SentencePiece ``--tokenizer-model``),
and a ``tokenizer_config.json`` that adds ``<s>`` as Mistral's does. ``--tokenizer-json``
takes a byte-level BPE ``tokenizer.json`` instead (a Llama 3 or Mistral-Nemo checkpoint's,
with the ``tokenizer_config.json`` beside it), so the path can be tried on that kind of base
too. Then, in about a minute on two cores::

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


def tiny_model(vocab_size: int, bos_id: int, eos_id: int, hidden_size: int = 64, layers: int = 2, seed: int = 0,
               max_positions: int = 4096):
    """The randomly initialised ``MistralForCausalLM`` of a tiny base (weights from ``seed``): ``vocab_size``
    rows, ``hidden_size`` wide, ``layers`` deep, 4 heads over 2 key-value heads, untied head."""
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    torch.manual_seed(seed)
    cfg = MistralConfig(vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                        max_position_embeddings=max_positions, sliding_window=None, tie_word_embeddings=False,
                        bos_token_id=bos_id, eos_token_id=eos_id)
    return MistralForCausalLM(cfg)


def make_tiny_base(out: str | os.PathLike, tokenizer_model: str | os.PathLike | None = None, hidden_size: int = 64,
                   layers: int = 2, seed: int = 0, tokenizer_json: str | os.PathLike | None = None) -> Path:
    """Write the tiny base into ``out`` (a new or empty folder) and return its path.

    Its tokenizer: the SentencePiece ``tokenizer_model`` (default Mistral v3's), or the byte-level
    BPE ``tokenizer_json`` with the ``tokenizer_config.json`` beside it.
    """
    from ..registry import LosslessByteLevel, mistral_file

    out = check_out(out)
    if out.exists() and not is_empty_dir(out):
        raise HyperTokError(f"{out} exists and is not empty; choose a new --out")
    if hidden_size < 8 or hidden_size % 4 or layers < 1:
        raise HyperTokError("--hidden-size must be a multiple of 4 (at least 8) and --layers at least 1")
    if tokenizer_model and tokenizer_json:
        raise HyperTokError("give --tokenizer-model or --tokenizer-json, not both")
    if tokenizer_json:
        src = Path(tokenizer_json)
        base = LosslessByteLevel.from_file(src)
        rows, bos, eos = len(base), base.bos_id, base.eos_id
        files = {"tokenizer.json": src}
        if (src.parent / "tokenizer_config.json").is_file():
            files["tokenizer_config.json"] = src.parent / "tokenizer_config.json"
        tokenizer_config = None
    else:
        import sentencepiece as spm

        sp_path = Path(tokenizer_model) if tokenizer_model else mistral_file("mistral-v3")
        try:
            sp = spm.SentencePieceProcessor(model_file=str(sp_path))
        except (OSError, RuntimeError) as e:
            raise HyperTokError(f"{sp_path}: not a SentencePiece model ({e})") from None
        rows, bos, eos = sp.get_piece_size(), sp.bos_id(), sp.eos_id()
        files = {"tokenizer.model": sp_path}
        tokenizer_config = {"add_bos_token": True, "add_eos_token": False, "bos_token": sp.id_to_piece(bos),
                            "eos_token": sp.id_to_piece(eos), "unk_token": sp.id_to_piece(sp.unk_id()),
                            "model_max_length": 4096}
    model = tiny_model(rows, bos, eos, hidden_size, layers, seed)
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        for name, src in files.items():
            shutil.copyfile(src, tmp / name)
        if tokenizer_config is not None:
            (tmp / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hypertok.adapt.tiny", description=__doc__.split("\n\n")[1],
                                formatter_class=HelpFormatter)
    p.add_argument("--out", required=True, help="new or empty folder to write the base into")
    p.add_argument("--tokenizer-model", default=None,
                   help="SentencePiece tokenizer.model (default: Mistral v3's, from mistral-common)")
    p.add_argument("--tokenizer-json", default=None,
                   help="a byte-level BPE tokenizer.json instead (Llama 3, Mistral-Nemo); the tokenizer_config.json "
                        "beside it names its bos and eos")
    p.add_argument("--hidden-size", type=int, default=64, help="model width")
    p.add_argument("--layers", type=int, default=2, help="transformer layers")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    args = p.parse_args(argv)
    try:
        out = make_tiny_base(args.out, args.tokenizer_model, args.hidden_size, args.layers, args.seed,
                             args.tokenizer_json)
        print(f"wrote {out}")
    except HyperTokError as e:
        raise SystemExit(f"error: {e}") from None
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
