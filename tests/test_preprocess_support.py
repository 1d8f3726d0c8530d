"""Shared helpers of the preprocessing tests (no tests here): running the CLI in-process, and
writing one set of clips in every supported input format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from k2m_cli.main import run
from k2m_core.preprocess.formats import (
    write_coco_results, write_k2m_jsonl, write_mmpose_json, write_openpose_folder, write_pose_npz)
from k2m_core.preprocess.procedural import walking_figure

# Every way to hand the same clips to `k2m preprocess`.
FORMATS = ("npz", "coco", "coco-names", "halpe", "wholebody", "openpose", "openpose-coco18", "mmpose",
           "mmpose-demo", "jsonl")


def cli(capsys, *args) -> tuple[int, str, str]:
    """Run ``k2m ARGS`` in-process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as info:
        run([str(a) for a in args])
    captured = capsys.readouterr()
    return info.value.code, captured.out, captured.err


def walkers(count: int, seconds: float = 4.0, fps: float = 30.0, width: int = 1280, height: int = 720) -> list[dict]:
    """``count`` clean clips of the procedural walker, as writer records."""
    out = []
    for i in range(count):
        xy, conf = walking_figure(int(round(seconds * fps)), fps, width, height, seed=i, phase=0.7 * i)
        out.append({"video": f"walk{i:02d}", "xy": xy, "conf": conf, "fps": fps, "width": width, "height": height})
    return out


def write_inputs(folder: Path, records: list[dict], fmt: str) -> Path:
    """Write ``records`` (video, xy, conf, fps, width, height) in format ``fmt`` under ``folder``.
    Formats without frame size or rate get them through ``video_info.jsonl`` (returned beside)."""
    folder.mkdir(parents=True, exist_ok=True)
    for r in records:
        video, xy, conf = r["video"], r["xy"], r["conf"]
        if fmt == "npz":
            write_pose_npz(folder / f"{video}.npz", xy, conf, fps=r["fps"], width=r["width"], height=r["height"],
                           focal=r.get("focal"))
        elif fmt == "coco":
            write_coco_results(folder / f"{video}.json", xy, conf)
        elif fmt == "coco-names":
            write_coco_results(folder / f"{video}.json", xy, conf, image_ids=[f"{video}_{i:06d}.jpg" for i in range(len(xy))])
        elif fmt in ("halpe", "wholebody"):
            write_coco_results(folder / f"{video}.json", xy, conf, num_keypoints=26 if fmt == "halpe" else 133)
        elif fmt in ("openpose", "openpose-coco18"):
            write_openpose_folder(folder / video, xy, conf, layout="BODY_25" if fmt == "openpose" else "COCO-18",
                                  video_id=video)
        elif fmt in ("mmpose", "mmpose-demo"):
            write_mmpose_json(folder / f"{video}.json", xy, conf, layout="predictions" if fmt == "mmpose" else "instance_info")
        elif fmt != "jsonl":
            raise ValueError(fmt)
    if fmt == "jsonl":
        write_k2m_jsonl(folder / "poses.jsonl", records)
    return folder


def write_video_info(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps({"video": r["video"], "width": r["width"], "height": r["height"],
                                        "fps": r["fps"]}) + "\n" for r in records))
    return path


def write_captions(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps({"video": r["video"], "captions": [f"a person walks ({r['video']})"]}) + "\n"
                            for r in records))
    return path


def dataset_dict(path: Path) -> dict:
    """A dataset as {clip id: (keypoints, captions, video)} plus its split of each clip."""
    from k2m_core.data.dataset import Dataset

    ds = Dataset(path)
    split_of = {int(i): name for name, idx in ds.splits.items() for i in idx}
    return {clip_id: (ds.keypoints(i), ds.captions(i), ds.videos[i], split_of[i]) for i, clip_id in enumerate(ds.ids)}


def assert_same_dataset(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for clip_id in a:
        np.testing.assert_array_equal(a[clip_id][0], b[clip_id][0], err_msg=clip_id)
        assert a[clip_id][1:] == b[clip_id][1:], clip_id
