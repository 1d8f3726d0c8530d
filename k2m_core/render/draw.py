"""Draw 2D keypoint clips as frames. Pure PIL + NumPy: works headless everywhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from k2m_core.keypoints import EDGES, FRAME_SIZE_ROW, NUM_JOINTS

LEFT_COLOUR = (230, 90, 60)
RIGHT_COLOUR = (60, 130, 230)
CENTRE_COLOUR = (240, 240, 240)
BACKGROUND = (24, 26, 30)


def _edge_colour(a: int, b: int) -> tuple[int, int, int]:
    # COCO odd indices (1, 3, 5, …) are the subject's left side, even (2, 4, …) the right.
    if a % 2 == 1 and b % 2 == 1:
        return LEFT_COLOUR
    if a % 2 == 0 and b % 2 == 0 and a and b:
        return RIGHT_COLOUR
    return CENTRE_COLOUR


def draw_keypoints(clip: np.ndarray, max_side: int = 480, conf_threshold: float = 0.3,
                   caption: str | None = None, backgrounds=None) -> np.ndarray:
    """``(F, 18, 3)`` clip → ``(F, h, w, 3)`` uint8 frames of the source frame size scaled so its
    longer side is ``max_side``. Keypoints below ``conf_threshold`` are not drawn; low-confidence
    ones are drawn dimmer. ``backgrounds`` (a sequence of ``F`` RGB images, e.g. the source
    video's frames) are drawn under the keypoints, scaled to the frame."""
    width, height = float(clip[0, FRAME_SIZE_ROW, 0]), float(clip[0, FRAME_SIZE_ROW, 1])
    scale = max_side / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    radius = max(2, max_side // 160)
    frames = np.empty((len(clip), size[1], size[0], 3), dtype=np.uint8)
    for t, frame in enumerate(clip):
        if backgrounds is None:
            image = Image.new("RGB", size, BACKGROUND)
        else:
            image = Image.fromarray(np.asarray(backgrounds[t], dtype=np.uint8)).convert("RGB").resize(size)
        pen = ImageDraw.Draw(image)
        xy, conf = frame[:NUM_JOINTS, :2] * scale, frame[:NUM_JOINTS, 2]
        for a, b in EDGES:
            if conf[a] >= conf_threshold and conf[b] >= conf_threshold:
                pen.line([tuple(xy[a]), tuple(xy[b])], fill=_dim(_edge_colour(a, b), min(conf[a], conf[b])),
                         width=radius)
        for j in range(NUM_JOINTS):
            if conf[j] >= conf_threshold:
                x, y = xy[j]
                pen.ellipse([x - radius, y - radius, x + radius, y + radius], fill=_dim((255, 255, 255), conf[j]))
        if caption:
            pen.text((6, 6), caption, fill=(255, 255, 255))
        frames[t] = np.asarray(image)
    return frames


def _dim(colour: tuple[int, int, int], conf: float) -> tuple[int, int, int]:
    k = 0.35 + 0.65 * float(conf)
    return tuple(int(c * k) for c in colour)


def gif_durations(count: int, fps: float) -> list[int]:
    """Per-frame GIF delays in ms. GIF counts in centiseconds, so a fixed 33 ms (30 fps) would play
    10 % fast; alternating 30/40 ms keeps frame k at time k/fps to within 10 ms."""
    ends = np.round(np.arange(1, count + 1) * 100.0 / fps)
    return (10 * np.diff(ends, prepend=0.0)).astype(int).tolist()


def write_video(path, frames: np.ndarray, fps: float) -> None:
    """Write ``(T, H, W, 3)`` uint8 frames as .gif or .mp4 (H.264 via imageio-ffmpeg), chosen by
    the suffix of ``path``; atomically, so a half-written video never appears. A GIF stores a run
    of identical frames once, with their summed delay: it plays for the same time."""
    import imageio.v3 as iio

    from k2m_core.atomic import atomic_path

    suffix = Path(path).suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise ValueError(f"{path}: videos are .gif or .mp4")
    with atomic_path(path) as tmp:
        named = tmp.with_name(tmp.name + suffix)  # ffmpeg picks the container by the file name
        try:
            if suffix == ".gif":
                iio.imwrite(named, frames, extension=".gif", duration=gif_durations(len(frames), fps), loop=0)
            else:
                # H.264 in yuv420p needs even sides: pad by one edge row/column where odd.
                pad = ((0, 0), (0, frames.shape[1] % 2), (0, frames.shape[2] % 2), (0, 0))
                iio.imwrite(named, np.pad(frames, pad, mode="edge"), extension=".mp4", fps=fps,
                            codec="libx264", pixelformat="yuv420p", macro_block_size=1)
            named.replace(tmp)
        finally:
            named.unlink(missing_ok=True)
