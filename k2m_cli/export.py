"""`k2m export`: convert motions between AMASS-style .npz and BVH."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from k2m_core.errors import UserError


def export(
    files: List[Path] = typer.Argument(..., help="Motions: .npz (k2m or AMASS, SMPL or SMPL+H) or .bvh (SMPL joints)."),
    to: str = typer.Option(..., "--to", help="bvh | npz."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for the converted files (default: beside each input)."),
    body_model: Optional[str] = typer.Option(None, "--body-model", help="skeleton (default), smpl, or a SMPL model file/folder."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing output files."),
) -> None:
    """Convert motions: AMASS-style .npz (z-up) ↔ BVH (y-up, centimetres, SMPL joint names, ZYX).

    BVH rotations are SMPL's own, converted exactly (no IK). BVH stores no body shape: a .npz made
    from a BVH gets zero betas.

    Example: k2m export motion.npz --to bvh
    """
    if to not in ("bvh", "npz"):
        raise UserError(f"--to {to!r}: choose bvh or npz")
    targets = [(out or f.parent) / f"{f.stem}.{to}" for f in files]
    for source, target in zip(files, targets):
        if not source.is_file():
            raise UserError(f"{source}: no such file")
        if source.suffix.lower() not in (".npz", ".bvh"):
            raise UserError(f"{source}: unknown motion format {source.suffix!r}; give .npz or .bvh files")
        if source.suffix.lower() == f".{to}":
            raise UserError(f"{source} is already {to}")
        if target.exists() and not force:
            raise UserError(f"{target} exists; pass --force to overwrite it")
    import numpy as np
    import torch

    from k2m_core.body import load_body_model
    from k2m_core.export.amass import read_amass_npz, write_amass_npz
    from k2m_core.export.bvh import read_bvh_smpl, write_bvh
    from k2m_core.export.world import Y_UP_TO_Z_UP, rotate_motion

    body = load_body_model(body_model).to(torch.float64)
    for source, target in zip(files, targets):
        if to == "bvh":
            motion = read_amass_npz(source)
            rest = body.rest_joints(torch.from_numpy(motion["betas"]).double()[None])[0].numpy()
            poses, transl = rotate_motion(motion["poses"], motion["trans"], rest[0], Y_UP_TO_Z_UP.T)
            write_bvh(target, poses, transl, rest, motion["fps"])
        else:
            motion = read_bvh_smpl(source)
            betas = np.zeros(10)
            rest_pelvis = body.rest_joints(torch.zeros(1, 10, dtype=torch.float64))[0, 0].numpy()
            poses, transl = rotate_motion(motion["poses"], motion["pelvis"] - rest_pelvis, rest_pelvis, Y_UP_TO_Z_UP)
            with torch.no_grad():
                joints = body.forward_axis_angle(torch.from_numpy(poses), torch.zeros(len(poses), 10, dtype=torch.float64),
                                                 torch.from_numpy(transl)).joints.numpy()
            write_amass_npz(target, poses, transl, betas, joints, motion["fps"])
        typer.echo(str(target))
