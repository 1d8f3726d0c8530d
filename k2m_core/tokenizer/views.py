"""Geometric self-supervision from random views: what a decoded body would look like from elsewhere.

2D keypoints from one camera leave each limb's depth free: a body bent towards the camera and one
bent away project alike. Seen from another side the two differ, and only one of them looks like a
person (unsupervised 2D→3D lifting: Drover et al. 2018; Chen et al. 2019, "Unsupervised 3D pose
estimation with geometric self-supervision"; ElePose, Wandt et al. 2022). The **2D pose prior**
(`PosePrior`) uses that: a small discriminator learns to tell the dataset's own 2D poses from
projections of decoded bodies turned to random views, and the tokenizer is trained to make the
latter indistinguishable (least-squares GAN). The prior sees poses normalised for position and size
(`normalise_pose`), so only the shape of the pose counts. (A random-view cycle — re-encoding the
turned projection and asking for the turned body back — was built and measured too, and removed:
the k2m-mini model card's "3D from 2D" section has the numbers.)

Rotations turn the body about the camera's vertical axis through the clip's mean pelvis (azimuth
uniform over the circle) and tilt it by a small elevation, so the root's path turns with the body.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from k2m_core.keypoints import HIPS
from k2m_core.tokenizer.bodyframe import pitch_matrix, yaw_matrix

# The joints the prior looks at: the nose and the 12 limb keypoints of COCO-17 (eyes and ears are
# often missing from one side, and add little about depth).
PRIOR_JOINTS = (0, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)


def random_rotations(batch: int, max_elevation: float, *, generator: torch.Generator | None = None,
                     device=None) -> Tensor:
    """``(batch, 3, 3)`` camera-frame rotations: a uniform azimuth about the camera's y axis, then
    an elevation uniform in ±``max_elevation`` radians about its x axis."""
    azimuth = (torch.rand(batch, generator=generator, device=device) * 2 - 1) * math.pi
    elevation = (torch.rand(batch, generator=generator, device=device) * 2 - 1) * max_elevation
    return pitch_matrix(elevation) @ yaw_matrix(azimuth)


def clip_pivot(pelvis: Tensor, valid: Tensor) -> Tensor:
    """Mean pelvis of each clip over its valid frames: ``pelvis (B, F, 3)``, ``valid (B, F)`` → ``(B, 3)``."""
    weights = valid.to(pelvis.dtype)[..., None]
    return (pelvis * weights).sum(1) / weights.sum(1).clamp_min(1.0)


def rotate_about(points: Tensor, rotation: Tensor, pivot: Tensor) -> Tensor:
    """``points (B, F, J, 3)`` turned by ``rotation (B, 3, 3)`` about ``pivot (B, 3)``."""
    centre = pivot[:, None, None]
    return (points - centre) @ rotation[:, None].transpose(-1, -2) + centre


def normalise_pose(pixels: Tensor) -> Tensor:
    """2D poses ``(..., 17, 2)`` → ``(..., 2·len(PRIOR_JOINTS))``: the prior's joints about the
    mid-hip, divided by their root-mean-square distance from it (so position and size drop out)."""
    centre = pixels[..., list(HIPS), :].mean(-2, keepdim=True)
    joints = pixels[..., list(PRIOR_JOINTS), :] - centre
    scale = joints.pow(2).sum(-1).mean(-1, keepdim=True).sqrt().clamp_min(1e-6)
    return (joints / scale[..., None]).flatten(-2)


class PosePrior(nn.Module):
    """Discriminator on normalised 2D poses: ``(N, 2·len(PRIOR_JOINTS))`` → ``(N,)`` scores
    (about 1 for the dataset's poses, 0 for implausible ones once trained)."""

    def __init__(self, width: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2 * len(PRIOR_JOINTS), width), nn.LeakyReLU(0.2),
                                 nn.Linear(width, width), nn.LeakyReLU(0.2), nn.Linear(width, 1))

    def forward(self, poses: Tensor) -> Tensor:
        return self.net(poses)[..., 0]

    def frozen(self, poses: Tensor) -> Tensor:
        """The scores with the prior's weights treated as constants: gradients reach ``poses`` only,
        so the tokenizer's term never trains the discriminator."""
        params = {name: p.detach() for name, p in self.named_parameters()}
        return torch.func.functional_call(self, params, (poses,))


def prior_losses(prior: PosePrior, real: Tensor, fake: Tensor) -> tuple[Tensor, Tensor]:
    """Least-squares GAN terms: the discriminator's ``(D(real) − 1)² + D(sg[fake])²`` (trains the
    prior only) and the tokenizer's ``(D_frozen(fake) − 1)²`` (trains the tokenizer only), each a
    mean; ``real (N, D)``, ``fake (M, D)`` normalised poses. Empty inputs give 0."""
    zero = fake.new_zeros(())
    if len(real) == 0 or len(fake) == 0:
        return zero, zero
    discriminator = (prior(real) - 1).pow(2).mean() + prior(fake.detach()).pow(2).mean()
    tokenizer = (prior.frozen(fake) - 1).pow(2).mean()
    return discriminator, tokenizer

