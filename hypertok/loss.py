"""The one chunked cross-entropy of HyperTok (issue 9), for training and for measuring memory.

What it does: the next-token cross-entropy of a causal LM whose ``tokens x vocab`` logits
never exist at once. ``chunked_cross_entropy`` takes the final hidden states and the
output head and computes the logits ``chunk`` tokens at a time; under autograd each chunk
is checkpointed, so its logits are recomputed in backward instead of stored and peak memory
holds one ``(chunk, vocab)`` block. ``causal_lm_nll`` runs the model body first, with
explicit positions and no KV cache, which is what packed training rows need (positions
restart at each document, so documents never attend to each other).

Used by ``hypertok.adapt`` (training and bits per character) and by the CUDA benchmark
of ``hypertok vram`` (train-step memory with the chunked or the fused loss).

:func:`token_logprobs` gives the same quantity per position instead of summed, for the
span sums of cross-tokenizer distillation (``hypertok.adapt.distill``); its sum is minus
the summed cross-entropy, so one pass serves both.

What it does not do: no label shifting (callers pass the targets of each position), no
z-loss or label smoothing. torch is imported inside the functions only.
"""

from __future__ import annotations

from .errors import HyperTokError

IGNORE_INDEX = -100
LOSSES = ("chunked", "liger")
LIGER_MISSING = "needs the liger-kernel package on a CUDA machine (pip install liger-kernel)"


def check_liger(flag: str = "--loss liger", instead: str = "--loss chunked runs anywhere") -> None:
    """Refuse, in one line naming ``flag``, where the liger-kernel package is not installed.

    Only the package's presence is checked (``importlib.util.find_spec``), so nothing heavy
    is imported; Triton itself fails later without CUDA.
    """
    import importlib.util

    if importlib.util.find_spec("liger_kernel") is None:
        raise HyperTokError(f"{flag} {LIGER_MISSING}; {instead}")


def pick_loss(loss: str, device_type: str, distill: bool = False) -> str:
    """The next-token loss a run uses: ``auto`` is Liger's fused loss on CUDA where liger-kernel
    is installed and no distillation needs per-token log-probabilities, else ours (chunked).

    Liger's is the better one where it runs: 5.7x less memory and 0.65x the time of ours at
    128k (``experiments/adapt/loss.json``), and in the proxy runs of issue 10 its training
    peak was 14% lower (``experiments/adapt/README.md``).

    >>> pick_loss("auto", "cpu"), pick_loss("chunked", "cuda"), pick_loss("auto", "cuda", distill=True)
    ('chunked', 'chunked', 'chunked')
    """
    import importlib.util

    if loss != "auto":
        return loss
    if device_type == "cuda" and not distill and importlib.util.find_spec("liger_kernel") is not None:
        return "liger"
    return "chunked"


def chunked_cross_entropy(hidden, labels, head, chunk: int = 8192, checkpoint: bool = True,
                          ignore_index: int = IGNORE_INDEX):
    """Summed cross-entropy in nats (float32 scalar tensor) and the number of targets (int).

    ``hidden`` (..., d) are final hidden states, ``labels`` (...) the target of each
    position (``ignore_index``: no target), ``head`` the output layer: a module (an
    ``lm_head``, also one wrapped by peft) or its weight (V, d). Logits are made in float32,
    ``chunk`` tokens at a time; with ``checkpoint`` and grad enabled each chunk's logits are
    recomputed in backward. The mean loss is ``total / count``.

    >>> import torch
    >>> h, w = torch.randn(5, 3), torch.randn(7, 3)
    >>> y = torch.tensor([1, 2, -100, 4, 5])
    >>> total, n = chunked_cross_entropy(h, y, w, chunk=2)
    >>> n
    4
    >>> full = torch.nn.functional.cross_entropy(h @ w.T, y, reduction="sum")
    >>> bool(torch.allclose(total, full))
    True
    """
    import torch
    import torch.nn.functional as F
    from torch.utils.checkpoint import checkpoint as ckpt

    h = hidden.reshape(-1, hidden.shape[-1])  # (N, d)
    y = labels.reshape(-1)  # (N,)
    keep = y != ignore_index
    n = int(keep.sum())
    if n < len(y):
        h, y = h[keep], y[keep]  # (n, d), (n,)
    project = head if callable(head) else (lambda x: F.linear(x, head))

    def ce(hc, yc):
        return F.cross_entropy(project(hc).float(), yc, reduction="sum")  # logits (c, V) live only here

    total = h.new_zeros((), dtype=torch.float32)
    for s in range(0, len(y), chunk):
        if checkpoint and torch.is_grad_enabled():
            total = total + ckpt(ce, h[s:s + chunk], y[s:s + chunk], use_reentrant=False)
        else:
            total = total + ce(h[s:s + chunk], y[s:s + chunk])
    return total, n


def fused_cross_entropy(hidden, labels, head, ignore_index: int = IGNORE_INDEX):
    """Summed cross-entropy (float32 scalar) and target count through Liger's fused linear
    cross-entropy (``liger-kernel``, Triton, CUDA only), which never holds more than a block
    of logits and computes the gradients in its forward pass.

    ``head`` is an output layer or its weight (V, d). Through peft's wrappers (trainable
    token rows, ``modules_to_save``) ``head.weight`` is the weight the layer really applies,
    with the trainable rows in it, so gradients reach them. On the 7B head shape it needed
    5.7x less memory than :func:`chunked_cross_entropy` at 128k and 0.65x its time
    (``experiments/adapt/loss.json``); it trained every run of issue 10's third and fourth leases.
    """
    try:
        from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss
    except ImportError:
        raise HyperTokError(f"--loss liger {LIGER_MISSING}; --loss chunked runs anywhere") from None
    h = hidden.reshape(-1, hidden.shape[-1])  # (N, d)
    y = labels.reshape(-1)  # (N,)
    weight = head.weight if callable(head) else head  # (V, d)
    total = LigerFusedLinearCrossEntropyLoss(ignore_index=ignore_index, reduction="sum")(weight, h, y)
    return total.float(), int((y != ignore_index).sum())


def causal_lm_nll(model, input_ids, position_ids, labels, chunk: int = 8192, checkpoint: bool = True,
                  loss: str = "chunked"):
    """Summed cross-entropy (nats) and target count of a transformers causal LM (or a peft
    model around one) on rows ``input_ids`` (B, T) with ``position_ids`` (B, T) and
    ``labels`` (B, T), the loss computed by :func:`chunked_cross_entropy` (``loss="chunked"``)
    or :func:`fused_cross_entropy` (``loss="liger"``)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    # use_cache=False: with a KV cache object transformers ignores the packed positions and
    # lets documents in one row attend to each other
    h = inner.model(input_ids=input_ids, position_ids=position_ids, use_cache=False).last_hidden_state  # (B, T, d)
    if loss == "liger":
        return fused_cross_entropy(h, labels, inner.lm_head)
    return chunked_cross_entropy(h, labels, inner.lm_head, chunk, checkpoint)


def token_logprobs(hidden, targets, head, chunk: int = 8192, checkpoint: bool = True, ignore_index: int = IGNORE_INDEX):
    """``log p(target)`` at every position (0 where there is no target), logits ``chunk`` rows at a time.

    ``hidden`` (B, T, d), ``targets`` (B, T) -> (B, T) float32. The sum of the result is minus
    the summed cross-entropy, so one pass serves the next-token loss and the span sums.

    >>> import torch
    >>> h, w = torch.randn(2, 3, 4), torch.randn(6, 4)
    >>> y = torch.tensor([[1, -100, 2], [0, 5, 3]])
    >>> lp = token_logprobs(h, y, w, chunk=2)
    >>> total, n = chunked_cross_entropy(h, y, w)
    >>> bool(torch.allclose(-lp.sum(), total)), float(lp[0, 1])
    (True, 0.0)
    """
    import torch
    import torch.nn.functional as F
    from torch.utils.checkpoint import checkpoint as ckpt

    B, T = targets.shape
    h = hidden.reshape(B * T, -1)                                             # (N, d)
    y = targets.reshape(-1)                                                  # (N,)
    keep = torch.nonzero(y != ignore_index).squeeze(1)
    project = head if callable(head) else (lambda x: F.linear(x, head))

    def lp(hc, yc):
        logits = project(hc).float()                                         # (c, V) lives only here
        return logits.gather(1, yc[:, None]).squeeze(1) - torch.logsumexp(logits, dim=1)

    parts = []
    for s in range(0, len(keep), chunk):
        k = keep[s:s + chunk]
        if checkpoint and torch.is_grad_enabled():
            parts.append(ckpt(lp, h[k], y[k], use_reentrant=False))
        else:
            parts.append(lp(h[k], y[k]))
    out = torch.zeros(B * T, dtype=torch.float32, device=hidden.device)
    if parts:
        out = out.index_put((keep,), torch.cat(parts))
    return out.view(B, T)
