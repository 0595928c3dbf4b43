"""Issue 5 experiment: pretrain a small Mistral, move it to HyperTok, compare with BPE-extended.

1. Pretrain a Mistral-architecture base (preset ``small``: 8 layers, d=512, GQA 8/4 heads,
   ~59M parameters) with the Mistral v3 SentencePiece tokenizer on train.txt; or pass
   ``--base PATH`` (e.g. a local Mistral-7B-v0.3 folder with tokenizer.model) to skip this.
2. Adapt it with ``hypertok.adapt.train`` (the code behind ``hypertok adapt``): HyperTok
   ``extend``/``replace`` x ``mean``/``random`` init, and a BPE vocabulary of the same size
   trained on train.txt, added with ``extend`` + ``mean`` (as ruadapt does). Every variant
   gets the same number of steps x batch x seq_len tokens.
3. Measure with ``hypertok.adapt.evaluate``: bits per character on dev.txt, generation chars/s,
   new-token share; write ``results.json`` and ``curves.png`` to ``--results``.

Run (GPU, one call):
    python experiments/adapt/run.py --train train.txt --dev dev.txt --hypertok tok32k \
        --bpe bpe32k --sp mistral_v3.model --work /tmp/w --results experiments/adapt
On a real Mistral-7B (one 80 GB GPU), LoRA r=16, bf16 weights, gradient checkpointing:
    python experiments/adapt/run.py --base ~/models/Mistral-7B-v0.3 --preset 7b ...
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

PRESETS = {
    # pretraining model + adaptation settings
    "tiny": dict(hidden=64, layers=2, heads=4, kv=2, inter=128, seq=128, pre_batch=4, pre_steps=20, pre_lr=3e-3,
                 batch=4, steps=6, lora_r=8, grad_ckpt=False, dtype="float32", eval_every=3, gen_tokens=16,
                 prompts=1, repeats=1, adapt_chars=300_000, dev_chars=30_000, eval_chars=10_000),
    "small": dict(hidden=512, layers=8, heads=8, kv=4, inter=1536, seq=1024, pre_batch=32, pre_steps=1600,
                  pre_lr=1.5e-3, batch=16, steps=300, lora_r=32, grad_ckpt=False, dtype="float32", eval_every=50,
                  gen_tokens=128, prompts=3, repeats=3, adapt_chars=16_000_000, dev_chars=0, eval_chars=200_000),
    "7b": dict(seq=2048, batch=8, steps=1000, lora_r=16, grad_ckpt=True, dtype="bfloat16", eval_every=200,
               gen_tokens=256, prompts=4, repeats=3, adapt_chars=0, dev_chars=0, eval_chars=200_000),
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def pretrain(args, P, work: Path) -> tuple[Path, dict]:
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    from hypertok.adapt.data import encode_docs, pack, read_documents
    from hypertok.adapt.train import TrainConfig, train_loop
    from hypertok.registry import BaseTokenizer, LosslessSentencePiece

    base_dir = work / "base"
    bv = LosslessSentencePiece(args.sp)
    tok = BaseTokenizer(bv)
    t0 = time.time()
    docs = read_documents([args.train])
    stream = pack(encode_docs(tok, docs), tok.bos, tok.eos)
    log(f"pretrain stream: {len(stream)} tokens from {sum(map(len, docs))} chars ({time.time() - t0:.1f}s)")
    torch.manual_seed(args.seed)
    cfg = MistralConfig(vocab_size=len(bv), hidden_size=P["hidden"], intermediate_size=P["inter"],
                        num_hidden_layers=P["layers"], num_attention_heads=P["heads"], num_key_value_heads=P["kv"],
                        max_position_embeddings=4096, sliding_window=None, tie_word_embeddings=False,
                        bos_token_id=bv.bos_id, eos_token_id=bv.eos_id, rope_theta=10000.0)
    model = MistralForCausalLM(cfg).to(args.device_t)
    model.config._attn_implementation = "sdpa"
    n_params = sum(p.numel() for p in model.parameters())
    steps = args.pretrain_steps or P["pre_steps"]
    loop = TrainConfig(steps=steps, batch_size=P["pre_batch"], seq_len=P["seq"], lr=P["pre_lr"],
                      warmup=max(1, steps // 20), min_lr_ratio=0.1, weight_decay=0.1, seed=args.seed,
                      progress=not args.no_progress, desc="pretrain")
    t0 = time.time()
    hist = train_loop(model, stream, tok.bos, loop)
    if args.device_t.type == "cuda":
        torch.cuda.synchronize()
    dt = time.time() - t0
    tps = steps * loop.batch_size * loop.seq_len / dt
    log(f"pretrained {n_params / 1e6:.1f}M params, {steps} steps in {dt:.0f}s ({tps / 1e3:.0f}k tokens/s), "
        f"loss {hist[-1]['loss']:.3f}")
    base_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(base_dir)
    shutil.copy2(args.sp, base_dir / "tokenizer.model")
    info = {"params": n_params, "steps": steps, "batch": loop.batch_size, "seq_len": loop.seq_len,
            "tokens": steps * loop.batch_size * loop.seq_len, "seconds": dt, "tokens_per_s": tps,
            "epochs": steps * loop.batch_size * loop.seq_len / len(stream),
            "curve": [(h["step"], h["loss"]) for h in hist[:: max(1, steps // 200)]]}
    del model
    return base_dir, info


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", help="existing local checkpoint folder (skips pretraining)")
    ap.add_argument("--sp", help="SentencePiece model for the pretrained base (Mistral v3)")
    ap.add_argument("--train", required=True)
    ap.add_argument("--dev", required=True)
    ap.add_argument("--hypertok", required=True, help="HyperTok tokenizer directory")
    ap.add_argument("--bpe", help="tokenizer.json folder of the BPE baseline (experiments/adapt/bpe_baseline.py)")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="small")
    ap.add_argument("--pretrain-steps", type=int, default=0)
    ap.add_argument("--adapt-steps", type=int, default=0)
    ap.add_argument("--variants", default="ht-extend-mean,bpe-extend-mean,ht-replace-mean,ht-extend-random,ht-replace-random")
    ap.add_argument("--work", required=True)
    ap.add_argument("--results", required=True)
    ap.add_argument("--keep-adapter", default="ht-extend-mean", help="variant whose adapter is copied to --results")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--replot", help="only redraw curves.png and the table from this results.json")
    ap.add_argument("--no-progress", action="store_true")
    if "--replot" in sys.argv:
        i = sys.argv.index("--replot")
        res = json.loads(Path(sys.argv[i + 1]).read_text())
        plot(res, Path(sys.argv[i + 1]).with_name("curves.png"))
        table(res)
        return 0
    args = ap.parse_args()

    import torch

    from hypertok.adapt.data import prepare, read_documents
    from hypertok.adapt.evaluate import bits_per_char, generation_speed
    from hypertok.adapt.model import load_base_model
    from hypertok.adapt.recipe import plan
    from hypertok.adapt.train import AdaptConfig, TrainConfig, adapt
    from hypertok.registry import BaseTokenizer, LosslessSentencePiece

    P = PRESETS[args.preset]
    args.device_t = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    work, res_dir = Path(args.work), Path(args.results)
    work.mkdir(parents=True, exist_ok=True)
    res_dir.mkdir(parents=True, exist_ok=True)
    T0 = time.time()
    out = {"preset": args.preset, "settings": P, "device": torch.cuda.get_device_name(0) if torch.cuda.is_available()
           else platform.processor() or "cpu", "torch": torch.__version__, "variants": {}}
    import transformers
    out["transformers"] = transformers.__version__

    if args.base:
        base_dir = Path(args.base)
        out["base"] = {"path": str(base_dir)}
    else:
        if not args.sp:
            ap.error("--sp is needed to pretrain a base (or pass --base)")
        base_dir, out["pretrain"] = pretrain(args, P, work)
        out["base"] = {"path": "pretrained (see pretrain)"}

    dev_docs = read_documents([args.dev], P["dev_chars"], what="--dev")
    prompts = [d[:200] for d in dev_docs if len(d) >= 200][: P["prompts"]]
    gen = dict(new_tokens=P["gen_tokens"], repeats=P["repeats"])

    def measure(model, tok, name):
        t0 = time.time()
        r = bits_per_char(model, tok, dev_docs, seq_len=P["seq"])
        r.update(generation_speed(model, tok, prompts, **gen))
        log(f"{name}: bpc {r['bpc']:.4f}  chars/tok(dev) {r['chars_per_token']:.2f}  gen {r['chars_per_s']:.0f} chars/s "
            f"({r['tokens_per_s']:.0f} tok/s)  new-token share {r['new_token_share']:.2f}  ({time.time() - t0:.0f}s)")
        return r

    dtype = P["dtype"]
    model = load_base_model(base_dir, dtype)
    btok = BaseTokenizer(LosslessSentencePiece.find(base_dir))
    out["base"].update(measure(model, btok, "base"))
    out["base"]["model_vocab_size"] = len(btok)
    del model
    torch.cuda.empty_cache() if torch.cuda.is_available() else None

    steps = args.adapt_steps or P["steps"]
    prepared: dict = {}  # (tokenizer, strategy) -> packed train/eval data, encoded once

    def data_for(tokdir: str, strategy: str) -> tuple[str, str]:
        if (tokdir, strategy) not in prepared:
            tok = plan(base_dir, tokdir, strategy)
            d = work / "data" / f"{Path(tokdir).name}-{strategy}"
            prepare(tok, [args.train], d / "train", P["adapt_chars"])
            prepare(tok, [args.dev], d / "eval", P["eval_chars"], what="--dev")
            prepared[tokdir, strategy] = (str(d / "train.bin"), str(d / "eval.bin"))
        return prepared[tokdir, strategy]

    def save_json():
        b = out["base"]
        for r in out["variants"].values():
            r["bpc_vs_base"] = r["bpc"] / b["bpc"] - 1
            r["speedup_chars_per_s"] = r["chars_per_s"] / b["chars_per_s"]
        out["total_seconds"] = time.time() - T0
        tmp = res_dir / "results.json.tmp"
        tmp.write_text(json.dumps(out, indent=1, ensure_ascii=False))
        os.replace(tmp, res_dir / "results.json")

    for name in [v for v in args.variants.split(",") if v]:
        family, strategy, init = name.split("-")
        tokdir = args.hypertok if family == "ht" else args.bpe
        if tokdir is None:
            log(f"skip {name}: no tokenizer")
            continue
        train_bin, eval_bin = data_for(tokdir, strategy)
        loop = TrainConfig(steps=steps, batch_size=P["batch"], seq_len=P["seq"],
                           lr=1e-3 if args.preset != "7b" else 2e-4, rows_lr=3e-3 if args.preset != "7b" else 1e-3,
                           warmup=max(1, steps // 10), eval_every=P["eval_every"], save_every=steps, seed=args.seed,
                           progress=not args.no_progress)
        cfg = AdaptConfig(base=str(base_dir), tokenizer=tokdir, train=[train_bin], out=str(work / "adapters" / name),
                          eval=eval_bin, strategy=strategy, init=init, lora_r=P["lora_r"], lora_alpha=2 * P["lora_r"],
                          eval_chars=0, grad_ckpt=P["grad_ckpt"], dtype=dtype, loop=loop)
        t0 = time.time()
        res = adapt(cfg)
        train_s = time.time() - t0
        model, tok = res["model"], res["tokenizer"]
        hist = res["history"]
        model = model.merge_and_unload()
        r = measure(model, tok, name)
        r.update({"strategy": strategy, "init": init, "tokenizer": family, "model_vocab_size": len(tok),
                  "new_rows": len(tok.recipe.new_rows), "adapt_seconds": train_s,
                  "adapt_tokens": steps * loop.batch_size * loop.seq_len,
                  "train_loss": [(h["step"], h["loss"]) for h in hist],
                  "eval_bpc_curve": [(h["step"], h["eval_bpc"]) for h in hist if "eval_bpc" in h]})
        out["variants"][name] = r
        save_json()
        del model, res
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        log(f"elapsed {time.time() - T0:.0f}s")

    save_json()
    keep = work / "adapters" / args.keep_adapter
    if keep.is_dir():
        small = [f for f in keep.rglob("*") if f.is_file() and f.name != "checkpoint.pt"]
        log("adapter files: " + ", ".join(f"{f.name} {f.stat().st_size / 2**20:.1f}MiB" for f in small))
    plot(out, res_dir / "curves.png")
    table(out)
    return 0


def plot(out: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3 if "pretrain" in out else 2, figsize=(16, 4.5))
    b = out["base"]["bpc"]
    for name, r in out["variants"].items():
        cpt = r["chars_per_token"]
        xs = [s for s, _ in r["train_loss"]]
        ys = [l / math.log(2) / cpt for _, l in r["train_loss"]]
        k = max(1, len(ys) // 30)
        sm = [sum(ys[max(0, i - k):i + 1]) / len(ys[max(0, i - k):i + 1]) for i in range(len(ys))]
        ax[0].plot(xs, sm, label=name)
        ax[1].plot(*zip(*r["eval_bpc_curve"]), marker="o", label=name)
    for a in ax[:2]:
        a.axhline(b, color="k", ls="--", label="base (Mistral v3 tokenizer)")
        a.axhline(b * 1.03, color="gray", ls=":", label="base + 3%")
        a.set_xlabel("adaptation step")
        a.legend(fontsize=7)
    ax[0].set_ylabel("train loss / ln2 / dev chars-per-token (approx. bits/char)", fontsize=8)
    ax[1].set_ylabel("dev bits/char (first 200k chars)")
    ax[0].set_title("adaptation: training loss")
    ax[1].set_title("adaptation: held-out bits per character")
    ax[0].set_ylim(b * 0.8, b * 2.0)
    ax[1].set_ylim(b * 0.8, b * 2.0)
    if "pretrain" in out:
        s, l = zip(*out["pretrain"]["curve"])
        ax[2].plot(s, [x / math.log(2) for x in l])
        ax[2].set_xlabel("pretraining step")
        ax[2].set_ylabel("train loss, bits/token")
        ax[2].set_title(f"base pretraining ({out['pretrain']['params'] / 1e6:.0f}M params)")
    fig.suptitle("python experiments/adapt/run.py (results.json) on " + out["device"], fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def table(out: dict) -> None:
    b = out["base"]
    print("\n| model | vocab | dev bits/char | vs base | dev chars/token | gen chars/s | speed-up | new-token share |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print(f"| base (Mistral v3 SP) | {b['model_vocab_size'] if 'model_vocab_size' in b else ''} | {b['bpc']:.4f} | - | "
          f"{b['chars_per_token']:.2f} | {b['chars_per_s']:.0f} | 1.00x | 0.00 |")
    for name, r in out["variants"].items():
        print(f"| {name} | {r['model_vocab_size']} | {r['bpc']:.4f} | {100 * r['bpc_vs_base']:+.1f}% | "
              f"{r['chars_per_token']:.2f} | {r['chars_per_s']:.0f} | {r['speedup_chars_per_s']:.2f}x | "
              f"{r['new_token_share']:.2f} |")


if __name__ == "__main__":
    sys.exit(main())
