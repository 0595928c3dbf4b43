"""Fault injection for the write phases (issue 24, item 5): a save killed at its k-th rename.

``killed_at(monkeypatch, k)`` makes the k-th ``os.replace`` out of a hidden ``.NAME.saving-*``
folder (the move phase of :func:`hypertok.files.move_into`) raise :class:`Killed`, as a kill
between two renames would stop the save. ``renames`` counts the renames of a save.
"""

from __future__ import annotations

import os


class Killed(BaseException):
    """Raised in place of a rename: the process died here."""


def _in_saving(path) -> bool:
    return any(part.startswith(".") and ".saving-" in part for part in os.fspath(path).split(os.sep))


def _is_move(src, dst) -> bool:
    """A rename out of the hidden folder into the output (not a write inside the hidden folder)."""
    return _in_saving(src) and not _in_saving(dst)


def killed_at(monkeypatch, k: int) -> None:
    real = os.replace
    count = [0]

    def replace(src, dst, *a, **kw):
        if _is_move(src, dst):
            if count[0] == k:
                raise Killed(f"killed before rename {k}: {src} -> {dst}")
            count[0] += 1
        return real(src, dst, *a, **kw)

    monkeypatch.setattr(os, "replace", replace)


def renames(monkeypatch, save) -> int:
    """How many renames ``save()`` makes in its move phase."""
    real = os.replace
    count = [0]

    def replace(src, dst, *a, **kw):
        count[0] += _is_move(src, dst)
        return real(src, dst, *a, **kw)

    with monkeypatch.context() as m:
        m.setattr(os, "replace", replace)
        save()
    return count[0]
