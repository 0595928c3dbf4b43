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
  tokenizer, the base's tokenizer (its SentencePiece ``tokenizer.model`` or byte-level BPE
  ``tokenizer.json``) and the resize recipe (``hypertok_adapt.json``);
  ``merge_and_unload()`` gives a plain transformers model and ``save_merged(dir)`` writes it
  with its tokenizer files (``hypertok merge``).

Everything read from a folder is checked before it is used (issue 13): a corrupt
``config.json`` or a truncated ``*.safetensors`` (header against file size) in the base or
the adapter is one clear line, every loader passes ``local_files_only=True`` (an adapter
folder without its weights is a local error, never a Hub lookup of the folder's name), the
adapter's files must be those its recipe was saved with (sha256), and ``--device`` is
checked before any work. ``save_pretrained`` and ``save_merged`` make a new folder appear
whole, or write into an existing one with the recipe removed first and renamed in last, so a
killed save never leaves a folder that loads. Into an existing folder they add their files
beside what is there, as transformers' ``save_pretrained`` does (issue 11): a file is
removed only when the folder's previous recipe records it as HyperTok's and this save does
not write it again (a shard of an earlier merge); no folder is ever removed. ``merge``
refuses a non-empty ``--out`` it did not write.

What it does not do: no downloads, no training (``hypertok.adapt.train``), no row
initialisation (``hypertok.adapt.recipe``). torch/transformers/peft are imported inside
functions only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
from pathlib import Path

from ..errors import HyperTokError
from ..files import atomic_write, beside, check_out, is_empty_dir, link_on_the_way, read_json
from ..registry import RECIPE_FILE, AdaptedTokenizer, Recipe

ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
MAX_SHARD_SIZE = "5GB"  # merged weights: what the Hub and serving engines expect (transformers 5 defaults to 50GB)

_VOLATILE = {"transformers_version", "_name_or_path", "torch_dtype", "dtype", "architectures", "use_cache"}


# ----------------------------------------------------------------------------------------
# The base checkpoint: local path only, fingerprint, loading
# ----------------------------------------------------------------------------------------

def check_base_path(path: str | os.PathLike) -> Path:
    """The base model folder, or a clear offline error.

    >>> check_base_path("mistralai/Mistral-7B-v0.3")
    Traceback (most recent call last):
    ...
    hypertok.errors.HyperTokError: mistralai/Mistral-7B-v0.3: no such folder. HyperTok never downloads models: pass the path of a local checkpoint folder (config.json, *.safetensors, tokenizer.model or tokenizer.json)
    """
    p = Path(path)
    if not p.is_dir():
        raise HyperTokError(f"{path}: no such folder. HyperTok never downloads models: pass the path of a local "
                            f"checkpoint folder (config.json, *.safetensors, tokenizer.model or tokenizer.json)")
    if not (p / "config.json").is_file():
        raise HyperTokError(f"{p}: no config.json; not a transformers checkpoint folder")
    read_json(p / "config.json")
    for f in sorted(p.glob("*.safetensors")):
        check_safetensors(f)
    return p


def check_safetensors(path: str | os.PathLike) -> dict:
    """Refuse a truncated or corrupt ``.safetensors`` file by its header alone (no tensors read);
    return the header (``{name: {"dtype", "shape", "data_offsets"}}``).

    The format is an 8-byte little-endian header length, a JSON header giving each tensor's
    byte range, then the data: every range must lie inside the file.
    """
    p = Path(path)
    size = p.stat().st_size
    why = None
    header: dict = {}
    try:
        with open(p, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8).ljust(8, b"\xff"))
            if n > min(size - 8, 1 << 28):
                why = f"header of {n} bytes in a file of {size}"
            else:
                header = json.loads(f.read(n))
                end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
                if 8 + n + end > size:
                    why = f"tensors end at byte {8 + n + end} but the file has {size}"
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, struct.error) as e:
        why = f"unreadable header ({e})"
    if why or not isinstance(header, dict):
        raise HyperTokError(f"{p}: truncated or corrupt safetensors file ({why or 'header is not an object'}); "
                            f"copy or write it again")
    return header


def base_fingerprint(path: str | os.PathLike) -> str:
    """A cheap identity of a checkpoint folder: its config (less volatile keys) and, per
    weight file, the size and three 64 KiB samples of the bytes. No weights are loaded."""
    p = check_base_path(path)
    h = hashlib.sha256()
    cfg = read_json(p / "config.json")
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
    p = check_base_path(path)
    cfg = read_json(p / "config.json")
    n = cfg.get("vocab_size") or (cfg.get("text_config") or {}).get("vocab_size")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise HyperTokError(f"{p / 'config.json'}: vocab_size {n!r} is not a positive integer; the folder is damaged")
    return n


def device_of(name: str):
    """``torch.device(name)``; ``auto``: CUDA when there is one, else CPU. A name torch does not
    know, or CUDA where this torch has none, is one clear error (check it before any work)."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise HyperTokError(f"--device {name!r}: not a torch device; use auto, cpu or cuda (cuda:0, ...)") from None
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise HyperTokError(f"--device {name}: this torch has no CUDA device here "
                                f"(torch {torch.__version__}); use --device cpu or auto")
        if dev.index is not None and dev.index >= n:
            raise HyperTokError(f"--device {name}: there are only {n} CUDA devices")
    elif dev.type not in ("cpu", "mps", "xpu"):
        raise HyperTokError(f"--device {name!r}: not supported here; use auto, cpu or cuda")
    return dev


def autocast(device):
    """bf16 autocast on CUDA; nothing on CPU (float32 there)."""
    import contextlib

    import torch

    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def _transformers_errors(p: Path):
    """What transformers raises on a damaged checkpoint, as one line naming the folder."""
    from huggingface_hub.errors import StrictDataclassError

    try:
        yield
    except (OSError, ValueError, KeyError, AttributeError, RuntimeError, TypeError, StrictDataclassError) as e:
        # TypeError, StrictDataclassError: a string where config.json needs an int, a list as generation_config.json
        first = " ".join(str(e).split())[:300]  # one line (a validation error says what on its second)
        raise HyperTokError(f"{p}: transformers cannot load this checkpoint ({type(e).__name__}: {first})") from None


def load_base_config(path: str | os.PathLike):
    """The base's transformers config, its generation config and safetensors weights checked,
    no weight read: what commands call before any work (issue 24). A folder with pickled weights
    only (``pytorch_model.bin``) is refused: transformers would unpickle it."""
    from transformers import AutoConfig, GenerationConfig

    p = check_base_path(path)
    if not any(p.glob("*.safetensors")):
        pickled = sorted(f.name for f in [*p.glob("*.bin"), *p.glob("*.pt"), *p.glob("*.pth")])
        why = f" ({pickled[0]} is pickled weights, which HyperTok never loads: a pickle can run code)" if pickled else ""
        raise HyperTokError(f"{p}: no *.safetensors weights{why}; save the model as safetensors "
                            f"(transformers: model.save_pretrained(folder))")
    with _transformers_errors(p):
        config = AutoConfig.from_pretrained(p, local_files_only=True)
        if (p / "generation_config.json").is_file():
            GenerationConfig.from_pretrained(p, local_files_only=True)
    return config


def load_base_model(path: str | os.PathLike, dtype: str = "auto", device: str = "auto"):
    """AutoModelForCausalLM from a local folder, SDPA attention, never touching the hub.

    ``dtype`` auto: float32 under 1B parameters (estimated from the config), else bfloat16.
    """
    import torch
    from transformers import AutoModelForCausalLM

    p = check_base_path(path)
    dev = device_of(device)
    config = load_base_config(p)
    with _transformers_errors(p):
        if dtype == "auto":
            n = (config.num_hidden_layers * 12 * config.hidden_size ** 2)
            dtype = "float32" if n < 1e9 else "bfloat16"
        td = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
        model = AutoModelForCausalLM.from_pretrained(p, local_files_only=True, dtype=td, attn_implementation="sdpa")
    return model.to(dev)


# ----------------------------------------------------------------------------------------
# peft
# ----------------------------------------------------------------------------------------

@contextlib.contextmanager
def quiet_peft():
    """Silence the one FutureWarning peft triggers in transformers 5 on every model command (it reads
    ``model.is_gradient_checkpointing``, renamed ``is_activation_checkpointing``; issue 24, item 16).
    Every other warning still shows."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


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
    with quiet_peft():
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
    rows = base_rows(base_path)
    if recipe.base_vocab_size != rows:
        raise HyperTokError(f"{adapter_dir} was made for a base with {recipe.base_vocab_size} embedding rows; "
                            f"{base_path} has {rows}. Load it onto the exact base checkpoint it was made from")
    _check_lora_against_base(Path(adapter_dir) / ADAPTER_CONFIG, base_path, recipe.model_vocab_size)
    fp = base_fingerprint(base_path)
    if recipe.base_fingerprint and recipe.base_fingerprint != fp:
        raise HyperTokError(
            f"{adapter_dir} was trained on another base model (fingerprint {recipe.base_fingerprint}, "
            f"config {recipe.base_config}); {base_path} has fingerprint {fp}. Load it onto the exact base "
            f"checkpoint it was made from")
    return recipe


def _check_lora_against_base(path: Path, base_path: str | os.PathLike, model_rows: int) -> None:
    """The bounds of an adapter's peft config that need the base, before peft allocates (issue 24):
    every LoRA rank at most the base's hidden size (there the update is already of full rank:
    each adapted linear layer has the hidden size on one side), every token row inside the
    model's ``model_rows``."""
    if not path.is_file():
        return  # check_adapter_files refuses a folder without it
    cfg = read_json(path)
    base_cfg = read_json(Path(base_path) / "config.json")
    hidden = base_cfg.get("hidden_size") or (base_cfg.get("text_config") or {}).get("hidden_size")
    bound = hidden if _is_int(hidden) and hidden >= 1 else 1 << 16
    bad = f"{path}: %s; the adapter config is corrupt or crafted, re-run `hypertok adapt`"
    too_big = [r for r in _declared_ranks(cfg) if not (_is_int(r) and 1 <= r <= bound)]
    if too_big:
        raise HyperTokError(bad % f"LoRA rank {too_big[0]!r} is not an integer from 1 to {bound}, the hidden size of "
                                  f"{base_path} (a higher rank is no longer low-rank, and peft would allocate it "
                                  f"before reading any weight)")
    rows = cfg.get("trainable_token_indices") or {}
    for ids in (rows.values() if isinstance(rows, dict) else [rows]):
        if isinstance(ids, list) and any(not _is_int(i) or not 0 <= i < model_rows for i in ids):
            raise HyperTokError(bad % f"trainable_token_indices names rows outside the model's {model_rows}")


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

        check_adapter_files(adapter_dir)
        check_adapter_for_base(adapter_dir, base)
        tok = AdaptedTokenizer.load(adapter_dir)
        device_of(device)
        model = load_base_model(base, dtype, device)
        model.resize_token_embeddings(tok.recipe.model_vocab_size, mean_resizing=False)
        try:  # local_files_only: never look the folder's name up on the Hub
            with quiet_peft():
                model = PeftModel.from_pretrained(model, str(adapter_dir), local_files_only=True)
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            first = str(e).strip().split("\n")[0][:300]
            raise HyperTokError(f"{adapter_dir}: peft cannot load this adapter ({type(e).__name__}: {first})") from None
        model.eval()
        return cls(model, tok)

    def _write(self, tmp: Path, extra: dict | None) -> None:
        with _in_model_dtype(self.model):
            self.model.save_pretrained(tmp, save_embedding_layers=False)
        (tmp / "README.md").write_text(model_card(self.tokenizer, merged=False), encoding="utf-8")
        if extra:
            self.recipe.extra.update(extra)
        self.tokenizer.save(tmp, also_hash=sorted(f.name for f in tmp.iterdir() if f.is_file()))

    def save_pretrained(self, out: str | os.PathLike, extra: dict | None = None) -> Path:
        """Adapter + tokenizer + recipe (``extra`` recorded in it) into ``out``.

        A new ``out`` appears whole (:func:`~hypertok.files.atomic_dir`). Into an existing
        folder (``hypertok adapt`` keeps its checkpoint, log and data there) the files are
        written to a hidden sibling, the old recipe is removed, the files are moved in, and
        the recipe, which holds the sha256 of every other file, is renamed in last: a save
        killed midway leaves a folder that no loader accepts, never a mixed one. Other files
        of ``out`` stay (:func:`save_beside`).
        """
        if is_merged_dir(out):  # its recipe records the merged weights: the save would remove them (issue 24)
            raise HyperTokError(f"{out} is a model folder `hypertok merge` wrote; an adapter saved there would "
                                f"replace its files. Choose another folder")
        return save_beside(out, lambda tmp: self._write(tmp, extra), "adapt")

    def merge_and_unload(self):
        """A plain transformers model with LoRA and the new rows merged in (the peft model is consumed)."""
        return self.model.merge_and_unload()

    def save_merged(self, out: str | os.PathLike, max_shard_size: str | int = MAX_SHARD_SIZE,
                    base: str | os.PathLike | None = None, dtype: str | None = None) -> Path:
        """Write the merged model as ``save_pretrained`` would, so plain transformers (and the
        serving engines that read such folders) load it at the folder root:

        - ``model-0000k-of-0000n.safetensors`` shards of at most ``max_shard_size`` with
          ``model.safetensors.index.json`` (one ``model.safetensors`` when it fits), and a
          ``config.json`` whose ``vocab_size`` is the number of rows and whose bos/eos/pad
          ids are the tokenizer's;
        - ``generation_config.json`` (the base's, from ``base``, with those ids);
        - ``tokenizer.json`` (ids = rows), ``tokenizer_config.json`` (bos, eos, unk, pad, the
          base's ``add_bos_token``, its chat template) and ``chat_template.jinja``;
        - beside them HyperTok's own files: ``hypertok_adapt.json``, ``tokenizer/``,
          ``base_tokenizer.model`` (or ``base_tokenizer.json`` for a byte-level base).
        """
        check_merge_out(out, force=True)  # writes only into a folder `hypertok merge` wrote (or a new or empty one)
        merged = self.merge_and_unload()
        if dtype is not None:  # written in this dtype (merged in the one it was loaded in)
            import torch

            merged = merged.to(getattr(torch, dtype))
        tok = self.tokenizer
        _set_token_ids(merged, tok, base)

        def write(tmp: Path) -> None:
            merged.save_pretrained(tmp, max_shard_size=max_shard_size)
            (tmp / "README.md").write_text(model_card(tok, merged=True), encoding="utf-8")
            tok.save(tmp, also_hash=sorted(f.name for f in tmp.iterdir() if f.is_file()))

        return save_beside(out, write, "merge")


def _recorded_files(folder: Path) -> list[str]:
    """The files the recipe of ``folder`` records as HyperTok's (none without a readable recipe)."""
    if not (folder / RECIPE_FILE).is_file():
        return []
    try:
        names = Recipe.load(folder).files
    except HyperTokError:
        return []
    return [n for n in names if not Path(n).is_absolute() and ".." not in Path(n).parts]


# The files plain transformers and peft start loading from (the tokenizer, the model, the adapter):
# removed first and moved in last by a save into an existing folder, so a save killed midway
# leaves a folder that they cannot load, or load whole from the new files (issue 24, item 5).
LOADER_ENTRY_FILES = ("tokenizer_config.json", "tokenizer.json", "adapter_config.json", "config.json")


SAVING_MARK = ".hypertok-saving"
"""A hidden file a save into an existing folder holds while its files move in (its content names the
command): the folder stays recognisable as that command's after a kill, so ``merge --force`` may write
it again although the recipe, removed first, is gone."""


def interrupted_save(folder: str | os.PathLike) -> str | None:
    """The command (``merge``, ``adapt``) whose save into ``folder`` was killed midway, or ``None``."""
    mark = Path(folder) / SAVING_MARK
    if not mark.is_file() or mark.is_symlink() or mark.stat().st_size > 4096:
        return None
    text = mark.read_text(encoding="utf-8", errors="replace").strip()
    return text if text in ("merge", "adapt") else None


def save_beside(out: str | os.PathLike, write, command: str = "adapt") -> Path:
    """Run ``write(tmp)`` on a fresh hidden folder and move its files into ``out``, the recipe and
    :data:`LOADER_ENTRY_FILES` removed first and moved in last (:func:`hypertok.files.beside`).

    Every file of ``out`` that HyperTok does not write stays. A file the previous recipe
    recorded as HyperTok's that this save did not write again (a shard of an earlier merge,
    whose count changed) is removed afterwards, so the folder never mixes two saves' weights;
    never one under a linked folder (a crafted recipe naming ``link/file``), which lies outside.
    """
    out = Path(out)
    before = _recorded_files(out)
    existing = out.is_dir()
    with beside(out, last=[*LOADER_ENTRY_FILES, RECIPE_FILE], remove_first=[RECIPE_FILE, *LOADER_ENTRY_FILES]) as tmp:
        write(tmp)
        for f in tmp.rglob("*.safetensors"):  # safetensors' writer may not report a full disk: read it back
            try:
                check_safetensors(f)
            except HyperTokError as e:
                raise HyperTokError(f"{out / f.relative_to(tmp)}: written short, nothing replaced (a full disk?): "
                                    f"{e}") from None
        written = {p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file()}
        if existing:  # the moves start when this block ends
            atomic_write(out / SAVING_MARK, command)
    (out / SAVING_MARK).unlink(missing_ok=True)
    for name in before:
        f = out / name
        if name not in written and link_on_the_way(out, name) is None and (f.is_symlink() or f.is_file()):
            f.unlink()  # never through a linked folder: outside `out` (issue 24)
    return out


def model_card(tok, merged: bool) -> str:
    """The README.md of an adapter or merged folder: what it is and how plain transformers/peft load it."""
    r = tok.recipe
    head = (f"# HyperTok-adapted model ({r.strategy}, {r.model_vocab_size} embedding rows)\n\n"
            f"Written by `hypertok {'merge' if merged else 'adapt'}`. `tokenizer.json` gives the model's ids (the "
            f"same file trained it); `tokenizer/` is the HyperTok vocabulary and `hypertok_adapt.json` the resize "
            f"recipe (HyperTok's own files, not needed to run the model).\n\n")
    if merged:
        return head + ("```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
                       "tok = AutoTokenizer.from_pretrained(FOLDER)\n"
                       "model = AutoModelForCausalLM.from_pretrained(FOLDER)\n```\n")
    return head + ("Load it onto the exact base it was trained from, after one resize to this folder's tokenizer:\n\n"
                   "```python\nfrom peft import PeftModel\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
                   "tok = AutoTokenizer.from_pretrained(ADAPTER)\n"
                   "base = AutoModelForCausalLM.from_pretrained(BASE)\n"
                   f"base.resize_token_embeddings(len(tok))  # {r.model_vocab_size} rows; the adapter fills the new ones\n"
                   "model = PeftModel.from_pretrained(base, ADAPTER)\n```\n\n"
                   "vLLM does not take adapters that train embedding rows: serve `hypertok merge`'s folder instead.\n")


def _set_token_ids(model, tok, base: str | os.PathLike | None) -> None:
    """config and generation_config of a merged model: vocab_size = rows, the tokenizer's
    bos/eos/pad ids, and the base's generation settings (sampling defaults) kept."""
    from transformers import GenerationConfig

    cfg = model.config
    cfg.vocab_size = tok.recipe.model_vocab_size
    cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id = tok.bos, tok.eos, tok.pad_id
    if getattr(cfg, "unk_token_id", None) is not None:  # a GGUF-born config names Gemma's unk 3, <pad> in HyperTok's
        cfg.unk_token_id = tok.unk_id
    gen = None
    if base is not None and (Path(base) / "generation_config.json").is_file():
        read_json(Path(base) / "generation_config.json")  # a damaged file is one clear line
        gen = GenerationConfig.from_pretrained(base, local_files_only=True)
    gen = gen or getattr(model, "generation_config", None) or GenerationConfig()
    gen.bos_token_id, gen.eos_token_id, gen.pad_token_id = tok.bos, tok.eos, tok.pad_id
    model.generation_config = gen


def check_adapter_files(adapter_dir: str | os.PathLike) -> Path:
    """The adapter folder, checked without loading anything: recipe, peft config and weights
    present and readable, every file the one its recipe was saved with, and the peft config's
    declared ranks those of the weights (:func:`check_lora_config`)."""
    d = Path(adapter_dir)
    if not d.is_dir():
        raise HyperTokError(f"{d}: no such adapter folder (write one with `hypertok adapt --out {d}`)")
    recipe = Recipe.load(d)
    for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
        if not (d / name).is_file():
            raise HyperTokError(f"{d / name}: missing; the adapter folder is incomplete (HyperTok never looks "
                                f"adapters up online), re-run `hypertok adapt`")
    read_json(d / ADAPTER_CONFIG)
    header = check_safetensors(d / ADAPTER_WEIGHTS)
    recipe.check_files(d)
    check_lora_config(d / ADAPTER_CONFIG, header)
    return d


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _declared_ranks(cfg: dict) -> list:
    return [cfg.get("r"), *(cfg.get("rank_pattern") or {}).values()]


def check_lora_config(path: Path, header: dict) -> dict:
    """The adapter's peft config, checked before peft allocates anything (issue 24): peft
    makes every LoRA layer at its declared rank before it reads a weight, so a crafted
    ``r = 1e6`` costs gigabytes. It must be LoRA; every declared rank a positive integer that
    is the rank of the weights in ``header`` (``lora_A`` is ``r x in``, ``lora_B`` ``out x r``);
    no layer replication (it copies whole layers); the token rows a list of distinct ids.
    The bound that needs the base (ranks at most its hidden size, rows inside the model's
    vocabulary) is :func:`check_adapter_for_base`'s."""
    cfg = read_json(path)
    bad = f"{path}: %s; the adapter config is corrupt or crafted, re-run `hypertok adapt`"
    if cfg.get("peft_type") != "LORA":
        raise HyperTokError(bad % f"peft_type is {cfg.get('peft_type')!r}, HyperTok adapters are 'LORA'")
    if not isinstance(cfg.get("rank_pattern") or {}, dict):
        raise HyperTokError(bad % "rank_pattern is not an object")
    declared = _declared_ranks(cfg)
    if not all(_is_int(r) and r >= 1 for r in declared):
        raise HyperTokError(bad % f"LoRA rank r = {cfg.get('r')!r} (or a rank_pattern value) is not a positive integer")
    shapes = [(k, t.get("shape")) for k, t in header.items() if k != "__metadata__" and isinstance(t, dict)]
    found = {s[0] for k, s in shapes if k.endswith("lora_A.weight") and s} | \
        {s[-1] for k, s in shapes if k.endswith("lora_B.weight") and s}
    if not found or not found <= set(declared):
        raise HyperTokError(bad % f"it declares LoRA rank r = {cfg['r']} but the weights have rank "
                                  f"{', '.join(map(str, sorted(found))) or 'none'}")
    if cfg.get("layer_replication"):
        raise HyperTokError(bad % "it asks for layer_replication, which HyperTok never writes")
    if cfg.get("init_lora_weights", True) not in (True, False):
        raise HyperTokError(bad % f"init_lora_weights is {cfg['init_lora_weights']!r}; HyperTok writes true")
    rows = cfg.get("trainable_token_indices") or {}
    lists = rows.values() if isinstance(rows, dict) else [rows]
    if not all(isinstance(ids, list) and all(_is_int(i) and i >= 0 for i in ids) and len(set(ids)) == len(ids)
               for ids in lists):
        raise HyperTokError(bad % "trainable_token_indices is not a list of distinct row ids")
    return cfg


def is_merged_dir(path: str | os.PathLike) -> bool:
    """True for a folder ``hypertok merge`` wrote (a model config plus the resize recipe), or one whose
    merge was killed while its files moved in (:data:`SAVING_MARK`)."""
    p = Path(path)
    return ((p / "config.json").is_file() and (p / RECIPE_FILE).is_file()) or interrupted_save(p) == "merge"


def check_merge_out(out: str | os.PathLike, force: bool = False) -> Path:
    """``merge --out``, checked before any work: a non-empty folder is written only with
    ``force`` and only when ``hypertok merge`` wrote it (its other files stay, :func:`save_beside`)."""
    p = check_out(out)
    if p.exists() and not is_empty_dir(p):
        if not force:
            raise HyperTokError(f"{p} already exists and is not empty; choose another --out (or pass --force to "
                                f"write again into a folder `hypertok merge` wrote)")
        if not is_merged_dir(p):
            raise HyperTokError(f"{p} was not written by `hypertok merge`; --force writes only into a merged model "
                                f"folder, choose another --out")
    return p


def merge(base: str | os.PathLike, adapter_dir: str | os.PathLike, out: str | os.PathLike,
          dtype: str = "auto", force: bool = False, max_shard_size: str | int = MAX_SHARD_SIZE) -> Path:
    """``hypertok merge``: base + adapter written as one plain transformers model (on CPU).

    ``out`` is checked first: an existing non-empty folder is written only with ``force``
    and only when it is a merged model folder; the files merge does not write stay there.
    """
    check_merge_out(out, force)
    check_shard_size(max_shard_size)
    saved = dtype if dtype != "auto" else saved_dtype(base)
    adapted = AdaptedModel.from_pretrained(base, adapter_dir, "float32" if saved else dtype, device="cpu")
    return adapted.save_merged(out, max_shard_size=max_shard_size, base=base, dtype=saved)


def check_shard_size(size: str | int) -> int:
    """``--max-shard-size`` in bytes, checked before any work (issue 24: ``abc`` failed only after the
    whole merge), by the parser the save uses (huggingface_hub's: a number and KB, MB, GB or TB).

    >>> check_shard_size("5GB"), check_shard_size(1000)
    (5000000000, 1000)
    """
    from huggingface_hub.serialization._base import parse_size_to_int

    try:
        n = parse_size_to_int(size) if isinstance(size, str) else size
    except ValueError as e:
        raise HyperTokError(f"--max-shard-size {size!r}: not a size ({e}); give e.g. 5GB or 500MB") from None
    if not isinstance(n, int) or n < 1:
        raise HyperTokError(f"--max-shard-size {size!r}: must be a positive size, e.g. 5GB or 500MB")
    return n


def saved_dtype(base: str | os.PathLike) -> str | None:
    """The dtype the base's weights are stored in (its ``config.json``), when it is one of ``DTYPES``:
    ``merge --dtype auto`` writes the merged model in it (a bf16 base stays bf16, not float32 twice
    its size), having merged in float32."""
    cfg = read_json(Path(base) / "config.json") if (Path(base) / "config.json").is_file() else {}
    d = cfg.get("dtype") or cfg.get("torch_dtype")
    return d if d in ("float32", "bfloat16") else None
