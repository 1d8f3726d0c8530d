"""Settings of a preprocessing run (every threshold is a `k2m preprocess` option)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from k2m_core.errors import UserError
from k2m_core.keypoints import check_focal_options, check_frame_size
from k2m_core.preprocess.filters import FilterConfig
from k2m_core.preprocess.segment import SegmentConfig
from k2m_core.preprocess.tracking import TrackConfig

FORMATS = ("auto", "coco", "openpose", "mmpose", "npz", "jsonl")


@dataclass(frozen=True)
class InputOptions:
    format: str = "auto"                    # one of FORMATS
    frame_regex: str | None = None          # frame number inside image ids / file names
    size: tuple[float, float] | None = None  # (W, H) when files do not say
    fps: float | None = None                # input rate when files do not say
    focal: float | None = None              # camera focal length in pixels when files do not say
    fov: float | None = None                # or its field of view across the frame's long side, degrees
    video_info: Path | None = None          # per-video size / fps table
    videos: Path | None = None              # where to look for the source videos
    camera_check: bool = True               # check camera movement when a video is found


@dataclass(frozen=True)
class PreprocessConfig:
    inputs: InputOptions = field(default_factory=InputOptions)
    track: TrackConfig = field(default_factory=TrackConfig)
    filters: FilterConfig = field(default_factory=FilterConfig)
    segment: SegmentConfig = field(default_factory=SegmentConfig)
    seed: int = 0
    workers: int = 1
    shard: tuple[int, int] = (0, 1)   # (i, n): this run takes every n-th input, starting at i
    strict: bool = False              # any input problem → exit 2, nothing written
    jsonl_chunk_bytes: int = 8 << 20  # JSONL files are split into work units of about this size

    def check(self) -> None:
        """`UserError` naming the option for any value out of range."""
        f, s, i = self.filters, self.segment, self.inputs
        for name in ("min_conf", "min_visible", "min_box_height", "camera_edge"):
            if not 0.0 <= getattr(f, name) <= 1.0:
                raise UserError(f"--{name.replace('_', '-')} must be in [0, 1], got {getattr(f, name)}")
        for name in ("max_speed", "max_accel", "min_speed", "camera_threshold"):  # inf: no limit
            if not getattr(f, name) >= 0:
                raise UserError(f"--{name.replace('_', '-')} must not be negative, got {getattr(f, name)}")
        if not 0 < s.min_seconds <= s.max_seconds < math.inf:
            raise UserError(f"--min-seconds and --max-seconds must satisfy 0 < min <= max, got "
                            f"{s.min_seconds} and {s.max_seconds}")
        if not self.track.max_shift > 0:
            raise UserError(f"--track-shift must be positive, got {self.track.max_shift}")
        if i.format not in FORMATS:
            raise UserError(f"--format must be one of {', '.join(FORMATS)}, got {i.format!r}")
        if i.frame_regex:
            try:
                re.compile(i.frame_regex)
            except re.error as exc:
                raise UserError(f"--frame-regex {i.frame_regex!r} is not a valid regular expression ({exc})") from None
        if i.fps is not None and not (math.isfinite(i.fps) and 0 < i.fps <= 1000):
            raise UserError(f"--fps must be a frame rate between 0 and 1000, got {i.fps}")
        if i.size is not None:
            check_frame_size(*i.size)
        check_focal_options(i.focal, i.fov)
        if i.videos is not None and not Path(i.videos).is_dir():
            raise UserError(f"--videos {i.videos}: no such folder")
        if self.workers < 1:
            raise UserError(f"--workers must be at least 1, got {self.workers}")
        k, n = self.shard
        if not (n >= 1 and 0 <= k < n):
            raise UserError(f"--shard must be i/n with 0 <= i < n, got {k}/{n}")

