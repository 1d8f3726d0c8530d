"""`k2m render`: motions as 3D videos, dataset clips as 2D keypoint videos."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from k2m_core.errors import UserError

VIDEO_SUFFIXES = (".mp4", ".gif")


def render(
    inputs: List[Path] = typer.Argument(..., help="Motions (.npz / .bvh), drawn side by side; or one dataset .h5 with --clip."),
    clip: Optional[str] = typer.Option(None, "--clip", help="Dataset mode: the clip id to draw (see `k2m data info`)."),
    video: Optional[Path] = typer.Option(None, "--video", help="Dataset mode: draw the keypoints over this source video."),
    out: Optional[Path] = typer.Option(None, "--out", help="Video file, .mp4 or .gif (default: FIRST_INPUT.mp4 / CLIP.mp4 in this folder)."),
    body_model: Optional[str] = typer.Option(None, "--body-model", help="skeleton (default) or a SMPL model file/folder: draws the mesh."),
    size: int = typer.Option(384, "--size", help="Pixels per panel side."),
    fps: Optional[float] = typer.Option(None, "--fps", help="Video frame rate (default: the motion's own)."),
    azimuth: float = typer.Option(30.0, "--azimuth", help="Camera angle about the vertical, degrees (0: where the video was shot)."),
    distance: float = typer.Option(4.0, "--distance", help="Camera distance from the body, metres."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output file."),
) -> None:
    """Render motions as a video: a 3D skeleton (or SMPL mesh) on a ground grid with a following
    camera, several motions side by side with their captions. Headless (no OpenGL).

    Given a dataset file and --clip, draws that clip's 2D keypoints instead, optionally over its
    source video (--video).

    Example: k2m render out/a_man_jumps_00.npz out/a_man_jumps_01.npz --out jumps.mp4
    """
    dataset_mode = len(inputs) == 1 and inputs[0].suffix.lower() in (".h5", ".hdf5")
    if dataset_mode and clip is None:
        raise UserError(f"{inputs[0]} is a dataset: pass --clip ID to choose the clip to draw (ids: `k2m data info`)")
    if not dataset_mode and (clip is not None or video is not None):
        raise UserError("--clip and --video draw a dataset clip: give one dataset .h5 file as the input")
    if out is None:
        from k2m_core.names import id_stem

        out = Path(f"{id_stem(clip)}.mp4") if dataset_mode else inputs[0].with_suffix(".mp4")
    if out.suffix.lower() not in VIDEO_SUFFIXES:
        raise UserError(f"--out {out}: write .mp4 or .gif")
    if out.exists() and not force:
        raise UserError(f"{out} exists; pass --force to overwrite it")
    if not 64 <= size <= 2048:
        raise UserError(f"--size {size}: give 64–2048 pixels")
    if fps is not None and not 1 <= fps <= 240:
        raise UserError(f"--fps {fps}: give 1–240 frames per second")
    for path in inputs:
        if not path.is_file():
            raise UserError(f"{path}: no such file")
    if video is not None and not video.is_file():
        raise UserError(f"--video {video}: no such file")

    from k2m_core.render.draw import write_video

    if dataset_mode:
        from k2m_core.data.dataset import Dataset
        from k2m_core.render.sources import render_dataset_clip

        frames, rate = render_dataset_clip(Dataset(inputs[0]), clip, video=video, max_side=size)
    else:
        import torch

        from k2m_core.body import load_body_model
        from k2m_core.export.motion_file import load_motion
        from k2m_core.render.scene import Camera
        from k2m_core.render.sources import render_motions

        camera = Camera(size=size, azimuth=azimuth, distance=distance)
        body = load_body_model(body_model).to(torch.float64)
        motions = [load_motion(path, body) for path in inputs]
        captions = [m.text or path.stem.replace("_", " ") for m, path in zip(motions, inputs)]
        frames, rate = render_motions(motions, body, captions=captions, camera=camera, fps=fps)
    write_video(out, frames, fps or rate)
    typer.echo(str(out))
