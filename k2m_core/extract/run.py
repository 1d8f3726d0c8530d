"""`k2m extract`: videos → one k2m JSONL per video (``<out>/<video stem>.jsonl``).

Each video's record holds the frame size, the frame rate, the focal length when known, and per
frame the largest person's COCO-17 keypoints (pixels, confidence), box and — where the backend
tracks — person id; frames without a person are null. `k2m preprocess OUT` reads it as it is (the
camera-movement check finds the videos with ``--videos`` or when they lie beside the JSONL).

With ``--two-pass`` (paper A.2) a fast backend runs on every frame, the filters of
`k2m_core.preprocess.filters` (at the video's own frame rate, with camera movement) and the
shortest-clip and stationary rules of preprocess mark the stretches worth keeping, and the
accurate backend re-extracts only those, given the fast pass's box of the person; other frames
are null.

Outputs are written atomically, so a finished-looking file is a finished one, and an existing
output is skipped unless ``force``.
"""

from __future__ import annotations

import functools
import itertools
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from k2m_core.errors import UserError
from k2m_core.extract.estimators import Estimator, EstimatorSpec, People
from k2m_core.extract.score import box_area, iou
from k2m_core.inputs import find_files
from k2m_core.keypoints import check_focal_options, focal_from_fov
from k2m_core.preprocess.filters import FilterConfig, frame_failures, measure, motion_level
from k2m_core.preprocess.formats.k2m_jsonl import write_k2m_jsonl
from k2m_core.preprocess.segment import SegmentConfig, valid_stretches
from k2m_core.preprocess.video import VIDEO_SUFFIXES, read_video

MIN_HINT_IOU = 0.1  # two-pass: the accurate backend's person must overlap the fast pass's box this much

# on_event(video name, kind, value): kind "jobs" (once, name "": the number of videos to extract),
# "total" (frames to process, None when unknown; it grows in two-pass), "frames" (n more
# processed) or "done" (the `VideoResult`).
OnEvent = Callable[[str, str, object], None]


@dataclass(frozen=True)
class ExtractConfig:
    """Settings of a `k2m extract` run; `check` validates them all."""

    estimator: EstimatorSpec = field(default_factory=EstimatorSpec)
    fast: EstimatorSpec | None = None   # --two-pass: the backend that finds the frames worth keeping
    filters: FilterConfig = field(default_factory=FilterConfig)
    segment: SegmentConfig = field(default_factory=SegmentConfig)
    focal: float | None = None          # px, every video
    fov: float | None = None            # field of view across the long side, degrees → a focal per video
    workers: int = 1
    force: bool = False
    strict: bool = False

    def check(self) -> None:
        self.estimator.check()
        if self.fast is not None:
            self.fast.check()
            if (self.fast.name, self.fast.weights) == (self.estimator.name, self.estimator.weights):
                raise UserError("--two-pass needs two different backends: --fast and --estimator are the same")
            if self.fast.name == "rtmlib":
                raise UserError("--fast rtmlib: the fast pass must find the people itself; use mediapipe or "
                                "ultralytics")
        elif self.estimator.name == "rtmlib" and self.estimator.det_weights is None:
            raise UserError("--estimator rtmlib is top-down and needs the person boxes: give --det-weights "
                            "DET.onnx (a YOLOX or RTMDet person detector) or use --two-pass")
        check_focal_options(self.focal, self.fov)
        if self.workers < 1:
            raise UserError(f"--workers must be at least 1, got {self.workers}")

    def focal_for(self, width: float, height: float) -> float | None:
        return focal_from_fov(self.fov, width, height) if self.fov is not None else self.focal


@dataclass
class Job:
    video: Path
    out: Path


@dataclass
class VideoResult:
    video: Path
    out: Path
    status: str            # "done", "skipped" (output exists) or "unreadable"
    frames: int = 0        # frames decoded
    with_person: int = 0   # frames written with a person
    seconds: float = 0.0
    message: str = ""


@dataclass
class Track:
    """The chosen person over a video: ``xy (F, 17, 2)``, ``conf (F, 17)`` (0 where nobody),
    ``boxes (F, 4)`` (NaN where nobody), ``ids (F,)`` (-1 where unknown)."""

    xy: np.ndarray
    conf: np.ndarray
    boxes: np.ndarray
    ids: np.ndarray

    @property
    def present(self) -> np.ndarray:
        return np.isfinite(self.boxes).all(1)


def find_videos(inputs: Iterable[Path]) -> list[Path]:
    """Video files given, plus those found (recursively, by suffix) in the folders given."""
    return list(dict.fromkeys(p.resolve() for p, _ in find_files(inputs, VIDEO_SUFFIXES, "videos")))


def plan(videos: list[Path], out: Path, force: bool) -> tuple[list[Job], list[VideoResult]]:
    """Jobs to run, and the videos skipped because their output exists (unless ``force``)."""
    targets: dict[Path, Path] = {}
    for video in videos:
        target = out / f"{video.stem}.jsonl"
        if target in targets:
            raise UserError(f"{targets[target]} and {video} would both write {target}: rename one, or extract "
                            "them into different --out folders")
        targets[target] = video
    jobs, skipped = [], []
    for target, video in targets.items():
        if target.exists() and not force:
            skipped.append(VideoResult(video, target, "skipped", message="already extracted (--force redoes it)"))
        else:
            jobs.append(Job(video, target))
    return jobs, skipped


def ffmpeg_reason(exc: Exception) -> str:
    """The line of an ffmpeg failure that says what is wrong (imageio-ffmpeg adds its whole log)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


class Unreadable(Exception):
    """ffmpeg cannot decode a video (the message says why)."""


def decode(path: Path) -> tuple[dict, Iterator[np.ndarray]]:
    """ffmpeg's metadata of ``path`` (``size`` after rotation, ``fps``, ``duration``) and its frames
    as ``(H, W, 3)`` uint8 RGB. Raises `Unreadable`, here or while iterating, when ffmpeg fails or
    decodes no frame."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    try:
        meta = next(reader)
    except (OSError, RuntimeError, StopIteration) as exc:
        reader.close()
        raise Unreadable(ffmpeg_reason(exc)) from None
    width, height = meta["size"]

    def frames() -> Iterator[np.ndarray]:
        count = 0
        try:
            for raw in reader:
                count += 1
                yield np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3)
        except (OSError, RuntimeError) as exc:
            raise Unreadable(f"at frame {count}: {ffmpeg_reason(exc)}") from None
        finally:
            reader.close()
        if count == 0:
            raise Unreadable("no frame decoded")

    return meta, frames()


def frame_estimate(meta: dict) -> int | None:
    frames = meta.get("duration", 0) * meta.get("fps", 0)
    return int(round(frames)) if math.isfinite(frames) and frames > 0 else None


def pick(people: People, hint: np.ndarray | None) -> int | None:
    """The person to keep: the largest box, or with a ``hint`` box the one overlapping it most."""
    if len(people) == 0:
        return None
    if hint is None:
        return int(np.argmax(box_area(people.boxes)))
    overlap = iou(np.asarray(hint, np.float64), people.boxes.astype(np.float64))
    best = int(np.argmax(overlap))
    return best if overlap[best] >= MIN_HINT_IOU else None


def track_video(frames: Iterable[np.ndarray], estimator: Estimator, advance: Callable[[int], None],
                keep: np.ndarray | None = None, hints: np.ndarray | None = None) -> Track:
    """Run ``estimator`` on every frame (only where ``keep (F,)``, with ``hints (F, 4)``) and keep
    one person per frame (`pick`)."""
    xy, conf, boxes, ids = [], [], [], []
    for i, frame in enumerate(frames):
        chosen = None
        if keep is None or (i < len(keep) and keep[i]):
            hint = None if hints is None or i >= len(hints) else hints[i]
            people = estimator(frame, hint)
            k = pick(people, hint)
            if k is not None:
                chosen = (people.xy[k], people.conf[k], people.boxes[k],
                          -1 if people.ids is None else int(people.ids[k]))
            advance(1)
        if chosen is None:
            chosen = (np.zeros((17, 2)), np.zeros(17), np.full(4, np.nan), -1)
        for store, value in zip((xy, conf, boxes, ids), chosen):
            store.append(value)
    return Track(np.asarray(xy, np.float32), np.asarray(conf, np.float32), np.asarray(boxes, np.float32),
                 np.asarray(ids, np.int64))


def worth_keeping(track: Track, height: float, fps: float, moving: np.ndarray | None,
                  filters: FilterConfig, segment: SegmentConfig) -> np.ndarray:
    """``(F,)`` frames inside stretches that pass the per-frame filters of preprocess, last at
    least ``segment.min_seconds`` and are not stationary."""
    n = len(track.xy)
    if moving is not None:
        moving = np.r_[moving, np.zeros(n, bool)][:n]  # the edge check may decode a frame more or less
    m = measure(track.xy, track.conf, filters.min_conf)
    bad = ~track.present
    for mask in frame_failures(m, height, fps, moving, filters).values():
        bad |= mask
    keep = np.zeros(n, bool)
    shortest = int(round(segment.min_seconds * fps))
    for a, b in valid_stretches(~bad):
        if b - a >= shortest and motion_level(m, a, b, fps) >= filters.min_speed:
            keep[a:b] = True
    return keep


def extract_video(job: Job, cfg: ExtractConfig, on_event: OnEvent | None = None) -> VideoResult:
    """Extract one video into ``job.out``; an unreadable video gives status "unreadable" and no file."""
    name = job.video.name
    emit = on_event or (lambda *_: None)
    start = time.perf_counter()
    try:
        meta, frames = decode(job.video)
        width, height = meta["size"]
        fps = float(meta["fps"])
        if not (math.isfinite(fps) and fps > 0):
            raise Unreadable(f"no frame rate ({meta['fps']})")
        emit(name, "total", frame_estimate(meta))
        advance = functools.partial(emit, name, "frames")
        if cfg.fast is None:
            with _opened(cfg.estimator) as estimator:
                track = track_video(frames, estimator, advance)
                label, tracks = estimator.name, estimator.tracks
        else:
            with _opened(cfg.fast) as fast:
                first = track_video(frames, fast, advance)
                fast_name, fast_tracks = fast.name, fast.tracks
            f = cfg.filters
            try:
                moving = read_video(job.video, True, f.camera_edge, f.camera_threshold).moving
            except (OSError, RuntimeError) as exc:
                raise Unreadable(ffmpeg_reason(exc)) from None
            keep = worth_keeping(first, height, fps, moving, f, cfg.segment)
            emit(name, "total", len(first.xy) + int(keep.sum()))
            # decode again only when there is something to re-extract
            frames = decode(job.video)[1] if keep.any() else itertools.repeat(None, len(keep))
            with _opened(cfg.estimator) as accurate:
                track = track_video(frames, accurate, advance, keep=keep, hints=first.boxes)
                label, tracks = f"{accurate.name} (two-pass after {fast_name})", accurate.tracks
            if fast_tracks:  # the fast pass's ids name the person the accurate pass was pointed at
                track.ids, tracks = np.where(track.present, first.ids, -1), True
    except Unreadable as exc:
        return VideoResult(job.video, job.out, "unreadable", message=f"ffmpeg cannot read it: {exc}")
    present = track.present & (track.conf > 0).any(1)
    # 0.01 px and 1e-4 of confidence are far below any estimator's error, and keep the file short.
    record = {"video": job.video.stem, "xy": track.xy.round(2), "conf": track.conf.round(4),
              "fps": fps, "width": width, "height": height, "boxes": track.boxes.round(2),
              "person_ids": track.ids if tracks else None, "focal": cfg.focal_for(width, height),
              "estimator": label, "source": job.video.name}
    write_k2m_jsonl(job.out, [record])
    return VideoResult(job.video, job.out, "done", len(track.xy), int(present.sum()), time.perf_counter() - start)


@contextmanager
def _opened(spec: EstimatorSpec) -> Iterator[Estimator]:
    """A backend opened for one video, closed after it."""
    estimator = spec.open(video=True)
    try:
        yield estimator
    finally:
        estimator.close()


def probe(video: Path) -> str | None:
    """None when ffmpeg can open ``video``, else why not."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(video), pix_fmt="gray")
    try:
        next(reader)
    except (OSError, RuntimeError, StopIteration) as exc:
        return ffmpeg_reason(exc)
    finally:
        reader.close()
    return None


def run_extract(inputs: Iterable[Path], out: Path, cfg: ExtractConfig,
                on_event: OnEvent | None = None) -> list[VideoResult]:
    """Extract every video of ``inputs`` into ``out``; results in input order, skipped ones included.
    With ``cfg.strict`` an unreadable video is a `UserError` before anything is written."""
    cfg.check()
    jobs, skipped = plan(find_videos(inputs), Path(out), cfg.force)
    if cfg.strict:
        for job in jobs:
            reason = probe(job.video)
            if reason is not None:
                raise UserError(f"{job.video}: ffmpeg cannot read it ({reason}); nothing was extracted "
                                "(without --strict unreadable videos are reported and skipped)")
    if on_event:
        on_event("", "jobs", len(jobs))
    if cfg.workers == 1 or len(jobs) <= 1:
        results = [_run_and_report(job, cfg, on_event) for job in jobs]
    else:
        results = _run_parallel(jobs, cfg, on_event)
    if cfg.strict:
        broken = [r for r in results if r.status == "unreadable"]
        if broken:
            raise UserError(f"{broken[0].video}: {broken[0].message} ({len(broken)} unreadable videos; the "
                            "others were extracted)")
    order = {job.video: i for i, job in enumerate(jobs + [Job(r.video, r.out) for r in skipped])}
    return sorted(results + skipped, key=lambda r: order[r.video])


def _run_and_report(job: Job, cfg: ExtractConfig, on_event: OnEvent | None) -> VideoResult:
    result = extract_video(job, cfg, on_event)
    if on_event:
        on_event(job.video.name, "done", result)
    return result


_QUEUE = None  # a worker process's event queue


def _worker_init(queue) -> None:
    global _QUEUE
    _QUEUE = queue


def _worker_job(job: Job, cfg: ExtractConfig) -> VideoResult:
    return extract_video(job, cfg, lambda *event: _QUEUE.put(event))


def _run_parallel(jobs: list[Job], cfg: ExtractConfig, on_event: OnEvent | None) -> list[VideoResult]:
    """Videos in ``cfg.workers`` spawned processes; their progress events come back on a queue."""
    import multiprocessing
    import queue as queues
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    context = multiprocessing.get_context("spawn")
    events = context.Queue()
    done: dict[Path, VideoResult] = {}

    def drain(block: bool) -> None:
        while True:
            try:
                event = events.get(timeout=0.1) if block else events.get_nowait()
            except queues.Empty:
                return
            block = False
            if on_event:
                on_event(*event)

    with ProcessPoolExecutor(min(cfg.workers, len(jobs)), mp_context=context, initializer=_worker_init,
                             initargs=(events,)) as pool:
        pending = {pool.submit(_worker_job, job, cfg): job for job in jobs}
        while pending:
            finished, _ = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
            drain(block=False)
            for future in finished:
                job = pending.pop(future)
                result = future.result()  # a UserError or bug in a worker ends the run here
                drain(block=True)  # this video's last progress events come before its "done"
                done[job.video] = result
                if on_event:
                    on_event(job.video.name, "done", result)
    return [done[job.video] for job in jobs]
