"""`k2m preprocess`: pose-estimator outputs (+ captions) → a dataset file.

Only typer is imported at module level; the pipeline (NumPy, h5py) and rich load inside the command.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import List, Optional

import typer

from k2m_cli.ui import is_quiet, parse_size, print_table
from k2m_core.errors import UserError

FILTERS = "Filters (paper A.2)"


def command_line(ctx: typer.Context) -> str:
    """The command as a user would type it, from the parsed parameters (stored in the dataset)."""
    words = ["k2m", *ctx.command_path.split()[1:]]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if value is None or value == param.default or param.name == "ctx":
            continue
        if param.param_type_name == "argument":
            words.extend(str(v) for v in (value if isinstance(value, (list, tuple)) else [value]))
        elif param.is_flag:
            names = param.opts if value else param.secondary_opts
            words.extend(names[:1])
        else:
            words.extend([param.opts[0], str(value)])
    return shlex.join(words)


def parse_shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(v) for v in text.split("/"))
    except ValueError:
        raise UserError(f"--shard must look like 0/4 (this is part i of n, counting from 0), got {text!r}") from None
    return index, count


def preprocess(
    ctx: typer.Context,
    inputs: List[Path] = typer.Argument(..., show_default=False,
                                        help="Keypoint files or folders (searched recursively)."),
    out: Path = typer.Option(..., "--out", "-o", help="Dataset file to create (.h5)."),
    captions: Optional[Path] = typer.Option(None, "--captions", help="CSV or JSONL mapping video (or clip) ids to captions. Clips without captions are kept: they train the tokenizer; the text models skip them."),
    fmt: str = typer.Option("auto", "--format", help="auto, coco, openpose, mmpose, npz or jsonl."),
    frame_regex: Optional[str] = typer.Option(None, "--frame-regex",
                                              help="Regex whose first group is the frame number in image ids "
                                                   "or file names (default: their last number)."),
    size: Optional[str] = typer.Option(None, "--size", help="Frame size WxH when the files do not say."),
    video_info: Optional[Path] = typer.Option(None, "--video-info",
                                              help="CSV/JSONL with video (or id), width, height, fps, focal per video, "
                                                   "for formats that store none (e.g. the clips.jsonl of "
                                                   "`k2m data synth`)."),
    fps: Optional[float] = typer.Option(None, "--fps", help="Input frame rate when the files do not say "
                                                            "(else the video's, else 30)."),
    focal: Optional[float] = typer.Option(None, "--focal", help="Camera focal length in pixels when neither the "
                                                                "files nor --video-info say (5000: the paper's "
                                                                "camera; default: a fixed share of the frame's long "
                                                                "side, DEFAULT_FOCAL_PER_EXTENT of k2m_core.keypoints)."),
    fov: Optional[float] = typer.Option(None, "--fov", help="Or the camera's field of view in degrees across the "
                                                            "frame's long side (horizontal for landscape video)."),
    videos: Optional[Path] = typer.Option(None, "--videos", help="Folder with the source videos "
                                                                 "(<video id>.mp4; default: beside the inputs)."),
    camera_check: bool = typer.Option(True, "--camera-check/--no-camera-check",
                                      help="Drop frames where the camera moves (needs the videos)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the train/val/test split (by source video)."),
    workers: int = typer.Option(1, "--workers", "-j", help="Parallel worker processes."),
    shard: str = typer.Option("0/1", "--shard", help="Process part i of n of the inputs (i counts from 0); "
                                                     "combine the parts with `k2m data merge`."),
    strict: bool = typer.Option(False, "--strict", help="Any input problem: exit 2, write nothing."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing --out file."),
    report: Optional[Path] = typer.Option(None, "--report", help="Where to write the JSON report "
                                                                  "(default: <out>.report.json)."),
    min_conf: float = typer.Option(0.5, "--min-conf", rich_help_panel=FILTERS,
                                   help="A keypoint counts as seen at or above this confidence."),
    min_visible: float = typer.Option(0.75, "--min-visible", rich_help_panel=FILTERS,
                                      help="More than this fraction of the 17 keypoints must be seen."),
    lower_body: bool = typer.Option(True, "--lower-body/--no-lower-body", rich_help_panel=FILTERS,
                                    help="Require every keypoint below the pelvis (knees, ankles) seen."),
    min_box_height: float = typer.Option(1 / 3, "--min-box-height", rich_help_panel=FILTERS, show_default="1/3",
                                         help="Person taller than this fraction of the frame height."),
    max_speed: float = typer.Option(10.0, "--max-speed", rich_help_panel=FILTERS,
                                    help="Most mean keypoint speed per frame, person sizes/s (teleports)."),
    max_accel: float = typer.Option(400.0, "--max-accel", rich_help_panel=FILTERS,
                                    help="Most mean keypoint acceleration per frame, person sizes/s²."),
    min_speed: float = typer.Option(0.1, "--min-speed", rich_help_panel=FILTERS,
                                    help="Least mean keypoint speed of a clip over 0.2 s, person sizes/s."),
    camera_threshold: float = typer.Option(8.0, "--camera-threshold", rich_help_panel=FILTERS,
                                           help="Mean grey-level change (0-255) at both frame edges that "
                                                "means the camera moved."),
    camera_edge: float = typer.Option(0.1, "--camera-edge", rich_help_panel=FILTERS,
                                      help="Width of each edge strip, as a fraction of the frame width."),
    min_seconds: float = typer.Option(2.0, "--min-seconds", rich_help_panel=FILTERS, help="Shortest clip."),
    max_seconds: float = typer.Option(10.0, "--max-seconds", rich_help_panel=FILTERS,
                                      help="Longest clip (longer stretches are split evenly)."),
    track_shift: float = typer.Option(0.5, "--track-shift", rich_help_panel=FILTERS,
                                      help="Most mean keypoint move between frames for the same person, "
                                           "in person sizes."),
) -> None:
    """Turn pose-estimator outputs and captions into a dataset file.

    Reads COCO results/annotation JSON (also Halpe-26, COCO-WholeBody), OpenPose JSON folders
    (BODY_25, COCO-18), MMPose 1.x predictions, .npz/.npy arrays (ultralytics, rtmlib) and k2m
    JSONL; picks the largest person per frame without switching people; drops frames failing the
    paper's filters; cuts 2-10 s clips at 30 fps; splits train/val/test by video. Bad inputs are
    listed in the report (<out>.report.json) and skipped, unless --strict.

    \b
    Example:
      k2m preprocess poses/ --captions captions.jsonl --out data/web.h5 --workers 8
      k2m preprocess openpose_out/ --size 1920x1080 --fps 25 --captions caps.csv --out part0.h5 --shard 0/4
    """
    from k2m_core.preprocess.config import InputOptions, PreprocessConfig
    from k2m_core.preprocess.filters import FilterConfig
    from k2m_core.preprocess.pipeline import NothingKept, default_report_path, run_preprocess
    from k2m_core.preprocess.segment import SegmentConfig
    from k2m_core.preprocess.tracking import TrackConfig

    cfg = PreprocessConfig(
        inputs=InputOptions(format=fmt, frame_regex=frame_regex, size=parse_size(size), fps=fps,
                            focal=focal, fov=fov,
                            video_info=video_info, videos=videos, camera_check=camera_check),
        track=TrackConfig(max_shift=track_shift),
        filters=FilterConfig(min_conf=min_conf, min_visible=min_visible, lower_body=lower_body,
                             min_box_height=min_box_height, max_speed=max_speed, max_accel=max_accel,
                             min_speed=min_speed, camera_threshold=camera_threshold, camera_edge=camera_edge),
        segment=SegmentConfig(min_seconds=min_seconds, max_seconds=max_seconds),
        seed=seed, workers=workers, shard=parse_shard(shard), strict=strict)
    quiet = is_quiet(ctx)
    report_path = report or default_report_path(out)
    try:
        with _ProgressBar(quiet) as on_progress:
            result, summary = run_preprocess(inputs, out, captions, cfg, report_path=report_path,
                                             command=command_line(ctx), force=force, on_progress=on_progress)
    except NothingKept as exc:
        print_summary(exc.summary, quiet)  # why nothing was kept, before the error line
        raise
    print_summary(summary, quiet)
    typer.echo(f"{out}: {result.clips} clips, {summary['kept']['hours']:.2f} h; report: {report_path}")


def print_summary(summary: dict, quiet: bool) -> None:
    """The run's summary and its rejections by reason, as tables on stderr."""
    inputs, kept, camera = summary["inputs"], summary["kept"], summary["camera"]
    rows = [
        ["inputs read", f"{inputs['read']:,} files · {inputs['videos']:,} videos · {inputs['frames']:,} frames "
                        f"({inputs['rejected']:,} rejected)"],
        ["clips kept", f"{kept['clips']:,} from {kept['videos']:,} videos"],
        ["frames", f"{kept['frames']:,} at {kept['fps']:g} fps"],
        ["hours", f"{kept['hours']:.3f}"],
        ["camera checked", f"{camera['checked_videos']:,} videos ({camera['not_checked_videos']:,} not: no video "
                           "found or --no-camera-check)"],
    ]
    if summary["captions"]["clips_without"]:
        rows.append(["without captions", f"{summary['captions']['clips_without']:,} clips (they train the tokenizer; "
                                         "the text models skip them)"])
    print_table("k2m preprocess", ["", ""], rows, quiet)
    if summary["rejections"]:
        print_table("rejections", ["reason", "level", "count", "frames", "example"],
                    [[reason, r["level"], f"{r['count']:,}", f"{r['frames']:,}", (r["examples"] or [""])[0]]
                     for reason, r in summary["rejections"].items()], quiet)


class _ProgressBar:
    """A rich progress bar on stderr (none when quiet) as the `run_preprocess` callback. It starts
    at the first report (the total is known only once the inputs are found), so a run that fails
    early prints nothing but its error line."""

    def __init__(self, quiet: bool) -> None:
        self.quiet, self.bar, self.task = quiet, None, None

    def __enter__(self):
        return None if self.quiet else self.update

    def update(self, done: int, total: int, running) -> None:
        if self.bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("preprocess"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[frames]:,} frames · {task.fields[rate]:,.0f} frames/s · "
                                           "{task.fields[clips]:,} clips"),
                                TextColumn("ETA"), TimeRemainingColumn(), console=Console(stderr=True))
            self.bar.__enter__()
            self.task = self.bar.add_task("preprocess", total=total, frames=0, clips=0, rate=0.0)
        elapsed = self.bar.tasks[0].elapsed or 1e-9
        self.bar.update(self.task, completed=done, frames=running.source_frames, clips=running.clips,
                        rate=running.source_frames / elapsed)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)
