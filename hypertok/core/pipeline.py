"""The one builder of HF ``tokenizers`` pipelines for HyperTok vocabularies.

A HyperTok vocabulary becomes a Unigram model whose vocabulary *is* the HyperTok
vocabulary (not thousands of ``add_tokens``), with a line splitter, byte fallback and a
decoder, following the presets of huggingface/tokenizers (normalizer -> pre-tokenizer ->
model -> decoder). Any module that assembles such a pipeline calls this one (issue 9).

What it does not do: no file I/O (``hypertok.core.format`` saves it), and no training
(``hypertok.builder.fallback`` trains the fallback pieces).

>>> from hypertok.core.format import Entry, SPECIALS
>>> entries = [Entry(i, s, "special", -50.0) for i, s in enumerate(SPECIALS)]
>>> entries += [Entry(4, "a", "char", -1.1), Entry(5, "ab", "word", -1.0), Entry(6, "b", "char", -1.1)]
>>> hf_tokenizer(entries).encode("aab", add_special_tokens=False).ids
[4, 5]
"""

from __future__ import annotations

from .format import NORMALIZERS, SPECIALS, Entry, added_specials


def hf_tokenizer(entries: list[Entry], normalize: str = "none"):
    """Build the HF ``tokenizers`` pipeline for these entries (no file written).

    Each entry's ``surface`` and ``score`` become a Unigram piece; ``<unk>`` is id 0 and
    unknown characters fall back to the ``<0xAB>`` byte pieces. Lines are independent: no
    token spans a newline except as its last character. The special tokens chosen at build
    time (the last ids) are added tokens only, never Unigram pieces, so text is never
    spelled with them. ``normalize="nfc"`` puts ``normalizers.NFC`` in front.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

    if normalize not in NORMALIZERS:
        raise ValueError(f"unknown normaliser {normalize!r}; choose one of {', '.join(NORMALIZERS)}")
    extra = added_specials(entries)
    pieces = entries[:len(entries) - len(extra)]
    model = models.Unigram([(e.surface, e.score) for e in pieces], unk_id=0, byte_fallback=True)
    tok = Tokenizer(model)
    if normalize == "nfc":
        tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("\n"), behavior="merged_with_previous")
    tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Fuse()])
    tok.add_special_tokens(list(SPECIALS) + [AddedToken(e.surface, special=True, normalized=False) for e in extra])
    return tok


UNTRAINED_KINDS = ("unigram", "byte-level-bpe", "metaspace-unigram")


def untrained(kind: str):
    """An empty pipeline for a ``tokenizers`` trainer to fill.

    - ``unigram``: a bare Unigram model, no pre-tokenizer (the builder's fallback pieces);
    - ``byte-level-bpe``: GPT-2 style byte-level BPE (the ``hf-bpe`` baseline);
    - ``metaspace-unigram``: SentencePiece-style Unigram with ``\u2581`` (the ``hf-unigram`` baseline).

    >>> type(untrained("byte-level-bpe").model).__name__
    'BPE'
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    if kind == "unigram":
        return Tokenizer(models.Unigram())
    if kind == "byte-level-bpe":
        tk = Tokenizer(models.BPE())
        tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tk.decoder = decoders.ByteLevel()
        return tk
    if kind == "metaspace-unigram":
        tk = Tokenizer(models.Unigram())
        tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
        tk.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
        return tk
    raise ValueError(f"unknown pipeline kind {kind!r}; choose one of {', '.join(UNTRAINED_KINDS)}")
