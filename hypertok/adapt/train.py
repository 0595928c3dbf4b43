"""Training: the loop (adaptation and the experiment's pretraining) and ``hypertok adapt``.

What it does (issue 5; split out of ``adapt.py`` by issue 9, after nanoGPT's ``train.py``):

- :class:`TrainConfig` holds the loop's settings (steps, batch, rows, schedule, clipping,
  evaluation and checkpoint periods, loss chunk, seed); :class:`AdaptConfig` holds what
  adaptation adds (base, tokenizer, data, strategy, init, LoRA) and composes a
  ``TrainConfig`` as ``loop``: each setting is written once.
- :func:`train_loop` trains the parameters that require grad on a packed token stream:
  AdamW with warm-up and cosine decay, a separate learning rate for embedding rows,
  gradient clipping, bf16 autocast on CUDA, the chunked loss of :mod:`hypertok.loss`, a
  progress bar, periodic evaluation, a JSONL log and a checkpoint with resume. Batch k
  is a fixed function of (seed, k), so a resumed run sees the same batches.
- :func:`adapt` runs ``hypertok adapt``: plan the transfer, prepare the packed data
  (``hypertok.adapt.data``), load and resize the base, wrap it with peft, train, save,
  and draw the loss curve into ``OUT/loss.png`` (:mod:`hypertok.adapt.report`).
  Everything that can fail on bad input fails before the model loads.

Several processes (``torchrun``, issue 14) are :mod:`hypertok.adapt.distributed`'s: here only
a rank's slice of each batch, the loss through its DDP wrapper, and writes by rank 0.

What it does not do: no sharding of the model, no full fine-tuning of the body (only the
experiment's pretraining trains a plain model with :func:`train_loop`).
torch/transformers/peft are imported inside functions only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import HyperTokError
from ..files import (atomic_file, atomic_write, check_no_links, check_out, is_empty_dir, library_versions, made_dirs,
                     native_write)
from ..loss import IGNORE_INDEX, LOSSES, causal_lm_nll, check_liger, pick_loss
from ..options import option
from ..registry import RECIPE_FILE, STRATEGIES
from .data import n_rows, open_packed, prepare, rows_of, target_rows
from .distributed import SINGLE, launched, loss_module
from .evaluate import stream_nll
from .model import (ADAPTER_CONFIG, AdaptedModel, autocast, device_of, is_merged_dir, is_row_param, load_base_config,
                    load_base_model, wrap_peft)
from .recipe import INITS, plan, resize_and_init, row_overlaps
from .report import write_loss_plot

CHECKPOINT_DIR = "resume"  # optimizer state for --resume, apart from the adapter; delete it when done
CHECKPOINT_FILE = f"{CHECKPOINT_DIR}/checkpoint.pt"
LOG_FILE = "train_log.jsonl"
LOSS_PLOT = "loss.png"  # the loss curve (hypertok.adapt.report), beside the adapter
DATA_SUBDIR = "data"
RUN_FILE = "hypertok_run.json"  # adapt's record of a run (config, versions), written once its data is prepared
STAGE1_LOG = LOG_FILE.replace(".jsonl", "-stage1.jsonl")
# what adapt writes or appends to in its folder, none of which may be a link out of it (issue 24)
_WRITES = (DATA_SUBDIR, CHECKPOINT_DIR, LOG_FILE, STAGE1_LOG, LOSS_PLOT, RUN_FILE)
ROWS = ("tokens", "full")
DTYPES = ("auto", "float32", "bfloat16")



# ----------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------

@dataclass
class TrainConfig:
    """The training loop's settings (the defaults are those of ``hypertok adapt``)."""

    steps: int = option(1000, "optimizer steps")
    batch_size: int = option(8, "rows per step")
    micro_batch: int = option(0,
        "rows per forward/backward pass, their gradients summed into one step of --batch-size rows "
        "(0: the whole batch at once); a smaller one needs less activation memory, e.g. to train without "
        "gradient checkpointing")
    seq_len: int = option(1024, "tokens per row (packed documents, never attending to each other)")
    bos_rows: bool = option(True,
        "start every row with <s>, as every sequence at inference does (a row cut from the packed stream "
        "otherwise starts mid-document; Gemma needs <s> first). The row then holds seq_len - 1 text tokens; "
        "with --distill the teacher's row starts with its own <s> too")
    lr: float = option(2e-4, "peak learning rate (LoRA and other non-row parameters)")
    rows_lr: float | None = option(1e-3, "peak learning rate of embedding/head rows (in Python, None: --lr)")
    warmup: int = option(50, "linear warm-up steps")
    min_lr_ratio: float = option(0.1, "cosine decay ends at this fraction of the peak")
    clip: float = option(1.0, "gradient norm clipping")
    weight_decay: float = option(0.0, "AdamW weight decay")
    time_budget: float = option(0.0,
        "seconds of wall time this run may train, evaluations included (0: no limit): the cosine decay runs to "
        "whichever of --steps and the time ends first, and the run ends there, evaluated and saved (stage 1 "
        "runs its own steps first). Learning rates then depend on the clock: not reproducible step for step; a "
        "checkpoint keeps the seconds spent, so a resumed run has what is left")
    eval_every: int = option(200, "evaluate every N steps and at the end (0: never)")
    save_every: int = option(200, "checkpoint every N steps and at the end (0: never)")
    loss_chunk: int = option(8192, "tokens per chunk of the loss (logits never exist for all tokens)")
    loss: str = option("auto",
        "next-token loss: liger (Liger's fused linear cross-entropy: CUDA and the liger-kernel package, not with "
        "--distill; 5.7x less memory than ours at 128k in experiments/adapt/loss.json), chunked (ours, any device), "
        "or auto (liger where it can run, else chunked)", choices=("auto",) + LOSSES)
    compile: bool = option(False,
        "compile the decoder body with torch.compile (CUDA; the first steps pay for the compilation)")
    seed: int = option(0, "seed of batch order, LoRA init and row init")
    progress: bool = option(True, "show a progress bar")
    desc: str = option("train", "label of the progress bar")

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "seq_len", "loss_chunk"):
            if getattr(self, name) < 1:
                raise HyperTokError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.loss not in ("auto",) + LOSSES:
            raise HyperTokError(f"--loss {self.loss!r}: choose one of auto, {', '.join(LOSSES)}")
        if self.loss == "liger":
            check_liger()
        # issue 13: --lr nan trained NaNs
        for name in ("lr", "rows_lr", "clip", "min_lr_ratio", "weight_decay", "time_budget"):
            v = getattr(self, name)
            if v is not None and (not math.isfinite(v) or v < 0 or (v == 0 and name in ("lr", "clip"))):
                raise HyperTokError(f"--{name.replace('_', '-')} must be a finite number"
                                    f"{' above 0' if name in ('lr', 'clip') else ' at least 0'}, got {v}")
        if self.micro_batch < 0 or (self.micro_batch and self.batch_size % self.micro_batch):
            raise HyperTokError(f"--micro-batch {self.micro_batch} must divide --batch-size {self.batch_size} "
                                f"(0: the whole batch in one pass)")
        if not 0 <= self.seed < 1 << 32:  # what numpy's and torch's generators both take (issue 24)
            raise HyperTokError(f"--seed must be an integer from 0 to {(1 << 32) - 1}, got {self.seed}")
        for name in ("warmup", "eval_every", "save_every"):
            if getattr(self, name) < 0:
                raise HyperTokError(f"--{name.replace('_', '-')} must be at least 0, got {getattr(self, name)}")


@dataclass
class AdaptConfig:
    """Everything ``hypertok adapt`` needs; the CLI builds exactly this.

    ``train``/``eval``: UTF-8 text files (prepared into ``out/data`` first), or one
    ``.bin`` written by ``hypertok prepare`` for this base, tokenizer and strategy.
    """

    base: str = option(help="local checkpoint folder (config.json, weights, and a SentencePiece tokenizer.model "
                              "or a byte-level BPE tokenizer.json)")
    tokenizer: str = option(help="HyperTok directory (or a folder with tokenizer.json)")
    train: list[str] = option(help="UTF-8 training text files (blank line = document break), "
                                     "or one .bin from `hypertok prepare`")
    out: str = option(help="adapter folder to write")
    eval: list[str] | None = option(None,
        "held-out texts (or prepared .bin files) for periodic bits per character, each reported by name "
        "(default: none: no evaluation)")
    strategy: str = option("extend", "extend: base + new entries; replace: the new vocabulary alone",
                                                    choices=STRATEGIES)
    init: str = option("mean", "new rows: mean of base pieces, mean-norm (rescaled to the base rows' norm), "
                                              "focus (similarity-weighted base tokens), random, or hewitt", choices=INITS)
    rows: str = option("tokens", "tokens: train only new rows (trainable_token_indices); "
                                                "full: whole matrices (modules_to_save)", choices=ROWS)
    lora_r: int = option(16, "LoRA rank")
    lora_alpha: int = option(32, "LoRA alpha")
    lora_dropout: float = option(0.0, "LoRA dropout")
    eval_chars: int = option(200_000, "characters of --eval text used (0: all)")
    max_train_chars: int = option(0, "characters of --train text used (0: all)")
    grad_ckpt: bool = option(True, "gradient checkpointing")
    dtype: str = option("auto", "weights dtype (auto: float32 under 1B parameters, else bfloat16); "
                                               "compute is bf16 autocast on GPU", choices=DTYPES)
    device: str = option("auto", "torch device (auto: cuda if available)")
    resume: bool = option(False,
        "continue from the last checkpoint in --out/resume/ (refused when there is none: the run then starts "
        "over without --resume)")
    stage1_steps: int = option(0,
        "stage 1 of the recipe: steps in which only the new embedding and head rows train (body and LoRA "
        "frozen) at --stage1-lr, before the LoRA stage (0: no stage 1)")
    stage1_lr: float = option(5e-4, "peak learning rate of stage 1 (rows only)")
    stage1_match: float = option(0.0,
        "weight of the hidden-state match in stage 1: the frozen base reads the same rows with its own tokenizer, "
        "and at every boundary both tokenizations share the student's hidden states after each layer are pulled "
        "toward the base's (it fits what the new rows feed the body; in stage 1 it takes the place of --distill). "
        "Weight 10 matched the next-token loss's gradient on Gemma 3 270M; needs --stage1-steps; 0: off")
    distill: float = option(0.0,
        "weight of cross-tokenizer self-distillation: the frozen base, reading the same text with its own "
        "tokenizer, teaches span log-likelihoods (ALM); 0: off")
    distill_temperature: float = option(100.0, "temperature of the binarised distillation loss")
    loop: TrainConfig = option(help="the training loop's settings", default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise HyperTokError(f"--strategy {self.strategy!r}: choose one of {', '.join(STRATEGIES)}")
        if self.init not in INITS:
            raise HyperTokError(f"--init {self.init!r}: choose one of {', '.join(INITS)}")
        if self.rows not in ROWS:
            raise HyperTokError(f"--rows {self.rows!r}: choose tokens (new rows only) or full (whole matrices)")
        if self.lora_r < 1:
            raise HyperTokError(f"--lora-r must be at least 1, got {self.lora_r}")
        if not 0.0 <= self.lora_dropout < 1.0:  # nan too (issue 24)
            raise HyperTokError(f"--lora-dropout must be a probability from 0 up to (not including) 1, got "
                                f"{self.lora_dropout}")
        if self.stage1_steps < 0 or self.distill < 0 or not self.stage1_match >= 0:  # nan too
            raise HyperTokError("--stage1-steps, --distill and --stage1-match must not be negative")
        if self.stage1_match and not self.stage1_steps:
            raise HyperTokError(f"--stage1-match {self.stage1_match} works in stage 1: give --stage1-steps too")
        if self.distill and self.distill_temperature <= 0:
            raise HyperTokError(f"--distill-temperature must be positive, got {self.distill_temperature}")
        if self.distill and self.loop.loss == "liger":
            raise HyperTokError("--loss liger does not combine with --distill yet (the distillation loss needs "
                                "per-token log-probabilities); use --loss chunked")
        if _is_packed(self.train) and self.max_train_chars:
            warnings.warn("--max-train-chars is ignored: --train is prepared data (set it in `hypertok prepare`)")
        if isinstance(self.eval, str):
            self.eval = [self.eval]
        if self.eval and any(str(e).endswith(".bin") for e in self.eval) and self.eval_chars:
            warnings.warn("--eval-chars is ignored: --eval is prepared data (set it in `hypertok prepare`)")


def _is_packed(paths) -> bool:
    """True for one ``.bin`` of ``hypertok prepare``; text files otherwise."""
    if any(str(p).endswith(".bin") for p in paths):
        if len(paths) != 1:
            raise HyperTokError(f"--train {' '.join(map(str, paths))}: give text files or one prepared .bin, not both")
        return True
    return False


# ----------------------------------------------------------------------------------------
# The loop (shared by adaptation and the experiment's pretraining)
# ----------------------------------------------------------------------------------------

def _lr_lambda(cfg: TrainConfig, time_used=lambda: 0.0):
    """Linear warm-up, then cosine decay to ``min_lr_ratio`` over the steps, or over the time budget
    (``time_used()``: its fraction spent) where that ends first."""
    def f(step: int) -> float:
        if step < cfg.warmup:
            return (step + 1) / max(1, cfg.warmup)
        t = max((step - cfg.warmup) / max(1, cfg.steps - cfg.warmup), time_used())
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
    return f


def _row_order(n: int, seed: int, epoch: int):
    import numpy as np

    return np.random.default_rng([seed, epoch]).permutation(n)


@contextlib.contextmanager
def rows_only(model):
    """Stage 1 of the recipe: inside, only embedding/head rows train (LoRA and body frozen).

    LoRA's B matrices start at zero and stay frozen here, so the body computes exactly the
    base's function: the new rows learn to fit the unchanged model.
    """
    frozen = [p for n, p in model.named_parameters() if p.requires_grad and not is_row_param(n)]
    for p in frozen:
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p in frozen:
            p.requires_grad_(True)


def _trainable(model) -> dict:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def train_loop(model, stream, bos: int, cfg: TrainConfig, out: Path | None = None, eval_fn=None,
               resume: bool = False, is_row_param=None, stop_at: int | None = None, *, stage: str = "",
               row_offset: int = 0, distiller=None, ranks=SINGLE) -> list[dict]:
    """Train the parameters of ``model`` that require grad on a packed stream (array or memmap).

    Batch k of the run is a fixed function of (seed, k), so a resumed run sees the same
    batches. ``eval_fn(model) -> dict`` runs every ``eval_every`` steps and at the end.
    Each step appends {"step", "loss" (nats/token), "lr", "tokens", "time"} to the history
    (and to ``out/train_log.jsonl``); a checkpoint with optimizer, scheduler and history is
    written every ``save_every`` steps to ``out/checkpoint.pt``. ``stop_at`` ends this run
    early at that step (the schedule still spans ``cfg.steps``), as an interruption would.

    ``stage`` names a stage of a longer recipe: its checkpoint and log get the suffix
    ``-STAGE``; ``row_offset`` is the number of rows earlier stages consumed, so stages
    draw different rows of the same shuffled order and ``tokens`` counts the whole recipe.
    ``distiller`` (:class:`hypertok.adapt.distill.Distiller`) replaces the plain next-token
    loss by next-token + distillation.

    ``ranks`` (:mod:`hypertok.adapt.distributed`): under torchrun each rank trains on its
    slice of every global batch of ``cfg.batch_size`` rows, the loss under DDP; only rank 0
    writes the log and the checkpoint, which is the same file one process writes.
    """
    trainer = Trainer(model, stream, bos, cfg, out, is_row_param, stage=stage, row_offset=row_offset,
                      distiller=distiller, ranks=ranks)
    if resume:
        trainer.resume()
    return trainer.run(eval_fn, stop_at)


class Trainer:
    """The loop of :func:`train_loop` in its parts, read top to bottom as nanoGPT's ``train.py``:
    set-up (optimizer groups, schedule, loss, rows), :meth:`resume` from a checkpoint,
    :meth:`batch` (the rows of a step), :meth:`step` (forward, backward, update, the step's
    record), :meth:`save` (the checkpoint) and :meth:`run` (the steps, the log, evaluation)."""

    def __init__(self, model, stream, bos: int, cfg: TrainConfig, out: Path | None = None, is_row_param=None, *,
                 stage: str = "", row_offset: int = 0, distiller=None, ranks=SINGLE) -> None:
        import torch

        self.model, self.stream, self.bos, self.cfg, self.out = model, stream, bos, cfg, out
        self.stage, self.row_offset, self.distiller, self.ranks = stage, row_offset, distiller, ranks
        self.device = next(model.parameters()).device
        self.params = _trainable(model)
        if not self.params:
            raise HyperTokError("nothing to train: no parameter requires grad")
        is_row_param = is_row_param or (lambda name: False)
        rows = [p for n, p in self.params.items() if is_row_param(n)]
        rest = [p for n, p in self.params.items() if not is_row_param(n)]
        groups = [{"params": rest, "lr": cfg.lr}]
        if rows:
            groups.append({"params": rows, "lr": cfg.rows_lr or cfg.lr})
        groups = [g for g in groups if g["params"]]
        self.opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay, betas=(0.9, 0.95),
                                     fused=self.device.type == "cuda")
        self.clock = time.monotonic()  # when run() started; `spent`: seconds of earlier runs (a resumed checkpoint)
        self.spent = 0.0
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, _lr_lambda(cfg, self.time_used))
        self.history: list[dict] = []
        self.start = 0
        suffix = f"-{stage}" if stage else ""
        self.checkpoint = out / CHECKPOINT_FILE.replace(".pt", f"{suffix}.pt") if out else None
        self.log_file = out / LOG_FILE.replace(".jsonl", f"{suffix}.jsonl") if out else None
        self.data_id = _stream_id(stream)
        ranks.check_batch(cfg.batch_size)
        if cfg.time_budget and ranks.world > 1:  # each rank's clock would give its own learning rate
            raise HyperTokError("--time-budget is for one process; under torchrun give --steps")
        self.loss_kind = pick_loss(cfg.loss, self.device.type, distiller is not None)
        if cfg.compile:  # in place: parameter names, saving and merging stay as they are
            (model.get_base_model() if hasattr(model, "get_base_model") else model).model.compile()

        self.bos_first = cfg.bos_rows

        def step_loss(m, X, P, Y, Z=None):  # Z: the rows with their last target, for the distiller
            return causal_lm_nll(m, X, P, Y, cfg.loss_chunk, loss=self.loss_kind) if distiller is None else \
                distiller.loss(m, Z, X, P, Y, context=2 if self.bos_first else 1)

        self.step_fn = ranks.wrap(loss_module(model, step_loss)) if ranks.world > 1 else \
            (lambda *a: step_loss(model, *a))
        self.total_rows = n_rows(stream, cfg.seq_len, bos_first=self.bos_first)
        if self.total_rows < 1:
            raise HyperTokError(f"training text gives {len(stream)} tokens, fewer than one --seq-len {cfg.seq_len} "
                                f"row; give more text or a smaller --seq-len")
        self._orders: dict[int, object] = {}

    def time_used(self) -> float:
        """The fraction of ``cfg.time_budget`` spent since :meth:`run` started (0 without a budget)."""
        if not self.cfg.time_budget:
            return 0.0
        return (self.spent + time.monotonic() - self.clock) / self.cfg.time_budget

    def resume(self) -> None:
        """Continue from the checkpoint, if there is one, refusing one of other data or settings."""
        import torch

        ck, cfg = self.checkpoint, self.cfg
        if not (ck and ck.is_file()):
            return
        state = _load_checkpoint(ck, self.device)
        if state.get("data", self.data_id) != self.data_id:
            raise HyperTokError(f"{ck} was trained on other data ({state['data']}, now {self.data_id}); resume with "
                                f"the same --train (and tokenizer), or choose another --out")
        was = state.get("config", {})
        diff = {k: (was.get(k), getattr(cfg, k)) for k in ("steps", "batch_size", "seq_len", "seed", "lr")
                if was.get(k) != getattr(cfg, k)}
        if diff:
            raise HyperTokError(f"{ck} was written with other settings {diff} (checkpoint, now); "
                                f"resume with the same settings or choose another --out")
        with torch.no_grad():
            for n, p in self.params.items():
                p.copy_(state["trainable"][n])
        self.opt.load_state_dict(state["optim"])
        self.sched.load_state_dict(state["sched"])
        self.history = state["history"]
        self.spent = state.get("time_spent", 0.0)
        self.start = state["step"]

    def batch(self, step: int) -> list[int]:
        """This rank's rows of step ``step``: a fixed function of (seed, step), epoch after epoch."""
        import numpy as np

        cfg, idx = self.cfg, []
        for gi in self.row_offset + step * cfg.batch_size + np.arange(cfg.batch_size):  # global row numbers
            ep = int(gi) // self.total_rows
            if ep not in self._orders:
                self._orders = {ep: _row_order(self.total_rows, cfg.seed, ep)}
            idx.append(int(self._orders[ep][int(gi) % self.total_rows]))
        return self.ranks.slice(idx)

    def step(self, step: int) -> dict:
        """One optimizer step (in --micro-batch passes with gradients summed); its record."""
        import torch

        cfg, ranks, distiller, device = self.cfg, self.ranks, self.distiller, self.device
        idx = self.batch(step)
        micro = cfg.micro_batch or len(idx)
        if micro < len(idx) and ranks.world > 1:
            raise HyperTokError("--micro-batch is for one process; under torchrun give each rank fewer rows "
                                "with a smaller --batch-size")
        X, P, Y = rows_of(self.stream, cfg.seq_len, self.bos, idx, bos_first=self.bos_first)  # (B, T) each
        n_step = max(1, int((Y != IGNORE_INDEX).sum()))  # targets of the whole step: each pass's share of the mean
        self.opt.zero_grad(set_to_none=True)
        mean_loss, parts = 0.0, {}
        for lo in range(0, len(idx), micro):  # one pass, or --micro-batch rows at a time with gradients summed
            Xt, Pt, Yt = (torch.from_numpy(a[lo:lo + micro]).to(device, non_blocking=True) for a in (X, P, Y))
            with autocast(device):
                if distiller is None:
                    nll, n = self.step_fn(Xt, Pt, Yt)
                    loss, part_loss = ranks.loss(nll, n)  # one process: nll / n
                else:
                    Z = target_rows(self.stream, cfg.seq_len, self.bos, idx[lo:lo + micro], self.bos_first)
                    loss, n, got = self.step_fn(Xt, Pt, Yt, Z)
                    got = ranks.mean({"loss": float(loss.detach()),
                                      **{k: v if isinstance(v, int) else float(v) for k, v in got.items()}})
                    part_loss = got.pop("loss")
            share = 1.0 if micro == len(idx) else n / n_step  # this pass's targets among the step's
            if distiller is not None:
                for k, v in got.items():  # ints (counts) summed, floats weighted like the loss
                    parts[k] = parts.get(k, 0) + (v if isinstance(v, int) else v * share)
            mean_loss += part_loss * share
            if not math.isfinite(mean_loss):  # the same on every rank, so all stop together
                raise HyperTokError(f"the loss is {mean_loss} at step {step + 1}; training stopped, nothing saved "
                                    f"from this step on. Lower --lr/--rows-lr or check the data")
            (loss * share).backward()
        torch.nn.utils.clip_grad_norm_(list(self.params.values()), cfg.clip)
        self.opt.step()
        self.sched.step()
        rec = {"step": step + 1, "loss": mean_loss, "lr": self.sched.get_last_lr()[0],
               "tokens": (self.row_offset + (step + 1) * cfg.batch_size) * cfg.seq_len, "time": time.monotonic() - self.clock}
        rec.update({k: float(v) for k, v in parts.items()})
        return rec

    def save(self, step: int) -> None:
        """The checkpoint after ``step`` steps: trainable weights, optimizer, schedule, history, seconds spent."""
        import torch

        ck = self.checkpoint
        ck.parent.mkdir(exist_ok=True)  # made at the first save: an earlier kill leaves no empty resume/ (issue 24)
        with atomic_file(ck) as tmp, native_write(ck, "the checkpoint"):
            torch.save({"step": step, "trainable": {k: v.detach() for k, v in self.params.items()},
                        "optim": self.opt.state_dict(), "sched": self.sched.state_dict(), "history": self.history,
                        "time_spent": self.spent + time.monotonic() - self.clock,
                        "config": asdict(self.cfg), "data": self.data_id}, tmp)

    def run(self, eval_fn=None, stop_at: int | None = None) -> list[dict]:
        """The steps from the start (or the resumed step) to ``cfg.steps`` (or ``stop_at``, or the end of
        ``cfg.time_budget``): each logged, evaluated every ``eval_every`` steps and at the end, saved every
        ``save_every`` steps and at the end; the history. ``eval_fn`` may read the step's record as
        ``self.history[-1]``."""
        from tqdm import tqdm

        cfg, out, ranks, model = self.cfg, self.out, self.ranks, self.model
        model.train()
        if out:
            out.mkdir(parents=True, exist_ok=True)
        if out and ranks.main:  # the log may hold steps after the checkpoint: keep only the resumed history. A new
            # file replaces whatever is there (a link to a file outside `out` is replaced, never followed: issue 24)
            atomic_write(self.log_file, "".join(json.dumps(rec) + "\n" for rec in self.history))
        log = open(self.log_file, "a") if out and ranks.main else None
        end = cfg.steps if stop_at is None else min(cfg.steps, stop_at)
        bar = tqdm(range(self.start, end), desc=cfg.desc, disable=not cfg.progress, initial=self.start,
                   total=cfg.steps)
        self.clock = time.monotonic()
        try:
            for step in bar:
                rec = self.step(step)
                if step == self.start:
                    rec["loss_fn"] = self.loss_kind  # what --loss auto chose
                if self.stage:
                    rec["stage"] = self.stage
                last = step + 1 == cfg.steps or self.time_used() >= 1
                if last and step + 1 < cfg.steps:
                    rec["ended_by"] = "time_budget"
                self.history.append(rec)
                if eval_fn and cfg.eval_every and ((step + 1) % cfg.eval_every == 0 or last):
                    rec.update(eval_fn(model))
                    model.train()
                if log:
                    log.write(json.dumps(rec) + "\n")
                    log.flush()
                bar.set_postfix(loss=f"{rec['loss']:.3f}")
                if self.checkpoint and ranks.main and cfg.save_every and ((step + 1) % cfg.save_every == 0 or last):
                    self.save(step + 1)
                if last:
                    break
        finally:  # a NaN loss, an out-of-memory error or an interrupt closes the log too
            if log:
                log.close()
        return self.history


def _stream_id(stream) -> str:
    """Identity of a packed stream (its length and sha256), checked when a run resumes."""
    import hashlib

    import numpy as np

    h = hashlib.sha256()
    for s in range(0, len(stream), 1 << 24):
        h.update(np.ascontiguousarray(stream[s:s + (1 << 24)], dtype=np.uint32).tobytes())
    return f"{len(stream)} tokens, sha256 {h.hexdigest()[:16]}"


def _load_checkpoint(ck: Path, device) -> dict:
    """``checkpoint.pt`` with ``weights_only=True``: tensors and plain data only, so a crafted
    pickle cannot run code (issue 13); anything else is refused with one line."""
    import pickle

    import torch

    try:
        state = torch.load(ck, map_location=device, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError, TypeError) as e:
        first = str(e).strip().split("\n")[0][:200]
        raise HyperTokError(f"{ck}: not a checkpoint HyperTok can load safely ({first}); it was refused unread. "
                            f"Remove it to start over, or choose another --out") from None
    if not isinstance(state, dict) or not {"step", "trainable", "optim", "sched", "history"} <= set(state):
        raise HyperTokError(f"{ck}: not a checkpoint written by `hypertok adapt`; remove it or choose another --out")
    return state


# ----------------------------------------------------------------------------------------
# hypertok adapt
# ----------------------------------------------------------------------------------------

def _packed(tok, paths: list[str], out: Path, max_chars: int, what: str, write: bool = True):
    """(memmap stream, meta): the prepared .bin given, or the text prepared into ``out`` first
    (``write=False``: already prepared there by rank 0)."""
    if _is_packed(paths):
        return open_packed(paths[0], tok)
    if write:
        prepare(tok, paths, out, max_chars, what=what)
    return open_packed(out, tok)


VERSIONED = ("torch", "transformers", "peft", "tokenizers")


def _record(cfg: AdaptConfig) -> dict:
    record = asdict(cfg)
    record["loop"].pop("progress")
    return record


def is_adapt_dir(out: Path) -> bool:
    """True for a folder ``hypertok adapt`` wrote: its run record (:data:`RUN_FILE`), a checkpoint,
    or a recipe beside an adapter config (an adapter saved by ``save_pretrained``); a folder
    ``hypertok merge`` wrote is not, though it holds a recipe too (issue 24)."""
    if is_merged_dir(out):
        return False
    return ((out / RUN_FILE).is_file() or any((out / CHECKPOINT_DIR).glob("*.pt"))
            or ((out / RECIPE_FILE).is_file() and (out / ADAPTER_CONFIG).is_file()))


def check_adapt_out(cfg: AdaptConfig) -> Path:
    """``adapt --out``, checked before any work: a new or empty folder, or one adapt wrote
    (:func:`is_adapt_dir`), none of whose paths adapt writes is a link out of it; a checkpoint
    only with ``--resume``, and ``--resume`` only on a checkpoint."""
    out = check_out(cfg.out)
    has_checkpoint = any((out / CHECKPOINT_DIR).glob("*.pt"))
    if has_checkpoint and not cfg.resume:
        raise HyperTokError(f"{out} holds a checkpoint ({CHECKPOINT_DIR}/); pass --resume to continue it, "
                            f"or choose another --out")
    if out.is_dir() and not is_empty_dir(out) and not is_adapt_dir(out):
        if is_merged_dir(out):
            raise HyperTokError(f"{out} is a model folder `hypertok merge` wrote; `hypertok adapt` would replace its "
                                f"weights and config. Choose another --out")
        raise HyperTokError(f"{out} is a folder with other files; `hypertok adapt` writes only into a new or empty "
                            f"folder, or one it wrote. Choose another --out")
    if cfg.resume and not has_checkpoint:
        earlier = (f" (its {LOG_FILE} shows an earlier run stopped before its first checkpoint, saved every "
                   f"--save-every steps)" if (out / LOG_FILE).is_file() or (out / STAGE1_LOG).is_file() else "")
        raise HyperTokError(f"--resume: {out} holds no checkpoint to continue{earlier}; run without --resume to "
                            f"start from step 1")
    check_no_links(out, _WRITES)
    return out


CPU_TOKENS = 2_000_000  # training tokens beyond which a CPU run is worth a warning (hours on 2 cores)


def warn_cpu_sized(cfg: AdaptConfig, device) -> None:
    """Warn when ``adapt`` runs on CPU with a GPU-sized run (the defaults: 1000 x 8 x 1024 tokens)."""
    loop = cfg.loop
    tokens = (loop.steps + cfg.stage1_steps) * loop.batch_size * loop.seq_len
    if device.type == "cpu" and tokens > CPU_TOKENS:
        warnings.warn(f"adapt runs on CPU with {tokens:,} training tokens ({loop.steps} steps x --batch-size "
                      f"{loop.batch_size} x --seq-len {loop.seq_len}), sized for a GPU: expect hours. To try it on "
                      f"CPU, pass e.g. --steps 20 --batch-size 2 --seq-len 128 and a tiny base "
                      f"(`python -m hypertok.adapt.tiny --out tiny-base`)", stacklevel=2)


@dataclass
class AdaptResult:
    """What :func:`adapt` returns."""

    out: str  # the adapter folder
    model: AdaptedModel  # the trained model, in memory (unmerged)
    tokenizer: object  # its AdaptedTokenizer: the model's ids
    history: list[dict]  # one record a step: step, loss, lr, tokens, and eval_bpc where evaluated
    loss_plot: str | None  # OUT/loss.png, or None without matplotlib


def adapt(cfg: AdaptConfig) -> AdaptResult:
    """Run ``hypertok adapt``: everything that can fail on bad input fails before the model loads.

    Returns an :class:`AdaptResult`. Under
    ``torchrun`` (:mod:`hypertok.adapt.distributed`) every rank trains, rank 0 writes.
    """
    import torch

    out = check_adapt_out(cfg)
    warn_cpu_sized(cfg, device_of(cfg.device))
    ranks = launched(cfg.device)
    ranks.check_batch(cfg.loop.batch_size)
    device = ranks.device(cfg.device)
    seed = cfg.loop.seed
    tok = plan(cfg.base, cfg.tokenizer, cfg.strategy, cfg.init, seed)
    load_base_config(cfg.base)  # a damaged or pickled base is refused before any data is written (issue 24)
    data = out / DATA_SUBDIR
    with ranks.main_first() as write, made_dirs(out):  # bad data found here leaves no folder behind
        stream, _ = _packed(tok, cfg.train, data / "train", cfg.max_train_chars, "--train", write)
        evals = {}  # name -> (stream, meta); the first one's figures are also "eval_bpc"/"eval_loss"
        for i, path in enumerate(cfg.eval or []):
            name = Path(path).name.split(".")[0]
            evals[name] = _packed(tok, [path], data / ("eval" if i == 0 else f"eval-{name}"), cfg.eval_chars,
                                  "--eval", write)
        if n_rows(stream, cfg.loop.seq_len, bos_first=cfg.loop.bos_rows) < 1:
            raise HyperTokError(f"--train gives {len(stream)} tokens, fewer than one --seq-len {cfg.loop.seq_len} row")
        if write:  # from here on the folder is adapt's own, whatever stops the run
            atomic_write(out / RUN_FILE, json.dumps({"written_by": "hypertok adapt", "config": _record(cfg),
                                                      "versions": library_versions(VERSIONED)}, indent=1) + "\n")

    torch.manual_seed(seed)
    model = load_base_model(cfg.base, cfg.dtype, device)
    resize_and_init(model, tok.recipe, overlaps=row_overlaps(tok) if cfg.init == "focus" else None)
    if cfg.grad_ckpt:
        with warnings.catch_warnings():  # renamed activation_checkpointing_enable in newer transformers
            warnings.simplefilter("ignore", FutureWarning)
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    model = wrap_peft(model, tok.recipe, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.rows)
    out.mkdir(parents=True, exist_ok=True)
    distiller = matcher = None
    if cfg.distill or cfg.stage1_match:
        from .distill import Distiller, HiddenMatcher

        teacher = load_base_model(cfg.base, cfg.dtype, device)  # untouched base, its own vocabulary; one per rank
        if cfg.distill:
            distiller = Distiller(teacher, tok, tok.base, cfg.distill, cfg.distill_temperature, cfg.loop.loss_chunk)
        if cfg.stage1_match:
            matcher = HiddenMatcher(teacher, tok, tok.base, cfg.stage1_match, chunk=cfg.loop.loss_chunk)

    def eval_fn(m):
        rec, by_text = {}, {}
        for name, (stream_, meta) in evals.items():
            nll, n = stream_nll(m, stream_, cfg.loop.seq_len, tok.bos, cfg.loop.batch_size, cfg.loop.loss_chunk,
                                bos_first=cfg.loop.bos_rows)
            by_text[name] = nll / math.log(2) / meta.chars
            if not rec:
                rec = {"eval_bpc": by_text[name], "eval_loss": nll / max(1, n)}
        return {**rec, "eval_bpc_by_text": by_text} if len(evals) > 1 else rec

    evaluate_fn = eval_fn if evals else None
    history = []
    if cfg.stage1_steps:
        stage1 = dataclasses.replace(cfg.loop, steps=cfg.stage1_steps, lr=cfg.stage1_lr, rows_lr=cfg.stage1_lr,
                                     warmup=min(cfg.loop.warmup, max(1, cfg.stage1_steps // 10)),
                                     eval_every=0, time_budget=0.0, desc=f"adapt {out.name} stage 1")
        with rows_only(model):
            history += train_loop(model, stream, tok.bos, stage1, out, None, resume=cfg.resume,
                                  is_row_param=is_row_param, stage="stage1", distiller=matcher or distiller,
                                  ranks=ranks)
    loop = dataclasses.replace(cfg.loop, eval_every=cfg.loop.eval_every if evaluate_fn else 0,
                               desc=f"adapt {out.name}")
    history += train_loop(model, stream, tok.bos, loop, out, evaluate_fn, resume=cfg.resume,
                          is_row_param=is_row_param, row_offset=cfg.stage1_steps * cfg.loop.batch_size,
                          distiller=distiller, ranks=ranks)
    model.config.use_cache = True
    adapted = AdaptedModel(model, tok)
    plot = None
    if ranks.main:
        adapted.save_pretrained(out, extra={"train": _record(cfg)})
        plot, why = write_loss_plot(history, out / LOSS_PLOT, f"hypertok adapt {out.name}: {cfg.strategy}, "
                                    f"init {cfg.init}, {len(tok)} rows", eval_name=next(iter(evals), "eval"))
        if plot is None:
            warnings.warn(f"no {out / LOSS_PLOT}: {why}", stacklevel=2)
    ranks.barrier()  # every rank returns once the adapter is there
    ranks.close()
    return AdaptResult(str(out), adapted, tok, history, str(plot) if plot else None)
