"""The builder stamp: which code made a build, written into every study's JSON (issue 23).

A content hash of the modules that decide what ``hypertok build`` writes: ``hypertok/builder/``,
``hypertok/core/`` (the format), ``hypertok/files.py`` and ``hypertok/registry/trained.py``
(the SuperBPE backbone). It hashes the files, not a git commit, so it is the same with or
without git, changes with uncommitted edits, and does not depend on where a module lives:
a study compares it with the stamp it recorded to tell a stale build from one it may reuse.
Issue 9 moved the modules that ``run_core.py`` hashed by name, and it crashed; a file list
read from the folders cannot go stale that way.

    >>> len(builder_stamp())
    12
"""

from __future__ import annotations

import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILDER_CODE = ("hypertok/builder", "hypertok/core", "hypertok/files.py", "hypertok/text.py", "hypertok/options.py",
                "hypertok/registry/trained.py")


def builder_sources(root: Path = ROOT) -> list[Path]:
    """The files the stamp hashes, in a fixed order."""
    files = []
    for name in BUILDER_CODE:
        p = root / name
        files += sorted(p.rglob("*.py")) if p.is_dir() else [p]
    missing = [str(p) for p in files if not p.is_file()]
    if missing or not files:
        raise FileNotFoundError(f"builder sources not found: {missing}; update BUILDER_CODE in {__file__}")
    return files


def builder_stamp(root: Path = ROOT) -> str:
    """12 hex digits of sha256 over the builder's sources (path and bytes of each)."""
    h = hashlib.sha256()
    for p in builder_sources(root):
        h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:12]
