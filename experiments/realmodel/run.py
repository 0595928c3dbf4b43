"""Issue 21: a real pretrained model (Gemma 3 270M, from its GGUF) moved onto HyperTok, measured fairly.

1. **prep**: ``hypertok import`` of the GGUF (weights dequantised, its own SentencePiece
   tokenizer), then the training text packed once per tokenizer (``--train``, modern + ruslit).
2. **base**: the base measured first, as every variant is measured.
3. **variants** (one process each, sharing the GPU; same time and token budgets, same LoRA):
   HyperTok ``replace`` per ``--hypertok`` size, HyperTok ``extend``, and the **control**: the
   base continued on the same text with its own tokenizer (LoRA + every row), the bar a
   HyperTok variant must meet, since in-domain training alone moves a model.
4. **Measures**, the same for every model:
   - bits/char with equal characters of context (``--context-chars``-character windows cut at
     whitespace, each scored from ``<bos>``: no model sees more text than another), on each
     ``--dev`` text; the token-window figure (``--seq-len`` tokens, rows starting with
     ``<bos>``) beside it;
   - accuracy on minimal pairs (``--pairs``, RuBLiMP: the whole good sentence more probable
     than the bad one), overall and per phenomenon;
   - curves of both against adaptation tokens; parameters; generation chars/s at batch 1
     (paired rounds against the base: **speed** lane).
   A lane trains until ``--stop-by`` (a wall-clock time) or its planned tokens, whichever
   comes first, with its learning rate's cosine decay fitted to that time (``TrainConfig``'s
   ``time_budget``): a GPU lease is short, a lane with a cheaper step trains on more tokens
   in it, and the curves (from 0 tokens) compare the lanes at equal tokens.
5. **report**: ``results.json`` (the issue's shape), ``curves.png``, ``summary.md``.

    python experiments/realmodel/run.py --gguf gemma.gguf --hypertok 64k=tok64k 32k=tok32k \\
        --train modern-1.txt.xz ruslit-train.txt.xz --dev ruslit=ruslit-dev.txt modern=modern-dev.txt.xz \\
        --pairs rublimp/dev.tsv --work /tmp/rm --results experiments/realmodel --preset lease --lane all

``--preset tiny`` runs every lane on CPU in a minute (with a tiny GGUF; the test of this script).
Further ``--dev NAME=FILE`` texts and ``--pairs`` files score the same models on your own data.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

PRESETS = {
    "tiny": dict(seq=64, batch=4, lora_r=8, budget=6_000, eval_tokens=2_000, train_chars=60_000, curve_chars=3_000,
                 final_chars=6_000, context_chars=200, curve_pairs=2, final_pairs=2, gen_tokens=8, prompts=2,
                 repeats=2, dtype="float32", import_dtype="float32"),
    # the base alone on a CPU (lanes import and base): the first 50k characters of each text, 20 pairs a phenomenon
    "cpu-base": dict(seq=1024, batch=8, lora_r=64, budget=0, eval_tokens=1, train_chars=0, curve_chars=20_000,
                     final_chars=50_000, context_chars=2048, curve_pairs=5, final_pairs=20, gen_tokens=32, prompts=2,
                     repeats=2, dtype="float32", import_dtype="float32"),
    # one 30-minute lease, about 20 minutes of it for training and measuring
    # (budget: the ceiling of 100M tokens; --stop-by, the lease, ends the lanes first)
    "lease": dict(seq=1024, batch=32, micro_batch=16, lora_r=64, budget=100_000_000, eval_tokens=3_000_000,
                  train_chars=120_000_000, curve_chars=120_000, final_chars=400_000, context_chars=2048,
                  curve_pairs=10, final_pairs=0, gen_tokens=128, prompts=4, repeats=3, dtype="float32",
                  import_dtype="float32"),
}
# what is left of a lease after failed starts: about four minutes of training, fewer measurements, and
# 40M characters packed per lane (more than four minutes train on; packing runs inside the training time)
PRESETS["short"] = {**PRESETS["lease"], "budget": 8_000_000, "eval_tokens": 1_000_000, "final_chars": 200_000,
                    "prompts": 2, "train_chars": 40_000_000}
# the same token budget for every lane, in one lease: 8M tokens each, each lane's schedule complete (the
# control, at about 9k tokens/s beside the others, takes about 15 minutes; the HyperTok lanes finish first)
PRESETS["equal-tokens"] = {**PRESETS["lease"], "budget": 8_000_000, "eval_tokens": 2_000_000}
# 20M tokens a lane, for one lane a lease (the control alone trained at 23.6k tokens/s in the fourth lease: some 14
# minutes; the 32k replace lane at 28k beside others), the lanes' JSON then reported with the first lease's
# HyperTok lanes, which trained 20-23M tokens (the study's README)
PRESETS["equal-20m"] = {**PRESETS["lease"], "budget": 20_000_000, "eval_tokens": 4_000_000}
# 40M tokens for one HyperTok lane alone on the card, where project_control.py's lines put the RuBLiMP bar (35-40M);
# a 32k lane reads its 19.8M-token mix about twice (RusLit train, a quarter of the mix, holds no more text)
PRESETS["equal-40m"] = {**PRESETS["lease"], "budget": 40_000_000, "eval_tokens": 8_000_000}
DISTILL_TEMPERATURE = 100.0  # hypertok adapt's default, as on the proxy of issue 10
LR = dict(lora=3e-4, rows=1e-3)  # below the proxy's 1e-3 / 3e-3: Adam moves each entry by about lr a step, Gemma's are ~0.03
# name -> (tokenizer size key or "base", strategy)
VARIANTS = {"control": ("base", "base")}
# other recipes of `replace` for a lane htKEY-NAME (``--recipes KEY=NAME``), each changing one thing against plain
# replace: rows3x, the rows' learning rate x3 throughout; stage1, the first `stage1` of the steps train the rows alone
# (body and LoRA frozen: the base's body) at `stage1_lr`, then the plain recipe on the rest; match, the same stage 1
# with the base's hidden states after the same bytes as a second target (`match`: its weight; HiddenMatcher)
RECIPES = {"rows3x": dict(rows_lr=3e-3),
           "stage1": dict(stage1=0.1, stage1_lr=3e-3),
           "match": dict(stage1=0.1, stage1_lr=3e-3, match=10.0),  # 10: its gradient on the rows near the
           # next-token loss's (match_grad.json); matchall: no stage 1, the match a second loss on every step, LoRA
           # on, keeping the body's hidden states near the base's (the fifth lease: tokens alone flatten by 40M)
           "matchall": dict(match=10.0, throughout=True)}


def variants(args) -> dict:
    out = dict(VARIANTS)
    for key in args.hypertok:
        out[f"ht{key}-replace"] = (key, "replace")
    if args.extend:
        out[f"ht{args.extend}-extend"] = (args.extend, "extend")
    if args.distill:  # replace, trained with the base as teacher (lane_variant tells it by its name)
        out[f"ht{args.distill}-distill"] = (args.distill, "replace")
    for key, recipe in args.recipes:  # replace, trained another way (RECIPES; lane_variant tells it by its name)
        out[f"ht{key}-{recipe}"] = (key, "replace")
    return out


def recipe_of(name: str) -> dict:
    """The RECIPES entry of lane ``name`` ({} for the plain lanes)."""
    return RECIPES.get(name.split("-", 1)[-1], {}) if name.startswith("ht") else {}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def write_json(path: Path, obj) -> None:
    from hypertok.files import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(obj, indent=1, ensure_ascii=False))


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


# ------------------------------------------------------------------------------ data and tokenizers
def base_dir(args) -> Path:
    return args.work / "base"


def tokenizer_of(args, name: str):
    from hypertok.adapt.recipe import plan
    from hypertok.registry import BaseTokenizer, find_base

    key, strategy = variants(args)[name]
    if key == "base":
        return BaseTokenizer(find_base(base_dir(args)))
    return plan(base_dir(args), args.hypertok[key], strategy)


def train_texts(args, P) -> list[str]:
    """The --train files as every lane packs them: with a character budget and several files, an equal
    share of each file, documents interleaved in turn (``train-mix-CHARS.txt``). Read in order, the first
    40M characters of the short preset were the first two modern shards alone, and the run of
    2026-12-07 learned no literature."""
    from itertools import zip_longest

    from hypertok.adapt.data import read_documents
    from hypertok.files import atomic_write

    if not P["train_chars"] or len(args.train) == 1:
        return [str(p) for p in args.train]
    out = args.work / f"train-mix-{P['train_chars']}.txt"  # another preset's budget is another mix
    if not out.is_file():  # lanes racing here write the same text, each renamed in whole
        share = P["train_chars"] // len(args.train)
        groups = [read_documents([str(p)], share, what="--train") for p in args.train]
        atomic_write(out, "\n\n".join(d.strip("\n") for g in zip_longest(*groups) for d in g if d is not None))
    return [str(out)]


def packed(args, P, name: str, tok):
    from hypertok.adapt.data import open_packed, prepare

    out = args.work / "data" / name  # one file a lane: two lanes of one tokenizer never race to write it
    if not out.with_suffix(".bin").is_file():
        prepare(tok, train_texts(args, P), out, P["train_chars"], what="--train")
    return open_packed(out.with_suffix(".bin"), tok)


def lane_import(args, P) -> None:
    from hypertok.adapt.gguf_import import import_gguf

    if not (base_dir(args) / "hypertok_import.json").is_file():
        t0 = time.time()
        rec = import_gguf(args.gguf, base_dir(args), dtype=P["import_dtype"])
        log(f"imported {rec['architecture']}: {rec['parameters'] / 1e6:.1f}M parameters in {time.time() - t0:.0f}s")


def lane_prep(args, P) -> None:
    """The import, then every variant's training text packed (a variant lane packs its own when missing)."""
    lane_import(args, P)
    for name in variants(args):
        t0 = time.time()
        _, meta = packed(args, P, name, tokenizer_of(args, name))
        log(f"packed {name}: {meta.tokens / 1e6:.1f}M tokens of {meta.chars / 1e6:.1f}M chars ({time.time() - t0:.0f}s)")
    (args.work / "PREP_DONE").write_text("ok")


# ------------------------------------------------------------------------------ measuring
_READ: dict = {}  # (what, files, chars) -> what was read: every curve point measures the same texts and pairs


def dev_docs(args, chars: int) -> dict[str, list[str]]:
    from hypertok.adapt.data import read_documents

    key = ("dev", tuple((name, str(path)) for name, path in args.dev), chars)
    if key not in _READ:
        _READ[key] = {name: read_documents([str(path)], chars, what="--dev") for name, path in args.dev}
    return _READ[key]


def pairs_of(args) -> dict[str, list[dict]]:
    from hypertok.adapt.evaluate import read_minimal_pairs

    key = ("pairs", tuple(map(str, args.pairs)), 0)
    if key not in _READ:
        _READ[key] = {Path(p).stem: read_minimal_pairs(p) for p in args.pairs}
    return _READ[key]


def quality(model, tok, args, P, chars: int, per_phenomenon: int, token_windows: bool = False) -> dict:
    """Equal-context bits/char per dev text, minimal-pair accuracy per file (and token windows)."""
    from hypertok.adapt.evaluate import bits_per_char, bits_per_char_equal_context, minimal_pair_accuracy

    out: dict = {"bpc_by_text": {}, "chars_per_token_by_text": {}}
    for name, docs in dev_docs(args, chars).items():
        r = bits_per_char_equal_context(model, tok, docs, P["context_chars"])
        out["bpc_by_text"][name] = r["bpc"]
        out["chars_per_token_by_text"][name] = r["chars_per_token"]
        if token_windows:
            out.setdefault("bpc_by_text_token_windows", {})[name] = bits_per_char(model, tok, docs, P["seq"])["bpc"]
    for stem, pairs in pairs_of(args).items():
        r = minimal_pair_accuracy(model, tok, pairs, limit_per_phenomenon=per_phenomenon)
        out.setdefault("pairs", {})[stem] = r
    if out.get("pairs"):
        first = next(iter(out["pairs"].values()))
        out["rublimp"], out["rublimp_by_phenomenon"], out["rublimp_pairs"] = \
            first["accuracy"], first["by_phenomenon"], first["pairs"]
    return out


def n_params(model) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())  # a tied matrix once


def lane_base(args, P) -> None:
    from hypertok.adapt.model import load_base_model

    tok = tokenizer_of(args, "control")
    model = load_base_model(base_dir(args), P["dtype"], args.device_name).eval()
    t0 = time.time()
    r = {"tokenizer": "base", "adapt_tokens": 0, "params": n_params(model), "model_vocab_size": len(tok),
         **quality(model, tok, args, P, P["final_chars"], P["final_pairs"], token_windows=True),
         "curve_point": quality(model, tok, args, P, P["curve_chars"], P["curve_pairs"])}
    r["eval_seconds"] = time.time() - t0
    write_json(args.work / "lanes" / "base.json", r)
    log(f"base: {fmt(r)}")


def fmt(r: dict) -> str:
    bpc = " ".join(f"{k} {v:.4f}" for k, v in r["bpc_by_text"].items())
    return f"bpc {bpc}  rublimp {r.get('rublimp', float('nan')):.4f}"


# ------------------------------------------------------------------------------ training
def lane_variant(args, P, name: str) -> None:
    import torch

    from hypertok.adapt.model import AdaptedModel, is_row_param, load_base_model, wrap_peft
    from hypertok.adapt.recipe import resize_and_init, row_overlaps
    from hypertok.adapt.train import TrainConfig, Trainer, rows_only
    from hypertok.registry import Recipe

    key, strategy = variants(args)[name]
    tok = tokenizer_of(args, name)
    t0 = time.time()
    stream, meta = packed(args, P, name, tok)
    log(f"{name}: {meta.tokens / 1e6:.1f}M training tokens of {meta.chars / 1e6:.1f}M chars ({time.time() - t0:.0f}s)")
    torch.manual_seed(args.seed)
    model = load_base_model(base_dir(args), P["dtype"], args.device_name)
    if key == "base":  # the control: its own rows, every one of them trains, as the new rows of a variant do
        V = len(tok)
        recipe = Recipe("base", V, V, list(range(V)), list(range(V)), [[i] for i in range(V)], tok.bos, tok.eos,
                        tok.pad_id)
    else:
        recipe = tok.recipe
        resize_and_init(model, recipe, init=args.init, overlaps=row_overlaps(tok) if args.init == "focus" else None)
    model.config.use_cache = False
    model = wrap_peft(model, recipe, P["lora_r"], P["lora_r"])
    distiller = None
    if name.endswith("-distill"):  # the untouched base, reading the same rows with its own tokenizer, as teacher
        from hypertok.adapt.distill import Distiller

        teacher = load_base_model(base_dir(args), P["dtype"], args.device_name)
        distiller = Distiller(teacher, tok, tok.base, args.distill_weight, DISTILL_TEMPERATURE, chunk=4096)
    steps = max(2, int(P["budget"] // (P["batch"] * P["seq"])))
    every = max(1, int(P["eval_tokens"] // (P["batch"] * P["seq"])))
    how = recipe_of(name)
    stage1 = min(steps - 1, round(how.get("stage1", 0.0) * steps))  # steps of stage 1, taken from the budget
    curve = []
    evals = [0.0]  # seconds spent evaluating during training
    trainer = None

    def eval_fn(m):
        t0 = time.time()
        tokens = trainer.history[-1]["tokens"] if trainer and trainer.history else 0
        point = {"tokens": tokens, **quality(m, tok, args, P, P["curve_chars"], P["curve_pairs"])}
        point.pop("pairs", None)
        curve.append(point)
        evals[0] += time.time() - t0
        log(f"{name} @ {tokens / 1e6:.1f}M: {fmt(point)}")
        write_json(args.work / "lanes" / f"{name}.curve.json", curve)
        return {}

    eval_fn(model.eval())  # the starting point: the initialised rows, the LoRA still zero
    evals[0] = 0.0  # before t0: not a second of training to take out
    if args.stop_by and args.stop_by - time.time() < 1:
        raise SystemExit(f"{name}: --stop-by passed before training began")
    if args.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.time()
    history = []
    matcher = None
    if how.get("match"):  # the base's hidden states a second target: in stage 1, or on every step (`throughout`)
        from hypertok.adapt.distill import HiddenMatcher

        matcher = HiddenMatcher(load_base_model(base_dir(args), P["dtype"], args.device_name), tok, tok.base,
                                how["match"], chunk=4096)
    if stage1:  # the rows alone (the body still the base's), then the plain recipe on the rest of the budget
        first = TrainConfig(steps=stage1, batch_size=P["batch"], seq_len=P["seq"], lr=how["stage1_lr"],
                            rows_lr=how["stage1_lr"], warmup=max(1, stage1 // 10), eval_every=0, save_every=0,
                            seed=args.seed, progress=False, desc=f"{name} stage 1",
                            micro_batch=P.get("micro_batch", 0), loss_chunk=4096)
        with rows_only(model):
            trainer = Trainer(model, stream, tok.bos, first, is_row_param=is_row_param, stage="stage1",
                              distiller=matcher)
            history += trainer.run()
        eval_fn(model.eval())  # where stage 1 left the model
    if not how.get("throughout"):
        matcher = None  # (its teacher freed before the LoRA stage)
    left = max(args.stop_by - time.time(), 1.0) if args.stop_by else 0.0  # what stage 1 left of the time
    loop = TrainConfig(steps=steps - stage1, batch_size=P["batch"], seq_len=P["seq"], lr=LR["lora"],
                       rows_lr=how.get("rows_lr", LR["rows"]), warmup=max(1, min((steps - stage1) // 20, 25)),
                       eval_every=every, save_every=0, seed=args.seed, progress=False, desc=name,
                       micro_batch=P.get("micro_batch", 0), loss_chunk=4096, time_budget=left)
    trainer = Trainer(model, stream, tok.bos, loop, is_row_param=is_row_param, distiller=distiller or matcher,
                      row_offset=stage1 * P["batch"])
    history += trainer.run(eval_fn)
    sync(args.device)
    seconds = time.time() - t0 - evals[0]
    tokens = history[-1]["tokens"]
    stopped = history[-1].get("ended_by") == "time_budget"
    peak = torch.cuda.max_memory_allocated() if args.device.type == "cuda" else None
    merged_dir = args.work / "merged" / name
    if key == "base":
        merged = model.merge_and_unload()
        merged.save_pretrained(merged_dir)
        for f in ("tokenizer.model", "tokenizer_config.json"):
            (merged_dir / f).write_bytes((base_dir(args) / f).read_bytes())
    else:
        AdaptedModel(model, tok).save_merged(merged_dir, base=base_dir(args))
        del model
        merged = load_base_model(merged_dir, P["dtype"], args.device_name)
    merged.eval()
    r = {"tokenizer": "base" if key == "base" else "ht", "strategy": strategy, "device": device_name(args),
         "adapt_tokens": tokens,
         "planned_tokens": steps * P["batch"] * P["seq"], "stopped_by_time": stopped,
         "adapt_seconds": seconds, "tokens_per_s": tokens / max(seconds, 1e-9), "peak_memory_bytes": peak,
         "params": n_params(merged), "model_vocab_size": len(tok), "train_tokens_available": meta.tokens,
         **quality(merged, tok, args, P, P["final_chars"], P["final_pairs"], token_windows=True), "curve": curve}
    if distiller is not None:
        r["distill"] = distill_record(history, args.distill_weight)
    if how:
        r["recipe"] = recipe_record(name, how, history, stage1)
    write_json(args.work / "lanes" / f"{name}.json", r)
    if key != "base":
        r["new_rows"] = len(tok.recipe.new_rows)
        try:  # a failure here is a finding to record, not a reason to lose the lane's measurements
            r["plain_transformers"] = plain_transformers_check(merged_dir, tok, args)
        except Exception as e:  # noqa: BLE001
            r["plain_transformers"] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
        write_json(args.work / "lanes" / f"{name}.json", r)
    log(f"{name}: {fmt(r)}  {tokens / 1e6:.1f}M tokens in {seconds:.0f}s")


def distill_record(history: list[dict], weight: float) -> dict:
    """The distillation term over training: its weight, its mean over the first and last tenth
    of the steps, and the teacher's tokens a step (a teacher that could not spell the rows would
    read few)."""
    k = max(1, len(history) // 10)
    return {"weight": weight, "temperature": DISTILL_TEMPERATURE,
            "alm_first": statistics.mean(h["alm"] for h in history[:k]),
            "alm_last": statistics.mean(h["alm"] for h in history[-k:]),
            "teacher_tokens_per_step": statistics.mean(h["teacher_tokens"] for h in history)}


def recipe_record(name: str, how: dict, history: list[dict], stage1: int) -> dict:
    """What a RECIPES lane did: its settings, stage 1's steps, and stage 1's loss (and, with
    ``match``, the hidden-state term) over its first and last tenth; with ``throughout``, the same
    of the steps after stage 1 (``nll_first``, ``match_last``, ...)."""
    r = {"name": name.split("-", 1)[-1], **how, "stage1_steps": stage1}
    for prefix, part in (("stage1_", history[:stage1]), ("", history[stage1:] if how.get("throughout") else [])):
        if part:
            k = max(1, len(part) // 10)
            for key in ("loss", "nll", "match"):
                if key in part[0]:
                    r[f"{prefix}{key}_first"] = statistics.mean(h[key] for h in part[:k])
                    r[f"{prefix}{key}_last"] = statistics.mean(h[key] for h in part[-k:])
    return r


def plain_transformers_check(merged_dir: Path, tok, args) -> dict:
    """The merged folder through plain ``AutoTokenizer``/``AutoModelForCausalLM``: ids on dev lines, tie kept."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    hf = AutoTokenizer.from_pretrained(merged_dir)
    lines = [line for docs in dev_docs(args, 200_000).values() for d in docs for line in d.split("\n") if line]
    same = sum(hf(line, add_special_tokens=False)["input_ids"] == ids
               for line, ids in zip(lines, tok.encode_batch(lines)))
    m = AutoModelForCausalLM.from_pretrained(merged_dir)
    tied = m.get_output_embeddings().weight.data_ptr() == m.get_input_embeddings().weight.data_ptr()
    return {"lines": len(lines), "ids_equal": int(same), "adds_bos": hf("а")["input_ids"][0] == tok.bos,
            "tie_word_embeddings": bool(m.config.tie_word_embeddings), "tied_in_memory": bool(tied)}


# ------------------------------------------------------------------------------ speed and report
def lane_speed(args, P) -> None:
    from hypertok.adapt.evaluate import paired_generation_speed
    from hypertok.adapt.model import load_base_model
    from hypertok.registry import AdaptedTokenizer

    models = {"base": (load_base_model(base_dir(args), P["dtype"], args.device_name).eval(),
                       tokenizer_of(args, "control"))}
    for name in variants(args):
        d = args.work / "merged" / name
        if not (args.work / "lanes" / f"{name}.json").is_file():
            continue
        tok = tokenizer_of(args, "control") if name == "control" else AdaptedTokenizer.load(d)
        models[name] = (load_base_model(d, P["dtype"], args.device_name).eval(), tok)
    prompts = speed_prompts(dev_docs(args, 50_000), P["prompts"])
    r = paired_generation_speed(models, prompts, P["gen_tokens"], P["repeats"], seed=args.seed)
    write_json(args.work / "lanes" / "speed.json", {"prompts": len(prompts), "gen_tokens": P["gen_tokens"],
                                                    "repeats": P["repeats"], "device": device_name(args), **r})
    log("speed: " + "  ".join(f"{n} {v['chars_per_s']:.0f} c/s x{v['speedup_chars_per_s']:.2f}" for n, v in r.items()))


def speed_prompts(texts: dict[str, list[str]], n: int) -> list[str]:
    """``n`` prompts of 200 characters, taken from the dev texts in turn (documents of 200 characters
    or more first): a model then writes in each text's style, not in one text's alone."""
    from itertools import chain, zip_longest

    each = [[d[:200] for d in docs if len(d) >= 200] or [docs[0][:200]] for docs in texts.values() if docs]
    return [p for p in chain.from_iterable(zip_longest(*each)) if p is not None][:max(1, n)]


def device_name(args) -> str:
    import torch

    return torch.cuda.get_device_name() if args.device.type == "cuda" else "cpu"


def unpack_logs(tarballs: list[Path], work: Path) -> None:
    """Unpack leases' ``logs.tar.gz`` (``logs/``, ``lanes/``) into ``work`` in turn: a later lease's lane JSON
    replaces an earlier one's of the same name, so that one report covers lanes run in several leases. An
    earlier lease's generation speed then no longer describes a replaced lane: where the later lease brings
    no ``speed.json`` of its own, that lane's entry leaves the earlier one (the base's stays: every ratio in
    it is to the base of the same rounds)."""
    import tarfile

    speed = work / "lanes" / "speed.json"
    for t in tarballs:
        with tarfile.open(t) as tar:
            bad = [m.name for m in tar.getmembers() if not (m.isfile() or m.isdir())
                   or not m.name.split("/")[0] in ("logs", "lanes") or ".." in m.name.split("/")]
            if bad:
                raise SystemExit(f"{t}: not a lease's logs.tar.gz (unexpected {bad[0]!r})")
            lanes = {Path(m.name).name.removesuffix(".json") for m in tar.getmembers()
                     if m.isfile() and m.name.startswith("lanes/") and m.name.endswith(".json")
                     and not m.name.endswith(".curve.json")}
            if "speed" not in lanes and speed.is_file():
                old = json.loads(speed.read_text())
                write_json(speed, {k: v for k, v in old.items() if k == "base" or k not in lanes})
            tar.extractall(work, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))  # (3.10.12+)


def lane_report(args, P) -> dict:
    import platform

    unpack_logs(args.logs, args.work)
    lanes = args.work / "lanes"
    speed = json.loads((lanes / "speed.json").read_text()) if (lanes / "speed.json").is_file() else {}
    if not (lanes / "base.json").is_file():  # (a lease run with gpu.sh SKIP=base reports on the CPU, with --logs)
        raise SystemExit(f"{lanes / 'base.json'}: no base lane to report against; run --lane base, or give --logs "
                         "with the logs.tar.gz of a lease that ran it")
    base = json.loads((lanes / "base.json").read_text())
    out = {"issue": 21, "preset": args.preset, "settings": {**P, "lr": LR, "seed": args.seed, "init": args.init,
                                                            "distill_weight": args.distill_weight,
                                                            "distill_temperature": DISTILL_TEMPERATURE,
                                                            "recipes": {r: RECIPES[r] for _, r in args.recipes}},
           "context_chars": P["context_chars"], "device": speed.get("device"), "python": platform.python_version(),
           "base": base, "variants": {}}
    if speed:
        out["settings"].update(prompts=speed["prompts"], gen_tokens=speed["gen_tokens"], repeats=speed["repeats"])
        base["chars_per_s"] = speed["base"]["chars_per_s"]  # (what the speed lane ran: a report may be written later)
        base["speed"] = speed["base"]
    for name in variants(args):
        f = lanes / f"{name}.json"
        if f.is_file():
            v = json.loads(f.read_text())
            if name in speed:
                v["chars_per_s"] = speed[name]["chars_per_s"]
                v["speed"] = speed[name]
            out["variants"][name] = v
    out["verdict"] = verdict(out)
    res = args.results
    write_json(res / "results.json", out)
    (res / "summary.md").write_text(summary(out), encoding="utf-8")
    plot(out, res / "curves.png")
    log(f"wrote {res / 'results.json'}")
    return out


def verdict(out: dict) -> dict:
    """The issue's bars for the best HyperTok variant (lowest mean bits/char over the dev texts)."""
    vs = out["variants"]
    ht = {n: v for n, v in vs.items() if v["tokenizer"] == "ht"}
    if not ht:
        return {}
    best = min(ht, key=lambda n: statistics.mean(ht[n]["bpc_by_text"].values()))
    refs = [out["base"]] + ([vs["control"]] if "control" in vs else [])
    b = ht[best]
    res = {"best": best, "bpc_vs_better_reference": {}, "rublimp_points_vs_better_reference": None}
    for text, bpc in b["bpc_by_text"].items():
        ref = min(r["bpc_by_text"][text] for r in refs)
        res["bpc_vs_better_reference"][text] = bpc / ref - 1
    if b.get("rublimp") is not None:
        res["rublimp_points_vs_better_reference"] = 100 * (b["rublimp"] - max(r.get("rublimp", 0) for r in refs))
    if b.get("speed"):  # chars/s = tokens/s x chars a generated token: the second factor is exact (the same
        # samples every round), the first carries the timing noise, whose spread the rounds' ratios show
        res["chars_per_s_vs_base"] = b["speed"]["speedup_chars_per_s"]
        res["chars_per_s_vs_base_rounds"] = round_ratios(b["speed"], out["base"]["speed"])
        res["tokens_per_s_vs_base"] = b["speed"]["speedup_tokens_per_s"]
        res["gen_chars_per_token_vs_base"] = (b["speed"]["gen_chars_per_token"]
                                              / out["base"]["speed"]["gen_chars_per_token"])
    res["bars"] = {"bpc_within_3pct": all(x <= 0.03 for x in res["bpc_vs_better_reference"].values()),
                   "rublimp_within_1pt": res["rublimp_points_vs_better_reference"] is not None
                   and res["rublimp_points_vs_better_reference"] >= -1.0,
                   # None: no speed lane in this report (a lease that left it out: an earlier one measured it)
                   "speed_1_4x": res["chars_per_s_vs_base"] >= 1.4 if "chars_per_s_vs_base" in res else None}
    if vs.get("control", {}).get("curve") and b.get("curve"):
        res["at_control_tokens"] = at_equal_tokens(b["curve"], vs["control"]["curve"],
                                                   out["base"].get("curve_point"))
        res["bars"]["bpc_within_3pct_at_control_tokens"] = all(
            x <= 0.03 for x in res["at_control_tokens"]["bpc_vs_better_reference"].values())
    return res


def at_equal_tokens(curve: list[dict], control: list[dict], base: dict | None = None) -> dict:
    """A variant's curve at the control's last curve point, linearly between its two nearest points
    (its last point where it trained on fewer tokens), against the better of that point and the
    base's: lanes that share a deadline train on different numbers of tokens, and the final figures
    then compare equal time, not equal tokens. On the curve subset (``curve_chars`` of each text,
    ``curve_pairs`` pairs a phenomenon)."""
    ref, refs = control[-1], [control[-1]] + ([base] if base else [])
    t = ref["tokens"]

    def at(key, sub=None):
        get = (lambda p: p[key][sub]) if sub else (lambda p: p[key])
        for lo, hi in zip(curve, curve[1:]):
            if lo["tokens"] <= t <= hi["tokens"]:
                w = (t - lo["tokens"]) / max(1, hi["tokens"] - lo["tokens"])
                return get(lo) + w * (get(hi) - get(lo))
        return get(curve[-1] if t > curve[-1]["tokens"] else curve[0])

    out = {"tokens": t, "variant_tokens_reached": curve[-1]["tokens"], "bpc_vs_better_reference": {}}
    for text in ref["bpc_by_text"]:
        out["bpc_vs_better_reference"][text] = at("bpc_by_text", text) / min(r["bpc_by_text"][text] for r in refs) - 1
    if ref.get("rublimp") is not None and curve[-1].get("rublimp") is not None:
        out["rublimp_points_vs_better_reference"] = 100 * (at("rublimp") - max(r.get("rublimp", 0) for r in refs))
    return out


def round_ratios(speed: dict, base: dict) -> list[float]:
    """Each paired round's chars/s ratio to the base's in the same round (``speedup_chars_per_s`` is their
    median): their spread is the timing noise."""
    return [c / rc for c, rc in zip(speed["rounds_chars_per_s"], base["rounds_chars_per_s"])]


def speedup_cell(speed: dict | None, base: dict | None) -> str:
    """The median chars/s ratio to the base, and each round's beside it."""
    if not speed or not base:
        return ""
    return f"{speed['speedup_chars_per_s']:.2f} ({', '.join(f'{x:.2f}' for x in round_ratios(speed, base))})"


def summary(out: dict) -> str:
    rows = [("base", out["base"])] + list(out["variants"].items())
    texts = list(out["base"]["bpc_by_text"])
    head = ["model", "tokens", "params"] + [f"bpc {t}" for t in texts] + [f"bpc {t} (token windows)" for t in texts] \
        + ["RuBLiMP", "chars/s", "x base (each round)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in rows:
        tw = r.get("bpc_by_text_token_windows", {})
        cells = [name, f"{r.get('adapt_tokens', 0) / 1e6:.1f}M", f"{r['params'] / 1e6:.0f}M"] + \
            [f"{r['bpc_by_text'][t]:.4f}" for t in texts] + [f"{tw[t]:.4f}" if t in tw else "" for t in texts] + \
            [f"{r['rublimp']:.4f}" if r.get("rublimp") is not None else "",
             f"{r['chars_per_s']:.0f}" if r.get("chars_per_s") else "",
             speedup_cell(r.get("speed"), out["base"].get("speed"))]
        lines.append("| " + " | ".join(cells) + " |")
    v = out.get("verdict") or {}
    text = (f"# Issue 21: Gemma 3 270M on HyperTok ({out['preset']}, {out.get('device')})\n\n"
            f"bits/char at {out['context_chars']} characters of context (windows cut at whitespace, each from "
            f"<bos>); token windows beside them; RuBLiMP accuracy on {out['base'].get('rublimp_pairs', 0)} pairs.\n\n" + "\n".join(lines) + "\n")
    if v:
        text += "\nVerdict (best HyperTok variant against the better of base and control; `at_control_tokens`: " \
            "its curve at the control's tokens, on the curve subset):\n\n```\n" + json.dumps(v, indent=1) + "\n```\n"
    return text


def plot(out: dict, path: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    texts = list(out["base"]["bpc_by_text"])
    fig, axes = plt.subplots(1, len(texts) + 1, figsize=(5 * (len(texts) + 1), 4))
    for ax, t in zip(axes, texts):
        ax.axhline(out["base"]["curve_point"]["bpc_by_text"][t], color="k", ls="--", label="base")
        for name, v in out["variants"].items():
            c = v.get("curve") or []
            ax.plot([p["tokens"] / 1e6 for p in c], [p["bpc_by_text"][t] for p in c], marker="o", label=name)
        ax.set(title=f"{t} dev: bits/char ({out['context_chars']} chars of context)", xlabel="adaptation tokens (M)",
               ylabel="bits/char")
        ax.legend(fontsize=8)
    ax = axes[-1]
    if out["base"]["curve_point"].get("rublimp") is not None:
        ax.axhline(out["base"]["curve_point"]["rublimp"], color="k", ls="--", label="base")
        for name, v in out["variants"].items():
            c = v.get("curve") or []
            ax.plot([p["tokens"] / 1e6 for p in c], [p["rublimp"] for p in c], marker="o", label=name)
        ax.set(title="RuBLiMP accuracy (curve subset)", xlabel="adaptation tokens (M)", ylabel="accuracy")
        ax.legend(fontsize=8)
    fig.suptitle("python experiments/realmodel/run.py --lane report")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------ main
def pair(s: str) -> tuple[str, Path]:
    if "=" not in s:
        raise argparse.ArgumentTypeError(f"{s!r}: give NAME=PATH")
    k, v = s.split("=", 1)
    return k, Path(v)


def recipe_pair(s: str) -> tuple[str, str]:
    k, v = pair(s)
    if str(v) not in RECIPES:
        raise argparse.ArgumentTypeError(f"{s!r}: RECIPE is one of {', '.join(RECIPES)}")
    return k, str(v)


def main(argv=None) -> int:
    from hypertok.adapt.recipe import INITS

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--gguf", type=Path, help="the base model as a GGUF file (lane prep imports it)")
    ap.add_argument("--hypertok", type=pair, nargs="+", default=[], help="KEY=DIR HyperTok tokenizers (replace each)")
    ap.add_argument("--extend", help="KEY of --hypertok to run `extend` with too (default: none)")
    ap.add_argument("--distill", help="KEY of --hypertok to run `replace` with distillation from the base too "
                    "(lane htKEY-distill: ALM spans, hypertok adapt --distill; default: none)")
    ap.add_argument("--distill-weight", type=float, default=1.0, help="its weight (hypertok adapt --distill)")
    ap.add_argument("--recipes", type=recipe_pair, nargs="+", default=[], metavar="KEY=RECIPE",
                    help=f"lanes htKEY-RECIPE: `replace` with --hypertok KEY, trained another way; RECIPE one of "
                    f"{', '.join(f'{k} {v}' for k, v in RECIPES.items())} (stage1: a share of the steps; default: none)")
    ap.add_argument("--train", type=Path, nargs="+", default=[], help="training text files (.xz read directly)")
    ap.add_argument("--dev", type=pair, nargs="+", default=[], help="NAME=FILE evaluation texts")
    ap.add_argument("--pairs", nargs="*", default=[], help="minimal-pair TSV files (good/bad/phenomenon columns)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/realmodel"), help="models, packed data, lane JSON")
    ap.add_argument("--logs", type=Path, nargs="+", default=[], help="lane report: first unpack these leases' "
                    "logs.tar.gz into --work, in order (a later lease's lane replaces an earlier one's; its speed.json "
                    "is the one reported), to report lanes of several leases together")
    ap.add_argument("--results", type=Path, default=Path(__file__).parent, help="results.json, summary.md, curves.png")
    ap.add_argument("--preset", choices=PRESETS, default="lease")
    ap.add_argument("--lane", required=True, help="import | prep (import + packing) | base | VARIANT (packs its text "
                                                  "when missing) | speed | report | all (prep to report, one process)")
    ap.add_argument("--stop-by", type=float, default=0.0, help="wall-clock time (epoch seconds) by which a "
                    "variant ends its training, its learning rate decayed to that time (0: the planned tokens)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", choices=INITS, default="mean", help="the HyperTok rows' init (hypertok adapt --init; "
                    "init_cpu.py measures where each starts)")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    args.hypertok = dict(args.hypertok)
    for key in [k for k, _ in args.recipes] + [k for k in (args.extend, args.distill) if k]:
        if key not in args.hypertok:
            ap.error(f"{key!r} is no --hypertok KEY (given: {', '.join(args.hypertok) or 'none'})")
    from hypertok.adapt.model import device_of

    args.device = device_of(args.device)
    args.device_name = str(args.device)
    P = PRESETS[args.preset]
    lanes = ["prep", "base", *variants(args), "speed", "report"] if args.lane == "all" else [args.lane]
    for lane in lanes:
        if lane == "import":
            lane_import(args, P)
        elif lane == "prep":
            lane_prep(args, P)
        elif lane == "base":
            lane_base(args, P)
        elif lane == "speed":
            lane_speed(args, P)
        elif lane == "report":
            lane_report(args, P)
        elif lane in variants(args):
            lane_variant(args, P, lane)
        else:
            ap.error(f"--lane {lane!r}: one of import, prep, base, {', '.join(variants(args))}, speed, report, all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
