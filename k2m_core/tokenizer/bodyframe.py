"""View-free motion: the body's own frame, and the per-clip view that places it before a camera.

Text-to-motion corpora canonicalise every motion to one facing at its first frame (HumanML3D does),
so that "to the left" is one direction in every clip. With ``tokens = "body"`` the tokenizer does
the same inside: its decoder's motion is put in a **body frame** (y up, the first frame's root at the
origin, its hips facing +z), and a small continuous **view** per clip, predicted from the encoder's
features and never quantised, places that motion before the clip's camera:

    view (B, 6) = (yaw direction a, b;  elevation;  u0, v0, log s0)
    X_camera = R(view) · X_body + root0_camera,     R = R_x(π) · R_x(elevation) · R_y(yaw)

with ``root0_camera`` the first frame's root from its image position and scale (u0, v0, log s0:
`k2m_core.camera.uvs_to_point`, as camera-frame tokens decode every frame's). R_x(π) turns the body
frame's y-up into the camera's y-down, so yaw 0, elevation 0 is a body facing the camera upright:
the `front_view` generation decodes with. Whatever facing the decoder outputs at the first frame is
removed (`to_body_frame`), so only the view can say where the camera is.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

VIEW_SIZE = 6


def yaw_matrix(angle: Tensor) -> Tensor:
    """Rotations about y by ``angle (...)`` radians → ``(..., 3, 3)``."""
    c, s = angle.cos(), angle.sin()
    zero, one = torch.zeros_like(c), torch.ones_like(c)
    return torch.stack([c, zero, s, zero, one, zero, -s, zero, c], -1).unflatten(-1, (3, 3))


def pitch_matrix(angle: Tensor) -> Tensor:
    """Rotations about x by ``angle (...)`` radians → ``(..., 3, 3)``."""
    c, s = angle.cos(), angle.sin()
    zero, one = torch.zeros_like(c), torch.ones_like(c)
    return torch.stack([one, zero, zero, zero, c, -s, zero, s, c], -1).unflatten(-1, (3, 3))


def heading(global_orient: Tensor) -> Tensor:
    """Heading (radians about y) of orientations ``(..., 3, 3)`` from the hip axis (the body's x,
    horizontal in every pose but lying on the side): 0 for the rest orientation, and
    ``heading(yaw_matrix(θ) @ R) = heading(R) + θ``."""
    hips = global_orient[..., :, 0]  # the body's x axis
    return torch.atan2(-hips[..., 2], hips[..., 0])


def to_body_frame(global_orient: Tensor, root: Tensor) -> tuple[Tensor, Tensor]:
    """Motion ``global_orient (B, F, 3, 3)``, ``root (B, F, 3)`` (y up) turned about y so that the
    first frame's heading is 0, and moved so that its first root is at the origin: the same motion
    whatever way it faced and wherever it started."""
    undo = yaw_matrix(-heading(global_orient[:, 0]))[:, None]  # (B, 1, 3, 3)
    return undo @ global_orient, ((root - root[:, :1])[..., None, :] @ undo.transpose(-1, -2))[..., 0, :]


def view_rotation(view: Tensor) -> Tensor:
    """``view (B, 6)`` → the rotation ``(B, 3, 3)`` from the body frame to the camera frame."""
    yaw = torch.atan2(view[:, 1], view[:, 0])
    flip = pitch_matrix(torch.full_like(yaw, math.pi))
    return flip @ pitch_matrix(view[:, 2]) @ yaw_matrix(yaw)


def front_view(batch: int, log_scale: float, device=None) -> Tensor:
    """The view generation decodes with ``(batch, 6)``: facing the camera upright, the first root
    at the image centre with scale ``log_scale`` (normalised units per metre)."""
    view = torch.zeros(batch, VIEW_SIZE, device=device)
    view[:, 0], view[:, 5] = 1.0, log_scale
    return view
