"""The work on one input unit, as run in a worker process: read → select the person → resample to
30 fps → filter → cut into clips. Never raises for bad input: problems go into the unit's report.

Only NumPy (and ffmpeg when videos are given) is used here, so spawned workers start fast.
"""

from __future__ import annotations

import json
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from k2m_core.keypoints import FRAME_SIZE_ROW, NUM_JOINTS, NUM_ROWS, camera_focal
from k2m_core.preprocess.config import PreprocessConfig
from k2m_core.preprocess.detections import Detections, FormatError, drop_far_keypoints
from k2m_core.preprocess.filters import frame_failures, measure, motion_level
from k2m_core.preprocess.formats import Unit, read_unit
from k2m_core.preprocess.report import Report
from k2m_core.preprocess.segment import (
    resample, resample_flags, source_positions, split_stretch, valid_stretches)
from k2m_core.preprocess.tracking import PersonRun, select_person
from k2m_core.preprocess.video import VideoInfo, VideoMeta, find_video, read_video

# What a corrupted input can make a parser raise; anything else is a bug and propagates.
INPUT_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, UnicodeError,
                OSError, EOFError, RecursionError, zipfile.BadZipFile, zlib.error)


@dataclass
class Clip:
    clip_id: str
    video: str
    source: str          # JSON: file, video, track, source frame range, source fps
    keypoints: np.ndarray  # (F, 18, 3) float32 at the stored rate
    focal: float         # the camera's focal length in pixels of this clip's frame


@dataclass
class UnitResult:
    unit: Unit
    clips: list[Clip] = field(default_factory=list)
    report: Report = field(default_factory=Report)
    sources: dict[str, str] = field(default_factory=dict)  # video id → source, for duplicate checks


def process_unit(unit: Unit, cfg: PreprocessConfig, hints: dict[str, VideoMeta] | None = None) -> UnitResult:
    """Process one unit; ``hints`` are the ``--video-info`` entries of its videos."""
    result = UnitResult(unit)
    hints = hints or {}
    try:
        for item in read_unit(unit, cfg.inputs.frame_regex):
            if isinstance(item, FormatError):
                result.report.file_problem(unit.label, item.reason, str(item))
                continue
            try:
                _process_video(item, unit, cfg, hints.get(item.video, VideoMeta()), result)
            except FormatError as exc:
                result.report.file_problem(item.source, exc.reason, str(exc))
    except INPUT_ERRORS as exc:
        result.report.file_problem(unit.label, "unreadable", f"{type(exc).__name__}: {exc}")
    return result


def _video_folders(unit: Unit, cfg: PreprocessConfig) -> list[Path]:
    folders = [Path(cfg.inputs.videos)] if cfg.inputs.videos else []
    return folders + [unit.path.parent] + ([unit.path] if unit.path.is_dir() else [])


def _read_video(det: Detections, unit: Unit, cfg: PreprocessConfig, hint: VideoMeta,
                report: Report) -> VideoInfo | None:
    need_info = (det.size is None and hint.size is None and cfg.inputs.size is None) or \
        (det.fps is None and hint.fps is None and cfg.inputs.fps is None)
    if not (need_info or cfg.inputs.camera_check):
        return None
    path = find_video(det.video, _video_folders(unit, cfg))
    if path is None:
        return None
    f = cfg.filters
    try:
        return read_video(path, cfg.inputs.camera_check, f.camera_edge, f.camera_threshold)
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        report.file_problem(str(path), "video-unreadable", f"ffmpeg cannot read it ({str(exc).splitlines()[0]})",
                            fatal=False)
        return None


def _process_video(det: Detections, unit: Unit, cfg: PreprocessConfig, hint: VideoMeta,
                   result: UnitResult) -> None:
    """Frame rate and size come from the file, else --video-info, else --fps/--size, else the
    video; the focal length from the file, else --video-info, else --focal/--fov, else
    `default_focal` of the frame size."""
    report = result.report
    if len(det) == 0:  # nobody in any frame: nothing to size, time or check
        report.videos += 1
        report.source_frames += len(det.declared)
        report.reject("no-person", "frame", len(det.declared), len(det.declared),
                      example=f"{det.video}: nobody in any frame")
        return
    video = _read_video(det, unit, cfg, hint, report)
    fps = det.fps or hint.fps or cfg.inputs.fps or (video.fps if video else None)
    if fps is None:
        fps = cfg.segment.fps
        report.fps_assumed += 1
    size = hint.size or cfg.inputs.size or ((video.width, video.height) if video else None)
    if det.size is None and size is None:
        raise FormatError("no-frame-size", "the file has no frame size; give --size WxH or --video-info FILE, "
                          f"or put the video ({det.video}.mp4) beside it or in --videos")
    det, dropped = drop_far_keypoints(det, size)
    if dropped:
        report.file_problem(det.source, "outside-frame", f"{dropped} keypoints lay more than a frame size outside "
                            "the frame; they were dropped (treated as missing)", fatal=False)
    moving = video.moving if video else None
    report.videos += 1
    report.source_frames += len(det.declared)
    report.camera_checked += moving is not None
    report.camera_unchecked += moving is None
    result.sources.setdefault(det.video, det.source)
    span = int(det.declared[-1] - det.declared[0] + 1)
    if span > len(det.declared):
        first = int(det.declared[np.flatnonzero(np.diff(det.declared) > 1)[0]])
        report.file_problem(det.source, "frame-gap", f"{span - len(det.declared)} frame numbers missing "
                            f"(first after frame {first}); clips are cut there", fatal=False)
    runs = select_person(det, cfg.track)
    unseen = len(det.declared) - sum(len(r.frames) for r in runs)
    if unseen > 0:
        frames = int(round(unseen * cfg.segment.fps / fps))
        report.reject("no-person", "frame", frames, frames, example=f"{det.video}: {unseen} source frames")
    for run in runs:
        run_size = run.size if run.size is not None else size
        _process_run(det, run, fps, run_size, _focal(det, hint, cfg, run_size), moving, cfg, result)


def _focal(det: Detections, hint: VideoMeta, cfg: PreprocessConfig, size) -> float:
    return camera_focal(float(size[0]), float(size[1]), known=det.focal or hint.focal, focal=cfg.inputs.focal,
                        fov=cfg.inputs.fov)


def _process_run(det: Detections, run: PersonRun, fps: float, size, focal: float, moving, cfg: PreprocessConfig,
                 result: UnitResult) -> None:
    report, seg = result.report, cfg.segment
    width, height = float(size[0]), float(size[1])
    pos = source_positions(len(run.frames), fps, seg.fps)
    xy, conf = resample(run.xy, run.conf, pos)
    camera = None
    if moving is not None:
        inside = (run.frames >= 0) & (run.frames < len(moving))
        camera = resample_flags(inside & moving[np.clip(run.frames, 0, len(moving) - 1)], pos)
    measures = measure(xy, conf, cfg.filters.min_conf)
    fails = frame_failures(measures, height, seg.fps, camera, cfg.filters)
    bad = np.zeros(len(xy), dtype=bool)
    for reason, mask in fails.items():
        count = int(mask.sum())
        if count:
            frame = int(run.frames[0] + np.floor(pos[np.argmax(mask)]))
            report.reject(reason, "frame", count, count, example=f"{det.video} frame {frame}")
            bad |= mask

    def span(a: int, b: int) -> tuple[int, int]:
        return int(run.frames[0] + np.floor(pos[a])), int(run.frames[0] + np.ceil(pos[b - 1]))

    keypoints = None
    for start, stop in valid_stretches(~bad):
        for a, b in split_stretch(start, stop, seg.max_frames):
            first, last = span(a, b)
            where = f"{det.video} frames {first}-{last}"
            if b - a < seg.min_frames:
                report.reject("too-short", "clip", 1, b - a, example=where)
            elif motion_level(measures, a, b, seg.fps) < cfg.filters.min_speed:
                report.reject("stationary", "clip", 1, b - a, example=where)
            else:
                source = json.dumps({"file": det.source, "video": det.video, "track": run.track,
                                     "frames": [first, last], "fps": fps})
                if keypoints is None:
                    keypoints = _clip_rows(xy, conf, width, height)  # once per run; clips are slices
                result.clips.append(Clip(f"{det.video}_t{run.track}_{first:06d}", det.video, source,
                                         keypoints[a:b].copy(), focal))


def _clip_rows(xy: np.ndarray, conf: np.ndarray, width: float, height: float) -> np.ndarray:
    """The rows (docs/design.md#keypoints) of a run, as `keypoints.make_clip` builds them, minus its checks and float64
    round trip: detections are already canonical (finite, conf in [0, 1], missing = (0, 0, 0))."""
    clip = np.empty((len(xy), NUM_ROWS, 3), dtype=np.float32)
    clip[:, :NUM_JOINTS, :2] = xy
    clip[:, :NUM_JOINTS, 2] = conf
    clip[:, FRAME_SIZE_ROW] = (width, height, 1.0)
    return clip
