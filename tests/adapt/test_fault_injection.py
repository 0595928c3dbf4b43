"""A ``merge --force`` and an adapter save killed at every rename of their move phase (issue 24,
item 5): plain ``AutoTokenizer`` / ``AutoModelForCausalLM`` / peft load the old output whole, the
new one whole, or nothing, and never a model of one merge beside the tokenizer of the other
(the audit's 35,346-row model beside a 4,000-token tokenizer)."""

from __future__ import annotations

import shutil

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from hypertok.adapt.model import check_merge_out, merge  # noqa: E402
from hypertok.adapt.train import adapt  # noqa: E402

from ..fault import Killed, killed_at, renames  # noqa: E402
from .tiny import adapt_config  # noqa: E402

TEXT = "Мама мыла раму, а папа читал газету."
IDS = [1, 5, 9, 20, 33]


def _tokenizer(folder):
    try:
        tok = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception:  # noqa: BLE001 - any refusal counts as "does not load"
        return None
    return len(tok), tuple(tok.encode(TEXT))


def _model(folder):
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True,
                                                                  dtype=torch.float32)
    except Exception:  # noqa: BLE001
        return None
    with torch.no_grad():
        return model.get_input_embeddings().weight.shape[0], model(input_ids=torch.tensor([IDS])).logits[0, -1, :8]


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return a[0] == b[0] and torch.equal(a[1], b[1])


@pytest.fixture(scope="module")
def two_merges(env, trained):
    """The extend adapter of the env and a replace adapter, each merged once: old and new outputs."""
    rep = env["root"] / "fault_replace"
    adapt(adapt_config(env, rep, strategy="replace", steps=2, eval=None, save_every=0))
    old = merge(env["base"], trained[1], env["root"] / "fault_old", "float32")
    new = merge(env["base"], rep, env["root"] / "fault_new", "float32")
    return old, new, rep


def test_a_killed_merge_force_never_leaves_a_mixed_folder(env, two_merges, tmp_path, monkeypatch):
    old, new, rep = two_merges
    tok_old, tok_new = _tokenizer(old), _tokenizer(new)
    model_old, model_new = _model(old), _model(new)
    assert tok_old[0] != tok_new[0] and model_old[0] != model_new[0]

    def fresh(name):
        d = tmp_path / name
        shutil.copytree(old, d)
        (d / "notes.txt").write_text("mine", encoding="utf-8")
        return d

    n = renames(monkeypatch, lambda: merge(env["base"], rep, fresh("count"), "float32", force=True))
    assert n >= 8
    for k in range(n):
        d = fresh(f"k{k}")
        with monkeypatch.context() as m:
            killed_at(m, k)
            with pytest.raises(Killed):
                merge(env["base"], rep, d, "float32", force=True)
        tok, model = _tokenizer(d), _model(d)
        assert tok in (None, tok_old, tok_new), k
        assert _same(model, None) or _same(model, model_old) or _same(model, model_new), k
        if tok is not None and model is not None:  # both load: both from the same merge
            assert (tok == tok_new) == _same(model, model_new), k
        assert (d / "notes.txt").read_text(encoding="utf-8") == "mine"
        check_merge_out(d, force=True)  # merge --force may write it again


def test_a_killed_adapter_save_never_leaves_a_mixed_folder(env, trained, two_merges, tmp_path, monkeypatch):
    """An adapter folder saved again over an older one (adapt's own save), killed at every rename:
    peft's adapter_config.json and the tokenizer are absent or whole."""
    from hypertok.adapt.model import AdaptedModel

    _, _, rep = two_merges
    adapted = AdaptedModel.from_pretrained(env["base"], rep, "float32", "cpu")
    tok_new = _tokenizer(rep)

    def fresh(name):
        d = tmp_path / name
        shutil.copytree(trained[1], d)
        return d

    n = renames(monkeypatch, lambda: adapted.save_pretrained(fresh("count")))
    assert n >= 5
    whole = tmp_path / "count"  # the save, not killed: the new files
    tok_old = _tokenizer(trained[1])
    for k in range(n):
        d = fresh(f"k{k}")
        with monkeypatch.context() as m:
            killed_at(m, k)
            with pytest.raises(Killed):
                adapted.save_pretrained(d)
        tok = _tokenizer(d)
        assert tok in (None, tok_old, tok_new), k
        if (d / "adapter_config.json").exists():  # what peft starts from is the new save's, beside its tokenizer
            assert (d / "adapter_config.json").read_bytes() == (whole / "adapter_config.json").read_bytes(), k
            assert (d / "adapter_model.safetensors").read_bytes() == (whole / "adapter_model.safetensors").read_bytes()
            assert tok == tok_new, k


def test_a_weight_file_written_short_replaces_nothing(tmp_path):
    """Item 10: safetensors' writer may report no full disk; the save reads every weight file
    back (its header's byte ranges against its size) before anything moves into the folder."""
    from safetensors.torch import save_file

    from hypertok.adapt.model import save_beside
    from hypertok.errors import HyperTokError

    out = tmp_path / "merged"
    save_beside(out, lambda tmp: save_file({"w": torch.ones(64)}, str(tmp / "model.safetensors")))
    before = (out / "model.safetensors").read_bytes()

    def short(tmp):
        save_file({"w": torch.zeros(4096)}, str(tmp / "model.safetensors"))
        with open(tmp / "model.safetensors", "r+b") as f:  # what a full disk leaves
            f.truncate(5000)

    with pytest.raises(HyperTokError, match="model.safetensors: written short, nothing replaced"):
        save_beside(out, short)
    assert (out / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["model.safetensors"]
