"""Issue 9: packed token arrays (``hypertok prepare``), streamed documents, the one chunked loss,
the adapt CLI's help, and the loop without a per-step ``__import__``."""

from __future__ import annotations

import inspect

import pytest

np = pytest.importorskip("numpy")
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("sentencepiece")

from hypertok import HyperTokError  # noqa: E402
from hypertok.adapt import data as D  # noqa: E402
from hypertok.adapt.recipe import plan  # noqa: E402
from hypertok.adapt.train import adapt, train_loop  # noqa: E402
from hypertok.loss import chunked_cross_entropy  # noqa: E402

from .tiny import adapt_config, cli  # noqa: E402


@pytest.mark.parametrize("block", [1, 2, 3, 7, 1 << 20])
def test_streamed_documents_equal_split_on_blank_lines(tmp_path, monkeypatch, block):
    f = tmp_path / "t.txt"
    text = "раз\nдва\n\n\n три \n\n\n\nчетыре\n \n\nпять\n\n"
    f.write_text(text)
    monkeypatch.setattr(D, "_BLOCK_CHARS", block)
    assert list(D.iter_documents(f)) == [d for d in text.split("\n\n") if d.strip()]


def test_prepare_writes_the_packed_stream(env, tmp_path):
    for strategy in ("extend", "replace"):
        tok = plan(env["base"], env["tok"], strategy)
        docs = D.read_documents([str(env["train"])], 20_000)
        want = D.pack(D.encode_docs(tok, docs), tok.bos, tok.eos)
        meta = D.prepare(tok, [str(env["train"])], tmp_path / strategy, max_chars=20_000, batch=7)
        stream, meta2 = D.open_packed(tmp_path / f"{strategy}.bin", tok)
        assert meta2 == meta
        assert stream.dtype == np.uint32 and stream.tolist() == want.tolist()
        assert (meta.documents, meta.tokens, meta.chars) == (len(docs), len(want), sum(map(len, docs)))
        assert meta.content_tokens == len(want) - 2 * len(docs)
        # rows read from the memory map are the rows of the in-memory stream
        idx = np.arange(D.n_rows(want, 64, full_only=False))
        for a, b in zip(D.rows_of(stream, 64, tok.bos, idx), D.rows_of(want, 64, tok.bos, idx)):
            assert a.dtype == b.dtype and (a == b).all()
    with pytest.raises(HyperTokError, match="another tokenizer"):
        D.open_packed(tmp_path / "extend", plan(env["base"], env["tok"], "replace"))
    with pytest.raises(HyperTokError, match="hypertok prepare"):
        D.open_packed(tmp_path / "nothing.bin")


def test_prepare_refuses_empty_text_and_leaves_nothing(env, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text(" \n\n \n")
    tok = plan(env["base"], env["tok"], "extend")
    with pytest.raises(HyperTokError, match="empty"):
        D.prepare(tok, [str(empty)], tmp_path / "e")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.txt"]


def test_adapt_on_prepared_data_equals_adapt_on_text(env, tmp_path):
    tok = plan(env["base"], env["tok"], "extend")
    D.prepare(tok, [str(env["train"])], tmp_path / "train")
    D.prepare(tok, [str(env["dev"])], tmp_path / "dev", max_chars=3000)
    a = adapt(adapt_config(env, tmp_path / "a", steps=2, eval_every=2, save_every=0))
    b = adapt(adapt_config(env, tmp_path / "b", steps=2, eval_every=2, save_every=0, eval_chars=0,
                           train=[str(tmp_path / "train.bin")], eval=str(tmp_path / "dev.bin")))
    for x, y in zip(a.history, b.history):
        assert {k: v for k, v in x.items() if k != "time"} == {k: v for k, v in y.items() if k != "time"}
    assert (tmp_path / "a" / "data" / "train.bin").is_file()


def test_cli_prepare(env, tmp_path, capsys):
    assert cli(["prepare", "--base", str(env["base"]), "--tokenizer", str(env["tok"]), "--strategy", "replace",
                "--text", str(env["dev"]), "--out", str(tmp_path / "dev")]) == 0
    assert '"documents": 40' in capsys.readouterr().out
    assert (tmp_path / "dev.bin").stat().st_size % 4 == 0


def test_prepare_replaces_its_own_data_only_with_force_and_never_a_users_file(env, tmp_path, capsys):
    """Issue 24, item 3: an existing OUT.bin/OUT.json is replaced only with --force, and only when
    `hypertok prepare` wrote it; a user's OUT.json stays byte for byte, even with --force."""
    argv = ["prepare", "--base", str(env["base"]), "--tokenizer", str(env["tok"]), "--text", str(env["train"]),
            "--max-chars", "3000", "--out"]
    own = tmp_path / "own"
    assert cli([*argv, str(own)]) == 0
    first = (own.with_suffix(".bin").read_bytes(), own.with_suffix(".json").read_bytes())
    capsys.readouterr()
    assert cli([*argv, str(own)]) == 2
    assert "own.json: already there (prepared data); pass --force to replace them" in capsys.readouterr().err
    assert (own.with_suffix(".bin").read_bytes(), own.with_suffix(".json").read_bytes()) == first
    assert cli([*argv, str(own), "--force"]) == 0
    user = tmp_path / "user"
    user.with_suffix(".json").write_bytes(b'{"my": "settings"}')
    for force in ([], ["--force"]):
        assert cli([*argv, str(user), *force]) == 2
        assert "user.json: already there and not written by `hypertok prepare`" in capsys.readouterr().err
    assert user.with_suffix(".json").read_bytes() == b'{"my": "settings"}' and not user.with_suffix(".bin").exists()


def test_adapt_help_shows_every_loop_setting_with_its_default(capsys):
    with pytest.raises(SystemExit):
        cli(["adapt", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag, default in [("--steps", "1000"), ("--batch-size", "8"), ("--seq-len", "1024"), ("--lr", "0.0002"),
                          ("--rows-lr", "0.001"), ("--warmup", "50"), ("--min-lr-ratio", "0.1"),
                          ("--weight-decay", "0.0"), ("--loss-chunk", "8192"), ("--lora-r", "16"),
                          ("--eval-chars", "200000")]:
        assert flag in text and f"(default: {default})" in text


def test_chunked_cross_entropy_serves_training_and_the_benchmark():
    g = torch.Generator().manual_seed(0)
    head = torch.nn.Linear(8, 11, bias=False)
    h = torch.randn(2, 9, 8, generator=g)
    y = torch.randint(0, 11, (2, 9), generator=g)
    ref = torch.nn.functional.cross_entropy(head(h).reshape(-1, 11), y.reshape(-1), reduction="sum")
    # benchmark use: (T, d) states and the head's weight, mean = total / count
    total_w, n_w = chunked_cross_entropy(h[0], y[0], head.weight, chunk=4)
    assert n_w == 9
    torch.testing.assert_close(total_w / n_w, torch.nn.functional.cross_entropy(head(h[0]), y[0]))
    # training use: (B, T, d) states, a module head, ignored labels, gradients through checkpoints
    y2 = y.clone()
    y2[1, :4] = -100
    total, n = chunked_cross_entropy(h, y2, head, chunk=5)
    ref2 = torch.nn.functional.cross_entropy(head(h).reshape(-1, 11), y2.reshape(-1), reduction="sum")
    assert n == 14
    torch.testing.assert_close(total, ref2)
    total.backward()
    grad = head.weight.grad.clone()
    head.weight.grad = None
    ref2.backward()
    torch.testing.assert_close(grad, head.weight.grad)  # float32, same sums in another order
    assert ref.shape == ()


def test_loop_imports_nothing_per_step():
    assert "__import__" not in inspect.getsource(train_loop)


def test_prepare_killed_between_its_two_renames_leaves_nothing_that_loads(env, tmp_path, monkeypatch):
    """Issue 24, item 5: prepare --force over an older pair, killed after the new .bin is in and before
    its .json: the old record is gone, so the new stream is never read with the old record."""
    import hypertok.adapt.data as data
    from hypertok.adapt.data import open_packed, prepare
    from hypertok.adapt.recipe import plan

    from ..fault import Killed

    tok = plan(str(env["base"]), str(env["tok"]), "extend")
    out = tmp_path / "p"
    prepare(tok, [str(env["train"])], out, max_chars=2000)
    old = open_packed(out.with_suffix(".bin"), tok)[1]

    def killed(path, text):
        raise Killed(f"killed before writing {path}")

    monkeypatch.setattr(data, "atomic_write", killed)
    with pytest.raises(Killed):
        prepare(tok, [str(env["train"])], out, max_chars=3000)
    monkeypatch.undo()
    assert not out.with_suffix(".json").exists()
    with pytest.raises(HyperTokError, match="no packed data here"):
        open_packed(out.with_suffix(".bin"), tok)
    assert old.max_chars == 2000
    q = tmp_path / "q"  # a run that fails before the renames keeps the old pair whole
    prepare(tok, [str(env["train"])], q, max_chars=2000)
    pair = (q.with_suffix(".bin").read_bytes(), q.with_suffix(".json").read_bytes())
    (tmp_path / "blank.txt").write_text("  \n\n ", encoding="utf-8")
    with pytest.raises(HyperTokError, match="empty"):
        prepare(tok, [str(tmp_path / "blank.txt")], q)
    assert (q.with_suffix(".bin").read_bytes(), q.with_suffix(".json").read_bytes()) == pair
