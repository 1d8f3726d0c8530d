"""The dataset file (docs/design.md#dataset): one flat HDF5 file of 18-keypoint clips, captions and splits.

Layout::

    keypoints        (total_frames, 18, 3) float32, chunked along frames
    clip_offsets     (N+1,) int64       clip i = keypoints[offsets[i]:offsets[i+1]]
    clip_ids         (N,) str           unique
    clip_source      (N,) str           file, person/track, frame range
    clip_video       (N,) str           source video: splits never share one
    clip_focal       (N,) float32       focal length of the clip's camera in pixels of its own frame
                                        (principal point at the image centre); files without it were
                                        made for the paper's f = 5000 px and read as that
    caption_offsets  (N+1,) int64       captions of clip i = captions[co[i]:co[i+1]] (none is allowed:
                                        such clips train the tokenizer, text models skip them)
    captions         (C,) str
    splits/{train,val,test}  int64 clip indices
    text_features/<encoder>  (C, D) float16       optional cache
    ground_truth/frames/<name> (total_frames, ...) optional per-frame 3D truth (synthetic data)
    ground_truth/clips/<name>  (N, ...)            optional per-clip truth (e.g. betas)
    attrs: format_version, fps, keypoint_layout, creation_command, k2m_version

Written to a temporary name and renamed when complete. `Dataset` opens the file lazily per
process, so it is safe to hand to DataLoader workers.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from k2m_core import __version__
from k2m_core.atomic import cannot_write, publish, temp_path_for
from k2m_core.errors import UserError
from k2m_core.keypoints import LAYOUT_NAME, NUM_ROWS, PAPER_FOCAL as FOCAL, validate_clip

FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")
CHUNK_FRAMES = 4096
_STR = h5py.string_dtype("utf-8")


def assign_splits(videos: list[str], seed: int, fractions=(0.8, 0.1, 0.1)) -> dict[str, np.ndarray]:
    """Clip indices per split, deterministic from ``seed``, grouped by source video.

    Videos are shuffled and dealt out by cumulative clip count, so the split sizes follow
    ``fractions`` in clips; with 3+ videos every split gets at least one."""
    unique = sorted(set(videos))
    order = np.random.default_rng(seed).permutation(len(unique))
    clips_per_video: dict[str, list[int]] = {}
    for i, video in enumerate(videos):
        clips_per_video.setdefault(video, []).append(i)
    total = len(videos)
    bounds = np.cumsum(fractions)[:2] * total
    out: dict[str, list[int]] = {name: [] for name in SPLITS}
    taken = 0
    for rank, k in enumerate(order):
        clips = clips_per_video[unique[k]]
        remaining = len(unique) - rank
        if len(unique) >= 3 and remaining <= 2 and not out["test" if remaining == 1 else "val"]:
            name = "test" if remaining == 1 else "val"  # keep the small splits non-empty
        else:
            name = "train" if taken < bounds[0] else "val" if taken < bounds[1] else "test"
        out[name].extend(clips)
        taken += len(clips)
    return {name: np.array(sorted(idx), dtype=np.int64) for name, idx in out.items()}


class _Appender:
    """Rows appended to a growable float32 HDF5 dataset in large blocks: one resize and one write
    per block instead of per clip (per-clip resizes were the writer's bottleneck)."""

    BLOCK_ROWS = 65536

    def __init__(self, file: h5py.File, name: str, row_shape: tuple[int, ...], chunk_rows: int) -> None:
        self.dset = file.create_dataset(name, shape=(0,) + row_shape, maxshape=(None,) + row_shape,
                                        dtype=np.float32, chunks=(chunk_rows,) + row_shape)
        self.pending: list[np.ndarray] = []
        self.pending_rows = 0

    def append(self, rows: np.ndarray) -> None:
        self.pending.append(rows)
        self.pending_rows += len(rows)
        if self.pending_rows >= self.BLOCK_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            block = np.concatenate(self.pending)
            start = len(self.dset)
            self.dset.resize(start + len(block), axis=0)
            self.dset[start:] = block
            self.pending, self.pending_rows = [], 0


class DatasetWriter:
    """Stream clips into a new dataset file; nothing appears at ``path`` until `close` succeeds.

    Use as a context manager: an exception inside the block leaves no file behind."""

    def __init__(self, path: str | os.PathLike, *, fps: float = 30.0, creation_command: str = "",
                 split_seed: int = 0, split_fractions=(0.8, 0.1, 0.1), attrs: dict | None = None) -> None:
        self.path = Path(path)
        self.attrs = dict(attrs or {})  # extra file attributes (e.g. `k2m data front`'s view)
        self.fps = fps
        self.creation_command = creation_command
        self.split_seed = split_seed
        self.split_fractions = split_fractions
        self._tmp = temp_path_for(self.path)
        try:
            self._tmp.touch()  # HDF5's own error for an unwritable place names neither path nor cause plainly
        except OSError as exc:
            raise cannot_write(self.path, exc) from None
        self._file = h5py.File(self._tmp, "w")
        self._keypoints = _Appender(self._file, "keypoints", (NUM_ROWS, 3), CHUNK_FRAMES)
        self._offsets = [0]
        self._ids: list[str] = []
        self._seen: set[str] = set()
        self._sources: list[str] = []
        self._videos: list[str] = []
        self._focals: list[float] = []
        self._captions: list[str] = []
        self._caption_offsets = [0]
        self._gt_frames: dict[str, _Appender] = {}
        self._gt_clips: dict[str, list[np.ndarray]] = {}

    def add_clip(self, clip_id: str, keypoints: np.ndarray, captions: list[str], *, source: str = "",
                 video: str | None = None, gt_frames: dict[str, np.ndarray] | None = None,
                 gt_clip: dict[str, np.ndarray] | None = None, focal: float = FOCAL) -> None:
        """Append one clip with its ``captions`` (possibly none). ``video`` groups clips for the
        split (defaults to the clip id);
        ``focal`` is its camera's focal length in pixels of the clip's own frame."""
        if clip_id in self._seen:
            raise UserError(f"{self.path}: duplicate clip id {clip_id!r}")
        if not (np.isfinite(focal) and focal > 0):
            raise UserError(f"clip {clip_id}: focal length {focal!r} px must be a positive number")
        validate_clip(keypoints, f"clip {clip_id}")
        captions = [c.strip() for c in captions]
        if not all(captions):
            raise UserError(f"clip {clip_id}: a caption is empty; leave it out (a clip may have none)")
        start, count = self._offsets[-1], len(keypoints)
        gt_frames = {name: np.asarray(v, dtype=np.float32) for name, v in (gt_frames or {}).items()}
        if start == 0:
            for name, values in gt_frames.items():
                self._gt_frames[name] = _Appender(self._file, f"ground_truth/frames/{name}", values.shape[1:], 1024)
        if set(gt_frames) != set(self._gt_frames):
            raise ValueError(f"clip {clip_id}: every clip needs the same ground truth ({sorted(self._gt_frames)})")
        for name, values in gt_frames.items():
            if len(values) != count:
                raise ValueError(f"ground truth {name!r} has {len(values)} frames, clip has {count}")
            self._gt_frames[name].append(values)
        self._keypoints.append(keypoints)
        for name, value in (gt_clip or {}).items():
            self._gt_clips.setdefault(name, []).append(np.asarray(value, dtype=np.float32))
        self._offsets.append(start + count)
        self._ids.append(clip_id)
        self._seen.add(clip_id)
        self._sources.append(source)
        self._videos.append(video if video is not None else clip_id)
        self._focals.append(float(focal))
        self._captions.extend(captions)
        self._caption_offsets.append(len(self._captions))

    def __len__(self) -> int:
        return len(self._ids)

    def close(self) -> Path:
        """Write the index arrays and splits, then publish the file atomically."""
        f = self._file
        n = len(self._ids)
        if n == 0:
            self.abort()
            raise UserError(f"{self.path}: no clips to write (every input was rejected); nothing written")
        for appender in (self._keypoints, *self._gt_frames.values()):
            appender.flush()
        for name, values in self._gt_clips.items():
            if len(values) != n:
                raise ValueError(f"ground truth {name!r} must be given for every clip")
            f.create_dataset(f"ground_truth/clips/{name}", data=np.stack(values))
        f.create_dataset("clip_offsets", data=np.array(self._offsets, dtype=np.int64))
        f.create_dataset("clip_ids", data=self._ids, dtype=_STR)
        f.create_dataset("clip_source", data=self._sources, dtype=_STR)
        f.create_dataset("clip_video", data=self._videos, dtype=_STR)
        f.create_dataset("clip_focal", data=np.array(self._focals, dtype=np.float32))
        f.create_dataset("captions", data=self._captions, dtype=_STR)
        f.create_dataset("caption_offsets", data=np.array(self._caption_offsets, dtype=np.int64))
        for name, idx in assign_splits(self._videos, self.split_seed, self.split_fractions).items():
            f.create_dataset(f"splits/{name}", data=idx)
        f.attrs.update(self.attrs)
        f.attrs.update(format_version=FORMAT_VERSION, fps=self.fps, keypoint_layout=LAYOUT_NAME,
                       creation_command=self.creation_command, k2m_version=__version__,
                       split_seed=self.split_seed)
        f.close()
        publish(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drop everything written so far."""
        if self._file.id.valid:
            self._file.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "DatasetWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _partitions(offsets: np.ndarray, parts: int, total: int, empty: bool = False) -> bool:
    """Whether ``offsets`` cut ``total`` rows into ``parts`` runs (non-empty ones unless ``empty``)."""
    return (offsets.shape == (parts + 1,) and offsets[0] == 0 and offsets[-1] == total
            and bool((np.diff(offsets) >= (0 if empty else 1)).all()))


def _index_problem(ds: "Dataset", keypoints_shape: tuple) -> str | None:
    """What makes the index arrays of an opened file unusable (the cheap checks of `k2m data
    validate`), or None."""
    n = len(ds.ids)
    fps = ds.attrs.get("fps")
    if fps is None:
        return "the fps attribute is missing"
    if not (isinstance(fps, (int, float, np.integer, np.floating)) and np.isfinite(fps) and fps > 0):
        return f"the fps attribute is {fps!r}, not a positive number"
    if len(keypoints_shape) != 3 or tuple(keypoints_shape[1:]) != (NUM_ROWS, 3):
        return f"keypoints have shape {keypoints_shape}, not (frames, {NUM_ROWS}, 3)"
    if n == 0:
        return "it holds no clips"
    if not _partitions(ds.offsets, n, keypoints_shape[0]):
        return f"clip_offsets do not split the {keypoints_shape[0]} frames into the {n} clips"
    if len(ds.sources) != n or len(ds.videos) != n or len(ds.focals) != n:
        return f"clip_source, clip_video or clip_focal do not have one entry per clip ({n})"
    if not _partitions(ds.caption_offsets, n, len(ds.all_captions), empty=True):  # a clip may have none
        return "caption_offsets do not give every clip its captions"
    for name, idx in ds.splits.items():
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer) or ((idx < 0) | (idx >= n)).any():
            return f"splits/{name} holds indices outside [0, {n})"
    return None


class Dataset:
    """Read-only view of a dataset file. Small index arrays are read at open; keypoints are read
    on demand. The HDF5 handle is reopened in each process (h5py handles must not cross a fork)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise UserError(f"{self.path}: no such dataset file; create one with `k2m preprocess` or `k2m data synth`")
        try:
            with h5py.File(self.path, "r") as f:
                self.attrs = dict(f.attrs)
                self.offsets = f["clip_offsets"][:]
                self.ids = f["clip_ids"].asstr()[:].tolist()
                self.sources = f["clip_source"].asstr()[:].tolist()
                self.videos = f["clip_video"].asstr()[:].tolist()
                self.focals = (f["clip_focal"][:].astype(np.float32) if "clip_focal" in f
                               else np.full(len(self.ids), FOCAL, dtype=np.float32))
                self.caption_offsets = f["caption_offsets"][:]
                self.all_captions = f["captions"].asstr()[:].tolist()
                self.splits = {name: f[f"splits/{name}"][:] for name in SPLITS}
                self.ground_truth_frames = sorted(f.get("ground_truth/frames", {}).keys())
                self.ground_truth_clips = sorted(f.get("ground_truth/clips", {}).keys())
                self.text_encoders = sorted(f.get("text_features", {}).keys())
                frames = f["keypoints"].shape
        except (OSError, KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
            raise UserError(f"{self.path}: not a k2m dataset file ({exc}); re-create it with `k2m preprocess`") from None
        if self.attrs.get("format_version") != FORMAT_VERSION:
            raise UserError(f"{self.path}: dataset format version {self.attrs.get('format_version')} "
                            f"is not {FORMAT_VERSION}; re-create it with this k2m")
        problem = _index_problem(self, frames)
        if problem:
            raise UserError(f"{self.path}: damaged dataset file ({problem}); check it with `k2m data validate "
                            f"{self.path}` and re-create it with `k2m preprocess` or `k2m data merge`")
        self.fps = float(self.attrs["fps"])
        self._index = {clip_id: i for i, clip_id in enumerate(self.ids)}
        self._file: h5py.File | None = None
        self._pid = -1

    def _h5(self) -> h5py.File:
        if self._file is None or self._pid != os.getpid():
            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._file

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def total_frames(self) -> int:
        return int(self.offsets[-1])

    def index_of(self, clip_id: str) -> int:
        if clip_id not in self._index:
            raise UserError(f"{self.path}: no clip with id {clip_id!r}")
        return self._index[clip_id]

    def keypoints(self, i: int, start: int = 0, length: int | None = None) -> np.ndarray:
        """Clip ``i`` (or a window of it) as ``(F, 18, 3)`` float32."""
        lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
        stop = hi if length is None else min(hi, lo + start + length)
        return self._h5()["keypoints"][lo + start:stop]

    def captions(self, i: int) -> list[str]:
        """Clip ``i``'s captions (possibly none)."""
        return self.all_captions[self.caption_offsets[i]:self.caption_offsets[i + 1]]

    def captioned(self, clips: np.ndarray) -> np.ndarray:
        """The clips of ``clips`` (indices) that have at least one caption."""
        clips = np.asarray(clips, dtype=np.int64)
        return clips[np.diff(self.caption_offsets)[clips] > 0]

    def read_array(self, name: str) -> np.ndarray:
        """The whole array stored at ``name``: ``keypoints`` (every clip's frames at once),
        ``text_features/<key>``, ``motion_tokens/<fingerprint>/codes``, …"""
        return self._h5()[name][:]

    def contains(self, name: str) -> bool:
        """Whether the file stores an object at ``name`` (e.g. an optional part of a cache)."""
        return name in self._h5()

    def entries(self, group: str) -> dict[str, dict]:
        """Name → attributes of each entry of the optional group ``group`` (e.g. the caches
        ``text_features``, ``motion_tokens``); empty when the file has no such group."""
        found = self._h5().get(group)
        return {name: dict(found[name].attrs) for name in found} if found is not None else {}

    def ground_truth(self, name: str, i: int) -> np.ndarray:
        """Per-frame (``(F, ...)``) or per-clip truth of clip ``i``."""
        f = self._h5()
        if name in self.ground_truth_frames:
            return f[f"ground_truth/frames/{name}"][self.offsets[i]:self.offsets[i + 1]]
        if name in self.ground_truth_clips:
            return f[f"ground_truth/clips/{name}"][i]
        raise UserError(f"{self.path}: no ground truth named {name!r} (has "
                        f"{', '.join(self.ground_truth_frames + self.ground_truth_clips) or 'none'})")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_file"], state["_pid"] = None, -1  # never pickle an open handle into a worker
        return state
