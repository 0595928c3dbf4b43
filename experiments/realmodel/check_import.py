"""Is `hypertok import` exact? The imported Gemma 3 270M against transformers' own GGUF loader (CPU).

1. **ids**: the rebuilt ``tokenizer.model`` (sentencepiece, and HyperTok's lossless reading of
   it, the one ``hypertok adapt``/``eval`` use) against the tokenizer transformers converts from
   the GGUF, on every line of ruslit dev and modern dev. transformers >= 5.25 converts this file
   correctly (5.17 does not: see the issue); the script records the version it ran with.
2. **logits**: the imported float32 folder against ``AutoModelForCausalLM.from_pretrained(...,
   gguf_file=...)`` on a few lines: the largest absolute difference.

    python experiments/realmodel/check_import.py --gguf gemma.gguf --out experiments/realmodel/check_import.json

Writes JSON (``--out``); the imported folder goes to ``--work`` (default .data/realmodel/gemma-f32).
"""

from __future__ import annotations

import argparse
import json
import lzma
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

CORPORA = Path(__file__).resolve().parents[3] / "shared" / "corpora"


def dev_lines(name: str) -> list[str]:
    if name == "ruslit":
        text = (CORPORA / "ruslit" / "dev.txt").read_text(encoding="utf-8")
    else:
        with lzma.open(CORPORA / "modern" / "ru-modern-dev.txt.xz", "rt", encoding="utf-8") as f:
            text = f.read()
    return [line for line in text.split("\n") if line]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gguf", required=True, help="the Gemma 3 270M GGUF file")
    ap.add_argument("--work", default=".data/realmodel/gemma-f32", help="imported float32 folder (made if absent)")
    ap.add_argument("--out", default="experiments/realmodel/check_import.json")
    ap.add_argument("--logit-lines", type=int, default=8, help="dev lines whose logits are compared")
    args = ap.parse_args()

    import sentencepiece as spm
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hypertok.adapt.gguf_import import import_gguf
    from hypertok.registry import find_base

    work = Path(args.work)
    if not (work / "hypertok_import.json").is_file():
        import_gguf(args.gguf, work, dtype="float32")
    gguf_dir, gguf_name = str(Path(args.gguf).parent), Path(args.gguf).name
    ref = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_name)
    sp = spm.SentencePieceProcessor(model_file=str(work / "tokenizer.model"))
    lossless = find_base(work)
    res = {"transformers": transformers.__version__, "ids": {}, "source": json.loads((work / "hypertok_import.json").read_text())}
    for name in ("ruslit", "modern"):
        lines = dev_lines(name)
        t0 = time.time()
        want = [ref(line, add_special_tokens=False)["input_ids"] for line in lines]
        got = sp.encode(lines)
        got_lossless = lossless.encode_batch(lines)
        diff = [i for i, (a, b) in enumerate(zip(want, got)) if a != b]
        diff_l = [i for i, (a, b) in enumerate(zip(want, got_lossless)) if a != b]
        res["ids"][name] = {"lines": len(lines), "tokens": sum(map(len, want)), "differ_sentencepiece": len(diff),
                            "differ_hypertok_lossless": len(diff_l), "first_differences": [
                                {"line": i, "text": lines[i][:120], "reference": want[i][:30], "imported": got[i][:30]}
                                for i in (diff or diff_l)[:5]], "seconds": round(time.time() - t0, 1)}
        print(name, res["ids"][name]["lines"], "lines,", len(diff), "/", len(diff_l), "differ", flush=True)
    bos = ref.bos_token_id
    res["reference_adds_bos"] = ref("привет")["input_ids"][:1] == [bos]
    ours = AutoModelForCausalLM.from_pretrained(work, dtype=torch.float32).eval()
    theirs = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_name, dtype=torch.float32).eval()
    worst = []
    with torch.no_grad():
        for line in dev_lines("ruslit")[:args.logit_lines]:
            x = torch.tensor([[bos] + sp.encode(line)[:256]])
            a, b = ours(x).logits, theirs(x).logits
            worst.append(float((a - b).abs().max()))
    res["logits_max_abs_diff"] = max(worst)
    res["logits_max_abs_diff_per_line"] = worst
    Path(args.out).write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps({k: res[k] for k in ("ids", "logits_max_abs_diff")}, ensure_ascii=False)[:1500])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
