"""``experiments/realmodel/run.py --preset tiny``: every lane of the issue-21 experiment on CPU.

A tiny Gemma 3 written as a GGUF (``test_gguf_import.write_gguf``), two tiny HyperTok
vocabularies, RuBLiMP-shaped pairs: import, packing, base, control, replace at two sizes,
extend, replace with the base as distillation teacher, replace with a stage 1 that matches the
base's hidden states (and the other recipes), paired speed and the report, and
``results.json`` has the shape the issue asks for.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("gguf")
pytest.importorskip("torch")
spm = pytest.importorskip("sentencepiece")

from .test_gguf_import import _tiny_model, sp_model, write_gguf  # noqa: E402,F401 (sp_model: a fixture)
from .tiny import make_text  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_every_lane_runs_and_results_have_the_issues_shape(tmp_path, sp_model):
    import torch

    from hypertok import BuildConfig, build

    torch.set_num_threads(1)
    sys.path.insert(0, str(ROOT / "experiments" / "realmodel"))
    import run

    model = _tiny_model("gemma3", sp_model.get_piece_size())
    write_gguf(tmp_path / "tiny.gguf", model, sp_model, "gemma3")
    train, dev = tmp_path / "train.txt", tmp_path / "dev.txt"
    train.write_text(make_text(300, 0))
    train2 = tmp_path / "train2.txt"  # a second file: the lanes pack an equal share of each
    train2.write_text(make_text(300, 2))
    dev.write_text(make_text(30, 1))
    toks = {}
    for size in (500, 700):
        toks[size] = tmp_path / f"tok{size}"
        build([str(train)], toks[size], BuildConfig(vocab_size=size, mode="word"))
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("phenomenon\tgood\tbad\n" + "".join(
        f"p{i % 2}\tОн пришёл домой {i}.\tОн пришла домой {i}.\n" for i in range(6)), encoding="utf-8")
    res = tmp_path / "results"
    run.main(["--gguf", str(tmp_path / "tiny.gguf"), "--hypertok", f"500={toks[500]}", f"700={toks[700]}",
              "--extend", "700", "--distill", "500",
              "--recipes", "500=match", "500=matchall", "700=stage1", "700=rows3x",
              "--train", str(train), str(train2),
              "--dev", f"ruslit={dev}", f"modern={dev}",
              "--pairs", str(pairs), "--work", str(tmp_path / "work"), "--results", str(res), "--preset", "tiny",
              "--lane", "all", "--device", "cpu", "--stop-by", str(time.time() + 3600), "--init", "focus"])
    out = json.loads((res / "results.json").read_text())
    mix = (tmp_path / "work" / f"train-mix-{run.PRESETS['tiny']['train_chars']}.txt").read_text().split("\n\n")
    share = run.PRESETS["tiny"]["train_chars"] // 2
    assert len(train.read_text()) > share and len(train2.read_text()) > share  # each file is cut to its share
    assert mix[:2] == [t.read_text().split("\n\n")[0].strip("\n") for t in (train, train2)]  # in turn
    assert share <= sum(map(len, mix[0::2])) < share + 2000 and share <= sum(map(len, mix[1::2])) < share + 2000
    assert out["context_chars"] == run.PRESETS["tiny"]["context_chars"] and out["settings"]["init"] == "focus"
    assert set(out["variants"]) == {"control", "ht500-replace", "ht700-replace", "ht700-extend", "ht500-distill",
                                    "ht500-match", "ht500-matchall", "ht700-stage1", "ht700-rows3x"}
    # stage 1 (rows alone) takes its share of the same budget, and the hidden-state match had places to compare
    steps = run.PRESETS["tiny"]["budget"] // (run.PRESETS["tiny"]["batch"] * run.PRESETS["tiny"]["seq"])
    for name in ("ht500-match", "ht700-stage1"):
        r = out["variants"][name]["recipe"]
        assert r["stage1_steps"] == round(0.1 * steps) > 0 and r["stage1_loss_first"] > 0, name
        row_tokens = run.PRESETS["tiny"]["batch"] * run.PRESETS["tiny"]["seq"]  # a point where stage 1 ends
        assert r["stage1_steps"] * row_tokens in [p["tokens"] for p in out["variants"][name]["curve"]], name
    m = out["variants"]["ht500-match"]["recipe"]
    assert m["match"] == run.RECIPES["match"]["match"] and 0 < m["stage1_match_first"] and m["stage1_nll_first"] > 0
    assert out["variants"]["ht700-rows3x"]["recipe"] == {"name": "rows3x", "rows_lr": 3e-3, "stage1_steps": 0}
    # matchall: no stage 1, the hidden-state match beside the next-token loss on every step of the LoRA stage
    a = out["variants"]["ht500-matchall"]["recipe"]
    assert a["stage1_steps"] == 0 and a["throughout"] and not any(k.startswith("stage1_match") for k in a)
    assert a["match_first"] > 0 and a["match_last"] > 0 and a["nll_first"] > 0
    assert a["loss_first"] == pytest.approx(a["nll_first"] + a["match"] * a["match_first"], rel=1e-4)
    assert out["settings"]["recipes"] == {k: run.RECIPES[k] for k in ("match", "matchall", "stage1", "rows3x")}
    d = out["variants"]["ht500-distill"]["distill"]  # the teacher read the rows (from its own <bos>, issue 21)
    assert d["teacher_tokens_per_step"] > 0 and d["alm_first"] > 0 and d["alm_last"] > 0
    for name, r in [("base", out["base"]), *out["variants"].items()]:
        assert r["tokenizer"] in ("ht", "base"), name
        for key in ("adapt_tokens", "params", "bpc_by_text", "bpc_by_text_token_windows", "rublimp",
                    "rublimp_by_phenomenon", "chars_per_s"):
            assert key in r, (name, key)
        assert set(r["bpc_by_text"]) == {"ruslit", "modern"} and all(0 < b < 50 for b in r["bpc_by_text"].values())
        assert 0 <= r["rublimp"] <= 1 and set(r["rublimp_by_phenomenon"]) == {"p0", "p1"}
    for name, r in out["variants"].items():
        assert r["curve"][0]["tokens"] == 0 and r["curve"][-1]["tokens"] == r["adapt_tokens"] > 0  # init to end
        assert r["adapt_tokens"] == r["planned_tokens"] and not r["stopped_by_time"]  # an hour is plenty
        if r["tokenizer"] == "ht":
            check = r["plain_transformers"]
            assert check["ids_equal"] == check["lines"] > 0 and check["tie_word_embeddings"] and check["tied_in_memory"]
    # replace shrinks the tied 700-row embedding to the HyperTok size; extend grows it
    assert out["variants"]["ht500-replace"]["params"] < out["base"]["params"] < out["variants"]["ht700-extend"]["params"]
    assert (res / "summary.md").is_file() and (res / "curves.png").is_file()
    assert {v["device"] for v in out["variants"].values()} == {"cpu"}  # each lane says where it trained
    # the speed-up is the median of the paired rounds' ratios, each kept: their spread is the noise
    v = out["verdict"]
    assert len(v["chars_per_s_vs_base_rounds"]) == run.PRESETS["tiny"]["repeats"]
    assert v["chars_per_s_vs_base"] == pytest.approx(statistics.median(v["chars_per_s_vs_base_rounds"]))
    assert v["gen_chars_per_token_vs_base"] > 0
    # the distiller's alignment on these tokenizers, rows from <bos> (check_distill_rows.py, run on the real ones)
    import check_distill_rows

    check_distill_rows.main(["--base", str(tmp_path / "work" / "base"), "--hypertok", str(toks[500]),
                             "--dev", f"dev={train}", "--rows", "3", "--seq-len", "64", "--out", str(tmp_path / "c.json")])
    c = json.loads((tmp_path / "c.json").read_text())["texts"]["dev"]
    assert c["rows"] == 3 and c["rows_aligned"] == 3 and c["spans_per_row_min"] > 0 and c["teacher_rows_start_with_bos"]
    # init_diagnose.py: the output role of the rows from the base's hidden states, and rows refitted to the
    # logits the base implies (ridge), which can only bring those logits nearer
    import init_diagnose

    init_diagnose.main(["--base", str(tmp_path / "work" / "base"), "--hypertok", str(toks[500]), "--train", str(train),
                        "--chars", "3000", "--ridge", "1.0", "--dev", f"dev={dev}", "--pairs", str(pairs),
                        "--eval-chars", "600", "--pairs-per-phenomenon", "2", "--out", str(tmp_path / "d.json")])
    d = json.loads((tmp_path / "d.json").read_text())
    assert d["aligned_tokens"] > 0 and d["mean_rows"]["nats_base"] > 0 and d["mean_rows"]["nats_new_rows"] > 0
    assert d["ridge"]["1.0"]["rms_logit_error"] <= d["mean_rows"]["rms_logit_error"] + 1e-6
    assert set(d["mean_rows"]["start"]["bpc_by_text"]) == {"dev"}
    # a report from a lease's logs.tar.gz alone (as gpu.sh brings it back) is the lease's own report
    import tarfile

    with tarfile.open(tmp_path / "logs.tar.gz", "w:gz") as tar:  # (gpu.sh adds logs/, the lanes' stdout)
        tar.add(tmp_path / "work" / "lanes", arcname="lanes")
    again = run.main(["--hypertok", f"500={toks[500]}", f"700={toks[700]}", "--extend", "700", "--distill", "500",
                      "--recipes", "500=match", "500=matchall", "700=stage1", "700=rows3x",
                      "--work", str(tmp_path / "w2"),
                      "--results", str(tmp_path / "r2"), "--preset", "tiny", "--init", "focus", "--lane", "report",
                      "--logs", str(tmp_path / "logs.tar.gz")])
    assert again == 0 and json.loads((tmp_path / "r2" / "results.json").read_text()) == out
    # a later lease that ran the control alone (gpu.sh SKIP="base speed") replaces its lane; the first lease's
    # generation speed then no longer speaks for the control, and stays for the lanes it measured
    (tmp_path / "l2" / "lanes").mkdir(parents=True)
    control = {**out["variants"]["control"], "adapt_tokens": 12_345}
    for k in ("chars_per_s", "speed"):
        control.pop(k, None)
    (tmp_path / "l2" / "lanes" / "control.json").write_text(json.dumps(control))
    with tarfile.open(tmp_path / "logs2.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "l2" / "lanes", arcname="lanes")
    run.main(["--hypertok", f"500={toks[500]}", f"700={toks[700]}", "--extend", "700", "--distill", "500",
              "--recipes", "500=match", "500=matchall", "700=stage1", "700=rows3x",
              "--work", str(tmp_path / "w4"),
              "--results", str(tmp_path / "r4"), "--preset", "tiny", "--init", "focus", "--lane", "report",
              "--logs", str(tmp_path / "logs.tar.gz"), str(tmp_path / "logs2.tar.gz")])
    both = json.loads((tmp_path / "r4" / "results.json").read_text())
    assert both["variants"]["control"]["adapt_tokens"] == 12_345 and "speed" not in both["variants"]["control"]
    assert both["variants"]["ht500-replace"]["speed"] == out["variants"]["ht500-replace"]["speed"]
    assert both["base"]["speed"] == out["base"]["speed"]
    with tarfile.open(tmp_path / "bad.tar.gz", "w:gz") as tar:
        tar.add(train, arcname="../train.txt")
    with pytest.raises(SystemExit, match="not a lease's logs"):
        run.main(["--work", str(tmp_path / "w3"), "--lane", "report", "--logs", str(tmp_path / "bad.tar.gz")])
    # match_grad.py: both gradients on the untrained rows, and the weight that would make them equal
    import match_grad

    match_grad.main(["--base", str(tmp_path / "work" / "base"), "--hypertok", str(toks[500]), "--train", str(train),
                     "--chars", "3000", "--rows", "2", "--seq-len", "32", "--out", str(tmp_path / "g.json")])
    g = json.loads((tmp_path / "g.json").read_text())
    assert g["matched"] > 1 and g["grad_norm_nll"] > 0 and g["grad_norm_match_at_weight_1"] > 0
    assert g["weight_for_equal_norms"] == pytest.approx(g["grad_norm_nll"] / g["grad_norm_match_at_weight_1"])
    # rublimp_tokens.py: each tokenizer's lean per phenomenon, beside the lane's accuracy against the control
    import rublimp_tokens

    rublimp_tokens.main(["--base", str(tmp_path / "work" / "base"), "--hypertok", f"500={toks[500]}",
                         "--pairs", str(pairs), "--results", str(res / "results.json"), "--out", str(tmp_path / "t.json"),
                         "--train", str(train), "--train-chars", "5000", "--rare", "1e9"])
    t = json.loads((tmp_path / "t.json").read_text())
    assert t["pairs"] == 6 and set(t["phenomena"]) == {"p0", "p1"}
    assert t["tokenizers"]["500"]["rare_pairs"] == 1.0  # every pair tells good from bad, each token seen < 1e9 times
    assert set(t["tokenizers"]["500"]["correlation"]) == {"lean_vs_base", "rare"}
    for ph, r in t["phenomena"].items():
        acc = out["variants"]["ht500-replace"]["rublimp_by_phenomenon"][ph]
        assert r["500"]["acc_points_vs_reference"] == pytest.approx(
            100 * (acc - out["variants"]["control"]["rublimp_by_phenomenon"][ph]))
        assert -1 <= r["500"]["lean_ht"] <= 1 and r["500"]["lean_vs_base"] == r["500"]["lean_ht"] - r["500"]["lean_base"]
    # speed prompts come from every dev text in turn
    assert run.speed_prompts({"a": ["x" * 300, "y" * 300], "b": ["z" * 250]}, 3) == ["x" * 200, "z" * 200, "y" * 200]


def test_equal_token_comparison_reads_the_curve_at_the_controls_tokens():
    """Lanes sharing a deadline train on different numbers of tokens; the verdict also compares the best
    variant's curve, interpolated at the control's tokens, with the better of control and base there."""
    sys.path.insert(0, str(ROOT / "experiments" / "realmodel"))
    import run

    def point(tokens, bpc, acc):
        return {"tokens": tokens, "bpc_by_text": {"ruslit": bpc}, "rublimp": acc}

    ht = [point(0, 3.0, 0.70), point(4, 2.0, 0.80), point(8, 1.0, 0.90)]
    control = [point(0, 1.5, 0.85), point(6, 1.2, 0.86)]
    r = run.at_equal_tokens(ht, control, {"bpc_by_text": {"ruslit": 1.4}, "rublimp": 0.88})
    assert r["tokens"] == 6 and r["variant_tokens_reached"] == 8
    assert r["bpc_vs_better_reference"]["ruslit"] == pytest.approx(1.5 / 1.2 - 1)  # 1.5 halfway from 2.0 to 1.0
    assert r["rublimp_points_vs_better_reference"] == pytest.approx(100 * (0.85 - 0.88))  # the base's is better
    short = run.at_equal_tokens(ht[:2], control)  # a variant that stopped before the control's tokens: its last point
    assert short["bpc_vs_better_reference"]["ruslit"] == pytest.approx(2.0 / 1.2 - 1)


def test_a_report_without_the_base_lane_says_what_to_give(tmp_path):
    """A lease run with gpu.sh SKIP=base has no base JSON of its own: the report says so, and how to join an
    earlier lease's, rather than failing on a missing file."""
    sys.path.insert(0, str(ROOT / "experiments" / "realmodel"))
    import run

    with pytest.raises(SystemExit, match="no base lane to report against.*--logs"):
        run.main(["--hypertok", f"500={tmp_path}", "--work", str(tmp_path / "w"), "--results", str(tmp_path / "r"),
                  "--preset", "tiny", "--lane", "report"])
    assert not (tmp_path / "r").exists()


def test_verdict_leaves_the_speed_bar_open_where_no_speed_lane_ran():
    """A lease that skipped the speed lane (gpu.sh SKIP=speed) has no chars/s for its best variant: the speed bar
    is then unmeasured (None) in its report, not missed; measured, it is read from the paired rounds' median."""
    sys.path.insert(0, str(ROOT / "experiments" / "realmodel"))
    import run

    def lane(tokenizer, bpc, acc):
        return {"tokenizer": tokenizer, "bpc_by_text": {"ruslit": bpc}, "rublimp": acc}

    out = {"base": lane("base", 2.0, 0.80),
           "variants": {"control": lane("base", 1.9, 0.81), "ht": lane("ht", 1.95, 0.805)}}
    v = run.verdict(out)
    assert v["best"] == "ht" and v["bars"]["speed_1_4x"] is None and v["bars"]["bpc_within_3pct"]
    assert v["rublimp_points_vs_better_reference"] == pytest.approx(-0.5) and v["bars"]["rublimp_within_1pt"]
    speed = {"speedup_chars_per_s": 1.3, "speedup_tokens_per_s": 1.0, "gen_chars_per_token": 3.0,
             "rounds_chars_per_s": [130.0, 130.0]}
    out["base"]["speed"] = {"gen_chars_per_token": 2.3, "rounds_chars_per_s": [100.0, 100.0]}
    out["variants"]["ht"]["speed"] = speed
    assert run.verdict(out)["bars"]["speed_1_4x"] is False


def test_projection_reads_the_controls_line_at_the_hypertok_lanes_tokens(tmp_path):
    """project_control.py: the control's final bits/char as a line in log2(tokens), read at a HyperTok lane's
    tokens; a lane at two budgets gets its own line and the tokens where it meets the bars."""
    sys.path.insert(0, str(ROOT / "experiments" / "realmodel"))
    import project_control

    def results(path, **lanes):
        v = {n: {"tokenizer": "base" if n == "control" else "ht", "adapt_tokens": t, "bpc_by_text": {"dev": b},
                 "rublimp": acc} for n, (t, b, acc) in lanes.items()}
        path.write_text(json.dumps({"variants": v}))
        return path

    # the control: 2.0 bits/char at 2^20 tokens, 1.9 at 2^21, 1.8 at 2^22 (0.1 a doubling), accuracy flat
    c = [results(tmp_path / f"c{i}.json", control=(2 ** (20 + i), 2.0 - 0.1 * i, 0.80)) for i in range(3)]
    # a lane: 2.5 at 2^20, 2.2 at 2^22 (0.15 a doubling); accuracy 70% then 76% (3 points a doubling)
    early = results(tmp_path / "h0.json", control=(2 ** 20, 2.0, 0.80), ht=(2 ** 20, 2.5, 0.70))
    late = results(tmp_path / "h1.json", ht=(2 ** 22, 2.2, 0.76))
    out = tmp_path / "out" / "p.json"
    inputs = sorted(tmp_path.iterdir())
    assert project_control.main(["--control", *map(str, c), "--hypertok", str(early), str(late), "--out", str(out)]) == 0
    # it writes its JSON and the plot beside it, nothing else anywhere (the inputs untouched)
    assert sorted(f.name for f in out.parent.iterdir()) == ["p.json", "p.png"]
    assert sorted(tmp_path.iterdir()) == sorted([*inputs, out.parent])
    p = json.loads(out.read_text())
    lane = p["texts"]["dev"]["lanes"]["ht"]
    assert p["texts"]["dev"]["slope_per_doubling"] == pytest.approx(-0.1)
    assert lane["control_projected"] == pytest.approx(1.8) and lane["gap_vs_projected"] == pytest.approx(2.2 / 1.8 - 1)
    # equal where 2.5 - 0.15 k = 2.0 - 0.1 k: k = 10 doublings past 2^20
    assert lane["slope_per_doubling"] == pytest.approx(-0.15) and lane["tokens_to_equal"] == pytest.approx(2 ** 30)
    # within 3%: 2.5 - 0.15 k = 1.03 (2.0 - 0.1 k)
    k = (2.5 - 1.03 * 2.0) / (0.15 - 1.03 * 0.1)
    assert lane["tokens_to_bar"] == pytest.approx(2 ** (20 + k))
    # RuBLiMP: 79 points (the control's 80 less one) at 70 + 3 k: k = 3
    r = p["rublimp"]["lanes"]["ht"]
    assert r["points_per_doubling"] == pytest.approx(3.0) and r["tokens_to_bar"] == pytest.approx(2 ** 23)
    # a lane whose line falls no faster than the bar's never meets it
    assert project_control.crossing(2.0, -0.1, 2.5, -0.05, 1.03) is None
    # a third budget where the lane flattens: 2.15 and 76.5% at 2^23; the line through its last two points
    # falls 0.05 a doubling, slower than the bar above the control's (0.103): it never meets it; RuBLiMP gains
    # 0.5 points a doubling there, so 79 points at 76.5 + 0.5 k: k = 5 doublings past 2^23
    mid = results(tmp_path / "h2.json", ht=(2 ** 23, 2.15, 0.765))
    assert project_control.main(["--control", *map(str, c), "--hypertok", str(early), str(late), str(mid),
                                 "--out", str(out)]) == 0
    p = json.loads(out.read_text())
    lane, r = p["texts"]["dev"]["lanes"]["ht"], p["rublimp"]["lanes"]["ht"]
    assert lane["slope_last_two"] == pytest.approx(-0.05) and lane["tokens_to_bar_last_two"] is None
    assert lane["tokens_to_bar"] is not None  # (the line through all three still meets it: the two readings differ)
    assert r["points_per_doubling_last_two"] == pytest.approx(0.5)
    assert r["tokens_to_bar_last_two"] == pytest.approx(2 ** 28)
    with pytest.raises(SystemExit, match="two budgets"):
        project_control.main(["--control", str(c[0]), "--hypertok", str(late), "--out", str(out)])
