"""Keypoint file formats: finding inputs, recognising their format, reading them; and the writers
(used by tests and the synthetic corpus generator).

Recognition (``--format auto``): a folder holding ``*_keypoints.json`` files is an OpenPose video;
``.npz``/``.npy`` are arrays; ``.jsonl`` is k2m JSONL; a ``.json`` file is opened and recognised
by its structure (COCO results or annotations, incl. Halpe-26 / WholeBody; MMPose predictions).
Other folders are searched recursively; files of other kinds inside them are ignored.

The video id of an input is its path below the input folder it was found in, without extension
and with ``/`` between folders (``poses/clipA/walk.json`` found in ``poses/`` is ``clipA/walk``), so
same-named files in different folders stay apart; a generic name (``alphapose-results.json``,
``coco_results.json``, …) gives way to its folder (``clipA/coco_results.json`` is ``clipA``). An
input given by itself is named by its file or folder name alone. Ids never hold ``..``: they
only name what lies below the input folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from k2m_core.errors import UserError
from k2m_core.preprocess.detections import Detections, FormatError
from k2m_core.preprocess.formats.arrays import read_pose_array, write_pose_npz
from k2m_core.preprocess.formats.coco import is_coco, read_coco, write_coco_results
from k2m_core.preprocess.formats.common import load_json
from k2m_core.preprocess.formats.k2m_jsonl import iter_k2m_jsonl, plan_chunks, write_k2m_jsonl
from k2m_core.preprocess.formats.mmpose import is_mmpose, read_mmpose, write_mmpose_json
from k2m_core.preprocess.formats.openpose import is_openpose_folder, read_openpose_folder, write_openpose_folder

__all__ = ["Unit", "discover", "read_unit", "video_id", "write_coco_results", "write_k2m_jsonl",
           "write_mmpose_json", "write_openpose_folder", "write_pose_npz"]

SUFFIXES = {".json": "json", ".jsonl": "jsonl", ".npz": "npz", ".npy": "npz"}
FORCED_SUFFIXES = {"coco": (".json",), "mmpose": (".json",), "npz": (".npz", ".npy"), "jsonl": (".jsonl",)}
GENERIC_STEMS = {"alphapose-results", "results", "predictions", "keypoints", "coco_results", "coco-results",
                 "pose_results", "poses"}


@dataclass(frozen=True)
class Unit:
    """One piece of work: a file, an OpenPose folder, or a byte range of a JSONL file."""

    path: Path
    kind: str  # json (recognised when read) | coco | mmpose | openpose | npz | jsonl
    start: int = 0
    end: int | None = None
    root: Path | None = None  # the input folder it was found in (None: given by itself)

    @property
    def label(self) -> str:
        return str(self.path) if self.end is None else f"{self.path}[{self.start}:{self.end}]"

    @property
    def video(self) -> str:
        return video_id(self.path, self.root)


def video_id(path: Path, root: Path | None = None) -> str:
    """The video id of the input ``path`` found in the folder ``root`` (see the module docstring)."""
    parts = list(path.relative_to(root).parts) if root is not None else [path.name]
    if not path.is_dir():
        parts[-1] = Path(parts[-1]).stem
        if parts[-1].lower() in GENERIC_STEMS:
            parts = parts[:-1] or [path.resolve().parent.name]
    return "/".join(parts)


def _kind(path: Path, forced: str) -> str | None:
    if forced == "auto":
        return SUFFIXES.get(path.suffix.lower())
    return forced if path.suffix.lower() in FORCED_SUFFIXES.get(forced, ()) else None


def _walk(folder: Path, forced: str, skip: set[Path], root: Path) -> Iterator[Unit]:
    if is_openpose_folder(folder) and forced in ("auto", "openpose"):
        yield Unit(folder, "openpose", root=root if folder != root else None)
        return
    for child in sorted(folder.iterdir()):
        if child.resolve() in skip or child.name.startswith("."):
            continue
        if child.is_dir():
            yield from _walk(child, forced, skip, root)
        elif (kind := _kind(child, forced)) is not None:
            yield Unit(child, kind, root=root)


def discover(inputs: list[Path], forced: str, skip: set[Path], chunk_bytes: int) -> list[Unit]:
    """All units of work under ``inputs``, in a stable order. A missing path is a `UserError`;
    a file given explicitly with an unknown kind becomes a unit that is rejected when read."""
    skip = {p.resolve() for p in skip}
    units: list[Unit] = []
    for path in inputs:
        if not path.exists():
            raise UserError(f"{path}: no such file or folder")
        if path.is_dir():
            units.extend(_walk(path, forced, skip, path))
        else:
            units.append(Unit(path, _kind(path, forced) if forced == "auto" else forced))
    out = []
    for unit in units:
        if unit.kind == "jsonl" and unit.path.is_file():
            out.extend(Unit(unit.path, "jsonl", a, b, unit.root) for a, b in plan_chunks(unit.path, chunk_bytes))
        else:
            out.append(unit)
    return out


def read_unit(unit: Unit, frame_regex: str | None) -> Iterator[Detections | FormatError]:
    """The videos in a unit, each as `Detections` or as the `FormatError` that rejects it."""
    path, kind = unit.path, unit.kind
    try:
        if kind is None:
            raise FormatError("unknown-format", "unknown kind of file; keypoint inputs are .json, .jsonl, "
                              ".npz, .npy or OpenPose folders (use --format to say which)")
        if kind == "jsonl":
            yield from iter_k2m_jsonl(path, unit.start, unit.end)
            return
        if path.is_dir() != (kind == "openpose"):
            raise FormatError("unknown-format", f"--format {kind} does not fit a "
                              f"{'folder' if path.is_dir() else 'file'}")
        if kind == "openpose":
            yield read_openpose_folder(path, unit.video, frame_regex)
        elif kind == "npz":
            yield read_pose_array(path, unit.video)
        else:
            data = load_json(path)
            if kind == "coco" or (kind == "json" and is_coco(data)):
                yield read_coco(path, unit.video, data, frame_regex)
            elif kind == "mmpose" or (kind == "json" and is_mmpose(data)):
                yield read_mmpose(path, unit.video, data)
            elif isinstance(data, dict) and "people" in data:
                raise FormatError("unknown-format", "a single OpenPose frame; pass the folder holding all "
                                  "frames of the video")
            else:
                raise FormatError("unknown-format", "JSON matches no supported keypoint format (COCO "
                                  "results or annotations, MMPose predictions); use --format to say which")
    except FormatError as exc:
        yield exc
