"""DSTformer adapter (MotionBERT's dual-stream spatio-temporal transformer, docs/design.md#ref-dstformer),
with a key-padding mask so padded frames never influence valid ones.

Tokens are ``(B, F, J, d)``: one per joint per frame. Spatial attention mixes the J joints of a
frame; temporal attention mixes the frames of one joint and ignores padded frames as keys. Each
depth level runs two blocks on the same input — ST (spatial then temporal) and TS (temporal then
spatial) — and fuses them per token with learned weights that start at ½ / ½.

The frame size enters as conditioning: an embedding of log(W/H) is added to every token (keypoints
are normalised by max(W, H)/2, so the aspect ratio says where the image ends).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def init_transformer_weights(module: nn.Module) -> None:
    """MotionBERT's initialisation (truncated-normal linear layers, unit LayerNorms), for `apply`."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class Attention(nn.Module):
    """Multi-head self-attention over the middle axis of ``(N, L, d)``; ``key_mask (N, L)`` bool
    marks the keys that may be attended to."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.to_qkv = nn.Linear(dim, dim * 3)
        self.to_out = nn.Linear(dim, dim)

    def forward(self, x: Tensor, key_mask: Tensor | None = None) -> Tensor:
        n, length, dim = x.shape
        q, k, v = self.to_qkv(x).view(n, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        attn_mask = None if key_mask is None else key_mask[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # scale head_dim^-½
        return self.to_out(out.transpose(1, 2).reshape(n, length, dim))


class FeedForward(nn.Sequential):
    def __init__(self, dim: int, mlp_ratio: float) -> None:
        hidden = int(dim * mlp_ratio)
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))


class Stage(nn.Module):
    """Pre-LN attention then MLP, either across the joints of each frame (spatial: frames are
    independent, no mask needed) or across the frames of each joint (temporal: padded frames are
    masked as keys)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, temporal: bool) -> None:
        super().__init__()
        self.temporal = temporal
        self.norm_attn, self.attn = nn.LayerNorm(dim), Attention(dim, heads)
        self.norm_ff, self.ff = nn.LayerNorm(dim), FeedForward(dim, mlp_ratio)

    def forward(self, x: Tensor, key_mask: Tensor) -> Tensor:
        b, f, j, d = x.shape
        if self.temporal:
            tokens, mask = x.transpose(1, 2).reshape(b * j, f, d), key_mask.repeat_interleave(j, dim=0)
        else:
            tokens, mask = x.reshape(b * f, j, d), None
        tokens = tokens + self.attn(self.norm_attn(tokens), mask)
        tokens = tokens + self.ff(self.norm_ff(tokens))
        return tokens.view(b, j, f, d).transpose(1, 2) if self.temporal else tokens.view(b, f, j, d)


class DualStreamLevel(nn.Module):
    """One depth level: ST and TS streams on the same input, fused per token by
    α = softmax(Linear(2d → 2)([x_st, x_ts])), x = α₀·x_st + α₁·x_ts."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.st = nn.ModuleList([Stage(dim, heads, mlp_ratio, temporal=t) for t in (False, True)])
        self.ts = nn.ModuleList([Stage(dim, heads, mlp_ratio, temporal=t) for t in (True, False)])
        self.fusion = nn.Linear(dim * 2, 2)

    def forward(self, x: Tensor, key_mask: Tensor) -> Tensor:
        x_st, x_ts = x, x
        for stage in self.st:
            x_st = stage(x_st, key_mask)
        for stage in self.ts:
            x_ts = stage(x_ts, key_mask)
        alpha = self.fusion(torch.cat([x_st, x_ts], dim=-1)).softmax(dim=-1)
        return x_st * alpha[..., 0:1] + x_ts * alpha[..., 1:2]


class DSTformer(nn.Module):
    """``joints (B, F, J, C)``, ``frame_mask (B, F)``, ``log_aspect (B,)`` → ``(B, F, J, rep)``
    (tanh representation; values at padded frames are meaningless, callers mask them)."""

    def __init__(self, in_dim: int = 3, num_joints: int = 17, dim: int = 512, rep: int = 512, depth: int = 1,
                 heads: int = 8, mlp_ratio: float = 2.0, maxlen: int = 512) -> None:
        super().__init__()
        self.maxlen = maxlen
        self.joint_embed = nn.Linear(in_dim, dim)
        self.aspect_embed = nn.Linear(1, dim)
        self.spatial_pos = nn.Parameter(torch.zeros(1, 1, num_joints, dim))
        self.temporal_pos = nn.Parameter(torch.zeros(maxlen, dim))
        self.levels = nn.ModuleList(DualStreamLevel(dim, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.to_rep = nn.Linear(dim, rep)
        self.apply(init_transformer_weights)
        # The keypoint embedding keeps PyTorch's default init (MotionBERT uses std 0.02): then the
        # keypoints, not the positional and aspect embeddings, dominate the first tokens, and the
        # adapter trains about as fast as the plain conv encoder instead of several times slower.
        self.joint_embed.reset_parameters()
        nn.init.trunc_normal_(self.spatial_pos, std=0.02)
        nn.init.trunc_normal_(self.temporal_pos, std=0.02)
        for level in self.levels:  # start as an even mix of the two streams
            nn.init.zeros_(level.fusion.weight)
            nn.init.constant_(level.fusion.bias, 0.5)

    def forward(self, joints: Tensor, frame_mask: Tensor, log_aspect: Tensor, time_offset: int = 0) -> Tensor:
        frames = joints.shape[1]
        if time_offset + frames > self.maxlen:
            raise ValueError(f"{frames} frames exceed the adapter's maxlen {self.maxlen}; "
                             "encode long clips in windows or raise adapter_maxlen")
        # A clip with no valid frame would leave its attention rows without keys (NaN): let it
        # attend everywhere instead; its outputs are masked downstream anyway.
        key_mask = frame_mask | ~frame_mask.any(dim=1, keepdim=True)
        x = self.joint_embed(joints) + self.spatial_pos
        x = x + self.temporal_pos[time_offset:time_offset + frames, None]
        x = x + self.aspect_embed(log_aspect[:, None])[:, None, None]
        for level in self.levels:
            x = level(x, key_mask)
        return torch.tanh(self.to_rep(self.norm(x)))
