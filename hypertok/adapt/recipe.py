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
  of old rows).

The tokenizer side (``Recipe``, ``plan_transfer``, ``AdaptedTokenizer``, the lossless
SentencePiece base) needs no torch and lives in the tokenizer registry
(``hypertok.registry``); this module only applies it to a model.

What it does not do: no training (``hypertok.adapt.train``), no WECHSEL/FOCUS-style
similarity init. torch is imported inside functions only.
"""

from __future__ import annotations

import json
import os

from ..errors import HyperTokError
from ..registry import AdaptedTokenizer, LosslessSentencePiece, load_vocabulary, plan_transfer
from .model import base_fingerprint, base_rows, check_base_path

INITS = ("mean", "random", "hewitt")


def plan(base_path: str | os.PathLike, tokenizer_dir: str | os.PathLike, strategy: str, init: str = "mean",
         seed: int = 0):
    """Check that base and tokenizer reconcile and make the ``AdaptedTokenizer`` (CPU only)."""
    bp = check_base_path(base_path)
    base = LosslessSentencePiece.find(bp)
    new = load_vocabulary(tokenizer_dir)
    recipe = plan_transfer(base, new, strategy, base_rows=base_rows(bp))
    recipe.init, recipe.seed = init, seed
    recipe.base_fingerprint = base_fingerprint(bp)
    cfg = json.loads((bp / "config.json").read_text())
    recipe.base_config = {k: cfg.get(k) for k in ("model_type", "hidden_size", "num_hidden_layers", "vocab_size",
                                                  "tie_word_embeddings")}
    return AdaptedTokenizer(recipe, new, base)


def init_rows(embed, head, recipe, init: str, old_embed, old_head, seed: int = 0) -> None:
    """Fill ``recipe.new_rows`` of the (already resized) weights in place.

    ``old_embed``/``old_head``: the base rows (V, d), float. ``head`` may be None (tied).

    mean: row = mean of the base rows of its source pieces (for both matrices).
    random: N(0, std of the old matrix). hewitt: N(mean of old rows, 1e-9 * covariance).
    """
    import torch

    if init not in INITS:
        raise HyperTokError(f"--init {init!r}: choose one of {', '.join(INITS)}")
    g = torch.Generator().manual_seed(seed)
    rows = torch.tensor(recipe.new_rows, dtype=torch.long)  # (K,)
    for new_w, old in ((embed, old_embed), (head, old_head)):
        if new_w is None:
            continue
        old = old.detach().float().cpu()  # (V, d)
        d = old.shape[1]
        if init == "mean":
            flat = torch.tensor([s for src in recipe.sources for s in src], dtype=torch.long)
            owner = torch.repeat_interleave(torch.arange(len(recipe.sources)),
                                            torch.tensor([len(s) for s in recipe.sources]))
            sums = torch.zeros(len(recipe.sources), d).index_add_(0, owner, old[flat])  # (K, d)
            vals = sums / torch.tensor([len(s) for s in recipe.sources], dtype=torch.float).unsqueeze(1)
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


def resize_and_init(model, recipe, init: str | None = None, seed: int | None = None) -> None:
    """Resize embeddings (and lm_head) to the recipe's size, rows exactly as the recipe says.

    ``mean_resizing=False`` and no ``pad_to_multiple_of``: every new row is written here.
    """
    emb = model.get_input_embeddings().weight
    old_e = emb.detach().float().clone()  # (V, d)
    head = model.get_output_embeddings()
    tied = head is not None and head.weight is emb
    old_h = None if tied or head is None else head.weight.detach().float().clone()
    model.resize_token_embeddings(recipe.model_vocab_size, mean_resizing=False)
    new_head = model.get_output_embeddings()
    init_rows(model.get_input_embeddings().weight, None if tied or new_head is None else new_head.weight,
              recipe, init or recipe.init, old_e, old_h, recipe.seed if seed is None else seed)
