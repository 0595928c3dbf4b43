"""hypertok vram: the whole harness on a tiny Mistral config, on the CPU.

Without CUDA nothing is measured, and the measured-only fields must be absent (not
zero). A faked CUDA bench checks that an out-of-memory point is recorded and the sweep
goes on.
"""

from __future__ import annotations

import json

import pytest

from hypertok.errors import HyperTokError
from hypertok.gpu import bench, vram
from hypertok.gpu.vram import VramConfig, chars_for_tokens, parse_chars
from ..conftest import mistral_test_file

MEASURED_ONLY = {"peak_allocated", "peak_reserved", "kv_cache_bytes", "prefill_s", "decode_tokens_per_s",
                 "decode_chars_per_s", "step_s"}
TINY_CONFIG = {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4, "num_key_value_heads": 2,
               "head_dim": 16, "intermediate_size": 224, "vocab_size": 32768, "tie_word_embeddings": False}


@pytest.fixture()
def setup(tmp_path, tiny_corpus, tiny_tok):
    model = tmp_path / "config.json"
    model.write_text(json.dumps(TINY_CONFIG))
    return model, tiny_corpus, tiny_tok.path


def _cfg(model, text, tokdir, out, **kw):
    return VramConfig(model=str(model), tokenizers=["mistral-v3", f"{tokdir}:extend", f"{tokdir}:replace"],
                      text=str(text), chars=[2000, 5000], at_tokens=[1000], modes=["inference", "train"],
                      out=str(out), **kw)


def test_whole_harness_without_cuda(setup, tmp_path, monkeypatch):
    mistral_test_file()
    monkeypatch.setattr(bench, "cuda_available", lambda: False)
    model, text, tokdir = setup
    res = vram.sweep(_cfg(model, text, tokdir, tmp_path / "out"), command="test", progress=False)
    assert res["measured"] is False and "CUDA" in res["measure_note"]
    labels = [t["label"] for t in res["tokenizers"]]
    assert labels == ["mistral-v3", f"{tokdir.name}:extend", f"{tokdir.name}:replace"]
    vocab = {t["label"]: t["vocab"] for t in res["tokenizers"]}
    assert vocab["mistral-v3"] == 32768 and vocab[labels[1]] > 32768 and vocab[labels[2]] == len(
        __import__("hypertok").HyperTok.load(tokdir))
    c1000 = res["at_tokens"]["1000"]
    for p in res["points"]:
        assert "measurement" not in p and "analytic_over_measured" not in p  # absent, not zero
        assert p["tokens"] > 0 and p["analytic"]["peak"] > p["analytic"]["weights"]
        if p["tokenizer"] == "mistral-v3" and p["chars"] == c1000:
            assert p["tokens"] >= 1000
    modes = {(p["mode"], p.get("loss")) for p in res["points"]}
    assert modes == {("inference", None), ("train", "full"), ("train", "chunked")}
    for r in res["claim"]:
        assert not MEASURED_ONLY & set(r)
    assert len(res["break_even"]) == 2 * 3  # two HyperTok variants x three lengths
    out = tmp_path / "out"
    for f in ("results.json", "points.csv", "summary.md", "memory_vs_chars.png", "latency_vs_chars.png",
              "break_even.png"):
        assert (out / f).is_file(), f
    saved = json.loads((out / "results.json").read_text())
    assert all("measurement" not in p for p in saved["points"])
    header = (out / "points.csv").read_text().splitlines()[1]
    assert ",0," not in header.split("analytic_peak")[0]


def test_oom_recorded_and_sweep_goes_on(setup, tmp_path, monkeypatch):
    """A fake CUDA bench: the 5000-char prefill runs out of memory, the rest is measured."""
    mistral_test_file()
    import torch

    monkeypatch.setattr(bench, "cuda_available", lambda: True)
    monkeypatch.setattr(bench, "gpu_memory_bytes", lambda: 80 * 2**30)
    monkeypatch.setattr(bench, "environment", lambda: {"gpu": "fake"})
    monkeypatch.setattr(bench, "build_model", lambda shape, **kw: object())
    monkeypatch.setattr(bench, "free", lambda model=None: None)

    def fake_inference(model, ids, chars, decode_tokens=128, repeats=3):
        if chars == 5000 and decode_tokens > 4:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB")
        return {"peak_allocated": 1000 + len(ids), "peak_reserved": 2000, "prefill_s": 0.1,
                "decode_tokens_per_s": 10.0, "decode_chars_per_s": 30.0, "kv_cache_bytes": len(ids)}

    monkeypatch.setattr(bench, "measure_inference", fake_inference)
    model, text, tokdir = setup
    cfg = _cfg(model, text, tokdir, tmp_path / "out")
    cfg.modes = ["inference"]
    res = vram.sweep(cfg, progress=False)
    by = {(p["tokenizer"], p["chars"]): p for p in res["points"]}
    assert all("oom" in p["measurement"] for (t, c), p in by.items() if c == 5000)
    assert all("peak_allocated" in p["measurement"] for (t, c), p in by.items() if c != 5000)
    assert "OOM" in (tmp_path / "out" / "summary.md").read_text()


def test_point_that_cannot_fit_is_skipped_with_reason(setup, tmp_path, monkeypatch):
    mistral_test_file()
    monkeypatch.setattr(bench, "cuda_available", lambda: True)
    monkeypatch.setattr(bench, "gpu_memory_bytes", lambda: 1000)  # a GPU of 1000 bytes
    monkeypatch.setattr(bench, "environment", lambda: {"gpu": "fake"})
    model, text, tokdir = setup
    cfg = _cfg(model, text, tokdir, tmp_path / "out")
    cfg.modes = ["inference"]
    res = vram.sweep(cfg, progress=False)
    assert all("does not fit" in p["skipped"] for p in res["points"])


def test_clear_errors(setup, tmp_path):
    mistral_test_file()
    model, text, tokdir = setup
    with pytest.raises(HyperTokError, match="fewer than the requested"):
        vram.sweep(VramConfig(model=str(model), text=str(text), chars=[10**9], out=str(tmp_path)), progress=False)
    with pytest.raises(HyperTokError, match="not a built-in model"):
        vram.sweep(VramConfig(model="gpt-5", text=str(text), out=str(tmp_path)), progress=False)
    with pytest.raises(HyperTokError, match="no such directory"):
        vram.sweep_tokenizer(str(tmp_path / "missing:extend"))
    with pytest.raises(HyperTokError, match="--mode"):
        VramConfig(modes=["serve"])


def test_parse_chars_and_prefix_search():
    assert parse_chars("32k,8000,8k") == [8000, 32000]
    with pytest.raises(HyperTokError):
        parse_chars("lots")
    assert chars_for_tokens(lambda s: s.split(), "a b c d e f", 3) == 5
    with pytest.raises(HyperTokError, match="fewer than"):
        chars_for_tokens(lambda s: s.split(), "a b", 3)


def test_cli_help_and_run(setup, tmp_path, capsys, monkeypatch):
    mistral_test_file()
    from hypertok.cli import main

    monkeypatch.setattr(bench, "cuda_available", lambda: False)
    model, text, tokdir = setup
    rc = main(["vram", "--model", str(model), "--tokenizer", "mistral-v3", str(tokdir), "--text", str(text),
               "--chars", "2000", "--out", str(tmp_path / "o"), "--quiet"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "Break-even" in printed and "summary.md" in printed
    res = json.loads((tmp_path / "o" / "results.json").read_text())
    assert res["command"].startswith("hypertok vram --model")
    assert main(["vram", "--model", "nope", "--text", str(text), "--out", str(tmp_path / "p")]) == 2


def test_replace_on_a_plain_tokenizer_json_gives_ids(tmp_path):
    """Issue 9 fix: ``DIR:replace`` on a directory holding only a tokenizer.json used to give
    tokenizers ``Encoding`` objects instead of ids."""
    mistral_test_file()
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "<pad>": 3, "▁": 4, "▁с": 5, "т": 6, "о": 7, "л": 8, "▁стол": 9}
    tk = Tokenizer(models.WordPiece(vocab, unk_token="<unk>", continuing_subword_prefix=""))
    tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tk.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tk.add_special_tokens(["<unk>", "<s>", "</s>", "<pad>"])
    d = tmp_path / "plain"
    d.mkdir()
    tk.save(str(d / "tokenizer.json"))
    for spec in (f"{d}:replace", str(d)):
        tok = vram.sweep_tokenizer(spec)
        ids = tok.encode("стол стол")
        assert ids == [9, 9] and all(type(i) is int for i in ids), spec
        assert tok.vocab_size == len(vocab) and tok.name == "plain:replace"
        assert vram.tokenizer_info(tok)["strategy"] == "replace"


# ------------------------------------------------------------------- --losses, Liger's fused loss (issue 10)
def test_liger_train_step_is_the_chunked_one(fake_liger):
    """bench.train_step with "liger" reaches the head through peft's wrapper and gives the chunked
    loss's value and LoRA gradients (the stand-in computes the same float32 cross-entropy)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("peft")
    from hypertok.gpu.memory import ModelShape

    shape = ModelShape("tiny", n_layers=2, hidden=64, n_heads=4, n_kv_heads=2, head_dim=16, intermediate=224,
                       vocab=500)
    model = bench.add_lora(bench.build_model(shape, device="cpu"), rank=4)
    for n, p in model.named_parameters():  # B starts at zero: give every LoRA weight a value, so all get gradients
        if "lora_" in n:
            torch.nn.init.normal_(p, std=0.02)
    ids = torch.randint(0, shape.vocab, (1, 200), generator=torch.Generator().manual_seed(0))
    seen = {}
    for loss in ("chunked", "liger"):
        value = bench.train_step(model, ids, loss, chunk=64)
        seen[loss] = value, {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    assert fake_liger.calls == 1
    assert seen["liger"][0] == pytest.approx(seen["chunked"][0], rel=1e-5)
    assert seen["liger"][1] and seen["liger"][1].keys() == seen["chunked"][1].keys()
    assert all(g.abs().sum() > 0 for g in seen["liger"][1].values())  # every LoRA weight got a gradient
    for n, g in seen["liger"][1].items():  # bf16 model: the two sums differ only in order
        torch.testing.assert_close(g, seen["chunked"][1][n], rtol=2e-2, atol=1e-4)
    with pytest.raises(ValueError, match="unknown loss"):
        bench.train_step(model, ids, "cce")


def test_losses_are_validated_before_anything_loads(setup, tmp_path, monkeypatch):
    mistral_test_file()
    import importlib.util

    from hypertok.cli import main

    with pytest.raises(HyperTokError, match="--losses 'cce': use a comma-separated list of full, chunked, liger"):
        VramConfig(losses=["full", "cce"])
    with pytest.raises(HyperTokError, match="named twice"):
        VramConfig(losses=["full", "full"])
    with pytest.raises(HyperTokError, match="at least one"):
        VramConfig(losses=[])
    assert vram.parse_losses(" Full,liger,, ") == ["full", "liger"]
    # measuring liger without liger-kernel: refused in one line before a model or tokenizer loads
    monkeypatch.setattr(bench, "cuda_available", lambda: True)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "liger_kernel" else
                        importlib.machinery.PathFinder.find_spec(name))
    loaded = []
    monkeypatch.setattr(vram, "load_shape", lambda spec: loaded.append(spec))
    monkeypatch.setattr(bench, "build_model", lambda *a, **k: loaded.append("model"))
    model, text, tokdir = setup
    cfg = _cfg(model, text, tokdir, tmp_path / "out", losses=["full", "liger"])
    with pytest.raises(HyperTokError, match="^--losses liger needs the liger-kernel package .*--no-measure"):
        vram.sweep(cfg, progress=False)
    assert loaded == []
    rc = main(["vram", "--model", str(model), "--text", str(text), "--mode", "train", "--losses", "full,cce",
               "--out", str(tmp_path / "p")])
    assert rc == 2 and loaded == []


def _train_points(res, loss):
    return [p for p in res["points"] if p["mode"] == "train" and p.get("loss") == loss]


def test_report_with_liger_analytic(setup, tmp_path, monkeypatch):
    """Without CUDA liger needs no package: its points are analytic like the others, and every
    table and plot has them."""
    mistral_test_file()
    monkeypatch.setattr(bench, "cuda_available", lambda: False)
    model, text, tokdir = setup
    res = vram.sweep(_cfg(model, text, tokdir, tmp_path / "out", losses=["full", "chunked", "liger"]),
                     command="test", progress=False)
    assert len(_train_points(res, "liger")) == len(_train_points(res, "full")) > 0
    for p in _train_points(res, "liger"):
        assert "measurement" not in p
    vs = res["vs_base"]
    assert {r["loss"] for r in vs} == {"full", "chunked", "liger"}
    assert all(r["source"] == "analytic" and r["tokenizer"] != "mistral-v3" for r in vs)
    for r in vs:  # the ratios are the analytic peaks' ratios
        assert r["ratio_same_loss"] == r["analytic_peak"] / r["base_analytic_peak"]
        assert r["ratio_base_full"] == r["analytic_peak"] / r["base_full_analytic_peak"]
    assert all("train_liger_analytic_peak" in r for r in res["claim"])
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "## Train memory against mistral-v3" in summary and "| liger |" in summary
    assert "train liger-loss peak" in summary and "liger loss" in summary
    for f in ("train_vs_base.png", "memory_vs_chars.png"):
        assert (tmp_path / "out" / f).is_file(), f
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["config"]["losses"] == ["full", "chunked", "liger"] and saved["vs_base"]


def test_report_with_measured_liger_points(setup, tmp_path, monkeypatch, fake_liger):
    """A fake CUDA bench: liger points measured beside the others reach the vs-base table as measured."""
    mistral_test_file()
    monkeypatch.setattr(bench, "cuda_available", lambda: True)
    monkeypatch.setattr(bench, "gpu_memory_bytes", lambda: 10**15)
    monkeypatch.setattr(bench, "environment", lambda: {"gpu": "fake"})
    monkeypatch.setattr(bench, "build_model", lambda shape, **kw: object())
    monkeypatch.setattr(bench, "add_lora", lambda model, rank: model)
    monkeypatch.setattr(bench, "free", lambda model=None: None)
    seen = []

    def fake_train(model, ids, loss="full", repeats=3, chunk=4096, warmup=False):
        seen.append(loss)
        return {"peak_allocated": {"full": 3, "chunked": 2, "liger": 1}[loss] * 10**6 + len(ids),
                "peak_reserved": 10**7, "step_s": 0.1}

    monkeypatch.setattr(bench, "measure_train", fake_train)
    model, text, tokdir = setup
    cfg = _cfg(model, text, tokdir, tmp_path / "out", losses=["full", "liger"])
    cfg.modes = ["train"]
    res = vram.sweep(cfg, progress=False)
    assert set(seen) == {"full", "liger"}  # chunked was not asked for
    assert not _train_points(res, "chunked")
    liger = [r for r in res["vs_base"] if r["loss"] == "liger"]
    assert liger and all(r["source"] == "measured" for r in liger)
    for r in liger:
        assert r["ratio_base_full"] == (10**6 + r["tokens"]) / (3 * 10**6 + r["base_tokens"])
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "| chunked |" not in summary and "(measured)" in summary
    assert (tmp_path / "out" / "train_vs_base.png").is_file()


def test_a_results_file_from_before_liger_still_renders(tmp_path):
    """experiments/vram/combined/results.json was measured before --losses and vs_base: it renders
    with full and chunked only, and gains the vs-base table."""
    from pathlib import Path

    from hypertok.gpu.report import write_outputs

    old = json.loads((Path(__file__).resolve().parents[2] / "experiments" / "vram" / "combined" /
                      "results.json").read_text())
    old.pop("vs_base", None)  # merge.py has re-rendered it since: as the GPU runs wrote it
    assert "losses" not in old["config"]
    write_outputs(old, tmp_path)
    summary = (tmp_path / "summary.md").read_text()
    assert "## Train memory against mistral-v3" in summary and "liger" not in summary
    assert "train chunked-loss peak" in summary
    saved = json.loads((tmp_path / "results.json").read_text())
    assert {r["loss"] for r in saved["vs_base"]} == {"full", "chunked"}
    assert all(r["source"] == "measured" for r in saved["vs_base"])
    assert (tmp_path / "train_vs_base.png").is_file()


def test_vram_writes_again_into_its_folder_but_never_over_a_users_results(setup, tmp_path, capsys, monkeypatch):
    """Issue 24: an earlier vram's results are replaced, the user's other files stay, and a
    user's summary.md or results.json is refused (exit 2, one line) and kept byte for byte."""
    mistral_test_file()
    from hypertok.cli import main

    monkeypatch.setattr(bench, "cuda_available", lambda: False)
    model, text, tokdir = setup
    argv = ["vram", "--model", str(model), "--tokenizer", "mistral-v3", "--text", str(text), "--chars", "2000",
            "--no-measure", "--quiet", "--out"]
    out = tmp_path / "v"
    out.mkdir()
    (out / "notes.txt").write_bytes(b"mine")
    assert main([*argv, str(out)]) == 0 and main([*argv, str(out)]) == 0
    assert (out / "notes.txt").read_bytes() == b"mine"
    for name in ("summary.md", "results.json"):
        mine = tmp_path / f"mine_{name}"
        mine.mkdir()
        (mine / name).write_bytes(b"my table")
        capsys.readouterr()
        assert main([*argv, str(mine)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"holds {name}, which `hypertok vram` did not write" in err
        assert (mine / name).read_bytes() == b"my table" and [p.name for p in mine.iterdir()] == [name]
    with pytest.raises(HyperTokError, match="holds summary.md"):  # the Python API too
        vram.sweep(VramConfig(model=str(model), tokenizers=["mistral-v3"], text=str(text), chars=[2000],
                              out=str(tmp_path / "mine_summary.md")), progress=False)


def test_vram_flags_are_the_config_fields_and_the_command_reproduces_them():
    """Issue 23 item 4: vram's flags come from VramConfig; the recorded command parses back to the
    same config; a bad value is argparse's one line with the parser's own words."""
    import argparse
    import shlex

    from hypertok.options import dataclass_from_args

    p = argparse.ArgumentParser()
    vram.configure(p)
    argv = ["--tokenizer", "mistral-v3", "tok:extend", "--text", "dev.txt", "--chars", "8k,2000", "--mode", "both",
            "--at-tokens", "1k", "--losses", "full, liger", "--no-measure", "--repeats", "2", "--out", "o"]
    cfg = dataclass_from_args(VramConfig, p.parse_args(argv))
    assert (cfg.tokenizers, cfg.chars, cfg.modes, cfg.at_tokens, cfg.losses, cfg.measure, cfg.repeats) == (
        ["mistral-v3", "tok:extend"], [2000, 8000], ["inference", "train"], [1000], ["full", "liger"], False, 2)
    again = dataclass_from_args(VramConfig, p.parse_args(shlex.split(vram.command_of(cfg))[2:]))
    assert again == cfg
    assert dataclass_from_args(VramConfig, p.parse_args(["--text", "t", "--out", "o"])) == VramConfig(text="t", out="o")
    with pytest.raises(SystemExit):
        p.parse_args(["--text", "t", "--out", "o", "--mode", "bogus"])
    with pytest.raises(HyperTokError, match="--repeats must be at least 1"):
        dataclass_from_args(VramConfig, p.parse_args(["--text", "t", "--out", "o", "--repeats", "0"]))
