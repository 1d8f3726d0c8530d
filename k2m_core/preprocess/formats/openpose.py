"""OpenPose `--write_json` folders: one ``<video>_<frame:012d>_keypoints.json`` per frame,
``{"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": [x, y, c]×25 or ×18}]}``.

BODY_25 and COCO-18 are told apart by the keypoint count. A missing keypoint is (0, 0, 0). The
frame number is the last number in the file name (``--frame-regex`` to say otherwise); a missing
file is a gap. OpenPose writes no frame size.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from k2m_core.atomic import temp_path_for
from k2m_core.preprocess.detections import Detections, FormatError, make_detections
from k2m_core.preprocess.formats.common import as_people, frame_numbers, keypoint_rows, load_json, present
from k2m_core.preprocess.formats.layouts import from_coco17, to_coco17

SUFFIX = "_keypoints.json"


def frame_files(folder: Path) -> list[str]:
    """Names of the frame files, sorted (plain strings: this runs once per frame)."""
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if e.name.endswith(SUFFIX) and e.is_file())


def is_openpose_folder(folder: Path) -> bool:
    if not folder.is_dir():
        return False
    with os.scandir(folder) as entries:
        return any(e.name.endswith(SUFFIX) for e in entries)


def _frame_numbers(names: list[str], frame_regex: str | None) -> np.ndarray:
    """OpenPose's own ``_<12 digits>_keypoints.json`` names are read directly; others by regex."""
    digits = [name[-len(SUFFIX) - 12:-len(SUFFIX)] for name in names]
    if frame_regex is None and all(len(d) == 12 and d.isdigit() for d in digits):
        return np.array([int(d) for d in digits], dtype=np.int64)
    return frame_numbers(names, frame_regex, "frame file name")


def read_openpose_folder(folder: Path, video: str, frame_regex: str | None = None) -> Detections:
    names = frame_files(folder)
    if not names:
        raise FormatError("empty", f"no *{SUFFIX} files in the folder")
    frames = _frame_numbers(names, frame_regex)
    owners, values = [], []
    for number, name in zip(frames.tolist(), names):
        data = load_json(folder / name)
        people = data.get("people") if isinstance(data, dict) else None
        if not isinstance(people, list):
            raise FormatError("malformed", f"{name}: no 'people' list")
        for person in people:
            points = person.get("pose_keypoints_2d") if isinstance(person, dict) else None
            if not isinstance(points, list):
                raise FormatError("malformed", f"{name}: a person without 'pose_keypoints_2d'")
            if points:
                owners.append(number)
                values.append(points)
    if not values:
        raise FormatError("empty", "no person in any frame")
    rows = to_coco17(keypoint_rows(values, 3, "pose_keypoints_2d"))
    return make_detections(video, str(folder), owners, rows[..., :2], rows[..., 2], declared=frames)


def write_openpose_folder(folder: str | os.PathLike, xy, conf, layout: str = "BODY_25", video_id: str = "video",
                          start_frame: int = 0) -> Path:
    """Write ``xy (F, [N,] 17, 2)``, ``conf (F, [N,] 17)`` as an OpenPose JSON folder (one file per
    frame, empty ``people`` where nobody is present). The folder is assembled under a temporary
    name and renamed into place (replacing an existing one), so it appears complete or not at all."""
    xy, conf = as_people(xy, conf)
    op_xy, op_c = from_coco17(xy, conf, layout)
    flat = np.concatenate([op_xy, op_c[..., None]], axis=-1)
    folder = Path(folder)
    tmp = temp_path_for(folder)
    try:
        tmp.mkdir()
        for f in range(len(xy)):
            people = [{"person_id": [-1], "pose_keypoints_2d": flat[f, n].ravel().tolist(),
                       "face_keypoints_2d": [], "hand_left_keypoints_2d": [], "hand_right_keypoints_2d": []}
                      for n in range(xy.shape[1]) if present(conf[f, n])]
            name = f"{video_id}_{start_frame + f:012d}{SUFFIX}"
            (tmp / name).write_text(json.dumps({"version": 1.3, "people": people}), encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder
