"""Test oracle: the readable twin of the fast encoder, the same shortest-path search in pure Python.

``hypertok.core.tokenizer`` encodes with HF ``tokenizers`` (Rust). This module does exactly
what that Unigram model does, slowly and visibly, so the algorithm can be read and so a
test can check on real text that the two give identical ids:

1. Split the text after every ``\\n`` (and only there: not at ``\\r``, U+2028 or the other
   characters ``str.splitlines`` splits at); lines are encoded independently.
2. For each line, walk left to right. From each position, every vocabulary piece that
   starts there extends the best path to its end: ``best[end] = best[start] + score``,
   kept only if strictly better (so ties go to the path found first).
3. A character no piece starts with is "unknown": it costs ``min_score - 10`` and is
   finally spelled with its UTF-8 byte tokens.
4. Walk back from the end of the line to read off the pieces.

Production code does not import this module (issue 9); the tests compare it with the
fast path on random text and on the real corpus.
"""

from __future__ import annotations

UNK_PENALTY = 10.0


def encode_line(line: str, pieces: dict[str, tuple[int, float]], max_len: int, unk_score: float,
                byte0: int) -> list[int]:
    """Ids for one line (no newline inside, except possibly at its end)."""
    n = len(line)
    best = [float("-inf")] * (n + 1)
    back: list[tuple[int, int]] = [(-1, -1)] * (n + 1)  # (start, id); id -1 = unknown char
    best[0] = 0.0
    seen = [False] * (n + 1)
    seen[0] = True
    for start in range(n):
        if not seen[start]:
            continue
        here = best[start]
        single = False
        for end in range(start + 1, min(n, start + max_len) + 1):
            hit = pieces.get(line[start:end])
            if hit is None:
                continue
            pid, score = hit
            cand = here + score
            if not seen[end] or cand > best[end]:
                best[end], back[end], seen[end] = cand, (start, pid), True
            if end == start + 1:
                single = True
        if not single:
            end = start + 1
            cand = here + unk_score
            if not seen[end] or cand > best[end]:
                best[end], back[end], seen[end] = cand, (start, -1), True
    out: list[int] = []
    pos = n
    while pos > 0:
        start, pid = back[pos]
        if pid >= 0:
            out.append(pid)
        else:
            out.extend(reversed([byte0 + b for b in line[start:pos].encode("utf-8")]))
        pos = start
    out.reverse()
    return out


def encode(text: str, surfaces: list[str], scores: list[float], byte0: int) -> list[int]:
    """Ids for ``text`` under a vocabulary of (surface, score), exactly as the fast path.

    >>> encode("ab a", ["<unk>", "a", "b", "ab", " "], [-50, -1.1, -1.1, -1.0, -1.1], byte0=5)
    [3, 4, 1]
    """
    pieces = {s: (i, sc) for i, (s, sc) in enumerate(zip(surfaces, scores))}
    max_len = max(len(s) for s in surfaces)
    unk_score = min(scores) - UNK_PENALTY
    ids: list[int] = []
    for line in split_lines(text):
        ids.extend(encode_line(line, pieces, max_len, unk_score, byte0))
    return ids


def split_lines(text: str) -> list[str]:
    """Lines as the fast path's pre-tokenizer cuts them: after ``\\n`` only, newline kept.

    ``str.splitlines`` would also cut at ``\\r``, ``\\x0b``, ``\\x0c``, ``\\x1c``-``\\x1e``,
    ``\\x85``, U+2028 and U+2029, so a piece spanning one of those (``"\\u2028 –"``) would
    be missed; that was the U+2028 disagreement of issue 9.

    >>> split_lines("a\\u2028b\\nc"), split_lines("x\\n")
    (['a\\u2028b\\n', 'c'], ['x\\n'])
    """
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
