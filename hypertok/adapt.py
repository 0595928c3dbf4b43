"""Adapt a Mistral-class causal LM to a HyperTok vocabulary: resize, initialise, LoRA, save.

What it does (issue 5): ``hypertok adapt`` loads a base model from a local folder,
moves it onto a new vocabulary (``hypertok.transfer``: ``extend`` or ``replace``, rows
initialised ``mean``/``random``/``hewitt``), resizes the embeddings *before* wrapping with
peft, and trains LoRA on every linear layer plus the new rows (peft
``trainable_token_indices`` on ``embed_tokens`` and ``lm_head``; ``--rows full`` switches to
``modules_to_save``). Training: bf16 autocast, SDPA attention, gradient checkpointing,
sequence packing in which documents never attend to each other (positions restart at
each ``<s>``; transformers turns that into a block-diagonal mask), AdamW with warm-up and
cosine decay, gradient clipping, a progress bar, periodic evaluation in bits per
character, and a checkpoint with resume. The loss is computed in chunks under activation
checkpointing, so the full ``tokens x vocab`` logits never exist at once.

``--out`` receives the peft adapter, the tokenizer, the base's ``tokenizer.model`` and
``hypertok_adapt.json`` (the exact resize recipe plus a fingerprint of the base), so
``load_adapted(base, out)`` needs nothing else and refuses an adapter made for another
base. ``hypertok merge`` writes a plain transformers model; ``hypertok eval`` (see
``hypertok.evaluate``) measures bits per character, generation speed and new-token share.

What it does not do: no downloads (a hub name is refused), no multi-GPU, no full
fine-tuning of the body (that is the experiment's pretraining only, ``train_loop`` with
a plain model). torch/transformers/peft are imported inside functions only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import HyperTokError

CHECKPOINT_FILE = "checkpoint.pt"
LOG_FILE = "train_log.jsonl"


# ----------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------

@dataclass
class AdaptConfig:
    """Everything ``hypertok adapt`` needs; the CLI builds exactly this."""

    base: str
    tokenizer: str
    train: list[str]
    out: str
    eval: str | None = None
    strategy: str = "extend"
    init: str = "mean"
    rows: str = "tokens"            # tokens: trainable_token_indices; full: modules_to_save
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    steps: int = 1000
    batch_size: int = 8
    seq_len: int = 1024
    lr: float = 2e-4
    rows_lr: float = 1e-3
    warmup: int = 50
    min_lr_ratio: float = 0.1
    clip: float = 1.0
    eval_every: int = 200
    eval_chars: int = 200_000
    save_every: int = 200
    grad_ckpt: bool = True
    loss_chunk: int = 8192
    dtype: str = "auto"             # auto | float32 | bfloat16
    device: str = "auto"
    seed: int = 0
    max_train_chars: int = 0        # 0: all
    resume: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        from .transfer import INITS, STRATEGIES

        if self.strategy not in STRATEGIES:
            raise HyperTokError(f"--strategy {self.strategy!r}: choose one of {', '.join(STRATEGIES)}")
        if self.init not in INITS:
            raise HyperTokError(f"--init {self.init!r}: choose one of {', '.join(INITS)}")
        if self.rows not in ("tokens", "full"):
            raise HyperTokError(f"--rows {self.rows!r}: choose tokens (new rows only) or full (whole matrices)")
        for name in ("steps", "batch_size", "seq_len", "lora_r", "loss_chunk"):
            if getattr(self, name) < 1:
                raise HyperTokError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")


# ----------------------------------------------------------------------------------------
# Base model: local path only, fingerprint, loading
# ----------------------------------------------------------------------------------------

def check_base_path(path: str | os.PathLike) -> Path:
    """The base model folder, or a clear offline error.

    >>> check_base_path("mistralai/Mistral-7B-v0.3")
    Traceback (most recent call last):
    ...
    hypertok.errors.HyperTokError: mistralai/Mistral-7B-v0.3: no such folder. HyperTok never downloads models: pass the path of a local checkpoint folder (config.json, *.safetensors, tokenizer.model)
    """
    p = Path(path)
    if not p.is_dir():
        raise HyperTokError(f"{path}: no such folder. HyperTok never downloads models: pass the path of a local "
                            f"checkpoint folder (config.json, *.safetensors, tokenizer.model)")
    if not (p / "config.json").is_file():
        raise HyperTokError(f"{p}: no config.json; not a transformers checkpoint folder")
    return p


_VOLATILE = {"transformers_version", "_name_or_path", "torch_dtype", "dtype", "architectures", "use_cache"}


def base_fingerprint(path: str | os.PathLike) -> str:
    """A cheap identity of a checkpoint folder: its config (less volatile keys) and, per
    weight file, the size and three 64 KiB samples of the bytes. No weights are loaded."""
    p = check_base_path(path)
    h = hashlib.sha256()
    cfg = json.loads((p / "config.json").read_text())
    h.update(json.dumps({k: v for k, v in cfg.items() if k not in _VOLATILE}, sort_keys=True).encode())
    files = sorted(list(p.glob("*.safetensors")) + list(p.glob("*.bin")))
    for f in files:
        size = f.stat().st_size
        h.update(f.name.encode() + str(size).encode())
        with open(f, "rb") as fh:
            for off in (0, size // 2, max(0, size - 65536)):
                fh.seek(off)
                h.update(fh.read(65536))
    return h.hexdigest()[:32]


def _device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load_base_model(path: str | os.PathLike, dtype: str = "auto", device: str = "auto"):
    """AutoModelForCausalLM from a local folder, SDPA attention, never touching the hub."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    p = check_base_path(path)
    config = AutoConfig.from_pretrained(p, local_files_only=True)
    if dtype == "auto":
        n = (config.num_hidden_layers * 12 * config.hidden_size ** 2)
        dtype = "float32" if n < 1e9 else "bfloat16"
    td = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    model = AutoModelForCausalLM.from_pretrained(p, local_files_only=True, dtype=td, attn_implementation="sdpa")
    return model.to(_device(device))


# ----------------------------------------------------------------------------------------
# Data: documents, packing, chunked loss
# ----------------------------------------------------------------------------------------

def read_documents(paths: list[str], max_chars: int = 0, what: str = "--train") -> list[str]:
    """Documents of the text files: blocks separated by a blank line (``\\n\\n``).

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "t.txt"; _ = f.write_text("a b\\nc\\n\\nd\\n")
    >>> read_documents([str(f)])
    ['a b\\nc', 'd\\n']
    """
    from .corpus import read_text

    if not paths:
        raise HyperTokError(f"{what}: no files given")
    docs: list[str] = []
    total = 0
    for path in paths:
        if not Path(path).is_file():
            raise HyperTokError(f"{what} {path}: no such file")
        for d in read_text(path).split("\n\n"):
            if d.strip():
                docs.append(d)
                total += len(d)
                if max_chars and total >= max_chars:
                    return docs
    if not docs:
        raise HyperTokError(f"{what} {', '.join(map(str, paths))}: the text is empty (only whitespace); "
                            f"give a UTF-8 file with some text")
    return docs


def pack(docs_ids: list[list[int]], bos: int, eos: int):
    """One token stream ``<s> doc </s> <s> doc </s> ...`` (numpy int64)."""
    import numpy as np

    parts = []
    for ids in docs_ids:
        parts.append(np.asarray([bos, *ids, eos], dtype=np.int64))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def rows_of(stream, seq_len: int, bos: int, idx, pad: int | None = None):
    """Inputs, positions and labels of rows ``idx`` of a packed stream.

    Row r is ``stream[r*T : r*T+T]`` predicting ``stream[r*T+1 : r*T+T+1]``. Positions restart
    at every ``<s>`` (and at the row start), so attention never crosses a document boundary;
    a ``<s>`` target (predicting the next document from the last) is ignored (-100).
    The last, partial row is padded with ignored labels.
    """
    import numpy as np

    T = seq_len
    X = np.full((len(idx), T), bos if pad is None else pad, dtype=np.int64)
    Y = np.full((len(idx), T), -100, dtype=np.int64)
    for j, r in enumerate(idx):
        x = stream[r * T: r * T + T]
        y = stream[r * T + 1: r * T + T + 1]
        X[j, :len(x)] = x
        Y[j, :len(y)] = y
    Y[Y == bos] = -100
    starts = (X == bos)
    starts[:, 0] = True
    ar = np.broadcast_to(np.arange(T), X.shape)
    seg_start = np.maximum.accumulate(np.where(starts, ar, 0), axis=1)
    P = ar - seg_start
    return X, P, Y


def n_rows(stream, seq_len: int, full_only: bool = True) -> int:
    n = len(stream) - 1
    return n // seq_len if full_only else -(-n // seq_len)


def _inner(model):
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def chunked_nll(model, input_ids, position_ids, labels, chunk: int = 8192, checkpoint: bool = True):
    """Summed cross-entropy (nats) and target count, computing logits ``chunk`` tokens at a time.

    With ``checkpoint`` each chunk's logits are recomputed in backward instead of stored,
    so peak memory holds one (chunk, vocab) block, never (tokens, vocab).
    """
    import torch
    import torch.nn.functional as F
    from torch.utils.checkpoint import checkpoint as ckpt

    inner = _inner(model)
    # use_cache=False: with a KV cache object transformers ignores the packed positions and
    # lets documents in one row attend to each other
    h = inner.model(input_ids=input_ids, position_ids=position_ids, use_cache=False).last_hidden_state  # (B, T, d)
    h = h.reshape(-1, h.shape[-1])  # (B*T, d)
    y = labels.reshape(-1)
    keep = y != -100
    h, y = h[keep], y[keep]  # (n, d), (n,)
    head = inner.lm_head

    def ce(hc, yc):
        return F.cross_entropy(head(hc).float(), yc, reduction="sum")  # logits (c, V) live only here

    total = h.new_zeros((), dtype=torch.float32)
    for s in range(0, len(y), chunk):
        if checkpoint and torch.is_grad_enabled():
            total = total + ckpt(ce, h[s:s + chunk], y[s:s + chunk], use_reentrant=False)
        else:
            total = total + ce(h[s:s + chunk], y[s:s + chunk])
    return total, int(keep.sum())


def _autocast(device):
    import contextlib

    import torch

    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


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
    with torch.no_grad(), _autocast(device):
        for s in range(0, total_rows, batch_size):
            X, P, Y = rows_of(stream, seq_len, bos, np.arange(s, min(s + batch_size, total_rows)))
            nll, n = chunked_nll(model, torch.from_numpy(X).to(device), torch.from_numpy(P).to(device),
                                 torch.from_numpy(Y).to(device), chunk, checkpoint=False)
            tot += float(nll)
            cnt += n
    model.train(was)
    return tot, cnt


# ----------------------------------------------------------------------------------------
# Training loop (shared by adaptation and the experiment's pretraining)
# ----------------------------------------------------------------------------------------

@dataclass
class LoopConfig:
    steps: int
    batch_size: int
    seq_len: int
    lr: float
    rows_lr: float | None = None
    warmup: int = 50
    min_lr_ratio: float = 0.1
    clip: float = 1.0
    eval_every: int = 0
    save_every: int = 0
    loss_chunk: int = 8192
    seed: int = 0
    progress: bool = True
    weight_decay: float = 0.0
    desc: str = "train"


def _lr_lambda(cfg: LoopConfig):
    def f(step: int) -> float:
        if step < cfg.warmup:
            return (step + 1) / max(1, cfg.warmup)
        t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
    return f


def _row_order(n: int, seed: int, epoch: int):
    import numpy as np

    return np.random.default_rng([seed, epoch]).permutation(n)


def _trainable(model) -> dict:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def _atomic_torch_save(obj, path: Path) -> None:
    import torch

    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train_loop(model, stream, bos: int, cfg: LoopConfig, out: Path | None = None, eval_fn=None,
               resume: bool = False, is_row_param=None, stop_at: int | None = None) -> list[dict]:
    """Train the parameters of ``model`` that require grad on a packed stream.

    Batch k of the run is a fixed function of (seed, k), so a resumed run sees the same
    batches. ``eval_fn(model) -> dict`` runs every ``eval_every`` steps and at the end.
    Each step appends {"step", "loss" (nats/token), "lr", "tokens", "time"} to the history
    (and to ``out/train_log.jsonl``); a checkpoint with optimizer, scheduler and history is
    written every ``save_every`` steps to ``out/checkpoint.pt``. ``stop_at`` ends this run
    early at that step (the schedule still spans ``cfg.steps``), as an interruption would.
    """
    import torch
    from tqdm import tqdm

    device = next(model.parameters()).device
    params = _trainable(model)
    if not params:
        raise HyperTokError("nothing to train: no parameter requires grad")
    is_row_param = is_row_param or (lambda name: False)
    rows = [p for n, p in params.items() if is_row_param(n)]
    rest = [p for n, p in params.items() if not is_row_param(n)]
    groups = [{"params": rest, "lr": cfg.lr}]
    if rows:
        groups.append({"params": rows, "lr": cfg.rows_lr or cfg.lr})
    groups = [g for g in groups if g["params"]]
    opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay, betas=(0.9, 0.95),
                            fused=device.type == "cuda")
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg))
    history: list[dict] = []
    start = 0
    ck = out / CHECKPOINT_FILE if out else None
    if resume and ck and ck.is_file():
        state = torch.load(ck, map_location=device, weights_only=False)
        was = state.get("config", {})
        diff = {k: (was.get(k), getattr(cfg, k)) for k in ("steps", "batch_size", "seq_len", "seed", "lr")
                if was.get(k) != getattr(cfg, k)}
        if diff:
            raise HyperTokError(f"{ck} was written with other settings {diff} (checkpoint, now); "
                                f"resume with the same settings or choose another --out")
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(state["trainable"][n])
        opt.load_state_dict(state["optim"])
        sched.load_state_dict(state["sched"])
        history = state["history"]
        start = state["step"]
    total_rows = n_rows(stream, cfg.seq_len)
    if total_rows < 1:
        raise HyperTokError(f"training text gives {len(stream)} tokens, fewer than one --seq-len {cfg.seq_len} row; "
                            f"give more text or a smaller --seq-len")
    model.train()
    if out:
        out.mkdir(parents=True, exist_ok=True)
    log = open(out / LOG_FILE, "a" if start else "w") if out else None
    orders: dict[int, object] = {}
    t0 = time.time()
    end = cfg.steps if stop_at is None else min(cfg.steps, stop_at)
    bar = tqdm(range(start, end), desc=cfg.desc, disable=not cfg.progress, initial=start, total=cfg.steps)
    for step in bar:
        g = step * cfg.batch_size + __import__("numpy").arange(cfg.batch_size)
        idx = []
        for gi in g:
            ep = int(gi) // total_rows
            if ep not in orders:
                orders = {ep: _row_order(total_rows, cfg.seed, ep)}
            idx.append(int(orders[ep][int(gi) % total_rows]))
        X, P, Y = rows_of(stream, cfg.seq_len, bos, idx)
        X, P, Y = (torch.from_numpy(a).to(device, non_blocking=True) for a in (X, P, Y))
        with _autocast(device):
            nll, n = chunked_nll(model, X, P, Y, cfg.loss_chunk)
        loss = nll / max(1, n)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(params.values()), cfg.clip)
        opt.step()
        sched.step()
        rec = {"step": step + 1, "loss": loss.item(), "lr": sched.get_last_lr()[0],
               "tokens": (step + 1) * cfg.batch_size * cfg.seq_len, "time": time.time() - t0}
        if eval_fn and cfg.eval_every and ((step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps):
            rec.update(eval_fn(model))
            model.train()
        history.append(rec)
        if log:
            log.write(json.dumps(rec) + "\n")
            log.flush()
        bar.set_postfix(loss=f"{rec['loss']:.3f}")
        if ck and cfg.save_every and ((step + 1) % cfg.save_every == 0 or step + 1 == cfg.steps):
            _atomic_torch_save({"step": step + 1, "trainable": {k: v.detach() for k, v in params.items()},
                                "optim": opt.state_dict(), "sched": sched.state_dict(), "history": history,
                                "config": asdict(cfg)}, ck)
    if log:
        log.close()
    return history


# ----------------------------------------------------------------------------------------
# Adaptation: prepare, save, load, merge
# ----------------------------------------------------------------------------------------

def _base_rows(base_path: Path) -> int:
    cfg = json.loads((base_path / "config.json").read_text())
    return int(cfg.get("vocab_size") or cfg.get("text_config", {}).get("vocab_size"))


def plan(base_path: str | os.PathLike, tokenizer_dir: str | os.PathLike, strategy: str, init: str = "mean",
         seed: int = 0):
    """Check that base and tokenizer reconcile and make the ``AdaptedTokenizer`` (CPU only)."""
    from .transfer import AdaptedTokenizer, BaseVocab, NewVocab, plan_transfer

    bp = check_base_path(base_path)
    base = BaseVocab.find(bp)
    new = NewVocab(tokenizer_dir)
    recipe = plan_transfer(base, new, strategy, base_rows=_base_rows(bp))
    recipe.init, recipe.seed = init, seed
    recipe.base_fingerprint = base_fingerprint(bp)
    cfg = json.loads((bp / "config.json").read_text())
    recipe.base_config = {k: cfg.get(k) for k in ("model_type", "hidden_size", "num_hidden_layers", "vocab_size",
                                                  "tie_word_embeddings")}
    return AdaptedTokenizer(recipe, new, base)


def resize_and_init(model, recipe, init: str | None = None, seed: int | None = None) -> None:
    """Resize embeddings (and lm_head) to the recipe's size, rows exactly as the recipe says.

    ``mean_resizing=False`` and no ``pad_to_multiple_of``: every new row is written here.
    """
    from .transfer import init_rows

    emb = model.get_input_embeddings().weight
    old_e = emb.detach().float().clone()
    head = model.get_output_embeddings()
    tied = head is not None and head.weight is emb
    old_h = None if tied or head is None else head.weight.detach().float().clone()
    model.resize_token_embeddings(recipe.model_vocab_size, mean_resizing=False)
    new_head = model.get_output_embeddings()
    init_rows(model.get_input_embeddings().weight, None if tied or new_head is None else new_head.weight,
              recipe, init or recipe.init, old_e, old_h, recipe.seed if seed is None else seed)


def wrap_peft(model, recipe, lora_r: int = 16, lora_alpha: int = 32, lora_dropout: float = 0.0, rows: str = "tokens"):
    """LoRA on all linear layers, plus the new rows (trainable_token_indices) or whole matrices."""
    import torch
    from peft import LoraConfig, get_peft_model

    tied = model.get_output_embeddings() is None or \
        model.get_output_embeddings().weight is model.get_input_embeddings().weight
    kw = {}
    if rows == "tokens":
        ids = list(recipe.new_rows)
        kw["trainable_token_indices"] = {"embed_tokens": ids} if tied else {"embed_tokens": ids, "lm_head": ids}
    else:
        kw["modules_to_save"] = ["embed_tokens"] if tied else ["embed_tokens", "lm_head"]
    cfg = LoraConfig(r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout, target_modules="all-linear",
                     task_type="CAUSAL_LM", **kw)
    model = get_peft_model(model, cfg)
    for p in model.parameters():  # float32 master copies of what trains (bf16 bases: new rows too)
        if p.requires_grad and p.dtype != torch.float32:
            p.data = p.data.float()
    return model


def is_row_param(name: str) -> bool:
    return "trainable_tokens_delta" in name or "modules_to_save" in name


def save_adapter(model, tok, out: str | os.PathLike, extra: dict | None = None) -> Path:
    """Adapter + tokenizer + recipe into ``out`` (written to a temp folder, then renamed in)."""
    out = Path(out)
    tmp = out.with_name(out.name + ".saving")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp, save_embedding_layers=False)
    if extra:
        tok.recipe.extra.update(extra)
    tok.save(tmp)
    out.mkdir(parents=True, exist_ok=True)
    for f in tmp.iterdir():
        dest = out / f.name
        if dest.is_dir():
            shutil.rmtree(dest)
        os.replace(f, dest)
    tmp.rmdir()
    return out


def check_adapter_for_base(adapter_dir: str | os.PathLike, base_path: str | os.PathLike):
    """The adapter's recipe, or HyperTokError when it was saved for another base (no weights loaded)."""
    from .transfer import Recipe

    recipe = Recipe.load(adapter_dir)
    fp = base_fingerprint(base_path)
    if recipe.base_fingerprint and recipe.base_fingerprint != fp:
        raise HyperTokError(
            f"{adapter_dir} was trained on another base model (fingerprint {recipe.base_fingerprint}, "
            f"config {recipe.base_config}); {base_path} has fingerprint {fp}. Load it onto the exact base "
            f"checkpoint it was made from")
    return recipe


def load_adapted(base_path: str | os.PathLike, adapter_dir: str | os.PathLike, dtype: str = "auto",
                 device: str = "auto"):
    """(peft model, AdaptedTokenizer) from the untouched base and an adapter folder."""
    from peft import PeftModel

    from .transfer import AdaptedTokenizer

    check_adapter_for_base(adapter_dir, base_path)
    tok = AdaptedTokenizer.load(adapter_dir)
    model = load_base_model(base_path, dtype, device)
    model.resize_token_embeddings(tok.recipe.model_vocab_size, mean_resizing=False)
    model = PeftModel.from_pretrained(model, str(adapter_dir))
    model.eval()
    return model, tok


def merge(base_path, adapter_dir, out, dtype: str = "auto") -> Path:
    """Write a merged full model that plain transformers loads, plus its tokenizer files."""
    from .transfer import TOKENIZER_SUBDIR

    model, tok = load_adapted(base_path, adapter_dir, dtype, device="cpu")
    merged = model.merge_and_unload()
    out = Path(out)
    tmp = out.with_name(out.name + ".saving")
    if tmp.exists():
        shutil.rmtree(tmp)
    merged.save_pretrained(tmp)
    tok.save(tmp)
    if tok.recipe.strategy == "replace" and (tmp / TOKENIZER_SUBDIR / "tokenizer.json").is_file():
        shutil.copy2(tmp / TOKENIZER_SUBDIR / "tokenizer.json", tmp / "tokenizer.json")
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out


def encode_docs(tok, docs: list[str], batch: int = 2048) -> list[list[int]]:
    out: list[list[int]] = []
    for s in range(0, len(docs), batch):
        out.extend(tok.encode_batch(docs[s:s + batch]))
    return out


def adapt(cfg: AdaptConfig, cache: dict | None = None) -> dict:
    """Run ``hypertok adapt``: everything that can fail on bad input fails before the model loads.

    ``cache``: a dict reused across calls to skip re-encoding the same texts (experiments).
    """
    import torch

    out = Path(cfg.out)
    if (out / CHECKPOINT_FILE).is_file() and not cfg.resume:
        raise HyperTokError(f"{out} holds a checkpoint; pass --resume to continue it or choose another --out")
    tok = plan(cfg.base, cfg.tokenizer, cfg.strategy, cfg.init, cfg.seed)
    docs = read_documents(cfg.train, cfg.max_train_chars)
    eval_docs = read_documents([cfg.eval], cfg.eval_chars, what="--eval") if cfg.eval else None
    key = (str(cfg.tokenizer), cfg.strategy, tuple(cfg.train), cfg.max_train_chars, cfg.eval, cfg.eval_chars)
    if cache is not None and key in cache:
        stream, eval_stream = cache[key]
    else:
        stream = pack(encode_docs(tok, docs), tok.bos, tok.eos)
        eval_stream = pack(encode_docs(tok, eval_docs), tok.bos, tok.eos) if eval_docs else None
        if cache is not None:
            cache[key] = (stream, eval_stream)
    if n_rows(stream, cfg.seq_len) < 1:
        raise HyperTokError(f"--train gives {len(stream)} tokens, fewer than one --seq-len {cfg.seq_len} row")
    eval_chars = sum(map(len, eval_docs)) if eval_docs else 0

    torch.manual_seed(cfg.seed)
    model = load_base_model(cfg.base, cfg.dtype, cfg.device)
    resize_and_init(model, tok.recipe)
    if cfg.grad_ckpt:
        import warnings

        with warnings.catch_warnings():  # renamed activation_checkpointing_enable in newer transformers
            warnings.simplefilter("ignore", FutureWarning)
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    model = wrap_peft(model, tok.recipe, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.rows)
    out.mkdir(parents=True, exist_ok=True)

    def eval_fn(m):
        nll, n = stream_nll(m, eval_stream, cfg.seq_len, tok.bos, cfg.batch_size, cfg.loss_chunk)
        return {"eval_bpc": nll / math.log(2) / eval_chars, "eval_loss": nll / max(1, n)}

    loop = LoopConfig(steps=cfg.steps, batch_size=cfg.batch_size, seq_len=cfg.seq_len, lr=cfg.lr,
                      rows_lr=cfg.rows_lr, warmup=cfg.warmup, min_lr_ratio=cfg.min_lr_ratio, clip=cfg.clip,
                      eval_every=cfg.eval_every if eval_stream is not None else 0, save_every=cfg.save_every,
                      loss_chunk=cfg.loss_chunk, seed=cfg.seed, progress=cfg.progress, desc=f"adapt {out.name}")
    history = train_loop(model, stream, tok.bos, loop, out, eval_fn if eval_stream is not None else None,
                         resume=cfg.resume, is_row_param=is_row_param)
    model.config.use_cache = True
    save_adapter(model, tok, out, extra={"train": {k: v for k, v in asdict(cfg).items() if k != "progress"}})
    return {"out": str(out), "model": model, "tokenizer": tok, "history": history}


# ----------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------

def _run_adapt(args: argparse.Namespace) -> int:
    fields = {f for f in AdaptConfig.__dataclass_fields__}
    cfg = AdaptConfig(**{k: v for k, v in vars(args).items() if k in fields})
    res = adapt(cfg)
    last = res["history"][-1] if res["history"] else {}
    print(json.dumps({"out": res["out"], "steps": last.get("step"), "loss": last.get("loss"),
                      "eval_bpc": last.get("eval_bpc"), "model_vocab_size": len(res["tokenizer"])}))
    return 0


def _run_merge(args: argparse.Namespace) -> int:
    out = merge(args.base, args.adapter, args.out, args.dtype)
    print(f"wrote {out}")
    return 0


def _run_eval(args: argparse.Namespace) -> int:
    from .evaluate import evaluate

    res = evaluate(args.base, args.adapter, args.text, max_chars=args.max_chars, seq_len=args.seq_len,
                   gen_tokens=args.gen_tokens, prompts=args.prompts, repeats=args.repeats, dtype=args.dtype,
                   device=args.device)
    print(json.dumps(res, indent=1, ensure_ascii=False))
    return 0


def add_cli(sub) -> None:
    d = AdaptConfig(base="", tokenizer="", train=[], out="")
    fmt = argparse.ArgumentDefaultsHelpFormatter
    p = sub.add_parser(
        "adapt", help="move a local Mistral-class model onto a HyperTok vocabulary (LoRA + new rows)",
        formatter_class=fmt,
        description="Resize the base model to a HyperTok vocabulary (extend: base + new entries; replace: "
        "HyperTok alone), initialise new rows (mean of base pieces, random, or hewitt), train LoRA on all linear "
        "layers plus the new rows, and save adapter + tokenizer + resize recipe into --out. The base is read from "
        "a local folder only; nothing is downloaded.",
        epilog="example: hypertok adapt --base ~/models/Mistral-7B-v0.3 --tokenizer tok32k --train train.txt "
        "--eval dev.txt --out adapters/ru32k --strategy extend --init mean --steps 2000 --batch-size 8 "
        "--seq-len 2048 --dtype bfloat16")
    p.add_argument("--base", required=True, help="local checkpoint folder (config.json, weights, tokenizer.model)")
    p.add_argument("--tokenizer", required=True, help="HyperTok directory (or a folder with tokenizer.json)")
    p.add_argument("--train", nargs="+", required=True, help="UTF-8 training text files (blank line = document break)")
    p.add_argument("--eval", help="held-out text for periodic bits-per-character")
    p.add_argument("--out", required=True, help="adapter folder to write")
    p.add_argument("--strategy", choices=["extend", "replace"], default=d.strategy)
    p.add_argument("--init", choices=["mean", "random", "hewitt"], default=d.init)
    p.add_argument("--rows", choices=["tokens", "full"], default=d.rows,
                   help="tokens: train only new rows (trainable_token_indices); full: whole matrices (modules_to_save)")
    for name, typ in [("lora_r", int), ("lora_alpha", int), ("lora_dropout", float), ("steps", int),
                      ("batch_size", int), ("seq_len", int), ("lr", float), ("rows_lr", float), ("warmup", int),
                      ("clip", float), ("eval_every", int), ("eval_chars", int), ("save_every", int),
                      ("loss_chunk", int), ("seed", int), ("max_train_chars", int)]:
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=typ, default=getattr(d, name))
    p.add_argument("--no-grad-ckpt", dest="grad_ckpt", action="store_false", help="turn gradient checkpointing off")
    p.add_argument("--dtype", choices=["auto", "float32", "bfloat16"], default=d.dtype,
                   help="weights dtype (auto: float32 under 1B parameters, else bfloat16); compute is bf16 autocast on GPU")
    p.add_argument("--device", default=d.device)
    p.add_argument("--resume", action="store_true", help="continue from --out/checkpoint.pt")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(run=_run_adapt)

    p = sub.add_parser("eval", help="bits per character, generation chars/s and new-token share of a model",
                       formatter_class=fmt,
                       description="Measure a base model (its own tokenizer.model) or base + adapter on held-out "
                       "text: bits per character and per byte (comparable across tokenizers), generation "
                       "characters per second (batch 1, KV cache, median of repeats), and the share of generated "
                       "tokens that are new vocabulary entries.",
                       epilog="example: hypertok eval --base ~/models/Mistral-7B-v0.3 --adapter adapters/ru32k "
                       "--text dev.txt")
    p.add_argument("--base", required=True)
    p.add_argument("--adapter", help="adapter folder from `hypertok adapt` (omit to measure the base)")
    p.add_argument("--text", required=True)
    p.add_argument("--max-chars", type=int, default=0, help="use only the first N characters of --text (0: all)")
    p.add_argument("--seq-len", type=int, default=1024)
    p.add_argument("--gen-tokens", type=int, default=256)
    p.add_argument("--prompts", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--dtype", choices=["auto", "float32", "bfloat16"], default="auto")
    p.add_argument("--device", default="auto")
    p.set_defaults(run=_run_eval)

    p = sub.add_parser("merge", help="write base + adapter as one plain transformers model",
                       formatter_class=fmt,
                       description="Merge LoRA and the new rows into the resized base and save a full model "
                       "(for serving engines that do not take resized adapters), with the tokenizer files.",
                       epilog="example: hypertok merge --base ~/models/Mistral-7B-v0.3 --adapter adapters/ru32k "
                       "--out merged-ru32k")
    p.add_argument("--base", required=True)
    p.add_argument("--adapter", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--dtype", choices=["auto", "float32", "bfloat16"], default="auto")
    p.set_defaults(run=_run_merge)
