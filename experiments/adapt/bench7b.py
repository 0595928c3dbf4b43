"""Issue 10 at the 7B shape: each stage of the adaptation recipe on a Mistral-7B-v0.3-shaped model.

The model has random bf16 weights built on the GPU (``MistralConfig`` of Mistral-7B-v0.3: 32
layers, d=4096, GQA 32/8, FFN 14336, vocabulary 32768); nothing is downloaded, and the same
code runs on a real local checkpoint with ``--base DIR``. It is moved onto a HyperTok
vocabulary with the recipe of ``experiments/adapt/run.py`` (FOCUS-style init, stage 1 on the
new rows only, stage 2 LoRA + rows, stage 2 with distillation from a frozen copy of the base)
on real text, and for each stage it reports:

- tokens/s (median step time after warm-up steps, synchronised);
- 6·N·tokens/s as a share of the GPU's dense bf16 peak (N = all parameters; stage 1 does no
  weight gradients of the body, so 6·N overstates its work and the share is an upper bound);
- peak GPU memory;
- the adapter's size on disk (rows in bf16, no optimizer state), and of the optimizer state.

    python experiments/adapt/bench7b.py --sp mistral_v3.model --tokenizer tok32k --text modern-dev.txt \\
        --strategy extend --out results7b.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from hypertok.files import atomic_write  # noqa: E402

PEAK_BF16 = {"H100": 989e12, "H200": 989e12}  # dense bf16 tensor-core peak (SXM), FLOP/s


def folder_bytes(d: Path) -> int:
    return sum(f.stat().st_size for f in d.rglob("*") if f.is_file())


def sweep_setting(spec: str, args, after_compile: bool) -> tuple[bool, int, str, bool]:
    """(checkpointing, micro-batch rows, loss, compile) of one ``--sweep`` setting, checked
    before the model is built."""
    words = spec.split("/")
    bad = [w for w in words if w not in ("ckpt", "nockpt", "compile", "chunked", "liger")
           and not (w.startswith("mb") and w[2:].isdigit() and int(w[2:]) > 0)]
    if bad:
        sys.exit(f"--sweep {spec}: unknown words {bad}; use ckpt|nockpt, mbN, chunked|liger, compile")
    if after_compile and "compile" not in words:
        sys.exit(f"--sweep {spec}: compilation is for good, so it must come after every setting without it")
    micro = next((int(w[2:]) for w in words if w.startswith("mb")), args.batch)
    if args.batch % micro:
        sys.exit(f"--sweep {spec}: micro-batch {micro} must divide --batch {args.batch}")
    loss = "liger" if "liger" in words else "chunked" if "chunked" in words else args.loss
    return "nockpt" not in words, micro, loss, "compile" in words


def derive(result: dict) -> dict:
    """Figures derived from the measured ones, added in place (``--rederive`` adds them to an
    older file): each stage's and setting's GPU-hours for 10^9 tokens on this one GPU, and each
    sweep setting's speed against the sweep's first setting, timed in the same run."""
    runs = {**result.get("stages", {}), **result.get("sweep", {})}
    for r in runs.values():
        if r.get("tokens_per_s"):
            r["gpu_hours_per_1B_tokens"] = 1e9 / r["tokens_per_s"] / 3600
    sweep = result.get("sweep", {})
    first = next(iter(sweep.values()), {}).get("tokens_per_s")
    for r in sweep.values():
        if first and r.get("tokens_per_s"):
            r["speedup_vs_first_setting"] = r["tokens_per_s"] / first
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sp", help="the base SentencePiece model (Mistral v3)")
    ap.add_argument("--tokenizer", help="HyperTok directory")
    ap.add_argument("--text", help="text to train on (a few MB is enough)")
    ap.add_argument("--base", help="a real local checkpoint instead of random weights")
    ap.add_argument("--strategy", default="extend", choices=["extend", "replace"])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--steps", type=int, default=8, help="steps per stage (the first --warmup are not timed)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--lora-r", type=int, default=64)
    ap.add_argument("--layers", type=int, default=32, help="fewer layers for a quick check of the script")
    ap.add_argument("--loss", default="auto", choices=["auto", "chunked", "liger"],
                    help="next-token loss (TrainConfig.loss)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the decoder body (TrainConfig.compile)")
    ap.add_argument("--micro-batch", type=int, default=0,
                    help="rows per forward/backward pass, gradients summed over the batch (TrainConfig.micro_batch)")
    ap.add_argument("--no-grad-ckpt", action="store_true", help="train without gradient checkpointing")
    ap.add_argument("--sweep", nargs="+", metavar="SETTING",
                    help="instead of the recipe's stages: stage 2 alone on one model, timed under each setting in "
                         "turn. A setting is slash-separated words: ckpt or nockpt, mbN (micro-batch rows), the "
                         "loss (chunked, liger), and compile (in place and for good, so settings with it come "
                         "last), e.g. ckpt/mb8/liger nockpt/mb2/liger nockpt/mb2/liger/compile")
    ap.add_argument("--device", default="cuda", help="cpu: a quick check of the script (with --layers 1 and a "
                                                      "small --batch/--seq), no figure worth quoting")
    ap.add_argument("--rederive", action="store_true",
                    help="only add the derived figures (GPU-hours per 1B tokens, speed against the sweep's first "
                         "setting) to the existing --out file, on any machine")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if args.rederive:
        atomic_write(args.out, json.dumps(derive(json.loads(Path(args.out).read_text())), indent=1))
        return 0
    missing = [f"--{k}" for k in ("sp", "tokenizer", "text") if not getattr(args, k)]
    if missing:
        ap.error("required: " + ", ".join(missing))
    settings = [sweep_setting(spec, args, i and "compile" in args.sweep[i - 1].split("/"))
                for i, spec in enumerate(args.sweep or [])]

    import torch
    from transformers import MistralConfig, MistralForCausalLM

    from hypertok.adapt.data import pack, read_documents
    from hypertok.adapt.distill import Distiller
    from hypertok.adapt.model import AdaptedModel, is_row_param, wrap_peft
    from hypertok.adapt.recipe import resize_and_init, row_overlaps
    from hypertok.adapt.train import TrainConfig, rows_only, train_loop
    from hypertok.registry import load_tokenizer

    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    name = torch.cuda.get_device_name(dev) if cuda else "cpu"
    peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
    tok = load_tokenizer(f"{args.tokenizer}:{args.strategy}", base=args.sp, base_rows=32768)

    def base_model():
        if args.base:
            from hypertok.adapt.model import load_base_model
            return load_base_model(args.base, "bfloat16", args.device)
        cfg = MistralConfig(vocab_size=32768, hidden_size=4096, intermediate_size=14336, num_hidden_layers=args.layers,
                            num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=32768,
                            rope_theta=1e6, sliding_window=None, tie_word_embeddings=False,
                            bos_token_id=1, eos_token_id=2, torch_dtype="bfloat16")
        torch.manual_seed(0)
        with torch.device(dev):
            m = MistralForCausalLM(cfg).to(torch.bfloat16)
        m.config._attn_implementation = "sdpa"
        return m

    t0 = time.time()
    model = base_model()
    n_base = sum(p.numel() for p in model.parameters())
    resize_and_init(model, tok.recipe, init="focus", overlaps=row_overlaps(tok))
    if not args.no_grad_ckpt:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    model = wrap_peft(model, tok.recipe, args.lora_r, args.lora_r)
    n_all = sum(p.numel() for p in model.parameters())
    print(f"model ready in {time.time() - t0:.0f}s: {n_base / 1e9:.2f}B base, {n_all / 1e9:.2f}B with rows and LoRA",
          flush=True)
    docs = read_documents([args.text])
    stream = pack(tok.encode_batch(docs), tok.bos, tok.eos)
    result = {"device": name, "torch": torch.__version__, "strategy": args.strategy, "batch": args.batch,
              "seq_len": args.seq, "lora_r": args.lora_r, "layers": args.layers, "params": n_all,
              "model_vocab_size": len(tok), "new_rows": len(tok.recipe.new_rows), "peak_flops": peak,
              "random_weights": not args.base, "loss": args.loss, "compile": args.compile,
              "micro_batch": args.micro_batch or args.batch, "grad_ckpt": not args.no_grad_ckpt, "stages": {}}

    def run(stage: str, distiller=None, lr=1e-4, rows_lr=1e-3, loss=args.loss, compile=args.compile,
            micro=args.micro_batch, ckpt=not args.no_grad_ckpt):
        cfg = TrainConfig(steps=args.steps, batch_size=args.batch, seq_len=args.seq, lr=lr, rows_lr=rows_lr,
                          warmup=1, eval_every=0, save_every=0, progress=False, desc=stage, loss=loss,
                          compile=compile, micro_batch=micro)
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        hist = train_loop(model, stream, tok.bos, cfg, is_row_param=is_row_param, distiller=distiller)
        if cuda:
            torch.cuda.synchronize()
        times = [b["time"] - a["time"] for a, b in zip(hist, hist[1:])][args.warmup - 1:]
        step_s = statistics.median(times)
        tps = args.batch * args.seq / step_s
        r = {"loss_fn": hist[0].get("loss_fn"), "tokens_per_s": tps, "step_seconds": step_s,
             "peak_memory_bytes": torch.cuda.max_memory_allocated() if cuda else 0,
             "mfu_6N": 6 * n_all * tps / peak if peak else None,
             # what the GPU really multiplies: forward 2N, backward 2N (the frozen body's weights get no
             # gradients), and the forward again under checkpointing; attention's T^2 terms left out
             "hw_share": (6 if ckpt else 4) * n_all * tps / peak if peak else None,
             "losses": [h["loss"] for h in hist]}
        if distiller is not None:
            r["teacher_tokens_per_student_token"] = statistics.mean(h["teacher_tokens"] for h in hist) / (
                args.batch * args.seq)
        result["stages"][stage] = r
        print(f"{stage}: {tps:.0f} tokens/s, {r['peak_memory_bytes'] / 2**30:.1f} GiB peak, "
              f"6N share {r['mfu_6N'] or 0:.1%}, hardware share {r['hw_share'] or 0:.1%}", flush=True)

    if args.sweep:
        result["sweep"] = {}
        for spec, (ckpt, micro, loss, compiled) in zip(args.sweep, settings):
            if ckpt:
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            else:
                model.gradient_checkpointing_disable()
            try:
                run(spec, loss=loss, compile=compiled, micro=micro, ckpt=ckpt)
                result["sweep"][spec] = result["stages"].pop(spec)
            except torch.cuda.OutOfMemoryError as e:
                result["sweep"][spec] = {"error": f"out of memory: {str(e).splitlines()[0]}"}
                print(f"{spec}: out of memory", flush=True)
            except Exception as e:  # noqa: BLE001 - a setting that fails is a measured result, the sweep goes on
                result["sweep"][spec] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"}
                print(f"{spec}: {result['sweep'][spec]['error']}", flush=True)
            if cuda:
                torch.cuda.empty_cache()
            atomic_write(args.out, json.dumps(derive(result), indent=1))  # what a lease cut short still keeps
        return 0

    with rows_only(model):
        run("stage1 (rows only)", lr=5e-4, rows_lr=5e-4)
    run("stage2 (LoRA + rows)")
    teacher = base_model()
    run("stage2 + distillation", Distiller(teacher, tok, tok.base, 1.0, 100.0), loss="auto")  # chunked: per-token log-probs
    s2, s2d = result["stages"]["stage2 (LoRA + rows)"], result["stages"]["stage2 + distillation"]
    result["distillation_step_overhead"] = s2["step_seconds"] and s2d["step_seconds"] / s2["step_seconds"] - 1
    del teacher
    with tempfile.TemporaryDirectory() as d:
        AdaptedModel(model, tok).save_pretrained(d)
        result["adapter_bytes"] = folder_bytes(Path(d))
        result["adapter_files"] = {f.name: f.stat().st_size for f in Path(d).rglob("*") if f.is_file()}
    opt_state = sum(p.numel() for p in model.parameters() if p.requires_grad) * 4 * 3  # fp32 master + Adam m, v
    result["optimizer_state_bytes_estimate"] = opt_state
    print(f"adapter {result['adapter_bytes'] / 2**30:.2f} GiB (rows in bf16, no optimizer state); "
          f"optimizer state for --resume about {opt_state / 2**30:.1f} GiB", flush=True)
    atomic_write(args.out, json.dumps(derive(result), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
