"""The interface every text encoder offers the text-to-motion models.

Two kinds plug in:

- **frozen** encoders (CLIP): their features depend on the text only, so `k2m data encode-text`
  caches them in the dataset file and training never runs the encoder;
- **learned** encoders (`WordEncoder`): trained together with the model they condition, so they
  live inside that model's weights and the model takes their token ids instead of features.

``identity`` names the exact weights (kind + fingerprint): two encoders with one identity give
the same features. Checkpoints store it and refuse features from any other encoder.
"""

from __future__ import annotations

import abc
import hashlib

import torch
from torch import Tensor, nn


class TextEncoder(nn.Module, abc.ABC):
    name: str = ""  # the kind: "clip", "words"
    learned: bool = False  # trained with the model it conditions (True) or frozen (False)
    dim: int = 0  # feature size

    @property
    @abc.abstractmethod
    def identity(self) -> str:
        """Kind and weights fingerprint, e.g. ``clip:ViT-B-32:3f2a…``."""

    @abc.abstractmethod
    def tokenize(self, texts: list[str]) -> Tensor:
        """Texts → token ids ``(N, L)`` long, what `forward` takes."""

    @abc.abstractmethod
    def forward(self, tokens: Tensor) -> Tensor:
        """Token ids ``(N, L)`` → features ``(N, dim)``."""

    @torch.no_grad()
    def encode(self, texts: list[str]) -> Tensor:
        """Texts → features ``(N, dim)`` float32 on the encoder's device."""
        device = next(self.parameters()).device
        return self(self.tokenize(list(texts)).to(device)).float()


def fingerprint(*tensors: Tensor, length: int = 12) -> str:
    """A short hash of tensor contents (float32 bytes): equal weights, equal fingerprint."""
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:length]
