"""MMPose 1.x prediction JSON, both layouts it writes for videos:

- the inferencer: ``[{"frame_id": n, "instances": [{"keypoints": K×[x, y], "keypoint_scores": K,
  "bbox": [[x1, y1, x2, y2]], "bbox_score": s}]}]`` with 0-based frame ids;
- the top-down demo: ``{"meta_info": {...}, "instance_info": [ same per-frame entries ]}`` with
  1-based frame ids (shifted here to 0-based so frames line up with the video).

No frame size or rate is stored.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from k2m_core.preprocess.detections import Detections, FormatError, make_detections
from k2m_core.preprocess.formats.common import as_people, keypoint_bbox, load_json, present, write_json_atomic
from k2m_core.preprocess.formats.layouts import to_coco17

LAYOUTS = ("predictions", "instance_info")


def is_mmpose(data) -> bool:
    if isinstance(data, dict):
        return "instance_info" in data
    return isinstance(data, list) and bool(data) and isinstance(data[0], dict) and "instances" in data[0]


def read_mmpose(path: Path, video: str, data=None) -> Detections:
    data = load_json(path) if data is None else data
    one_based = isinstance(data, dict)
    entries = data.get("instance_info") if one_based else data
    if not isinstance(entries, list):
        raise FormatError("malformed", "'instance_info' must be a list of frames")
    declared, owners, points, scores = [], [], [], []
    try:
        for entry in entries:
            frame = entry["frame_id"]
            if not isinstance(frame, int) or isinstance(frame, bool):
                raise FormatError("malformed", f"frame_id must be an integer, got {frame!r}")
            frame -= one_based
            declared.append(frame)
            for instance in entry["instances"]:
                owners.append(frame)
                points.append(instance["keypoints"])
                scores.append(instance["keypoint_scores"])
    except (KeyError, TypeError) as exc:
        raise FormatError("malformed", f"a frame or instance is missing a field or has a wrong type ({exc})") from None
    if not points:
        raise FormatError("empty", "no instances in any frame")
    try:
        xy = np.asarray(points, dtype=np.float64)
        conf = np.asarray(scores, dtype=np.float64)
    except (ValueError, TypeError):
        raise FormatError("keypoint-count", "instances have different keypoint counts or non-numbers") from None
    if xy.ndim != 3 or xy.shape[2] != 2 or conf.shape != xy.shape[:2]:
        raise FormatError("keypoint-count", f"keypoints must be K×[x, y] with K scores; got {xy.shape} and {conf.shape}")
    return make_detections(video, str(path), owners, to_coco17(xy), to_coco17(conf, axis=-1), declared=declared)


def write_mmpose_json(path: str | os.PathLike, xy, conf, layout: str = "predictions", start_frame: int = 0) -> Path:
    """Write ``xy (F, [N,] 17, 2)``, ``conf (F, [N,] 17)`` as MMPose predictions
    (``layout="predictions"``, 0-based ids) or a top-down demo file (``"instance_info"``, 1-based)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    xy, conf = as_people(xy, conf)
    offset = start_frame + (layout == "instance_info")
    frames = []
    for f in range(len(xy)):
        instances = []
        for n in range(xy.shape[1]):
            if present(conf[f, n]):
                x, y, w, h = keypoint_bbox(xy[f, n], conf[f, n])
                instances.append({"keypoints": xy[f, n].tolist(), "keypoint_scores": conf[f, n].tolist(),
                                  "bbox": [[x, y, x + w, y + h]], "bbox_score": float(conf[f, n].mean())})
        frames.append({"frame_id": f + offset, "instances": instances})
    if layout == "instance_info":
        return write_json_atomic(path, {"meta_info": {"dataset_name": "coco"}, "instance_info": frames})
    return write_json_atomic(path, frames)
