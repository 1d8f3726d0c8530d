"""`k2m data info`: what a dataset file holds — clips, hours, captions and vocabulary, and the mean
pixel velocity of every keypoint (paper Fig. 6), read in chunks so any size fits in memory."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import h5py
import numpy as np

from k2m_core.data.dataset import SPLITS, Dataset
from k2m_core.errors import UserError
from k2m_core.keypoints import COCO17_NAMES, FRAME_SIZE_ROW, NUM_JOINTS

CHUNK_FRAMES = 1 << 20
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def scan_keypoints(path: Path, offsets: np.ndarray, fps: float, min_conf: float) -> tuple[np.ndarray, np.ndarray]:
    """One chunked pass over the keypoints: the mean speed in pixels per second of each COCO-17
    keypoint over consecutive frames of the same clip where both confidences reach ``min_conf``
    (``(17,)``, NaN where never seen), and each clip's frame size ``(N, 2)``."""
    total = int(offsets[-1])
    starts = offsets[:-1]
    is_start = np.zeros(total + 1, dtype=bool)
    is_start[offsets] = True
    sums = np.zeros(NUM_JOINTS)
    counts = np.zeros(NUM_JOINTS)
    sizes = np.zeros((len(starts), 2))
    with h5py.File(path, "r") as f:
        keypoints = f["keypoints"]
        for lo in range(0, total, CHUNK_FRAMES):
            hi = min(lo + CHUNK_FRAMES + 1, total)  # one frame of overlap for the pair across chunks
            block = keypoints[lo:hi]
            here = (starts >= lo) & (starts < min(lo + CHUNK_FRAMES, total))
            sizes[here] = block[starts[here] - lo, FRAME_SIZE_ROW, :2]
            ok = (block[1:, :NUM_JOINTS, 2] >= min_conf) & (block[:-1, :NUM_JOINTS, 2] >= min_conf)
            ok &= ~is_start[lo + 1:hi, None]
            step = np.hypot(*(block[1:, :NUM_JOINTS, :2] - block[:-1, :NUM_JOINTS, :2]).transpose(2, 0, 1))
            sums += np.where(ok, step, 0).sum(0)
            counts += ok.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts * fps, sizes


def dataset_info(path: Path, min_conf: float = 0.5) -> dict:
    ds = Dataset(path)
    seconds = ds.lengths / ds.fps
    per_clip = Counter(np.diff(ds.caption_offsets).tolist())
    words = [_WORD.findall(c.lower()) for c in ds.all_captions]
    vocabulary = Counter(w for ws in words for w in ws)
    lengths = np.array([len(ws) for ws in words]) if words else np.zeros(1)
    try:
        velocity, sizes = scan_keypoints(path, ds.offsets, ds.fps, min_conf)
    except (OSError, KeyError) as exc:  # h5py reports damaged chunks as OSError
        raise UserError(f"{path}: cannot read its keypoints ({exc}); the file is damaged, re-create it") from None
    size_counts = Counter(f"{int(w)}x{int(h)}" for w, h in sizes)
    return {
        "file": str(path),
        "clips": len(ds), "videos": len(set(ds.videos)), "frames": ds.total_frames,
        "hours": ds.total_frames / ds.fps / 3600, "fps": ds.fps,
        "clip_seconds": {"min": float(seconds.min()), "mean": float(seconds.mean()),
                         "median": float(np.median(seconds)), "max": float(seconds.max())} if len(ds) else {},
        "splits": {name: {"clips": int(len(idx)), "videos": len({ds.videos[i] for i in idx})}
                   for name, idx in ds.splits.items() if name in SPLITS},
        "captions": {"total": len(ds.all_captions),
                     "per_clip": {str(k): v for k, v in sorted(per_clip.items())},
                     "words_mean": float(lengths.mean()), "words_max": int(lengths.max()),
                     "vocabulary": len(vocabulary),
                     "top_words": [w for w, _ in vocabulary.most_common(10)]},
        "frame_sizes": dict(size_counts.most_common(5)),
        "keypoint_velocity_px_s": {name: (None if np.isnan(v) else round(float(v), 2))
                                   for name, v in zip(COCO17_NAMES, velocity)},
        "velocity_min_conf": min_conf,
        "text_features": ds.text_encoders, "ground_truth": ds.ground_truth_frames + ds.ground_truth_clips,
        "creation_command": str(ds.attrs.get("creation_command", "")),
        "k2m_version": str(ds.attrs.get("k2m_version", "")),
    }
