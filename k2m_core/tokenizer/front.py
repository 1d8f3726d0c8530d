"""Each clip seen again from the front: the tokenizer's own 3D, turned to face the camera at its
first frame and projected (`k2m data front`).

Camera-frame tokens carry the view a clip was filmed from, and no caption states it: "walks to the
left" is a walk across the image when filmed from the front, and towards or away from the camera
from the side. Text-to-motion corpora canonicalise every motion to one facing at its first frame
(HumanML3D does) so that "left" is one thing in every clip. This is that canonicalisation done
with what a 2D-only pipeline has: the tokenizer's 3D of each clip. The body is turned about the
camera's vertical axis through its first-frame pelvis until it faces the camera, moved back where
the turn would bring it within `MIN_DEPTH_M` of the camera, and projected with the camera of the
tokenizer's canonical frame. Its keypoints get the confidences the synthetic corpus's estimator
gives on average: `NEAR_CONF`, and `FAR_CONF` for the farther of each left/right pair.

The tokens of these clips start every motion facing the camera, so a text model trained on them
generates in the front view, and any other view is the decoded body turned (`turn_motion`).
The same turn applied to a clip's 3D ground truth keeps it comparable (`turn_points`).

Shapes: B clips, F frames, J joints; camera frame (x right, y down, z forward), metres.
"""

from __future__ import annotations

import torch
from torch import Tensor

from k2m_core.camera import project
from k2m_core.keypoints import MIRROR, NUM_JOINTS
from k2m_core.tokenizer.bodyframe import heading, yaw_matrix
from k2m_core.tokenizer.framing import CANONICAL_SIZE

MIN_DEPTH_M = 2.5  # the nearest the turned pelvis may come to the camera (the corpus's nearest camera)
NEAR_CONF, FAR_CONF = 0.925, 0.70  # the corpus estimator's mean confidence, near and far side
FAR_MARGIN_M = 0.08  # a keypoint this much farther than its left/right twin counts as the far one
FIT = 0.9  # the turned clip's keypoints stay within this share of the frame (as the canonical framing's)
FIT_ITERATIONS = 12


def facing_yaw(global_orient: Tensor) -> Tensor:
    """The yaw ``(B,)`` radians (about the camera's vertical, `k2m_core.generate.view_yaw`'s sense:
    0 faces the camera, −π/2 shows it the body's left side) of camera-frame orientations ``(B, 3, 3)``."""
    return -heading(global_orient)


def turn_points(points: Tensor, yaw: Tensor, pivot: Tensor, offset: Tensor | None = None) -> Tensor:
    """``points (B, F, J, 3)`` turned by ``yaw (B,)`` radians about the camera's vertical axis through
    ``pivot (B, 3)`` (in `facing_yaw`'s sense: a body of facing yaw θ has θ + ``yaw`` after), then
    moved by ``offset (B, 3)`` metres."""
    rotation = yaw_matrix(-yaw)[:, None]  # the camera's y points down: its yaw runs the other way
    centre = pivot[:, None, None]
    turned = (points - centre) @ rotation.transpose(-1, -2) + centre
    return turned if offset is None else turned + offset[:, None, None]


def turn_motion(motion, yaw: Tensor, body):
    """An `SMPLMotion` turned by ``yaw (B,)`` about the vertical through its first-frame pelvis:
    orientations, root and joints together (the view `k2m gen --view` asks of a front-view model)."""
    from k2m_core.tokenizer.model import SMPLMotion

    yaw = yaw.to(motion.joints.dtype)
    pivot = motion.joints[:, 0, 0]
    rotation = yaw_matrix(-yaw)[:, None]  # (B, 1, 3, 3)
    pelvis = turn_points(motion.joints[:, :, :1], yaw, pivot)[:, :, 0]
    rotmats = torch.cat([(rotation @ motion.rotmats[:, :, 0])[:, :, None], motion.rotmats[:, :, 1:]], dim=2)
    transl = pelvis - body.rest_joints(motion.betas)[:, None, 0]
    return SMPLMotion(rotmats=rotmats, betas=motion.betas, transl=transl,
                      joints=turn_points(motion.joints, yaw, pivot))


def seen_from_front(joints: Tensor, keypoints3d: Tensor, orient0: Tensor, valid: Tensor,
                    focal: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Turn decoded bodies to face the camera at their first frame and film them again.

    ``joints (B, F, 24, 3)`` and ``keypoints3d (B, F, 17, 3)`` are decoded, camera frame;
    ``orient0 (B, 3, 3)`` the first frame's global orientation; ``valid (B, F)``; ``focal (B,)`` the
    camera (pixels, principal point at the centre of a `CANONICAL_SIZE` frame). The turned motion is
    centred on the camera axis and moved back until every keypoint of the clip is in `FIT` of the
    frame and the pelvis at least `MIN_DEPTH_M` away (the tokenizer frames each clip anyway: only
    perspective depends on where the body stands).

    Returns keypoints ``(B, F, 18, 3)`` (pixels, confidences, row 17 the frame size), the facing yaw
    ``(B,)`` each clip was filmed in (now 0) and the offset ``(B, 3)`` metres:
    ``turn_points(points, -yaw, joints[:, 0, 0], offset)`` turns anything else (ground truth) the
    same way."""
    yaw = facing_yaw(orient0)
    pivot = joints[:, 0, 0]
    mask = valid[..., None].to(joints.dtype)
    pelvis = turn_points(joints[:, :, :1], -yaw, pivot)[:, :, 0]  # (B, F, 3)
    mean = (pelvis * mask).sum(1) / mask.sum(1).clamp_min(1.0)
    offset = torch.stack([-mean[:, 0], -mean[:, 1], torch.zeros_like(mean[:, 0])], dim=-1)
    nearest = torch.where(valid, pelvis[..., 2], torch.full_like(pelvis[..., 2], float("inf"))).amin(1)
    offset[:, 2] = (MIN_DEPTH_M - nearest).clamp_min(0.0)
    width, height = CANONICAL_SIZE
    centre = torch.tensor([width / 2, height / 2], device=joints.device)
    half = centre * FIT
    turned = turn_points(keypoints3d, -yaw, pivot)
    for _ in range(FIT_ITERATIONS):  # each step moves a clip that overflows back by its overflow
        moved = turned + offset[:, None, None]
        pixels, in_front = project(moved, width, height, focal[:, None, None])
        reach = ((pixels - centre).abs() / half).amax(-1)  # (B, F, 17): 1 = the edge of FIT
        reach = torch.where(in_front, reach, float("inf")).masked_fill(~valid[..., None], 0.0)  # behind: move back
        worst = reach.flatten(1).amax(1)
        if bool((worst <= 1.0 + 1e-3).all()):
            break
        depth = torch.where(valid, moved[..., 0, 2], torch.zeros_like(moved[..., 0, 2])).amax(1)
        offset[:, 2] += torch.where(worst > 1.0, (worst.clamp(max=4.0) - 1.0) * depth.clamp_min(1.0), 0.0)
    moved = turned + offset[:, None, None]
    pixels, in_front = project(moved, width, height, focal[:, None, None])
    depth = moved[..., 2]
    farther = depth > depth[..., list(MIRROR)] + FAR_MARGIN_M
    conf = torch.where(farther, FAR_CONF, NEAR_CONF) * (in_front & valid[..., None])
    out = torch.zeros(*keypoints3d.shape[:2], NUM_JOINTS + 1, 3, dtype=torch.float32, device=joints.device)
    out[..., :NUM_JOINTS, :2] = torch.where(conf[..., None] > 0, pixels, 0.0)
    out[..., :NUM_JOINTS, 2] = conf
    out[..., NUM_JOINTS, :] = torch.tensor([width, height, 1.0], device=joints.device)
    return out, yaw, offset
