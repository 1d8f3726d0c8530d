"""The paper's pinhole camera (eq. 3) and the root-translation parameterisation.

Camera frame (OpenCV): x right, y down, z forward, metres. ``u = f·x/(z+ε) + W/2``,
``v = f·y/(z+ε) + H/2``: the paper uses f = 5000 px for every video; k2m takes each clip's focal
length from its dataset (`Dataset.focals`), and the principal point may move off the image centre
when a clip is reframed (`k2m_core.tokenizer.framing`). Points with z ≤ 0 are behind the camera: they get a
False in the returned mask (and finite, meaningless pixels) — never a silent clamp.
"""

from __future__ import annotations

import torch
from torch import Tensor

from k2m_core.keypoints import PAPER_FOCAL as FOCAL, half_extent

EPS = 1e-6


def _centre(width, height, principal):
    """The principal point as ``(cx, cy)``: the image centre unless ``principal (..., 2)`` is given."""
    if principal is None:
        return width / 2, height / 2
    return principal[..., 0], principal[..., 1]


def project(points: Tensor, width: Tensor | float, height: Tensor | float, focal: Tensor | float = FOCAL,
            principal: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """``points (..., J, 3)`` in the camera frame → ``(uv (..., J, 2) pixels, in_front (..., J) bool)``.

    ``width``, ``height``, ``focal`` (pixels) and ``principal (..., 2)`` (pixels; default the image
    centre) broadcast against ``points[..., 0]`` (e.g. shape ``(B, 1, 1)``)."""
    x, y, z = points.unbind(-1)
    in_front = z > 0
    depth = torch.where(in_front, z + EPS, torch.ones_like(z))  # safe divisor where masked
    cx, cy = _centre(width, height, principal)
    return torch.stack([focal * x / depth + cx, focal * y / depth + cy], dim=-1), in_front


def point_to_uvs(point: Tensor, width, height, focal: Tensor | float = FOCAL,
                 principal: Tensor | None = None) -> Tensor:
    """A 3D point ``(..., 3)`` (z > 0) → ``(..., 3)`` = (u, v) its image position about the image
    centre in normalised units (``/ (max(W, H)/2)``), and log s, where s = f/z is the scale in
    pixels per metre."""
    uv, _ = project(point[..., None, :], width, height, focal,
                    None if principal is None else principal[..., None, :])
    half = half_extent(width, height)
    u = (uv[..., 0, 0] - width / 2) / half
    v = (uv[..., 0, 1] - height / 2) / half
    return torch.stack([u, v, torch.log(focal / point[..., 2])], dim=-1)


def uvs_to_point(uvs: Tensor, width, height, focal: Tensor | float = FOCAL,
                 principal: Tensor | None = None) -> Tensor:
    """Inverse of `point_to_uvs`: z = f/s, x = (u_px − cx)·z/f, y = (v_px − cy)·z/f."""
    u, v, log_s = uvs.unbind(-1)
    scale = torch.exp(log_s)
    half = half_extent(width, height)
    cx, cy = _centre(width, height, principal)
    u_px, v_px = u * half + width / 2, v * half + height / 2
    return torch.stack([(u_px - cx) / scale, (v_px - cy) / scale, focal / scale], dim=-1)
