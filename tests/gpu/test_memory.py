"""The analytic memory model (hypertok.gpu.memory): hand-computed numbers and a live-tensor trace.

The trace (hypertok.gpu.bench.LiveBytes) counts the bytes of every tensor the Hugging Face
Mistral code keeps alive on the CPU, so the model's activation terms are checked
without a GPU. Tolerance 5%: the model ignores tensors of a few kilobytes (RoPE
inverse frequencies, loss scalars, masks of shape (T,)), which matter only at tiny sizes.
"""

from __future__ import annotations

import gc

import pytest

from hypertok.errors import HyperTokError
from hypertok.gpu.memory import (
    BUILTIN_MODELS, ModelShape, attention_flops, break_even_rows, inference_estimate, kv_cache_bytes, load_shape,
    shape_from_config, train_estimate, vocab_for, weight_bytes,
)

TINY = ModelShape("tiny", n_layers=2, hidden=64, n_heads=4, n_kv_heads=2, head_dim=16, intermediate=224, vocab=1000)


def test_tiny_weights_by_hand():
    # embed 1000x64 + lm_head 1000x64 (untied)
    vocab = 2 * 1000 * 64
    # per layer: q 64x64, k and v 64x32 each, o 64x64, gate/up/down 64x224 each, two norms of 64
    layer = 64 * 64 + 2 * 64 * 32 + 64 * 64 + 3 * 64 * 224 + 2 * 64
    total = vocab + 2 * layer + 64  # + final norm
    assert TINY.params()["total"] == total == 238912
    w = weight_bytes(TINY)
    assert w == {"weights": 2 * 238912, "weights_vocab": 2 * 128000}


def test_tiny_kv_by_hand():
    # K and V x 2 layers x 100 tokens x (2 KV heads x 16) x 2 bytes (bf16)
    assert kv_cache_bytes(TINY, 100) == 2 * 2 * 100 * 32 * 2 == 25600
    assert inference_estimate(TINY, 100)["kv_cache"] == 25600


def test_mistral_7b_by_hand():
    s = load_shape("mistral-7b")
    assert (s.n_layers, s.hidden, s.n_heads, s.n_kv_heads, s.head_dim, s.intermediate, s.vocab) == \
        (32, 4096, 32, 8, 128, 14336, 32768)
    assert not s.tie_embeddings and s.sliding_window is None
    assert s.params()["total"] == 7_248_023_552  # Mistral-7B v0.3's published parameter count
    assert s.params()["vocab"] == 2 * 32768 * 4096
    assert kv_cache_bytes(s, 60_000) == 60_000 * 2 * 32 * 8 * 128 * 2  # 128 KiB per token
    assert s.bytes_per_vocab_row() == 2 * 4096 * 2


def test_sliding_window_caps_kv():
    s = ModelShape("sw", 2, 64, 4, 2, 16, 224, 1000, sliding_window=50)
    assert kv_cache_bytes(s, 100) == kv_cache_bytes(s, 50)


def test_vocab_for():
    assert vocab_for(32768, 32000, 27485, "extend") == 60253
    assert vocab_for(32768, 32000, 27485, "replace") == 32000
    assert vocab_for(32768, 32000, 27485, "base") == 32768
    with pytest.raises(HyperTokError):
        vocab_for(1, 1, 1, "merge")


def test_attention_flops_causal():
    # 3 queries after 0 cached: 1 + 2 + 3 = 6 (query, key) pairs, 4 FLOPs x heads x head_dim x layers each
    assert attention_flops(TINY, 3) == 6 * 4 * 4 * 16 * 2
    assert attention_flops(TINY, 1, past=9) == 10 * 4 * 4 * 16 * 2


def test_unknown_model_and_bad_config(tmp_path):
    with pytest.raises(HyperTokError, match="not a built-in model"):
        load_shape("mistral-8x7b")
    bad = tmp_path / "config.json"
    bad.write_text('{"hidden_size": 64}')
    with pytest.raises(HyperTokError, match="config has no"):
        load_shape(str(bad))
    with pytest.raises(HyperTokError, match="no config.json"):
        load_shape(str(tmp_path.parent))
    bad.write_text("{not json")
    with pytest.raises(HyperTokError, match="JSON"):
        load_shape(str(tmp_path))


def test_config_roundtrip(tmp_path):
    s = shape_from_config(TINY.hf_config(), name="tiny")
    assert (s.n_layers, s.hidden, s.n_heads, s.n_kv_heads, s.head_dim, s.intermediate, s.vocab) == \
        (2, 64, 4, 2, 16, 224, 1000)


def test_break_even_signs():
    s = BUILTIN_MODELS["mistral-7b"]
    assert break_even_rows(s, 60000, 30000) > 0  # shorter sequence: pays for some rows
    assert break_even_rows(s, 30000, 60000) < 0  # longer sequence: pays for none
    # full-vocabulary loss: every row also costs logits, so fewer rows pay off than in inference
    assert break_even_rows(s, 60000, 30000, "train", loss="full") < break_even_rows(s, 60000, 30000)


def test_estimates_grow_with_tokens_and_vocab():
    s = BUILTIN_MODELS["mistral-7b"]
    for f in (inference_estimate, train_estimate):
        assert f(s, 2000)["peak"] > f(s, 1000)["peak"]
        assert f(s.with_vocab(64000), 1000)["peak"] > f(s, 1000)["peak"]
    assert train_estimate(s, 50000, loss="chunked")["peak"] < train_estimate(s, 50000, loss="full")["peak"]


# ------------------------------------------------------------------- live-tensor trace on CPU
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_model():
    from hypertok.gpu.bench import build_model

    return build_model(TINY, device="cpu")


def _weights(model) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


@pytest.mark.parametrize("tokens", [256, 1024])
def test_inference_model_matches_trace(tiny_model, tokens):
    from hypertok.gpu.bench import LiveBytes, prefill

    ids = torch.randint(0, TINY.vocab, (1, tokens))
    gc.collect()
    with torch.inference_mode(), LiveBytes() as lb:
        _, cache = prefill(tiny_model, ids)
    kv = sum(layer.keys.nbytes + layer.values.nbytes for layer in cache.layers)
    est = inference_estimate(TINY, tokens)
    assert kv == est["kv_cache"]
    traced = _weights(tiny_model) + ids.nbytes + lb.peak
    assert est["weights"] == _weights(tiny_model)
    assert abs(est["peak"] / traced - 1) < 0.05, (est["peak"], traced)


@pytest.mark.parametrize("loss", ["full", "chunked"])
def test_train_model_matches_trace(loss):
    pytest.importorskip("peft")
    from hypertok.gpu.bench import LiveBytes, add_lora, build_model, train_step

    shape = TINY.with_vocab(3000)
    model = add_lora(build_model(shape, device="cpu"), rank=4)
    ids = torch.randint(0, shape.vocab, (1, 1024))
    train_step(model, ids, loss, chunk=256)  # first step creates nothing that stays, but warms autograd
    model.zero_grad(set_to_none=True)
    gc.collect()
    with LiveBytes() as lb:
        train_step(model, ids, loss, chunk=256)
    traced = _weights(model) + ids.nbytes + lb.peak
    est = train_estimate(shape, 1024, loss=loss, lora_rank=4, chunk=256)
    assert abs(est["peak"] / traced - 1) < 0.05, (est["peak"], traced)


# ------------------------------------------------------------------- Liger's fused loss (issue 10)
def test_liger_block_is_about_tokens_by_hidden_whatever_the_vocabulary():
    from hypertok.gpu.memory import liger_chunk, liger_loss_bytes

    # ceil(V / H) chunks, rounded to a power of two rows: 4095 targets, H 4096
    assert liger_chunk(4095, 4096, 32768) == 512 and liger_chunk(4095, 4096, 131072) == 128
    assert liger_chunk(10, 64, 100) == 8 and liger_chunk(3, 64, 10) == 3  # never more rows than targets
    for v in (32768, 65536, 131072):  # the block stays within 2x of targets x hidden (power-of-two rounding)
        block = liger_chunk(4095, 4096, v) * v
        assert 4095 * 4096 <= block < 2 * 4095 * 4096
    # the frozen head has no gradient; a trained one adds V x H
    assert liger_loss_bytes(100, 64, 1000, weight_grad=True) - liger_loss_bytes(100, 64, 1000) == 1000 * 64 * 2


def test_liger_bytes_match_the_measured_loss_benchmark():
    """experiments/adapt/loss.json measured Liger's extra peak on an H200 (trained head, bf16):
    the model's terms must give those bytes (the benchmark's inputs are excluded from both)."""
    import json
    from pathlib import Path

    from hypertok.gpu.memory import GIB, liger_loss_bytes

    res = json.loads((Path(__file__).resolve().parents[2] / "experiments" / "adapt" / "loss.json").read_text())
    liger = [p for p in res["points"] if p["loss"].startswith("liger")]
    assert liger
    for p in liger:
        est = liger_loss_bytes(res["tokens"], res["hidden"], p["vocab"], weight_grad=True)
        assert abs(est - p["peak_extra_gib"] * GIB) < 1024, (p, est)  # to the KiB


def test_train_estimate_with_liger():
    s = BUILTIN_MODELS["mistral-7b"]
    small, big = s, s.with_vocab(131072)
    for t in (4096, 32768):
        full, chunked, liger = (train_estimate(big, t, loss=x)["peak"] for x in ("full", "chunked", "liger"))
        # at 32k tokens the chunked loss's 4096-row chunk also fits under the layer's moment: equal there
        assert liger <= chunked and liger < full
        # the vocabulary costs its weights only: the 128k-32k difference is the new rows' bytes
        grow = train_estimate(big, t, loss="liger")["peak"] - train_estimate(small, t, loss="liger")["peak"]
        assert grow == (131072 - 32768) * s.bytes_per_vocab_row()
    e = train_estimate(TINY, 100, loss="liger")
    assert e["linear_flops"] == train_estimate(TINY, 100, loss="full")["linear_flops"]  # no recompute
    with pytest.raises(HyperTokError, match="use full, chunked, liger"):
        train_estimate(TINY, 100, loss="cce")
