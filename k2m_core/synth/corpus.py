"""Synthetic corpus: procedural SMPL motions seen by a random camera, as a pose estimator would.

Each clip is one motion from `k2m_core.synth.motions` seen by one camera of
`k2m_core.synth.camera_rig` (a realistic field of view, distance and pitch, a viewpoint drawn with
the proportions of paper Table 7, a random image size; or a fixed focal such as the paper's
5000 px). The projected COCO-17 keypoints get the rig's estimator-like corruption.

Ground truth (camera-frame SMPL parameters and joints, consistent with the clip's camera) is
stored beside the keypoints, so the tokenizer's 3D error can be measured. Clip i depends only on
(seed, i).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from k2m_core.body.skeleton import SkeletonBody
from k2m_core.keypoints import make_clip
from k2m_core.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from k2m_core.synth.camera_rig import RigConfig, View, estimator_noise, place_in_frame, project, sample_view
from k2m_core.synth.motions import Motion, sample_motion


@dataclass
class SynthConfig(RigConfig):
    """The camera and estimator of `RigConfig`, plus what the motions are drawn from."""

    seed: int = 0
    fps: float = 30.0
    families: tuple[str, ...] | None = None  # None: every family


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
    view: View  # the camera (focal in pixels, principal point at the image centre)
    attributes: dict = field(default_factory=dict)


def clip_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, index])


def synth_clip(index: int, config: SynthConfig, body: SkeletonBody | None = None) -> SynthClip:
    """Clip number ``index`` of the corpus defined by ``config`` (deterministic)."""
    rng = clip_rng(config.seed, index)
    body = body or SkeletonBody()
    motion = sample_motion(rng, fps=config.fps, families=config.families)
    view = sample_view(rng, config)
    poses, transl, joints, keypoints3d = _to_camera(motion, body, view.world_to_camera)
    offset = place_in_frame(keypoints3d, view, config.body_fill, rng)
    transl, joints, keypoints3d = transl + offset, joints + offset, keypoints3d + offset

    xy = project(keypoints3d, view.focal, view.width, view.height)
    xy, conf = estimator_noise(xy, keypoints3d[..., 2], view, rng, config)
    return SynthClip(
        clip_id=f"synth{config.seed}_{index:06d}", keypoints=make_clip(xy, conf, view.width, view.height),
        captions=list(motion.captions), family=motion.family, viewpoint=view.viewpoint,
        poses=poses.astype(np.float32), transl=transl.astype(np.float32),
        betas=motion.betas.astype(np.float32), joints=joints.astype(np.float32), view=view,
        attributes=dict(motion.attributes),
    )


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


ESTIMATOR_FORMATS = ("coco", "openpose", "jsonl", "npz")


def write_corpus(out_dir, num_clips: int, config: SynthConfig, *, preview: int = 0, formats: tuple[str, ...] = (),
                 creation_command: str = "", on_clip=None) -> dict:
    """Write ``num_clips`` clips to ``out_dir``: ``dataset.h5`` (docs/design.md#dataset, with ground truth),
    ``captions.jsonl`` (``{"video", "captions"}`` per clip, the input `k2m preprocess` reads),
    ``clips.jsonl`` (family, viewpoint, camera intrinsics, attributes per clip; a ``--video-info``
    table for `k2m preprocess`), for the first ``preview``
    clips ``previews/<id>.gif``, and the keypoints as pose estimators write them under
    ``keypoints/<format>/`` (one file or folder per clip = video; one JSONL file for ``jsonl``)
    for each of ``formats``
    (`ESTIMATOR_FORMATS`; COCO results and OpenPose carry no frame size: use a fixed
    ``config.image_size`` and give it to `k2m preprocess --size`). Returns a summary dict."""
    import json

    from k2m_core.atomic import atomic_path, make_folder
    from k2m_core.data.dataset import DatasetWriter
    from k2m_core.keypoints import check_frame_size
    from k2m_core.render.draw import draw_keypoints, write_video

    if config.image_size is not None:
        check_frame_size(*config.image_size)
    out = make_folder(out_dir)
    body = SkeletonBody().to(torch.float64)
    captions_lines, meta_lines, frames, families = [], [], 0, {}
    with DatasetWriter(out / "dataset.h5", fps=config.fps, creation_command=creation_command,
                       split_seed=config.seed) as writer:
        for i in range(num_clips):
            clip = synth_clip(i, config, body)
            writer.add_clip(clip.clip_id, clip.keypoints, clip.captions,
                            source=f"synth:{clip.family}:{clip.viewpoint}", video=clip.clip_id,
                            gt_frames={"poses": clip.poses, "transl": clip.transl, "joints": clip.joints},
                            gt_clip={"betas": clip.betas}, focal=clip.view.focal)
            captions_lines.append(json.dumps({"video": clip.clip_id, "captions": clip.captions}))
            meta_lines.append(json.dumps({"id": clip.clip_id, "family": clip.family, "viewpoint": clip.viewpoint,
                                          "frames": len(clip.keypoints), **clip.view.intrinsics(),
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
             "width": kp[0, 17, 0], "height": kp[0, 17, 1], "focal": focal}
            for clip_id, kp, focal in _reread(out / "dataset.h5")))
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

        write_pose_npz(folder / "npz" / f"{clip.clip_id}.npz", xy, conf, fps=fps, width=width, height=height,
                       focal=clip.view.focal)


def _reread(path):
    """(clip id, keypoints, focal) of every clip of a finished dataset file, one at a time."""
    from k2m_core.data.dataset import Dataset

    dataset = Dataset(path)
    for i, clip_id in enumerate(dataset.ids):
        yield clip_id, dataset.keypoints(i), float(dataset.focals[i])
    dataset.close()
