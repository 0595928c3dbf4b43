"""Issue 21: does the distiller's span alignment hold on the real tokenizers, with rows that start at ``<bos>``?

The distilled lane (``run.py --distill 32k``) trains on rows with an added ``<bos>`` (Gemma needs it), and
the frozen base reads each row again with its own tokenizer (:func:`hypertok.adapt.distill.teacher_rows`,
``context=2``). A row whose text the teacher cannot spell byte for byte gets no spans, and a teacher row
without its ``<bos>`` would be scored far worse: this counts both on the first ``--rows`` rows of each dev
text, packed as the lanes pack them, with the HyperTok tokenizer as student and the base's as teacher. No
model is loaded (seconds on a CPU).

    python experiments/realmodel/check_distill_rows.py --base .data/realmodel/gemma-f32 \\
        --hypertok .data/realmodel/tok32k --out experiments/realmodel/check_distill_rows.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

SHARED = Path(__file__).resolve().parents[3] / "shared"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", type=Path, required=True, help="the imported base folder (hypertok import)")
    ap.add_argument("--hypertok", type=Path, required=True, help="the HyperTok tokenizer (the student's)")
    ap.add_argument("--dev", nargs="+", metavar="NAME=FILE",
                    default=[f"ruslit={SHARED / 'corpora/ruslit/dev.txt'}",
                             f"modern={SHARED / 'corpora/modern/ru-modern-dev.txt.xz'}"])
    ap.add_argument("--rows", type=int, default=64, help="rows of each text")
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "check_distill_rows.json")
    args = ap.parse_args(argv)


    from hypertok.adapt.data import pack, read_documents, target_rows
    from hypertok.adapt.distill import teacher_rows
    from hypertok.adapt.recipe import plan
    from hypertok.files import atomic_write

    tok = plan(args.base, args.hypertok, "replace")
    S = args.seq_len - 1  # stream tokens a row after its <bos> (rows_of's bos_first)
    out = {"issue": 21, "base": str(args.base), "hypertok": str(args.hypertok), "seq_len": args.seq_len, "texts": {}}
    for spec in args.dev:
        name, path = spec.split("=", 1)
        stream = pack(tok.encode_batch(list(read_documents([path], max_chars=S * args.rows * 12))), tok.bos, tok.eos)
        n = min(args.rows, (len(stream) - 1) // S)
        Z = target_rows(stream, args.seq_len, tok.bos, range(n), bos_first=True)  # as the trainer hands them over
        tb = teacher_rows(Z, tok, tok.base, tok.bos_id, tok.eos_id, context=2)
        spans = tb["spans_per_row"]
        out["texts"][name] = {
            "rows": n, "rows_aligned": int((spans > 0).sum()), "spans_per_row_mean": float(spans.mean()),
            "spans_per_row_min": int(spans.min()), "student_targets_per_row": S,
            "teacher_tokens_per_row_mean": float((tb["targets"] != -100).sum(1).mean()),
            "teacher_rows_start_with_bos": bool((tb["input_ids"][:, 0] == tok.base.bos_id).all())}
        print(name, out["texts"][name])
    atomic_write(args.out, json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
