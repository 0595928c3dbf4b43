"""Counting units: how the builder cuts text into candidate pieces before choosing entries.

A unit is a run of letters, a run of digits, or a run of punctuation, each with at most one
leading space glued on (``" стол"``, ``","``, ``" –"``), or one other whitespace character.
Gluing the space into the next unit is what makes ``"стол стул"`` two tokens, not three.

A run longer than ``MAX_UNIT_CHARS`` (``MAX_WORD_CHARS`` for letters) is cut into several
units. Without the bound a separator line of 10,000 ``=`` (or a file of NUL bytes) became
one 10,000-character candidate, and every encoding of the pruning sample then walked it
from every position: build time grew with the square of the run (issue 13).

This is used only to *count* candidates while building. Encoding does not split text into
units: the tokenizer finds the cheapest path over the whole line, so entries may span unit
boundaries (``", что"``, ``" потому что"``, ``".\\n"``).

>>> units("Я был здоров, молод.\\n")
['Я', ' был', ' здоров', ',', ' молод', '.', '\\n']
"""

from __future__ import annotations

import re

MAX_UNIT_CHARS = 24  # longest run of digits, punctuation or underscores in one unit
MAX_WORD_CHARS = 48  # longest run of letters in one unit (Russian words stay whole)
UNIT_RE = re.compile(rf" ?[^\W\d_]{{1,{MAX_WORD_CHARS}}}| ?\d{{1,{MAX_UNIT_CHARS}}}| ?[^\w\s]{{1,{MAX_UNIT_CHARS}}}"
                     rf"| ?_{{1,{MAX_UNIT_CHARS}}}|\s")


def units(line: str) -> list[str]:
    """Cut a line into counting units; ``"".join(units(x)) == x`` always holds."""
    return UNIT_RE.findall(line)


def unit_kind(unit: str) -> str:
    """``"word"``, ``"number"``, ``"punct"`` or ``"space"`` for a unit.

    >>> [unit_kind(u) for u in [" стол", "12", " «", "\\n"]]
    ['word', 'number', 'punct', 'space']
    """
    core = unit.lstrip(" ") or unit
    c = core[0]
    if c.isalpha():
        return "word"
    if c.isdigit():
        return "number"
    if c.isspace():
        return "space"
    return "punct"
