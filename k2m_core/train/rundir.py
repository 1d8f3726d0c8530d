"""A run directory: ``config.toml`` (fully resolved), ``metrics.jsonl``, ``checkpoints/``,
``env.json`` (versions, git revision). Only rank 0 writes."""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from k2m_core import __version__
from k2m_core.atomic import write_bytes_atomic
from k2m_core.config import to_toml
from k2m_core.errors import UserError
from k2m_core.runs import CHECKPOINTS, CONFIG

METRICS = "metrics.jsonl"
FINISHED = "finished.json"


def create_run_dir(path: Path, config, *, force: bool, command: str) -> Path:
    """Make a fresh run directory; refuse to replace a run unless ``force``."""
    path = Path(path)
    if path.exists() and any(path.iterdir()):
        if not force:
            raise UserError(f"{path}: a run already exists there; continue it with --resume {path}, "
                            "pass --force to replace it, or choose another --out")
        shutil.rmtree(path)
    (path / CHECKPOINTS).mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path / CONFIG, to_toml(config).encode())
    write_bytes_atomic(path / "env.json", json.dumps(environment(command), indent=2).encode())
    return path


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
    """Append-only JSON lines; on resume, lines past the resumed step are dropped first so the
    log reads as one uninterrupted run."""

    def __init__(self, path: Path, resume_step: int | None = None) -> None:
        self.path = Path(path)
        if resume_step is not None and self.path.exists():
            kept = [line for line in self.path.read_text().splitlines()
                    if line.strip() and json.loads(line).get("step", 0) <= resume_step]
            write_bytes_atomic(self.path, ("\n".join(kept) + "\n" if kept else "").encode())

    def write(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")


def read_metrics(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / METRICS
    if not path.exists():
        raise UserError(f"{run_dir}: no {METRICS}; is this a k2m run directory?")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
