"""The model's one ``tokenizer.json`` of a transfer: every model row a piece (issue 11; its own module since issue 21).

What it does: :func:`model_tokenizer` builds the file an adapted model reads (ids are model
rows), which ``hypertok adapt`` saves and serving loads. For ``extend`` it is one Unigram model
over every model row (:func:`model_pieces`): the base's rows as the base writes them
(:meth:`~hypertok.registry.family.BaseFamily.model_rows`), then HyperTok's new entries. Over a
SentencePiece-style base (a ``tokenizer.model`` or a SentencePiece-style ``tokenizer.json``) its
pieces are text (``▁`` written as a space) with ``<0xAB>`` byte fallback; over a byte-level base
they are written in GPT-2's byte-level characters, HyperTok's entries too (``" мир"`` is
``"ĠÐ¼Ð¸ÑĢ"``), behind a ByteLevel pre-tokenizer (no regex: entries may span words) and a
ByteLevel decoder, so the 256 byte pieces of the base spell whatever the pieces do not, and no
unknown token is needed. For ``replace`` it is the new vocabulary's own pipeline. Both get a
post-processor that adds bos when the base adds it.

What it does not do: no planning (:mod:`.plan`), no lossless escaping of text (that is
:class:`~hypertok.registry.adapted.AdaptedTokenizer`'s), no torch.
"""

from __future__ import annotations

import json

from ..core.format import on_score_grid
from ..errors import HyperTokError
from .family import BASE_PIECE_SCORE, BASE_PIECE_SPREAD, CHAR_SCORE, RARE_SCORE, BaseFamily
from .hypertok_dir import HyperTokTokenizer
from .plan import Vocabulary
from .recipe import Recipe

__all__ = ["SCORE_DECIMALS", "json_score", "BASE_PIECE_SCORE", "BASE_PIECE_SPREAD", "CHAR_SCORE", "RARE_SCORE", "model_pieces",
           "model_tokenizer"]

# Every score of the model tokenizer off HyperTok's grid is rounded to 9 decimals (:func:`json_score`; a
# grid score is exact as it is), so that it survives tokenizers' JSON writer and reader exactly: its reader (serde_json) gives some doubles back one unit in the
# last place off, which flips the cut of two equally good segmentations between the tokenizer
# that trained and the file that serves (seen on ruslit dev over a full-size Tekken extend). A
# decimal of at most 15 significant digits is read back exactly. The trainer also reads the
# file's JSON back (``AdaptedTokenizer``), so both parse the same text.
SCORE_DECIMALS = 9


def json_score(score: float) -> float:
    """A score as the model tokenizer writes it: kept exactly when it lies on HyperTok's grid of
    ``2**-SCORE_BITS`` (at most 14 significant digits, which JSON gives back exactly), else rounded
    to ``SCORE_DECIMALS``. Rounding a grid score would break exact ties between two equally good
    cuts by rounding noise: the adapted model's tokenizer cut 3% of ruslit dev lines unlike HyperTok's
    own, and unlike llama.cpp's search over the same scores (issue 22).

    >>> json_score(-1.01806640625), json_score(-1.0123456789012)
    (-1.01806640625, -1.012345679)
    """
    return float(score) if on_score_grid(score) else round(score, SCORE_DECIMALS)


def _hf_pipeline_of(new: Vocabulary):
    """The HF ``tokenizers`` pipeline a vocabulary encodes with (HyperTok or tokenizer.json),
    a copy (the post-processor set on it stays ours) with Unigram scores as :func:`json_score` writes them."""
    from tokenizers import Tokenizer as HFTk

    hf = new.tok.hf if isinstance(new, HyperTokTokenizer) else new.tk
    data = json.loads(hf.to_str())
    if (data.get("model") or {}).get("type") == "Unigram":
        data["model"]["vocab"] = [[p, json_score(score)] for p, score in data["model"]["vocab"]]
    return HFTk.from_str(json.dumps(data, ensure_ascii=False))


def _entry_score(new: Vocabulary, i: int) -> float:
    """The Unigram score of entry i: HyperTok's own (-1 + 0.002 log p), else that of an average entry."""
    if isinstance(new, HyperTokTokenizer):
        return min(float(new.tok.entries[i].score), BASE_PIECE_SCORE + 0.001)
    return -1.02


def model_pieces(recipe: Recipe, new: Vocabulary, base: BaseFamily) -> list[tuple[str, float]]:
    """``extend``: (content, Unigram score) of every model row, in row order.

    Rows below the base size are the base's pieces (``base.model_rows()``), rows the
    checkpoint padded are unused fillers, and the new rows are the entries' surfaces as the
    base writes a model piece (``base.model_content``: in byte-level characters over a
    byte-level base). An
    entry that is one base piece lends that row its score. So the segmentation is the fewest
    model tokens, entries first among equally short ones.
    """
    V, M = recipe.base_vocab_size, recipe.model_vocab_size
    pieces = base.model_rows()[0]
    pieces += [(f"<hypertok_unused_{r}>", RARE_SCORE) for r in range(len(base), V)]
    special_rows = _added_special_rows(recipe, new)
    pieces += [("", 0.0)] * (M - V - len(special_rows))  # the special tokens' rows are added tokens
    added = set(getattr(new, "added_specials", {}).values())
    for i, m in enumerate(recipe.new_to_model):
        if m < 0 or i in added or i in (new.specials.get("bos"), new.specials.get("eos"), new.specials.get("unk"),
                                        new.specials.get("pad")):
            continue
        score = _entry_score(new, i)
        if m >= V:
            pieces[m] = (base.model_content(new.surfaces[i]), score)
        elif base.surfaces[m]:
            pieces[m] = (pieces[m][0], max(pieces[m][1], score))
    seen: dict[str, int] = {}
    for m, (content, _) in enumerate(pieces):
        if not content or content in seen:
            raise HyperTokError(f"model row {m} would read {content!r}"
                                f"{f', as row {seen[content]} does' if content in seen else ''}; the recipe and "
                                f"the vocabularies disagree, re-run `hypertok adapt`")
        seen[content] = m
    return [(content, json_score(score)) for content, score in pieces]


def _added_special_rows(recipe: Recipe, new: Vocabulary) -> list[int]:
    """``extend``: the new rows of the build-time special tokens, which must be the last rows."""
    rows = sorted(recipe.new_to_model[i] for i in getattr(new, "added_specials", {}).values()
                  if recipe.new_to_model[i] >= recipe.base_vocab_size)
    M = recipe.model_vocab_size
    if rows != list(range(M - len(rows), M)):
        raise HyperTokError("the special tokens' rows are not the last model rows; the recipe and the vocabularies "
                            "disagree, re-run `hypertok adapt`")
    return rows


def model_tokenizer(recipe: Recipe, new: Vocabulary, base: BaseFamily | None):
    """The model's ``tokenizer.json`` as an HF ``tokenizers.Tokenizer``: ids are model rows.

    ``extend``: one Unigram model over :func:`model_pieces`, lines split after each newline
    (entries may span words, never lines), and the base's control pieces as special tokens.
    The base gives the model, what follows the line split, and the decoder
    (``base.extend_parts``): over a SentencePiece-style base byte fallback and a byte-fusing
    decoder (HyperTok's pipeline); over a byte-level BPE base a ByteLevel pre-tokenizer without
    regex or prefix space and a ByteLevel decoder, so every piece, the base's 256 byte tokens
    included, is written in byte-level characters and no text is unknown. ``replace``: the new vocabulary's own
    pipeline. Both get a post-processor that adds the bos token when the base adds it
    (``add_bos_token``), as a Llama/Mistral tokenizer does.

    >>> # see tests/registry/test_model_tokenizer.py for a worked example
    """
    from tokenizers import AddedToken, Regex, normalizers, pre_tokenizers, processors
    from tokenizers import Tokenizer as HFTk

    if recipe.strategy == "extend":
        pieces = model_pieces(recipe, new, base)
        lines = pre_tokenizers.Split(Regex("\n"), behavior="merged_with_previous")
        nfc = normalizers.NFC() if getattr(new, "normalizer", "none") == "nfc" else None
        controls = base.model_rows()[1]
        model, pre, decoder = base.extend_parts(pieces)
        tk = HFTk(model)
        tk.pre_tokenizer = pre_tokenizers.Sequence([lines, pre]) if pre is not None else lines
        tk.decoder = decoder
        if nfc:
            tk.normalizer = nfc
        tk.add_special_tokens([AddedToken(p, special=True, normalized=False) for p in controls])
        added = sorted(getattr(new, "added_specials", {}).items(), key=lambda kv: recipe.new_to_model[kv[1]])
        tk.add_special_tokens([AddedToken(s, special=True, normalized=False) for s, _ in added])
        for s, i in added:
            if tk.token_to_id(s) != recipe.new_to_model[i]:
                raise HyperTokError(f"the special token {s!r} would read as id {tk.token_to_id(s)}, not its row "
                                    f"{recipe.new_to_model[i]}; the recipe and the vocabularies disagree")
    else:
        tk = _hf_pipeline_of(new)
    bos, eos = tk.id_to_token(recipe.bos), tk.id_to_token(recipe.eos)
    cfg = recipe.tokenizer_config
    add_bos, add_eos = cfg.get("add_bos_token", True), cfg.get("add_eos_token", False)
    single = " ".join([f"{bos}:0"] * add_bos + ["$A:0"] + [f"{eos}:0"] * add_eos)
    pair = single + " " + " ".join([f"{bos}:1"] * add_bos + ["$B:1"] + [f"{eos}:1"] * add_eos)
    tk.post_processor = processors.TemplateProcessing(
        single=single, pair=pair, special_tokens=[(t, i) for t, i in ((bos, recipe.bos), (eos, recipe.eos))])
    return tk
