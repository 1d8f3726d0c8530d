"""A run directory: ``config.toml`` (fully resolved), ``metrics.jsonl``, ``checkpoints/``
(``step_NNNNNNNN/`` folders and ``latest``, the name of the newest complete one), ``env.json``
(versions, git revision), ``finished.json``. Only rank 0 writes. What is written into the folders
(weights, training state) is `k2m_core.train.checkpoint`'s."""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from k2m_core import __version__
from k2m_core.atomic import make_folder, write_bytes_atomic
from k2m_core.config import to_toml
from k2m_core.errors import UserError
from k2m_core.runs import CHECKPOINTS, CONFIG, checkpointed, read_run_config

METRICS = "metrics.jsonl"
FINISHED = "finished.json"


def create_run_dir(path: Path, config, *, force: bool, command: str) -> Path:
    """Make a fresh run directory; refuse to replace a run unless ``force``, and never replace a
    folder that is not a run directory."""
    path = Path(path)
    if path.is_dir() and any(path.iterdir()):
        if not (path / CONFIG).is_file():
            raise UserError(f"--out {path}: the folder holds files and is not a k2m run directory; choose an "
                            "empty or new --out")
        if not force:
            if not checkpointed(path):
                raise UserError(f"{path}: holds a run that stopped before its first checkpoint, so there is "
                                "nothing to resume; pass --force to start it again, or choose another --out")
            raise UserError(f"{path}: a run already exists there; continue it with --resume {path}, "
                            "pass --force to replace it, or choose another --out")
        shutil.rmtree(path)
    make_folder(path)
    (path / CHECKPOINTS).mkdir(exist_ok=True)
    write_bytes_atomic(path / CONFIG, to_toml(config).encode())
    write_bytes_atomic(path / "env.json", json.dumps(environment(command), indent=2).encode())
    return path


def discard_unstarted(path: Path) -> None:
    """Remove a fresh run directory that failed before its first checkpoint: nothing in it can be
    resumed, and leaving it would make the same ``--out`` refuse to start again."""
    if (Path(path) / CONFIG).is_file() and not checkpointed(path):
        shutil.rmtree(path, ignore_errors=True)


def record_length(path: Path, config) -> None:
    """Continuing run ``path`` with ``config``: if its ``train.steps`` differs from the recorded
    one (``--resume RUN --steps M``), record the new length in ``config.toml`` (so later resumes
    and the learning-rate schedule agree) and mark the run unfinished."""
    stored = read_run_config(path, type(config))
    if stored.train.steps != config.train.steps:
        stored = replace(stored, train=replace(stored.train, steps=config.train.steps))
        write_bytes_atomic(Path(path) / CONFIG, to_toml(stored).encode())
        (Path(path) / FINISHED).unlink(missing_ok=True)


def environment(command: str) -> dict:
    import numpy
    import torch

    try:
        revision = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                  cwd=Path(__file__).parent, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        revision = None
    return {
        "command": command, "k2m": __version__, "git_revision": revision, "python": sys.version.split()[0],
        "torch": torch.__version__, "numpy": numpy.__version__, "cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "platform": platform.platform(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


class MetricsLog:
    """Append-only JSON lines; on resume, lines past the resumed step (and a last line that a
    killed run left half-written) are dropped first so the log reads as one uninterrupted run."""

    def __init__(self, path: Path, resume_step: int | None = None) -> None:
        self.path = Path(path)
        if resume_step is not None and self.path.exists():
            kept = [json.dumps(r) for r in _records(self.path) if r["step"] <= resume_step]
            write_bytes_atomic(self.path, ("\n".join(kept) + "\n" if kept else "").encode())

    def write(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")


def _records(path: Path) -> list[dict]:
    """The records of a metrics log: JSON objects with an integer ``step``. A broken last line is
    what a killed run leaves (it is dropped); a broken line before it is a `UserError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read it ({exc})") from None
    lines = text.splitlines()
    numbered = [(number, line) for number, line in enumerate(lines, 1) if line.strip()]
    records = []
    for k, (number, line) in enumerate(numbered):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if not (isinstance(record, dict) and isinstance(record.get("step"), int)):
            if k == len(numbered) - 1 and not text.endswith("\n"):
                break  # half-written by a run that was killed while writing it
            raise UserError(f"{path}:{number}: not a metrics record (a JSON object with a step); delete or fix "
                            "that line")
        records.append(record)
    return records


def read_metrics(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / METRICS
    if not path.exists():
        raise UserError(f"{run_dir}: no {METRICS}; is this a k2m run directory?")
    return _records(path)
