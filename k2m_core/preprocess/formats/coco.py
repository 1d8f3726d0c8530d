"""COCO keypoint JSON: detector results and annotation files (also Halpe-26 and COCO-WholeBody).

- **Results** (what AlphaPose, MMPose and Detectron2 dump): a list of
  ``{"image_id", "category_id": 1, "keypoints": [x, y, score]×K, "score", "bbox"}``, one entry per
  detected person. ``image_id`` is a number (frame order) or a file name such as ``"000123.jpg"``
  whose last number is the frame (``--frame-regex`` when it is not). The file has no frame size.
- **Annotations** (a COCO dataset file): ``{"images": [{"id", "width", "height"}], "annotations":
  [{"image_id", "keypoints": [x, y, v]×K}]}``; frames are image ids, the frame size comes from the
  images. Visibility ``v`` becomes a confidence: 2 (visible) → 1, 1 (labelled, occluded: the
  position is a guess) → 0.5, 0 → 0.

K may be 17, 26 (Halpe) or 133 (WholeBody); the first 17 keypoints are COCO-17.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from k2m_core.preprocess.detections import Detections, FormatError, make_detections
from k2m_core.preprocess.formats.common import (
    as_people, frame_numbers, keypoint_bbox, keypoint_rows, load_json, present, write_json_atomic)
from k2m_core.preprocess.formats.layouts import to_coco17

VISIBILITY_CONF = np.array([0.0, 0.5, 1.0])


def is_coco(data) -> bool:
    if isinstance(data, dict):
        return "annotations" in data and "images" in data
    return (isinstance(data, list) and bool(data) and isinstance(data[0], dict)
            and "image_id" in data[0] and "keypoints" in data[0])


def read_coco(path: Path, video: str, data=None, frame_regex: str | None = None) -> Detections:
    """Read a COCO results or annotation file (already parsed JSON may be passed as ``data``)."""
    data = load_json(path) if data is None else data
    if isinstance(data, dict):
        return _read_annotations(path, video, data)
    if not isinstance(data, list):
        raise FormatError("unknown-format", "COCO keypoint JSON must be a list of results or a dataset dict")
    people = [d for d in data if isinstance(d, dict) and d.get("category_id", 1) == 1]
    if not people:
        raise FormatError("empty", "no person detections in the file")
    try:
        ids = [d["image_id"] for d in people]
        rows = keypoint_rows([d["keypoints"] for d in people], 3, "keypoints")
    except KeyError as exc:
        raise FormatError("malformed", f"a detection has no {exc.args[0]!r}") from None
    rows = to_coco17(rows)
    frames = frame_numbers(ids, frame_regex, "image_id")
    return make_detections(video, str(path), frames, rows[..., :2], rows[..., 2])


def _read_annotations(path: Path, video: str, data: dict) -> Detections:
    images, annotations = data["images"], data["annotations"]
    if not isinstance(images, list) or not isinstance(annotations, list):
        raise FormatError("malformed", "'images' and 'annotations' must be lists")
    try:
        size_of = {im["id"]: (float(im["width"]), float(im["height"])) for im in images}
        people = [a for a in annotations if a.get("category_id", 1) == 1 and a.get("num_keypoints", 1) > 0]
        ids = [a["image_id"] for a in people]
        rows = keypoint_rows([a["keypoints"] for a in people], 3, "keypoints")
        sizes = np.array([size_of[i] for i in ids], dtype=np.float64).reshape(-1, 2)
    except (KeyError, TypeError, AttributeError) as exc:
        raise FormatError("malformed", f"COCO annotation file is missing a field or has a wrong type ({exc})") from None
    if not people:
        raise FormatError("empty", "no person annotations with keypoints in the file")
    rows = to_coco17(rows)
    flags = rows[..., 2]
    if not np.isin(flags, (0, 1, 2)).all():
        raise FormatError("confidence-range", "visibility flags must be 0, 1 or 2 in a COCO annotation file")
    frames = frame_numbers(ids, None, "image_id")
    declared = frame_numbers(list(size_of), None, "image id")
    return make_detections(video, str(path), frames, rows[..., :2], VISIBILITY_CONF[flags.astype(int)],
                           size=sizes, declared=declared)


def write_coco_results(path: str | os.PathLike, xy, conf, image_ids=None, *, num_keypoints: int = 17) -> Path:
    """Write COCO results JSON for ``xy (F, [N,] 17, 2)``, ``conf (F, [N,] 17)``.

    ``image_ids`` (length F) default to 0…F−1; give strings to mimic AlphaPose. Person slots with
    no keypoint are skipped. ``num_keypoints`` 26 or 133 pads with missing keypoints to mimic
    Halpe / WholeBody output."""
    xy, conf = as_people(xy, conf)
    image_ids = list(range(len(xy))) if image_ids is None else list(image_ids)
    if len(image_ids) != len(xy):
        raise ValueError(f"image_ids has {len(image_ids)} entries for {len(xy)} frames")
    flat = np.zeros(xy.shape[:2] + (num_keypoints, 3))
    flat[..., :17, :2], flat[..., :17, 2] = xy, conf
    out = []
    for f, image_id in enumerate(image_ids):
        for n in range(xy.shape[1]):
            if present(conf[f, n]):
                out.append({"image_id": image_id, "category_id": 1, "keypoints": flat[f, n].ravel().tolist(),
                            "score": float(conf[f, n].mean()), "bbox": keypoint_bbox(xy[f, n], conf[f, n])})
    return write_json_atomic(path, out)
