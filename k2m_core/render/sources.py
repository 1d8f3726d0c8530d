"""What `k2m render` draws: motion files as 3D scenes side by side, or a dataset clip's 2D keypoints
(optionally over the frames of its source video)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from k2m_core.body.base import BodyModel
from k2m_core.errors import UserError
from k2m_core.export.motion_file import WorldMotion
from k2m_core.render.scene import Camera, render_motion, side_by_side


def render_motions(motions: list[WorldMotion], body: BodyModel, *, captions: list[str],
                   camera: Camera = Camera(), fps: float | None = None) -> tuple[np.ndarray, float]:
    """Each motion as a panel, left to right, at ``fps`` (default: the first motion's rate).

    Joints stored in a file are drawn as stored; otherwise (and whenever a mesh is drawn) ``body``
    (float64) poses the motion. Returns ``(frames (T, H, W, 3) uint8, fps)``."""
    fps = fps or motions[0].fps
    panels = []
    for motion, caption in zip(motions, captions):
        motion = motion.resampled(fps)
        if body.has_mesh:
            posed = motion.pose(body, with_vertices=True)
            panels.append(render_motion(posed.joints.numpy(), fps=fps, caption=caption, camera=camera,
                                        vertices=posed.vertices.numpy(), faces=body.faces.cpu().numpy()))
        else:
            joints = motion.joints if motion.joints is not None else motion.pose(body).joints.numpy()
            panels.append(render_motion(joints, fps=fps, caption=caption, camera=camera))
    return side_by_side(panels), fps


def clip_source(dataset, index: int) -> dict:
    """The source record preprocess stored for a clip (file, video, track, frames, fps), or {}."""
    try:
        record = json.loads(dataset.sources[index])
    except (json.JSONDecodeError, TypeError):
        return {}
    return record if isinstance(record, dict) else {}


def video_frames(path: Path, picks: np.ndarray) -> list[np.ndarray]:
    """Frames ``picks`` (sorted source-frame numbers) of a video, read in one pass."""
    import imageio.v2 as iio

    wanted = {int(p) for p in picks}
    found: dict[int, np.ndarray] = {}
    try:
        reader = iio.get_reader(str(path), format="FFMPEG")
    except Exception as exc:  # imageio raises many types for unreadable files
        raise UserError(f"{path}: cannot read video ({exc})") from None
    with reader:
        for number, frame in enumerate(reader):
            if number in wanted:
                found[number] = frame
            if number >= max(wanted):
                break
    missing = sorted(wanted - set(found))
    if missing:
        raise UserError(f"{path}: the clip needs frames up to {max(wanted)} but the video ends at "
                        f"{max(found, default=-1)}; is this the clip's source video?")
    return [found[int(p)] for p in picks]


def render_dataset_clip(dataset, clip_id: str, *, video: Path | None = None,
                        max_side: int = 480) -> tuple[np.ndarray, float]:
    """A dataset clip's keypoints as frames at the dataset rate, over ``video``'s frames if given."""
    from k2m_core.render.draw import draw_keypoints

    try:
        index = dataset.index_of(clip_id)
    except UserError:
        close = [c for c in dataset.ids if clip_id in c][:3]
        raise UserError(f"{dataset.path}: no clip {clip_id!r}"
                        + (f"; did you mean {', '.join(close)}?" if close else "; list clips with `k2m data info`")) from None
    keypoints = dataset.keypoints(index)
    backgrounds = None
    if video is not None:
        source = clip_source(dataset, index)
        if "frames" not in source or "fps" not in source:
            raise UserError(f"{dataset.path}: clip {clip_id} records no source frames (not made by "
                            "`k2m preprocess`); it cannot be drawn over a video")
        first, src_fps = int(source["frames"][0]), float(source["fps"])
        picks = first + np.round(np.arange(len(keypoints)) * src_fps / dataset.fps).astype(int)
        backgrounds = video_frames(video, picks)
    caption = (dataset.captions(index) or [""])[0]
    return draw_keypoints(keypoints, max_side=max_side, caption=caption, backgrounds=backgrounds), dataset.fps
