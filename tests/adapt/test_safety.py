"""Issue 13 on the model side: nothing executed (item 1), nothing looked up online (item 3),
nothing lost or mixed (items 5, 6), and training that refuses silent garbage (item 11).

Tiny CPU models as in ``test_adapt.py``; each test failed on the code before issue 13.
"""

from __future__ import annotations

import json
import os
import shutil
import socket

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("sentencepiece")

from hypertok import HyperTokError  # noqa: E402
from hypertok.adapt.data import pack, read_documents  # noqa: E402
from hypertok.adapt.model import AdaptedModel, load_base_model, merge, wrap_peft  # noqa: E402
from hypertok.adapt.recipe import plan, resize_and_init  # noqa: E402
from hypertok.adapt.train import CHECKPOINT_FILE, TrainConfig, adapt, train_loop  # noqa: E402

from .tiny import adapt_config  # noqa: E402


@pytest.fixture(scope="module")
def small(env):
    """A trained extend adapter (3 steps) and the pieces to train more."""
    out = env["root"] / "safety_ad"
    adapt(adapt_config(env, out, steps=3, eval=None, save_every=0))
    adapt(adapt_config(env, env["root"] / "safety_other", steps=2, eval=None, save_every=0, seed=5))
    return out


def _stream(env):
    tok = plan(env["base"], env["tok"], "extend")
    return tok, pack([tok.encode(d) for d in read_documents([str(env["train"])])], tok.bos, tok.eos)


def _fresh(env, tok):
    torch.manual_seed(0)
    m = load_base_model(env["base"], "float32", "cpu")
    resize_and_init(m, tok.recipe)
    return wrap_peft(m, tok.recipe, lora_r=2, lora_alpha=4)


CFG = dict(steps=4, batch_size=2, seq_len=32, lr=1e-2, rows_lr=None, warmup=1, eval_every=0, save_every=2,
           progress=False)


# ------------------------------------------------------------------ item 1: no code runs from a checkpoint

class _RunsCode:
    def __reduce__(self):
        return (os.system, ("touch PWNED_BY_CHECKPOINT",))


def test_a_crafted_checkpoint_is_refused_unread(env, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tok, stream = _stream(env)
    out = tmp_path / "run"
    (out / CHECKPOINT_FILE).parent.mkdir(parents=True)
    torch.save({"step": 1, "trainable": {}, "optim": {}, "sched": {}, "history": [], "x": _RunsCode()},
               out / CHECKPOINT_FILE)
    with pytest.raises(HyperTokError, match="refused unread"):
        train_loop(_fresh(env, tok), stream, tok.bos, TrainConfig(**CFG), out, resume=True)
    assert not (tmp_path / "PWNED_BY_CHECKPOINT").exists()


# ------------------------------------------------------------------ item 3: local files only

def test_adapter_without_weights_is_a_local_error_not_a_hub_lookup(env, small, tmp_path, monkeypatch):
    ad = tmp_path / "adapters" / "ru32k"  # a valid Hub repo id
    shutil.copytree(small, ad)
    (ad / "adapter_model.safetensors").unlink()

    def no_network(*a, **k):
        raise AssertionError("a network connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(HyperTokError, match="adapter_model.safetensors: missing"):
        AdaptedModel.from_pretrained(env["base"], ad, "float32", "cpu")


def test_peft_is_called_with_local_files_only(env, small, monkeypatch):
    import peft

    seen = {}
    real = peft.PeftModel.from_pretrained

    def spy(model, model_id, **kw):
        seen.update(kw)
        return real(model, model_id, **kw)

    monkeypatch.setattr(peft.PeftModel, "from_pretrained", spy)
    AdaptedModel.from_pretrained(env["base"], small, "float32", "cpu")
    assert seen.get("local_files_only") is True


# ------------------------------------------------------------------ item 6: an adapter appears whole

def test_weights_of_another_run_beside_a_recipe_are_refused(env, small, tmp_path, no_model_load):
    other = env["root"] / "safety_other"
    mixed = tmp_path / "mixed"
    shutil.copytree(small, mixed)
    shutil.copy(other / "adapter_model.safetensors", mixed / "adapter_model.safetensors")
    with pytest.raises(HyperTokError, match="does not belong"):
        AdaptedModel.from_pretrained(env["base"], mixed, "float32", "cpu")


def test_a_save_killed_midway_leaves_a_folder_that_does_not_load(env, small, tmp_path, monkeypatch, no_model_load):
    import hypertok.adapt.model as M

    folder = tmp_path / "ad"
    shutil.copytree(small, folder)
    real = os.replace
    moved = []

    def kill_after_two(src, dst):
        if len(moved) == 2:
            raise KeyboardInterrupt("killed")
        moved.append(dst)
        return real(src, dst)

    adapted = AdaptedModel(None, plan(env["base"], env["tok"], "extend"))
    monkeypatch.setattr(adapted, "_write", lambda tmp, extra: shutil.copytree(small, tmp, dirs_exist_ok=True))
    monkeypatch.setattr(M.os, "replace", kill_after_two)
    with pytest.raises(KeyboardInterrupt):
        adapted.save_pretrained(folder)
    monkeypatch.setattr(M.os, "replace", real)
    with pytest.raises(HyperTokError, match="hypertok_adapt.json"):
        AdaptedModel.from_pretrained(env["base"], folder, "float32", "cpu")


def test_a_new_adapter_folder_appears_whole_with_umask_permissions(small):
    mode = small.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o777 & ~umask
    assert not [p for p in small.parent.iterdir() if p.name.startswith(f".{small.name}.")]


# ------------------------------------------------------------------ item 5: merge never removes a user folder

def test_merge_refuses_a_folder_it_did_not_write(env, small, tmp_path, no_model_load):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(HyperTokError, match="not empty"):
        merge(env["base"], small, mine)
    with pytest.raises(HyperTokError, match="not written by `hypertok merge`"):
        merge(env["base"], small, mine, force=True)
    assert (mine / "thesis.tex").read_text() == "years of work"


def _foreign(d):
    """A user's file and folder in ``d``, and in its ``tokenizer/``; returns their bytes to compare."""
    (d / "notes.txt").write_bytes(b"years of work\n")
    (d / "mine").mkdir()
    (d / "mine" / "eval.json").write_bytes(b"{}")
    (d / "tokenizer" / "my-notes.txt").write_bytes(b"kept")
    return {p: p.read_bytes() for p in (d / "notes.txt", d / "mine" / "eval.json", d / "tokenizer" / "my-notes.txt")}


def test_merge_force_keeps_a_users_files_and_drops_only_its_own_old_shards(env, small, tmp_path):
    """Issue 11: `merge --force` into a folder merge wrote, plus files the user added: theirs stay
    byte for byte, the folder is the same folder, and the shards of the first merge that the second
    does not write again are gone (so plain transformers cannot read a mix of the two)."""
    import transformers

    out = tmp_path / "merged"
    merge(env["base"], small, out, "float32", max_shard_size="20KB")
    shards = sorted(p.name for p in out.glob("model-*.safetensors"))
    assert len(shards) > 1
    foreign = _foreign(out)
    inode = out.stat().st_ino
    with pytest.raises(HyperTokError, match="not empty"):
        merge(env["base"], small, out, "float32")
    merge(env["base"], small, out, "float32", force=True)  # one model.safetensors now
    assert all(p.read_bytes() == data for p, data in foreign.items()) and out.stat().st_ino == inode
    assert not list(out.glob("model-*.safetensors")) and not (out / "model.safetensors.index.json").exists()
    model = transformers.AutoModelForCausalLM.from_pretrained(out, local_files_only=True)
    assert model.get_input_embeddings().weight.shape[0] == json.loads((out / "config.json").read_text())["vocab_size"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".merged.")]


def test_adapter_save_into_its_folder_keeps_a_users_files(env, small, tmp_path):
    """The adapter's save into an existing folder (what `hypertok adapt` does) no longer replaces
    ``tokenizer/`` wholesale: a user's file inside it stays."""
    folder = tmp_path / "ad"
    shutil.copytree(small, folder)
    foreign = _foreign(folder)
    AdaptedModel.from_pretrained(env["base"], folder, "float32", "cpu").save_pretrained(folder)
    assert all(p.read_bytes() == data for p, data in foreign.items())
    AdaptedModel.from_pretrained(env["base"], folder, "float32", "cpu")  # and it loads


# ------------------------------------------------------------------ item 11: silent garbage in training

def test_nan_learning_rate_and_nan_loss_stop_training(env, tmp_path, monkeypatch):
    import hypertok.adapt.train as T

    with pytest.raises(HyperTokError, match="--lr must be a finite"):
        TrainConfig(lr=float("nan"))
    tok, stream = _stream(env)
    model = _fresh(env, tok)
    monkeypatch.setattr(T, "causal_lm_nll", lambda *a, **k: (torch.tensor(float("nan"), requires_grad=True), 10))
    out = tmp_path / "nan"
    with pytest.raises(HyperTokError, match="the loss is nan at step 1"):
        train_loop(model, stream, tok.bos, TrainConfig(**CFG), out)
    assert not (out / CHECKPOINT_FILE).exists()


def test_resume_refuses_other_data_and_does_not_repeat_logged_steps(env, tmp_path):
    tok, stream = _stream(env)
    out = tmp_path / "run"
    out.mkdir()
    train_loop(_fresh(env, tok), stream, tok.bos, TrainConfig(**CFG), out, stop_at=3)  # checkpoint at 2, log to 3
    assert [json.loads(x)["step"] for x in (out / "train_log.jsonl").read_text().splitlines()] == [1, 2, 3]
    with pytest.raises(HyperTokError, match="other data"):
        train_loop(_fresh(env, tok), stream[: len(stream) // 2], tok.bos, TrainConfig(**CFG), out, resume=True)
    train_loop(_fresh(env, tok), stream, tok.bos, TrainConfig(**CFG), out, resume=True)
    assert [json.loads(x)["step"] for x in (out / "train_log.jsonl").read_text().splitlines()] == [1, 2, 3, 4]


def test_device_and_eval_options_are_checked_before_any_load(env, small, no_model_load):
    from hypertok.adapt.evaluate import evaluate

    for device, match in (("bogus", "not a torch device"), ("cuda", "no CUDA device")):
        if device == "cuda" and torch.cuda.is_available():
            continue
        with pytest.raises(HyperTokError, match=match):
            adapt(adapt_config(env, env["root"] / "never", device=device))
    for kw, match in (({"seq_len": 0}, "--seq-len"), ({"prompts": 0}, "--prompts")):
        with pytest.raises(HyperTokError, match=match):
            evaluate(str(env["base"]), str(small), str(env["dev"]), device="cpu", **kw)


# ------------------------------------------------------------------ issue 24: nothing lost, nothing outside

def _bytes(d):
    return {p.relative_to(d).as_posix(): (p.read_bytes() if p.is_file() and not p.is_symlink() else None)
            for p in sorted(d.rglob("*"))}


def test_adapt_never_takes_a_merged_folder_or_a_users_data_folder_as_its_own(env, small, tmp_path, monkeypatch):
    """Item 1: a folder `hypertok merge` wrote holds a recipe too, yet adapt refuses it (its save
    removed the merged weights); item 2: a user's folder with a data/ sub-folder is no adapt folder."""
    import hypertok.adapt.model as M
    import hypertok.adapt.train as T

    merged = tmp_path / "merged"
    merge(env["base"], small, merged, "float32")
    user = tmp_path / "user"
    (user / "data").mkdir(parents=True)
    for name in ("README.md", "tokenizer.json", "data/train.json", "data/train.bin"):
        (user / name).write_bytes(b"a user's " + name.encode())
    before = {d: _bytes(d) for d in (merged, user)}

    def boom(*a, **k):
        raise AssertionError("the model was loaded before the input was checked")

    monkeypatch.setattr(M, "load_base_model", boom)
    monkeypatch.setattr(T, "load_base_model", boom)
    with pytest.raises(HyperTokError, match="is a model folder `hypertok merge` wrote; `hypertok adapt` would "
                                            "replace its weights and config. Choose another --out"):
        adapt(adapt_config(env, merged))
    with pytest.raises(HyperTokError, match="is a model folder `hypertok merge` wrote"):
        AdaptedModel(None, None).save_pretrained(merged)  # the API refuses too, before anything is written
    with pytest.raises(HyperTokError, match="is a folder with other files"):
        adapt(adapt_config(env, user))
    assert {d: _bytes(d) for d in (merged, user)} == before


def test_adapt_never_writes_through_a_link(env, small, tmp_path, no_model_load):
    """Item 4: a train_log.jsonl or data/ linked out of --out is refused before any work."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_bytes(b"kept")
    for name, target in (("train_log.jsonl", outside / "precious.txt"), ("data", outside),
                         ("resume", outside)):
        out = tmp_path / f"ad-{name.replace('.', '-')}"
        shutil.copytree(small, out)
        shutil.rmtree(out / name, ignore_errors=True) if (out / name).is_dir() else (out / name).unlink(missing_ok=True)
        (out / name).symlink_to(target)
        with pytest.raises(HyperTokError, match=f"{name}: is a symbolic link; HyperTok writes only inside --out"):
            adapt(adapt_config(env, out))
    assert _bytes(outside) == {"precious.txt": b"kept"}


def test_the_training_log_replaces_a_link_never_follows_it(env, tmp_path):
    """Item 4 at its root: train_loop writes its log as a new file, so a link there is replaced."""
    tok, stream = _stream(env)
    outside = tmp_path / "precious.txt"
    outside.write_bytes(b"kept")
    out = tmp_path / "run"
    out.mkdir()
    (out / "train_log.jsonl").symlink_to(outside)
    train_loop(_fresh(env, tok), stream, tok.bos, TrainConfig(**{**CFG, "steps": 2}), out)
    assert outside.read_bytes() == b"kept" and not (out / "train_log.jsonl").is_symlink()
    assert [json.loads(x)["step"] for x in (out / "train_log.jsonl").read_text().splitlines()] == [1, 2]


def test_merge_force_never_removes_through_a_linked_folder(env, small, tmp_path):
    """Item 4: a recipe naming ``link/file`` (link -> a folder outside) removes nothing there."""
    from hypertok.adapt.model import save_beside

    out, outside = tmp_path / "merged", tmp_path / "outside"
    out.mkdir(), outside.mkdir()
    (outside / "file").write_bytes(b"kept")
    (out / "link").symlink_to(outside)
    recipe = json.loads((small / "hypertok_adapt.json").read_text())
    recipe["files"]["link/file"] = "0" * 64
    (out / "hypertok_adapt.json").write_text(json.dumps(recipe))
    save_beside(out, lambda tmp: (tmp / "a.txt").write_text("new"))
    assert (outside / "file").read_bytes() == b"kept" and (out / "a.txt").read_text() == "new"


def test_an_interrupted_adapt_says_resume_has_nothing_to_continue(env, tmp_path, monkeypatch):
    """Item 7: a run stopped before its first checkpoint leaves its data, run record and log, no
    empty resume/; --resume then says there is nothing to continue instead of starting over."""
    import hypertok.adapt.train as T

    real = T.train_loop

    def killed(*a, **k):
        real(*a, **{**k, "stop_at": 2})
        raise KeyboardInterrupt

    monkeypatch.setattr(T, "train_loop", killed)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        adapt(adapt_config(env, out, steps=6, save_every=5, eval=None))
    assert sorted(p.name for p in out.iterdir()) == ["data", "hypertok_run.json", "train_log.jsonl"]
    monkeypatch.setattr(T, "train_loop", real)
    with pytest.raises(HyperTokError, match=r"--resume: .*run holds no checkpoint to continue \(its train_log.jsonl "
                                            r"shows an earlier run stopped before its first checkpoint.*\); run "
                                            r"without --resume to start from step 1"):
        adapt(adapt_config(env, out, steps=6, save_every=5, eval=None, resume=True))
    assert T.check_adapt_out(adapt_config(env, out)) == out  # without --resume: its own folder, started over


def _crafted_adapter(src, dst, **changes):
    """A copy of adapter ``src`` whose adapter_config.json has ``changes``, its recipe re-hashed
    to match (as a crafter would: the sha256 check alone does not stop it)."""
    import hashlib

    shutil.copytree(src, dst)
    cfg = json.loads((dst / "adapter_config.json").read_text())
    cfg.update(changes)
    (dst / "adapter_config.json").write_text(json.dumps(cfg))
    rec = json.loads((dst / "hypertok_adapt.json").read_text())
    rec["files"]["adapter_config.json"] = hashlib.sha256((dst / "adapter_config.json").read_bytes()).hexdigest()
    (dst / "hypertok_adapt.json").write_text(json.dumps(rec))
    return dst


@pytest.mark.parametrize("changes, says", [
    ({"r": 10 ** 6}, "declares LoRA rank r = 1000000 but the weights have rank 4"),
    ({"r": 8}, "declares LoRA rank r = 8 but the weights have rank 4"),
    ({"r": "4"}, "is not a positive integer"),
    ({"rank_pattern": {"q_proj": 10 ** 6}}, "LoRA rank 1000000 is not an integer from 1 to 32, the hidden size of"),
    ({"peft_type": "PREFIX_TUNING", "num_virtual_tokens": 10 ** 9}, "peft_type is 'PREFIX_TUNING'"),
    ({"layer_replication": [[0, 2]] * 1000}, "layer_replication"),
    ({"init_lora_weights": "pissa"}, "init_lora_weights is 'pissa'"),
    ({"trainable_token_indices": {"embed_tokens": [5] * 100000}}, "not a list of distinct row ids"),
    ({"trainable_token_indices": {"embed_tokens": [10 ** 9]}}, "names rows outside the model's"),
])
def test_crafted_peft_config_is_refused_before_peft_allocates(env, small, tmp_path, monkeypatch, changes, says):
    """Issue 24 item 8: peft builds every LoRA layer at its declared rank before it reads a
    weight (r = 1e6 on this tiny base: gigabytes). The declared shapes are checked against the
    weights and the base first, and peft (like the base model) is never reached."""
    import peft

    import hypertok.adapt.model as M

    def boom(*a, **k):
        raise AssertionError("peft or the base was loaded before the adapter config was checked")

    monkeypatch.setattr(peft.PeftModel, "from_pretrained", boom)
    monkeypatch.setattr(M, "load_base_model", boom)
    d = _crafted_adapter(small, tmp_path / "crafted", **changes)
    with pytest.raises(HyperTokError, match="adapter config is corrupt or crafted") as e:
        AdaptedModel.from_pretrained(env["base"], d, device="cpu")
    assert says in str(e.value)
    assert str(d / "adapter_config.json") in str(e.value)
