"""Issue 21: where each row init starts. Gemma 3 270M moved to HyperTok ``replace``, before any training.

The lease run's curves start far above the base (2.9 bits/char on RusLit dev at 0 tokens against
1.69) and HyperTok needs about 2.5x the control's tokens to catch up: a better start would shrink
that. This measures, on the CPU, the untrained model of each ``--init`` (``mean``, ``mean-norm``,
``focus``; :mod:`hypertok.adapt.recipe`) at each ``--hypertok`` size, and the base, the way
``run.py`` measures every model (equal-character windows from ``<bos>``, RuBLiMP pairs), on the
first ``--chars`` characters of each dev text and ``--pairs-per-phenomenon`` pairs of each phenomenon.
A starting point only: which init ends best after training is a GPU question.

    python experiments/realmodel/init_cpu.py --gguf .data/realmodel/gemma.gguf \\
        --hypertok 64k=.data/realmodel/tok64k 32k=.data/realmodel/tok32k --out experiments/realmodel/init_cpu.json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

SHARED = Path(__file__).resolve().parents[3] / "shared"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gguf", type=Path, help="the Gemma 3 270M GGUF (imported to --base when that is missing)")
    ap.add_argument("--base", type=Path, default=Path(".data/realmodel/gemma-f32"), help="imported base folder")
    ap.add_argument("--hypertok", nargs="+", required=True, metavar="KEY=DIR", help="HyperTok tokenizers")
    ap.add_argument("--inits", nargs="+", default=["mean", "mean-norm", "focus"])
    ap.add_argument("--dev", nargs="+", metavar="NAME=FILE",
                    default=[f"ruslit={SHARED / 'corpora/ruslit/dev.txt'}",
                             f"modern={SHARED / 'corpora/modern/ru-modern-dev.txt.xz'}"])
    ap.add_argument("--pairs", default=str(SHARED / "evals/rublimp/dev.tsv"))
    ap.add_argument("--chars", type=int, default=30_000, help="characters of each dev text (whole documents)")
    ap.add_argument("--pairs-per-phenomenon", type=int, default=10)
    ap.add_argument("--context-chars", type=int, default=2048)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "init_cpu.json")
    args = ap.parse_args(argv)

    import torch

    import run
    from hypertok.adapt.model import load_base_model
    from hypertok.adapt.recipe import plan, resize_and_init, row_overlaps
    from hypertok.registry import BaseTokenizer, find_base

    torch.manual_seed(0)
    if not (args.base / "hypertok_import.json").is_file():  # what run.py's import lane checks: the import finished
        if not args.gguf:
            ap.error(f"{args.base} holds no imported model: give --gguf")
        from hypertok.adapt.gguf_import import import_gguf

        import_gguf(args.gguf, args.base, dtype="float32")
    ns = SimpleNamespace(dev=[tuple(d.split("=", 1)) for d in args.dev], pairs=[args.pairs])
    P = {"context_chars": args.context_chars, "seq": 1024}

    def measure(model, tok) -> dict:
        t0 = time.time()
        q = run.quality(model.eval(), tok, ns, P, args.chars, args.pairs_per_phenomenon)
        q.pop("pairs", None)
        return {**q, "seconds": time.time() - t0}

    out = {"issue": 21, "settings": {k: v for k, v in vars(args).items() if k not in ("gguf", "base", "out")},
           "torch": torch.__version__, "results": {}}
    base = load_base_model(args.base, "float32", "cpu")
    out["results"]["base"] = measure(base, BaseTokenizer(find_base(args.base)))
    run.log(f"base: {run.fmt(out['results']['base'])}")
    del base
    for spec in args.hypertok:
        key, path = spec.split("=", 1)
        tok = plan(args.base, path, "replace")
        overlaps = row_overlaps(tok) if "focus" in args.inits else None
        for init in args.inits:
            model = load_base_model(args.base, "float32", "cpu")
            resize_and_init(model, tok.recipe, init=init, overlaps=overlaps if init == "focus" else None)
            name = f"ht{key}-replace {init}"
            out["results"][name] = measure(model, tok)
            run.log(f"{name}: {run.fmt(out['results'][name])}")
            del model
    run.write_json(args.out, out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
