"""Input files named on a command line: files as given, folders searched recursively by suffix."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from k2m_core.errors import UserError


def find_files(inputs: Iterable[str | os.PathLike], suffixes: tuple[str, ...], what: str) -> list[tuple[Path, Path | None]]:
    """Each file named in ``inputs``, and every file below each folder named whose suffix is one of
    ``suffixes`` (sorted), as ``(file, the folder it was found in, or None for a file named)``.
    A missing path, or a folder with none of ``what`` in it, is a `UserError`."""
    found: list[tuple[Path, Path | None]] = []
    for given in map(Path, inputs):
        if given.is_dir():
            below = sorted(p for p in given.rglob("*") if p.suffix.lower() in suffixes and p.is_file())
            if not below:
                raise UserError(f"{given}: no {what} in this folder (looked for {', '.join(suffixes)})")
            found.extend((p, given) for p in below)
        elif given.is_file():
            found.append((given, None))
        else:
            raise UserError(f"{given}: no such file or folder")
    return found
