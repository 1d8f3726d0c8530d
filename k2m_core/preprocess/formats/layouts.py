"""Keypoint layouts estimators write, and how each maps to COCO-17 (docs/design.md#ref-formats).

The layout is recognised by its keypoint count: 17 COCO, 26 Halpe, 133 COCO-WholeBody (all three
start with COCO-17), 25 OpenPose BODY_25, 18 OpenPose COCO-18.
"""

from __future__ import annotations

import numpy as np

from k2m_core.preprocess.detections import FormatError

BODY_25_TO_COCO = (0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11)
COCO_18_TO_COCO = (0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10)
LAYOUTS = {17: "COCO-17", 26: "Halpe-26", 133: "COCO-WholeBody", 25: "BODY_25", 18: "COCO-18"}
_INDEX = {17: np.arange(17), 26: np.arange(17), 133: np.arange(17),
          25: np.array(BODY_25_TO_COCO), 18: np.array(COCO_18_TO_COCO)}


def to_coco17(keypoints: np.ndarray, axis: int = -2) -> np.ndarray:
    """Take the COCO-17 rows out of any supported layout along ``axis``."""
    count = keypoints.shape[axis]
    if count not in _INDEX:
        raise FormatError("keypoint-count", f"{count} keypoints per person; expected one of "
                          + ", ".join(f"{k} ({v})" for k, v in LAYOUTS.items()))
    return np.take(keypoints, _INDEX[count], axis=axis)


def from_coco17(xy: np.ndarray, conf: np.ndarray, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """COCO-17 ``xy (..., 17, 2)``, ``conf (..., 17)`` → an OpenPose layout (``"BODY_25"`` or
    ``"COCO-18"``); neck and mid-hip are the midpoints of their neighbours, feet are missing."""
    count = {"BODY_25": 25, "COCO-18": 18}.get(layout)
    if count is None:
        raise ValueError(f"layout must be BODY_25 or COCO-18, got {layout!r}")
    out_xy = np.zeros(xy.shape[:-2] + (count, 2), dtype=np.float64)
    out_c = np.zeros(conf.shape[:-1] + (count,), dtype=np.float64)
    out_xy[..., _INDEX[count], :] = xy
    out_c[..., _INDEX[count]] = conf
    mids = [(1, 5, 6)] + ([(8, 11, 12)] if count == 25 else [])  # neck; BODY_25 also has mid-hip
    for target, a, b in mids:
        both = np.minimum(conf[..., a], conf[..., b])
        out_xy[..., target, :] = np.where(both[..., None] > 0, (xy[..., a, :] + xy[..., b, :]) / 2, 0)
        out_c[..., target] = both
    return out_xy, out_c
