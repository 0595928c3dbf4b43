"""The adaptation recipe of issue 10 on a tiny model: norm-matched and FOCUS-style inits,
stage 1 (rows only), cross-tokenizer distillation, and resuming a two-stage run."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from hypertok.adapt.data import pack, read_documents  # noqa: E402
from hypertok.adapt.distill import (Distiller, HiddenMatcher, align_spans, byte_ends, span_first_positions,  # noqa: E402
                                    teacher_rows)
from hypertok.adapt.model import is_row_param, load_base_model, wrap_peft  # noqa: E402
from hypertok.adapt.recipe import plan, resize_and_init, row_overlaps  # noqa: E402
from hypertok.adapt.train import TrainConfig, adapt, rows_only, train_loop  # noqa: E402

from .tiny import adapt_config  # noqa: E402


def _model(env, tok, init="mean", seed=0):
    torch.manual_seed(seed)
    m = load_base_model(env["base"], "float32", "cpu")
    old = m.get_input_embeddings().weight.detach().clone()
    resize_and_init(m, tok.recipe, init=init, overlaps=row_overlaps(tok) if init == "focus" else None)
    return m, old


# ------------------------------------------------------------------ inits

@pytest.mark.parametrize("init", ["mean-norm", "focus"])
def test_norm_matched_rows_have_the_mean_norm_of_base_rows(env, init):
    tok = plan(env["base"], env["tok"], "extend", init=init)
    m, old = _model(env, tok, init)
    new = m.get_input_embeddings().weight[tok.recipe.new_rows].detach()
    target = old.norm(dim=1).mean()
    torch.testing.assert_close(new.norm(dim=1), target.expand(len(new)), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(m.get_input_embeddings().weight[: old.shape[0]], old)  # base rows untouched


def test_mean_rows_are_shorter_than_base_rows_which_norm_matching_fixes(env):
    """Why norm matching exists: a mean of several random-ish rows is shorter than a row."""
    tok = plan(env["base"], env["tok"], "extend")
    m, old = _model(env, tok, "mean")
    mean_norm = m.get_input_embeddings().weight[tok.recipe.new_rows].detach().norm(dim=1).mean()
    assert mean_norm < 0.9 * old.norm(dim=1).mean()


def test_focus_row_is_a_convex_combination_of_overlapping_base_rows(env):
    tok = plan(env["base"], env["tok"], "extend", init="focus")
    overlaps = row_overlaps(tok)
    assert sum(1 for o in overlaps if len(o) > 1) > 10  # real overlaps were found
    m, old = _model(env, tok, "focus")
    k = next(i for i, o in enumerate(overlaps) if len(o) > 2)
    cands = sorted(set(overlaps[k]) | set(tok.recipe.sources[k]))
    row = m.get_input_embeddings().weight[tok.recipe.new_rows[k]].detach()
    # row = c * sum_j w_j old[j] with w >= 0, sum w = 1: solve for c*w by least squares, check w's sign and sum
    sol = torch.linalg.lstsq(old[cands].T, row.unsqueeze(1)).solution.squeeze(1)
    assert (sol > -1e-4).all()
    torch.testing.assert_close(old[cands].T @ sol, row, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ stage 1

def test_stage1_trains_rows_and_leaves_the_body_bit_identical(env, tmp_path):
    tok = plan(env["base"], env["tok"], "extend")
    m, _ = _model(env, tok)
    m = wrap_peft(m, tok.recipe, lora_r=4, lora_alpha=8)
    stream = pack([tok.encode(d) for d in read_documents([str(env["train"])])], tok.bos, tok.eos)
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    cfg = TrainConfig(steps=6, batch_size=4, seq_len=64, lr=3e-2, rows_lr=3e-2, warmup=1, eval_every=0,
                      save_every=0, progress=False)
    with rows_only(m):
        assert all(is_row_param(n) for n, p in m.named_parameters() if p.requires_grad)
        hist = train_loop(m, stream, tok.bos, cfg, stage="stage1")
    changed = [n for n, p in m.named_parameters() if not torch.equal(p, before[n])]
    assert changed and all(is_row_param(n) for n in changed)       # only rows moved
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert any(p.requires_grad for n, p in m.named_parameters() if "lora_" in n)  # LoRA trainable again


# ------------------------------------------------------------------ distillation

class Greedy:
    """A longest-match tokenizer with byte fallback: ids 0 ``<s>``, 1 ``</s>``, 2..257 bytes."""

    def __init__(self, pieces):
        self.bos_id, self.eos_id = 0, 1
        self.piece_bytes = [b"", b""] + [bytes([b]) for b in range(256)] + [p.encode() for p in pieces]
        self.index = {p: i + 258 for i, p in enumerate(pieces)}

    def encode(self, text):
        out, i = [], 0
        while i < len(text):
            j = next((j for j in range(len(text), i, -1) if text[i:j] in self.index), None)
            if j is None:
                out.extend(2 + b for b in text[i].encode())
                i += 1
            else:
                out.append(self.index[text[i:j]])
                i = j
        return out

    def encode_batch(self, texts):
        return [self.encode(t) for t in texts]


STUDENT = Greedy([" в том числе", " в", " том", "числе", " дом", "е"])
TEACHER = Greedy([" в", " то", "м", " чис", "ле", " до", "ме"])


def _spans_spell_the_same_bytes(Z, tb, context=1):
    for r in range(len(Z)):
        for k in range(tb["spans_per_row"][r]):
            s = b"".join(STUDENT.piece_bytes[i] for i in Z[r, 1:][tb["student_span"][r] == k])
            t = b"".join(TEACHER.piece_bytes[i] for i in tb["targets"][r][tb["teacher_span"][r] == k])
            assert s == t and s
        assert (tb["student_span"][r, :context - 1] == -1).all()  # no target inside the context


def test_span_alignment_is_exact_on_byte_fallback_and_multiword_entries():
    """Every span spells the same bytes on both sides, with multi-word entries, byte-fallback
    emoji, a document break, and a row that starts in the middle of a document."""
    rows = [[0, *STUDENT.encode(" в том числе в доме 🙂 в том"), 1, 0, *STUDENT.encode(" в доме")],
            STUDENT.encode(" в том числе в доме 🙂 в том")[1:] + [1]]
    width = max(map(len, rows))
    Z = np.array([r + [1] * (width - len(r)) for r in rows])
    tb = teacher_rows(Z, STUDENT, TEACHER, 0, 1)
    assert tb["spans_per_row"][0] > 5
    _spans_spell_the_same_bytes(Z, tb)
    # the multi-word entry " в том числе" is one student token and one span of five teacher tokens
    first = tb["teacher_span"][0] == tb["student_span"][0][0]
    assert first.sum() == 5


def test_rows_with_an_added_bos_give_the_teacher_its_bos_and_leave_the_first_token_as_context():
    """``context=2`` (issue 21: Gemma reads every row from ``<s>``): a row cut mid-document with
    ``<s>`` put first. The teacher's row starts with its own ``<s>``, the token after the added
    ``<s>`` is context for both (its prediction is no target), and every span still spells the
    same bytes on both sides."""
    text = STUDENT.encode(" в доме в том числе 🙂 в том")
    Z = np.array([[0, *text[1:]], [0, *text[2:], 1]])[:, :9]
    tb = teacher_rows(Z, STUDENT, TEACHER, 0, 1, context=2)
    assert (tb["input_ids"][:, 0] == TEACHER.bos_id).all()
    assert (tb["spans_per_row"] > 2).all()
    _spans_spell_the_same_bytes(Z, tb, context=2)
    # the context's bytes are in no span: the spans of row 0 spell its text after its first text token
    spelled = b"".join(STUDENT.piece_bytes[i] for i in Z[0, 1:][tb["student_span"][0] >= 0])
    after = b"".join(STUDENT.piece_bytes[i] for i in Z[0, 2:])
    assert after.startswith(spelled) and len(spelled) > 0
    # context=1 on the same rows reads the token after <s> as a target, whose span would start at <s>
    assert teacher_rows(Z, STUDENT, TEACHER, 0, 1)["student_span"][0, 0] >= 0
    with pytest.raises(ValueError, match="context"):
        teacher_rows(Z, STUDENT, TEACHER, 0, 1, context=0)


@pytest.mark.parametrize("context", [1, 2])
def test_matched_places_have_read_the_same_bytes_on_both_sides(context):
    """HiddenMatcher compares the student's state at a span's first target with the teacher's at
    its own: both have read exactly the same bytes there (issue 21), on rows with multi-word
    entries, byte-fallback emoji, a document break and an added ``<s>``."""
    rows = [[0, *STUDENT.encode(" в том числе в доме 🙂 в том"), 1, 0, *STUDENT.encode(" в доме")],
            [0, *STUDENT.encode(" в доме в том числе 🙂 в том")[1:], 1]]
    width = max(map(len, rows))
    Z = np.array([r + [1] * (width - len(r)) for r in rows])
    tb = teacher_rows(Z, STUDENT, TEACHER, 0, 1, context=context)
    C = tb["n_spans"]
    s_pos, t_pos = span_first_positions(tb["student_span"], C), span_first_positions(tb["teacher_span"], C)
    matched = 0
    for r in range(len(Z)):
        for k in range(tb["spans_per_row"][r]):
            read_s = b"".join(STUDENT.piece_bytes[i] for i in Z[r, :s_pos[r, k] + 1])
            read_t = b"".join(TEACHER.piece_bytes[i] for i in tb["input_ids"][r, :t_pos[r, k] + 1])
            assert read_s == read_t, (r, k)
            matched += 1
        assert (s_pos[r, tb["spans_per_row"][r]:] == -1).all()  # no place past the row's last span
    assert matched > 10


def test_hidden_match_is_zero_for_a_student_that_reads_as_the_teacher_and_falls_for_new_rows(env):
    """The base as its own student (same tokenizer, same model) matches exactly; HyperTok's
    untrained rows do not, and stage 1 with the match moves only rows and lowers it."""
    base_tok = plan(env["base"], env["tok"], "replace").base
    teacher = load_base_model(env["base"], "float32", "cpu")
    stream = pack([base_tok.encode(d) for d in read_documents([str(env["train"])])], base_tok.bos_id,
                  base_tok.eos_id)
    from hypertok.adapt.data import rows_of, target_rows

    X, P, Y = (torch.from_numpy(a) for a in rows_of(stream, 64, base_tok.bos_id, [0, 1], bos_first=True))
    Z = target_rows(stream, 64, base_tok.bos_id, [0, 1], bos_first=True)
    same = load_base_model(env["base"], "float32", "cpu")
    _, _, logs = HiddenMatcher(teacher, base_tok, base_tok, weight=1.0).loss(same, Z, X, P, Y, context=2)
    assert logs["matched"] > 10 and float(logs["match"]) == 0.0

    tok = plan(env["base"], env["tok"], "replace")
    m, _ = _model(env, tok)
    m = wrap_peft(m, tok.recipe, lora_r=4, lora_alpha=8)
    stream = pack([tok.encode(d) for d in read_documents([str(env["train"])])], tok.bos, tok.eos)
    matcher = HiddenMatcher(teacher, tok, tok.base, weight=100.0)  # the match leads the next-token loss here
    idx = list(range(8))  # the rows of the first two steps, measured before and after
    X, P, Y = (torch.from_numpy(a) for a in rows_of(stream, 64, tok.bos, idx, bos_first=True))
    Z = target_rows(stream, 64, tok.bos, idx, bos_first=True)

    def match():
        with torch.no_grad():
            return float(matcher.loss(m, Z, X, P, Y, context=2)[2]["match"])

    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    start = match()
    cfg = TrainConfig(steps=10, batch_size=4, seq_len=64, lr=1e-2, rows_lr=1e-2, warmup=1, eval_every=0,
                      save_every=0, progress=False)
    with rows_only(m):
        hist = train_loop(m, stream, tok.bos, cfg, stage="stage1", distiller=matcher)
    assert all(h["matched"] > 0 and h["match"] > 0 for h in hist)
    assert 0 < match() < 0.8 * start  # 0.55 to 0.11 here
    changed = [n for n, p in m.named_parameters() if not torch.equal(p, before[n])]
    assert changed and all(is_row_param(n) for n in changed)  # the body and LoRA are the base's still
    with pytest.raises(ValueError, match="weight"):
        HiddenMatcher(teacher, tok, tok.base, weight=0.0)


def test_align_spans_of_one_tokenization_with_itself_is_one_span_per_token():
    pb = [b"", b"ab", b"c", b"\xd0", b"\x96"]  # a character split into two byte tokens
    ends = byte_ends(pb, [[0, 1, 2, 3, 4]])[0]
    s, t, c = align_spans(ends, ends, [0, 2, 1, 1, 1], [0, 2, 1, 1, 1])
    assert c == 4 and list(s) == [-1, 0, 1, 2, 3] and list(t) == list(s)


def test_distillation_term_lowers_its_loss(env):
    tok = plan(env["base"], env["tok"], "replace", init="mean-norm")
    m, _ = _model(env, tok, "mean-norm")
    m = wrap_peft(m, tok.recipe, lora_r=4, lora_alpha=8)
    teacher = load_base_model(env["base"], "float32", "cpu")
    stream = pack([tok.encode(d) for d in read_documents([str(env["train"])])], tok.bos, tok.eos)
    distiller = Distiller(teacher, tok, tok.base, weight=1.0, temperature=100.0, chunk=50)
    cfg = TrainConfig(steps=12, batch_size=4, seq_len=64, lr=1e-2, rows_lr=3e-2, warmup=1, eval_every=0,
                      save_every=0, progress=False)
    hist = train_loop(m, stream, tok.bos, cfg, distiller=distiller)
    assert all(np.isfinite(h["alm"]) and h["teacher_tokens"] > 0 for h in hist)
    first, last = np.mean([h["alm"] for h in hist[:3]]), np.mean([h["alm"] for h in hist[-3:]])
    assert last < first
    # (the tiny teacher is a random model, so pulling toward it need not lower the next-token loss)


@pytest.mark.parametrize("bos_rows", [True, False])
def test_the_distillers_rows_are_the_rows_the_student_trains_on(env, bos_rows):
    """``target_rows`` (what the trainer hands the distiller) is ``X`` plus its last target, for
    rows with an added ``<s>`` (Gemma's, issue 21) and rows as cut from the stream."""
    from hypertok.adapt.data import rows_of, target_rows
    from hypertok.adapt.train import Trainer

    tok = plan(env["base"], env["tok"], "replace")
    m, _ = _model(env, tok)
    m = wrap_peft(m, tok.recipe, lora_r=4, lora_alpha=8)
    stream = pack([tok.encode(d) for d in read_documents([str(env["train"])])], tok.bos, tok.eos)
    distiller = Distiller(load_base_model(env["base"], "float32", "cpu"), tok, tok.base)
    cfg = TrainConfig(steps=1, batch_size=4, seq_len=64, bos_rows=bos_rows, progress=False)
    trainer = Trainer(m, stream, tok.bos, cfg, distiller=distiller)
    idx = trainer.batch(0)
    Z = target_rows(stream, 64, tok.bos, idx, trainer.bos_first)
    X, _, Y = rows_of(stream, 64, tok.bos, idx, bos_first=bos_rows)
    assert Z.shape == (4, 65)
    np.testing.assert_array_equal(Z[:, :-1], X)
    targets = Y != -100
    np.testing.assert_array_equal(Z[:, 1:][targets], Y[targets])
    assert (Z[:, 0] == tok.bos).all() == bos_rows
    assert bool(targets[:, 0].any()) != bos_rows  # the added <s> predicts no target: context=2


def test_distillation_in_micro_batches_sums_like_one_pass(env):
    """--micro-batch with --distill: at the first step (same weights in both runs) the
    next-token part and the teacher's token count equal the one-pass step's; the span term is
    a per-pass mean weighted by each pass's targets, so it is close, not equal."""
    tok = plan(env["base"], env["tok"], "replace", init="mean-norm")
    stream = pack([tok.encode(d) for d in read_documents([str(env["train"])])], tok.bos, tok.eos)
    teacher = load_base_model(env["base"], "float32", "cpu")

    def first_step(micro):
        torch.manual_seed(0)
        m, _ = _model(env, tok, "mean-norm")
        m = wrap_peft(m, tok.recipe, lora_r=4, lora_alpha=8)
        distiller = Distiller(teacher, tok, tok.base, weight=1.0, temperature=100.0, chunk=50)
        cfg = TrainConfig(steps=1, batch_size=4, micro_batch=micro, seq_len=64, lr=1e-2, warmup=1, eval_every=0,
                          save_every=0, progress=False)
        return train_loop(m, stream, tok.bos, cfg, distiller=distiller)[0]

    whole, parts = first_step(0), first_step(2)
    assert parts["teacher_tokens"] == whole["teacher_tokens"] > 0
    assert parts["nll"] == pytest.approx(whole["nll"], rel=1e-5)
    assert parts["alm"] == pytest.approx(whole["alm"], rel=0.01)  # 41.1529 against 41.1537 here
    assert np.isfinite(parts["loss"])


def test_two_stage_distilled_adapt_resumes_at_the_same_step_and_loss(env, tmp_path):
    kw = dict(steps=4, save_every=2, eval_every=0, stage1_steps=3, distill=0.5, init="focus", strategy="extend")
    straight = adapt(adapt_config(env, tmp_path / "a", **kw)).history
    assert [h.get("stage", "") for h in straight] == ["stage1"] * 3 + [""] * 4
    assert straight[-1]["tokens"] == 7 * 4 * 64   # both stages count toward the budget
    if importlib.util.find_spec("matplotlib"):  # the loss curve marks the two stages (issue 11)
        png = (tmp_path / "a" / "loss.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
    b = tmp_path / "b"
    import hypertok.adapt.train as T

    real = T.train_loop
    calls = []

    def interrupted(*a, **k):  # stop the second stage after its first checkpoint, as a kill would
        calls.append(k.get("stage", ""))
        if k.get("stage", "") == "":
            k["stop_at"] = 2
        return real(*a, **k)

    T.train_loop = interrupted
    try:
        adapt(adapt_config(env, b, **kw))
    finally:
        T.train_loop = real
    resumed = adapt(adapt_config(env, b, resume=True, **kw)).history
    assert [h["step"] for h in resumed] == [1, 2, 3, 1, 2, 3, 4]
    for x, y in zip(straight, resumed):
        assert abs(x["loss"] - y["loss"]) < 1e-5, (x, y)
    recipe = json.loads((b / "hypertok_adapt.json").read_text())
    assert recipe["extra"]["train"]["stage1_steps"] == 3 and recipe["extra"]["train"]["distill"] == 0.5
    assert (b / "resume" / "checkpoint.pt").is_file() and not (b / "checkpoint.pt").exists()


def test_stage1_match_trains_stage1_on_the_match_and_leaves_distillation_to_stage2(env, tmp_path):
    """``hypertok adapt --stage1-match W`` (issue 21): stage 1 trains on next-token + W x the
    hidden-state match, stage 2 as before (here with ``--distill``, whose ALM term it keeps)."""
    from hypertok.errors import HyperTokError

    res = adapt(adapt_config(env, tmp_path / "m", steps=3, save_every=0, eval_every=0, stage1_steps=2,
                             stage1_match=10.0, distill=0.5, strategy="replace"))
    one, two = res.history[:2], res.history[2:]
    assert [h.get("stage") for h in one] == ["stage1"] * 2 and len(two) == 3
    assert all(h["match"] > 0 and h["matched"] > 0 and "alm" not in h for h in one)
    assert all("alm" in h and "match" not in h for h in two)
    recipe = json.loads((tmp_path / "m" / "hypertok_adapt.json").read_text())
    assert recipe["extra"]["train"]["stage1_match"] == 10.0
    with pytest.raises(HyperTokError, match="give --stage1-steps"):
        adapt_config(env, tmp_path / "x", stage1_match=10.0)
    for bad in (-1.0, float("nan")):
        with pytest.raises(HyperTokError, match="must not be negative"):
            adapt_config(env, tmp_path / "x", stage1_steps=2, stage1_match=bad)


# ------------------------------------------------------------------ the fused loss (--loss liger)

def test_fused_loss_trains_the_same_rows_as_the_chunked_one(env, fake_liger):
    """--loss liger reaches the trainable rows through peft's head wrapper: the same step as the chunked loss."""
    tok = plan(env["base"], env["tok"], "extend")
    stream = pack([tok.encode(d) for d in read_documents([str(env["train"])])], tok.bos, tok.eos)
    after = {}
    for loss in ("chunked", "liger"):
        m, _ = _model(env, tok)
        m = wrap_peft(m, tok.recipe, lora_r=4, lora_alpha=8)
        cfg = TrainConfig(steps=3, batch_size=4, seq_len=64, lr=3e-2, rows_lr=3e-2, warmup=1, eval_every=0,
                          save_every=0, progress=False, loss=loss, loss_chunk=50)
        hist = train_loop(m, stream, tok.bos, cfg, is_row_param=is_row_param)
        assert hist[0]["loss_fn"] == loss and "loss_fn" not in hist[1]  # the log says which loss ran
        after[loss] = ([h["loss"] for h in hist], {n: p.detach().clone() for n, p in m.named_parameters()
                                                   if p.requires_grad})
    assert fake_liger.calls == 3
    assert after["liger"][0] == pytest.approx(after["chunked"][0], rel=1e-5)
    rows = [n for n in after["liger"][1] if is_row_param(n) and "lm_head" in n]
    assert rows  # the head's trainable rows exist, and moved the same way under both losses
    for n, p in after["liger"][1].items():  # AdamW's m / sqrt(v) at lr 3e-2 magnifies float32 summation-order
        # differences on entries whose gradient is near 0: measured up to 3.9e-5 (rows that start with <s>)
        torch.testing.assert_close(p, after["chunked"][1][n], rtol=1e-4, atol=1e-4)


def test_fused_loss_is_refused_clearly_without_liger_and_with_distillation(env, tmp_path, fake_liger, monkeypatch):
    import sys

    from hypertok.errors import HyperTokError

    with pytest.raises(HyperTokError, match="does not combine with --distill"):
        adapt_config(env, tmp_path / "a", loss="liger", distill=1.0)
    monkeypatch.setitem(sys.modules, "liger_kernel", None)  # as if not installed
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "liger_kernel" else
                        importlib.machinery.PathFinder.find_spec(name))
    with pytest.raises(HyperTokError, match="needs the liger-kernel package"):
        TrainConfig(loss="liger")
    with pytest.raises(HyperTokError, match="choose one of auto, chunked, liger"):
        TrainConfig(loss="full")


def test_auto_loss_is_liger_only_on_cuda_with_the_package_and_without_distillation(fake_liger, monkeypatch):
    from hypertok.loss import pick_loss

    assert pick_loss("auto", "cuda") == "liger"
    assert pick_loss("auto", "cuda", distill=True) == "chunked"  # distillation needs per-token log-probs
    assert pick_loss("auto", "cpu") == "chunked"
    assert pick_loss("liger", "cpu") == "liger"  # an explicit choice stands (and fails loudly off CUDA)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "liger_kernel" else
                        importlib.machinery.PathFinder.find_spec(name))
    assert pick_loss("auto", "cuda") == "chunked"
    assert TrainConfig().loss == "auto"


def test_compiled_body_trains_as_the_eager_one(env, monkeypatch):
    """--compile compiles the decoder body in place: same losses, same parameter names (dynamo's
    tracing is checked with its eager backend; inductor's code generation is the GPU run's)."""
    orig = torch.nn.Module.compile
    compiled = []

    def eager_compile(self, *a, **k):
        compiled.append(type(self).__name__)
        return orig(self, backend="eager")

    monkeypatch.setattr(torch.nn.Module, "compile", eager_compile)
    tok = plan(env["base"], env["tok"], "extend")
    stream = pack([tok.encode(d) for d in read_documents([str(env["train"])])], tok.bos, tok.eos)
    runs = {}
    for flag in (False, True):
        m, _ = _model(env, tok)
        m = wrap_peft(m, tok.recipe, lora_r=4, lora_alpha=8)
        names = [n for n, _ in m.named_parameters()]
        cfg = TrainConfig(steps=2, batch_size=2, seq_len=32, lr=1e-2, warmup=1, eval_every=0, save_every=0,
                          progress=False, compile=flag)
        runs[flag] = [h["loss"] for h in train_loop(m, stream, tok.bos, cfg, is_row_param=is_row_param)]
        assert [n for n, _ in m.named_parameters()] == names
    assert compiled == ["MistralModel"]
    assert runs[True] == pytest.approx(runs[False], rel=1e-4)
