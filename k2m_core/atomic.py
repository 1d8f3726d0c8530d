"""Atomic file writing: a finished-looking file is always a finished file (docs/design.md#engineering).

Everything k2m writes goes to a hidden temporary name beside its final name
(``.NAME.tmp-PID``) and is renamed over it when complete. A process killed on the way leaves
such a file behind; the next write of the same name removes those of processes that no longer
exist. Folders and files that cannot be created are a `UserError` naming the path.
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from k2m_core.errors import UserError

TMP_MARK = ".tmp-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except OverflowError:  # a number no process can have
        return False
    return True


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files or folders of ``path`` (``.NAME.tmp-PID``) whose process is gone;
    returns what was deleted. Those of live processes (another run writing the same name) stay."""
    final = Path(path)
    prefix = f".{final.name}{TMP_MARK}"
    removed = []
    try:
        candidates = [p for p in final.parent.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return removed
    for stale in candidates:
        pid = stale.name[len(prefix):]
        if not pid.isdigit() or int(pid) == os.getpid() or _pid_alive(int(pid)):
            continue
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
        removed.append(stale)
    return removed


def make_folder(path: str | os.PathLike, what: str = "--out") -> Path:
    """Create folder ``path`` (and its parents) or say in one line why it cannot be (``what`` names
    the option or file that asked for it)."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{what} {folder} is a file, not a folder; choose another {what}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{what} {folder}: cannot create this folder ({exc.strerror or exc}); choose another "
                        f"{what} or fix its permissions") from None
    return folder


def temp_path_for(path: str | os.PathLike) -> Path:
    """A hidden temporary name beside ``path`` (same filesystem, so the rename is atomic); its
    folder is created, and stale temporary files of ``path`` are removed."""
    final = Path(path)
    if final.parent.exists() and not final.parent.is_dir():
        raise UserError(f"{final}: cannot write it, {final.parent} is a file; choose another place")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{final}: cannot create its folder ({exc.strerror or exc}); choose another place or fix "
                        "its permissions") from None
    remove_stale_temps(final)
    return final.with_name(f".{final.name}{TMP_MARK}{os.getpid()}")


def cannot_write(path: str | os.PathLike, exc: OSError) -> UserError:
    """The one-line error for an output that the file system refuses."""
    return UserError(f"{path}: cannot write it ({exc.strerror or exc}); choose another place or fix its permissions")


def publish(tmp: Path, path: str | os.PathLike) -> None:
    """fsync ``tmp`` and rename it over ``path``."""
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    try:
        os.replace(tmp, path)
    except IsADirectoryError as exc:
        raise UserError(f"{path} is a folder; give a file name") from exc


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path (already created, empty); publish it as ``path`` on success, delete it
    on any exception."""
    tmp = temp_path_for(path)
    try:
        tmp.touch()
    except OSError as exc:
        raise cannot_write(path, exc) from None
    try:
        yield tmp
        publish(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
