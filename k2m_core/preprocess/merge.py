"""`k2m data merge`: combine dataset files (e.g. the shards of a `k2m preprocess --shard i/n` run)
into one. Clips are streamed in blocks; splits are drawn afresh by source video with the seed, so
the merged file obeys the same no-video-in-two-splits rule. The kinds of ground truth every input
has are carried (e.g. the joints of a synthetic corpus and of projected mocap); cached text
features are not (recompute them for the merged captions).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from k2m_core.data.dataset import Dataset, DatasetWriter
from k2m_core.errors import UserError

BLOCK_FRAMES = 1 << 18


def merge_datasets(paths: list[Path], out: Path, *, seed: int | None = None, force: bool = False,
                   command: str = "") -> dict:
    """Write ``out`` holding every clip of ``paths``; returns counts and notes."""
    if len(paths) < 1:
        raise UserError("give at least one dataset file to merge")
    if out.exists() and not force:
        raise UserError(f"{out} already exists; pass --force to overwrite it")
    if any(p.resolve() == out.resolve() for p in paths if out.exists()):
        raise UserError(f"--out {out} is also an input; write the merge to a new file")
    resolved = [p.resolve() for p in paths]
    twice = next((p for p, r in zip(paths, resolved) if resolved.count(r) > 1), None)
    if twice is not None:
        raise UserError(f"{twice} is given twice; list each dataset file once")
    datasets = [Dataset(p) for p in paths]
    first = datasets[0]
    for ds in datasets[1:]:
        if ds.fps != first.fps or ds.attrs.get("keypoint_layout") != first.attrs.get("keypoint_layout"):
            raise UserError(f"{ds.path}: fps/layout ({ds.fps}, {ds.attrs.get('keypoint_layout')}) differ from "
                            f"{first.path} ({first.fps}, {first.attrs.get('keypoint_layout')}); cannot merge")
    seen: dict[str, Path] = {}
    for ds in datasets:
        for clip_id in ds.ids:
            if seen.setdefault(clip_id, ds.path) != ds.path:
                raise UserError(f"clip id {clip_id!r} is in both {seen[clip_id]} and {ds.path}; were the same "
                                "inputs preprocessed twice?")
    gt_frames = set.intersection(*(set(ds.ground_truth_frames) for ds in datasets))
    gt_clips = set.intersection(*(set(ds.ground_truth_clips) for ds in datasets))
    notes = []
    dropped = sorted(set().union(*(ds.ground_truth_frames + ds.ground_truth_clips for ds in datasets))
                     - gt_frames - gt_clips)
    if dropped:
        notes.append(f"ground truth {', '.join(dropped)} dropped: not every input carries it")
    if any(ds.text_encoders for ds in datasets):
        notes.append("cached text features dropped: recompute them for the merged file")
    seed = int(first.attrs.get("split_seed", 0)) if seed is None else seed
    with DatasetWriter(out, fps=first.fps, creation_command=command, split_seed=seed) as writer:
        for ds in datasets:
            _copy(ds, writer, sorted(gt_frames), sorted(gt_clips))
    return {"clips": sum(len(ds) for ds in datasets), "frames": sum(ds.total_frames for ds in datasets),
            "inputs": len(paths), "seed": seed, "notes": notes}


def _copy(ds: Dataset, writer: DatasetWriter, gt_frames: list[str], gt_clips: list[str]) -> None:
    with h5py.File(ds.path, "r") as f:
        clip_truth = {name: f[f"ground_truth/clips/{name}"][:] for name in gt_clips}
        i = 0
        while i < len(ds):
            j = int(np.searchsorted(ds.offsets, ds.offsets[i] + BLOCK_FRAMES, side="right")) - 1
            j = max(j, i + 1)
            lo, hi = int(ds.offsets[i]), int(ds.offsets[j])
            block = f["keypoints"][lo:hi]
            truth = {name: f[f"ground_truth/frames/{name}"][lo:hi] for name in gt_frames}
            for k in range(i, j):
                a, b = int(ds.offsets[k]) - lo, int(ds.offsets[k + 1]) - lo
                writer.add_clip(ds.ids[k], block[a:b], ds.captions(k), source=ds.sources[k], video=ds.videos[k],
                                gt_frames={n: v[a:b] for n, v in truth.items()} or None,
                                gt_clip={n: v[k] for n, v in clip_truth.items()} or None,
                                focal=float(ds.focals[k]))
            i = j
