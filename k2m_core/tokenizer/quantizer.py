"""Residual vector quantisation with EMA codebooks (paper eq. 1–2; MoMask's RVQ, docs/design.md#ref-momask).

Layer n quantises the residual left by layers 0…n−1, each with its own codebook. Codebooks are
not trained by gradients: they track an exponential moving average (decay μ) of the encoder
outputs assigned to each code, start from the first training batch, and codes whose EMA count
falls below 1 are reset to random current encoder outputs. With probability p a training batch
keeps only layers 0…k, k ~ U{0…N} (quantiser dropout), so every prefix of layers decodes.

Padded positions (``mask`` False) are never quantised into the statistics: they neither move a
codebook nor count in the commitment loss, and their codes are −1. Code −1 also marks layers that
were dropped or not given; `ResidualVQ.codes_to_latent` treats it as "no contribution".

Distributed training: when `torch.distributed` is initialised the EMA counts and sums are
all-reduced, and the first-batch initialisation, dead-code replacements and the dropout draw
come from rank 0, so every rank keeps identical codebooks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn

from k2m_core.tokenizer.losses import commitment_loss


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _all_reduce_sum(tensor: Tensor) -> Tensor:
    if _distributed():
        dist.all_reduce(tensor)
    return tensor


def _from_rank0(tensor: Tensor) -> Tensor:
    if _distributed():
        dist.broadcast(tensor, src=0)
    return tensor


def _sample_rows(vectors: Tensor, count: int) -> Tensor:
    """``count`` random rows of ``vectors (N, D)``; when N < count the rows are tiled with a little
    noise so repeated picks still differ (MoMask's ``_tile``)."""
    num = vectors.shape[0]
    if num >= count:
        return vectors[torch.randperm(num, device=vectors.device)[:count]]
    picks = vectors[torch.randint(num, (count,), device=vectors.device)]
    return picks + torch.randn_like(picks) * (0.01 / math.sqrt(vectors.shape[1]))


class EMACodebook(nn.Module):
    """One quantisation layer: nearest-code lookup plus EMA update and dead-code reset."""

    def __init__(self, codebook_size: int, dim: int, decay: float) -> None:
        super().__init__()
        self.codebook_size, self.dim, self.decay = codebook_size, dim, decay
        self.register_buffer("initted", torch.tensor(0.0))  # 1.0 once initialised (float: NCCL-friendly)
        self.register_buffer("embed", torch.zeros(codebook_size, dim))
        self.register_buffer("embed_sum", torch.zeros(codebook_size, dim))
        self.register_buffer("cluster_size", torch.ones(codebook_size))

    def nearest(self, vectors: Tensor) -> Tensor:
        """``(N, D)`` → code ids ``(N,)`` by squared Euclidean distance."""
        dist_sq = (vectors.pow(2).sum(-1, keepdim=True) - 2 * vectors @ self.embed.t()
                   + self.embed.pow(2).sum(-1)[None])
        return dist_sq.argmin(dim=-1)

    def _random_rows(self, vectors: Tensor) -> Tensor:
        """``codebook_size`` random rows of ``vectors``, the same on every rank (rank 0 draws)."""
        source = vectors if vectors.shape[0] > 0 else torch.randn_like(self.embed)
        return _from_rank0(_sample_rows(source, self.codebook_size).contiguous())

    @torch.no_grad()
    def init_from(self, vectors: Tensor) -> None:
        """Codebook = random vectors of the first batch."""
        picks = self._random_rows(vectors)
        self.embed.copy_(picks)
        self.embed_sum.copy_(picks)
        self.cluster_size.fill_(1.0)
        self.initted.fill_(1.0)

    @torch.no_grad()
    def ema_update(self, vectors: Tensor, codes: Tensor) -> None:
        """Move each code toward the mean of the vectors ``(N, D)`` assigned to it (``codes (N,)``):
        ``n ← μ·n + (1−μ)·count``, ``s ← μ·s + (1−μ)·Σx``, ``e = s / n``. Codes left with n < 1
        restart at random current vectors, with n = 1 and s = e so that ``e = s / n`` still holds."""
        counts = torch.bincount(codes, minlength=self.codebook_size).to(vectors.dtype)
        sums = torch.zeros_like(self.embed).index_add_(0, codes, vectors)
        counts, sums = _all_reduce_sum(counts), _all_reduce_sum(sums)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        self.embed.copy_(self.embed_sum / self.cluster_size[:, None])
        dead = self.cluster_size < 1.0
        if bool(dead.any()):  # identical on every rank after the all-reduce
            replacement = self._random_rows(vectors)
            self.embed.copy_(torch.where(dead[:, None], replacement, self.embed))
            self.embed_sum.copy_(torch.where(dead[:, None], replacement, self.embed_sum))
            self.cluster_size.masked_fill_(dead, 1.0)

    def forward(self, vectors: Tensor, mask: Tensor, update: bool) -> tuple[Tensor, Tensor, Tensor]:
        """``vectors (N, D)``, ``mask (N,)`` → ``(quantized (N, D), codes (N,), perplexity ())``.
        With ``update`` the codebook is initialised if needed and EMA-updated after the lookup,
        from the masked rows only; perplexity is over the masked rows."""
        kept = vectors[mask]
        if update and not bool(self.initted):
            self.init_from(kept)
        codes = self.nearest(vectors)
        quantized = self.embed[codes]
        if update:
            self.ema_update(kept, codes[mask])
        probs = torch.bincount(codes[mask], minlength=self.codebook_size).float() / mask.sum().clamp_min(1)
        perplexity = torch.exp(-(probs * torch.log(probs.clamp_min(1e-10))).sum())
        return quantized, codes, perplexity


@dataclass
class RVQOutput:
    latent: Tensor  # (B, T, D) Σ of the active layers' codes, straight-through to the input; 0 at padding
    codes: Tensor  # (B, T, Q) long, −1 at padded positions and dropped layers
    commitment: Tensor  # () eq. 2 without λ: Σ over active layers of the masked mean ‖r − sg[a]‖²
    perplexity: Tensor  # (Q,) per-layer perplexity of this batch's codes (0 for dropped layers)
    active_layers: int


class ResidualVQ(nn.Module):
    def __init__(self, num_quantizers: int, codebook_size: int, dim: int, decay: float = 0.99,
                 dropout: float = 0.2) -> None:
        super().__init__()
        self.num_quantizers, self.dropout = num_quantizers, dropout
        self.layers = nn.ModuleList(EMACodebook(codebook_size, dim, decay) for _ in range(num_quantizers))

    def _active_layers(self) -> int:
        """How many layers this batch keeps: all, or with probability p a prefix 0…k, k ~ U{0…N}."""
        if not self.training or self.dropout <= 0:
            return self.num_quantizers
        draw = torch.tensor([self.num_quantizers], dtype=torch.long, device=self.layers[0].embed.device)
        if float(torch.rand(())) < self.dropout:
            draw.fill_(int(torch.randint(self.num_quantizers, ())) + 1)
        return int(_from_rank0(draw))

    def forward(self, latent: Tensor, mask: Tensor) -> RVQOutput:
        """latent ``(B, T, D)`` (quantised in float32), mask ``(B, T)`` bool. In training mode the
        codebooks learn and quantiser dropout applies; in eval mode nothing changes state."""
        latent = latent.float()
        shape = latent.shape
        flat_latent, flat_mask = latent.reshape(-1, shape[-1]), mask.reshape(-1)
        active = self._active_layers()
        residual = flat_latent
        quantized_sum = torch.zeros_like(flat_latent)
        codes = torch.full((flat_latent.shape[0], self.num_quantizers), -1, dtype=torch.long, device=latent.device)
        perplexity = latent.new_zeros(self.num_quantizers)
        commitment = latent.new_zeros(())
        for index, layer in enumerate(self.layers[:active]):
            quantized, layer_codes, perplexity[index] = layer(residual.detach(), flat_mask, update=self.training)
            commitment = commitment + commitment_loss(residual, quantized, flat_mask)
            codes[:, index] = torch.where(flat_mask, layer_codes, -1)
            quantized_sum = quantized_sum + quantized
            residual = residual - quantized.detach()
        # Straight-through: the decoder sees the codes, the encoder receives the decoder's gradient
        # unscaled (not once per layer).
        out = flat_latent + (quantized_sum - flat_latent).detach()
        out = out * flat_mask[:, None]
        return RVQOutput(latent=out.reshape(shape), codes=codes.reshape(shape[:-1] + (-1,)),
                         commitment=commitment, perplexity=perplexity, active_layers=active)

    @torch.no_grad()
    def encode(self, latent: Tensor, mask: Tensor) -> Tensor:
        """Codes ``(B, T, Q)`` of all layers, no state change (−1 at padded positions)."""
        residual = latent.float()
        codes = []
        for layer in self.layers:
            layer_codes = layer.nearest(residual.reshape(-1, residual.shape[-1])).reshape(residual.shape[:-1])
            residual = residual - layer.embed[layer_codes]
            codes.append(torch.where(mask, layer_codes, -1))
        return torch.stack(codes, dim=-1)

    def codes_to_latent(self, codes: Tensor) -> Tensor:
        """``codes (B, T, q)`` with q ≤ Q (the first q layers; −1 = none) → latent ``(B, T, D)``."""
        if codes.shape[-1] > self.num_quantizers:
            raise ValueError(f"codes have {codes.shape[-1]} layers, the quantiser has {self.num_quantizers}")
        latent = self.layers[0].embed.new_zeros(codes.shape[:-1] + (self.layers[0].dim,))
        for index in range(codes.shape[-1]):
            layer_codes = codes[..., index]
            present = (layer_codes >= 0)[..., None].to(latent.dtype)
            latent = latent + self.layers[index].embed[layer_codes.clamp_min(0)] * present
        return latent
