"""Analytic GPU memory and FLOP model of a Mistral-class decoder, per tokenizer.

What it does: given a model shape (layers, hidden size, heads, KV heads, head dim, MLP
size, vocabulary size) and a sequence length in tokens, it predicts what
``hypertok vram`` measures on a GPU, term by term:

- **weights**, with the vocabulary part (``embed_tokens`` plus the untied ``lm_head``)
  shown separately: every new vocabulary row costs ``2 x hidden`` parameters;
- **KV cache**: ``2 (K and V) x layers x tokens x kv_heads x head_dim`` elements;
- **activation peak** of one forward (inference) or one LoRA forward+backward with
  gradient checkpointing (train), derived from which tensors the Hugging Face
  ``MistralForCausalLM`` code keeps alive at its worst moment (see the comments at
  :func:`inference_estimate` and :func:`train_estimate`);
- **logits**: one row at inference (``logits_to_keep=1``, as ``generate`` does), all
  ``tokens x vocab`` of them in training with the full-vocabulary loss, one chunk of
  them with our chunked loss, or the one block Liger's fused linear cross-entropy
  holds (about ``tokens x hidden`` elements whatever the vocabulary, :func:`liger_chunk`);
- **FLOPs** of the linear layers and of attention (causal, so half the score matrix).

The vocabulary is sized per tokenizer: ``extend`` = base vocabulary + the new entries,
``replace`` = the HyperTok size alone (:func:`vocab_for`).

What it does not do: no torch import and no measurement (that is :mod:`hypertok.gpu.bench`);
no optimizer state (the train figure is one forward+backward, as measured); no
allocator fragmentation (it predicts ``torch.cuda.max_memory_allocated``, not
``max_memory_reserved``); no batch > 1.

Follows issue 4 ("VRAM, attention and speed"); the untied-embedding point is from the
issue text, the logits pitfall from REFERENCE.md ("Training with a large vocabulary").
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ..errors import HyperTokError
from ..files import read_json
from ..loss import LOSSES

GIB = 1024**3
TRAIN_LOSSES = ("full",) + LOSSES  # the losses of a train step: Hugging Face's, then those of hypertok.loss


@dataclass(frozen=True)
class ModelShape:
    """The numbers of a Mistral-class decoder that memory and FLOPs depend on.

    >>> s = BUILTIN_MODELS["mistral-7b"]
    >>> s.kv_dim, s.params()["total"]
    (1024, 7248023552)
    """

    name: str
    n_layers: int
    hidden: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tie_embeddings: bool = False
    sliding_window: int | None = None
    rms_norm_eps: float = 1e-5
    rope_theta: float = 1_000_000.0
    max_position_embeddings: int = 32768

    def __post_init__(self) -> None:
        for f in ("n_layers", "hidden", "n_heads", "n_kv_heads", "head_dim", "intermediate", "vocab"):
            v = getattr(self, f)
            if not isinstance(v, int) or v <= 0:
                raise HyperTokError(f"model {self.name!r}: {f} must be a positive integer, got {v!r}")
        if self.n_heads % self.n_kv_heads:
            raise HyperTokError(f"model {self.name!r}: {self.n_heads} heads are not a multiple of "
                                f"{self.n_kv_heads} KV heads")

    @property
    def kv_dim(self) -> int:
        return self.n_kv_heads * self.head_dim

    @property
    def q_dim(self) -> int:
        return self.n_heads * self.head_dim

    def with_vocab(self, vocab: int) -> "ModelShape":
        return replace(self, vocab=int(vocab))

    def layer_linear_params(self) -> int:
        """Weights of the seven linear layers of one decoder layer."""
        h, q, kv, i = self.hidden, self.q_dim, self.kv_dim, self.intermediate
        return h * q + 2 * h * kv + q * h + 3 * h * i

    def params(self) -> dict[str, int]:
        """Parameter counts: ``embed``, ``lm_head`` (0 when tied), ``layers``, ``norms``, ``vocab``, ``total``."""
        embed = self.vocab * self.hidden
        lm_head = 0 if self.tie_embeddings else self.vocab * self.hidden
        layers = self.n_layers * (self.layer_linear_params() + 2 * self.hidden)
        norms = self.hidden
        return {"embed": embed, "lm_head": lm_head, "layers": layers, "norms": norms,
                "vocab": embed + lm_head, "total": embed + lm_head + layers + norms}

    def bytes_per_vocab_row(self, dtype_bytes: int = 2) -> int:
        """Weight bytes one more vocabulary row costs (embedding row + lm_head row)."""
        return (1 if self.tie_embeddings else 2) * self.hidden * dtype_bytes

    def hf_config(self) -> dict:
        """Keyword arguments for ``transformers.MistralConfig``."""
        return {
            "vocab_size": self.vocab, "hidden_size": self.hidden, "intermediate_size": self.intermediate,
            "num_hidden_layers": self.n_layers, "num_attention_heads": self.n_heads,
            "num_key_value_heads": self.n_kv_heads, "head_dim": self.head_dim,
            "tie_word_embeddings": self.tie_embeddings, "sliding_window": self.sliding_window,
            "rms_norm_eps": self.rms_norm_eps, "rope_theta": self.rope_theta,
            "max_position_embeddings": self.max_position_embeddings,
            "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": None,
        }

    def to_dict(self) -> dict:
        return asdict(self)


BUILTIN_MODELS: dict[str, ModelShape] = {
    # Mistral-7B v0.3: 32 768 vocabulary, untied embeddings, no sliding window.
    "mistral-7b": ModelShape("mistral-7b", n_layers=32, hidden=4096, n_heads=32, n_kv_heads=8, head_dim=128,
                             intermediate=14336, vocab=32768, tie_embeddings=False, sliding_window=None),
}


def shape_from_config(cfg: dict, name: str = "config") -> ModelShape:
    """A :class:`ModelShape` from a Hugging Face ``config.json`` dictionary.

    >>> shape_from_config({"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4,
    ...                    "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 100}).head_dim
    16
    """
    try:
        hidden = int(cfg["hidden_size"])
        heads = int(cfg["num_attention_heads"])
        shape = ModelShape(
            name=name,
            n_layers=int(cfg["num_hidden_layers"]),
            hidden=hidden,
            n_heads=heads,
            n_kv_heads=int(cfg.get("num_key_value_heads") or heads),
            head_dim=int(cfg.get("head_dim") or hidden // heads),
            intermediate=int(cfg["intermediate_size"]),
            vocab=int(cfg["vocab_size"]),
            tie_embeddings=bool(cfg.get("tie_word_embeddings", False)),
            sliding_window=cfg.get("sliding_window"),
            rms_norm_eps=float(cfg.get("rms_norm_eps", 1e-5)),
            rope_theta=float(cfg.get("rope_theta") or (cfg.get("rope_parameters") or {}).get("rope_theta", 1e6)),
            max_position_embeddings=int(cfg.get("max_position_embeddings", 32768)),
        )
    except KeyError as e:
        raise HyperTokError(f"{name}: config has no {e.args[0]!r}; give a Mistral/Llama-style config.json") from None
    except (TypeError, ValueError) as e:
        raise HyperTokError(f"{name}: config value is not a number ({e})") from None
    return shape


def load_shape(spec: str) -> ModelShape:
    """A built-in name (``mistral-7b``), a ``config.json`` path, or a checkpoint folder holding one.

    >>> load_shape("mistral-7b").n_layers
    32
    >>> load_shape("llama-9000")
    Traceback (most recent call last):
    ...
    hypertok.errors.HyperTokError: --model 'llama-9000': not a built-in model (mistral-7b), and no such file or folder; give a config.json or a local checkpoint folder
    """
    if spec in BUILTIN_MODELS:
        return BUILTIN_MODELS[spec]
    p = Path(spec)
    if p.is_dir():
        p = p / "config.json"
        if not p.is_file():
            raise HyperTokError(f"--model {spec!r}: folder has no config.json; give a checkpoint folder or a config file")
    elif not p.is_file():
        raise HyperTokError(f"--model {spec!r}: not a built-in model ({', '.join(BUILTIN_MODELS)}), and no such "
                            "file or folder; give a config.json or a local checkpoint folder")
    return shape_from_config(read_json(p), name=str(spec))


def vocab_for(base_vocab: int, tokenizer_vocab: int, new_entries: int, strategy: str) -> int:
    """Model vocabulary for a tokenizer: ``base``, ``extend`` (base + new entries) or ``replace``.

    >>> vocab_for(32768, 32000, 27000, "extend"), vocab_for(32768, 32000, 27000, "replace")
    (59768, 32000)
    """
    if strategy == "base":
        return base_vocab
    if strategy == "extend":
        return base_vocab + new_entries
    if strategy == "replace":
        return tokenizer_vocab
    raise HyperTokError(f"vocabulary strategy {strategy!r}: use base, extend or replace")


# --------------------------------------------------------------------------- FLOPs
def linear_flops(shape: ModelShape, tokens: int, logits_tokens: int | None = None) -> int:
    """Matrix-multiply FLOPs (2 per multiply-add) of one forward over ``tokens``.

    ``logits_tokens`` rows go through ``lm_head`` (default: all of them).
    """
    lt = tokens if logits_tokens is None else logits_tokens
    return 2 * tokens * shape.n_layers * shape.layer_linear_params() + 2 * lt * shape.hidden * shape.vocab


def attention_flops(shape: ModelShape, tokens: int, past: int = 0) -> int:
    """Score and value FLOPs of causal attention for ``tokens`` new queries after ``past`` cached ones.

    Query ``t`` attends to ``past + t + 1`` keys; QK^T and PV each cost 2 FLOPs per
    (query, key, head, head-dim element).

    >>> attention_flops(BUILTIN_MODELS["mistral-7b"], 1, past=0)  # 4 x 32 heads x 128 x 32 layers
    524288
    """
    pairs = tokens * past + tokens * (tokens + 1) // 2
    return 4 * pairs * shape.n_heads * shape.head_dim * shape.n_layers


# --------------------------------------------------------------------------- memory terms
def weight_bytes(shape: ModelShape, dtype_bytes: int = 2) -> dict[str, int]:
    p = shape.params()
    return {"weights": p["total"] * dtype_bytes, "weights_vocab": p["vocab"] * dtype_bytes}


def kv_cache_bytes(shape: ModelShape, tokens: int, dtype_bytes: int = 2) -> int:
    """K and V for every layer and token; the sliding window caps the tokens kept.

    >>> kv_cache_bytes(BUILTIN_MODELS["mistral-7b"], 1)    # 128 KiB per token
    131072
    """
    kept = tokens if shape.sliding_window is None else min(tokens, int(shape.sliding_window))
    return 2 * shape.n_layers * kept * shape.kv_dim * dtype_bytes


def lora_params(shape: ModelShape, rank: int) -> int:
    """LoRA A and B parameters on all seven linear layers of every decoder layer."""
    h, q, kv, i = shape.hidden, shape.q_dim, shape.kv_dim, shape.intermediate
    per_layer = rank * ((h + q) + 2 * (h + kv) + (q + h) + 2 * (h + i) + (i + h))
    return shape.n_layers * per_layer


def inference_estimate(shape: ModelShape, tokens: int, dtype_bytes: int = 2) -> dict:
    """Predicted prefill peak of ``model(ids, use_cache=True, logits_to_keep=1)`` under inference_mode.

    The worst moment is the MLP product of the last layer (``act(gate(x)) * up(x)``).
    Alive then: the weights; the KV cache of all layers; four ``tokens x hidden``
    tensors (the embedding output, which ``MistralModel.forward`` keeps as
    ``inputs_embeds``; the layer input, kept by the loop that called the layer; the
    residual after attention; the normed MLP input); and three ``tokens x
    intermediate`` tensors (``act(gate)``, ``up`` and their product). Attention is SDPA
    with ``is_causal`` (no mask is built) and native GQA, so no ``tokens x tokens``
    matrix and no repeated K/V exist. Smaller terms: RoPE ``cos``/``sin``, the int64
    ids and positions, and one row of logits.

    >>> e = inference_estimate(BUILTIN_MODELS["mistral-7b"], 1000)
    >>> e["kv_cache"], e["activations"] // 1000
    (131072000, 119312)
    """
    b, t, h = dtype_bytes, int(tokens), shape.hidden
    w = weight_bytes(shape, b)
    kv = kv_cache_bytes(shape, t, b)
    small = 2 * t * shape.head_dim * b + 2 * t * 8  # cos, sin; input ids and position ids (int64)
    # Phases of the last layer, beyond weights and KV cache (bytes):
    mlp = 4 * t * h * b + 3 * t * shape.intermediate * b
    norm = 3 * t * h * b + 2 * t * h * 4  # RMSNorm works on two float32 copies
    attn = 5 * t * h * b + 4 * t * shape.q_dim * b // 2  # x, q and the RoPE temporaries (rotate_half, cat)
    act = max(mlp, norm, attn) + small
    logits = shape.vocab * b + shape.vocab * 4  # one row, bf16 and the argmax/float view at most
    peak = w["weights"] + kv + act + logits
    return {
        "tokens": t, "vocab": shape.vocab, **w, "kv_cache": kv, "activations": act, "logits": logits,
        "peak": peak,
        "linear_flops": linear_flops(shape, t, logits_tokens=1),
        "attention_flops": attention_flops(shape, t),
        "decode_bytes_per_token": w["weights"] - shape.vocab * h * b * (0 if shape.tie_embeddings else 1) + kv,
    }


def _next_power_of_2(n: int) -> int:
    return 1 << max(int(n) - 1, 0).bit_length()


def liger_chunk(targets: int, hidden: int, vocab: int) -> int:
    """Rows of logits Liger's fused linear cross-entropy computes at once (liger-kernel 0.8.5,
    ``ops/fused_linear_cross_entropy.py``): it splits the targets so that one block holds
    about ``targets x hidden`` elements, ``next_power_of_2(ceil(targets / ceil(vocab / hidden)))``
    rows, at most all of them. So the block does not grow with the vocabulary.

    >>> liger_chunk(4095, 4096, 32768), liger_chunk(4095, 4096, 131072)   # 8 and 32 chunks
    (512, 128)
    """
    n = max(int(targets), 1)
    per = -(-int(vocab) // int(hidden))  # ceil(V / H): how many times more logits than inputs
    return min(_next_power_of_2(-(-n // per)), n)


def liger_loss_bytes(targets: int, hidden: int, vocab: int, weight_grad: bool = False,
                     dtype_bytes: int = 2) -> int:
    """Bytes Liger's fused loss allocates beyond its inputs, all alive at its worst moment
    (read off liger-kernel 0.8.5's ``fused_linear_cross_entropy_forward``; forward and
    backward both happen in its forward pass):

    - one block of logits, :func:`liger_chunk` rows x ``vocab``, in the inputs' dtype
      (the cross-entropy kernel overwrites it with its gradient in place);
    - the input gradient, ``targets x hidden`` in the inputs' dtype, kept for backward;
    - the head's gradient, ``vocab x hidden``, only where the head is trained;
    - the float32 loss of every target and the bool target mask (5 bytes a target).

    In ``hypertok vram`` the head is frozen (LoRA on the seven linear layers). With the
    head trained it is the figure ``experiments/adapt/bench_loss.py`` measures
    (``tests/gpu/test_memory.py`` checks it against ``loss.json``).

    >>> liger_loss_bytes(4095, 4096, 131072) == 128 * 131072 * 2 + 4095 * 4096 * 2 + 5 * 4095
    True
    """
    b, n = dtype_bytes, max(int(targets), 1)
    block = liger_chunk(n, hidden, vocab) * vocab * b
    return block + n * hidden * b + (vocab * hidden * b if weight_grad else 0) + 5 * n


def train_estimate(shape: ModelShape, tokens: int, loss: str = "full", lora_rank: int = 16,
                   chunk: int = 4096, dtype_bytes: int = 2) -> dict:
    """Predicted peak of one LoRA forward+backward with gradient checkpointing.

    Setup (as :func:`hypertok.gpu.bench.measure_train` runs it): frozen bf16 base, bf16 LoRA
    A/B on the seven linear layers, non-reentrant checkpointing of every decoder layer,
    no KV cache. Alive through the step: weights, LoRA weights and their gradients, and
    the checkpoints (the embedding output and the output of every layer but the last).
    On top of that, the larger of two moments, each read off a live-tensor trace
    (:class:`hypertok.gpu.bench.LiveBytes`) of the Hugging Face code:

    - **loss**. ``full``: the Hugging Face loss upcasts the ``tokens x vocab`` logits to
      float32 and runs ``log_softmax``; the worst moment is inside its backward, with
      the saved log-probabilities, their incoming gradient and the input gradient
      alive: three float32 copies, 12 bytes per logit. The float32 input of the final
      RMSNorm is kept for its backward. ``chunked``
      (:func:`hypertok.loss.chunked_cross_entropy`): the same 12 bytes per logit for
      one chunk, plus the final hidden states and their accumulated gradient. ``liger``
      (:func:`hypertok.loss.fused_cross_entropy`): one bf16 block of about ``tokens x
      hidden`` logits (:func:`liger_loss_bytes`, frozen head), the final hidden states
      and their gradient; at Mistral-7B's shape this moment is far below the layer's, so
      the vocabulary costs only its weights.
    - **layer**: the last layer's forward (and its recomputation in backward): six
      ``tokens x intermediate`` tensors (gate and up before and after their LoRA sum,
      ``act(gate)``, the product), the two float32 RMSNorm inputs, the norm outputs,
      q after RoPE, the attention output and log-sum-exp, k and v, the LoRA ``x @ A``.

    >>> e = train_estimate(BUILTIN_MODELS["mistral-7b"], 4096, loss="full")
    >>> e["logits"] // 4096 == 12 * 32768
    True
    """
    if loss not in TRAIN_LOSSES:
        raise HyperTokError(f"loss {loss!r}: use {', '.join(TRAIN_LOSSES)}")
    b, t, h, i = dtype_bytes, int(tokens), shape.hidden, shape.intermediate
    q, kv = shape.q_dim, shape.kv_dim
    w = weight_bytes(shape, b)
    lora = lora_params(shape, lora_rank) * b * 2  # bf16 adapter weights and their gradients
    stash = shape.n_layers * t * h * b  # embedding output + outputs of layers 0..L-2
    small = 2 * t * shape.head_dim * b + 3 * t * 8  # cos, sin; ids, positions, labels
    layer = (6 * t * i * b + 2 * t * h * 4 + 3 * t * h * b + 2 * t * q * b + 2 * t * kv * b
             + 7 * t * lora_rank * b + t * shape.n_heads * 4)
    if loss == "full":
        logits = 12 * t * shape.vocab
        loss_extra = t * h * 4  # float32 input of the final norm
    elif loss == "chunked":
        logits = 12 * min(chunk, max(t - 1, 1)) * shape.vocab
        loss_extra = t * h * 4 + 2 * t * h * b  # + final hidden states and their gradient
    else:  # liger: one block of logits; the input gradient it keeps is the hidden states' gradient
        n = max(t - 1, 1)
        logits = liger_chunk(n, h, shape.vocab) * shape.vocab * b
        loss_extra = t * h * 4 + t * h * b + (liger_loss_bytes(n, h, shape.vocab, dtype_bytes=b) - logits)
    act = max(layer, logits + loss_extra) + small
    peak = w["weights"] + lora + stash + act
    fwd_lin = linear_flops(shape, t, logits_tokens=0)
    lm = 2 * t * h * shape.vocab
    att = attention_flops(shape, t)
    return {
        "tokens": t, "vocab": shape.vocab, "loss": loss, **w, "lora": lora, "checkpoints": stash,
        "activations": layer + small, "logits": logits, "peak": peak,
        # forward + recompute + input-gradient backward for the frozen linears; lm_head forward and
        # backward (chunked: also recomputed); attention forward, recompute and about 2x in backward.
        "linear_flops": 3 * fwd_lin + (3 if loss == "chunked" else 2) * lm,
        "attention_flops": 4 * att,
    }


def estimate(shape: ModelShape, tokens: int, mode: str = "inference", **kw) -> dict:
    """Dispatch to :func:`inference_estimate` or :func:`train_estimate`."""
    if mode == "inference":
        return inference_estimate(shape, tokens, **kw)
    if mode == "train":
        return train_estimate(shape, tokens, **kw)
    raise HyperTokError(f"--mode {mode!r}: use inference or train")


# --------------------------------------------------------------------------- break-even
def break_even_rows(base: ModelShape, base_tokens: int, tokens: int, mode: str = "inference",
                    metric: str = "peak", **kw) -> float:
    """How many new vocabulary rows a shorter sequence pays for.

    The tokenizer turns the same text into ``tokens`` instead of ``base_tokens``. The
    saving of ``metric`` (``peak`` bytes, or ``flops``) from the shorter sequence,
    divided by what one vocabulary row costs in that metric, is the number of rows that
    can be added before the bigger vocabulary costs more than the shorter sequence
    saves. Negative when the sequence is longer.

    >>> round(break_even_rows(BUILTIN_MODELS["mistral-7b"], 60000, 30000))
    458299
    """
    est = inference_estimate if mode == "inference" else train_estimate
    a = est(base, base_tokens, **kw)
    bvals = est(base, tokens, **kw)
    if metric == "peak":
        saving = a["peak"] - bvals["peak"]
        # per row: weights, plus the logits it adds in training
        b2 = est(base.with_vocab(base.vocab + 1), tokens, **kw)
        per_row = b2["peak"] - bvals["peak"]
    elif metric == "flops":
        saving = (a["linear_flops"] + a["attention_flops"]) - (bvals["linear_flops"] + bvals["attention_flops"])
        b2 = est(base.with_vocab(base.vocab + 1), tokens, **kw)
        per_row = (b2["linear_flops"] - bvals["linear_flops"])
    else:
        raise HyperTokError(f"metric {metric!r}: use peak or flops")
    if per_row <= 0:
        return math.inf
    return saving / per_row


def fmt_gib(n: float | None) -> str:
    return "-" if n is None else f"{n / GIB:.2f}"
