"""Bases beyond SentencePiece at full size (issue 11): Mistral's real Tekken (131 072 rows) next to Mistral v3.

The tests run tiny bases; this script checks the same claims on the real vocabularies, on text:

- the Tekken base: ``tekken_tokenizer_json`` gives the same vocabulary and merges as
  transformers' own converter (``MistralConverter``, Mistral-Nemo's ``tokenizer.json``), and
  :class:`LosslessByteLevel` gives mistral-common's ``Tekkenizer`` ids on every dev line;
- for ``extend`` and ``replace`` over each base: the saved model ``tokenizer.json`` read by
  plain ``AutoTokenizer`` gives the trainer's ids on every dev line (lines holding a control
  string are counted apart: HF reads those as control tokens), ``decode`` gives each line back,
  and the model rows, characters per token and the share of new tokens;
- wall time of planning the transfer and building the model tokenizer (one run, this machine);
- why the model tokenizer's scores are rounded (``SCORE_DECIMALS``): built from unrounded
  doubles and read back from its own JSON, how many scores change and how many dev lines are
  cut otherwise; and the same for the HyperTok vocabulary's own ``tokenizer.json`` (its pipeline
  built from ``vocab.jsonl``, as right after ``hypertok build``, against the file), which this
  issue does not change.

Run (about 5 minutes on 2 cores; the HyperTok vocabulary is built first unless --tokenizer is given):

    python experiments/bases/run.py --out experiments/bases

Writes ``results.json``; README.md in this folder quotes it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

RUSLIT = Path(__file__).resolve().parents[3] / "shared" / "corpora" / "ruslit"
TEKKEN_CONFIG = {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
                 "unk_token": "<unk>", "tokenizer_class": "PreTrainedTokenizerFast"}  # Mistral-Nemo's


def build_vocabulary(out: Path, lines: int, size: int) -> Path:
    from hypertok import BuildConfig, build

    train = out.parent / "train_head.txt"
    with open(RUSLIT / "train.txt", encoding="utf-8") as f, open(train, "w", encoding="utf-8") as g:
        for _, line in zip(range(lines), f):
            g.write(line)
    build([str(train)], out, BuildConfig(vocab_size=size, mode="word"))
    return out


def tekken_checks(tekken_file: Path, base_dir: Path, dev: list[str]) -> dict:
    """Write the full Tekken tokenizer.json into base_dir; compare with transformers' converter and Tekkenizer."""
    from mistral_common.tokens.tokenizers.tekken import Tekkenizer
    from transformers.integrations.mistral.tokenizer import MistralConverter

    from hypertok.registry import find_base
    from hypertok.registry.mistral import tekken_tokenizer_json

    t0 = time.perf_counter()
    ours = tekken_tokenizer_json(tekken_file)
    convert_s = time.perf_counter() - t0
    ours.save(str(base_dir / "tokenizer.json"))
    (base_dir / "tokenizer_config.json").write_text(json.dumps(TEKKEN_CONFIG))
    theirs = json.loads(MistralConverter(vocab_file=str(tekken_file)).converted().to_str())
    mine = json.loads(ours.to_str())
    same_vocab = mine["model"]["vocab"] == theirs["model"]["vocab"]
    same_merges = [tuple(m) for m in mine["model"]["merges"]] == [tuple(m) for m in theirs["model"]["merges"]]
    base = find_base(base_dir)
    ref = Tekkenizer.from_file(tekken_file)
    differ = sum(base.encode(x) != ref.encode(x, bos=False, eos=False) for x in dev)
    lossy = sum(base.decode(base.encode(x)) != x for x in dev)
    return {"rows": len(base), "convert_s": round(convert_s, 1), "same_vocab_as_transformers": same_vocab,
            "same_merges_as_transformers": same_merges, "lines_differing_from_tekkenizer": differ,
            "lines_not_given_back": lossy}


def unrounded_read_back(base_dir: Path, tok_dir: Path, dev: list[str]) -> dict:
    """extend's model tokenizer built from unrounded scores, against the same read back from its JSON."""
    from tokenizers import Tokenizer

    import hypertok.registry.model_tokenizer as mt
    from hypertok.registry import find_base, load_vocabulary, plan_transfer

    base, new = find_base(base_dir), load_vocabulary(tok_dir)
    recipe = plan_transfer(base, new, "extend")
    kept = mt.SCORE_DECIMALS
    mt.SCORE_DECIMALS = 30  # round() then changes nothing
    try:
        built = mt.model_tokenizer(recipe, new, base)
    finally:
        mt.SCORE_DECIMALS = kept
    read = Tokenizer.from_str(built.to_str())
    v0, v1 = (json.loads(t.to_str())["model"]["vocab"] for t in (built, read))
    a = [e.ids for e in built.encode_batch(dev, add_special_tokens=False)]
    b = [e.ids for e in read.encode_batch(dev, add_special_tokens=False)]
    return {"scores": len(v0), "scores_changed_by_one_read": sum(x != y for x, y in zip(v0, v1)),
            "dev_lines_cut_otherwise": sum(x != y for x, y in zip(a, b))}


def hypertok_read_back(tok_dir: Path, dev: list[str]) -> dict:
    """HyperTok's own pipeline built from its entries, against its tokenizer.json read back."""
    from tokenizers import Tokenizer

    from hypertok.core.pipeline import hf_tokenizer
    from hypertok.core.tokenizer import HyperTok

    built = hf_tokenizer(HyperTok.load(tok_dir).entries)
    read = Tokenizer.from_file(str(tok_dir / "tokenizer.json"))
    v0, v1 = (json.loads(t.to_str())["model"]["vocab"] for t in (built, read))
    a = [e.ids for e in built.encode_batch(dev, add_special_tokens=False)]
    b = [e.ids for e in read.encode_batch(dev, add_special_tokens=False)]
    return {"scores": len(v0), "scores_changed_by_one_read": sum(x != y for x, y in zip(v0, v1)),
            "dev_lines_cut_otherwise": sum(x != y for x, y in zip(a, b))}


def transfer(base_dir: Path, tok_dir: Path, strategy: str, dev: list[str], work: Path) -> dict:
    from transformers import AutoTokenizer

    from hypertok.registry import AdaptedTokenizer, find_base, load_vocabulary, plan_transfer

    base = find_base(base_dir)
    new = load_vocabulary(tok_dir)
    t0 = time.perf_counter()
    recipe = plan_transfer(base, new, strategy)
    recipe.tokenizer_config = {"add_bos_token": True, "add_eos_token": False}
    plan_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    tok = AdaptedTokenizer(recipe, new, base)
    build_s = time.perf_counter() - t0
    out = work / f"{base_dir.name}_{strategy}"
    out.mkdir()
    tok.save(out)
    at = AutoTokenizer.from_pretrained(out, local_files_only=True)
    controls = [t.content for t in at.added_tokens_decoder.values() if t.special]
    plain = [x for x in dev if not any(c in x for c in controls)]
    ids = tok.encode_batch(dev)
    keep = set(plain)
    differ = sum(at(x, add_special_tokens=False)["input_ids"] != i for x, i in zip(dev, ids) if x in keep)
    not_back = sum(at.decode(at(x)["input_ids"], skip_special_tokens=True) != x for x in plain)
    lossy = sum(tok.decode(i) != x for x, i in zip(dev, ids))
    chars = sum(map(len, dev))
    n = sum(map(len, ids))
    n_base = sum(map(len, base.encode_batch(dev)))
    tj = json.loads((out / "tokenizer.json").read_text())
    return {"model_rows": recipe.model_vocab_size, "len_autotokenizer": len(at), "new_rows": len(recipe.new_rows),
            "lines": len(dev), "lines_with_control_strings": len(dev) - len(plain),
            "lines_autotokenizer_ids_differ": differ, "lines_autotokenizer_decode_differs": not_back,
            "lines_trainer_not_lossless": lossy, "chars_per_token": round(chars / n, 3),
            "base_chars_per_token": round(chars / n_base, 3),
            "new_token_share": round(sum(tok.is_new_token(t) for i in ids for t in i) / n, 3),
            "plan_s": round(plan_s, 1), "model_tokenizer_s": round(build_s, 1),
            "file": {"model": tj["model"]["type"], "pre_tokenizer": tj["pre_tokenizer"]["type"],
                     "decoder": tj["decoder"]["type"]}}


def main(argv=None) -> int:
    from hypertok.registry import mistral_file

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="experiments/bases", help="folder for results.json")
    p.add_argument("--tokenizer", help="an existing HyperTok folder (default: build one)")
    p.add_argument("--train-lines", type=int, default=80000, help="lines of ruslit train the vocabulary is built on")
    p.add_argument("--vocab-size", type=int, default=32768, help="HyperTok vocabulary size")
    p.add_argument("--dev-lines", type=int, default=3000, help="ruslit dev lines the checks read")
    args = p.parse_args(argv)
    with open(RUSLIT / "dev.txt", encoding="utf-8") as f:
        dev = [line.rstrip("\n") for _, line in zip(range(args.dev_lines), f)]
    dev = [x for x in dev if x]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tok_dir = Path(args.tokenizer) if args.tokenizer else build_vocabulary(work / "tok", args.train_lines,
                                                                              args.vocab_size)
        tekken_dir, v3_dir = work / "tekken", work / "mistral-v3"
        tekken_dir.mkdir(), v3_dir.mkdir()
        (v3_dir / "tokenizer.model").write_bytes(mistral_file("mistral-v3").read_bytes())
        res = {"vocabulary": {"train_lines": args.train_lines, "size": args.vocab_size, "given": args.tokenizer},
               "dev_lines": len(dev), "tekken": tekken_checks(mistral_file("tekken"), tekken_dir, dev),
               "hypertok vocabulary, its own tokenizer.json": hypertok_read_back(tok_dir, dev)}
        for base_dir in (v3_dir, tekken_dir):
            res[f"{base_dir.name}:extend, unrounded scores"] = unrounded_read_back(base_dir, tok_dir, dev)
            for strategy in ("extend", "replace"):
                res[f"{base_dir.name}:{strategy}"] = transfer(base_dir, tok_dir, strategy, dev, work)
                print(base_dir.name, strategy, res[f"{base_dir.name}:{strategy}"], flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(res["tekken"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
