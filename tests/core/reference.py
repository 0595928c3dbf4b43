"""The readable twin of the fast encoder: the same shortest-path search in pure Python.

``hypertok.tokenizer`` encodes with HF ``tokenizers`` (Rust). This module does exactly
what that Unigram model does, slowly and visibly, so the algorithm can be read and so a
test can check on real text that the two give identical ids:

1. Split the text after every newline; lines are encoded independently.
2. For each line, walk left to right. From each position, every vocabulary piece that
   starts there extends the best path to its end: ``best[end] = best[start] + score``,
   kept only if strictly better (so ties go to the path found first).
3. A character no piece starts with is "unknown": it costs ``min_score - 10`` and is
   finally spelled with its UTF-8 byte tokens.
4. Walk back from the end of the line to read off the pieces.
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
    for line in text.splitlines(keepends=True) if "\r" not in text else _split_newlines(text):
        ids.extend(encode_line(line, pieces, max_len, unk_score, byte0))
    return ids


def _split_newlines(text: str) -> list[str]:
    # str.splitlines also splits at \r, \x0b, \u2028 ...; the encoder splits at \n only.
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def fewest_tokens(text: str, pieces: set[str], max_len: int, forbid_whole: bool = False) -> int:
    """The fewest pieces that spell ``text`` (unknown characters count one each).

    With ``forbid_whole`` the piece equal to the whole text is not used: this is what the
    builder asks to learn what removing an entry would cost.

    >>> fewest_tokens(" в том", {" в", " том", " в том", " ", "т", "о", "м"}, 6, forbid_whole=True)
    2
    """
    n = len(text)
    inf = n + 1
    best = [0] + [inf] * n
    for start in range(n):
        b = best[start] + 1
        for end in range(start + 1, min(n, start + max_len) + 1):
            if b < best[end] and (end - start == 1 or text[start:end] in pieces):
                if forbid_whole and start == 0 and end == n:
                    continue
                best[end] = b
    return best[n]
