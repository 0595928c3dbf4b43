"""Files: the one home of atomic writes, text reading, file hashes and library versions.

Every artifact HyperTok writes (a tokenizer directory, a results table, a checkpoint) is
written to a temporary sibling and renamed into place, so a reader never sees half a
file and an interrupted run leaves the old version intact. Every artifact records the
library versions that made it. These helpers are written once, here (issue 9); the rest
of the package imports them.

Compressed inputs (issue 12): every reader of a corpus or text goes through
:func:`open_bytes`, which streams ``.xz``, ``.gz`` and ``.zst`` files decompressed, so
``hypertok build``, ``compare --text/--train`` and ``encode`` take them directly.

What it does not do: no locking (two writers of one path race, the last rename wins),
no fsync, and no text normalisation (a file is read exactly as written).

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> atomic_write(d / "a.txt", "да\\n")
>>> read_text(d / "a.txt")
'да\\n'
>>> sha256_file(d / "a.txt")[:12]
'fc8954ab5a5a'
"""

from __future__ import annotations

import codecs
import hashlib
import os
import platform
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import HyperTokError

_BLOCK = 1 << 20


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write; on success it replaces ``path``.

    For writers that want a file name (``torch.save``, ``Tokenizer.save``). On an
    exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike, data: str | bytes) -> None:
    """Write ``data`` (``str`` as UTF-8 with ``\\n`` kept as is, or ``bytes``) to ``path`` atomically."""
    with atomic_file(path) as tmp:
        if isinstance(data, str):
            with open(tmp, "w", encoding="utf-8", newline="\n") as f:
                f.write(data)
        else:
            tmp.write_bytes(data)


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary folder next to ``path``; on success it becomes ``path``.

    An existing ``path`` is replaced only once the new folder is complete (it is moved
    aside, the new one renamed in, then the old one deleted). The caller decides whether
    replacing is allowed. On an exception the temporary folder is deleted.

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "tok"
    >>> with atomic_dir(out) as tmp:
    ...     _ = (tmp / "x.txt").write_text("1")
    >>> sorted(p.name for p in out.iterdir())
    ['x.txt']
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield tmp
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def check_encoding(encoding: str) -> None:
    """Raise ``HyperTokError`` for an encoding name Python does not know."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise HyperTokError(f"unknown --encoding {encoding!r}; try utf-8 or cp1251") from None


def decode_error(path: str | os.PathLike, head: bytes, offset: int, encoding: str) -> HyperTokError:
    """The error for undecodable input: file, line, byte offset, the byte, and what to do.

    ``head`` holds the file's bytes up to at least ``offset``.
    """
    line = head.count(b"\n", 0, offset) + 1
    return HyperTokError(
        f"{path}: not valid {encoding} at line {line}, byte offset {offset} "
        f"(byte {head[offset:offset + 1]!r}); pass --encoding (e.g. cp1251) or convert the file to UTF-8"
    )


def read_text(path: str | os.PathLike, encoding: str = "utf-8") -> str:
    """A whole file as one string (newlines kept exactly), with a clear error for a missing
    file or bad encoding.

    >>> read_text("/no/such/file")
    Traceback (most recent call last):
    ...
    hypertok.errors.HyperTokError: /no/such/file: no such file or folder
    """
    check_encoding(encoding)
    p = Path(path)
    if p.is_dir():
        raise HyperTokError(f"{p}: is a folder; give a text file")
    if not p.is_file():
        raise HyperTokError(f"{p}: no such file or folder")
    with open_bytes(p) as f:
        data = f.read()
    try:
        return codecs.decode(data, encoding, "strict")
    except UnicodeDecodeError as e:
        raise decode_error(p, data, e.start, encoding) from None


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def library_versions(packages: Iterable[str], python: bool = True) -> dict[str, str | None]:
    """``{"python": "3.11.7", package: version or None}`` for the record of an artifact.

    >>> sorted(library_versions(["tokenizers", "no-such-package-x"]))
    ['no-such-package-x', 'python', 'tokenizers']
    >>> library_versions(["no-such-package-x"], python=False)
    {'no-such-package-x': None}
    """
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {"python": platform.python_version()} if python else {}
    for pkg in packages:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


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

