"""HyperTok, the runtime tokenizer: encode, decode, the symbol view, save and load.

Encoding is a shortest-path search: every token costs about 1, with small tie-breaking
differences (entries before fallback pieces before single characters), so each line is
cut into the fewest tokens the vocabulary allows. The search is defined by HF
``tokenizers`` (Rust, built by ``hypertok.core.pipeline``, saved as ``tokenizer.json``);
SentencePiece runs the same search several times faster, so it encodes every line where
it provably gives the same ids (``hypertok.core.engine``, issue 12) and tokenizers the
rest. ``tests/core/reference.py`` has the algorithm in readable pure Python, and tests
check that all three agree.

Lossless for every Python string: characters the vocabulary lacks (emoji, the symbol
pool's own code points, control characters) are spelled with byte tokens. Lone
surrogates, which UTF-8 cannot hold, are spelled with the bytes of their "surrogatepass"
encoding (``\\ud800`` -> ED A0 80) and decoded back with the same error handler. The
``tokenizer.json`` path (Rust strings) cannot take lone surrogates at all.

Special tokens ``<unk> <s> </s> <pad>`` are ids 0-3; those chosen at build time
(``--special-tokens "<|im_start|>,<|im_end|>"``) are the last ids. ``encode`` adds
``<s>``/``</s>`` only when asked, and by default never reads a special token from the text:
a literal ``"<s>"`` or ``"<|im_start|>"`` in the input is text, spelled with ordinary
tokens, so ``decode(encode(x)) == x`` holds for every string, a user's text included.
``encode(x, allow_special=True)`` reads them as HF does: every special token in the text
becomes its one id, exactly as plain ``tokenizer.json`` (``tokenizers``, ``transformers``)
encodes, and ``decode(ids, skip_special_tokens=False)`` gives the text back. Use it for text
you wrote yourself (a chat template), never for user input.

Normalisation is off by default. A vocabulary built with ``--normalize nfc`` puts
``tokenizers.normalizers.NFC`` in front of its pipeline (in ``tokenizer.json`` too, so
every reader gets the same ids), and ``decode(encode(x)) == normalize(x)``: exact for
NFC text (Russian as typed almost always is), and ``x`` composed where it is not, e.g.
decomposed ``й`` (``и`` + U+0306) comes back as one ``й``. ``normalize`` is the normaliser
of ``tokenizer.json`` itself (the Rust ``unicode-normalization`` tables), which equals
``unicodedata.normalize("NFC", x)`` on every character Unicode 3.2 already had; for some
combining marks added since (Unicode 13/14) the two libraries order marks differently.

What it does not do: no building (``hypertok.builder``) and no file format details
(``hypertok.core.format``). It needs only ``tokenizers`` and ``sentencepiece``: no numpy,
no torch.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from ..errors import HyperTokError
from ..files import output_lock
from ..text import iter_text
from .format import (BYTE0, SPECIAL_NAMES, Entry, check_out_dir, entry_bytes, normalizer_name,
                     normalizer_of, parse_byte_piece, read_directory, special_tokens, write_directory)
from .engine import SentencePieceEngine
from .lossless import SURROGATE, SURROGATES, decode_lossless, encode_around, encode_escaping, is_surrogate
from .pipeline import hf_tokenizer

_CHUNK_CHARS = 1 << 16
_UNSET = object()
ENGINES = ("auto", "tokenizers")


def _threads(num_threads: int | None) -> int:
    """Threads for a batch: ``num_threads`` if given (at least 1), else every core."""
    if num_threads is None:
        return os.cpu_count() or 1
    return max(1, int(num_threads))


def _split_chunks(text: str, size: int = _CHUNK_CHARS) -> list[str]:
    """Cut text right after newlines into chunks of about ``size`` characters."""
    chunks, start, n = [], 0, len(text)
    while start < n:
        end = text.find("\n", min(start + size, n) - 1)
        end = n if end < 0 else end + 1
        chunks.append(text[start:end])
        start = end
    return chunks


class HyperTok:
    """A loaded HyperTok vocabulary: encode/decode text as ids or as one symbol per token.

    >>> import tempfile, pathlib
    >>> from hypertok import BuildConfig, build
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "t.txt").write_text("Привет, мир! Мне было тогда лет двадцать пять.\\n" * 300)
    >>> _ = build([d / "t.txt"], d / "tok", BuildConfig(vocab_size=700, mode="word"))
    >>> tok = HyperTok.load(d / "tok")
    >>> tok.decode(tok.encode("Привет, мир! 🙂")) == "Привет, мир! 🙂"
    True
    >>> tok.from_symbols(tok.to_symbols("Привет")) == "Привет"
    True
    """

    def __init__(self, entries: list[Entry], config: dict, path: str | os.PathLike | None = None, hf=None,
                 engine: str = "auto"):
        if engine not in ENGINES:
            raise HyperTokError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
        for i, e in enumerate(entries):
            if e.id != i:
                raise HyperTokError(f"vocabulary entry {i} has id {e.id}; ids must be 0..N-1 in order")
            if not isinstance(e.symbol, str) or len(e.symbol) != 1:
                raise HyperTokError(f"vocabulary entry {i} has the symbol {e.symbol!r}; every token needs exactly one "
                                    f"character as its symbol, the vocabulary is corrupt")
            if not isinstance(e.surface, str) or (e.kind == "byte" and parse_byte_piece(e.surface) is None):
                raise HyperTokError(f"vocabulary entry {i} has the surface {e.surface!r} ({e.kind}); "
                                    f"the vocabulary is corrupt")
        self.entries = entries
        self.config = config
        self.path = Path(path) if path is not None else None
        self.kinds = [e.kind for e in entries]
        self.surfaces = [e.surface for e in entries]
        self.symbols = [e.symbol for e in entries]
        self.specials = dict(SPECIAL_NAMES)
        self.special_tokens = special_tokens(entries)  # every special token and its id
        self.normalizer = normalizer_of(config)
        self._sym2id = {s: i for i, s in enumerate(self.symbols)}
        if len(self._sym2id) != len(entries):
            raise HyperTokError("two tokens share a symbol; the vocabulary is corrupt")
        self._bytes = [entry_bytes(e) for e in entries]
        self._text_bytes = list(self._bytes)  # what decode() writes: special tokens are skipped
        for i in self.special_tokens.values():
            self._text_bytes[i] = b""
        self._special_re = re.compile("|".join(re.escape(t) for t in sorted(self.special_tokens, key=len, reverse=True)))
        self.hf = hf if hf is not None else hf_tokenizer(entries, self.normalizer)
        if normalizer_name(self.hf) != self.normalizer:
            raise HyperTokError(f"the tokenizers pipeline normalises with {normalizer_name(self.hf)!r}, the config "
                                f"says {self.normalizer!r}; the vocabulary is corrupt")
        self.hf.encode_special_tokens = True  # a literal "<s>" in text is text
        # encode_batch_fast (tokenizers >= 0.20) skips character offsets, which we never use.
        self._batch = getattr(self.hf, "encode_batch_fast", self.hf.encode_batch)
        self.engine = engine
        self._fast = _UNSET

    # -- size and description -------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.entries)

    @property
    def vocab_size(self) -> int:
        return len(self.entries)

    def kind_counts(self) -> dict[str, int]:
        """How many tokens of each kind, e.g. ``{'word': 30000, 'fallback': 4000, ...}``."""
        return dict(sorted(Counter(self.kinds).items(), key=lambda kv: -kv[1]))

    def __repr__(self) -> str:
        mode = self.config.get("build", {}).get("mode", "?")
        return f"HyperTok(size={len(self)}, mode={mode!r}, path={str(self.path) if self.path else None!r})"

    # -- encoding ---------------------------------------------------------------------------
    def _engine(self) -> SentencePieceEngine | None:
        """The SentencePiece engine, built on first use (``None``: tokenizers encodes all)."""
        if self._fast is _UNSET:
            self._fast = SentencePieceEngine.for_entries(self.entries) if self.engine == "auto" else None
        return self._fast

    def _hf_encode(self, text: str) -> list[int]:
        """tokenizers' ids for valid UTF-8 text (a long text in parallel blocks of whole lines)."""
        if len(text) <= _CHUNK_CHARS:
            return self.hf.encode(text, add_special_tokens=False).ids
        ids: list[int] = []
        for enc in self._batch(_split_chunks(text), add_special_tokens=False):
            ids.extend(enc.ids)
        return ids

    def _hf_lines(self, texts: list[str]) -> list[list[int]]:
        if all(len(t) <= _CHUNK_CHARS for t in texts):
            return [enc.ids for enc in self._batch(texts, add_special_tokens=False)]
        return [self._hf_encode(t) for t in texts]

    def _encode_valid(self, texts: list[str], threads: int) -> list[list[int]]:
        """Ids of texts without lone surrogates: SentencePiece where it is exact, else tokenizers."""
        fast = self._engine()
        if fast is None:
            return self._hf_lines(texts)
        if self.hf.normalizer is not None:  # the engine reads text as tokenizers' model sees it
            texts = [self.hf.normalizer.normalize_str(t) for t in texts]
        return fast.encode(texts, self._hf_lines, threads)

    def _encode_any(self, text: str, threads: int = 1) -> list[int]:
        """Ids of any text: each lone surrogate spelled with the bytes of its surrogatepass encoding."""
        return encode_escaping(text, SURROGATE, lambda t: self._encode_valid([t], threads)[0],
                               lambda b: BYTE0 + b)

    def _encode_special(self, text: str, threads: int = 1) -> list[int]:
        """Special tokens in ``text`` as their ids, the text between them encoded as usual."""
        return encode_around(text, self._special_re, lambda t: self._encode_any(t, threads),
                             lambda s: [self.special_tokens[s]])

    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False, allow_special: bool = False) -> list[int]:
        """Token ids for ``text``; ``<s>``/``</s>`` only when asked.

        ``allow_special``: special tokens written in ``text`` (``<s>``, ``<|im_start|>``) become
        their ids, as plain ``tokenizer.json`` reads them; by default they are text like any
        other. A text longer than 64k characters is encoded on all cores, line by line.
        Raises ``HyperTokError`` if ``text`` is not a ``str``.

        >>> import tempfile, pathlib
        >>> from hypertok import BuildConfig, build
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "t.txt").write_text("Привет, мир!\\n" * 300)
        >>> tok = build([d / "t.txt"], d / "tok", BuildConfig(vocab_size=700, mode="word", special_tokens=["<|im_end|>"]))
        >>> tok.special_tokens["<|im_end|>"] == len(tok) - 1, len(tok.encode("<|im_end|>")) > 1
        (True, True)
        >>> ids = tok.encode("мир<|im_end|>", allow_special=True)
        >>> ids[-1] == len(tok) - 1, tok.decode(ids), tok.decode(ids, skip_special_tokens=False)
        (True, 'мир', 'мир<|im_end|>')
        """
        if not isinstance(text, str):
            raise HyperTokError(f"encode takes a str, got {type(text).__name__}")
        threads = _threads(None) if len(text) > _CHUNK_CHARS else 1
        ids = self._encode_special(text, threads) if allow_special else self._encode_any(text, threads)
        if add_bos:
            ids.insert(0, SPECIAL_NAMES["bos"])
        if add_eos:
            ids.append(SPECIAL_NAMES["eos"])
        return ids

    def normalize(self, text: str) -> str:
        """``text`` as the encoder sees it: NFC-composed for a ``--normalize nfc`` vocabulary,
        else unchanged. ``decode(encode(x)) == normalize(x)`` for every string."""
        if self.hf.normalizer is None:
            return text
        norm = self.hf.normalizer.normalize_str
        parts = re.split(f"([{SURROGATES}])", text)  # lone surrogates (Rust strings cannot hold them) stay
        return "".join(p if len(p) == 1 and is_surrogate(p) else norm(p) for p in parts if p)

    def encode_batch(self, texts: list[str], add_bos: bool = False, add_eos: bool = False,
                     allow_special: bool = False, num_threads: int | None = None) -> list[list[int]]:
        """``[encode(t) for t in texts]``, on ``num_threads`` threads (default: every core).

        The texts' lines are shared out among the threads, so a batch of many texts or of a
        few long ones scales alike.
        """
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise HyperTokError(f"encode_batch: item {i} is {type(t).__name__}, not str")
        threads = _threads(num_threads)
        odd = [i for i, t in enumerate(texts) if SURROGATE.search(t) or (allow_special and self._special_re.search(t))]
        if odd:
            out: list[list[int]] = [None] * len(texts)  # type: ignore[list-item]
            for i in odd:
                out[i] = (self._encode_special if allow_special else self._encode_any)(texts[i], threads)
            plain = [i for i, got in enumerate(out) if got is None]
            for i, ids in zip(plain, self._encode_valid([texts[i] for i in plain], threads)):
                out[i] = ids
        else:
            out = self._encode_valid(texts, threads)
        if add_bos or add_eos:
            out = [([1] if add_bos else []) + ids + ([2] if add_eos else []) for ids in out]
        return out

    def encode_stream(self, source, block_chars: int = 1 << 22, encoding: str = "utf-8",
                      num_threads: int | None = None) -> Iterator[list[int]]:
        """Ids of a text larger than memory, one list per block of whole lines.

        ``source`` is a file path (``.xz``, ``.gz``, ``.zst`` read decompressed, streamed) or
        an iterable of ``str`` pieces (split anywhere). Lines never share a token except
        through their newline, so the blocks are cut after newlines and the concatenated
        lists equal ``encode(whole text)``. Memory stays at about ``block_chars``. Each block's
        lines are encoded on ``num_threads`` threads (default: every core).

        >>> import tempfile, pathlib
        >>> from hypertok import BuildConfig, build
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "t.txt").write_text("да\\nнет\\n" * 300)
        >>> tok = build([d / "t.txt"], d / "tok", BuildConfig(vocab_size=700, mode="word"))
        >>> [i for ids in tok.encode_stream(["да\\nн", "ет"]) for i in ids] == tok.encode("да\\nнет")
        True
        """
        if isinstance(source, (str, os.PathLike)):
            source = iter_text(source, encoding, flag="encoding=")
        threads = _threads(num_threads)
        pending: list[str] = []
        size = 0
        for piece in source:
            if not isinstance(piece, str):
                raise HyperTokError(f"encode_stream: pieces must be str, got {type(piece).__name__}")
            pending.append(piece)
            size += len(piece)
            if size >= block_chars:
                text = "".join(pending)
                cut = text.rfind("\n") + 1
                if cut:
                    yield self._encode_any(text[:cut], threads)
                    pending, size = [text[cut:]], len(text) - cut
        text = "".join(pending)
        if text:
            yield self._encode_any(text, threads)

    # -- decoding ---------------------------------------------------------------------------
    def _check_ids(self, ids, what: str = "decode") -> None:
        n = len(self.entries)
        for pos, i in enumerate(ids):
            if not isinstance(i, int) or isinstance(i, bool):
                try:
                    i = int(i)
                except (TypeError, ValueError):
                    raise HyperTokError(f"{what}: item {pos} is {i!r}, not an integer id") from None
            if not 0 <= i < n:
                raise HyperTokError(f"{what}: id {i} at position {pos} is out of range 0..{n - 1}")

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        """Text for token ids; special tokens are skipped unless ``skip_special_tokens=False``.
        Out-of-range ids raise ``HyperTokError`` naming the position.

        Byte tokens that do not form valid UTF-8 (only possible for ids that ``encode`` did
        not produce) decode to U+FFFD, as in HF tokenizers.
        """
        ids = list(ids)
        table = self._text_bytes if skip_special_tokens else self._bytes
        try:
            if min(ids, default=0) < 0:
                raise IndexError
            data = b"".join([table[i] for i in ids])
        except (IndexError, TypeError):
            self._check_ids(ids)
            raise
        return decode_lossless(data)

    # -- symbol view ------------------------------------------------------------------------
    def to_symbols(self, text: str) -> str:
        """The text as one Unicode symbol per token ("the archiver" view)."""
        symbols = self.symbols
        return "".join([symbols[i] for i in self.encode(text)])

    def from_symbols(self, symbols: str) -> str:
        """Inverse of ``to_symbols``; a character that is no token's symbol raises ``HyperTokError``."""
        table = self._sym2id
        try:
            ids = [table[c] for c in symbols]
        except KeyError:
            pos = next(p for p, c in enumerate(symbols) if c not in table)
            raise HyperTokError(
                f"from_symbols: character {symbols[pos]!r} (U+{ord(symbols[pos]):04X}) at position {pos} "
                f"is not a symbol of this vocabulary"
            ) from None
        return self.decode(ids, skip_special_tokens=False)

    def inspect(self, text: str) -> str:
        """A readable segmentation: one line per token with id, kind, symbol and surface."""
        rows = [f"{'id':>7}  {'kind':<8} sym  surface"]
        for i in self.encode(text):
            e = self.entries[i]
            extra = f"  [{e.lemma} {e.tags}]" if e.lemma else ""
            rows.append(f"{i:>7}  {e.kind:<8} {e.symbol!s:<4} {e.surface!r}{extra}")
        return "\n".join(rows)

    # -- directory format (hypertok.core.format) ----------------------------------------------
    def save(self, directory: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the directory: a new one appears whole (temporary sibling, then rename).

        An existing ``directory`` is written only with ``overwrite`` and only when it is a
        HyperTok directory (or empty); HyperTok's four files are replaced and every other
        file there stays, as with transformers' ``save_pretrained``. Nothing is ever removed.
        The write holds ``DIRECTORY.lock`` (:func:`hypertok.files.output_lock`): a second save
        or build of the same directory meanwhile fails with one line naming the lock, and the
        checks are made again under it, so a folder another build made meanwhile is never
        replaced without ``overwrite`` (issue 24, item 6).
        """
        out = check_out_dir(directory, overwrite)
        with output_lock(out):
            out = check_out_dir(directory, overwrite)  # again, under the lock
            self.config = write_directory(out, self.entries, self.hf, self.config)
        self.path = out
        return out

    @classmethod
    def load(cls, directory: str | os.PathLike, engine: str = "auto") -> "HyperTok":
        """Load a tokenizer directory, checking its format version and file hashes.

        ``engine="tokenizers"`` encodes every line with the ``tokenizer.json`` pipeline;
        ``"auto"`` uses SentencePiece where it gives the same ids (``hypertok.core.engine``).
        """
        entries, config, hf = read_directory(directory)
        return cls(entries, config, path=Path(directory), hf=hf, engine=engine)

    # -- the names transformers users expect (issue 11) --------------------------------------
    def decode_batch(self, batch, skip_special_tokens: bool = True) -> list[str]:
        """``[decode(ids) for ids in batch]``."""
        return [self.decode(ids, skip_special_tokens) for ids in batch]

    def save_pretrained(self, directory: str | os.PathLike, overwrite: bool = False) -> Path:
        """:meth:`save` under transformers' name."""
        return self.save(directory, overwrite)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> "HyperTok":
        """:meth:`load` under transformers' name (a local directory; nothing is downloaded)."""
        return cls.load(directory)
