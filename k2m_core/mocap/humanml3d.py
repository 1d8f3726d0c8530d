"""The HumanML3D layout: which stretch of which AMASS file each motion is, and its captions.

``index.csv`` has one row per motion: ``source_path`` (``./pose_data/<dataset>/…/<name>.npy``,
naming the AMASS file ``<dataset>/…/<name>.npz``), ``start_frame`` and ``end_frame``, and
``new_name`` (``000123.npy``). ``texts/000123.txt`` holds its captions, one per line, as
``caption#tokens#from#to``; the caption is the part before the first ``#``.

The frame numbers count HumanML3D's pose files, which keep every ``int(fps / 20)``-th AMASS frame
and, for a few datasets, first drop their opening seconds (`TRIMMED_SECONDS`). `source_frames`
undoes both, so a segment is cut from the AMASS file exactly where HumanML3D cut it. Rows whose
source is not AMASS (HumanAct12) have no file to crop and are left out.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from k2m_core.errors import UserError

POSE_FPS = 20
TRIMMED_SECONDS = {"Eyes_Japan_Dataset": 3.0, "MPI_HDM05": 3.0, "TotalCapture": 1.0, "MPI_Limits": 1.0,
                   "Transitions_mocap": 0.5}


@dataclass(frozen=True)
class Segment:
    name: str                 # HumanML3D's id (new_name without .npy)
    source: tuple[str, ...]   # path parts of the AMASS file, without suffix
    start: int                # [start, end) in HumanML3D's 20 fps pose frames
    end: int
    captions: tuple[str, ...]

    def source_frames(self, fps: float) -> tuple[int, int]:
        """``[start, end)`` in frames of the AMASS file recorded at ``fps``."""
        step = max(1, int(fps / POSE_FPS))
        trim = next((int(s * POSE_FPS) for d, s in TRIMMED_SECONDS.items() if d in self.source), 0)
        return (trim + self.start) * step, (trim + self.end) * step


def load_humanml3d(folder: Path) -> dict[str, list[Segment]]:
    """Read ``folder/index.csv`` and ``folder/texts/`` → segments by the stem of their AMASS file;
    `UserError` for a missing or malformed index."""
    index = Path(folder) / "index.csv"
    if not index.is_file():
        raise UserError(f"--humanml3d {folder}: no index.csv in it; give the HumanML3D folder")
    rows = list(csv.DictReader(io.StringIO(index.read_text(encoding="utf-8", errors="replace"))))
    needed = {"source_path", "start_frame", "end_frame", "new_name"}
    if rows and not needed <= set(rows[0]):
        raise UserError(f"{index}: needs the columns {', '.join(sorted(needed))}")
    segments: dict[str, list[Segment]] = {}
    for n, row in enumerate(rows, 2):
        parts = PurePosixPath(row["source_path"].replace("\\", "/")).parts
        parts = parts[parts.index("pose_data") + 1:] if "pose_data" in parts else tuple(p for p in parts if p != ".")
        if not parts or "humanact12" in parts:
            continue
        try:
            start, end = int(row["start_frame"]), int(row["end_frame"])
        except (TypeError, ValueError):
            raise UserError(f"{index}:{n}: start_frame and end_frame must be integers") from None
        name = PurePosixPath(row["new_name"]).stem
        stem = PurePosixPath(parts[-1]).stem
        segments.setdefault(stem, []).append(Segment(name, (*parts[:-1], stem), start, end,
                                                     _captions(Path(folder) / "texts" / f"{name}.txt")))
    return segments


def _captions(path: Path) -> tuple[str, ...]:
    if not path.is_file():
        return ()
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return tuple(dict.fromkeys(c for c in (line.split("#", 1)[0].strip() for line in lines) if c))


def segments_for(path: Path, segments: dict[str, list[Segment]]) -> list[Segment]:
    """The segments cut from the motion file ``path``: those whose source path parts end it."""
    parts = (*Path(path).parts[:-1], Path(path).stem)
    return [s for s in segments.get(parts[-1], []) if parts[-len(s.source):] == s.source]
