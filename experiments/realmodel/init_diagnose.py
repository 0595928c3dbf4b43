"""Issue 21: why HyperTok starts far above the base, split into the two roles of a tied row.

Gemma ties its head to its embedding, so a new row is both what the model reads for a HyperTok token
(input) and that token's output vector. ``mean`` rows start at 2.93 bits/char on RusLit dev against the
base's 1.71 (``init_cpu.json``). This measures the output role alone, on the CPU:

1. The base reads ``--chars`` characters of each ``--train`` file with its own tokenizer. For every
   HyperTok token of the same text whose both ends are base-token boundaries, it keeps the base's final
   hidden state before the token, ``h``, and ``y``: the logit the token would need for its probability
   to equal the base's probability of its pieces (the first piece's logit plus the log-probability of
   the rest), both under the base's own normaliser.
2. With the base's ``h`` (so the input role plays no part), it compares the base's loss on those
   tokens, ``-log p_base(pieces)``, with the loss of the new rows, ``-log softmax(h . E_new)[token]``,
   and splits the difference into the true token's logit and the normaliser ``logZ``.
3. ``--ridge A ...``: each seen row refitted so that ``h . row`` matches ``y`` (ridge toward its mean
   row, strength A x the mean of |h|^2), then the model measured from scratch as ``init_cpu.py`` does.

    python experiments/realmodel/init_diagnose.py --base .data/realmodel/gemma-f32 \\
        --hypertok .data/realmodel/tok32k --out experiments/realmodel/init_diagnose.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

SHARED = Path(__file__).resolve().parents[3] / "shared"


def collect(model, tok, docs: list[str], window: int = 1023):
    """``(H, y, ids)``: the base's hidden state before each aligned HyperTok token (n, d), the logit that
    token needs (n,) and its id (n,), as step 1 of the module's docstring says."""
    import numpy as np
    import torch

    from hypertok.adapt.distill import byte_ends

    E = model.get_input_embeddings().weight.detach()  # (V, d): tied, also the head
    specials = {tok.bos, tok.eos, tok.pad_id}
    H, Y, ids_out = [], [], []
    for doc in docs:
        bids = tok.base.encode_batch([doc])[0]
        hids = tok.encode(doc)
        b_end = byte_ends(tok.base.piece_bytes, [bids])[0]
        b_start = np.concatenate([[0], b_end[:-1]])
        start_of = {int(s): j for j, s in enumerate(b_start)}
        end_of = {int(e): j for j, e in enumerate(b_end)}
        h_end = byte_ends(tok.piece_bytes, [hids])[0]
        h_start = np.concatenate([[0], h_end[:-1]])
        for w0 in range(0, len(bids), window):
            x = torch.tensor([[tok.base.bos_id, *bids[w0:w0 + window]]])  # (1, T): position p predicts bids[w0 + p]
            with torch.no_grad():
                h = model.model(input_ids=x).last_hidden_state[0]  # (T, d)
                logits = h[:-1] @ E.T  # (T-1, V)
                target = logits.gather(1, x[0, 1:, None])[:, 0]  # (T-1,): the next base token's logit
                logp = target - torch.logsumexp(logits, -1)
            lo, hi = b_start[w0], b_end[min(w0 + window, len(bids)) - 1]
            for a, b, hid in zip(h_start, h_end, hids):
                if hid in specials or a < lo or b > hi or a not in start_of or b not in end_of:
                    continue
                p = start_of[a] - w0  # the position whose hidden state predicts the token's first piece
                Y.append(float(target[p]) + float(logp[p + 1: end_of[b] - w0 + 1].sum()))
                H.append(h[p])
                ids_out.append(int(hid))
    return torch.stack(H), torch.tensor(Y), torch.tensor(ids_out)


def output_role(H, Y, ids, E_base, E_new) -> dict:
    """Nats per aligned token, base against new rows, both from the base's hidden states."""
    import torch

    def lse(E):
        return torch.cat([torch.logsumexp(H[i:i + 512] @ E.T, -1) for i in range(0, len(H), 512)])

    with torch.no_grad():
        z_base, z_new = lse(E_base), lse(E_new)
        logit_new = (H * E_new[ids]).sum(1)
    return {"nats_base": float((z_base - Y).mean()), "nats_new_rows": float((z_new - logit_new).mean()),
            "true_logit_needed": float(Y.mean()), "true_logit_new_rows": float(logit_new.mean()),
            "logZ_base": float(z_base.mean()), "logZ_new_rows": float(z_new.mean()),
            "rms_logit_error": float((logit_new - Y).pow(2).mean().sqrt())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", type=Path, required=True, help="the imported base folder (hypertok import)")
    ap.add_argument("--hypertok", type=Path, required=True, help="the HyperTok tokenizer (replace)")
    ap.add_argument("--train", nargs="+", default=[str(SHARED / "corpora/ruslit/train.txt"),
                                                  str(SHARED / "corpora/modern/ru-modern-train-0001.txt.xz")])
    ap.add_argument("--chars", type=int, default=20_000, help="characters of each --train file")
    ap.add_argument("--ridge", type=float, nargs="*", default=[1.0])
    ap.add_argument("--dev", nargs="+", metavar="NAME=FILE",
                    default=[f"ruslit={SHARED / 'corpora/ruslit/dev.txt'}",
                             f"modern={SHARED / 'corpora/modern/ru-modern-dev.txt.xz'}"])
    ap.add_argument("--pairs", default=str(SHARED / "evals/rublimp/dev.tsv"))
    ap.add_argument("--eval-chars", type=int, default=30_000)
    ap.add_argument("--pairs-per-phenomenon", type=int, default=10)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "init_diagnose.json")
    args = ap.parse_args(argv)

    import torch

    import run
    from hypertok.adapt.data import read_documents
    from init_cpu import measure_start
    from hypertok.adapt.model import load_base_model
    from hypertok.adapt.recipe import plan, resize_and_init

    torch.manual_seed(0)
    tok = plan(args.base, args.hypertok, "replace")
    docs = [d for path in args.train for d in read_documents([path], max_chars=args.chars)]
    base = load_base_model(args.base, "float32", "cpu").eval()
    t0 = time.time()
    H, Y, ids = collect(base, tok, docs)
    E_base = base.get_input_embeddings().weight.detach().clone()
    run.log(f"{len(ids)} aligned tokens ({len(set(ids.tolist()))} distinct) in {time.time() - t0:.0f}s")
    del base
    out = {"issue": 21, "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
           "torch": torch.__version__, "aligned_tokens": len(ids), "distinct_tokens": len(set(ids.tolist())),
           "mean_rows": {}, "ridge": {}}
    h2 = float((H ** 2).sum(1).mean())
    for alpha in [None, *args.ridge]:
        model = load_base_model(args.base, "float32", "cpu")
        resize_and_init(model, tok.recipe, init="mean")
        W = model.get_input_embeddings().weight
        if alpha is not None:
            with torch.no_grad():
                for t in ids.unique():
                    sel = ids == t
                    Ht, yt = H[sel], Y[sel]  # (n_t, d), (n_t,)
                    A = Ht.T @ Ht + alpha * h2 * torch.eye(Ht.shape[1])
                    W[t] = torch.linalg.solve(A, Ht.T @ yt + alpha * h2 * W[t])
        rec = output_role(H, Y, ids, E_base, W.detach())
        q = measure_start(model, tok, args.dev, args.pairs, args.eval_chars, args.pairs_per_phenomenon)
        rec["start"] = {k: q[k] for k in ("bpc_by_text", "rublimp")}
        if alpha is None:
            out["mean_rows"] = rec
        else:
            out["ridge"][str(alpha)] = rec
        run.log(f"ridge {alpha}: {json.dumps(rec)}")
        del model
    run.write_json(args.out, out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
