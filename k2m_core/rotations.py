"""Rotation conversions: axis-angle ↔ matrix ↔ 6D ↔ quaternion, batched over any leading dims.

All functions are differentiable and stable near angle 0 (Taylor expansions) and near π
(quaternion route with atan2). Quaternions are ``(w, x, y, z)``. The 6D representation is the first
two *columns* of the rotation matrix, ``(r00, r10, r20, r01, r11, r21)`` (docs/design.md#conventions).
"""

from __future__ import annotations

import torch
from torch import Tensor

_SMALL = 1e-4  # below this angle (rad) the Taylor series are exact to float64 precision


def skew(v: Tensor) -> Tensor:
    """``(..., 3)`` → ``(..., 3, 3)`` cross-product matrix [v]×."""
    x, y, z = v.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack([o, -z, y, z, o, -x, -y, x, o], dim=-1).reshape(v.shape[:-1] + (3, 3))


def axis_angle_to_matrix(axis_angle: Tensor) -> Tensor:
    """Rodrigues: ``(..., 3)`` → ``(..., 3, 3)``; R = I + A·[r]× + B·[r]×² with
    A = sin θ/θ, B = (1 − cos θ)/θ², written unnormalised so θ → 0 needs no division."""
    theta_sq = (axis_angle * axis_angle).sum(-1, keepdim=True)[..., None]  # (..., 1, 1)
    small = theta_sq < _SMALL**2
    theta = torch.sqrt(torch.where(small, torch.ones_like(theta_sq), theta_sq))
    a = torch.where(small, 1 - theta_sq / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta_sq / 24, (1 - torch.cos(theta)) / (theta * theta))
    k = skew(axis_angle)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return eye + a * k + b * (k @ k)


def matrix_to_quaternion(matrix: Tensor) -> Tensor:
    """``(..., 3, 3)`` → unit quaternion ``(..., 4)`` with w ≥ 0.

    Computes the four candidate solutions and keeps, per rotation, the one whose divisor is
    largest (Shepperd's method), so no branch divides by a near-zero number."""
    m = matrix
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    # 4·q_i² for i in (w, x, y, z); clamped so sqrt has a finite gradient.
    four_sq = torch.stack([
        1 + m00 + m11 + m22,
        1 + m00 - m11 - m22,
        1 - m00 + m11 - m22,
        1 - m00 - m11 + m22,
    ], dim=-1)
    two_q = torch.sqrt(four_sq.clamp_min(1e-12))  # 2·|q_i|
    candidates = torch.stack([
        torch.stack([two_q[..., 0] ** 2, m21 - m12, m02 - m20, m10 - m01], dim=-1),
        torch.stack([m21 - m12, two_q[..., 1] ** 2, m10 + m01, m02 + m20], dim=-1),
        torch.stack([m02 - m20, m10 + m01, two_q[..., 2] ** 2, m12 + m21], dim=-1),
        torch.stack([m10 - m01, m20 + m02, m21 + m12, two_q[..., 3] ** 2], dim=-1),
    ], dim=-2) / (2 * two_q[..., None])  # row i is q computed from divisor 4|q_i|
    best = four_sq.argmax(dim=-1)
    quat = torch.gather(candidates, -2, best[..., None, None].expand(best.shape + (1, 4))).squeeze(-2)
    quat = quat / quat.norm(dim=-1, keepdim=True)
    return torch.where(quat[..., :1] < 0, -quat, quat)


def quaternion_to_axis_angle(quat: Tensor) -> Tensor:
    """``(..., 4)`` → ``(..., 3)``, angle in [0, π]; stable at 0 and π via atan2."""
    quat = torch.where(quat[..., :1] < 0, -quat, quat)
    xyz = quat[..., 1:]
    sin_half_sq = (xyz * xyz).sum(-1, keepdim=True)
    small = sin_half_sq < _SMALL**2
    sin_half = torch.sqrt(torch.where(small, torch.ones_like(sin_half_sq), sin_half_sq))
    w = quat[..., :1]
    # angle / sin(angle/2) with angle = 2·atan2(sin_half, w); Taylor for small angles.
    factor = torch.where(small, 2 / w.clamp_min(1e-12) - (2 / 3) * sin_half_sq / w.clamp_min(1e-12) ** 3,
                         2 * torch.atan2(sin_half, w) / sin_half)
    return xyz * factor


def axis_angle_to_quaternion(axis_angle: Tensor) -> Tensor:
    """``(..., 3)`` → ``(..., 4)``."""
    theta_sq = (axis_angle * axis_angle).sum(-1, keepdim=True)
    small = theta_sq < _SMALL**2
    theta = torch.sqrt(torch.where(small, torch.ones_like(theta_sq), theta_sq))
    half_sinc = torch.where(small, 0.5 - theta_sq / 48, torch.sin(theta / 2) / theta)  # sin(θ/2)/θ
    w = torch.where(small, 1 - theta_sq / 8, torch.cos(theta / 2))
    return torch.cat([w, axis_angle * half_sinc], dim=-1)


def matrix_to_axis_angle(matrix: Tensor) -> Tensor:
    """``(..., 3, 3)`` → ``(..., 3)``."""
    return quaternion_to_axis_angle(matrix_to_quaternion(matrix))


def matrix_to_rot6d(matrix: Tensor) -> Tensor:
    """``(..., 3, 3)`` → ``(..., 6)``: the first two columns, column after column."""
    return matrix[..., :, :2].transpose(-1, -2).reshape(matrix.shape[:-2] + (6,))


def rot6d_to_matrix(rot6d: Tensor) -> Tensor:
    """``(..., 6)`` → ``(..., 3, 3)`` by Gram–Schmidt (Zhou et al. 2019); any 6 numbers give a rotation."""
    a1, a2 = rot6d[..., :3], rot6d[..., 3:]
    b1 = torch.nn.functional.normalize(a1, dim=-1)
    b2 = torch.nn.functional.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def matrix_to_euler_zyx(matrix: Tensor) -> Tensor:
    """``(..., 3, 3)`` → intrinsic Z-Y-X angles ``(..., 3)`` in radians, ordered (z, y, x), with
    R = Rz(z)·Ry(y)·Rx(x) — the order of BVH's ``Zrotation Yrotation Xrotation`` channels."""
    sy = (-matrix[..., 2, 0]).clamp(-1.0, 1.0)
    y = torch.asin(sy)
    cos_y = torch.sqrt((matrix[..., 0, 0] ** 2 + matrix[..., 1, 0] ** 2))
    regular = cos_y > 1e-6
    z = torch.where(regular, torch.atan2(matrix[..., 1, 0], matrix[..., 0, 0]),
                    torch.atan2(-matrix[..., 0, 1], matrix[..., 1, 1]))
    x = torch.where(regular, torch.atan2(matrix[..., 2, 1], matrix[..., 2, 2]), torch.zeros_like(y))
    return torch.stack([z, y, x], dim=-1)
