"""Headless 3D rendering of SMPL motion: a skeleton (or a shaded mesh) standing on a ground grid,
filmed by a camera that follows the body. NumPy + PIL with the painter's algorithm (far things
drawn first): no OpenGL, no display, the same pixels on every machine.

Motions come in the z-up world frame of AMASS-style files (docs/design.md#conventions): metres, ground at z = 0,
+y the direction the original camera looked, so ``azimuth = 0`` films the motion from where the
video was shot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from k2m_core.body.kinematics import JOINT_NAMES, PARENTS
from k2m_core.errors import UserError
from k2m_core.render.draw import BACKGROUND, CENTRE_COLOUR, LEFT_COLOUR, RIGHT_COLOUR

GRID_COLOUR = (70, 74, 82)
SHADOW_COLOUR = (44, 46, 52)
MESH_COLOUR = np.array([175, 190, 215], dtype=np.float64)
NEAR = 0.1  # metres: anything closer to the camera than this is not drawn
MIN_DISTANCE = 0.5  # metres: a camera closer to the target than this sits inside the body
UP = np.array([0.0, 0.0, 1.0])


@dataclass(frozen=True)
class Camera:
    """Where the following camera sits relative to the (smoothed) pelvis."""

    size: int = 384  # square frames, pixels
    distance: float = 4.0  # metres from the target point
    elevation: float = 15.0  # degrees above the horizon
    azimuth: float = 30.0  # degrees about z; 0 = behind the original camera, looking along +y
    fov: float = 45.0  # vertical field of view, degrees
    follow_seconds: float = 0.5  # smoothing of the target, so steps don't shake the picture
    target_height: float = 0.9  # metres: the camera aims at about hip height

    def __post_init__(self) -> None:
        """`UserError` naming the `k2m render` option of a value out of range."""
        if not (np.isfinite(self.distance) and self.distance >= MIN_DISTANCE):
            raise UserError(f"--distance {self.distance}: give at least {MIN_DISTANCE} metres between camera and body")
        if not np.isfinite(self.azimuth):
            raise UserError(f"--azimuth {self.azimuth}: give an angle in degrees")
        if not (np.isfinite(self.elevation) and -90 < self.elevation < 90):
            raise UserError(f"camera elevation {self.elevation}: give an angle between -90 and 90 degrees")
        if not (0 < self.fov < 180 and self.size >= 1):
            raise UserError(f"camera fov {self.fov}° and size {self.size} px must lie in (0, 180) and be positive")

    @property
    def focal(self) -> float:
        return 0.5 * self.size / np.tan(np.radians(self.fov) / 2)


def follow_targets(pelvis: np.ndarray, fps: float, camera: Camera) -> np.ndarray:
    """``pelvis (T, 3)`` → camera targets ``(T, 3)``: the pelvis's ground position smoothed by a
    Gaussian of ``follow_seconds`` (edges held), at ``target_height``."""
    sigma = camera.follow_seconds * fps
    xy = pelvis[:, :2].astype(np.float64)
    if sigma > 0 and len(xy) > 1:
        radius = int(np.ceil(3 * sigma))
        kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
        kernel /= kernel.sum()
        padded = np.pad(xy, ((radius, radius), (0, 0)), mode="edge")
        xy = np.stack([np.convolve(padded[:, k], kernel, mode="valid") for k in range(2)], axis=1)
    return np.concatenate([xy, np.full((len(xy), 1), camera.target_height)], axis=1)


class View:
    """One camera pose: world points → pixel coordinates and depth."""

    def __init__(self, target: np.ndarray, camera: Camera) -> None:
        el, az = np.radians(camera.elevation), np.radians(camera.azimuth)
        offset = np.array([np.cos(el) * np.sin(az), -np.cos(el) * np.cos(az), np.sin(el)])
        self.eye = target + camera.distance * offset
        forward = -offset
        right = np.cross(forward, UP)
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        self.basis = np.stack([right, down, forward])  # rows: image x, image y, depth
        self.focal, self.centre = camera.focal, camera.size / 2

    def camera_points(self, points: np.ndarray) -> np.ndarray:
        """World ``(..., 3)`` → camera frame ``(..., 3)`` (x right, y down, z depth)."""
        return (points - self.eye) @ self.basis.T

    def pixels(self, cam: np.ndarray) -> np.ndarray:
        """Camera-frame ``(..., 3)`` → pixels ``(..., 2)``; only meaningful where depth > NEAR."""
        depth = np.maximum(cam[..., 2:3], NEAR)
        return self.centre + self.focal * cam[..., :2] / depth


def _side_colour(joint: int) -> tuple[int, int, int]:
    name = JOINT_NAMES[joint]
    return LEFT_COLOUR if name.startswith("left") else RIGHT_COLOUR if name.startswith("right") else CENTRE_COLOUR


BONES = [(j, PARENTS[j]) for j in range(1, len(PARENTS))]
BONE_COLOURS = [_side_colour(j) for j, _ in BONES]


def _draw_grid(pen: ImageDraw.ImageDraw, view: View, centre: np.ndarray, extent: float = 4.0,
               spacing: float = 0.5) -> None:
    """Ground lines every ``spacing`` metres around ``centre``, cut into short pieces so lines that
    pass behind the camera are dropped piecewise rather than drawn wrapped around."""
    lo = np.floor((centre[:2] - extent) / spacing) * spacing
    ticks = [lo[k] + spacing * np.arange(int(2 * extent / spacing) + 2) for k in range(2)]
    steps = np.linspace(-extent, extent, 17)
    for axis in range(2):
        for value in ticks[axis]:
            points = np.zeros((len(steps), 3))
            points[:, axis] = value
            points[:, 1 - axis] = centre[1 - axis] + steps
            cam = view.camera_points(points)
            px = view.pixels(cam)
            for a in range(len(points) - 1):
                if cam[a, 2] > NEAR and cam[a + 1, 2] > NEAR:
                    pen.line([tuple(px[a]), tuple(px[a + 1])], fill=GRID_COLOUR, width=1)


def _draw_skeleton(pen: ImageDraw.ImageDraw, view: View, joints: np.ndarray) -> None:
    """Its shadow on the ground, then the bones far to near, then the joints."""
    shadow = joints.copy()
    shadow[:, 2] = 0.0
    cam_shadow = view.camera_points(shadow)
    px_shadow = view.pixels(cam_shadow)
    for j, p in BONES:
        if min(cam_shadow[j, 2], cam_shadow[p, 2]) > NEAR:
            pen.line([tuple(px_shadow[j]), tuple(px_shadow[p])], fill=SHADOW_COLOUR,
                     width=max(2, round(view.focal * 0.05 / cam_shadow[j, 2])))
    cam = view.camera_points(joints)
    px = view.pixels(cam)
    depth = np.array([(cam[j, 2] + cam[p, 2]) / 2 for j, p in BONES])
    for k in np.argsort(-depth):
        j, p = BONES[k]
        if min(cam[j, 2], cam[p, 2]) > NEAR:
            pen.line([tuple(px[j]), tuple(px[p])], fill=BONE_COLOURS[k],
                     width=max(2, round(view.focal * 0.04 / depth[k])))
    for j in np.argsort(-cam[:, 2]):
        if cam[j, 2] > NEAR:
            r = max(1.5, view.focal * 0.025 / cam[j, 2])
            x, y = px[j]
            pen.ellipse([x - r, y - r, x + r, y + r], fill=(250, 250, 250))


def _draw_mesh(pen: ImageDraw.ImageDraw, view: View, vertices: np.ndarray, faces: np.ndarray) -> None:
    """Back faces culled, front faces shaded by a light at the camera, drawn far to near."""
    cam = view.camera_points(vertices)
    tri = cam[faces]  # (F, 3 corners, 3)
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    centroids = tri.mean(axis=1)
    facing = (normals * centroids).sum(-1) < 0  # SMPL's faces wind outwards
    visible = facing & (tri[:, :, 2].min(axis=1) > NEAR)
    normals = normals[visible] / np.maximum(np.linalg.norm(normals[visible], axis=1, keepdims=True), 1e-12)
    light = -centroids[visible] / np.linalg.norm(centroids[visible], axis=1, keepdims=True)
    shade = 0.35 + 0.65 * np.clip((normals * light).sum(-1), 0.0, 1.0)
    colours = (shade[:, None] * MESH_COLOUR).astype(np.uint8)
    px = view.pixels(tri[visible])
    for k in np.argsort(-centroids[visible, 2]):
        pen.polygon([tuple(p) for p in px[k]], fill=tuple(int(c) for c in colours[k]))


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap size
        return ImageFont.load_default()


def _line_height(font) -> int:
    return font.getbbox("Ag")[3] + 3


def _caption(pen: ImageDraw.ImageDraw, text: str, width: int, font) -> None:
    """``text`` wrapped into the frame's top lines."""
    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if line and pen.textlength(trial, font=font) > width - 12:
            lines.append(line)
            line = word
        else:
            line = trial
    lines.append(line)
    for i, line in enumerate(lines[:3]):
        pen.text((6, 4 + i * _line_height(font)), line, fill=(255, 255, 255), font=font)


def render_motion(joints: np.ndarray, *, fps: float = 30.0, caption: str = "", camera: Camera = Camera(),
                  vertices: np.ndarray | None = None, faces: np.ndarray | None = None) -> np.ndarray:
    """``joints (T, 24, 3)`` z-up world motion → ``(T, size, size, 3)`` uint8 frames.

    With ``vertices (T, V, 3)`` and ``faces (F, 3)`` the body is drawn as a shaded mesh instead
    of bones. The caption and the time are written on every frame."""
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (len(JOINT_NAMES), 3) or len(joints) == 0:
        raise ValueError(f"joints must be (T>0, 24, 3), got {joints.shape}")
    targets = follow_targets(joints[:, 0], fps, camera)
    font = _font(max(10, camera.size // 28))
    frames = np.empty((len(joints), camera.size, camera.size, 3), dtype=np.uint8)
    for t in range(len(joints)):
        image = Image.new("RGB", (camera.size, camera.size), BACKGROUND)
        pen = ImageDraw.Draw(image)
        view = View(targets[t], camera)
        _draw_grid(pen, view, targets[t])
        if vertices is not None and faces is not None:
            _draw_mesh(pen, view, np.asarray(vertices[t], dtype=np.float64), faces)
        else:
            _draw_skeleton(pen, view, joints[t])
        if caption:
            _caption(pen, caption, camera.size, font)
        pen.text((6, camera.size - _line_height(font) - 4), f"{t / fps:4.1f} s", fill=(160, 160, 160), font=font)
        frames[t] = np.asarray(image)
    return frames


def side_by_side(clips: list[np.ndarray], gap: int = 4) -> np.ndarray:
    """Frame sequences ``(T_i, H, W_i, 3)`` of equal height → one sequence, panels left to right;
    shorter clips hold their last frame until the longest ends."""
    if not clips:
        raise ValueError("no clips to place side by side")
    length = max(len(c) for c in clips)
    height = clips[0].shape[1]
    if any(c.shape[1] != height for c in clips):
        raise ValueError("panels must have the same height")
    spacer = np.full((length, height, gap, 3), 0, dtype=np.uint8)
    panels = []
    for i, clip in enumerate(clips):
        held = np.concatenate([clip, np.repeat(clip[-1:], length - len(clip), axis=0)]) if len(clip) < length else clip
        panels.extend([held] if i == 0 else [spacer, held])
    return np.concatenate(panels, axis=2)
