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
from ..files import atomic_file, atomic_write, check_out, made_dirs
from ..loss import IGNORE_INDEX
from ..text import iter_text

PACKED_FORMAT = "hypertok-packed"
PACKED_VERSION = 1
_DOC_SEP = "\n\n"
_BLOCK_CHARS = 1 << 20
_BATCH_CHARS = 1 << 22  # prepare encodes at most ~4M characters at a time


# ----------------------------------------------------------------------------------------
# Documents
# ----------------------------------------------------------------------------------------

def iter_document_parts(path: str | os.PathLike, part_chars: int | None = None) -> Iterator[tuple[str, bool]]:
    """``(piece, last)`` for the non-blank documents of one UTF-8 file, streamed.

    Documents are exactly the pieces of ``text.split("\\n\\n")`` that hold more than
    whitespace. A document longer than ``part_chars`` (default ``_BLOCK_CHARS``) comes in
    pieces cut right after a newline, ``last`` marking its end, so memory is bounded by
    ``part_chars`` plus the longest line, never by the document or the file (issue 13).

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "t.txt"; _ = f.write_text("a\\nb\\nc\\n\\n\\nd")
    >>> list(iter_document_parts(f, part_chars=2))
    [('a\\n', False), ('b\\n', False), ('c', True), ('\\nd', True)]
    """
    part = _BLOCK_CHARS if part_chars is None else part_chars
    started = False  # a piece of the current document has been yielded
    carry = ""  # the current document's text not yielded yet; never holds "\n\n"
    for block in iter_text(path, block=max(1, part)):
        *done, carry = (carry + block).split(_DOC_SEP)
        for d in done:
            if started or d.strip():
                yield d, True
            started = False
        if len(carry) > part and (started or carry.strip()):
            # cut after a newline that is not the last character: the separator of the next
            # document cannot straddle the cut, since carry holds no "\n\n"
            k = carry.rfind("\n", 0, len(carry) - 1) + 1
            if k > 0:
                yield carry[:k], False
                started, carry = True, carry[k:]
    if started or carry.strip():
        yield carry, True


def iter_documents(path: str | os.PathLike) -> Iterator[str]:
    """The non-blank documents of one UTF-8 file, streamed: exactly the pieces of
    ``text.split("\\n\\n")`` that hold more than whitespace (each one whole)."""
    buf: list[str] = []
    for piece, last in iter_document_parts(path):
        buf.append(piece)
        if last:
            yield "".join(buf)
            buf = []


def _check_paths(paths: list[str], what: str) -> None:
    if not paths:
        raise HyperTokError(f"{what}: no files given")
    for path in paths:
        if not Path(path).is_file():
            raise HyperTokError(f"{what} {path}: no such file")


def _document_parts(paths: list[str], max_chars: int = 0, what: str = "--train") -> Iterator[tuple[str, bool]]:
    """``(piece, last)`` of the documents of every file, up to the document that reaches ``max_chars``."""
    _check_paths(paths, what)
    total = 0
    for path in paths:
        for piece, last in iter_document_parts(path):
            yield piece, last
            total += len(piece)
            if last and max_chars and total >= max_chars:
                return


def _documents(paths: list[str], max_chars: int = 0, what: str = "--train") -> Iterator[str]:
    _check_paths(paths, what)
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


def rows_of(stream, seq_len: int, bos: int, idx, pad: int | None = None, bos_first: bool = False):
    """Inputs, positions and labels (each ``(len(idx), seq_len)`` int64) of rows ``idx`` of a
    packed stream (an array or a memory map).

    Row r is ``stream[r*T : r*T+T]`` predicting ``stream[r*T+1 : r*T+T+1]``. Positions restart
    at every ``<s>`` (and at the row start), so attention never crosses a document boundary;
    a ``<s>`` target (predicting the next document from the last) is ignored (-100).
    The last, partial row is padded with ignored labels.

    ``bos_first`` (issue 21): every row starts with ``<s>``, as every sequence a model reads
    at inference does; Gemma scores rows that start mid-document without it far worse (2.09
    against 1.70 bits/char). Row r then holds ``S = T - 1`` stream tokens after its ``<s>``,
    ``stream[r*S : r*S+S]``, and predicts ``stream[r*S+1 : r*S+S+1]`` (the prediction from the
    added ``<s>`` is ignored), so every target of the stream is still predicted exactly once.

    >>> X, P, Y = rows_of(pack([[5, 6], [7]], 1, 2), 6, 1, [0])
    >>> P.tolist(), Y.tolist()
    ([[0, 1, 2, 3, 0, 1]], [[5, 6, 2, -100, 7, 2]])
    >>> X, P, Y = rows_of(pack([[5, 6, 7, 8]], 1, 2), 3, 1, [1], bos_first=True)
    >>> X.tolist(), Y.tolist()
    ([[1, 6, 7]], [[-100, 7, 8]])
    """
    import numpy as np

    T = seq_len
    S = T - 1 if bos_first else T  # stream tokens per row
    X = np.full((len(idx), T), bos if pad is None else pad, dtype=np.int64)  # (B, T)
    Y = np.full((len(idx), T), IGNORE_INDEX, dtype=np.int64)  # (B, T)
    lead = 1 if bos_first else 0
    for j, r in enumerate(idx):
        x = stream[r * S: r * S + S]
        y = stream[r * S + 1: r * S + S + 1]
        if bos_first:
            X[j, 0] = bos
        X[j, lead:lead + len(x)] = x
        Y[j, lead:lead + len(y)] = y
    Y[Y == bos] = IGNORE_INDEX
    starts = (X == bos)
    starts[:, 0] = True
    ar = np.broadcast_to(np.arange(T), X.shape)
    seg_start = np.maximum.accumulate(np.where(starts, ar, 0), axis=1)
    P = ar - seg_start  # (B, T)
    return X, P, Y


def target_rows(stream, seq_len: int, bos: int, idx, bos_first: bool = False):
    """Rows ``idx`` of :func:`rows_of` with their last target, ``(len(idx), seq_len + 1)`` int64: ``X``
    plus one token (the distiller's view, :func:`hypertok.adapt.distill.teacher_rows`). Full rows only
    (:func:`n_rows`).

    >>> target_rows(pack([[5, 6, 7, 8]], 1, 2), 3, 1, [1], bos_first=True).tolist()
    [[1, 6, 7, 8]]
    """
    import numpy as np

    S = seq_len - 1 if bos_first else seq_len
    lead = np.asarray([bos] if bos_first else [], dtype=np.int64)
    return np.stack([np.concatenate([lead, np.asarray(stream[r * S: r * S + S + 1], dtype=np.int64)]) for r in idx])


def n_rows(stream, seq_len: int, full_only: bool = True, bos_first: bool = False) -> int:
    """Rows of ``seq_len`` targets (``seq_len - 1`` with ``bos_first``) in a stream: full rows
    only, or with the last partial one."""
    n = len(stream) - 1
    S = seq_len - 1 if bos_first else seq_len
    if S < 1:
        raise HyperTokError(f"--seq-len {seq_len} leaves no room for text after the row's <s>; give at least 2")
    return n // S if full_only else -(-n // S)


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
    if getattr(tok, "hf", None) is not None:  # the model's tokenizer.json: the segmentation itself (issue 11)
        h.update(b"model\0" + hashlib.sha256(tok.model_json().encode()).hexdigest().encode())
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
            batch: int = 2048, force: bool = True) -> PackedMeta:
    """Encode the documents of ``paths`` and write the packed stream to ``out.bin`` / ``out.json``.

    Streamed: documents are read and encoded ``batch`` at a time (at most about 4M
    characters) and appended as np.uint32, so memory does not grow with the input (issue
    13); the result equals ``pack(encode_docs(tok, read_documents(paths, max_chars)), tok.bos,
    tok.eos)``, except that a document longer than 1M characters is encoded in pieces cut
    after a newline (the same ids for HyperTok, whose encoding is line-independent; an
    ``extend`` base may spell a run across the cut differently, still losslessly).
    Both files are written to temporary names and renamed in, the ``.json`` last, and an old
    ``.json`` is removed before the new ``.bin`` goes in: a run killed between the two renames
    leaves a stream without its record, which :func:`open_packed` refuses (issue 24, item 5),
    and a run that fails before it leaves the old pair whole. An existing
    pair is replaced only with ``force`` and only when ``hypertok prepare`` wrote it
    (:func:`check_prepare_out`).
    """
    bin_path, meta_path = check_prepare_out(out, force)
    with made_dirs(bin_path.parent):
        return _prepare(tok, paths, bin_path, meta_path, max_chars, what, batch)


def _prepare(tok, paths, bin_path: Path, meta_path: Path, max_chars: int, what: str, batch: int) -> PackedMeta:
    import numpy as np

    meta = PackedMeta(tokenizer_hash(tok), sources=[str(p) for p in paths], max_chars=max_chars)

    def flush(f, parts: list[tuple[str, bool, bool]]) -> None:
        ids = tok.encode_batch([p for p, _, _ in parts])
        stream = []
        for x, (piece, first, last) in zip(ids, parts):
            stream.extend([tok.bos] * first + x + [tok.eos] * last)
            meta.documents += last
            meta.content_tokens += len(x)
            meta.chars += len(piece)
            meta.bytes += len(piece.encode("utf-8", "surrogatepass"))
        f.write(np.asarray(stream, dtype=np.uint32).tobytes())
        meta.tokens += len(stream)

    with atomic_file(bin_path) as tmp, open(tmp, "wb") as f:
        parts: list[tuple[str, bool, bool]] = []
        chars = 0
        first = True
        for piece, last in _document_parts(paths, max_chars, what):
            parts.append((piece, first, last))
            chars += len(piece)
            first = last
            if len(parts) == batch or chars >= _BATCH_CHARS:
                flush(f, parts)
                parts, chars = [], 0
        if parts:
            flush(f, parts)
        if not meta.documents:
            raise _empty(paths, what)
        meta_path.unlink(missing_ok=True)  # the old record goes before the new stream replaces the old one
    atomic_write(meta_path, meta.to_json())
    return meta


def is_prepared(meta_path: str | os.PathLike) -> bool:
    """True for an ``OUT.json`` that ``hypertok prepare`` wrote (its format record)."""
    try:
        d = json.loads(Path(meta_path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(d, dict) and d.get("format") == PACKED_FORMAT


def check_prepare_out(out: str | os.PathLike, force: bool = False) -> tuple[Path, Path]:
    """``(OUT.bin, OUT.json)`` of a prepare prefix, checked before any work.

    An existing ``OUT.bin`` or ``OUT.json`` is replaced only with ``force`` (``prepare --force``;
    ``adapt`` passes it for its own ``data/``), and only when ``OUT.json`` is a record
    ``hypertok prepare`` wrote, as ``build --force`` and ``merge --force`` do: a user's file of
    that name is never overwritten (issue 24).
    """
    bin_path, meta_path = _bin_and_meta(out)
    for p in (bin_path, meta_path):
        check_out(p, "--out", kind="file")
    there = " and ".join(str(p) for p in (bin_path, meta_path) if os.path.lexists(p))
    if there and not is_prepared(meta_path):
        raise HyperTokError(f"{there}: already there and not written by `hypertok prepare`"
                            f"{'; --force replaces only prepared data' if force else ''}; choose another --out")
    if there and not force:
        raise HyperTokError(f"{there}: already there (prepared data); pass --force to replace "
                            f"{'them' if ' and ' in there else 'it'}, or choose another --out")
    return bin_path, meta_path


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
    except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise HyperTokError(f"{meta_path}: unreadable ({e}); re-run `hypertok prepare`") from None
    if not isinstance(d, dict) or d.pop("format", None) != PACKED_FORMAT or d.pop("version", None) != PACKED_VERSION:
        raise HyperTokError(f"{meta_path}: not {PACKED_FORMAT!r} version {PACKED_VERSION}; re-run `hypertok prepare`")
    try:
        meta = PackedMeta(**d)
    except TypeError as e:
        raise HyperTokError(f"{meta_path}: not a record of `hypertok prepare` ({e}); re-run it") from None
    counts = ("documents", "tokens", "content_tokens", "chars", "bytes", "max_chars")
    wrong = [k for k in counts if type(getattr(meta, k)) is not int or getattr(meta, k) < 0]
    if wrong or not isinstance(meta.tokenizer, str):
        raise HyperTokError(f"{meta_path}: {', '.join(wrong) or 'tokenizer'} of the wrong type; re-run "
                            f"`hypertok prepare`")
    if tok is not None and meta.tokenizer != tokenizer_hash(tok):
        raise HyperTokError(f"{bin_path} was prepared with another tokenizer or recipe (hash {meta.tokenizer}, "
                            f"now {tokenizer_hash(tok)}); re-run `hypertok prepare` with this --tokenizer, "
                            f"--base and --strategy")
    size = bin_path.stat().st_size
    if size != 4 * meta.tokens:
        raise HyperTokError(f"{bin_path}: {size} bytes, but {meta_path.name} says {meta.tokens} uint32 tokens; "
                            f"re-run `hypertok prepare`")
    stream = np.memmap(bin_path, dtype=np.uint32, mode="r", shape=(meta.tokens,))
    if tok is not None and meta.tokens and int(stream.max()) >= len(tok):  # one pass, ~GB/s (issue 24)
        raise HyperTokError(f"{bin_path}: holds id {int(stream.max())}, past the {len(tok)} rows of the model; "
                            f"the file is damaged or crafted, re-run `hypertok prepare`")
    return stream, meta
