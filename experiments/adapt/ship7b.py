"""Issue 11 at the 7B shape: adapt -> merge -> plain transformers, as a user would, on one GPU machine.

A Mistral-7B-v0.3-shaped model with random bf16 weights is built on the GPU and saved as a
local checkpoint folder (``save_pretrained`` + the Mistral v3 ``tokenizer.model`` + a
``tokenizer_config.json`` with a chat template, as a real checkpoint has). Then, through the
command line only:

1. ``hypertok adapt`` (a few steps: the point is the folder, not the quality) on a HyperTok
   vocabulary, ``extend`` by default: the adapter folder's size, with and without ``resume/``
   (the optimizer state, which can be deleted);
2. ``hypertok merge``: the shards (each at most 5 GB), the index, ``config.vocab_size`` = rows;
3. plain ``AutoTokenizer`` / ``AutoModelForCausalLM`` at the merged folder's root: the ids
   equal the trainer's tokenizer on a text of every script, ``len(tokenizer)`` <= rows, a
   bos id, and ``pipeline("text-generation")`` generates;
4. ``hypertok eval --base MERGED``.

Random weights say nothing about quality; every check here is about the folder. The same
script takes a real local checkpoint with ``--base DIR`` (then nothing is built).

    python experiments/adapt/ship7b.py --sp mistral_v3.model --tokenizer tok64k --text modern-dev.txt \\
        --work /tmp/ship7b --out ship7b.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from hypertok.files import atomic_write  # noqa: E402

TEXTS = {  # one line per script HyperTok must carry through the merged folder unchanged
    "cyrillic": "Москва — столица России; в том числе её пригороды.",
    "latin": "The quick brown fox jumps over the lazy dog.",
    "digits": "3.14159 2026-11-23 1 000 000 ₽",
    "greek": "Καλημέρα κόσμε",
    "cjk": "你好，世界。日本語のテキスト。",
    "arabic": "مرحبا بالعالم",
    "emoji": "🙂👍🏽 🇷🇺",
    "code": "def f(x):\n\treturn x ** 2  # комментарий",
}
CHAT = "{{ bos_token }}{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}"


def folder_bytes(d: Path, skip: str | None = None) -> int:
    return sum(f.stat().st_size for f in d.rglob("*") if f.is_file() and not (skip and skip in f.parts))


def hypertok(*args: str) -> float:
    """Run a ``hypertok`` command in a fresh interpreter; returns its wall time (s)."""
    t0 = time.time()
    cmd = [sys.executable, "-m", "hypertok.cli", *args]
    print("$ hypertok " + " ".join(args), flush=True)
    subprocess.run(cmd, check=True)
    return time.time() - t0


def build_base(path: Path, sp: str) -> None:
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    cfg = MistralConfig(vocab_size=32768, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                        num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=32768,
                        rope_theta=1e6, sliding_window=None, tie_word_embeddings=False,
                        bos_token_id=1, eos_token_id=2)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = MistralForCausalLM(cfg).to(torch.bfloat16)
    model.config.torch_dtype = torch.bfloat16
    model.save_pretrained(path)
    (path / "tokenizer.model").write_bytes(Path(sp).read_bytes())
    (path / "tokenizer_config.json").write_text(json.dumps(
        {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
         "unk_token": "<unk>", "chat_template": CHAT, "model_max_length": 32768}))
    del model
    torch.cuda.empty_cache()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sp", required=True, help="the base SentencePiece model (Mistral v3)")
    ap.add_argument("--tokenizer", required=True, help="HyperTok directory")
    ap.add_argument("--text", required=True, help="text to adapt on and to evaluate (a few MB is plenty)")
    ap.add_argument("--base", help="a real local checkpoint instead of random weights")
    ap.add_argument("--strategy", default="extend", choices=["extend", "replace"])
    ap.add_argument("--steps", type=int, default=4, help="adaptation steps (default: 4)")
    ap.add_argument("--lora-r", type=int, default=64, help="LoRA rank, as the recipe (default: 64)")
    ap.add_argument("--work", required=True, help="scratch folder (needs about 35 GB)")
    ap.add_argument("--out", required=True, help="JSON file with every figure")
    args = ap.parse_args()

    import torch

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    base = Path(args.base) if args.base else work / "base"
    res: dict = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "strategy": args.strategy,
                 "random_weights": not args.base, "tokenizer": args.tokenizer, "steps": args.steps}
    t0 = time.time()
    if not args.base:
        build_base(base, args.sp)
    res["base_seconds"] = time.time() - t0
    adapter, merged = work / "adapter", work / "merged"
    res["adapt_seconds"] = hypertok(
        "adapt", "--base", str(base), "--tokenizer", args.tokenizer, "--strategy", args.strategy,
        "--train", args.text, "--max-train-chars", "2000000", "--out", str(adapter), "--steps", str(args.steps),
        "--batch-size", "4", "--seq-len", "1024", "--lora-r", str(args.lora_r), "--lora-alpha", str(args.lora_r),
        "--dtype", "bfloat16", "--eval-every", "0", "--save-every", str(args.steps), "--no-progress")
    res["adapter_bytes"] = folder_bytes(adapter, skip="resume")
    res["adapter_bytes_with_resume_state"] = folder_bytes(adapter)
    res["adapter_files"] = {str(f.relative_to(adapter)): f.stat().st_size
                            for f in sorted(adapter.rglob("*")) if f.is_file() and "data" not in f.parts}
    res["merge_seconds"] = hypertok("merge", "--base", str(base), "--adapter", str(adapter), "--out", str(merged))
    shards = sorted(merged.glob("*.safetensors"))
    res["shards"] = {f.name: f.stat().st_size for f in shards}
    res["max_shard_bytes"] = max(res["shards"].values())
    res["has_index"] = (merged / "model.safetensors.index.json").is_file()
    res["merged_files"] = sorted(f.name for f in merged.iterdir())
    cfg = json.loads((merged / "config.json").read_text())

    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

    from hypertok.registry.adapted import AdaptedTokenizer

    t0 = time.time()
    ht = AutoTokenizer.from_pretrained(merged)
    model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.bfloat16, device_map="cuda")
    res["plain_load_seconds"] = time.time() - t0
    rows = model.get_input_embeddings().weight.shape[0]
    trainer_tok = AdaptedTokenizer.load(adapter)
    same = {k: ht(t)["input_ids"] == trainer_tok.encode(t, add_bos=True) for k, t in TEXTS.items()}
    res.update(rows=rows, config_vocab_size=cfg["vocab_size"], len_tokenizer=len(ht), bos_token_id=ht.bos_token_id,
               eos_token_id=ht.eos_token_id, pad_token_id=ht.pad_token_id, same_ids_as_trainer=same,
               round_trip={k: ht.decode(ht(t, add_special_tokens=False)["input_ids"]) == t for k, t in TEXTS.items()},
               chat_template=bool(ht.chat_template))
    gen = pipeline("text-generation", model=model, tokenizer=ht)
    t0 = time.time()
    out = gen("Москва — столица", max_new_tokens=32, do_sample=False)[0]["generated_text"]
    res["pipeline_seconds"] = time.time() - t0
    res["pipeline_generated_chars"] = len(out)
    del gen, model
    torch.cuda.empty_cache()
    res["eval_seconds"] = hypertok("eval", "--base", str(merged), "--text", args.text, "--max-chars", "50000",
                                   "--gen-tokens", "32", "--prompts", "1", "--repeats", "1", "--dtype", "bfloat16")
    checks = {"shards_at_most_5GB": res["max_shard_bytes"] <= 5 * 10**9, "index": res["has_index"] or len(shards) == 1,
              "vocab_size_is_rows": cfg["vocab_size"] == rows, "len_tokenizer_le_rows": len(ht) <= rows,
              "bos": ht.bos_token_id is not None, "same_ids": all(same.values()),
              "round_trip": all(res["round_trip"].values()), "adapter_under_1_5GB": res["adapter_bytes"] < 1.5e9}
    res["checks"] = checks
    atomic_write(args.out, json.dumps(res, indent=1, ensure_ascii=False))
    print(json.dumps({k: res[k] for k in ("adapter_bytes", "max_shard_bytes", "rows", "len_tokenizer", "checks")}))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
