"""`k2m data validate`: check every invariant of docs/design.md#dataset in a dataset file.

Returns human-readable violations (empty when the file is sound). Keypoints are checked in
chunks, vectorised, so a file of any size is validated in bounded memory; the trainers run that
keypoint part (`require_sound_keypoints`) before they start.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from k2m_core.data.dataset import FORMAT_VERSION, SPLITS, Dataset
from k2m_core.errors import UserError
from k2m_core.keypoints import FRAME_SIZE_ROW, LAYOUT_NAME, NUM_JOINTS, NUM_ROWS, OUTSIDE_MARGIN, far_outside

REQUIRED = ("keypoints", "clip_offsets", "clip_ids", "clip_source", "clip_video", "caption_offsets", "captions")
ATTRS = ("format_version", "fps", "keypoint_layout", "creation_command", "k2m_version")
CHUNK_FRAMES = 1 << 19
MIN_SECONDS, MAX_SECONDS = 2.0, 10.0


class _Found(list):
    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def add(self, message: str) -> None:
        if len(self) < self.limit:
            self.append(message)

    @property
    def full(self) -> bool:
        return len(self) >= self.limit


def validate_dataset(path: Path, max_errors: int = 20) -> list[str]:
    found = _Found(max_errors)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        return [f"not an HDF5 file ({exc})"]
    with f:
        missing = [name for name in REQUIRED + tuple(f"splits/{s}" for s in SPLITS) if name not in f]
        if missing:
            return [f"missing dataset(s): {', '.join(missing)}"]
        _check_attrs(f, found)
        n = _check_index(f, found)
        if n is None:
            return list(found)
        offsets = f["clip_offsets"][:]
        _check_captions(f, n, found)
        _check_splits(f, n, found)
        _check_optional(f, n, int(offsets[-1]), found)
        _check_lengths(offsets, f.attrs.get("fps"), found)
        _check_keypoints(f["keypoints"], offsets, found)
    return list(found)


def _check_attrs(f: h5py.File, found: _Found) -> None:
    for name in ATTRS:
        if name not in f.attrs:
            found.add(f"root attribute {name!r} is missing")
    if f.attrs.get("format_version", FORMAT_VERSION) != FORMAT_VERSION:
        found.add(f"format_version is {f.attrs['format_version']}, expected {FORMAT_VERSION}")
    fps = f.attrs.get("fps", 1.0)
    if not (np.isscalar(fps) and np.isfinite(fps) and fps > 0):
        found.add(f"fps attribute must be a positive number, got {fps!r}")
    layout = f.attrs.get("keypoint_layout", LAYOUT_NAME)
    if (layout.decode() if isinstance(layout, bytes) else layout) != LAYOUT_NAME:
        found.add(f"keypoint_layout is {layout!r}, expected {LAYOUT_NAME!r}")


def _strings(dset: h5py.Dataset, found: _Found, name: str) -> list[str] | None:
    try:
        return dset.asstr()[:].tolist()
    except (UnicodeDecodeError, TypeError, ValueError) as exc:
        found.add(f"{name} must be UTF-8 strings ({exc})")
        return None


def _check_index(f: h5py.File, found: _Found) -> int | None:
    """Offsets, ids, sources, videos; returns the clip count, or None if offsets are unusable."""
    kp, offsets = f["keypoints"], f["clip_offsets"]
    if kp.ndim != 3 or kp.shape[1:] != (NUM_ROWS, 3) or kp.dtype != np.float32:
        found.add(f"keypoints must be (frames, 18, 3) float32, got {kp.shape} {kp.dtype}")
    elif kp.chunks is None or kp.chunks[1:] != (NUM_ROWS, 3):
        found.add(f"keypoints must be chunked along frames, got chunks {kp.chunks}")
    if offsets.ndim != 1 or offsets.dtype != np.int64 or len(offsets) < 2:
        found.add(f"clip_offsets must be int64 (N+1,) with N >= 1, got {offsets.shape} {offsets.dtype}")
        return None
    values = offsets[:]
    n = len(values) - 1
    if values[0] != 0 or values[-1] != kp.shape[0]:
        found.add(f"clip_offsets must start at 0 and end at the frame count {kp.shape[0]}, "
                  f"got {values[0]} … {values[-1]}")
        return None
    if (np.diff(values) <= 0).any():
        i = int(np.argmax(np.diff(values) <= 0))
        found.add(f"clip {i} has no frames (clip_offsets must increase strictly)")
        return None
    for name in ("clip_ids", "clip_source", "clip_video"):
        if f[name].shape != (n,):
            found.add(f"{name} has shape {f[name].shape}, expected ({n},)")
    ids = _strings(f["clip_ids"], found, "clip_ids")
    if ids is not None and len(ids) == n:
        if len(set(ids)) != n:
            dup = next(i for i in ids if ids.count(i) > 1)
            found.add(f"clip id {dup!r} occurs more than once")
        if not all(ids):
            found.add("a clip id is empty")
    videos = _strings(f["clip_video"], found, "clip_video")
    if videos is not None and not all(videos):
        found.add("a clip_video entry is empty")
    _strings(f["clip_source"], found, "clip_source")
    return n


def _check_captions(f: h5py.File, n: int, found: _Found) -> None:
    offsets = f["caption_offsets"][:]
    texts = _strings(f["captions"], found, "captions")
    if offsets.shape != (n + 1,) or offsets.dtype != np.int64:
        found.add(f"caption_offsets must be int64 ({n + 1},), got {offsets.shape} {offsets.dtype}")
        return
    if texts is not None and (offsets[0] != 0 or offsets[-1] != len(texts)):
        found.add(f"caption_offsets must run from 0 to the caption count {len(texts)}")
    if (np.diff(offsets) < 0).any():  # a clip may have no caption, never fewer than none
        found.add(f"caption_offsets decrease at clip {int(np.argmax(np.diff(offsets) < 0))}")
    if texts is not None:
        empty = [i for i, t in enumerate(texts) if not t.strip()]
        if empty:
            found.add(f"caption {empty[0]} is empty ({len(empty)} empty in all)")


def _check_splits(f: h5py.File, n: int, found: _Found) -> None:
    seen = np.zeros(n, dtype=np.int64)
    videos = _strings(f["clip_video"], _Found(0), "clip_video")
    owner: dict[str, str] = {}
    for name in SPLITS:
        idx = f[f"splits/{name}"][:]
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            found.add(f"splits/{name} must be a 1-D integer array")
            continue
        if ((idx < 0) | (idx >= n)).any():
            found.add(f"splits/{name} holds an index outside [0, {n})")
            continue
        np.add.at(seen, idx, 1)
        for i in idx if videos is not None and len(videos) == n else ():
            if owner.setdefault(videos[i], name) != name:
                found.add(f"video {videos[i]!r} is in splits {owner[videos[i]]} and {name}")
                break
    if (seen > 1).any():
        found.add(f"clip {int(np.argmax(seen > 1))} is in more than one split (or twice in one)")
    if (seen == 0).any():
        found.add(f"clip {int(np.argmax(seen == 0))} is in no split")


def _check_optional(f: h5py.File, n: int, frames: int, found: _Found) -> None:
    captions = f["captions"].shape[0]
    for name, dset in f.get("text_features", {}).items():
        if dset.ndim != 2 or dset.shape[0] != captions or dset.dtype != np.float16:
            found.add(f"text_features/{name} must be float16 ({captions}, D), got {dset.shape} {dset.dtype}")
    for name, dset in f.get("ground_truth/frames", {}).items():
        if dset.shape[0] != frames:
            found.add(f"ground_truth/frames/{name} has {dset.shape[0]} rows for {frames} frames")
    for name, dset in f.get("ground_truth/clips", {}).items():
        if dset.shape[0] != n:
            found.add(f"ground_truth/clips/{name} has {dset.shape[0]} rows for {n} clips")


def _check_lengths(offsets: np.ndarray, fps, found: _Found) -> None:
    if not (np.isscalar(fps) and np.isfinite(fps) and fps > 0):
        return
    lengths = np.diff(offsets)
    lo, hi = int(round(MIN_SECONDS * fps)), int(round(MAX_SECONDS * fps))
    bad = np.flatnonzero((lengths < lo) | (lengths > hi))
    if len(bad):
        found.add(f"clip {bad[0]} has {lengths[bad[0]]} frames; clips must be {MIN_SECONDS:g}–{MAX_SECONDS:g} s "
                  f"({lo}–{hi} frames at {float(fps):g} fps) ({len(bad)} such clips)")


def _check_keypoints(kp: h5py.Dataset, offsets: np.ndarray, found: _Found) -> None:
    if kp.ndim != 3 or kp.shape[1:] != (NUM_ROWS, 3):
        return
    total = int(offsets[-1])
    carry = None  # row 17 at the start of the clip that runs on from the previous chunk
    for lo in range(0, total, CHUNK_FRAMES):
        if found.full:
            return
        block = kp[lo:lo + CHUNK_FRAMES]
        row = np.arange(len(block))
        clips = np.searchsorted(offsets, lo + row, side="right") - 1
        conf, size = block[:, :NUM_JOINTS, 2], block[:, FRAME_SIZE_ROW]
        outside = far_outside(block[:, :NUM_JOINTS, :2], size[:, None, 0], size[:, None, 1]) & (conf > 0)
        checks = {"NaN or inf value": ~np.isfinite(block).all((1, 2)),
                  "confidence outside [0, 1]": ~((conf >= 0) & (conf <= 1)).all(1),
                  "row 17 is not (W > 0, H > 0, 1)": ~((size[:, 0] > 0) & (size[:, 1] > 0) & (size[:, 2] == 1)),
                  f"a seen keypoint lies more than {OUTSIDE_MARGIN:g} frame size outside the frame": outside.any(1)}
        # every frame's row 17 must equal the one at its clip's first frame
        latest_start = np.maximum.accumulate(np.where(offsets[clips] == lo + row, row, -1))
        ref = size[np.maximum(latest_start, 0)]
        if carry is not None:
            ref[latest_start < 0] = carry
        checks["frame size (row 17) changes within the clip"] = (size != ref).any(1)
        carry = ref[-1]
        for what, mask in checks.items():
            bad = np.flatnonzero(mask)
            if len(bad):
                clip = int(clips[bad[0]])
                found.add(f"clip {clip} frame {lo + int(bad[0]) - int(offsets[clip])}: {what} "
                          f"({len(bad)} such frames among frames {lo}–{lo + len(block) - 1})")


def require_sound_keypoints(dataset: Dataset) -> None:
    """The keypoint checks of `validate_dataset` on ``dataset`` (NaN or inf values, confidences
    outside [0, 1], bad frame sizes, keypoints far outside the frame): a `UserError` naming the
    first problem. Training on such values gives NaN losses or silently wrong models."""
    found = _Found(1)
    try:
        with h5py.File(dataset.path, "r") as f:
            _check_keypoints(f["keypoints"], dataset.offsets, found)
    except (OSError, KeyError) as exc:
        raise UserError(f"{dataset.path}: cannot read its keypoints ({exc})") from None
    if found:
        raise UserError(f"{dataset.path}: {found[0]}; training needs sound keypoints: list every problem with "
                        f"`k2m data validate {dataset.path}` and fix or re-create the file")
