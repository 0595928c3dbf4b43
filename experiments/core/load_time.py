"""How long ``HyperTok.load`` takes on built directories (issue 24 item 16: about 7 s at 128k).

For each directory: one warm-up load, then ``--repeats`` loads timed in this process (the
median is reported), with ``vocab.jsonl`` read in one call of the JSON reader (the default)
and, in the same run, line by line (the reader's fallback, which was the only path before),
so the ratio compares the two on the same machine at the same moment. Writes ``load_time.json``.

    python experiments/core/load_time.py DIR [DIR ...] --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

HERE = Path(__file__).resolve().parent


def timed_loads(directory: str, repeats: int) -> list[float]:
    from hypertok import HyperTok

    HyperTok.load(directory)  # warm-up: the file cache, imports
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        HyperTok.load(directory)
        out.append(time.perf_counter() - t0)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="example: python experiments/core/load_time.py tok32k tok64k tok128k")
    ap.add_argument("dirs", nargs="+", help="HyperTok directories (hypertok build --out DIR)")
    ap.add_argument("--repeats", type=int, default=5, help="timed loads per directory and reader (default: 5)")
    ap.add_argument("--out", default=str(HERE / "load_time.json"), help="JSON to write (default: beside this script)")
    args = ap.parse_args(argv)
    import hypertok.core.format as fmt
    from hypertok import HyperTok
    from hypertok.files import atomic_write

    runs = []
    for d in args.dirs:
        fast = timed_loads(d, args.repeats)
        one_call = fmt._vocab_objects
        fmt._vocab_objects = lambda body: None  # the line-by-line reader
        try:
            slow = timed_loads(d, args.repeats)
        finally:
            fmt._vocab_objects = one_call
        runs.append({"dir": os.path.basename(os.path.normpath(d)), "tokens": len(HyperTok.load(d)),
                     "load_s_median": statistics.median(fast), "load_s": fast,
                     "line_by_line_s_median": statistics.median(slow), "line_by_line_s": slow,
                     "speedup": statistics.median(slow) / statistics.median(fast)})
        print(f"{runs[-1]['dir']}: {runs[-1]['tokens']} tokens, load {runs[-1]['load_s_median']:.2f} s "
              f"(line by line {runs[-1]['line_by_line_s_median']:.2f} s, x{runs[-1]['speedup']:.2f})")
    out = {"command": "python experiments/core/load_time.py " + " ".join(argv or sys.argv[1:]),
           "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                       "python": platform.python_version()}, "repeats": args.repeats, "runs": runs}
    atomic_write(args.out, json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
