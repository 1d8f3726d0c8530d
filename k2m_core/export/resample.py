"""Change an SMPL motion's frame rate: slerp for joint rotations, linear for the translation.

Output frame k sits at time k / fps_out from the first input frame; the clip keeps its duration
(the last output frame is at or before the last input frame), so 150 frames at 30 fps become 125
at 25 fps and 300 at 60 fps minus the one frame past the end.
"""

from __future__ import annotations

import numpy as np
import torch

from k2m_core.rotations import axis_angle_to_quaternion, quaternion_to_axis_angle


def resample_times(frames: int, fps_in: float, fps_out: float) -> np.ndarray:
    """Fractional input-frame positions of the output frames."""
    if not (fps_in > 0 and fps_out > 0):
        raise ValueError(f"frame rates must be positive, got {fps_in} → {fps_out}")
    duration = (frames - 1) / fps_in
    count = int(np.floor(duration * fps_out + 1e-6)) + 1
    return np.minimum(np.arange(count) * (fps_in / fps_out), frames - 1)


def slerp(q0: torch.Tensor, q1: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Shortest-arc interpolation of unit quaternions ``(..., 4)`` by weights ``w (...)``."""
    dot = (q0 * q1).sum(-1)
    q1 = torch.where(dot[..., None] < 0, -q1, q1)  # q and −q are one rotation: take the short way
    dot = dot.abs().clamp(max=1.0)
    angle = torch.acos(dot)
    sin = torch.sin(angle)
    near = sin < 1e-6  # nearly equal: linear interpolation is exact to float precision
    safe = torch.where(near, torch.ones_like(sin), sin)
    a = torch.where(near, 1 - w, torch.sin((1 - w) * angle) / safe)
    b = torch.where(near, w, torch.sin(w * angle) / safe)
    q = a[..., None] * q0 + b[..., None] * q1
    return q / q.norm(dim=-1, keepdim=True)


def resample_motion(poses, trans, fps_in: float, fps_out: float) -> tuple[np.ndarray, np.ndarray]:
    """``poses (F, 72)`` axis-angle and ``trans (F, 3)`` at ``fps_in`` → the same motion at ``fps_out``."""
    poses = np.asarray(poses, dtype=np.float64)
    trans = np.asarray(trans, dtype=np.float64)
    if abs(fps_in - fps_out) < 1e-9:
        return poses.copy(), trans.copy()
    t = resample_times(len(poses), fps_in, fps_out)
    lo = np.floor(t).astype(int)
    hi = np.minimum(lo + 1, len(poses) - 1)
    w = t - lo
    quats = axis_angle_to_quaternion(torch.from_numpy(poses.reshape(len(poses), -1, 3)))
    weight = torch.from_numpy(w)[:, None].expand(len(t), quats.shape[1])
    rotations = quaternion_to_axis_angle(slerp(quats[lo], quats[hi], weight))
    moved = trans[lo] * (1 - w)[:, None] + trans[hi] * w[:, None]
    return rotations.reshape(len(t), -1).numpy(), moved
