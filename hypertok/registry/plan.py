"""Planning a vocabulary transfer: the target vocabulary, and the recipe that maps it onto the base.

What it does (issue 5; its own module since issue 21):

- :func:`load_vocabulary` reads the target vocabulary: a HyperTok directory, or any
  directory with an HF ``tokenizer.json`` whose pieces use ``▁`` for spaces and
  ``<0xAB>`` byte fallback (the BPE-extended baseline of the experiment). Both come back
  as registry tokenizers with a piece view (``surfaces``, ``kinds``, ``bytes_of``,
  ``specials``, ``is_entry``).
- :func:`plan_transfer` makes a :class:`~hypertok.registry.recipe.Recipe`: which model row
  each new-vocabulary id uses, which rows are new, and the base pieces each new row is
  initialised from. ``extend`` keeps every base row and appends the entries the base lacks
  (fallback, character and byte pieces are spelled with the base's own pieces), then the
  special tokens chosen at build time (``<|im_start|>``; a base control piece of that name
  keeps its row); ``replace`` uses the new vocabulary alone, every row re-initialised.

The base is any :class:`~hypertok.registry.family.BaseFamily` (:func:`~hypertok.registry.bases.find_base`):
planning reads only its piece view, so it is the same for every kind.

What it does not do: no tokenizer (:mod:`.adapted`), no torch, no row initialisation
(``hypertok.adapt.recipe``).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import HyperTokError
from .family import BaseFamily
from .hf import HFTokenizer
from .hypertok_dir import HyperTokTokenizer
from .recipe import STRATEGIES, Recipe

__all__ = ["Vocabulary", "load_vocabulary", "plan_transfer"]

Vocabulary = HyperTokTokenizer | HFTokenizer  # a tokenizer with the piece view


def load_vocabulary(directory: str | os.PathLike) -> Vocabulary:
    """A HyperTok directory (``vocab.jsonl``) or a plain ``tokenizer.json`` directory."""
    d = Path(directory)
    if (d / "vocab.jsonl").is_file():
        return HyperTokTokenizer.from_dir(d)
    if (d / "tokenizer.json").is_file():
        return HFTokenizer.from_dir(d)
    raise HyperTokError(
        f"{d}: not a tokenizer directory (no vocab.jsonl, no tokenizer.json); "
        f"build one with `hypertok build --out {d}`")


def plan_transfer(base: BaseFamily, new: Vocabulary, strategy: str, base_rows: int | None = None) -> Recipe:
    """Decide every new-vocabulary id's model row and the sources of each new row.

    ``base_rows``: rows of the base embedding matrix (``config.vocab_size``), which may exceed
    the tokenizer's size when the checkpoint padded its vocabulary; new rows go after them.

    Raises HyperTokError when the two vocabularies cannot be reconciled (no shared specials,
    or the base cannot spell the entries).
    """
    if strategy not in STRATEGIES:
        raise HyperTokError(f"--strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}")
    V = len(base) if base_rows is None else base_rows
    if V < len(base):
        raise HyperTokError(f"{base.path}: the tokenizer has {len(base)} pieces but the model only {V} embedding "
                            f"rows; this tokenizer does not belong to that base model")
    for name in ("bos", "eos"):
        if name not in new.specials:
            raise HyperTokError(f"{new.path}: the tokenizer has no {name} token (<s>/</s>); cannot map it to the base")
    if base.bos_id is None or base.eos_id is None or base.bos_id < 0 or base.eos_id < 0:
        raise HyperTokError(f"{base.path}: the base tokenizer has no bos/eos pieces")
    filler = base.unk_id if base.unk_id is not None else base.pad_id  # a base without <unk> (Llama 3): its pad/eos
    special_src = {new.specials["bos"]: base.bos_id, new.specials["eos"]: base.eos_id}
    if "unk" in new.specials:
        special_src[new.specials["unk"]] = filler
    if "pad" in new.specials:
        special_src[new.specials["pad"]] = base.pad_id
    surfaces = new.surfaces
    bytes_of = new.bytes_of
    needs = [i for i in range(len(new)) if i not in special_src and bytes_of[i] is None]
    enc = dict(zip(needs, base.encode_batch([surfaces[i] for i in needs])))
    unk_share = sum(1 for i in needs if base.unk_id in enc[i]) / max(1, len(needs))
    if needs and unk_share > 0.5:
        raise HyperTokError(f"{base.path} cannot spell {unk_share:.0%} of the entries of {new.path} "
                            f"(base tokenizer gives <unk>); this tokenizer and base cannot be reconciled")

    def src(i: int) -> list[int]:
        if i in special_src:
            return [special_src[i]]
        if bytes_of[i] is not None:
            return base.pieces_for("", bytes_of[i])
        return enc[i] or [filler]

    if strategy == "replace":
        n = len(new)
        return Recipe("replace", V, n, list(range(n)), list(range(n)), [src(i) for i in range(n)],
                      bos=new.specials["bos"], eos=new.specials["eos"], pad=new.specials.get("pad", new.specials["eos"]),
                      base_tokenizer=base.record())
    new_to_model, new_rows, sources = [], [], []
    added = set(getattr(new, "added_specials", {}).values())
    base_named = {p: i for i, p in enumerate(base.pieces) if not base.surfaces[i] and base.bytes_of[i] is None}
    for i in range(len(new)):
        if i in special_src:
            new_to_model.append(special_src[i])
        elif i in added:  # a chat/control token: the base's piece of that name, else a new row (the last ones)
            m = base_named.get(surfaces[i], base.single.get(surfaces[i]))
            if m is None:
                m = V + len(new_rows)
                new_rows.append(m)
                sources.append(enc[i])
            new_to_model.append(m)
        elif not new.is_entry(i):
            new_to_model.append(-1)
        elif len(enc[i]) == 1 or surfaces[i] in base.single:  # a base piece already (BPE may not pick it)
            new_to_model.append(base.single.get(surfaces[i], enc[i][0]))
        else:
            new_to_model.append(V + len(new_rows))
            new_rows.append(V + len(new_rows))
            sources.append(enc[i])
    if not new_rows:
        raise HyperTokError(f"{new.path}: every entry is already one base piece; `extend` adds nothing")
    return Recipe("extend", V, V + len(new_rows), new_to_model, new_rows, sources,
                  bos=base.bos_id, eos=base.eos_id, pad=base.pad_id, base_tokenizer=base.record())
