"""The opt-in NFC normaliser, measured: what decomposed (NFD) Russian costs with and without it.

Text pasted from some sources (macOS file names, PDF extraction, some web pages) arrives
decomposed: ``й`` as ``и`` + U+0306, ``ё`` as ``е`` + U+0308. A vocabulary built on composed
text has no pieces for the decomposed spellings, so those words fall apart. This script
builds the same vocabulary on train.txt twice, with ``normalize="none"`` (the default,
lossless) and ``normalize="nfc"``, and encodes the first ``--chars`` characters of
ruslit/dev.txt and of modern/ru-modern-dev.txt.xz, both as written (NFC) and decomposed
(NFD). Each line is encoded separately, newlines not counted (the protocol of
../shared/REFERENCE.md). It also counts the words that NFD changes (those with ``й``, ``ё``)
and their tokens, each word encoded alone with its leading space. The builds are cached
under ``--work``.

Writes experiments/core/nfc.json.

    python experiments/core/nfc.py --size 32000 --mode concept
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import unicodedata
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPORA = HERE.parents[1].parent / "shared" / "corpora"
RUSLIT = CORPORA / "ruslit"
SAMPLES = {"ruslit": RUSLIT / "dev.txt", "modern": CORPORA / "modern" / "ru-modern-dev.txt.xz"}


def tokens(tok, lines: list[str]) -> int:
    return sum(len(x) for x in tok.encode_batch(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=32000)
    ap.add_argument("--mode", default="concept")
    ap.add_argument("--chars", type=int, default=200_000, help="characters of dev.txt measured (its beginning)")
    ap.add_argument("--work", type=Path, default=Path.home() / ".cache" / "hypertok" / "nfc")
    ap.add_argument("--out", type=Path, default=HERE / "nfc.json")
    args = ap.parse_args()

    from hypertok import BuildConfig, HyperTok, build

    toks = {}
    for norm in ("none", "nfc"):
        out = args.work / f"{args.mode}-{args.size}-{norm}"
        if (out / "config.json").is_file():
            toks[norm] = HyperTok.load(out)
        else:
            cfg = BuildConfig(vocab_size=args.size, mode=args.mode, normalize=norm)
            toks[norm] = build([RUSLIT / "train.txt"], out, cfg, overwrite=True, progress=True)
    from hypertok.text import iter_text

    result = {
        "command": "python experiments/core/nfc.py " + " ".join(sys.argv[1:]),
        "mode": args.mode, "vocab_size": args.size, "built_on": "ruslit/train.txt",
        "same_vocabulary": toks["none"].surfaces == toks["nfc"].surfaces,
        "samples": {},
    }
    for name, path in SAMPLES.items():
        sample = ""
        for piece in iter_text(path):
            sample += piece
            if len(sample) >= args.chars:
                break
        sample = sample[:args.chars]
        nfd = unicodedata.normalize("NFD", sample)
        lines = {"as_written": sample.split("\n"), "nfd": nfd.split("\n")}
        counts = {k: {norm: tokens(tok, v) for norm, tok in toks.items()} for k, v in lines.items()}
        base = counts["as_written"]["none"]
        words = re.findall(r"\w+", sample)
        changed = [" " + w for w in words if unicodedata.normalize("NFD", w) != w]  # й, ё, Й, Ё, ...
        alone = {"as_written": tokens(toks["none"], changed),
                 "nfd": tokens(toks["none"], [unicodedata.normalize("NFD", w) for w in changed])}
        result["samples"][name] = {
            "words_nfd_changes": {"count": len(changed), "share_of_words": len(changed) / len(words),
                                  "tokens_each_alone_without_normaliser": alone},
            "text": f"the first {args.chars} characters of {path.relative_to(CORPORA)}",
            "is_nfc": unicodedata.is_normalized("NFC", sample),
            "chars": {k: sum(len(x) for x in v) for k, v in lines.items()},
            "tokens": counts,
            "nfd_extra_tokens_without_normaliser": counts["nfd"]["none"] / base - 1,
            "nfd_extra_tokens_with_nfc": counts["nfd"]["nfc"] / base - 1,
            "nfd_round_trip_without_normaliser_exact": toks["none"].decode(toks["none"].encode(nfd)) == nfd,
            "nfd_round_trip_with_nfc_gives_nfc": toks["nfc"].decode(toks["nfc"].encode(nfd)) == sample,
        }
    args.out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    print(json.dumps(result, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
