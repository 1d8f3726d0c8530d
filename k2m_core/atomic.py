"""Atomic file writing: a finished-looking file is always a finished file (docs/design.md#engineering)."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def temp_path_for(path: str | os.PathLike) -> Path:
    """A hidden temporary name beside ``path`` (same filesystem, so the rename is atomic)."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    return final.with_name(f".{final.name}.tmp-{os.getpid()}")


def publish(tmp: Path, path: str | os.PathLike) -> None:
    """fsync ``tmp`` and rename it over ``path``."""
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path; publish it as ``path`` on success, delete it on any exception."""
    tmp = temp_path_for(path)
    try:
        yield tmp
        publish(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
