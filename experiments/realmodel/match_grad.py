"""How strongly stage 1's hidden-state match pulls on the new rows, against the next-token loss (issue 21, CPU).

The ``match`` recipe of ``run.py`` trains the rows alone in stage 1 on ``next-token loss + w x
hidden_match_loss`` (:class:`hypertok.adapt.distill.HiddenMatcher`). Its weight ``w`` should give the match a
gradient of the next-token loss's size, not one lost beside it. This measures both gradients on the untrained
``replace`` rows (``mean`` init), on the same training rows, and writes their norms, their ratio and their cosine:

    python experiments/realmodel/match_grad.py --base .data/realmodel/gemma-f32 --hypertok .data/realmodel/tok32k
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", type=Path, required=True, help="the imported base (hypertok import)")
    ap.add_argument("--hypertok", type=Path, required=True, help="a HyperTok tokenizer folder")
    ap.add_argument("--train", nargs="+", default=["../shared/corpora/ruslit/train.txt",
                                                   "../shared/corpora/modern/ru-modern-train-0001.txt.xz"])
    ap.add_argument("--chars", type=int, default=30_000, help="characters read from each --train file")
    ap.add_argument("--rows", type=int, default=4, help="rows of the batch")
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "match_grad.json")
    args = ap.parse_args(argv)

    import torch

    from hypertok.adapt.data import encode_docs, n_rows, pack, read_documents, rows_of, target_rows
    from hypertok.adapt.distill import HiddenMatcher
    from hypertok.adapt.model import load_base_model, wrap_peft
    from hypertok.adapt.recipe import plan, resize_and_init
    from hypertok.adapt.train import rows_only
    from hypertok.files import atomic_write

    torch.manual_seed(0)
    t0 = time.time()
    tok = plan(args.base, args.hypertok, "replace")
    docs = [d for f in args.train for d in read_documents([f], max_chars=args.chars)]
    stream = pack(encode_docs(tok, docs), tok.bos, tok.eos)
    model = load_base_model(args.base, "float32", "cpu")
    resize_and_init(model, tok.recipe, init="mean")
    model.config.use_cache = False
    model = wrap_peft(model, tok.recipe, 8, 8)
    teacher = load_base_model(args.base, "float32", "cpu")
    full = n_rows(stream, args.seq_len, bos_first=True)  # rows spread over the text: some from each --train file
    idx = [int(i) for i in torch.linspace(0, max(0, full - 1), args.rows).round()]
    X, P, Y = (torch.from_numpy(a) for a in rows_of(stream, args.seq_len, tok.bos, idx, bos_first=True))
    Z = target_rows(stream, args.seq_len, tok.bos, idx, bos_first=True)

    def grad(weight: float):
        m = HiddenMatcher(teacher, tok, tok.base, weight, chunk=4096)
        with rows_only(model):
            params = [p for p in model.parameters() if p.requires_grad]
            loss, _, logs = m.loss(model, Z, X, P, Y, context=2)
            g = torch.autograd.grad(loss, params)
        return torch.cat([x.flatten() for x in g]), logs

    g_nll, logs = grad(1e-12)          # the next-token loss alone (the match's share is 1e-12 of it)
    g_all, _ = grad(1.0)
    g_match = g_all - g_nll            # the match's gradient at weight 1
    out = {"issue": 21, "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
           "rows": idx, "nll": float(logs["nll"]), "match": float(logs["match"]), "matched": int(logs["matched"]),
           "grad_norm_nll": float(g_nll.norm()), "grad_norm_match_at_weight_1": float(g_match.norm()),
           "weight_for_equal_norms": float(g_nll.norm() / g_match.norm()),
           "cosine": float(torch.nn.functional.cosine_similarity(g_nll, g_match, dim=0)),
           "seconds": round(time.time() - t0, 1), "torch": torch.__version__}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out, json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: v for k, v in out.items() if k != "settings"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
