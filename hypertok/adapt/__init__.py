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
"""

from .data import prepare
from .evaluate import evaluate
from .model import AdaptedModel
from .train import AdaptConfig, TrainConfig, adapt

__all__ = ["AdaptConfig", "AdaptedModel", "TrainConfig", "adapt", "evaluate", "prepare"]
