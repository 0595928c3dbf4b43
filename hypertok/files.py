"""Files: the one home of atomic writes, text reading, file hashes and library versions.

Every artifact HyperTok writes (a tokenizer directory, a results table, a checkpoint) is
written to a temporary sibling and renamed into place, so a reader never sees half a
file and an interrupted run leaves the old version intact. Every artifact records the
library versions that made it. These helpers are written once, here (issue 9); the rest
of the package imports them.

Outputs are checked before any work (:func:`check_out`): a missing, file-shaped or
unwritable ``--out`` is one clear line, not a traceback after an hour. Nothing here
removes what HyperTok did not write: :func:`atomic_dir` refuses to replace a file, and the
leftovers of a killed run (``.NAME.tmp-PID``, ``.NAME.old-PID``, ``.NAME.saving-PID``, all
named here) are cleaned up by the next write of ``NAME`` once process PID is gone, an
``.old`` folder being put back where the kill left ``NAME`` missing (issue 13). Folders are
created with the umask's permissions, like files. Into a folder that exists, HyperTok
writes its files beside what is there (:func:`beside`, :func:`move_into`), as transformers'
``save_pretrained`` does: a user's file in an output folder is never removed (issue 11).

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
import json
import os
import platform
import re
import secrets
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import HyperTokError

_BLOCK = 1 << 20


_LEFTOVER = re.compile(r"(tmp|old|saving)-(\d+)(-[0-9a-f]+)?")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)


def leftover_name(path: str | os.PathLike, what: str, unique: bool = False) -> Path:
    """The hidden sibling name a write of ``path`` uses: ``.NAME.WHAT-PID`` (``-RANDOM`` with
    ``unique``). Only names of this form are ever cleaned up by :func:`clean_leftovers`.

    >>> leftover_name("out/tok", "tmp").name.startswith(".tok.tmp-")
    True
    """
    path = Path(path)
    tail = f"-{secrets.token_hex(4)}" if unique else ""
    return path.with_name(f".{path.name}.{what}-{os.getpid()}{tail}")


def clean_leftovers(path: str | os.PathLike) -> list[Path]:
    """Remove what a killed write of ``path`` left beside it; return what was removed.

    Only hidden siblings named by :func:`leftover_name` whose process is gone are touched.
    A ``.NAME.old-PID`` folder is the previous version moved aside by :func:`atomic_dir`:
    when the kill came before the new version was renamed in (``NAME`` is missing), it is
    put back instead of deleted.
    """
    path = Path(path)
    parent = path.parent
    prefix = f".{path.name}."
    done: list[Path] = []
    try:
        names = [e.name for e in os.scandir(parent) if e.name.startswith(prefix)]
    except OSError:
        return done
    for name in names:
        m = _LEFTOVER.fullmatch(name[len(prefix):])
        if not m:
            continue
        pid = int(m.group(2))
        if pid == os.getpid() or _alive(pid):
            continue
        p = parent / name
        if m.group(1) == "old" and not os.path.lexists(path):
            os.rename(p, path)
        else:
            _remove(p)
        done.append(p)
    return done


def _nearest_existing(p: Path) -> Path:
    p = Path(os.path.abspath(p))
    while not os.path.lexists(p):
        p = p.parent
    return p


def check_out(path: str | os.PathLike | None, flag: str = "--out", kind: str = "folder") -> Path:
    """Check, before any work, that ``path`` can be written; return it as a ``Path``.

    ``kind``: ``"folder"`` (the command writes a folder, or files into one) or ``"file"``
    (the command writes this file). Refused with one line: an empty name, a file where a
    folder is wanted (and the reverse), a parent that is a file, and a place where nothing
    can be created (checked by making and removing one hidden folder, which also works
    for root on read-only mounts). Missing parent folders are fine: they are created.

    >>> check_out("")
    Traceback (most recent call last):
    ...
    hypertok.errors.HyperTokError: --out is empty; give a folder name
    """
    if path is None or not str(path).strip():
        raise HyperTokError(f"{flag} is empty; give a {kind} name")
    p = Path(path)
    if kind == "folder" and p.exists() and not p.is_dir():
        raise HyperTokError(f"{flag} {p}: is a file, not a folder; choose another {flag}")
    if kind == "file" and p.is_dir():
        raise HyperTokError(f"{flag} {p}: is a folder, not a file; choose another {flag}")
    anc = p if (kind == "folder" and p.is_dir()) else _nearest_existing(p.parent)
    if not anc.is_dir():
        raise HyperTokError(f"{flag} {p}: {anc} is a file, so {p} cannot be created; choose another {flag}")
    probe = anc / f".hypertok-probe-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        os.mkdir(probe)
        os.rmdir(probe)
    except OSError as e:
        raise HyperTokError(f"{flag} {p}: cannot write in {anc} ({e.strerror}); choose another {flag}") from None
    return p


def link_on_the_way(out: str | os.PathLike, name: str | os.PathLike) -> Path | None:
    """The first symbolic link among the folders between ``out`` and ``out/name`` (``name``
    relative; its last part not included), or ``None``: a file removed or written there would
    land outside ``out``. The last part may itself be a link: replacing or removing it touches
    the link alone (``os.replace``, ``unlink``).

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); (d / "real").mkdir(); (d / "link").symlink_to(d / "real")
    >>> link_on_the_way(d, "real/x"), link_on_the_way(d, "link/x").name, link_on_the_way(d, "link")
    (None, 'link', None)
    """
    p = Path(out)
    for part in Path(name).parts[:-1]:
        p = p / part
        if p.is_symlink():
            return p
    return None


def check_no_links(out: str | os.PathLike, names: Iterable[str], flag: str = "--out") -> None:
    """Refuse, before any work, a folder whose paths ``names`` (relative to ``out``, the ones a
    command writes or appends to) are symbolic links or lie under one: outputs never follow
    a link out of their folder (issue 24).

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); (d / "log.txt").symlink_to("/etc/hostname")
    >>> check_no_links(d, ["log.txt"])
    Traceback (most recent call last):
    ...
    hypertok.errors.HyperTokError: .../log.txt: is a symbolic link; HyperTok writes only inside --out ..., never through a link. Remove the link, or choose another --out
    """
    out = Path(out)
    for name in names:
        p = out / name
        link = link_on_the_way(out, name) or (p if p.is_symlink() else None)
        if link is not None:
            raise HyperTokError(f"{link}: is a symbolic link; HyperTok writes only inside {flag} {out}, never "
                                f"through a link. Remove the link, or choose another {flag}")


def check_results_out(out: str | os.PathLike, names: Iterable[str], writer: str, own, flag: str = "--out") -> Path:
    """``--out`` of a command that writes a results folder (``compare``, ``vram``), checked before
    any work (:func:`check_out`), and return it as a ``Path``.

    The command writes its files ``names`` beside whatever else the folder holds. Where one of
    them is already there, it is replaced only when the folder's ``results.json`` is the
    command's own (``own(record)`` is true: an earlier run, written again); a user's
    ``results.json``, ``summary.md`` or ``results.md`` is never overwritten (issue 24).

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "results.md").write_text("my notes")
    >>> check_results_out(d, ["results.json", "results.md"], "hypertok compare", lambda r: False)
    Traceback (most recent call last):
    ...
    hypertok.errors.HyperTokError: ...: holds results.md, which `hypertok compare` did not write and would replace; move it away, or choose another --out
    """
    p = check_out(out, flag)
    if not p.is_dir():
        return p
    there = [n for n in names if os.path.lexists(p / n)]
    if not there:
        return p
    try:
        record = json.loads((p / "results.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        record = None
    if not (isinstance(record, dict) and own(record)):
        raise HyperTokError(f"{p}: holds {', '.join(there)}, which `{writer}` did not write and would replace; "
                            f"move {'it' if len(there) == 1 else 'them'} away, or choose another {flag}")
    return p


@contextmanager
def made_dirs(path: str | os.PathLike) -> Iterator[Path]:
    """Create folder ``path`` and its missing parents; on an exception, remove the ones made
    here (and what was written into them), so a failed command leaves nothing behind."""
    p = Path(os.path.abspath(path))
    missing = []
    q = p
    while not os.path.lexists(q):
        missing.append(q)
        q = q.parent
    p.mkdir(parents=True, exist_ok=True)
    try:
        yield p
    except BaseException:
        if missing:
            shutil.rmtree(missing[-1], ignore_errors=True)
        raise


def is_empty_dir(path: str | os.PathLike) -> bool:
    """True for a folder with nothing in it."""
    p = Path(path)
    return p.is_dir() and not p.is_symlink() and next(p.iterdir(), None) is None


# What native writers raise for an error of the system (not of the input): tokenizers' Rust I/O
# ("No space left on device (os error 28)", a plain Exception) and torch.save's C++ stream
# ("basic_ios::clear: iostream error", "[enforce fail at inline_container.cc:672] unexpected pos",
# "PytorchStreamWriter failed writing file": RuntimeError).
_NATIVE_WRITE_ERROR = re.compile(r"(?i)os error \d+|no space|errno|iostream error|failed writing|read-only|i/o error|"
                                 r"inline_container\.cc")


@contextmanager
def native_write(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Turn the write errors of native libraries, which are not ``OSError`` (tokenizers, torch.save),
    into one ``HyperTokError`` naming the file (issue 24, item 10: a full disk, a read-only folder).

    >>> with native_write("x.json", "the tokenizer"):
    ...     raise Exception("No space left on device (os error 28)")
    Traceback (most recent call last):
    hypertok.errors.HyperTokError: x.json: cannot write the tokenizer (No space left on device (os error 28)); is the disk full or the folder read-only?
    """
    try:
        yield
    except Exception as e:
        if isinstance(e, (OSError, HyperTokError)) or not _NATIVE_WRITE_ERROR.search(str(e)):
            raise
        first = str(e).strip().split("\n")[0][:200]
        raise HyperTokError(f"{path}: cannot write {what} ({first}); is the disk full or the folder "
                            f"read-only?") from None


@contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write; on success it replaces ``path``.

    For writers that want a file name (``torch.save``, ``Tokenizer.save``). On an
    exception the temporary file is removed and ``path`` is left as it was. Leftovers of
    an earlier killed write of ``path`` are removed first.
    """
    path = Path(path)
    clean_leftovers(path)
    tmp = leftover_name(path, "tmp")
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
def atomic_dir(path: str | os.PathLike, replace: bool = True) -> Iterator[Path]:
    """Yield a fresh temporary folder next to ``path``; on success it becomes ``path``.

    An existing folder ``path`` is replaced only once the new folder is complete (it is
    moved aside, the new one renamed in, then the old one deleted). The caller decides
    whether replacing is allowed; with ``replace=False`` a ``path`` that appeared while the
    folder was written (another process made it) is never replaced: the write fails, naming
    it (issue 24, item 6). A *file* at ``path`` is never replaced. On an exception the
    temporary folder is deleted. The folder gets the umask's permissions.

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "tok"
    >>> with atomic_dir(out) as tmp:
    ...     _ = (tmp / "x.txt").write_text("1")
    >>> sorted(p.name for p in out.iterdir())
    ['x.txt']
    """
    out = Path(path)
    if os.path.lexists(out) and (out.is_symlink() or not out.is_dir()):
        raise HyperTokError(f"{out}: is a file, not a folder; HyperTok replaces only folders it wrote")
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(out)
    tmp = leftover_name(out, "tmp", unique=True)
    tmp.mkdir()
    try:
        yield tmp
        if os.path.lexists(out) and not replace:  # checked again right before the rename
            raise HyperTokError(f"{out}: appeared while this was being written (another process made it); "
                                "nothing was replaced: choose another output folder, or run again to rewrite it")
        if out.exists():
            old = leftover_name(out, "old")
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _plan_moves(src: Path, out: Path, rel: str = "") -> list[tuple[Path, Path, str]]:
    """The ``(file, destination, relative name)`` moves of :func:`move_into`, every clash found first."""
    moves = []
    for f in sorted(src.iterdir(), key=lambda p: p.name):
        dest, name = out / f.name, f"{rel}{f.name}"
        if f.is_dir() and not f.is_symlink():
            if os.path.lexists(dest) and (dest.is_symlink() or not dest.is_dir()):
                raise HyperTokError(f"{dest}: a file is in the way of the folder {name}/ HyperTok writes; "
                                    f"move it away and write again")
            moves += _plan_moves(f, dest, name + "/")
        elif dest.is_dir() and not dest.is_symlink():
            raise HyperTokError(f"{dest}: a folder is in the way of the file {name} HyperTok writes; "
                                f"move it away and write again")
        else:
            moves.append((f, dest, name))
    return moves


def move_into(src: str | os.PathLike, out: str | os.PathLike, last: Iterable[str] = (),
              remove_first: Iterable[str] = ()) -> list[str]:
    """Move the files of folder ``src`` (subfolders file by file) into the existing folder
    ``out``; return their names relative to ``out``.

    A file of ``out`` with the same name is replaced (``os.replace``: a symlink there is
    replaced, never followed); every other file and folder of ``out`` stays as it was, so
    HyperTok writes beside what the user keeps there, as transformers' ``save_pretrained``
    does, and never removes a folder. Every clash (a folder where a file goes, or the
    reverse) is found before anything moves. The names in ``last`` move last, in order:
    a record holding the hashes of the others goes in after them. The files of ``out``
    named in ``remove_first`` that this move replaces (HyperTok's own record, and the files a
    third-party loader starts from) are removed before anything moves, so that a write killed
    midway leaves a folder that no loader accepts, or that loads the new files whole.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); (d / "src").mkdir(); (d / "out").mkdir()
    >>> _ = (d / "src" / "a.txt").write_text("new"); _ = (d / "out" / "mine.txt").write_text("kept")
    >>> move_into(d / "src", d / "out"), sorted(p.name for p in (d / "out").iterdir())
    (['a.txt'], ['a.txt', 'mine.txt'])
    """
    src, out = Path(src), Path(out)
    moves = _plan_moves(src, out)
    order = {name: i for i, name in enumerate(last)}
    moves.sort(key=lambda m: order.get(m[2], -1))
    moving = {name for _, _, name in moves}
    for name in remove_first:
        if name in moving and ((out / name).is_file() or (out / name).is_symlink()):
            (out / name).unlink()
    for f, dest, _ in moves:
        dest.parent.mkdir(exist_ok=True)
        os.replace(f, dest)
    return [name for _, _, name in moves]


LOCK_MARK = b"hypertok lock"


def lock_path(out: str | os.PathLike) -> Path:
    """The lock file of an output folder: ``OUT.lock`` beside it."""
    out = Path(out)
    return out.with_name(out.name + ".lock")


@contextmanager
def output_lock(out: str | os.PathLike, command: str = "hypertok") -> Iterator[Path]:
    """Hold an exclusive lock on ``out`` (``fcntl.flock`` on ``OUT.lock`` beside it) while
    writing it; the file is removed afterwards (issue 24, item 6).

    A second writer does not wait and does not write: it fails at once with one line naming
    the lock. A lock file left by a killed process holds no lock (the kernel released it)
    and is reused. A file of the user's at ``OUT.lock`` is never locked, truncated or removed.
    Without ``fcntl`` (Windows) nothing is locked.

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "tok"
    >>> with output_lock(out) as lock:
    ...     with output_lock(out):
    ...         pass
    Traceback (most recent call last):
    ...
    hypertok.errors.HyperTokError: .../tok.lock: another hypertok is writing .../tok now (it holds this lock); wait for it to finish, or choose another output folder
    >>> lock.exists()
    False
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Linux/macOS
        yield lock_path(out)
        return
    out = Path(out)
    lock = lock_path(out)
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except OSError as e:
            raise HyperTokError(f"{lock}: cannot open the lock file of {out} ({e.strerror}); "
                                "move it away if it is not HyperTok's") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise HyperTokError(f"{lock}: another {command} is writing {out} now (it holds this lock); "
                                "wait for it to finish, or choose another output folder") from None
        try:  # the holder before us may have removed the file we opened: lock the one at the path
            same = os.path.samestat(os.fstat(fd), os.stat(lock, follow_symlinks=False))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        held = os.pread(fd, 64, 0)
        if held and not held.startswith(LOCK_MARK):
            raise HyperTokError(f"{lock}: exists and is not a HyperTok lock file; move it away to write {out}")
        os.ftruncate(fd, 0)
        os.pwrite(fd, LOCK_MARK + f" pid {os.getpid()}\n".encode(), 0)
        try:
            yield lock
        finally:
            os.unlink(lock)  # while still holding it: a waiter then finds a new file
    finally:
        os.close(fd)


@contextmanager
def beside(out: str | os.PathLike, last: Iterable[str] = (), remove_first: Iterable[str] = ()) -> Iterator[Path]:
    """Yield a fresh hidden folder next to ``out`` to write into; on success its files move
    into ``out`` (:func:`move_into` with ``last`` and ``remove_first``) and it is removed.

    ``out`` that does not exist yet appears whole (:func:`atomic_dir`). An existing ``out``
    keeps every file HyperTok does not write: nothing of the user's is removed. On an
    exception nothing has moved and the hidden folder is removed.
    """
    out = Path(out)
    if not out.exists():  # a folder that appears meanwhile is not replaced wholesale
        with atomic_dir(out, replace=False) as tmp:
            yield tmp
        return
    if out.is_symlink() or not out.is_dir():
        raise HyperTokError(f"{out}: is a file, not a folder; choose another output folder")
    clean_leftovers(out)
    tmp = leftover_name(out, "saving", unique=True)
    tmp.mkdir()
    try:
        yield tmp
        move_into(tmp, out, last, remove_first)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


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


def iter_text(path: str | os.PathLike | None = None, encoding: str = "utf-8", block: int = _BLOCK,
              flag: str | None = None) -> Iterator[str]:
    """A text file (standard input for ``None`` or ``"-"``) in pieces that end right after a
    newline (the last piece may not), decoded strictly, in memory bounded by ``block`` plus
    the longest line.

    Standard input is held to the same rule as a file: bytes that are not valid UTF-8 are an
    error naming the line and byte offset, never smuggled through as surrogate escapes.
    ``flag``: the option that sets ``encoding``, offered by the error (:func:`decode_error`).

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
        p = Path(path)
        if p.is_dir():
            raise HyperTokError(f"{p}: is a folder; give a text file")
        if not p.is_file():
            raise HyperTokError(f"{p}: no such file or folder")
        name, f, close = p, open_bytes(p), True
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    offset = newlines = 0
    carry = ""
    try:
        while True:
            data = f.read(block)
            final = not data
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


def read_text(path: str | os.PathLike, encoding: str = "utf-8", flag: str | None = None) -> str:
    """A whole file as one string (newlines kept exactly), with a clear error for a missing
    file or bad encoding (``flag``: the option that sets ``encoding``, see :func:`decode_error`).

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
        raise decode_error(p, data, e.start, encoding, flag) from None


def read_json(path: str | os.PathLike) -> dict:
    """A JSON object from a file, or one clear line saying why not."""
    p = Path(path)
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise HyperTokError(f"{p}: unreadable as JSON ({e}); the file is damaged, copy it again") from None
    if not isinstance(d, dict):
        raise HyperTokError(f"{p}: not a JSON object; the file is damaged, copy it again")
    return d


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

