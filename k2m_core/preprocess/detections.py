"""What every reader produces: all person detections of one video, flat over frames.

Readers hand raw arrays to `make_detections`, which applies the checks every format shares, so a
file's problems are reported the same way whatever its format:

- a detection slot that is entirely NaN or entirely zero is padding (no person), not an error;
- any other NaN/inf, or a confidence outside [0, 1], rejects the file (`FormatError`);
- a keypoint at exactly (0, 0) is missing (OpenPose and ultralytics write missing points so), and
  a missing keypoint is stored canonically as (0, 0, 0); detections with no keypoint left are dropped.

Once the frame size is known, `drop_far_keypoints` makes keypoints far outside the frame missing
too (an estimator's glitch: they would otherwise win the largest-person choice and pass every
filter).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from k2m_core.keypoints import far_outside

CONF_TOLERANCE = 1e-4  # float32 round-off above 1 is not a broken file


class FormatError(Exception):
    """A file (or one record of it) cannot be used. ``reason`` is a short report key."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class Detections:
    """One video's detections: ``frame (D,)`` sorted frame numbers (several entries per frame when
    several people are seen), ``xy (D, 17, 2)`` float32 pixels, ``conf (D, 17)`` float32,
    ``size (D, 2)`` float32 frame size (W, H) or None when the file does not say, ``fps`` or None,
    ``focal`` (the camera's focal length in pixels) or None, and ``declared`` — every frame number the file covers, people or not (for gap notes)."""

    video: str
    source: str
    frame: np.ndarray
    xy: np.ndarray
    conf: np.ndarray
    size: np.ndarray | None
    fps: float | None
    declared: np.ndarray
    focal: float | None = None

    def __len__(self) -> int:
        return len(self.frame)


def make_detections(video: str, source: str, frame, xy, conf, *, size=None, fps=None,
                    declared=None, focal=None) -> Detections:
    """Check and canonicalise raw arrays (``frame (D,)``, ``xy (D, 17, 2)``, ``conf (D, 17)``,
    optional ``size (D, 2)`` or ``(2,)``) into `Detections`. Raises `FormatError`.

    The inputs are not modified. Written for speed on long videos: whole-array checks first,
    per-slot work only where they fail."""
    frame = np.asarray(frame, dtype=np.int64).reshape(-1)
    xy = np.array(xy, dtype=np.float32).reshape(len(frame), 17, 2)  # a copy: edited below
    conf = np.array(conf, dtype=np.float32).reshape(len(frame), 17)
    declared = np.unique(frame if declared is None else np.asarray(declared, dtype=np.int64))
    if fps is not None and not (np.isfinite(fps) and fps > 0):
        raise FormatError("bad-fps", f"frame rate must be a positive number, got {fps}")
    if focal is not None and not (np.isfinite(focal) and focal > 0):
        raise FormatError("bad-focal", f"focal length must be a positive number of pixels, got {focal}")
    x, y = xy[..., 0], xy[..., 1]
    if np.isfinite(xy).all() and np.isfinite(conf).all():
        padding = ~conf.any(1) & ~(x.any(1) | y.any(1))
    else:
        finite = np.isfinite(x) & np.isfinite(y) & np.isfinite(conf)
        padding = ~finite.any(1) | (~conf.any(1) & ~(x.any(1) | y.any(1)))
        broken = ~finite & ~padding[:, None]
        if broken.any():
            raise FormatError("non-finite", f"NaN or inf keypoint value at frame {frame[np.argwhere(broken)[0, 0]]}")
        conf[padding], xy[padding] = 0.0, 0.0
    if conf.size and (conf.min() < -CONF_TOLERANCE or conf.max() > 1 + CONF_TOLERANCE):
        bad = (conf < -CONF_TOLERANCE) | (conf > 1 + CONF_TOLERANCE)
        raise FormatError("confidence-range", f"confidence outside [0, 1] at frame {frame[np.argwhere(bad)[0, 0]]} "
                          f"(min {conf.min():.3g}, max {conf.max():.3g}); rescale the scores to [0, 1]")
    np.clip(conf, 0.0, 1.0, out=conf)
    missing = (conf == 0) | ((x == 0) & (y == 0))
    if missing.any():
        conf[missing] = 0.0
        xy[missing] = 0.0
    if size is not None:
        size = np.broadcast_to(np.asarray(size, dtype=np.float32), (len(frame), 2))
        if not (np.isfinite(size).all() and (size > 0).all()):
            raise FormatError("bad-frame-size", "frame width and height must be positive numbers")
    keep = ~missing.all(1)  # drops padding too: its keypoints are all missing
    if not keep.all():
        frame, xy, conf = frame[keep], xy[keep], conf[keep]
        size = None if size is None else size[keep]
    if len(frame) > 1 and (np.diff(frame) < 0).any():
        order = np.argsort(frame, kind="stable")
        frame, xy, conf = frame[order], xy[order], conf[order]
        size = None if size is None else size[order]
    return Detections(video=video, source=source, frame=frame, xy=xy, conf=conf,
                      size=None if size is None else np.ascontiguousarray(size),
                      fps=None if fps is None else float(fps), declared=declared,
                      focal=None if focal is None else float(focal))


def drop_far_keypoints(det: Detections, size) -> tuple[Detections, int]:
    """``det`` with every keypoint that lies far outside its frame (`keypoints.far_outside`) made
    missing, and detections left without keypoints dropped; ``size`` (W, H) is the frame size
    where ``det`` stores none. Returns the detections and how many keypoints were dropped."""
    sizes = det.size if det.size is not None else np.broadcast_to(np.asarray(size, np.float32), (len(det), 2))
    far = far_outside(det.xy, sizes[:, None, 0], sizes[:, None, 1]) & (det.conf > 0)
    if not far.any():
        return det, 0
    xy, conf = det.xy.copy(), det.conf.copy()
    xy[far], conf[far] = 0.0, 0.0
    keep = conf.any(1)
    return replace(det, frame=det.frame[keep], xy=xy[keep], conf=conf[keep],
                   size=None if det.size is None else det.size[keep]), int(far.sum())
