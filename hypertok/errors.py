"""The one exception type HyperTok raises for bad user input.

Every message names the file (and, where it helps, the line or byte offset) and says
what to do next. Internal invariants use ``assert``; user input never does.
"""


class HyperTokError(ValueError):
    """Bad input: a corpus, a tokenizer directory, ids or options HyperTok cannot use."""
