"""The paper's pinhole camera (eq. 3) and the root-translation parameterisation of SPEC §6.

Camera frame (OpenCV): x right, y down, z forward, metres. ``u = f·x/(z+ε) + W/2``,
``v = f·y/(z+ε) + H/2`` with f = 5000 px. Points with z ≤ 0 are behind the camera: they get a
False in the returned mask (and finite, meaningless pixels) — never a silent clamp.
"""

from __future__ import annotations

import torch
from torch import Tensor

from k2m_core.keypoints import PAPER_FOCAL as FOCAL, half_extent

EPS = 1e-6


def project(points: Tensor, width: Tensor | float, height: Tensor | float,
            focal: float = FOCAL) -> tuple[Tensor, Tensor]:
    """``points (..., J, 3)`` in the camera frame → ``(uv (..., J, 2) pixels, in_front (..., J) bool)``.

    ``width``/``height`` broadcast against ``points[..., 0]`` (e.g. shape ``(..., 1)``)."""
    x, y, z = points.unbind(-1)
    in_front = z > 0
    depth = torch.where(in_front, z + EPS, torch.ones_like(z))  # safe divisor where masked
    u = focal * x / depth + width / 2
    v = focal * y / depth + height / 2
    return torch.stack([u, v], dim=-1), in_front


def point_to_uvs(point: Tensor, width, height, focal: float = FOCAL) -> Tensor:
    """A 3D point ``(..., 3)`` (z > 0) → ``(..., 3)`` = (u, v) in normalised image units and
    log s, where s = f/z is the scale in pixels per metre (SPEC §6)."""
    x, y, z = point.unbind(-1)
    half = half_extent(width, height)
    return torch.stack([focal * x / z / half, focal * y / z / half, torch.log(focal / z)], dim=-1)


def uvs_to_point(uvs: Tensor, width, height, focal: float = FOCAL) -> Tensor:
    """Inverse of `point_to_uvs`: z = f/s, x = (u_px − W/2)·z/f = u·max(W,H)/2 / s, likewise y."""
    u, v, log_s = uvs.unbind(-1)
    scale = torch.exp(log_s)
    half = half_extent(width, height)
    return torch.stack([u * half / scale, v * half / scale, focal / scale], dim=-1)
