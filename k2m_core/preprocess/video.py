"""The video a keypoint file came from, when the user has it: frame size, frame rate, and the
camera-movement check of paper A.2.

Formats without a frame size or rate (COCO results, OpenPose, MMPose) can also take them from a
per-video table (``--video-info FILE``): JSONL objects or CSV rows with ``video`` (or ``id``),
``width``, ``height`` and optionally ``fps`` and ``focal`` (the camera's focal length in pixels) —
the ``clips.jsonl`` of `k2m data synth` is one.

A video matches a keypoint file when it is named after the video id (``<id>.mp4`` etc.) and lies
in ``--videos DIR`` or beside the keypoint file. Camera movement: the paper looks at pixel change
at the left and right edges of the frame, where the background usually is. A frame counts as
moving when the mean grey-level change from the previous frame exceeds the threshold in *both*
edge strips — a person walking past one edge changes only that one — and both frames of such a
step are marked.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from k2m_core.errors import UserError

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
ANALYSIS_SIZE = (160, 90)  # frames are shrunk for the edge check: enough for movement, fast to decode


class _ExpectedResize(logging.Filter):
    """imageio-ffmpeg warns whenever output and source sizes differ — here that is the point."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "different from the source frame size" not in record.getMessage()


_QUIET_RESIZE = _ExpectedResize()


@dataclass
class VideoInfo:
    path: Path
    width: float
    height: float
    fps: float | None
    moving: np.ndarray | None  # (frames,) bool, None when not checked


@dataclass(frozen=True)
class VideoMeta:
    """Frame size, rate and focal length (pixels) of one video from a ``--video-info`` table
    (None where not given)."""

    size: tuple[float, float] | None = None
    fps: float | None = None
    focal: float | None = None


def load_video_table(path: Path) -> dict[str, VideoMeta]:
    """Read a ``--video-info`` table; `UserError` naming the line for anything unusable."""
    if not path.is_file():
        raise UserError(f"--video-info {path}: no such file")
    text = path.read_bytes().decode("utf-8", errors="replace")
    if path.suffix.lower() == ".csv":
        rows = [(n + 2, row) for n, row in enumerate(csv.DictReader(io.StringIO(text)))]
    else:
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append((n, json.loads(line)))
                except json.JSONDecodeError:
                    raise UserError(f"{path}:{n}: not valid JSON") from None
    table = {}
    for n, row in rows:
        if not isinstance(row, dict):
            raise UserError(f"{path}:{n}: expected an object with video, width, height, fps")
        key = row.get("video", row.get("id"))
        try:
            size = (float(row["width"]), float(row["height"])) if row.get("width") not in (None, "") else None
            fps = float(row["fps"]) if row.get("fps") not in (None, "") else None
            focal = float(row["focal"]) if row.get("focal") not in (None, "") else None
        except (KeyError, TypeError, ValueError):
            raise UserError(f"{path}:{n}: width, height, fps and focal must be numbers") from None
        if not isinstance(key, str) or not key or (size and not min(size) > 0) or (fps is not None and not fps > 0):
            raise UserError(f"{path}:{n}: needs a video (or id) and positive width/height/fps")
        if focal is not None and not 0 < focal < float("inf"):
            raise UserError(f"{path}:{n}: focal must be a positive number of pixels, got {row['focal']!r}")
        table[key] = VideoMeta(size, fps, focal)
    return table


def find_video(video_id: str, folders: list[Path]) -> Path | None:
    """The video ``<id>.mp4`` (…) in one of ``folders``, by the whole id (``clipA/walk`` in a
    folder that mirrors the inputs') or by its last part (beside the keypoint file)."""
    names = dict.fromkeys([video_id, video_id.rsplit("/", 1)[-1]])
    for folder in folders:
        for name in names:
            for suffix in VIDEO_SUFFIXES:
                candidate = folder / f"{name}{suffix}"
                if candidate.is_file():
                    return candidate
    return None


def read_video(path: Path, check_camera: bool, edge: float, threshold: float) -> VideoInfo:
    """Frame size and rate of ``path``; with ``check_camera`` also the per-frame moving flags.
    Raises `OSError`/`RuntimeError` when ffmpeg cannot read the file."""
    import imageio_ffmpeg  # only needed when videos are given

    logger = logging.getLogger("imageio_ffmpeg")
    if _QUIET_RESIZE not in logger.filters:
        logger.addFilter(_QUIET_RESIZE)
    width, height = ANALYSIS_SIZE
    frames = imageio_ffmpeg.read_frames(str(path), pix_fmt="gray", bits_per_pixel=8,
                                        output_params=["-vf", f"scale={width}:{height}"])
    try:
        meta = next(frames)
        src_w, src_h = meta["source_size"]
        fps = float(meta["fps"]) or None
        if not check_camera:
            return VideoInfo(path, float(src_w), float(src_h), fps, None)
        strip = max(1, int(round(edge * width)))
        changes, previous = [], None
        for raw in frames:
            image = np.frombuffer(raw, dtype=np.uint8).reshape(height, width).astype(np.int16)
            edges = np.stack([image[:, :strip], image[:, -strip:]])
            if previous is not None:
                changes.append(np.abs(edges - previous).mean(axis=(1, 2)))
            previous = edges
    finally:
        frames.close()
    step = (np.array(changes).reshape(-1, 2) > threshold).all(1)  # between frames t and t + 1
    moving = np.r_[step, False] | np.r_[False, step]  # both frames of a moving step are affected
    return VideoInfo(path, float(src_w), float(src_h), fps, moving)
