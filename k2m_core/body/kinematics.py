"""The SMPL kinematic tree and batched forward kinematics, shared by every body-model backend."""

from __future__ import annotations

import torch
from torch import Tensor

JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hand", "right_hand",
)
PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21)
NUM_JOINTS = 24
HEAD = 15
FEET = (7, 8, 10, 11)  # ankles and toes: the joints that touch the ground
# The 24 joints with left and right exchanged (1 L_hip ↔ 2 R_hip, …, 22 L_hand ↔ 23 R_hand).
MIRROR = (0, 2, 1, 3, 5, 4, 6, 8, 7, 9, 11, 10, 12, 14, 13, 15, 17, 16, 19, 18, 21, 20, 23, 22)

# COCO-17 limb keypoints taken directly from SMPL joints (docs/design.md#body-models); rows 0–4 (face) come from
# vertices (smpl backend) or head-frame offsets (skeleton backend).
COCO_FROM_JOINT = {5: 16, 6: 17, 7: 18, 8: 19, 9: 20, 10: 21, 11: 1, 12: 2, 13: 4, 14: 5, 15: 7, 16: 8}
COCO_LIMB_ROWS = tuple(COCO_FROM_JOINT)
COCO_LIMB_JOINTS = tuple(COCO_FROM_JOINT.values())


def forward_kinematics(rotmats: Tensor, rest_joints: Tensor) -> tuple[Tensor, Tensor]:
    """Pose the tree.

    rotmats ``(B, 24, 3, 3)``: local joint rotations (joint 0 = global orientation).
    rest_joints ``(B, 24, 3)``: absolute rest-pose joint positions.
    Returns ``joints (B, 24, 3)`` (posed, before translation) and ``world_rot (B, 24, 3, 3)``.
    """
    offsets = rest_joints.clone()
    offsets[:, 1:] = rest_joints[:, 1:] - rest_joints[:, list(PARENTS[1:])]
    world_rot = [rotmats[:, 0]]
    joints = [rest_joints[:, 0]]
    for j in range(1, NUM_JOINTS):
        p = PARENTS[j]
        joints.append(joints[p] + (world_rot[p] @ offsets[:, j, :, None])[..., 0])
        world_rot.append(world_rot[p] @ rotmats[:, j])
    return torch.stack(joints, dim=1), torch.stack(world_rot, dim=1)
