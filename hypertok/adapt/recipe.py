"""Vocabulary transfer on the model side: plan a recipe for a base folder, resize, initialise rows.

What it does (issue 5; split out of ``transfer.py`` by issue 9):

- :func:`plan` checks that a local base checkpoint and a tokenizer directory reconcile and
  makes the :class:`AdaptedTokenizer` of the transfer (``extend`` or ``replace``), its
  recipe stamped with the base's fingerprint and config, so an adapter can later refuse
  another base. CPU only, no weights loaded.
- :func:`resize_and_init` resizes ``embed_tokens`` (and an untied ``lm_head``) to the
  recipe's size and fills the new rows with :func:`init_rows`: ``mean`` of the base
  pieces of the entry's surface (FVT, Gee et al. 2022; ruadapt arXiv 2412.21140; Vikhr
  arXiv 2405.13929), ``random`` (normal with the base matrix's std), or ``hewitt`` (the
  distribution transformers' ``mean_resizing`` samples from: mean and 1e-9 x covariance
  of old rows). Issue 10 adds two inits that keep the rows' scale:
  ``mean-norm`` is ``mean`` rescaled to the average norm of the base rows (a mean of several
  rows is shorter than a row, and ruadapt warns that rows of the wrong norm upset the
  softmax), and ``focus`` is a FOCUS-style convex combination of the base tokens that
  overlap the entry's text (Dobler & de Melo 2023), weighted by the softmax of their cosine
  similarity to the mean of its pieces, then norm-matched the same way.

The tokenizer side (``Recipe``, ``plan_transfer``, ``AdaptedTokenizer``, the lossless
SentencePiece base) needs no torch and lives in the tokenizer registry
(``hypertok.registry``); this module only applies it to a model.

What it does not do: no training (``hypertok.adapt.train``); FOCUS proper weighs the
overlapping tokens in an auxiliary fastText space, which we do not have for the new
tokens, so the mean of the pieces stands in for it. torch is imported inside functions only.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

from ..errors import HyperTokError
from ..registry import AdaptedTokenizer, find_base, load_vocabulary, plan_transfer
from .model import base_fingerprint, base_rows, check_base_path

INITS = ("mean", "mean-norm", "focus", "random", "hewitt")
FOCUS_TEMPERATURE = 0.1  # softmax temperature over cosine similarities, as FOCUS


def plan(base_path: str | os.PathLike, tokenizer_dir: str | os.PathLike, strategy: str, init: str = "mean",
         seed: int = 0):
    """Check that base and tokenizer reconcile and make the ``AdaptedTokenizer`` (CPU only).

    The base's tokenizer is its SentencePiece ``tokenizer.model``, or its byte-level BPE or
    SentencePiece-style ``tokenizer.json`` (:func:`~hypertok.registry.find_base`).
    """
    bp = check_base_path(base_path)
    base = find_base(bp)
    new = load_vocabulary(tokenizer_dir)
    recipe = plan_transfer(base, new, strategy, base_rows=base_rows(bp))
    recipe.init, recipe.seed = init, seed
    recipe.base_fingerprint = base_fingerprint(bp)
    cfg = json.loads((bp / "config.json").read_text())
    recipe.base_config = {k: cfg.get(k) for k in ("model_type", "hidden_size", "num_hidden_layers", "vocab_size",
                                                  "tie_word_embeddings")}
    recipe.tokenizer_config = base_tokenizer_settings(bp, base)
    tok = AdaptedTokenizer(recipe, new, base)
    lost = template_controls_lost(tok)
    if lost:
        warnings.warn(f"--strategy {strategy}: the base's chat template writes control tokens that {tokenizer_dir} "
                      f"lacks ({', '.join(lost[:4])}{', ...' if len(lost) > 4 else ''}); the adapted model reads them "
                      f"as plain text. Use --strategy extend to keep the base's control tokens", stacklevel=2)
    return tok


def template_controls_lost(tok) -> list[str]:
    """The base's control tokens that its chat template writes and the model tokenizer lacks
    (``replace`` keeps only HyperTok's own specials: Llama 3's ``<|start_header_id|>``,
    Mistral's ``[INST]``)."""
    template = tok.recipe.tokenizer_config.get("chat_template") or ""
    base = tok.base
    if not template or base is None:
        return []
    controls = base.control_names()
    kept = {t.content for t in tok.hf.get_added_tokens_decoder().values()}
    return [c for c in controls if c in template and c not in kept]


def base_tokenizer_settings(base_path: str | os.PathLike, base=None) -> dict:
    """What serving needs from the base's ``tokenizer_config.json`` (and ``chat_template.jinja``):
    ``add_bos_token``, ``add_eos_token``, ``model_max_length`` and ``chat_template``, where the
    base has them. Without ``add_bos_token`` (Llama 3's file has none), a ``tokenizer.json``
    ``base`` adds bos when the file's post-processor puts it first, a ``tokenizer.model`` (and
    no ``base``) does: SentencePiece Llama/Mistral tokenizers
    (:meth:`~hypertok.registry.BaseFamily.default_add_bos`)."""
    from .model import read_json

    bp = Path(base_path)
    cfg = read_json(bp / "tokenizer_config.json") if (bp / "tokenizer_config.json").is_file() else {}
    adds_bos = base.default_add_bos() if base is not None else True
    out = {"add_bos_token": bool(cfg.get("add_bos_token", adds_bos)),
           "add_eos_token": bool(cfg.get("add_eos_token", False))}
    n = cfg.get("model_max_length")
    if isinstance(n, int) and not isinstance(n, bool) and 0 < n < 1 << 40:
        out["model_max_length"] = n
    template = cfg.get("chat_template")
    if (bp / "chat_template.jinja").is_file():
        template = (bp / "chat_template.jinja").read_text(encoding="utf-8")
    if isinstance(template, str) and template:
        out["chat_template"] = template
    return out


def overlapping_tokens(surfaces, base_single: dict[str, int], max_len: int = 24, limit: int = 32) -> list[list[int]]:
    """For each surface, the base ids whose text is a substring of it (two characters or more),
    longest first, at most ``limit``: FOCUS's "overlapping tokens", read off the text alone.

    >>> overlapping_tokens([" столами"], {" стол": 7, "ами": 9, "ол": 3, "x": 1})
    [[7, 9, 3]]
    """
    out = []
    for s in surfaces:
        found: dict[int, int] = {}
        for i in range(len(s)):
            for j in range(min(len(s), i + max_len), i + 1, -1):
                t = base_single.get(s[i:j])
                if t is not None and t not in found:
                    found[t] = j - i
        out.append([t for t, _ in sorted(found.items(), key=lambda kv: -kv[1])][:limit])
    return out


def row_overlaps(tok) -> list[list[int]]:
    """Overlapping base tokens of each new row of an :class:`AdaptedTokenizer`'s recipe."""
    recipe = tok.recipe
    if tok.extend:
        surfaces = [tok.new.surfaces[tok.model_to_new[m]] for m in recipe.new_rows]
    else:
        surfaces = [tok.new.surfaces[m] if tok.new.is_entry(m) else "" for m in recipe.new_rows]
    return overlapping_tokens(surfaces, tok.base.single)


def _mean_rows(old, sources):
    import torch

    lens = torch.tensor([len(s) for s in sources], dtype=torch.long)                  # (K,)
    flat = torch.tensor([s for src in sources for s in src], dtype=torch.long)
    owner = torch.repeat_interleave(torch.arange(len(sources)), lens)
    sums = torch.zeros(len(sources), old.shape[1]).index_add_(0, owner, old[flat])    # (K, d)
    return sums / lens.clamp(min=1).unsqueeze(1).float()


def _match_norm(vals, old):
    """Every row of ``vals`` rescaled to the mean row norm of ``old``."""
    return vals * (old.norm(dim=1).mean() / vals.norm(dim=1, keepdim=True).clamp_min(1e-8))


def _focus_rows(old, sources, overlaps, temperature: float = FOCUS_TEMPERATURE):
    import torch

    anchors = _mean_rows(old, sources)                                                 # (K, d)
    cands = [sorted(set(o) | set(s)) for o, s in zip(overlaps, sources)]
    lens = torch.tensor([len(c) for c in cands], dtype=torch.long)
    flat = torch.tensor([c for cs in cands for c in cs], dtype=torch.long)            # (n,)
    owner = torch.repeat_interleave(torch.arange(len(cands)), lens)
    sim = torch.nn.functional.cosine_similarity(anchors[owner], old[flat], dim=1) / temperature  # (n,)
    top = torch.full((len(cands),), -1e9).scatter_reduce(0, owner, sim, reduce="amax")
    w = torch.exp(sim - top[owner])
    w = w / torch.zeros(len(cands)).index_add_(0, owner, w)[owner]                    # softmax per row
    return torch.zeros_like(anchors).index_add_(0, owner, w.unsqueeze(1) * old[flat])


def init_rows(embed, head, recipe, init: str, old_embed, old_head, seed: int = 0, overlaps=None) -> None:
    """Fill ``recipe.new_rows`` of the (already resized) weights in place.

    ``old_embed``/``old_head``: the base rows (V, d), float. ``head`` may be None (tied).

    mean: row = mean of the base rows of its source pieces (for both matrices). mean-norm:
    the same, rescaled to the mean norm of the base rows. focus: softmax(cos / 0.1)-weighted
    mean of the ``overlaps`` (base ids overlapping each new row, :func:`row_overlaps`) and
    the pieces, norm-matched. random: N(0, std of the old matrix). hewitt: N(mean of old
    rows, 1e-9 * covariance).
    """
    import torch

    if init not in INITS:
        raise HyperTokError(f"--init {init!r}: choose one of {', '.join(INITS)}")
    if init == "focus" and overlaps is None:
        raise ValueError("init 'focus' needs the overlapping base tokens of each row (row_overlaps)")
    g = torch.Generator().manual_seed(seed)
    rows = torch.tensor(recipe.new_rows, dtype=torch.long)  # (K,)
    for new_w, old in ((embed, old_embed), (head, old_head)):
        if new_w is None:
            continue
        old = old.detach().float().cpu()  # (V, d)
        d = old.shape[1]
        if init in ("mean", "mean-norm"):
            vals = _mean_rows(old, recipe.sources)  # (K, d)
            if init == "mean-norm":
                vals = _match_norm(vals, old)
        elif init == "focus":
            vals = _match_norm(_focus_rows(old, recipe.sources, overlaps), old)
        elif init == "random":
            vals = torch.randn(len(rows), d, generator=g) * old.std()  # (K, d)
        else:
            mu = old.mean(0)  # (d,)
            centered = old - mu
            cov = centered.T @ centered / old.shape[0]  # (d, d)
            try:
                L = torch.linalg.cholesky(1e-9 * cov.double()).float()
                vals = mu + torch.randn(len(rows), d, generator=g) @ L.T  # (K, d)
            except RuntimeError:  # not positive definite: transformers falls back to the mean too
                vals = mu.expand(len(rows), d).clone()
        with torch.no_grad():
            new_w[rows.to(new_w.device)] = vals.to(new_w.device, new_w.dtype)


def resize_and_init(model, recipe, init: str | None = None, seed: int | None = None, overlaps=None) -> None:
    """Resize embeddings (and lm_head) to the recipe's size, rows exactly as the recipe says.

    ``mean_resizing=False`` and no ``pad_to_multiple_of``: every new row is written here.
    ``overlaps``: for ``focus``, the overlapping base tokens of each new row (:func:`row_overlaps`).
    """
    emb = model.get_input_embeddings().weight
    old_e = emb.detach().float().clone()  # (V, d)
    head = model.get_output_embeddings()
    tied = head is not None and head.weight is emb
    old_h = None if tied or head is None else head.weight.detach().float().clone()
    model.resize_token_embeddings(recipe.model_vocab_size, mean_resizing=False)
    new_head = model.get_output_embeddings()
    init_rows(model.get_input_embeddings().weight, None if tied or new_head is None else new_head.weight,
              recipe, init or recipe.init, old_e, old_h, recipe.seed if seed is None else seed, overlaps)
