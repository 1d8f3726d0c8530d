"""Captions: CSV or JSONL files mapping a video id (or a clip id) to one or more captions.

- **JSONL**, one object per line: ``{"video": ID, "captions": ["…", "…"]}``; ``"clip"`` or
  ``"id"`` may name the id instead, and ``"caption": "…"`` may give a single caption.
- **CSV** with a header: an id column (``video``, ``video_id``, ``clip``, ``clip_id`` or ``id``)
  and one or more caption columns (``caption``, ``caption_1``, ``caption2``…, ``text``);
  repeat a row to add captions.

A clip takes the captions listed under its own clip id, else those of its video. Lines with no
usable caption (empty, not UTF-8, malformed) are reported one by one and skipped.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from k2m_core.errors import UserError

ID_COLUMNS = ("video", "video_id", "clip", "clip_id", "id")
ID_KEYS = ("video", "clip", "id")


@dataclass
class CaptionIssue:
    where: str    # "file:line"
    reason: str   # caption-empty | caption-not-utf8 | caption-malformed
    message: str


@dataclass
class Captions:
    by_id: dict[str, list[str]] = field(default_factory=dict)
    issues: list[CaptionIssue] = field(default_factory=list)

    def lookup(self, clip_id: str, video: str) -> list[str] | None:
        return self.by_id.get(clip_id) or self.by_id.get(video)

    def _add(self, key: str, texts: list[str]) -> None:
        known = self.by_id.setdefault(key, [])
        known.extend(t for t in texts if t not in known)

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.by_id.values())


def load_captions(path: Path) -> Captions:
    """Read a captions file; `UserError` if it is missing, of an unknown kind, or has no caption."""
    if not path.is_file():
        raise UserError(f"{path}: captions file not found; pass --captions with a CSV or JSONL file")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".json"):
        raise UserError(f"{path}: captions must be a .csv or .jsonl file")
    captions = _read_csv(path) if suffix == ".csv" else _read_jsonl(path)
    if not captions.by_id:
        first = f" (first problem: {captions.issues[0].where}: {captions.issues[0].message})" if captions.issues else ""
        raise UserError(f"{path}: no usable caption in the file{first}")
    return captions


def _clean(text) -> str | None:
    """A caption as stored, or None when it is not one."""
    return text.strip() if isinstance(text, str) and text.strip() else None


def _read_jsonl(path: Path) -> Captions:
    out = Captions()
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            where = f"{path.name}:{number}"
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                out.issues.append(CaptionIssue(where, "caption-not-utf8", "line is not UTF-8 text"))
                continue
            except (json.JSONDecodeError, RecursionError):
                out.issues.append(CaptionIssue(where, "caption-malformed", "line is not valid JSON"))
                continue
            key = next((record[k] for k in ID_KEYS if isinstance(record, dict) and k in record), None)
            if not isinstance(key, str) or not key.strip():
                out.issues.append(CaptionIssue(where, "caption-malformed", "needs a 'video' (or 'clip') string"))
                continue
            texts = record.get("captions", record.get("caption"))
            texts = [texts] if isinstance(texts, str) else texts if isinstance(texts, list) else []
            cleaned = [c for c in map(_clean, texts) if c]
            if len(cleaned) < len(texts) or not cleaned:
                out.issues.append(CaptionIssue(where, "caption-empty", f"{key}: empty or non-text caption"))
            if cleaned:
                out._add(key.strip(), cleaned)
    return out


def _read_csv(path: Path) -> Captions:
    out = Captions()
    # surrogateescape keeps undecodable bytes visible per row instead of failing the whole file
    text = path.read_bytes().decode("utf-8-sig", errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader, [])]
    except csv.Error as exc:
        raise UserError(f"{path}: malformed CSV header ({exc})") from None
    id_col = next((header.index(c) for c in ID_COLUMNS if c in header), None)
    text_cols = [i for i, h in enumerate(header) if h.startswith("caption") or h in ("text", "description")]
    if id_col is None or not text_cols:
        raise UserError(f"{path}: captions CSV needs a header with an id column ({', '.join(ID_COLUMNS)}) "
                        "and a caption column (caption, caption_1, …, text)")
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise UserError(f"{path}: malformed CSV at line {reader.line_num} ({exc}); fix the quoting") from None
        where = f"{path.name}:{reader.line_num}"
        if not any(cell.strip() for cell in row):
            continue
        key = row[id_col].strip() if id_col < len(row) else ""
        texts = [row[i] for i in text_cols if i < len(row)]
        if _has_bad_bytes(key, *texts):
            out.issues.append(CaptionIssue(where, "caption-not-utf8", "row is not UTF-8 text"))
            continue
        cleaned = [c for c in map(_clean, texts) if c]
        if not key or not cleaned:
            out.issues.append(CaptionIssue(where, "caption-empty", f"{key or 'row'}: no id or no caption"))
            continue
        out._add(key, cleaned)
    return out


def _has_bad_bytes(*values: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for value in values for ch in value)
