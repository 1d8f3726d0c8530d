"""The seven training losses of the MotionVQ-Adapter (paper eqs. 2, 4–9) and one depth prior,
as pure functions.

Units. Geometric losses compare keypoints in **pixels at 1080p scale**: normalised image units
(`k2m_core.keypoints.normalise_for_encoder`, i.e. ``(p − centre) / (max(W, H)/2)``) times 960, the
half-extent of a 1920×1080 frame. A 1080p clip is therefore compared in its own pixels, and a 4K or
640×480 clip in the pixels it would have at 1080p, so the paper's weights (A.4) apply to every
image size and clips of different sizes weigh the same. `to_reference_pixels` does the conversion.

Normalisation (the paper writes norms and sums and leaves it open). Every geometric loss is a
**mean over the entries its mask keeps** of the per-keypoint L1 distance ``|Δu| + |Δv|``, so

- `reconstruction_loss` reads as "mean L1 pixel error per keypoint" (the paper's converged
  reconstruction loss, 6.7 in Table 5a, is of that magnitude);
- velocity, smoothness and boundary terms share its units, and the paper's weights keep their
  intended ratios (λ_vel = λ_rec; λ_smooth is 200× weaker than λ_vel on the same quantity: a gentle
  regulariser; the boundary term is a light extra pull on the first and last valid frame);
- the values do not depend on batch size, clip length or the number of confident keypoints.

`commitment_loss` follows eq. 2 literally: the squared L2 *norm* of the residual error (summed over
latent dimensions), averaged over valid positions; the quantiser sums it over layers. With 512-d
latents it starts at the order of λ_rec·L_rec, as A.4 asks of the two dominant terms.
`pose_limit_loss` sums the hinge over the 23×3 axis-angle components and averages over frames;
`shape_loss` averages over clips.

One regulariser the paper lacks, `depth_speed_loss` (λ_depth; 0 restores the paper's objective
exactly): the root's depth is the log-scale s of the translation parameterisation, and a change of
s by 0.2 % — about 1 px of body size — is 2–6 cm of depth at 10–30 m. The 2D losses barely see it,
so without a prior the decoder moves depth to absorb pose errors and a person standing still
wanders by metres. The prior charges for every change of s (L1 of its frame-to-frame difference),
weakly, so that a real approach, which shrinks or grows the whole body consistently over many
frames, still wins. At the default weight it leaves the 2D fit alone and barely slows the wander;
the low-pass on decoded depth (`MotionVQAdapter`, `depth_smoothing`) is what removes jitter.

A second one, `mirror_pull_loss` (λ_mirror, off unless set): seen from the side, a body facing
either way along the image's horizontal fits the 2D keypoints nearly as well (only the face and
the bend of knees and elbows tell them apart), and a decoder trained from scratch settles every
side view on the facing it found first, so half of them face backwards. The model decodes each
training clip mirrored too and mirrors the result back (`MotionVQAdapter`); where that twin fits
the clip's 2D better, the decoded joints are pulled to it. It is SMPLify's "fit both facings, keep
the better" turned into a training signal. It needs the far side of the body in the loss: on the
synthetic corpus, whose estimator gives it confidence 0.5–0.9, it worked with ``conf_threshold``
0.5 (side-view facing error 101° → 5°) and not at the default 0.8 (see the k2m-mini model card).

The 2D pose prior (λ_prior; `k2m_core.tokenizer.views`) supervises depth itself: the decoded body,
turned to a random azimuth and projected, must look like one of the dataset's own 2D poses to a
discriminator trained beside the tokenizer. All projections, its and the seven terms', use each
clip's own camera (`MotionVQAdapter`, ``focal_source``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from k2m_core.keypoints import half_extent

REFERENCE_HALF_EXTENT = 960.0  # max(W, H)/2 of a 1920×1080 frame: normalised units → 1080p pixels


def to_reference_pixels(pixels: Tensor, width: Tensor, height: Tensor) -> Tensor:
    """``pixels (B, ..., 2)`` in a ``width × height`` image (``(B,)`` each) → 1080p-scale pixels
    about the image centre: ``(p − (W/2, H/2)) / (max(W, H)/2) · 960``."""
    shape = (-1,) + (1,) * (pixels.dim() - 2)
    width, height = width.reshape(shape), height.reshape(shape)
    centre = torch.stack([width, height], dim=-1) / 2
    half = half_extent(width, height)[..., None]
    return (pixels - centre) / half * REFERENCE_HALF_EXTENT


def _masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` where ``mask`` (same shape) is True; 0 when nothing is kept."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


def _l1(a: Tensor, b: Tensor) -> Tensor:
    """Per-keypoint L1 distance ``|Δu| + |Δv|``: ``(..., 2)`` → ``(...)``."""
    return (a - b).abs().sum(-1)


def commitment_loss(residual: Tensor, quantized: Tensor, mask: Tensor) -> Tensor:
    """One layer of eq. 2: ``‖r − sg[a]‖²₂`` averaged over the positions where ``mask``.

    residual, quantized ``(B, T, D)``; mask ``(B, T)``. Gradients reach ``residual`` only."""
    return _masked_mean((residual - quantized.detach()).pow(2).sum(-1), mask)


def reconstruction_loss(pred: Tensor, true: Tensor, mask: Tensor) -> Tensor:
    """Eq. 4: ``‖M ⊙ true − M ⊙ pred‖₁`` per keypoint, averaged over confident keypoints.

    pred, true ``(B, F, J, 2)``; mask ``(B, F, J)`` (confident ∧ valid frame ∧ in front)."""
    return _masked_mean(_l1(pred, true), mask)


def velocity_mask(mask: Tensor) -> Tensor:
    """Eq. 5's ``M^t``: keypoint j at step t−1→t counts only if confident in both frames.
    ``(B, F, J)`` → ``(B, F−1, J)``."""
    return mask[:, 1:] & mask[:, :-1]


def velocity_loss(pred: Tensor, true: Tensor, mask: Tensor) -> Tensor:
    """Eq. 5: L1 between true and predicted frame-to-frame displacements, averaged over the
    keypoint-steps `velocity_mask(mask)` keeps. pred, true ``(B, F, J, 2)``; mask ``(B, F, J)``."""
    pred_vel, true_vel = pred[:, 1:] - pred[:, :-1], true[:, 1:] - true[:, :-1]
    return _masked_mean(_l1(pred_vel, true_vel), velocity_mask(mask))


def smoothness_loss(pred: Tensor, mask: Tensor) -> Tensor:
    """Eq. 6: L1 length of predicted displacements ``‖pred_t − pred_{t−1}‖₁``, averaged over
    keypoint-steps whose two frames are both kept by ``mask (B, F, J)`` — valid frames (and
    keypoints in front of the camera); the confidence of the input plays no role here."""
    return _masked_mean(_l1(pred[:, 1:], pred[:, :-1]), velocity_mask(mask))


def boundary_frames(valid: Tensor) -> tuple[Tensor, Tensor]:
    """Index of the first and last valid frame of each clip: ``valid (B, F)`` → ``(B,), (B,)``
    (0 for a clip with no valid frame; its mask is empty anyway)."""
    frames = valid.shape[1]
    first = valid.int().argmax(dim=1)
    last = frames - 1 - valid.flip(1).int().argmax(dim=1)
    return first, last


def boundary_loss(pred: Tensor, true: Tensor, mask: Tensor, valid: Tensor) -> Tensor:
    """Eq. 7: masked L1 on the first and last *valid* frame of each clip (padding is not a
    boundary), the two frames' means summed. pred, true ``(B, F, J, 2)``; mask ``(B, F, J)``;
    valid ``(B, F)``."""
    batch = torch.arange(pred.shape[0], device=pred.device)
    total = pred.new_zeros(())
    for frame in boundary_frames(valid):
        total = total + _masked_mean(_l1(pred[batch, frame], true[batch, frame]), mask[batch, frame])
    return total


def pose_limit_loss(axis_angle: Tensor, theta_min: Tensor, theta_max: Tensor, valid: Tensor) -> Tensor:
    """Eq. 8: ``max(0, θ − θ_max) + max(0, θ_min − θ)`` summed over joints and axes, averaged over
    valid frames. axis_angle ``(B, F, 23, 3)`` (body joints, not the global orientation);
    theta_min, theta_max ``(23, 3)`` radians; valid ``(B, F)``."""
    hinge = (axis_angle - theta_max).clamp_min(0) + (theta_min - axis_angle).clamp_min(0)
    return _masked_mean(hinge.sum(dim=(-1, -2)), valid)


def depth_speed_loss(log_scale: Tensor, valid: Tensor) -> Tensor:
    """L1 of the root log-scale's frame-to-frame change ``|s_t − s_{t−1}|``, averaged over the
    steps whose two frames are valid. log_scale ``(B, F)``; valid ``(B, F)``."""
    return _masked_mean((log_scale[:, 1:] - log_scale[:, :-1]).abs(), valid[:, 1:] & valid[:, :-1])


def clip_pixel_error(pred: Tensor, true: Tensor, mask: Tensor) -> Tensor:
    """Per clip, the mean L1 pixel error over the keypoints where ``mask``: pred, true
    ``(B, F, J, 2)``, mask ``(B, F, J)`` → ``(B,)`` (0 for a clip with nothing kept)."""
    mask = mask.to(pred.dtype)
    return (_l1(pred, true) * mask).sum((1, 2)) / mask.sum((1, 2)).clamp_min(1.0)


def mirror_pull_loss(joints: Tensor, twin_joints: Tensor, pull: Tensor, valid: Tensor) -> Tensor:
    """Mean distance (metres) of the root-relative joints ``(B, F, 24, 3)`` from their mirrored
    twin's, over the valid frames of the clips where ``pull (B,)``, divided by all valid frames (so
    the term shrinks as fewer clips need pulling). Gradients reach ``joints`` only."""
    own = joints - joints[:, :, :1]
    target = (twin_joints - twin_joints[:, :, :1]).detach()
    distance = (own - target).norm(dim=-1).mean(-1)  # (B, F)
    kept = (valid & pull[:, None]).to(distance.dtype)
    return (distance * kept).sum() / valid.sum().clamp_min(1)


def shape_loss(betas: Tensor, tau: float) -> Tensor:
    """Eq. 9: ``max(0, 0.1·Σᵢ|βᵢ| − τ)`` per clip, averaged over clips. betas ``(B, 10)``."""
    return (0.1 * betas.abs().sum(-1) - tau).clamp_min(0).mean()
