"""The 18-keypoint clip format and the encoder-input normalisation (docs/design.md#keypoints).

A clip is an ``(F, 18, 3)`` float32 array: rows 0–16 are COCO-17 ``(x, y, c)`` in pixels with
confidence ``c`` in [0, 1]; row 17 is ``(W, H, 1)`` of the source video. A missing keypoint has
``c = 0``; stored values are never NaN or inf.

Works on NumPy arrays; `normalise_for_encoder` uses only arithmetic so torch tensors work too.
"""

from __future__ import annotations

import numpy as np

from k2m_core.errors import UserError

COCO17_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)
NUM_JOINTS = 17
NUM_ROWS = 18
FRAME_SIZE_ROW = 17
# The paper's focal length (eq. 3), in pixels; what a dataset without per-clip focal lengths assumes.
PAPER_FOCAL = 5000.0
# Focal length of a camera nobody described, per pixel of the frame's long side: f = 1.2·max(W, H),
# a field of view of 45° across the long side (web video lies between about 0.65 and 1.4).
DEFAULT_FOCAL_PER_EXTENT = 1.2
LAYOUT_NAME = "coco17+size"

# A keypoint more than this many frame sizes outside its frame (x < −W or x > 2W, likewise y) is
# an estimator's glitch, not a body part: preprocessing treats it as missing, `k2m data validate`
# and the trainers refuse it.
OUTSIDE_MARGIN = 1.0
# Largest frame side accepted (pixels): beyond any camera, and far below where float32 coordinates
# lose whole pixels.
MAX_FRAME_SIDE = 65536
# Keypoints below the pelvis: the confidence filter demands all of them (paper A.2).
BELOW_PELVIS = (13, 14, 15, 16)
# Index of each keypoint's mirror image (left <-> right), for flips and augmentation.
MIRROR = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)
HIPS, SHOULDERS = (11, 12), (5, 6)  # COCO-17: mid-shoulder to mid-hip is the torso
# Bones drawn by previews.
EDGES = (
    (0, 1), (0, 2), (1, 3), (2, 4), (5, 6), (5, 7), (7, 9), (6, 8), (8, 10),
    (5, 11), (6, 12), (11, 12), (11, 13), (13, 15), (12, 14), (14, 16),
)


def make_clip(xy: np.ndarray, conf: np.ndarray, width: float, height: float) -> np.ndarray:
    """Assemble an ``(F, 18, 3)`` clip from COCO-17 pixel coordinates ``(F, 17, 2)`` and
    confidences ``(F, 17)``. Non-finite coordinates become missing keypoints (c = 0, xy = 0)."""
    xy = np.asarray(xy, dtype=np.float64)
    conf = np.asarray(conf, dtype=np.float64)
    if xy.ndim != 3 or xy.shape[1:] != (NUM_JOINTS, 2):
        raise ValueError(f"xy must be (F, 17, 2), got {xy.shape}")
    if conf.shape != xy.shape[:2]:
        raise ValueError(f"conf must be (F, 17) matching xy, got {conf.shape}")
    bad = ~np.isfinite(xy).all(-1) | ~np.isfinite(conf)
    clip = np.zeros((xy.shape[0], NUM_ROWS, 3), dtype=np.float32)
    clip[:, :NUM_JOINTS, :2] = np.where(bad[..., None], 0.0, xy)
    clip[:, :NUM_JOINTS, 2] = np.where(bad, 0.0, np.clip(conf, 0.0, 1.0))
    clip[:, FRAME_SIZE_ROW] = (width, height, 1.0)
    return clip


def validate_clip(clip: np.ndarray, where: str = "clip") -> None:
    """Raise `UserError` naming ``where`` if ``clip`` breaks any invariant of docs/design.md#keypoints."""
    if not isinstance(clip, np.ndarray):
        raise UserError(f"{where}: expected a NumPy array, got {type(clip).__name__}")
    if clip.ndim != 3 or clip.shape[1:] != (NUM_ROWS, 3):
        raise UserError(f"{where}: keypoints must have shape (F, 18, 3), got {clip.shape}")
    if clip.shape[0] == 0:
        raise UserError(f"{where}: clip has no frames")
    if clip.dtype != np.float32:
        raise UserError(f"{where}: keypoints must be float32, got {clip.dtype}")
    if not np.isfinite(clip).all():
        frame = int(np.argwhere(~np.isfinite(clip))[0, 0])
        raise UserError(f"{where}: non-finite value (NaN/inf) at frame {frame}; store missing keypoints as c = 0")
    conf = clip[:, :NUM_JOINTS, 2]
    if conf.min() < 0.0 or conf.max() > 1.0:
        raise UserError(f"{where}: confidence outside [0, 1] (min {conf.min():.3g}, max {conf.max():.3g})")
    size = clip[:, FRAME_SIZE_ROW]
    if (size[:, 0] <= 0).any() or (size[:, 1] <= 0).any():
        raise UserError(f"{where}: row 17 must hold the positive frame size (W, H, 1)")
    if (size != size[:1]).any() or (size[:, 2] != 1.0).any():
        raise UserError(f"{where}: row 17 (W, H, 1) must be the same in every frame with c = 1")


def check_frame_size(width: float, height: float, what: str = "--size") -> None:
    """`UserError` naming ``what`` unless ``width × height`` is a plausible frame size in pixels."""
    if not all(np.isfinite(v) and 0 < v <= MAX_FRAME_SIDE for v in (width, height)):
        raise UserError(f"{what} {width:g}x{height:g}: frame sides must be 1–{MAX_FRAME_SIDE} pixels")


def far_outside(xy: np.ndarray, width, height, margin: float = OUTSIDE_MARGIN) -> np.ndarray:
    """Boolean ``(...)``: which points of ``xy (..., 2)`` (pixels) lie more than ``margin`` frame
    sizes outside the frame ``width × height`` (scalars or arrays broadcasting against ``(...)``)."""
    x, y = xy[..., 0], xy[..., 1]
    return (x < -margin * width) | (x > (1 + margin) * width) | (y < -margin * height) | (y > (1 + margin) * height)


def half_extent(width, height):
    """max(W, H) / 2, the unit of normalised image coordinates. Arithmetic only, so it works on
    floats, NumPy arrays and torch tensors alike."""
    return (width + height + abs(width - height)) / 4


def focal_from_fov(fov_deg: float, width: float, height: float) -> float:
    """Focal length in pixels of a pinhole camera whose field of view across the frame's long side
    (the horizontal one for landscape video) is ``fov_deg``: ``max(W, H)/2 / tan(fov/2)``."""
    return float(max(width, height) / 2 / np.tan(np.radians(fov_deg) / 2))


def check_focal_options(focal: float | None, fov: float | None) -> None:
    """``--focal`` (pixels) and ``--fov`` (degrees) as a user gave them: a `UserError` naming what is wrong."""
    if focal is not None and not 0 < focal < float("inf"):
        raise UserError(f"--focal must be a positive number of pixels, got {focal}")
    if fov is not None and not 0 < fov < 180:
        raise UserError(f"--fov must be an angle in degrees between 0 and 180, got {fov}")
    if focal is not None and fov is not None:
        raise UserError("give --focal or --fov, not both (they say the same thing)")


def camera_focal(width: float, height: float, *, known: float | None = None, focal: float | None = None,
                 fov: float | None = None) -> float:
    """A video's focal length in pixels: the first of what its files say (``known``), ``--focal``,
    ``--fov`` across the long side, and `default_focal`."""
    if known or focal:
        return float(known or focal)
    if fov is not None:
        return focal_from_fov(fov, width, height)
    return default_focal(width, height)


def default_focal(width: float, height: float) -> float:
    """The focal length assumed for a video whose camera is unknown (`DEFAULT_FOCAL_PER_EXTENT`)."""
    return DEFAULT_FOCAL_PER_EXTENT * float(max(width, height))


def normalise_for_encoder(clip, conf_threshold: float = 0.8):
    """The encoder input (docs/design.md#keypoints): ``(..., F, 17, 3)`` with x, y mapped to
    ``(p − (W/2, H/2)) / (max(W, H)/2)`` and confidence kept; rows with c below ``conf_threshold``
    are zeroed entirely.

    ``clip`` is ``(..., F, 18, 3)`` (NumPy or torch). Only arithmetic is used so both work.
    """
    width = clip[..., FRAME_SIZE_ROW:, 0:1]  # (..., F, 1, 1)
    height = clip[..., FRAME_SIZE_ROW:, 1:2]
    half = half_extent(width, height)
    x = (clip[..., :NUM_JOINTS, 0:1] - width / 2) / half
    y = (clip[..., :NUM_JOINTS, 1:2] - height / 2) / half
    c = clip[..., :NUM_JOINTS, 2:3]
    keep = c >= conf_threshold
    parts = (x * keep, y * keep, c * keep)
    if isinstance(x, np.ndarray):
        return np.concatenate(parts, axis=-1).astype(np.float32)
    import torch  # only reached with torch inputs, so importing this module stays torch-free

    return torch.cat(parts, dim=-1)


def denormalise_xy(x_norm, y_norm, width, height):
    """Inverse of the x, y part of `normalise_for_encoder`: normalised units → pixels."""
    half = half_extent(width, height)
    return x_norm * half + width / 2, y_norm * half + height / 2


def mirror_clip(clip):
    """Left–right mirror of ``(..., F, 18, 3)`` clips, numpy or torch: x → W − x, left and right
    keypoints swapped (missing keypoints stay at x = 0). Returns a copy."""
    out = clip[..., list(MIRROR) + [FRAME_SIZE_ROW], :]  # fancy indexing copies
    width = out[..., FRAME_SIZE_ROW:, 0]
    seen = out[..., :NUM_JOINTS, 2] > 0
    out[..., :NUM_JOINTS, 0] = (width - out[..., :NUM_JOINTS, 0]) * seen
    return out
