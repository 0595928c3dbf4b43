"""Training data for adaptation: documents, packing, and packed token arrays on disk.

What it does (issue 5, reorganised in issue 9):

- documents are the blocks of a text file separated by a blank line (``\\n\\n``), read
  streamed (:func:`iter_documents`), so memory does not grow with the corpus;
- packing puts every document as ``<s> doc </s>`` into one token stream; a training row is
  ``seq_len`` tokens of it (:func:`rows_of`). Positions restart at every ``<s>``, so
  documents in one row never attend to each other, and the ``<s>`` target (predicting the
  next document from the last) is ignored;
- :func:`prepare` (``hypertok prepare``) writes that stream once, encoded in batches, as
  ``NAME.bin`` (``np.uint32`` ids, appended as the documents are read) with ``NAME.json``
  (the tokenizer's hash, documents, tokens, characters, bytes, sources);
  :func:`open_packed` maps it back with ``np.memmap`` and refuses a file made with another
  tokenizer. The trainer reads rows straight from the map.

What it does not do: no shuffling of documents (rows are drawn in a seeded order by the
trainer), no deduplication, no text normalisation, no torch. numpy only.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import HyperTokError
from ..files import atomic_file, atomic_write

PACKED_FORMAT = "hypertok-packed"
PACKED_VERSION = 1
IGNORE = -100
_DOC_SEP = "\n\n"
_BLOCK_CHARS = 1 << 20


# ----------------------------------------------------------------------------------------
# Documents
# ----------------------------------------------------------------------------------------

def iter_documents(path: str | os.PathLike) -> Iterator[str]:
    """The non-blank documents of one UTF-8 file, streamed: exactly the pieces of
    ``text.split("\\n\\n")`` that hold more than whitespace, with the file read in blocks."""
    from ..builder.corpus import Corpus

    buf: list[str] = []
    size = 0
    carry = ""
    for line in Corpus([path]):
        buf.append(line)
        size += len(line)
        if size >= _BLOCK_CHARS:
            *done, carry = (carry + "".join(buf)).split(_DOC_SEP)
            yield from (d for d in done if d.strip())
            buf, size = [], 0
    for d in (carry + "".join(buf)).split(_DOC_SEP):
        if d.strip():
            yield d


def _documents(paths: list[str], max_chars: int = 0, what: str = "--train") -> Iterator[str]:
    if not paths:
        raise HyperTokError(f"{what}: no files given")
    for path in paths:
        if not Path(path).is_file():
            raise HyperTokError(f"{what} {path}: no such file")
    total = 0
    for path in paths:
        for d in iter_documents(path):
            yield d
            total += len(d)
            if max_chars and total >= max_chars:
                return


def _empty(paths, what: str) -> HyperTokError:
    return HyperTokError(f"{what} {', '.join(map(str, paths))}: the text is empty (only whitespace); "
                         f"give a UTF-8 file with some text")


def read_documents(paths: list[str], max_chars: int = 0, what: str = "--train") -> list[str]:
    """Documents of the text files: blocks separated by a blank line (``\\n\\n``); with
    ``max_chars``, documents up to the one that reaches that many characters.

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "t.txt"; _ = f.write_text("a b\\nc\\n\\nd\\n")
    >>> read_documents([str(f)])
    ['a b\\nc', 'd\\n']
    """
    docs = list(_documents(paths, max_chars, what))
    if not docs:
        raise _empty(paths, what)
    return docs


def encode_docs(tok, docs: list[str], batch: int = 2048) -> list[list[int]]:
    """``tok.encode_batch`` over ``docs``, ``batch`` documents at a time (no BOS/EOS)."""
    out: list[list[int]] = []
    for s in range(0, len(docs), batch):
        out.extend(tok.encode_batch(docs[s:s + batch]))
    return out


# ----------------------------------------------------------------------------------------
# Packing and rows
# ----------------------------------------------------------------------------------------

def pack(docs_ids: list[list[int]], bos: int, eos: int):
    """One token stream ``<s> doc </s> <s> doc </s> ...`` (numpy int64).

    >>> pack([[5, 6], [7]], bos=1, eos=2).tolist()
    [1, 5, 6, 2, 1, 7, 2]
    """
    import numpy as np

    parts = [np.asarray([bos, *ids, eos], dtype=np.int64) for ids in docs_ids]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def rows_of(stream, seq_len: int, bos: int, idx, pad: int | None = None):
    """Inputs, positions and labels (each ``(len(idx), seq_len)`` int64) of rows ``idx`` of a
    packed stream (an array or a memory map).

    Row r is ``stream[r*T : r*T+T]`` predicting ``stream[r*T+1 : r*T+T+1]``. Positions restart
    at every ``<s>`` (and at the row start), so attention never crosses a document boundary;
    a ``<s>`` target (predicting the next document from the last) is ignored (-100).
    The last, partial row is padded with ignored labels.

    >>> X, P, Y = rows_of(pack([[5, 6], [7]], 1, 2), 6, 1, [0])
    >>> P.tolist(), Y.tolist()
    ([[0, 1, 2, 3, 0, 1]], [[5, 6, 2, -100, 7, 2]])
    """
    import numpy as np

    T = seq_len
    X = np.full((len(idx), T), bos if pad is None else pad, dtype=np.int64)  # (B, T)
    Y = np.full((len(idx), T), IGNORE, dtype=np.int64)  # (B, T)
    for j, r in enumerate(idx):
        x = stream[r * T: r * T + T]
        y = stream[r * T + 1: r * T + T + 1]
        X[j, :len(x)] = x
        Y[j, :len(y)] = y
    Y[Y == bos] = IGNORE
    starts = (X == bos)
    starts[:, 0] = True
    ar = np.broadcast_to(np.arange(T), X.shape)
    seg_start = np.maximum.accumulate(np.where(starts, ar, 0), axis=1)
    P = ar - seg_start  # (B, T)
    return X, P, Y


def n_rows(stream, seq_len: int, full_only: bool = True) -> int:
    """Rows of ``seq_len`` targets in a stream: full rows only, or with the last partial one."""
    n = len(stream) - 1
    return n // seq_len if full_only else -(-n // seq_len)


# ----------------------------------------------------------------------------------------
# Packed token arrays on disk (`hypertok prepare`)
# ----------------------------------------------------------------------------------------

def tokenizer_hash(tok) -> str:
    """Identity of the text -> model ids mapping of an adapted tokenizer: its recipe's
    mapping and the bytes of the tokenizer files it reads (16 hex digits)."""
    import tempfile

    from ..files import sha256_file

    r = tok.recipe
    h = hashlib.sha256(json.dumps([r.strategy, r.base_vocab_size, r.model_vocab_size, r.new_to_model,
                                   r.bos, r.eos, r.pad]).encode())
    with tempfile.TemporaryDirectory() as d:
        if tok.new is not None:
            tok.new.copy_to(Path(d))
            for f in sorted(Path(d).iterdir()):
                h.update(f.name.encode() + b"\0" + sha256_file(f).encode())
    if tok.base is not None:  # the base SentencePiece model, whatever its file is called
        h.update(b"base\0" + sha256_file(tok.base.path).encode())
    return h.hexdigest()[:16]


@dataclass
class PackedMeta:
    """What ``NAME.json`` says about ``NAME.bin``."""

    tokenizer: str
    documents: int = 0
    tokens: int = 0           # length of the stream (with <s> and </s>)
    content_tokens: int = 0   # document tokens only
    chars: int = 0
    bytes: int = 0
    sources: list[str] = field(default_factory=list)
    max_chars: int = 0
    dtype: str = "uint32"

    def to_json(self) -> str:
        return json.dumps({"format": PACKED_FORMAT, "version": PACKED_VERSION, **asdict(self)},
                          indent=1, sort_keys=True)


def _bin_and_meta(path: str | os.PathLike) -> tuple[Path, Path]:
    p = Path(path)
    p = p.with_suffix("") if p.suffix in (".bin", ".json") else p
    return p.with_name(p.name + ".bin"), p.with_name(p.name + ".json")


def prepare(tok, paths: list[str], out: str | os.PathLike, max_chars: int = 0, what: str = "--train",
            batch: int = 2048) -> PackedMeta:
    """Encode the documents of ``paths`` and write the packed stream to ``out.bin`` / ``out.json``.

    Streamed: documents are read and encoded ``batch`` at a time and appended as np.uint32;
    the result equals ``pack(encode_docs(tok, read_documents(paths, max_chars)), tok.bos, tok.eos)``.
    Both files are written to temporary names and renamed in, the ``.json`` last.
    """
    import numpy as np

    bin_path, meta_path = _bin_and_meta(out)
    bin_path.parent.mkdir(parents=True, exist_ok=True)
    meta = PackedMeta(tokenizer_hash(tok), sources=[str(p) for p in paths], max_chars=max_chars)

    def flush(f, docs: list[str]) -> None:
        ids = tok.encode_batch(docs)
        parts = [np.asarray([tok.bos, *x, tok.eos], dtype=np.uint32) for x in ids]
        f.write(np.concatenate(parts).tobytes())
        meta.documents += len(docs)
        meta.content_tokens += sum(map(len, ids))
        meta.tokens += sum(map(len, parts))
        meta.chars += sum(map(len, docs))
        meta.bytes += sum(len(d.encode("utf-8")) for d in docs)

    with atomic_file(bin_path) as tmp, open(tmp, "wb") as f:
        docs: list[str] = []
        for d in _documents(paths, max_chars, what):
            docs.append(d)
            if len(docs) == batch:
                flush(f, docs)
                docs = []
        if docs:
            flush(f, docs)
        if not meta.documents:
            raise _empty(paths, what)
    atomic_write(meta_path, meta.to_json())
    return meta


def open_packed(path: str | os.PathLike, tok=None):
    """(read-only ``np.memmap`` of uint32 ids, ``PackedMeta``) of a prepared ``NAME.bin``.

    With ``tok``, a file prepared with another tokenizer (or recipe) is refused.
    """
    import numpy as np

    bin_path, meta_path = _bin_and_meta(path)
    if not bin_path.is_file() or not meta_path.is_file():
        raise HyperTokError(f"{bin_path}: no packed data here (needs {bin_path.name} and {meta_path.name}); "
                            f"write it with `hypertok prepare`")
    try:
        d = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise HyperTokError(f"{meta_path}: unreadable ({e}); re-run `hypertok prepare`") from None
    if d.pop("format", None) != PACKED_FORMAT or d.pop("version", None) != PACKED_VERSION:
        raise HyperTokError(f"{meta_path}: not {PACKED_FORMAT!r} version {PACKED_VERSION}; re-run `hypertok prepare`")
    meta = PackedMeta(**d)
    if tok is not None and meta.tokenizer != tokenizer_hash(tok):
        raise HyperTokError(f"{bin_path} was prepared with another tokenizer or recipe (hash {meta.tokenizer}, "
                            f"now {tokenizer_hash(tok)}); re-run `hypertok prepare` with this --tokenizer, "
                            f"--base and --strategy")
    size = bin_path.stat().st_size
    if size != 4 * meta.tokens:
        raise HyperTokError(f"{bin_path}: {size} bytes, but {meta_path.name} says {meta.tokens} uint32 tokens; "
                            f"re-run `hypertok prepare`")
    return np.memmap(bin_path, dtype=np.uint32, mode="r", shape=(meta.tokens,)), meta
