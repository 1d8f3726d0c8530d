"""A small text encoder learned with the model it conditions: usable offline, no weights to fetch.

Captions are lower-cased and split into words; words outside the vocabulary (the most frequent
words of the training captions) become ``<unk>``. Word embeddings feed a bidirectional GRU whose
final states, concatenated and projected, are the caption feature. It trains from scratch inside
each text-to-motion model, so it only knows the words of its dataset.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from typing import Iterable

import torch
from torch import Tensor, nn

from k2m_core.text.base import TextEncoder

PAD, UNKNOWN = 0, 1  # ids 0 and 1; vocabulary words start at 2
_WORD = re.compile(r"[a-z]+|\d+")


def split_words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def build_vocab(captions: Iterable[str], max_size: int = 4096, min_count: int = 1) -> tuple[str, ...]:
    """The ``max_size`` most frequent words seen at least ``min_count`` times (ties alphabetical)."""
    counts = Counter(word for caption in captions for word in split_words(caption))
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return tuple(word for word, count in ranked[:max_size] if count >= min_count)


class WordEncoder(TextEncoder):
    name = "words"
    learned = True

    def __init__(self, vocab: Iterable[str], dim: int = 256, max_words: int = 32) -> None:
        super().__init__()
        self.vocab, self.dim, self.max_words = tuple(vocab), dim, max_words
        self._ids = {word: i + 2 for i, word in enumerate(self.vocab)}
        self.embed = nn.Embedding(len(self.vocab) + 2, dim, padding_idx=PAD)
        self.gru = nn.GRU(dim, dim // 2, batch_first=True, bidirectional=True)
        self.out = nn.Sequential(nn.LayerNorm(2 * (dim // 2)), nn.Linear(2 * (dim // 2), dim))
        digest = hashlib.sha256("\n".join(self.vocab).encode()).hexdigest()[:12]
        self._identity = f"{self.name}:{len(self.vocab)}:{digest}"

    @property
    def identity(self) -> str:
        return self._identity

    def tokenize(self, texts: list[str]) -> Tensor:
        rows = [[self._ids.get(w, UNKNOWN) for w in split_words(t)][:self.max_words] or [UNKNOWN] for t in texts]
        ids = torch.full((len(rows), max((len(r) for r in rows), default=1)), PAD, dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, :len(row)] = torch.tensor(row)
        return ids

    def forward(self, tokens: Tensor) -> Tensor:
        lengths = (tokens != PAD).sum(-1).clamp_min(1)
        packed = nn.utils.rnn.pack_padded_sequence(self.embed(tokens), lengths.cpu(), batch_first=True,
                                                   enforce_sorted=False)
        _, final = self.gru(packed)  # (2, N, dim/2): last forward state, first backward state
        return self.out(torch.cat([final[0], final[1]], dim=-1))
