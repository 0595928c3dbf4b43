"""A small random Mistral-architecture checkpoint with the Mistral v3 tokenizer, for checking the
`hypertok adapt` command end to end (gpu.sh clifast); its losses mean nothing.

    python experiments/adapt/tiny_base.py OUT_DIR mistral_v3.model
"""

import shutil
import sys

import torch
from transformers import MistralConfig, MistralForCausalLM


def main() -> int:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    out, sp = sys.argv[1], sys.argv[2]
    cfg = MistralConfig(vocab_size=32768, hidden_size=512, intermediate_size=1536, num_hidden_layers=4,
                        num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=4096,
                        tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(0)
    MistralForCausalLM(cfg).save_pretrained(out)
    shutil.copy(sp, f"{out}/tokenizer.model")
    return 0


if __name__ == "__main__":
    sys.exit(main())
