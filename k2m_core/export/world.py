"""From the camera frame to the upright export frame (docs/design.md#conventions).

The camera frame is OpenCV's (x right, y down, z forward). The world frame is that frame turned
upright — 180° about x, so y points up — and, for AMASS-style files, turned once more so z points
up (+90° about x). The motion is then moved so the pelvis sits at the horizontal origin at frame 0
and the lowest foot joint over the whole clip touches height 0.
"""

from __future__ import annotations

import numpy as np
import torch

from k2m_core.body.base import BodyModel
from k2m_core.body.kinematics import FEET
from k2m_core.rotations import axis_angle_to_matrix, matrix_to_axis_angle

CAMERA_TO_Y_UP = np.diag([1.0, -1.0, -1.0])  # 180° about x
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # +90° about x


def _device(body: BodyModel) -> torch.device:
    buffer = next(iter(body.buffers()), None)
    return buffer.device if buffer is not None else torch.device("cpu")


def _check(poses: np.ndarray, transl: np.ndarray, betas: np.ndarray) -> None:
    if poses.ndim != 2 or poses.shape[1] != 72 or len(poses) == 0:
        raise ValueError(f"poses must be (F>0, 72) axis-angle, got {poses.shape}")
    if transl.shape != (len(poses), 3):
        raise ValueError(f"transl must be ({len(poses)}, 3), got {transl.shape}")
    if betas.shape != (10,):
        raise ValueError(f"betas must be (10,), got {betas.shape}")


def rotate_motion(poses, transl, rest_pelvis, rotation) -> tuple[np.ndarray, np.ndarray]:
    """Rotate a whole SMPL motion by ``rotation (3, 3)`` about the world origin.

    SMPL rotates the body about its rest pelvis J0 and then adds ``transl``, so the pelvis sits at
    ``J0 + t``; rotating the scene by R puts it at ``R·(J0 + t)``, i.e. ``t' = R·(J0 + t) − J0``,
    while the global orientation becomes ``R·R0``. Returns float64 ``(poses (F, 72), transl (F, 3))``.
    """
    poses = np.asarray(poses, dtype=np.float64).copy()
    transl = np.asarray(transl, dtype=np.float64)
    rot = np.asarray(rotation, dtype=np.float64)
    j0 = np.asarray(rest_pelvis, dtype=np.float64)
    root = axis_angle_to_matrix(torch.from_numpy(poses[:, :3]))
    poses[:, :3] = matrix_to_axis_angle(torch.from_numpy(rot) @ root).numpy()
    return poses, (j0 + transl) @ rot.T - j0


def camera_to_world(poses, transl, betas, body: BodyModel, up: str = "y"
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Camera-frame SMPL motion → upright world frame with ``up`` = ``"y"`` (BVH) or ``"z"`` (AMASS).

    ``poses (F, 72)`` axis-angle, ``transl (F, 3)`` metres, ``betas (10,)``. Returns float64
    ``(poses (F, 72), transl (F, 3), joints (F, 24, 3))``, the joints computed by ``body``.
    """
    if up not in ("y", "z"):
        raise ValueError(f"up must be 'y' or 'z', got {up!r}")
    poses = np.asarray(poses, dtype=np.float64)
    transl = np.asarray(transl, dtype=np.float64)
    betas = np.asarray(betas, dtype=np.float64)
    _check(poses, transl, betas)
    device = _device(body)
    betas_t = torch.from_numpy(betas).to(device)[None]
    with torch.no_grad():
        rest_pelvis = body.rest_joints(betas_t)[0, 0].cpu().numpy()
    rotation = CAMERA_TO_Y_UP if up == "y" else Y_UP_TO_Z_UP @ CAMERA_TO_Y_UP
    poses, transl = rotate_motion(poses, transl, rest_pelvis, rotation)
    with torch.no_grad():
        joints = body.forward_axis_angle(
            torch.from_numpy(poses).to(device), betas_t.expand(len(poses), 10),
            torch.from_numpy(transl).to(device)).joints.cpu().numpy()
    height = 1 if up == "y" else 2
    horizontal = [axis for axis in range(3) if axis != height]
    shift = np.zeros(3)
    shift[horizontal] = -joints[0, 0, horizontal]
    shift[height] = -joints[:, list(FEET), height].min()
    return poses, transl + shift, joints + shift
