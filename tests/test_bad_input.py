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
log linked out of the folder, a user's ``OUT.json`` given to ``prepare`` or ``results.md`` to
``compare``; and :data:`SAYS` pins what a case's line must say (and :data:`NEVER`, what not).
"""

from __future__ import annotations

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
    (root / "my_results").mkdir()
    (root / "my_results" / "results.md").write_text("a user's results table")
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
    "eval truncated base": ["eval", "--base", "base_trunc", "--text", "train.txt", "--device", "cpu"],
    "eval non-UTF-8 text": ["eval", "--base", "base", "--adapter", "adapter", "--text", "bad.txt", "--device", "cpu"],
    # import
    "import no such file": ["import", "nothing.gguf", "--out", "new"],
    "import not a GGUF": ["import", "train.txt", "--out", "new"],
    "import --out is a user folder": ["import", "train.txt", "--out", "mine"],
    "import --out is a file": ["import", "train.txt", "--out", "afile"],
    # merge
    "merge --out is a user folder": ["merge", "--base", "base", "--adapter", "adapter", "--out", "mine"],
    "merge --force on a user folder": ["merge", "--base", "base", "--adapter", "adapter", "--out", "mine", "--force"],
    "merge --out is a file": ["merge", "--base", "base", "--adapter", "adapter", "--out", "afile"],
    "merge --out unwritable": ["merge", "--base", "base", "--adapter", "adapter", "--out", "/proc/hypertok-m"],
    "merge adapter without weights": ["merge", "--base", "base", "--adapter", "ad_noweights", "--out", "new"],
    "merge crafted recipe": ["merge", "--base", "base", "--adapter", "ad_crafted", "--out", "new"],
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
    "encode an unknown option": ["unrecognized arguments: --bogus", "(see hypertok encode --help)"],
    "adapt --out is a merged folder": ["merged is a model folder `hypertok merge` wrote", "Choose another --out"],
    "adapt --out is a user folder with data/": ["user_data is a folder with other files"],
    "adapt log linked out of --out": ["linked/train_log.jsonl: is a symbolic link", "never through a link"],
    "adapt --resume without a checkpoint": ["--resume: new holds no checkpoint", "run without --resume"],
    "prepare --out holds prepared data": ["prep.bin and prep.json: already there", "pass --force"],
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
