"""`k2m extract`: videos → one k2m JSONL of keypoints per video, for `k2m preprocess`.

Only typer is imported at module level; the extraction (NumPy, ffmpeg, the backend) loads inside
the command.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import List, Optional

import typer

from k2m_cli.ui import is_quiet, print_table

BACKENDS = "Backends"


def extract(
    ctx: typer.Context,
    inputs: List[Path] = typer.Argument(..., show_default=False, help="Videos or folders (searched recursively)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the <video>.jsonl files."),
    estimator: str = typer.Option("mediapipe", "--estimator", rich_help_panel=BACKENDS,
                                  help="mediapipe (BlazePose, single-person, offline), ultralytics (YOLO-pose "
                                       "ONNX, tracked ids) or rtmlib (RTMPose / ViTPose ONNX, top-down)."),
    weights: Optional[Path] = typer.Option(None, "--weights", rich_help_panel=BACKENDS,
                                           help="Model file (.onnx) for ultralytics or rtmlib."),
    det_weights: Optional[Path] = typer.Option(None, "--det-weights", rich_help_panel=BACKENDS,
                                               help="rtmlib without --two-pass: YOLOX / RTMDet person detector "
                                                    "(.onnx)."),
    two_pass: bool = typer.Option(False, "--two-pass", rich_help_panel=BACKENDS,
                                  help="Paper A.2: --fast runs on every frame, the filters of `k2m preprocess` "
                                       "pick the stretches worth keeping, --estimator re-extracts only those."),
    fast: str = typer.Option("mediapipe", "--fast", rich_help_panel=BACKENDS,
                             help="The first-pass backend of --two-pass."),
    fast_weights: Optional[Path] = typer.Option(None, "--fast-weights", rich_help_panel=BACKENDS,
                                                help="Model file of --fast (ultralytics)."),
    focal: Optional[float] = typer.Option(None, "--focal", help="The cameras' focal length in pixels, when known."),
    fov: Optional[float] = typer.Option(None, "--fov", help="Or their field of view across the frame's long side, "
                                                           "degrees."),
    workers: int = typer.Option(1, "--workers", "-j", help="Videos extracted in parallel (one process each)."),
    force: bool = typer.Option(False, "--force", help="Extract again videos whose .jsonl exists."),
    strict: bool = typer.Option(False, "--strict", help="An unreadable video: exit 2 (checked before any "
                                                        "extraction)."),
) -> None:
    """Find people in videos with a pose estimator: one k2m JSONL per video (frame size, rate, focal
    length when known; per frame the largest person's COCO-17 keypoints, box and tracked id), which
    `k2m preprocess OUT` reads as it is. Videos already extracted are skipped; unreadable ones are
    reported and skipped.

    \b
    Example:
      k2m extract videos/ --out keypoints/ --workers 2
      k2m preprocess keypoints/ --videos videos/ --captions captions.jsonl --out data.h5
      k2m extract videos/ --out kp/ --two-pass --fast ultralytics --fast-weights yolo11n-pose.onnx \\
          --estimator rtmlib --weights rtmpose-m.onnx
    """
    from k2m_core.extract.estimators import EstimatorSpec
    from k2m_core.extract.run import ExtractConfig, run_extract

    accurate = EstimatorSpec(estimator, weights, det_weights)
    cfg = ExtractConfig(estimator=accurate,
                        fast=EstimatorSpec(fast, fast_weights, None, "--fast") if two_pass else None,
                        focal=focal, fov=fov, workers=workers, force=force, strict=strict)
    quiet = is_quiet(ctx)
    start = time.perf_counter()
    with _Bars(quiet) as on_event:
        results = run_extract(inputs, out, cfg, on_event)
    elapsed = time.perf_counter() - start
    by = {s: [r for r in results if r.status == s] for s in ("done", "skipped", "unreadable")}
    frames = sum(r.frames for r in by["done"])
    print_table("k2m extract", ["", ""], [
        ["extracted", f"{len(by['done']):,} videos · {frames:,} frames · "
                      f"{sum(r.with_person for r in by['done']):,} with a person"],
        ["speed", f"{frames / max(elapsed, 1e-9):,.1f} frames/s over {elapsed:.1f} s"],
        ["skipped", f"{len(by['skipped']):,} already extracted (--force redoes them)"],
        ["unreadable", f"{len(by['unreadable']):,}"],
    ], quiet)
    for r in by["unreadable"]:
        typer.echo(f"skipped {r.video}: {r.message}", err=True)
    folders = {r.video.parent for r in results}
    videos = str(folders.pop()) if len(folders) == 1 else "VIDEO_DIR"
    typer.echo(f"{out}: {len(by['done'])} extracted, {len(by['skipped'])} already there, "
               f"{len(by['unreadable'])} unreadable; next: k2m preprocess {out} --captions FILE --out DATA.h5 "
               f"--videos {videos}")


class _Bars:
    """Rich progress on stderr (nothing when quiet): one bar over the videos and one per video
    being extracted, each with its frames per second."""

    def __init__(self, quiet: bool) -> None:
        self.quiet, self.bar, self.tasks, self.frames = quiet, None, {}, 0

    def __enter__(self):
        return None if self.quiet else self.update

    def update(self, video: str, kind: str, value) -> None:
        if self.bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[rate]}"), TextColumn("ETA"), TimeRemainingColumn(),
                                console=Console(stderr=True))
            self.bar.__enter__()
            self.overall = self.bar.add_task("videos", total=None, rate="")
        if kind == "jobs":
            self.bar.update(self.overall, total=value)
        elif kind == "total":
            if video not in self.tasks:
                self.tasks[video] = self.bar.add_task(f"  {video}", total=value, rate="")
            else:
                self.bar.update(self.tasks[video], total=value)
        elif kind == "frames" and video in self.tasks:
            self.frames += value
            task = self.tasks[video]
            self.bar.update(task, advance=value, rate=self._rate(task))
            self.bar.update(self.overall, rate=f"{self.frames:,} frames · {self._rate(self.overall, self.frames)}")
        elif kind == "done":
            if video in self.tasks:
                self.bar.remove_task(self.tasks.pop(video))
            self.bar.update(self.overall, advance=1)

    def _rate(self, task_id, done: float | None = None) -> str:
        task = self.bar.tasks[[t.id for t in self.bar.tasks].index(task_id)]
        done = task.completed if done is None else done
        return f"{done / task.elapsed:,.1f} frames/s" if task.elapsed else ""

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)
