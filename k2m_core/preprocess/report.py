"""The preprocessing report: what was read, what was kept, and every rejection with its reason.

Rejections have a level: ``file`` (an input, or one record of it, could not be used — counted in
files), ``frame`` (frames dropped by a per-frame filter — counted in frames at the stored rate),
``clip`` (a stretch of valid frames dropped whole — counted in clips). ``files`` lists every
per-file problem with its reason; those marked ``used`` did not stop the file from being used
(gaps in frame numbers, an unreadable video beside it). Worker reports merge into the run's
report; `to_dict` is what ``report.json`` holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_EXAMPLES = 5


@dataclass
class Reason:
    level: str
    count: int = 0
    frames: int = 0
    examples: list[str] = field(default_factory=list)


@dataclass
class FileEntry:
    file: str
    reason: str
    message: str
    fatal: bool  # the file (or record) was not used


@dataclass
class Report:
    files_read: int = 0             # inputs (files, folders, records) that yielded detections
    videos: int = 0
    source_frames: int = 0          # frames declared by the inputs, at their own rate
    clips: int = 0
    frames: int = 0                 # frames kept, at the stored rate
    videos_kept: int = 0
    camera_checked: int = 0         # videos whose camera movement was checked against the video
    camera_unchecked: int = 0
    fps_assumed: int = 0            # videos whose rate was neither in the file, --fps, nor a video
    rejections: dict[str, Reason] = field(default_factory=dict)
    files: list[FileEntry] = field(default_factory=list)

    def reject(self, reason: str, level: str, count: int = 1, frames: int = 0, example: str | None = None) -> None:
        entry = self.rejections.setdefault(reason, Reason(level))
        entry.count += count
        entry.frames += frames
        if example and len(entry.examples) < MAX_EXAMPLES:
            entry.examples.append(example)

    def file_problem(self, file: str, reason: str, message: str, fatal: bool = True) -> None:
        self.files.append(FileEntry(file, reason, message, fatal))
        if fatal:
            self.reject(reason, "file", example=f"{file}: {message}")

    def merge(self, other: "Report") -> None:
        for name in ("files_read", "videos", "source_frames", "clips", "frames", "videos_kept",
                     "camera_checked", "camera_unchecked", "fps_assumed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for reason, entry in other.rejections.items():
            mine = self.rejections.setdefault(reason, Reason(entry.level))
            mine.count += entry.count
            mine.frames += entry.frames
            mine.examples.extend(entry.examples[:MAX_EXAMPLES - len(mine.examples)])
        self.files.extend(other.files)

    @property
    def fatal_files(self) -> list[FileEntry]:
        return [f for f in self.files if f.fatal]

    def hours(self, fps: float) -> float:
        return self.frames / fps / 3600

    def to_dict(self, fps: float) -> dict:
        return {
            "inputs": {"read": self.files_read, "rejected": len(self.fatal_files), "videos": self.videos,
                       "frames": self.source_frames},
            "kept": {"clips": self.clips, "frames": self.frames, "hours": round(self.hours(fps), 4),
                     "videos": self.videos_kept, "fps": fps},
            "camera": {"checked_videos": self.camera_checked, "not_checked_videos": self.camera_unchecked},
            "fps_assumed_videos": self.fps_assumed,
            "rejections": {reason: {"level": r.level, "count": r.count, "frames": r.frames, "examples": r.examples}
                           for reason, r in sorted(self.rejections.items())},
            "files": [{"file": f.file, "reason": f.reason, "message": f.message, "used": not f.fatal}
                      for f in self.files],
        }
