"""The bad-input suite (issue 13): every command on the audit's classes of bad input.

Each case runs ``hypertok.cli.main`` in-process (fast: no interpreter start) and asserts
what a user must always get: exit code 2, exactly one line on stderr that names the
problem, no traceback, and the sandbox unchanged: nothing left behind in ``--out`` and
nothing outside it touched (every file's path, size and mtime compared before and after;
folder mtimes are not compared, since the ``--out`` check makes and removes one hidden
probe folder). Inputs are tiny, and every command checks ``--out`` and its cheap
arguments before any heavy work, so the suite takes seconds.

Classes covered: a missing, file-shaped, foreign, unwritable or empty ``--out``; missing,
non-UTF-8 and whitespace-only text, on a file and on standard input; encodings that cannot
read lines; sizes and counts out of range (``--vocab-size``, ``--seq-len 0``,
``--prompts 0``, ``--at-tokens -5``, ``--lr nan``); ``--device bogus`` and ``cuda`` on a
CPU build; damaged or crafted tokenizer directories, base checkpoints (corrupt
``config.json``, truncated safetensors) and adapters (no weights, corrupt config,
truncated weights, a recipe with ``model_vocab_size: 1e11``); ids that are not integers,
out of range, or spell a lone surrogate for stdout. Issue 24 adds what must never be lost:
a folder ``hypertok merge`` wrote or a user's folder with a ``data/`` given to ``adapt``, a
log linked out of the folder, a user's ``OUT.json`` given to ``prepare``, ``results.md`` to
``compare`` or ``summary.md`` to ``vram``; the audit's traceback causes (a crafted ``vocab.jsonl``
or recipe, packed data of the wrong shape or ids, a base with a string config field, pickled
weights only or a list as ``generation_config.json``, ``--max-shard-size abc``, ``--lora-dropout``,
``--seed``) and what was accepted but wrong (``--min-pmi nan``, ``kind: "bogus"``, a crafted LoRA rank); and :data:`SAYS` pins what a case's line must say (and :data:`NEVER`, what not).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sys
import warnings
from pathlib import Path

import pytest

from hypertok.cli import main

from .conftest import TINY_TEXT


def _snapshot(root: Path) -> dict:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            out[str(p.relative_to(root))] = None if p.is_dir() else (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def world(tiny_tok, tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_input")
    shutil.copytree(tiny_tok.path, root / "tok")
    (root / "text.txt").write_text(TINY_TEXT * 5, encoding="utf-8")
    (root / "bad.txt").write_bytes("да\n".encode() + b"\xff\xfe\n")
    (root / "blank.txt").write_text(" \n\n\t\n")
    (root / "afile").write_text("a user's file")
    (root / "mine").mkdir()
    (root / "mine" / "notes.txt").write_text("a user's folder")
    crafted = root / "crafted_tok"
    shutil.copytree(tiny_tok.path, crafted)
    cfg = json.loads((crafted / "config.json").read_text())
    cfg["files"]["../../../../etc/hostname"] = "0" * 64
    (crafted / "config.json").write_text(json.dumps(cfg))
    (root / "ids.txt").write_text("5 6 x 7")
    (root / "symbols_bad.txt").write_text("\u4e00")
    (root / "ids_range.txt").write_text("5 6 999999")
    (root / "ids_surrogate.txt").write_text(" ".join(map(str, tiny_tok.encode("a\ud800"))))
    # issue 24: vocab.jsonl crafted with its sha256 in config.json made to match (so the line check is what refuses)
    lines = (root / "tok" / "vocab.jsonl").read_bytes().split(b"\n")
    entry = json.loads(lines[300])
    for name, new in {"vocab_header_list": {0: b"[]"}, "vocab_bad_utf8": {300: lines[300][:-2] + b"\xff\"}"},
                      "vocab_str_score": {300: json.dumps({**entry, "score": "high"}).encode()},
                      "vocab_bogus_kind": {300: json.dumps({**entry, "kind": "bogus"}).encode()}}.items():
        shutil.copytree(tiny_tok.path, root / name)
        (root / name / "vocab.jsonl").write_bytes(b"\n".join(new.get(i, x) for i, x in enumerate(lines)))
        cfg = json.loads((root / name / "config.json").read_text())
        cfg["files"]["vocab.jsonl"] = hashlib.sha256((root / name / "vocab.jsonl").read_bytes()).hexdigest()
        (root / name / "config.json").write_text(json.dumps(cfg))
    (root / "my_results").mkdir()
    (root / "my_results" / "results.md").write_text("a user's results table")
    (root / "my_results" / "summary.md").write_text("a user's summary")
    return root


@pytest.fixture(scope="module")
def models(world):
    """A tiny base, a trained adapter, and damaged copies of both (skipped without torch)."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("peft")
    spm = pytest.importorskip("sentencepiece")
    import torch

    from hypertok import BuildConfig, build
    from hypertok.adapt.train import adapt

    from .adapt.tiny import adapt_config, make_base, make_text

    torch.set_num_threads(1)
    root = world.parent / (world.name + "_models")
    root.mkdir()
    train = root / "train.txt"
    train.write_text(make_text(120, 0))
    spm.SentencePieceTrainer.train(
        input=str(train), model_prefix=str(root / "sp"), vocab_size=400, model_type="bpe", byte_fallback=True,
        character_coverage=1.0, unk_id=0, bos_id=1, eos_id=2, pad_id=-1, minloglevel=2)
    base = make_base(root / "base", root / "sp.model", 0)
    with warnings.catch_warnings():  # a tiny corpus may support fewer tokens than asked: not what is tested here
        warnings.simplefilter("ignore", UserWarning)
        build([str(train)], root / "tok", BuildConfig(vocab_size=640, mode="word"))
    env = {"base": base, "tok": root / "tok", "train": train, "dev": train}
    adapt(adapt_config(env, root / "adapter", steps=1, eval=None, save_every=0, seq_len=32, batch_size=2))
    # damaged copies, inside the sandbox
    for name in ("base_badcfg", "base_trunc"):
        shutil.copytree(base, world / name)
    (world / "base_badcfg" / "config.json").write_text("{not json")
    w = world / "base_trunc" / "model.safetensors"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    shutil.copytree(base, world / "base")
    shutil.copytree(root / "tok", world / "mtok")
    (world / "train.txt").write_text(train.read_text())
    for name in ("adapter", "ad_noweights", "ad_badcfg", "ad_trunc", "ad_crafted", "adapters/ru32k"):
        shutil.copytree(root / "adapter", world / name)
    (world / "ad_noweights" / "adapter_model.safetensors").unlink()
    (world / "adapters" / "ru32k" / "adapter_model.safetensors").unlink()
    (world / "ad_badcfg" / "adapter_config.json").write_text("{")
    w = world / "ad_trunc" / "adapter_model.safetensors"
    w.write_bytes(w.read_bytes()[:100])
    r = json.loads((world / "ad_crafted" / "hypertok_adapt.json").read_text())
    r["model_vocab_size"] = 1e11
    (world / "ad_crafted" / "hypertok_adapt.json").write_text(json.dumps(r))
    shutil.copytree(root / "adapter", world / "ad_rank")  # issue 24: a LoRA rank peft would allocate, recipe re-hashed
    c = json.loads((world / "ad_rank" / "adapter_config.json").read_text())
    (world / "ad_rank" / "adapter_config.json").write_text(json.dumps({**c, "r": 10 ** 6}))
    r = json.loads((world / "ad_rank" / "hypertok_adapt.json").read_text())
    r["files"]["adapter_config.json"] = hashlib.sha256((world / "ad_rank" / "adapter_config.json").read_bytes()).hexdigest()
    (world / "ad_rank" / "hypertok_adapt.json").write_text(json.dumps(r))
    # issue 24: a merged folder (a model config beside a recipe), a user's folder with data/, a log linked out
    shutil.copytree(base, world / "merged")
    shutil.copy(root / "adapter" / "hypertok_adapt.json", world / "merged")
    for name in ("user_data/data", "linked"):
        (world / name).mkdir(parents=True)
    (world / "user_data" / "README.md").write_text("a user's readme")
    (world / "user_data" / "data" / "train.json").write_text("{}")
    shutil.copytree(root / "adapter", world / "linked", dirs_exist_ok=True)
    (world / "linked" / "train_log.jsonl").unlink(missing_ok=True)
    (world / "linked" / "train_log.jsonl").symlink_to("../afile")
    from hypertok.adapt.data import PACKED_FORMAT

    # issue 24 item 10: the audit's traceback causes on the model side
    for name in ("ad_recipe_list", "ad_recipe_bytes"):
        shutil.copytree(root / "adapter", world / name)
    (world / "ad_recipe_list" / "hypertok_adapt.json").write_text("[1, 2]")
    (world / "ad_recipe_bytes" / "hypertok_adapt.json").write_bytes(b'{"format": "\xff"}')
    for name in ("base_str_int", "base_pickled", "base_gen_list"):
        shutil.copytree(base, world / name)
    c = json.loads((world / "base_str_int" / "config.json").read_text())
    (world / "base_str_int" / "config.json").write_text(json.dumps({**c, "hidden_size": str(c["hidden_size"])}))
    (world / "base_pickled" / "model.safetensors").rename(world / "base_pickled" / "pytorch_model.bin")
    (world / "base_gen_list" / "generation_config.json").write_text("[1, 2]")
    packed = root / "adapter" / "data" / "train"
    meta = json.loads(packed.with_suffix(".json").read_text())
    for name, m in (("packed_list", [meta]), ("packed_str", {**meta, "tokens": "many"}), ("packed_far", meta)):
        (world / f"{name}.json").write_text(json.dumps(m))
        shutil.copy(packed.with_suffix(".bin"), world / f"{name}.bin")
    with open(world / "packed_far.bin", "r+b") as f:  # one id past the model's rows
        f.seek(20)
        f.write((10 ** 6).to_bytes(4, "little"))
    (world / "prep.bin").write_bytes(b"\0" * 8)
    (world / "prep.json").write_text(json.dumps({"format": PACKED_FORMAT}))
    (world / "user_pair.json").write_text("{}")
    return world


TOK_CASES = {
    # build
    "build --out is a file": ["build", "--corpus", "text.txt", "--out", "afile", "--vocab-size", "900"],
    "build --out under a file": ["build", "--corpus", "text.txt", "--out", "afile/tok", "--vocab-size", "900"],
    "build --out unwritable": ["build", "--corpus", "text.txt", "--out", "/proc/hypertok-tok", "--vocab-size", "900"],
    "build --out empty": ["build", "--corpus", "text.txt", "--out", "", "--vocab-size", "900"],
    "build --out exists": ["build", "--corpus", "text.txt", "--out", "tok", "--vocab-size", "900"],
    "build --force on a user folder": ["build", "--corpus", "text.txt", "--out", "mine", "--force"],
    "build --force on a user file": ["build", "--corpus", "text.txt", "--out", "afile", "--force"],
    "build missing corpus": ["build", "--corpus", "nope.txt", "--out", "new"],
    "build non-UTF-8 corpus": ["build", "--corpus", "bad.txt", "--out", "new", "--vocab-size", "900"],
    "build whitespace corpus": ["build", "--corpus", "blank.txt", "--out", "new", "--vocab-size", "900"],
    "build --encoding rot13": ["build", "--corpus", "text.txt", "--out", "new", "--encoding", "rot13"],
    "build --encoding base64": ["build", "--corpus", "text.txt", "--out", "new", "--encoding", "base64"],
    "build --encoding utf-16": ["build", "--corpus", "text.txt", "--out", "new", "--encoding", "utf-16"],
    "build --vocab-size tiny": ["build", "--corpus", "text.txt", "--out", "new", "--vocab-size", "10"],
    "build --vocab-size huge": ["build", "--corpus", "text.txt", "--out", "new", "--vocab-size", "1000000000000"],
    "build --vocab-size abc": ["build", "--corpus", "text.txt", "--out", "new", "--vocab-size", "abc"],
    # encode / decode / inspect
    "encode missing dir": ["encode", "nope", "text.txt"],
    "encode user folder": ["encode", "mine", "text.txt"],
    "encode crafted dir": ["encode", "crafted_tok", "text.txt"],
    "encode missing file": ["encode", "tok", "nope.txt"],
    "encode non-UTF-8 file": ["encode", "tok", "bad.txt"],
    "encode non-UTF-8 stdin": ["encode", "tok"],
    "decode a word": ["decode", "tok", "ids.txt"],
    "decode out of range": ["decode", "tok", "ids_range.txt"],
    "decode lone surrogate": ["decode", "tok", "ids_surrogate.txt"],
    "decode symbols not in vocab": ["decode", "tok", "symbols_bad.txt", "--symbols"],
    "inspect crafted dir": ["inspect", "crafted_tok", "стол"],
    "encode vocab.jsonl header is []": ["encode", "vocab_header_list", "text.txt"],
    "encode vocab.jsonl not UTF-8": ["encode", "vocab_bad_utf8", "text.txt"],
    "encode vocab.jsonl string score": ["encode", "vocab_str_score", "text.txt"],
    "inspect vocab.jsonl kind bogus": ["inspect", "vocab_bogus_kind", "стол"],
    "build --min-pmi nan": ["build", "--corpus", "text.txt", "--out", "new", "--min-pmi", "nan"],
    # compare / vram
    "compare --out is a file": ["compare", "--tokenizer", "tok", "--text", "text.txt", "--baselines", "bytes",
                                "--out", "afile"],
    "compare --out unwritable": ["compare", "--tokenizer", "tok", "--text", "text.txt", "--baselines", "bytes",
                                 "--out", "/proc/hypertok-cmp"],
    "compare missing text": ["compare", "--tokenizer", "tok", "--text", "nope.txt", "--baselines", "bytes",
                             "--out", "new"],
    "compare --repeats 0": ["compare", "--tokenizer", "tok", "--text", "text.txt", "--baselines", "bytes",
                            "--repeats", "0", "--out", "new"],
    "vram --out is a file": ["vram", "--tokenizer", "tok", "--text", "text.txt", "--no-measure", "--out", "afile"],
    "vram --at-tokens -5": ["vram", "--tokenizer", "tok", "--text", "text.txt", "--no-measure", "--at-tokens", "-5",
                            "--out", "new"],
    "vram --out holds a user's summary.md": ["vram", "--tokenizer", "tok", "--text", "text.txt", "--no-measure",
                                             "--out", "my_results"],
    "vram --chars abc": ["vram", "--tokenizer", "tok", "--text", "text.txt", "--no-measure", "--chars", "abc",
                         "--out", "new"],
    # issue 24
    "compare --out holds a user's results.md": ["compare", "--tokenizer", "tok", "--text", "text.txt", "--baselines",
                                                "bytes", "--out", "my_results"],
    "encode an unknown option": ["encode", "tok", "--bogus", "text.txt"],
}

MODEL_CASES = {
    # prepare
    "prepare --out under a file": ["prepare", "--base", "base", "--tokenizer", "mtok", "--text", "train.txt",
                                   "--out", "afile/data"],
    "prepare --out unwritable": ["prepare", "--base", "base", "--tokenizer", "mtok", "--text", "train.txt",
                                 "--out", "/proc/hypertok-data"],
    "prepare --out is a folder": ["prepare", "--base", "base", "--tokenizer", "mtok", "--text", "train.txt",
                                  "--out", "mine/notes.txt/x"],
    "prepare non-UTF-8 text": ["prepare", "--base", "base", "--tokenizer", "mtok", "--text", "bad.txt",
                               "--out", "new/data"],
    "prepare whitespace text": ["prepare", "--base", "base", "--tokenizer", "mtok", "--text", "blank.txt",
                                "--out", "new/data"],
    "prepare corrupt base config": ["prepare", "--base", "base_badcfg", "--tokenizer", "mtok", "--text",
                                    "train.txt", "--out", "new/data"],
    "prepare tokenizer is a user folder": ["prepare", "--base", "base", "--tokenizer", "mine", "--text",
                                           "train.txt", "--out", "new/data"],
    # adapt
    "adapt --out is a file": ["adapt", "--base", "base", "--tokenizer", "mtok", "--train", "train.txt",
                              "--out", "afile", "--device", "cpu"],
    "adapt --out is a user folder": ["adapt", "--base", "base", "--tokenizer", "mtok", "--train", "train.txt",
                                     "--out", "mine", "--device", "cpu"],
    "adapt --out unwritable": ["adapt", "--base", "base", "--tokenizer", "mtok", "--train", "train.txt",
                               "--out", "/proc/hypertok-ad", "--device", "cpu"],
    "adapt --lr nan": ["adapt", "--base", "base", "--tokenizer", "mtok", "--train", "train.txt", "--out", "new",
                       "--lr", "nan"],
    "adapt --steps 0": ["adapt", "--base", "base", "--tokenizer", "mtok", "--train", "train.txt", "--out", "new",
                        "--steps", "0"],
    "adapt --time-budget nan": ["adapt", "--base", "base", "--tokenizer", "mtok", "--train", "train.txt", "--out",
                                "new", "--time-budget", "nan"],
    "adapt --device bogus": ["adapt", "--base", "base", "--tokenizer", "mtok", "--train", "train.txt", "--out",
                             "new", "--device", "bogus"],
    "adapt --device cuda:99": ["adapt", "--base", "base", "--tokenizer", "mtok", "--train", "train.txt", "--out",
                               "new", "--device", "cuda:99"],
    "adapt non-UTF-8 train": ["adapt", "--base", "base", "--tokenizer", "mtok", "--train", "bad.txt", "--out",
                              "new", "--device", "cpu"],
    "adapt truncated base weights": ["adapt", "--base", "base_trunc", "--tokenizer", "mtok", "--train",
                                     "train.txt", "--out", "new", "--device", "cpu"],
    "adapt corrupt base config": ["adapt", "--base", "base_badcfg", "--tokenizer", "mtok", "--train",
                                  "train.txt", "--out", "new", "--device", "cpu"],
    # eval
    "eval --seq-len 0": ["eval", "--base", "base", "--adapter", "adapter", "--text", "train.txt", "--seq-len", "0"],
    "eval --seq-len 99999999": ["eval", "--base", "base", "--adapter", "adapter", "--text", "train.txt", "--seq-len",
                                "99999999"],
    "eval --gen-tokens 100000000": ["eval", "--base", "base", "--text", "train.txt", "--gen-tokens", "100000000"],
    "eval --context-chars 10000000": ["eval", "--base", "base", "--text", "train.txt", "--context-chars", "10000000"],
    "eval --prompts 0": ["eval", "--base", "base", "--adapter", "adapter", "--text", "train.txt", "--prompts", "0"],
    "eval --device bogus": ["eval", "--base", "base", "--text", "train.txt", "--device", "bogus"],
    "eval adapter without weights": ["eval", "--base", "base", "--adapter", "ad_noweights", "--text", "train.txt",
                                     "--device", "cpu"],
    "eval adapter named like a Hub repo": ["eval", "--base", "base", "--adapter", "adapters/ru32k", "--text",
                                           "train.txt", "--device", "cpu"],
    "eval corrupt adapter config": ["eval", "--base", "base", "--adapter", "ad_badcfg", "--text", "train.txt",
                                    "--device", "cpu"],
    "eval truncated adapter weights": ["eval", "--base", "base", "--adapter", "ad_trunc", "--text", "train.txt",
                                       "--device", "cpu"],
    "eval crafted recipe": ["eval", "--base", "base", "--adapter", "ad_crafted", "--text", "train.txt",
                            "--device", "cpu"],
    "eval adapter of a crafted rank": ["eval", "--base", "base", "--adapter", "ad_rank", "--text", "train.txt",
                                       "--device", "cpu"],
    "merge adapter of a crafted rank": ["merge", "--base", "base", "--adapter", "ad_rank", "--out", "new"],
    "eval truncated base": ["eval", "--base", "base_trunc", "--text", "train.txt", "--device", "cpu"],
    "eval non-UTF-8 text": ["eval", "--base", "base", "--adapter", "adapter", "--text", "bad.txt", "--device", "cpu"],
    # import
    "import no such file": ["import", "nothing.gguf", "--out", "new"],
    "import not a GGUF": ["import", "train.txt", "--out", "new"],
    "import --out is a user folder": ["import", "train.txt", "--out", "mine"],
    "import --out is a file": ["import", "train.txt", "--out", "afile"],
    # export-gguf
    "export-gguf a folder without config.json": ["export-gguf", "mine", "new.gguf"],
    "export-gguf OUT exists": ["export-gguf", "base", "afile"],
    "export-gguf --force on a user's file": ["export-gguf", "base", "afile", "--force"],
    "export-gguf OUT unwritable": ["export-gguf", "base", "/proc/hypertok.gguf"],
    "export-gguf --quant q3": ["export-gguf", "base", "new.gguf", "--quant", "q3"],
    "export-gguf corrupt config": ["export-gguf", "base_badcfg", "new.gguf"],
    "export-gguf truncated weights": ["export-gguf", "base_trunc", "new.gguf"],
    "export-gguf pickled weights only": ["export-gguf", "base_pickled", "new.gguf"],
    # merge
    "merge --out is a user folder": ["merge", "--base", "base", "--adapter", "adapter", "--out", "mine"],
    "merge --force on a user folder": ["merge", "--base", "base", "--adapter", "adapter", "--out", "mine", "--force"],
    "merge --out is a file": ["merge", "--base", "base", "--adapter", "adapter", "--out", "afile"],
    "merge --out unwritable": ["merge", "--base", "base", "--adapter", "adapter", "--out", "/proc/hypertok-m"],
    "merge adapter without weights": ["merge", "--base", "base", "--adapter", "ad_noweights", "--out", "new"],
    "merge crafted recipe": ["merge", "--base", "base", "--adapter", "ad_crafted", "--out", "new"],
    # issue 24 item 10: one line for each of the audit's traceback causes
    "eval recipe is a list": ["eval", "--base", "base", "--adapter", "ad_recipe_list", "--text", "train.txt",
                              "--device", "cpu"],
    "merge recipe not UTF-8": ["merge", "--base", "base", "--adapter", "ad_recipe_bytes", "--out", "new"],
    "eval base config with a string for an int": ["eval", "--base", "base_str_int", "--text", "train.txt",
                                                  "--device", "cpu"],
    "adapt base config with a string for an int": ["adapt", "--base", "base_str_int", "--tokenizer", "mtok",
                                                   "--train", "train.txt", "--out", "new", "--device", "cpu"],
    "adapt base with pickled weights only": ["adapt", "--base", "base_pickled", "--tokenizer", "mtok", "--train",
                                             "train.txt", "--out", "new", "--device", "cpu"],
    "eval base with pickled weights only": ["eval", "--base", "base_pickled", "--text", "train.txt", "--device", "cpu"],
    "adapt generation_config.json a list": ["adapt", "--base", "base_gen_list", "--tokenizer", "mtok", "--train",
                                            "train.txt", "--out", "new", "--device", "cpu"],
    "adapt packed .json a list": ["adapt", "--base", "base", "--tokenizer", "mtok", "--train", "packed_list.bin",
                                  "--out", "new", "--device", "cpu"],
    "adapt packed .json a string count": ["adapt", "--base", "base", "--tokenizer", "mtok", "--train",
                                          "packed_str.bin", "--out", "new", "--device", "cpu"],
    "adapt packed ids past the vocabulary": ["adapt", "--base", "base", "--tokenizer", "mtok", "--train",
                                             "packed_far.bin", "--out", "new", "--device", "cpu"],
    "merge --max-shard-size abc": ["merge", "--base", "base", "--adapter", "adapter", "--out", "new",
                                   "--max-shard-size", "abc"],
    "adapt --lora-dropout 2": ["adapt", "--base", "base", "--tokenizer", "mtok", "--train", "train.txt", "--out", "new", "--device", "cpu", "--lora-dropout", "2"],
    "adapt --lora-dropout nan": ["adapt", "--base", "base", "--tokenizer", "mtok", "--train", "train.txt", "--out", "new", "--device", "cpu", "--lora-dropout", "nan"],
    "adapt --seed -1": ["adapt", "--base", "base", "--tokenizer", "mtok", "--train", "train.txt", "--out", "new", "--device", "cpu", "--seed", "-1"],
    "adapt --seed 1e20": ["adapt", "--base", "base", "--tokenizer", "mtok", "--train", "train.txt", "--out", "new", "--device", "cpu", "--seed", "100000000000000000000"],
    # issue 24: nothing lost
    "adapt --out is a merged folder": ["adapt", "--base", "base", "--tokenizer", "mtok", "--train", "train.txt",
                                       "--out", "merged", "--device", "cpu"],
    "adapt --out is a user folder with data/": ["adapt", "--base", "base", "--tokenizer", "mtok", "--train",
                                                "train.txt", "--out", "user_data", "--device", "cpu"],
    "adapt log linked out of --out": ["adapt", "--base", "base", "--tokenizer", "mtok", "--train", "train.txt",
                                      "--out", "linked", "--device", "cpu"],
    "adapt --resume without a checkpoint": ["adapt", "--base", "base", "--tokenizer", "mtok", "--train",
                                            "train.txt", "--out", "new", "--device", "cpu", "--resume"],
    "prepare --out holds prepared data": ["prepare", "--base", "base", "--tokenizer", "mtok", "--text", "train.txt",
                                          "--out", "prep"],
    "prepare --force on a user's file": ["prepare", "--base", "base", "--tokenizer", "mtok", "--text", "train.txt",
                                         "--out", "user_pair", "--force"],
}

# What a case's one line must say (issue 24), and what it must not.
SAYS = {
    "build non-UTF-8 corpus": ["not valid utf-8 at line 2", "pass --encoding"],
    "encode non-UTF-8 file": ["not valid utf-8 at line 2", "convert the file to UTF-8"],
    "encode non-UTF-8 stdin": ["standard input: not valid utf-8", "convert the file to UTF-8"],
    "prepare non-UTF-8 text": ["not valid utf-8", "convert the file to UTF-8"],
    "adapt non-UTF-8 train": ["not valid utf-8", "convert the file to UTF-8"],
    "eval non-UTF-8 text": ["not valid utf-8", "convert the file to UTF-8"],
    "compare --out holds a user's results.md": ["holds results.md", "`hypertok compare` did not write"],
    "vram --out holds a user's summary.md": ["holds summary.md", "`hypertok vram` did not write"],
    "eval adapter of a crafted rank": ["declares LoRA rank r = 1000000 but the weights have rank"],
    "merge adapter of a crafted rank": ["declares LoRA rank r = 1000000 but the weights have rank"],
    "eval --seq-len 99999999": ["--seq-len 99999999 is more than 131072 tokens", "longest context", "at most 131072"],
    "eval --gen-tokens 100000000": ["--gen-tokens 100000000 is more than 131072 tokens"],
    "eval --context-chars 10000000": ["--context-chars 10000000 is more than 131072 characters"],
    "encode vocab.jsonl header is []": ["vocab.jsonl: vocabulary version None is not 1 (line 1 must be the header"],
    "encode vocab.jsonl not UTF-8": ["vocab.jsonl: line 301 is corrupt ('utf-8' codec can't decode byte 0xff"],
    "encode vocab.jsonl string score": ["vocab.jsonl: line 301 is corrupt (score 'high' is a str)"],
    "inspect vocab.jsonl kind bogus": ["vocab.jsonl: line 301 is corrupt (kind 'bogus' is not one of special,"],
    "build --min-pmi nan": ["min_pmi must be a finite number (nats), got nan"],
    "eval recipe is a list": ["hypertok_adapt.json: a JSON list, not a recipe object"],
    "merge recipe not UTF-8": ["hypertok_adapt.json: unreadable ('utf-8' codec can't decode byte 0xff"],
    "eval base config with a string for an int": ["transformers cannot load this checkpoint",
                                                  "Field 'hidden_size' expected int, got str"],
    "adapt base config with a string for an int": ["Field 'hidden_size' expected int, got str"],
    "adapt base with pickled weights only": ["no *.safetensors weights (pytorch_model.bin is pickled weights, which "
                                             "HyperTok never loads"],
    "eval base with pickled weights only": ["no *.safetensors weights (pytorch_model.bin"],
    "adapt generation_config.json a list": ["transformers cannot load this checkpoint (TypeError"],
    "adapt packed .json a list": ["packed_list.json: not 'hypertok-packed' version 1"],
    "adapt packed .json a string count": ["packed_str.json: tokens of the wrong type"],
    "adapt packed ids past the vocabulary": ["packed_far.bin: holds id 1000000, past the"],
    "merge --max-shard-size abc": ["--max-shard-size 'abc': not a size", "give e.g. 5GB"],
    "adapt --lora-dropout 2": ["--lora-dropout must be a probability from 0 up to (not including) 1, got 2.0"],
    "adapt --lora-dropout nan": ["--lora-dropout must be a probability from 0 up to (not including) 1, got nan"],
    "adapt --seed -1": ["--seed must be an integer from 0 to 4294967295, got -1"],
    "adapt --seed 1e20": ["--seed must be an integer from 0 to 4294967295"],
    "encode an unknown option": ["unrecognized arguments: --bogus", "(see hypertok encode --help)"],
    "adapt --out is a merged folder": ["merged is a model folder `hypertok merge` wrote", "Choose another --out"],
    "adapt --out is a user folder with data/": ["user_data is a folder with other files"],
    "adapt log linked out of --out": ["linked/train_log.jsonl: is a symbolic link", "never through a link"],
    "adapt --resume without a checkpoint": ["--resume: new holds no checkpoint", "run without --resume"],
    "prepare --out holds prepared data": ["prep.bin and prep.json: already there", "pass --force"],
    "export-gguf --force on a user's file": ["afile: already there and not a GGUF file"],
    "export-gguf corrupt config": ["config.json: unreadable as JSON"],
    "export-gguf truncated weights": ["truncated or corrupt safetensors file"],
    "prepare --force on a user's file": ["user_pair.json: already there and not written by `hypertok prepare`"],
}
NEVER = {case: ["--encoding"] for case in ("encode non-UTF-8 file", "encode non-UTF-8 stdin", "prepare non-UTF-8 text",
                                          "adapt non-UTF-8 train", "eval non-UTF-8 text")}


def _run_bad(root: Path, argv: list[str], capsys, monkeypatch) -> str:
    from functools import partialmethod

    import tqdm

    monkeypatch.chdir(root)  # progress bars are not error lines: switch them off (tqdm reads its env once)
    monkeypatch.setattr(tqdm.tqdm, "__init__", partialmethod(tqdm.tqdm.__init__, disable=True))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"ok\n\xff\n"), encoding="utf-8"))
    before = _snapshot(root)
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2, (argv, rc, err)
    assert "Traceback" not in err, err
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith(f"hypertok {argv[0]}: error: "), err
    assert _snapshot(root) == before, "the command left something behind or touched a file"
    case = next((c for c, a in [*TOK_CASES.items(), *MODEL_CASES.items()] if a == argv), None)
    assert all(s in lines[0] for s in SAYS.get(case, ())), (case, lines[0])
    assert not any(s in lines[0] for s in NEVER.get(case, ())), (case, lines[0])
    return lines[0]


@pytest.mark.parametrize("case", list(TOK_CASES))
def test_tokenizer_commands_on_bad_input(world, case, capsys, monkeypatch):
    _run_bad(world, TOK_CASES[case], capsys, monkeypatch)


@pytest.mark.parametrize("case", list(MODEL_CASES))
def test_model_commands_on_bad_input(models, case, capsys, monkeypatch):
    import socket

    def no_network(*a, **k):
        raise AssertionError("a network connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    if case == "adapt --device cuda:99":
        pass  # refused on a CPU build and on a machine with fewer than 100 GPUs alike
    _run_bad(models, MODEL_CASES[case], capsys, monkeypatch)


def test_every_command_is_covered():
    from hypertok.cli import COMMANDS

    covered = {argv[0] for argv in [*TOK_CASES.values(), *MODEL_CASES.values()]}
    assert covered == set(COMMANDS) - {"demo"}
    assert set(SAYS) | set(NEVER) <= set(TOK_CASES) | set(MODEL_CASES)
