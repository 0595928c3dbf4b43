"""Files: the one home of atomic writes, text reading, file hashes and library versions.

Every artifact HyperTok writes (a tokenizer directory, a results table, a checkpoint) is
written to a temporary sibling and renamed into place, so a reader never sees half a
file and an interrupted run leaves the old version intact. Every artifact records the
library versions that made it. These helpers are written once, here (issue 9); the rest
of the package imports them.

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
    data = p.read_bytes()
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
