"""Physical plausibility of SMPL motions without learned weights (`k2m eval physics`, docs/design.md#evaluation).

Every motion is first resampled to 20 fps (slerp), so numbers from 30 fps `k2m gen` output, 60 or
120 fps AMASS files and others are comparable, and posed with the body model (joints in metres,
z-up world frame, the ground is the plane z = 0 as in AMASS-style files and k2m's exports).

- ``skating_ratio``: share of frame transitions t → t+1 in which a foot joint (ankles and toes,
  SMPL 7, 8, 10, 11) is in contact — below 5 cm in both frames — and moves horizontally faster
  than 0.5 m/s. ``skating_ratio_smoothed``: the same with each joint's speed averaged over a
  5-frame window first, so jitter alone does not count as sliding.
- ``jitter``: mean over joints and frames of the third finite difference of joint positions,
  ‖x_{t+3} − 3x_{t+2} + 3x_{t+1} − x_t‖·fps³ (m/s³): how abruptly acceleration changes.
- ``penetration_mm`` / ``float_mm``: per frame, how far the lowest body point (the lowest joint;
  the lowest vertex with a mesh body model) is below / above the ground beyond a 5 mm tolerance,
  averaged over frames, in millimetres. Floating includes genuine flight (jumps).
- ``joint_limit_violation_rate``: share of the 23 body joints' axis-angle components outside the
  pose limits θ_min/θ_max the tokenizer is trained with (`k2m_core/tokenizer/pose_limits.json`);
  ``frames_violating_limits``: share of frames with at least one.

A metric that needs more frames than a motion has (jitter: 4, skating: 2) is NaN for it and left
out of averages.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from k2m_core.body.kinematics import FEET

PHYSICS_FPS = 20.0
CONTACT_HEIGHT_M = 0.05
SKATING_SPEED_M_S = 0.5
SMOOTHING_FRAMES = 5
GROUND_TOLERANCE_M = 0.005
UP = 2  # z-up world
METRICS = ("skating_ratio", "skating_ratio_smoothed", "jitter", "penetration_mm", "float_mm",
           "joint_limit_violation_rate", "frames_violating_limits")


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average along axis 0 (the window shrinks at the ends)."""
    cumulative = np.concatenate([np.zeros((1,) + values.shape[1:]), np.cumsum(values, axis=0)])
    index = np.arange(len(values))
    lo = np.maximum(index - window // 2, 0)
    hi = np.minimum(index + window // 2 + 1, len(values))
    return (cumulative[hi] - cumulative[lo]) / (hi - lo).reshape((-1,) + (1,) * (values.ndim - 1))


def skating(joints: np.ndarray, fps: float) -> tuple[float, float]:
    """``joints (F, 24, 3)`` z-up → (skating ratio, smoothed skating ratio)."""
    if len(joints) < 2:
        return math.nan, math.nan
    feet = joints[:, list(FEET)]
    low = feet[..., UP] < CONTACT_HEIGHT_M
    contact = low[1:] & low[:-1]  # (F−1, 4)
    horizontal = [axis for axis in range(3) if axis != UP]
    speed = np.linalg.norm(np.diff(feet[..., horizontal], axis=0), axis=-1) * fps  # (F−1, 4)
    raw = (contact & (speed > SKATING_SPEED_M_S)).any(-1).mean()
    smoothed = (contact & (moving_average(speed, SMOOTHING_FRAMES) > SKATING_SPEED_M_S)).any(-1).mean()
    return float(raw), float(smoothed)


def jitter(joints: np.ndarray, fps: float) -> float:
    if len(joints) < 4:
        return math.nan
    third = joints[3:] - 3 * joints[2:-1] + 3 * joints[1:-2] - joints[:-3]
    return float(np.linalg.norm(third, axis=-1).mean() * fps**3)


def ground_contact(lowest: np.ndarray) -> tuple[float, float]:
    """Heights ``(F,)`` of the lowest body point → (penetration mm, float mm)."""
    below = np.maximum(-lowest - GROUND_TOLERANCE_M, 0.0)
    above = np.maximum(lowest - GROUND_TOLERANCE_M, 0.0)
    return float(below.mean() * 1000), float(above.mean() * 1000)


def joint_limit_violations(poses: np.ndarray) -> tuple[float, float]:
    """``poses (F, 72)`` axis-angle → (share of body-joint components outside the limits, share of
    frames with any)."""
    from k2m_core.tokenizer.pose_limits import load_pose_limits

    limits = load_pose_limits()
    body = poses[:, 3:].reshape(len(poses), 23, 3)
    outside = (body < limits.theta_min.numpy()) | (body > limits.theta_max.numpy())
    return float(outside.mean()), float(outside.any(axis=(1, 2)).mean())


def physics_metrics(motion, body) -> dict[str, float]:
    """All metrics of one `WorldMotion` (``body`` float64)."""
    motion = motion.resampled(PHYSICS_FPS)
    with torch.no_grad():
        posed = motion.pose(body, with_vertices=True)
    joints = posed.joints.numpy()
    points = posed.vertices.numpy() if posed.vertices is not None else joints
    skate, skate_smooth = skating(joints, PHYSICS_FPS)
    penetration, floating = ground_contact(points[..., UP].min(axis=1))
    violations, violating_frames = joint_limit_violations(motion.poses)
    return {"frames": len(motion), "skating_ratio": skate, "skating_ratio_smoothed": skate_smooth,
            "jitter": jitter(joints, PHYSICS_FPS), "penetration_mm": penetration, "float_mm": floating,
            "joint_limit_violation_rate": violations, "frames_violating_limits": violating_frames}


def summarise(per_motion: list[dict]) -> dict[str, float]:
    """Mean of each metric over motions (NaNs left out)."""
    out: dict[str, float] = {"motions": len(per_motion)}
    for name in METRICS:
        values = np.array([m[name] for m in per_motion], dtype=np.float64)
        out[name] = float(np.nanmean(values)) if np.isfinite(values).any() else math.nan
    return out
