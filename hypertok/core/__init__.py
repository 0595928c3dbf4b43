"""The runtime core: the directory format, the HF pipeline, the SentencePiece engine and
``HyperTok`` (issues 9, 12).

It needs only ``tokenizers`` and ``sentencepiece``: loading a directory and encoding
imports neither numpy nor torch. Nothing here builds vocabularies (``hypertok.builder``) or compares tokenizers.
"""

from .format import Entry
from .tokenizer import HyperTok

__all__ = ["Entry", "HyperTok"]
