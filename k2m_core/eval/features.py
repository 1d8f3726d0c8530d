"""Per-frame motion features of a 2D keypoint clip: the evaluator's motion input (docs/design.md#evaluation).

Guo et al.'s evaluator reads a root-relative pose plus root motion in metres. A 2D clip has no
metres and its framing (where the person stands, how large they appear, the image size) says
little about the motion, so each ``(F, 18, 3)`` clip becomes ``(F, 38)``:

- keypoints normalised as the tokenizer sees them, ``(p − (W/2, H/2)) / (max(W, H)/2)``;
- keypoints with confidence below ``conf_threshold`` are treated as unseen and filled by linear
  interpolation over time from the same keypoint's seen frames (held at the ends); a keypoint
  never seen in the clip sits on the root. Ground truth from a pose estimator then looks like
  generated motion, which is complete, instead of differing by its gaps;
- root = mid-hip; scale = the clip's median torso length (mid-shoulder to mid-hip);
- 34 numbers: the 17 keypoints relative to the root, / scale;
- 2 numbers: the root relative to its first-frame position, / scale;
- 2 numbers: the root's displacement since the previous frame, / scale (0 at frame 0).

The same function serves dataset clips and generated SMPL projected with the paper's camera, so
both reach the evaluator through one path.
"""

from __future__ import annotations

import warnings

import numpy as np

from k2m_core.keypoints import FRAME_SIZE_ROW, HIPS, NUM_JOINTS, SHOULDERS, half_extent

FEATURE_DIM = 2 * NUM_JOINTS + 4
MIN_SCALE = 1e-3  # normalised units; guards clips whose torso is never seen


def _fill_gaps(xy: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """``xy (F, J, 2)`` with unseen entries interpolated per joint; NaN for joints never seen."""
    frames = np.arange(len(xy))
    out = np.full_like(xy, np.nan)
    for joint in range(xy.shape[1]):
        mask = seen[:, joint]
        if mask.all():
            out[:, joint] = xy[:, joint]
        elif mask.any():
            for axis in range(2):
                out[:, joint, axis] = np.interp(frames, frames[mask], xy[mask, joint, axis])
    return out


def motion_features(clip: np.ndarray, conf_threshold: float = 0.3) -> np.ndarray:
    """``clip (F, 18, 3)`` (pixels, confidences, row 17 = (W, H, 1)) → ``(F, 38)`` float32."""
    clip = np.asarray(clip, dtype=np.float64)
    width, height = clip[0, FRAME_SIZE_ROW, 0], clip[0, FRAME_SIZE_ROW, 1]
    half = half_extent(width, height)
    xy = (clip[:, :NUM_JOINTS, :2] - np.array([width / 2, height / 2])) / half
    xy = _fill_gaps(xy, clip[:, :NUM_JOINTS, 2] >= conf_threshold)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # means of all-NaN rows: handled just below
        root = np.nanmean(xy[:, list(HIPS)], axis=1)  # (F, 2)
        if np.isnan(root).any():  # no hip ever seen: fall back to the centre of what was seen
            centre = np.nanmean(xy, axis=1) if not np.isnan(xy).all() else np.zeros((len(xy), 2))
            root = np.nan_to_num(np.where(np.isnan(root), centre, root))
    xy = np.where(np.isnan(xy), root[:, None], xy)
    torso = np.linalg.norm(xy[:, list(SHOULDERS)].mean(1) - xy[:, list(HIPS)].mean(1), axis=-1)
    scale = max(float(np.median(torso)), MIN_SCALE)
    local = (xy - root[:, None]) / scale
    trajectory = (root - root[:1]) / scale
    velocity = np.diff(root, axis=0, prepend=root[:1]) / scale
    return np.concatenate([local.reshape(len(xy), -1), trajectory, velocity], axis=1).astype(np.float32)
