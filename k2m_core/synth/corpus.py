"""Synthetic corpus: procedural SMPL motions seen by a random camera, as a pose estimator would.

Each clip is one motion from `k2m_core.synth.motions` placed in front of a fixed camera with the
paper's intrinsics (f = 5000 px), from a viewpoint drawn with the proportions of paper Table 7
(front / left side / right side / back), at a random image size. The projected COCO-17 keypoints
get estimator-like corruption: pixel noise, lower confidence and more noise on the far side of
the body, short dropouts with low confidence and wrong positions, and c = 0 outside the frame.

Ground truth (camera-frame SMPL parameters and joints) is stored beside the keypoints, so the
tokenizer's 3D error can be measured. Clip i depends only on (seed, i).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from k2m_core.body.skeleton import SkeletonBody
from k2m_core.camera import FOCAL
from k2m_core.keypoints import MIRROR, make_clip
from k2m_core.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from k2m_core.synth.motions import Motion, sample_motion

# Paper Table 7: share of frames per viewpoint, and the subject's yaw that shows that side.
VIEWPOINTS = {"front": (0.3941, 0.0), "left": (0.2616, -90.0), "right": (0.2732, 90.0), "back": (0.0711, 180.0)}
IMAGE_SIZES = ((1920, 1080), (1280, 720), (3840, 2160), (1080, 1920), (720, 1280), (640, 480))


@dataclass
class SynthConfig:
    seed: int = 0
    fps: float = 30.0
    noise_px: tuple[float, float] = (0.5, 3.0)  # per-clip keypoint noise std at 1080p, drawn uniformly
    dropout_rate: float = 0.01  # chance per keypoint and frame that a dropout run starts
    yaw_jitter_deg: float = 25.0  # spread of the subject's yaw around each viewpoint
    families: tuple[str, ...] | None = None  # None: every family
    image_size: tuple[int, int] | None = None  # (W, H) for every clip; None: drawn from IMAGE_SIZES


@dataclass
class SynthClip:
    clip_id: str
    keypoints: np.ndarray  # (F, 18, 3) float32, as stored in datasets
    captions: list[str]
    family: str
    viewpoint: str
    poses: np.ndarray  # (F, 72) camera-frame SMPL axis-angle
    transl: np.ndarray  # (F, 3) camera-frame SMPL transl
    betas: np.ndarray  # (10,)
    joints: np.ndarray  # (F, 24, 3) camera-frame SMPL joints
    attributes: dict = field(default_factory=dict)


def clip_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, index])


def synth_clip(index: int, config: SynthConfig, body: SkeletonBody | None = None) -> SynthClip:
    """Clip number ``index`` of the corpus defined by ``config`` (deterministic)."""
    rng = clip_rng(config.seed, index)
    body = body or SkeletonBody()
    motion = sample_motion(rng, fps=config.fps, families=config.families)
    names = list(VIEWPOINTS)
    shares = np.array([VIEWPOINTS[n][0] for n in names])
    viewpoint = names[rng.choice(len(names), p=shares / shares.sum())]
    yaw = math.radians(VIEWPOINTS[viewpoint][1] + rng.uniform(-1, 1) * config.yaw_jitter_deg)
    pitch = math.radians(rng.uniform(-8, 12))  # camera slightly above or below the subject
    width, height = IMAGE_SIZES[rng.integers(len(IMAGE_SIZES))]
    if config.image_size is not None:
        width, height = config.image_size

    poses, transl, joints, keypoints3d = _to_camera(motion, body, _camera_rotation(yaw, pitch))
    offset = _place_in_frame(keypoints3d, width, height, rng)
    transl, joints, keypoints3d = transl + offset, joints + offset, keypoints3d + offset

    xy = FOCAL * keypoints3d[..., :2] / keypoints3d[..., 2:] + np.array([width / 2, height / 2])
    xy, conf = _estimator_noise(xy, keypoints3d[..., 2], width, height, rng, config)
    return SynthClip(
        clip_id=f"synth{config.seed}_{index:06d}", keypoints=make_clip(xy, conf, width, height),
        captions=list(motion.captions), family=motion.family, viewpoint=viewpoint,
        poses=poses.astype(np.float32), transl=transl.astype(np.float32),
        betas=motion.betas.astype(np.float32), joints=joints.astype(np.float32),
        attributes=dict(motion.attributes),
    )


def _camera_rotation(yaw: float, pitch: float) -> np.ndarray:
    """World (y up, subject facing +z) → camera (y down, z forward): turn the subject by ``yaw``
    about the vertical, flip to the camera's axes (180° about x: the subject faces the camera),
    then tilt the camera by ``pitch``."""
    turn = axis_angle_to_matrix(torch.tensor([0.0, yaw, 0.0], dtype=torch.float64))
    flip = axis_angle_to_matrix(torch.tensor([math.pi, 0.0, 0.0], dtype=torch.float64))
    tilt = axis_angle_to_matrix(torch.tensor([pitch, 0.0, 0.0], dtype=torch.float64))
    return (tilt @ flip @ turn).numpy()


def _to_camera(motion: Motion, body: SkeletonBody, world_to_cam: np.ndarray):
    """Rotate the motion into the camera's axes (translation still to be chosen). SMPL rotates
    about the rest pelvis J0, so the new transl is R·(J0 + t) − J0."""
    frames = len(motion.poses)
    rot = torch.from_numpy(world_to_cam)
    poses = torch.from_numpy(motion.poses.astype(np.float64)).reshape(frames, 24, 3).clone()
    poses[:, 0] = matrix_to_axis_angle(rot @ axis_angle_to_matrix(poses[:, 0]))
    betas = torch.from_numpy(motion.betas.astype(np.float64))[None].expand(frames, 10)
    body = body.to(torch.float64)
    pelvis_rest = body.rest_joints(betas[:1])[0, 0]
    transl = (torch.from_numpy(motion.transl.astype(np.float64)) + pelvis_rest) @ rot.T - pelvis_rest
    with torch.no_grad():
        out = body.forward_axis_angle(poses.reshape(frames, 72), betas, transl)
    return poses.reshape(frames, 72).numpy(), transl.numpy(), out.joints.numpy(), out.keypoints.numpy()


def _place_in_frame(points: np.ndarray, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """Camera-frame offset that keeps every keypoint of the clip inside the image.

    Depth is chosen so the body fills 45–85 % of the image height, then pushed back just enough
    that the whole trajectory fits in 90 % of the frame; the clip is centred with a random slack."""
    body_height = float(np.median(points[..., 1].max(-1) - points[..., 1].min(-1))) + 0.1
    depth = FOCAL * body_height / (rng.uniform(0.45, 0.85) * height)
    lo, hi = points.reshape(-1, 3).min(0), points.reshape(-1, 3).max(0)
    centre = (lo + hi) / 2

    def project_at(d: float):
        z = points[..., 2] - centre[2] + d
        u = FOCAL * (points[..., 0] - centre[0]) / z
        v = FOCAL * (points[..., 1] - centre[1]) / z
        fits = z.min() >= 1.0 and (u.max() - u.min()) <= 0.9 * width and (v.max() - v.min()) <= 0.9 * height
        return z, u, v, fits

    # The nearest depth (not nearer than the size-based choice) at which the whole path fits,
    # by bisection. Growing the depth geometrically from a frame where part of the path is at
    # or behind the camera once sent clips kilometres away, where the body is a few pixels.
    if not project_at(depth)[3]:
        near, far = depth, depth * 2
        while not project_at(far)[3]:
            near, far = far, far * 2
        for _ in range(40):
            mid = (near + far) / 2
            near, far = (near, mid) if project_at(mid)[3] else (mid, far)
        depth = far
    z, u, v, _ = project_at(depth)
    # A random shift inside the slack that is left, converted from pixels to metres at the
    # median depth (the frame keeps a 5 % margin for the error of that approximation).
    slack_u = max(0.0, 0.9 * width - (u.max() - u.min())) / 2
    slack_v = max(0.0, 0.9 * height - (v.max() - v.min())) / 2
    shift_u = rng.uniform(-slack_u, slack_u) - (u.max() + u.min()) / 2
    shift_v = rng.uniform(-slack_v, slack_v) - (v.max() + v.min()) / 2
    metres_per_px = float(np.median(z)) / FOCAL
    return np.array([shift_u * metres_per_px - centre[0], shift_v * metres_per_px - centre[1], depth - centre[2]])


def _estimator_noise(xy: np.ndarray, depth: np.ndarray, width: int, height: int,
                     rng: np.random.Generator, config: SynthConfig) -> tuple[np.ndarray, np.ndarray]:
    """Corrupt projected keypoints ``(F, 17, 2)`` the way a 2D pose estimator does."""
    frames = len(xy)
    sigma = rng.uniform(*config.noise_px) * height / 1080
    conf = rng.uniform(0.85, 1.0, size=(frames, 17))
    noise = rng.normal(0, sigma, size=xy.shape)
    # Self-occlusion: the farther of each left/right pair is less certain and noisier.
    farther = depth > depth[:, list(MIRROR)] + 0.08
    conf = np.where(farther, conf - rng.uniform(0.1, 0.35, size=conf.shape), conf)
    noise = np.where(farther[..., None], noise * 2.0, noise)
    # Dropouts: short runs where the estimator lost the keypoint (low confidence, wrong place).
    lost = np.zeros((frames, 17), dtype=bool)
    for t, j in zip(*np.nonzero(rng.random((frames, 17)) < config.dropout_rate)):
        lost[t:t + rng.integers(1, 9), j] = True
    conf = np.where(lost, rng.uniform(0.0, 0.3, size=conf.shape), conf)
    noise = np.where(lost[..., None], rng.normal(0, 30 * sigma, size=xy.shape), noise)
    xy = xy + noise
    outside = (xy[..., 0] < 0) | (xy[..., 0] >= width) | (xy[..., 1] < 0) | (xy[..., 1] >= height) | (depth <= 0)
    return np.where(outside[..., None], 0.0, xy), np.clip(np.where(outside, 0.0, conf), 0.0, 1.0)


ESTIMATOR_FORMATS = ("coco", "openpose", "jsonl", "npz")


def write_corpus(out_dir, num_clips: int, config: SynthConfig, *, preview: int = 0, formats: tuple[str, ...] = (),
                 creation_command: str = "", on_clip=None) -> dict:
    """Write ``num_clips`` clips to ``out_dir``: ``dataset.h5`` (SPEC §4 with ground truth),
    ``captions.jsonl`` (``{"video", "captions"}`` per clip, the input `k2m preprocess` reads),
    ``clips.jsonl`` (family, viewpoint, size, attributes per clip), for the first ``preview``
    clips ``previews/<id>.gif``, and the keypoints as pose estimators write them under
    ``keypoints/<format>/`` (one file or folder per clip = video; one JSONL file for ``jsonl``)
    for each of ``formats``
    (`ESTIMATOR_FORMATS`; COCO results and OpenPose carry no frame size: use a fixed
    ``config.image_size`` and give it to `k2m preprocess --size`). Returns a summary dict."""
    import json
    from pathlib import Path

    from k2m_core.atomic import atomic_path
    from k2m_core.data.dataset import DatasetWriter
    from k2m_core.render.draw import draw_keypoints, write_video

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    body = SkeletonBody().to(torch.float64)
    captions_lines, meta_lines, frames, families = [], [], 0, {}
    with DatasetWriter(out / "dataset.h5", fps=config.fps, creation_command=creation_command,
                       split_seed=config.seed) as writer:
        for i in range(num_clips):
            clip = synth_clip(i, config, body)
            writer.add_clip(clip.clip_id, clip.keypoints, clip.captions,
                            source=f"synth:{clip.family}:{clip.viewpoint}", video=clip.clip_id,
                            gt_frames={"poses": clip.poses, "transl": clip.transl, "joints": clip.joints},
                            gt_clip={"betas": clip.betas})
            captions_lines.append(json.dumps({"video": clip.clip_id, "captions": clip.captions}))
            width, height = clip.keypoints[0, 17, :2].astype(int).tolist()
            meta_lines.append(json.dumps({"id": clip.clip_id, "family": clip.family, "viewpoint": clip.viewpoint,
                                          "frames": len(clip.keypoints), "width": width, "height": height,
                                          "attributes": clip.attributes}, default=str))
            _write_estimator_files(out / "keypoints", clip, formats, config.fps)
            if i < preview:
                (out / "previews").mkdir(exist_ok=True)
                video = draw_keypoints(clip.keypoints, max_side=360, caption=clip.captions[0])
                write_video(out / "previews" / f"{clip.clip_id}.gif", video, config.fps)
            frames += len(clip.keypoints)
            families[clip.family] = families.get(clip.family, 0) + 1
            if on_clip is not None:
                on_clip(clip)
    if "jsonl" in formats:
        from k2m_core.preprocess.formats.k2m_jsonl import write_k2m_jsonl

        write_k2m_jsonl(out / "keypoints" / "jsonl" / "clips.jsonl", (
            {"video": clip_id, "xy": kp[:, :17, :2], "conf": kp[:, :17, 2], "fps": config.fps,
             "width": kp[0, 17, 0], "height": kp[0, 17, 1]}
            for clip_id, kp in _reread(out / "dataset.h5")))
    for name, lines in (("captions.jsonl", captions_lines), ("clips.jsonl", meta_lines)):
        with atomic_path(out / name) as tmp:
            tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"clips": num_clips, "frames": frames, "hours": frames / config.fps / 3600,
            "families": dict(sorted(families.items())), "out": str(out)}


def _write_estimator_files(folder, clip: SynthClip, formats: tuple[str, ...], fps: float) -> None:
    xy, conf = clip.keypoints[:, :17, :2], clip.keypoints[:, :17, 2]
    width, height = clip.keypoints[0, 17, :2].tolist()
    if "coco" in formats:
        from k2m_core.preprocess.formats.coco import write_coco_results

        write_coco_results(folder / "coco" / f"{clip.clip_id}.json", xy, conf)
    if "openpose" in formats:
        from k2m_core.preprocess.formats.openpose import write_openpose_folder

        (folder / "openpose").mkdir(parents=True, exist_ok=True)
        write_openpose_folder(folder / "openpose" / clip.clip_id, xy, conf, video_id=clip.clip_id)
    if "npz" in formats:
        from k2m_core.preprocess.formats.arrays import write_pose_npz

        write_pose_npz(folder / "npz" / f"{clip.clip_id}.npz", xy, conf, fps=fps, width=width, height=height)


def _reread(path):
    """(clip id, keypoints) of every clip of a finished dataset file, one at a time."""
    from k2m_core.data.dataset import Dataset

    dataset = Dataset(path)
    for i, clip_id in enumerate(dataset.ids):
        yield clip_id, dataset.keypoints(i)
    dataset.close()
