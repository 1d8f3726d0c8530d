"""Orchestration of `k2m preprocess`: find inputs, take this shard's share, process units (in
worker processes when asked), attach captions, stream clips into the dataset file, write the report.

Memory stays flat as the input grows: units are processed a few at a time (at most two per
worker in flight, results taken in input order) and their clips go straight into the HDF5 file.
The dataset is written to a temporary name and only appears when complete; with ``strict`` the
first input problem stops the run with nothing written.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Iterable, Iterator

from k2m_core.atomic import write_bytes_atomic
from k2m_core.data.dataset import DatasetWriter
from k2m_core.errors import UserError
from k2m_core.preprocess.captions import Captions, load_captions
from k2m_core.preprocess.config import PreprocessConfig
from k2m_core.preprocess.formats import Unit, discover
from k2m_core.preprocess.process import UnitResult, process_unit
from k2m_core.preprocess.report import Report
from k2m_core.preprocess.video import VideoMeta, load_video_table

IN_FLIGHT_PER_WORKER = 2
Progress = Callable[[int, int, Report], None]  # (units done, units in total, running report)


class NothingKept(UserError):
    """Every input was rejected: no dataset was written. Carries the report summary for display."""

    def __init__(self, message: str, summary: dict) -> None:
        super().__init__(message)
        self.summary = summary


def default_report_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}.report.json")


def shard_units(units: list[Unit], shard: tuple[int, int]) -> list[Unit]:
    """Every n-th unit starting at i: shards of one input list are disjoint and cover it."""
    i, n = shard
    return units[i::n]


def _hints(unit: Unit, table: dict[str, VideoMeta]) -> dict[str, VideoMeta]:
    """The ``--video-info`` entry of a unit's video; all of them for a JSONL unit, whose videos
    are known only once it is read (its records' own size, fps and focal come first)."""
    if not table:
        return {}
    if unit.kind == "jsonl":
        return table
    vid = unit.video
    return {vid: table[vid]} if vid in table else {}


def _exit_with(parent: int) -> None:
    """Worker initializer: end this process as soon as ``parent`` is gone. A parent killed outright
    (SIGKILL, OOM) cannot stop its pool, and the workers would wait for work forever."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def execute(units: list[Unit], cfg: PreprocessConfig, table: dict[str, VideoMeta]) -> Iterator[UnitResult]:
    """Results in input order; with several workers, a bounded number of units in flight.

    Worker processes are spawned (never forked: the parent holds an open HDF5 file) by a
    `ProcessPoolExecutor`, which fails loudly rather than hanging if a worker dies; each worker
    exits by itself when the parent dies."""
    if cfg.workers == 1:
        for unit in units:
            yield process_unit(unit, cfg, _hints(unit, table))
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(cfg.workers, mp_context=context, initializer=_exit_with,
                             initargs=(os.getpid(),)) as pool:
        todo = iter(units)
        pending: deque = deque()
        try:
            for unit in todo:
                pending.append(pool.submit(process_unit, unit, cfg, _hints(unit, table)))
                if len(pending) >= cfg.workers * IN_FLIGHT_PER_WORKER:
                    break
            while pending:
                result = pending.popleft().result()
                unit = next(todo, None)
                if unit is not None:
                    pending.append(pool.submit(process_unit, unit, cfg, _hints(unit, table)))
                yield result
        finally:
            for future in pending:  # a strict stop or an interrupt: drop queued work
                future.cancel()


class _Collector:
    """Takes unit results in order: duplicate checks, captions, the dataset writer, the report."""

    def __init__(self, writer: DatasetWriter, captions: Captions | None, strict: bool) -> None:
        self.writer, self.captions, self.strict = writer, captions, strict
        self.report = Report()
        self.uncaptioned = 0  # clips kept without a caption
        self.owners: dict[str, str] = {}
        self.clip_ids: set[str] = set()
        self.videos_kept: set[str] = set()
        self.caption_keys_used: set[str] = set()
        self.files: set[Path] = set()

    def _problem(self, file: str, reason: str, message: str) -> None:
        if self.strict:
            raise UserError(f"{file}: {message} (--strict: nothing written)")
        self.report.file_problem(file, reason, message)

    def add(self, result: UnitResult) -> None:
        if self.strict and result.report.fatal_files:
            entry = result.report.fatal_files[0]
            raise UserError(f"{entry.file}: {entry.message} (--strict: nothing written)")
        self.report.merge(result.report)
        self.files.add(result.unit.path)
        duplicates = set()
        for video, source in result.sources.items():
            owner = self.owners.setdefault(video, source)
            if owner != source:
                duplicates.add(video)
                self._problem(source, "duplicate-video", f"video id {video!r} already came from {owner}; "
                              "rename one of them (clips of this one are skipped)")
        for clip in result.clips:
            frames = len(clip.keypoints)
            if clip.video in duplicates:
                continue
            if clip.clip_id in self.clip_ids:
                self._problem(clip.source, "duplicate-clip", f"clip id {clip.clip_id!r} occurs twice")
                continue
            texts = self.captions.lookup(clip.clip_id, clip.video) if self.captions else None
            if texts:
                self.caption_keys_used.add(clip.clip_id if clip.clip_id in self.captions.by_id else clip.video)
            elif self.captions and self.strict:
                raise UserError(f"clip {clip.clip_id}: no caption for it or its video {clip.video!r} in the "
                                "captions file (--strict: nothing written)")
            else:  # kept: it trains the tokenizer; the text models skip it
                self.uncaptioned += 1
            self.writer.add_clip(clip.clip_id, clip.keypoints, texts or [], source=clip.source, video=clip.video,
                                 focal=clip.focal)
            self.clip_ids.add(clip.clip_id)
            self.videos_kept.add(clip.video)
            self.report.clips += 1
            self.report.frames += frames


def run_preprocess(inputs: Iterable[Path], out: Path, captions_path: Path | None, cfg: PreprocessConfig, *,
                   report_path: Path | None = None, command: str = "", force: bool = False,
                   on_progress: Progress | None = None) -> tuple[Report, dict]:
    """Build the dataset ``out`` from keypoint ``inputs`` and ``captions_path`` (None: no captions;
    clips without captions are kept for the tokenizer and counted); returns the report and the
    dictionary written to ``report_path`` (default ``<out>.report.json``)."""
    cfg.check()
    out, captions_path = Path(out), Path(captions_path) if captions_path is not None else None
    report_path = Path(report_path) if report_path else default_report_path(out)
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; give a file name such as {out / 'dataset.h5'}")
    if out.exists() and not force:
        raise UserError(f"{out} already exists; pass --force to overwrite it")
    captions = load_captions(captions_path) if captions_path is not None else None
    table = load_video_table(Path(cfg.inputs.video_info)) if cfg.inputs.video_info else {}
    skip = {out, report_path} | ({captions_path} if captions_path else set()) | \
        ({Path(cfg.inputs.video_info)} if cfg.inputs.video_info else set())
    all_units = discover([Path(p) for p in inputs], cfg.inputs.format, skip, cfg.jsonl_chunk_bytes)
    units = shard_units(all_units, cfg.shard)
    if not units:
        raise UserError(f"no keypoint inputs found in {', '.join(map(str, inputs))} (shard {cfg.shard[0]}/"
                        f"{cfg.shard[1]}); expected .json, .jsonl, .npz, .npy files or OpenPose folders")
    if cfg.strict and captions and captions.issues:
        issue = captions.issues[0]
        raise UserError(f"{captions_path}:{issue.where.rsplit(':', 1)[-1]}: {issue.message} (--strict: nothing written)")
    writer = DatasetWriter(out, fps=cfg.segment.fps, creation_command=command, split_seed=cfg.seed)
    collector = _Collector(writer, captions, cfg.strict)
    for issue in captions.issues if captions else []:
        collector.report.file_problem(issue.where, issue.reason, issue.message)
    try:
        with closing(execute(units, cfg, table)) as results:  # closing stops the workers on any exit
            for done, result in enumerate(results, 1):
                collector.add(result)
                if on_progress:
                    on_progress(done, len(units), collector.report)
        report = collector.report
        report.files_read = len(collector.files)
        report.videos_kept = len(collector.videos_kept)
        summary = _summary(report, cfg, command, captions, collector.caption_keys_used, collector.uncaptioned,
                           len(all_units), len(units))
        if len(writer) == 0:
            writer.abort()
            write_bytes_atomic(report_path, json.dumps(summary, indent=2).encode())
            top = sorted(report.rejections.items(), key=lambda item: -item[1].frames - item[1].count)[:3]
            reasons = ", ".join(f"{name} ({r.count:,} {'frames' if r.level == 'frame' else r.level + 's'})"
                                for name, r in top) or "no input"
            raise NothingKept(f"no clip was kept, so no dataset was written; main reasons: {reasons}; "
                              f"details in {report_path}", summary)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    write_bytes_atomic(report_path, json.dumps(summary, indent=2).encode())
    return report, summary


def _summary(report: Report, cfg: PreprocessConfig, command: str, captions: Captions | None, used: set[str],
             uncaptioned: int, total_units: int, shard_units_count: int) -> dict:
    config = json.loads(json.dumps(asdict(cfg), default=str))
    captions = captions or Captions()
    return {"command": command, "config": config,
            "shard": {"index": cfg.shard[0], "count": cfg.shard[1], "units": shard_units_count,
                      "units_all_shards": total_units},
            "captions": {"ids": len(captions.by_id), "captions": captions.count,
                         "ids_matching_no_clip": len(captions.by_id) - len(used), "clips_without": uncaptioned},
            **report.to_dict(cfg.segment.fps)}
