"""Does HyperTok lose RuBLiMP pairs where its segmentation is lopsided? (issue 21, CPU, no model run)

A pair is scored by the whole sentence's log-probability, so a model pays for every token it
writes. Where one tokenizer spells the grammatical sentence in more tokens than the ungrammatical
one (a rarer form cut into pieces, the other form one entry), a model still learning that
vocabulary may pay more for the good sentence than for the bad. This counts, per phenomenon,
how each tokenizer's token counts split good from bad, and sets that beside the accuracy a
trained HyperTok lane lost against the control in ``--results`` (``rublimp_by_phenomenon``):

    python experiments/realmodel/rublimp_tokens.py --base .data/realmodel/gemma-f32 \\
        --hypertok 32k=.data/realmodel/tok32k 64k=.data/realmodel/tok64k \\
        --results experiments/realmodel/recipes-8m/results.json

Per phenomenon and tokenizer: ``longer_good`` (the share of pairs whose good sentence takes more
tokens than its bad one) minus ``longer_bad`` (the reverse) is the ``lean``: above 0 the
tokenizer spells good sentences longer. ``lean_vs_base`` is HyperTok's lean minus the base's.
Across phenomena, the Pearson and Spearman correlations of ``lean_vs_base`` with the accuracy
change (HyperTok lane minus control, points) say whether segmentation explains where the
points are lost; a correlation is no proof that it causes them.

A second suspect is rows that training barely reached: a HyperTok row starts as the mean of its
pieces and learns only where its token occurs. With ``--train``, an equal share of each file
(``--train-chars`` in all, as ``run.py`` mixes them) is tokenized and each token's count scaled to
the lane's ``adapt_tokens``: how often the lane saw it, in expectation. A pair is ``rare`` when a
token that tells its good sentence from its bad one (in one and not the other) was seen fewer than
``--rare`` times; ``rare`` per phenomenon is the share of such pairs, correlated in the same way.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def lean(pairs_lens: list[tuple[int, int]]) -> dict:
    """Shares of pairs whose good sentence is longer / shorter in tokens, and their difference.

    >>> lean([(3, 2), (2, 2), (1, 2), (4, 2)])
    {'longer_good': 0.5, 'longer_bad': 0.25, 'lean': 0.25}
    """
    n = max(1, len(pairs_lens))
    g = sum(a > b for a, b in pairs_lens) / n
    b = sum(a < b for a, b in pairs_lens) / n
    return {"longer_good": g, "longer_bad": b, "lean": g - b}


def pearson(x: list[float], y: list[float]) -> float:
    """Pearson's correlation of two equally long lists (nan where one of them does not vary).

    >>> round(pearson([1, 2, 3], [2, 4, 7]), 3), pearson([1, 2, 3], [5, 5, 5])
    (0.993, nan)
    """
    import numpy as np

    return float(np.corrcoef(x, y)[0, 1]) if np.std(x) and np.std(y) else float("nan")


def ranks(x: list[float]) -> list[float]:
    """Ranks from 1, ties sharing their mean rank (Spearman's correlation is Pearson's of the ranks).

    >>> ranks([10, 30, 20, 20])
    [1.0, 4.0, 2.5, 2.5]
    """
    order = sorted(range(len(x)), key=lambda i: x[i])
    r = [0.0] * len(x)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and x[order[j + 1]] == x[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return r


def expected_seen(tok, docs: list[str], adapt_tokens: int):
    """How often a lane that trained on ``adapt_tokens`` tokens of text like ``docs`` saw each token id."""
    import numpy as np

    counts = np.zeros(len(tok), dtype=np.float64)
    for ids in tok.encode_batch(docs):
        counts += np.bincount(np.asarray(ids, dtype=np.int64), minlength=len(tok))[:len(tok)]
    return counts * (adapt_tokens / max(1.0, counts.sum()))


def telling_seen(good: list[int], bad: list[int], seen) -> float:
    """The fewest times a lane saw any token that is in one sentence of a pair and not the other (inf: none).

    >>> telling_seen([1, 2, 3], [1, 4, 3], [0, 50, 7, 9, 2])
    2
    >>> telling_seen([1, 2], [2, 1], [0, 5, 5])
    inf
    """
    from collections import Counter

    g, b = Counter(good), Counter(bad)
    diff = (g - b) + (b - g)
    return min((seen[t] for t in diff), default=float("inf"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", type=Path, required=True, help="the imported base folder (its tokenizer)")
    ap.add_argument("--hypertok", nargs="+", required=True, metavar="KEY=DIR", help="HyperTok tokenizers")
    ap.add_argument("--pairs", type=Path, default=Path("../shared/evals/rublimp/dev.tsv"))
    ap.add_argument("--results", type=Path, required=True, help="a run.py results.json with a control lane")
    ap.add_argument("--lane", default="ht{key}-replace", help="the lane of each KEY (default: %(default)s)")
    ap.add_argument("--reference", default="control", help="the lane HyperTok's accuracy is set against")
    ap.add_argument("--train", nargs="*", default=[], help="the lanes' training files (.xz read directly): "
                    "how often each HyperTok token was seen (default: not measured)")
    ap.add_argument("--train-chars", type=int, default=20_000_000, help="characters of --train read, an equal "
                    "share of each file (default: %(default)s)")
    ap.add_argument("--rare", type=float, default=10.0, help="a token seen fewer times than this is rare")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "rublimp_tokens.json")
    args = ap.parse_args(argv)

    from hypertok.adapt.evaluate import read_minimal_pairs
    from hypertok.adapt.recipe import plan
    from hypertok.files import atomic_write
    from hypertok.registry import BaseTokenizer, find_base

    pairs = read_minimal_pairs(args.pairs)
    res = json.loads(args.results.read_text())
    ref = res["variants"][args.reference]["rublimp_by_phenomenon"]
    toks = {"base": BaseTokenizer(find_base(args.base))}
    for kv in args.hypertok:
        key, path = kv.split("=", 1)
        toks[key] = plan(args.base, path, "replace")
    lens, ids_of = {}, {}
    for name, tok in toks.items():
        ids = tok.encode_batch([p["good"] for p in pairs] + [p["bad"] for p in pairs])
        n = len(pairs)
        lens[name] = [(len(ids[i]), len(ids[n + i])) for i in range(n)]
        ids_of[name] = [(ids[i], ids[n + i]) for i in range(n)]
    docs = []
    if args.train:
        from hypertok.adapt.data import read_documents

        share = args.train_chars // len(args.train)
        docs = [d for f in args.train for d in read_documents([f], share, what="--train")]
    by_ph = defaultdict(list)
    for i, p in enumerate(pairs):
        by_ph[p["phenomenon"]].append(i)
    out = {"issue": 21, "settings": {k: str(v) for k, v in vars(args).items()}, "pairs": len(pairs),
           "overall": {name: lean(v) for name, v in lens.items()}, "tokenizers": {}, "phenomena": {}}
    for key in toks:
        if key == "base":
            continue
        lane = args.lane.format(key=key)
        acc = res["variants"][lane]["rublimp_by_phenomenon"]
        rare = None
        if docs:
            seen = expected_seen(toks[key], docs, res["variants"][lane]["adapt_tokens"])
            rare = [telling_seen(g, b, seen) < args.rare for g, b in ids_of[key]]
        rows = {}
        for ph, idx in sorted(by_ph.items()):
            b, h = lean([lens["base"][i] for i in idx]), lean([lens[key][i] for i in idx])
            rows[ph] = {"pairs": len(idx), "lean_base": b["lean"], "lean_ht": h["lean"],
                        "lean_vs_base": h["lean"] - b["lean"], "acc_points_vs_reference": 100 * (acc[ph] - ref[ph])}
            if rare is not None:
                rows[ph]["rare"] = sum(rare[i] for i in idx) / len(idx)
            out["phenomena"].setdefault(ph, {})[key] = rows[ph]
        y = [r["acc_points_vs_reference"] for r in rows.values()]
        worst = sorted(rows, key=lambda ph: rows[ph]["acc_points_vs_reference"])[:10]
        out["tokenizers"][key] = {"lane": lane, "phenomena": len(rows), "correlation": {}, "worst": {ph: rows[ph] for ph in worst}}
        for what in ("lean_vs_base", "rare") if rare is not None else ("lean_vs_base",):
            x = [r[what] for r in rows.values()]
            out["tokenizers"][key]["correlation"][what] = {"pearson": pearson(x, y), "spearman": pearson(ranks(x), ranks(y))}
        if rare is not None:
            out["tokenizers"][key]["rare_pairs"] = sum(rare) / len(rare)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out, json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    for key, t in out["tokenizers"].items():
        print(f"{key} ({t['lane']} vs {args.reference}): " + "  ".join(
            f"{what}: pearson {c['pearson']:+.3f} spearman {c['spearman']:+.3f}" for what, c in t["correlation"].items()))
        for ph, r in t["worst"].items():
            print(f"  {ph:45s} {r['acc_points_vs_reference']:+6.1f} pts  lean base {r['lean_base']:+.2f}  "
                  f"ht {r['lean_ht']:+.2f}" + (f"  rare {r['rare']:.2f}" if "rare" in r else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
