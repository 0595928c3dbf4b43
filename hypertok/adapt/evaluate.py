"""Tokenizer-independent evaluation of a (base or adapted) causal LM (issue 5, ``hypertok eval``).

What it measures:

- bits per character and bits per byte on held-out text: the summed negative log2
  likelihood of every document (its tokens and its ``</s>``, each conditioned on what
  precedes it inside the document and the ``--seq-len`` window), divided by the
  document characters (or UTF-8 bytes). Models with different tokenizers see the same
  characters, so these numbers compare them fairly; per-token perplexity would not.
- generation characters per second: batch 1, KV cache, sampling (top-k 50, seeded),
  a fixed number of new tokens with ``</s>`` suppressed; warm-up first, CUDA
  synchronised, the median of ``repeats`` timed rounds over all prompts.
- new-token share: the share of generated tokens that are vocabulary entries the base did
  not have (for ``extend``: ids beyond the base rows; for ``replace``: HyperTok entries,
  kinds other than fallback/char/byte/special). The ruadapt warning: a model that keeps
  emitting old pieces gains no speed.

The training loop uses :func:`stream_nll` for its periodic evaluation; this module does
not import the loop (issue 9 removed the import circle).

What it does not do: no downstream task accuracy, no batched-serving throughput.
"""

from __future__ import annotations

import math
import statistics
import time

from ..loss import causal_lm_nll
from ..registry import AdaptedTokenizer, BaseTokenizer, find_base
from .data import encode_docs, n_rows, pack, read_documents, rows_of
from ..errors import HyperTokError
from .model import (AdaptedModel, autocast, check_adapter_files, check_adapter_for_base, check_base_path, device_of,
                    is_merged_dir, load_base_model)


def stream_nll(model, stream, seq_len: int, bos: int, batch_size: int = 8, chunk: int = 8192,
               max_rows: int = 0) -> tuple[float, int]:
    """Total NLL (nats) and target count over every row of a packed stream (no grad)."""
    import numpy as np
    import torch

    device = next(model.parameters()).device
    total_rows = n_rows(stream, seq_len, full_only=False)
    if max_rows:
        total_rows = min(total_rows, max_rows)
    was = model.training
    model.eval()
    tot, cnt = 0.0, 0
    with torch.no_grad(), autocast(device):
        for s in range(0, total_rows, batch_size):
            X, P, Y = rows_of(stream, seq_len, bos, np.arange(s, min(s + batch_size, total_rows)))
            nll, n = causal_lm_nll(model, torch.from_numpy(X).to(device), torch.from_numpy(P).to(device),
                                   torch.from_numpy(Y).to(device), chunk, checkpoint=False)
            tot += float(nll)
            cnt += n
    model.train(was)
    return tot, cnt


def bits_per_char(model, tok, docs: list[str], seq_len: int = 1024, batch_size: int = 8, chunk: int = 8192) -> dict:
    """{"bpc", "bpb", "targets", "tokens", "chars", "bytes", "chars_per_token"} of ``docs`` under ``model``."""
    ids = encode_docs(tok, docs)
    stream = pack(ids, tok.bos, tok.eos)
    nll, n = stream_nll(model, stream, seq_len, tok.bos, batch_size, chunk)
    chars = sum(map(len, docs))
    nbytes = sum(len(d.encode("utf-8")) for d in docs)
    content = sum(map(len, ids))
    return {"bpc": nll / math.log(2) / chars, "bpb": nll / math.log(2) / nbytes, "targets": n,
            "tokens": content, "chars": chars, "bytes": nbytes, "chars_per_token": chars / max(1, content)}


def _generation_round(model, tok, prompts: list[str], new_tokens: int, seed: int) -> tuple[int, int, int, float]:
    """Sample ``new_tokens`` after each prompt: (characters, tokens, new-vocabulary tokens, seconds)."""
    import torch

    device = next(model.parameters()).device
    model.eval()
    model.config.use_cache = True  # training switches the KV cache off

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    chars = toks = new = 0
    elapsed = 0.0
    for k, p in enumerate(prompts):
        x = torch.tensor([tok.encode(p, add_bos=True)], device=device)  # (1, T)
        torch.manual_seed(seed + k)
        sync()
        t0 = time.perf_counter()
        with torch.no_grad():
            y = model.generate(input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=new_tokens,
                               min_new_tokens=new_tokens, do_sample=True, use_cache=True, top_k=50, temperature=1.0,
                               pad_token_id=tok.eos, eos_token_id=tok.eos, suppress_tokens=[tok.eos])
        sync()
        elapsed += time.perf_counter() - t0
        gen = y[0, x.shape[1]:].tolist()
        toks += len(gen)
        chars += len(tok.decode(gen))
        new += sum(1 for t in gen if tok.is_new_token(t))
    return chars, toks, new, elapsed


def _speed(rounds: list[tuple[int, int, int, float]]) -> dict:
    cps = [c / e for c, _, _, e in rounds]
    tps = [t / e for _, t, _, e in rounds]
    c, t, n, _ = rounds[0]
    return {"chars_per_s": statistics.median(cps), "tokens_per_s": statistics.median(tps),
            "gen_chars_per_token": c / max(1, t), "new_token_share": n / max(1, t),
            "gen_tokens": t, "repeats": len(rounds), "rounds_chars_per_s": cps}


def generation_speed(model, tok, prompts: list[str], new_tokens: int = 256, repeats: int = 3, seed: int = 0) -> dict:
    """Median characters/second and tokens/second of sampling ``new_tokens`` after each prompt,
    and the share of generated tokens that are new vocabulary entries."""
    _generation_round(model, tok, prompts, new_tokens, seed)  # warm-up
    return _speed([_generation_round(model, tok, prompts, new_tokens, seed) for _ in range(repeats)])


def paired_generation_speed(models: dict, prompts: list[str], new_tokens: int = 256, repeats: int = 5,
                            seed: int = 0) -> dict:
    """:func:`generation_speed` of several models, measured in interleaved rounds.

    ``models`` maps a name to ``(model, tokenizer)``; the first is the reference. Round r runs
    every model once, in an order rotated by r, so drift of the machine (clocks, other
    processes, the host's load on a small model's Python-bound decoding) falls on all of them
    alike. Each result adds ``speedup_chars_per_s`` and ``speedup_tokens_per_s``: the median
    over rounds of the ratio to the reference's figure in the same round.
    """
    names = list(models)
    for name in names:  # warm-up
        _generation_round(*models[name], prompts, new_tokens, seed)
    rounds: dict = {n: [] for n in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            rounds[name].append(_generation_round(*models[name], prompts, new_tokens, seed))
    out = {n: _speed(rounds[n]) for n in names}
    ref = rounds[names[0]]
    for n in names:
        out[n]["speedup_chars_per_s"] = statistics.median(
            (c / e) / (rc / re) for (c, _, _, e), (rc, _, _, re) in zip(rounds[n], ref))
        out[n]["speedup_tokens_per_s"] = statistics.median(
            (t / e) / (rt / re) for (_, t, _, e), (_, rt, _, re) in zip(rounds[n], ref))
    return out


def evaluate(base: str, adapter: str | None, text: str, max_chars: int = 0, seq_len: int = 1024,
             gen_tokens: int = 256, prompts: int = 4, repeats: int = 3, dtype: str = "auto",
             device: str = "auto", model=None, tok=None) -> dict:
    """Run every metric. Pass ``model``/``tok`` to skip loading (the experiment does).

    ``base`` is a plain base (its ``tokenizer.model`` or byte-level BPE ``tokenizer.json``), the
    base of ``adapter``, or a folder ``hypertok merge`` wrote (its ``tokenizer.json``, the ids of
    its rows; issue 11).

    Every option and input is checked before a model loads (issue 13).
    """
    for name, v, least in (("--seq-len", seq_len, 1), ("--gen-tokens", gen_tokens, 1), ("--prompts", prompts, 1),
                           ("--repeats", repeats, 1), ("--max-chars", max_chars, 0)):
        if not isinstance(v, int) or v < least:
            raise HyperTokError(f"{name} must be an integer of at least {least}, got {v}")
    if model is None:
        device_of(device)
        check_base_path(base)
        if adapter:
            check_adapter_files(adapter)
            check_adapter_for_base(adapter, base)
    merged = model is None and not adapter and is_merged_dir(base)
    if merged:  # `hypertok merge` output: its own tokenizer.json (the ids of its rows), not the base's tokenizer
        tok = AdaptedTokenizer.load(base)
    docs = read_documents([text], max_chars, what="--text")
    if model is None:
        if adapter:
            adapted = AdaptedModel.from_pretrained(base, adapter, dtype, device)
            model, tok = adapted.merge_and_unload(), adapted.tokenizer  # same outputs, no LoRA overhead in the timing
        else:
            if not merged:
                tok = BaseTokenizer(find_base(check_base_path(base)))
            model = load_base_model(base, dtype, device)
            if model.get_input_embeddings().weight.shape[0] < len(tok):
                raise HyperTokError(f"{base}: the model has {model.get_input_embeddings().weight.shape[0]} rows but "
                                    f"its tokenizer {len(tok)} ids; the folder mixes two models")
    model.eval()
    res = bits_per_char(model, tok, docs, seq_len)
    starts = [d[:200] for d in docs if len(d) >= 200][:prompts] or [docs[0][:200]]
    res.update(generation_speed(model, tok, starts, gen_tokens, repeats))
    res["model_vocab_size"] = len(tok)
    return res
