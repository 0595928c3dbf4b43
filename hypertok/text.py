"""Text: the one home of reading text, below the builder, the registry and everything else.

Every reader of a corpus, a text or a token file goes through here (issue 23; ``tiktoken/load.py``
is the model): :func:`open_bytes` streams ``.xz``, ``.gz`` and ``.zst`` files decompressed (issue
12), :func:`iter_text` decodes strictly in blocks cut after a newline, :func:`iter_lines` gives
lines, :func:`read_text` a whole file, and :func:`expand_paths` turns files and folders into
the list of text files. A byte that does not decode is one error naming the file, the line and
the byte offset (:func:`decode_error`); an encoding that cannot read lines is refused before
any reading (:func:`check_encoding`).

What it does not do: no normalisation (a file is read exactly as written), no guessing of
encodings.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "a.txt").write_text("да\\nнет")
>>> list(iter_lines([d / "a.txt"]))
['да\\n', 'нет']
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from .errors import HyperTokError

_BLOCK = 1 << 20
TEXT_SUFFIXES = {".txt", ".text", ".md", ""}


def check_encoding(encoding: str) -> None:
    """Raise ``HyperTokError`` for an encoding that cannot read a text file line by line:
    unknown names, codecs that are not text encodings (``rot13``, ``base64``), and
    encodings whose newline is not the byte ``\\n`` (``utf-16``, ``utf-32``).

    >>> check_encoding("cp1251")
    >>> check_encoding("utf-16")
    Traceback (most recent call last):
    ...
    hypertok.errors.HyperTokError: --encoding 'utf-16' is not supported: a newline is not the byte \\n in it; convert the file to UTF-8 (iconv -f utf-16 -t utf-8)
    """
    try:
        info = codecs.lookup(encoding)
    except (LookupError, TypeError, ValueError):
        raise HyperTokError(f"unknown --encoding {encoding!r}; try utf-8 or cp1251") from None
    if not getattr(info, "_is_text_encoding", True):
        raise HyperTokError(f"--encoding {encoding!r} is not a text encoding; try utf-8 or cp1251")
    try:
        enc = codecs.getincrementalencoder(encoding)()
        enc.encode("a")  # past any byte-order mark (utf-8-sig is fine)
        newline_ok = enc.encode("\n") == b"\n"
    except (UnicodeError, LookupError, TypeError):
        newline_ok = False
    if not newline_ok:
        raise HyperTokError(f"--encoding {encoding!r} is not supported: a newline is not the byte \\n in it; "
                            f"convert the file to UTF-8 (iconv -f {encoding} -t utf-8)")


def _decode_message(path, line: int, offset: int, byte: bytes, encoding: str, flag: str | None) -> HyperTokError:
    todo = (f"pass {flag} (e.g. cp1251) or convert the file to UTF-8" if flag else
            "convert the file to UTF-8 first (e.g. iconv -f cp1251 -t utf-8 FILE > FILE.utf8)")
    return HyperTokError(f"{path}: not valid {encoding} at line {line}, byte offset {offset} (byte {byte!r}); {todo}")


def decode_error(path: str | os.PathLike, head: bytes, offset: int, encoding: str,
                 flag: str | None = None) -> HyperTokError:
    """The error for undecodable input: file, line, byte offset, the byte, and what to do.

    ``head`` holds the file's bytes up to at least ``offset``. ``flag`` names the option that
    sets the encoding (``"--encoding"`` for ``hypertok build``, ``"encoding="`` in Python); the
    message offers it only when the reader has one (issue 24: ``encode`` has no ``--encoding``).

    >>> print(decode_error("a.txt", b"ok\\n\\xff", 3, "utf-8", flag="--encoding"))
    a.txt: not valid utf-8 at line 2, byte offset 3 (byte b'\\xff'); pass --encoding (e.g. cp1251) or convert the file to UTF-8
    """
    return _decode_message(path, head.count(b"\n", 0, offset) + 1, offset, head[offset:offset + 1], encoding, flag)


def _text_file(path: str | os.PathLike) -> Path:
    p = Path(path)
    if p.is_dir():
        raise HyperTokError(f"{p}: is a folder; give a text file")
    if not p.is_file():
        raise HyperTokError(f"{p}: no such file or folder")
    return p


def iter_text(path: str | os.PathLike | None = None, encoding: str = "utf-8", block: int = _BLOCK,
              flag: str | None = None, raw: Callable[[bytes], object] | None = None) -> Iterator[str]:
    """A text file (standard input for ``None`` or ``"-"``) in pieces that end right after a
    newline (the last piece may not), decoded strictly, in memory bounded by ``block`` plus
    the longest line.

    Standard input is held to the same rule as a file: bytes that are not valid UTF-8 are an
    error naming the line and byte offset, never smuggled through as surrogate escapes.
    ``flag``: the option that sets ``encoding``, offered by the error (:func:`decode_error`).
    ``raw``: called with each block of bytes as read (decompressed), e.g. to hash the file.

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "t.txt"; _ = f.write_bytes("да\\nнет\\nок".encode())
    >>> list(iter_text(f, block=4))
    ['да\\n', 'нет\\n', 'ок']
    >>> _ = f.write_bytes(b"ok\\n\\xff")
    >>> list(iter_text(f))
    Traceback (most recent call last):
    ...
    hypertok.errors.HyperTokError: ...: not valid utf-8 at line 2, byte offset 3 (byte b'\\xff'); convert the file to UTF-8 first (e.g. iconv -f cp1251 -t utf-8 FILE > FILE.utf8)
    """
    import sys

    check_encoding(encoding)
    if path is None or str(path) == "-":
        name, f, close = "standard input", sys.stdin.buffer, False
    else:
        p = _text_file(path)
        name, f, close = p, open_bytes(p), True
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    offset = newlines = 0
    carry = ""
    try:
        while True:
            data = f.read(block)
            final = not data
            if raw is not None and data:
                raw(data)
            pending = decoder.getstate()[0]
            try:
                text = decoder.decode(data, final=final)
            except UnicodeDecodeError as e:
                both = pending + data
                line = newlines + both.count(b"\n", 0, e.start) + 1
                raise _decode_message(name, line, offset - len(pending) + e.start, both[e.start:e.start + 1],
                                      encoding, flag) from None
            offset += len(data)
            newlines += data.count(b"\n")
            text = carry + text
            if final:
                if text:
                    yield text
                return
            cut = text.rfind("\n") + 1
            carry = text[cut:]
            if cut:
                yield text[:cut]
    finally:
        if close:
            f.close()


def lines_of(pieces: Iterable[str]) -> Iterator[str]:
    """The lines of :func:`iter_text`'s pieces, each with its ``\\n`` (the last one may have none).

    >>> list(lines_of(["a\\nb\\n", "c"]))
    ['a\\n', 'b\\n', 'c']
    """
    for piece in pieces:
        parts = piece.split("\n")
        for line in parts[:-1]:
            yield line + "\n"
        if parts[-1]:
            yield parts[-1]


def iter_lines(paths: Iterable[str | os.PathLike], encoding: str = "utf-8", flag: str | None = None
               ) -> Iterator[str]:
    """The lines of the files (and of the text files under folders, :func:`expand_paths`) one after
    another, each with its ``\\n`` (a file's last line may have none), decoded strictly (:func:`iter_text`)."""
    for path in expand_paths(paths):
        yield from lines_of(iter_text(path, encoding, flag=flag))


def expand_paths(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files named directly, plus the text files under named folders (sorted).

    >>> expand_paths([])
    []
    """
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and plain_suffix(f) in TEXT_SUFFIXES)
            if not found:
                raise HyperTokError(f"{p}: folder holds no text files (*.txt, *.md, or no suffix; "
                                    "optionally .xz, .gz or .zst)")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise HyperTokError(f"{p}: no such file or folder")
    return out


# The default build corpus (issue 12): modern Russian (IT documentation, news, everyday
# sentences) plus 19th-century prose, so a vocabulary fits neither register alone. Paths are
# relative to the shared corpora folder (``corpora_root``); ``--corpus default`` names them.
DEFAULT_CORPUS = ("modern/ru-modern-train-*.txt.xz", "ruslit/train.txt")
NAVEC = "navec"  # ``--corpus navec``: the offline navec word list (``hypertok demo``)


def corpora_root() -> Path | None:
    """The shared corpora folder: ``$HYPERTOK_CORPORA``, else ``shared/corpora`` or
    ``../shared/corpora`` from the current folder or from this source tree; ``None`` if absent."""
    env = os.environ.get("HYPERTOK_CORPORA")
    if env:
        return Path(env) if Path(env).is_dir() else None
    here = Path(__file__).resolve().parents[1]  # the checkout holding hypertok/
    for base in (Path.cwd(), Path.cwd().parent, here, here.parent):
        cand = base / "shared" / "corpora"
        if cand.is_dir():
            return cand
    return None


def default_corpus() -> list[Path]:
    """The files of :data:`DEFAULT_CORPUS`, or a ``HyperTokError`` saying where it looked."""
    root = corpora_root()
    found: list[Path] = []
    missing = []
    for pattern in DEFAULT_CORPUS:
        hits = sorted(root.glob(pattern)) if root else []
        found += hits
        if not hits:
            missing.append(pattern)
    if missing:
        where = str(root) if root else "$HYPERTOK_CORPORA, ./shared/corpora or ../shared/corpora"
        raise HyperTokError(
            f"the default corpus ({' + '.join(DEFAULT_CORPUS)}) is not in {where} (missing: {', '.join(missing)}); "
            f"set HYPERTOK_CORPORA to the folder holding it, pass --corpus FILES, or --corpus {NAVEC} "
            "for the offline word list"
        )
    return found


def resolve_corpus(paths: Iterable[str | os.PathLike]) -> list[str | os.PathLike]:
    """Expand the names ``default`` (:data:`DEFAULT_CORPUS`) and ``navec`` (no files: the word list).

    >>> resolve_corpus(["navec"]), resolve_corpus(["a.txt"])
    ([], ['a.txt'])
    """
    out: list[str | os.PathLike] = []
    for p in paths:
        if str(p) == NAVEC and not Path(p).exists():
            continue
        if str(p) == "default" and not Path(p).exists():
            out += default_corpus()
        else:
            out.append(p)
    if len(out) and any(str(p) == NAVEC for p in paths):
        raise HyperTokError(f"--corpus {NAVEC} (the word list) cannot be combined with corpus files")
    return out


def read_text(path: str | os.PathLike, encoding: str = "utf-8", flag: str | None = None) -> str:
    """A whole file as one string (newlines kept exactly), with a clear error for a missing
    file or bad encoding (``flag``: the option that sets ``encoding``, see :func:`decode_error`).

    >>> read_text("/no/such/file")
    Traceback (most recent call last):
    ...
    hypertok.errors.HyperTokError: /no/such/file: no such file or folder
    """
    check_encoding(encoding)
    p = _text_file(path)
    with open_bytes(p) as f:
        data = f.read()
    try:
        return codecs.decode(data, encoding, "strict")
    except UnicodeDecodeError as e:
        raise decode_error(p, data, e.start, encoding, flag) from None


COMPRESSED_SUFFIXES = (".xz", ".gz", ".zst")


def compression_of(path: str | os.PathLike) -> str | None:
    """``"xz"``, ``"gz"`` or ``"zst"`` for a compressed file name, else ``None``.

    >>> compression_of("ru-modern-dev.txt.xz"), compression_of("dev.txt")
    ('xz', None)
    """
    suffix = Path(path).suffix.lower()
    return suffix[1:] if suffix in COMPRESSED_SUFFIXES else None


def plain_suffix(path: str | os.PathLike) -> str:
    """The suffix of the file once decompressed: ``a.txt.xz`` -> ``.txt``.

    >>> plain_suffix("a.txt.xz"), plain_suffix("a.md"), plain_suffix("SHA256SUMS")
    ('.txt', '.md', '')
    """
    p = Path(path)
    if compression_of(p):
        p = p.with_suffix("")
    return p.suffix.lower()


def open_bytes(path: str | os.PathLike):
    """A binary file object reading ``path`` decompressed (``.xz``, ``.gz``, ``.zst``), streamed.

    A damaged compressed file raises ``HyperTokError`` naming it when read.

    >>> import tempfile, pathlib, lzma
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt.xz"; _ = p.write_bytes(lzma.compress("да".encode()))
    >>> with open_bytes(p) as f: f.read().decode()
    'да'
    """
    kind = compression_of(path)
    if kind is None:
        return open(path, "rb")
    if kind == "xz":
        import lzma

        return _Checked(lzma.open(path, "rb"), path, (lzma.LZMAError, EOFError))
    if kind == "gz":
        import gzip

        return _Checked(gzip.open(path, "rb"), path, (OSError, EOFError))
    try:
        import zstandard
    except ImportError:
        raise HyperTokError(f"{path}: reading .zst needs the zstandard package (pip install zstandard)") from None
    return _Checked(_ZstdReader(path, zstandard), path, (zstandard.ZstdError,))


class _ZstdReader:
    """A ``.zst`` file read frame after frame; a file that ends inside a frame is an error
    (zstandard's own stream reader returns the truncated data silently)."""

    def __init__(self, path, zstandard) -> None:
        self._raw = open(path, "rb")
        self._z = zstandard
        self._d = zstandard.ZstdDecompressor().decompressobj()
        self._buf = b""
        self._done = False

    def _fill(self, n: int) -> None:
        while not self._done and (n < 0 or len(self._buf) < n):
            block = self._raw.read(_BLOCK)
            if not block:
                self._done = True
                if not self._d.eof:
                    raise self._z.ZstdError("the file ends inside a frame")
                break
            while block:
                if self._d.eof:  # the next frame of a multi-frame file
                    self._d = self._z.ZstdDecompressor().decompressobj()
                self._buf += self._d.decompress(block)
                block = self._d.unused_data if self._d.eof else b""

    def read(self, n: int = -1) -> bytes:
        self._fill(n)
        if n < 0:
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def close(self) -> None:
        self._raw.close()


class _Checked:
    """A decompressing reader whose library errors become ``HyperTokError`` naming the file."""

    def __init__(self, f, path, errors: tuple) -> None:
        self._f, self._path, self._errors = f, path, errors

    def read(self, n: int = -1) -> bytes:
        try:
            return self._f.read(n)
        except self._errors as e:
            raise HyperTokError(f"{self._path}: damaged or truncated compressed file ({e}); "
                                "check it with xz -t / gzip -t / zstd -t") from None

    def close(self) -> None:
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_nonempty_text(path: str | os.PathLike, encoding: str = "utf-8", flag: str | None = None) -> str:
    """:func:`read_text`, refusing a file of nothing but whitespace (``compare --text``, ``vram --text``).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "blank.txt"; _ = p.write_text(" \\n")
    >>> read_nonempty_text(p)
    Traceback (most recent call last):
    ...
    hypertok.errors.HyperTokError: ...blank.txt: the text is empty (nothing but whitespace); give a file with text in it
    """
    text = read_text(path, encoding, flag)
    if not text.strip():
        raise HyperTokError(f"{path}: the text is empty (nothing but whitespace); give a file with text in it")
    return text
