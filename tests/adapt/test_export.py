"""Issue 11, must hold: an adapted model leaves HyperTok as one folder that plain transformers loads.

For `extend` and `replace`, on a tiny random 2-layer Mistral of each base kind
(``tests/adapt/tiny.py``: ``sentencepiece``, Mistral v3's own ``tokenizer.model``, 32 768
pieces; ``tekken``, a Mistral-Nemo-style byte-level BPE ``tokenizer.json`` cut from Mistral's
real Tekken file; ``llama3``, a Llama-3-style byte-level BPE ``tokenizer.json``), with a base
``tokenizer_config.json`` (chat template) and ``generation_config.json`` like a real
checkpoint's: adapt -> merge, then ``AutoTokenizer`` and ``AutoModelForCausalLM`` at the
folder root give the trainer's ids on a text of every script, ``len(tokenizer)`` <= rows,
a bos id, ``pipeline("text-generation")`` runs, and ``hypertok eval`` takes the folder. The
adapter itself loads with plain ``PeftModel.from_pretrained`` after the documented resize.
CPU, float32; a few seconds per base and strategy.
"""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("sentencepiece")


from .tiny import BASE_KINDS, EVERY_SCRIPT, adapt_config, cli, logits, make_base, make_text, write_base_tokenizer  # noqa: E402,E501
from ..conftest import mistral_test_file  # noqa: E402

CHAT = "{{ bos_token }}{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}"


def plain_lines(at) -> list[str]:
    """The lines of EVERY_SCRIPT that hold none of the tokenizer's control strings: HF tokenizers
    read those in text as their tokens, by design; HyperTok reads them as text."""
    controls = [t.content for t in at.added_tokens_decoder.values() if t.special]
    lines = [x for x in EVERY_SCRIPT.split("\n") if x and not any(c in x for c in controls)]
    assert len(lines) >= len(EVERY_SCRIPT.split("\n")) - 2  # only the line of "[INST]" and "<unk>" goes
    return lines


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    """Train and dev text and the HyperTok vocabulary, the same for every base."""
    from hypertok import BuildConfig, build

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("export")
    train, dev = root / "train.txt", root / "dev.txt"
    train.write_text(make_text(200, 0))
    dev.write_text(make_text(20, 1))
    tok = root / "tok"
    build([str(train)], tok, BuildConfig(vocab_size=640, mode="word"))
    return {"root": root, "train": train, "dev": dev, "tok": tok}


@pytest.fixture(scope="module", params=BASE_KINDS)
def benv(request, texts):
    """A tiny random base of each kind, with the tokenizer_config.json and generation_config.json its kind ships."""
    kind = request.param
    d = texts["root"] / f"base_{kind}"
    info = write_base_tokenizer(
        kind, d, sp_model=mistral_test_file("mistral-v3") if kind == "sentencepiece" else None,
        tekken_file=mistral_test_file("tekken") if kind == "tekken" else None,
        texts=texts["train"].read_text().split("\n") + EVERY_SCRIPT.split("\n"))
    make_base(d, None, 0, vocab_size=info["rows"], bos_id=info["bos"], eos_id=info["eos"])
    (d / "tokenizer_config.json").write_text(json.dumps({**info["config"], "chat_template": CHAT,
                                                         "model_max_length": 256}))
    (d / "generation_config.json").write_text(json.dumps({"bos_token_id": info["bos"], "eos_token_id": info["eos"],
                                                          "do_sample": True, "top_p": 0.9}))
    return {**texts, "base": d, "kind": kind, "rows": info["rows"]}


@pytest.fixture(scope="module", params=["extend", "replace"])
def merged(request, benv):
    from hypertok.adapt.model import merge
    from hypertok.adapt.train import adapt

    strategy = request.param
    out = benv["root"] / f"ad_{benv['kind']}_{strategy}"
    res = adapt(adapt_config(benv, out, strategy=strategy, steps=2, eval=None, save_every=0, seq_len=32,
                             batch_size=2))
    folder = merge(benv["base"], out, benv["root"] / f"merged_{benv['kind']}_{strategy}", "float32",
                   max_shard_size="200KB")
    return res, out, folder


def test_merged_folder_is_what_save_pretrained_writes(merged, benv):
    res, _, folder = merged
    rows = res.tokenizer.recipe.model_vocab_size
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    shards = set(index["weight_map"].values())
    assert len(shards) > 1 and all((folder / s).is_file() for s in shards)
    for shard in shards:  # at most 200 KB, unless one tensor alone is larger (the 4 MB embedding matrices)
        names = [k for k, v in index["weight_map"].items() if v == shard]
        assert len(names) == 1 or (folder / shard).stat().st_size < 250_000
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["vocab_size"] == rows and cfg["bos_token_id"] == res.tokenizer.bos
    gen = json.loads((folder / "generation_config.json").read_text())
    assert gen["top_p"] == 0.9 and gen["eos_token_id"] == res.tokenizer.eos  # the base's, ids of the tokenizer
    tcfg = json.loads((folder / "tokenizer_config.json").read_text())
    assert {"bos_token", "eos_token", "unk_token", "pad_token"} <= set(tcfg) and tcfg["chat_template"] == CHAT
    assert tcfg["add_bos_token"] is True and tcfg["model_max_length"] == 256
    base_file = "base_tokenizer.model" if benv["kind"] == "sentencepiece" else "base_tokenizer.json"
    for own in ("hypertok_adapt.json", "tokenizer/vocab.jsonl", "chat_template.jinja", base_file):
        assert (folder / own).is_file()
    tj = json.loads((folder / "tokenizer.json").read_text())
    assert tj["model"]["type"] == "Unigram"  # one model over every row (extend), or HyperTok's own (replace)
    byte_level = res.tokenizer.extend and benv["kind"] != "sentencepiece"
    assert ("ByteLevel" in json.dumps(tj["pre_tokenizer"])) == byte_level
    assert tj["decoder"]["type"] == ("ByteLevel" if byte_level else "Sequence")


def test_plain_transformers_at_the_folder_root(merged, benv):
    res, _, folder = merged
    trainer = res.tokenizer
    at = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    rows = model.get_input_embeddings().weight.shape[0]
    assert rows == trainer.recipe.model_vocab_size and len(at) <= rows
    assert at.bos_token_id is not None and at.bos_token_id == trainer.bos
    lines = plain_lines(at)
    for line in lines:
        ids = at(line)["input_ids"]
        assert ids == trainer.encode(line, add_bos=True), line
        assert at.decode(ids, skip_special_tokens=True) == line
    ids = trainer.encode(lines[0], add_bos=True)
    # same float32 weights, merged in float32: rounding of B@A*scale only
    torch.testing.assert_close(logits(model, ids), logits(res.model.model, ids), rtol=1e-4, atol=1e-4)
    gen = transformers.pipeline("text-generation", model=model, tokenizer=at, device="cpu")
    out = gen("Старый дом", max_new_tokens=5, do_sample=False)
    assert out[0]["generated_text"].startswith("Старый дом")
    chat = at.apply_chat_template([{"role": "user", "content": "Привет"}], tokenize=True)
    ids = chat["input_ids"] if hasattr(chat, "keys") else chat
    assert ids[0] == trainer.bos


def test_hypertok_eval_takes_the_merged_folder(merged, benv, capsys):
    res, out, folder = merged
    args = ["--text", str(benv["dev"]), "--max-chars", "1500", "--gen-tokens", "3", "--prompts", "1",
            "--repeats", "1", "--device", "cpu", "--seq-len", "64"]
    assert cli(["eval", "--base", str(folder), *args]) == 0
    on_merged = json.loads(capsys.readouterr().out)
    assert cli(["eval", "--base", str(benv["base"]), "--adapter", str(out), *args]) == 0
    text = capsys.readouterr().out
    on_adapter = json.loads(text[text.index("{"):])
    assert on_merged["model_vocab_size"] == on_adapter["model_vocab_size"] == res.tokenizer.recipe.model_vocab_size
    assert on_merged["tokens"] == on_adapter["tokens"]  # the same tokenizer.json
    # the same model, merged or not: bits/char agree up to float32 rounding of the merge
    assert on_merged["bpc"] == pytest.approx(on_adapter["bpc"], rel=1e-4)


def test_hypertok_eval_takes_the_plain_base(benv, capsys):
    args = ["--text", str(benv["dev"]), "--max-chars", "500", "--gen-tokens", "2", "--prompts", "1",
            "--repeats", "1", "--device", "cpu", "--seq-len", "64"]
    assert cli(["eval", "--base", str(benv["base"]), *args]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["model_vocab_size"] == benv["rows"] and res["tokens"] > 0


@pytest.mark.parametrize("strategy", ["extend", "replace"])
def test_replace_warns_when_the_chat_template_writes_controls_it_drops(benv, strategy):
    import warnings

    from hypertok.adapt.recipe import plan, template_controls_lost

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tok = plan(benv["base"], benv["tok"], strategy)
    lost = template_controls_lost(tok)  # CHAT writes [INST]: a control of Mistral's files, text to Llama 3's
    assert lost == (["[INST]", "[/INST]"] if strategy == "replace" and benv["kind"] != "llama3" else [])
    assert any("control tokens" in str(w.message) for w in caught) == bool(lost)
    tok.recipe.tokenizer_config["chat_template"] = "<|start_header_id|>user<|end_header_id|>{{ m }}<|eot_id|>"
    llama3_lost = ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    assert template_controls_lost(tok) == (llama3_lost if strategy == "replace" and benv["kind"] == "llama3" else [])


def test_distilled_two_stage_adapt_with_focus_rows_on_every_base(benv, tmp_path):
    """The frozen base teaches with its own tokenizer (a byte-level one too): spans align on bytes, every
    row has overlapping base tokens, and the run finishes."""
    from hypertok.adapt.train import adapt

    res = adapt(adapt_config(benv, tmp_path / "d", strategy="extend", steps=2, stage1_steps=1, distill=0.5,
                             init="focus", eval=None, save_every=0, seq_len=32, batch_size=2))
    hist = res.history
    assert [h.get("stage", "") for h in hist] == ["stage1", "", ""]
    taught = [h for h in hist if "alm" in h]
    assert taught and all(h["teacher_tokens"] > 0 and h["alm"] == h["alm"] for h in taught)  # the teacher ran


def test_plain_peft_loads_the_adapter_after_the_documented_resize(merged, benv):
    from peft import PeftModel

    res, out, _ = merged
    at = transformers.AutoTokenizer.from_pretrained(out, local_files_only=True)  # the adapter's own tokenizer
    base = transformers.AutoModelForCausalLM.from_pretrained(benv["base"], local_files_only=True)
    base.resize_token_embeddings(len(at))  # the one documented call
    model = PeftModel.from_pretrained(base, out, local_files_only=True)
    line = EVERY_SCRIPT.split("\n")[0]
    ids = at(line)["input_ids"]
    assert ids == res.tokenizer.encode(line, add_bos=True)
    torch.testing.assert_close(logits(model, ids), logits(res.model.model, ids), rtol=1e-5, atol=1e-5)
    from safetensors import safe_open

    with safe_open(str(out / "adapter_model.safetensors"), "pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F32"}  # the model's dtype (float32 here)


def test_tiny_base_command_and_the_cpu_warning(tmp_path, texts):
    """The newcomer's path: `python -m hypertok.adapt.tiny` makes a base that adapt takes; adapt warns on
    CPU with the GPU-sized defaults."""
    from hypertok.adapt.tiny import main

    mistral_test_file("mistral-v3")  # the tiny base's default tokenizer
    from hypertok.adapt.train import AdaptConfig, TrainConfig, warn_cpu_sized

    assert main(["--out", str(tmp_path / "tb"), "--hidden-size", "16"]) == 0
    model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "tb", local_files_only=True)
    assert model.get_input_embeddings().weight.shape == (32768, 16)
    with pytest.raises(SystemExit, match="not empty"):
        main(["--out", str(tmp_path / "tb")])
    info = write_base_tokenizer("llama3", tmp_path / "l3", texts=texts["train"].read_text().split("\n"))
    (tmp_path / "l3" / "tokenizer_config.json").write_text(json.dumps(info["config"]))
    assert main(["--out", str(tmp_path / "tb3"), "--hidden-size", "16", "--tokenizer-json",
                 str(tmp_path / "l3" / "tokenizer.json")]) == 0
    model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "tb3", local_files_only=True)
    assert model.get_input_embeddings().weight.shape == (info["rows"], 16) and model.config.bos_token_id == info["bos"]
    assert (tmp_path / "tb3" / "tokenizer_config.json").is_file() and not (tmp_path / "tb3" / "tokenizer.model").exists()
    cfg = AdaptConfig(base=str(tmp_path / "tb"), tokenizer=str(texts["tok"]), train=[str(texts["train"])],
                      out=str(tmp_path / "o"), loop=TrainConfig())
    with pytest.warns(UserWarning, match="sized for a GPU"):
        warn_cpu_sized(cfg, torch.device("cpu"))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_cpu_sized(adapt_config({**texts, "base": tmp_path / "tb"}, tmp_path / "o2"), torch.device("cpu"))  # the tests' tiny sizes: silent


def test_merge_auto_writes_the_dtype_the_base_is_stored_in(merged, benv, tmp_path):
    """Issue 21: `merge --dtype auto` of a bf16 base wrote float32 (twice the base's size) below 1B
    parameters; it now writes the dtype the base's config.json names, having merged in float32. A config
    that names an unk id (as one born from a GGUF does) gets the adapted tokenizer's."""
    import torch
    from safetensors import safe_open

    from hypertok.adapt.model import AdaptedModel, saved_dtype

    res, adapter, _ = merged
    cfg = json.loads((benv["base"] / "config.json").read_text())
    assert saved_dtype(benv["base"]) == cfg.get("dtype", cfg.get("torch_dtype")) == "float32"
    fake = tmp_path / "cfg16"
    fake.mkdir()
    (fake / "config.json").write_text(json.dumps({**cfg, "dtype": "bfloat16"}))
    assert saved_dtype(fake) == "bfloat16" and saved_dtype(tmp_path) is None
    adapted = AdaptedModel.from_pretrained(benv["base"], adapter, "float32", "cpu")
    adapted.model.get_base_model().config.unk_token_id = 3
    out = adapted.save_merged(tmp_path / "merged16", base=benv["base"], dtype=saved_dtype(fake))
    with safe_open(str(next(out.glob("*.safetensors"))), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.bfloat16}
    written = json.loads((out / "config.json").read_text())
    assert written["dtype"] == "bfloat16" and written["unk_token_id"] == res.tokenizer.unk_id
