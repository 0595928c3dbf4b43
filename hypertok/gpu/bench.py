"""CUDA measurement of a Mistral-class model's memory and speed at one sequence length.

What it does: builds a ``MistralForCausalLM`` with random bf16 weights straight on the GPU
from a :class:`hypertok.gpu.memory.ModelShape` (no download: the figures do not depend on
trained weights), with SDPA attention, and measures, after a warm-up, with
``torch.cuda.synchronize`` around every timed region and the median of several runs:

- **inference** (:func:`measure_inference`): prefill peak memory
  (``max_memory_allocated`` and ``max_memory_reserved``), prefill latency, KV-cache
  bytes, and decode throughput in tokens/s and characters/s over ``decode_tokens``
  greedy steps (median step time and whole-run rate);
- **train** (:func:`measure_train`): one forward+backward of a LoRA step (peft, all seven
  linear layers, gradient checkpointing) with the full-vocabulary Hugging Face loss
  (``full``), with our chunked loss (``chunked``, :func:`hypertok.loss.chunked_cross_entropy`)
  that never holds more than one chunk of logits, or with Liger's fused linear
  cross-entropy (``liger``, :func:`hypertok.loss.fused_cross_entropy`; CUDA and the
  liger-kernel package), which holds one block of about ``tokens x hidden`` logits.

An out-of-memory error is returned as ``{"oom": message}`` so a sweep can go on.
:class:`LiveBytes` counts the bytes of live tensors on any device (CPU included); the
tests use it to check :mod:`hypertok.gpu.memory` without a GPU.

What it does not do: no optimizer step (the train figure is forward+backward), no batch
> 1, no tokenization (see :mod:`hypertok.gpu.vram`). torch, transformers and peft are imported
inside the functions, so importing this module is light.

The chunked and fused losses are those of :mod:`hypertok.loss`, the same ones adaptation
trains with (``hypertok adapt --loss``).

Follows issue 4 ("VRAM, attention and speed") and the timing method of
karpathy/nanoGPT ``bench.py``. Moved from ``hypertok/bench.py`` by issue 9.
"""

from __future__ import annotations

import gc
import statistics
import time
import weakref

from ..loss import chunked_cross_entropy, fused_cross_entropy
from .memory import ModelShape


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def environment() -> dict:
    """Versions and the GPU name, for the results file."""
    import platform

    info = {"python": platform.python_version()}
    for mod in ("torch", "transformers", "peft", "tokenizers", "sentencepiece"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - a missing optional package is simply not listed
            pass
    try:
        import torch

        if torch.cuda.is_available():
            p = torch.cuda.get_device_properties(0)
            info.update(gpu=p.name, gpu_memory_bytes=int(p.total_memory), cuda=torch.version.cuda,
                        sdpa_flash=bool(torch.backends.cuda.flash_sdp_enabled()))
    except ImportError:
        pass
    return info


def gpu_memory_bytes() -> int | None:
    import torch

    return int(torch.cuda.get_device_properties(0).total_memory) if torch.cuda.is_available() else None


# --------------------------------------------------------------------------- model
def build_model(shape: ModelShape, device: str = "cuda", seed: int = 0):
    """Random-init bf16 ``MistralForCausalLM`` of this shape, built directly on ``device``."""
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    torch.manual_seed(seed)
    cfg = MistralConfig(**shape.hf_config())
    cfg._attn_implementation = "sdpa"
    with torch.device(device):
        model = MistralForCausalLM._from_config(cfg, dtype=torch.bfloat16)
    return model.eval()


def free(model=None) -> None:
    """Drop a model and give its memory back to the driver."""
    import torch

    del model
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def add_lora(model, rank: int = 16):
    """peft LoRA on all seven linear layers, gradient checkpointing on; returns the peft model."""
    from peft import LoraConfig, get_peft_model

    enable = getattr(model, "activation_checkpointing_enable", None)  # transformers >= 5.2x name
    if enable is None:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    else:
        enable(activation_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    cfg = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, bias="none",
                     target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    # bf16 adapters like the base (peft would upcast them to float32 and keep float32 copies of
    # every adapted layer's input for backward).
    import warnings

    with warnings.catch_warnings():  # peft reads transformers 5's deprecated is_gradient_checkpointing
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        peft_model = get_peft_model(model, cfg, autocast_adapter_dtype=False)
    peft_model.train()
    return peft_model


# --------------------------------------------------------------------------- helpers
def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _is_oom(e: BaseException) -> bool:
    import torch

    return isinstance(e, torch.OutOfMemoryError) or "out of memory" in str(e).lower()


def _reset_peak() -> int:
    import torch

    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    return int(torch.cuda.memory_allocated())


def _peaks() -> dict:
    import torch

    return {"peak_allocated": int(torch.cuda.max_memory_allocated()),
            "peak_reserved": int(torch.cuda.max_memory_reserved())}


def _ids(token_ids, device):
    import torch

    return torch.tensor([list(token_ids)], dtype=torch.long, device=device)  # (1, T)


# --------------------------------------------------------------------------- inference
def prefill(model, ids):
    """One prefill as ``generate`` does it: fresh cache, logits of the last position only."""
    from transformers import DynamicCache

    cache = DynamicCache(config=model.config)
    out = model(input_ids=ids, past_key_values=cache, use_cache=True, logits_to_keep=1)
    return out.logits, cache  # (1, 1, V), cache of T positions


def measure_inference(model, token_ids, chars: int, decode_tokens: int = 128, repeats: int = 3) -> dict:
    """Prefill peak/latency, KV bytes and greedy decode speed for one sequence; ``{"oom": ...}`` on OOM."""
    import torch

    dev = next(model.parameters()).device
    res: dict = {}
    error = None
    try:
        ids = _ids(token_ids, dev)
        before = _reset_peak()
        times = []
        with torch.inference_mode():
            for r in range(repeats):
                _sync()
                t0 = time.perf_counter()
                logits, cache = prefill(model, ids)
                _sync()
                times.append(time.perf_counter() - t0)
                if r == 0:
                    res.update(_peaks())
                    res["allocated_before"] = before
                    res["kv_cache_bytes"] = int(sum(l.keys.nbytes + l.values.nbytes for l in cache.layers))
                if r < repeats - 1:
                    del logits, cache
            res["prefill_s"] = statistics.median(times)
            res["prefill_runs_s"] = times
            res["prefill_tokens_per_s"] = len(token_ids) / res["prefill_s"]
            # Greedy decode after the last prefill: per-step CUDA events, one sync at the end.
            nxt = logits[:, -1:].argmax(-1)  # (1, 1)
            del logits
            starts = [torch.cuda.Event(enable_timing=True) for _ in range(decode_tokens + 1)]
            starts[0].record()
            _sync()
            t0 = time.perf_counter()
            for k in range(decode_tokens):
                out = model(input_ids=nxt, past_key_values=cache, use_cache=True)
                nxt = out.logits[:, -1:].argmax(-1)
                starts[k + 1].record()
            _sync()
            wall = time.perf_counter() - t0
            steps = [starts[k].elapsed_time(starts[k + 1]) / 1000 for k in range(1, decode_tokens)]
            step = statistics.median(steps) if steps else wall / max(decode_tokens, 1)
            res.update(_peaks_with("peak_allocated_with_decode"))
            del out, nxt, cache
        cpt = chars / len(token_ids)
        res.update(decode_tokens=decode_tokens, decode_step_s=step, decode_tokens_per_s=1 / step,
                   decode_chars_per_s=cpt / step, decode_wall_tokens_per_s=decode_tokens / wall,
                   decode_wall_chars_per_s=decode_tokens * cpt / wall)
    except Exception as e:  # noqa: BLE001 - only OOM is recorded; everything else is re-raised
        if not _is_oom(e):
            raise
        error = str(e).split("\n")[0][:300]
    if error is not None:
        res = {"oom": error}
        free()
    return res


def _peaks_with(key: str) -> dict:
    import torch

    return {key: int(torch.cuda.max_memory_allocated())}


# --------------------------------------------------------------------------- train
def train_step(model, ids, loss: str = "full", chunk: int = 4096) -> float:
    """One forward+backward of a peft model on ``ids`` (1, T); returns the mean loss value.

    ``loss``: ``full`` (Hugging Face's, all logits), ``chunked`` (``chunk`` positions of
    logits at a time) or ``liger`` (Liger's fused kernel; ``chunk`` does not apply).
    """
    model.zero_grad(set_to_none=True)
    if loss == "full":
        out = model(input_ids=ids, labels=ids, use_cache=False)
        value = out.loss
        del out
    elif loss in ("chunked", "liger"):
        base = model.get_base_model()  # MistralForCausalLM with LoRA layers inside
        hidden = base.model(input_ids=ids, use_cache=False).last_hidden_state  # (1, T, H)
        if loss == "chunked":
            total, n = chunked_cross_entropy(hidden[0, :-1], ids[0, 1:], base.lm_head.weight, chunk)
        else:
            total, n = fused_cross_entropy(hidden[0, :-1], ids[0, 1:], base.lm_head)  # (T-1, H), (T-1,)
        value = total / n
        del hidden
    else:
        raise ValueError(f"train_step: unknown loss {loss!r}")
    value.backward()
    return float(value.detach())


def measure_train(model, token_ids, loss: str = "full", repeats: int = 3, chunk: int = 4096,
                  warmup: bool = False) -> dict:
    """Peak memory and latency (median of ``repeats``) of :func:`train_step`, after an optional warm-up run."""
    dev = next(model.parameters()).device
    res: dict = {}
    error = None
    try:
        ids = _ids(token_ids, dev)
        if warmup:
            train_step(model, ids, loss, chunk)
            model.zero_grad(set_to_none=True)
        before = _reset_peak()
        times = []
        for _ in range(repeats):
            _sync()
            t0 = time.perf_counter()
            value = train_step(model, ids, loss, chunk)
            _sync()
            times.append(time.perf_counter() - t0)
        res.update(_peaks())
        res.update(allocated_before=before, step_s=statistics.median(times), step_runs_s=times,
                   tokens_per_s=len(token_ids) / statistics.median(times), loss_value=value)
    except Exception as e:  # noqa: BLE001
        if not _is_oom(e):
            raise
        error = str(e).split("\n")[0][:300]
    model.zero_grad(set_to_none=True)
    if error is not None:
        res = {"oom": error}
        free()
    return res


# --------------------------------------------------------------------------- live-bytes tracer
class LiveBytes:
    """Context manager counting bytes of tensors created inside it that are still alive.

    A ``TorchDispatchMode`` sees every op's outputs; each new storage is counted until
    its last reference dies (weak reference callback). ``peak`` is the largest sum seen.
    Works on CPU, so the memory model can be checked without a GPU. Kernel-internal
    workspaces (e.g. the flash-attention backward buffers on CUDA) are not seen.

    >>> import torch
    >>> with LiveBytes() as lb:
    ...     a = torch.ones(1000); b = a * 2; del a; c = b + 1
    >>> lb.peak
    8000
    """

    def __init__(self) -> None:
        self.live = 0
        self.peak = 0
        self._refs: dict = {}
        self._mode = None

    def _free(self, key, n) -> None:
        self.live -= n
        self._refs.pop(key, None)

    def _seen(self, out, args, kwargs) -> None:
        import torch
        from torch.utils._pytree import tree_flatten

        inputs = {t.untyped_storage().data_ptr() for t in tree_flatten((args, kwargs))[0]
                  if isinstance(t, torch.Tensor) and t.device.type != "meta"}
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                st = t.untyped_storage()
                key = st.data_ptr()
                n = st.nbytes()
                if n == 0 or key in self._refs or key in inputs:  # views and in-place results
                    continue
                self.live += n
                self._refs[key] = weakref.ref(st, lambda _r, k=key, n=n: self._free(k, n))
        self.peak = max(self.peak, self.live)

    def __enter__(self) -> "LiveBytes":
        from torch.utils._python_dispatch import TorchDispatchMode

        outer = self

        class _Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                outer._seen(out, args, kwargs)
                return out

        self._mode = _Mode()
        self._mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._mode.__exit__(*exc)
