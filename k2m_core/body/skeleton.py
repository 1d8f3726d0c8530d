"""The licence-free `skeleton` body model: SMPL's kinematic tree and neutral rest pose, no mesh.

Everything in k2m works with it, and its outputs are valid SMPL parameters: swap in the `smpl`
backend later and the same numbers drive the real mesh.

Betas act through a documented proxy (SMPL's shape space is learned from scans and cannot be
reproduced without the model file):

- β₀ scales the whole body: factor ``1 + 0.04·β₀`` (SMPL's first component moves height by
  roughly ±7 cm per unit on a 1.7 m body);
- β₁ trades limb length against torso length: limbs × ``1 + 0.03·β₁``, torso × ``1 − 0.03·β₁``;
- β₂…β₉ are ignored.

Face keypoints (nose, eyes, ears) are fixed offsets in the head joint's frame: estimates of where
SMPL's face vertices (332, 2800, 6260, 583, 4071) sit relative to the head joint on the neutral
template, good to about 1–2 cm; the `smpl` backend computes them exactly.
"""

from __future__ import annotations

import torch
from torch import Tensor

from k2m_core.body.base import BodyModel, BodyOutput
from k2m_core.body.kinematics import (
    COCO_LIMB_JOINTS, COCO_LIMB_ROWS, HEAD, NUM_JOINTS, PARENTS, forward_kinematics,
)

# docs/design.md#ref-smpl: row 0 is the absolute pelvis position, the others offsets from the parent.
REST_OFFSETS = (
    (-0.001795, -0.223333, 0.028219), (0.069520, -0.091406, -0.006815),
    (-0.067670, -0.090522, -0.004320), (-0.002533, 0.108963, -0.026696),
    (0.034277, -0.375199, -0.004496), (-0.038290, -0.382569, -0.008850),
    (0.005487, 0.135180, 0.001092), (-0.013596, -0.397961, -0.043693),
    (0.015774, -0.398415, -0.042312), (0.001457, 0.052922, 0.025425),
    (0.026358, -0.055791, 0.119288), (-0.025372, -0.048144, 0.123348),
    (-0.002778, 0.213870, -0.042857), (0.078845, 0.121749, -0.034090),
    (-0.081759, 0.118833, -0.038615), (0.005152, 0.064970, 0.051349),
    (0.090977, 0.030469, -0.008868), (-0.096012, 0.032551, -0.009143),
    (0.259612, -0.012772, -0.027456), (-0.253742, -0.013329, -0.021401),
    (0.249234, 0.008986, -0.001171), (-0.255298, 0.007772, -0.005559),
    (0.0840, -0.0082, -0.0149), (-0.0846, -0.0061, -0.0103),
)
# Head-frame offsets (metres, rest orientation: +x subject's left, +y up, +z forward) of COCO
# rows nose, left_eye, right_eye, left_ear, right_ear.
FACE_OFFSETS = (
    (0.000, 0.040, 0.110),
    (0.032, 0.070, 0.085), (-0.032, 0.070, 0.085),
    (0.072, 0.045, -0.015), (-0.072, 0.045, -0.015),
)
# Bones (named by their child joint) that β₁ lengthens (legs, arms) or shortens (spine, neck, collars).
LIMB_BONES = (4, 5, 7, 8, 10, 11, 18, 19, 20, 21, 22, 23)
TORSO_BONES = (3, 6, 9, 12, 13, 14, 15)
HEIGHT_PER_BETA0 = 0.04
PROPORTION_PER_BETA1 = 0.03


class SkeletonBody(BodyModel):
    name = "skeleton"
    has_mesh = False

    def __init__(self) -> None:
        super().__init__()
        offsets = torch.tensor(REST_OFFSETS, dtype=torch.float32)
        self.register_buffer("rest_offsets", offsets, persistent=False)
        self.register_buffer("face_offsets", torch.tensor(FACE_OFFSETS, dtype=torch.float32), persistent=False)
        limb = torch.zeros(NUM_JOINTS)
        limb[list(LIMB_BONES)] = 1.0
        limb[list(TORSO_BONES)] = -1.0
        self.register_buffer("proportion_sign", limb, persistent=False)

    def _scales(self, betas: Tensor) -> tuple[Tensor, Tensor]:
        """Per-bone length factors ``(B, 24)`` and the overall factor ``(B,)``."""
        overall = (1 + HEIGHT_PER_BETA0 * betas[:, 0]).clamp_min(0.5)
        proportion = 1 + PROPORTION_PER_BETA1 * betas[:, 1:2] * self.proportion_sign
        return overall[:, None] * proportion.clamp_min(0.5), overall

    def rest_joints(self, betas: Tensor) -> Tensor:
        bone_scale, _ = self._scales(betas)
        offsets = self.rest_offsets.to(betas.dtype) * bone_scale[..., None]
        joints = [offsets[:, 0]]
        for j in range(1, NUM_JOINTS):
            joints.append(joints[PARENTS[j]] + offsets[:, j])
        return torch.stack(joints, dim=1)

    def forward(self, rotmats: Tensor, betas: Tensor, transl: Tensor, *,
                with_vertices: bool = False) -> BodyOutput:
        joints, world_rot = forward_kinematics(rotmats, self.rest_joints(betas))
        _, overall = self._scales(betas)
        face = self.face_offsets.to(rotmats.dtype) * overall[:, None, None]  # (B, 5, 3)
        face = joints[:, HEAD:HEAD + 1] + (world_rot[:, HEAD:HEAD + 1] @ face[..., None])[..., 0]
        joints = joints + transl[:, None]
        keypoints = torch.empty(joints.shape[0], 17, 3, dtype=joints.dtype, device=joints.device)
        keypoints[:, :5] = face + transl[:, None]
        keypoints[:, list(COCO_LIMB_ROWS)] = joints[:, list(COCO_LIMB_JOINTS)]
        return BodyOutput(joints=joints, keypoints=keypoints)
