"""Helpers the format modules share: safe JSON loading, frame numbers from names, writer inputs."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from k2m_core.atomic import atomic_path
from k2m_core.preprocess.detections import FormatError

_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")


def load_json(path: Path, data: bytes | None = None):
    """Parse a JSON file, turning every way it can be broken into a `FormatError`."""
    raw = path.read_bytes() if data is None else data
    if not raw.strip():
        raise FormatError("empty", "file is empty")
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise FormatError("unreadable", f"not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise FormatError("unreadable", f"truncated or invalid JSON at line {exc.lineno} column {exc.colno}: "
                          f"{exc.msg}") from None
    except RecursionError:
        raise FormatError("unreadable", "JSON nested too deeply") from None


def frame_numbers(ids: list, frame_regex: str | None, what: str) -> np.ndarray:
    """Frame numbers for per-frame ids: integers as they are; names by ``frame_regex`` (its first
    group, or the whole match), else by the last number in every name, else by sorted name order."""
    if all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        return np.asarray(ids, dtype=np.int64)
    if not all(isinstance(i, str) for i in ids):
        raise FormatError("malformed", f"{what} must be all integers or all strings")
    if frame_regex:
        pattern = re.compile(frame_regex)
        numbers = []
        for name in ids:
            match = pattern.search(name)
            if match is None:
                raise FormatError("frame-number", f"--frame-regex {frame_regex!r} does not match {what} {name!r}")
            numbers.append(int(match.group(1) if pattern.groups else match.group(0)))
        return np.asarray(numbers, dtype=np.int64)
    matches = [_LAST_NUMBER.search(name) for name in ids]
    if all(matches):
        return np.asarray([int(m.group(1)) for m in matches], dtype=np.int64)
    names = sorted(set(ids))  # no numbers: name order is frame order, gaps unknowable
    rank = {name: i for i, name in enumerate(names)}
    return np.asarray([rank[name] for name in ids], dtype=np.int64)


def keypoint_rows(values, channels: int, what: str) -> np.ndarray:
    """A list of equally long flat keypoint lists → float64 ``(D, K, channels)``."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (ValueError, TypeError):
        raise FormatError("keypoint-count", f"{what}: keypoint lists differ in length or hold non-numbers") from None
    if array.ndim != 2 or array.shape[1] % channels:
        raise FormatError("keypoint-count", f"{what}: expected flat lists of {channels}-tuples, "
                          f"got shape {array.shape}")
    return array.reshape(len(array), -1, channels)


def as_people(xy, conf) -> tuple[np.ndarray, np.ndarray]:
    """Writer input ``(F, 17, 2)`` / ``(F, 17)`` (one person) or ``(F, N, 17, 2)`` / ``(F, N, 17)``
    → float64 ``(F, N, 17, 2)``, ``(F, N, 17)``."""
    xy = np.asarray(xy, dtype=np.float64)
    conf = np.asarray(conf, dtype=np.float64)
    if xy.ndim == 3:
        xy, conf = xy[:, None], conf[:, None]
    if xy.ndim != 4 or xy.shape[-2:] != (17, 2) or conf.shape != xy.shape[:-1]:
        raise ValueError(f"xy must be (F, [N,] 17, 2) with conf (F, [N,] 17); got {xy.shape} and {conf.shape}")
    return xy, conf


def present(conf_person: np.ndarray) -> bool:
    """Writers skip person slots with no keypoint (padding)."""
    return bool((conf_person > 0).any())


def keypoint_bbox(xy: np.ndarray, conf: np.ndarray) -> list[float]:
    """COCO ``[x, y, w, h]`` around the detected keypoints of one person (writers only)."""
    seen = conf > 0
    if not seen.any():
        return [0.0, 0.0, 0.0, 0.0]
    lo, hi = xy[seen].min(0), xy[seen].max(0)
    return [float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])]


def write_json_atomic(path: str | os.PathLike, obj) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj), encoding="utf-8")
    return path
