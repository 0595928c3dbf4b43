"""Issue 5 (moved by issue 9): vocabulary transfer, LoRA adaptation, save/load/merge, resume, clear errors.

Everything runs on CPU in float32 with a tiny random 2-layer MistralConfig, a SentencePiece
model trained here on synthetic Russian text (byte fallback, like Mistral's), and a small
HyperTok vocabulary built from the same text. No corpus, no downloads.
"""

from __future__ import annotations

import copy
import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
spm = pytest.importorskip("sentencepiece")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from hypertok import HyperTokError  # noqa: E402
from hypertok.adapt.data import pack, read_documents, rows_of  # noqa: E402
from hypertok.adapt.model import AdaptedModel, check_base_path, load_base_model, merge, wrap_peft  # noqa: E402
from hypertok.adapt.recipe import plan, resize_and_init  # noqa: E402
from hypertok.adapt.train import TrainConfig, adapt, train_loop  # noqa: E402
from hypertok.loss import causal_lm_nll  # noqa: E402
from hypertok.registry import LosslessSentencePiece, load_vocabulary, lossless_sentencepiece_proto  # noqa: E402

from .tiny import WORDS, cli, adapt_config as _cfg, logits as _logits, make_base as _make_base  # noqa: E402

# ------------------------------------------------------------------ transfer

def test_proto_patch_keeps_pieces_and_makes_spans_concatenate(env):
    bv = LosslessSentencePiece(env["sp"])
    a, b = "  сказал он", "\nдом  сад "
    assert bv.decode(bv.encode(a)) == a
    assert bv.decode(bv.encode(a)) + bv.decode(bv.encode(b)) == a + b
    orig = spm.SentencePieceProcessor(model_file=str(env["sp"]))  # NFKC charsmap, dummy prefix
    patched = spm.SentencePieceProcessor(model_proto=lossless_sentencepiece_proto(env["sp"].read_bytes()))
    assert [orig.id_to_piece(i) for i in range(len(orig))] == [patched.id_to_piece(i) for i in range(len(patched))]
    assert orig.decode(orig.encode("сказал он")) == "сказал он"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40) | st.sampled_from(WORDS))
def test_adapted_tokenizer_is_lossless(env, text):
    for strategy in ("extend", "replace"):
        tok = plan(env["base"], env["tok"], strategy)
        assert tok.decode(tok.encode(text)) == text


def test_extend_maps_entries_beyond_base_and_keeps_base_rows(env):
    tok = plan(env["base"], env["tok"], "extend")
    V = tok.recipe.base_vocab_size
    ids = tok.encode("Старый дом, – сказал он.")
    assert any(i >= V for i in ids)
    assert tok.recipe.new_rows == list(range(V, tok.recipe.model_vocab_size))
    assert all(tok.is_new_token(i) for i in tok.recipe.new_rows)


def test_mean_initialised_row_is_mean_of_its_pieces(env):
    tok = plan(env["base"], env["tok"], "extend", init="mean")
    model = load_base_model(env["base"], "float32", "cpu")
    old_e = model.get_input_embeddings().weight.detach().clone()
    old_h = model.get_output_embeddings().weight.detach().clone()
    resize_and_init(model, tok.recipe)
    bv = LosslessSentencePiece.find(env["base"])
    new = load_vocabulary(env["tok"])
    e, h = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    assert e.shape[0] == tok.recipe.model_vocab_size
    checked = 0
    for new_id, row in enumerate(tok.recipe.new_to_model):
        if row < tok.recipe.base_vocab_size or row < 0:
            continue
        pieces = bv.encode(new.surfaces[new_id])
        assert len(pieces) > 1
        torch.testing.assert_close(e[row], old_e[pieces].mean(0))  # float32, same sum: exact up to rounding
        torch.testing.assert_close(h[row], old_h[pieces].mean(0))
        checked += 1
    assert checked > 10
    torch.testing.assert_close(e[: old_e.shape[0]], old_e)  # base rows untouched


def test_hewitt_rows_sit_at_the_mean_of_old_rows(env):
    tok = plan(env["base"], env["tok"], "extend", init="hewitt")
    model = load_base_model(env["base"], "float32", "cpu")
    old_e = model.get_input_embeddings().weight.detach().clone()
    resize_and_init(model, tok.recipe)
    new_rows = model.get_input_embeddings().weight[tok.recipe.new_rows]
    # N(mean, 1e-9 * cov): samples within ~1e-4 of the mean for weights of std ~0.02
    torch.testing.assert_close(new_rows, old_e.mean(0).expand_as(new_rows), rtol=0, atol=1e-3)


def test_random_and_hewitt_init(env):
    for init in ("random", "hewitt"):
        tok = plan(env["base"], env["tok"], "replace", init=init)
        model = load_base_model(env["base"], "float32", "cpu")
        resize_and_init(model, tok.recipe)
        w = model.get_input_embeddings().weight
        assert w.shape[0] == len(load_vocabulary(env["tok"]))
        assert torch.isfinite(w).all()


# ------------------------------------------------------------------ data and loss

def test_chunked_loss_equals_full_cross_entropy(env):
    model = load_base_model(env["base"], "float32", "cpu")
    g = torch.Generator().manual_seed(0)
    X = torch.randint(3, 390, (2, 16), generator=g)
    P = torch.arange(16).expand(2, 16)
    Y = torch.randint(3, 390, (2, 16), generator=g)
    Y[0, :3] = -100
    nll, n = causal_lm_nll(model, X, P, Y, chunk=7)
    logits = model(input_ids=X, position_ids=P).logits
    ref = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y.reshape(-1),
                                            reduction="sum", ignore_index=-100)
    assert n == 29
    torch.testing.assert_close(nll, ref, rtol=1e-5, atol=1e-4)


def test_packed_documents_do_not_see_each_other(env):
    model = load_base_model(env["base"], "float32", "cpu")
    d1, d2 = [5, 6, 7, 8, 9], [10, 11, 12, 13]
    stream = pack([d1, d2], bos=1, eos=2)
    X, P, Y = rows_of(stream, 12, 1, [0])
    assert P[0].tolist() == [0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4]
    assert Y[0, 6] == -100  # </s> of doc 1 does not predict <s> of doc 2
    X, P, Y = (torch.from_numpy(a) for a in (X, P, Y))
    alone = model(input_ids=torch.tensor([[1, *d2, 2]])).logits[0]
    # the model in eval mode has use_cache=True: causal_lm_nll must still isolate documents
    nll_packed, _ = causal_lm_nll(model, X[:, 7:], P[:, 7:], Y[:, 7:])
    Yp = Y.clone()
    Yp[:, :7] = -100
    nll_in_row, n = causal_lm_nll(model, X, P, Yp)
    assert n == 5  # d2's four tokens and its </s>
    # same kernels on the same rows, only the mask differs: equal up to float32 reduction order
    torch.testing.assert_close(nll_in_row, nll_packed, rtol=1e-5, atol=1e-5)
    ref = torch.nn.functional.cross_entropy(alone[:5], torch.tensor([*d2, 2]), reduction="sum")
    torch.testing.assert_close(nll_in_row, ref, rtol=1e-5, atol=1e-5)


def test_read_documents_split_on_blank_lines(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("раз\nдва\n\n\n три \n\n")
    assert read_documents([str(f)]) == ["раз\nдва", "\n три ", ]


# ------------------------------------------------------------------ training, save, load, merge

def test_a_few_steps_lower_the_loss(trained):
    res, _ = trained
    losses = [h["loss"] for h in res.history]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3
    evals = [h["eval_bpc"] for h in res.history if "eval_bpc" in h]
    assert evals[-1] < evals[0]


def _png_shape(path):
    """(height, width) of a PNG that matplotlib can read back; fails on anything else."""
    from matplotlib.image import imread

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    return imread(path, format="png").shape[:2]


def test_adapt_draws_its_loss_curve(trained):
    """Issue 11: OUT/loss.png, the train loss of every step and the eval points, beside the adapter
    (without matplotlib, which the dev extra installs, none and a warning: the next test)."""
    import importlib.util

    res, out = trained
    if importlib.util.find_spec("matplotlib") is None:
        assert res.loss_plot is None and not (out / "loss.png").exists()
        return
    assert res.loss_plot == str(out / "loss.png")
    height, width = _png_shape(out / "loss.png")
    assert width >= 400 and height >= 400  # two panels: train loss and held-out bits/char
    assert not [p.name for p in out.iterdir() if p.name.startswith(".loss.png")]  # no leftover of the atomic write


def test_no_matplotlib_means_no_plot_and_a_reason(tmp_path, monkeypatch):
    import sys

    from hypertok.adapt.report import write_loss_plot

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    path, why = write_loss_plot([{"step": 1, "loss": 2.0}], tmp_path / "loss.png")
    assert path is None and "matplotlib is not installed" in why and not (tmp_path / "loss.png").exists()


def test_save_load_on_fresh_base_gives_equal_logits(env, trained):
    res, out = trained
    ids = res.tokenizer.encode("Старый дом у реки, – сказал он.", add_bos=True)
    before = _logits(res.model.model, ids)
    loaded = AdaptedModel.from_pretrained(env["base"], out, "float32", "cpu")
    tok = loaded.tokenizer
    assert tok.encode("Старый дом у реки, – сказал он.", add_bos=True) == ids
    # same float32 weights and ops on CPU; only summation order could differ
    torch.testing.assert_close(_logits(loaded.model, ids), before, rtol=1e-5, atol=1e-5)


def test_merged_and_unmerged_agree(env, trained):
    res, out = trained
    ids = res.tokenizer.encode("Дождь и снег, ночь и утро.", add_bos=True)
    unmerged = _logits(res.model.model, ids)
    merged = copy.deepcopy(res.model).merge_and_unload()
    # merging adds B@A*scale into W in float32: rounding differences of order 1e-6 relative
    torch.testing.assert_close(_logits(merged, ids), unmerged, rtol=1e-4, atol=1e-4)
    from transformers import AutoModelForCausalLM

    mdir = merge(env["base"], out, env["root"] / "merged", "float32")
    plain = AutoModelForCausalLM.from_pretrained(mdir, local_files_only=True)
    torch.testing.assert_close(_logits(plain, ids), unmerged, rtol=1e-4, atol=1e-4)


def test_replace_with_full_rows_trains_and_saves(env):
    out = env["root"] / "ad_replace"
    res = adapt(_cfg(env, out, strategy="replace", rows="full", steps=3, eval=None, save_every=0))
    assert len(res.tokenizer) == len(load_vocabulary(env["tok"]))
    loaded = AdaptedModel.from_pretrained(env["base"], out, "float32", "cpu")
    tok = loaded.tokenizer
    ids = tok.encode("Сын и дочь.", add_bos=True)
    torch.testing.assert_close(_logits(loaded.model, ids), _logits(res.model.model, ids), rtol=1e-5, atol=1e-5)
    # replace: the merged folder's tokenizer.json gives the model's ids with plain transformers
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    mdir = merge(env["base"], out, env["root"] / "merged_replace", "float32")
    hf = PreTrainedTokenizerFast(tokenizer_file=str(mdir / "tokenizer.json"))
    assert hf("Сын и дочь.", add_special_tokens=False)["input_ids"] == ids[1:]
    plain = AutoModelForCausalLM.from_pretrained(mdir, local_files_only=True)
    torch.testing.assert_close(_logits(plain, ids), _logits(res.model.model, ids), rtol=1e-4, atol=1e-4)


def test_resume_continues_at_same_step_and_loss(env):
    tok = plan(env["base"], env["tok"], "extend")
    stream = pack([tok.encode(d) for d in read_documents([str(env["train"])])], tok.bos, tok.eos)

    def fresh():
        torch.manual_seed(0)  # LoRA A matrices start random
        m = load_base_model(env["base"], "float32", "cpu")
        resize_and_init(m, tok.recipe)
        return wrap_peft(m, tok.recipe, lora_r=4, lora_alpha=8)

    cfg = TrainConfig(steps=4, batch_size=2, seq_len=32, lr=1e-2, rows_lr=None, warmup=1, eval_every=0, save_every=2,
                      progress=False)
    straight = train_loop(fresh(), stream, tok.bos, cfg, env["root"] / "run_a")
    b = env["root"] / "run_b"
    b.mkdir()
    first = train_loop(fresh(), stream, tok.bos, cfg, b, stop_at=2)
    assert [h["step"] for h in first] == [1, 2]
    resumed = train_loop(fresh(), stream, tok.bos, cfg, b, resume=True)
    assert [h["step"] for h in resumed] == [1, 2, 3, 4]
    with pytest.raises(HyperTokError, match="other settings"):
        train_loop(fresh(), stream, tok.bos, TrainConfig(steps=4, batch_size=3, seq_len=32, lr=1e-2, rows_lr=None,
                                                         warmup=1, eval_every=0, save_every=2, progress=False),
                   b, resume=True)
    for x, y in zip(straight, resumed):
        assert x["step"] == y["step"]
        assert abs(x["loss"] - y["loss"]) < 1e-5
        assert abs(x["lr"] - y["lr"]) < 1e-12


def test_time_budget_decays_to_the_floor_and_ends_the_run_evaluated(env, monkeypatch):
    """--time-budget: the cosine decay runs over the time where that ends before --steps, and the run
    ends there, with a last evaluation (which reads the step's record) and a last checkpoint; a resumed
    run has the time its checkpoint left."""
    import hypertok.adapt.train as T

    tok = plan(env["base"], env["tok"], "extend")
    stream = pack([tok.encode(d) for d in read_documents([str(env["train"])])], tok.bos, tok.eos)
    now = [1000.0]
    monkeypatch.setattr(T.time, "monotonic", lambda: now[0])
    step = T.Trainer.step

    def ten_seconds_a_step(self, *a, **k):
        now[0] += 10
        return step(self, *a, **k)

    monkeypatch.setattr(T.Trainer, "step", ten_seconds_a_step)

    def run(budget, out=None, save_every=50, stop_at=None, resume=False):
        torch.manual_seed(0)
        m = load_base_model(env["base"], "float32", "cpu")
        resize_and_init(m, tok.recipe)
        m = wrap_peft(m, tok.recipe, lora_r=4, lora_alpha=8)
        cfg = TrainConfig(steps=100, batch_size=2, seq_len=32, lr=1e-2, rows_lr=None, warmup=1, eval_every=50,
                          save_every=save_every if out else 0, time_budget=budget, progress=False)
        trainer = T.Trainer(m, stream, tok.bos, cfg, out)
        if resume:
            trainer.resume()
        seen = []
        hist = trainer.run(lambda model: seen.append(trainer.history[-1]["step"]) or {"evaluated": True}, stop_at)
        return hist, seen

    hist, seen = run(35.0, env["root"] / "timed")
    assert [h["step"] for h in hist] == [1, 2, 3, 4]  # 40 s used of 35 after the fourth step
    assert hist[-1]["ended_by"] == "time_budget" and hist[-1]["evaluated"] and seen == [4]
    assert hist[-1]["lr"] == pytest.approx(1e-2 * 0.1)  # the floor, min_lr_ratio 0.1
    assert (env["root"] / "timed" / T.CHECKPOINT_FILE).is_file()
    plain, _ = run(0.0)
    assert len(plain) == 100 and "ended_by" not in plain[-1]
    assert hist[1]["lr"] < plain[1]["lr"]  # 20 s of 35: further down the cosine than step 2 of 100
    # interrupted after 20 s of 35, resumed: 15 s are left, two steps, not a new budget of 35 s
    run(35.0, env["root"] / "timed_resume", save_every=2, stop_at=2)
    resumed, _ = run(35.0, env["root"] / "timed_resume", save_every=2, resume=True)
    assert [h["step"] for h in resumed] == [1, 2, 3, 4] and resumed[-1]["ended_by"] == "time_budget"
    with pytest.raises(HyperTokError, match="time-budget"):
        TrainConfig(time_budget=-1)


def test_micro_batches_sum_to_the_whole_batch_step(env):
    """--micro-batch splits a step into passes whose gradients add up to the one-pass step:
    the same losses and the same trained parameters (float32 on the CPU, up to rounding)."""
    tok = plan(env["base"], env["tok"], "extend")
    stream = pack([tok.encode(d) for d in read_documents([str(env["train"])])], tok.bos, tok.eos)

    def run(micro):
        torch.manual_seed(0)
        m = load_base_model(env["base"], "float32", "cpu")
        resize_and_init(m, tok.recipe)
        m = wrap_peft(m, tok.recipe, lora_r=4, lora_alpha=8)
        cfg = TrainConfig(steps=3, batch_size=4, micro_batch=micro, seq_len=32, lr=1e-2, rows_lr=None, warmup=1,
                          eval_every=0, save_every=0, progress=False)
        hist = train_loop(m, stream, tok.bos, cfg)
        return [h["loss"] for h in hist], {n: p.detach().clone() for n, p in m.named_parameters() if p.requires_grad}

    whole, w_params = run(0)
    for micro in (1, 2):
        losses, params = run(micro)
        assert losses == pytest.approx(whole, rel=1e-5)
        for n, p in w_params.items():
            torch.testing.assert_close(params[n], p, rtol=1e-4, atol=1e-5)
    with pytest.raises(HyperTokError, match="must divide --batch-size"):
        TrainConfig(batch_size=4, micro_batch=3)


def test_cli_adapt_and_eval(env, capsys):
    main = cli
    out = env["root"] / "ad_cli"

    def files_outside():
        return {p: p.stat().st_mtime_ns for p in env["root"].rglob("*") if p.is_file() and out not in p.parents}

    before = files_outside()
    rc = main(["adapt", "--base", str(env["base"]), "--tokenizer", str(env["tok"]), "--train", str(env["train"]),
               "--out", str(out), "--steps", "2", "--batch-size", "2", "--seq-len", "32", "--lora-r", "2",
               "--no-progress", "--device", "cpu", "--time-budget", "3600", "--stage1-steps", "1", "--stage1-match",
               "10"])
    assert rc == 0
    assert files_outside() == before  # everything adapt writes is in --out (stage 1's teacher included)
    assert json.loads((out / "hypertok_run.json").read_text())["config"]["loop"]["time_budget"] == 3600
    rc = main(["eval", "--base", str(env["base"]), "--adapter", str(out), "--text", str(env["dev"]),
               "--max-chars", "2000", "--gen-tokens", "4", "--prompts", "1", "--repeats", "1", "--device", "cpu"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert res["bpc"] > 0 and 0 <= res["new_token_share"] <= 1 and res["chars_per_s"] > 0
    rc = main(["eval", "--base", str(env["base"]), "--text", str(env["dev"]), "--max-chars", "2000",
               "--gen-tokens", "4", "--prompts", "1", "--repeats", "1", "--device", "cpu"])
    assert rc == 0
    base = json.loads(capsys.readouterr().out)
    assert base["new_token_share"] == 0 and base["chars"] == res["chars"]


def test_paired_generation_speed_interleaves_rounds_and_pairs_the_ratios(monkeypatch):
    """Each round runs every model once, rotated; a speed-up is the median of same-round ratios."""
    import importlib

    E = importlib.import_module("hypertok.adapt.evaluate")  # the package exports a function of that name
    calls = []
    seconds = {"base": [1.0, 2.0, 1.0], "ht": [1.0, 1.0, 4.0]}  # a slow round hits both models alike

    def fake_round(model, tok, prompts, new_tokens, seed):
        calls.append(model)
        k = sum(1 for c in calls if c == model) - 2  # -1: the warm-up
        return (100 if model == "base" else 200), 50, 0, (seconds[model][k] if k >= 0 else 1.0)

    monkeypatch.setattr(E, "_generation_round", fake_round)
    r = E.paired_generation_speed({"base": ("base", None), "ht": ("ht", None)}, ["p"], repeats=3)
    assert calls == ["base", "ht", "base", "ht", "ht", "base", "base", "ht"]
    assert r["base"]["speedup_chars_per_s"] == 1.0
    # chars/s ratios per round: (200/1)/(100/1) = 2, (200/1)/(100/2) = 4, (200/4)/(100/1) = 0.5 -> median 2
    assert r["ht"]["speedup_chars_per_s"] == 2.0
    assert r["ht"]["speedup_tokens_per_s"] == 1.0  # (50/1)/(50/1), (50/1)/(50/2) = 2, (50/4)/(50/1) -> median 1
    assert r["ht"]["rounds_chars_per_s"] == [200.0, 200.0, 50.0] and r["ht"]["repeats"] == 3


def test_paired_generation_speed_runs_real_models(trained, env):
    from hypertok.adapt.evaluate import paired_generation_speed
    from hypertok.registry import BaseTokenizer

    res, _ = trained
    base = load_base_model(str(env["base"]), "float32", torch.device("cpu"))
    btok = BaseTokenizer(LosslessSentencePiece(str(env["sp"])))
    r = paired_generation_speed({"base": (base, btok), "adapted": (res.model.model, res.tokenizer)},
                                ["мир и"], new_tokens=3, repeats=2)
    assert r["base"]["new_token_share"] == 0 and r["base"]["gen_tokens"] == 3
    assert r["adapted"]["gen_tokens"] == 3 and r["adapted"]["speedup_chars_per_s"] > 0


# ------------------------------------------------------------------ clear errors, before any model load

def test_hub_name_or_missing_path_is_a_clear_offline_error():
    with pytest.raises(HyperTokError, match="never downloads"):
        check_base_path("mistralai/Mistral-7B-v0.3")


def test_empty_training_text(env, tmp_path, no_model_load):
    empty = tmp_path / "empty.txt"
    empty.write_text(" \n\n \n")
    with pytest.raises(HyperTokError, match="empty"):
        adapt(_cfg(env, tmp_path / "o", train=[str(empty)]))


def test_adapter_for_another_base_is_refused(env, trained, no_model_load):
    _, out = trained
    with pytest.raises(HyperTokError, match="another base"):
        AdaptedModel.from_pretrained(env["other"], out)


def test_tokenizer_and_base_that_cannot_be_reconciled(env, tmp_path, no_model_load):
    small = _make_base(tmp_path / "small", env["sp"], 0, vocab_size=100)  # fewer rows than pieces
    with pytest.raises(HyperTokError, match="does not belong"):
        adapt(_cfg(env, tmp_path / "o", base=str(small)))
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text((env["base"] / "config.json").read_text())
    with pytest.raises(HyperTokError, match="tokenizer.model"):
        adapt(_cfg(env, tmp_path / "o2", base=str(bare)))
    with pytest.raises(HyperTokError, match="not a tokenizer directory"):
        adapt(_cfg(env, tmp_path / "o3", tokenizer=str(tmp_path)))


def test_model_commands_print_no_transformers_future_warning(env):
    """Issue 24, item 16: peft's read of ``is_gradient_checkpointing`` warned on every model command."""
    import warnings

    tok = plan(str(env["base"]), str(env["tok"]), "extend")
    model = load_base_model(str(env["base"]), "float32", "cpu")
    resize_and_init(model, tok.recipe)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        wrap_peft(model, tok.recipe, 4, 8)
    assert not [w for w in caught if issubclass(w.category, FutureWarning)], [str(w.message) for w in caught]
