"""Canonical framing: move each clip into one standard shot before the tokenizer sees it.

Where a person stands in the image and how large they appear is the largest variation in 2D
keypoints, and none of it is motion: no caption says "small, in the top-left corner". A tokenizer
trained on raw framing spends its base codes on it, and a text model then has to guess a framing
for every token of a motion, mixing framings from different clips into a root that wanders (the
model card of k2m-mini has the measurements).

A similarity transform of the image (uniform scale k, shift) is exactly what a camera with focal
length k·f and a moved principal point would have seen (`Framing.camera`), so the 3D body is
unchanged and perspective is kept. Per clip::

    p' = (p − c)·k + (W'/2, H'/2)     in a W'×H' = 1920×1080 frame

with c the centre of the box around every seen keypoint of the clip, and k such that the median
torso length (mid-shoulder to mid-hip) is ``TORSO_FILL`` of the frame height, shrunk where needed so
the whole box fits in ``FIT`` of the frame (a run across the image stays in it). Confidences are
unchanged; unseen keypoints stay at (0, 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from k2m_core.keypoints import FRAME_SIZE_ROW, HIPS, NUM_JOINTS, SHOULDERS

CANONICAL_SIZE = (1920.0, 1080.0)  # the frame clips are moved into, and generated motion is placed for
# Focal length (px) the canonical frame is decoded with when no clip says otherwise (generation):
# once framed, a clip's focal length is proportional to its subject's distance, and 1920 px is a
# subject about 5 m from the camera.
CANONICAL_FOCAL = 1920.0
TORSO_FILL = 0.18  # median torso / frame height: a standing body fills about 60 % of the height
FIT = 0.9  # the clip's keypoint box fills at most this share of the frame's width and height


@dataclass
class Framing:
    """The per-clip similarity ``p' = (p − source_centre)·scale + target_centre``."""
    scale: Tensor  # (B,)
    source_centre: Tensor  # (B, 2) pixels of the source frame
    target_centre: Tensor  # (B, 2) pixels of the canonical frame

    def to_canonical(self, pixels: Tensor) -> Tensor:
        """``pixels (B, ..., 2)`` of the source frame → the canonical frame."""
        shape = (pixels.shape[0],) + (1,) * (pixels.dim() - 2)
        return ((pixels - self.source_centre.reshape(*shape, 2)) * self.scale.reshape(*shape, 1)
                + self.target_centre.reshape(*shape, 2))

    def camera(self, focal: Tensor, width: Tensor, height: Tensor) -> tuple[Tensor, Tensor]:
        """The pinhole camera that sees the canonical frame: a source camera of focal length
        ``focal (B,)`` px with its principal point at the centre of a ``width × height`` frame
        becomes focal ``focal·scale`` and principal point ``to_canonical(centre)`` — exact, so the
        reframed keypoints are the projection of the same 3D body. → ``(focal (B,), principal (B, 2))``."""
        centre = torch.stack([width, height], dim=-1).float() / 2
        return focal * self.scale, self.to_canonical(centre[:, None])[:, 0]

    def to_source(self, pixels: Tensor) -> Tensor:
        """The inverse of `to_canonical`."""
        shape = (pixels.shape[0],) + (1,) * (pixels.dim() - 2)
        return ((pixels - self.target_centre.reshape(*shape, 2)) / self.scale.reshape(*shape, 1)
                + self.source_centre.reshape(*shape, 2))


@torch.no_grad()
def canonical_framing(keypoints: Tensor, valid: Tensor, conf_threshold: float,
                      log_jitter: Tensor | None = None) -> Framing:
    """The `Framing` of each clip of ``keypoints (B, F, 18, 3)`` (valid frames ``(B, F)``), from the
    keypoints with confidence ≥ ``conf_threshold``. A clip with no seen keypoint keeps its scale
    and is centred; one whose torso is never seen is scaled by its box alone. ``log_jitter (B,)``
    multiplies each clip's torso-based scale by ``exp(log_jitter)`` (training augmentation), still
    shrunk where the box would not fit."""
    xy = keypoints[..., :NUM_JOINTS, :2].float()
    seen = (keypoints[..., :NUM_JOINTS, 2] >= conf_threshold) & valid[..., None]  # (B, F, 17)
    big = torch.finfo(xy.dtype).max
    lo = torch.where(seen[..., None], xy, big).amin(dim=(1, 2))  # (B, 2)
    hi = torch.where(seen[..., None], xy, -big).amax(dim=(1, 2))
    any_seen = seen.any(dim=(1, 2))
    box = (hi - lo).clamp_min(1.0)
    width, height = CANONICAL_SIZE
    fit = torch.minimum(FIT * width / box[:, 0], FIT * height / box[:, 1])

    torso_seen = seen[..., list(HIPS) + list(SHOULDERS)].all(-1)  # (B, F)
    torso = (xy[..., list(SHOULDERS), :].mean(-2) - xy[..., list(HIPS), :].mean(-2)).norm(dim=-1)
    torso = torch.where(torso_seen, torso, torch.nan).nanmedian(dim=1).values  # NaN: never seen
    by_torso = TORSO_FILL * height / torso.clamp_min(1.0)
    if log_jitter is not None:
        by_torso = by_torso * log_jitter.exp()
    scale = torch.where(torch.isnan(torso), fit, torch.minimum(by_torso, fit))

    size = keypoints[:, :, FRAME_SIZE_ROW, :2].float().amax(dim=1)  # (B, 2): the source frame
    scale = torch.where(any_seen, scale, 1.0)
    source_centre = torch.where(any_seen[:, None], (lo + hi) / 2, size / 2)
    target_centre = torch.tensor([width / 2, height / 2], device=xy.device).expand_as(source_centre)
    return Framing(scale=scale, source_centre=source_centre, target_centre=target_centre)


def reframe(keypoints: Tensor, valid: Tensor, framing: Framing) -> Tensor:
    """``keypoints (B, F, 18, 3)`` moved into the canonical frame (row 17 becomes 1920×1080;
    keypoints with confidence 0 and padded frames stay zero)."""
    out = keypoints.clone()
    present = (keypoints[..., :NUM_JOINTS, 2] > 0) & valid[..., None]
    moved = framing.to_canonical(keypoints[..., :NUM_JOINTS, :2].float()).to(keypoints.dtype)
    out[..., :NUM_JOINTS, :2] = torch.where(present[..., None], moved, torch.zeros_like(moved))
    size = torch.tensor([*CANONICAL_SIZE, 1.0], dtype=keypoints.dtype, device=keypoints.device)
    out[:, :, FRAME_SIZE_ROW] = torch.where(valid[..., None], size, keypoints[:, :, FRAME_SIZE_ROW])
    return out
