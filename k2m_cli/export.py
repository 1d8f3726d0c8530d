"""`k2m export`: convert motions between AMASS-style .npz and BVH."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from k2m_core.errors import UserError


def export(
    files: List[Path] = typer.Argument(..., help="Motions: .npz (k2m or AMASS, SMPL or SMPL+H), .bvh (SMPL joints) or .pkl (AIST++)."),
    to: str = typer.Option(..., "--to", help="bvh | npz."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for the converted files (default: beside each input)."),
    fps: Optional[float] = typer.Option(None, "--fps", help="Resample to this frame rate (default: keep the file's)."),
    body_model: Optional[str] = typer.Option(None, "--body-model", help="skeleton (default), smpl, or a SMPL model file/folder."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing output files."),
) -> None:
    """Convert motions: AMASS-style .npz (z-up) ↔ BVH (y-up, centimetres, SMPL joint names, ZYX);
    AIST++ .pkl files are read too (only NumPy arrays are accepted from them, no pickled code).

    BVH rotations are SMPL's own, converted exactly (no IK); --fps resamples with slerp. BVH
    stores no body shape: a .npz made from a BVH gets zero betas.

    Example: k2m export motion.npz --to bvh --fps 60
    """
    from k2m_core.export.motion_file import MOTION_SUFFIXES

    if to not in ("bvh", "npz"):
        raise UserError(f"--to {to!r}: choose bvh or npz")
    if fps is not None and not 1 <= fps <= 1000:
        raise UserError(f"--fps {fps}: give a frame rate between 1 and 1000")
    targets = [(out or f.parent) / f"{f.stem}.{to}" for f in files]
    for source, target in zip(files, targets):
        if not source.is_file():
            raise UserError(f"{source}: no such file")
        if source.suffix.lower() not in MOTION_SUFFIXES:
            raise UserError(f"{source}: unknown motion format {source.suffix!r}; give .npz, .bvh or .pkl files")
        if source.suffix.lower() == f".{to}" and fps is None:
            raise UserError(f"{source} is already {to}; pass --fps to resample it")
        if target.exists() and not force:
            raise UserError(f"{target} exists; pass --force to overwrite it")
    import torch

    from k2m_core.atomic import make_folder
    from k2m_core.body import load_body_model
    from k2m_core.export.motion_file import load_motion, save_motion

    body = load_body_model(body_model).to(torch.float64)
    motions = [load_motion(source, body) for source in files]  # all read before anything is written
    if out is not None:
        make_folder(out)
    for motion, target in zip(motions, targets):
        save_motion(motion.resampled(fps) if fps is not None else motion, target, body)
        typer.echo(str(target))
