"""Issue 21: where each row init starts. Gemma 3 270M moved to HyperTok ``replace``, before any training.

The lease run's curves start far above the base (2.9 bits/char on RusLit dev at 0 tokens against
1.69) and HyperTok needs about 2.5x the control's tokens to catch up: a better start would shrink
that. This measures, on the CPU, the untrained model of each ``--init`` (``mean``, ``mean-norm``,
``focus``; :mod:`hypertok.adapt.recipe`) at each ``--hypertok`` size, and the base, the way
``run.py`` measures every model (equal-character windows from ``<bos>``, RuBLiMP pairs), on the
first ``--chars`` characters of each dev text and ``--pairs-per-phenomenon`` pairs of each phenomenon.
A starting point only: which init ends best after training is a GPU question.

``--reweight`` measures other weightings of each new row's pieces, after ``mean`` (a search for a better
start on a tied model, where a row is also the token's output vector): ``first`` (the first piece's row),
``blend:A`` (A x first + (1 - A) x mean), ``geo:R`` (weights 1, R, R^2, ... over the pieces), ``scale:C``
(C x mean).

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
    ap.add_argument("--inits", nargs="*", default=["mean", "mean-norm", "focus"])
    ap.add_argument("--reweight", nargs="*", default=[], metavar="KIND",
                    help="first | blend:A | geo:R | scale:C (see above), each measured after mean")
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

    def measure(model, tok) -> dict:
        return measure_start(model, tok, args.dev, args.pairs, args.chars, args.pairs_per_phenomenon,
                             args.context_chars)

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
        for kind in args.reweight:
            model = load_base_model(args.base, "float32", "cpu")
            old = model.get_input_embeddings().weight.detach().clone()  # (V, d), before the resize
            resize_and_init(model, tok.recipe, init="mean")
            with torch.no_grad():  # tied: the one matrix is the input and the output rows
                model.get_input_embeddings().weight[torch.tensor(tok.recipe.new_rows)] = \
                    torch.stack([reweighted(old[torch.tensor(s)], kind) for s in tok.recipe.sources])
            name = f"ht{key}-replace {kind}"
            out["results"][name] = measure(model, tok)
            run.log(f"{name}: {run.fmt(out['results'][name])}")
            del model
    run.write_json(args.out, out)
    print(f"wrote {args.out}")
    return 0


def measure_start(model, tok, dev: list[str], pairs: str, chars: int, per_phenomenon: int,
                  context_chars: int = 2048) -> dict:
    """An untrained model measured as ``run.py`` measures every model (``run.quality``): bits/char on the
    first ``chars`` characters of each ``NAME=FILE`` of ``dev`` and ``per_phenomenon`` pairs of each
    phenomenon of ``pairs``; with the seconds it took."""
    import run

    t0 = time.time()
    ns = SimpleNamespace(dev=[tuple(d.split("=", 1)) for d in dev], pairs=[pairs])
    q = run.quality(model.eval(), tok, ns, {"context_chars": context_chars, "seq": 1024}, chars, per_phenomenon)
    q.pop("pairs", None)
    return {**q, "seconds": time.time() - t0}


def reweighted(rows, kind: str):
    """One new row from its pieces' base rows ``rows`` (k, d), weighted as ``kind`` says.

    >>> import torch
    >>> r = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> [[round(x, 4) for x in reweighted(r, k).tolist()] for k in ("first", "blend:0.5", "geo:0.5", "scale:2")]
    [[1.0, 0.0], [0.75, 0.25], [0.6667, 0.3333], [1.0, 1.0]]
    """
    import torch

    name, _, arg = kind.partition(":")
    if name == "first":
        return rows[0]
    if name == "blend":
        return float(arg) * rows[0] + (1 - float(arg)) * rows.mean(0)
    if name == "geo":
        w = float(arg) ** torch.arange(len(rows), dtype=rows.dtype)  # (k,)
        return (w[:, None] * rows).sum(0) / w.sum()
    if name == "scale":
        return float(arg) * rows.mean(0)
    raise SystemExit(f"--reweight {kind!r}: one of first, blend:A, geo:R, scale:C")


if __name__ == "__main__":
    sys.exit(main())
