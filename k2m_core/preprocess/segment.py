"""Resampling to the stored frame rate and cutting valid frames into clips of 2–10 s.

Resampling interpolates coordinates linearly between the two source frames around each output
time; the confidence is the lower of the two (an interpolated point is no surer than either end),
so a keypoint missing at either end is missing in between. Output time k is ``k / 30`` s after the
first source frame, so timing is kept exactly for any source rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SNAP = 1e-6  # output times this close to a source frame take that frame as is


@dataclass(frozen=True)
class SegmentConfig:
    fps: float = 30.0         # stored frame rate (docs/design.md#conventions)
    min_seconds: float = 2.0  # shortest clip
    max_seconds: float = 10.0  # longer stretches are split into equal parts

    @property
    def min_frames(self) -> int:
        return int(round(self.min_seconds * self.fps))

    @property
    def max_frames(self) -> int:
        return int(round(self.max_seconds * self.fps))


def source_positions(count: int, fps: float, target_fps: float) -> np.ndarray:
    """Fractional source-frame positions of the output frames covering ``count`` source frames."""
    if fps == target_fps:
        return np.arange(count, dtype=np.float64)
    last = int(np.floor((count - 1) * target_fps / fps + SNAP))
    pos = np.arange(last + 1) * fps / target_fps
    near = np.round(pos)
    return np.where(np.abs(pos - near) < SNAP, near, pos)


def resample(xy: np.ndarray, conf: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints ``xy (n, 17, 2)``, ``conf (n, 17)`` at fractional frame positions ``pos``."""
    i0 = np.floor(pos).astype(np.int64)
    w = pos - i0
    if not w.any():
        return xy[i0], conf[i0]
    i1 = np.minimum(i0 + 1, len(xy) - 1)
    wx = w[:, None, None].astype(np.float32)
    out_xy = (1 - wx) * xy[i0] + wx * xy[i1]
    out_c = np.where(w[:, None] > 0, np.minimum(conf[i0], conf[i1]), conf[i0])
    out_xy[out_c == 0] = 0.0
    return out_xy, out_c


def resample_flags(flags: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """A per-source-frame boolean at output positions: true if either neighbouring frame is."""
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.where(pos > i0, np.minimum(i0 + 1, len(flags) - 1), i0)
    return flags[i0] | flags[i1]


def valid_stretches(valid: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` of every maximal run of True."""
    edges = np.diff(np.r_[0, valid.astype(np.int8), 0])
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def split_stretch(start: int, stop: int, max_frames: int) -> list[tuple[int, int]]:
    """Cut ``[start, stop)`` into the fewest near-equal pieces of at most ``max_frames``."""
    pieces = -(-(stop - start) // max_frames)
    bounds = start + ((stop - start) * np.arange(pieces + 1)) // pieces
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))
