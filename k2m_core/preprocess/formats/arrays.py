"""Keypoint arrays saved with NumPy, e.g. from ultralytics YOLO-pose or rtmlib.

``.npz`` keys (only ``keypoints`` is required):

- ``keypoints`` ``(F, K, 2|3)`` for one person or ``(F, N, K, 2|3)`` for up to N people per frame
  (ultralytics ``keypoints.data`` stacked over frames; rtmlib ``keypoints`` stacked over frames);
  unused person slots are all zero or all NaN;
- ``scores`` ``(F, K)`` / ``(F, N, K)`` confidences (rtmlib); they take precedence over a third
  channel. With neither, every keypoint present gets confidence 1;
- ``fps``; frame size as ``width`` and ``height``, ``size`` ``(W, H)`` or ``orig_shape`` ``(H, W)``
  (ultralytics' name); ``frame_ids`` ``(F,)`` frame numbers when frames were skipped;
- the camera's focal length in pixels as ``focal`` or from intrinsics ``cam_K`` ``(3, 3)``
  (mean of fx and fy; the principal point is taken to be the image centre).

A ``.npy`` file holds the ``keypoints`` array alone. K may be 17, 26, 133 (first 17 are COCO),
25 (BODY_25) or 18 (COCO-18).
"""

from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from k2m_core.atomic import atomic_path
from k2m_core.preprocess.detections import Detections, FormatError, make_detections
from k2m_core.preprocess.formats.common import as_people
from k2m_core.preprocess.formats.layouts import to_coco17


def _load(path: Path) -> dict[str, np.ndarray]:
    if path.stat().st_size == 0:
        raise FormatError("empty", "file is empty")
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return {"keypoints": loaded}
        with loaded:
            return {key: loaded[key] for key in loaded.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as exc:
        raise FormatError("unreadable", f"not a readable NumPy file ({exc})") from None


def _scalar(arrays: dict, key: str) -> float | None:
    if key not in arrays:
        return None
    value = np.asarray(arrays[key])
    if value.size != 1 or not np.issubdtype(value.dtype, np.number):
        raise FormatError("malformed", f"'{key}' must be a single number")
    return float(value.reshape(()))


def _frame_size(arrays: dict) -> np.ndarray | None:
    if "size" in arrays:
        size = np.asarray(arrays["size"], dtype=np.float64).reshape(-1)
    elif "orig_shape" in arrays:
        size = np.asarray(arrays["orig_shape"], dtype=np.float64).reshape(-1)[::-1]
    elif "width" in arrays and "height" in arrays:
        size = np.array([_scalar(arrays, "width"), _scalar(arrays, "height")])
    else:
        return None
    if size.shape != (2,):
        raise FormatError("malformed", "frame size must be two numbers")
    return size


def _focal(arrays: dict) -> float | None:
    if "cam_K" not in arrays:
        return _scalar(arrays, "focal")
    matrix = np.asarray(arrays["cam_K"])
    if matrix.shape != (3, 3) or not np.issubdtype(matrix.dtype, np.number):
        raise FormatError("malformed", f"'cam_K' must be a 3 × 3 intrinsics matrix, got {matrix.shape}")
    return float(matrix[0, 0] + matrix[1, 1]) / 2


def read_pose_array(path: Path, video: str) -> Detections:
    arrays = _load(path)
    if "keypoints" not in arrays:
        raise FormatError("malformed", f"no 'keypoints' array (found {', '.join(sorted(arrays)) or 'none'})")
    points = arrays["keypoints"]
    if not np.issubdtype(points.dtype, np.number) or points.ndim not in (3, 4) or points.shape[-1] not in (2, 3):
        raise FormatError("keypoint-count", f"'keypoints' must be (F, [N,] K, 2|3) numbers, got {points.shape} "
                          f"{points.dtype}")
    if points.ndim == 3:
        points = points[:, None]
    frames, people = points.shape[:2]
    if frames == 0:
        raise FormatError("empty", "no frames")
    points = to_coco17(points.astype(np.float32, copy=False))
    if "scores" in arrays:
        scores = np.asarray(arrays["scores"])
        if scores.ndim == 2:
            scores = scores[:, None]
        if not np.issubdtype(scores.dtype, np.number) or scores.shape[:2] != (frames, people):
            raise FormatError("keypoint-count", f"'scores' {scores.shape} does not match 'keypoints' "
                              f"{arrays['keypoints'].shape}")
        conf = to_coco17(scores.astype(np.float32, copy=False), axis=-1)
    elif points.shape[-1] == 3:
        conf = points[..., 2]
    else:  # positions only: whatever is present counts as certain
        conf = np.isfinite(points).all(-1).astype(np.float32)
    frame_ids = np.arange(frames) if "frame_ids" not in arrays else np.asarray(arrays["frame_ids"]).reshape(-1)
    if len(frame_ids) != frames or not np.issubdtype(frame_ids.dtype, np.integer):
        raise FormatError("malformed", f"'frame_ids' must be {frames} integers")
    return make_detections(video, str(path), np.repeat(frame_ids, people), points[..., :2], conf,
                           size=_frame_size(arrays), fps=_scalar(arrays, "fps"), declared=frame_ids,
                           focal=_focal(arrays))


def write_pose_npz(path: str | os.PathLike, xy, conf, *, fps: float | None = None, width: float | None = None,
                   height: float | None = None, frame_ids=None, focal: float | None = None) -> Path:
    """Write ``xy (F, [N,] 17, 2)``, ``conf (F, [N,] 17)`` as an ``.npz`` (``keypoints (F, N, 17, 2)``
    and ``scores (F, N, 17)`` float32, rtmlib-style), with optional fps, frame size, frame ids and
    focal length (pixels)."""
    xy, conf = as_people(xy, conf)
    arrays = {"keypoints": xy.astype(np.float32), "scores": conf.astype(np.float32)}
    if fps is not None:
        arrays["fps"] = np.float64(fps)
    if width is not None and height is not None:
        arrays["width"], arrays["height"] = np.float64(width), np.float64(height)
    if focal is not None:
        arrays["focal"] = np.float64(focal)
    if frame_ids is not None:
        arrays["frame_ids"] = np.asarray(frame_ids, dtype=np.int64)
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)
    return path
