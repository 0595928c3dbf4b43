"""Corpus reading: stream UTF-8 text from files and folders, line by line.

What it does: expands paths (folders recursively, in sorted order, so a build is
deterministic), decodes each file strictly, and yields lines with their newline kept.
Memory does not grow with corpus size. It also hashes the exact bytes read, so every
artifact can record which corpus made it.

What it does not do: no normalisation of any kind (NFC, case, whitespace). The corpus
is counted exactly as written, because the tokenizer must reproduce it exactly.
"""

from __future__ import annotations

import codecs
import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .errors import HyperTokError

TEXT_SUFFIXES = {".txt", ".text", ".md", ""}
_CHUNK = 1 << 20


def expand_paths(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files named directly, plus the text files under named folders (sorted).

    >>> expand_paths([])
    []
    """
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in TEXT_SUFFIXES)
            if not found:
                raise HyperTokError(f"{p}: folder holds no text files (*.txt, *.md, or no suffix)")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise HyperTokError(f"{p}: no such file or folder")
    return out


def _position(data: bytes, offset: int) -> str:
    line = data.count(b"\n", 0, offset) + 1
    return f"line {line}, byte offset {offset}"


@dataclass
class Corpus:
    """A streamed text corpus: ``for line in Corpus([...])`` yields lines with ``\\n`` kept.

    ``sha256`` and ``n_bytes`` are filled in as the corpus is read (after a full pass).

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "a.txt").write_text("да\\nнет")
    >>> list(Corpus([d / "a.txt"]))
    ['да\\n', 'нет']
    """

    paths: list[str | os.PathLike]
    encoding: str = "utf-8"
    files: list[Path] = field(init=False)
    sha256: str | None = field(init=False, default=None)
    n_bytes: int = field(init=False, default=0)
    n_chars: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            raise HyperTokError(f"unknown --encoding {self.encoding!r}; try utf-8 or cp1251") from None
        self.files = expand_paths(self.paths)
        if not self.files:
            raise HyperTokError("no corpus files given")

    def __iter__(self) -> Iterator[str]:
        digest = hashlib.sha256()
        n_bytes = n_chars = 0
        for path in self.files:
            digest.update(str(path.name).encode("utf-8") + b"\0")
            decoder = codecs.getincrementaldecoder(self.encoding)("strict")
            offset = 0
            carry = ""
            with open(path, "rb") as f:
                while True:
                    block = f.read(_CHUNK)
                    final = not block
                    pending = len(decoder.getstate()[0])
                    try:
                        text = decoder.decode(block, final=final)
                    except UnicodeDecodeError as e:
                        where = offset - pending + e.start
                        with open(path, "rb") as g:
                            head = g.read(where + 1)
                        raise HyperTokError(
                            f"{path}: not valid {self.encoding} at {_position(head, where)} "
                            f"(byte {e.object[e.start:e.start + 1]!r}); pass --encoding (e.g. cp1251) "
                            f"or convert the file to UTF-8"
                        ) from None
                    digest.update(block)
                    offset += len(block)
                    text = carry + text
                    lines = text.split("\n")
                    carry = lines.pop()
                    for line in lines:
                        n_chars += len(line) + 1
                        yield line + "\n"
                    if final:
                        break
            if carry:
                n_chars += len(carry)
                yield carry
            n_bytes += offset
        self.sha256 = digest.hexdigest()
        self.n_bytes = n_bytes
        self.n_chars = n_chars


def read_text(path: str | os.PathLike, encoding: str = "utf-8") -> str:
    """A whole file as one string, with a clear error for bad encoding or a missing file."""
    return "".join(Corpus([path], encoding=encoding))
