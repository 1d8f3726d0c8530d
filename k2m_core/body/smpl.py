"""The `smpl` body model: the real SMPL mesh from the user's model file (docs/design.md#body-models).

It equals ``smplx.SMPL``'s forward pass, but by default computes only what training needs, without
skinning the 6,890-vertex mesh:

- joints: the regressor is linear in the shaped template, so the rest joints are
  ``J_template + J_shapedirs·β``, precomputed at load; forward kinematics poses them;
- COCO's 5 face keypoints: vertices 332, 2800, 6260, 583, 4071, shaped, given their pose blend
  shapes and skinned alone;
- COCO's limb keypoints: joints (`kinematics.COCO_FROM_JOINT`).

``with_vertices=True`` skins the whole mesh as SMPL does. The model's arrays are buffers (move them
with ``.to(device)``/``.to(dtype)``) and are not saved in state dicts: checkpoints never carry the
licensed model.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import Tensor

from k2m_core.body.base import BodyModel, BodyOutput
from k2m_core.body.kinematics import COCO_FROM_JOINT, NUM_JOINTS, forward_kinematics
from k2m_core.body.smpl_file import (
    FACE_VERTEX_IDS, NUM_BETAS, NUM_POSE_FEATURES, SMPLModelData, load_smpl_model,
)

NUM_FACE = len(FACE_VERTEX_IDS)
# Keypoint k is row KEYPOINT_SOURCE[k] of cat(joints (24), face vertices (5)).
KEYPOINT_SOURCE = tuple(NUM_JOINTS + k if k < NUM_FACE else COCO_FROM_JOINT[k] for k in range(17))


def skin(points: Tensor, weights: Tensor, world_rot: Tensor, joints: Tensor,
         rest_joints: Tensor) -> Tensor:
    """Linear blend skinning of rest-pose ``points (B, V, 3)`` (blend shapes applied) with
    ``weights (V, 24)``. Joint j moves a point x rigidly to ``world_rot_j (x − rest_j) + joint_j``;
    the point moves by the weighted sum of those transforms."""
    batch, num_joints = world_rot.shape[:2]
    joint_transl = joints - (world_rot @ rest_joints[..., None])[..., 0]  # (B, 24, 3)
    # Rotation and translation blended together: one matmul instead of two einsums.
    transform = torch.cat([world_rot.reshape(batch, num_joints, 9), joint_transl], dim=-1)  # (B, 24, 12)
    blended = weights @ transform  # (B, V, 12)
    rot, transl = blended[..., :9].view(batch, -1, 3, 3), blended[..., 9:]
    return (rot @ points[..., None])[..., 0] + transl


class SMPLBody(BodyModel):
    name = "smpl"
    has_mesh = True

    def __init__(self, model: SMPLModelData, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()

        def buffer(name: str, array: np.ndarray) -> None:
            self.register_buffer(name, torch.as_tensor(np.ascontiguousarray(array), dtype=dtype),
                                 persistent=False)

        num_vertices = model.v_template.shape[0]
        shapedirs = model.shapedirs[:, :, :NUM_BETAS]  # (V, 3, 10)
        face = list(FACE_VERTEX_IDS)
        # Fast path, precomputed in float64: the shaped rest joints and face vertices are one
        # affine map of β, so rest points (B, 29, 3) = template + β @ shape_basis.
        J_template = model.J_regressor @ model.v_template  # (24, 3)
        J_shapedirs = np.einsum("jv,vkl->jkl", model.J_regressor, shapedirs)  # (24, 3, 10)
        rest_template = np.concatenate([J_template, model.v_template[face]])  # (29, 3)
        rest_shapedirs = np.concatenate([J_shapedirs, shapedirs[face]])  # (29, 3, 10)
        buffer("rest_template", rest_template.reshape(-1))  # (87,)
        buffer("rest_shape_basis", rest_shapedirs.reshape(-1, NUM_BETAS).T)  # (10, 87)
        buffer("face_posedirs", model.posedirs[face].reshape(-1, NUM_POSE_FEATURES).T)  # (207, 15)
        buffer("face_weights", model.weights[face])  # (5, 24)
        # The whole mesh, for with_vertices=True (smplx's layout).
        buffer("v_template", model.v_template)  # (V, 3)
        buffer("shape_basis", shapedirs.reshape(-1, NUM_BETAS).T)  # (10, V·3)
        buffer("posedirs", model.posedirs.reshape(num_vertices * 3, NUM_POSE_FEATURES).T)  # (207, V·3)
        buffer("lbs_weights", model.weights)  # (V, 24)
        self.register_buffer("faces_tensor", torch.as_tensor(model.faces, dtype=torch.long),
                             persistent=False)
        self.register_buffer("keypoint_source", torch.tensor(KEYPOINT_SOURCE), persistent=False)

    @classmethod
    def from_path(cls, path: str | os.PathLike, dtype: torch.dtype = torch.float32) -> SMPLBody:
        """A SMPL ``.pkl``/``.npz`` file or a folder holding one (`smpl_file.find_model_file`)."""
        return cls(load_smpl_model(path), dtype=dtype)

    @property
    def faces(self) -> Tensor:  # (F, 3) vertex indices
        return self.faces_tensor

    def _rest_points(self, betas: Tensor) -> Tensor:
        """Shaped rest joints and face vertices ``(B, 29, 3)``."""
        basis = self.rest_shape_basis.to(betas.dtype)
        points = torch.addmm(self.rest_template.to(betas.dtype), betas[:, :NUM_BETAS], basis)
        return points.view(-1, NUM_JOINTS + NUM_FACE, 3)

    def rest_joints(self, betas: Tensor) -> Tensor:
        return self._rest_points(betas)[:, :NUM_JOINTS]

    def forward(self, rotmats: Tensor, betas: Tensor, transl: Tensor, *,
                with_vertices: bool = False) -> BodyOutput:
        batch, dtype = rotmats.shape[0], rotmats.dtype
        betas = betas.to(dtype)
        rest = self._rest_points(betas)
        rest_joints = rest[:, :NUM_JOINTS]
        joints, world_rot = forward_kinematics(rotmats, rest_joints)
        # SMPL's pose feature: (R − I) of the 23 non-root joints, flattened (207).
        eye = torch.eye(3, dtype=dtype, device=rotmats.device)
        pose_feature = (rotmats[:, 1:] - eye).reshape(batch, NUM_POSE_FEATURES)

        face_offsets = (pose_feature @ self.face_posedirs.to(dtype)).view(batch, NUM_FACE, 3)
        face = skin(rest[:, NUM_JOINTS:] + face_offsets, self.face_weights.to(dtype),
                    world_rot, joints, rest_joints)
        points = torch.cat([joints, face], dim=1) + transl[:, None]  # (B, 29, 3)

        vertices = None
        if with_vertices:
            v_shaped = self.v_template.to(dtype) + (betas[:, :NUM_BETAS] @ self.shape_basis.to(dtype)).view(
                batch, -1, 3)
            v_posed = v_shaped + (pose_feature @ self.posedirs.to(dtype)).view(batch, -1, 3)
            vertices = skin(v_posed, self.lbs_weights.to(dtype), world_rot, joints, rest_joints)
            vertices = vertices + transl[:, None]
        return BodyOutput(joints=points[:, :NUM_JOINTS], keypoints=points[:, self.keypoint_source],
                          vertices=vertices)
