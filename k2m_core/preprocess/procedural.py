"""A procedural 2D walking figure in COCO-17: keypoint tracks for tests and benchmarks of the
preprocessing pipeline that need plausible motion without a body model or a video.

The figure walks back and forth in profile, arms and legs swinging at the gait frequency, with
Gaussian pixel noise and confidences in [0.7, 1]. Time is in seconds, so the same motion sampled
at different frame rates describes the same movement.
"""

from __future__ import annotations

import numpy as np

# Keypoints in person heights, relative to the mid-hip, y down: the fixed head and torso.
_HEAD = {0: (0.02, -0.44), 1: (0.03, -0.46), 2: (0.01, -0.46), 3: (-0.01, -0.45), 4: (-0.03, -0.45)}
_SHOULDER_Y, _HIP_HALF, _SHOULDER_HALF = -0.32, 0.05, 0.07
_UPPER_ARM, _FOREARM, _THIGH, _SHIN = 0.17, 0.15, 0.24, 0.24


def walking_figure(frames: int, fps: float = 30.0, width: float = 1280, height: float = 720, *,
                   person_height: float = 0.6, seed: int = 0, noise_px: float = 1.0,
                   gait_hz: float = 1.0, phase: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """``(xy (F, 17, 2), conf (F, 17))`` float32 of a figure ``person_height`` × frame height tall."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / fps
    h = person_height * height
    w = 2 * np.pi * gait_hz * t + phase
    root = np.stack([width / 2 + 0.25 * width * np.sin(2 * np.pi * t / 12 + phase),
                     np.full_like(t, height / 2 + 0.05 * h)], axis=-1)
    xy = np.zeros((frames, 17, 2))
    for k, (x, y) in _HEAD.items():
        xy[:, k] = (x, y)
    bob = 0.01 * np.cos(2 * w)[:, None]
    for side, sign in ((0, 1.0), (1, -1.0)):  # left, right: opposite phase
        swing = sign * np.sin(w)
        shoulder = np.stack([np.full_like(t, sign * _SHOULDER_HALF * 0.3), np.full_like(t, _SHOULDER_Y)], -1)
        hip = np.stack([np.full_like(t, sign * _HIP_HALF * 0.3), np.zeros_like(t)], -1)
        arm, elbow_bend = -0.5 * swing, 0.3 + 0.2 * np.clip(swing, 0, None)
        leg, knee_bend = 0.45 * swing, 0.15 + 0.45 * np.clip(-np.cos(w + sign * 0.5), 0, None)
        elbow = shoulder + _UPPER_ARM * _dir(arm)
        wrist = elbow + _FOREARM * _dir(arm + elbow_bend)
        knee = hip + _THIGH * _dir(leg)
        ankle = knee + _SHIN * _dir(leg - knee_bend)
        for k, point in zip((5 + side, 7 + side, 9 + side, 11 + side, 13 + side, 15 + side),
                            (shoulder, elbow, wrist, hip, knee, ankle)):
            xy[:, k] = point
    xy = root[:, None] + h * (xy + bob[:, :, None] * np.array([0.0, 1.0]))
    xy += rng.normal(0.0, noise_px, xy.shape)
    conf = rng.uniform(0.7, 1.0, (frames, 17))
    return xy.astype(np.float32), conf.astype(np.float32)


def _dir(angle: np.ndarray) -> np.ndarray:
    """Unit vector pointing down, turned by ``angle`` (radians) towards +x."""
    return np.stack([np.sin(angle), np.cos(angle)], axis=-1)
