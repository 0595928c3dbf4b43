"""Write the fixed mixed sample the issue-12 comparison trains every tokenizer on.

Half ruslit/train.txt, half the five modern train shards (read from .xz, streamed),
each taken as evenly spaced blocks of 100 consecutive lines, so every source and every
part of each file is represented. The sample goes to the cache (corpora never enter
the repository); its SHA-256 and character counts are written to ``mix.json`` here.

    python experiments/compression/make_mix.py            # 12 M + 12 M characters
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import os
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPORA = Path(os.environ.get("HYPERTOK_CORPORA", HERE.parents[2] / "shared" / "corpora"))
BLOCK = 100


def lines_of(path: Path):
    opener = lzma.open if path.suffix == ".xz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        yield from f


def sample(paths: list[Path], target_chars: int) -> tuple[list[str], int]:
    total = sum(len(line) for p in paths for line in lines_of(p))
    keep_every = max(1, round(total / target_chars))
    out, n = [], 0
    for p in paths:
        for i, line in enumerate(lines_of(p)):
            if (i // BLOCK) % keep_every == 0:
                out.append(line if line.endswith("\n") else line + "\n")
                n += len(line)
    return out, total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chars", type=float, default=12e6, help="characters from each half")
    ap.add_argument("--out", default=str(Path.home() / ".cache" / "hypertok" / "mix" / "mix-24M.txt"))
    args = ap.parse_args()
    halves = {
        "ruslit": [CORPORA / "ruslit" / "train.txt"],
        "modern": sorted((CORPORA / "modern").glob("ru-modern-train-*.txt.xz")),
    }
    text, info = [], {}
    for name, paths in halves.items():
        lines, total = sample(paths, int(args.chars))
        info[name] = {"files": [p.name for p in paths], "source_chars": total, "sample_chars": sum(map(len, lines))}
        text += lines
    data = "".join(text).encode("utf-8")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    info.update(path=str(out), sha256=hashlib.sha256(data).hexdigest(), chars=sum(map(len, text)), bytes=len(data),
                block_lines=BLOCK)
    (HERE / "mix.json").write_text(json.dumps(info, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(info, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
