"""Any motion file k2m reads (AMASS-style ``.npz``, an SMPL ``.bvh``, AIST++ ``.pkl``) as one z-up world motion."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from k2m_core.body.base import BodyModel, BodyOutput
from k2m_core.errors import UserError

MOTION_SUFFIXES = (".npz", ".bvh", ".pkl")


@dataclass
class WorldMotion:
    poses: np.ndarray  # (F, 72) float64 axis-angle, z-up world frame
    trans: np.ndarray  # (F, 3) float64 metres, SMPL's translation
    betas: np.ndarray  # (10,) float64
    fps: float
    text: str = ""
    joints: np.ndarray | None = None  # (F, 24, 3) as stored in the file, if it stored them

    def __len__(self) -> int:
        return len(self.poses)

    def resampled(self, fps: float) -> "WorldMotion":
        """The same motion at ``fps`` (stored joints are dropped: they belong to the old frames)."""
        from k2m_core.export.resample import resample_motion

        if abs(fps - self.fps) < 1e-9:
            return self
        poses, trans = resample_motion(self.poses, self.trans, self.fps, fps)
        return WorldMotion(poses, trans, self.betas, fps, self.text)

    def pose(self, body: BodyModel, with_vertices: bool = False) -> BodyOutput:
        """``body`` in float64. Joints (and vertices where it has a mesh and they are asked for)."""
        with torch.no_grad():
            return body.forward_axis_angle(
                torch.from_numpy(self.poses), torch.from_numpy(self.betas)[None].expand(len(self), 10),
                torch.from_numpy(self.trans), with_vertices=with_vertices and body.has_mesh)


def load_motion(path: str | os.PathLike, body: BodyModel) -> WorldMotion:
    """Read ``path``; ``body`` (float64) gives a BVH's or AIST++ file's rest pelvis (they store no
    shape: betas are zero)."""
    from k2m_core.export.aistpp import read_aistpp
    from k2m_core.export.amass import read_amass_npz
    from k2m_core.export.bvh import read_bvh_smpl
    from k2m_core.export.world import Y_UP_TO_Z_UP, rotate_motion

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in MOTION_SUFFIXES:
        raise UserError(f"{path}: unknown motion format {path.suffix!r}; give .npz (AMASS-style), .bvh or "
                        ".pkl (AIST++) files")
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    if suffix == ".npz":
        data = read_amass_npz(path)
        motion = WorldMotion(data["poses"].astype(np.float64), data["trans"].astype(np.float64),
                             data["betas"].astype(np.float64), data["fps"], data["text"], data.get("joints"))
    else:
        with torch.no_grad():
            rest_pelvis = body.rest_joints(torch.zeros(1, 10, dtype=torch.float64))[0, 0].numpy()
        if suffix == ".pkl":
            data = read_aistpp(path)
            transl = data["trans"]
        else:
            data = read_bvh_smpl(path)
            transl = data["pelvis"] - rest_pelvis
        poses, trans = rotate_motion(data["poses"], transl, rest_pelvis, Y_UP_TO_Z_UP)
        motion = WorldMotion(poses, trans, np.zeros(10), data["fps"])
    for name in ("poses", "trans", "betas", "joints"):
        values = getattr(motion, name)
        if values is not None and not np.isfinite(values).all():
            where = f" (first at frame {np.argwhere(~np.isfinite(values))[0, 0]})" if values.ndim > 1 else ""
            raise UserError(f"{path}: {name} hold NaN or inf values{where}; the motion file is damaged")
    return motion


def save_motion(motion: WorldMotion, path: str | os.PathLike, body: BodyModel, seed: int | None = None) -> None:
    """Write ``motion`` as ``.npz`` (AMASS-style, z-up) or ``.bvh`` (y-up, cm) by the suffix of
    ``path``; ``body`` (float64) gives the BVH's bone offsets and any joints the motion lacks."""
    from k2m_core.export.amass import write_amass_npz
    from k2m_core.export.bvh import write_bvh
    from k2m_core.export.world import Y_UP_TO_Z_UP, rotate_motion

    suffix = Path(path).suffix.lower()
    if suffix == ".bvh":
        with torch.no_grad():
            rest = body.rest_joints(torch.from_numpy(motion.betas)[None])[0].numpy()
        poses, transl = rotate_motion(motion.poses, motion.trans, rest[0], Y_UP_TO_Z_UP.T)
        write_bvh(path, poses, transl, rest, motion.fps)
    elif suffix == ".npz":
        joints = motion.joints if motion.joints is not None else motion.pose(body).joints.numpy()
        write_amass_npz(path, motion.poses, motion.trans, motion.betas, joints, motion.fps,
                        text=motion.text, seed=seed)
    else:
        raise ValueError(f"{path}: motions are saved as .npz or .bvh")
