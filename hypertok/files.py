"""Files: the one home of atomic writes, output checks, file hashes and library versions.

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

Reading text (compressed or not, strictly decoded) is :mod:`hypertok.text`.

What it does not do: no locking (two writers of one path race, the last rename wins),
no fsync, and no text normalisation (a file is read exactly as written).

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> atomic_write(d / "a.txt", "да\\n")
>>> (d / "a.txt").read_text(encoding="utf-8")
'да\\n'
>>> sha256_file(d / "a.txt")[:12]
'fc8954ab5a5a'
"""

from __future__ import annotations

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
