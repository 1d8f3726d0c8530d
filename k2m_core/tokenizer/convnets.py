"""MoMask-style 1D conv encoder/decoder (docs/design.md#ref-momask), made padding-aware.

Every convolution whose kernel spans several steps reads its input multiplied by the current
mask, so a padded step looks exactly like the zero padding at the end of a sequence: the
outputs at valid steps are the same whether a clip is padded or not.

Encoder: Conv k3 + ReLU; per stage Conv(k4, stride 2) → Resnet1D; Conv k3 to the code dim.
Decoder: Conv k3 + ReLU; per stage Resnet1D → nearest ×2 → Conv k3; Conv k3 + ReLU.
Resnet1D: `depth` blocks ReLU → dilated Conv k3 → ReLU → Conv k1 → Dropout → + input, with
dilations growth^i applied in reverse order (9, 3, 1), no normalisation.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def _masked(x: Tensor, mask: Tensor) -> Tensor:
    """``x (B, C, T)`` with the padded steps of ``mask (B, T)`` zeroed."""
    return x * mask[:, None].to(x.dtype)


def downsample_mask(mask: Tensor) -> Tensor:
    """``(B, T)`` → ``(B, T/2)``: a step is valid when either of its two source steps is."""
    return mask.reshape(mask.shape[0], -1, 2).any(-1)


class ResBlock(nn.Module):
    def __init__(self, width: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.conv_dilated = nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation)
        self.conv_point = nn.Conv1d(width, width, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        h = self.conv_dilated(_masked(F.relu(x), mask))
        return x + self.dropout(self.conv_point(F.relu(h)))


class Resnet1D(nn.Module):
    def __init__(self, width: int, depth: int, growth: int, dropout: float) -> None:
        super().__init__()
        dilations = [growth ** i for i in range(depth)][::-1]
        self.blocks = nn.ModuleList(ResBlock(width, d, dropout) for d in dilations)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x, mask)
        return x


class ConvEncoder(nn.Module):
    """``(B, in_dim, T)``, mask ``(B, T)`` → ``(B, out_dim, T / 2^stages)``, downsampled mask."""

    def __init__(self, in_dim: int, width: int, out_dim: int, stages: int, depth: int, growth: int,
                 dropout: float) -> None:
        super().__init__()
        self.conv_in = nn.Conv1d(in_dim, width, 3, padding=1)
        self.downs = nn.ModuleList(nn.Conv1d(width, width, 4, stride=2, padding=1) for _ in range(stages))
        self.resnets = nn.ModuleList(Resnet1D(width, depth, growth, dropout) for _ in range(stages))
        self.conv_out = nn.Conv1d(width, out_dim, 3, padding=1)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        x = F.relu(self.conv_in(_masked(x, mask)))
        for down, resnet in zip(self.downs, self.resnets):
            x = down(_masked(x, mask))
            mask = downsample_mask(mask)
            x = resnet(x, mask)
        return _masked(self.conv_out(_masked(x, mask)), mask), mask


class ConvDecoder(nn.Module):
    """``(B, in_dim, T)``, mask ``(B, T)`` → features ``(B, width, T · 2^stages)``, upsampled mask."""

    def __init__(self, in_dim: int, width: int, stages: int, depth: int, growth: int, dropout: float) -> None:
        super().__init__()
        self.conv_in = nn.Conv1d(in_dim, width, 3, padding=1)
        self.resnets = nn.ModuleList(Resnet1D(width, depth, growth, dropout) for _ in range(stages))
        self.ups = nn.ModuleList(nn.Conv1d(width, width, 3, padding=1) for _ in range(stages))
        self.conv_out = nn.Conv1d(width, width, 3, padding=1)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        x = F.relu(self.conv_in(_masked(x, mask)))
        for resnet, up in zip(self.resnets, self.ups):
            x = resnet(x, mask)
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            mask = mask.repeat_interleave(2, dim=1)
            x = up(_masked(x, mask))
        return _masked(F.relu(self.conv_out(_masked(x, mask))), mask), mask
