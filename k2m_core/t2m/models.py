"""The text-to-motion models (paper §3.4; MoMask's, docs/design.md#ref-momask): a masked transformer over the
base token layer, a residual transformer over layers 1…Q−1, and a length estimator.

Shapes: ``text`` is a frozen encoder's features ``(B, D)`` float, or word ids ``(B, L)`` long for
a learned encoder held inside the model; ``codes (B, T, Q)`` long with −1 after each clip's
``lengths (B,)`` tokens; ``facing (B,)`` radians the view at each window's first token (used by a
masked transformer with ``view_condition``). Every ``forward(text, codes, lengths, facing)``
returns the training loss and its logged terms; generation uses `condition` and `logits` (see `k2m_core.t2m.sampler`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from k2m_core.errors import UserError
from k2m_core.t2m.config import LengthConfig, MaskedConfig, ResidualConfig, TextSpec, TokenSpec
from k2m_core.text.words import WordEncoder

IGNORE = -100  # cross-entropy target of positions that are not scored


@dataclass
class T2MOutput:
    loss: Tensor  # ()
    terms: dict[str, Tensor]  # detached scalars to log
    logits: Tensor  # (B, T, K) token logits, or (B, classes) length logits
    targets: Tensor  # (B, T) or (B,): the class scored, IGNORE where nothing is


def padding_mask(lengths: Tensor, steps: int) -> Tensor:
    """``(B, steps)`` bool, True past each sequence's length."""
    return torch.arange(steps, device=lengths.device)[None] >= lengths[:, None]


def _scored(logits: Tensor, targets: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    loss = F.cross_entropy(logits.flatten(0, -2).float(), targets.flatten(), ignore_index=IGNORE)
    scored = targets != IGNORE
    accuracy = (logits.argmax(-1) == targets)[scored].float().mean()
    return loss, {"ce": loss.detach(), "acc": accuracy.detach()}


class TextCondition(nn.Module):
    """Text input → one ``(B, dim)`` vector; runs the learned word encoder when the model has one."""

    def __init__(self, text: TextSpec, dim: int) -> None:
        super().__init__()
        self.words = WordEncoder(text.vocab, text.dim) if text.learned else None
        self.proj = nn.Linear(text.dim, dim)

    def forward(self, text: Tensor) -> Tensor:
        if self.words is not None:
            text = self.words(text)
        return self.proj(text.float())


class Block(nn.Module):
    """Pre-norm transformer layer over packed tokens.

    ``tokens (N, D)`` are the non-padding positions of a ``(B, S)`` grid, listed by ``index (N,)``
    into the flattened grid (None: no padding, N = B·S). The linear layers, most of the work, see
    only real tokens; attention unpacks them into the grid with ``keep (B, 1, 1, S)`` as key mask."""

    def __init__(self, dim: int, heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.ff = nn.Sequential(nn.Linear(dim, ff_dim), nn.GELU(), nn.Linear(ff_dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, tokens: Tensor, keep: Tensor, index: Tensor | None) -> Tensor:
        batch, steps, dim = keep.shape[0], keep.shape[-1], tokens.shape[-1]
        qkv = self.qkv(self.norm1(tokens))
        if index is not None:
            qkv = qkv.new_zeros(batch * steps, 3 * dim).index_copy_(0, index, qkv)
        q, k, v = qkv.view(batch, steps, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=keep,
                                                  dropout_p=self.dropout if self.training else 0.0)
        attended = attended.transpose(1, 2).reshape(batch * steps, dim)
        if index is not None:
            attended = attended.index_select(0, index)
        tokens = tokens + self.drop(self.proj(attended))
        return tokens + self.drop(self.ff(self.norm2(tokens)))


class Backbone(nn.Module):
    """Prefix tokens (condition) + motion tokens with sinusoidal positions → transformer → the
    motion tokens' outputs. The prefix is never padding, so every query has a key to attend to."""

    def __init__(self, dim: int, layers: int, heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block(dim, heads, ff_dim, dropout) for _ in range(layers))
        self.drop, self.norm = nn.Dropout(dropout), nn.LayerNorm(dim)
        self.register_buffer("positions", self._sinusoids(256, dim), persistent=False)

    @staticmethod
    def _sinusoids(steps: int, dim: int) -> Tensor:
        position = torch.arange(steps, dtype=torch.float32)[:, None]
        freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
        table = torch.zeros(steps, dim)
        table[:, 0::2] = torch.sin(position * freq)
        table[:, 1::2] = torch.cos(position * freq)[:, :dim // 2]
        return table

    def forward(self, prefix: Tensor, x: Tensor, pad: Tensor) -> Tensor:
        """``prefix (B, P, D)``, ``x (B, T, D)``, ``pad (B, T)`` → ``(B, T, D)`` (zeros at padding)."""
        batch, steps, dim = x.shape
        if steps > len(self.positions):
            self.positions = self._sinusoids(2 * steps, dim).to(x.device)
        seq = torch.cat([prefix, x + self.positions[:steps].to(x.dtype)], dim=1)
        keep = torch.cat([pad.new_ones(batch, prefix.shape[1]), ~pad], dim=1)
        # Pack the real tokens once per forward (one host sync on CUDA); no padding, no packing.
        index = None if not bool(pad.any()) else keep.flatten().nonzero()[:, 0]
        tokens = seq.reshape(-1, dim) if index is None else seq.reshape(-1, dim).index_select(0, index)
        tokens = self.drop(tokens)
        for block in self.blocks:
            tokens = block(tokens, keep[:, None, None, :], index)
        tokens = self.norm(tokens)
        if index is not None:
            tokens = tokens.new_zeros(batch * seq.shape[1], dim).index_copy_(0, index, tokens)
        return tokens.view(batch, seq.shape[1], dim)[:, prefix.shape[1]:]


def _init_weights(module: nn.Module) -> None:
    for sub in module.modules():
        if isinstance(sub, nn.Linear):
            nn.init.normal_(sub.weight, std=0.02)
            if sub.bias is not None:
                nn.init.zeros_(sub.bias)
        elif isinstance(sub, nn.Embedding):
            nn.init.normal_(sub.weight, std=0.02)
            if sub.padding_idx is not None:
                with torch.no_grad():
                    sub.weight[sub.padding_idx].zero_()


class _Conditioned(nn.Module):
    """Shared by both transformers: text condition, learned null condition for guidance, and
    (``view_condition``) the view applied to both: ``self.view``, (cos, sin) of the facing → a gain
    and a shift of the condition (FiLM), or None."""

    def _with_view(self, cond: Tensor, facing: Tensor | None) -> Tensor:
        if self.view is None:
            return cond
        if facing is None:
            raise ValueError(f"this {type(self).__name__} is conditioned on the view: pass facing (B,)")
        facing = facing.to(cond.device, torch.float32)
        # FiLM: the view scales the caption's features as well as shifting them. The tokens follow
        # the side the words name *as the camera sees it*, a product of the two: from the front
        # "left" moves across the image one way, from behind the other, so that either alone says
        # nothing. A sum of caption and view features never learned that (a hand-made corpus of
        # exactly this kind: no gap at all); the product term is linear in it.
        gain, shift = self.view(torch.stack([facing.cos(), facing.sin()], dim=-1)).to(cond.dtype).chunk(2, dim=-1)
        return cond * (1 + gain) + shift

    def condition(self, text: Tensor, drop: Tensor | None = None, facing: Tensor | None = None) -> Tensor:
        """``(B, dim)`` condition vectors; rows where ``drop`` get the unconditional one. ``facing
        (B,)`` radians: the view, for models with ``view_condition`` (ignored by others)."""
        cond = self.text(text)
        if drop is not None:
            cond = torch.where(drop[:, None], self.null_cond.to(cond.dtype), cond)
        return self._with_view(cond, facing)

    def _drop(self, batch: int, device: torch.device) -> Tensor | None:
        """Which training rows lose their caption (classifier-free guidance); none in eval mode."""
        if not self.training:
            return None
        return torch.rand(batch, device=device) < self.config.cond_drop

    def null_condition(self, batch: int, facing: Tensor | None = None) -> Tensor:
        return self._with_view(self.null_cond[None].expand(batch, -1), facing)


class MaskedTransformer(_Conditioned):
    """Predicts masked base-layer tokens from the visible ones and the text (paper eq. 11)."""

    def __init__(self, config: MaskedConfig, tokens: TokenSpec, text: TextSpec) -> None:
        super().__init__()
        self.config, self.tokens, self.text_spec = config.validate(), tokens, text
        self.mask_id, self.pad_id = tokens.codebook_size, tokens.codebook_size + 1
        self.token_emb = nn.Embedding(tokens.codebook_size + 2, config.dim)
        self.text = TextCondition(text, config.dim)
        self.null_cond = nn.Parameter(torch.zeros(config.dim))
        self.view = nn.Linear(2, 2 * config.dim) if config.view_condition else None
        self.backbone = Backbone(config.dim, config.layers, config.heads, config.ff_dim, config.dropout)
        self.head = nn.Linear(config.dim, tokens.codebook_size)
        _init_weights(self)

    def logits(self, ids: Tensor, cond: Tensor, pad: Tensor) -> Tensor:
        """``ids (B, T)`` (codes, MASK or PAD), ``cond (B, dim)``, ``pad (B, T)`` → ``(B, T, K)``."""
        return self.head(self.backbone(cond[:, None], self.token_emb(ids), pad))

    def forward(self, text: Tensor, codes: Tensor, lengths: Tensor, facing: Tensor | None = None) -> T2MOutput:
        base = codes[..., 0]
        batch, steps = base.shape
        pad = padding_mask(lengths, steps)
        # Cosine schedule: mask a share cos(π/2·u), u ~ U(0, 1), of each clip, at least one token.
        ratio = torch.cos(torch.rand(batch, device=base.device) * math.pi / 2)
        count = (ratio * lengths).round().clamp_min(1)
        ranks = torch.rand(batch, steps, device=base.device).masked_fill(pad, 2.0).argsort(1).argsort(1)
        masked = ranks < count[:, None]
        # BERT-style corruption of the masked positions: 10 % a random code, 88 % of the rest MASK,
        # the rest kept (the model must also judge tokens it can see).
        roll = torch.rand(batch, steps, device=base.device)
        ids = base.clamp_min(0)
        ids = torch.where(masked & (roll < 0.1), torch.randint_like(ids, self.tokens.codebook_size), ids)
        ids = torch.where(masked & (roll >= 0.1) & (roll < 0.1 + 0.9 * 0.88), self.mask_id, ids)
        ids = ids.masked_fill(pad, self.pad_id)
        logits = self.logits(ids, self.condition(text, self._drop(batch, base.device), facing), pad)
        targets = base.masked_fill(~masked, IGNORE)
        loss, terms = _scored(logits, targets)
        return T2MOutput(loss, terms, logits, targets)


class ResidualTransformer(_Conditioned):
    """Predicts layer j's tokens from the summed embeddings of layers 0…j−1 (paper eq. 12)."""

    def __init__(self, config: ResidualConfig, tokens: TokenSpec, text: TextSpec) -> None:
        super().__init__()
        if tokens.num_quantizers < 2:
            raise UserError("the tokenizer has a single quantiser layer: there are no residual layers to model")
        self.config, self.tokens, self.text_spec = config.validate(), tokens, text
        below, size = tokens.num_quantizers - 1, tokens.codebook_size
        self.token_emb = nn.Parameter(torch.randn(below, size, config.dim) * 0.02)  # layers 0…Q−2
        self.layer_emb = nn.Embedding(tokens.num_quantizers, config.dim)  # which layer j to predict
        self.text = TextCondition(text, config.dim)
        self.null_cond = nn.Parameter(torch.zeros(config.dim))
        self.view = None
        self.backbone = Backbone(config.dim, config.layers, config.heads, config.ff_dim, config.dropout)
        self.head_weight = nn.Parameter(torch.randn(below, config.dim, size) * 0.02)  # layers 1…Q−1
        self.head_bias = nn.Parameter(torch.zeros(below, size))
        _init_weights(self)

    def embed_below(self, codes: Tensor, layer: Tensor) -> Tensor:
        """Σ over layers i < ``layer (B,)`` of the embedding of ``codes[..., i]`` → ``(B, T, dim)``."""
        below = self.token_emb.shape[0]
        index = torch.arange(below, device=codes.device)
        embedded = self.token_emb[index, codes[..., :below].clamp_min(0)]  # (B, T, Q−1, dim)
        keep = (index[None] < layer[:, None]).to(embedded.dtype)[:, None, :, None]
        return (embedded * keep).sum(2)

    def logits(self, codes: Tensor, layer: Tensor, cond: Tensor, pad: Tensor) -> Tensor:
        """``codes (B, T, ≥layer)``, ``layer (B,)`` in 1…Q−1 → logits of that layer ``(B, T, K)``."""
        prefix = torch.stack([cond, self.layer_emb(layer).to(cond.dtype)], dim=1)
        hidden = self.backbone(prefix, self.embed_below(codes, layer), pad)
        weight, bias = self.head_weight[layer - 1], self.head_bias[layer - 1]
        return torch.einsum("btd,bdk->btk", hidden, weight.to(hidden.dtype)) + bias[:, None].to(hidden.dtype)

    def forward(self, text: Tensor, codes: Tensor, lengths: Tensor, facing: Tensor | None = None) -> T2MOutput:
        batch, steps, _ = codes.shape
        top = self.tokens.num_quantizers - 1
        # MoMask's q_schedule: j = 1 + round((1 − cos(π/2·u))·(Q − 2)), favouring low layers.
        schedule = 1 - torch.cos(torch.rand(batch, device=codes.device) * math.pi / 2)
        layer = (schedule * (top - 1)).round().long() + 1
        pad = padding_mask(lengths, steps)
        logits = self.logits(codes, layer, self.condition(text, self._drop(batch, codes.device)), pad)
        targets = codes.gather(2, layer[:, None, None].expand(batch, steps, 1))[..., 0].masked_fill(pad, IGNORE)
        loss, terms = _scored(logits, targets)
        return T2MOutput(loss, terms, logits, targets)


class LengthEstimator(nn.Module):
    """Text → distribution over token lengths 1…max_tokens (MoMask's MLP; class 0 is unused)."""

    def __init__(self, config: LengthConfig, tokens: TokenSpec, text: TextSpec) -> None:
        super().__init__()
        self.config, self.tokens, self.text_spec = config.validate(), tokens, text
        self.text = TextCondition(text, config.hidden[0])
        layers: list[nn.Module] = [nn.LayerNorm(config.hidden[0]), nn.LeakyReLU(0.2), nn.Dropout(config.dropout)]
        for size_in, size_out in zip(config.hidden, config.hidden[1:]):
            layers += [nn.Linear(size_in, size_out), nn.LayerNorm(size_out), nn.LeakyReLU(0.2),
                       nn.Dropout(config.dropout)]
        layers.append(nn.Linear(config.hidden[-1], tokens.max_tokens + 1))
        self.mlp = nn.Sequential(*layers)

    def logits(self, text: Tensor) -> Tensor:
        """``(B, max_tokens + 1)``; class 0 (no motion) is masked out."""
        logits = self.mlp(self.text(text)).float()
        return logits.index_fill(1, torch.tensor([0], device=logits.device), float("-inf"))

    def forward(self, text: Tensor, codes: Tensor, lengths: Tensor, facing: Tensor | None = None) -> T2MOutput:
        logits = self.logits(text)
        targets = lengths.clamp(1, self.tokens.max_tokens)
        loss, terms = _scored(logits, targets)
        return T2MOutput(loss, terms, logits, targets)
