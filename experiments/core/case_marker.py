"""Case handling, measured: own entries for cased forms vs a capitalisation marker.

HyperTok's default gives frequent cased forms (" Он", "Я") their own entries. The
alternative is to lower-case the text and spend a marker token before each capitalised
word. This script measures both on dev.txt with vocabularies built on train.txt:

- ``entries``: the normal build on train.txt; tokens of dev.txt;
- ``marker``: a build on lower-cased train.txt; tokens of lower-cased dev.txt plus one
  marker per Title-case word, one per ALL-CAPS word, and one per upper-case letter in any
  other mixed-case word (an optimistic marker scheme: markers never merge with pieces).

Each line is encoded separately, newlines not counted (REFERENCE.md protocol).

    python experiments/core/case_marker.py --size 32000 --mode concept
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUSLIT = HERE.parents[1].parent / "shared" / "corpora" / "ruslit"
WORD = re.compile(r"[^\W\d_]+")


def markers(line: str) -> int:
    n = 0
    for w in WORD.findall(line):
        if w.islower() or not any(c.isupper() for c in w):
            continue
        if w.istitle() or (len(w) > 1 and w.isupper()) or len(w) == 1:
            n += 1
        else:
            n += sum(c.isupper() for c in w)
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=32000)
    ap.add_argument("--mode", default="concept")
    ap.add_argument("--work", type=Path, default=Path.home() / ".cache" / "hypertok" / "case")
    ap.add_argument("--out", type=Path, default=HERE / "case_marker.json")
    args = ap.parse_args()

    from hypertok import BuildConfig, build

    args.work.mkdir(parents=True, exist_ok=True)
    train = RUSLIT / "train.txt"
    lower_train = args.work / "train.lower.txt"
    if not lower_train.exists():
        lower_train.write_text(train.read_text(encoding="utf-8").lower(), encoding="utf-8")
    cfg = BuildConfig(vocab_size=args.size, mode=args.mode)
    entries_tok = build([train], args.work / f"entries-{args.mode}-{args.size}", cfg, overwrite=True)
    marker_tok = build([lower_train], args.work / f"lower-{args.mode}-{args.size}", cfg, overwrite=True)

    lines = (RUSLIT / "dev.txt").read_text(encoding="utf-8").split("\n")
    chars = sum(len(x) for x in lines)
    t_entries = sum(len(x) for x in entries_tok.encode_batch(lines))
    t_lower = sum(len(x) for x in marker_tok.encode_batch([x.lower() for x in lines]))
    n_markers = sum(markers(x) for x in lines)
    result = {
        "command": "python experiments/core/case_marker.py " + " ".join(sys.argv[1:]),
        "mode": args.mode, "vocab_size": args.size, "dev_chars": chars,
        "entries": {"tokens": t_entries, "chars_per_token": chars / t_entries},
        "marker": {"tokens": t_lower + n_markers, "tokens_without_markers": t_lower, "markers": n_markers,
                   "chars_per_token": chars / (t_lower + n_markers)},
    }
    result["winner"] = "entries" if t_entries <= t_lower + n_markers else "marker"
    args.out.write_text(json.dumps(result, indent=1, sort_keys=True))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
