"""The fast encoder of HyperTok's Python API: SentencePiece's Viterbi over the same vocabulary.

HyperTok encodes with a Unigram model (``hypertok.core.pipeline``). HF ``tokenizers`` runs
it at about a third of SentencePiece BPE's speed on this vocabulary: its trie keeps a hash
map per byte and allocates a string for every piece that matches, at every character of
a line (issue 12; ``experiments/compression/run_speed.py``, ``speed.md``). SentencePiece
runs the *same* algorithm, the optimized Viterbi of ``unigram_model.cc`` (HF's
``encode_optimized`` is a port of it), over a double-array trie, several times faster.
This module writes the HyperTok vocabulary as a SentencePiece model (ids, pieces and
scores unchanged, identity normalizer, no dummy prefix, spaces kept as spaces) and
encodes through it wherever the two engines provably give the same ids:

1. **Same arithmetic.** SentencePiece keeps scores and path sums in float32, tokenizers in
   float64. Builders since issue 12 put every score on a grid of ``2**-SCORE_BITS``
   (``hypertok.core.format.grid_score``), and a segment of at most ``max_line``
   characters has at most ``max_line`` tokens, so every path sum is a multiple of
   ``2**-12`` below ``2**12`` in magnitude: exact in float32 and float64 alike. Both
   engines then make the same comparisons, ties included (the first path found keeps a
   tie in both). A vocabulary whose scores are off the grid (one built before issue 12)
   gets no engine.
2. **Same lattice.** Lines are cut after ``"\n"`` as the ``tokenizer.json`` pre-tokenizer
   cuts them. Special and byte pieces are lattice edges in tokenizers only; at -50
   against a spelling of at most 6 pieces of about -1 they never win. Unknown characters
   score ``min_score - 10`` in both, but tokenizers takes that minimum over the special
   and byte pieces too (-50), SentencePiece over normal pieces only: so a line with a
   character that is inside a longer piece but no piece itself goes to tokenizers.
3. **Cuts where the best path must pass.** Where no piece spans a position, every path
   of the line passes through it, so the best path of the line is the best path of each
   side, joined (with exact sums, ties included). Such positions are the two sides of a
   character that is in no piece at all (spelled with its UTF-8 bytes, as tokenizers
   spells an unknown character), and, in a line too long for float32, a space that
   :meth:`SentencePieceEngine._spanned` finds no piece across.

Every other line (and every off-grid vocabulary) goes to the tokenizers pipeline, so the
ids are always those of ``tokenizer.json``; ``tests/core/test_engine.py`` checks each claim
against tokenizers on text made of the vocabulary's pieces, and ``test_ruslit.py`` on the
real corpus.

What it does not do: no line that breaks a condition above, no lone surrogates (the
caller spells those with bytes), no decoding. It needs only ``sentencepiece``, a
dependency of the package, imported when the first text is encoded.
"""

from __future__ import annotations

import re

from .format import BYTE0, N_BYTES, SCORE_BITS, SPECIALS, Entry, byte_piece, on_score_grid
from .protobuf import field as _field
from .protobuf import float_field as _float
from .protobuf import int_field as _int

_LINE = re.compile(r"[^\n]*\n|[^\n]+")

# ModelProto enums (sentencepiece_model.proto)
_NORMAL, _UNKNOWN, _CONTROL, _BYTE = 1, 2, 3, 6
_UNIGRAM = 1


def _piece_type(e: Entry) -> int:
    if e.id == 0:
        return _UNKNOWN
    if e.kind == "special":
        return _CONTROL
    if e.kind == "byte":
        return _BYTE
    return _NORMAL


def sentencepiece_model(entries: list[Entry]) -> bytes:
    """The serialized SentencePiece ``ModelProto`` of a HyperTok vocabulary (same ids).

    Written by hand (the protobuf package is not needed): pieces with score and type, a
    Unigram trainer spec with byte fallback and the special ids, and an identity
    normalizer that keeps every space.

    >>> from hypertok.core.format import Entry
    >>> len(sentencepiece_model([Entry(0, "<unk>", "special", -50.0)])) > 0
    True
    """
    out = bytearray()
    for e in entries:
        out += _field(1, _field(1, e.surface.encode("utf-8")) + _float(2, e.score) + _int(3, _piece_type(e)))
    trainer = (_int(3, _UNIGRAM) + _int(4, len(entries)) + _int(35, 1)
               + b"".join(_int(40 + i, i) for i in range(len(SPECIALS))))  # unk_id 0, bos 1, eos 2, pad 3
    out += _field(2, trainer)
    normalizer = _field(1, b"identity") + _int(3, 0) + _int(4, 0) + _int(5, 0)  # no dummy prefix, keep spaces
    out += _field(3, normalizer)
    return bytes(out)


class SentencePieceEngine:
    """SentencePiece over a HyperTok vocabulary, for the lines where it equals tokenizers.

    Build it with :meth:`for_entries`, which returns ``None`` when the vocabulary does not
    qualify (scores off the grid, or SentencePiece refuses the model).
    """

    def __init__(self, sp, entries: list[Entry], max_line: int):
        self.sp = sp
        self.max_line = max_line
        surfaces = [e.surface for e in entries if _piece_type(e) == _NORMAL]
        singles = {s for s in surfaces if len(s) == 1}
        self._pieces = {e.surface for e in entries}  # every edge of tokenizers' lattice
        self._longest = max(map(len, self._pieces))
        self._inside = {c for s in surfaces if len(s) > 1 for c in s} - singles  # in a piece, not one
        # One search finds a character that is not a one-character piece.
        self._other = re.compile("[^" + "".join(re.escape(c) for c in sorted(singles)) + "]")

    @classmethod
    def for_entries(cls, entries: list[Entry]) -> "SentencePieceEngine | None":
        normal = [e for e in entries if _piece_type(e) == _NORMAL]
        if not normal or not all(on_score_grid(e.score) for e in entries):
            return None
        if [e.surface for e in entries[BYTE0:BYTE0 + N_BYTES]] != [byte_piece(b) for b in range(N_BYTES)]:
            return None  # byte ids are spelled BYTE0 + b below
        import sentencepiece as spm

        try:
            sp = spm.SentencePieceProcessor(model_proto=sentencepiece_model(entries))
        except (RuntimeError, OSError):  # a vocabulary SentencePiece refuses keeps tokenizers
            return None
        if sp.get_piece_size() != len(entries):
            return None
        # Every prefix sum of a path is a multiple of 2**-SCORE_BITS; float32 holds such
        # numbers exactly up to 2**(24 - SCORE_BITS) in magnitude, and a segment of n
        # characters has at most n tokens.
        max_line = int(2 ** (24 - SCORE_BITS) / max(abs(e.score) for e in normal)) - 1
        return cls(sp, entries, max_line)

    def takes(self, line: str) -> bool:
        """Whether this whole line (no newline but at its end) is encoded here in one piece."""
        return len(line) <= self.max_line and not self._other.search(line)

    def _spanned(self, line: str, p: int) -> bool:
        """Whether a piece of the vocabulary occurs in ``line`` across position ``p``."""
        pieces, longest = self._pieces, self._longest
        for s in range(max(0, p - longest + 1), p):
            for e in range(p + 1, min(len(line), s + longest) + 1):
                if line[s:e] in pieces:
                    return True
        return False

    def _parts(self, line: str) -> list | None:
        """``line`` as parts to encode here (``str``) and byte ids (``list``), or ``None``.

        Where no piece spans a position, the best path of the line passes through it, so
        the line may be cut there: next to a character that is in no piece at all (it is
        spelled with its UTF-8 bytes, as tokenizers does with an unknown character), and,
        in a line too long for float32, before a space no piece spans. A character that
        is in a longer piece but not a piece itself (the two unknown-character scores
        differ), or a long line with no such space, leaves the line to tokenizers.
        """
        parts: list = []
        start = 0
        for m in self._other.finditer(line):
            if m.group() in self._inside:
                return None
            if start < m.start():
                parts.append(line[start:m.start()])
            parts.append([BYTE0 + b for b in m.group().encode("utf-8")])
            start = m.end()
        if start < len(line):
            parts.append(line[start:])
        out: list = []
        for part in parts:
            while isinstance(part, str) and len(part) > self.max_line:
                cut = self._cut(part)
                if cut is None:
                    return None
                out.append(part[:cut])
                part = part[cut:]
            out.append(part)
        return out

    def _cut(self, text: str, tries: int = 64) -> int | None:
        """A position in the second half of the first ``max_line`` characters that no
        piece spans: the start of a run of spaces, searched from the right."""
        lo, p = self.max_line // 2, self.max_line
        for _ in range(tries):
            p = text.rfind(" ", lo, p)
            if p <= lo:
                return None
            if text[p - 1] != " " and not self._spanned(text, p):
                return p
        return None

    def encode(self, texts: list[str], fallback, threads: int = 1) -> list[list[int]]:
        """Ids of valid UTF-8 texts; lines this engine does not take go to ``fallback``
        (a function from a list of lines to their ids: the tokenizers pipeline)."""
        lines: list[str] = []
        spans: list[tuple[int, int]] = []
        for t in texts:
            start = len(lines)
            if "\n" in t:
                lines.extend(_LINE.findall(t))
            elif t:
                lines.append(t)
            spans.append((start, len(lines)))
        takes = self.takes
        whole = [takes(line) for line in lines]
        if all(whole):
            ids = self.encode_lines(lines, threads)
        else:
            ids = self._encode_mixed(lines, whole, fallback, threads)
        out = []
        for a, b in spans:
            if b - a == 1:
                out.append(ids[a])
            else:
                out.append([i for line_ids in ids[a:b] for i in line_ids])
        return out

    def encode_lines(self, lines: list[str], threads: int = 1) -> list[list[int]]:
        """Ids of lines that :meth:`takes` accepts (or parts that :meth:`_parts` made)."""
        return self.sp.encode(lines, num_threads=threads)

    def _encode_mixed(self, lines: list[str], whole: list[bool], fallback, threads: int) -> list[list[int]]:
        jobs: list[str] = []
        plans: list = []  # per line: an index into jobs, a list of parts, or None (tokenizers)
        for line, ok in zip(lines, whole):
            if ok:
                plans.append(len(jobs))
                jobs.append(line)
                continue
            parts = self._parts(line)
            plans.append(None if parts is None else self._index(parts, jobs))
        done = self.encode_lines(jobs, threads)
        rest = [line for line, plan in zip(lines, plans) if plan is None]
        others = iter(fallback(rest)) if rest else iter(())
        ids: list[list[int]] = []
        for plan in plans:
            if plan is None:
                ids.append(next(others))
            elif isinstance(plan, int):
                ids.append(done[plan])
            else:
                ids.append([i for p in plan for i in (done[p] if isinstance(p, int) else p)])
        return ids

    @staticmethod
    def _index(parts: list, jobs: list[str]) -> list:
        """Parts with each string moved to ``jobs`` and replaced by its index there."""
        out = []
        for p in parts:
            if isinstance(p, str):
                out.append(len(jobs))
                jobs.append(p)
            else:
                out.append(p)
        return out
