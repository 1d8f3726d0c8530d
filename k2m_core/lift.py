"""2D keypoints → SMPL motion through a trained tokenizer: the engine behind `k2m lift`.

The tokenizer used as monocular motion capture: each video's main person (the largest detection of
every frame, as `k2m preprocess` picks it) is encoded, quantised and decoded, which is also the way
to see what 3D a tokenizer learned. Every input frame gets one output frame:

- frames where nobody was detected are filled from their neighbours (each keypoint interpolated
  linearly between the nearest detected frames, held at the ends) and listed as filled;
- the tokenizer works at the dataset rate (30 fps): other rates are resampled to it and the
  motion is resampled back to the input's frame times;
- long inputs are decoded in overlapping windows (`WINDOW` frames, `OVERLAP` shared), cross-faded
  linearly over the overlap — rotations as 6D (re-orthonormalised), so no seam shows.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from k2m_core.errors import UserError
from k2m_core.keypoints import FRAME_SIZE_ROW, NUM_JOINTS, NUM_ROWS, camera_focal
from k2m_core.rotations import matrix_to_axis_angle, matrix_to_rot6d, rot6d_to_matrix

MODEL_FPS = 30.0
WINDOW = 128  # frames per decoded window: about 4 s, inside the 2–10 s clips tokenizers train on
OVERLAP = 32


@dataclass
class Track:
    """One person over every frame of one input: ``keypoints (F, 18, 3)`` as dataset clips hold
    them, ``filled (F,)`` frames with nobody detected (interpolated), the camera's focal length and
    the frame rate."""
    name: str
    keypoints: np.ndarray
    filled: np.ndarray
    fps: float
    focal: float
    source: str = ""
    first_frame: int = 0


@dataclass
class LiftedMotion:
    """Camera-frame SMPL motion of a `Track`: ``poses (F, 72)`` axis-angle, ``transl (F, 3)`` and
    ``joints (F, 24, 3)`` metres, ``betas (10,)``, at ``fps``."""
    poses: np.ndarray
    transl: np.ndarray
    betas: np.ndarray
    joints: np.ndarray
    fps: float
    filled: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))


def fill_gaps(xy: np.ndarray, conf: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frames where ``present (F,)`` is False get each keypoint interpolated over time between the
    nearest frames where that keypoint was seen (held beyond the first and last); they get the mean
    confidence of those neighbours. ``xy (F, 17, 2)``, ``conf (F, 17)``; returns new arrays."""
    xy, conf = xy.copy(), conf.copy()
    frames = np.arange(len(xy))
    for joint in range(xy.shape[1]):
        seen = present & (conf[:, joint] > 0)
        if not seen.any():
            continue
        gap = ~present
        for axis in range(2):
            xy[gap, joint, axis] = np.interp(frames[gap], frames[seen], xy[seen, joint, axis])
        conf[gap, joint] = np.interp(frames[gap], frames[seen], conf[seen, joint])
    return xy, conf


def track_from_runs(name: str, runs, first: int, last: int, size, fps: float, focal: float,
                    source: str = "") -> Track:
    """A `Track` over source frames ``first … last`` from `k2m_core.preprocess.tracking` runs
    (disjoint in frames), gaps filled. ``size`` (W, H) is used where a run does not carry one."""
    count = last - first + 1
    xy = np.zeros((count, NUM_JOINTS, 2), dtype=np.float32)
    conf = np.zeros((count, NUM_JOINTS), dtype=np.float32)
    present = np.zeros(count, dtype=bool)
    for run in runs:
        rows = run.frames - first
        xy[rows], conf[rows], present[rows] = run.xy, run.conf, True
        if run.size is not None:
            size = run.size
    xy, conf = fill_gaps(xy, conf, present)
    keypoints = np.zeros((count, NUM_ROWS, 3), dtype=np.float32)
    keypoints[:, :NUM_JOINTS, :2], keypoints[:, :NUM_JOINTS, 2] = xy, conf
    keypoints[:, FRAME_SIZE_ROW] = (float(size[0]), float(size[1]), 1.0)
    return Track(name, keypoints, ~present, fps, focal, source, first)


def _windows(frames: int, window: int, overlap: int) -> list[tuple[int, int]]:
    """``(start, stop)`` windows covering ``frames`` with ``overlap`` frames shared by neighbours."""
    if frames <= window:
        return [(0, frames)]
    step = window - overlap
    starts = list(range(0, frames - window, step)) + [frames - window]
    return [(s, s + window) for s in starts]


def _fade(start: int, stop: int, windows: list[tuple[int, int]]) -> np.ndarray:
    """Weights of window ``start:stop`` over its frames: 1, ramping linearly to 0 where it overlaps
    the previous or next window."""
    weight = np.ones(stop - start)
    for other_start, other_stop in windows:
        if other_start < start < other_stop:  # the previous window overlaps our head
            shared = other_stop - start
            weight[:shared] = np.minimum(weight[:shared], (np.arange(shared) + 1) / (shared + 1))
        if start < other_start < stop:  # the next window overlaps our tail
            shared = stop - other_start
            weight[-shared:] = np.minimum(weight[-shared:], (shared - np.arange(shared)) / (shared + 1))
    return weight


@torch.no_grad()
def lift_keypoints(tokenizer, keypoints: np.ndarray, focal: float, *, window: int = WINDOW,
                   overlap: int = OVERLAP, device: torch.device | str = "cpu") -> LiftedMotion:
    """``keypoints (F, 18, 3)`` at 30 fps (a dataset clip's rows) → `LiftedMotion` in the camera
    frame, one frame per input frame. ``focal``: the camera's focal length in pixels."""
    tokenizer = tokenizer.to(device).eval()
    if tokenizer.config.adapter == "dstformer":
        window = min(window, tokenizer.config.adapter_maxlen)
    frames = len(keypoints)
    overlap = min(overlap, window // 2)
    spans = _windows(frames, window, overlap)
    rot6d = np.zeros((frames, 24, 6))
    transl, joints = np.zeros((frames, 3)), np.zeros((frames, 24, 3))
    weights, betas = np.zeros(frames), np.zeros(10)
    for start, stop in spans:
        clip = torch.from_numpy(np.ascontiguousarray(keypoints[start:stop], dtype=np.float32))[None].to(device)
        valid = torch.ones(1, stop - start, dtype=torch.bool, device=device)
        smpl = tokenizer(clip, valid, torch.tensor([focal], dtype=torch.float32, device=device)).smpl
        weight = _fade(start, stop, spans)
        rot6d[start:stop] += weight[:, None, None] * matrix_to_rot6d(smpl.rotmats[0].double()).cpu().numpy()
        transl[start:stop] += weight[:, None] * smpl.transl[0].double().cpu().numpy()
        joints[start:stop] += weight[:, None, None] * smpl.joints[0].double().cpu().numpy()
        betas += weight.sum() * smpl.betas[0].double().cpu().numpy()
        weights[start:stop] += weight
    rotmats = rot6d_to_matrix(torch.from_numpy(rot6d / weights[:, None, None]))
    poses = matrix_to_axis_angle(rotmats).reshape(frames, 72).numpy()
    return LiftedMotion(poses, transl / weights[:, None], betas / weights.sum(), joints / weights[:, None, None],
                        MODEL_FPS)


def lift_track(tokenizer, track: Track, *, device: torch.device | str = "cpu") -> LiftedMotion:
    """A `Track` at any frame rate → `LiftedMotion` at the track's rate, one frame per input frame
    (the tokenizer runs at 30 fps: other rates go there and back, rotations by slerp)."""
    from k2m_core.export.resample import resample_motion
    from k2m_core.preprocess.segment import resample, source_positions

    rows = track.keypoints
    same_rate = math.isclose(track.fps, MODEL_FPS, rel_tol=1e-3)
    if not same_rate:
        pos = source_positions(len(rows), track.fps, MODEL_FPS)
        xy, conf = resample(rows[:, :NUM_JOINTS, :2], rows[:, :NUM_JOINTS, 2], pos)
        rows = np.concatenate([np.concatenate([xy, conf[..., None]], -1),
                               np.broadcast_to(rows[:1, FRAME_SIZE_ROW:], (len(pos), 1, 3))], axis=1)
    motion = lift_keypoints(tokenizer, rows, track.focal, device=device)
    if not same_rate:
        poses, transl = resample_motion(motion.poses, motion.transl, MODEL_FPS, track.fps)
        keep = np.minimum(np.arange(len(track.keypoints)), len(poses) - 1)  # exactly one per input frame
        joints = _joints(tokenizer, poses[keep], transl[keep], motion.betas)
        motion = LiftedMotion(poses[keep], transl[keep], motion.betas, joints, track.fps)
    motion.filled = track.filled
    return motion


def _joints(tokenizer, poses: np.ndarray, transl: np.ndarray, betas: np.ndarray) -> np.ndarray:
    """Camera-frame joints ``(F, 24, 3)`` of SMPL parameters, posed by a float64 CPU copy of the
    tokenizer's body (the tokenizer's own stays where it is)."""
    body = copy.deepcopy(tokenizer.body).to("cpu", torch.float64)
    with torch.no_grad():
        out = body.forward_axis_angle(torch.from_numpy(poses), torch.from_numpy(betas)[None].expand(len(poses), 10),
                                      torch.from_numpy(transl))
    return out.joints.numpy()


# ---------------------------------------------------------------- inputs and outputs of `k2m lift`

def resolve_tokenizer(name: str) -> Path:
    """A tokenizer run directory from ``--tokenizer``: a run directory, a model folder holding
    ``vq/``, or the name of a bundled model."""
    from k2m_core.generate import BUNDLED, bundled_models

    path = Path(name)
    for candidate in (path, path / "vq", BUNDLED / name / "vq"):
        if (candidate / "config.toml").is_file():
            return candidate
    raise UserError(f"--tokenizer {name}: not a tokenizer run directory (config.toml), a model folder with vq/, "
                    f"or a bundled model ({', '.join(bundled_models()) or 'none installed'})")


def dataset_tracks(path: Path, clip_ids: list[str]) -> list[Track]:
    """Clips of a dataset file as tracks (every frame present; the dataset's rate and focal length)."""
    from k2m_core.data.dataset import Dataset

    dataset = Dataset(path)
    tracks = []
    for clip_id in clip_ids:
        i = dataset.index_of(clip_id)
        keypoints = dataset.keypoints(i)
        tracks.append(Track(clip_id, keypoints, np.zeros(len(keypoints), dtype=bool), dataset.fps,
                            float(dataset.focals[i]), f"{path}:{clip_id}"))
    dataset.close()
    return tracks


def estimator_tracks(inputs: list[Path], fmt: str, size, fps: float | None, focal: float | None,
                     fov: float | None) -> list[Track]:
    """Each video of the pose-estimator files under ``inputs`` as the `Track` of its main person.
    Frame size, rate and focal length come from the file where it says, else from the options
    (rate 30 and `camera_focal`'s default when nothing says). A file that cannot be used is a `UserError`."""
    from k2m_core.preprocess.detections import FormatError
    from k2m_core.preprocess.formats import discover, read_unit
    from k2m_core.preprocess.tracking import TrackConfig, select_person

    tracks = []
    for unit in discover(inputs, fmt, set(), 1 << 62):
        for det in read_unit(unit, None):
            if isinstance(det, FormatError):
                raise UserError(f"{unit.label}: {det}")
            runs = select_person(det, TrackConfig())
            if not runs:
                raise UserError(f"{det.source}: nobody is detected in any frame of {det.video}; nothing to lift")
            frame_size = det.size[0] if det.size is not None else size
            if frame_size is None:
                raise UserError(f"{det.source}: the file has no frame size; give --size WxH")
            rate = det.fps or fps or MODEL_FPS
            camera = camera_focal(float(frame_size[0]), float(frame_size[1]), known=det.focal, focal=focal, fov=fov)
            tracks.append(track_from_runs(det.video, runs, int(det.declared[0]), int(det.declared[-1]),
                                          frame_size, rate, float(camera), det.source))
    if not tracks:
        raise UserError(f"{', '.join(map(str, inputs))}: no keypoint files found (see `k2m preprocess --help` "
                        "for the formats)")
    return tracks


def write_lifted(motion: LiftedMotion, track: Track, stem: Path, formats: tuple[str, ...], body,
                 tokenizer_dir: Path) -> dict:
    """Write ``motion`` as ``stem.npz``/``.bvh`` (z-up AMASS-style / y-up BVH, as `k2m gen`), video
    previews, and ``stem.json`` (input, frame rate, focal length, filled frames). Returns the record."""
    import json

    from k2m_core.atomic import make_folder, write_bytes_atomic
    from k2m_core.export.motion_file import WorldMotion, save_motion
    from k2m_core.export.world import camera_to_world
    from k2m_core.render.draw import write_video
    from k2m_core.render.sources import render_motions

    body = copy.deepcopy(body).to("cpu", torch.float64)
    poses, transl, joints = camera_to_world(motion.poses, motion.transl, motion.betas, body, up="z")
    world = WorldMotion(poses, transl, motion.betas, motion.fps, track.name, joints)
    make_folder(stem.parent)
    files = []
    for kind in formats:
        path = stem.with_suffix(f".{kind}")
        if kind in ("npz", "bvh"):
            save_motion(world, path, body)
        else:
            video, rate = render_motions([world], body, captions=[track.name], fps=motion.fps)
            write_video(path, video, rate)
        files.append(str(path))
    filled = (np.flatnonzero(motion.filled) + track.first_frame).tolist()
    record = {"input": track.source or track.name, "frames": len(world), "fps": motion.fps, "focal": track.focal,
              "filled_frames": filled, "tokenizer": str(tokenizer_dir), "files": files}
    write_bytes_atomic(stem.with_suffix(".json"), json.dumps(record, indent=2).encode())
    record["files"] = files + [str(stem.with_suffix(".json"))]
    return record
