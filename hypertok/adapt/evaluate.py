"""Tokenizer-independent evaluation of a (base or adapted) causal LM (issues 5 and 21, ``hypertok eval``).

What it measures:

- bits per character and bits per byte on held-out text: the summed negative log2
  likelihood of every document (its tokens and its ``</s>``, each conditioned on what
  precedes it inside the document and the ``--seq-len`` window), divided by the
  document characters (or UTF-8 bytes). Every model is scored on the same characters, but
  a window of ``--seq-len`` tokens holds more characters for a tokenizer with longer
  tokens, so that model also sees more context.
- bits per character with equal characters of context (issue 21): every document is cut
  into the same windows of at most ``--context-chars`` characters (:func:`char_windows`, at
  whitespace, by the text alone), and each window is scored from ``<bos>`` on
  (:func:`text_logprobs`). Every model then predicts the same characters from the same
  characters, whatever its tokenizer: the figure to compare tokenizers by.
- minimal-pair accuracy (RuBLiMP, issue 21): the share of pairs whose grammatical sentence
  gets a higher total log-probability than its ungrammatical twin (:func:`minimal_pair_accuracy`),
  overall and per phenomenon. The total log-probability of a string does not depend on how
  it is segmented, so this too compares models with different vocabularies.
- generation characters per second: batch 1, KV cache, sampling (top-k 50, seeded),
  a fixed number of new tokens with ``</s>`` suppressed; warm-up first, CUDA
  synchronised, the median of ``repeats`` timed rounds over all prompts.
- new-token share: the share of generated tokens that are vocabulary entries the base did
  not have (for ``extend``: ids beyond the base rows; for ``replace``: HyperTok entries,
  kinds other than fallback/char/byte/special). The ruadapt warning: a model that keeps
  emitting old pieces gains no speed.

The training loop uses :func:`stream_nll` for its periodic evaluation; this module does
not import the loop (issue 9 removed the import circle).

What it does not do: no generative or prompted task accuracy (question answering, multiple
choice with a prompt), no batched-serving throughput.
"""

from __future__ import annotations

import bisect
import csv
import io
import math
import re
import statistics
import time
from pathlib import Path

from ..loss import IGNORE_INDEX, causal_lm_nll, token_logprobs
from ..registry import AdaptedTokenizer, BaseTokenizer, find_base
from .data import encode_docs, n_rows, pack, read_documents, rows_of
from ..errors import HyperTokError
from .model import (AdaptedModel, autocast, check_adapter_files, check_adapter_for_base, check_base_path, device_of,
                    is_merged_dir, load_base_config, load_base_model)


LOGITS_BYTES = 1 << 28  # the float32 logits of one evaluation chunk stay under 256 MiB


def logits_chunk(model, chunk: int) -> int:
    """Tokens per logits chunk in evaluation: ``chunk``, fewer where the head is wide, so that a
    chunk's float32 logits stay under :data:`LOGITS_BYTES` (a 17 MB model with 35k rows peaked
    at 3.1 GB with 8 192-token chunks, issue 24)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    rows = int(getattr(inner.config, "vocab_size", 0) or 1)
    return min(chunk, max(64, LOGITS_BYTES // (4 * rows)))


def stream_nll(model, stream, seq_len: int, bos: int, batch_size: int = 8, chunk: int = 8192,
               max_rows: int = 0, bos_first: bool = True) -> tuple[float, int]:
    """Total NLL (nats) and target count over every row of a packed stream (no grad).

    ``bos_first``: every row starts with ``<s>`` (:func:`~hypertok.adapt.data.rows_of`), as
    training rows do by default; every target is still scored once."""
    import numpy as np
    import torch

    device = next(model.parameters()).device
    total_rows = n_rows(stream, seq_len, full_only=False, bos_first=bos_first)
    if max_rows:
        total_rows = min(total_rows, max_rows)
    was = model.training
    model.eval()
    tot, cnt = 0.0, 0
    chunk = logits_chunk(model, chunk)
    with torch.no_grad(), autocast(device):
        for s in range(0, total_rows, batch_size):
            X, P, Y = rows_of(stream, seq_len, bos, np.arange(s, min(s + batch_size, total_rows)), bos_first=bos_first)
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


# ----------------------------------------------------------------------------------------
# Equal characters of context (issue 21)
# ----------------------------------------------------------------------------------------

_SPACE = re.compile(r"\s")


def char_windows(docs: list[str], context_chars: int) -> list[str]:
    """Every document cut into consecutive windows of at most ``context_chars`` characters.

    A window ends after the last whitespace at or before the limit (so the next one starts a
    word), or hard at the limit where it holds no whitespace. The cuts depend on the text
    alone, never on a tokenizer, so every model is scored on the same windows; a document's
    windows concatenate back to it exactly.

    >>> char_windows(["один два три", "абвгдеёжз"], 8)
    ['один ', 'два три', 'абвгдеёж', 'з']
    """
    if not isinstance(context_chars, int) or context_chars < 1:
        raise HyperTokError(f"--context-chars must be an integer of at least 1, got {context_chars}")
    out = []
    for d in docs:
        spaces = [m.start() for m in _SPACE.finditer(d)]  # where a window may end (after the space)
        i = 0
        while len(d) - i > context_chars:
            end = i + context_chars
            k = bisect.bisect_left(spaces, end) - 1  # the last whitespace at an index < end
            cut = spaces[k] + 1 if k >= 0 and spaces[k] >= i else end
            out.append(d[i:cut])
            i = cut
        if i < len(d):
            out.append(d[i:])
    return out


def _ids_logprobs(model, rows: list[list[int]], batch_size: int = 16, chunk: int = 8192) -> list[float]:
    """Summed log p(row[t] | row[:t]) over t >= 1 of every id row (each starts with its ``<bos>``)."""
    import torch

    device = next(model.parameters()).device
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))  # similar lengths share a batch: little padding
    out = [0.0] * len(rows)
    chunk = logits_chunk(model, chunk)
    was = model.training
    model.eval()
    with torch.no_grad(), autocast(device):
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            T = max(len(rows[i]) for i in idx)
            X = torch.full((len(idx), T), rows[idx[0]][0], dtype=torch.long)   # (B, T), padded with a bos
            Y = torch.full((len(idx), T), IGNORE_INDEX, dtype=torch.long)      # (B, T), target of each position
            M = torch.zeros((len(idx), T), dtype=torch.long)                   # (B, T), 1 on real tokens
            for b, i in enumerate(idx):
                r = torch.tensor(rows[i], dtype=torch.long)
                X[b, :len(r)], M[b, :len(r)], Y[b, :len(r) - 1] = r, 1, r[1:]
            X, Y, M = X.to(device), Y.to(device), M.to(device)
            # right padding: real positions never attend to the pads after them, and pads have no target
            h = inner.model(input_ids=X, attention_mask=M, use_cache=False).last_hidden_state  # (B, T, d)
            lp = token_logprobs(h, Y, inner.lm_head, chunk, checkpoint=False)               # (B, T)
            for i, v in zip(idx, lp.double().sum(1).tolist()):
                out[i] = v
    model.train(was)
    return out


def text_logprobs(model, tok, texts: list[str], batch_size: int = 16, chunk: int = 8192) -> list[float]:
    """The total natural-log probability of each text: ``sum log p(id | <bos>, ids before it)``
    over all its tokens (no ``</s>``), its logits ``chunk`` rows at a time (no grad).

    The total probability of a string does not depend on how a tokenizer segments it, so
    these numbers compare models with different vocabularies. Texts are batched by length
    and right-padded; padding changes nothing (tested against one text at a time).
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise HyperTokError(f"batch_size must be an integer of at least 1, got {batch_size}")
    return _ids_logprobs(model, tok.encode_batch(list(texts), add_bos=True), batch_size, chunk)


def bits_per_char_equal_context(model, tok, docs: list[str], context_chars: int = 2048, batch_size: int = 16,
                                chunk: int = 8192) -> dict:
    """Bits per character and per byte with the same characters of context for every tokenizer.

    ``docs`` are cut by :func:`char_windows`; each window is scored from ``<bos>`` on
    (:func:`text_logprobs`), and the summed -log2 p of all windows is divided by their
    characters (UTF-8 bytes). Keys: ``bpc``, ``bpb``, ``chars``, ``bytes``, ``tokens``,
    ``windows``, ``context_chars``, ``chars_per_token``.
    """
    windows = char_windows(docs, context_chars)
    if not windows:
        raise HyperTokError("no text to measure: every document is empty")
    rows = tok.encode_batch(windows, add_bos=True)
    nll = -sum(_ids_logprobs(model, rows, batch_size, chunk)) / math.log(2)  # bits
    chars = sum(map(len, windows))
    nbytes = sum(len(w.encode("utf-8", "surrogatepass")) for w in windows)
    tokens = sum(len(r) - 1 for r in rows)
    return {"bpc": nll / chars, "bpb": nll / nbytes, "chars": chars, "bytes": nbytes, "tokens": tokens,
            "windows": len(windows), "context_chars": context_chars, "chars_per_token": chars / max(1, tokens)}


# ----------------------------------------------------------------------------------------
# Minimal pairs (RuBLiMP, issue 21)
# ----------------------------------------------------------------------------------------

def read_minimal_pairs(path) -> list[dict]:
    """Minimal pairs of a UTF-8 TSV file with a header: columns ``good`` and ``bad`` (required),
    ``phenomenon`` (optional, default ``all``); other columns are ignored.

    Each pair is ``{"good", "bad", "phenomenon", "line"}``. A missing column, an empty
    sentence or bytes that are not UTF-8 raise :class:`HyperTokError` naming the file and line.

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "p.tsv"
    >>> _ = f.write_text("good\\tbad\\nОн пришёл.\\tОн пришла.\\n", encoding="utf-8")
    >>> read_minimal_pairs(f)
    [{'good': 'Он пришёл.', 'bad': 'Он пришла.', 'phenomenon': 'all', 'line': 2}]
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise HyperTokError(f"{p}: cannot read the minimal pairs ({e.strerror or e}); "
                            "pass a TSV file to --pairs") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise HyperTokError(f"{p}:{line}: not UTF-8 (byte offset {e.start}); save the pairs file as UTF-8") from None
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline=""), delimiter="\t")
    cols = reader.fieldnames or []
    missing = [c for c in ("good", "bad") if c not in cols]
    if missing:
        raise HyperTokError(f"{p}:1: no column {' or '.join(map(repr, missing))} in the header (found: "
                            f"{', '.join(cols) or 'nothing'}); a pairs file is tab-separated with a header line "
                            "naming at least the columns good and bad")
    pairs = []
    for row in reader:
        for c in ("good", "bad"):
            if not (row.get(c) or "").strip():
                raise HyperTokError(f"{p}:{reader.line_num}: the {c!r} sentence is empty; every pair needs both")
        pairs.append({"good": row["good"], "bad": row["bad"], "phenomenon": row.get("phenomenon") or "all",
                      "line": reader.line_num})
    if not pairs:
        raise HyperTokError(f"{p}: no pairs after the header")
    return pairs


def minimal_pair_accuracy(model, tok, pairs: list[dict], batch_size: int = 16, limit_per_phenomenon: int = 0,
                          chunk: int = 8192) -> dict:
    """The share of pairs whose ``good`` sentence has the higher total log-probability
    (:func:`text_logprobs`, from ``<bos>``, no prompt; a tie counts wrong), overall and per phenomenon.

    ``limit_per_phenomenon`` keeps the first N pairs of each phenomenon (0: all). Returns
    ``{"accuracy", "pairs", "by_phenomenon": {name: accuracy}}``, phenomena in order of appearance.
    """
    if not isinstance(limit_per_phenomenon, int) or limit_per_phenomenon < 0:
        raise HyperTokError(f"--pairs-per-phenomenon must be an integer of at least 0, got {limit_per_phenomenon}")
    seen: dict[str, int] = {}
    kept = []
    for pr in pairs:
        n = seen.get(pr["phenomenon"], 0)
        if not limit_per_phenomenon or n < limit_per_phenomenon:
            kept.append(pr)
        seen[pr["phenomenon"]] = n + 1
    if not kept:
        raise HyperTokError("no minimal pairs to score")
    lp = text_logprobs(model, tok, [pr["good"] for pr in kept] + [pr["bad"] for pr in kept], batch_size, chunk)
    right: dict[str, list[bool]] = {}
    for pr, g, b in zip(kept, lp[:len(kept)], lp[len(kept):]):
        right.setdefault(pr["phenomenon"], []).append(g > b)
    total = sum(sum(v) for v in right.values())
    return {"accuracy": total / len(kept), "pairs": len(kept),
            "by_phenomenon": {k: sum(v) / len(v) for k, v in right.items()}}


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


MAX_CONTEXT = 131_072
"""The most ``--seq-len`` and ``--gen-tokens`` tokens, and ``--context-chars`` characters, ``eval`` takes
(issue 24): the longest context of the bases HyperTok adapts (Gemma 3: 131,072 positions). A window is
one forward pass and its memory grows with its length (a typo of ``--seq-len 99999999`` asked for
25.6 GB); generating past a model's context measures nothing. At a character a token or more,
``MAX_CONTEXT`` characters fit that context too."""


def evaluate(base: str, adapter: str | None, text: str, max_chars: int = 0, seq_len: int = 1024,
             gen_tokens: int = 256, prompts: int = 4, repeats: int = 3, dtype: str = "auto",
             device: str = "auto", model=None, tok=None, context_chars: int = 2048, pairs=(),
             pairs_per_phenomenon: int = 0) -> dict:
    """Run every metric. Pass ``model``/``tok`` to skip loading (the experiment does).

    ``base`` is a plain base (its ``tokenizer.model`` or byte-level BPE ``tokenizer.json``), the
    base of ``adapter``, or a folder ``hypertok merge`` wrote (its ``tokenizer.json``, the ids of
    its rows; issue 11).

    ``context_chars`` (0: off) adds ``bpc_equal_context``/``bpb_equal_context``
    (:func:`bits_per_char_equal_context`); each file of ``pairs`` adds
    ``res["pairs"][its stem]`` (:func:`minimal_pair_accuracy`, the first
    ``pairs_per_phenomenon`` pairs of each phenomenon, 0: all).

    Every option and input is checked before a model loads (issue 13).
    """
    for name, v, least in (("--seq-len", seq_len, 1), ("--gen-tokens", gen_tokens, 1), ("--prompts", prompts, 1),
                           ("--repeats", repeats, 1), ("--max-chars", max_chars, 0),
                           ("--context-chars", context_chars, 0), ("--pairs-per-phenomenon", pairs_per_phenomenon, 0)):
        if not isinstance(v, int) or v < least:
            raise HyperTokError(f"{name} must be an integer of at least {least}, got {v}")
    for name, v, unit in (("--seq-len", seq_len, "tokens"), ("--gen-tokens", gen_tokens, "tokens"),
                          ("--context-chars", context_chars, "characters")):
        if v > MAX_CONTEXT:
            raise HyperTokError(f"{name} {v} is more than {MAX_CONTEXT} {unit}, the longest context of the bases "
                                f"HyperTok adapts; memory grows with the window, so give at most {MAX_CONTEXT}")
    pair_sets: dict[str, list[dict]] = {}
    for f in pairs or ():
        stem = Path(f).stem
        if stem in pair_sets:
            raise HyperTokError(f"--pairs: two files are named {stem!r}; results are keyed by file name, so rename one")
        pair_sets[stem] = read_minimal_pairs(f)
    if model is None:
        device_of(device)
        load_base_config(base)  # config, generation config and safetensors weights, before any work (issue 24)
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
    if context_chars:
        eq = bits_per_char_equal_context(model, tok, docs, context_chars)
        res.update(bpc_equal_context=eq["bpc"], bpb_equal_context=eq["bpb"], context_chars=context_chars)
    if pair_sets:
        res["pairs"] = {stem: minimal_pair_accuracy(model, tok, ps, limit_per_phenomenon=pairs_per_phenomenon)
                        for stem, ps in pair_sets.items()}
    starts = [d[:200] for d in docs if len(d) >= 200][:prompts] or [docs[0][:200]]
    res.update(generation_speed(model, tok, starts, gen_tokens, repeats))
    res["model_vocab_size"] = len(tok)
    return res
