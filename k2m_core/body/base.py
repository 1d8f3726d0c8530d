"""The one interface every body model offers (docs/design.md#body-models)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from torch import Tensor

from k2m_core.rotations import axis_angle_to_matrix


@dataclass
class BodyOutput:
    joints: Tensor  # (B, 24, 3) SMPL joints, metres, in the frame of global_orient/transl
    keypoints: Tensor  # (B, 17, 3) COCO-17 keypoints in 3D
    vertices: Tensor | None = None  # (B, V, 3) where the backend has a mesh and it was asked for


class BodyModel(torch.nn.Module, ABC):
    """SMPL parameters → joints, COCO-17 keypoints (and vertices where a mesh exists).

    Subclasses implement `forward` on rotation matrices and `rest_joints`. ``transl`` has SMPL's
    meaning: it is added to every posed point, so the pelvis sits at ``rest_pelvis + transl``
    under identity rotation.
    """

    name: str = "body"
    has_mesh: bool = False
    faces: Tensor | None = None

    @abstractmethod
    def rest_joints(self, betas: Tensor) -> Tensor:
        """``betas (B, 10)`` → shaped rest-pose joints ``(B, 24, 3)`` (T-pose, y up)."""

    @abstractmethod
    def forward(self, rotmats: Tensor, betas: Tensor, transl: Tensor, *,
                with_vertices: bool = False) -> BodyOutput:
        """``rotmats (B, 24, 3, 3)``, ``betas (B, 10)``, ``transl (B, 3)``."""

    def forward_axis_angle(self, poses: Tensor, betas: Tensor, transl: Tensor, *,
                           with_vertices: bool = False) -> BodyOutput:
        """SMPL's 72 axis-angle numbers ``(B, 72)`` (global_orient then body_pose) instead of matrices."""
        rotmats = axis_angle_to_matrix(poses.reshape(poses.shape[0], 24, 3))
        return self(rotmats, betas, transl, with_vertices=with_vertices)
