"""Issue 10: the large-vocabulary loss. Our chunked cross-entropy against Liger's fused linear
cross-entropy and the plain full-logits loss, at the Mistral-7B head shape, on one GPU.

For each vocabulary size (32 768 = Mistral v3, 65 536, 131 072) and each loss, one
forward+backward of ``loss(hidden @ W.T, labels)`` over ``--tokens`` positions (hidden
size 4096, bf16 hidden states and head, float32 softmax), reporting:

- the peak memory the loss adds above its inputs (``max_memory_allocated`` minus what the
  inputs and their gradients hold), in GiB;
- the median time of ``--repeats`` runs after ``--warmup`` runs, synchronised;
- the loss and the gradient's agreement with the full-logits loss (max relative error).

Liger is optional: without ``liger_kernel`` (a wheel carried to the GPU machine) its rows
are left out and say so.

    python experiments/adapt/bench_loss.py --out loss.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from hypertok.files import atomic_write  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=16384, help="positions per step: batch x seq (default: 8 x 2048)")
    ap.add_argument("--hidden", type=int, default=4096, help="hidden size (default: Mistral-7B's 4096)")
    ap.add_argument("--vocab", default="32768,65536,131072", help="vocabulary sizes (default: 32768,65536,131072)")
    ap.add_argument("--chunk", type=int, default=4096, help="positions per chunk of our loss (default: 4096)")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs, median reported (default: 5)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed runs first (default: 2)")
    ap.add_argument("--out", required=True, help="JSON file to write")
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F

    from hypertok.loss import chunked_cross_entropy

    try:
        from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss
        liger = LigerFusedLinearCrossEntropyLoss(reduction="sum")
    except ImportError as e:
        liger, why = None, str(e)

    def full(h, w, y):
        return F.cross_entropy((h @ w.T).float(), y, reduction="sum")

    def chunked(h, w, y):
        return chunked_cross_entropy(h, y, w, chunk=args.chunk)[0]

    losses = {"full": full, "chunked (ours)": chunked}
    if liger is not None:
        losses["liger fused"] = lambda h, w, y: liger(w, h, y)
    dev = torch.device("cuda")
    res = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "tokens": args.tokens,
           "hidden": args.hidden, "chunk": args.chunk, "repeats": args.repeats, "points": []}
    if liger is None:
        res["liger_missing"] = why
    for V in [int(v) for v in args.vocab.split(",")]:
        g = torch.Generator(device=dev).manual_seed(0)
        h0 = torch.randn(args.tokens, args.hidden, device=dev, dtype=torch.bfloat16, generator=g)
        w0 = (torch.randn(V, args.hidden, device=dev, dtype=torch.bfloat16, generator=g) * 0.02)
        y = torch.randint(0, V, (args.tokens,), device=dev, generator=g)
        ref = None
        for name, fn in losses.items():
            h = h0.clone().requires_grad_(True)
            w = w0.clone().requires_grad_(True)
            times, value = [], None
            for i in range(args.warmup + args.repeats):
                h.grad = w.grad = None
                torch.cuda.synchronize()
                base = torch.cuda.memory_allocated()
                torch.cuda.reset_peak_memory_stats()
                t0 = time.perf_counter()
                loss = fn(h, w, y)
                loss.backward()
                torch.cuda.synchronize()
                if i >= args.warmup:
                    times.append(time.perf_counter() - t0)
                peak = torch.cuda.max_memory_allocated() - base
                value = float(loss)
            grads = (h.grad.float(), w.grad.float())
            point = {"vocab": V, "loss": name, "peak_extra_gib": peak / 2**30, "seconds": statistics.median(times),
                     "value": value}
            if ref is None:
                ref = (value, grads)
            else:
                point["rel_err_loss"] = abs(value - ref[0]) / abs(ref[0])
                point["rel_err_grad"] = max(float((a - b).norm() / b.norm()) for a, b in zip(grads, ref[1]))
            res["points"].append(point)
            print(f"V={V:>6} {name:<15} +{point['peak_extra_gib']:6.2f} GiB  {point['seconds'] * 1e3:7.1f} ms"
                  + (f"  rel.err loss {point['rel_err_loss']:.1e} grad {point['rel_err_grad']:.1e}"
                     if "rel_err_loss" in point else ""), flush=True)
            del h, w, grads, loss
            torch.cuda.empty_cache()
    atomic_write(args.out, json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
