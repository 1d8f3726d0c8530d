"""MotionCritic (Wang et al., ICLR 2025; docs/design.md#ref-motioncritic): a learned motion-quality score, higher is
better, from the authors' released checkpoint (`k2m eval critic`, paper Table 2).

Network: a DSTformer (MotionBERT's dual-stream spatio-temporal transformer) over 25 tokens per
frame — the 24 SMPL joint rotations as axis-angle and the root position — with depth 3, 256
features, 8 heads, MLP ratio 4, a 512-d tanh representation and up to 243 frames, no dropout. The
representation ``(B, F, 25, 512)`` is averaged over frames, flattened to 12,800 numbers and mapped
by Linear(12800 → 1024) → GELU → Linear(1024 → 1) to the score.

Module and parameter names follow the released code exactly, so its checkpoint loads strictly:
``motioncritic_pre.pth`` is a dict whose ``model_state_dict`` was saved from a ``DataParallel``
wrapper (every key prefixed ``module.``). It is read on the CPU with ``weights_only=True`` (no
pickled code runs), the prefix is removed, and every tensor must fit.

Input protocol: y-up, 20 fps, windows of 60 frames, each window's root position relative to its
first frame. The paper scores each motion's first 60 frames (``windows="first"``); ``"all"``
averages the scores of consecutive 60-frame windows. A motion shorter than a window is scored
whole (the network averages over frames, so shorter inputs are valid).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from k2m_core.errors import UserError
from k2m_core.tokenizer.dstformer import init_transformer_weights

CRITIC_FPS = 20.0
WINDOW = 60
NUM_TOKENS = 25  # 24 joint rotations + the root position
RELEASED = dict(depth=3, dim_feat=256, dim_rep=512, mlp_ratio=4)  # how motioncritic_pre.pth was built


class MLP(nn.Module):
    def __init__(self, in_features: int, hidden_features: int, out_features: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, out_features)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Attention(nn.Module):
    """Self-attention of tokens ``(B·F, J, C)`` across the J joints of each frame (spatial) or across
    the F frames of each joint (temporal)."""

    def __init__(self, dim: int, num_heads: int, temporal: bool) -> None:
        super().__init__()
        self.num_heads, self.temporal = num_heads, temporal
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, frames: int) -> Tensor:
        bf, joints, dim = x.shape
        heads = self.num_heads
        qkv = self.qkv(x).view(bf // frames, frames, joints, 3, heads, dim // heads)
        if self.temporal:  # sequences over frames: (3, B, J, heads, F, c)
            q, k, v = qkv.permute(3, 0, 2, 4, 1, 5)
            out = F.scaled_dot_product_attention(q, k, v)  # scale head_dim^-½, as MotionBERT
            out = out.permute(0, 3, 1, 2, 4)  # (B, F, J, heads, c)
        else:  # sequences over joints: (3, B, F, heads, J, c)
            q, k, v = qkv.permute(3, 0, 1, 4, 2, 5)
            out = F.scaled_dot_product_attention(q, k, v).transpose(2, 3)  # (B, F, J, heads, c)
        return self.proj(out.reshape(bf, joints, dim))


class Block(nn.Module):
    """Pre-LN attention and MLP sub-layers: spatial then temporal (``st``) or the reverse (``ts``)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, order: str) -> None:
        super().__init__()
        self.order = order
        hidden = int(dim * mlp_ratio)
        self.norm1_s, self.norm1_t = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn_s, self.attn_t = Attention(dim, num_heads, temporal=False), Attention(dim, num_heads, temporal=True)
        self.norm2_s, self.norm2_t = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.mlp_s, self.mlp_t = MLP(dim, hidden, dim), MLP(dim, hidden, dim)

    def _spatial(self, x: Tensor, frames: int) -> Tensor:
        x = x + self.attn_s(self.norm1_s(x), frames)
        return x + self.mlp_s(self.norm2_s(x))

    def _temporal(self, x: Tensor, frames: int) -> Tensor:
        x = x + self.attn_t(self.norm1_t(x), frames)
        return x + self.mlp_t(self.norm2_t(x))

    def forward(self, x: Tensor, frames: int) -> Tensor:
        if self.order == "st":
            return self._temporal(self._spatial(x, frames), frames)
        return self._spatial(self._temporal(x, frames), frames)


class DSTformer(nn.Module):
    def __init__(self, dim_in: int = 3, dim_out: int = 3, dim_feat: int = 256, dim_rep: int = 512, depth: int = 5,
                 num_heads: int = 8, mlp_ratio: float = 4, num_joints: int = NUM_TOKENS, maxlen: int = 243) -> None:
        super().__init__()
        self.maxlen = maxlen
        self.joints_embed = nn.Linear(dim_in, dim_feat)
        self.blocks_st = nn.ModuleList(Block(dim_feat, num_heads, mlp_ratio, "st") for _ in range(depth))
        self.blocks_ts = nn.ModuleList(Block(dim_feat, num_heads, mlp_ratio, "ts") for _ in range(depth))
        self.norm = nn.LayerNorm(dim_feat)
        self.pre_logits = nn.Sequential(OrderedDict([("fc", nn.Linear(dim_feat, dim_rep)), ("act", nn.Tanh())]))
        self.head = nn.Linear(dim_rep, dim_out)  # MotionBERT's pose head: in the checkpoint, unused for scoring
        self.temp_embed = nn.Parameter(torch.zeros(1, maxlen, 1, dim_feat))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_joints, dim_feat))
        nn.init.trunc_normal_(self.temp_embed, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.apply(init_transformer_weights)
        self.ts_attn = nn.ModuleList(nn.Linear(dim_feat * 2, 2) for _ in range(depth))
        for fusion in self.ts_attn:  # start as an even mix of the two streams
            nn.init.zeros_(fusion.weight)
            nn.init.constant_(fusion.bias, 0.5)

    def get_representation(self, x: Tensor) -> Tensor:
        """``x (B, F, J, 3)`` → ``(B, F, J, dim_rep)``."""
        batch, frames, joints, _ = x.shape
        if frames > self.maxlen:
            raise ValueError(f"{frames} frames exceed MotionCritic's maxlen {self.maxlen}")
        tokens = self.joints_embed(x) + self.pos_embed[:, None] + self.temp_embed[:, :frames]
        tokens = tokens.reshape(batch * frames, joints, -1)
        for blk_st, blk_ts, fusion in zip(self.blocks_st, self.blocks_ts, self.ts_attn):
            x_st, x_ts = blk_st(tokens, frames), blk_ts(tokens, frames)
            alpha = fusion(torch.cat([x_st, x_ts], dim=-1)).softmax(dim=-1)
            tokens = x_st * alpha[..., 0:1] + x_ts * alpha[..., 1:2]
        return self.pre_logits(self.norm(tokens).reshape(batch, frames, joints, -1))


class MotionCritic(nn.Module):
    def __init__(self, dim_feat: int = 256, dim_rep: int = 512, depth: int = 5, num_heads: int = 8,
                 mlp_ratio: float = 4, maxlen: int = 243) -> None:
        super().__init__()
        self.mlp = MLP(NUM_TOKENS * dim_rep, 2 * dim_rep, 1)
        self.dstran = DSTformer(3, 3, dim_feat, dim_rep, depth, num_heads, mlp_ratio, NUM_TOKENS, maxlen)

    def forward(self, motion: Tensor) -> Tensor:
        """``motion (B, F, 25, 3)`` (see `critic_windows`) → scores ``(B,)``."""
        rep = self.dstran.get_representation(motion).mean(dim=1)  # (B, 25, dim_rep)
        return self.mlp(rep.flatten(1))[:, 0]


def released_critic() -> MotionCritic:
    """A randomly initialised MotionCritic of the released checkpoint's size."""
    return MotionCritic(**RELEASED)


def load_critic(path: str | os.PathLike, device: torch.device | str = "cpu") -> MotionCritic:
    """The critic of checkpoint ``path`` (the released ``motioncritic_pre.pth`` layout), in eval mode."""
    import pickle

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such checkpoint; download motioncritic_pre.pth from the MotionCritic "
                        "project (github.com/ou524u/MotionCritic) and pass it with --checkpoint")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path}: cannot read it as a torch checkpoint of tensors ({first})") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model_state_dict"), dict):
        raise UserError(f"{path}: not a MotionCritic checkpoint (expected a dict with 'model_state_dict', as in "
                        "motioncritic_pre.pth)")
    state = checkpoint["model_state_dict"]
    # Saved from torch.nn.DataParallel: every key starts with "module.".
    state = OrderedDict((key[len("module."):] if key.startswith("module.") else key, value)
                        for key, value in state.items())
    model = released_critic()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())[:300]
        raise UserError(f"{path}: weights do not fit MotionCritic(depth=3, dim_feat=256, dim_rep=512, "
                        f"mlp_ratio=4) ({detail})") from None
    return model.to(device).eval()


def critic_windows(poses: np.ndarray, trans: np.ndarray, fps: float, windows: str = "first") -> np.ndarray:
    """A z-up world motion (``poses (F, 72)`` axis-angle, ``trans (F, 3)`` m, at ``fps``) → critic
    inputs ``(W, n, 25, 3)``: resampled to 20 fps, turned y-up, cut into 60-frame windows (``first``:
    only the first; ``all``: every complete one, or the whole motion if shorter), each window's root
    position relative to its first frame."""
    from k2m_core.export.resample import resample_motion
    from k2m_core.export.world import Y_UP_TO_Z_UP, rotate_motion

    if windows not in ("first", "all"):
        raise UserError(f"--windows {windows!r}: choose first (the paper's protocol) or all")
    poses, trans = resample_motion(poses, trans, fps, CRITIC_FPS)
    # SMPL rotates about its rest pelvis J0, so the pelvis is J0 + t. Turning the scene by R moves it to
    # R·(J0 + t); relative to the window's first frame that is R·(t − t0), whatever J0 is.
    poses, trans = rotate_motion(poses, trans, np.zeros(3), Y_UP_TO_Z_UP.T)
    starts = [0] if windows == "first" or len(poses) <= WINDOW else range(0, len(poses) - WINDOW + 1, WINDOW)
    out = []
    for start in starts:
        rot = poses[start:start + WINDOW].reshape(-1, 24, 3)
        root = trans[start:start + WINDOW] - trans[start]
        out.append(np.concatenate([rot, root[:, None]], axis=1))
    return np.stack(out).astype(np.float32)


@torch.no_grad()
def score_windows(model: MotionCritic, windows: list[np.ndarray], device: torch.device | str = "cpu",
                  batch_size: int = 32) -> np.ndarray:
    """Scores of windows ``(n_i, 25, 3)`` (windows of one length batch together)."""
    scores = np.zeros(len(windows))
    by_length: dict[int, list[int]] = {}
    for i, window in enumerate(windows):
        by_length.setdefault(len(window), []).append(i)
    for indices in by_length.values():
        for lo in range(0, len(indices), batch_size):
            chunk = indices[lo:lo + batch_size]
            batch = torch.from_numpy(np.stack([windows[i] for i in chunk])).to(device)
            scores[chunk] = model(batch).double().cpu().numpy()
    return scores


def summarise(scores) -> dict[str, float]:
    """Paper Table 2's columns over motions: mean, max, min, std (ddof 0)."""
    scores = np.asarray(scores, np.float64)
    return {"mean": float(scores.mean()), "max": float(scores.max()), "min": float(scores.min()),
            "std": float(scores.std()), "motions": int(len(scores))}
