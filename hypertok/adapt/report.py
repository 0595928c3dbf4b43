"""The loss curve of an adaptation run: ``OUT/loss.png``, written by ``hypertok adapt``.

What it does (issue 11, the newcomer's path): from the run's history (the records of
``train_log*.jsonl``) it draws the training loss of every step, the held-out bits per
character of every evaluation point (one line per ``--eval`` text), and where stage 1 (new
rows only) ends and stage 2 (LoRA + rows) begins. Steps are counted over the whole recipe:
stage 2's step k is drawn at ``stage-1 steps + k``.

What it does not do: no measuring, no smoothing that hides a spike. matplotlib is
imported only here, when a plot is drawn; without it (it comes with the ``compare``
extra, not ``train``) :func:`write_loss_plot` returns ``None`` and says why, and adapt goes on.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..files import atomic_file

STAGE1 = "stage1"


def _curves(history: list[dict], eval_name: str = "eval") -> tuple[list[int], list[float],
                                                                   dict[str, list[tuple[int, float]]], int]:
    """(steps, losses, {eval text: [(step, bits/char)]}, stage-1 steps) with steps over the whole recipe.
    A run with one ``--eval`` text records no per-text figures: that text is ``eval_name``.

    >>> h = [{"step": 1, "loss": 3.0, "stage": "stage1"}, {"step": 1, "loss": 2.5},
    ...      {"step": 2, "loss": 2.0, "eval_bpc": 1.5}]
    >>> _curves(h, "dev")
    ([1, 2, 3], [3.0, 2.5, 2.0], {'dev': [(3, 1.5)]}, 1)
    """
    stage1 = max((r["step"] for r in history if r.get("stage") == STAGE1), default=0)
    steps, losses, evals = [], [], {}
    for r in history:
        x = r["step"] + (0 if r.get("stage") == STAGE1 else stage1)
        steps.append(x)
        losses.append(r["loss"])
        by_text = r.get("eval_bpc_by_text") or ({eval_name: r["eval_bpc"]} if "eval_bpc" in r else {})
        for name, bpc in by_text.items():
            evals.setdefault(name, []).append((x, bpc))
    return steps, losses, evals, stage1


def write_loss_plot(history: list[dict], path: str | os.PathLike, title: str = "",
                    eval_name: str = "eval") -> tuple[Path | None, str]:
    """Draw ``history`` into the PNG ``path`` (atomically). Returns (path, "") or (None, why not).
    ``eval_name`` labels the held-out curve of a run with one ``--eval`` text."""
    if not history:
        return None, "no training steps to draw"
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None, "matplotlib is not installed (pip install matplotlib, or the compare extra)"
    steps, losses, evals, stage1 = _curves(history, eval_name)
    rows = 2 if evals else 1
    fig, axes = plt.subplots(rows, 1, figsize=(8, 3.2 * rows), sharex=True, squeeze=False)
    ax = axes[0][0]
    ax.plot(steps, losses, color="tab:blue", lw=1, marker="." if len(steps) <= 50 else None, label="train loss")
    ax.set_ylabel("train loss (nats/token)")
    if evals:
        ev = axes[1][0]
        for name, points in evals.items():
            ev.plot(*zip(*points), marker="o", label=f"{name} (held out)")
        ev.set_ylabel("held-out bits/char")
    for k, row in enumerate(axes):
        a = row[0]
        a.grid(alpha=0.3)
        if stage1:  # stage 1 shaded, stage 2 after the line
            a.axvspan(0.5, stage1 + 0.5, color="tab:orange", alpha=0.15, lw=0,
                      label="stage 1: new rows only" if k == 0 else None)
            a.axvline(stage1 + 0.5, color="tab:orange", lw=1)
        a.legend(fontsize=8, loc="upper right")
    axes[-1][0].set_xlabel("optimizer step" + (" (stage 1, then stage 2)" if stage1 else ""))
    fig.suptitle(title or "hypertok adapt", fontsize=10)
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return Path(path), ""
