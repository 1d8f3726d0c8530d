"""The motions `k2m eval critic` and `k2m eval physics` score: files (AMASS-style ``.npz`` from
`k2m gen`, AMASS or any SMPL tool; SMPL ``.bvh``) given one by one or as folders, or the 3D ground
truth stored in a dataset file (synthetic corpora). Everything arrives as a z-up `WorldMotion`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from k2m_core.errors import UserError
from k2m_core.export.motion_file import MOTION_SUFFIXES, WorldMotion
from k2m_core.inputs import find_files


def motion_files(inputs: list[str | os.PathLike]) -> list[Path]:
    """Files named in ``inputs``; a folder contributes every ``.npz``/``.bvh`` below it (sorted)."""
    found = [path for path, _ in find_files(inputs, MOTION_SUFFIXES, "motion files")]
    if not found:
        raise UserError("no motions given; pass .npz/.bvh files or folders of them (or --data DATASET)")
    return found


def load_motions(paths: list[Path], body) -> Iterator[tuple[str, WorldMotion]]:
    """(name, motion) per file; ``body`` (float64) is needed for BVH files."""
    from k2m_core.export.motion_file import load_motion

    for path in paths:
        yield str(path), load_motion(path, body)


def dataset_motions(dataset_path: str | os.PathLike, split: str, body) -> Iterator[tuple[str, WorldMotion]]:
    """The 3D ground truth of the clips of ``split`` (camera frame in the file) as z-up world motions,
    placed as `k2m gen` places its output (pelvis over the origin at frame 0, lowest foot at 0)."""
    from k2m_core.data.dataset import SPLITS, Dataset
    from k2m_core.export.world import camera_to_world

    if split not in SPLITS:
        raise UserError(f"--split {split!r}: choose train, val or test")
    dataset = Dataset(dataset_path)
    missing = [name for name in ("poses", "transl") if name not in dataset.ground_truth_frames]
    if missing:
        raise UserError(f"{dataset.path}: has no 3D ground truth ({', '.join(missing)} missing); only synthetic or "
                        "mocap-derived datasets carry it — score motion files instead")
    import numpy as np

    try:
        for clip in dataset.splits[split].tolist():
            betas = (dataset.ground_truth("betas", clip) if "betas" in dataset.ground_truth_clips
                     else np.zeros(10)).astype(np.float64)
            poses, trans, joints = camera_to_world(dataset.ground_truth("poses", clip), dataset.ground_truth("transl", clip),
                                                   betas, body, up="z")
            yield (f"{dataset.path.name}:{dataset.ids[clip]}",
                   WorldMotion(poses, trans, betas, dataset.fps, (dataset.captions(clip) or [""])[0], joints))
    finally:
        dataset.close()
