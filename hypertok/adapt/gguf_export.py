"""``hypertok export-gguf``: a transformers model folder -> one GGUF file that llama.cpp runs (issue 22).

The way back of :mod:`.gguf_import`: a merged HyperTok model (``hypertok merge``), or any plain
folder of an architecture :data:`~hypertok.adapt.gguf_import.ARCHITECTURES` knows, becomes a
GGUF file written with the ``gguf`` package:

- **weights** in llama.cpp's layout of the architecture (the import's tables, read backwards:
  Gemma's RMSNorm weights written as ``1 + w``, Llama/Mistral q/k rows permuted for llama.cpp's
  rotary layout). 1-D tensors stay float32; matrices are written in ``--quant``: ``f32``,
  ``f16``, ``q8_0`` and ``q4_0`` by the ``gguf`` package, ``q4_k_m`` by llama.cpp's own
  quantiser (``llama_cpp.llama_model_quantize`` over an f16 file; the ``llamacpp`` extra).
- **the tokenizer**, so that llama.cpp's ids are the model's:

  - a Unigram ``tokenizer.json`` (every HyperTok vocabulary, and the model tokenizer of a
    transfer over a SentencePiece-style base) becomes llama.cpp's Unigram tokenizer
    (``tokenizer.ggml.model = "t5"``, UGM): the same pieces (spaces written ``▁``, as llama.cpp
    escapes them before its search), the same scores (HyperTok's lie on a grid of ``2**-12``,
    exact in the file's float32), no space prefix, no charsmap (no normalisation). UGM is a
    Viterbi search for the best sum of scores, as HyperTok's encoder is, and it keeps the
    first of two equal paths, as SentencePiece and tokenizers do. HyperTok's pieces never
    hold a newline before their end, so its cut after each newline changes nothing.
  - a SentencePiece ``tokenizer.model`` (an imported or Mistral v3 base) becomes llama.cpp's
    SentencePiece tokenizer (``"llama"``), as llama.cpp's converter writes it.

  Rows beyond the tokenizer (a checkpoint padded to a multiple of 64) get control pieces
  ``<hypertok_pad_N>`` that no text reaches; bos/eos/unk/pad ids and whether bos is added come
  from ``tokenizer_config.json``.
- **checked**: the file is read back with ``gguf.GGUFReader`` (every tensor, every token), and
  written atomically (a temporary sibling renamed into place).

Where llama.cpp's ids differ from HyperTok's (the whole list; ``experiments/gguf/`` measures
how often on real text and what the model loses):

1. a character that no piece spells: HyperTok writes its UTF-8 bytes as byte pieces;
   llama.cpp's UGM has no byte fallback and gives one ``<unk>`` for a run of them (and
   ``<unk>`` decodes to nothing). A HyperTok build keeps every character of its corpus;
2. the character ``▁`` (U+2581) in the text: llama.cpp reads it as a space;
3. a literal control string (``<s>``) where ``llama_tokenize`` is asked to parse specials.

What it does not do: byte-level BPE ``tokenizer.json`` files (Llama 3, Tekken, and transfers
over them: some of their pieces are half a character, which a UGM vocabulary cannot hold) and
NFC-normalising vocabularies are refused with the reason; no vision towers; no LoRA GGUF.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import HyperTokError
from ..files import check_out, clean_leftovers, leftover_name, read_json
from .gguf_import import (_BYTE, _CONTROL, _NORMAL, _UNKNOWN, _USER_DEFINED, ARCHITECTURES, Architecture,
                          _require_gguf)
from .model import check_base_path

EXPORT_FORMAT = "hypertok-gguf-export"
QUANTS = ("f32", "f16", "q8_0", "q4_0", "q4_k_m")
_BYTE_PIECE = re.compile(r"<0x[0-9A-F]{2}>")
SPACE = "\u2581"  # llama.cpp writes a space as this before its search (escape_whitespaces)


# ----------------------------------------------------------------------------------------
# The vocabulary
# ----------------------------------------------------------------------------------------

@dataclass
class GGUFVocab:
    """What ``tokenizer.ggml.*`` holds: the llama.cpp tokenizer model, pieces, scores, types, ids."""

    model: str  # "t5" (UGM) or "llama" (SentencePiece)
    tokens: list[str]
    scores: list[float]
    types: list[int]
    ids: dict[str, int] = field(default_factory=dict)  # bos, eos, unk, pad
    add_bos: bool = True
    add_eos: bool = False
    add_space_prefix: bool = False

    def pad_to(self, rows: int) -> int:
        """Add control pieces up to ``rows`` (the model's embedding rows); return how many."""
        n = rows - len(self.tokens)
        if n < 0:
            raise HyperTokError(f"the tokenizer has {len(self.tokens)} pieces but the model only {rows} rows")
        for i in range(n):
            self.tokens.append(f"<hypertok_pad_{len(self.tokens)}>")
            self.scores.append(-50.0)
            self.types.append(_CONTROL)
        return n


def _special_ids(folder: Path, piece_id) -> tuple[dict[str, int], bool, bool]:
    """bos/eos/unk/pad ids (by the names ``tokenizer_config.json`` gives) and add_bos/add_eos."""
    cfg_path = folder / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text(encoding="utf-8")) if cfg_path.is_file() else {}
    ids = {}
    for key in ("bos", "eos", "unk", "pad"):
        name = cfg.get(f"{key}_token")
        if isinstance(name, dict):
            name = name.get("content")
        if name is not None and piece_id(name) is not None:
            ids[key] = piece_id(name)
    return ids, bool(cfg.get("add_bos_token", True)), bool(cfg.get("add_eos_token", False))


def unigram_vocab(folder: Path) -> GGUFVocab:
    """llama.cpp's UGM vocabulary of the folder's Unigram ``tokenizer.json`` (ids unchanged)."""
    path = folder / "tokenizer.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    model = data.get("model") or {}
    if model.get("type") != "Unigram":
        raise HyperTokError(
            f"{path}: a {model.get('type')} tokenizer; llama.cpp's Unigram tokenizer reproduces Unigram "
            f"vocabularies only (HyperTok's, and transfers over a SentencePiece-style base). A byte-level BPE "
            f"(Llama 3, Tekken) holds pieces that are half a character, which llama.cpp's UGM cannot hold")
    if data.get("normalizer") is not None:
        raise HyperTokError(f"{path}: the tokenizer normalises text ({data['normalizer'].get('type')}); llama.cpp "
                            f"would need a precompiled charsmap for it. Build without --normalize to export")
    pre = data.get("pre_tokenizer")
    if pre is not None and not (pre.get("type") == "Split" and pre.get("pattern") == {"Regex": "\n"}
                                and pre.get("behavior") == "MergedWithPrevious"):
        raise HyperTokError(f"{path}: pre-tokenizer {pre.get('type')}; only HyperTok's cut after each newline "
                            f"(or none) keeps llama.cpp's ids equal")
    added = {int(t["id"]): t for t in data.get("added_tokens", [])}
    n = max([len(model["vocab"]) - 1, *added]) + 1
    tokens, scores, types = [""] * n, [-50.0] * n, [_CONTROL] * n
    unk = model.get("unk_id")
    for i, (piece, score) in enumerate(model["vocab"]):
        if pre is not None and "\n" in piece[:-1]:
            raise HyperTokError(f"{path}: piece {i} {piece!r} holds a newline before its end; HyperTok's cut "
                                f"after each newline never uses it, llama.cpp would")
        tokens[i], scores[i] = piece.replace(" ", SPACE), float(score)
        if i == unk:
            types[i] = _UNKNOWN
        elif i in added and added[i].get("special"):
            types[i] = _CONTROL
        elif model.get("byte_fallback") and _BYTE_PIECE.fullmatch(piece):
            types[i] = _BYTE
        else:
            types[i] = _NORMAL
    for i, t in added.items():
        if i >= len(model["vocab"]):
            tokens[i] = t["content"]
            types[i] = _CONTROL if t.get("special") else _USER_DEFINED
    missing = [i for i, t in enumerate(tokens) if not t]
    if missing:
        raise HyperTokError(f"{path}: ids {missing[:5]} have no piece")
    if len(set(tokens)) != len(tokens):
        raise HyperTokError(f"{path}: two pieces read the same once spaces are written {SPACE!r}; llama.cpp needs "
                            f"unique pieces")
    by_text = {t: i for i, t in enumerate(tokens)}
    ids, add_bos, add_eos = _special_ids(folder, lambda s: by_text.get(s))
    if unk is not None:
        ids.setdefault("unk", int(unk))
    return GGUFVocab("t5", tokens, scores, types, ids, add_bos, add_eos, add_space_prefix=False)


def sentencepiece_vocab(folder: Path) -> GGUFVocab:
    """llama.cpp's SentencePiece vocabulary of the folder's ``tokenizer.model``, as its converter writes it
    (GGUF's token types are SentencePiece's; user-defined pieces hold real spaces, as llama.cpp matches them
    on the raw text)."""
    import struct

    import sentencepiece as spm

    from ..core.protobuf import fields

    path = folder / "tokenizer.model"
    proto = path.read_bytes()
    try:
        sp = spm.SentencePieceProcessor(model_proto=proto)
    except (RuntimeError, OSError) as e:
        raise HyperTokError(f"{path}: not a SentencePiece model ({e})") from None
    tokens, scores, types, prefix = [], [], [], True
    for number, _, _, payload in fields(proto):
        if number == 1:  # ModelProto.pieces: piece 1, score 2, type 3 (NORMAL when absent)
            piece, score, kind = "", 0.0, _NORMAL
            for n, _, _, v in fields(payload):
                if n == 1:
                    piece = v.decode("utf-8")
                elif n == 2:
                    score = struct.unpack("<f", v)[0]
                elif n == 3:
                    kind = v
            tokens.append(piece.replace(SPACE, " ") if kind == _USER_DEFINED else piece)
            scores.append(score)
            types.append(kind)
        elif number == 3:  # NormalizerSpec.add_dummy_prefix (3), true when absent
            prefix = next((bool(v) for n, _, _, v in fields(payload) if n == 3), True)
    ids = {k: i for k, i in (("bos", sp.bos_id()), ("eos", sp.eos_id()), ("unk", sp.unk_id()), ("pad", sp.pad_id()))
           if i >= 0}
    by_text = {t: i for i, t in enumerate(tokens)}
    named, add_bos, add_eos = _special_ids(folder, lambda s: by_text.get(s))
    ids.update(named)
    return GGUFVocab("llama", tokens, scores, types, ids, add_bos, add_eos, add_space_prefix=prefix)


def vocab_of(folder: Path) -> GGUFVocab:
    """The folder's tokenizer as a GGUF vocabulary: ``tokenizer.json`` (Unigram) first, as transformers
    reads it first, else ``tokenizer.model``."""
    if (folder / "tokenizer.json").is_file():
        return unigram_vocab(folder)
    if (folder / "tokenizer.model").is_file():
        return sentencepiece_vocab(folder)
    raise HyperTokError(f"{folder}: no tokenizer.json or tokenizer.model; export-gguf writes the model's tokenizer "
                        f"into the file")


# ----------------------------------------------------------------------------------------
# The weights
# ----------------------------------------------------------------------------------------

def _safetensors_files(folder: Path) -> list[Path]:
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        names = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        return [folder / n for n in names]
    if (folder / "model.safetensors").is_file():
        return [folder / "model.safetensors"]
    raise HyperTokError(f"{folder}: no model.safetensors (or index); export-gguf reads a saved transformers model, "
                        f"e.g. the folder `hypertok merge` writes")


def read_weights(folder: Path):
    """Yield (transformers name, float32 numpy array) of every weight of the folder, one at a time
    (the writer keeps each in its written type: memory is about the size of the file written)."""
    from safetensors import safe_open

    for f in _safetensors_files(folder):
        with safe_open(str(f), framework="pt") as st:
            for name in st.keys():
                yield name, st.get_tensor(name).float().numpy()


def _count_weights(folder: Path) -> int:
    from safetensors import safe_open

    n = 0
    for f in _safetensors_files(folder):
        with safe_open(str(f), framework="pt") as st:
            n += len(list(st.keys()))
    return n


def architecture_for(config: dict) -> type[Architecture]:
    model_type = config.get("model_type")
    for arch in ARCHITECTURES.values():
        if model_type in arch.model_types:
            return arch
    known = ", ".join(t for a in ARCHITECTURES.values() for t in a.model_types)
    raise HyperTokError(f"model_type {model_type!r}; export-gguf writes {known}")


def _tensor_type(name: str, x, quant: str):
    """The GGML type a tensor is written in: 1-D tensors (norms) float32, matrices in ``quant``
    (f16 where a row does not split into the quant's blocks of 32)."""
    gguf = _require_gguf()
    T = gguf.GGMLQuantizationType
    if x.ndim < 2 or quant == "f32":
        return T.F32
    wanted = {"f16": T.F16, "q8_0": T.Q8_0, "q4_0": T.Q4_0, "q4_k_m": T.F16}[quant]
    if wanted in (T.Q8_0, T.Q4_0) and x.shape[-1] % 32:
        return T.F16
    return wanted


_FILE_TYPES = {"f32": "ALL_F32", "f16": "MOSTLY_F16", "q8_0": "MOSTLY_Q8_0", "q4_0": "MOSTLY_Q4_0",
               "q4_k_m": "MOSTLY_Q4_K_M"}


def _write(folder: Path, config: dict, arch: type[Architecture], vocab: GGUFVocab, path: Path, quant: str,
           name: str | None) -> dict:
    """Write the GGUF of ``folder`` (its checked ``config`` and ``vocab``) to ``path`` in ``quant``
    (q4_k_m is written f16 here); return a summary."""
    import numpy as np

    gguf = _require_gguf()
    from tqdm import tqdm

    rows = config["vocab_size"]
    padded = vocab.pad_to(rows)
    w = gguf.GGUFWriter(str(path), arch.name)
    w.add_name(name or folder.name)
    w.add_file_type(getattr(gguf.LlamaFileType, _FILE_TYPES["f16" if quant == "q4_k_m" else quant]))
    arch.write_config(w, config)
    w.add_tokenizer_model(vocab.model)
    w.add_token_list(vocab.tokens)
    w.add_token_scores(vocab.scores)
    w.add_token_types(vocab.types)
    for key, add in (("bos", w.add_bos_token_id), ("eos", w.add_eos_token_id), ("unk", w.add_unk_token_id),
                     ("pad", w.add_pad_token_id)):
        if key in vocab.ids:
            add(vocab.ids[key])
    w.add_add_bos_token(vocab.add_bos)
    w.add_add_eos_token(vocab.add_eos)
    w.add_add_space_prefix(vocab.add_space_prefix)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    if vocab.model == "llama":
        w.add_tokenizer_pre("default")
    if vocab.model == "t5":
        w.add_remove_extra_whitespaces(False)
    tied = bool(config.get("tie_word_embeddings", False))
    types: dict[str, int] = {}
    n = 0
    for hf_name, x in tqdm(read_weights(folder), total=_count_weights(folder), desc="writing", unit="tensor",
                           disable=None):
        if hf_name == "lm_head.weight" and tied:
            continue
        gname = arch.gguf_name(hf_name)
        x = np.ascontiguousarray(arch.to_gguf(gname, x, config), dtype=np.float32)
        if gname == "token_embd.weight" and x.shape[0] != rows:
            raise HyperTokError(f"{folder}: the embedding has {x.shape[0]} rows, config.json says {rows}")
        t = _tensor_type(gname, x, quant)
        if t == gguf.GGMLQuantizationType.F32:
            w.add_tensor(gname, x)
        elif t == gguf.GGMLQuantizationType.F16:
            w.add_tensor(gname, x.astype(np.float16))
        else:
            w.add_tensor(gname, gguf.quants.quantize(x, t), raw_dtype=t)
        types[t.name] = types.get(t.name, 0) + 1
        n += 1
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return {"architecture": arch.name, "tokenizer": vocab.model, "tokens": len(vocab.tokens), "padded_rows": padded,
            "tensors": n, "tensor_types": dict(sorted(types.items()))}


def _llama_quantize(src: Path, dst: Path, quant: str) -> None:
    """llama.cpp's own quantiser (through llama-cpp-python): ``src`` (f16) -> ``dst`` in ``quant``."""
    try:
        import llama_cpp
    except ImportError as e:
        raise HyperTokError(f"--quant {quant} uses llama.cpp's quantiser ({e}); pip install 'hypertok[llamacpp]' "
                            f"(builds llama.cpp), or choose f16, q8_0 or q4_0") from None
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_{_FILE_TYPES[quant]}")
    params.nthread = os.cpu_count() or 1
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), params)
    if rc != 0:
        raise HyperTokError(f"llama.cpp's quantiser failed on {src} (return code {rc})")


def check_gguf(path: Path, summary: dict) -> None:
    """Read the written file back: every tensor and every token where the summary says."""
    gguf = _require_gguf()
    try:
        r = gguf.GGUFReader(path)
    except (ValueError, OSError, IndexError, KeyError) as e:
        raise HyperTokError(f"{path}: the written file does not read back ({e})") from None
    tokens = len(r.fields["tokenizer.ggml.tokens"].data)
    if len(r.tensors) != summary["tensors"] or tokens != summary["tokens"]:
        raise HyperTokError(f"{path}: read back {len(r.tensors)} tensors and {tokens} tokens, wrote "
                            f"{summary['tensors']} and {summary['tokens']}")


def export_gguf(folder: str | os.PathLike, out: str | os.PathLike, quant: str = "f16", force: bool = False,
                name: str | None = None) -> dict:
    """Write the model folder ``folder`` as the GGUF file ``out`` in ``quant``; return a summary.

    ``force``: replace an existing ``out``. The file appears only once complete and read back.
    """
    if quant not in QUANTS:
        raise HyperTokError(f"--quant {quant!r}: choose one of {', '.join(QUANTS)}")
    folder = check_base_path(folder)  # config.json present and JSON, every safetensors header sound
    config = read_json(folder / "config.json")
    arch = architecture_for(config)
    if not isinstance(config.get("vocab_size"), int):
        raise HyperTokError(f"{folder / 'config.json'}: vocab_size {config.get('vocab_size')!r}, not an integer")
    _safetensors_files(folder)
    vocab = vocab_of(folder)  # read once, here, before OUT is touched
    out = check_out(out, flag="OUT", kind="file")
    if out.exists() and not force:
        raise HyperTokError(f"{out} exists; pass --force to replace it")
    if out.exists() and not _is_gguf(out):
        raise HyperTokError(f"{out}: already there and not a GGUF file; --force replaces only a GGUF file. "
                            f"Choose another OUT")
    clean_leftovers(out)
    tmp = leftover_name(out, "part")
    try:
        if quant == "q4_k_m":
            with tempfile.TemporaryDirectory(dir=out.parent) as d:
                f16 = Path(d) / "f16.gguf"
                summary = _write(folder, config, arch, vocab, f16, "f16", name)
                _llama_quantize(f16, tmp, quant)
            summary["tensor_types"] = _types_in(tmp)
        else:
            summary = _write(folder, config, arch, vocab, tmp, quant, name)
        check_gguf(tmp, summary)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    summary.update(format=EXPORT_FORMAT, quant=quant, out=str(out), bytes=out.stat().st_size)
    return summary


def _is_gguf(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"GGUF"


def _types_in(path: Path) -> dict[str, int]:
    gguf = _require_gguf()
    counts: dict[str, int] = {}
    for t in gguf.GGUFReader(path).tensors:
        counts[t.tensor_type.name] = counts.get(t.tensor_type.name, 0) + 1
    return dict(sorted(counts.items()))


# ----------------------------------------------------------------------------------------
# hypertok export-gguf
# ----------------------------------------------------------------------------------------

def configure(p: argparse.ArgumentParser) -> None:
    from ..options import HelpFormatter

    p.formatter_class = HelpFormatter
    p.description = (
        "Write a transformers model folder (a merged HyperTok model from `hypertok merge`, or a base from "
        "`hypertok import`) as one GGUF file that llama.cpp, Ollama, LM Studio and llama-cpp-python run. "
        "Architectures: " + ", ".join(t for a in ARCHITECTURES.values() for t in a.model_types) + ". "
        "The tokenizer goes into the file: a HyperTok (Unigram) tokenizer.json as llama.cpp's Unigram tokenizer "
        "(t5/UGM: the same Viterbi over the same scores, so the same ids, except on characters no piece spells: "
        "llama.cpp's UGM has no byte fallback and reads them as <unk>), a SentencePiece tokenizer.model as llama.cpp's "
        "SentencePiece one. The character U+2581 is read as a space by llama.cpp. Byte-level BPE tokenizers (Llama 3, "
        "Tekken) cannot be written. Needs the gguf "
        "package (the train extra); --quant q4_k_m needs llama-cpp-python (the llamacpp extra).")
    p.epilog = ("example: hypertok merge --base models/gemma3-270m --adapter ad64k --out merged64k; "
                "hypertok export-gguf merged64k merged64k-q8_0.gguf --quant q8_0; "
                "python -c \"import llama_cpp; m = llama_cpp.Llama('merged64k-q8_0.gguf'); "
                "print(m('Москва —', max_tokens=20))\"")
    p.add_argument("model", help="a transformers model folder: config.json, model.safetensors, tokenizer files")
    p.add_argument("out", help="the .gguf file to write (atomically)")
    p.add_argument("--quant", choices=QUANTS, default="f16",
                   help="type of the weight matrices (norms stay f32): f32, f16, q8_0 and q4_0 by the gguf "
                        "package; q4_k_m by llama.cpp's own quantiser (needs llama-cpp-python)")
    p.add_argument("--name", default=None, help="general.name in the file (default: the folder's name)")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")


def run(args: argparse.Namespace) -> int:
    summary = export_gguf(args.model, args.out, quant=args.quant, force=args.force, name=args.name)
    print(json.dumps(summary, ensure_ascii=False))
    return 0
