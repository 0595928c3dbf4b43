"""Merge the two GPU runs of experiments/vram into experiments/vram/combined/.

Run 1 (results/) measured every inference point and, before its time budget ran out,
the first train points; run 2 (results_train/) measured every train point. The combined
file takes run 1's inference points and run 2's train points, recomputes the break-even
and claim tables, and redraws the plots. Both commands are recorded.

    python experiments/vram/merge.py
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from hypertok.gpu.memory import load_shape  # noqa: E402
from hypertok.gpu.report import break_even_table, claim_table, write_outputs  # noqa: E402


def main() -> int:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    inf = json.loads((HERE / "results" / "results.json").read_text())
    tr = json.loads((HERE / "results_train" / "results.json").read_text())
    assert inf["text"]["sha256"] == tr["text"]["sha256"], "the two runs read different texts"
    assert [t["label"] for t in inf["tokenizers"]] == [t["label"] for t in tr["tokenizers"]]
    out = dict(inf)
    out["points"] = [p for p in inf["points"] if p["mode"] == "inference"] + \
        [p for p in tr["points"] if p["mode"] == "train"]
    out["command"] = f"{inf['command']}  (inference points)  +  {tr['command']}  (train points)"
    out["runs"] = {"inference": {"command": inf["command"], "environment": inf["environment"]},
                   "train": {"command": tr["command"], "environment": tr["environment"]}}
    shape = load_shape(inf["config"]["model"])
    out["break_even"] = break_even_table(out, shape)
    out["claim"] = claim_table(out)
    write_outputs(out, HERE / "combined")
    print((HERE / "combined" / "summary.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
