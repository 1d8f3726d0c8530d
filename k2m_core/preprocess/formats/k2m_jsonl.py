"""k2m's own keypoint format: JSON Lines, one video (or pre-cut clip) per line, one person.

Each line is a JSON object::

    {"video": "walk_0001",            # id; captions are looked up by it (and by clip id)
     "fps": 30,                       # frame rate of the keypoints
     "width": 1920, "height": 1080,   # frame size in pixels
     "start_frame": 0,                # optional: number of the first frame (default 0)
     "focal": 1500,                   # optional: the camera's focal length in pixels
                                      #   (principal point at the image centre)
     "keypoints": [                   # one entry per frame:
        [[x, y, c], ... 17 ...],      #   COCO-17 order, pixels, confidence in [0, 1]
        null,                         #   or null where no person is seen
        ...],
     "boxes": [[x0, y0, x1, y1], null, ...],  # optional: the person's box per frame
     "person_ids": [3, null, ...],    # optional: a stable person id per frame, from a tracker
     "estimator": "...", "source": "walk_0001.mp4"}  # optional: what made it, from which video

Blank lines are ignored. Because every line stands alone, a big file is processed in parallel
by byte ranges (`plan_chunks`), and a broken line rejects only its own record.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Iterator, Mapping

import numpy as np

from k2m_core.atomic import atomic_path
from k2m_core.preprocess.detections import Detections, FormatError, make_detections

REQUIRED = ("video", "fps", "width", "height", "keypoints")


def plan_chunks(path: Path, chunk_bytes: int) -> list[tuple[int, int]]:
    """Split a JSONL file into byte ranges that start and end on line boundaries."""
    size = path.stat().st_size
    bounds = [0]
    with open(path, "rb") as handle:
        while bounds[-1] + chunk_bytes < size:
            handle.seek(bounds[-1] + chunk_bytes)
            handle.readline()
            if handle.tell() >= size:
                break
            bounds.append(handle.tell())
    return list(zip(bounds, bounds[1:] + [size]))


def iter_k2m_jsonl(path: Path, start: int = 0, end: int | None = None) -> Iterator[Detections | FormatError]:
    """Yield one `Detections` per record in bytes ``[start, end)``, or the `FormatError` that
    rejects that record (its message names the record)."""
    if start == 0 and path.stat().st_size == 0:
        yield FormatError("empty", "file is empty")
        return
    with open(path, "rb") as handle:
        handle.seek(start)
        while end is None or handle.tell() < end:
            offset = handle.tell()
            line = handle.readline()
            if not line:
                break
            if line.strip():
                try:
                    yield _record(path, line)
                except FormatError as exc:
                    yield FormatError(exc.reason, f"record at byte {offset}: {exc}")


def _record(path: Path, line: bytes) -> Detections:
    try:
        data = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise FormatError("unreadable", "not UTF-8 text") from None
    except (json.JSONDecodeError, RecursionError):
        raise FormatError("unreadable", "truncated or invalid JSON") from None
    if not isinstance(data, dict) or any(key not in data for key in REQUIRED):
        raise FormatError("malformed", f"a record needs the keys {', '.join(REQUIRED)}")
    video, frames = data["video"], data["keypoints"]
    if not isinstance(video, str) or not video.strip():
        raise FormatError("malformed", "'video' must be a non-empty string")
    numbers = [data[k] for k in ("fps", "width", "height")]
    start, focal = data.get("start_frame", 0), data.get("focal")
    if focal is not None and not (isinstance(focal, (int, float)) and not isinstance(focal, bool)
                                  and 0 < focal < float("inf")):
        raise FormatError("malformed", f"{video}: 'focal' must be a positive number of pixels")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers) \
            or not isinstance(start, int) or isinstance(start, bool):
        raise FormatError("malformed", f"{video}: fps, width, height must be numbers and start_frame an integer")
    if not isinstance(frames, list) or not frames:
        raise FormatError("empty", f"{video}: 'keypoints' must be a non-empty list of frames")
    present = [i for i, frame in enumerate(frames) if frame is not None]
    if not present:
        raise FormatError("empty", f"{video}: no person in any frame")
    try:
        values = np.asarray([frames[i] for i in present], dtype=np.float64).reshape(len(present), -1, 3)
    except (ValueError, TypeError):
        raise FormatError("keypoint-count", f"{video}: every frame must be 17 × [x, y, c] or null") from None
    if values.shape[1] != 17:
        raise FormatError("keypoint-count", f"{video}: {values.shape[1]} keypoints per frame, expected 17")
    fps, width, height = numbers
    try:
        return make_detections(video, f"{path}#{video}", start + np.asarray(present, dtype=np.int64),
                               values[..., :2], values[..., 2], size=(width, height), fps=fps,
                               declared=start + np.arange(len(frames)), focal=focal)
    except FormatError as exc:
        raise FormatError(exc.reason, f"{video}: {exc}") from None


def write_k2m_jsonl(path: str | os.PathLike, records: Iterable[Mapping]) -> Path:
    """Write records to a k2m JSONL file. Each record is a mapping with ``video`` (str),
    ``xy (F, 17, 2)``, ``conf (F, 17)``, ``fps``, ``width``, ``height`` and optionally
    ``start_frame`` and ``focal`` (pixels); frames whose confidences are all 0 are written as null.
    The optional ``boxes (F, 4)`` (NaN rows: none), ``person_ids (F,)`` (negative: none),
    ``estimator`` and ``source`` are written when not None; a null frame has a null box and id."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        for record in records:
            xy = np.asarray(record["xy"], dtype=np.float64)
            conf = np.asarray(record["conf"], dtype=np.float64)
            if xy.ndim != 3 or xy.shape[1:] != (17, 2) or conf.shape != xy.shape[:2]:
                raise ValueError(f"record {record['video']!r}: xy must be (F, 17, 2) with conf (F, 17)")
            points = np.concatenate([xy, conf[..., None]], axis=-1).tolist()
            frames = [p if (c > 0).any() else None for p, c in zip(points, conf)]
            line = {"video": str(record["video"]), "fps": float(record["fps"]), "width": float(record["width"]),
                    "height": float(record["height"]), "start_frame": int(record.get("start_frame", 0)),
                    "keypoints": frames}
            line.update(_optional(record, [f is not None for f in frames]))
            handle.write(json.dumps(line) + "\n")
    return path


def _optional(record: Mapping, present: list[bool]) -> dict:
    out = {}
    if record.get("focal") is not None:
        out["focal"] = float(record["focal"])
    if record.get("boxes") is not None:
        boxes = np.asarray(record["boxes"], dtype=np.float64).reshape(len(present), 4)
        out["boxes"] = [b if p and np.isfinite(b).all() else None for b, p in zip(boxes.tolist(), present)]
    if record.get("person_ids") is not None:
        ids = np.asarray(record["person_ids"], dtype=np.int64).reshape(len(present))
        out["person_ids"] = [i if p and i >= 0 else None for i, p in zip(ids.tolist(), present)]
    out.update({key: str(record[key]) for key in ("estimator", "source") if record.get(key) is not None})
    return out
