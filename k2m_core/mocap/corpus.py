"""`k2m data from-mocap`: real motion capture seen by the synthetic corpus's cameras, as a dataset.

Each motion file becomes SMPL joints and COCO-17 keypoints in an upright world (y up, metres):
SMPL-parameter files (AMASS ``.npz``, AIST++ ``.pkl``) through a body model, BVH skeletons
(the SMPL-named BVH `k2m export` writes among them) through `k2m_core.mocap.skeletons`. The motion is
resampled to 30 fps (joint positions, linearly, at the times `k2m preprocess` uses), cut at
teleports (a mean joint speed above `TELEPORT_M_S`, such as a calibration T-pose frame spliced
before the take) and into clips of 2–10 s as preprocessing cuts them. Every clip is seen by
``views`` cameras of `k2m_core.synth.camera_rig`: turned so that the body's mean facing direction
over the clip is the rig's "front", then viewed, placed, projected and — unless ``clean`` —
corrupted by the rig's estimator model. Camera-frame joints and 3D keypoints are stored as
ground truth (``joints (F, 24, 3)``, ``keypoints (F, 17, 3)``), the camera's focal length per
clip, its view in the clip's source record. Clip and view k of a file depend only on the seed
and the clip's id.

Every conversion between frames is a rotation, never a reflection, so a left hip stays on the
body's left.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from k2m_core.inputs import find_files
from k2m_core.keypoints import make_clip
from k2m_core.preprocess.detections import FormatError
from k2m_core.preprocess.segment import source_positions, split_stretch
from k2m_core.synth.camera_rig import RigConfig, estimator_noise, place_in_frame, project, sample_view, visible_in

MOTION_SUFFIXES = (".bvh", ".npz", ".pkl")
TELEPORT_M_S = 10.0  # no body part moves this fast on average; a jump this big is a cut in the take


@dataclass
class MocapConfig(RigConfig):
    """The camera and estimator of `RigConfig`, plus how motions are read, cut and viewed."""

    seed: int = 0
    views: int = 1              # cameras per clip
    clean: bool = False         # exact projections, confidence 1: no estimator noise or dropouts
    units: str | None = None    # BVH length unit (a key of `k2m_core.mocap.bvh.UNITS`); None: detect
    fps: float = 30.0           # stored frame rate
    min_seconds: float = 2.0
    max_seconds: float = 10.0


@dataclass
class WorldMotion3D:
    """A motion as points: ``joints (F, 24, 3)`` SMPL joints and ``keypoints (F, 17, 3)`` COCO-17,
    in an upright world (y up, metres), at ``fps``; ``kind`` says how it was read."""

    joints: np.ndarray
    keypoints: np.ndarray
    fps: float
    kind: str


@dataclass
class MocapClip:
    clip_id: str
    keypoints: np.ndarray  # (F, 18, 3) float32
    joints: np.ndarray     # (F, 24, 3) camera-frame SMPL joints
    points: np.ndarray     # (F, 17, 3) camera-frame COCO-17 keypoints
    focal: float
    source: dict = field(default_factory=dict)


def _snap_fps(fps: float) -> float:
    """Frame rates written with few decimals (1/0.008333 = 120.0048) back to the whole number."""
    return float(round(fps)) if abs(fps - round(fps)) < 1e-3 * fps else float(fps)


def _up_to_y(up: np.ndarray) -> np.ndarray:
    """A rotation ``(3, 3)`` taking the coordinate axis nearest ``up (3,)`` to +y."""
    axis = int(np.argmax(np.abs(up)))
    sign = 1.0 if up[axis] > 0 else -1.0
    if axis == 1:
        return np.diag([1.0, sign, sign])  # identity, or 180° about x
    if axis == 2:  # ±90° about x
        return np.array([[1.0, 0.0, 0.0], [0.0, 0.0, sign], [0.0, -sign, 0.0]])
    return np.array([[0.0, sign, 0.0], [-sign, 0.0, 0.0], [0.0, 0.0, 1.0]])  # ±90° about z


def read_motion(path: Path, body, config: MocapConfig, joint_map: dict | None = None) -> WorldMotion3D:
    """Read one motion file; `FormatError` (with a report reason) if it cannot be used.
    ``body`` (float64) poses SMPL-parameter files; ``joint_map`` replaces the BVH naming schemes."""
    from k2m_core.errors import UserError
    from k2m_core.export.motion_file import load_motion
    from k2m_core.export.world import Y_UP_TO_Z_UP
    from k2m_core.mocap.bvh import read_bvh
    from k2m_core.mocap.skeletons import SCHEMES, match_scheme, rest_axes, smpl_from_bvh

    suffix = path.suffix.lower()
    if suffix == ".bvh":
        motion = read_bvh(path, config.units)
        scheme, mapping = match_scheme(motion.names, {"joint-map": joint_map} if joint_map else SCHEMES)
        joints, keypoints = smpl_from_bvh(motion, mapping)
        turn = _up_to_y(rest_axes(motion, mapping)[0])
        return WorldMotion3D(joints @ turn.T, keypoints @ turn.T, _snap_fps(motion.fps), f"bvh:{scheme}")
    if suffix not in MOTION_SUFFIXES:
        raise FormatError("unknown-format", f"not a motion file ({', '.join(MOTION_SUFFIXES)})")
    kind = {".npz": "amass", ".pkl": "aist++"}[suffix]
    try:
        world = load_motion(path, body)  # z up
    except UserError as exc:
        raise FormatError("unreadable", str(exc).removeprefix(f"{path}: ")) from None
    if len(world) == 0:
        raise FormatError("empty", "the motion has no frames")
    out = world.pose(body)
    to_y_up = Y_UP_TO_Z_UP  # rows: p_y = p_z @ Y_UP_TO_Z_UP
    return WorldMotion3D(out.joints.numpy() @ to_y_up, out.keypoints.numpy() @ to_y_up, _snap_fps(world.fps), kind)


def resample_points(points: np.ndarray, fps: float, target_fps: float) -> np.ndarray:
    """``points (F, ...)`` at ``fps`` → at ``target_fps``, linearly between neighbouring frames."""
    pos = source_positions(len(points), fps, target_fps)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, len(points) - 1)
    w = (pos - lo).reshape((-1,) + (1,) * (points.ndim - 1))
    return (1 - w) * points[lo] + w * points[hi]


def stretches(joints: np.ndarray, fps: float) -> list[tuple[int, int]]:
    """``[start, stop)`` frame ranges between teleports (mean joint speed above `TELEPORT_M_S`)."""
    if len(joints) < 2:
        return [(0, len(joints))]
    speed = np.linalg.norm(np.diff(joints, axis=0), axis=-1).mean(-1) * fps
    cut = np.flatnonzero(speed > TELEPORT_M_S) + 1
    bounds = [0, *cut.tolist(), len(joints)]
    return [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def _facing(joints: np.ndarray) -> float:
    """The body's mean facing direction over ``joints (F, 24, 3)`` (y up) as a yaw: the
    horizontal part of left × up, left from the right hip and shoulder to the left ones."""
    left = joints[:, 1] - joints[:, 2] + joints[:, 16] - joints[:, 17]
    forward = np.stack([-left[:, 2], np.zeros(len(left)), left[:, 0]], axis=1)
    forward /= np.maximum(np.linalg.norm(forward, axis=1, keepdims=True), 1e-9)
    mean = forward.mean(0)
    return float(np.arctan2(mean[0], mean[2]))


def _yaw_matrix(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def view_clip(joints: np.ndarray, keypoints: np.ndarray, clip_id: str, config: MocapConfig) -> MocapClip:
    """One camera's clip of the world points ``joints (F, 24, 3)``, ``keypoints (F, 17, 3)``
    (y up, at the stored rate), drawn from a generator seeded by ``config.seed`` and ``clip_id``."""
    rng = np.random.default_rng([config.seed, zlib.crc32(clip_id.encode("utf-8"))])
    view = sample_view(rng, config)
    rotation = view.world_to_camera @ _yaw_matrix(-_facing(joints))
    joints_cam, points_cam = joints @ rotation.T, keypoints @ rotation.T
    offset = place_in_frame(points_cam, view, config.body_fill, rng)
    joints_cam, points_cam = joints_cam + offset, points_cam + offset
    xy = project(points_cam, view.focal, view.width, view.height)
    depth = points_cam[..., 2]
    xy, conf = visible_in(xy, depth, view) if config.clean else estimator_noise(xy, depth, view, rng, config)
    source = {"viewpoint": view.viewpoint, "yaw_deg": round(float(np.degrees(view.yaw)), 3),
              "pitch_deg": round(float(np.degrees(view.pitch)), 3), **view.intrinsics()}
    return MocapClip(clip_id, make_clip(xy, conf, view.width, view.height), joints_cam.astype(np.float32),
                     points_cam.astype(np.float32), view.focal, source)


@dataclass
class Piece:
    """A stretch of one source file to cut into clips: ``[start, stop)`` in source frames."""

    start: int
    stop: int
    captions: tuple[str, ...] = ()
    name: str = ""  # HumanML3D id, part of the clip ids


def motion_clips(motion: WorldMotion3D, key: str, pieces: list[Piece], config: MocapConfig):
    """Yield ``(clip, captions)`` for every clip and view of ``motion`` over ``pieces``, and
    ``(None, frames)`` for each stretch too short to keep (``frames`` at the stored rate)."""
    min_frames = int(round(config.min_seconds * config.fps))
    max_frames = int(round(config.max_seconds * config.fps))
    for piece in pieces:
        joints = motion.joints[piece.start:piece.stop]
        keypoints = motion.keypoints[piece.start:piece.stop]
        if len(joints) == 0:
            yield None, 0
            continue
        joints = resample_points(joints, motion.fps, config.fps)
        keypoints = resample_points(keypoints, motion.fps, config.fps)
        for start, stop in stretches(joints, config.fps):
            for a, b in split_stretch(start, stop, max_frames):
                if b - a < min_frames:
                    yield None, b - a
                    continue
                first = piece.start + int(round(a * motion.fps / config.fps))
                last = piece.start + int(round((b - 1) * motion.fps / config.fps))
                stem = f"{key}_{piece.name}" if piece.name else key
                for k in range(config.views):
                    clip = view_clip(joints[a:b], keypoints[a:b], f"{stem}_{first:06d}_v{k}", config)
                    clip.source = {"file": key, "frames": [first, last], "fps": motion.fps, "kind": motion.kind,
                                   "view": k, **clip.source}
                    yield clip, piece.captions


def find_motions(inputs: list[Path]) -> list[tuple[Path, str]]:
    """Motion files of ``inputs`` (files, or folders searched recursively) with their keys: the
    path inside the folder given (``KIT/3/walk_poses``), or the stem of a file given."""
    return [(path, path.relative_to(root).with_suffix("").as_posix() if root is not None else path.stem)
            for path, root in find_files(inputs, MOTION_SUFFIXES, "motion files")]


def write_mocap_dataset(inputs: list[Path], out: Path, config: MocapConfig, body, *, humanml3d: Path | None = None,
                        captions: Path | None = None, joint_map: Path | None = None, strict: bool = False,
                        force: bool = False, command: str = "", report_path: Path | None = None,
                        on_file=None) -> dict:
    """Render every motion of ``inputs`` into the dataset ``out`` (and a JSON report beside it,
    ``<out>.report.json``); returns the report. Unusable files are listed with their reason and
    skipped, or with ``strict`` stop the run before anything is written."""
    from k2m_core.atomic import write_bytes_atomic
    from k2m_core.data.dataset import DatasetWriter
    from k2m_core.errors import UserError
    from k2m_core.mocap.humanml3d import load_humanml3d, segments_for
    from k2m_core.mocap.skeletons import load_joint_map
    from k2m_core.preprocess.captions import load_captions
    from k2m_core.preprocess.process import INPUT_ERRORS

    out = Path(out)
    report_path = Path(report_path) if report_path else out.with_name(f"{out.stem}.report.json")
    if config.views < 1:
        raise UserError(f"--views must be at least 1, got {config.views}")
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; give a file name such as {out / 'mocap.h5'}")
    if out.exists() and not force:
        raise UserError(f"{out} already exists; pass --force to overwrite it")
    segments = load_humanml3d(humanml3d) if humanml3d else None
    texts = load_captions(Path(captions)) if captions else None
    mapping = load_joint_map(joint_map) if joint_map else None
    motions = find_motions(inputs)
    if not motions:
        raise UserError(f"no motion files ({', '.join(MOTION_SUFFIXES)}) in {', '.join(map(str, inputs))}")
    report = {"command": command, "files": len(motions), "read": 0, "clips": 0, "frames": 0, "motions": 0,
              "too_short": {"stretches": 0, "frames": 0}, "not_in_index": [], "problems": []}
    keys: dict[str, Path] = {}
    writer = DatasetWriter(out, fps=config.fps, creation_command=command, split_seed=config.seed)
    try:
        for done, (path, key) in enumerate(motions, 1):
            key = key.replace("/", "__")
            problem = None
            if keys.setdefault(key, path) != path:
                problem = ("duplicate", f"its id {key!r} is also that of {keys[key]}; rename one of them")
            else:
                try:
                    motion = read_motion(path, body, config, mapping)
                except FormatError as exc:
                    problem = (exc.reason, str(exc))
                except INPUT_ERRORS as exc:
                    problem = ("unreadable", f"{type(exc).__name__}: {exc}")
            if problem is not None:
                if strict:
                    raise UserError(f"{path}: {problem[1]} (--strict: nothing written)")
                report["problems"].append({"file": str(path), "reason": problem[0], "message": problem[1]})
                continue
            report["read"] += 1
            if segments is not None:
                found = segments_for(path, segments)
                if not found:
                    report["not_in_index"].append(str(path))
                pieces = [Piece(*(int(v) for v in np.clip(s.source_frames(motion.fps), 0, len(motion.joints))),
                                s.captions, s.name) for s in found]
            else:
                pieces = [Piece(0, len(motion.joints))]
            kept = 0
            for clip, extra in motion_clips(motion, key, pieces, config):
                if clip is None:
                    report["too_short"]["stretches"] += 1
                    report["too_short"]["frames"] += extra
                    continue
                texts_of = list(extra)
                if texts is not None and not texts_of:
                    texts_of = texts.lookup(clip.clip_id, key) or texts.by_id.get(path.stem) or []
                writer.add_clip(clip.clip_id, clip.keypoints, texts_of, source=json.dumps(clip.source), video=key,
                                gt_frames={"joints": clip.joints, "keypoints": clip.points}, focal=clip.focal)
                report["clips"] += 1
                report["frames"] += len(clip.keypoints)
                kept += 1
            report["motions"] += kept > 0
            if on_file is not None:
                on_file(done, len(motions), report)
        if len(writer) == 0:
            raise UserError(f"no clip was made from {len(motions)} file(s) ({len(report['problems'])} unusable, "
                            f"{report['too_short']['stretches']} stretches under {config.min_seconds:g} s); "
                            "nothing written")
        writer.close()
    except BaseException:
        writer.abort()
        raise
    report["hours"] = round(report["frames"] / config.fps / 3600, 4)
    write_bytes_atomic(report_path, json.dumps(report, indent=2).encode())
    return report
