"""The virtual camera that sees synthetic and real motion alike, and the pose estimator behind it.

A `View` is one static pinhole camera: the subject's yaw drawn around a viewpoint with the
shares of paper Table 7 (front / left side / right side / back), a pitch, an image size, and a
focal length from a field of view of 40–75° across the image's long side (horizontal for landscape
video; a phone held upright keeps its lens) — or a fixed focal, e.g. the paper's 5000 px. The
principal point is the image centre. `place_in_frame` then puts the whole clip in front of it at a
realistic distance (2.5–8 m, the body filling 45–85 % of the image height where both can hold)
and pushes it back just as far as it must go for every keypoint to stay in the image.
`estimator_noise` corrupts the projected keypoints the way a 2D pose estimator does.

Camera frame (OpenCV): x right, y down, z forward, metres; world: y up, the subject faces +z.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from k2m_core.keypoints import MIRROR, focal_from_fov
from k2m_core.rotations import axis_angle_to_matrix

# Paper Table 7: share of frames per viewpoint, and the subject's yaw that shows that side.
VIEWPOINTS = {"front": (0.3941, 0.0), "left": (0.2616, -90.0), "right": (0.2732, 90.0), "back": (0.0711, 180.0)}
IMAGE_SIZES = ((1920, 1080), (1280, 720), (3840, 2160), (1080, 1920), (720, 1280), (640, 480))


@dataclass
class RigConfig:
    """What the camera and the estimator draw from. `k2m data synth` and `k2m data from-mocap`
    configs extend it, so both see motion through the same rig."""

    fov_deg: tuple[float, float] = (40.0, 75.0)  # field of view across the long side, drawn uniformly
    distance_m: tuple[float, float] = (2.5, 8.0)  # camera to subject, where the framing allows
    pitch_deg: tuple[float, float] = (-8.0, 12.0)  # camera tilt, positive = looking down
    body_fill: tuple[float, float] = (0.45, 0.85)  # share of the image height the body takes
    yaw_jitter_deg: float = 25.0  # spread of the subject's yaw around each viewpoint
    focal: float | None = None  # fixed focal in pixels for every clip (5000: the paper's camera)
    image_size: tuple[int, int] | None = None  # (W, H) for every clip; None: drawn from IMAGE_SIZES
    noise_px: tuple[float, float] = (0.5, 3.0)  # per-clip keypoint noise std at 1080p, drawn uniformly
    dropout_rate: float = 0.01  # chance per keypoint and frame that a dropout run starts


@dataclass(frozen=True)
class View:
    """One camera: ``yaw``/``pitch`` in radians, ``focal`` in pixels, principal point at the
    image centre, and the distances (metres) `place_in_frame` may choose from."""

    viewpoint: str
    yaw: float
    pitch: float
    focal: float
    width: int
    height: int
    distance: tuple[float, float]

    @property
    def world_to_camera(self) -> np.ndarray:
        """``(3, 3)``: turn the subject by ``yaw`` about the vertical, flip to the camera's axes
        (180° about x: the subject faces the camera), then tilt the camera by ``pitch``."""
        turn = axis_angle_to_matrix(torch.tensor([0.0, self.yaw, 0.0], dtype=torch.float64))
        flip = axis_angle_to_matrix(torch.tensor([math.pi, 0.0, 0.0], dtype=torch.float64))
        tilt = axis_angle_to_matrix(torch.tensor([self.pitch, 0.0, 0.0], dtype=torch.float64))
        return (tilt @ flip @ turn).numpy()

    def intrinsics(self) -> dict:
        """The camera as `clips.jsonl` records it."""
        return {"focal": self.focal, "width": self.width, "height": self.height,
                "principal_point": [self.width / 2, self.height / 2]}


def sample_yaw(rng: np.random.Generator, jitter_deg: float = RigConfig.yaw_jitter_deg) -> tuple[str, float]:
    """A viewpoint drawn with the shares of `VIEWPOINTS`, and the subject's yaw (radians) around it."""
    names = list(VIEWPOINTS)
    shares = np.array([VIEWPOINTS[n][0] for n in names])
    viewpoint = names[rng.choice(len(names), p=shares / shares.sum())]
    return viewpoint, math.radians(VIEWPOINTS[viewpoint][1] + rng.uniform(-1, 1) * jitter_deg)


def sample_view(rng: np.random.Generator, config: RigConfig) -> View:
    """Draw a camera. Draws in a fixed order (viewpoint, yaw, pitch, size, then the field of view
    unless the focal is fixed), so a fixed ``focal`` of 5000 repeats the paper-camera corpora
    k2m made before it drew realistic cameras."""
    viewpoint, yaw = sample_yaw(rng, config.yaw_jitter_deg)
    pitch = math.radians(rng.uniform(*config.pitch_deg))
    width, height = IMAGE_SIZES[rng.integers(len(IMAGE_SIZES))]
    if config.image_size is not None:
        width, height = config.image_size
    if config.focal is not None:  # a fixed camera: the framing alone sets the distance
        return View(viewpoint, yaw, pitch, float(config.focal), int(width), int(height), (0.0, math.inf))
    focal = focal_from_fov(rng.uniform(*config.fov_deg), width, height)
    return View(viewpoint, yaw, pitch, focal, int(width), int(height), tuple(config.distance_m))


def project(points: np.ndarray, focal: float, width: float, height: float) -> np.ndarray:
    """Camera-frame ``points (..., 3)`` (z > 0) → pixels ``(..., 2)``: ``f·(x, y)/z + (W/2, H/2)``."""
    return focal * points[..., :2] / points[..., 2:] + np.array([width / 2, height / 2])


def place_in_frame(points: np.ndarray, view: View, body_fill: tuple[float, float],
                   rng: np.random.Generator) -> np.ndarray:
    """Camera-frame offset ``(3,)`` that puts the keypoints ``points (F, K, 3)`` (camera axes,
    any position) in front of ``view`` with every keypoint inside the image.

    The body's share of the image height is drawn from ``body_fill`` narrowed to the shares the
    view's distance range allows (when none is allowed, the distance bound nearest to them wins);
    the depth is then pushed back just enough that the whole trajectory fits in 90 % of the frame,
    so long paths may end up beyond the range. The clip is centred with a random slack."""
    focal, width, height = view.focal, view.width, view.height
    body_height = float(np.median(points[..., 1].max(-1) - points[..., 1].min(-1))) + 0.1
    near, far = view.distance
    fill_far = focal * body_height / (far * height)  # the share the body takes at the far bound
    fill_near = focal * body_height / (near * height) if near > 0 else math.inf
    lo, hi = max(body_fill[0], fill_far), min(body_fill[1], fill_near)
    fill = rng.uniform(lo, hi) if lo <= hi else (fill_far if fill_far > body_fill[1] else fill_near)
    depth = focal * body_height / (fill * height)
    lo3, hi3 = points.reshape(-1, 3).min(0), points.reshape(-1, 3).max(0)
    centre = (lo3 + hi3) / 2

    def project_at(d: float):
        z = points[..., 2] - centre[2] + d
        u = focal * (points[..., 0] - centre[0]) / z
        v = focal * (points[..., 1] - centre[1]) / z
        fits = z.min() >= 1.0 and (u.max() - u.min()) <= 0.9 * width and (v.max() - v.min()) <= 0.9 * height
        return z, u, v, fits

    # The nearest depth (not nearer than the drawn one) at which the whole path fits, by
    # bisection. Growing the depth geometrically from a frame where part of the path is at or
    # behind the camera once sent clips kilometres away, where the body is a few pixels.
    if not project_at(depth)[3]:
        near_d, far_d = depth, depth * 2
        while not project_at(far_d)[3]:
            near_d, far_d = far_d, far_d * 2
        for _ in range(40):
            mid = (near_d + far_d) / 2
            near_d, far_d = (near_d, mid) if project_at(mid)[3] else (mid, far_d)
        depth = far_d
    z, u, v, _ = project_at(depth)
    # A random shift inside the slack that is left, converted from pixels to metres at the
    # median depth (the frame keeps a 5 % margin for the error of that approximation).
    slack_u = max(0.0, 0.9 * width - (u.max() - u.min())) / 2
    slack_v = max(0.0, 0.9 * height - (v.max() - v.min())) / 2
    shift_u = rng.uniform(-slack_u, slack_u) - (u.max() + u.min()) / 2
    shift_v = rng.uniform(-slack_v, slack_v) - (v.max() + v.min()) / 2
    metres_per_px = float(np.median(z)) / focal
    offset = np.array([shift_u * metres_per_px - centre[0], shift_v * metres_per_px - centre[1], depth - centre[2]])
    return _keep_inside(points, offset, focal, width, height)


def _keep_inside(points: np.ndarray, offset: np.ndarray, focal: float, width: float, height: float,
                 margin: float = 0.02) -> np.ndarray:
    """``offset`` moved the least distance sideways (and back, where it must) so that every point
    projects at least ``margin`` of the frame inside it.

    The median-depth shift above is only approximate when the path runs along the optical axis
    (a run towards a close camera). At a fixed depth each pixel coordinate is linear in the
    sideways offset (``u = f·(x + o)/z + W/2``), so the offsets that keep all points inside form
    an interval, computed exactly; where it is empty the clip is pushed back by 5 %."""
    offset = offset.astype(np.float64).copy()
    flat = points.reshape(-1, 3)
    while True:
        z = flat[:, 2] + offset[2]
        allowed = []
        for axis, size in ((0, width), (1, height)):
            lo = ((margin - 0.5) * size * z / focal - flat[:, axis]).max()
            hi = ((0.5 - margin) * size * z / focal - flat[:, axis]).min()
            allowed.append((lo, hi))
        if all(lo <= hi for lo, hi in allowed):
            offset[:2] = [min(max(offset[axis], lo), hi) for axis, (lo, hi) in enumerate(allowed)]
            return offset
        offset[2] += 0.05 * float(np.median(z))


def estimator_noise(xy: np.ndarray, depth: np.ndarray, view: View, rng: np.random.Generator,
                    config: RigConfig) -> tuple[np.ndarray, np.ndarray]:
    """Corrupt projected COCO-17 keypoints ``xy (F, 17, 2)`` with camera depths ``depth (F, 17)``
    the way a 2D pose estimator does → ``(xy (F, 17, 2), conf (F, 17))``: pixel noise, lower
    confidence and more noise on the far side of the body, short dropouts with low confidence
    and wrong positions, and c = 0 (xy = 0) outside the frame or behind the camera."""
    frames = len(xy)
    width, height = view.width, view.height
    sigma = rng.uniform(*config.noise_px) * height / 1080
    conf = rng.uniform(0.85, 1.0, size=(frames, 17))
    noise = rng.normal(0, sigma, size=xy.shape)
    # Self-occlusion: the farther of each left/right pair is less certain and noisier.
    farther = depth > depth[:, list(MIRROR)] + 0.08
    conf = np.where(farther, conf - rng.uniform(0.1, 0.35, size=conf.shape), conf)
    noise = np.where(farther[..., None], noise * 2.0, noise)
    # Dropouts: short runs where the estimator lost the keypoint (low confidence, wrong place).
    lost = np.zeros((frames, 17), dtype=bool)
    for t, j in zip(*np.nonzero(rng.random((frames, 17)) < config.dropout_rate)):
        lost[t:t + rng.integers(1, 9), j] = True
    conf = np.where(lost, rng.uniform(0.0, 0.3, size=conf.shape), conf)
    noise = np.where(lost[..., None], rng.normal(0, 30 * sigma, size=xy.shape), noise)
    return visible_in(xy + noise, depth, view, conf)


def visible_in(xy: np.ndarray, depth: np.ndarray, view: View, conf: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints ``xy (F, 17, 2)`` as the image shows them: c = 0 and xy = 0 outside the frame or
    behind the camera (``depth (F, 17)`` ≤ 0), else ``conf`` (default 1) clipped to [0, 1]."""
    conf = np.ones(xy.shape[:2]) if conf is None else conf
    outside = (xy[..., 0] < 0) | (xy[..., 0] >= view.width) | (xy[..., 1] < 0) | (xy[..., 1] >= view.height) \
        | (depth <= 0)
    return np.where(outside[..., None], 0.0, xy), np.clip(np.where(outside, 0.0, conf), 0.0, 1.0)
