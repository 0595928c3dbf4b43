"""The adapted model: a local base checkpoint, a LoRA adapter and the vocabulary it was moved to.

What it does (issue 5; gathered here by issue 9, after peft's ``PeftModel``):

- the base is a local folder only (:func:`check_base_path`; a hub name is refused) with a
  cheap fingerprint (:func:`base_fingerprint`: config and byte samples, no weights loaded);
- :func:`load_base_model` loads it with SDPA attention; :func:`wrap_peft` puts LoRA on every
  linear layer plus the new rows (peft ``trainable_token_indices`` on ``embed_tokens`` and
  ``lm_head``) or the whole matrices (``modules_to_save``);
- :class:`AdaptedModel` is the peft model with its ``AdaptedTokenizer``:
  ``from_pretrained(base, adapter_dir)`` refuses an adapter made for another base, resizes
  the untouched base and loads the adapter; ``save_pretrained(dir)`` writes adapter,
  tokenizer, the base's ``tokenizer.model`` and the resize recipe (``hypertok_adapt.json``);
  ``merge_and_unload()`` gives a plain transformers model and ``save_merged(dir)`` writes it
  with its tokenizer files (``hypertok merge``).

What it does not do: no downloads, no training (``hypertok.adapt.train``), no row
initialisation (``hypertok.adapt.recipe``). torch/transformers/peft are imported inside
functions only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import HyperTokError
from ..files import atomic_dir
from ..registry import TOKENIZER_SUBDIR, AdaptedTokenizer, Recipe

_VOLATILE = {"transformers_version", "_name_or_path", "torch_dtype", "dtype", "architectures", "use_cache"}


# ----------------------------------------------------------------------------------------
# The base checkpoint: local path only, fingerprint, loading
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


def base_rows(path: str | os.PathLike) -> int:
    """Rows of the base embedding matrix (``config.vocab_size``, also of a multimodal text config)."""
    cfg = json.loads((check_base_path(path) / "config.json").read_text())
    return int(cfg.get("vocab_size") or cfg.get("text_config", {}).get("vocab_size"))


def device_of(name: str):
    """``torch.device(name)``; ``auto``: CUDA when there is one, else CPU."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def autocast(device):
    """bf16 autocast on CUDA; nothing on CPU (float32 there)."""
    import contextlib

    import torch

    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def load_base_model(path: str | os.PathLike, dtype: str = "auto", device: str = "auto"):
    """AutoModelForCausalLM from a local folder, SDPA attention, never touching the hub.

    ``dtype`` auto: float32 under 1B parameters (estimated from the config), else bfloat16.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    p = check_base_path(path)
    config = AutoConfig.from_pretrained(p, local_files_only=True)
    if dtype == "auto":
        n = (config.num_hidden_layers * 12 * config.hidden_size ** 2)
        dtype = "float32" if n < 1e9 else "bfloat16"
    td = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    model = AutoModelForCausalLM.from_pretrained(p, local_files_only=True, dtype=td, attn_implementation="sdpa")
    return model.to(device_of(device))


# ----------------------------------------------------------------------------------------
# peft
# ----------------------------------------------------------------------------------------

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
    """Whether a trainable parameter holds embedding/head rows (they get their own learning rate)."""
    return "trainable_tokens_delta" in name or "modules_to_save" in name


def check_adapter_for_base(adapter_dir: str | os.PathLike, base_path: str | os.PathLike):
    """The adapter's recipe, or HyperTokError when it was saved for another base (no weights loaded)."""
    recipe = Recipe.load(adapter_dir)
    fp = base_fingerprint(base_path)
    if recipe.base_fingerprint and recipe.base_fingerprint != fp:
        raise HyperTokError(
            f"{adapter_dir} was trained on another base model (fingerprint {recipe.base_fingerprint}, "
            f"config {recipe.base_config}); {base_path} has fingerprint {fp}. Load it onto the exact base "
            f"checkpoint it was made from")
    return recipe


@contextlib.contextmanager
def _in_model_dtype(model):
    """Trained parameters (float32 master copies) cast to the base weights' dtype while saving:
    a bf16 base gets bf16 rows and LoRA in its adapter, half the size."""
    dtype = next((p.dtype for p in model.parameters() if not p.requires_grad), None)
    kept = {}
    for n, p in model.named_parameters():
        if dtype is not None and p.requires_grad and p.dtype != dtype:
            kept[n] = p.data
            p.data = p.data.to(dtype)
    try:
        yield
    finally:
        for n, p in model.named_parameters():
            if n in kept:
                p.data = kept[n]


# ----------------------------------------------------------------------------------------
# The adapted model
# ----------------------------------------------------------------------------------------

class AdaptedModel:
    """A peft model on a resized base, with the tokenizer it reads and writes.

    ``model``: the peft model (call it like any transformers model); ``tokenizer``: the
    ``AdaptedTokenizer``; ``recipe``: the resize recipe.
    """

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model, tokenizer

    @property
    def recipe(self):
        return self.tokenizer.recipe

    def __call__(self, *args, **kwargs):
        return self.model(*args, **kwargs)

    @classmethod
    def from_pretrained(cls, base: str | os.PathLike, adapter_dir: str | os.PathLike, dtype: str = "auto",
                        device: str = "auto") -> "AdaptedModel":
        """The untouched base, resized and with the adapter of ``adapter_dir`` loaded (eval mode).

        Refuses, before loading any weights, an adapter saved for another base.
        """
        from peft import PeftModel

        check_adapter_for_base(adapter_dir, base)
        tok = AdaptedTokenizer.load(adapter_dir)
        model = load_base_model(base, dtype, device)
        model.resize_token_embeddings(tok.recipe.model_vocab_size, mean_resizing=False)
        model = PeftModel.from_pretrained(model, str(adapter_dir))
        model.eval()
        return cls(model, tok)

    def save_pretrained(self, out: str | os.PathLike, extra: dict | None = None) -> Path:
        """Adapter + tokenizer + recipe (``extra`` recorded in it) into ``out``.

        Written into a temporary sibling folder first, then each file is moved in; other
        files of ``out`` (the training checkpoint and log, prepared data) stay.
        """
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.saving-", dir=out.parent))
        try:
            with _in_model_dtype(self.model):
                self.model.save_pretrained(tmp, save_embedding_layers=False)
            if extra:
                self.recipe.extra.update(extra)
            self.tokenizer.save(tmp)
            for f in tmp.iterdir():
                dest = out / f.name
                if dest.is_dir():
                    shutil.rmtree(dest)
                os.replace(f, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return out

    def merge_and_unload(self):
        """A plain transformers model with LoRA and the new rows merged in (the peft model is consumed)."""
        return self.model.merge_and_unload()

    def save_merged(self, out: str | os.PathLike) -> Path:
        """Write the merged full model that plain transformers loads, plus its tokenizer files
        (for ``replace``, ``tokenizer.json`` at the top, giving the model's ids)."""
        merged = self.merge_and_unload()
        with atomic_dir(out) as tmp:
            merged.save_pretrained(tmp)
            self.tokenizer.save(tmp)
            if self.recipe.strategy == "replace" and (tmp / TOKENIZER_SUBDIR / "tokenizer.json").is_file():
                shutil.copy2(tmp / TOKENIZER_SUBDIR / "tokenizer.json", tmp / "tokenizer.json")
        return Path(out)


def merge(base: str | os.PathLike, adapter_dir: str | os.PathLike, out: str | os.PathLike,
          dtype: str = "auto") -> Path:
    """``hypertok merge``: base + adapter written as one plain transformers model (on CPU)."""
    return AdaptedModel.from_pretrained(base, adapter_dir, dtype, device="cpu").save_merged(out)
