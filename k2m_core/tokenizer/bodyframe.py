"""View-free motion: the body's own frame, and the per-clip view that places it before a camera.

Text-to-motion corpora canonicalise every motion to one facing at its first frame (HumanML3D does),
so that "to the left" is one direction in every clip. With ``tokens = "body"`` the tokenizer does
the same inside. Its decoder describes each frame the way HumanML3D's features do, by what can be
seen locally and does not depend on the camera:

    yaw rate ω_t (how far the body turned since the last frame), the step (x, z) the root made
    in the body's own heading frame, the root's height, and the orientation with its heading removed

`integrate` sums them into a motion in the **body frame** (y up, the first frame's root at the
origin, its hips facing +z). Tokens then hold turns and steps, never the facing towards the camera,
so a turn to the left is the same tokens from every view and a walk forward the same steps
whether it goes across the image or towards the camera. A small continuous **view** per clip,
predicted from the encoder's features at the first token and never quantised, places the motion
before the clip's camera for the losses:

    view (B, 6) = (yaw direction a, b;  elevation;  u0, v0, log s0)
    X_camera = R(view) · X_body + root0_camera,     R = R_x(π) · R_x(elevation) · R_y(yaw)

with ``root0_camera`` the first frame's root from its image position and scale (u0, v0, log s0:
`k2m_core.camera.uvs_to_point`, as camera-frame tokens decode every frame's). R_x(π) turns the body
frame's y-up into the camera's y-down, so yaw 0, elevation 0 is a body facing the camera upright:
the `front_view` generation decodes with.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

VIEW_SIZE = 6
YAW_STEP = 0.05  # radians per frame for a unit of the decoder's yaw-rate output
ROOT_STEP = 0.05  # metres per frame for a unit of its step output


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


def integrate(orient: Tensor, yaw_rate: Tensor, step: Tensor, height: Tensor) -> tuple[Tensor, Tensor]:
    """Per-frame body-frame features → the motion in the body frame.

    ``orient (B, F, 3, 3)``: each frame's root orientation; only its lean counts, its heading is
    removed. ``yaw_rate (B, F)``: radians turned from frame t−1 to t (frame 0's is unused).
    ``step (B, F, 2)``: the root's move (x, z) from frame t−1 to t in metres, in frame t's heading
    frame (frame 0's is unused). ``height (B, F)``: the root's height in metres.

    Returns ``global_orient (B, F, 3, 3)`` with heading θ_t = ω_1 + … + ω_t, and ``root (B, F, 3)``
    with the first frame's at the origin: whatever the inputs, frame 0 faces +z from the origin."""
    lean = yaw_matrix(-heading(orient)) @ orient
    turned = F.pad(yaw_rate[:, 1:], (1, 0)).cumsum(1)  # (B, F)
    facing = yaw_matrix(turned)  # (B, F, 3, 3)
    moves = F.pad(step[:, 1:], (0, 0, 1, 0))  # (B, F, 2)
    moves = torch.stack([moves[..., 0], torch.zeros_like(moves[..., 0]), moves[..., 1]], dim=-1)
    travel = (facing @ moves[..., None])[..., 0].cumsum(1)
    rise = height - height[:, :1]
    root = torch.stack([travel[..., 0], rise, travel[..., 2]], dim=-1)
    return facing @ lean, root


def view_rotation(view: Tensor) -> Tensor:
    """``view (B, 6)`` → the rotation ``(B, 3, 3)`` from the body frame to the camera frame."""
    yaw = torch.atan2(view[:, 1], view[:, 0])
    flip = pitch_matrix(torch.full_like(yaw, math.pi))
    return flip @ pitch_matrix(view[:, 2]) @ yaw_matrix(yaw)


def front_view(batch: int, log_scale: float, device=None, yaw: Tensor | None = None) -> Tensor:
    """The view generation decodes with ``(batch, 6)``: facing the camera upright, the first root
    at the image centre with scale ``log_scale`` (normalised units per metre). ``yaw (batch,)``
    radians turns the body about its up axis first, in the synthetic camera rig's sense: −π/2
    shows the camera its left side, π its back."""
    view = torch.zeros(batch, VIEW_SIZE, device=device)
    view[:, 0], view[:, 5] = 1.0, log_scale
    if yaw is not None:
        yaw = torch.as_tensor(yaw, dtype=view.dtype, device=view.device).expand(batch)
        view[:, 0], view[:, 1] = yaw.cos(), yaw.sin()
    return view
