"""The filters of paper appendix A.2, applied at the stored frame rate.

Per frame (a failing frame is dropped and clips are cut around it):

- ``low-confidence``: no more than ``min_visible`` of the 17 keypoints reach ``min_conf``;
- ``lower-body-confidence``: a keypoint below the pelvis (knees, ankles) is under ``min_conf``;
- ``small-person``: the box of the confident keypoints is not taller than ``min_box_height`` of
  the image;
- ``too-fast``: the mean keypoint speed to the next frame exceeds ``max_speed`` (a teleport; both
  frames are dropped);
- ``too-jerky``: the mean keypoint acceleration exceeds ``max_accel`` (the three frames it is
  measured on are dropped);
- ``camera-moving``: the video's left and right edges both change (see `video.camera_motion`).

Before any of these, a keypoint more than a frame size outside the frame is made missing
(`detections.drop_far_keypoints`; listed as ``outside-frame`` in the report's files).

Per clip: ``stationary`` — the mean keypoint speed measured over 0.2 s (so that detector jitter
does not count as motion) is below ``min_speed``.

Speeds and accelerations are in person sizes (the larger side of the keypoint box) per second
(per second²), so one threshold fits every resolution and distance from the camera.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from k2m_core.keypoints import BELOW_PELVIS

FRAME_REASONS = ("low-confidence", "lower-body-confidence", "small-person", "too-fast", "too-jerky",
                 "camera-moving")
STATIONARY_WINDOW_S = 0.2


@dataclass(frozen=True)
class FilterConfig:
    min_conf: float = 0.5           # a keypoint counts as seen at or above this confidence
    min_visible: float = 0.75       # more than this fraction of the 17 keypoints must be seen
    lower_body: bool = True         # knees and ankles must all be seen
    min_box_height: float = 1 / 3   # person box taller than this fraction of the image height
    max_speed: float = 10.0         # person sizes / s, mean over keypoints, per frame
    max_accel: float = 400.0        # person sizes / s², mean over keypoints, per frame
    min_speed: float = 0.1          # person sizes / s over 0.2 s, mean over a clip
    camera_threshold: float = 8.0   # mean grey-level change (0–255) at both edges for "moving"
    camera_edge: float = 0.1        # width of each edge strip, as a fraction of the frame width


@dataclass
class Measures:
    """Per-frame arrays of one person run that every filter reads, computed once: coordinates
    split into contiguous ``x``, ``y`` ``(n, 17)``, the confident keypoints ``seen``, and the
    height and size (larger side) of their box (0 where none)."""

    x: np.ndarray
    y: np.ndarray
    seen: np.ndarray
    height: np.ndarray
    size: np.ndarray


def measure(xy: np.ndarray, conf: np.ndarray, min_conf: float) -> Measures:
    x, y = np.ascontiguousarray(xy[..., 0]), np.ascontiguousarray(xy[..., 1])
    seen = conf >= min_conf
    inf = np.float32(np.inf)
    width = np.where(seen, x, -inf).max(1) - np.where(seen, x, inf).min(1)
    height = np.where(seen, y, -inf).max(1) - np.where(seen, y, inf).min(1)
    any_seen = seen.any(1)
    return Measures(x, y, seen, np.where(any_seen, height, 0.0), np.where(any_seen, np.maximum(width, height), 0.0))


def _mean_over_seen(dist: np.ndarray, seen: np.ndarray) -> np.ndarray:
    count = seen.sum(1)
    return np.where(count > 0, np.where(seen, dist, 0).sum(1) / np.maximum(count, 1), 0.0)


def frame_failures(m: Measures, image_height: float, fps: float, camera_moving: np.ndarray | None,
                   cfg: FilterConfig) -> dict[str, np.ndarray]:
    """Boolean ``(n,)`` per reason of `FRAME_REASONS`: frames of one person run that fail it."""
    x, y, seen = m.x, m.y, m.seen
    n = len(x)
    scale = np.maximum(m.size, 1.0)
    out = {
        "low-confidence": seen.sum(1) <= cfg.min_visible * seen.shape[1],
        "lower-body-confidence": ~seen[:, BELOW_PELVIS].all(1) if cfg.lower_body else np.zeros(n, bool),
        "small-person": m.height <= cfg.min_box_height * image_height,
    }
    fast = np.zeros(n, bool)
    jerky = np.zeros(n, bool)
    if n >= 2:
        both = seen[1:] & seen[:-1]
        step = np.hypot(x[1:] - x[:-1], y[1:] - y[:-1])
        speed = _mean_over_seen(step, both) * fps / np.maximum(scale[1:], scale[:-1])
        over = speed > cfg.max_speed
        fast[1:] |= over
        fast[:-1] |= over
    if n >= 3:
        trio = seen[2:] & seen[1:-1] & seen[:-2]
        second = np.hypot(x[2:] - 2 * x[1:-1] + x[:-2], y[2:] - 2 * y[1:-1] + y[:-2])
        over = _mean_over_seen(second, trio) * fps * fps / scale[1:-1] > cfg.max_accel
        jerky[:-2] |= over  # the three frames of the second difference share the blame
        jerky[1:-1] |= over
        jerky[2:] |= over
    out["too-fast"], out["too-jerky"] = fast, jerky
    out["camera-moving"] = np.zeros(n, bool) if camera_moving is None else camera_moving
    return out


def motion_level(m: Measures, start: int, stop: int, fps: float) -> float:
    """Mean keypoint speed of frames ``[start, stop)`` in person sizes per second, over a 0.2 s
    baseline."""
    lag = max(1, min(int(round(STATIONARY_WINDOW_S * fps)), stop - start - 1))
    a, b = slice(start, stop - lag), slice(start + lag, stop)
    dist = np.hypot(m.x[b] - m.x[a], m.y[b] - m.y[a])
    speed = _mean_over_seen(dist, m.seen[b] & m.seen[a]) / np.maximum(m.size[a], 1.0) * fps / lag
    return float(speed.mean()) if len(speed) else 0.0
