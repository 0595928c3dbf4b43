"""Adapting a causal LM to a HyperTok vocabulary, in peft's vocabulary (issue 5, laid out by issue 9).

- :mod:`~hypertok.adapt.recipe`: vocabulary transfer on the model side (plan, resize, row init);
- :mod:`~hypertok.adapt.data`: documents, packing, ``hypertok prepare`` (packed token arrays);
- :mod:`~hypertok.adapt.model`: :class:`AdaptedModel` (``from_pretrained``, ``save_pretrained``,
  ``merge_and_unload``), base loading, peft wrapping;
- :mod:`~hypertok.adapt.train`: :class:`TrainConfig`, :class:`AdaptConfig`, the loop, ``hypertok adapt``;
- :mod:`~hypertok.adapt.evaluate`: bits per character, generation speed, ``hypertok eval``;
- :mod:`~hypertok.adapt.cli`: the four commands.

The loss is :mod:`hypertok.loss`; the tokenizer side of the transfer (``Recipe``,
``AdaptedTokenizer``) lives in the tokenizer registry. Importing this package loads no
torch, transformers or peft: the functions that need them import them.

The package is also the ``adapt`` of ``hypertok``'s front door: ``hypertok.adapt(cfg)`` runs
:func:`~hypertok.adapt.train.adapt`. The name cannot be the function alone, since
``import hypertok.adapt.cli`` binds ``hypertok.adapt`` to this package (issue 23).
"""

import sys
import types

from .data import prepare
from .evaluate import evaluate
from .model import AdaptedModel, merge
from .train import AdaptConfig, TrainConfig, adapt

__all__ = ["AdaptConfig", "AdaptedModel", "TrainConfig", "adapt", "evaluate", "merge", "prepare"]


class _Package(types.ModuleType):
    """This package, callable: ``hypertok.adapt(cfg)`` is ``hypertok.adapt.adapt(cfg)``."""

    def __call__(self, cfg: AdaptConfig) -> dict:
        return adapt(cfg)


sys.modules[__name__].__class__ = _Package
